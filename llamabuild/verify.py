"""`verify`: inspection + policy (+ later dSYM and signature checks) into one report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.findings import Finding, has_errors
from llamabuild.inspect import Binary, Slice, inspect_binary
from llamabuild.inspect.policy import Policy, check


@dataclass
class VerifyReport:
    binary: Binary
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_json(self, symbols: bool = False) -> dict[str, Any]:
        return {
            "path": str(self.binary.path),
            "format": self.binary.format,
            "ok": self.ok,
            "fat": self.binary.fat,
            "slices": [
                slice_json(s, symbols, macho=self.binary.format == "macho")
                for s in self.binary.slices
            ],
            "findings": [f.to_json() for f in self.findings],
        }


def import_counts(s: Slice) -> dict[str, int]:
    """dylib (or special lookup) -> how many symbols the slice imports from it."""
    counts: dict[str, int] = {}
    for imp in s.imports:
        counts[imp.dylib] = counts.get(imp.dylib, 0) + 1
    return counts


def slice_json(s: Slice, symbols: bool = False, macho: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "arch": s.arch,
        "filetype": s.filetype,
        "uuid": s.uuid,
        "minos": s.minos,
        "sdk": s.sdk,
        "dylibs": [{"name": d.name, "kind": d.kind} for d in s.dylibs],
        "rpaths": list(s.rpaths),
        "signed": s.signed,
    }
    if macho:  # what dyld must bind at launch
        out["imports"] = import_counts(s)
        if symbols:
            out["symbols"] = [{"name": i.name, "dylib": i.dylib, "weak": i.weak} for i in s.imports]
    if s.signature is not None:
        sig = s.signature
        out["signature"] = {
            "identifier": sig.identifier,
            "flags": list(sig.flags),
            "adhoc": sig.adhoc,
            "linker_signed": sig.linker_signed,
            "team_id": sig.team_id,
            "entitlements": sig.entitlements,
        }
    if s.interpreter is not None:
        out["interpreter"] = s.interpreter
    return out


def verify(
    path: Path, policy: Policy, dsym: Path | None = None, parser: str = "auto"
) -> VerifyReport:
    """Inspect, apply the linkage/signature policy and, with `dsym`, match its UUIDs."""
    binary = inspect_binary(path, parser)
    findings = check(binary, policy)
    if dsym is not None:
        from llamabuild.dsym import check_dsym

        findings += check_dsym(binary, dsym)
    return VerifyReport(binary=binary, findings=findings)
