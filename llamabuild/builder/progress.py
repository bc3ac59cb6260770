"""Build progress from ninja's `[n/m]` lines: a rich bar on a TTY, plain lines otherwise.

Every line (configure and build) also goes to the full log in the build dir; on failure the
last lines are shown from that log, not from memory.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # rich's progress bar loads only when a build shows one
    from rich.progress import Progress, TaskID

from llamabuild.tools.cmake import parse_progress

TAIL = 40


class BuildLog:
    """Line sink: the log file, the tail buffer and the progress display."""

    def __init__(self, log_path: Path, label: str, tty: bool | None = None, quiet: bool = False):
        self.path = log_path
        self.label = label
        self.tail: deque[str] = deque(maxlen=TAIL)
        self.quiet = quiet
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.steps = (0, 0)
        self._fh: IO[str] | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> BuildLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("w", encoding="utf-8")
        if self.tty and not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                # Labels, phases and ninja steps carry paths: never read them as markup.
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[step]}", style="dim", markup=False),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None, step="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._fh is not None:
            self._fh.close()

    def phase(self, name: str) -> None:
        self.write(f"== llamabuild: {name}")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self.label}: {name}")
        elif not self.quiet:
            print(f"{self.label}: {name}", file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        if self._fh is not None:
            self._fh.write(line + "\n")
            self._fh.flush()

    def line(self, line: str) -> None:
        """on_line callback for the Runner."""
        self.write(line)
        self.tail.append(line)
        step = parse_progress(line)
        if step is None:
            return
        done, total, what = step
        self.steps = (done, total)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total, step=what[-60:])
        elif not self.quiet:
            print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    def show_tail(self) -> None:
        """The last 40 lines, on stderr (after the progress display is gone)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        print(f"--- last {len(self.tail)} lines of {self.path} ---", file=sys.stderr)
        for line in self.tail:
            print(line, file=sys.stderr)
        print("---", file=sys.stderr, flush=True)
