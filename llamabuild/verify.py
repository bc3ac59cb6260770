"""`verify`: inspection + policy (+ later dSYM and signature checks) into one report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.findings import Finding, has_errors
from llamabuild.inspect import Binary, inspect_binary
from llamabuild.inspect.policy import Policy, check


@dataclass
class VerifyReport:
    binary: Binary
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.binary.path),
            "format": self.binary.format,
            "ok": self.ok,
            "fat": self.binary.fat,
            "slices": [slice_json(s) for s in self.binary.slices],
            "findings": [f.to_json() for f in self.findings],
        }


def slice_json(s: Any) -> dict[str, Any]:
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
