"""What a build will do, as data: the options, each slice's argv and cache entries, the whole
plan, and the `build --dry-run --json` model.

Apart from builder/plan.py (which computes a plan) so the modules that fill in parts of it
(reproducible.py, remote_cache.py) import the types without importing the planner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llamabuild.config.recipes import CacheValue, Recipe, cmake_literal
from llamabuild.core.jsonout import to_jsonable
from llamabuild.core.redact import redact_url
from llamabuild.source import SourceTree


@dataclass(frozen=True)
class Options:
    dist_root: Path
    build_root: Path
    cache_root: Path
    jobs: int | None = None
    ccache: bool = True
    ccache_remote: RemoteSetting | None = None  # builder/remote_cache.resolve
    zig_base: Path | None = None  # where zig's private root lives (builder/zigroot.py)

    @property
    def zig_home(self) -> Path:
        """$LLAMABUILD_ZIG_ROOT when set (zig_base), else `<cache root>/zig`."""
        return self.zig_base or self.cache_root / "zig"


@dataclass
class SlicePlan:
    recipe: Recipe
    build_dir: Path
    entries: dict[str, CacheValue]
    configure_argv: list[str]
    build_argv: list[str]
    env: dict[str, str]
    toolchain_file: Path | None = None

    @property
    def init_cache(self) -> Path:
        return self.build_dir / "llamabuild-init-cache.cmake"

    @property
    def log_path(self) -> Path:
        return self.build_dir / "llamabuild.log"

    def report(self) -> SliceReport:
        return SliceReport(
            recipe=self.recipe.name,
            arch=self.recipe.archs[0] if len(self.recipe.archs) == 1 else None,
            build_dir=self.build_dir,
            init_cache=self.init_cache,
            cache_entries={k: cmake_literal(v) for k, v in sorted(self.entries.items())},
            toolchain_file=self.toolchain_file,
            configure_argv=tuple(self.configure_argv),
            build_argv=tuple(self.build_argv),
            env=self.env,
            log=self.log_path,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self.report())
        return data


@dataclass(frozen=True)
class SliceReport:
    """One slice of `build --dry-run --json`: where it builds, its final entries, exact argv."""

    recipe: str
    arch: str | None
    build_dir: Path
    init_cache: Path
    cache_entries: dict[str, str]
    toolchain_file: Path | None
    configure_argv: tuple[str, ...]
    build_argv: tuple[str, ...]
    env: dict[str, str]
    log: Path


@dataclass(frozen=True)
class DryRunOutput:
    """`llamabuild build --dry-run --json`: everything `build` would run, nothing run."""

    ok: Literal[True]
    dry_run: Literal[True]
    recipe: Recipe
    source: SourceTree
    dist: Path
    versions: dict[str, str]
    inputs_key: str
    slices: tuple[SliceReport, ...]


@dataclass
class BuildPlan:
    recipe: Recipe
    source: SourceTree
    slices: list[SlicePlan]
    options: Options
    versions: dict[str, str]
    inputs_key: str = ""

    @property
    def dist_dir(self) -> Path:
        return self.options.dist_root / self.recipe.name

    def report(self) -> DryRunOutput:
        return DryRunOutput(
            ok=True,
            dry_run=True,
            recipe=self.recipe,
            source=self.source,
            dist=self.dist_dir,
            versions=self.versions,
            inputs_key=self.inputs_key,
            slices=tuple(s.report() for s in self.slices),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self.report())
        return data


@dataclass(frozen=True)
class RemoteSetting:
    """The remote chosen for a build (None: none) and where it came from."""

    url: str | None
    origin: str

    @property
    def shown(self) -> str | None:
        return redact_url(self.url) if self.url else None
