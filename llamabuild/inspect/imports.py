"""Every symbol a Mach-O slice imports: its chained fixups or its dyld info bind opcodes.

Pure functions over the file buffer (bytes, or the mmap the CLI reads through): they use only
len(), slices of the ranges they need, struct.unpack_from and find, never a copy of the file.
Offsets in load commands are relative to the slice (`RawSlice.offset`).

Hostile input is an InputError (exit 2), never a traceback or a hang: every offset, size and
count is checked against __LINKEDIT and the slice, every opcode consumes at least one byte,
ULEB/SLEB128 numbers stop at 64 bits, repeat counts are bounds-checked, never iterated. The
checks are dyld's (ChainedFixups::valid, the bind/lazy/weak opcode sets), plus a few that
keep LIEF from reading a different file than this module: the LIEF reader runs
`read_imports` first, so both readers refuse the same files.

Representation (both readers):
- chained fixups: the imports table, i.e. what dyld resolves at launch (LIEF reports what the
  chains reference: the same on anything a linker wrote).
- a library ordinal n >= 1 names the n-th dylib-loading command (LC_LOAD_DYLIB, _WEAK_,
  _REEXPORT_, _LAZY_LOAD_, _LOAD_UPWARD_; never LC_ID_DYLIB); 0, -1, -2, -3 are
  model.SPECIAL_ORDINALS; any other ordinal is a corrupt file. Chained 8/16-bit ordinals are
  read as dyld does: only the top 15 values (0xF1..0xFF) are negative.
- an entry of the classic weak-bind stream (C++ weak-definition coalescing, no ordinal) is
  (WEAK_LOOKUP, name, weak=False), as the chained-fixups form of the same binary says; its
  BIND_SYMBOL_FLAGS_NON_WEAK_DEFINITION entries ("this image overrides a weak definition")
  import nothing and are skipped, as `llvm-nm -u` agrees.
- a symbol name that is not UTF-8 is a corrupt file (dyld compares names bytewise, but no
  linker writes such a name and a report could not print it faithfully).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from llamabuild.core.errors import InputError
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer, Import
from llamabuild.inspect.bindinfo import BIND, LAZY, WEAK, bind_stream_imports
from llamabuild.inspect.decoding import (
    ImportKey,
    Malformed,
    c_symbol,
    corrupt,
    ordinal_dylib,
)

LC_DYLD_CHAINED_FIXUPS = 0x80000034
DYLIB_CMDS = frozenset(
    {
        st.LC_LOAD_DYLIB,
        st.LC_LOAD_WEAK_DYLIB,
        st.LC_REEXPORT_DYLIB,
        st.LC_LAZY_LOAD_DYLIB,
        st.LC_LOAD_UPWARD_DYLIB,
    }
)

# dyld_chained_fixups_header
CHAINED_HEADER = 28
CHAINED_IMPORT_SIZE = {1: 4, 2: 8, 3: 16}  # DYLD_CHAINED_IMPORT, _ADDEND, _ADDEND64
SYMBOLS_ZLIB = 1


def dylib_names(raw: st.RawSlice) -> tuple[str, ...]:
    """Install names of the dylib-loading commands, in load-command order (ordinal n = [n-1])."""
    out: list[str] = []
    for c in raw.commands:
        if c.cmd in DYLIB_CMDS:
            offset = struct.unpack_from(raw.endian + "I", c.data, 8)[0] if len(c.data) >= 12 else 0
            out.append(st.c_string(c.data, offset))
    return tuple(out)


def dylib_for_ordinal(ordinal: int, dylibs: Sequence[str], name: str, where: str) -> str:
    """The install name (or SPECIAL_ORDINALS pseudo-name) a library ordinal stands for;
    InputError naming `where` for an ordinal that names nothing."""
    try:
        return ordinal_dylib(ordinal, dylibs)
    except Malformed as exc:
        raise corrupt(name, f"{where}: {exc}") from None


def read_imports(
    buf: Buffer, raw: st.RawSlice, name: str, dylibs: Sequence[str] | None = None
) -> tuple[Import, ...]:
    """Every (dylib, symbol, weak) the slice imports, sorted and unique.

    `name` is the display name used in errors; `dylibs` the install names ordinals refer to
    (default: read from `raw`; the readers pass the names they report so both agree).
    """
    names = dylib_names(raw) if dylibs is None else dylibs
    found: set[ImportKey] = set()
    linkedit = _linkedit(raw, name)
    fixups = [c for c in raw.commands if c.cmd == LC_DYLD_CHAINED_FIXUPS]
    infos = [c for c in raw.commands if c.cmd in (st.LC_DYLD_INFO, st.LC_DYLD_INFO_ONLY)]
    if len(fixups) > 1 or len(infos) > 1:
        raise corrupt(name, "more than one LC_DYLD_CHAINED_FIXUPS or LC_DYLD_INFO")
    e = raw.endian
    for c in fixups:
        if len(c.data) < 16:
            raise corrupt(name, "LC_DYLD_CHAINED_FIXUPS is too short")
        off, size = struct.unpack_from(e + "II", c.data, 8)
        blob = _range(buf, raw, linkedit, off, size, "chained fixups", name)
        found.update(_chained(blob, e, names, list(_segments(raw)), name))
    for c in infos:
        if len(c.data) < 48:
            raise corrupt(name, "LC_DYLD_INFO is too short")
        v = struct.unpack_from(e + "10I", c.data, 8)
        segments = _segment_sizes(raw)
        ptr = 8 if raw.is64 else 4
        for kind, off, size in ((BIND, v[2], v[3]), (WEAK, v[4], v[5]), (LAZY, v[6], v[7])):
            stream = _range(buf, raw, linkedit, off, size, f"{kind} opcodes", name)
            found.update(bind_stream_imports(stream, kind, names, segments, ptr, name))
    return tuple(Import(*key) for key in sorted(found))  # tuples sort as Import does


# --- ranges -------------------------------------------------------------------------------


class _Segment(NamedTuple):
    name: str
    vmaddr: int
    vmsize: int
    fileoff: int
    filesize: int


def _segments(raw: st.RawSlice) -> Iterator[_Segment]:
    """Every segment command, in order (the index bind opcodes and chain starts use)."""
    for c in raw.commands:
        if c.cmd == st.LC_SEGMENT_64 and len(c.data) >= 72:
            seg, *numbers = struct.unpack_from(raw.endian + "16sQQQQ", c.data, 8)
        elif c.cmd == st.LC_SEGMENT and len(c.data) >= 56:
            seg, *numbers = struct.unpack_from(raw.endian + "16sIIII", c.data, 8)
        else:
            continue
        yield _Segment(seg.split(b"\0", 1)[0].decode("latin-1"), *numbers)


def _segment_sizes(raw: st.RawSlice) -> list[int]:
    """How many bytes of each segment a bind may write: its file content (linkers never bind
    into zero-fill), which also bounds a hostile DO_BIND_ULEB_TIMES count by the file size."""
    return [min(s.vmsize, s.filesize) for s in _segments(raw)]


def _linkedit(raw: st.RawSlice, name: str) -> tuple[int, int]:
    """[start, end) of __LINKEDIT in the slice (dyld refuses linkedit data outside it)."""
    for s in _segments(raw):
        if s.name == "__LINKEDIT":
            if s.fileoff + s.filesize > raw.size:
                raise corrupt(name, "__LINKEDIT lies outside the slice")
            return s.fileoff, s.fileoff + s.filesize
    return 0, raw.size


def _range(
    buf: Buffer,
    raw: st.RawSlice,
    linkedit: tuple[int, int],
    off: int,
    size: int,
    what: str,
    name: str,
) -> bytes:
    if size == 0:
        return b""
    start, end = linkedit
    if off < start or off + size > end or raw.offset + off + size > len(buf):
        raise corrupt(name, f"{what} at {off}+{size} lie outside __LINKEDIT ({start}..{end})")
    return buf[raw.offset + off : raw.offset + off + size]


# --- chained fixups -----------------------------------------------------------------------


def _ordinal(value: int, bits: int) -> int:
    """dyld's reading of a chained import's lib_ordinal: the top 15 values (0xF1..0xFF,
    0xFFF1..0xFFFF) are signed specials (-15..-1), everything below a dylib number; ld64 and
    lld switch to the 16-bit format rather than write an 8-bit ordinal above 0xF0."""
    top = 1 << bits
    return value - top if value > top - 16 else value


def _chained(
    blob: bytes, e: str, dylibs: Sequence[str], segments: Sequence[_Segment], name: str
) -> set[ImportKey]:
    """The imports table (what dyld resolves at launch), after dyld's checks of the header and
    of the chain starts (LIEF walks those chains: both readers must refuse the same files)."""
    size = len(blob)
    if size < CHAINED_HEADER:
        raise corrupt(name, f"chained fixups header needs {CHAINED_HEADER} bytes, has {size}")
    version, starts, imports_off, symbols_off, count, fmt, symbols_fmt = struct.unpack_from(
        e + "7I", blob, 0
    )
    if version != 0:
        raise corrupt(name, f"chained fixups version {version}, only 0 exists")
    if symbols_fmt == SYMBOLS_ZLIB:
        raise InputError(
            f"{name}: unsupported Mach-O (zlib-compressed chained fixups symbol names)",
            hint="Apple's linker never writes them (dyld refuses them too); relink the binary",
        )
    if symbols_fmt != 0:
        raise corrupt(name, f"chained fixups symbols_format {symbols_fmt}")
    entry = CHAINED_IMPORT_SIZE.get(fmt)
    if entry is None:
        raise corrupt(name, f"chained fixups imports_format {fmt}")
    for what, value, limit in (
        ("starts_offset", starts, size - 1),
        ("imports_offset", imports_off, size),
        ("symbols_offset", symbols_off, size),
    ):
        if not CHAINED_HEADER <= value <= limit:
            raise corrupt(name, f"chained fixups {what} {value} outside {CHAINED_HEADER}..{size}")
    if imports_off + count * entry > symbols_off:
        raise corrupt(
            name,
            f"chained fixups: {count} imports x {entry} bytes at {imports_off} overlap the "
            f"symbol names at {symbols_off}",
        )
    try:
        _check_starts(blob, e, starts, imports_off, segments)
    except Malformed as exc:
        raise corrupt(name, f"chained fixups: {exc}") from None
    out: set[ImportKey] = set()
    symbols: dict[int, str] = {}
    i = 0
    try:
        for i in range(count):
            pos = imports_off + i * entry
            if entry == 16:
                value = struct.unpack_from(e + "Q", blob, pos)[0]
                ordinal = _ordinal(value & 0xFFFF, 16)
                weak, name_off = (value >> 16) & 1, value >> 32
            else:
                value = struct.unpack_from(e + "I", blob, pos)[0]
                ordinal, weak, name_off = _ordinal(value & 0xFF, 8), (value >> 8) & 1, value >> 9
            symbol = symbols.get(name_off)
            if symbol is None:
                if symbols_off + name_off >= size:
                    raise Malformed(f"name offset {name_off} outside the symbol pool")
                symbol, _ = c_symbol(blob, symbols_off + name_off, size)
                symbols[name_off] = symbol
            out.add((ordinal_dylib(ordinal, dylibs), symbol, bool(weak)))
    except Malformed as exc:
        raise corrupt(name, f"chained import {i}: {exc}") from None
    return out


DYLD_CHAINED_PTR_START_NONE = 0xFFFF
DYLD_CHAINED_PTR_START_MULTI = 0x8000  # page_start[] holds an index into the overflow starts
DYLD_CHAINED_PTR_START_LAST = 0x8000  # the last overflow start of a page
CHAINED_POINTER_FORMATS = range(1, 15)  # DYLD_CHAINED_PTR_ARM64E .. _ARM64E_SEGMENTED
SEGMENT_STARTS = 22  # dyld_chained_starts_in_segment up to page_start[]


def _check_starts(
    blob: bytes, e: str, starts: int, imports_off: int, segments: Sequence[_Segment]
) -> None:
    """dyld's validation of dyld_chained_starts_in_image and each segment's starts (its
    ChainedFixups::valid), plus segment_offset = the segment's address in the image, which
    dyld ignores but LIEF walks the chains from: what LIEF would otherwise walk into garbage
    or skip silently."""
    if starts + 4 > imports_off:
        raise Malformed(f"starts_offset {starts} leaves no room before the imports")
    seg_count = struct.unpack_from(e + "I", blob, starts)[0]
    n = len(segments)
    if seg_count > n or (seg_count < n and segments[-1].name != "__CTF"):
        raise Malformed(f"seg_count {seg_count}, but {n} segments")
    base = next((s.vmaddr for s in segments if s.name == "__TEXT"), 0)
    if starts + 4 + 4 * seg_count > imports_off:
        raise Malformed(f"{seg_count} segment offsets overrun the imports")
    pointer_format = max_valid = 0
    for i, seg_info in enumerate(struct.unpack_from(f"{e}{seg_count}I", blob, starts + 4)):
        if seg_info == 0:  # no fixups in this segment
            continue
        at = starts + seg_info
        if at + SEGMENT_STARTS > imports_off:
            raise Malformed(f"segment #{i} starts overrun the imports")
        size, page_size, fmt, seg_offset, max_ptr, page_count = struct.unpack_from(
            e + "IHHQIH", blob, at
        )
        if seg_offset != segments[i].vmaddr - base:
            raise Malformed(f"segment #{i} segment_offset {seg_offset:#x} is not its address")
        if size < SEGMENT_STARTS or at + size > imports_off:
            raise Malformed(f"segment #{i} starts ({size} bytes) overrun the imports")
        if page_size not in (0x1000, 0x4000):
            raise Malformed(f"segment #{i} page_size {page_size:#x} is not 4 or 16 KB")
        if fmt not in CHAINED_POINTER_FORMATS or fmt != (pointer_format or fmt):
            raise Malformed(f"segment #{i} pointer_format {fmt}")
        pointer_format = fmt
        if max_ptr and max_ptr != (max_valid or max_ptr):
            raise Malformed("different max_valid_pointer values in different segments")
        max_valid = max_ptr or max_valid
        if SEGMENT_STARTS + 2 * page_count > size:
            raise Malformed(f"segment #{i}: {page_count} page starts overflow its size")
        table = struct.unpack_from(f"{e}{(size - SEGMENT_STARTS) // 2}H", blob, at + 22)
        for page, start in enumerate(table[:page_count]):
            if start == DYLD_CHAINED_PTR_START_NONE:
                continue
            if not start & DYLD_CHAINED_PTR_START_MULTI:
                if start > page_size:
                    raise Malformed(f"segment #{i} page {page} starts past the page")
                continue
            index, last = start & ~DYLD_CHAINED_PTR_START_MULTI, 0
            while True:  # the page's overflow starts: inside the page, ascending
                if index >= len(table):
                    raise Malformed(f"segment #{i} page {page}: overflow start out of range")
                offset = table[index] & ~DYLD_CHAINED_PTR_START_LAST
                if offset > page_size or (last and offset <= last):
                    raise Malformed(f"segment #{i} page {page}: bad overflow start {offset:#x}")
                last = offset
                if table[index] & DYLD_CHAINED_PTR_START_LAST:
                    break
                index += 1


# --- classic bind opcodes -----------------------------------------------------------------
