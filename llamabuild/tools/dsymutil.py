"""dsymutil adapter: `xcrun dsymutil` on a Mac, an LLVM dsymutil elsewhere.

LLVM's dsymutil merges the slices of a fat dSYM by running `lipo`; on Linux only llvm-lipo
exists, so a one-entry PATH shim named `lipo` is offered to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llamabuild.tools import XCODE_HINT, XcrunTool
from llamabuild.tools.runner import Result, which

LIPO_NAMES = ("llvm-lipo-19", "llvm-lipo")


def dsymutil_argv(
    prefix: Sequence[str], binary: Path, output: Path, oso_prepend: Path | None = None
) -> list[str]:
    """`--oso-prepend-path` when the link used `-oso_prefix` (relative N_OSO paths)."""
    extra = [f"--oso-prepend-path={oso_prepend}"] if oso_prepend is not None else []
    return [*prefix, *extra, str(binary), "-o", str(output)]


def parse_warnings(text: str) -> list[str]:
    """dsymutil's `warning:` lines (missing object files, no debug symbols), deduplicated."""
    seen: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("warning:") and line not in seen:
            seen.append(line)
    return seen


class Dsymutil(XcrunTool):
    xcrun_name = "dsymutil"
    # The versioned LLVM first: the one ci/install.sh installs, whatever else /usr/bin has (an
    # unversioned dsymutil is whichever LLVM the distribution defaults to: 14 on Debian 12).
    names = ("dsymutil-19", "dsymutil", "llvm-dsymutil")
    hint = XCODE_HINT + "on Debian/Ubuntu: apt-get install llvm-19 (provides dsymutil-19)"

    def version(self) -> str:
        """Its first `--version` line (`LLVM version 19.1.7`; Apple's: `Apple LLVM …`)."""
        res = self.runner.run([*self.prefix, "--version"], check=False)
        lines = [x.strip() for x in (res.stdout or res.stderr).splitlines() if x.strip()]
        found = next((x for x in lines if "version" in x.lower()), lines[0] if lines else "")
        return found or "unknown"

    def run(self, binary: Path, output: Path, oso_prepend: Path | None = None) -> Result:
        """Run it in the binary's dir, naming it by file name: LLVM 18+ (and Xcode's) dsymutil
        writes the path it was given into the dSYM (`Contents/Resources/Relocations/<arch>/
        <name>.yml`, `binary-path:`), which must not hold where this build happened to be.
        A non-zero exit is the caller's to judge (check=False)."""
        name = binary.name if not binary.name.startswith("-") else f"./{binary.name}"
        argv = dsymutil_argv(self.prefix, Path(name), output.absolute(), oso_prepend)
        with self._lipo_env() as env:
            return self.runner.run(argv, env=env, check=False, cwd=binary.parent)

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
