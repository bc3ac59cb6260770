"""The `doctor --json` output models, apart from llamabuild.outputs_common: `build` asks doctor whether
the host can build a recipe before every build, and must not pay for every command's models."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from llamabuild.core.findings import FindingOutput


class ToolRole(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True)
class ToolStatus:
    """One tool `doctor` looked for: where and which version, what lacks without it."""

    tool: str
    label: str
    found: bool
    path: str | None
    version: str | None
    detail: str | None
    affects: str
    hint: str


@dataclass(frozen=True)
class ToolOutput(ToolStatus):
    """One tool `doctor` looked for, and its role in the recipe: what lacks without it."""

    role: ToolRole


@dataclass(frozen=True)
class HostOutput:
    system: str
    machine: str


@dataclass(frozen=True)
class DoctorOutput:
    """`llamabuild doctor --json`: the tools a recipe needs, found or how to install them."""

    ok: bool
    recipe: str
    runnable: bool
    host: HostOutput
    tools: tuple[ToolOutput, ...]
    recipes: dict[str, bool]
    findings: tuple[FindingOutput, ...]
