"""The zig link launcher (CMAKE_<LANG>_LINKER_LAUNCHER of the zig recipes).

zig's Mach-O linker writes every object's absolute path and mtime into the N_OSO debug map and
takes neither `-oso_prefix` nor ZERO_AR_DATE; with the same paths, mtimes and output name its
output is byte-identical. So before the link, each object file named on the command line is
copied to the link dir (builder/reproducible.zig_link_dir, under the zig root that
builder/zigroot.py later rewrites to a canonical path) with its mtime set to SOURCE_DATE_EPOCH,
each archive gets a symlink there (zig keeps absolute paths as given, and `ar D` already zeroed
the member times), and the link runs on those paths. dsymutil later reads the objects there.

zig builds its libc++ on the first link that needs the variant (the optimize mode), from that
link's cwd, which lands in the debug map. So the launcher first links a trivial program with the
link's own variant flags from the one prime dir: whichever build comes first, libc++ was built
from there.

Usage (written by the planner, run by ninja in the build dir):
    python .../llamabuild/builder/ziglink.py LINK_DIR EPOCH PRIME_DIR COMPILER ARGS...
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

OBJECT_SUFFIXES = (".o", ".obj")
ARCHIVE_SUFFIXES = (".a",)
# The smallest C++ program: linking it makes zig build its libc++/libc++abi into the cache.
PRIME_SOURCE = "int main() { return 0; }\n"
# Flags that can choose zig's libc++ variant (optimize mode, debug info, target, codegen);
# linker inputs, -o, -l, -L and -Wl are left out.
VARIANT_PREFIXES = ("-O", "-g", "-f", "-m", "--target=", "-s")
PAIRED = ("-target",)


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


def variant_flags(args: list[str]) -> list[str]:
    """The flags of a link that can change which libc++ zig builds for it."""
    out: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in PAIRED:
            out += [arg, next(it, "")]
        elif arg.startswith(VARIANT_PREFIXES) and not arg.startswith("-Wl"):
            out.append(arg)
    return out


def prime(cxx: Path, flags: list[str], prime_dir: Path, env: dict[str, str] | None = None) -> None:
    """Link PRIME_SOURCE with `flags` from `prime_dir` (one at a time: a lock), so zig's
    libc++ for that variant is built from there. Seconds when it is already cached."""
    prime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    source = prime_dir / "prime.cpp"
    with (prime_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel slices and builds: one at a time
        if not source.is_file() or source.read_text() != PRIME_SOURCE:
            _replace_with(source, lambda tmp: tmp.write_text(PRIME_SOURCE))
        with tempfile.TemporaryDirectory(dir=prime_dir) as out:
            argv = [str(cxx), *flags, source.name, "-o", str(Path(out) / "prime")]
            subprocess.run(argv, cwd=prime_dir, env=env, check=True, stdout=subprocess.DEVNULL)


def _cxx_of(compiler: str) -> Path | None:
    """The zig C++ wrapper beside the link's compiler (a C link needs libc++ primed too only
    when it is C++; the wrappers live side by side: tools/zig.write_toolchain)."""
    path = Path(compiler)
    cxx = path if path.name.endswith("c++") else path.with_name("zig-c++")
    return cxx if cxx.is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or not args[1].isdigit():
        print("usage: ziglink.py LINK_DIR EPOCH PRIME_DIR COMPILER ARGS...", file=sys.stderr)
        return 2
    link_dir, epoch, prime_dir, cmd = Path(args[0]), int(args[1]), Path(args[2]), args[3:]
    cxx = _cxx_of(cmd[0])
    if cxx is not None:
        try:
            prime(cxx, variant_flags(cmd[1:]), prime_dir)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"error: cannot build zig's libc++ in {prime_dir}: {exc}", file=sys.stderr)
            return 1
    cwd = Path.cwd()
    staged = [cmd[0], *(stage(a, cwd, link_dir, epoch) for a in cmd[1:])]
    os.execv(staged[0], staged)  # noqa: S606 - the compiler CMake configured, argv as given
    return 127  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
