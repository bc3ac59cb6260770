"""Process control through psutil (no /proc): stop_group and the interrupt sweep on a real
process tree, shaped like ninja's (a child whose job runs in a process group of its own)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest

from llamabuild.core import processes
from llamabuild.core.errors import InterruptedBuild
from llamabuild.core.interrupt import guarded
from llamabuild.core.processes import session_members, stop_group

ROOT = Path(__file__).resolve().parents[1]

# The child ignores SIGTERM (only SIGKILL ends it) and starts a grandchild in its own group.
TREE = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'],"
    " process_group=0)\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
    "time.sleep(300)\n"
)


def _spawn_tree(tmp_path: Path, **popen: object) -> tuple[subprocess.Popen[bytes], int]:
    pidfile = tmp_path / "pid"
    proc = subprocess.Popen([sys.executable, "-c", TREE, str(pidfile)], **popen)  # type: ignore[call-overload]
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    return proc, int(pidfile.read_text())


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_group_kills_a_grandchild_in_another_process_group(tmp_path: Path) -> None:
    proc, grandchild = _spawn_tree(tmp_path, start_new_session=True)
    assert os.getpgid(grandchild) != proc.pid  # ninja-like: not in the leader's group
    assert grandchild in session_members(proc.pid)
    ended = stop_group(proc, (signal.SIGTERM, signal.SIGKILL), grace=0.5)
    assert ended == "SIGKILL"
    assert proc.poll() is not None
    assert _gone(grandchild)
    assert session_members(proc.pid) == []


def test_stop_group_sweeps_through_psutil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The orphan sweep finds the grandchild by session id with psutil + getsid (macOS has no
    /proc): Path.glob on /proc would fail here."""
    real_glob = Path.glob

    def no_proc(self: Path, pattern: str) -> object:
        assert not str(self).startswith("/proc"), "read /proc"
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", no_proc)
    proc, grandchild = _spawn_tree(tmp_path, start_new_session=True)
    swept: list[int] = []
    real_sweep = processes.sweep

    def spy(sid: int, known: Sequence[psutil.Process] = ()) -> list[int]:
        swept.extend(real_sweep(sid, known))
        return swept

    monkeypatch.setattr(processes, "sweep", spy)
    stop_group(proc, (signal.SIGTERM, signal.SIGKILL), grace=0.3)
    assert grandchild in swept
    assert _gone(grandchild)


def test_no_proc_reads_in_product_code() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "llamabuild").rglob("*.py")
        if '"/proc' in p.read_text() or "'/proc" in p.read_text()
    ]
    assert offenders == []


def test_interrupt_sweeps_the_builds_children(tmp_path: Path) -> None:
    """Ctrl-C inside guarded(): a child the build started (and its grandchild in another
    group) is killed; a child started before the build is left alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        with pytest.raises(InterruptedBuild) as info, guarded("test build"):
            proc, grandchild = _spawn_tree(tmp_path)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises before this ends
        assert "interrupted (SIGINT)" in info.value.message
        proc.wait(timeout=5)
        assert _gone(grandchild)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_critical_defers_a_ctrl_c_that_another_thread_receives(ctrl_c_raises: None) -> None:
    """A Ctrl-C goes to the process: with another thread alive (a progress bar's, a server's)
    the kernel gives it to that thread, and masking the main thread alone let the handler run
    mid-publish (the flaky test_interrupt_during_the_swap_keeps_a_dsym)."""
    import threading

    from llamabuild.core.interrupt import critical

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()  # created outside critical(): SIGINT is not blocked in it
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt), critical():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # the old code raised here
            finished = True
    finally:
        stop.set()
        other.join()
    assert finished
