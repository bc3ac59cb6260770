"""`verify`: inspection + policy (+ later dSYM and signature checks) into one report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.core.findings import Finding, findings_output, has_errors
from llamabuild.core.jsonout import to_jsonable
from llamabuild.inspect import Binary, Slice, inspect_binary
from llamabuild.inspect.binary import BinaryFormat, VerifyProfile
from llamabuild.inspect.policy import Policy, check
from llamabuild.outputs_verify import SliceOutput, VerifyOutput


@dataclass
class VerifyReport:
    binary: Binary
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def output(self, symbols: bool = False) -> VerifyOutput:
        """The `--json` model; `symbols` lists every imported symbol of a Mach-O slice."""
        macho = self.binary.format is BinaryFormat.MACHO
        return VerifyOutput(
            path=self.binary.path,
            format=self.binary.format,
            ok=self.ok,
            fat=self.binary.fat,
            slices=tuple(SliceOutput.of(s, symbols, macho=macho) for s in self.binary.slices),
            findings=findings_output(self.findings),
        )

    def to_json(self, symbols: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self.output(symbols))
        return data


def import_counts(s: Slice) -> dict[str, int]:
    """dylib (or special lookup) -> how many symbols the slice imports from it."""
    counts: dict[str, int] = {}
    for imp in s.imports:
        counts[imp.dylib] = counts.get(imp.dylib, 0) + 1
    return counts


def verify(
    path: Path,
    policy: Policy,
    dsym: Path | None = None,
    parser: str = "auto",
    profile: VerifyProfile = VerifyProfile.APP_STORE,
) -> VerifyReport:
    """Inspect, apply the linkage/signature policy and, with `dsym`, match its UUIDs; the
    developer-id profile adds notarization readiness (llamabuild/inspect/developer_id.py)."""
    binary = inspect_binary(path, parser)
    findings = check(binary, policy)
    if binary.format is BinaryFormat.MACHO:  # every CodeDirectory's hashes against the file
        from llamabuild.inspect.integrity import integrity_findings

        findings += integrity_findings(path)
        if profile is VerifyProfile.DEVELOPER_ID:
            from llamabuild.inspect.developer_id import check_developer_id

            findings += check_developer_id(path)
    if dsym is not None:
        from llamabuild.inspect.dsym import check_dsym

        findings += check_dsym(binary, dsym)
    return VerifyReport(binary=binary, findings=findings)
