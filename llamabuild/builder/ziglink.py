"""The zig link launcher (CMAKE_<LANG>_LINKER_LAUNCHER of the zig recipes).

zig's Mach-O linker writes every object's absolute path and mtime into the N_OSO debug map and
takes neither `-oso_prefix` nor ZERO_AR_DATE; with the same paths, mtimes and output name its
output is byte-identical. So before the link, each object file named on the command line is
copied to the fixed link dir (builder/reproducible.zig_link_dir) with its mtime set to
SOURCE_DATE_EPOCH, each archive gets a symlink there (zig keeps absolute paths as given, and
`ar D` already zeroed the member times), and the link runs on those paths. dsymutil later
reads the objects at the same paths.

Usage (written by the planner, run by ninja in the build dir):
    python .../llamabuild/builder/ziglink.py LINK_DIR EPOCH COMPILER ARGS...
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

OBJECT_SUFFIXES = (".o", ".obj")
ARCHIVE_SUFFIXES = (".a",)


def _replace_with(dest: Path, make: Callable[[Path], object]) -> None:
    """Create `dest` atomically: build it beside, then rename over (concurrent links agree)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ziglink-", dir=dest.parent)) / dest.name
    try:
        make(tmp)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def stage(arg: str, cwd: Path, link_dir: Path, epoch: int) -> str:
    """The path to pass zig for one link argument (unchanged unless it is an input file)."""
    if arg.startswith("-") or not arg.endswith(OBJECT_SUFFIXES + ARCHIVE_SUFFIXES):
        return arg
    path = Path(arg) if Path(arg).is_absolute() else cwd / arg
    if not path.is_file() or not path.is_relative_to(cwd):
        return arg  # zig's own libraries and anything outside the build tree stay
    dest = link_dir / path.relative_to(cwd)
    if arg.endswith(OBJECT_SUFFIXES):

        def copy(tmp: Path) -> None:
            shutil.copyfile(path, tmp)
            os.utime(tmp, (epoch, epoch))

        _replace_with(dest, copy)
    else:
        _replace_with(dest, lambda tmp: tmp.symlink_to(path))
    return str(dest)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or not args[1].isdigit():
        print("usage: ziglink.py LINK_DIR EPOCH COMPILER ARGS...", file=sys.stderr)
        return 2
    link_dir, epoch, cmd = Path(args[0]), int(args[1]), args[2:]
    cwd = Path.cwd()
    staged = [cmd[0], *(stage(a, cwd, link_dir, epoch) for a in cmd[1:])]
    os.execv(staged[0], staged)  # noqa: S606 - the compiler CMake configured, argv as given
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
