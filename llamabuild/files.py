"""File helpers every stage shares: hashing in chunks, and writes that are never half done."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


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
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A file handle whose content replaces `path` only when the block ends without error.

    Written beside the target, then renamed: a reader never sees half a file. Missing parent
    folders are created (like `mkdir -p`), and the file gets the mode any new file gets (0666
    minus the umask), not mkstemp's owner-only 0600. On any exception the temp file is removed
    and the exception propagates; callers turn OSError into their one-line error.
    """
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            yield fh
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        tmp.replace(path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """`data` to `path` through open_atomic (the one write-then-rename of the package)."""
    with open_atomic(path) as fh:
        fh.write(data)
