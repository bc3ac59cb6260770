"""The `--json` output of `verify-model` (and the per-model entries of `verify-app`).

Apart from the checks so that outputs.py (verify-app's model) can import it without the
checks' imports (gguf, numpy, jinja2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.core.findings import Finding
from llamabuild.core.jsonout import OMIT_NONE


@dataclass(frozen=True)
class MemoryEstimate:
    """What loading the model costs: its weights plus an f16 KV cache for `ctx` tokens."""

    weights_bytes: int
    ctx: int | None  # --ctx, else the model's context length (llama-server's default)
    kv_cache_bytes: int | None  # None when the metadata lacks layers, heads or head size
    total_bytes: int
    max_memory_bytes: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ModelOutput:
    """One GGUF model as read from its header (tensor data is never read, only hashed)."""

    path: Path
    ok: bool
    size: int
    gguf_version: int
    architecture: str | None
    name: str | None
    file_type: str | None
    context_length: int | None
    tokenizer_model: str | None
    chat_template: bool
    tensors: int
    parameters: int
    tensor_types: dict[str, int]  # ggml type name -> how many tensors have it
    memory: MemoryEstimate
    checked_against_pin: bool  # a manifest's capabilities were given
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    sha256_expected: str | None = field(default=None, metadata=OMIT_NONE)
    findings: tuple[Finding, ...] = ()
