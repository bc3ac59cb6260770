"""Process trees: stop a child's whole tree, find what is left of it, kill it.

psutil and getsid(2), no /proc, so the same code runs on Linux and macOS. The one subprocess
wrapper (tools/runner.py) stops its children with these; Ctrl-C handling (core/interrupt.py)
sweeps what a build left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence

import psutil  # type: ignore[import-untyped,unused-ignore]  # types-psutil: test extra


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tree(pid: int) -> list[psutil.Process]:
    """`pid` and every live descendant (psutil: the same on Linux and macOS)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _alive(p: psutil.Process) -> bool:
    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _kill(procs: Sequence[psutil.Process]) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()  # is_running() guards against a recycled pid


def stop_group(
    proc: subprocess.Popen[bytes], signals: Sequence[signal.Signals], grace: float = 5.0
) -> str:
    """Stop a child started in its own session and everything it forked (its process group,
    and descendants in other groups, as ninja's jobs are): each signal in turn, `grace`
    seconds apart. Returns what ended it."""
    # Remember the whole tree before anything dies: an orphan is re-parented to init (or a
    # subreaper) and no longer shows as a descendant.
    tree = _tree(proc.pid)[1:]
    ended = "exited"
    if proc.poll() is None:
        ended = "SIGKILL"
        for sig in signals:
            _killpg(proc.pid, sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                tree += [p for p in _tree(proc.pid)[1:] if p not in tree]
                continue
            ended = sig.name
            break
    _killpg(proc.pid, signal.SIGKILL)  # the leader is gone; its children keep the group id
    sweep(proc.pid, tree)
    if proc.poll() is None:
        proc.wait()
    return ended


def sweep(sid: int, known: Sequence[psutil.Process] = ()) -> list[int]:
    """SIGKILL what is left of a tree: the processes in `known` (descendants seen earlier) and
    every process of session `sid` (orphans in process groups of their own); returns their
    pids. No /proc: psutil and getsid(2) work on macOS too."""
    left = [p for p in known if _alive(p)]
    seen = {p.pid for p in left}
    for pid in session_members(sid):
        if pid not in seen:
            with contextlib.suppress(psutil.Error):
                left.append(psutil.Process(pid))
    return kill_all(left)


def kill_all(procs: Sequence[psutil.Process], timeout: float = 2.0) -> list[int]:
    """SIGKILL `procs` and wait (up to `timeout`) until none is alive; a zombie counts as gone
    (an orphan's reaper may be slow, or absent in a container). Returns the pids signalled."""
    left = [p for p in procs if _alive(p)]
    _kill(left)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in left) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p.pid for p in left]


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """The live descendants of `pid` (default: this process)."""
    return _tree(os.getpid() if pid is None else pid)[1:]


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid`."""
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and _alive(p):
                found.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return found
