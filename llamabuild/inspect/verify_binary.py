"""`verify`: inspection + policy (+ later dSYM and signature checks) into one report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from llamabuild.core.findings import Finding, has_errors
from llamabuild.inspect import Binary, Slice, inspect_binary
from llamabuild.inspect.binary import BinaryFormat, VerifyProfile
from llamabuild.inspect.policy import Policy, check, check_kernels


@dataclass(frozen=True)
class VerifyReport:
    """`llamabuild verify --json`: the binary's slices and the policy findings."""

    path: Path
    format: BinaryFormat
    ok: bool
    fat: bool
    slices: tuple[Slice, ...]
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, binary: Binary, findings: Iterable[Finding]) -> VerifyReport:
        found = tuple(findings)
        ok = not has_errors(found)
        return cls(binary.path, binary.format, ok, binary.fat, binary.slices, found)

    @property
    def binary(self) -> Binary:
        return Binary(self.path, self.format, self.slices, self.fat)

    def listing(self, symbols: bool) -> VerifyReport:
        """With `symbols`, each Mach-O slice's JSON lists every imported symbol."""
        if not symbols:
            return self
        return replace(self, slices=tuple(replace(s, symbols=True) for s in self.slices))


def verify(
    path: Path,
    policy: Policy,
    dsym: Path | None = None,
    parser: str = "auto",
    profile: VerifyProfile = VerifyProfile.APP_STORE,
    kernels: Mapping[str, Mapping[str, str] | None] | None = None,
) -> VerifyReport:
    """Inspect, apply the linkage/signature policy and, with `dsym`, match its UUIDs; the
    developer-id profile adds notarization readiness (llamabuild/inspect/developer_id.py);
    `kernels` (from a build's manifest) are what the embedded Metal groups must be."""
    binary = inspect_binary(path, parser)
    if binary.format is BinaryFormat.MACHO:  # the Metal kernels: dSYM symbols, bf16 counts
        from llamabuild.inspect.metal_kernels import complete

        binary = complete(binary, dsym)
    findings = check(binary, policy)
    if kernels is not None:  # `--manifest`: arch -> the kernels' sha256 the build recorded
        findings += [f for sl in binary.slices for f in check_kernels(sl, kernels.get(sl.arch))]
    if binary.format is BinaryFormat.MACHO:  # every CodeDirectory's hashes against the file
        from llamabuild.inspect.integrity import integrity_findings

        findings += integrity_findings(path)
        if profile is VerifyProfile.DEVELOPER_ID:
            from llamabuild.inspect.developer_id import check_developer_id

            findings += check_developer_id(path)
    if dsym is not None:
        from llamabuild.inspect.dsym import check_dsym

        findings += check_dsym(binary, dsym)
    return VerifyReport.of(binary, findings)
