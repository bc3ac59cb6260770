"""The `--json` model of `llamabuild privacy-manifest` (its own module: the command loads only
this, not every command's output model)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PrivacyCategoryOutput:
    """One required-reason API category the binary imports."""

    type: str
    """NSPrivacyAccessedAPIType, e.g. NSPrivacyAccessedAPICategoryFileTimestamp."""
    name: str
    symbols: tuple[str, ...]
    """The imported symbols (as linked) that put the binary in this category."""
    reasons: tuple[str, ...]
    """The reason codes declared for it (from llamabuild.toml [privacy].reasons)."""
    source: str


@dataclass(frozen=True)
class PrivacyManifestOutput:
    """`llamabuild privacy-manifest --json`: the categories found and the manifest written."""

    binary: Path
    ok: bool
    categories: tuple[PrivacyCategoryOutput, ...]
    output: Path | None
    """The file written (atomically), or null when it went to stdout only."""
    manifest: str
    """The PrivacyInfo.xcprivacy XML, validated as a plist and by verify-app's check."""
