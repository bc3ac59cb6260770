"""Garbage in, exit 2 out; 1,000+ seeded mutations of real Mach-O never crash or hang verify."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamabuild.cli import run
from tests.fixtures.macho import system


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.bin", b"", "empty file"),
        ("text.txt", b"hello world\n" * 10, "not an executable format"),
        ("short", b"\xcf\xfa", "not an executable format"),
        ("magic_only", b"\xcf\xfa\xed\xfe", "truncated"),
        ("fat_huge", b"\xca\xfe\xba\xbe\x00\x00\x10\x00" + b"\0" * 64, "not a Mach-O"),
        (
            "fat_outside",
            b"\xca\xfe\xba\xbe\x00\x00\x00\x01"
            + bytes.fromhex("0100000c00000000000010000010000000000e00"),
            "truncated",
        ),
        ("elf_short", b"\x7fELF\x02\x01\x01" + b"\0" * 20, "ELF"),
        ("zip.zip", b"PK\x03\x04" + b"\0" * 100, "not an executable format"),
    ],
)
def test_garbage_exits_2_with_one_line(tmp_path, capfd, name, content, needle):
    p = tmp_path / name
    p.write_bytes(content)
    code = run(["verify", str(p)])
    err = capfd.readouterr().err
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith("error: ")


def test_missing_and_directory(tmp_path, capfd):
    assert run(["verify", str(tmp_path / "nope")]) == 2
    assert "no such file" in capfd.readouterr().err
    assert run(["verify", str(tmp_path)]) == 2
    assert "is a directory" in capfd.readouterr().err


def test_json_error_object(tmp_path, capfd):
    code = run(["verify", str(tmp_path / "nope"), "--json"])
    out = capfd.readouterr().out
    assert code == 2
    assert json.loads(out) == {
        "ok": False,
        "error": f"{tmp_path / 'nope'}: no such file",
        "hint": "check the path (quote it if it has spaces)",
        "exit_code": 2,
    }


@pytest.mark.compile
@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_every_truncation_of_headers_is_exit_2(macho, tmp_path, capfd, arch):
    binary = macho.build(f"trunc_{arch}", system("libSystem", "Metal"), arch=arch)
    data = binary.read_bytes()
    p = tmp_path / "cut"
    for cut in [*range(1, 64), *range(64, 4096, 97), len(data) - 1]:
        p.write_bytes(data[:cut])
        code = run(["verify", str(p)])
        err = capfd.readouterr().err
        assert code == 2, (cut, err)
        assert "Traceback" not in err


@pytest.mark.compile
@pytest.mark.slow
@pytest.mark.parametrize(("parser", "count"), [("auto", 1200), ("lief", 400)])
def test_one_thousand_mutations_never_crash(macho, clean_arm64, tmp_path, parser, count):
    x86 = macho.build("fuzz_x86", system("libSystem", "libc++"), arch="x86_64")
    fat = macho.fat("fuzz_fat", [clean_arm64, x86])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fixtures.fuzz",
            "1234",
            str(count),
            str(tmp_path),
            str(clean_arm64),
            str(x86),
            str(fat),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "FUZZ_PARSER": parser},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["bad"] == []
    assert set(summary["codes"]) <= {"0", "1", "2"}
    assert summary["count"] == count
    assert summary["tables"] == count // 3  # the rich renderer is fuzzed too (review #27)


@pytest.mark.timeout(20)
def test_fifo_and_device_are_refused_without_reading(tmp_path, capfd):
    """Review #3: /dev/zero was read until OOM and a FIFO blocked forever."""
    fifo = tmp_path / "my pipe"
    os.mkfifo(fifo)
    assert run(["verify", str(fifo)]) == 2
    err = capfd.readouterr().err
    assert "FIFO, not a regular file" in err and "hint:" in err
    assert run(["verify", "/dev/zero", "--json"]) == 2
    assert "not a regular file" in json.loads(capfd.readouterr().out)["error"]
