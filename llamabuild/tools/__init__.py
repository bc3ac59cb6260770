"""External programs: one runner (runner.py), and one adapter class per tool.

Every adapter has the same shape:

- one class per program, deriving from `Tool` (runner.py): `names` and `hint` say how to find
  it, and `find()` is overridden only where it lives elsewhere (a PyPI package's folder, `xcrun`
  on a Mac). The program is found on first use (`exe`), never at import or construction; tests
  pin it with `exe=`;
- pure module-level functions build each exact argv (`*_argv`, shown by --dry-run, asserted by
  tests) and parse each output (`parse_*`, fed recorded output by tests); they never run
  anything;
- the class's methods run those argv through `self.runner` (the one subprocess wrapper) and hand
  the output to the parsers.

The rcodesign engine is the one adapter that is not a program: it runs in-process (see
tools/rcodesign.py) but keeps the same shape.
"""

from __future__ import annotations

from pathlib import Path

from llamabuild.tools.runner import Tool, find_tool, which

XCODE_HINT = "on macOS install the Xcode command line tools (xcode-select --install); "


class XcrunTool(Tool):
    """An Xcode tool: `xcrun NAME` on a Mac (Xcode's copy), else the first of `names` (LLVM)."""

    xcrun_name: str = ""

    def find(self) -> Path:
        return which(["xcrun"]) or find_tool(self.names, self.hint)

    @property
    def apple(self) -> bool:
        return self.exe.name == "xcrun"

    @property
    def prefix(self) -> tuple[str, ...]:
        """The argv prefix: ("/usr/bin/xcrun", "dsymutil") or ("/usr/bin/dsymutil-19",)."""
        return (str(self.exe), self.xcrun_name) if self.apple else (str(self.exe),)
