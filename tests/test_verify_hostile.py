"""Hostile input for `llamabuild verify`: every input is a real Mach-O built here, then patched.

Huge sparse files (5 GB of holes) must cost what their headers cost: they run in a child
process that reports its own peak RSS (VmHWM) and whose RLIMIT_DATA (1 GiB) turns a whole-file
read into a quick failure instead of 5 GB of memory taken from the machine. A read-only file
mapping is not counted by RLIMIT_DATA, so the limit never penalises mmap.

Load-command strings are checked (NUL inside cmdsize, lc_str offset inside the command and
past its fixed header, UTF-8), control characters from the file never reach a terminal, GitHub
log or Xcode raw, 40,000 load commands stay tractable, and a FIFO given as (or inside) a dSYM
is refused instead of blocking. Both readers (`--parser auto` and `--parser lief`) must give
the same exit code and, when they accept the file, the same JSON slices.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from tests.fixtures.macho import Lib, MachOFactory, system, tool

pytestmark = pytest.mark.compile

ROOT = Path(__file__).resolve().parent.parent
PARSERS = ("auto", "lief")
GiB = 1 << 30
HOLE = 5 * GiB  # "5 GB" of sparse zeros
RSS_BOUND_MB = 150  # loose bound here; the goal (<= 64 MB) is measured by bench/verify.py
ALIGN = 1 << 14

MH_MAGIC_64 = 0xFEEDFACF
LC_LOAD_DYLIB = 0xC
LC_RPATH = 0x8000001C
HEADER_SIZE = {LC_LOAD_DYLIB: 24, LC_RPATH: 12}  # fixed part before the lc_str's bytes


# --- running the CLI -------------------------------------------------------------------------


def cli(*args: str) -> tuple[int, str, str]:
    """`llamabuild ARGS` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def verify_json(path: Path, parser: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli("verify", str(path), "--parser", parser, "--json", *extra)
    assert "Traceback" not in out + err, err[-3000:]
    return code, json.loads(out), err


@cache
def reference(path: Path, parser: str) -> tuple[int, str]:
    """Exit code and JSON (as text: cached values stay immutable) of a small, sane binary."""
    code, rep, _ = verify_json(path, parser)
    return code, json.dumps(rep)


def comparable(rep: dict[str, Any]) -> dict[str, Any]:
    """What must not change with padding or the reader: everything but the path."""
    return {k: rep[k] for k in ("ok", "format", "fat", "slices", "findings")}


# The child reports its own high-water mark: after exit /proc/<pid>/status has no VmHWM, and
# ru_maxrss would carry the test session's (large) high-water mark across fork + exec.
CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
from llamabuild.cli import run
code = run(sys.argv[1:])
sys.stdout.flush()
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        sys.stderr.write('\\nVmHWM-kB ' + line.split()[1] + '\\n')
sys.exit(code)
"""


def child(*args: str, timeout: float = 50) -> tuple[int, str, str, float]:
    """`llamabuild ARGS` in a fresh Python: (exit code, stdout, stderr, peak RSS in MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    found = re.findall(r"VmHWM-kB (\d+)", proc.stderr)
    assert found, f"child died ({proc.returncode}): {proc.stderr[-3000:]}"
    err = proc.stderr.rsplit("\nVmHWM-kB", 1)[0]
    assert "Traceback" not in proc.stdout + err, err[-3000:]
    return proc.returncode, proc.stdout, err, int(found[-1]) / 1024


# --- patching real binaries ------------------------------------------------------------------


def load_commands(data: bytes | bytearray) -> list[tuple[int, int, int]]:
    """(position, cmd, cmdsize) of every load command of a thin little-endian 64-bit Mach-O."""
    magic, _cpu, _sub, _ft, ncmds, _sizeofcmds = struct.unpack_from("<IiiIII", data, 0)
    assert magic == MH_MAGIC_64
    out, pos = [], 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, pos)
        out.append((pos, cmd, size))
        pos += size
    return out


def find_command(data: bytes | bytearray, cmd: int, needle: bytes) -> tuple[int, int, int]:
    """(position, cmdsize, lc_str offset) of the `cmd` whose string contains `needle`."""
    for pos, c, size in load_commands(data):
        if c == cmd and needle in data[pos : pos + size]:
            return pos, size, struct.unpack_from("<I", data, pos + 8)[0]
    raise AssertionError(f"no load command {cmd:#x} holding {needle!r}")


def replace_same_length(data: bytearray, old: bytes, new: bytes) -> None:
    assert len(old) == len(new) and data.count(old) == 1, (old, data.count(old))
    i = data.index(old)
    data[i : i + len(old)] = new


def write_fat(out: Path, slices: list[Path], first: int, gap: int, fat64: bool) -> Path:
    """A fat file built by hand: slice 0 at `first`, slice 1 at least `gap` bytes after slice 0
    ends (a sparse hole), offsets aligned to 2^14 as lipo does."""
    datas = [p.read_bytes() for p in slices]
    entries, off = [], first
    for i, d in enumerate(datas):
        if i:
            off = -(-(off + gap) // ALIGN) * ALIGN
        cputype, cpusubtype = struct.unpack_from("<ii", d, 4)
        entries.append((cputype, cpusubtype, off, len(d)))
        off += len(d)
    with out.open("wb") as fh:
        fh.write(struct.pack(">II", 0xCAFEBABF if fat64 else 0xCAFEBABE, len(entries)))
        for cputype, cpusubtype, offset, size in entries:
            if fat64:
                fh.write(struct.pack(">iiQQII", cputype, cpusubtype, offset, size, 14, 0))
            else:
                fh.write(struct.pack(">iiIII", cputype, cpusubtype, offset, size, 14))
        for (_c, _s, offset, _n), d in zip(entries, datas, strict=True):
            fh.seek(offset)
            fh.write(d)
    return out


# --- control characters ----------------------------------------------------------------------

EVIL_LIB = "\x1b[31mevil\r\x07"  # colour, carriage return (overwrites the line), bell
EVIL_RP = "\x1b[2J\x1b[31mrp\x7f\r\x07"  # clear screen, colour, DEL, CR, bell
DYLIB_TMPL = "/opt/homebrew/lib/lib{}.dylib"  # an error finding quotes the dylib name
RPATH_TMPL = "@loader_path/{}"  # no @rpath dependency: a stray-rpath warning quotes it
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
ESCAPED = {  # accepted visible spellings of each control character
    "\x1b": (r"\x1b", r"\x1B", r"\e", r"\033", r"\u001b", "^["),
    "\r": (r"\r", r"\x0d", r"\x0D", r"\u000d", "^M"),
    "\x07": (r"\a", r"\x07", r"\u0007", "^G"),
    "\x7f": (r"\x7f", r"\x7F", r"\u007f", "^?"),
}


def assert_no_raw_control(text: str, what: str, chars: str = "\x1b\r\x07") -> None:
    raw = sorted({repr(m.group()) for m in RAW_CONTROL.finditer(text)})
    assert not raw, f"{what} carries raw control characters {raw}:\n{text[-2000:]!r}"
    for ch in chars:
        assert any(s in text for s in ESCAPED[ch]), f"{what} does not show {ch!r} escaped"


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def x86(macho: MachOFactory) -> Path:
    return macho.build("hostile_x86", system("libSystem", "libc++"), arch="x86_64")


@pytest.fixture(scope="module")
def strings_bin(macho: MachOFactory) -> Path:
    """A thin arm64 binary whose dylib name and rpath hold placeholders to patch in place."""
    return macho.build(
        "hostile_strings",
        [*system("libSystem"), Lib(DYLIB_TMPL.format("Q" * len(EVIL_LIB)), ("_hostile_fn",))],
        rpaths=[RPATH_TMPL.format("R" * len(EVIL_RP))],
    )


@pytest.fixture(scope="module")
def evil_bin(strings_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = bytearray(strings_bin.read_bytes())
    replace_same_length(data, ("Q" * len(EVIL_LIB)).encode(), EVIL_LIB.encode())
    replace_same_length(data, ("R" * len(EVIL_RP)).encode(), EVIL_RP.encode())
    out = tmp_path_factory.mktemp("evil") / "evil-server"
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def many_rpaths(macho: MachOFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 distinct LC_RPATH commands, linked by ld64.lld-19 from a response file."""
    rsp = tmp_path_factory.mktemp("rpaths") / "rpaths.rsp"
    rsp.write_text("".join(f"-rpath @loader_path/r{i:05d}\n" for i in range(40_000)))
    return macho.build("hostile_many", system("libSystem", "libc++"), extra_ld=[f"@{rsp}"])


# --- 5 GB sparse files -----------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("parser", PARSERS)
def test_5gb_sparse_zeros_is_not_an_executable_in_bounded_memory(tmp_path, parser):
    zeros = tmp_path / "zeros.bin"
    zeros.touch()
    os.truncate(zeros, HOLE)
    code, out, err, rss = child("verify", str(zeros), "--parser", parser, "--json")
    assert code == 2, err[-2000:]
    rep = json.loads(out)
    assert rep["exit_code"] == 2 and "not an executable format" in rep["error"]
    assert "not an executable format" in err and err.startswith("error: ")
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB on a 5 GB sparse file"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("parser", PARSERS)
def test_thin_binary_with_5gb_sparse_tail_verifies_as_unpadded(clean_arm64, tmp_path, parser):
    """Read as the unpadded file, in bounded memory; the tail itself is the one finding: bytes
    after the (linker's) signature that no hash covers (signature-trailing-bytes)."""
    padded = tmp_path / "llama-server"
    shutil.copyfile(clean_arm64, padded)
    os.truncate(padded, clean_arm64.stat().st_size + HOLE)
    ref_code, ref = reference(clean_arm64, parser)
    code, out, err, rss = child("verify", str(padded), "--parser", parser, "--json")
    assert ref_code == 0 and code == 1, err[-2000:]
    got = comparable(json.loads(out))
    (tail,) = got.pop("findings")
    assert tail["rule"] == "signature-trailing-bytes" and f"{HOLE} bytes follow" in tail["message"]
    expected = comparable(json.loads(ref))
    expected.pop("findings")
    got.pop("ok"), expected.pop("ok")
    assert got == expected
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB on a binary padded to 5 GB"
    other_code, other = reference(clean_arm64, "lief" if parser == "auto" else "auto")
    assert other_code == ref_code
    assert json.loads(other)["slices"] == json.loads(ref)["slices"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize(
    ("layout", "fat64", "gap"),
    [
        ("fat64, slice 1 after a 5 GiB hole", True, HOLE),
        ("fat32, slice 1 just under 4 GiB", False, 4 * GiB - 4 * ALIGN - 200_000),
    ],
)
def test_fat_binary_with_slice_after_a_huge_hole(
    clean_arm64, x86, tmp_path, parser, layout, fat64, gap
):
    fat = write_fat(tmp_path / "fat-server", [clean_arm64, x86], ALIGN, gap, fat64)
    assert fat.stat().st_size > (HOLE if fat64 else 3 * GiB)
    listed = subprocess.run(
        [tool("llvm-lipo"), "-info", str(fat)], capture_output=True, text=True, check=True
    ).stdout
    assert "arm64 x86_64" in listed  # the hand-made header is one llvm-lipo accepts
    code, out, err, rss = child("verify", str(fat), "--parser", parser, "--json")
    refs = [reference(p, parser) for p in (clean_arm64, x86)]
    assert code == 0 and all(c == 0 for c, _ in refs), (layout, err[-2000:])
    rep = json.loads(out)
    assert rep["fat"] is True
    assert rep["slices"] == [json.loads(r)["slices"][0] for _, r in refs]
    assert rss < RSS_BOUND_MB, f"peak RSS {rss:.0f} MB on a fat file with a huge hole"
    other = [reference(p, "lief" if parser == "auto" else "auto") for p in (clean_arm64, x86)]
    assert [json.loads(o)["slices"] for _, o in other] == [json.loads(r)["slices"] for _, r in refs]


# --- malformed load-command strings ----------------------------------------------------------


def _malform(data: bytearray, cmd: int, needle: bytes, how: str) -> None:
    pos, size, stroff = find_command(data, cmd, needle)
    if how == "no NUL inside cmdsize":
        end = data.index(b"\0", pos + stroff)
        assert end < pos + size
        data[end : pos + size] = b"A" * (pos + size - end)
    elif how == "offset = cmdsize":
        struct.pack_into("<I", data, pos + 8, size)
    elif how == "offset = 0xffffffff":
        struct.pack_into("<I", data, pos + 8, 0xFFFFFFFF)
    elif how == "offset inside the fixed header":
        struct.pack_into("<I", data, pos + 8, HEADER_SIZE[cmd] - 4)
    elif how == "offset 0":
        struct.pack_into("<I", data, pos + 8, 0)
    elif how == "invalid UTF-8":
        i = data.index(needle, pos)
        data[i + 1] = 0xFF  # never valid in UTF-8
    else:
        raise AssertionError(how)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("command", ["LC_LOAD_DYLIB", "LC_RPATH"])
@pytest.mark.parametrize(
    "how",
    [
        "no NUL inside cmdsize",
        "offset = cmdsize",
        "offset = 0xffffffff",
        "offset inside the fixed header",
        "offset 0",
        "invalid UTF-8",
    ],
)
def test_malformed_load_command_string_is_corrupt(strings_bin, tmp_path, parser, command, how):
    cmd, needle = {
        "LC_LOAD_DYLIB": (LC_LOAD_DYLIB, b"Q" * len(EVIL_LIB)),
        "LC_RPATH": (LC_RPATH, b"R" * len(EVIL_RP)),
    }[command]
    data = bytearray(strings_bin.read_bytes())
    _malform(data, cmd, needle, how)
    bad = tmp_path / "bad-server"
    bad.write_bytes(bytes(data))
    code, rep, err = verify_json(bad, parser)
    assert code == 2, (command, how, rep)
    assert rep["ok"] is False and rep["exit_code"] == 2
    assert "corrupt" in rep["error"] and rep["hint"], rep
    assert err.startswith("error: ") and "corrupt" in err and "\nhint: " in err
    code, out, err = cli("verify", str(bad), "--parser", parser)  # the human path too
    assert code == 2 and "corrupt" in err and "Traceback" not in out + err


# --- control characters in dylib names and rpaths --------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
def test_json_keeps_control_characters_exactly(evil_bin, parser):
    code, rep, _ = verify_json(evil_bin, parser)
    assert code == 1  # a Homebrew dependency, and a stray rpath warning
    (sl,) = rep["slices"]
    assert DYLIB_TMPL.format(EVIL_LIB) in [d["name"] for d in sl["dylibs"]]
    assert sl["rpaths"] == [RPATH_TMPL.format(EVIL_RP)]
    other = "lief" if parser == "auto" else "auto"
    other_code, other_rep, _ = verify_json(evil_bin, other)
    assert other_code == code and other_rep["slices"] == rep["slices"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
def test_human_table_escapes_control_characters(evil_bin, parser):
    code, out, err = cli("verify", str(evil_bin), "--parser", parser)
    assert code == 1 and "Traceback" not in out + err
    assert "evil" in out and "homebrew-dependency" in out and "stray-rpath" in out
    assert_no_raw_control(out, "the human table", "\x1b\r\x07\x7f")
    assert not RAW_CONTROL.search(err), repr(err)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
def test_github_annotations_escape_control_characters(evil_bin, tmp_path, monkeypatch, parser):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    code, out, err = cli("verify", str(evil_bin), "--parser", parser, "--json")
    assert code == 1 and "Traceback" not in err
    json.loads(out)  # stdout stays one JSON object
    annotations = [line for line in err.splitlines() if line.startswith("::")]
    assert any(line.startswith("::error ") and "evil" in line for line in annotations), err
    assert any(line.startswith("::warning ") and "stray-rpath" in line for line in annotations)
    assert_no_raw_control(err, "GitHub annotations")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
def test_xcode_lines_escape_control_characters(evil_bin, parser):
    from llamabuild.core.report import xcode_lines
    from llamabuild.inspect.policy import Policy
    from llamabuild.inspect.verify_binary import verify

    result = verify(evil_bin, Policy(), parser=parser)
    lines = xcode_lines(result.findings, str(evil_bin))
    assert any(": error: homebrew-dependency" in line and "evil" in line for line in lines)
    text = "\n".join(lines)
    assert_no_raw_control(text, "Xcode lines")


# --- 40,000 load commands --------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("parser", PARSERS)
def test_forty_thousand_rpaths_json_and_table_complete(many_rpaths, parser):
    expected = [f"@loader_path/r{i:05d}" for i in range(40_000)]
    code, rep, err = verify_json(many_rpaths, parser)
    assert code == 0, err[-2000:]  # stray rpaths are warnings
    (sl,) = rep["slices"]
    assert sl["rpaths"] == expected
    assert [d["name"] for d in sl["dylibs"]] == [
        "/usr/lib/libSystem.B.dylib",
        "/usr/lib/libc++.1.dylib",
    ]
    ref_code, ref = reference(many_rpaths, "auto")
    assert code == ref_code and rep["slices"] == json.loads(ref)["slices"]
    code, out, err = cli("verify", str(many_rpaths), "--parser", parser)
    assert code == 0 and "Traceback" not in out + err
    assert expected[0] in out and expected[-1] in out and "OK" in out


# --- FIFOs where a dSYM should be --------------------------------------------------------------


@pytest.fixture(scope="module")
def dsym_bundle(clean_arm64: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dsym") / f"{clean_arm64.name}.dSYM"
    subprocess.run(
        [tool("dsymutil"), str(clean_arm64), "-o", str(out)], check=True, capture_output=True
    )
    return out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("parser", PARSERS)
def test_dsym_sane_bundle_passes(clean_arm64, dsym_bundle, parser):
    """The control for the FIFO tests below: the same bundle, intact, verifies (exit 0)."""
    code, rep, _ = verify_json(clean_arm64, parser, "--dsym", str(dsym_bundle))
    assert code == 0, rep


@pytest.mark.timeout(20)
@pytest.mark.parametrize("parser", PARSERS)
def test_dsym_that_is_a_fifo_is_refused(clean_arm64, tmp_path, parser):
    fifo = tmp_path / "llama-server.dSYM"
    os.mkfifo(fifo)
    code, rep, err = verify_json(clean_arm64, parser, "--dsym", str(fifo))
    assert code == 2, rep
    assert "fifo" in rep["error"].lower() and rep["hint"]
    assert err.startswith("error: ")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("parser", PARSERS)
def test_dsym_whose_info_plist_is_a_fifo_is_refused(clean_arm64, dsym_bundle, tmp_path, parser):
    bundle = tmp_path / dsym_bundle.name
    shutil.copytree(dsym_bundle, bundle)
    plist = bundle / "Contents" / "Info.plist"
    plist.unlink()
    os.mkfifo(plist)  # nobody writes: reading it would block forever
    code, rep, err = verify_json(clean_arm64, parser, "--dsym", str(bundle))
    assert code == 2, rep
    assert "fifo" in rep["error"].lower() and "Info.plist" in rep["error"]
    assert err.startswith("error: ")
