"""lipo (Apple) or llvm-lipo: join per-arch slices into one universal binary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llamabuild.tools.runner import Tool


def create_argv(lipo: Path, inputs: Sequence[Path], output: Path) -> list[str]:
    return [str(lipo), "-create", *(str(p) for p in inputs), "-output", str(output)]


class Lipo(Tool):
    names = ("lipo", "llvm-lipo-19", "llvm-lipo")
    hint = "on Linux: apt-get install llvm-19"

    def create(self, inputs: Sequence[Path], output: Path) -> Path:
        self.runner.run(create_argv(self.exe, inputs, output))
        return output
