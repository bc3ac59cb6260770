"""Every check yields findings; one rule turns them into an exit code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llamabuild.core import rules
from llamabuild.core.jsonout import ALWAYS, OMIT_NONE


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One thing a check found, and its own `--json` shape: rule id (docs/rules.md), severity,
    message; path and hint when known."""

    rule: str
    severity: Severity
    message: str
    arch: str | None = field(default=None, metadata=ALWAYS)
    path: str | None = field(default=None, metadata=OMIT_NONE)
    hint: str | None = field(default=None, metadata=OMIT_NONE)


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
