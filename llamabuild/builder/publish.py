"""Atomic publish of dist/<recipe>/: stage beside it, then swap with two renames.

The swap runs with SIGINT/SIGTERM deferred, and a leftover `.old` from a crash between the two
renames is restored on the next run, so dist/<recipe> is always the previous or the new build.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from llamabuild.core.interrupt import critical


def staging_dir(dist_root: Path, name: str) -> Path:
    dist_root.mkdir(parents=True, exist_ok=True)
    recover(dist_root, name)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=dist_root))
    staging.chmod(0o755)  # mkdtemp makes it 0700; dist/<recipe> is meant to be shared
    return staging


def _old(dist_root: Path, name: str) -> Path:
    return dist_root / f".{name}.old"


def recover(dist_root: Path, name: str) -> None:
    """Undo an interrupted swap, and drop stale staging dirs of earlier killed runs."""
    final, old = dist_root / name, _old(dist_root, name)
    if old.exists():
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            Path(old).replace(final)
    for stale in dist_root.glob(f".{name}.staging-*"):
        if stale.is_dir() and not _owned_by_live_process(stale):
            shutil.rmtree(stale, ignore_errors=True)


def _owned_by_live_process(path: Path) -> bool:
    pid_file = path / ".pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid != os.getpid()


def mark_owner(staging: Path) -> None:
    (staging / ".pid").write_text(str(os.getpid()))


def publish(staging: Path, dist_root: Path, name: str) -> Path:
    final, old = dist_root / name, _old(dist_root, name)
    (staging / ".pid").unlink(missing_ok=True)
    with critical():
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            Path(final).replace(old)
        Path(staging).replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return final
