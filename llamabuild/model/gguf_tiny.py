"""A tiny, valid GGUF llama model with random weights, so `smoke` needs no model download.

The point is not quality but a file that llama.cpp's loader accepts in full: llama architecture
metadata, an SPM ("llama") tokenizer with the 256 byte tokens (so any text tokenizes), a chat
template, and every tensor of a few transformer blocks in the shapes llama.cpp expects. F32
weights keep it loadable by every backend; the whole file is a few hundred kilobytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llamabuild.core.files import atomic_path

# Special tokens first, then the 256 byte-fallback tokens, then a handful of words.
_SPECIAL = ("<unk>", "<s>", "</s>")
_WORDS = ("▁", "▁the", "▁a", "▁hello", "▁world", "▁ok", "e", "t", "a", "o", "i", "n", "s")
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TinyShape:
    """Model hyper-parameters; the defaults load in well under a second."""

    n_embd: int = 64
    n_head: int = 4
    n_head_kv: int = 2
    n_layer: int = 2
    n_ff: int = 128
    n_ctx: int = 2048
    seed: int = 0


def vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types (1 normal, 2 unknown, 3 control, 6 byte)."""
    tokens = list(_SPECIAL) + [f"<0x{b:02X}>" for b in range(256)] + list(_WORDS)
    types = [2, 3, 3] + [6] * 256 + [1] * len(_WORDS)
    scores = [0.0] * (len(_SPECIAL) + 256) + [-float(i) for i in range(len(_WORDS))]
    return tokens, scores, types


def write_tiny_llama(path: Path, shape: TinyShape | None = None) -> Path:
    """Write the model to `path` atomically (temp file beside it, then rename)."""
    import gguf
    import numpy as np

    s = shape or TinyShape()
    head_dim = s.n_embd // s.n_head
    tokens, scores, types = vocab()
    rng = np.random.default_rng(s.seed)

    def w(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims) * 0.02).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    with atomic_path(path, 0o644) as tmp:  # a model is ordinary data
        writer = gguf.GGUFWriter(tmp, "llama")
        writer.add_name("llamabuild-tiny-llama")
        writer.add_context_length(s.n_ctx)
        writer.add_embedding_length(s.n_embd)
        writer.add_block_count(s.n_layer)
        writer.add_feed_forward_length(s.n_ff)
        writer.add_head_count(s.n_head)
        writer.add_head_count_kv(s.n_head_kv)
        writer.add_rope_dimension_count(head_dim)
        writer.add_layer_norm_rms_eps(1e-5)
        writer.add_vocab_size(len(tokens))
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_bos_token_id(1)
        writer.add_eos_token_id(2)
        writer.add_unk_token_id(0)
        writer.add_chat_template(_CHAT_TEMPLATE)
        # numpy shapes are llama.cpp's `ne` reversed: token_embd ne={n_embd, n_vocab}.
        n_vocab, kv = len(tokens), s.n_head_kv * head_dim
        writer.add_tensor("token_embd.weight", w(n_vocab, s.n_embd))
        for i in range(s.n_layer):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(s.n_embd))
            writer.add_tensor(f"blk.{i}.attn_q.weight", w(s.n_embd, s.n_embd))
            writer.add_tensor(f"blk.{i}.attn_k.weight", w(kv, s.n_embd))
            writer.add_tensor(f"blk.{i}.attn_v.weight", w(kv, s.n_embd))
            writer.add_tensor(f"blk.{i}.attn_output.weight", w(s.n_embd, s.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(s.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(s.n_ff, s.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_up.weight", w(s.n_ff, s.n_embd))
            writer.add_tensor(f"blk.{i}.ffn_down.weight", w(s.n_embd, s.n_ff))
        writer.add_tensor("output_norm.weight", ones(s.n_embd))
        writer.add_tensor("output.weight", w(n_vocab, s.n_embd))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path
