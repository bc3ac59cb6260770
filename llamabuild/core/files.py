"""File helpers every stage shares: hashing in chunks, and writes that are never half done."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from llamabuild.core.errors import ToolError


def sha256_file(path: Path) -> str:
    """sha256 of a file, read 1 MiB at a time (a dSYM's DWARF file is ~140 MB)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """A temp path beside `path` that replaces it only when the block ends without error.

    For writers that want a file name (gguf's GGUFWriter); open_atomic is the same for a file
    handle. A reader never sees half a file. Missing parent folders are created, and the file
    gets `mode`, else the mode any new file gets (0666 minus the umask), not mkstemp's 0600.
    On any exception the temp file is removed and the exception propagates.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask() if mode is None else mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_atomic(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file handle whose content replaces `path` only when the block ends without error
    (atomic_path, opened for writing)."""
    with atomic_path(path, mode) as tmp, tmp.open("wb") as fh:
        yield fh


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """`data` to `path` through open_atomic (the one write-then-rename of the package)."""
    with open_atomic(path, mode) as fh:
        fh.write(data)


@contextmanager
def exclusive(
    path: Path, what: str, *, wait: bool = True, waiting: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on `path` (flock) for the block. Another holder: wait (telling
    `waiting` once who holds it), or with `wait=False` raise ToolError (exit 3) naming its pid.
    The kernel drops a dead holder's lock, so a stale lock file is simply taken over."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            if not wait:
                raise ToolError(
                    f"{what} is in use by another llamabuild (pid {holder})",
                    hint="wait for it to finish, or run again without --no-wait to queue",
                ) from None
            if waiting is not None:
                waiting(f"waiting for {what}: in use by llamabuild pid {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
