"""The cache directory: downloads, extracted archives, git checkouts, ccache, build trees."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def cache_root() -> Path:
    """$LLAMABUILD_CACHE, else $XDG_CACHE_HOME/llamabuild, else ~/.cache/llamabuild."""
    env = os.environ.get("LLAMABUILD_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "llamabuild").resolve()


def zig_home() -> Path | None:
    """$LLAMABUILD_ZIG_ROOT: where zig's private root lives, when not under the cache (one
    warm zig cache for several cache dirs, as the test session does)."""
    env = os.environ.get("LLAMABUILD_ZIG_ROOT")
    return Path(env).expanduser().resolve() if env else None


def slug(text: str, length: int = 10) -> str:
    """A readable, collision-safe directory name for a URL or path."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", text.rstrip("/").rsplit("/", 1)[-1])[:40]
    digest = hashlib.sha256(text.encode()).hexdigest()[:length]
    return f"{tail or 'src'}-{digest}"
