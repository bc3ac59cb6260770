"""The symbol table of a Mach-O slice (LC_SYMTAB, narrowed by LC_DYSYMTAB's ranges): its
undefined externals (what the static linker left for dyld to resolve) and its external
definitions by name prefix.

The chained fixups (imports.py) are what dyld binds at launch; the symbol table can name more
(a reference the linker kept no fixup for). The required-reason API scan reads both, as App
Review says neither which it reads. Every range was checked by structure.py; names are read
from the mapped file, never a copy of the table.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer

N_STAB, N_TYPE, N_EXT, N_UNDF, N_SECT = 0xE0, 0x0E, 0x01, 0x00, 0x0E  # <mach-o/nlist.h>
EXTDEF, UNDEF = 2, 4  # LC_DYSYMTAB's (index, count) pairs: iextdefsym, iundefsym


def _entries(buf: Buffer, raw: st.RawSlice, which: int) -> Iterator[tuple[int, int, int, int]]:
    """(ntype, value, name start, strings end) of the entries in LC_DYSYMTAB's range `which`
    (the whole table without one); names start at an absolute offset in `buf`."""
    symtab = next((c for c in raw.find(st.LC_SYMTAB) if len(c.data) >= 24), None)
    if symtab is None:
        return
    e = raw.endian
    symoff, nsyms, stroff, strsize = struct.unpack_from(e + "IIII", symtab.data, 8)
    first, count = 0, nsyms
    dysymtab = next((c for c in raw.find(st.LC_DYSYMTAB) if len(c.data) >= 80), None)
    if dysymtab is not None:
        index, n = struct.unpack_from(e + "II", dysymtab.data, 8 + which * 4)
        if index + n <= nsyms:
            first, count = index, n
    size = 16 if raw.is64 else 12
    entry = struct.Struct(e + ("IBBHQ" if raw.is64 else "IBBHI"))
    strings_at, strings_end = raw.offset + stroff, raw.offset + stroff + strsize
    table_at = raw.offset + symoff + first * size
    if table_at + count * size > len(buf) or strings_end > len(buf):
        return  # structure.py refuses such a file before this runs
    for i in range(count):
        strx, ntype, _sect, _desc, value = entry.unpack_from(buf, table_at + i * size)
        if strx < strsize and not ntype & N_STAB:
            yield ntype, value, strings_at + strx, strings_end


def _name(buf: Buffer, start: int, end: int) -> str | None:
    stop = buf.find(b"\0", start, end)
    return bytes(buf[start:stop]).decode("utf-8", "replace") if stop > start else None


def undefined_symbols(buf: Buffer, raw: st.RawSlice) -> tuple[str, ...]:
    """Sorted names of the slice's undefined externals (common symbols excluded)."""
    found: set[str] = set()
    for ntype, value, start, end in _entries(buf, raw, UNDEF):
        if ntype & N_TYPE == N_UNDF and ntype & N_EXT and not value:
            name = _name(buf, start, end)
            if name:
                found.add(name)
    return tuple(sorted(found))


def defined_external(buf: Buffer, raw: st.RawSlice, prefix: bytes) -> dict[str, int]:
    """Name -> value (its address) of the slice's external definitions starting with `prefix`
    (LC_DYSYMTAB's extdef range when present: a few thousand entries, not the whole table)."""
    found: dict[str, int] = {}
    for ntype, value, start, end in _entries(buf, raw, EXTDEF):
        if ntype & N_TYPE == N_SECT and buf[start : start + len(prefix)] == prefix:
            name = _name(buf, start, end)
            if name:
                found[name] = value
    return found
