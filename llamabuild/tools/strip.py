"""strip adapter: `xcrun strip` on a Mac, llvm-strip elsewhere.

GNU strip (Linux's `strip`) cannot read Mach-O, so the LLVM names are tried first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llamabuild.tools.runner import Result, Runner, xcrun_or

NAMES = ("llvm-strip-19", "llvm-strip", "strip")
INSTALL_HINT = (
    "on macOS install the Xcode command line tools (xcode-select --install); "
    "on Debian/Ubuntu: apt-get install llvm-19 (provides llvm-strip-19)"
)


@dataclass(frozen=True)
class Strip:
    runner: Runner
    prefix: tuple[str, ...]

    @classmethod
    def locate(cls, runner: Runner) -> Strip:
        return cls(runner, xcrun_or("strip", NAMES, INSTALL_HINT))

    def debug_argv(self, binary: Path, output: Path) -> list[str]:
        """`strip -S`: drop the debug symbols (the debug map), keep the symbol table."""
        return [*self.prefix, "-S", "-o", str(output), str(binary)]

    def strip_debug(self, binary: Path, output: Path) -> Result:
        return self.runner.run(self.debug_argv(binary, output))
