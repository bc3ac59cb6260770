"""Version strings: one pattern, one parser, one comparison, one default deployment target."""

from __future__ import annotations

import re

from llamabuild.core.errors import UsageError

DEFAULT_MIN_MACOS = "14.0"
"""The deployment target when neither a recipe nor --min-macos gives one."""

VERSION_PATTERN = r"\d+(?:\.\d+){0,2}"
"""A macOS version: 14, 14.0, 13.5.1 (the same pattern recipes, -D and --min-macos accept)."""

_VERSION = re.compile(VERSION_PATTERN)


def is_version(text: str) -> bool:
    return _VERSION.fullmatch(text) is not None


def version_tuple(text: str) -> tuple[int, ...]:
    """'13.5.1' -> (13, 5, 1); trailing zeros dropped so 14 == 14.0 == 14.0.0."""
    parts: list[int] = []
    for piece in text.split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            break
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_min_macos(value: str) -> str:
    """--min-macos must be a macOS version (14, 14.0, 13.5.1), else a usage error (exit 2)."""
    if not is_version(value):
        raise UsageError(
            f"invalid --min-macos {value!r}", hint=f"give a macOS version, e.g. {DEFAULT_MIN_MACOS}"
        )
    return value


_BANNER = re.compile(r"(\d+\.\d+(?:\.\d+)?)([\w.+-]*)")


def banner_version(text: str, suffix: bool = False) -> str | None:
    """The first dotted version in a tool's `--version` banner, line by line
    ("Apple clang version 15.0.0 (clang-1500...)" -> "15.0.0"); None when there is none.
    `suffix` keeps what is glued to it ("1.11.1.git.kitware.jobserver-1"): the manifest
    records the exact tool, doctor shows the number."""
    for line in text.splitlines():
        m = _BANNER.search(line)
        if m:
            return m.group(1) + (m.group(2) if suffix else "")
    return None
