"""Every reader of a manifest.json (no-op check, rebuild, verify-model --manifest,
release-summary) goes through builder/manifest.read: a regular file only (a FIFO never blocks,
/dev/zero is never read), at most MAX_BYTES, JSON nested too deep is bad input, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamabuild.builder import manifest as mf
from llamabuild.core.errors import ConfigError


def _hostile(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    big = tmp_path / "big.json"
    with big.open("wb") as fh:  # sparse: 400 MB on paper, nothing on disk
        fh.truncate(400 << 20)
    nul = tmp_path / "nul.json"
    nul.write_bytes(b'{"recipe": "a\\u0000b"}')
    return {"fifo": fifo, "deep": deep, "big": big, "zero": Path("/dev/zero"), "nul": nul}


def test_read_refuses_what_is_no_manifest(tmp_path: Path) -> None:
    for name, path in _hostile(tmp_path).items():
        with pytest.raises(ConfigError) as err:
            mf.read(path)
        assert err.value.hint, name


@pytest.mark.parametrize("command", ["rebuild", "verify-model"])
def test_commands_exit_2_on_a_hostile_manifest(tmp_path: Path, command: str) -> None:
    for name, path in _hostile(tmp_path).items():
        argv = [sys.executable, "-m", "llamabuild", command]
        argv += [str(path)] if command == "rebuild" else ["--manifest", str(path), "/dev/null"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, name
