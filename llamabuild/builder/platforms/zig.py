"""zig as a cross toolchain (PyPI `ziglang`): a CMake toolchain file in the build dir, a
private zig root (builder/zigroot.py), and ccache comparing the compiler by content (zig's
wrappers are scripts whose mtime says nothing)."""

from __future__ import annotations

from pathlib import Path

from llamabuild.tools.runner import Runner
from llamabuild.tools.zig import Zig

TOOLCHAIN_FILE = "zig-toolchain.cmake"


class ZigToolchain:
    native = False
    uses_zig_root = True

    def ccache_env(self) -> dict[str, str]:
        return {"CCACHE_COMPILERCHECK": "content"}

    def tool_versions(self, runner: Runner) -> dict[str, str]:
        return {"zig": Zig(runner).version()}

    def toolchain_file(self, build_dir: Path) -> Path | None:
        return build_dir / TOOLCHAIN_FILE
