"""`llamabuild rebuild --json`: the rebuilt outputs against what the manifest recorded."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from llamabuild.core.findings import FindingOutput


class CompilerCache(StrEnum):
    """What the rebuild compiled with: `empty` (the default: every object compiled again, a
    real proof) or `warm` (`--warm-cache`: the user's ccache and zig cache, a fast relink)."""

    EMPTY = "empty"
    WARM = "warm"


@dataclass(frozen=True)
class ToolDrift:
    """A tool whose version here differs from the manifest's."""

    tool: str
    manifest: str | None
    here: str | None


@dataclass(frozen=True)
class RebuildOutput:
    """`llamabuild rebuild --json`: ok when the bytes, the UUIDs and the dSYM all match."""

    ok: bool
    manifest: Path
    recipe: str
    published: bool
    dist: Path | None
    binary: Path | None
    dsym: Path | None
    sha256: str | None
    expected_sha256: str | None
    uuids: dict[str, str | None]
    expected_uuids: dict[str, str | None]
    dsym_uuids: dict[str, str | None]
    tool_drift: tuple[ToolDrift, ...]
    compiler_cache: CompilerCache
    duration_s: float
    findings: tuple[FindingOutput, ...]
