"""Ctrl-C / SIGTERM: the Runner stops the child's process group, we clean staging, exit 130.

SIGTERM is turned into the same exception path as Ctrl-C so both leave dist/ untouched;
`critical()` defers both signals while the publish renames run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from llamabuild.errors import InterruptedBuild

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
    _received.clear()
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    except KeyboardInterrupt:
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
    """Block SIGINT/SIGTERM (delivered after) so a publish is never half done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
