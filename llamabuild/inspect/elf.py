"""ELF (Linux builds): NEEDED, RPATH/RUNPATH and interpreter, after a bounds check."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from llamabuild.errors import InputError
from llamabuild.inspect.model import Binary, BinaryFormat, Buffer, Dylib, Slice

_MACHINES = {3: "i386", 62: "x86_64", 40: "arm", 183: "aarch64", 243: "riscv64"}
_TYPES = {1: "relocatable", 2: "execute", 3: "dyn", 4: "core"}


def _check_bounds(data: Buffer, name: str) -> tuple[str, str, int]:
    """(arch, filetype, extent) after proving the headers and segments lie inside the file.

    `extent` is where the last header or segment ends: LIEF gets only that prefix, so a file
    padded to gigabytes is never copied.
    """
    if len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise InputError(f"{name}: truncated or corrupt ELF header")
    is64 = data[4] == 2
    e = "<" if data[5] == 1 else ">"
    if is64 and len(data) < 64:
        raise InputError(f"{name}: truncated ELF header")
    etype, machine = struct.unpack_from(e + "HH", data, 16)
    if is64:
        phoff, shoff = struct.unpack_from(e + "QQ", data, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 54)
    else:
        phoff, shoff = struct.unpack_from(e + "II", data, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 42)
    truncated = InputError(
        f"{name}: truncated ELF (headers point past the end of the file)",
        hint="the file was cut short; copy or download it again",
    )
    extent = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
    if extent > len(data):
        raise truncated
    for i in range(phnum):
        base = phoff + i * phentsize
        if is64:
            if base + 56 > len(data):
                raise truncated
            ptype, _flags, off, _va, _pa, filesz = struct.unpack_from(e + "IIQQQQ", data, base)
        else:
            if base + 32 > len(data):
                raise truncated
            ptype, off, _va, _pa, filesz = struct.unpack_from(e + "IIIII", data, base)
        if ptype in (1, 2, 3) and off + filesz > len(data):
            raise truncated
        extent = max(extent, off + filesz if ptype in (1, 2, 3) else 0)
    return _MACHINES.get(machine, f"machine{machine}"), _TYPES.get(etype, f"type{etype}"), extent


def inspect_elf(path: Path, data: Buffer) -> Binary:
    name = str(path)
    arch, filetype, extent = _check_bounds(data, name)
    import lief

    lief.logging.disable()
    elf: Any = lief.ELF.parse(data[:extent])
    if elf is None:
        raise InputError(f"{name}: corrupt ELF (LIEF could not parse it)")
    needed = tuple(Dylib(name=lib, kind="needed") for lib in elf.libraries)
    rpaths: list[str] = []
    for entry in elf.dynamic_entries:
        tag = entry.tag.name
        if tag in ("RPATH", "RUNPATH"):
            rpaths.extend(p for p in str(getattr(entry, tag.lower(), "")).split(":") if p)
    interp = elf.interpreter if elf.has_interpreter else None
    build_id = None
    for note in elf.notes:
        if note.type.name == "GNU_BUILD_ID":
            build_id = bytes(note.description).hex()
    sl = Slice(
        arch=arch,
        filetype=filetype,
        offset=0,
        size=len(data),
        uuid=build_id,
        dylibs=needed,
        rpaths=tuple(rpaths),
        interpreter=interp,
    )
    return Binary(path=path, format=BinaryFormat.ELF, slices=(sl,))
