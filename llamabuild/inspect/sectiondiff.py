"""Which Mach-O / ELF sections of two builds differ: what `build --check-reproducible` names.

Each file is cut into named byte ranges (every section with file contents, plus the headers
and load commands, the symbol and string tables, the code signature and the other __LINKEDIT
blobs of a Mach-O) and the ranges are compared by name, so two builds whose layout moved still
say e.g. `__TEXT,__cstring` (a `__FILE__`/`__DATE__` string) or `string table` (an object path
in the N_OSO debug map). Files are mapped, never read whole; every range is clamped to the file.
"""

from __future__ import annotations

import hashlib
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llamabuild.core.errors import InputError
from llamabuild.core.mapped import open_mapped
from llamabuild.inspect import structure

# linkedit_data_command loads: (dataoff, datasize) at offset 8.
LINKEDIT_BLOBS = {
    structure.LC_CODE_SIGNATURE: "code signature",
    0x26: "function starts",
    0x29: "data in code",
    0x80000033: "exports trie",
    0x80000034: "chained fixups",
}
SHT_NOBITS = 8
MAX_SECTIONS = 1 << 16


@dataclass(frozen=True)
class Region:
    name: str
    offset: int
    size: int


def _macho_regions(data: mmap.mmap, name: str) -> Iterator[Region]:
    for sl in structure.read_slices(data, len(data), name):
        tag = f"{sl.arch}: " if sl.offset else ""
        header = 32 if sl.is64 else 28
        yield Region(f"{tag}Mach-O header", sl.offset, header)
        yield Region(
            f"{tag}load commands", sl.offset + header, sum(len(c.data) for c in sl.commands)
        )
        for cmd in sl.commands:
            yield from _command_regions(sl, cmd, tag)
        for sect in structure.sections(sl):
            if sect.offset:
                yield Region(
                    f"{tag}{sect.segname},{sect.sectname}", sl.offset + sect.offset, sect.size
                )


def _command_regions(
    sl: structure.RawSlice, cmd: structure.LoadCommand, tag: str
) -> Iterator[Region]:
    """The load command itself (LC_UUID by name) and the __LINKEDIT ranges it points at."""
    if cmd.cmd == structure.LC_UUID:
        yield Region(f"{tag}LC_UUID", sl.offset + _cmd_offset(sl, cmd), len(cmd.data))
    if cmd.cmd == structure.LC_SYMTAB and len(cmd.data) >= 24:
        symoff, nsyms, stroff, strsize = struct.unpack_from(sl.endian + "IIII", cmd.data, 8)
        yield Region(f"{tag}symbol table", sl.offset + symoff, nsyms * (16 if sl.is64 else 12))
        yield Region(f"{tag}string table", sl.offset + stroff, strsize)
    blob = LINKEDIT_BLOBS.get(cmd.cmd)
    if blob is not None and len(cmd.data) >= 16:
        off, size = struct.unpack_from(sl.endian + "II", cmd.data, 8)
        yield Region(f"{tag}{blob}", sl.offset + off, size)


def _cmd_offset(sl: structure.RawSlice, cmd: structure.LoadCommand) -> int:
    pos = 32 if sl.is64 else 28
    for c in sl.commands:
        if c is cmd:
            return pos
        pos += len(c.data)
    return pos


def _elf_regions(view: mmap.mmap, name: str) -> Iterator[Region]:
    is64, e = view[4] == 2, "<" if view[5] == 1 else ">"
    if is64:
        phoff, shoff = struct.unpack_from(e + "QQ", view, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", view, 54)
    else:
        phoff, shoff = struct.unpack_from(e + "II", view, 28)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", view, 42)
    yield Region("ELF header", 0, 64 if is64 else 52)
    yield Region("program headers", phoff, phentsize * phnum)
    heads = []
    for i in range(min(shnum, MAX_SECTIONS)):
        base = shoff + i * shentsize
        if base + (64 if is64 else 40) > len(view):
            raise InputError(f"{name}: truncated ELF section headers")
        fmt = e + ("IIQQQQ" if is64 else "IIIIII")
        sname, stype, _flags, _addr, off, size = struct.unpack_from(fmt, view, base)
        heads.append((sname, stype, off, size))
    if shstrndx >= len(heads):
        return
    _n, _t, str_off, str_size = heads[shstrndx]
    names = view[str_off : min(str_off + str_size, len(view))]
    for sname, stype, off, size in heads[1:]:
        if stype != SHT_NOBITS:
            label = structure.c_string(names, sname) or "(unnamed)"
            yield Region(label, off, size)


def regions(data: mmap.mmap, name: str) -> list[Region]:
    """Named byte ranges of a Mach-O (thin or fat) or ELF image; duplicates numbered."""
    head = data[:4]
    if head == b"\x7fELF":
        found = list(_elf_regions(data, name))
    elif structure.sniff(head) is not None:
        found = list(_macho_regions(data, name))
    else:
        raise InputError(f"{name}: neither Mach-O nor ELF", hint="compare the built binaries")
    seen: dict[str, int] = {}
    out: list[Region] = []
    for r in found:
        seen[r.name] = seen.get(r.name, 0) + 1
        label = r.name if seen[r.name] == 1 else f"{r.name} #{seen[r.name]}"
        out.append(Region(label, r.offset, r.size))
    return out


def digests(path: Path) -> dict[str, str]:
    """Region name -> sha256 of its bytes (clamped to the file)."""
    with open_mapped(path) as mm:
        size = len(mm)
        return {
            r.name: hashlib.sha256(
                mm[min(r.offset, size) : min(r.offset + r.size, size)]
            ).hexdigest()
            for r in regions(mm, str(path))
        }


def differing(a: Path, b: Path) -> list[str]:
    """Names of the regions whose bytes differ (or exist in one file only), in `a`'s order."""
    da, db = digests(a), digests(b)
    names = [*da, *(n for n in db if n not in da)]
    return [n for n in names if da.get(n) != db.get(n)]
