"""ELF (Linux builds) through verify: NEEDED, RPATH/RUNPATH, interpreter, static vs glibc policy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llamabuild.cli import run

CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler")


def build(tmp: Path, name: str, *flags: str) -> Path:
    src = tmp / "m.c"
    src.write_text(
        "#include <stdio.h>\n#include <math.h>\nint main(int c, char **v)"
        '{ printf("%f\\n", sqrt((double)c)); return 0; }\n'
    )
    out = tmp / name
    subprocess.run([CC, str(src), "-o", str(out), *flags], check=True, capture_output=True)
    return out


def verify(capsys, *args: str) -> tuple[int, dict]:
    code = run(["verify", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_dynamic_glibc_only_passes_glibc_policy(tmp_path, capsys):
    b = build(tmp_path, "dyn", "-lm")
    code, rep = verify(capsys, str(b))
    assert rep["format"] == "elf"
    (sl,) = rep["slices"]
    assert {"name": "libc.so.6", "kind": "needed"} in sl["dylibs"]
    assert sl["interpreter"].startswith("/lib")
    assert code == 0, rep["findings"]
    code, rep = verify(capsys, str(b), "--elf-policy", "static")
    assert code == 1
    assert {f["rule"] for f in rep["findings"]} == {"elf-needed"}


def test_static_binary_passes_static_policy(tmp_path, capsys):
    try:
        b = build(tmp_path, "static", "-static", "-lm")
    except subprocess.CalledProcessError:
        pytest.skip("no static libc here")
    code, rep = verify(capsys, str(b), "--elf-policy", "static")
    assert code == 0, rep["findings"]
    assert rep["slices"][0]["dylibs"] == []


def test_rpath_and_foreign_needed(tmp_path, capsys):
    b = build(tmp_path, "rp", "-Wl,--no-as-needed", "-lm", "-lstdc++", "-Wl,-rpath,/opt/x/lib")
    code, rep = verify(capsys, str(b))
    assert code == 1
    assert rep["slices"][0]["rpaths"] == ["/opt/x/lib"]
    rules = {(f["rule"], f["severity"]) for f in rep["findings"]}
    assert ("elf-needed", "error") in rules and ("elf-rpath", "warning") in rules


def test_truncated_elf_is_exit_2(tmp_path, capfd):
    b = build(tmp_path, "dyn", "-lm")
    cut = tmp_path / "cut"
    cut.write_bytes(b.read_bytes()[:3000])
    assert run(["verify", str(cut)]) == 2
    assert "truncated" in capfd.readouterr().err


def test_arch_not_allowed_message_lists_names(tmp_path, capsys):
    """Review #13: the ELF message printed the tuple repr ('arm64',)."""
    b = build(tmp_path, "dyn", "-lm")
    code, rep = verify(capsys, str(b), "--arch", "arm64", "--arch", "aarch64")
    assert code == 1
    (f,) = [f for f in rep["findings"] if f["rule"] == "arch-not-allowed"]
    assert f["message"].endswith("is not one of arm64, aarch64")


def test_static_binary_human_output_says_no_dependencies(tmp_path, capsys):
    try:
        b = build(tmp_path, "static", "-static", "-lm")
    except subprocess.CalledProcessError:
        pytest.skip("no static libc here")
    assert run(["verify", str(b), "--elf-policy", "static"]) == 0
    out = capsys.readouterr().out
    assert "no dynamic dependencies, no rpaths" in out and "OK" in out


def test_own_elf_reader_equals_lief(tmp_path):
    """The default reader walks the program headers itself (no LIEF import on a no-op build);
    LIEF must see the same NEEDED, rpaths, interpreter and build-id, on binaries built here
    (dynamic, static, rpath+runpath, 32-bit where a multilib gcc exists) and on the system's
    own programs and libraries."""
    import glob

    from llamabuild.inspect.reader import inspect_binary

    built = [
        build(tmp_path, "dyn", "-lm", "-Wl,--build-id"),
        build(tmp_path, "static", "-static", "-lm"),
        build(tmp_path, "rpath", "-lm", "-Wl,-rpath,/opt/x:/opt/y", "-Wl,--disable-new-dtags"),
        build(tmp_path, "runpath", "-lm", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"),
    ]
    system = [Path(p) for p in sorted(glob.glob("/usr/bin/*"))[:80]]
    checked = 0
    for path in [*built, *system]:
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as fh:
            if fh.read(4) != b"\x7fELF":
                continue
        assert inspect_binary(path) == inspect_binary(path, "lief"), path
        checked += 1
    assert checked >= len(built) + 10
    sl = inspect_binary(built[2]).slices[0]
    assert sl.rpaths == ("/opt/x", "/opt/y") and sl.uuid
