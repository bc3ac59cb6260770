"""The undefined external symbols of a Mach-O's symbol table (LC_SYMTAB, narrowed by
LC_DYSYMTAB's undefined range): what the static linker left for dyld to resolve.

The chained fixups (imports.py) are what dyld binds at launch; the symbol table can name more
(a reference the linker kept no fixup for). The required-reason API scan reads both, as App
Review says neither which it reads. Every range was checked by structure.py; names are read
from the mapped file, never a copy of the table.
"""

from __future__ import annotations

import struct

from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer

N_STAB, N_TYPE, N_EXT, N_UNDF, N_SECT = 0xE0, 0x0E, 0x01, 0x00, 0x0E  # <mach-o/nlist.h>


def undefined_symbols(buf: Buffer, raw: st.RawSlice) -> tuple[str, ...]:
    """Sorted names of the slice's undefined externals (common symbols excluded)."""
    symtab = next((c for c in raw.find(st.LC_SYMTAB) if len(c.data) >= 24), None)
    if symtab is None:
        return ()
    e = raw.endian
    symoff, nsyms, stroff, strsize = struct.unpack_from(e + "IIII", symtab.data, 8)
    first, count = 0, nsyms
    dysymtab = next((c for c in raw.find(st.LC_DYSYMTAB) if len(c.data) >= 80), None)
    if dysymtab is not None:
        iundef, nundef = struct.unpack_from(e + "II", dysymtab.data, 8 + 4 * 4)
        if iundef + nundef <= nsyms:
            first, count = iundef, nundef
    size = 16 if raw.is64 else 12
    entry = struct.Struct(e + ("IBBHQ" if raw.is64 else "IBBHI"))
    strings_at, strings_end = raw.offset + stroff, raw.offset + stroff + strsize
    table_at = raw.offset + symoff + first * size
    if table_at + count * size > len(buf) or strings_end > len(buf):
        return ()  # structure.py refuses such a file before this runs
    found: set[str] = set()
    for i in range(count):
        strx, ntype, _sect, _desc, value = entry.unpack_from(buf, table_at + i * size)
        if ntype & N_STAB or ntype & N_TYPE != N_UNDF or not ntype & N_EXT or value:
            continue
        start = strings_at + strx
        end = buf.find(b"\0", start, strings_end) if strx < strsize else -1
        if end > start:
            found.add(bytes(buf[start:end]).decode("utf-8", "replace"))
    return tuple(sorted(found))


def defined_external(buf: Buffer, raw: st.RawSlice, prefix: bytes) -> dict[str, int]:
    """Name -> value (its address) of the slice's external definitions starting with `prefix`
    (LC_DYSYMTAB's extdef range when present: a few thousand entries, not the whole table)."""
    symtab = next((c for c in raw.find(st.LC_SYMTAB) if len(c.data) >= 24), None)
    if symtab is None:
        return {}
    e = raw.endian
    symoff, nsyms, stroff, strsize = struct.unpack_from(e + "IIII", symtab.data, 8)
    first, count = 0, nsyms
    dysymtab = next((c for c in raw.find(st.LC_DYSYMTAB) if len(c.data) >= 80), None)
    if dysymtab is not None:
        iext, next_ = struct.unpack_from(e + "II", dysymtab.data, 8 + 2 * 4)
        if iext + next_ <= nsyms:
            first, count = iext, next_
    size = 16 if raw.is64 else 12
    entry = struct.Struct(e + ("IBBHQ" if raw.is64 else "IBBHI"))
    strings_at, strings_end = raw.offset + stroff, raw.offset + stroff + strsize
    table_at = raw.offset + symoff + first * size
    if table_at + count * size > len(buf) or strings_end > len(buf):
        return {}
    found: dict[str, int] = {}
    for i in range(count):
        strx, ntype, _sect, _desc, value = entry.unpack_from(buf, table_at + i * size)
        if ntype & N_STAB or ntype & N_TYPE != N_SECT or strx >= strsize:
            continue
        start = strings_at + strx
        if buf[start : start + len(prefix)] != prefix:
            continue
        end = buf.find(b"\0", start, strings_end)
        if end > start:
            found[bytes(buf[start:end]).decode("utf-8", "replace")] = value
    return found
