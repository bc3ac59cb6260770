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


def build_real(recipe: str, *extra: str) -> RealBuild:
    """Run the real CLI (a subprocess, as a user would) and return what it reported."""
    cwd = work_dir()
    argv = [sys.executable, "-m", "llamabuild", "build", "-r", recipe, "--json"]
    argv += ["--source", SDIST_URL, "--sha256", SDIST_SHA256, "--ref", LLAMA_COMMIT, *extra]
    argv += ["--lock", str(cwd / "llamabuild.lock"), "--build-dir", str(build_dir())]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"raw_stdout": proc.stdout}
    else:
        from tests.test_schemas import assert_command_json

        assert_command_json(result, "build")  # or the error object
    return RealBuild(recipe, proc.returncode, result, proc.stderr, cwd / "dist" / recipe)


def built(recipe: str) -> RealBuild:
    """build_real, failing the test (with the log's tail) unless it published."""
    build = build_real(recipe)
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
