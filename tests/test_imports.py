"""Imported symbols of real Mach-O binaries: both readers, checked against llvm-objdump-19
(the binds dyld performs) and llvm-nm-19 -u; hostile fixups and bind opcodes exit 2."""

from __future__ import annotations

import io
import re
import struct
import subprocess
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import (
    FLAT_LOOKUP,
    MAIN_EXECUTABLE,
    SELF,
    WEAK_LOOKUP,
    Binary,
    Import,
    Slice,
)
from llamabuild.inspect.imports import LC_DYLD_CHAINED_FIXUPS, read_imports
from llamabuild.inspect.reader import inspect_binary
from tests import test_verify
from tests.fixtures.macho import SYSTEM, Lib, MachOFactory, system, tool

pytestmark = pytest.mark.compile
needs_llvm = pytest.mark.skipif(
    not all(tool(t) for t in ("llvm-objdump", "llvm-nm", "llvm-otool", "llvm-lipo")),
    reason="llvm-objdump-19 / llvm-nm-19 / llvm-otool-19 / llvm-lipo-19 not installed",
)

fixtures = test_verify.fixtures  # every binary the verify tests judge (session scoped)

ILP64 = "_cblas_sgemm$NEWLAPACK$ILP64"
ACCELERATE = SYSTEM["Accelerate"][0]
METAL = SYSTEM["Metal"][0]
LIBZ = "/usr/lib/libz.1.dylib"

# One program with every kind of import: a `$` symbol from Accelerate, a weak import, a weakly
# linked library and framework, a flat-namespace lookup and C++ weak definitions (coalesced:
# ordinal -3 in chained fixups, the weak-bind stream in classic dyld info).
SINK = r"""
extern "C" {
int printf(const char *, ...);
void sgemm_ilp64(void) __asm("_cblas_sgemm$NEWLAPACK$ILP64");
int maybe_there(void) __attribute__((weak_import));
int zlib_version(void) __asm("_zlibVersion");
int MTLCreateSystemDefaultDevice(void);
int flat_sym(void);  /* in no stub: -undefined dynamic_lookup makes it a flat lookup */
}
inline int &counter() { static int c = 0; return c; }
template <class T> T twice(T x) { return x + x; }
int (*volatile fp)(int) = &twice<int>;
int main(int argc, char **) {
  counter() += argc;
  if (argc > 99) {
    sgemm_ilp64();
    if (maybe_there) maybe_there();
    zlib_version();
    MTLCreateSystemDefaultDevice();
    flat_sym();
  }
  printf("%d\n", fp(counter()));
  return 0;
}
"""
SINK_LIBS = [
    *system("libSystem"),
    Lib(ACCELERATE, (ILP64, "_maybe_there")),
    Lib(LIBZ, ("_zlibVersion",), "weak"),
    Lib(METAL, ("_MTLCreateSystemDefaultDevice",), "weak_framework"),
]
FLAT = ["-undefined", "dynamic_lookup"]
CLASSIC = ["-no_fixup_chains"]

# Addends a chained pointer cannot hold: 1000 -> DYLD_CHAINED_IMPORT_ADDEND, 2^32 -> _ADDEND64;
# with -no_fixup_chains both become BIND_OPCODE_SET_ADDEND_SLEB.
ADDENDS = """
extern char ext_arr[];
extern char maybe_arr[] __attribute__((weak_import));
char *near_p = ext_arr + 1000;
#ifdef FAR
char *far_p = ext_arr + 0x100000000LL;
char *weak_far = maybe_arr + 0x100000000LL;
#endif
int main(void) { return near_p[0]; }
"""
ARR = Lib("/usr/lib/libarr.dylib", ("_ext_arr", "_maybe_arr"))

# Operator new defined here while libc++ exports it as a weak definition: the classic weak-bind
# stream gets a BIND_SYMBOL_FLAGS_NON_WEAK_DEFINITION ("strong") entry, which imports nothing.
STRONG = r"""
#include <stddef.h>
extern "C" int printf(const char *, ...);
void *operator new(size_t) { static char buf[64]; return buf; }
int main() { int *p = new int(3); printf("%d\n", *p); return 0; }
"""
LIBCXX_WEAK = Lib("/usr/lib/libc++.1.dylib", ("__ZNSt3__14coutE",), weak_defs=("__Znwm",))

# 20 dylibs: ordinals above 15 need BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB; 2,000 imports.
MANY = [Lib(f"@rpath/libmany{i}.dylib", tuple(f"_m{i}_{j}" for j in range(100))) for i in range(20)]


@pytest.fixture(scope="session")
def binaries(macho: MachOFactory, fixtures: dict[str, Path]) -> dict[str, Path]:
    b = dict(fixtures)
    sink = {"libs": SINK_LIBS, "source": SINK, "cxx": True}
    b["sink_arm64"] = macho.build("sink_arm64", **sink, extra_ld=FLAT)
    b["sink_x86_chained"] = macho.build("sink_x86_chained", **sink, arch="x86_64", extra_ld=FLAT)
    b["sink_x86_classic"] = macho.build(
        "sink_x86_classic", **sink, arch="x86_64", extra_ld=FLAT + CLASSIC
    )
    b["sink_fat"] = macho.fat("sink_fat", [b["sink_arm64"], b["sink_x86_classic"]])
    arr = [*system("libSystem"), ARR]
    b["addend"] = macho.build("addend", arr, source=ADDENDS)
    far = "#define FAR 1\n" + ADDENDS
    b["addend64"] = macho.build("addend64", arr, source=far)
    b["addend_classic"] = macho.build(
        "addend_classic", arr, source=far, arch="x86_64", extra_ld=CLASSIC
    )
    b["strong"] = macho.build(
        "strong",
        [*system("libSystem"), LIBCXX_WEAK],
        source=STRONG,
        cxx=True,
        arch="x86_64",
        extra_ld=CLASSIC,
    )
    host = macho.build(
        "host", source="int helper(void) { return 1; }\nint main(void) { return helper(); }\n"
    )
    b["plugin"] = macho.build(  # a bundle importing from its loader: the main executable
        "plugin.bundle",
        source="int helper(void);\nint f(void) { return helper(); }\n",
        bundle_loader=host,
    )
    b["dylib"] = macho.build(  # LC_ID_DYLIB is no dylib-loading command: ordinals skip it
        "libimports.dylib", system("libSystem", "Metal"), dylib="@rpath/libimports.dylib"
    )
    b["many_arm64"] = macho.build("many_arm64", [*system("libSystem"), *MANY])
    b["many_x86"] = macho.build(
        "many_x86", [*system("libSystem"), *MANY], arch="x86_64", extra_ld=CLASSIC
    )
    b["old_x86"] = macho.build(
        "old_x86", system("libSystem", "Metal"), arch="x86_64", minos="10.13"
    )
    return b


# --- the oracle: llvm-objdump-19 and llvm-nm-19 on each thin slice ----------------------------


def sh(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


def thin_slices(path: Path, binary: Binary, tmp: Path) -> dict[str, Path]:
    if not binary.fat:
        return {binary.slices[0].arch: path}
    out = {}
    for sl in binary.slices:
        out[sl.arch] = tmp / f"{path.name}.{sl.arch}"
        sh(tool("llvm-lipo"), path, "-thin", sl.arch, "-output", out[sl.arch])
    return out


def short_name(install_name: str) -> str:
    """What llvm-objdump prints for a dylib (its guessLibraryShortName, for our fixtures)."""
    m = re.search(r"([^/]+)\.framework/(?:Versions/[^/]+/)?\1$", install_name)
    return m.group(1) if m else install_name.rsplit("/", 1)[-1].split(".", 1)[0]


OBJDUMP_SPECIAL = {
    SELF: "this-image",
    MAIN_EXECUTABLE: "main-executable",
    FLAT_LOOKUP: "flat-namespace",
    WEAK_LOOKUP: "weak",
}


def as_printed(sl: Slice) -> set[tuple[str, str, bool]]:
    """Our imports the way llvm-objdump names their dylibs."""
    shorts = [short_name(d.name) for d in sl.dylibs]
    assert len(set(shorts)) == len(shorts), shorts  # else the comparison would be ambiguous
    return {
        (OBJDUMP_SPECIAL.get(i.dylib) or short_name(i.dylib), i.name, i.weak) for i in sl.imports
    }


def objdump_binds(thin: Path) -> set[tuple[str, str, bool]]:
    """(dylib short name, symbol, weak) of every bind llvm-objdump-19 prints."""
    commands = sh(tool("llvm-otool"), "-l", thin)
    # llvm-nm -m marks an undefined N_WEAK_REF symbol "weak external": the weak flag where
    # llvm-objdump prints none (lazy binds) or a wrong one (see ADDEND64 below).
    weak_refs = {n for n, _, weak in nm_imports(thin) if weak}
    rows: set[tuple[str, str, bool]] = set()
    if "LC_DYLD_CHAINED_FIXUPS" in commands:
        header = sh(tool("llvm-objdump"), "--macho", "--chained-fixups", thin)
        if "DYLD_CHAINED_IMPORT_ADDEND64" in header:
            # llvm-objdump-19 misdecodes dyld_chained_import_addend64 (patching shows it takes
            # name_offset from bits 16..31 and weak_import from bit 32): its names and flags
            # are wrong, so ask the symbol table, where lld writes the same two-level ordinal.
            return {(dylib, n, weak) for n, dylib, weak in nm_imports(thin)} - {
                ("libSystem", "dyld_stub_binder", False)  # undefined, never bound when chained
            }
        for line in sh(tool("llvm-objdump"), "--macho", "--dyld-info", thin).splitlines():
            f = line.split()
            if len(f) >= 8 and f[4] == "bind":
                rows.add((f[6], f[7], "(weak import)" in line))
        return rows
    assert "LC_DYLD_INFO" in commands
    out = sh(tool("llvm-objdump"), "--macho", "--bind", "--lazy-bind", "--weak-bind", thin)
    table = ""
    for line in out.splitlines():
        f = line.split()
        if line.endswith("table:"):
            table = f[0]
        elif not f or f[0] == "segment" or line.endswith(":"):
            continue
        elif table == "Bind":
            rows.add((f[5], f[6], "(weak_import)" in line))
        elif table == "Lazy":  # llvm-objdump prints no weak_import flag for lazy binds
            rows.add((f[3], f[4], f[4] in weak_refs))
        elif table == "Weak" and f[0] != "strong":  # strong: an override, no import (below)
            rows.add(("weak", f[5], False))  # coalescing entries: our WEAK_LOOKUP, not weak
    return rows


def nm_imports(thin: Path) -> set[tuple[str, str, bool]]:
    """(symbol, dylib as llvm-objdump names it, weak) of every undefined symbol, per llvm-nm -m
    (an N_WEAK_REF is a "weak external": the flag llvm-objdump prints none of for lazy binds)."""
    rows = set()
    for line in sh(tool("llvm-nm"), "-m", thin).splitlines():
        m = re.match(r"\s*\(undefined\) (weak )?external (\S+) \((?:from (\S+)|(.+))\)$", line)
        if m:
            where = m.group(3) or {"dynamically looked up": "flat-namespace"}[m.group(4)]
            rows.add(
                (m.group(2), {"executable": "main-executable"}.get(where, where), bool(m.group(1)))
            )
    return rows


def nm_undefined(thin: Path) -> set[str]:
    return set(sh(tool("llvm-nm"), "-u", thin).split())


def nm_defined(thin: Path) -> set[str]:
    return {line.split()[-1] for line in sh(tool("llvm-nm"), "--defined-only", thin).splitlines()}


def read_both(path: Path) -> Binary:
    auto, lief = inspect_binary(path), inspect_binary(path, "lief")
    assert auto == lief, path.name
    return auto


# --- agreement on every fixture ---------------------------------------------------------------


@needs_llvm
def test_every_fixture_matches_llvm_objdump_and_nm(binaries, tmp_path):
    checked = 0
    for name, path in binaries.items():
        binary = read_both(path)
        for arch, thin in thin_slices(path, binary, tmp_path).items():
            (sl,) = [s for s in binary.slices if s.arch == arch]
            assert as_printed(sl) == objdump_binds(thin), (name, arch)
            # llvm-nm -u lists undefined symbols; our imports add the coalesced weak
            # definitions this image defines itself (dyld looks them up across images), and
            # dyld_stub_binder is undefined in every lld image but bound only by classic ones.
            names = {i.name for i in sl.imports}
            coalesced = {i.name for i in sl.imports if i.dylib == WEAK_LOOKUP} & nm_defined(thin)
            assert names - coalesced - {"dyld_stub_binder"} == nm_undefined(thin) - {
                "dyld_stub_binder"
            }, (name, arch)
            assert sl.imports == tuple(sorted(set(sl.imports)))
            checked += 1
    assert checked == len(binaries) + 2  # the two fat binaries have two slices each


def test_kitchen_sink_imports(binaries):
    expected = {
        Import(ACCELERATE, ILP64),
        Import(ACCELERATE, "_maybe_there", weak=True),  # __attribute__((weak_import))
        Import(LIBZ, "_zlibVersion", weak=True),  # -weak_library
        Import(METAL, "_MTLCreateSystemDefaultDevice", weak=True),  # -weak_framework
        Import(FLAT_LOOKUP, "_flat_sym"),  # -undefined dynamic_lookup
        Import(SYSTEM["libSystem"][0], "_printf"),
        Import(WEAK_LOOKUP, "__Z7counterv"),  # C++ inline function
        Import(WEAK_LOOKUP, "__ZZ7countervE1c"),  # its static local
        Import(WEAK_LOOKUP, "__Z5twiceIiET_S0_"),  # a template instance
    }
    for name in ("sink_arm64", "sink_x86_chained", "sink_x86_classic"):
        (sl,) = read_both(binaries[name]).slices
        stub_binder = {Import(SYSTEM["libSystem"][0], "dyld_stub_binder")}
        assert set(sl.imports) == expected | (stub_binder if "classic" in name else set()), name
        kinds = {d.name: d.kind for d in sl.dylibs}
        assert kinds[LIBZ] == kinds[METAL] == "weak"
    fat = read_both(binaries["sink_fat"])
    assert {s.arch: s.imports for s in fat.slices} == {
        "arm64": read_both(binaries["sink_arm64"]).slices[0].imports,
        "x86_64": read_both(binaries["sink_x86_classic"]).slices[0].imports,
    }


@needs_llvm
def test_special_ordinals_addends_and_many_dylibs(binaries):
    (plugin,) = read_both(binaries["plugin"]).slices
    assert plugin.filetype == "bundle"
    assert plugin.imports == (Import(MAIN_EXECUTABLE, "_helper"),)
    (strong,) = read_both(binaries["strong"]).slices
    weak_binds = sh(tool("llvm-objdump"), "--macho", "--weak-bind", binaries["strong"])
    assert re.search(r"strong\s+__Znwm", weak_binds)  # the fixture has the override entry
    assert not any(i.name == "__Znwm" for i in strong.imports)  # defined here, not imported
    for name in ("addend", "addend64", "addend_classic"):
        (sl,) = read_both(binaries[name]).slices
        assert Import("/usr/lib/libarr.dylib", "_ext_arr") in sl.imports, name
    assert Import("/usr/lib/libarr.dylib", "_maybe_arr", weak=True) in (
        read_both(binaries["addend64"]).slices[0].imports
    )
    formats = {
        name: re.search(
            r"imports_format = \d+ \((\w+)\)",
            sh(tool("llvm-objdump"), "--macho", "--chained-fixups", binaries[name]),
        ).group(1)
        for name in ("sink_arm64", "addend", "addend64")
    }
    assert formats == {
        "sink_arm64": "DYLD_CHAINED_IMPORT",
        "addend": "DYLD_CHAINED_IMPORT_ADDEND",
        "addend64": "DYLD_CHAINED_IMPORT_ADDEND64",
    }
    for name in ("many_arm64", "many_x86"):
        (sl,) = read_both(binaries[name]).slices
        assert Import("@rpath/libmany19.dylib", "_m19_99") in sl.imports
        assert len([i for i in sl.imports if "libmany" in i.dylib]) == 2000
    (dylib,) = read_both(binaries["dylib"]).slices
    assert Import(METAL, "_MTLCreateSystemDefaultDevice") in dylib.imports


def test_imports_read_from_an_mmap(binaries):
    import mmap

    path = binaries["sink_fat"]
    expected = inspect_binary(path)
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        raws = st.read_slices(mm, len(mm), str(path))
        assert tuple(read_imports(mm, r, str(path)) for r in raws) == tuple(
            s.imports for s in expected.slices
        )


# --- hostile input: a real binary patched; exit 2 from both readers ---------------------------


def thin_raw(path: Path) -> st.RawSlice:
    data = path.read_bytes()
    (raw,) = st.read_slices(io.BytesIO(data), len(data), str(path))
    return raw


def command_offset(raw: st.RawSlice, cmd: int) -> int:
    """File offset of the first load command `cmd` of a thin binary."""
    pos = 32 if raw.is64 else 28
    for c in raw.commands:
        if c.cmd == cmd:
            return pos
        pos += len(c.data)
    raise AssertionError(f"no load command {cmd:#x}")


def expect_refused(path: Path, capfd: pytest.CaptureFixture[str], needle: str) -> None:
    for parser in ("auto", "lief"):
        code = run(["verify", str(path), "--parser", parser])
        err = capfd.readouterr().err
        assert code == 2, (parser, err)
        assert "Traceback" not in err and err.startswith("error: "), err
        assert needle in err, (parser, err)


def chained_blob(path: Path) -> tuple[bytearray, int, int]:
    """The file's bytes, and where its chained fixups blob starts and how long it is."""
    data = bytearray(path.read_bytes())
    raw = thin_raw(path)
    off, size = struct.unpack_from("<II", data, command_offset(raw, LC_DYLD_CHAINED_FIXUPS) + 8)
    return data, off, size


def header(data: bytearray, off: int) -> dict[str, int]:
    keys = ("version", "starts", "imports", "symbols", "count", "format", "symbols_format")
    return dict(zip(keys, struct.unpack_from("<7I", data, off), strict=True))


def _chained_patches(data: bytearray, off: int, size: int) -> dict[str, tuple[int, bytes]]:
    h = header(data, off)
    imp, pool = off + h["imports"], off + h["symbols"]
    first = struct.unpack_from("<I", data, imp)[0]
    starts = off + h["starts"]
    seg = starts + struct.unpack_from("<5I", data, starts + 4)[2]  # __DATA_CONST's chain starts
    return {
        "seg_count": (starts, struct.pack("<I", 9)),
        "seg_starts_size": (seg, struct.pack("<I", 4096)),
        "page_size": (seg + 4, struct.pack("<H", 0x2000)),
        "pointer_format": (seg + 6, struct.pack("<H", 99)),
        "segment_offset": (seg + 8, struct.pack("<Q", 0x4100)),
        "page_start": (seg + 22, struct.pack("<H", 0x5000)),
        "count": (off + 16, struct.pack("<I", 0x40000000)),  # count x 4 bytes overflows
        "name_offset": (imp, struct.pack("<I", (first & 0x1FF) | (0x7FFFFF << 9))),
        "ordinal_beyond": (imp, struct.pack("<I", (first & ~0xFF) | 0x50)),
        "ordinal_special": (imp, struct.pack("<I", (first & ~0xFF) | 0xF5)),  # -11
        "no_nul": (pool, b"A" * (off + size - pool)),
        "utf8": (pool + 1, b"\xff"),
        "zlib": (off + 24, struct.pack("<I", 1)),
        "symbols_format": (off + 24, struct.pack("<I", 7)),
        "imports_format": (off + 20, struct.pack("<I", 9)),
        "version": (off, struct.pack("<I", 1)),
        "starts": (off + 4, struct.pack("<I", size + 8)),
        "symbols": (off + 12, struct.pack("<I", size + 1)),
        "short": (0, b""),  # header cut: the load command's datasize patched below
    }


CHAINED_CASES = [
    ("seg_count", "seg_count 9, but 5 segments"),
    ("seg_starts_size", "(4096 bytes) overrun the imports"),
    ("page_size", "page_size 0x2000 is not 4 or 16 KB"),
    ("pointer_format", "pointer_format 99"),
    ("segment_offset", "segment_offset 0x4100 is not its address"),
    ("page_start", "starts past the page"),
    ("count", "overlap the symbol names"),
    ("name_offset", "outside the symbol pool"),
    ("ordinal_beyond", "library ordinal 80, but only"),
    ("ordinal_special", "unknown special library ordinal -11"),
    ("no_nul", "without a terminating NUL"),
    ("utf8", "not valid UTF-8"),
    ("zlib", "unsupported Mach-O (zlib-compressed"),
    ("symbols_format", "symbols_format 7"),
    ("imports_format", "imports_format 9"),
    ("version", "chained fixups version 1"),
    ("starts", "starts_offset"),
    ("symbols", "symbols_offset"),
    ("short", "header needs 28 bytes"),
    ("outside_linkedit", "outside __LINKEDIT"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("case", "needle"), CHAINED_CASES)
def test_hostile_chained_fixups_exit_2(binaries, tmp_path, capfd, case, needle):
    path = binaries["sink_arm64"]
    data, off, size = chained_blob(path)
    lc = command_offset(thin_raw(path), LC_DYLD_CHAINED_FIXUPS)
    if case == "short":
        struct.pack_into("<I", data, lc + 12, 20)
    elif case == "outside_linkedit":
        struct.pack_into("<I", data, lc + 8, 4096)  # in the file, but in __TEXT
    else:
        pos, patch = _chained_patches(data, off, size)[case]
        data[pos : pos + len(patch)] = patch
    bad = tmp_path / case
    bad.write_bytes(bytes(data))
    expect_refused(bad, capfd, needle)


def test_chained_ordinal_zero_is_self_in_both_readers(binaries, tmp_path):
    data, off, _ = chained_blob(binaries["sink_arm64"])
    imp = off + header(data, off)["imports"]
    first = struct.unpack_from("<I", data, imp)[0]
    struct.pack_into("<I", data, imp, first & ~0xFF)
    patched = tmp_path / "self"
    patched.write_bytes(bytes(data))
    (sl,) = read_both(patched).slices
    assert any(i.dylib == SELF for i in sl.imports)


# Classic dyld info: new bind / weak-bind / lazy-bind streams laid into the span the original
# three occupy (lld writes them back to back), the load command updated to match.


def rewrite_streams(path: Path, out: Path, **streams: bytes) -> None:
    data = bytearray(path.read_bytes())
    raw = thin_raw(path)
    lc = command_offset(raw, st.LC_DYLD_INFO_ONLY)
    v = list(struct.unpack_from("<10I", data, lc + 8))
    start, end = v[2], v[6] + v[7]  # bind .. end of lazy bind
    assert v[2] + v[3] == v[4] and v[4] + v[5] == v[6]  # contiguous
    pos = start
    for i, kind in ((2, "bind"), (4, "weak"), (6, "lazy")):
        blob = streams.get(kind, bytes(data[v[i] : v[i] + v[i + 1]]))
        v[i], v[i + 1] = pos, len(blob)
        data[pos : pos + len(blob)] = blob
        pos += len(blob)
    assert pos <= end, "the new streams do not fit"
    data[pos:end] = bytes(end - pos)
    struct.pack_into("<10I", data, lc + 8, *v)
    out.write_bytes(bytes(data))


def segments(path: Path) -> list[tuple[str, int]]:
    """(name, fileoff) of each LC_SEGMENT_64, in order (BIND_OPCODE_SET_SEGMENT's index)."""
    return [
        (c.data[8:24].rstrip(b"\0").decode(), struct.unpack_from("<Q", c.data, 40)[0])
        for c in thin_raw(path).find(st.LC_SEGMENT_64)
    ]


def segment_index(path: Path, segname: str) -> int:
    return [n for n, _ in segments(path)].index(segname)


def segment_fileoff(path: Path, segname: str) -> int:
    return dict(segments(path))[segname]


def sym(flags: int, name: bytes) -> bytes:
    return bytes([0x40 | flags]) + name + b"\0"


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


PRINTF = sym(0, b"_printf")
CLASSIC_CASES = [
    (
        "uleb_overflow",
        {"bind": b"\x11" + PRINTF + b"\x72" + b"\xff" * 10 + b"\x01"},
        "ULEB128 overflows",
    ),
    ("uleb_runs_off", {"bind": b"\x11" + PRINTF + b"\x72" + b"\x80" * 6}, "ULEB128 runs off"),
    ("sleb_overflow", {"bind": b"\x60" + b"\xff" * 10 + b"\x01"}, "SLEB128 overflows"),
    ("no_nul", {"bind": b"\x11\x40" + b"A" * 20}, "without a terminating NUL"),
    ("utf8", {"lazy": b"\x72\x00\x11" + sym(0, b"_\xff\xfe") + b"\x90\x00"}, "not valid UTF-8"),
    (
        "times",
        {"bind": b"\x11" + PRINTF + b"\x72\x00\xc0" + uleb(1 << 40) + b"\x00"},
        "past the end",
    ),
    ("ordinal_beyond", {"bind": b"\x20" + uleb(200)}, "library ordinal 200, but only"),
    ("ordinal_special", {"bind": b"\x35"}, "unknown special library ordinal -11"),
    ("opcode", {"bind": b"\xe0"}, "unknown opcode 0xe0"),
    ("no_symbol", {"bind": b"\x11\x72\x00\x90"}, "before any symbol"),
    ("no_ordinal", {"bind": PRINTF + b"\x72\x00\x90"}, "before any library ordinal"),
    ("no_segment", {"bind": b"\x11" + PRINTF + b"\x90"}, "before BIND_OPCODE_SET_SEGMENT"),
    ("segment", {"bind": b"\x11" + PRINTF + b"\x7e\x00\x90"}, "segment 14, but only"),
    ("type", {"bind": b"\x57"}, "bind type 7"),
    ("weak_ordinal", {"weak": b"\x11"}, "library ordinal in the weak bind stream"),
    ("threaded", {"bind": b"\xd7"}, "unknown threaded sub-opcode"),
    ("threaded_lazy", {"lazy": b"\xd0\x01"}, "not allowed in a lazy bind stream"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("case", "streams", "needle"), CLASSIC_CASES)
def test_hostile_bind_opcodes_exit_2(binaries, tmp_path, capfd, case, streams, needle):
    bad = tmp_path / case
    rewrite_streams(binaries["sink_x86_classic"], bad, **streams)
    expect_refused(bad, capfd, needle)


def test_bind_stream_outside_linkedit_exit_2(binaries, tmp_path, capfd):
    path = binaries["sink_x86_classic"]
    data = bytearray(path.read_bytes())
    lc = command_offset(thin_raw(path), st.LC_DYLD_INFO_ONLY)
    struct.pack_into("<I", data, lc + 16, 0x100)  # bind_off into the load commands
    bad = tmp_path / "outside"
    bad.write_bytes(bytes(data))
    expect_refused(bad, capfd, "outside __LINKEDIT")


@needs_llvm
def test_every_bind_opcode_read_alike_by_both_readers_and_llvm(binaries, tmp_path):
    """Opcodes lld never writes (ULEB ordinals, specials, addends, skips, repeats, threaded)."""
    path = binaries["sink_x86_classic"]
    seg = segment_index(path, "__DATA")  # starts with __la_symbol_ptr: 7 pointers
    bind = b"".join(
        [
            b"\x20" + uleb(2),  # SET_DYLIB_ORDINAL_ULEB 2
            sym(0, b"_a"),
            b"\x51",  # SET_TYPE_IMM pointer
            b"\x60" + b"\x78",  # SET_ADDEND_SLEB -8
            bytes([0x70 | seg]) + uleb(0),  # SET_SEGMENT_AND_OFFSET_ULEB __DATA+0
            b"\xc0" + uleb(2) + uleb(8),  # DO_BIND_ULEB_TIMES_SKIPPING_ULEB: +0, +16
            b"\x3e",  # SET_DYLIB_SPECIAL_IMM -2 (flat lookup)
            sym(1, b"_b"),  # BIND_SYMBOL_FLAGS_WEAK_IMPORT
            b"\xb1",  # DO_BIND_ADD_ADDR_IMM_SCALED: +32, then skip one pointer
            b"\x80" + uleb((1 << 64) - 40),  # ADD_ADDR_ULEB -40 (wraps, as ld64 writes it)
            b"\x30",  # SET_DYLIB_SPECIAL_IMM 0 (self)
            sym(0, b"_c"),
            b"\xa0" + uleb(8),  # DO_BIND_ADD_ADDR_ULEB: +8
            b"\x3f",  # SET_DYLIB_SPECIAL_IMM -1 (main executable)
            sym(0, b"_d"),
            b"\xc0" + uleb(0) + uleb(0),  # zero times: binds nothing
            b"\x00",
        ]
    )
    patched = tmp_path / "opcodes"
    rewrite_streams(path, patched, bind=bind)
    (sl,) = read_both(patched).slices
    assert {i for i in sl.imports if i.name in ("_a", "_b", "_c", "_d")} == {
        Import(sl.dylibs[1].name, "_a"),
        Import(FLAT_LOOKUP, "_b", weak=True),
        Import(SELF, "_c"),
    }
    # dyld's loop binds a zero-times DO_BIND_ULEB_TIMES_SKIPPING_ULEB never; llvm-objdump once
    assert as_printed(sl) == objdump_binds(patched) - {("main-executable", "_d", False)}


def test_threaded_binds_read_alike_by_both_readers(binaries, tmp_path):
    """BIND_OPCODE_THREADED (arm64e before chained fixups): DO_BINDs fill an ordinal table and
    THREADED_APPLY walks a pointer chain. llvm-objdump-19 refuses the opcode, so only the two
    readers are compared; the chain holds one real bind pointer (LIEF reports what it walks)."""
    path = binaries["sink_x86_classic"]
    seg = segment_index(path, "__DATA")
    table = b"\xd0" + uleb(1)  # THREADED_SET_BIND_ORDINAL_TABLE_SIZE_ULEB 1
    threaded = table + b"\x11" + sym(0, b"_t") + b"\x90" + bytes([0x70 | seg, 0, 0xD1, 0])
    patched = tmp_path / "threaded"
    rewrite_streams(path, patched, bind=threaded)
    data = bytearray(patched.read_bytes())
    struct.pack_into("<Q", data, segment_fileoff(path, "__DATA"), 1 << 62)  # bind, index 0
    patched.write_bytes(bytes(data))
    (sl,) = read_both(patched).slices
    assert Import(SYSTEM["libSystem"][0], "_t") in sl.imports
