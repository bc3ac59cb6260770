"""One walk of an app bundle's tree, shared by every check that looks at its files: verify-app's
scan, its model and metadata passes, and the seal (seal.py), which all read the same list."""

from __future__ import annotations

import os
from pathlib import Path

Tree = list[tuple[Path, str]]
"""(path, 'dir' | 'file' | 'symlink' | 'special') of everything under a folder."""


def walk(top: Path) -> Tree:
    """(path, 'dir' | 'file' | 'symlink' | 'special') under `top`, in a stable order.

    Never follows symlinks; a *.dSYM folder is listed but not entered; unreadable folders
    are skipped (as os.walk does). Iterative: a hostile, deeply nested tree cannot overflow.
    """
    out: list[tuple[Path, str]] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    kind = "symlink"
                elif entry.is_dir(follow_symlinks=False):
                    kind = "dir"
                elif entry.is_file(follow_symlinks=False):
                    kind = "file"
                else:
                    kind = "special"
            except OSError:
                continue
            if kind == "dir" and not entry.name.lower().endswith(".dsym"):
                stack.append(path)
            out.append((path, kind))
    return out
