"""Where a build differs by target OS or by toolchain: one module each, one place that picks.

- linux.py, macos.py: the target (verify's policy, the languages, the dSYM, flags a target's
  linker refuses, what its own linker and archiver need to be reproducible);
- native.py, zig.py: the toolchain (the versions recorded, ccache's compiler check, the CMake
  toolchain file, zig's private root).

`for_recipe` is the only code that reads a recipe's `platform` and `toolchain`; the planner,
the runner and the reproducibility module ask the BuildPlatform it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llamabuild.builder.platforms.linux import LinuxTarget
from llamabuild.builder.platforms.macos import MacosTarget
from llamabuild.builder.platforms.native import NativeToolchain
from llamabuild.builder.platforms.zig import ZigToolchain
from llamabuild.config.domain import Platform, Toolchain
from llamabuild.config.recipes import Recipe
from llamabuild.core.findings import Finding
from llamabuild.inspect.policy import Policy
from llamabuild.tools.runner import Runner


class Target(Protocol):
    @property
    def languages(self) -> tuple[str, ...]: ...

    @property
    def makes_dsym(self) -> bool: ...

    @property
    def native_archives_reproducible(self) -> bool: ...

    def policy(self, recipe: Recipe) -> Policy: ...

    def refused_flags(self, recipe: Recipe) -> list[Finding]: ...

    def tool_versions(self, runner: Runner) -> dict[str, str]: ...

    def native_link_flags(self, build_root: Path) -> list[str]: ...

    def native_oso_prepend(self, build_root: Path) -> Path | None: ...


class BuildToolchain(Protocol):
    @property
    def native(self) -> bool: ...

    @property
    def uses_zig_root(self) -> bool: ...

    def ccache_env(self) -> dict[str, str]: ...

    def tool_versions(self, runner: Runner) -> dict[str, str]: ...

    def toolchain_file(self, build_dir: Path) -> Path | None: ...


@dataclass(frozen=True)
class BuildPlatform:
    """A recipe's target and toolchain, and the decisions that need both."""

    target: Target
    toolchain: BuildToolchain

    def tool_versions(self, runner: Runner) -> dict[str, str]:
        """What the manifest records beside cmake's: the target's and the toolchain's tools."""
        return {**self.target.tool_versions(runner), **self.toolchain.tool_versions(runner)}

    @property
    def archive_rules(self) -> bool:
        """Static libraries need llamabuild's deterministic archive rules, unless the native
        archiver is already reproducible (Apple's, with ZERO_AR_DATE)."""
        return not (self.toolchain.native and self.target.native_archives_reproducible)

    def link_flags(self, build_root: Path) -> Sequence[str]:
        """Reproducibility flags for the native linker of the target (Apple's ld64)."""
        return self.target.native_link_flags(build_root) if self.toolchain.native else ()

    def oso_prepend(self, build_root: Path) -> Path | None:
        """The dir dsymutil puts before the relative N_OSO paths `-oso_prefix` left."""
        return self.target.native_oso_prepend(build_root) if self.toolchain.native else None


TARGETS: dict[Platform, Target] = {Platform.LINUX: LinuxTarget(), Platform.MACOS: MacosTarget()}
TOOLCHAINS: dict[Toolchain, BuildToolchain] = {
    Toolchain.NATIVE: NativeToolchain(),
    Toolchain.ZIG: ZigToolchain(),
}


def for_recipe(recipe: Recipe) -> BuildPlatform:
    return BuildPlatform(TARGETS[recipe.platform], TOOLCHAINS[recipe.toolchain])
