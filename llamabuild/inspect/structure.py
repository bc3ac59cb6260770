"""Pure, bounds-checked reading of Mach-O containers and load commands.

LIEF happily parses truncated files; verify must call them truncated (exit 2). This module
checks the container before LIEF sees it and reads UUIDs of huge files (a 130 MB dSYM) without
loading them: only headers and load commands are read.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from llamabuild.core.errors import InputError

MH_MAGIC = 0xFEEDFACE
MH_MAGIC_64 = 0xFEEDFACF
FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MAX_FAT_ARCHS = 32

LC_REQ_DYLD = 0x80000000
LC_SEGMENT = 0x1
LC_SYMTAB = 0x2
LC_LOAD_DYLIB = 0xC
LC_ID_DYLIB = 0xD
LC_LOAD_DYLINKER = 0xE
LC_ID_DYLINKER = 0xF
LC_LOAD_WEAK_DYLIB = 0x18 | LC_REQ_DYLD
LC_SEGMENT_64 = 0x19
LC_DYSYMTAB = 0xB
LC_UUID = 0x1B
LC_RPATH = 0x1C | LC_REQ_DYLD
LC_CODE_SIGNATURE = 0x1D
LC_REEXPORT_DYLIB = 0x1F | LC_REQ_DYLD
LC_LAZY_LOAD_DYLIB = 0x20
LC_LOAD_UPWARD_DYLIB = 0x23 | LC_REQ_DYLD
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
LC_DYLD_INFO = 0x22
LC_DYLD_INFO_ONLY = 0x22 | LC_REQ_DYLD
LC_DYLD_ENVIRONMENT = 0x27
# Commands that carry an lc_str, with the size of their fixed part (where the string may start).
STRING_CMDS = {
    LC_LOAD_DYLIB: 24,
    LC_ID_DYLIB: 24,
    LC_LOAD_WEAK_DYLIB: 24,
    LC_REEXPORT_DYLIB: 24,
    LC_LAZY_LOAD_DYLIB: 24,
    LC_LOAD_UPWARD_DYLIB: 24,
    LC_LOAD_DYLINKER: 12,
    LC_ID_DYLINKER: 12,
    0x12: 12,  # LC_SUB_FRAMEWORK
    0x13: 12,  # LC_SUB_UMBRELLA
    0x14: 12,  # LC_SUB_CLIENT
    0x15: 12,  # LC_SUB_LIBRARY
    LC_RPATH: 12,
    LC_DYLD_ENVIRONMENT: 12,
}
LINKEDIT_DATA_CMDS = frozenset({0x1D, 0x1E, 0x26, 0x29, 0x2B, 0x2E, 0x80000033, 0x80000034})

CPU_ARCH_ABI64 = 0x01000000
CPU_ARCH_ABI64_32 = 0x02000000
CPU_TYPE_X86 = 7
CPU_TYPE_ARM = 12
CPU_TYPE_POWERPC = 18

FILETYPES = {
    1: "object",
    2: "execute",
    5: "core",
    6: "dylib",
    7: "dylinker",
    8: "bundle",
    9: "dylib_stub",
    10: "dsym",
    11: "kext_bundle",
}


class Reader(Protocol):
    """An open binary file or an mmap: both seek and read."""

    def seek(self, pos: int, /) -> object: ...
    def read(self, n: int | None = ..., /) -> bytes: ...


def as_reader(data: bytes | Reader) -> Reader:
    """What read_slices takes: an mmap (or open file) as it is, bytes wrapped in a BytesIO."""
    import io

    return io.BytesIO(data) if isinstance(data, bytes) else data


def arch_name(cputype: int, cpusubtype: int) -> str:
    sub = cpusubtype & 0x00FFFFFF
    if cputype == CPU_TYPE_X86 | CPU_ARCH_ABI64:
        return "x86_64h" if sub == 8 else "x86_64"
    if cputype == CPU_TYPE_ARM | CPU_ARCH_ABI64:
        return "arm64e" if sub == 2 else "arm64"
    if cputype == CPU_TYPE_ARM | CPU_ARCH_ABI64_32:
        return "arm64_32"
    if cputype == CPU_TYPE_X86:
        return "i386"
    if cputype == CPU_TYPE_ARM:
        return "armv7" if sub == 9 else "arm"
    if cputype in (CPU_TYPE_POWERPC, CPU_TYPE_POWERPC | CPU_ARCH_ABI64):
        return "ppc64" if cputype & CPU_ARCH_ABI64 else "ppc"
    return f"cpu{cputype:#x}"


KNOWN_CPUTYPES = frozenset(
    {
        CPU_TYPE_X86,
        CPU_TYPE_X86 | CPU_ARCH_ABI64,
        CPU_TYPE_ARM,
        CPU_TYPE_ARM | CPU_ARCH_ABI64,
        CPU_TYPE_ARM | CPU_ARCH_ABI64_32,
        CPU_TYPE_POWERPC,
        CPU_TYPE_POWERPC | CPU_ARCH_ABI64,
    }
)


@dataclass(frozen=True)
class LoadCommand:
    cmd: int
    data: bytes  # the whole command, header included


@dataclass(frozen=True)
class RawSlice:
    """One thin Mach-O inside a file: where it is and its load commands (bounds checked)."""

    arch: str
    offset: int
    size: int
    filetype: str
    endian: str
    is64: bool
    commands: tuple[LoadCommand, ...]
    extent: int = 0  # bytes from `offset` to the end of the last range any command points at

    def find(self, cmd: int) -> Iterator[LoadCommand]:
        return (c for c in self.commands if c.cmd == cmd)

    @property
    def uuid(self) -> str | None:
        for c in self.find(LC_UUID):
            if len(c.data) >= 24:
                return format_uuid(c.data[8:24])
        return None


def format_uuid(raw: bytes) -> str:
    h = raw.hex().upper()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def sniff(head: bytes) -> str | None:
    """'macho', 'fat', 'elf' or None from the first bytes of a file."""
    if len(head) < 4:
        return None
    if head[:4] == b"\x7fELF":
        return "elf"
    be = struct.unpack(">I", head[:4])[0]
    le = struct.unpack("<I", head[:4])[0]
    if be in (FAT_MAGIC, FAT_MAGIC_64):
        return "fat"
    if le in (MH_MAGIC, MH_MAGIC_64) or be in (MH_MAGIC, MH_MAGIC_64):
        return "macho"
    return None


def read_slices(fh: Reader, file_size: int, name: str) -> list[RawSlice]:
    """All slices of a Mach-O or fat file, each checked to lie inside the file."""
    fh.seek(0)
    head = fh.read(8)
    kind = sniff(head)
    if kind == "fat":
        return [_read_thin(fh, off, size, name) for off, size in _fat_entries(fh, file_size, name)]
    if kind == "macho":
        return [_read_thin(fh, 0, file_size, name)]
    raise InputError(f"{name}: not a Mach-O file", hint="pass a Mach-O executable or dylib")


def _fat_entries(fh: Reader, file_size: int, name: str) -> list[tuple[int, int]]:
    fh.seek(0)
    magic, count = struct.unpack(">II", _read(fh, 8, name))
    is64 = magic == FAT_MAGIC_64
    if count == 0 or count > MAX_FAT_ARCHS:
        raise InputError(
            f"{name}: not a Mach-O file (0xCAFEBABE header lists {count} slices)",
            hint="a Java .class file starts with the same magic; pass the Mach-O binary itself",
        )
    fmt, entry = (">iiQQII", 32) if is64 else (">iiIII", 20)
    table = _read(fh, entry * count, name)
    out: list[tuple[int, int]] = []
    for i in range(count):
        fields = struct.unpack_from(fmt, table, i * entry)
        cputype, offset, size = fields[0], fields[2], fields[3]
        if cputype not in KNOWN_CPUTYPES:
            raise InputError(f"{name}: not a Mach-O file (unknown CPU type {cputype:#x})")
        if offset < 8 + entry * count or size < 28 or offset + size > file_size:
            raise InputError(
                f"{name}: truncated or corrupt fat file (slice {i} lies outside the file)",
                hint="the file was cut short; copy or download it again",
            )
        out.append((offset, size))
    spans = sorted(out)
    for (a_off, a_size), (b_off, _) in itertools.pairwise(spans):
        if a_off + a_size > b_off:
            raise InputError(f"{name}: corrupt fat file (slices overlap)")
    return out


def _read(fh: Reader, n: int, name: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise InputError(
            f"{name}: truncated Mach-O (ends inside its headers)",
            hint="the file was cut short; copy or download it again",
        )
    return data


def _read_thin(fh: Reader, offset: int, size: int, name: str) -> RawSlice:
    fh.seek(offset)
    head = _read(fh, 28, name)
    le = struct.unpack("<I", head[:4])[0]
    be = struct.unpack(">I", head[:4])[0]
    if le in (MH_MAGIC, MH_MAGIC_64):
        endian, magic = "<", le
    elif be in (MH_MAGIC, MH_MAGIC_64):
        endian, magic = ">", be
    else:
        raise InputError(f"{name}: not a Mach-O file (bad magic at offset {offset})")
    is64 = magic == MH_MAGIC_64
    cputype, cpusubtype, filetype, ncmds, sizeofcmds, _flags = struct.unpack(
        endian + "iiIIII", head[4:28]
    )
    if cputype not in KNOWN_CPUTYPES:
        raise InputError(f"{name}: not a Mach-O file (unknown CPU type {cputype:#x})")
    header_size = 32 if is64 else 28
    if header_size + sizeofcmds > size or ncmds * 8 > sizeofcmds:
        raise InputError(
            f"{name}: truncated or corrupt Mach-O (load commands exceed the file)",
            hint="the file was cut short; copy or download it again",
        )
    fh.seek(offset + header_size)
    raw = _read(fh, sizeofcmds, name)
    commands = tuple(_split_commands(raw, ncmds, endian, name))
    arch = arch_name(cputype, cpusubtype)
    extent = max(header_size + sizeofcmds, _check_ranges(commands, endian, size, name, arch, is64))
    _check_strings(commands, endian, name)
    return RawSlice(
        arch=arch,
        offset=offset,
        size=size,
        filetype=FILETYPES.get(filetype, f"type{filetype}"),
        endian=endian,
        is64=is64,
        commands=commands,
        extent=extent,
    )


def _split_commands(raw: bytes, ncmds: int, endian: str, name: str) -> Iterator[LoadCommand]:
    pos = 0
    for _ in range(ncmds):
        if pos + 8 > len(raw):
            raise InputError(f"{name}: corrupt Mach-O (load command runs past sizeofcmds)")
        cmd, cmdsize = struct.unpack_from(endian + "II", raw, pos)
        if cmdsize < 8 or cmdsize % 4 or pos + cmdsize > len(raw):
            raise InputError(f"{name}: corrupt Mach-O (load command {cmd:#x} has bad size)")
        yield LoadCommand(cmd, raw[pos : pos + cmdsize])
        pos += cmdsize


def _check_ranges(
    commands: tuple[LoadCommand, ...], endian: str, size: int, name: str, arch: str, is64: bool
) -> int:
    """Every byte range a load command points at must lie inside the slice; returns the end
    of the furthest one (what a parser may need to see of the slice)."""
    extent = 0
    for c in commands:
        ranges: list[tuple[int, int]] = []
        if c.cmd == LC_SEGMENT_64 and len(c.data) >= 72:
            fileoff, filesize = struct.unpack_from(endian + "QQ", c.data, 40)
            ranges.append((fileoff, filesize))
        elif c.cmd == LC_SEGMENT and len(c.data) >= 56:
            fileoff, filesize = struct.unpack_from(endian + "II", c.data, 32)
            ranges.append((fileoff, filesize))
        elif c.cmd == LC_SYMTAB and len(c.data) >= 24:
            symoff, nsyms, stroff, strsize = struct.unpack_from(endian + "IIII", c.data, 8)
            ranges += [(stroff, strsize), (symoff, nsyms * (16 if is64 else 12))]
        elif c.cmd == LC_DYSYMTAB and len(c.data) >= 80:
            v = struct.unpack_from(endian + "18I", c.data, 8)
            ranges += [(v[14], v[15] * 4), (v[16], v[17] * 8)]  # indirect symbols, ext relocs
        elif c.cmd in (LC_DYLD_INFO, LC_DYLD_INFO_ONLY) and len(c.data) >= 48:
            v = struct.unpack_from(endian + "10I", c.data, 8)
            # rebase, bind, weak bind, lazy bind, export
            ranges += [(v[i], v[i + 1]) for i in range(0, 10, 2)]
        elif c.cmd in LINKEDIT_DATA_CMDS and len(c.data) >= 16:
            ranges.append(struct.unpack_from(endian + "II", c.data, 8))
        for off, length in ranges:
            if length:
                extent = max(extent, off + length)
            if off + length > size:
                raise InputError(
                    f"{name}: truncated Mach-O ({arch} slice is {size} bytes, "
                    f"a load command needs {off + length})",
                    hint="the file was cut short; copy or download it again",
                )
    return extent


_CORRUPT_HINT = "the file is damaged or was patched by hand; rebuild or copy it again"


def _check_strings(commands: tuple[LoadCommand, ...], endian: str, name: str) -> None:
    """Every lc_str starts after its command's fixed part, ends with a NUL inside the command
    and is UTF-8 (APFS and dyld paths are UTF-8): anything else is a corrupt file, for both
    readers alike (LIEF would read on into the next command)."""
    for c in commands:
        head = STRING_CMDS.get(c.cmd)
        if head is None:
            continue
        what = f"load command {c.cmd:#x}"
        if len(c.data) < head:
            raise InputError(f"{name}: corrupt Mach-O ({what} is too short)", hint=_CORRUPT_HINT)
        offset = struct.unpack_from(endian + "I", c.data, 8)[0]
        if not head <= offset < len(c.data):
            raise InputError(
                f"{name}: corrupt Mach-O ({what}: string offset {offset} outside the command)",
                hint=_CORRUPT_HINT,
            )
        end = c.data.find(b"\0", offset)
        if end < 0:
            raise InputError(
                f"{name}: corrupt Mach-O ({what}: string not NUL-terminated)", hint=_CORRUPT_HINT
            )
        try:
            c.data[offset:end].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"{name}: corrupt Mach-O ({what}: name is not valid UTF-8)", hint=_CORRUPT_HINT
            ) from None


def read_uuids(path: Path) -> dict[str, str | None]:
    """arch -> UUID for every slice, reading only headers (cheap on a 130 MB dSYM)."""
    from llamabuild.core.mapped import open_mapped

    with open_mapped(path) as mm:
        return {s.arch: s.uuid for s in read_slices(mm, len(mm), str(path))}


def c_string(data: bytes, offset: int) -> str:
    """The lc_str at `offset` inside a load command (validated by _check_strings)."""
    if offset >= len(data):
        return ""
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")


@dataclass(frozen=True)
class Section:
    segname: str
    sectname: str
    size: int
    offset: int
    addr: int = 0  # its address: where symbols defined in it point


def _name16(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def sections(sl: RawSlice, segname: str | None = None) -> list[Section]:
    """Section headers of every segment (or only `segname`), read from the load commands.

    Lets dSYM checks see __DWARF,__debug_info of a huge DWARF file without loading it.
    """
    out: list[Section] = []
    for c in sl.commands:
        if c.cmd == LC_SEGMENT_64:
            head, entry, fmt = 72, 80, sl.endian + "16s16sQQI"
        elif c.cmd == LC_SEGMENT:
            head, entry, fmt = 56, 68, sl.endian + "16s16sIII"
        else:
            continue
        if len(c.data) < head or (segname and _name16(c.data[8:24]) != segname):
            continue
        nsects = struct.unpack_from(sl.endian + "I", c.data, head - 8)[0]
        for i in range(nsects):
            pos = head + i * entry
            if pos + entry > len(c.data):
                break
            sect, seg, addr, size, offset = struct.unpack_from(fmt, c.data, pos)
            out.append(Section(_name16(seg), _name16(sect), size, offset, addr))
    return out
