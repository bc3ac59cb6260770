"""Mach-O (thin and fat) through LIEF's quick parser: the second opinion (`--parser lief`).

The default reader (macho.py) reads the load commands itself; tests hold both to the same
answers on every fixture. structure.py proves the bounds before LIEF sees a byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llamabuild.core.errors import InputError
from llamabuild.inspect import structure
from llamabuild.inspect.binary import (
    WEAK_LOOKUP,
    Binary,
    BinaryFormat,
    Buffer,
    Dylib,
    Import,
    Slice,
)
from llamabuild.inspect.imports import dylib_for_ordinal, read_imports
from llamabuild.inspect.macho import make_slice

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
    name = str(path)
    raw_slices = structure.read_slices(structure.as_reader(data), len(data), name)
    for raw in raw_slices:
        # The built-in reader's import checks: LIEF skips or half-reads what they refuse
        # (an ordinal beyond the dylibs, a name without NUL, a bind past its segment...), and
        # both readers must call the same files corrupt. The imports reported are LIEF's own.
        read_imports(data, raw, name)
    lief = _lief()
    fat = structure.sniff(data[:8]) == "fat"
    try:
        slices = tuple(_slice(raw, _parse(lief, raw, data, name), data, name) for raw in raw_slices)
    except (UnicodeDecodeError, ValueError, RuntimeError, TypeError) as exc:
        # LIEF raises these on load commands that are in bounds but hold garbage.
        raise InputError(
            f"{name}: corrupt Mach-O ({type(exc).__name__} reading a load command)",
            hint="the file is damaged; rebuild or copy it again",
        ) from exc
    return Binary(path=path, format=BinaryFormat.MACHO, slices=slices, fat=fat)


def _parse(lief: Any, raw: structure.RawSlice, data: Buffer, name: str) -> Any:
    thin = data[raw.offset : raw.offset + raw.extent]
    parsed = lief.MachO.parse(thin, config=_config(lief))
    if parsed is None or parsed.size != 1:
        raise InputError(f"{name}: corrupt Mach-O (LIEF could not parse the {raw.arch} slice)")
    return parsed.at(0)


def _config(lief: Any) -> Any:
    """The quick parser plus bindings: `quick` walks chained fixups but skips the dyld info
    bind opcodes (+1 ms per 2,000 classic binds); exports and rebases stay unparsed."""
    config = lief.MachO.ParserConfig()
    config.parse_dyld_bindings = True
    config.parse_dyld_exports = False
    config.parse_dyld_rebases = False
    config.fix_from_memory = False
    return config


def _imports(lief: Any, b: Any, dylibs: tuple[Dylib, ...], name: str) -> tuple[Import, ...]:
    """LIEF's bindings through the same library-ordinal rule as the built-in reader."""
    names = [d.name for d in dylibs]
    weak_class = lief.MachO.DyldBindingInfo.CLASS.WEAK
    out: set[tuple[str, str, bool]] = set()
    for bi in b.bindings:
        if not isinstance(bi, lief.MachO.DyldBindingInfo | lief.MachO.ChainedBindingInfo):
            continue  # indirect-symbol views repeat what the bind info says
        if not bi.has_symbol:
            raise InputError(f"{name}: corrupt Mach-O (LIEF found a binding without a symbol)")
        symbol = bi.symbol.name
        if isinstance(bi, lief.MachO.DyldBindingInfo) and bi.binding_class == weak_class:
            out.add((WEAK_LOOKUP, symbol, False))  # coalescing (LIEF calls them weak_import)
        else:
            dylib = dylib_for_ordinal(bi.library_ordinal, names, name, f"LIEF binding {symbol}")
            out.add((dylib, symbol, bool(bi.weak_import)))
    return tuple(Import(*key) for key in sorted(out))


def _slice(raw: structure.RawSlice, b: Any, data: Buffer, name: str) -> Slice:
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
    signature_at = None
    if b.has_code_signature:
        signature_at = (b.code_signature.data_offset, b.code_signature.data_size)
    imports = _imports(_lief(), b, dylibs, name)
    rpaths = [r.path for r in b.rpaths]
    return make_slice(raw, data, (minos, sdk), dylibs, rpaths, signature_at, imports)
