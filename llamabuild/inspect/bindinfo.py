"""The classic dyld info bind opcodes (LC_DYLD_INFO): the bind, weak-bind and lazy-bind
streams of a Mach-O without chained fixups, interpreted as dyld does and bounds-checked."""

from __future__ import annotations

from collections.abc import Sequence

from llamabuild.inspect.binary import WEAK_LOOKUP
from llamabuild.inspect.decoding import (
    MASK64,
    ImportKey,
    Malformed,
    c_symbol,
    corrupt,
    ordinal_dylib,
    sleb,
    uleb,
)

# <mach-o/loader.h> bind opcodes
BIND_OPCODE_MASK = 0xF0

BIND_IMMEDIATE_MASK = 0x0F

BIND_OPCODE_DONE = 0x00

BIND_OPCODE_SET_DYLIB_ORDINAL_IMM = 0x10

BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB = 0x20

BIND_OPCODE_SET_DYLIB_SPECIAL_IMM = 0x30

BIND_OPCODE_SET_SYMBOL_TRAILING_FLAGS_IMM = 0x40

BIND_OPCODE_SET_TYPE_IMM = 0x50

BIND_OPCODE_SET_ADDEND_SLEB = 0x60

BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB = 0x70

BIND_OPCODE_ADD_ADDR_ULEB = 0x80

BIND_OPCODE_DO_BIND = 0x90

BIND_OPCODE_DO_BIND_ADD_ADDR_ULEB = 0xA0

BIND_OPCODE_DO_BIND_ADD_ADDR_IMM_SCALED = 0xB0

BIND_OPCODE_DO_BIND_ULEB_TIMES_SKIPPING_ULEB = 0xC0

BIND_OPCODE_THREADED = 0xD0

BIND_SUBOPCODE_THREADED_SET_BIND_ORDINAL_TABLE_SIZE_ULEB = 0x00

BIND_SUBOPCODE_THREADED_APPLY = 0x01

BIND_SYMBOL_FLAGS_WEAK_IMPORT = 0x1

BIND_SYMBOL_FLAGS_NON_WEAK_DEFINITION = 0x8

BIND_TYPES = frozenset({1, 2, 3})  # POINTER, TEXT_ABSOLUTE32, TEXT_PCREL32

BIND = "bind"

LAZY = "lazy bind"

WEAK = "weak bind"

_DO_BINDS = frozenset(
    {
        BIND_OPCODE_DO_BIND,
        BIND_OPCODE_DO_BIND_ADD_ADDR_ULEB,
        BIND_OPCODE_DO_BIND_ADD_ADDR_IMM_SCALED,
        BIND_OPCODE_DO_BIND_ULEB_TIMES_SKIPPING_ULEB,
    }
)

# What dyld accepts in a lazy-bind stream (each entry: segment+offset, ordinal, symbol, bind);
# LIEF skips the rest a byte at a time and so would read a different stream.
_LAZY_OPCODES = frozenset(
    {
        BIND_OPCODE_DONE,
        BIND_OPCODE_SET_DYLIB_ORDINAL_IMM,
        BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB,
        BIND_OPCODE_SET_DYLIB_SPECIAL_IMM,
        BIND_OPCODE_SET_SYMBOL_TRAILING_FLAGS_IMM,
        BIND_OPCODE_SET_ADDEND_SLEB,
        BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB,
        BIND_OPCODE_DO_BIND,
    }
)


def bind_stream_imports(
    data: bytes,
    kind: str,
    dylibs: Sequence[str],
    segments: Sequence[int],
    ptr: int,
    name: str,
) -> set[ImportKey]:
    """The imports one bind stream binds. Addresses are tracked only to bound-check them: a
    bind must land inside its segment's file content, so DO_BIND_ULEB_TIMES cannot ask any
    reader (LIEF included) to loop more often than the file has pointers."""
    stream = _Stream(data, kind, dylibs, segments, ptr)
    try:
        stream.run()
    except Malformed as exc:
        raise corrupt(name, f"{kind} opcode at {stream.start}: {exc}") from None
    return stream.out


class _Stream:
    """One bind stream's state while dyld's opcodes run over it."""

    def __init__(
        self, data: bytes, kind: str, dylibs: Sequence[str], segments: Sequence[int], ptr: int
    ) -> None:
        self.data, self.kind, self.dylibs, self.segments, self.ptr = (
            data, kind, dylibs, segments, ptr,
        )  # fmt: skip
        self.out: set[ImportKey] = set()
        self.ordinal: int | None = None
        self.symbol: str | None = None
        self.flags = 0
        self.seg: int | None = None
        self.offset = 0
        self.threaded = False
        self.pos = self.start = 0

    def run(self) -> None:
        data, end = self.data, len(self.data)
        allowed = _LAZY_OPCODES if self.kind == LAZY else None
        while self.pos < end:
            self.start = self.pos
            byte = data[self.pos]
            self.pos += 1
            op, imm = byte & BIND_OPCODE_MASK, byte & BIND_IMMEDIATE_MASK
            if allowed is not None and op not in allowed:
                raise Malformed(f"opcode {byte:#04x} is not allowed in a lazy bind stream")
            if op in _DO_BINDS:
                self._bind(op, imm)
            elif op == BIND_OPCODE_DONE:
                if self.kind != LAZY:  # lazy entries are each terminated by DONE
                    break
            elif op in _ORDINAL_OPCODES:
                self._set_ordinal(op, imm)
            else:
                self._set(op, imm, byte)

    def _uleb(self) -> int:
        value, self.pos = uleb(self.data, self.pos)
        return value

    def _bind(self, op: int, imm: int) -> None:
        times, skip = 1, 0
        if op == BIND_OPCODE_DO_BIND_ADD_ADDR_ULEB:
            skip = self._uleb()
        elif op == BIND_OPCODE_DO_BIND_ADD_ADDR_IMM_SCALED:
            skip = imm * self.ptr
        elif op == BIND_OPCODE_DO_BIND_ULEB_TIMES_SKIPPING_ULEB:
            times = self._uleb()
            skip = self._uleb()
        if self.symbol is None:
            raise Malformed("a bind before any symbol name")
        if op != BIND_OPCODE_DO_BIND or not self.threaded:  # threaded DO_BIND fills a table
            self.offset = _advance(
                self.segments, self.seg, self.offset, times, self.ptr + skip, self.ptr
            )
        if not times:
            return
        if self.kind == WEAK:
            if not self.flags & BIND_SYMBOL_FLAGS_NON_WEAK_DEFINITION:
                self.out.add((WEAK_LOOKUP, self.symbol, False))
            return
        if self.ordinal is None:
            raise Malformed("a bind before any library ordinal")
        weak = bool(self.flags & BIND_SYMBOL_FLAGS_WEAK_IMPORT)
        self.out.add((ordinal_dylib(self.ordinal, self.dylibs), self.symbol, weak))

    def _set_ordinal(self, op: int, imm: int) -> None:
        if self.kind == WEAK:
            raise Malformed("a library ordinal in the weak bind stream")
        if op == BIND_OPCODE_SET_DYLIB_ORDINAL_IMM:
            self.ordinal = imm
        elif op == BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB:
            self.ordinal = self._uleb()
        else:  # a sign-extended immediate: 0 self, 0xF -1, 0xE -2, 0xD -3
            self.ordinal = imm - 16 if imm else 0
        ordinal_dylib(self.ordinal, self.dylibs)

    def _set(self, op: int, imm: int, byte: int) -> None:
        if op == BIND_OPCODE_SET_SYMBOL_TRAILING_FLAGS_IMM:
            self.symbol, nul = c_symbol(self.data, self.pos, len(self.data))
            self.flags = imm
            self.pos = nul + 1
        elif op == BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB:
            if imm >= len(self.segments):
                raise Malformed(f"segment {imm}, but only {len(self.segments)}")
            self.seg = imm
            self.offset = self._uleb()
        elif op == BIND_OPCODE_ADD_ADDR_ULEB:
            delta = self._uleb()
            self.offset = (self.offset + delta) & MASK64  # ld64 steps back with a wrapped delta
        elif op == BIND_OPCODE_SET_TYPE_IMM:
            if imm not in BIND_TYPES:
                raise Malformed(f"bind type {imm}")
        elif op == BIND_OPCODE_SET_ADDEND_SLEB:
            _, self.pos = sleb(self.data, self.pos)
        elif op == BIND_OPCODE_THREADED and self.kind == BIND:
            if imm == BIND_SUBOPCODE_THREADED_SET_BIND_ORDINAL_TABLE_SIZE_ULEB:
                self._uleb()
                self.threaded = True
            elif imm == BIND_SUBOPCODE_THREADED_APPLY:
                _advance(self.segments, self.seg, self.offset, 1, 0, self.ptr)
            else:
                raise Malformed(f"unknown threaded sub-opcode {imm:#x}")
        else:
            raise Malformed(f"unknown opcode {byte:#04x}")


_ORDINAL_OPCODES = frozenset(
    {
        BIND_OPCODE_SET_DYLIB_ORDINAL_IMM,
        BIND_OPCODE_SET_DYLIB_ORDINAL_ULEB,
        BIND_OPCODE_SET_DYLIB_SPECIAL_IMM,
    }
)


def _advance(
    segments: Sequence[int], seg: int | None, offset: int, times: int, stride: int, ptr: int
) -> int:
    """Check `times` pointers at offset, offset+stride, ... lie in the segment; the new offset."""
    if seg is None:
        raise Malformed("a bind before BIND_OPCODE_SET_SEGMENT_AND_OFFSET_ULEB")
    if times:
        if offset + (times - 1) * stride + ptr > segments[seg]:
            raise Malformed(f"binds past the end of segment {seg}")
        offset = (offset + times * stride) & MASK64
    return offset
