"""diffoscope (PyPI `diffoscope`, optional): the byte-level detail of why two builds differ.

llamabuild's own section diff (inspect/sectiondiff.py) always names the differing sections;
diffoscope, when installed, adds a readable report beside it. Never required.
"""

from __future__ import annotations

from pathlib import Path

from llamabuild.core.errors import ToolError
from llamabuild.tools.runner import Tool, find_tool, python_scripts

# A report on two 100 MB binaries can take long; the section names never wait for it.
TIMEOUT_S = 600.0


def report_argv(exe: Path, first: Path, second: Path, out: Path) -> list[str]:
    return [str(exe), "--text", str(out), "--no-progress", str(first), str(second)]


class Diffoscope(Tool):
    names = ("diffoscope",)
    hint = "pip install diffoscope (optional: a detailed report of what differs)"

    def find(self) -> Path:
        return find_tool(self.names, self.hint, extra_dirs=python_scripts())

    def report(self, first: Path, second: Path, out: Path) -> Path | None:
        """Write diffoscope's text report to `out`; None when it is not installed or fails."""
        try:
            exe = self.exe
            self.runner.run(report_argv(exe, first, second, out), check=False, timeout=TIMEOUT_S)
        except ToolError:  # not installed (ToolNotFoundError), or timed out
            return None
        return out if out.is_file() else None
