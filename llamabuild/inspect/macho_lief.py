"""Mach-O (thin and fat) through LIEF's quick parser: the second opinion (`--parser lief`).

The default reader (macho.py) reads the load commands itself; tests hold both to the same
answers on every fixture. structure.py proves the bounds before LIEF sees a byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llamabuild.errors import InputError
from llamabuild.inspect import structure
from llamabuild.inspect.model import Binary, Buffer, Dylib, Slice
from llamabuild.inspect.signature import parse_signature

_KINDS = {
    "LOAD_DYLIB": "load",
    "LOAD_WEAK_DYLIB": "weak",
    "REEXPORT_DYLIB": "reexport",
    "LOAD_UPWARD_DYLIB": "upward",
    "LAZY_LOAD_DYLIB": "lazy",
}


def _lief() -> Any:
    import lief  # deferred: importing LIEF costs ~0.3 s, not worth paying for --help

    lief.logging.disable()
    return lief


def _version(v: Any) -> str:
    parts = list(v)
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return ".".join(str(p) for p in parts)


def inspect_macho(path: Path, data: Buffer) -> Binary:
    """Parse every slice; raw = bounds-checked headers, LIEF = the load command contents.

    LIEF gets each slice only up to its extent (the end of what its load commands point at),
    so padding or a multi-gigabyte hole between slices is never copied.
    """
    from llamabuild.inspect.macho import _reader

    name = str(path)
    raw_slices = structure.read_slices(_reader(data), len(data), name)
    lief = _lief()
    fat = structure.sniff(data[:8]) == "fat"
    try:
        slices = tuple(_slice(raw, _parse(lief, raw, data, name), data) for raw in raw_slices)
    except (UnicodeDecodeError, ValueError, RuntimeError, TypeError) as exc:
        # LIEF raises these on load commands that are in bounds but hold garbage.
        raise InputError(
            f"{name}: corrupt Mach-O ({type(exc).__name__} reading a load command)",
            hint="the file is damaged; rebuild or copy it again",
        ) from exc
    return Binary(path=path, format="macho", slices=slices, fat=fat)


def _parse(lief: Any, raw: structure.RawSlice, data: Buffer, name: str) -> Any:
    thin = data[raw.offset : raw.offset + raw.extent]
    parsed = lief.MachO.parse(thin, config=lief.MachO.ParserConfig.quick)
    if parsed is None or parsed.size != 1:
        raise InputError(f"{name}: corrupt Mach-O (LIEF could not parse the {raw.arch} slice)")
    return parsed.at(0)


def _slice(raw: structure.RawSlice, b: Any, data: Buffer) -> Slice:
    dylibs = tuple(
        Dylib(name=lib.name, kind=_KINDS.get(lib.command.name, lib.command.name.lower()))
        for lib in b.libraries
        if lib.command.name != "ID_DYLIB"  # a dylib's own install name, not a dependency
    )
    minos = sdk = None
    if b.has_build_version:
        minos, sdk = _version(b.build_version.minos), _version(b.build_version.sdk)
    elif b.has_version_min:
        minos, sdk = _version(b.version_min.version), _version(b.version_min.sdk)
    signature = None
    if b.has_code_signature:
        cs = b.code_signature
        start = raw.offset + cs.data_offset
        signature = parse_signature(data[start : start + cs.data_size])
    return Slice(
        arch=raw.arch,
        filetype=raw.filetype,
        offset=raw.offset,
        size=raw.size,
        minos=minos,
        sdk=sdk,
        uuid=raw.uuid,
        dylibs=dylibs,
        rpaths=tuple(r.path for r in b.rpaths),
        signed=b.has_code_signature,
        signature=signature,
    )
