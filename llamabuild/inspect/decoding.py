"""Primitives for reading a Mach-O's import data from untrusted bytes: LEB128 numbers, C
symbol names, library ordinals, and the one exception inner loops raise (Malformed) that the
readers turn into an InputError naming the file (`corrupt`)."""

from __future__ import annotations

from collections.abc import Sequence

from llamabuild.core.errors import InputError
from llamabuild.inspect.binary import SPECIAL_ORDINALS

ImportKey = tuple[str, str, bool]  # an Import's fields: cheaper to collect and sort than Imports

CORRUPT_HINT = "the file is damaged or was patched by hand; rebuild or copy it again"

MASK64 = (1 << 64) - 1


def corrupt(name: str, what: str) -> InputError:
    return InputError(f"{name}: corrupt Mach-O ({what})", hint=CORRUPT_HINT)


class Malformed(Exception):
    """What is wrong, raised from inner loops; the caller adds the file name and the place,
    so no message is formatted while nothing is wrong."""


def ordinal_dylib(ordinal: int, dylibs: Sequence[str]) -> str:
    if ordinal >= 1:
        if ordinal > len(dylibs):
            raise Malformed(f"library ordinal {ordinal}, but only {len(dylibs)} dylibs")
        return dylibs[ordinal - 1]
    special = SPECIAL_ORDINALS.get(ordinal)
    if special is None:
        raise Malformed(f"unknown special library ordinal {ordinal}")
    return special


def c_symbol(data: bytes, start: int, end: int) -> tuple[str, int]:
    """The NUL-terminated UTF-8 symbol name at data[start:] (NUL before `end`), and where
    its NUL is."""
    nul = data.find(b"\0", start, end)
    if nul < 0:
        raise Malformed("symbol name without a terminating NUL")
    try:
        return data[start:nul].decode("utf-8"), nul
    except UnicodeDecodeError:
        raise Malformed("symbol name is not valid UTF-8") from None


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the ULEB128 at data[pos]; at most 64 bits (10 bytes)."""
    size = len(data)
    if pos < size and data[pos] < 0x80:  # one byte: most ordinals, counts and small steps
        return data[pos], pos + 1
    value = shift = 0
    stop = min(size, pos + 10)
    while pos < stop:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise Malformed("ULEB128 overflows 64 bits")
            return value, pos
        shift += 7
    raise Malformed("ULEB128 runs off the end" if pos >= size else "ULEB128 overflows 64 bits")


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the SLEB128 at data[pos]; must fit a signed 64-bit."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise Malformed("SLEB128 runs off the end")
        byte = data[pos]
        pos += 1
        slice_ = byte & 0x7F
        if shift > 63 or (shift == 63 and slice_ not in (0, 0x7F)):
            raise Malformed("SLEB128 overflows 64 bits")
        value |= slice_ << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                value -= 1 << shift
            return value, pos
