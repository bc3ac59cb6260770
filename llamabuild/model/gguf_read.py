"""A bounded walk of a GGUF header (metadata and tensor infos) over a mapped file.

Why not `gguf.GGUFReader`: it trusts the header. It maps the file with numpy and builds one
array view per metadata element, so a real Qwen3 vocabulary (151,936 tokens and as many
merges) takes ~13 s to open, and a hostile count or length becomes a huge allocation or a
multi-minute loop before anything is checked. This walk reads only the header, checks every
count and length against the bytes left in the file *before* using it, keeps no per-element
objects (string arrays are skipped item by item, numeric ones in one step) and caps what it
keeps (MAX_KEPT_STRING, MAX_KEPT_INTS). Tensor data is never touched. The `gguf` package is
still the source of the type tables (sizes, names) in llamabuild/model/verify_model.py.

Anything that stops the walk (bad magic, an unknown value type, a length past the end, an
absurd count) is an InputError: exit 2, one line, the offset where it went wrong.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llamabuild.core.errors import InputError
from llamabuild.inspect.binary import Buffer

GGUF_MAGIC = b"GGUF"
READABLE_VERSIONS = (2, 3)  # v1 had 32-bit counts; llama.cpp refuses it since 2023
GGML_MAX_DIMS = 4  # ggml/include/ggml.h
GGUF_DEFAULT_ALIGNMENT = 32  # ggml/include/gguf.h

# gguf.cpp's own limits (llamabuild/data/gguf_rules.toml cites the lines that apply them)
GGUF_MAX_STRING_LENGTH = 1 << 30
GGUF_MAX_ARRAY_ELEMENTS = 1 << 30
GGML_MAX_NAME = 64  # ggml/include/ggml.h: a tensor name is shorter

MAX_KEY_BYTES = 1 << 16  # real keys are < 100 bytes
MAX_KEPT_STRING = 1 << 20  # a chat template is ~10 KB; longer values are measured, not kept
MAX_KEPT_STRINGS_TOTAL = 8 << 20  # all kept strings together: past it, values are measured
MAX_KEPT_INTS = 1 << 16  # per-layer integer arrays (head_count_kv) are kept up to this size
MAX_KEPT_INTS_TOTAL = 1 << 18  # all kept integer items together
MAX_STRING_ITEMS = 1 << 23  # string items walked in the whole header (vocabularies are < 1M)
# llamabuild's own bounds on what it walks, not gguf.cpp's: real models have a few thousand
# tensors (experts are merged into one tensor per layer) and fewer than 100 metadata keys.
# 2^16 tensors walk in under a second in ~40 MB; 2^20 took 11 s and 500 MB.
MAX_TENSORS = 1 << 16
MAX_KV = 1 << 16
RELEASE_EVERY = 8 << 20  # walked pages of the mapping are dropped from the resident set

STRING, ARRAY = 8, 9
# Fixed-size value types: GGUF type id -> struct format (little-endian).
SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_INT_TYPES = frozenset({0, 1, 2, 3, 4, 5, 7, 10, 11})  # 7: bool (sliding_window_pattern)
_U32 = struct.Struct("<I").unpack_from
_U64 = struct.Struct("<Q").unpack_from
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, the smallest value
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset


class LongString(NamedTuple):
    """A string value longer than MAX_KEPT_STRING: its length only."""

    length: int


class ArrayValue(NamedTuple):
    """A metadata array: item type and count; the items only for short integer arrays."""

    item_type: int
    n_items: int
    ints: tuple[int, ...] | None = None


MetaValue = int | float | bool | str | LongString | ArrayValue


class TensorInfo(NamedTuple):
    """One tensor's info record (a NamedTuple: a header may hold tens of thousands)."""

    name: str
    shape: tuple[int, ...]  # ne, in llama.cpp's order (fastest-varying first)
    type_id: int
    offset: int  # from the start of the data section
    info_at: int  # where its info record starts in the file (for messages)


@dataclass
class GgufHeader:
    version: int
    file_size: int
    metadata: dict[str, MetaValue] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)  # key -> its GGUF value type id
    duplicate_keys: list[str] = field(default_factory=list)
    tensors: list[TensorInfo] = field(default_factory=list)
    header_end: int = 0  # first byte after the tensor infos
    string_items: int = 0


class _Walk:
    """A cursor over the mapped file that refuses to step past its end."""

    def __init__(self, buf: Buffer, size: int, where: str) -> None:
        self.buf, self.size, self.where, self.pos = buf, size, where, 0
        self.string_items = 0
        self.kept_bytes = 0  # of string values kept (MAX_KEPT_STRINGS_TOTAL)
        self.kept_ints = 0  # integer array items kept (MAX_KEPT_INTS_TOTAL)
        self.released = 0  # the mapping's pages before this offset are dropped

    def release(self) -> None:
        """Drop the pages walked so far from this process (MADV_DONTNEED): skipping a 300 MB
        metadata section would otherwise leave all of it resident (the kernel maps whole
        folios around each page read). Kept values are copies, never views of the map."""
        if self.pos - self.released < RELEASE_EVERY:
            return
        advise: Any = getattr(self.buf, "madvise", None)
        drop = getattr(mmap, "MADV_DONTNEED", None)
        end = self.pos - self.pos % mmap.PAGESIZE
        if advise is not None and drop is not None and end > self.released:
            advise(drop, self.released, end - self.released)
        self.released = end

    def fail(self, what: str, at: int | None = None) -> InputError:
        at = self.pos if at is None else at
        return InputError(
            f"{self.where}: not a loadable GGUF: {what} (at offset {at} of {self.size})",
            hint="the file is truncated or corrupt: download it again and check its sha256",
        )

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(f"{what} runs past the end of the file")

    def u32(self, what: str) -> int:
        self.need(4, what)
        (v,) = _U32(self.buf, self.pos)
        self.pos += 4
        return int(v)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (v,) = _U64(self.buf, self.pos)
        self.pos += 8
        return int(v)

    def string(
        self, what: str, keep: int = MAX_KEPT_STRING, budget: bool = True
    ) -> str | LongString:
        """A string (at most `keep` bytes kept; values also within MAX_KEPT_STRINGS_TOTAL,
        names and keys, bounded by `keep` alone, not: `budget`)."""
        at = self.pos
        n = self.u64(f"{what} length")
        if n > GGUF_MAX_STRING_LENGTH:
            raise self.fail(f"{what} of {n} bytes, over gguf.cpp's 1 GiB limit", at)
        self.need(n, f"{what} ({n} bytes)")
        start = self.pos
        self.pos += n
        if n > keep or (budget and self.kept_bytes + n > MAX_KEPT_STRINGS_TOTAL):
            return LongString(n)
        self.kept_bytes += n if budget else 0
        return bytes(self.buf[start : self.pos]).decode("utf-8", errors="replace")

    def count(self, what: str, n: int, item_bytes: int, cap: int) -> int:
        """`n` items of at least `item_bytes` each must fit in the rest of the file."""
        left = self.size - self.pos
        if n > cap:
            raise self.fail(f"{what} count {n}, over llamabuild's limit of {cap}")
        if n * item_bytes > left:
            raise self.fail(f"{what} count {n} cannot fit in the {left} bytes left")
        return n

    def skip_strings(self, n: int, what: str) -> None:
        self.string_items += n
        if self.string_items > MAX_STRING_ITEMS:
            raise self.fail(f"more than {MAX_STRING_ITEMS} strings in the metadata")
        buf, size, pos = self.buf, self.size, self.pos
        for i in range(n):
            if not i & 0xFFFF:  # a vocabulary of hundreds of MB: drop what is walked
                self.pos = pos
                self.release()
            if pos + 8 > size:
                self.pos = pos
                raise self.fail(f"{what}: an item's length runs past the end of the file")
            length = _U64(buf, pos)[0]
            if length > GGUF_MAX_STRING_LENGTH:
                self.pos = pos
                raise self.fail(f"{what}: an item of {length} bytes, over gguf.cpp's 1 GiB")
            pos += 8 + length
        if pos > size:
            raise self.fail(f"{what}: an item runs past the end of the file")
        self.pos = pos


def _value(w: _Walk, vtype: int, key: str) -> MetaValue:
    fmt = SCALARS.get(vtype)
    if fmt is not None:
        width = struct.calcsize(fmt)
        w.need(width, f"the value of {key!r}")
        (v,) = struct.unpack_from("<" + fmt, w.buf, w.pos)
        w.pos += width
        return bool(v) if vtype == 7 else v
    if vtype == STRING:
        return w.string(f"the value of {key!r}")
    if vtype == ARRAY:
        return _array(w, key)
    raise w.fail(f"unknown value type {vtype} for {key!r}", w.pos - 4)


def _array(w: _Walk, key: str) -> ArrayValue:
    item = w.u32(f"the item type of {key!r}")
    n = w.u64(f"the item count of {key!r}")
    if n > GGUF_MAX_ARRAY_ELEMENTS:
        raise w.fail(f"{key!r} has {n} items, over gguf.cpp's {GGUF_MAX_ARRAY_ELEMENTS}", w.pos - 8)
    if item == STRING:
        w.count(f"{key!r} item", n, 8, MAX_STRING_ITEMS)
        w.skip_strings(n, repr(key))
        return ArrayValue(item, n)
    fmt = SCALARS.get(item)
    if fmt is None:  # nested arrays included: gguf.cpp reads none
        raise w.fail(f"unknown array item type {item} for {key!r}", w.pos - 12)
    width = struct.calcsize(fmt)
    w.count(f"{key!r} item", n, width, 1 << 62)
    ints = None
    if item in _INT_TYPES and n <= MAX_KEPT_INTS and w.kept_ints + n <= MAX_KEPT_INTS_TOTAL:
        ints = tuple(int(x) for x in struct.unpack_from(f"<{n}{fmt}", w.buf, w.pos))
        w.kept_ints += n
    w.pos += n * width
    return ArrayValue(item, n, ints)


def _tensor(w: _Walk) -> TensorInfo:
    at = w.pos
    name = w.string("a tensor name", keep=GGML_MAX_NAME - 1, budget=False)
    if isinstance(name, LongString):
        raise w.fail(f"a tensor name of {name.length} bytes (ggml's limit is 63)", at)
    n_dims = w.u32(f"the dimension count of tensor {name!r}")
    if n_dims > GGML_MAX_DIMS:
        raise w.fail(f"tensor {name!r} has {n_dims} dimensions (llama.cpp reads at most 4)", at)
    w.need(8 * n_dims + 12, f"the info of tensor {name!r}")
    shape = struct.unpack_from(f"<{n_dims}q", w.buf, w.pos)
    w.pos += 8 * n_dims
    type_id = w.u32("a tensor type")
    offset = w.u64("a tensor offset")
    return TensorInfo(name, tuple(int(d) for d in shape), type_id, offset, at)


def read_header(buf: Buffer, size: int, where: str) -> GgufHeader:
    """Magic, version, metadata and tensor infos of the GGUF in `buf` (`size` bytes)."""
    w = _Walk(buf, size, where)
    w.need(4, "the magic")
    if bytes(buf[0:4]) != GGUF_MAGIC:
        raise InputError(
            f"{where}: not a GGUF file (magic {bytes(buf[0:4])!r}, expected b'GGUF')",
            hint="pass the .gguf model file itself",
        )
    w.pos = 4
    version = w.u32("the version")
    if version not in READABLE_VERSIONS:
        swapped = " (a big-endian file?)" if version & 0xFFFF == 0 else ""
        raise w.fail(f"GGUF version {version}{swapped}; readable: 2 and 3", 4)
    head = GgufHeader(version=version, file_size=size)
    n_tensors = w.count("tensor", w.u64("the tensor count"), _MIN_TENSOR_BYTES, MAX_TENSORS)
    n_kv = w.count("metadata", w.u64("the metadata count"), _MIN_KV_BYTES, MAX_KV)
    for _ in range(n_kv):
        at = w.pos
        key = w.string("a metadata key", keep=MAX_KEY_BYTES, budget=False)
        if isinstance(key, LongString):
            raise w.fail(f"a metadata key of {key.length} bytes", at)
        if not key:
            raise w.fail("an empty metadata key", at)
        vtype = w.u32(f"the value type of {key!r}")
        value = _value(w, vtype, key)
        w.release()
        if key in head.metadata:
            head.duplicate_keys.append(key)
        else:
            head.metadata[key] = value
            head.types[key] = vtype
    w.count("tensor", n_tensors, _MIN_TENSOR_BYTES, MAX_TENSORS)
    head.tensors = [_tensor(w) for _ in range(n_tensors)]
    w.release()
    head.header_end = w.pos
    head.string_items = w.string_items
    return head
