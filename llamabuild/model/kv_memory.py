"""The context memory the pinned llama.cpp allocates for a model: KV caches and recurrent state.

The rules are data (llamabuild/data/kv_rules.toml, each entry citing the lines of the pinned
tree it is read from): per architecture, the attention kind (full, sliding window with its
layer pattern, MLA, recurrent, hybrid), shared-KV layers and the recurrent state formula. The
server settings that change the figure are named as llama-server names them (-np, --swa-full,
--cache-type-k/-v, --no-kv-unified) and default to the server's own defaults. An architecture
the table lacks gets no figure, never a plain formula (verify-model warns).

Everything here reads untrusted metadata: any missing, negative or out-of-range number gives
no estimate (None), never an exception or a negative size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, NamedTuple

from llamabuild.config.domain import ServerSection
from llamabuild.config.settings import load_file
from llamabuild.core.jsonout import ALWAYS, INTERNAL, OMIT_NONE, derived, json_view, model
from llamabuild.core.resources import data_file
from llamabuild.model import gguf_tables
from llamabuild.model.gguf_read import ArrayValue, MetaValue

# common/arg.cpp:304-314: the types -ctk/-ctv accept (ggml_type_name spelling)
KV_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
AUTO_SLOTS = 4  # tools/server/server.cpp:156-160: -np auto -> 4 slots, kv_unified on
CELL_PAD = 256  # src/llama-context.cpp:290 and src/llama-kv-cache-iswa.cpp:73
N_BATCH = 2048  # common/common.h:453
N_UBATCH = 512  # common/common.h:454
MAX_LAYERS = 512  # LLAMA_MAX_LAYERS (src/llama-hparams.h:11): more is refused
MAX_DIM = 1 << 32  # a head size, window or state size past this is not a real model
STATE_BYTES = 4  # recurrent state is F32 whatever -ctk/-ctv (src/llama-model.cpp:2669-2677)
COMPUTE_BUFFER = (  # src/llama-context.cpp sched_reserve: the worst-case graph, at load
    "not estimated: reserved at load for the worst-case 512-token batch; "
    "llama-server -v logs it (compute buffer size)"
)

Attention = Literal["full", "swa", "mla", "recurrent", "hybrid"]


@dataclass(frozen=True)
class ArchRule:
    """One architecture's entry in data/kv_rules.toml."""

    attention: Attention
    source: str
    swa_pattern: int = 0
    swa_pattern_array: bool = False
    swa_window: int = 0
    swa_needs_window: bool = False
    swa_attention_layers: bool = False
    shared_kv: bool = False
    kv_layers: int = 0
    ignores_window: bool = False
    recurrent: Literal["mamba", "rwkv", "shortconv"] | None = None
    recurrent_layers: Literal["all", "no_kv_heads", "interval", "parallel"] | None = None

    @property
    def has_swa(self) -> bool:
        return bool(self.swa_pattern or self.swa_pattern_array or self.swa_attention_layers)


@dataclass(frozen=True)
class KvRules:
    arch: dict[str, ArchRule]


@cache
def rules() -> KvRules:
    return load_file(KvRules, data_file("kv_rules.toml"))


@model(frozen=True)
class ServerSettings:
    """llama-server's options that change the context memory (None: the server's default);
    the JSON shows them resolved, as the server will run: slots, and whether unified."""

    parallel: int | None = field(default=None, metadata=INTERNAL)  # -np; None: auto
    slots: int = derived(lambda s: AUTO_SLOTS if s.parallel is None else s.parallel)
    # --kv-unified / --no-kv-unified, for an explicit -np (the JSON: `unified`, resolved)
    kv_unified: bool | None = field(default=None, metadata=json_view(lambda s: s.unified, bool))
    swa_full: bool = field(default=False, metadata=ALWAYS)
    cache_type_k: str = field(default="f16", metadata=ALWAYS)
    cache_type_v: str = field(default="f16", metadata=ALWAYS)

    @property
    def unified(self) -> bool:
        """-np auto forces a unified cache, whatever --no-kv-unified says (server.cpp:156-160);
        an explicit -np leaves kv_unified as given, default off (common/common.h:575)."""
        return self.parallel is None or bool(self.kv_unified)


def from_config(conf: ServerSection) -> ServerSettings:
    """[server] of llamabuild.toml as settings (an unset key: the server's default)."""
    return ServerSettings(
        parallel=None if conf.parallel is None or conf.parallel < 0 else conf.parallel,
        kv_unified=conf.kv_unified,
        swa_full=bool(conf.swa_full),
        cache_type_k=conf.cache_type_k or "f16",
        cache_type_v=conf.cache_type_v or "f16",
    )


def server_flags(conf: ServerSection) -> list[str]:
    """[server] as llama-server's own flags (what smoke starts the server with)."""
    flags: list[str] = []
    if conf.parallel is not None:
        flags += ["--parallel", str(conf.parallel)]
    if conf.kv_unified is not None:
        flags.append("--kv-unified" if conf.kv_unified else "--no-kv-unified")
    if conf.swa_full:
        flags.append("--swa-full")
    if conf.cache_type_k:
        flags += ["--cache-type-k", conf.cache_type_k]
    if conf.cache_type_v:
        flags += ["--cache-type-v", conf.cache_type_v]
    return flags


@dataclass(frozen=True)
class CacheEstimate:
    """One cache as llama.cpp logs it (`llama_kv_cache: size = ...`, `llama_memory_recurrent`)."""

    kind: Literal["kv", "kv_swa", "recurrent"]
    cells: int  # per stream (recurrent: rows, one per slot)
    streams: int
    layers: int
    k_bytes: int  # recurrent: the R (conv/shift) state
    v_bytes: int  # recurrent: the S (ssm/wkv) state
    bytes: int


@dataclass(frozen=True)
class ContextMemory:
    """The caches of one context, and what they were computed from."""

    attention: Attention
    caches: list[CacheEstimate]
    swa_window: int | None = field(default=None, metadata=OMIT_NONE)

    @property
    def kv_bytes(self) -> int:
        return sum(c.bytes for c in self.caches if c.kind != "recurrent")

    @property
    def state_bytes(self) -> int:
        return sum(c.bytes for c in self.caches if c.kind == "recurrent")


def _pad(n: int, to: int = CELL_PAD) -> int:
    return -(-n // to) * to


class _Unusable(Exception):
    """A number the estimate needs is present but not usable (negative, huge, not a number)."""


def _num(meta: Mapping[str, MetaValue], key: str) -> int | None:
    """The key's value; None when absent; _Unusable when it is no count llama.cpp would take."""
    v = meta.get(key)
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_DIM:
        return v
    raise _Unusable(key)


def _per_layer(value: MetaValue | None, layers: int) -> list[int] | None:
    """An int, or a per-layer int array (hybrid models), as one value per layer."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_DIM:
        return [value] * layers
    ints = value.ints if isinstance(value, ArrayValue) else None
    if ints is not None and len(ints) == layers and all(0 <= v < MAX_DIM for v in ints):
        return list(ints)
    raise _Unusable("a per-layer array")


def row_bytes(type_name: str, elements: int) -> int | None:
    """ggml_row_size: bytes of `elements` values of a ggml type (None: not a whole block)."""
    sizes, names = gguf_tables.type_sizes()
    type_id = next((i for i, n in names.items() if n == type_name), None)
    if type_id is None or type_id not in sizes:
        return None
    block, per_block = sizes[type_id]
    return None if elements % block else elements // block * per_block


@dataclass(frozen=True)
class _Model:
    """The hparams llama.cpp reads, per layer (src/llama-model.cpp:1320-1470)."""

    arch: str
    meta: Mapping[str, MetaValue]
    n_layer: int  # block_count minus nextn_predict_layers
    n_layer_all: int  # block_count: a per-layer array has this many items

    def key(self, suffix: str) -> int | None:
        return _num(self.meta, f"{self.arch}.{suffix}")

    def layers(self, suffix: str) -> list[int] | None:
        """A number or a block_count-long array (get_key_or_arr), for the trunk's layers."""
        values = _per_layer(self.meta.get(f"{self.arch}.{suffix}"), self.n_layer_all)
        return None if values is None else values[: self.n_layer]


def _model(arch: str, meta: Mapping[str, MetaValue]) -> _Model | None:
    layers = _num(meta, f"{arch}.block_count")
    nextn = _num(meta, f"{arch}.nextn_predict_layers") or 0
    if layers is None or not 0 < layers <= MAX_LAYERS or nextn >= layers:
        return None
    return _Model(arch, meta, layers - nextn, layers)


def _swa_layers(m: _Model, rule: ArchRule) -> tuple[list[bool], int]:
    """Which layers use the sliding window, and the window (0: none)."""
    none = [False] * m.n_layer
    if not rule.has_swa:
        return none, 0
    window = m.key("attention.sliding_window")
    if window is None:
        window = 0 if rule.swa_needs_window else rule.swa_window
    if window == 0:
        return none, 0
    pattern = m.meta.get(f"{m.arch}.attention.sliding_window_pattern")
    if isinstance(pattern, ArrayValue):  # get_arr: bool or 32-bit ints, at most 512 items;
        # a short array leaves the other layers full (src/llama-model-loader.cpp:350-400)
        if pattern.ints is None or pattern.item_type not in (4, 5, 7) or pattern.n_items > 512:
            return none, -1  # llama.cpp refuses it (or it was too long to keep): no estimate
        flags = [bool(v) for v in pattern.ints[: m.n_layer]]
        return flags + [False] * (m.n_layer - len(flags)), window
    if rule.swa_pattern_array:
        return none, -1  # the array is required (gemma4)
    if rule.swa_attention_layers:  # every attention layer (lfm2)
        kv_heads = m.layers("attention.head_count_kv") or m.layers("attention.head_count")
        return [h > 0 for h in kv_heads] if kv_heads else none, window
    n = m.key("attention.sliding_window_pattern")
    n = rule.swa_pattern if n is None else n
    return [n == 0 or il % n < n - 1 for il in range(m.n_layer)], window


class _Heads(NamedTuple):
    kv_heads: list[int]
    k: int  # head sizes of full-attention layers
    v: int
    k_swa: int  # and of sliding-window layers
    v_swa: int
    mla: bool  # K only (src/llama-kv-cache.cpp:231)

    def sizes(self, swa: bool) -> tuple[int, int]:
        return (self.k_swa, self.v_swa) if swa else (self.k, self.v)


def _heads(m: _Model, rule: ArchRule) -> _Heads | None:
    heads = m.layers("attention.head_count")
    kv_heads = m.layers("attention.head_count_kv") or heads
    embd = m.key("embedding_length")
    if heads is None or kv_heads is None or embd is None:
        return None
    head_k = head_v = 0  # no attention heads: no head size (src/llama-model.cpp:1458-1461)
    if heads[0] > 0:
        key, value = m.key("attention.key_length"), m.key("attention.value_length")
        head_k = embd // heads[0] if key is None else key
        head_v = embd // heads[0] if value is None else value
    mla = (
        rule.attention == "mla"
        and m.key("attention.key_length_mla") is not None
        and m.key("attention.value_length_mla") is not None
    )
    k_swa = m.key("attention.key_length_swa") or head_k
    v_swa = m.key("attention.value_length_swa") or head_v
    return _Heads(kv_heads, head_k, head_v, k_swa, v_swa, mla)


def _kv_layers(m: _Model, rule: ArchRule, swa: list[bool]) -> list[tuple[bool, int, int]] | None:
    """(is SWA, K elements, V elements) per cell of every layer that owns a cache."""
    h = _heads(m, rule)
    recr = _recurrent_layers(m, rule)
    if h is None or recr is None:
        return None
    owners = m.n_layer
    if rule.shared_kv:
        shared = m.key("attention.shared_kv_layers") or 0
        owners = max(m.n_layer - shared, 0)
    if rule.kv_layers:  # a fixed n_layer_kv_from_start (gemma3n)
        owners = min(owners, rule.kv_layers)
    out = []
    for il in range(owners):
        if recr[il] and rule.recurrent_layers != "parallel":
            continue  # a recurrent layer of a hybrid model
        k, v = h.sizes(swa[il])
        out.append((swa[il], k * h.kv_heads[il], 0 if h.mla else v * h.kv_heads[il]))
    return out


def refused(arch: str, meta: Mapping[str, MetaValue], s: ServerSettings) -> str | None:
    """Why llama.cpp would refuse to create the context with these cache types, or None
    (src/llama-context.cpp:3835-3870): an MLA model needs one type for K and V, and a
    quantized type's block must divide every layer's head size."""
    try:
        m = _model(arch, meta)
        rule = rules().arch[arch]
        h = _heads(m, rule) if m is not None else None
        swa = _swa_layers(m, rule)[0] if m is not None else []
    except _Unusable:
        return None
    if h is None:
        return None
    if h.mla and s.cache_type_k != s.cache_type_v:
        return (
            f"this MLA model needs one cache type for K and V, not {s.cache_type_k} and "
            f"{s.cache_type_v}"
        )
    sizes, _ = gguf_tables.type_sizes()
    blocks = {n: sizes[i][0] for i, n in gguf_tables.type_sizes()[1].items() if i in sizes}
    for which, kind, index in (("K", s.cache_type_k, 0), ("V", s.cache_type_v, 1)):
        block = blocks.get(kind, 1)
        heads = sorted({h.sizes(flag)[index] for flag in swa} or {h.sizes(False)[index]})
        bad = [n for n in heads if block > 1 and n % block]
        if bad:
            return (
                f"the {which} cache type {kind} packs {block} values a block, which does not "
                f"divide the head size {bad[0]}"
            )
    return None


def _cache(
    kind: Literal["kv", "kv_swa"],
    layers: list[tuple[bool, int, int]],
    cells: int,
    streams: int,
    s: ServerSettings,
) -> CacheEstimate | None:
    k_rows = [row_bytes(s.cache_type_k, k) for _, k, _ in layers]
    v_rows = [row_bytes(s.cache_type_v, v) for _, _, v in layers]
    if any(r is None for r in k_rows + v_rows):
        return None  # a row that is not a whole block: llama.cpp refuses the type
    k = sum(r or 0 for r in k_rows) * cells * streams
    v = sum(r or 0 for r in v_rows) * cells * streams
    return CacheEstimate(kind, cells, streams, len(layers), k, v, k + v)


def _recurrent_layers(m: _Model, rule: ArchRule) -> list[bool] | None:
    """Which layers hold recurrent state rather than a KV cache (None: unknown)."""
    if rule.recurrent_layers is None:
        return [False] * m.n_layer
    if rule.recurrent_layers in ("all", "parallel"):  # parallel: attention in every layer too
        return [True] * m.n_layer
    if rule.recurrent_layers == "no_kv_heads":  # jamba, lfm2
        kv_heads = m.layers("attention.head_count_kv")
        return None if kv_heads is None else [h == 0 for h in kv_heads]
    # qwen35/qwen3next: the attention.recurrent_layers array, else every full_attention_interval
    # -th layer is attention (src/models/qwen35.cpp:17-23)
    flags = m.meta.get(f"{m.arch}.attention.recurrent_layers")
    if isinstance(flags, ArrayValue):
        if flags.ints is None or len(flags.ints) != m.n_layer_all:
            return None  # get_key_or_arr wants one item a block
        return [bool(v) for v in flags.ints[: m.n_layer]]
    interval = m.key("full_attention_interval")
    interval = 4 if interval is None else interval
    return None if interval <= 0 else [(il + 1) % interval != 0 for il in range(m.n_layer)]


def _recurrent(m: _Model, rule: ArchRule, s: ServerSettings) -> CacheEstimate | None:
    """llama_memory_recurrent: max(1, slots) rows of R and S (F32) per recurrent layer."""
    embd = m.key("embedding_length")
    if rule.recurrent == "rwkv":
        head = m.key("wkv.head_size")
        shift = m.key("token_shift_count")
        if embd is None or head is None:
            return None
        r, st = (2 if shift is None else shift) * embd, embd * head
    elif rule.recurrent == "shortconv":
        cache = m.key("shortconv.l_cache")
        if embd is None or cache is None:
            return None
        r, st = embd * max(cache - 1, 0), 0
    else:
        conv, inner, state = (
            m.key(f"ssm.{k}") for k in ("conv_kernel", "inner_size", "state_size")
        )
        groups = m.key("ssm.group_count") or 0
        if conv is None or inner is None or state is None:
            return None
        r, st = max(conv - 1, 0) * (inner + 2 * groups * state), state * inner
    recr = _recurrent_layers(m, rule)
    if recr is None:
        return None
    n = sum(recr)
    rows = max(1, s.slots)
    k, v = r * STATE_BYTES * rows * n, st * STATE_BYTES * rows * n
    return CacheEstimate("recurrent", rows, 1, n, k, v, k + v)


def context_memory(
    arch: str, meta: Mapping[str, MetaValue], ctx: int, s: ServerSettings
) -> ContextMemory | None:
    """The caches llama.cpp allocates for `ctx` tokens; None when the model lacks a number the
    rule needs. The architecture must be in rules() (the caller warns otherwise)."""
    try:
        return _context_memory(rules().arch[arch], arch, meta, ctx, s)
    except _Unusable:
        return None


def _context_memory(
    rule: ArchRule, arch: str, meta: Mapping[str, MetaValue], ctx: int, s: ServerSettings
) -> ContextMemory | None:
    m = _model(arch, meta)
    if m is None or ctx <= 0 or s.slots <= 0:
        return None
    caches: list[CacheEstimate] = []
    if rule.attention in ("recurrent", "hybrid"):
        state = _recurrent(m, rule, s)
        if state is None:
            return None
        caches.append(state)
    if rule.attention == "recurrent":
        return ContextMemory(rule.attention, caches)
    swa, window = _swa_layers(m, rule)
    layers = _kv_layers(m, rule, swa) if window >= 0 else None
    if layers is None:
        return None
    n_ctx = _pad(ctx)  # src/llama-context.cpp:290-296
    streams = 1 if s.unified else s.slots
    cells = n_ctx if s.unified else _pad(n_ctx // s.slots)
    ubatch = min(N_UBATCH, min(ctx, N_BATCH))
    full = [la for la in layers if not la[0]]
    sliding = [la for la in layers if la[0]]
    base = _cache("kv", full, cells, streams, s)
    if base is None:
        return None
    caches.insert(0, base)
    if window > 0:
        swa_cells = (
            cells
            if s.swa_full
            else _pad(min(cells, window * (s.slots if s.unified else 1) + ubatch))
        )
        swa_cache = _cache("kv_swa", sliding, swa_cells, streams, s)
        if swa_cache is None:
            return None
        caches.insert(1, swa_cache)
    return ContextMemory(rule.attention, caches, window or None)
