"""What the pinned llama.cpp can load, read from its source tree at build time (no network).

Three tables decide whether a GGUF loads: the architecture names (`LLM_ARCH_NAMES` in
src/llama-arch.cpp: "unknown model architecture" otherwise), the ggml tensor types
(`enum ggml_type` in ggml/include/ggml.h: gguf.cpp refuses any other type id) and the GGUF
versions (`GGUF_VERSION` in ggml/include/gguf.h, minus the ones gguf.cpp refuses by name).
Reading them from the pinned tree, rather than guessing from a version number, is what makes
`verify-model --manifest` answer for exactly the server that was built.

The source files are input too: each is opened only if it is a regular file, read up to
MAX_SOURCE_BYTES, and parsed with bounded regular expressions; anything unexpected yields
fewer entries (or None), never an exception.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

ARCH_FILE = "src/llama-arch.cpp"
GGML_HEADER = "ggml/include/ggml.h"
GGUF_HEADER = "ggml/include/gguf.h"
GGUF_SOURCE = "ggml/src/gguf.cpp"

MAX_SOURCE_BYTES = 8 << 20  # llama-arch.cpp is ~130 KB; 8 MiB bounds a hostile tree
MAX_ENTRIES = 4096  # architectures or types: llama.cpp has ~150 and ~40
MAX_GGUF_VERSION = 64  # a larger "GGUF_VERSION" is not a real tree

_NAME = r"[A-Za-z0-9_.\-]{1,64}"
_ARCH_TABLE = re.compile(r"LLM_ARCH_NAMES\s*=\s*\{(.*?)\n\s*\};", re.S)
_ARCH_ENTRY = re.compile(r"\{\s*LLM_ARCH_[A-Z0-9_]{1,64}\s*,\s*\"(" + _NAME + r")\"\s*\}")
_TYPE_ENUM = re.compile(r"enum\s+ggml_type\s*\{(.*?)\};", re.S)
_TYPE_ENTRY = re.compile(r"\bGGML_TYPE_([A-Z0-9_]{1,32})\s*=\s*(\d{1,5})\b")
_LINE_COMMENT = re.compile(r"//[^\n]*")
_GGUF_VERSION = re.compile(r"#\s*define\s+GGUF_VERSION\s+(\d{1,6})\b")
_REFUSED_VERSION = re.compile(r"ctx->version\s*==\s*(\d{1,6})\b")


@dataclass(frozen=True)
class PinCapabilities:
    """What the pinned llama.cpp loads, as its source says: recorded in manifest.json."""

    architectures: tuple[str, ...]
    tensor_types: dict[str, int]  # ggml type name in lower case ("q4_0") -> type id
    gguf_versions: tuple[int, ...]

    def type_name(self, type_id: int) -> str | None:
        return next((n for n, i in self.tensor_types.items() if i == type_id), None)


def read_source(path: Path, limit: int = MAX_SOURCE_BYTES) -> str | None:
    """The text of a regular file (at most `limit` bytes), or None: never blocks on a FIFO."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data.decode("utf-8", errors="replace")


def parse_architectures(text: str) -> tuple[str, ...]:
    """The names in `LLM_ARCH_NAMES` (src/llama-arch.cpp), in table order, without repeats."""
    table = _ARCH_TABLE.search(text)
    if table is None:
        return ()
    body = _LINE_COMMENT.sub("", table.group(1))
    names = dict.fromkeys(m.group(1) for m in _ARCH_ENTRY.finditer(body))
    return tuple(names)[:MAX_ENTRIES]


def parse_tensor_types(text: str) -> dict[str, int]:
    """`enum ggml_type` members with a value (commented-out, removed types excluded), by name."""
    enum = _TYPE_ENUM.search(text)
    if enum is None:
        return {}
    body = _LINE_COMMENT.sub("", enum.group(1))
    out: dict[str, int] = {}
    for m in _TYPE_ENTRY.finditer(body):
        name = m.group(1).lower()
        if name != "count" and name not in out and len(out) < MAX_ENTRIES:
            out[name] = int(m.group(2))
    return out


def parse_gguf_versions(header: str, source: str | None) -> tuple[int, ...]:
    """1..GGUF_VERSION minus the versions gguf.cpp refuses by name (`ctx->version == 1`)."""
    m = _GGUF_VERSION.search(header)
    if m is None or not 0 < int(m.group(1)) <= MAX_GGUF_VERSION:
        return ()
    refused = {int(v) for v in _REFUSED_VERSION.findall(source or "")}
    return tuple(v for v in range(1, int(m.group(1)) + 1) if v not in refused)


def read_capabilities(root: Path) -> PinCapabilities | None:
    """The three tables of the llama.cpp tree at `root`, or None when it has none of them."""
    arch_text = read_source(root / ARCH_FILE)
    ggml_text = read_source(root / GGML_HEADER)
    gguf_text = read_source(root / GGUF_HEADER)
    caps = PinCapabilities(
        architectures=parse_architectures(arch_text or ""),
        tensor_types=parse_tensor_types(ggml_text or ""),
        gguf_versions=parse_gguf_versions(gguf_text or "", read_source(root / GGUF_SOURCE)),
    )
    if not (caps.architectures and caps.tensor_types and caps.gguf_versions):
        return None  # not a llama.cpp tree we can read (a test's stub project)
    return caps
