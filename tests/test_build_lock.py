"""Two builds of one recipe never interleave: each holds its build dirs and dist dir (locks in
the cache) for the whole build. Real processes: a holder process and real `llamabuild build`s."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llamabuild.builder.run import lock_file
from tests.test_build import PROJECT, RECIPE

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

HOLD = """
import sys, time
from pathlib import Path
from llamabuild.core.files import exclusive
with exclusive(Path(sys.argv[1]), "test"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    proj = tmp_path / "My App"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    shutil.copytree(PROJECT, proj / "llama src")
    env = {**os.environ, "LLAMABUILD_CACHE": str(tmp_path / "cache")}
    return proj, env


def build_argv(*extra: str) -> list[str]:
    argv = [sys.executable, "-m", "llamabuild", "build", "-r", "test-native"]
    return [*argv, "--source", "llama src", "--json", *extra]


def hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(ValueError):  # ValueError: its pipes were read and closed
        proc.communicate()  # reaps it and closes its pipes


def test_no_wait_fails_at_once_naming_the_holder(project: tuple[Path, dict[str, str]]) -> None:
    proj, env = project
    lock = lock_file(Path(env["LLAMABUILD_CACHE"]), proj / "dist" / "test-native")
    holder = hold(lock, 60)
    try:
        start = time.monotonic()
        proc = subprocess.run(
            build_argv("--no-wait"), cwd=proj, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 3, proc.stderr
        assert f"pid {holder.pid}" in proc.stderr and "in use by another llamabuild" in proc.stderr
        assert time.monotonic() - start < 30
        assert not (proj / "dist").exists()
    finally:
        stop(holder)


def test_a_second_build_waits_then_runs(project: tuple[Path, dict[str, str]]) -> None:
    proj, env = project
    lock = lock_file(Path(env["LLAMABUILD_CACHE"]), proj / "dist" / "test-native")
    holder = hold(lock, 60)
    build = subprocess.Popen(
        build_argv(), cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(3)
        assert build.poll() is None  # still waiting
        holder.send_signal(signal.SIGKILL)  # a dead holder's lock is dropped by the kernel
        stop(holder)
        _, err = build.communicate(timeout=300)
        assert build.returncode == 0, err[-3000:]
        assert f"waiting for {(proj / 'dist' / 'test-native').resolve()}" in err
        assert f"pid {holder.pid}" in err
        assert (proj / "dist" / "test-native" / "llama-server").is_file()
    finally:
        stop(build)
        stop(holder)


def test_two_real_builds_of_one_recipe_do_not_interleave(
    project: tuple[Path, dict[str, str]],
) -> None:
    """The first real build holds its locks while it runs; a --no-wait second one is refused
    (exit 3) and the first still publishes."""
    proj, env = project
    first = subprocess.Popen(
        build_argv(), cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lock = lock_file(Path(env["LLAMABUILD_CACHE"]), proj / "dist" / "test-native")
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert time.monotonic() < deadline and first.poll() is None, "the build never locked"
            time.sleep(0.05)
        second = subprocess.run(
            build_argv("--no-wait"), cwd=proj, env=env, capture_output=True, text=True, timeout=120
        )
        _, err = first.communicate(timeout=600)
        if second.returncode != 3:  # the first finished before the second tried
            pytest.skip("the first build finished too fast to overlap")
        assert f"pid {first.pid}" in second.stderr
        assert first.returncode == 0, err[-3000:]
    finally:
        stop(first)


def test_a_stale_lock_file_is_taken_over(project: tuple[Path, dict[str, str]]) -> None:
    proj, env = project
    lock = lock_file(Path(env["LLAMABUILD_CACHE"]), proj / "dist" / "test-native")
    lock.parent.mkdir(parents=True)
    lock.write_text("999999\n")  # a crashed run's pid, nobody holds the lock
    proc = subprocess.run(
        build_argv("--no-wait"), cwd=proj, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
