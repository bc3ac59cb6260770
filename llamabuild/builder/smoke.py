"""`llamabuild smoke`: prove that a built llama-server really serves, as a release check.

It does what the app's server manager does at start-up: start the binary on 127.0.0.1 on a free
port, wait for /health, list the models, ask for one token, then stop it (SIGINT, SIGTERM,
SIGKILL, to its whole process group) and report each timing. The server runs in its own
session so nothing it starts can outlive the check.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llamabuild.core.errors import InputError, ToolError, UsageError
from llamabuild.core.host import ARCH_ALIASES
from llamabuild.core.host import HostInfo as HostInfo  # re-exported
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, json_view, model
from llamabuild.inspect.binary import Binary
from llamabuild.tools.runner import Background, Runner, default_runner

log = logging.getLogger("llamabuild.tools")

HOST = "127.0.0.1"  # never 0.0.0.0: the check must not expose a server to the network
LOG_TAIL_LINES = 25
STOP_GRACE = 5.0

Progress = Callable[[float, str], None]
LogSink = Callable[[str], None]


@dataclass(frozen=True)
class Completion:
    """What the 1-token chat completion answered."""

    finish_reason: str | None
    completion_tokens: int | None


def check_runnable(binary: Binary, host: HostInfo) -> None:
    """Refuse (exit 2) a binary this host cannot execute, naming both sides."""
    fmt = "Mach-O" if binary.format == "macho" else "ELF"
    archs = [ARCH_ALIASES.get(a, a) for a in binary.archs]
    what = f"{binary.path} is a {fmt} {'/'.join(archs) or '?'} binary"
    if binary.format != host.binary_format:
        raise UsageError(
            f"{what}; it cannot run on this {host.label} host",
            hint="run smoke on a machine of the binary's platform (a Mac for macOS builds), "
            "or smoke a build for this host (e.g. --recipe linux-x86_64-static)",
        )
    runnable = {host.machine}
    if host.system == "Darwin" and host.machine == "arm64":
        runnable.add("x86_64")  # Rosetta 2
    if not runnable.intersection(archs):
        raise UsageError(
            f"{what}; this host is {host.label}",
            hint="smoke the binary on a machine of its architecture",
        )


def default_binary(root: Path | None = None) -> Path:
    """<dist>/<recipe>/llama-server where `llamabuild build` publishes (llamabuild.toml honored)."""
    from llamabuild.config.recipes import default_recipe_name, load_project

    project = load_project(None)
    dist = Path(project.dist or "dist")
    recipe = project.recipe or default_recipe_name()
    return (root or Path.cwd()) / dist / recipe / "llama-server"


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def server_argv(
    binary: Path, model: Path, port: int, server_flags: Sequence[str] = ()
) -> list[str]:
    """A small context and one slot: enough for a one-token chat, quick to allocate; then the
    app's memory settings ([server] of llamabuild.toml: -np, -ctk/-ctv, --swa-full), which win
    (llama-server takes an option's last value)."""
    return [
        str(binary),
        "--model",
        str(model),
        "--host",
        HOST,
        "--port",
        str(port),
        "--ctx-size",
        "512",
        "--parallel",
        "1",
        *server_flags,
    ]


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def http(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body); HTTP error statuses are returned, connection problems raise OSError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http://127.0.0.1)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read() or b""


def _rounded_timings(r: SmokeReport) -> dict[str, float]:
    return {k: round(v, 4) for k, v in r.timings.items()}


@model
class SmokeReport:
    """`llamabuild smoke --json`: the server started, answered and stopped."""

    ok: Literal[True] = derived(lambda r: True)
    binary: Path
    model: Path
    model_generated: bool
    host: str = derived(lambda r: HOST)
    port: int
    timings: dict[str, float] = field(
        default_factory=dict,
        metadata=json_view(
            lambda r: {k: round(v, 4) for k, v in r.timings.items()}, dict[str, float]
        ),
    )
    models: list[str] = field(default_factory=list, metadata=ALWAYS)
    completion: Completion = derived(lambda r: Completion(r.finish_reason, r.completion_tokens))
    stopped_by: str = field(default="", metadata=ALWAYS)
    server_exit_code: int | None = field(default=None, metadata=ALWAYS)
    finish_reason: str | None = field(default=None, metadata=INTERNAL)
    completion_tokens: int | None = field(default=None, metadata=INTERNAL)

    def summary(self) -> str:
        """The human verdict, plain text: "llama-server answered 1 token in 0.41 s
        (finish_reason: length), serving tiny" (what the server said is the caller's to escape)."""
        tokens, chat, reason = self.completion_tokens, self.timings.get("chat"), self.finish_reason
        words = [f"{self.binary.name} answered"]
        if tokens is not None:
            words.append(f"{tokens} token{'' if tokens == 1 else 's'}")
        if chat is not None:
            words.append(f"in {chat:.2f} s" if chat >= 0.01 else f"in {chat * 1e3:.1f} ms")
        words.append("(no finish_reason)" if reason is None else f"(finish_reason: {reason})")
        serving = f", serving {', '.join(self.models)}" if self.models else ""
        return " ".join(words) + serving


class _Failure(Exception):
    """Internal: a smoke step failed; converted to ToolError after the server is stopped."""


def _wait_healthy(server: Background, base: str, timeout: float, progress: Progress) -> float:
    start = time.monotonic()
    deadline = start + timeout
    state = "starting"
    while True:
        code = server.exit_code()
        if code is not None:
            raise _Failure(f"llama-server exited with code {code} before it became healthy")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Failure(f"llama-server not healthy within {timeout:g} s (last: {state})")
        try:
            status, _ = http("GET", f"{base}/health", timeout=min(2.0, remaining))
        except (OSError, ValueError) as exc:
            state = _reason(exc)
        else:
            if status == 200 and server.exit_code() is None:  # ours, not a port squatter
                return time.monotonic() - start
            state = f"HTTP {status}" + (" (loading model)" if status == 503 else "")
        progress(time.monotonic() - start, state)
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        exc = inner
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    return type(exc).__name__


def _json_call(method: str, url: str, body: Any, timeout: float) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    try:
        status, raw = http(method, url, body, timeout=timeout)
    except (OSError, ValueError) as exc:
        raise _Failure(f"{method} {url}: {_reason(exc)}") from exc
    elapsed = time.monotonic() - start
    if status != 200:
        raise _Failure(f"{method} {url}: HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise _Failure(f"{method} {url}: the answer is not JSON") from exc
    if not isinstance(data, dict):
        raise _Failure(f"{method} {url}: the answer is not a JSON object")
    return data, elapsed


def _exercise(result: SmokeReport, base: str, timeout: float) -> None:
    models, result.timings["models"] = _json_call("GET", f"{base}/v1/models", None, timeout)
    entries = models.get("data")
    if not isinstance(entries, list) or not entries:
        raise _Failure("GET /v1/models: no model listed")
    result.models = [str(m.get("id")) for m in entries if isinstance(m, dict)]
    body = {"messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 1}
    chat, result.timings["chat"] = _json_call("POST", f"{base}/v1/chat/completions", body, timeout)
    choices = chat.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Failure("POST /v1/chat/completions: no choices in the answer")
    result.finish_reason = choices[0].get("finish_reason")
    usage = chat.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        result.completion_tokens = usage["completion_tokens"]


@contextlib.contextmanager
def _model_file(model: Path | None) -> Iterator[tuple[Path, bool]]:
    if model is not None:
        if not model.is_file():
            raise ToolError(
                f"model {model} not found" + (" (a directory)" if model.is_dir() else ""),
                hint="pass an existing .gguf file, or omit --model to use a generated tiny model",
            )
        yield model, False
        return
    from llamabuild.model.gguf_tiny import write_tiny_llama
    from llamabuild.source.cache import cache_root

    # Kept in the cache (rewritten atomically each run), not in the run's temp dir: the path
    # in the report must still exist after the run.
    keep = cache_root() / "smoke"
    keep.mkdir(parents=True, exist_ok=True)
    yield write_tiny_llama(keep / "tiny-llama.gguf"), True


def _check_binary(binary: Path, host: HostInfo) -> None:
    from llamabuild.inspect.reader import inspect_binary

    check_runnable(inspect_binary(binary), host)
    if not os.access(binary, os.X_OK):
        raise InputError(f"{binary} is not executable", hint=f"chmod +x {shlex.quote(str(binary))}")


def run_smoke(
    binary: Path,
    model: Path | None = None,
    timeout: float = 60.0,
    port: int = 0,
    progress: Progress | None = None,
    on_log: LogSink | None = None,
    host: HostInfo | None = None,
    runner: Runner | None = None,
    server_flags: Sequence[str] = (),
) -> SmokeReport:
    """Start, probe and stop the server; ToolError (exit 3) on any failure, log tail to on_log."""
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {timeout:g}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port", hint="use 1-65535, or omit it")
    # The server runs in a temp dir (cwd=workdir): relative paths must not resolve there.
    binary = binary.absolute()
    model = model.absolute() if model is not None else None
    _check_binary(binary, host or HostInfo.current())
    if port and port_in_use(port):
        raise ToolError(f"port {port} on {HOST} is already in use", hint="free it, or omit --port")
    total = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llamabuild-smoke-") as tmp:
        workdir = Path(tmp)
        with _model_file(model) as (model_path, generated):
            port = port or free_port()
            result = SmokeReport(binary, model_path, generated, port)
            server = (runner or default_runner()).start(
                server_argv(binary, model_path, port, server_flags),
                log_path=workdir / "server.log",
                cwd=workdir,
            )
            failure: _Failure | None = None
            try:
                base = f"http://{HOST}:{port}"
                result.timings["healthy"] = _wait_healthy(server, base, timeout, progress or _quiet)
                _exercise(result, base, timeout)
            except _Failure as exc:
                failure = exc
            finally:
                stop_start = time.monotonic()
                result.stopped_by = server.stop(STOP_GRACE)
                result.timings["stop"] = time.monotonic() - stop_start
                result.server_exit_code = server.exit_code()
            if failure is not None:
                tail = server.tail(LOG_TAIL_LINES)
                if on_log is not None:
                    on_log(tail or "(the server printed nothing)")
                raise ToolError(
                    str(failure),
                    hint="the server's last log lines are shown above; "
                    f"command: {shlex.join(server.argv)}",
                )
    result.timings["total"] = time.monotonic() - total
    return result


def _quiet(elapsed: float, state: str) -> None:
    del elapsed, state
