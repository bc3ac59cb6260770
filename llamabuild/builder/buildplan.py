"""What a build will do, as data: the options, each slice's argv and cache entries, the whole
plan, and the `build --dry-run --json` model.

Apart from builder/plan.py (which computes a plan) so the modules that fill in parts of it
(reproducible.py, remote_cache.py) import the types without importing the planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llamabuild.config.recipes import CacheValue, Recipe, cmake_literal
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, json_view, model
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
    wait: bool = True  # another build holds the build dir or dist: wait (else exit 3)

    @property
    def zig_home(self) -> Path:
        """$LLAMABUILD_ZIG_ROOT when set (zig_base), else `<cache root>/zig`."""
        return self.zig_base or self.cache_root / "zig"


def _cache_entries(sl: SlicePlan) -> dict[str, str]:
    return {k: cmake_literal(v) for k, v in sorted(sl.entries.items())}


@model
class SlicePlan:
    """One slice of `build --dry-run --json`: where it builds, its final entries, exact argv."""

    recipe: Recipe = field(metadata=json_view(lambda sl: sl.recipe.name, str))
    arch: str | None = derived(lambda sl: sl.recipe.archs[0] if len(sl.recipe.archs) == 1 else None)
    build_dir: Path
    init_cache: Path = derived(lambda sl: sl.build_dir / "llamabuild-init-cache.cmake")
    cache_entries: dict[str, str] = derived(_cache_entries)
    toolchain_file: Path | None = field(default=None, metadata=ALWAYS)
    configure_argv: list[str] = field(default_factory=list, metadata=ALWAYS)
    build_argv: list[str] = field(default_factory=list, metadata=ALWAYS)
    env: dict[str, str] = field(default_factory=dict, metadata=ALWAYS)
    log: Path = derived(lambda sl: sl.build_dir / "llamabuild.log")
    entries: dict[str, CacheValue] = field(default_factory=dict, metadata=INTERNAL)


@model
class BuildPlan:
    """`llamabuild build --dry-run --json`: everything `build` would run, nothing run."""

    ok: Literal[True] = derived(lambda p: True)
    dry_run: Literal[True] = derived(lambda p: True)
    recipe: Recipe
    source: SourceTree
    options: Options = field(metadata=INTERNAL)
    dist: Path = derived(lambda p: p.dist_dir)
    versions: dict[str, str] = field(default_factory=dict, metadata=ALWAYS)
    inputs_key: str = field(default="", metadata=ALWAYS)
    slices: list[SlicePlan] = field(default_factory=list, metadata=ALWAYS)

    @property
    def dist_dir(self) -> Path:
        return self.options.dist_root / self.recipe.name


@dataclass(frozen=True)
class RemoteSetting:
    """The remote chosen for a build (None: none) and where it came from."""

    url: str | None
    origin: str

    @property
    def shown(self) -> str | None:
        return redact_url(self.url) if self.url else None
