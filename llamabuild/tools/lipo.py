"""lipo (Apple) or llvm-lipo: join per-arch slices into one universal binary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llamabuild.tools.runner import Runner, find_tool

NAMES = ("lipo", "llvm-lipo-19", "llvm-lipo")


def create_argv(lipo: Path, inputs: Sequence[Path], output: Path) -> list[str]:
    return [str(lipo), "-create", *(str(p) for p in inputs), "-output", str(output)]


def parse_archs(text: str) -> tuple[str, ...]:
    return tuple(text.split())


class Lipo:
    def __init__(self, runner: Runner, exe: Path | None = None) -> None:
        self.runner = runner
        self._exe = exe

    @property
    def exe(self) -> Path:
        if self._exe is None:
            self._exe = find_tool(list(NAMES), hint="on Linux: apt-get install llvm-19")
        return self._exe

    def create(self, inputs: Sequence[Path], output: Path) -> Path:
        self.runner.run(create_argv(self.exe, inputs, output))
        return output

    def archs(self, path: Path) -> tuple[str, ...]:
        return parse_archs(self.runner.run([self.exe, "-archs", str(path)]).stdout)
