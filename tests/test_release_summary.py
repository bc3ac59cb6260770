"""`llamabuild release-summary` on artifacts of real builds of tests/cmake_project, laid out as
the release matrix's final job downloads them (one directory per recipe)."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from tests.test_build import PROJECT, RECIPE

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/test-native/ of one real build, plus the verify.json the workflow writes."""
    proj = tmp_path_factory.mktemp("release") / "My App"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    shutil.copytree(PROJECT, proj / "llama src")
    old = Path.cwd()
    os.chdir(proj)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLAMABUILD_CACHE", str(proj.parent / "cache"))
        mp.delenv("LLAMABUILD_CCACHE_REMOTE", raising=False)
        try:
            argv = ["build", "-r", "test-native", "--source", "llama src", "--ccache-remote", "-"]
            assert run(argv) == 0
            dist = proj / "dist" / "test-native"
            with (dist / "verify.json").open("w") as out, redirect_stdout(out):
                assert run(["verify", str(dist / "llama-server"), "--json"]) == 0
        finally:
            os.chdir(old)
    return dist


def summary(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["release-summary", str(root), "--json"])
    return code, json.loads(capsys.readouterr().out)


def release(tmp_path: Path, artifact: Path, *names: str) -> Path:
    for name in names:
        shutil.copytree(artifact, tmp_path / "release" / name)
    return tmp_path / "release"


def test_every_recipe_in_one_summary(
    tmp_path: Path, artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = release(tmp_path, artifact, "llama-server-a", "llama-server-b")
    code, out = summary(capsys, root)
    assert code == 0 and out["ok"]
    manifest = json.loads((artifact / "manifest.json").read_text())
    (binary,) = [o for o in manifest["outputs"] if o["role"] == "binary"]
    assert [e["binary_sha256"] for e in out["recipes"]] == [binary["sha256"]] * 2
    assert all(e["verify_json"] is True and e["ccache"] for e in out["recipes"])


def test_a_failed_verify_makes_the_release_fail(
    tmp_path: Path, artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = release(tmp_path, artifact, "good", "bad")
    verify = root / "bad" / "verify.json"
    data = json.loads(verify.read_text())
    data["ok"] = False
    data["findings"] = [
        {"rule": "elf-needed", "severity": "error", "message": "NEEDED libfoo.so", "arch": None}
    ]
    verify.write_text(json.dumps(data))
    code, out = summary(capsys, root)
    assert code == 1 and not out["ok"]
    assert [e["verify_json"] for e in out["recipes"]] == [False, True]


@pytest.mark.parametrize("case", ["empty", "garbage", "fifo", "wrong shape"])
def test_bad_release_dir_is_exit_2(
    tmp_path: Path, artifact: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    root = release(tmp_path, artifact, "one") if case != "empty" else tmp_path
    verify = root / "one" / "verify.json"
    if case == "garbage":
        verify.write_bytes(b"\x00{not json")
    elif case == "fifo":
        verify.unlink()
        os.mkfifo(verify)  # never opened: a FIFO would block a read
    elif case == "wrong shape":
        verify.write_text('{"ok": true, "findings": [{"rule": 3}]}')
    code, out = summary(capsys, root)
    assert code == 2 and out["ok"] is False and "error" in out


def test_human_table_names_every_recipe(
    tmp_path: Path, artifact: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = release(tmp_path, artifact, "llama-server-x")
    capsys.readouterr()
    assert run(["release-summary", str(root)]) == 0
    out = capsys.readouterr().out
    assert "test-native" in out and "ok (0 error(s)" in out and "local" in out
