"""Reproducible across users and machines: another Unix user, with another HOME, TMPDIR, source
path and empty caches (no zig cache, no ccache), rebuilds a zig cross build from its
manifest and gets the same sha256, LC_UUID and dSYM UUID (docs/build.md, builder/zigroot.py).

Needs root (useradd); elsewhere it is skipped with the reason. The other user runs this
Python and this checkout, so while the test runs /root gets o+x (traverse, no listing) when
the interpreter lives under it; the mode is put back afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llamabuild.inspect.dsym import dsym_uuids
from llamabuild.inspect.structure import read_uuids
from tests.test_build import PROJECT, ZIG_RECIPE, _have_zig_tools

pytestmark = [
    pytest.mark.slow,
    pytest.mark.second_build,  # the other user's zig builds its libc++ again: ~2-3 min
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to add a second Unix user"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="needs useradd"),
    pytest.mark.skipif(not _have_zig_tools(), reason="needs ziglang, dsymutil-19, llvm-19"),
]
CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    name = f"lb{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    opened: list[tuple[Path, int]] = []
    for path in (Path(sys.executable).resolve(), CHECKOUT):
        for parent in path.parents:
            mode = parent.stat().st_mode & 0o7777
            if not mode & 0o001:
                opened.append((parent, mode))
                parent.chmod(mode | 0o001)
    try:
        yield pwd.getpwnam(name)
    finally:
        for path, mode in reversed(opened):
            path.chmod(mode)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A dir both users can read (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="llamabuild-shared-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _archive(shared: Path) -> tuple[Path, str]:
    """The test project as a .tar.gz anyone can read (an archive pin: a sha256, no path)."""
    out = shared / "llama-src.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(PROJECT, arcname="llama-src")
    out.chmod(0o644)
    return out, hashlib.sha256(out.read_bytes()).hexdigest()


def test_another_user_rebuilds_the_same_bytes(
    other_user: pwd.struct_passwd, shared: Path, tmp_path: Path
) -> None:
    archive, sha = _archive(shared)
    project = tmp_path / "root project"
    (project / "recipes").mkdir(parents=True)
    (project / "recipes" / "test-zig.toml").write_text(ZIG_RECIPE)
    build = [sys.executable, "-m", "llamabuild", "build", "-r", "test-zig", "--json"]
    build += ["--source", str(archive), "--sha256", sha, "--dist", str(shared / "dist")]
    env = {**os.environ, "LLAMABUILD_CACHE": str(tmp_path / "root cache")}
    done = subprocess.run(build, cwd=project, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    dist = shared / "dist" / "test-zig"
    for path in [dist, *dist.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    manifest = json.loads((dist / "manifest.json").read_text())
    binary = next(o for o in manifest["outputs"] if o["role"] == "binary")

    home = Path(other_user.pw_dir)
    theirs = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PYTHONPATH": str(CHECKOUT),
        "LANG": "C.UTF-8",
    }
    argv = [sys.executable, "-m", "llamabuild", "rebuild", str(dist / "manifest.json")]
    argv += ["--out", str(home / "rebuilt"), "--json"]
    script = f"mkdir -p {home / 'tmp'} && cd {home} && exec " + " ".join(f"'{a}'" for a in argv)
    proc = subprocess.run(
        ["setpriv", f"--reuid={other_user.pw_uid}", f"--regid={other_user.pw_gid}",
         "--clear-groups", "sh", "-c", script],
        env=theirs,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    result = json.loads(proc.stdout)
    assert result["compiler_cache"] == "empty" and result["tool_drift"] == []
    assert result["sha256"] == binary["sha256"] and result["uuids"] == binary["uuids"]
    rebuilt = Path(result["binary"])
    assert rebuilt.read_bytes() == (dist / "llama-server").read_bytes()
    assert read_uuids(rebuilt) == dsym_uuids(Path(result["dsym"])) == binary["uuids"]
    theirs_dwarf = Path(result["dsym"]) / "Contents" / "Resources" / "DWARF" / "llama-server"
    ours_dwarf = dist / "llama-server.dSYM" / "Contents" / "Resources" / "DWARF" / "llama-server"
    assert theirs_dwarf.read_bytes() == ours_dwarf.read_bytes()
    assert (home / ".cache" / "llamabuild").stat().st_uid == other_user.pw_uid
