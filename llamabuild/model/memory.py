"""verify-model's memory figure: weights as loaded plus the context's caches (kv_memory).

The weights are the tensors' data as the file holds it (llama.cpp maps the file and loads
every tensor the architecture uses). The caches follow the pinned llama.cpp's rules for the
architecture (data/kv_rules.toml) and the server settings; an architecture the table lacks,
or metadata the rule cannot use, gives no cache figure and a `kv-estimate-unknown` warning.
The compute buffer is not estimated (its basis is given instead).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from llamabuild.core.errors import UsageError
from llamabuild.core.findings import Finding, error, warning
from llamabuild.core.jsonout import INTERNAL, OMIT_NONE
from llamabuild.model.gguf_read import MetaValue
from llamabuild.model.kv_memory import (
    COMPUTE_BUFFER,
    CacheEstimate,
    ServerSettings,
    context_memory,
    refused,
    rules,
)


@dataclass(frozen=True)
class MemoryEstimate:
    """What loading the model costs: weights, KV caches and recurrent state for `ctx` tokens."""

    weights_bytes: int
    ctx: int | None  # --ctx, else the model's context length (llama-server's default)
    kv_cache_bytes: int | None  # None when the architecture or the metadata gives no figure
    total_bytes: int
    max_memory_bytes: int | None = field(default=None, metadata=OMIT_NONE)
    recurrent_state_bytes: int | None = None  # 0 for attention-only models
    server: ServerSettings | None = None
    attention: str | None = None  # the rule's attention kind; None: not in the table
    swa_window: int | None = field(default=None, metadata=OMIT_NONE)
    caches: list[CacheEstimate] = field(default_factory=list)
    """Each cache as llama-server -v logs it (llama_kv_cache, llama_memory_recurrent)."""
    rule_source: str | None = field(default=None, metadata=OMIT_NONE)
    """The lines of the pinned llama.cpp the architecture's rule is read from."""
    compute_buffer: str = COMPUTE_BUFFER
    ctx_given: bool = field(default=True, metadata=INTERNAL)  # --ctx, not the model's own
    refused: str | None = field(default=None, metadata=INTERNAL)  # why llama.cpp would refuse


def estimate_memory(
    arch: str | None,
    meta: Mapping[str, MetaValue],
    weights: int,
    ctx: int | None,
    settings: ServerSettings,
    max_memory: int | None = None,
) -> MemoryEstimate:
    """The estimate; `kv_cache_bytes` None when the architecture's rule or numbers are missing."""
    given = ctx is not None
    ctx = ctx if ctx is not None else _context_length(arch, meta)
    rule = rules().arch.get(arch) if arch is not None else None
    mem = context_memory(arch, meta, ctx, settings) if rule and arch and ctx else None
    kv = mem.kv_bytes if mem is not None else None
    state = mem.state_bytes if mem is not None else None
    return MemoryEstimate(
        weights_bytes=weights,
        ctx=ctx,
        kv_cache_bytes=kv,
        total_bytes=weights + (kv or 0) + (state or 0),
        max_memory_bytes=max_memory,
        recurrent_state_bytes=state,
        server=settings,
        attention=rule.attention if rule is not None else None,
        swa_window=mem.swa_window if mem is not None else None,
        caches=mem.caches if mem is not None else [],
        rule_source=rule.source if rule is not None else None,
        ctx_given=given,
        refused=refused(arch, meta, settings) if rule and arch else None,
    )


def _context_length(arch: str | None, meta: Mapping[str, MetaValue]) -> int | None:
    v = meta.get(f"{arch}.context_length") if arch else None
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def memory_findings(mem: MemoryEstimate, where: str, arch_known: bool = True) -> list[Finding]:
    """kv-estimate-unknown (no figure for the context) and model-too-large (over the limit)."""
    out: list[Finding] = []
    if mem.refused is not None:
        out.append(
            error(
                "kv-cache-type-unsupported",
                f"llama-server would refuse to create the context: {mem.refused}",
                path=where,
                hint="use f16 (the default), one type for -ctk and -ctv on an MLA model, or a "
                "type whose block divides the head sizes (-ctk/-ctv, [server] in llamabuild.toml)",
            )
        )
    if mem.attention is None and arch_known:
        out.append(
            warning(
                "kv-estimate-unknown",
                "estimate not known for this architecture: llamabuild's table of the pinned "
                "llama.cpp's cache rules (data/kv_rules.toml) lacks it, so the total is the "
                "weights alone",
                path=where,
                hint="measure with llama-server -v (llama_kv_cache: size = ...) before shipping",
            )
        )
    elif mem.attention is not None and mem.kv_cache_bytes is None and mem.ctx is not None:
        out.append(
            warning(
                "kv-estimate-unknown",
                f"no cache estimate: the model's metadata lacks a number the {mem.attention} "
                "rule needs (layers, heads, head sizes, window or state sizes), or has one "
                "llama.cpp would refuse",
                path=where,
                hint="check the model converts and loads with the pinned llama.cpp's tools",
            )
        )
    if mem.max_memory_bytes is not None and mem.total_bytes > mem.max_memory_bytes:
        out.append(_too_large(mem, mem.max_memory_bytes, where))
    return out


def _too_large(memory: MemoryEstimate, limit: int, where: str) -> Finding:
    if memory.kv_cache_bytes is None:
        kv = "no KV cache estimate"
    else:
        kv = f"{format_size(memory.kv_cache_bytes)} KV cache for {memory.ctx} tokens"
        if memory.recurrent_state_bytes:
            kv += f" + {format_size(memory.recurrent_state_bytes)} recurrent state"
    hint = (
        "use a smaller quantization or a shorter context (--ctx / llama-server -c), "
        "fewer slots (-np) or a quantized KV cache (-ctk/-ctv q8_0)"
    )
    if not memory.ctx_given:  # common/fit.cpp:384-430 (-fit on, -fitc 4096)
        hint += (
            "; without -c, llama-server shrinks the model's context to fit free memory, to "
            "no less than 4096 a slot: check that with --ctx"
        )
    return warning(
        "model-too-large",
        f"needs about {format_size(memory.total_bytes)} ({format_size(memory.weights_bytes)} "
        f"weights + {kv}), over --max-memory {format_size(limit)}",
        path=where,
        hint=hint,
    )


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d{1,20}(?:\.\d{1,20})?)\s*([KMGT]?)(?:I?B)?\s*", re.I)
MAX_SIZE = 1 << 60  # 1 EiB: no Mac has more memory; a longer number is a typo


def parse_size(text: str) -> int:
    """'8G', '8GiB', '512M', '1.5T' or a byte count; binary units, as llama.cpp prints them."""
    m = _SIZE_RE.fullmatch(text[:64])
    hint = "e.g. --max-memory 8G (GiB), 512M"
    if m is None or len(text) > 64:
        raise UsageError(f"--max-memory {text[:40]!r} is not a size", hint=hint)
    size = int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    if size > MAX_SIZE:
        raise UsageError(f"--max-memory {text[:40]!r} is over 1 EiB", hint=hint)
    return size


def format_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= _UNITS[unit]:
            return f"{n / _UNITS[unit]:.2f} {unit}iB"
    return f"{n} B"
