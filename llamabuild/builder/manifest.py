"""manifest.json: what `build` published, typed. Written by builder/run.py, read back by the
no-op check and by the GitHub step summary; its JSON Schema is generated from these classes
(llamabuild/schemas/manifest.schema.json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

from llamabuild.config.domain import Count, Epoch, Name, PinKind, RelPath, SubDir
from llamabuild.config.recipes import Recipe
from llamabuild.config.settings import from_mapping
from llamabuild.core import github
from llamabuild.core.errors import ConfigError, UsageError
from llamabuild.core.files import write_atomic
from llamabuild.core.findings import Finding
from llamabuild.core.jsonout import OMIT_NONE, dumps
from llamabuild.model.capabilities import PinCapabilities

MANIFEST = "manifest.json"
MANIFEST_SCHEMA: Final = 1


def summary_outputs(manifest: Manifest, root: Path | None = None) -> list[github.Output]:
    """The outputs a build manifest lists (paths joined to `root`, the dist dir, if given)."""
    result = []
    for entry in manifest.outputs:
        path = str(root / entry.path) if root is not None else entry.path
        known = {arch: u for arch, u in (entry.uuids or {}).items() if u}
        result.append(github.Output(path, entry.sha256, known))
    return result


def publish_summary(
    manifest: Manifest,
    findings: Sequence[Finding],
    title: str,
    root: Path | None = None,
) -> None:
    """Summary of a build from its manifest.json (paths relative to `root`, the dist dir)."""
    source = manifest.source
    extra = {"source": source.url} if source.url else {}
    if source.sha256:
        extra["archive sha256"] = source.sha256
    if manifest.ccache is not None:  # its remote URL is already redacted
        extra["ccache"] = manifest.ccache.describe()
    github.publish(
        title,
        findings,
        recipe=manifest.recipe,
        commit=source.commit,
        outputs=summary_outputs(manifest, root),
        extra=extra,
        default_file=str(root) if root else None,
    )


class OutputRole(StrEnum):
    BINARY = "binary"
    DSYM = "dsym"
    DSYM_DWARF = "dsym-dwarf"
    SBOM = "sbom"  # llama-server.cdx.json (llamabuild/provenance/sbom.py)
    NOTICES = "notices"  # THIRD_PARTY_NOTICES.txt
    CREDITS = "credits"  # Credits.html


@dataclass(frozen=True)
class ManifestSource:
    kind: PinKind
    url: str
    ref: str | None = None
    commit: str | None = None
    sha256: str | None = None
    subdir: SubDir = ""
    dirty: tuple[str, ...] = ()
    # SOURCE_DATE_EPOCH the build used (the commit time, or a fixed value for an archive).
    date_epoch: Epoch | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ManifestSlice:
    recipe: Name
    archs: tuple[Name, ...]
    cache_entries: dict[str, str]
    configure_argv: tuple[str, ...]
    build_argv: tuple[str, ...]
    # The resolved recipe this slice was planned from (`rebuild` needs no recipe file).
    spec: Recipe | None = field(default=None, metadata=OMIT_NONE)
    # ggml's embedded Metal kernels as CMake flattened them: kind -> sha256 of the text
    # (builder/metal_check.py); `verify --manifest` compares the binary's groups with it.
    metal_embed: dict[str, str] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ManifestOutput:
    """One published path (relative to dist/<recipe>); files carry sha256, size and mtime."""

    path: RelPath
    role: OutputRole
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    size: Count | None = field(default=None, metadata=OMIT_NONE)
    mtime_ns: Count | None = field(default=None, metadata=OMIT_NONE)
    uuids: dict[str, str | None] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ManifestVerify:
    ok: bool
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ManifestCcache:
    """This build's compiler-cache counters (ccache's own, zeroed when the build began);
    `remote` is the shared cache's URL with its credentials redacted, None when none was used."""

    local_hits: Count
    local_misses: Count
    compiled: Count
    remote: str | None = None
    remote_hits: Count = 0
    remote_misses: Count = 0
    remote_errors: Count = 0

    def describe(self) -> str:
        text = f"local {self.local_hits} hit(s) / {self.local_misses} miss(es)"
        if self.remote is not None:
            text += f"; remote {self.remote_hits} hit(s) / {self.remote_misses} miss(es)"
            text += f", {self.remote_errors} error(s) ({self.remote})"
        return text + f"; {self.compiled} compiled"


@dataclass(frozen=True)
class Manifest:
    """dist/<recipe>/manifest.json."""

    schema: Literal[1]
    recipe: Name  # `rebuild` publishes to OUT/<recipe>: never a path
    source: ManifestSource
    slices: tuple[ManifestSlice, ...]
    versions: dict[str, str]
    compilers: dict[str, Any]
    host: dict[str, str]
    outputs: tuple[ManifestOutput, ...]
    inputs_key: str
    verify: ManifestVerify
    built_at: str
    duration_s: float = 0.0
    ccache: ManifestCcache | None = field(default=None, metadata=OMIT_NONE)
    # What the pinned tree can load (llamabuild/model/capabilities.py), for verify-model.
    capabilities: PinCapabilities | None = field(default=None, metadata=OMIT_NONE)
    # `build --check-reproducible`: a second independent build gave the same bytes (or not).
    reproducible: bool | None = field(default=None, metadata=OMIT_NONE)
    # The resolved recipe (with llamabuild.toml and -D overrides): what `rebuild` builds.
    recipe_spec: Recipe | None = field(default=None, metadata=OMIT_NONE)

    def output(self, role: OutputRole) -> ManifestOutput | None:
        return next((o for o in self.outputs if o.role is role), None)


def write(path: Path, manifest: Manifest) -> None:
    write_atomic(path, dumps(manifest).encode("utf-8"))


MAX_BYTES: Final = 16 << 20
"""A real manifest is a few KB; anything past this is not one (and is never read whole)."""


def read(path: Path) -> Manifest:
    """manifest.json as a Manifest; ConfigError when missing, not a regular file (a FIFO never
    blocks), over MAX_BYTES, not JSON (nesting too deep included) or of another shape."""
    from llamabuild.core.mapped import open_mapped  # mmap + checks: only when reading

    hint = "pass the manifest.json `llamabuild build` wrote; rebuild to rewrite it"
    try:
        with open_mapped(path) as mm:
            if len(mm) > MAX_BYTES:
                raise ConfigError(f"{path}: over {MAX_BYTES >> 20} MiB, not a manifest", hint=hint)
            data = json.loads(mm[:].decode("utf-8"))
    except UsageError as exc:
        raise ConfigError(exc.message, hint=hint) from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: cannot read: {str(exc)[:200]}", hint=hint) from None
    return from_mapping(Manifest, data, str(path))
