"""Open untrusted input safely: regular files only, mapped read-only, never read whole.

A FIFO would block `open()` forever and a device (/dev/zero) never ends, so paths are checked
with stat() first and the opened descriptor again with fstat() (the path may be swapped in
between); O_NONBLOCK keeps even that window from hanging. The file is then mmap'd: parsers
touch only the pages they read (headers, load commands, the ranges those point at), so a 5 GB
file costs what its headers cost.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llamabuild.core.errors import LOOP_HINT, InputError

HASH_CHUNK = 8 << 20


def hash_mapped(
    mm: mmap.mmap | bytes,
    ctor: Callable[[], Any] = hashlib.sha256,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """The hash object (`ctor`) of the mapped file, fed in 8 MiB steps; each step's pages are
    dropped after it (MADV_DONTNEED), so hashing a 20 GB model or a 3 GB sparse Info.plist
    costs 8 MiB of resident memory, not the file's size."""
    h = ctor()
    size = len(mm)
    view = memoryview(mm)
    drop = getattr(mmap, "MADV_DONTNEED", None)
    advise: Any = getattr(mm, "madvise", None)
    if advise is not None and hasattr(mmap, "MADV_SEQUENTIAL"):
        advise(mmap.MADV_SEQUENTIAL)
    try:
        for start in range(0, size, HASH_CHUNK):
            end = min(start + HASH_CHUNK, size)
            h.update(view[start:end])
            if advise is not None and drop is not None:
                advise(drop, start, end - start)
            if progress is not None:
                progress(end, size)
    finally:
        view.release()
    return h


def file_kind(mode: int) -> str:
    """'a directory', 'a FIFO', ... for an lstat/stat mode (for one-line messages)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def require_file(path: Path, hint: str) -> None:
    """InputError (with `hint`) unless `path` is a regular file; nothing is opened."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise path_error(path, exc) from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: {file_kind(mode)}, not a regular file", hint=hint)


def path_error(path: Path, exc: OSError, noun: str = "file") -> InputError:
    """The one-line InputError, with a hint, for a failed stat() or open() of a user's path."""
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return InputError(
            f"{path}: no such {noun}", hint="check the path (quote it if it has spaces)"
        )
    if exc.errno == errno.ELOOP:
        return InputError(f"{path}: cannot read (symlink loop)", hint=LOOP_HINT)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputError(
            f"{path}: cannot read (permission denied)", hint="check the file's permissions"
        )
    return InputError(f"{path}: cannot read ({exc.strerror})", hint="check the path")


def _refuse_mode(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise InputError(
            f"{path}: is a directory, not a binary",
            hint="for an app bundle use `llamabuild verify-app`; else name the executable",
        )
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(
            f"{path}: {kind}, not a regular file",
            hint="pass the binary file itself (copy it out of the pipe or device first)",
        )


def require_regular(path: Path) -> None:
    """InputError unless `path` is a regular file (after symlinks), without opening it."""
    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise path_error(path, exc) from None
    _refuse_mode(path, mode)


@contextmanager
def open_mapped(path: Path) -> Iterator[mmap.mmap]:
    """The regular file at `path`, mapped read-only; InputError for every way it can be wrong."""
    require_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise path_error(path, exc) from None
    try:
        st = os.fstat(fd)
        _refuse_mode(path, st.st_mode)  # swapped for a FIFO after the stat() above
        if st.st_size == 0:
            raise InputError(f"{path}: empty file", hint="the build or copy that made it failed")
        try:
            mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot map the file ({exc})", hint="check the path") from exc
    finally:
        os.close(fd)
    try:
        yield mm
    finally:
        mm.close()
