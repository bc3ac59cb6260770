"""Property lists from an untrusted bundle: bounded, regular files only, one error type (the
parser is llamabuild.core.plists; the reader dsym.load_plist, which opens only regular files).

plistlib raises several exception types on hostile input (a binary plist nested thousands deep
recurses); every one becomes a ValueError with a one-line reason, so callers turn it into a
finding instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llamabuild.core.plists import MAX_PLIST as MAX_PLIST  # re-exported
from llamabuild.core.plists import parse as parse  # re-exported
from llamabuild.inspect.dsym import load_plist

BUNDLE_FILE_HINT = "an app bundle holds regular files only: copy the .app again from its build"


def load(path: Path, limit: int = MAX_PLIST) -> dict[str, Any]:
    """A plist file's top-level dict. InputError when missing or not a regular file (never
    opened then; with a bundle's hint, not the dSYM one); ValueError when malformed or over
    `limit`."""
    return load_plist(path, limit, hint=BUNDLE_FILE_HINT)
