"""Did the linker take a static library's member? Its object's symbols in the final binary.

A static library is an archive: the linker copies a member (one source's object file) only
when the program references a symbol it defines. llama.cpp's vendor-hash library compiles
xxhash.c, sha1.c and sha256.c, yet llama-server only calls SHA-256, so xxHash and SHA-1 are
compiled but not linked. An object counts as linked when one of its defined external symbols
is defined in the binary (any arch slice). When that cannot be told (no object file, no symbol
table, a parse failure) the object counts as linked: the notices may list too much, never too
little. LIEF reads both ELF and Mach-O (thin or fat).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

MAX_OBJECT = 512 * 1024 * 1024  # LIEF maps the file; bound what we hand it anyway
N_STAB, N_TYPE, N_SECT, N_EXT = 0xE0, 0x0E, 0x0E, 0x01  # <mach-o/nlist.h>


def _lief() -> Any:
    import lief  # deferred: ~0.3 s to import

    lief.logging.disable()
    return lief


def _parse(lief: Any, path: Path) -> tuple[Any, list[Any]]:
    """The parsed file and its slices; the first must outlive the second (a fat binary owns
    its slices: dropping it while a slice is in use crashes LIEF)."""
    if not path.is_file() or path.stat().st_size > MAX_OBJECT:
        return None, []
    if lief.is_macho(str(path)):
        fat = lief.MachO.parse(str(path))
        return fat, list(fat) if fat is not None else []
    parsed = lief.parse(str(path))
    return parsed, [parsed] if parsed is not None else []


def _defined(lief: Any, binary: Any, external_only: bool) -> set[str]:
    """Names of the symbols `binary` defines (not undefined imports)."""
    names: set[str] = set()
    if isinstance(binary, lief.ELF.Binary):
        global_ = {lief.ELF.Symbol.BINDING.GLOBAL, lief.ELF.Symbol.BINDING.WEAK}
        for s in binary.symbols:
            if s.name and s.shndx != 0 and (not external_only or s.binding in global_):
                names.add(s.name)
    elif isinstance(binary, lief.MachO.Binary):
        for s in binary.symbols:  # nlist n_type bits (LIEF's `type` raises on some entries)
            raw = s.raw_type
            if raw & N_STAB or raw & N_TYPE != N_SECT or (external_only and not raw & N_EXT):
                continue
            if s.name:
                names.add(s.name)
    return names


def defined_symbols(path: Path, external_only: bool = False) -> frozenset[str]:
    """Every symbol `path` defines, over all its slices (empty when it has none or is unread)."""
    try:
        st = path.stat()
    except OSError:
        return frozenset()
    return _symbols(path, st.st_size, st.st_mtime_ns, external_only)


@cache
def _symbols(path: Path, size: int, mtime_ns: int, external_only: bool) -> frozenset[str]:
    """Cached per file version: a rebuilt object at the same path is read again."""
    lief = _lief()
    try:
        owner, slices = _parse(lief, path)
        found: set[str] = set()
        for binary in slices:
            found |= _defined(lief, binary, external_only)
        del slices, owner  # the slices first
        return frozenset(found)
    except (OSError, ValueError, RuntimeError, SystemError, TypeError):  # LIEF's failures
        return frozenset()


class LinkEvidence:
    """`linked(object)`: did the linker take this object into `binary`?"""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def linked(self, obj: str | None) -> bool:
        in_binary = defined_symbols(self.binary)
        if obj is None or not in_binary:
            return True  # cannot tell: count it
        defines = defined_symbols(Path(obj), external_only=True)
        return not defines or not defines.isdisjoint(in_binary)
