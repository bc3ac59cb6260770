"""Session fixtures around the real llama.cpp build: `llamabuild build` of llama-server from the
llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e570 in vendor/llama.cpp) with linux-x86_64-static.

The build runs once per session through the real CLI, in a work dir (and build dir) new for
the session: nothing published or configured by an earlier session is reused, so every session
compiles and links again. The compiler caches stay warm (ccache and zig's cache are
content-addressed: a hit is the same object), which makes that seconds to minutes. The work dir
is removed at the end of the session. LLAMABUILD_TEST_LLAMA_SERVER=/path/to/llama-server skips
the build and uses that binary.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SDIST_URL = (
    "https://files.pythonhosted.org/packages/ec/e9/"
    "e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/"
    "llama_cpp_python-0.3.36.tar.gz"
)
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_COMMIT = "0c1e570"
BUILD_TIMEOUT = 45 * 60


@dataclass(frozen=True)
class RealBuild:
    """One `llamabuild build` run: its exit code, JSON answer and published dir."""

    recipe: str
    returncode: int
    result: dict[str, Any]
    stderr: str
    dist: Path

    @property
    def binary(self) -> Path:
        return self.dist / "llama-server"

    @property
    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.dist / "manifest.json").read_text())
        return data


@functools.cache
def work_dir() -> Path:
    """This session's own work dir (under the llamabuild cache, beside what it builds)."""
    from llamabuild.source.cache import cache_root

    root = cache_root() / "pytest-real-llama"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="session-", dir=root))


@functools.cache
def build_dir() -> Path:
    """This session's own build root, at the depth of the default one (`<cache>/builds/<x>`):
    ccache turns the include paths under its base dir into paths relative to the build dir,
    so a build dir one level deeper misses every object the quick start compiled (measured:
    the whole zig cross build compiled again)."""
    from llamabuild.source.cache import cache_root

    root = cache_root() / "builds"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="pytest-session-", dir=root))


@pytest.fixture(scope="session", autouse=True)
def _real_llama_work_dir_removed() -> Iterator[None]:
    yield
    if work_dir.cache_info().currsize:
        shutil.rmtree(work_dir(), ignore_errors=True)
    if build_dir.cache_info().currsize:
        shutil.rmtree(build_dir(), ignore_errors=True)


def build_argv(recipe: str, *extra: str) -> list[str]:
    cwd = work_dir()
    argv = [sys.executable, "-m", "llamabuild", "build", "-r", recipe, "--json"]
    argv += ["--source", SDIST_URL, "--sha256", SDIST_SHA256, "--ref", LLAMA_COMMIT, *extra]
    return [*argv, "--lock", str(cwd / "llamabuild.lock"), "--build-dir", str(build_dir())]


def build_real(recipe: str, *extra: str) -> RealBuild:
    """Run the real CLI (a subprocess, as a user would) and return what it reported."""
    cwd = work_dir()
    argv = build_argv(recipe, *extra)
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    return _reported(recipe, proc.returncode, proc.stdout, proc.stderr)


def _reported(recipe: str, code: int, stdout: str, stderr: str) -> RealBuild:
    try:
        result = json.loads(stdout)
    except ValueError:
        result = {"raw_stdout": stdout}
    else:
        from tests.test_schemas import assert_command_json

        assert_command_json(result, "build")  # or the error object
    return RealBuild(recipe, code, result, stderr, work_dir() / "dist" / recipe)


# --- the session's real builds, started in the background ------------------------------------
#
# The rest of the suite is mostly one process on one core while a real build keeps both busy
# only when it runs alone: the builds the collected tests need start when the session does, in
# the order they are needed, and run beside the other tests. They run detached (a daemon whose
# parent has exited), so no build under test sees their compilers as its own children: an
# interrupted in-process build kills the descendants it did not start with.

RECIPE_OF_FIXTURE = {
    "real_llama_build": "linux-x86_64-static",
    "real_llama_server": "linux-x86_64-static",
    "real_cross_build": "macos-arm64-cpu-cross",
}
_needed: list[str] = []

DAEMON = r"""
import json, os, subprocess, sys
jobs = json.loads(open(sys.argv[1]).read())
if os.fork():
    os._exit(0)
os.setsid()
with open(sys.argv[2], "w") as fh:
    fh.write(str(os.getpid()))
for job in jobs:
    with open(job["out"], "wb") as out, open(job["err"], "wb") as err:
        code = subprocess.run(job["argv"], cwd=job["cwd"], stdout=out, stderr=err,
                              stdin=subprocess.DEVNULL).returncode
    with open(job["rc"] + ".tmp", "w") as fh:
        fh.write(str(code))
    os.replace(job["rc"] + ".tmp", job["rc"])
"""


@dataclass(frozen=True)
class Prebuild:
    recipe: str
    out: Path
    err: Path
    rc: Path

    def wait(self) -> RealBuild:
        deadline = time.monotonic() + BUILD_TIMEOUT
        while not self.rc.exists():
            if time.monotonic() > deadline:
                pytest.fail(f"the background build of {self.recipe} took over {BUILD_TIMEOUT} s")
            time.sleep(1)
        code = int(self.rc.read_text())
        out = self.out.read_text(errors="replace")
        return _reported(self.recipe, code, out, self.err.read_text(errors="replace"))


_prebuilds: dict[str, Prebuild] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """The recipes the collected tests build, in the order the first of them runs."""
    served = bool(os.environ.get("LLAMABUILD_TEST_LLAMA_SERVER"))
    for item in session.items:
        for name in getattr(item, "fixturenames", ()):
            recipe = RECIPE_OF_FIXTURE.get(name)
            if recipe is None or (served and name == "real_llama_server"):
                continue
            if recipe not in _needed:
                _needed.append(recipe)


@pytest.fixture(scope="session", autouse=True)
def _start_real_builds(
    _shared_zig_root: None, _real_llama_work_dir_removed: None
) -> Iterator[None]:
    """Start the needed builds with the session's environment (the shared zig root set,
    no test's monkeypatch yet); at the end, stop what still runs (a session cut short)."""
    if not _needed or os.environ.get("LLAMABUILD_TEST_SERIAL_BUILDS"):
        yield
        return
    cwd = work_dir()
    jobs = []
    for recipe in _needed:
        pre = Prebuild(recipe, *(cwd / f"{recipe}.{x}" for x in ("out", "err", "rc")))
        _prebuilds[recipe] = pre
        jobs.append(
            {
                "argv": build_argv(recipe),
                "cwd": str(cwd),
                "out": str(pre.out),
                "err": str(pre.err),
                "rc": str(pre.rc),
            }
        )
    (cwd / "jobs.json").write_text(json.dumps(jobs))
    pid_file = cwd / "daemon.pid"
    launcher = [sys.executable, "-c", DAEMON, str(cwd / "jobs.json"), str(pid_file)]
    subprocess.run(launcher, check=True, env=dict(os.environ), timeout=60)
    yield
    if all(pre.rc.exists() for pre in _prebuilds.values()):
        return
    import psutil

    from llamabuild.core.processes import kill_all

    try:
        daemon = psutil.Process(int(pid_file.read_text()))
        kill_all([*daemon.children(recursive=True), daemon])
    except (OSError, ValueError, psutil.Error):
        pass


def built(recipe: str) -> RealBuild:
    """build_real (or its background run), failing the test (with the log's tail) unless it
    published."""
    pre = _prebuilds.get(recipe)
    build = pre.wait() if pre is not None else build_real(recipe)
    if build.returncode != 0:
        tail = "\n".join(build.stderr.splitlines()[-40:])
        pytest.fail(f"llamabuild build failed ({build.returncode}): {build.result}\n{tail}")
    return build


@pytest.fixture(scope="session")
def real_llama_build() -> RealBuild:
    return built("linux-x86_64-static")


@pytest.fixture(scope="session")
def real_cross_build() -> RealBuild:
    """The zig cross build to macOS arm64 (llama-server + dSYM), once per session."""
    return built("macos-arm64-cpu-cross")


@pytest.fixture(scope="session")
def real_llama_server(request: pytest.FixtureRequest) -> Path:
    """A real llama-server built from the llama-cpp-python sdist with linux-x86_64-static."""
    env = os.environ.get("LLAMABUILD_TEST_LLAMA_SERVER")
    if env:
        return Path(env)
    build: RealBuild = request.getfixturevalue("real_llama_build")
    return build.binary
