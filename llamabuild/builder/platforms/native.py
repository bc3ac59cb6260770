"""The host's own compilers ($CC/$CXX, else cc/c++): Xcode's clang on a Mac, gcc on Linux."""

from __future__ import annotations

import os
from pathlib import Path

from llamabuild.tools.runner import Runner, which


def compiler_version(runner: Runner, env_var: str, default: str) -> str:
    exe = os.environ.get(env_var) or default
    found = which([exe])
    if found is None:
        return "not found"
    result = runner.run([found, "--version"], check=False)
    first = (result.stdout or result.stderr).strip().splitlines()
    return f"{found}: {first[0] if first else 'unknown'}"


class NativeToolchain:
    native = True
    uses_zig_root = False

    def ccache_env(self) -> dict[str, str]:
        return {}

    def tool_versions(self, runner: Runner) -> dict[str, str]:
        return {
            "cc": compiler_version(runner, "CC", "cc"),
            "cxx": compiler_version(runner, "CXX", "c++"),
        }

    def toolchain_file(self, build_dir: Path) -> Path | None:
        return None
