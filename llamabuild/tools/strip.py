"""strip adapter: `xcrun strip` on a Mac, llvm-strip elsewhere.

GNU strip (Linux's `strip`) cannot read Mach-O, so the LLVM names are tried first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llamabuild.tools import XCODE_HINT, XcrunTool
from llamabuild.tools.runner import Result


def strip_debug_argv(prefix: Sequence[str], binary: Path, output: Path) -> list[str]:
    """`strip -S`: drop the debug symbols (the debug map), keep the symbol table."""
    return [*prefix, "-S", "-o", str(output), str(binary)]


class Strip(XcrunTool):
    xcrun_name = "strip"
    names = ("llvm-strip-19", "llvm-strip", "strip")
    hint = XCODE_HINT + "on Debian/Ubuntu: apt-get install llvm-19 (provides llvm-strip-19)"

    def strip_debug(self, binary: Path, output: Path) -> Result:
        return self.runner.run(strip_debug_argv(self.prefix, binary, output))
