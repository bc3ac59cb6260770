"""dsymutil adapter: `xcrun dsymutil` on a Mac, an LLVM dsymutil elsewhere.

LLVM's dsymutil merges the slices of a fat dSYM by running `lipo`; on Linux only llvm-lipo
exists, so a one-entry PATH shim named `lipo` is offered to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llamabuild.tools.runner import Result, Runner, which, xcrun_or

NAMES = ("dsymutil", "dsymutil-19", "llvm-dsymutil")
LIPO_NAMES = ("llvm-lipo-19", "llvm-lipo")
INSTALL_HINT = (
    "on macOS install the Xcode command line tools (xcode-select --install); "
    "on Debian/Ubuntu: apt-get install llvm-19 (provides dsymutil-19)"
)


@dataclass(frozen=True)
class Dsymutil:
    """One dsymutil command line; `prefix` is ("xcrun", "dsymutil") or (path-to-dsymutil,)."""

    runner: Runner
    prefix: tuple[str, ...]

    @property
    def apple(self) -> bool:
        return Path(self.prefix[0]).name == "xcrun"

    @classmethod
    def locate(cls, runner: Runner) -> Dsymutil:
        return cls(runner, xcrun_or("dsymutil", NAMES, INSTALL_HINT))

    def argv(self, binary: Path, output: Path) -> list[str]:
        return [*self.prefix, str(binary), "-o", str(output)]

    def run(self, binary: Path, output: Path) -> Result:
        """Run it; a non-zero exit is the caller's to judge (check=False)."""
        with self._lipo_env() as env:
            return self.runner.run(self.argv(binary, output), env=env, check=False)

    @contextmanager
    def _lipo_env(self) -> Iterator[dict[str, str] | None]:
        if self.apple or which(["lipo"]) is not None:
            yield None
            return
        lipo = which(LIPO_NAMES)
        if lipo is None:  # thin binaries never need it; a fat one fails with dsymutil's message
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="llamabuild-lipo-") as shim:
            (Path(shim) / "lipo").symlink_to(lipo)
            yield {"PATH": os.pathsep.join([shim, os.environ.get("PATH", "")])}


def warnings(result: Result) -> list[str]:
    """dsymutil's `warning:` lines (missing object files, no debug symbols), deduplicated."""
    seen: list[str] = []
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        text = line.strip()
        if text.startswith("warning:") and text not in seen:
            seen.append(text)
    return seen
