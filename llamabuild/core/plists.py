"""Property lists from untrusted files: one parser that turns every way plistlib can fail into
a ValueError with a one-line reason, so callers report a finding instead of a traceback.

plistlib raises several exception types on hostile input: InvalidFileException and ExpatError
as documented, but also RecursionError (a binary plist nested thousands deep) and its own
IndexError/KeyError/TypeError (an unknown XML encoding, a <key> with no value).
"""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from llamabuild.core.mapped import open_mapped, path_error, require_file

BUNDLE_FILE_HINT = "an app bundle holds regular files only: copy the .app again from its build"

MAX_PLIST = 1 << 20
"""An Info.plist, a privacy manifest or a profile's payload is kilobytes; larger is not read."""


def load_plist(path: Path, hint: str, limit: int = MAX_PLIST) -> dict[str, Any]:
    """A plist file's top-level dict.

    ValueError for anything malformed (XML or binary) or larger than `limit` (refused
    unread); InputError when the path is missing or not a regular file (never opened then).
    """
    require_file(path, hint)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise path_error(path, exc) from None
    if size == 0:
        raise ValueError("empty file")
    if size > limit:
        raise ValueError(f"{size} bytes, over the {limit >> 10} KiB limit; not read")
    with open_mapped(path) as mm:  # re-checks the opened file (O_NONBLOCK, fstat)
        if len(mm) > limit:
            raise ValueError(f"{len(mm)} bytes, over the {limit >> 10} KiB limit; not read")
        raw = bytes(mm)
    return parse(raw, limit)


def parse(raw: bytes, limit: int = MAX_PLIST) -> dict[str, Any]:
    """A plist's top-level dict from bytes; ValueError for anything else."""
    if len(raw) > limit:
        raise ValueError(f"{len(raw)} bytes, over the {limit >> 10} KiB limit; not read")
    try:
        data = plistlib.loads(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (plistlib.InvalidFileException, ExpatError, ValueError) as exc:
        raise ValueError(str(exc)[:200] or "malformed") from None
    except (LookupError, TypeError, AttributeError, OverflowError) as exc:
        raise ValueError(f"malformed ({type(exc).__name__}: {exc})"[:200]) from None
    if not isinstance(data, dict):
        raise ValueError("top level is not a dictionary")
    return data
