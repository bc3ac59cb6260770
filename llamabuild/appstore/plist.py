"""Property lists from an untrusted bundle: bounded, regular files only, one error type.

plistlib raises several exception types on hostile input (a binary plist nested thousands deep
recurses); every one becomes a ValueError with a one-line reason, so callers turn it into a
finding instead of a traceback.
"""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from llamabuild.dsym import load_plist

MAX_PLIST = 1 << 20
"""An Info.plist, a privacy manifest or a profile's payload is kilobytes; larger is not read."""


def parse(raw: bytes, limit: int = MAX_PLIST) -> dict[str, Any]:
    """A plist's top-level dict from bytes; ValueError for anything else."""
    if len(raw) > limit:
        raise ValueError(f"{len(raw)} bytes, over the {limit >> 10} KiB limit; not read")
    try:
        data = plistlib.loads(raw)
    except (plistlib.InvalidFileException, ExpatError, RecursionError, ValueError) as exc:
        raise ValueError(str(exc) or "malformed") from None
    except (LookupError, TypeError, AttributeError, OverflowError) as exc:
        # plistlib's own bugs on hostile input (an unknown XML encoding, a <key> with no
        # value): IndexError/KeyError are LookupErrors
        raise ValueError(f"malformed ({type(exc).__name__}: {exc})"[:200]) from None
    if not isinstance(data, dict):
        raise ValueError("top level is not a dictionary")
    return data


def load(path: Path, limit: int = MAX_PLIST) -> dict[str, Any]:
    """A plist file's top-level dict. InputError when missing or not a regular file (never
    opened then); ValueError when malformed or over `limit`."""
    try:
        return load_plist(path, limit)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (LookupError, TypeError, AttributeError, OverflowError) as exc:
        # dsym.load_plist lets plistlib's own bugs through (see `parse`)
        raise ValueError(f"malformed ({type(exc).__name__}: {exc})"[:200]) from None
