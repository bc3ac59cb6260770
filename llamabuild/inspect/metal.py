"""ggml's Metal kernels inside a Mach-O slice: the `metal` object of `verify --json`.

A slice that links Metal is read for __DATA,__ggml_metallib (llamabuild/data/metal.toml says
how the pinned tree fills it): how many kernel groups (start/end symbol pairs), their bytes and
sha256, and the Metal language the SDK implies. What is wrong with them are `problems`, which
policy.py turns into findings: no embedded library where ggml's Metal backend is defined
(`metal-library-missing`), an empty or reversed group, text that is not UTF-8 or still holds
an include or the inlining sentinel (`metal-library-broken`).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable
from functools import cache
from typing import Any

from llamabuild.config.versions import version_tuple
from llamabuild.core.resources import data_text
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer, Dylib, MetalLibrary, MetalSource, MetalSpan
from llamabuild.inspect.symtab import defined_external


@cache
def table() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads(data_text("metal.toml"))
    return data


def msl_default(sdk: str | None) -> str | None:
    """The default language of the newest SDK row at or below `sdk`."""
    if sdk is None:
        return None
    rows = {k: v for k, v in table()["msl_default"].items() if k != "source"}
    below = [k for k in rows if version_tuple(k) <= version_tuple(sdk)]
    return rows[max(below, key=version_tuple)] if below else None


def read_metal(
    buf: Buffer,
    raw: st.RawSlice,
    dylibs: Iterable[Dylib],
    sdk: str | None,
    symbols: dict[str, int] | None = None,
) -> MetalLibrary | None:
    """None unless the slice links Metal. `symbols` (name -> address) stand in for the slice's
    own symbol table: a stripped binary's, read from its dSYM."""
    t = table()
    if not any(d.name.startswith(t["framework"]) for d in dylibs):
        return None
    seg, name = t["section"]
    section = next((s for s in st.sections(raw, seg) if s.sectname == name), None)
    default = msl_default(sdk)
    if section is None:
        backend = defined_external(buf, raw, t["backend_prefix"].encode())
        if symbols is not None:
            backend |= {k: v for k, v in symbols.items() if k.startswith(t["backend_prefix"])}
        if not set(t["backend_symbols"]) & backend.keys():
            return MetalLibrary(MetalSource.NONE, 0, 0, None, default)
        why = (
            "ggml's Metal backend is built in but __DATA,__ggml_metallib is missing: it will "
            "look for default.metallib or ggml-metal.metal beside the binary or in the working "
            "directory, which a sandboxed app does not have"
        )
        return MetalLibrary(MetalSource.EXTERNAL, 0, 0, None, default, problems=(("missing", why),))
    start = raw.offset + section.offset
    data = bytes(buf[start : start + section.size])
    prefix = t["symbol_prefix"]
    if symbols is None:
        symbols = defined_external(buf, raw, prefix.encode())
    else:
        symbols = {k: v for k, v in symbols.items() if k.startswith(prefix)}
    kinds = sorted(n[len(prefix) : -len("_start")] for n in symbols if n.endswith("_start"))
    spans: list[MetalSpan] = []
    problems = tuple(_groups(symbols, kinds, section, data, start, spans))
    return MetalLibrary(
        MetalSource.EMBEDDED,
        len(kinds),
        len(data),
        hashlib.sha256(data).hexdigest(),
        default,
        tensor_api=t["tensor_marker"].encode() in data,
        sets_language=_has_selector(buf, raw, t["language_selector"]),
        groups={sp.kind: sp.sha256 for sp in spans},
        spans=tuple(spans),
        problems=problems,
    )


def _has_selector(buf: Buffer, raw: st.RawSlice, selector: str) -> bool:
    """Whether __TEXT,__objc_methname names `selector` (a message the binary can send)."""
    want = selector.encode() + b"\0"
    for sec in st.sections(raw, "__TEXT"):
        if sec.sectname == "__objc_methname":
            at = raw.offset + sec.offset
            names = bytes(buf[at : at + sec.size])
            if names.startswith(want) or b"\0" + want in names:
                return True
    return False


def _groups(
    symbols: dict[str, int],
    kinds: list[str],
    section: st.Section,
    data: bytes,
    file_offset: int,
    spans: list[MetalSpan],
) -> Iterable[tuple[str, str]]:
    """The problems of each group; the sound ones are appended to `spans`."""
    prefix = table()["symbol_prefix"]
    if not kinds:
        yield (
            "broken",
            "__DATA,__ggml_metallib has no _ggml_metallib_<kind>_start symbols (a stripped "
            "binary: pass its dSYM with --dsym)",
        )
    for kind in kinds:
        lo = symbols.get(f"{prefix}{kind}_start", 0) - section.addr
        hi = symbols.get(f"{prefix}{kind}_end", -1) - section.addr
        if not 0 <= lo < hi <= len(data):
            yield "broken", f"kernel group {kind!r} is empty or ends before it starts"
            continue
        text = data[lo:hi]
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            yield "broken", f"kernel group {kind!r} is not UTF-8 text"
            continue
        left = _leftover(decoded)
        if left:
            yield "broken", f"kernel group {kind!r} still holds {left!r}: not flattened"
            continue
        digest = hashlib.sha256(text).hexdigest()
        spans.append(MetalSpan(kind, file_offset + lo, hi - lo, digest))


EMBED_GUARD = ("#if defined(GGML_METAL_EMBED_LIBRARY)", "#ifdef GGML_METAL_EMBED_LIBRARY")


def _leftover(text: str) -> str | None:
    """The first leftover (data/metal.toml) that is live: the sentinel anywhere, an include of
    a ggml header unless it sits in the `#else` of `#if defined(GGML_METAL_EMBED_LIBRARY)`,
    where the pinned tree keeps `#include "ggml-common.h"` for the non-embedded build."""
    leftovers = table()["leftovers"]
    if leftovers[0] in text:
        return str(leftovers[0])
    if not any(x in text for x in leftovers[1:]):
        return None
    stack: list[tuple[bool, bool]] = []  # (an embed guard, in its #else)
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#if"):
            stack.append((line.startswith(EMBED_GUARD), False))
        elif line.startswith("#el") and stack:
            stack[-1] = (stack[-1][0], True)
        elif line.startswith("#endif") and stack:
            stack.pop()
        elif any(line.startswith(x) for x in leftovers[1:]) and not any(
            guard and in_else for guard, in_else in stack
        ):
            return line
    return None
