"""The shared compiler cache against a real redis-server (Debian package, ci/install.sh): one
runner fills it, another with an empty local cache hits it; a server stopped, killed mid-build,
absent or full of garbage never fails or corrupts a build; its password is never shown."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llamabuild.builder import remote_cache as rc
from llamabuild.builder.buildplan import RemoteSetting
from llamabuild.cli import run
from llamabuild.config.domain import CcacheSection
from llamabuild.core.errors import ConfigError
from llamabuild.core.redact import redact_url
from llamabuild.tools.ccache import Ccache, parse_stats
from llamabuild.tools.runner import Runner
from tests.test_build import PROJECT, RECIPE
from tests.test_schemas import assert_valid

REDIS = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS is None or shutil.which("cc") is None or Ccache(Runner()).optional() is None,
    reason="needs redis-server (ci/install.sh installs Debian's), a C compiler and ccache",
)
PASSWORD = "pw-s3cret-77"
WARNING = "remote-cache-unavailable"

needs_cc_and_ccache = pytest.mark.skipif(
    shutil.which("cc") is None or Ccache(Runner()).optional() is None,
    reason="needs a C compiler and ccache",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of this test on a free port, in a temp dir, with a password."""

    def __init__(self, where: Path, password: str = PASSWORD) -> None:
        assert REDIS is not None
        self.port = free_port()
        self.password = password
        where.mkdir(parents=True, exist_ok=True)
        argv = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(where)]
        argv += ["--save", "", "--appendonly", "no", "--requirepass", password]
        self.log = (where / "redis.log").open("wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while self.cli("PING") != "PONG":
            assert self.proc.poll() is None and time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return self.url_as("default")

    def url_as(self, user: str, password: str | None = None) -> str:
        """The URL with `user` (`""`: the Redis URI form `redis://:PASSWORD@host`), the
        password written as given (raw: '/', '@', ':' … unescaped)."""
        return f"redis://{user}:{password or self.password}@127.0.0.1:{self.port}"

    def cli(self, *args: str) -> str:
        argv = ["redis-cli", "-p", str(self.port), "--user", "default", "--pass", self.password]
        res = subprocess.run(
            [*argv, "--no-auth-warning", *args], capture_output=True, text=True, check=False
        )
        return res.stdout.strip()

    def keys(self) -> list[str]:
        return [k for k in self.cli("KEYS", "ccache:*").splitlines() if k]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.log.close()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = a project with one recipe; the test CMake project as its local source."""
    proj = tmp_path / "My App"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    shutil.copytree(PROJECT, proj / "llama src")
    monkeypatch.chdir(proj)
    monkeypatch.delenv(rc.ENV_VAR, raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return proj


def build(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runner: str,
    *extra: str,
) -> dict[str, Any]:
    """One build as `runner` (its own LLAMABUILD_CACHE: ccache dir and sources) in an empty
    build dir at one path, as on CI runners (so outputs compare byte for byte); returns --json,
    asserting it published."""
    work = Path.cwd()
    shutil.rmtree(work.parent / "build", ignore_errors=True)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(work.parent / f"cache-{runner}"))
    argv = ["build", "-r", "test-native", "--source", "llama src", "--json", "--force"]
    argv += ["--build-dir", str(work.parent / "build"), *extra]
    code = run(argv)
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["published"], out
    return out


def sha(out: dict[str, Any]) -> str:
    (binary,) = [o for o in out["manifest"]["outputs"] if o["role"] == "binary"]
    return str(binary["sha256"])


def warnings(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in out["findings"] if f["rule"] == WARNING]


@needs_redis
@pytest.mark.parametrize("user", ["default", ""], ids=["user-default", "redis-uri-no-user"])
def test_runner_b_builds_from_runner_a_remote_cache(
    work: Path, redis: RedisServer, capsys: pytest.CaptureFixture[str], monkeypatch: Any, user: str
) -> None:
    """Both `redis://default:PW@` (ccache's own form) and `redis://:PW@` (the Redis URI form,
    which ccache alone would send without AUTH) fill and serve the cache."""
    config_home = work.parent / "xdg-config"  # where ccache reads a user's own config
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    url = redis.url_as(user)
    a = build(capsys, monkeypatch, "a", "--ccache-remote", url)
    stats_a = a["manifest"]["ccache"]
    assert stats_a["remote"] == f"redis://***@127.0.0.1:{redis.port}"
    assert stats_a["compiled"] >= 2 and stats_a["remote_hits"] == 0
    assert stats_a["remote_errors"] == 0 and not warnings(a)
    assert redis.keys(), "runner A stored nothing in Redis"
    monkeypatch.setenv(rc.ENV_VAR, url)  # runner B takes it from the environment
    b = build(capsys, monkeypatch, "b")
    stats_b = b["manifest"]["ccache"]
    looked_up = stats_b["remote_hits"] + stats_b["remote_misses"]
    assert looked_up >= 2 and stats_b["remote_hits"] / looked_up >= 0.95, stats_b
    assert stats_b["compiled"] == 0 and stats_b["local_hits"] == 0
    assert sha(b) == sha(a)
    assert_valid("manifest", b["manifest"])
    # The URL lived in the builds' environment only: no ccache config file was written.
    assert not config_home.exists()
    for conf in work.parent.rglob("ccache.conf"):
        assert "remote" not in conf.read_text(), conf


# Each fault the probe finds before the build, and what its one warning says.
PROBED = {
    "stopped": "Connection refused",
    "nothing-listens": "Connection refused",
    "silent": "no answer within 1 s",  # accepts the connection, never answers
    "wrong-password": "the server refused the password (WRONGPASS",
    "wrong-password-no-user": "the server refused the password (WRONGPASS",
    "no-password": "the server wants a password the URL does not give (NOAUTH",
    "no-such-db": "the server answered SELECT with ERR DB index is out of range",
}


@needs_redis
@pytest.mark.parametrize("fault", [*PROBED, "killed-mid-build"])
def test_remote_fault_never_fails_the_build(
    work: Path,
    redis: RedisServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
    fault: str,
) -> None:
    """A fault found before the build is one warning, and ccache never tries the server (no
    per-compile errors); one during the build is the same single warning after it."""
    # The kill lands while ninja sleeps (later compiles meet a dead server).
    slow = ("-D", "FAKE_SLEEP_SECONDS=2") if fault == "killed-mid-build" else ()
    reference = build(capsys, monkeypatch, "ref", "--ccache-remote", "-", *slow)
    assert reference["manifest"]["ccache"]["remote"] is None
    url = redis.url
    killer: threading.Thread | None = None
    with socket.socket() as silent:
        if fault == "stopped":
            redis.stop()
        elif fault == "nothing-listens":
            url = redis.url.replace(str(redis.port), str(free_port()))
        elif fault == "silent":
            silent.bind(("127.0.0.1", 0))
            silent.listen()  # the kernel completes the handshake; nothing ever replies
            url = redis.url.replace(str(redis.port), str(silent.getsockname()[1]))
        elif fault == "wrong-password":
            url = redis.url_as("default", "not-the-password")
        elif fault == "wrong-password-no-user":
            url = redis.url_as("", "not-the-password")
        elif fault == "no-password":
            url = f"redis://127.0.0.1:{redis.port}"
        elif fault == "no-such-db":
            url = f"{redis.url}/99"
        else:
            killer = threading.Thread(target=_kill_on_first_key, args=(redis,), daemon=True)
            killer.start()
        out = build(capsys, monkeypatch, "faulty", "--ccache-remote", url, *slow)
    stats = out["manifest"]["ccache"]
    if killer is not None:
        killer.join(timeout=30)
        assert redis.proc.returncode == -signal.SIGKILL, "redis was not killed mid-build"
        assert stats["remote_errors"] > 0
    else:  # left out before the first compile: ccache never asked the server anything
        assert stats["remote_errors"] == stats["remote_hits"] == stats["remote_misses"] == 0
        assert stats["compiled"] >= 2
    (warned,) = warnings(out)
    assert warned["severity"] == "warning" and PASSWORD not in json.dumps(out)
    if fault in PROBED:
        assert warned["message"].startswith(f"the shared compiler cache {redact_url(url)}")
        assert f"is not used: {PROBED[fault]}" in warned["message"], warned["message"]
    assert out["manifest"]["verify"]["ok"] and sha(out) == sha(reference)


def _kill_on_first_key(redis: RedisServer) -> None:
    """SIGKILL the server as soon as the build has stored its first object in it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and int(redis.cli("DBSIZE") or 0) == 0:
        time.sleep(0.02)
    redis.stop(signal.SIGKILL)


@needs_redis
def test_garbage_in_redis_does_not_poison_the_output(
    work: Path, redis: RedisServer, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    a = build(capsys, monkeypatch, "a", "--ccache-remote", redis.url)
    keys = redis.keys()
    assert keys
    for i, key in enumerate(keys):  # half: bytes flipped mid-entry; half: not an entry at all
        if i % 2:
            redis.cli("SET", key, "garbage " * 64)
        else:
            middle = int(redis.cli("STRLEN", key)) // 2
            redis.cli("SETRANGE", key, str(middle), "\x7fGARBAGE\xff" * 4)
    b = build(capsys, monkeypatch, "b", "--ccache-remote", redis.url)
    stats = b["manifest"]["ccache"]
    assert stats["compiled"] >= 2 and stats["remote_hits"] < len(keys), stats
    assert sha(b) == sha(a) and b["manifest"]["verify"]["ok"]


@needs_redis
def test_password_never_shown_at_verbose(work: Path, redis: RedisServer, tmp_path: Path) -> None:
    """-v, the build log, manifest, --json and the step summary: the URL only as redis://***@."""
    summary = tmp_path / "summary.md"
    env = {**os.environ, "LLAMABUILD_CACHE": str(tmp_path / "cache-v"), "GITHUB_ACTIONS": "true"}
    env |= {"GITHUB_STEP_SUMMARY": str(summary), rc.ENV_VAR: redis.url}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])  # this tree, installed or not
    argv = [sys.executable, "-m", "llamabuild", "-v", "build", "-r", "test-native"]
    argv += ["--source", "llama src"]
    texts = []
    for extra in ([], ["--json", "--force"]):
        res = subprocess.run([*argv, *extra], env=env, capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr
        texts += [res.stdout, res.stderr]
    assert "CCACHE_REMOTE_STORAGE" in texts[1] and "redis://***@127.0.0.1" in texts[1]
    assert "ccache: local" in texts[0] and "(redis://***@127.0.0.1:" in texts[0]
    out = json.loads(texts[2])
    assert out["manifest"]["ccache"]["remote_errors"] == 0 and redis.keys()
    assert "redis://***@" in summary.read_text()
    for text in texts:
        assert PASSWORD not in text
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_relative_to(tmp_path / "redis"):
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_precedence_cli_then_env_then_project_file() -> None:
    project = CcacheSection(remote="redis://toml:6379")
    env = {rc.ENV_VAR: "http://env:8080/cache"}
    assert rc.resolve("redis://cli:1", env, project) == RemoteSetting(
        "redis://cli:1", "--ccache-remote"
    )
    assert rc.resolve(None, env, project).url == "http://env:8080/cache"
    assert rc.resolve(None, {rc.ENV_VAR: ""}, project).url == "redis://toml:6379"
    assert rc.resolve("-", env, project).url is None
    assert rc.resolve(None, {rc.ENV_VAR: "-"}, project).url is None
    assert rc.resolve(None, {}, CcacheSection()) == RemoteSetting(None, "default")


@pytest.mark.parametrize(
    "bad", ["https://u:pw-s3cret-77@h", "ftp://h", "redis://", "redis://:pw-s3cret-77@h|x=1"]
)
def test_bad_url_refused_without_its_password(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        rc.resolve(bad, {}, CcacheSection())
    assert PASSWORD not in exc.value.message and "--ccache-remote" in exc.value.message


def test_bad_url_in_llamabuild_toml_is_exit_2_without_its_password(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "llamabuild.toml").write_text(f'[ccache]\nremote = "rsync://u:{PASSWORD}@h"\n')
    code = run(["build", "-r", "test-native", "--source", "llama src", "--dry-run", "--json"])
    cap = capsys.readouterr()
    assert code == 2 and "ccache.remote" in cap.err and "rsync://***@h" in cap.err
    assert PASSWORD not in cap.out + cap.err


def test_redaction_and_storage_value() -> None:
    assert redact_url("redis://u:p@ss@h:1/0") == "redis://***@h:1/0"
    assert redact_url("http://h:8080/c") == "http://h:8080/c"
    value = rc.storage_value("redis://h:1")
    assert value == "redis://h:1|connect-timeout=500|operation-timeout=3000"
    assert rc.probe(f"redis://127.0.0.1:{free_port()}") is not None
    assert parse_stats("remote_storage_hit\t3\nodd line\nx\t-1\n") == {"remote_storage_hit": 3}


@pytest.mark.parametrize(
    ("url", "given"),
    [
        ("redis://h:1", "redis://h:1"),
        ("redis://:pw@h:1", "redis://pw@h:1"),  # ccache: `:pw@` is no AUTH, `pw@` is AUTH pw
        ("redis://pw@h", "redis://pw@h"),
        ("redis://default:pw@h:1/2", "redis://default:pw@h:1/2"),
        ("redis://:a:b@h", "redis://default:a%3Ab@h"),  # ccache would split a:b at the ':'
        ("redis://a%3Ab@h", "redis://default:a%3Ab@h"),
        ("redis://:@h", "redis://h"),
        ("redis://default:S3/CRET@h", "redis://default:S3%2FCRET@h"),
        ("redis://u:a@b/c:d#e?f&%@[::1]:7", "redis://u:a%40b%2Fc%3Ad%23e%3Ff%26%25@[::1]:7"),
        ("redis://u:S3%2FCRET@h", "redis://u:S3%2FCRET@h"),
        ("http://u:p/w@h:8/x/y", "http://u:p%2Fw@h:8/x/y"),
        ("http://:pw@h/c", "http://:pw@h/c"),  # Basic auth with an empty user: as written
        ("http://token@h/c", "http://token@h/c"),
    ],
)
def test_url_handed_to_ccache(url: str, given: str) -> None:
    """The user-info runs to the last '@' and reaches ccache percent-encoded, in the form ccache
    reads as the same AUTH a Redis client sends for the URL; the rest as written."""
    value = rc.storage_value(url)
    assert value.partition("|")[0] == given
    assert "@" not in given or redact_url(value).split("@")[0].endswith("://***")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://h:0", "its port is not a number from 1 to 65535"),
        ("redis://h:99999", "its port is not a number from 1 to 65535"),
        ("redis://default:pw", "not a host name"),  # `@host` forgotten
        ("redis://h/x", "a redis:// URL ends in /DB"),
        ("redis://:pw@h/0?x", "no ?query or #fragment"),
        ("http://h/a%zz", "percent-encode them"),
        ("redis://:pw@", "it names no host"),
    ],
)
def test_url_ccache_cannot_parse_is_exit_2(url: str, why: str) -> None:
    """Refused before the build: ccache itself would print the whole URL, password and all,
    on every compile."""
    with pytest.raises(ConfigError) as exc:
        rc.resolve(url, {}, CcacheSection())
    assert exc.value.exit_code == 2 and why in exc.value.message and "pw" not in exc.value.message


# Hostile passwords: two tokens around the characters that ended the old redaction, so a
# redaction that stops inside one shows the other. A space or '|' only percent-encoded
# (raw, both are refused: '|' separates ccache's attributes).
SECRET_A, SECRET_B, WRONG = "Alpha7qX", "Omega9zY", "Wrong4bD"
HOSTILE = {
    "slash": "/",
    "colon": ":",
    "at": "@",
    "hash-query-amp": "#?&",
    "all": "/:@#?&%",
}
TOKENS = (SECRET_A, SECRET_B, WRONG)


def _ccache_compile(tmp: Path, runner: str, url: str, source: str) -> dict[str, int]:
    """One compile through ccache as `runner` (its own, empty local cache), with the remote
    as llamabuild hands it to ccache; its counters. ccache must print nothing (it prints a
    URL it cannot use whole)."""
    exe = Ccache(Runner()).optional()
    assert exe is not None
    (tmp / "t.c").write_text(source)
    env = {**os.environ, "CCACHE_DIR": str(tmp / f"ccache-{runner}"), "CCACHE_CONFIGPATH": "/"}
    env[rc.STORAGE_ENV] = rc.storage_value(url)
    argv = [str(exe), "cc", "-c", str(tmp / "t.c"), "-o", str(tmp / "t.o")]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=tmp)
    assert res.returncode == 0 and not res.stdout + res.stderr
    stats = subprocess.run(
        [str(exe), "--print-stats"], env=env, capture_output=True, text=True, check=True
    )
    return parse_stats(stats.stdout)


@needs_redis
@pytest.mark.parametrize(
    ("password", "written"),
    [
        (PASSWORD, PASSWORD),
        *((f"{SECRET_A}{chars}{SECRET_B}",) * 2 for chars in HOSTILE.values()),
        (f"{SECRET_A} |{SECRET_B}", f"{SECRET_A}%20%7C{SECRET_B}"),
    ],
    ids=["plain", *HOSTILE, "space-pipe-encoded"],
)
def test_both_url_forms_authenticate_ccache(tmp_path: Path, password: str, written: str) -> None:
    """ccache itself, with `redis://default:PW@` and `redis://:PW@` as llamabuild hands them
    on, against a real requirepass server: runner A stores, runner B (empty local cache) hits."""
    server = RedisServer(tmp_path / "redis", password)
    try:
        for n, user in enumerate(["default", ""]):
            url = server.url_as(user, written)
            assert rc.probe(url) is None
            assert redact_url(url) == f"redis://***@127.0.0.1:{server.port}"
            source = f"int f{n}(int x) {{ return x * {n + 3}; }}\n"  # a new key per form
            a = _ccache_compile(tmp_path, f"a{n}", url, source)
            b = _ccache_compile(tmp_path, f"b{n}", url, source)
            assert (a["remote_storage_miss"], a["remote_storage_error"]) == (1, 0), a
            assert (b["remote_storage_hit"], b["remote_storage_error"]) == (1, 0), b
        assert len(server.keys()) >= 2
    finally:
        server.stop()


@needs_redis
@pytest.mark.parametrize("chars", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_password_never_shown(work: Path, tmp_path: Path, chars: str) -> None:
    """-v, stdout, --json, the GitHub annotation, the step summary, manifest.json and every
    file the builds leave: neither token of a password holding `chars`, with the right
    password (from the environment) nor a wrong one (on the command line: one warning)."""
    password = f"{SECRET_A}{chars}{SECRET_B}"
    server = RedisServer(tmp_path / "redis", password)
    summary = tmp_path / "summary.md"
    env = {**os.environ, "LLAMABUILD_CACHE": str(tmp_path / "cache"), "GITHUB_ACTIONS": "true"}
    env |= {"GITHUB_STEP_SUMMARY": str(summary), rc.ENV_VAR: server.url_as("", password)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    argv = [sys.executable, "-m", "llamabuild", "-v", "build", "-r", "test-native"]
    argv += ["--source", "llama src", "--json", "--force"]
    wrong = server.url_as("default", password.replace(SECRET_B, WRONG))
    texts = []
    try:
        for extra in ([], ["--ccache-remote", wrong]):
            res = subprocess.run(
                [*argv, *extra], env=env, capture_output=True, text=True, check=False
            )
            assert res.returncode == 0, "build failed"
            texts += [res.stdout, res.stderr]
            out = json.loads(res.stdout)
            stats = out["manifest"]["ccache"]
            assert stats["remote"] == f"redis://***@127.0.0.1:{server.port}"
            if extra:
                (warned,) = warnings(out)
                assert "refused the password" in warned["message"]
                assert "::warning" in res.stderr and "redis://***@127.0.0.1" in res.stderr
            else:
                assert not warnings(out) and stats["remote_misses"] >= 2
    finally:
        server.stop()
    assert "redis://***@127.0.0.1" in summary.read_text()
    for text in texts:
        assert not [t for t in TOKENS if t in text]
    manifests = list(work.rglob("manifest.json"))
    assert manifests
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_relative_to(tmp_path / "redis"):
            data = path.read_bytes()
            assert not [t for t in TOKENS if t.encode() in data], path


REJECTED = {
    "one-slash": f"redis:/default:{SECRET_A}@cache.example",
    "no-slash": f"redis:default:{SECRET_A}@cache.example",
    "space": f"redis://default:{SECRET_A} {SECRET_B}@cache.example",
    "pipe": f"redis://:{SECRET_A}|{SECRET_B}@cache.example",
    "newline": f"redis://:{SECRET_A}\n{SECRET_B}@cache.example",
    "no-host": f"redis://default:{SECRET_A}/{SECRET_B}",
    "bad-port": f"redis://default:{SECRET_A}@cache.example:99999",
    "query": f"redis://:{SECRET_A}@cache.example/0?{SECRET_B}",
    "no-scheme": f"{SECRET_A}:{SECRET_B}@cache.example",
    "bare": f"{SECRET_A}:{SECRET_B}",
    "attribute": f"http://cache.example/c|bearer-token={SECRET_A}",
}


@pytest.mark.parametrize("where", ["cli", "env", "toml"])
@pytest.mark.parametrize("url", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_url_error_shows_no_secret(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any, where: str, url: str
) -> None:
    """A URL refused from any of its three places: one `error:` line and a `hint:` (or the
    --json error object), exit 2, and nothing of what could be its password."""
    argv = ["build", "-r", "test-native", "--source", "llama src", "--dry-run"]
    if where == "cli":
        argv += ["--ccache-remote", url]
    elif where == "env":
        monkeypatch.setenv(rc.ENV_VAR, url)
    else:
        (work / "llamabuild.toml").write_text(f"[ccache]\nremote = {json.dumps(url)}\n")
    assert run(argv) == 2
    cap = capsys.readouterr()
    (error, hint) = cap.err.splitlines()
    assert error.startswith("error: ") and hint.startswith("hint: ") and not cap.out
    assert run([*argv, "--json"]) == 2
    out = capsys.readouterr().out
    assert json.loads(out)["exit_code"] == 2
    assert not [t for t in TOKENS if t in cap.err + out]


class _Store(BaseHTTPRequestHandler):
    """A minimal HTTP cache for ccache's http backend: GET/HEAD/PUT/DELETE on paths, in memory
    (the server's `store`), Basic auth required."""

    protocol_version = "HTTP/1.1"

    def _authorized(self) -> bool:
        want = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self._reply(401)
        return False

    def _reply(self, code: int, body: bytes = b"") -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if self._authorized():
            found = self.server.store.get(self.path)  # type: ignore[attr-defined]
            if found is None:
                self._reply(404)
            else:
                self._reply(200, found)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self._authorized():
            self.server.store[self.path] = body  # type: ignore[attr-defined]
            self._reply(201)

    def do_DELETE(self) -> None:
        if self._authorized():
            self.server.store.pop(self.path, None)  # type: ignore[attr-defined]
            self._reply(204)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_cache() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    server.store = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@needs_cc_and_ccache
def test_http_remote_cache_shared_by_two_runners(
    work: Path,
    http_cache: ThreadingHTTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
) -> None:
    port = http_cache.server_address[1]
    url = f"http://user:{PASSWORD}@127.0.0.1:{port}/ccache"
    a = build(capsys, monkeypatch, "a", "--ccache-remote", url)
    assert a["manifest"]["ccache"]["remote"] == f"http://***@127.0.0.1:{port}/ccache"
    assert http_cache.store and not warnings(a)  # type: ignore[attr-defined]
    b = build(capsys, monkeypatch, "b", "--ccache-remote", url)
    stats = b["manifest"]["ccache"]
    assert stats["remote_hits"] >= 2 and stats["compiled"] == 0, stats
    assert sha(b) == sha(a) and PASSWORD not in json.dumps(b)


@needs_cc_and_ccache
def test_http_wrong_password_is_one_warning_before_the_build(
    work: Path,
    http_cache: ThreadingHTTPServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
) -> None:
    """The probe's HEAD gets 401: the remote is left out, ccache never sends it a request."""
    port = http_cache.server_address[1]
    out = build(
        capsys, monkeypatch, "a", "--ccache-remote", f"http://user:{WRONG}@127.0.0.1:{port}/c"
    )
    (warned,) = warnings(out)
    assert "is not used: the server refused the credentials (HTTP 401)" in warned["message"]
    stats = out["manifest"]["ccache"]
    assert stats["remote_errors"] == stats["remote_misses"] == 0 and stats["compiled"] >= 2
    assert not http_cache.store and WRONG not in json.dumps(out)  # type: ignore[attr-defined]
