"""Every check yields findings; one rule turns them into an exit code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llamabuild.core import rules
from llamabuild.core.jsonout import OMIT_NONE


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    arch: str | None = None
    path: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict: 40,000 findings took 2 s through asdict.
        data: dict[str, Any] = {"rule": self.rule, "severity": self.severity.value}
        data["message"] = self.message
        data["arch"] = self.arch
        for key in ("path", "hint"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


def error(rule: str, message: str, **kw: Any) -> Finding:
    """An error finding; `rule` must be registered as an error (llamabuild/data/rules.toml)."""
    rules.check(rule, Severity.ERROR.value)
    return Finding(rule, Severity.ERROR, message, **kw)


def warning(rule: str, message: str, **kw: Any) -> Finding:
    """A warning finding; `rule` must be registered as a warning (llamabuild/data/rules.toml)."""
    rules.check(rule, Severity.WARNING.value)
    return Finding(rule, Severity.WARNING, message, **kw)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when nothing is an error, 1 otherwise (the policy/verification exit code)."""
    return 1 if has_errors(findings) else 0


@dataclass(frozen=True)
class FindingOutput:
    """The `--json` shape of a Finding: rule id (docs/rules.md), severity, message; path and
    hint when known. Here, not in outputs.py, so build's manifest gets it without loading every
    command's output model."""

    rule: str
    severity: Severity
    message: str
    arch: str | None
    path: str | None = field(default=None, metadata=OMIT_NONE)
    hint: str | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def of(cls, f: Finding) -> FindingOutput:
        return cls(f.rule, f.severity, f.message, f.arch, f.path, f.hint)


def findings_output(findings: Sequence[Finding]) -> tuple[FindingOutput, ...]:
    return tuple(FindingOutput.of(f) for f in findings)
