"""The one wrapper every external program goes through.

It finds the program, echoes the argv (at debug level), records cwd, env overrides and the
return code, and turns failures into ToolError. Adapters take a Runner so tests can swap in a
recorder and assert the exact argv that would run on a Mac.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from llamabuild.core.errors import ToolError, ToolNotFoundError
from llamabuild.core.processes import stop_group
from llamabuild.core.redact import redact_url

log = logging.getLogger("llamabuild.tools")

# Environment variables whose values are never echoed (signing secrets), and those echoed
# with the credentials of their URLs redacted (the shared compiler cache).
SECRET_ENV = frozenset({"LLAMABUILD_P12_PASSWORD"})
URL_ENV = frozenset({"CCACHE_REMOTE_STORAGE", "LLAMABUILD_CCACHE_REMOTE"})


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    def tail(self, lines: int = 40) -> str:
        text = (self.stdout + "\n" + self.stderr).strip()
        return "\n".join(text.splitlines()[-lines:])


def which(names: Sequence[str], extra_dirs: Sequence[Path] = ()) -> Path | None:
    """First of `names` found on PATH (or in `extra_dirs`), as an absolute path."""
    search = os.pathsep.join([*(str(d) for d in extra_dirs), os.environ.get("PATH", "")])
    for name in names:
        found = shutil.which(name, path=search)
        if found:
            return Path(found)
    return None


def python_scripts() -> list[Path]:
    """This Python's scripts dir: pip-installed cmake, ninja, ccache and zig live there, even
    when it is not on PATH (a virtualenv used without activating it)."""
    scripts = sysconfig.get_path("scripts")
    return [Path(scripts)] if scripts else []


def find_tool(names: Sequence[str], hint: str, extra_dirs: Sequence[Path] = ()) -> Path:
    found = which(names, extra_dirs)
    if found is None:
        raise ToolNotFoundError(f"{' / '.join(names)} not found on PATH", hint=hint)
    return found


def _redact(env: Mapping[str, str]) -> dict[str, str]:
    return {
        k: ("***" if k in SECRET_ENV else redact_url(v) if k in URL_ENV else v)
        for k, v in env.items()
    }


class Runner:
    """Runs programs: the one subprocess wrapper (argv echoed with -v, secrets redacted).

    Keeps nothing: a whole build's output would otherwise stay in memory for nobody."""

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
        input_bytes: bytes | None = None,
        on_line: Callable[[str], None] | None = None,
        output_limit: int | None = None,
    ) -> Result:
        """`on_line` streams stdout+stderr merged, a line at a time; `output_limit` captures
        them merged, stopping the program (ToolError) once it has written more than that many
        bytes: for programs fed untrusted input, whose output could otherwise fill memory."""
        args = tuple(str(a) for a in argv)
        log.debug("$ %s", shlex.join(args))
        if cwd is not None:
            log.debug("  cwd: %s", cwd)
        if env:
            log.debug("  env: %s", _redact(env))
        full_env = {**os.environ, **env} if env else None
        start = time.monotonic()
        try:
            if output_limit is not None:
                code, out = _bounded(args, cwd, full_env, timeout, output_limit)
                err = ""
            elif on_line is None:
                proc = subprocess.run(
                    args,
                    cwd=cwd,
                    env=full_env,
                    capture_output=True,
                    timeout=timeout,
                    input=input_bytes,
                    check=False,
                )
                out = proc.stdout.decode("utf-8", "replace")
                err = proc.stderr.decode("utf-8", "replace")
                code = proc.returncode
            else:
                code, out, err = _stream(args, cwd, full_env, on_line, timeout)
        except FileNotFoundError as exc:
            raise ToolNotFoundError(f"{args[0]} not found", hint="install it or fix PATH") from exc
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"{Path(args[0]).name} timed out after {timeout} s") from exc
        result = Result(args, code, out, err, time.monotonic() - start)
        log.debug("  -> exit %d in %.2f s", code, result.duration)
        if check and code != 0:
            last = result.tail(1) or "no output"
            raise ToolError(
                f"{Path(args[0]).name} failed with exit code {code}: {last}",
                hint=f"command: {shlex.join(args)}",
            )
        return result

    def start(
        self, argv: Sequence[str | Path], *, log_path: Path, cwd: Path | None = None
    ) -> Background:
        """Start a program in the background (its own session, stdin closed, output to
        `log_path`); the caller stops it with Background.stop()."""
        args = tuple(str(a) for a in argv)
        log.debug("$ %s &  (log: %s)", shlex.join(args), log_path)
        with log_path.open("wb") as logf:
            try:
                proc = subprocess.Popen(
                    args,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ToolError(
                    f"cannot start {args[0]}: {exc.strerror or exc}",
                    hint="is it an executable for this machine? (chmod +x, right architecture)",
                ) from exc
        return Background(proc, args, log_path)


@contextmanager
def _merged(
    args: tuple[str, ...], cwd: Path | None, env: Mapping[str, str] | None, timeout: float | None
) -> Iterator[tuple[subprocess.Popen[bytes], IO[bytes]]]:
    """The program started in its own session, stdin closed, stdout+stderr merged into one
    pipe for the caller to read; its group is stopped when the caller raises or, with
    `timeout`, once that many seconds have passed (then TimeoutExpired)."""
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        stop_group(proc, (signal.SIGTERM, signal.SIGKILL))

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.start()
    assert proc.stdout is not None
    try:
        yield proc, proc.stdout
    except BaseException:
        stop_group(proc, (signal.SIGTERM, signal.SIGKILL))
        raise
    finally:
        if timer is not None:
            timer.cancel()
        proc.stdout.close()
    if fired.is_set():
        raise subprocess.TimeoutExpired(args, timeout or 0)


def _bounded(
    args: tuple[str, ...],
    cwd: Path | None,
    env: Mapping[str, str] | None,
    timeout: float | None,
    limit: int,
) -> tuple[int, str]:
    """stdout+stderr merged, read in chunks: the program is stopped past `limit` bytes (a line
    is never what bounds it: one line can be the whole output)."""
    out = bytearray()
    with _merged(args, cwd, env, timeout) as (proc, pipe):
        while chunk := os.read(pipe.fileno(), 1 << 16):
            out += chunk
            if len(out) > limit:
                raise ToolError(
                    f"{Path(args[0]).name} wrote more than {limit} bytes: stopped",
                    hint="its input is not what it should be (a runaway macro, a huge file)",
                )
        code = proc.wait()
    return code, out.decode("utf-8", "replace")


def _stream(
    args: tuple[str, ...],
    cwd: Path | None,
    env: Mapping[str, str] | None,
    on_line: Callable[[str], None],
    timeout: float | None = None,
) -> tuple[int, str, str]:
    """Run with stdout+stderr merged, feeding each line to `on_line`; stop the child on error
    (`on_line` may raise to stop it) or, with `timeout`, once that many seconds have passed."""
    lines: list[str] = []
    with _merged(args, cwd, env, timeout) as (proc, pipe):
        for raw in pipe:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            on_line(line)
        code = proc.wait()
    return code, "\n".join(lines), ""


class Background:
    """A long-running child (a server): own session, output to a log file (no pipe to fill)."""

    def __init__(self, proc: subprocess.Popen[bytes], argv: tuple[str, ...], log_path: Path):
        self.proc = proc
        self.argv = argv
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace: float = 5.0) -> str:
        """SIGINT, then SIGTERM, then SIGKILL to the whole group; returns what ended it."""
        ended = stop_group(self.proc, (signal.SIGINT, signal.SIGTERM, signal.SIGKILL), grace)
        log.debug("  -> %s stopped (%s), exit %s", Path(self.argv[0]).name, ended, self.exit_code())
        return ended

    def tail(self, lines: int = 40) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 65536))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


class Tool:
    """Base of the tool adapters: a Runner plus an executable found on first use.

    Subclasses name their candidates (`names`, `hint`) or override `find()`; tests pass `exe`
    to pin a path (an Apple tool's argv can then be asserted on Linux).
    """

    names: tuple[str, ...] = ()
    hint: str = ""

    def __init__(self, runner: Runner, exe: Path | None = None) -> None:
        self.runner = runner
        self._exe = exe

    def find(self) -> Path:
        return find_tool(self.names, hint=self.hint)

    @property
    def exe(self) -> Path:
        if self._exe is None:
            self._exe = self.find()
        return self._exe


_default = Runner()


def default_runner() -> Runner:
    return _default
