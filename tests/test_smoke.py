"""`llamabuild smoke` against real programs: the real llama-server, and small C programs that
fail the way a broken server does (exit at once, never listen, listen but never get healthy)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from llamabuild.cli import run
from llamabuild.core.jsonout import to_jsonable
from llamabuild.model.gguf_tiny import TinyShape, vocab, write_tiny_llama

# Each program writes its pid (and its child's) to $SMOKE_PIDFILE so the test can prove
# that nothing is left running afterwards.
_PIDS = """
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static void record(void) {
    const char *f = getenv("SMOKE_PIDFILE");
    if (!f) return;
    FILE *fp = fopen(f, "a");
    if (fp) { fprintf(fp, "%d\\n", (int)getpid()); fclose(fp); }
}
"""

PROGRAMS = {
    # Like llama-server with a bad model: one log line, exit 1.
    "crash": """
#include <unistd.h>
int main(int argc, char **argv) {
    record();
    fprintf(stderr, "llama_model_load: error loading model: tensor 'x' has wrong shape\\n");
    fprintf(stderr, "main: exiting due to model loading error\\n");
    return 1;
}
""",
    # Forks a child, ignores SIGINT, never listens: smoke must escalate and leave nothing.
    "sleeper": """
#include <signal.h>
#include <unistd.h>
int main(void) {
    signal(SIGINT, SIG_IGN);
    if (fork() == 0) { signal(SIGTERM, SIG_IGN); record(); for (;;) pause(); }
    record();
    fprintf(stderr, "loading model...\\n");
    fflush(stderr);
    for (;;) pause();
}
""",
    # Listens on --port and answers 503 (still loading) to everything, forever.
    "unhealthy": """
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i + 1 < argc; i++) if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    record();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16)) { perror("bind"); return 2; }
    fprintf(stderr, "server is listening on 127.0.0.1:%d\\n", port);
    fflush(stderr);
    const char *r = "HTTP/1.1 503 Service Unavailable\\r\\nContent-Length: 0\\r\\n"
                    "Connection: close\\r\\n\\r\\n";
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        char buf[4096];
        (void)read(c, buf, sizeof buf);
        (void)write(c, r, strlen(r));
        close(c);
    }
}
""",
    # A native executable (smoke checks the binary's format) that runs $SMOKE_SERVER_SCRIPT,
    # a stand-in speaking llama-server's HTTP API, with its own arguments.
    "python_server": """
#include <unistd.h>
int main(int argc, char **argv) {
    char *args[64];
    int n = 0;
    args[n++] = getenv("SMOKE_PYTHON");
    args[n++] = getenv("SMOKE_SERVER_SCRIPT");
    if (!args[0] || !args[1]) return 2;
    for (int i = 1; i < argc && n < 63; i++) args[n++] = argv[i];
    args[n] = 0;
    record();
    execv(args[0], args);
    return 127;
}
""",
    # Reports whether the --model path it was given opens from its own working directory.
    "modelcheck": """
#include <string.h>
int main(int argc, char **argv) {
    record();
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--model")) continue;
        FILE *f = fopen(argv[i + 1], "rb");
        fprintf(stderr, f ? "model opened: %s\\n" : "cannot open model: %s\\n", argv[i + 1]);
        return 1;
    }
    return 1;
}
""",
}


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
    if cc is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("smoke programs")
    built = {}
    for name, body in PROGRAMS.items():
        src = out / f"{name}.c"
        src.write_text(_PIDS + textwrap.dedent(body))
        exe = out / name
        subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True)
        built[name] = exe
    return built


@pytest.fixture
def pidfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "pids"
    monkeypatch.setenv("SMOKE_PIDFILE", str(path))
    return path


def alive(pid: int) -> bool:
    """Running (not a zombie awaiting its reaper), by psutil: Linux and macOS alike."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def assert_all_gone(pidfile: Path, expect: int) -> None:
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == expect
    deadline = time.monotonic() + 5  # orphans are reaped asynchronously by init
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)]


def smoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["smoke", *args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# --- the tiny model ------------------------------------------------------------------------


def test_tiny_model_is_a_complete_llama_gguf(tmp_path):
    import gguf

    path = write_tiny_llama(tmp_path / "dir with space" / "tiny.gguf")
    reader = gguf.GGUFReader(path)
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "llama"
    assert int(fields["llama.block_count"].parts[-1][0]) == TinyShape().n_layer
    names = {t.name for t in reader.tensors}
    for i in range(TinyShape().n_layer):
        assert f"blk.{i}.ffn_down.weight" in names
    emb = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert list(map(int, emb.shape)) == [TinyShape().n_embd, len(vocab()[0])]
    assert path.stat().st_size < 1_000_000
    assert not [p for p in path.parent.iterdir() if p.name != "tiny.gguf"]  # no temp left


def test_tiny_model_is_deterministic(tmp_path):
    a = write_tiny_llama(tmp_path / "a.gguf").read_bytes()
    b = write_tiny_llama(tmp_path / "b.gguf").read_bytes()
    assert a == b


# --- failures: exit 3, log shown, nothing left behind --------------------------------------


def test_binary_that_exits_at_once(capsys, programs, pidfile):
    code, out, err = smoke(capsys, "--binary", str(programs["crash"]), "--timeout", "10")
    assert code == 3
    assert "exited with code 1 before it became healthy" in err
    assert "exiting due to model loading error" in err  # the server's own last lines
    assert out == ""
    assert_all_gone(pidfile, 1)


def test_crash_in_json_mode_keeps_stdout_one_object(capsys, programs, pidfile):
    code, out, err = smoke(capsys, "--binary", str(programs["crash"]), "--json")
    assert code == 3
    data = json.loads(out)
    assert data["ok"] is False and data["exit_code"] == 3
    assert "error loading model" in err
    assert_all_gone(pidfile, 1)


def test_never_listening_server_times_out_and_its_group_is_killed(capsys, programs, pidfile):
    t0 = time.monotonic()
    code, _, err = smoke(capsys, "--binary", str(programs["sleeper"]), "--timeout", "1.5")
    assert code == 3
    assert "not healthy within 1.5 s (last: connection refused)" in err
    assert "loading model..." in err
    assert_all_gone(pidfile, 2)  # the leader ignored SIGINT, its child ignored SIGTERM
    assert time.monotonic() - t0 < 60


def test_listening_but_never_healthy(capsys, programs, pidfile):
    code, _, err = smoke(capsys, "--binary", str(programs["unhealthy"]), "--timeout", "1.5")
    assert code == 3
    assert "not healthy within 1.5 s (last: HTTP 503 (loading model))" in err
    assert "server is listening" in err
    assert_all_gone(pidfile, 1)


def test_port_in_use(capsys, programs, pidfile):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code, _, err = smoke(capsys, "--binary", str(programs["unhealthy"]), "--port", str(port))
    assert code == 3
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert not pidfile.exists()  # refused before anything started


def test_missing_model(capsys, programs, pidfile, tmp_path):
    code, _, err = smoke(
        capsys, "--binary", str(programs["crash"]), "--model", str(tmp_path / "nope.gguf")
    )
    assert code == 3
    assert "nope.gguf not found" in err and "hint:" in err
    assert not pidfile.exists()


def test_path_with_spaces(capsys, programs, pidfile, tmp_path):
    target = tmp_path / "My App.app" / "Contents" / "Resources" / "llama-server"
    target.parent.mkdir(parents=True)
    shutil.copy2(programs["crash"], target)
    code, _, err = smoke(capsys, "--binary", str(target))
    assert code == 3
    assert "error loading model" in err
    assert "'" in err.split("command:")[1]  # the shown command is shell-quoted
    assert_all_gone(pidfile, 1)


def test_relative_binary_and_model(capsys, programs, pidfile, tmp_path, monkeypatch):
    """The server runs in a temp dir: relative paths are taken from the caller's cwd."""
    target = tmp_path / "dist dir" / "llama-server"
    target.parent.mkdir()
    shutil.copy2(programs["modelcheck"], target)
    (tmp_path / "my model.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    code, _, err = smoke(
        capsys, "--binary", "dist dir/llama-server", "--model", "my model.gguf", "--timeout", "10"
    )
    assert code == 3
    assert "exited with code 1 before it became healthy" in err
    assert f"model opened: {tmp_path / 'my model.gguf'}" in err
    assert_all_gone(pidfile, 1)


def test_failure_under_github_actions(capsys, programs, pidfile, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, _, err = smoke(capsys, "--binary", str(programs["crash"]))
    assert code == 3
    assert "::error file=" in err and "title=llamabuild smoke-failed::" in err
    assert "| error | `smoke-failed` |" in summary.read_text()
    assert_all_gone(pidfile, 1)


def test_progress_only_on_a_tty(programs, tmp_path):
    import pty
    import sys

    cli = [sys.executable, "-m", "llamabuild"]
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*cli, "smoke", "--binary", str(programs["unhealthy"]), "--timeout", "1.5"],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "SMOKE_PIDFILE": str(tmp_path / "pids")},
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 3
    os.close(master)
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.read() == b""
    assert b"waiting for /health" in seen and b"HTTP 503" in seen
    assert_all_gone(tmp_path / "pids", 1)


def test_human_output_shows_markup_literally(capsys):
    """Paths and what the server reports (model names, finish reason) are text, not markup."""
    from llamabuild.builder.smoke import SmokeReport
    from llamabuild.cli.smoke import render

    result = SmokeReport(Path("a[/]b [red]c/llama-server"), Path("m[/]x.gguf"), False, 8080)
    result.timings = {"healthy": 0.5, "models": 0.01, "chat": 0.02, "stop": 0.1, "total": 1}
    result.models = ["[bold]tiny[/]"]
    result.finish_reason = "[/]"
    result.stopped_by = "SIGINT"
    render(result)
    out = capsys.readouterr().out
    assert "a[/]b [red]c/llama-server on 127.0.0.1:8080, model m[/]x.gguf" in out
    assert "OK: llama-server answered in 0.02 s (finish_reason: [/]), serving [bold]tiny[/]" in out


@pytest.mark.parametrize(
    ("tokens", "reason", "models", "line"),
    [
        (1, "length", ["tiny"], "answered 1 token in 0.41 s (finish_reason: length), serving tiny"),
        (2, "stop", ["a", "b"], "answered 2 tokens in 0.41 s (finish_reason: stop), serving a, b"),
        (None, None, [], "answered in 0.41 s (no finish_reason)"),
        (1, "length", ["t"], "answered 1 token in 4.1 ms (finish_reason: length), serving t"),
    ],
)
def test_summary_line_reads_as_a_sentence(tokens, reason, models, line):
    """It ended `served tiny; finish length`."""
    from llamabuild.builder.smoke import SmokeReport

    result = SmokeReport(Path("/opt/x/llama-server"), Path("m.gguf"), False, 8080)
    result.timings = {"chat": 0.4149 if "ms" not in line else 0.0041}
    result.completion_tokens, result.finish_reason, result.models = tokens, reason, models
    assert result.summary() == f"llama-server {line}"


# --- refused before starting: exit 2 --------------------------------------------------------


@pytest.mark.compile
def test_macho_binary_refused_on_linux(capsys, clean_arm64):
    code, _, err = smoke(capsys, "--binary", str(clean_arm64))
    assert code == 2
    assert "is a Mach-O arm64 binary; it cannot run on this Linux x86_64 host" in err


def test_not_a_binary(capsys, tmp_path):
    script = tmp_path / "llama-server"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    code, _, err = smoke(capsys, "--binary", str(script))
    assert code == 2
    assert "not an executable format" in err


def test_not_executable(capsys, programs, tmp_path):
    copy = tmp_path / "llama-server"
    shutil.copy(programs["crash"], copy)
    copy.chmod(0o644)
    code, _, err = smoke(capsys, "--binary", str(copy))
    assert code == 2
    assert "is not executable" in err and "chmod +x" in err


def test_default_binary_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = smoke(capsys)
    assert code == 2
    assert "dist/" in err and "llamabuild build" in err


def test_default_binary_is_the_published_one(capsys, programs, pidfile, tmp_path, monkeypatch):
    from llamabuild.config.recipes import default_recipe_name

    monkeypatch.chdir(tmp_path)
    (tmp_path / "llamabuild.toml").write_text('dist = "my dist"\n')
    target = tmp_path / "my dist" / default_recipe_name() / "llama-server"
    target.parent.mkdir(parents=True)
    shutil.copy2(programs["crash"], target)
    code, _, err = smoke(capsys)
    assert code == 3
    assert "error loading model" in err and str(target) in err.replace("'", "")


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--port", "70000"], ["--port", "-1"]])
def test_bad_numbers(capsys, programs, pidfile, args):
    code, _, err = smoke(capsys, "--binary", str(programs["crash"]), *args)
    assert code == 2 and "error:" in err
    assert not pidfile.exists()


# --- the real llama-server ------------------------------------------------------------------


def _children_of(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.real_llama
@pytest.mark.slow
def test_real_llama_server_serves(capsys, real_llama_server, tmp_path):
    spaced = tmp_path / "My App" / "llama-server"
    spaced.parent.mkdir()
    spaced.symlink_to(real_llama_server)
    before = set(_children_of(os.getpid()))
    code, out, err = smoke(capsys, "--binary", str(spaced), "--timeout", "120", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True and data["host"] == "127.0.0.1"
    assert data["model_generated"] is True
    assert data["models"] and data["completion"]["finish_reason"] in ("length", "stop")
    assert set(data["timings"]) >= {"healthy", "models", "chat", "stop", "total"}
    assert data["stopped_by"] == "SIGINT"
    assert set(_children_of(os.getpid())) <= before  # nothing left running
    assert err == ""  # not a TTY: no progress noise


@pytest.mark.real_llama
@pytest.mark.slow
def test_real_llama_server_human_output(capsys, real_llama_server, tmp_path):
    model = write_tiny_llama(tmp_path / "given model.gguf")
    code, out, _ = smoke(capsys, "--binary", str(real_llama_server), "--model", str(model))
    assert code == 0
    assert "POST /v1/chat/completions (max_tokens 1)" in out
    assert re.search(
        r"OK: llama-server answered 1 token in \d+\.\d+ m?s \(finish_reason: \w+\)", out
    )
    assert "\x1b[" not in out  # plain when not a TTY


# --- a healthy server (a stand-in speaking llama-server's HTTP API) ------------------------

FAKE_SERVER = r"""
import json, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

# smoke stops the server with SIGINT; pytest started as a background job (`pytest &` in a
# script) passes SIGINT on ignored, and Python keeps an ignored SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

port = int(sys.argv[sys.argv.index("--port") + 1])
model = sys.argv[sys.argv.index("--model") + 1]
open(model, "rb").close()  # the model must exist while the server runs


class H(BaseHTTPRequestHandler):
    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"status": "ok"} if self.path == "/health" else {"data": [{"id": "tiny"}]})

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send({"choices": [{"finish_reason": "length"}], "usage": {"completion_tokens": 1}})

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_generated_model_path_exists_after_the_run(programs, tmp_path, monkeypatch):
    """The report named the generated model inside the run's deleted temp dir."""
    from llamabuild.builder.smoke import run_smoke
    from llamabuild.tools.runner import Background, Runner

    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)

    class FakeServer(Runner):
        def start(self, argv, *, log_path, cwd=None) -> Background:
            return super().start(
                [sys.executable, str(script), *argv[1:]], log_path=log_path, cwd=cwd
            )

    result = run_smoke(programs["crash"], timeout=20, runner=FakeServer())
    assert result.model_generated and result.models == ["tiny"]
    assert result.model.is_file(), result.model
    assert result.model.read_bytes()[:4] == b"GGUF"
    assert str(result.model) == to_jsonable(result)["model"]


def test_human_output_of_a_healthy_run(capsys, programs, pidfile, tmp_path, monkeypatch):
    """The whole human output of a run against a server that answers (real processes, real
    HTTP): the last line is one readable sentence."""
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    monkeypatch.setenv("SMOKE_PYTHON", sys.executable)
    monkeypatch.setenv("SMOKE_SERVER_SCRIPT", str(script))
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "dist" / "llama-server"
    target.parent.mkdir()
    shutil.copy2(programs["python_server"], target)
    code, out, err = smoke(capsys, "--binary", str(target), "--timeout", "30")
    assert code == 0, err
    last = out.splitlines()[-1]
    assert re.fullmatch(
        r"OK: llama-server answered 1 token in \d+\.\d+ m?s \(finish_reason: length\), "
        r"serving tiny",
        last,
    ), out
    assert "stop (SIGINT)" in out  # stopped by the first signal, whoever started pytest
    assert_all_gone(pidfile, 1)
