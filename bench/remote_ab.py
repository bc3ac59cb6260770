"""Two CI runners sharing one compiler cache: a throwaway redis-server for bench/build.py.

Runner A's cold `llamabuild build --ccache-remote redis://…` fills it; then A's whole cache dir
(sources, ccache, build trees) is deleted and runner B builds at the same paths (as on CI,
where every runner checks out into the same workspace) with an empty local cache. B's time ÷
A's is the figure (goal ≤ 0.1). Needs `redis-server` (Debian package), not pytest.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(where: Path) -> Iterator[str]:
    """A redis-server on a free 127.0.0.1 port with its files in `where`; yields its URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("--remote-cache needs redis-server (apt-get install redis-server)")
    where.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(where)]
    argv += ["--save", "", "--appendonly", "no"]
    with (where / "redis.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"redis-server did not start; see {where / 'redis.log'}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def hit_rate(manifest: Path) -> str:
    """`remote hits / lookups` from a build's manifest.json, as text."""
    import json

    stats = json.loads(manifest.read_text()).get("ccache") or {}
    hits, misses = stats.get("remote_hits", 0), stats.get("remote_misses", 0)
    return f"{hits}/{hits + misses} remote hits, {stats.get('compiled', '?')} compiled"
