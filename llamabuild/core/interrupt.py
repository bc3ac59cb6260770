"""Ctrl-C / SIGTERM: the Runner stops the child's process group, we clean staging, exit 130.

Whatever child process the build started and is still alive after that (a job whose parent
was killed, a child of a `Runner.run` without a session of its own) is swept with psutil, the
same on Linux and macOS.

SIGTERM is turned into the same exception path as Ctrl-C so both leave dist/ untouched;
`critical()` defers both signals while the publish renames run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from llamabuild.core.errors import InterruptedBuild
from llamabuild.core.processes import descendants, kill_all

SIGNALS = (signal.SIGINT, signal.SIGTERM)


_received: list[int] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    """Both signals take the KeyboardInterrupt path (the Runner stops children on it)."""
    _received.append(signum)
    raise KeyboardInterrupt


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into InterruptedBuild (exit 130) for the duration of a build."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    before = {p.pid for p in descendants()}  # not the build's: left alone
    _received.clear()
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    except KeyboardInterrupt:
        kill_all([p for p in descendants() if p.pid not in before])
        name = signal.Signals(_received[-1]).name if _received else "SIGINT"
        raise InterruptedBuild(
            f"{what} interrupted ({name}); nothing was published",
            hint="the previous artifact in dist/ is intact; rerun to build again",
        ) from None
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def critical() -> Iterator[None]:
    """Defer SIGINT/SIGTERM until the block is done, so a publish is never half done.

    Blocking the signals in this thread is not enough: a Ctrl-C is sent to the process, and
    the kernel hands it to any thread that does not block it (a progress bar's, a server's);
    Python then runs the handler in the main thread at once. So the handlers are swapped for a
    recorder too, and a signal that came meanwhile is raised again at the end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    swapped = [s for s, h in previous.items() if h is not None]  # None: set outside Python
    for s in swapped:
        signal.signal(s, lambda signum, _frame: pending.append(signum))
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a blocked one arrives now...
        for s in swapped:
            signal.signal(s, previous[s])  # ...to the recorder, or else to the old handler
        if pending:
            signal.raise_signal(pending[0])
