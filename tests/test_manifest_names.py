"""A manifest names folders and files (the recipe, its slices, its target, its outputs), and
`rebuild` turns them into paths under --out and the cache: a name that is a path (`..`, `/`,
NUL) is refused when the manifest is read (exit 2), before anything is written or deleted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llamabuild.builder import manifest as mf
from llamabuild.core.errors import ConfigError


def manifest(**changes: Any) -> dict[str, Any]:
    spec = {
        "name": "linux-x86_64-static",
        "description": "d",
        "platform": "linux",
        "archs": ["x86_64"],
        "target": "llama-server",
    }
    data: dict[str, Any] = {
        "schema": 1,
        "recipe": "linux-x86_64-static",
        "source": {"kind": "archive", "url": "/x/l.tar.gz", "commit": None, "sha256": "e" * 64},
        "slices": [
            {
                "recipe": "linux-x86_64-static",
                "archs": ["x86_64"],
                "cache_entries": {},
                "configure_argv": [],
                "build_argv": [],
                "spec": dict(spec),
            }
        ],
        "versions": {},
        "compilers": {},
        "host": {},
        "outputs": [{"path": "llama-server", "role": "binary", "sha256": "a" * 64}],
        "inputs_key": "k",
        "verify": {"ok": True, "findings": []},
        "built_at": "2026-01-01T00:00:00+00:00",
        "recipe_spec": dict(spec),
    }
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[leaf] = value
    return data


HOSTILE = {
    "recipe": "./../../victim",
    "recipe_spec.name": "../victim",
    "slices.0.recipe": "a/b",
    "slices.0.spec.name": "..",
    "recipe_spec.target": "../../bin/sh",
    "recipe_spec.archs": ["../x"],
    "outputs.0.path": "../../precious.txt",
    "source.subdir": "../../etc",
    "slices.0.archs": ["a\x00b"],
}


def test_the_shape_llamabuild_writes_is_read(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest()))
    assert mf.read(path).recipe == "linux-x86_64-static"


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_a_path_where_a_name_belongs_is_refused(tmp_path: Path, key: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest(**{key: HOSTILE[key]})))
    with pytest.raises(ConfigError) as err:
        mf.read(path)
    leaf = key.split(".")[-1]
    assert leaf in err.value.message, err.value.message


@pytest.mark.parametrize(
    "key", ["recipe", "recipe_spec.name", "slices.0.spec.name", "outputs.0.path"]
)
def test_rebuild_writes_and_deletes_nothing_outside_out(tmp_path: Path, key: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    out = tmp_path / "a" / "b" / "out"
    out.mkdir(parents=True)
    value = "./../../victim" if key != "outputs.0.path" else "../../victim/precious.txt"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest(**{key: value})))
    cache = tmp_path / "cache"
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))  # the cache: not yet
    proc = subprocess.run(
        [sys.executable, "-m", "llamabuild", "rebuild", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "LLAMABUILD_CACHE": str(cache)},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert (victim / "precious.txt").read_text() == "keep me"
    after = [p.relative_to(tmp_path) for p in tmp_path.rglob("*")]
    assert sorted(p for p in after if p.parts[0] != "cache") == before  # $LLAMABUILD_CACHE


@pytest.mark.parametrize(
    ("key", "value"),
    [("source.date_epoch", 10**30), ("source.date_epoch", -1), ("outputs.0.size", -5)],
)
def test_numbers_out_of_range_are_refused_when_read(tmp_path: Path, key: str, value: int) -> None:
    """A date_epoch of 10**30 was found only after the whole build ran (exit 3)."""
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest(**{key: value})))
    with pytest.raises(ConfigError) as err:
        mf.read(path)
    assert key.split(".")[-1] in err.value.message and "outside" in err.value.message
    assert len(err.value.message) < 300


@pytest.mark.skipif(sys.platform == "darwin", reason="a macOS manifest is runnable on a Mac")
def test_rebuild_of_a_macos_manifest_on_linux_is_refused_before_any_work(tmp_path: Path) -> None:
    """It used to fetch the source and fail deep inside cmake (exit 3)."""
    mac = {"platform": "macos", "toolchain": "native", "archs": ["arm64"], "name": "mac"}
    data = manifest(recipe="mac")
    data["recipe_spec"].update(mac)
    data["slices"][0]["spec"].update(mac)
    data["slices"][0].update(recipe="mac", archs=["arm64"])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "llamabuild", "rebuild", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "LLAMABUILD_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot run on this machine" in proc.stderr and "Traceback" not in proc.stderr
