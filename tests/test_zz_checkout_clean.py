"""Runs last (files run in name order): the tests leave nothing in the checkout.

Tests write into tmp dirs only. What one writes into the repository (a `build/` from a pip
install of the checkout, a `dist/` or `llamabuild.lock` from a command run in it) is usually
hidden by .gitignore, so `git status` does not show it. This compares
`git status --porcelain --ignored --untracked-files=all` (every file, one a line) after the run
with a snapshot taken when this module is imported: during collection, before any test runs.
It sees new files, not old ones written again.

Which lines count: on CI (`CI` set, as GitHub Actions does) every new one. On a developer's
machine only new ignored files (`!!`): there a new untracked file or a modified one is most
likely someone's work in progress, saved while the suite ran, and `git status` shows it anyway.
Python's and the linters' caches never count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EVERY_LINE = bool(os.environ.get("CI"))


def _entries() -> set[str] | None:
    """The `git status` lines that count, or None when this is not a git checkout (an
    unpacked sdist) or git is missing."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    proc = subprocess.run(
        [git, "status", "--porcelain", "--ignored", "--untracked-files=all", "--", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        return None
    return {
        line
        for line in proc.stdout.splitlines()
        if (EVERY_LINE or line.startswith("!! "))
        and not CACHES & set(Path(line[3:].strip('"')).parts)
        and not line.endswith(".pyc")
    }


BEFORE = _entries()


def _summary(lines: list[str]) -> str:
    """`!! build/ (163 files, e.g. build/lib/llamabuild/__init__.py)`, one per top folder."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        top = line[:3] + line[3:].strip('"').split("/", 1)[0]
        groups.setdefault(top, []).append(line)
    return "; ".join(
        found[0] if len(found) == 1 else f"{top}/ ({len(found)} files, e.g. {found[0][3:]})"
        for top, found in sorted(groups.items())
    )


def test_the_tests_left_nothing_in_the_checkout() -> None:
    if BEFORE is None:
        pytest.skip("not a git checkout (or no git): nothing to compare")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("under xdist other tests may still be running")
    after = _entries()
    assert after is not None
    new = sorted(after - BEFORE)
    assert new == [], f"tests wrote into the checkout (use tmp_path): {_summary(new)}"
