"""verify-model's KV cache and recurrent state formulas (llamabuild/model/kv_memory.py), without
a server: the numbers below are the pinned llama.cpp's rules worked by hand, the same ones
tests/test_verify_model_kv_real.py checks against the real llama-server's log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.model.gguf_read import ArrayValue, MetaValue
from llamabuild.model.kv_memory import (
    KV_CACHE_TYPES,
    ServerSettings,
    context_memory,
    row_bytes,
    rules,
)
from tests.fixtures.kv_models import SPECS, Meta, write_model

# the fixture models' shape: 4 layers, 2 KV heads of 64, K + V at f16 = 512 bytes a cell a layer
CELL = 2 * 64 * 2 * 2


def meta_of(arch: str, **changes: Any) -> dict[str, MetaValue]:
    """SPECS[arch] as gguf_read keeps it (`<arch>.key`), with changes (None removes a key)."""
    spec: Meta = {**SPECS[arch], **changes}
    out: dict[str, MetaValue] = {}
    for k, v in spec.items():
        if v is None:
            continue
        if isinstance(v, list):
            out[f"{arch}.{k}"] = ArrayValue(7 if isinstance(v[0], bool) else 5, len(v), tuple(v))
        else:
            out[f"{arch}.{k}"] = v
    return out


def caches(
    arch: str, ctx: int, settings: ServerSettings | None = None, **changes: Any
) -> list[tuple[str, int, int, int]]:
    """(kind, cells, streams, bytes) of every cache."""
    mem = context_memory(arch, meta_of(arch, **changes), ctx, settings or ServerSettings())
    assert mem is not None
    return [(c.kind, c.cells, c.streams, c.bytes) for c in mem.caches]


def test_every_rule_cites_the_pinned_tree() -> None:
    for arch, rule in rules().arch.items():
        assert "src/" in rule.source or "conversion/" in rule.source, arch
        if rule.attention == "swa":
            assert rule.swa_pattern or rule.swa_pattern_array, arch
        if rule.attention in ("recurrent", "hybrid"):
            assert rule.recurrent and rule.recurrent_layers, arch


def test_full_attention_defaults() -> None:
    # -np auto: 4 slots, one unified stream of pad(ctx, 256) cells
    assert caches("llama", 4096) == [("kv", 4096, 1, 4 * 4096 * CELL)]
    assert caches("llama", 1000) == [("kv", 1024, 1, 4 * 1024 * CELL)]  # padded to 256
    # an explicit -np: kv_unified off, one stream per slot of pad(n_ctx / slots, 256)
    assert caches("llama", 4096, ServerSettings(parallel=3)) == [
        ("kv", 1536, 3, 3 * 4 * 1536 * CELL)
    ]
    unified = ServerSettings(parallel=3, kv_unified=True)
    assert caches("llama", 4096, unified) == [("kv", 4096, 1, 4 * 4096 * CELL)]
    auto = ServerSettings(kv_unified=False)  # --no-kv-unified with -np auto: still unified
    assert (auto.slots, auto.unified) == (4, True)


def test_kv_types_use_ggml_block_sizes() -> None:
    assert row_bytes("f16", 128) == 256 and row_bytes("f32", 128) == 512
    assert row_bytes("q8_0", 128) == 4 * 34 and row_bytes("q4_0", 128) == 4 * 18
    assert row_bytes("q8_0", 48) is None  # not a whole block: llama.cpp refuses the type
    assert all(row_bytes(t, 256) for t in KV_CACHE_TYPES)
    q8 = ServerSettings(cache_type_k="q8_0", cache_type_v="q8_0")
    assert caches("qwen2", 4096, q8)[0][3] / caches("qwen2", 4096)[0][3] == 34 / 64


def test_sliding_window_layers() -> None:
    # gemma2: every 2nd layer full; the SWA cache holds pad(min(ctx, 128 x 4 + 512), 256)
    half = 2 * CELL
    assert caches("gemma2", 32768) == [
        ("kv", 32768, 1, 32768 * half),
        ("kv_swa", 1024, 1, 1024 * half),
    ]
    assert caches("gemma2", 512)[1][1] == 512  # never more than the context
    one = ServerSettings(parallel=1)  # not unified: window x 1 + 512 = 640 -> 768
    assert caches("gemma2", 32768, one)[1][:3] == ("kv_swa", 768, 1)
    assert caches("gemma2", 32768, ServerSettings(swa_full=True))[1][1] == 32768
    # no sliding_window key: gemma2's default window 4096 (src/models/gemma2.cpp:5)
    no_key = caches("gemma2", 32768, **{"attention.sliding_window": None})
    assert no_key[1][1] == 4096 * 4 + 512 == 16896
    # gemma3 without a window has no SWA at all; with one, every 6th layer is full
    assert caches("gemma3", 32768, **{"attention.sliding_window": None}) == [
        ("kv", 32768, 1, 6 * 32768 * CELL)
    ]
    assert caches("gemma3", 32768)[0][3] == 32768 * CELL  # layer 5 only
    # a sliding_window_pattern int replaces the default (load_swa_pattern)
    every3 = caches("gpt-oss", 32768, **{"attention.sliding_window_pattern": 3})
    assert every3[0][3] == 32768 * CELL and every3[1][3] == 1024 * 3 * CELL


def test_pattern_arrays_as_llama_cpp_reads_them() -> None:
    # a short array leaves the remaining layers full; an int8 array is refused (no estimate)
    short = caches("gemma4", 32768, **{"attention.sliding_window_pattern": [True, True]})
    assert [c[0] for c in short] == ["kv", "kv_swa"]
    assert short[1][3] == 1024 * (CELL + CELL // 2)  # layer 0 (2 heads x 64), 1 (1 x 64)
    meta = meta_of("gemma4")
    meta["gemma4.attention.sliding_window_pattern"] = ArrayValue(0, 8, (1,) * 8)
    assert context_memory("gemma4", meta, 4096, ServerSettings()) is None


def test_windows_llama_cpp_ignores() -> None:
    assert caches("phi3", 32768) == [("kv", 32768, 1, 4 * 32768 * CELL)]
    assert caches("llama", 32768, **{"attention.sliding_window": 128})[0][1] == 32768


def test_gemma4_shared_layers_and_swa_head_size() -> None:
    # 8 layers, SWA on even ones, the last 2 share: 3 SWA layers (2 heads x 64) and 3 full
    # ones (1 head x 128) own a cache
    got = caches("gemma4", 32768)
    assert got == [("kv", 32768, 1, 3 * 32768 * 128 * 2 * 2), ("kv_swa", 1024, 1, 3 * 1024 * CELL)]


def test_gemma3n_caches_the_first_20_layers() -> None:
    # 22 layers, every 5th full: of the 20 cached ones (n_layer_kv_from_start = 20 whatever
    # shared_kv_layers says), layers 4, 9, 14 and 19 are full and 16 use the window
    got = caches("gemma3n", 32768)
    assert got == [("kv", 32768, 1, 4 * 32768 * CELL), ("kv_swa", 1024, 1, 16 * 1024 * CELL)]


def test_olmo2_needs_a_window() -> None:
    assert len(caches("olmo2", 32768)) == 2
    assert caches("olmo2", 32768, **{"attention.sliding_window": None}) == [
        ("kv", 32768, 1, 4 * 32768 * CELL)
    ]


def test_lfm2_short_conv_state_and_windowed_attention() -> None:
    # one attention layer (head_count_kv > 0), SWA with a window; 3 short-conv layers whose
    # state is n_embd x (l_cache - 1) F32 values a slot, no S state
    state = 3 * 4 * 256 * 2 * 4
    assert caches("lfm2", 32768) == [
        ("kv", 32768, 1, 0),
        ("kv_swa", 1024, 1, 1024 * CELL),
        ("recurrent", 4, 1, state),
    ]
    assert caches("lfm2", 32768, **{"attention.sliding_window": None}) == [
        ("kv", 32768, 1, 32768 * CELL),
        ("recurrent", 4, 1, state),
    ]


def test_mla_caches_k_only() -> None:
    # key_length = kv_lora_rank 96 + rope 32, one KV head, no V
    assert caches("deepseek2", 4096) == [("kv", 4096, 1, 4 * 4096 * 128 * 2)]
    old = caches("deepseek2", 4096, **{"attention.key_length_mla": None})
    assert old[0][3] == 4 * 4096 * (128 + 96) * 2  # without MLA keys: K and V


def test_nextn_layers_own_no_cache() -> None:
    # an MTP block (nextn_predict_layers) is filtered out of the trunk's cache; per-layer
    # arrays still have one item a block (src/llama-model.cpp:2798-2803)
    base = caches("deepseek2", 4096)
    assert caches("deepseek2", 4096, block_count=5, nextn_predict_layers=1) == base
    per_layer = {"attention.head_count_kv": [1] * 5, "attention.head_count": [4] * 5}
    assert caches("deepseek2", 4096, block_count=5, nextn_predict_layers=1, **per_layer) == base


def test_recurrent_state() -> None:
    # mamba: one row per slot, F32: (d_conv - 1) x d_inner + d_state x d_inner per layer
    per_row = (3 * 512 + 16 * 512) * 4
    assert caches("mamba", 32768) == [("recurrent", 4, 1, 4 * 4 * per_row)]
    assert caches("mamba", 512) == caches("mamba", 32768)  # independent of the context
    assert caches("mamba", 4096, ServerSettings(parallel=1))[0][3] == 4 * per_row
    # rwkv6: token_shift_count (2) x n_embd + n_embd x head size
    assert caches("rwkv6", 4096)[0][3] == 4 * 4 * (2 * 256 + 256 * 64) * 4
    # jamba: one attention layer (head_count_kv > 0), three Mamba layers
    assert caches("jamba", 4096) == [
        ("kv", 4096, 1, 4096 * CELL),
        ("recurrent", 4, 1, 3 * 4 * per_row),
    ]


def test_mamba2_hybrids() -> None:
    # Mamba-2: groups widen the conv state: (4 - 1) x (512 + 2 x 1 x 16) + 16 x 512 a row
    per_row = (3 * (512 + 2 * 16) + 16 * 512) * 4
    assert caches("mamba2", 4096) == [("recurrent", 4, 1, 4 * 4 * per_row)]
    # granitehybrid: Mamba-2 on the layers without KV heads; falcon-h1: both in every layer
    assert caches("granitehybrid", 4096) == [
        ("kv", 4096, 1, 4096 * CELL),
        ("recurrent", 4, 1, 3 * 4 * per_row),
    ]
    assert caches("falcon-h1", 4096) == [
        ("kv", 4096, 1, 4 * 4096 * CELL),
        ("recurrent", 4, 1, 4 * 4 * per_row),
    ]


def test_gated_delta_net_hybrid() -> None:
    # qwen35: attention every 4th layer (layer 3); layers 0-2 hold conv + delta-net state:
    # (d_conv - 1) x (d_inner + 2 x groups x d_state) + d_state x d_inner F32 values a slot
    per_row = (3 * (128 + 2 * 2 * 32) + 32 * 128) * 4
    assert caches("qwen35", 4096) == [
        ("kv", 4096, 1, 4096 * CELL),
        ("recurrent", 4, 1, 3 * 4 * per_row),
    ]
    # an attention.recurrent_layers array wins over the interval
    flags = caches("qwen35", 4096, **{"attention.recurrent_layers": [True, False, True, False]})
    assert flags == [("kv", 4096, 1, 2 * 4096 * CELL), ("recurrent", 4, 1, 2 * 4 * per_row)]
    assert caches("qwen35moe", 4096)[1][3] == 2 * 4 * per_row  # interval 2: layers 0 and 2
    bad = meta_of("qwen35", full_attention_interval=0)  # llama.cpp would divide by zero
    assert context_memory("qwen35", bad, 4096, ServerSettings()) is None


def test_hostile_numbers_give_no_estimate() -> None:
    for changes in (
        {"attention.sliding_window": -1},
        {"attention.head_count_kv": [1, 2]},  # not one per layer
        {"block_count": 0},
        {"attention.key_length": 1 << 40},
    ):
        assert (
            context_memory("gemma2", meta_of("gemma2", **changes), 4096, ServerSettings()) is None
        )
    assert (
        context_memory("mamba", meta_of("mamba", **{"ssm.inner_size": None}), 64, ServerSettings())
        is None
    )


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-model", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_cache_types_llama_cpp_refuses() -> None:
    from llamabuild.model.kv_memory import refused

    q8 = ServerSettings(cache_type_k="q8_0", cache_type_v="q8_0")
    assert refused("qwen2", meta_of("qwen2"), q8) is None  # head size 64: whole blocks
    phi2_like = meta_of("qwen2", **{"attention.key_length": 80, "attention.value_length": 80})
    assert "head size 80" in (refused("qwen2", phi2_like, q8) or "")
    assert refused("qwen2", phi2_like, ServerSettings(cache_type_k="bf16")) is None
    # gemma4's SWA layers have their own head size, checked too
    swa_odd = meta_of(
        "gemma4", **{"attention.key_length_swa": 48, "attention.value_length_swa": 48}
    )
    assert "head size 48" in (refused("gemma4", swa_odd, q8) or "")
    # MLA: one type for K and V
    mixed = ServerSettings(cache_type_k="q8_0")
    assert "one cache type for K and V" in (refused("deepseek2", meta_of("deepseek2"), mixed) or "")
    assert refused("deepseek2", meta_of("deepseek2"), q8) is None


def test_json_breakdown(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = write_model(tmp_path / "g.gguf", "gemma2", shapes={})
    code, rep = check(capsys, model, "--ctx", "32768", "-np", "1", "-ctk", "q8_0")
    assert code == 0 and rep["findings"] == []
    mem = rep["memory"]
    assert mem["server"] == {
        "slots": 1,
        "kv_unified": False,
        "swa_full": False,
        "cache_type_k": "q8_0",
        "cache_type_v": "f16",
    }
    assert mem["attention"] == "swa" and mem["swa_window"] == 128
    assert [(c["kind"], c["cells"]) for c in mem["caches"]] == [("kv", 32768), ("kv_swa", 768)]
    assert mem["kv_cache_bytes"] == sum(c["bytes"] for c in mem["caches"])
    assert mem["recurrent_state_bytes"] == 0 and "gemma2.cpp" in mem["rule_source"]
    assert mem["total_bytes"] == mem["weights_bytes"] + mem["kv_cache_bytes"]
    assert "not estimated" in mem["compute_buffer"]
    assert run(["verify-model", str(model), "--swa-full"]) == 0
    assert "kv_swa" in capsys.readouterr().out


def test_unknown_architecture_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    embd = {"token_embd.weight": [256, 272]}
    model = write_model(tmp_path / "s.gguf", "starcoder2", shapes=embd, meta=SPECS["llama"])
    code, rep = check(capsys, model, "--max-memory", "1K")
    assert code == 0
    assert [f["rule"] for f in rep["findings"]] == ["kv-estimate-unknown", "model-too-large"]
    assert "estimate not known for this architecture" in rep["findings"][0]["message"]
    assert "without -c, llama-server shrinks" in rep["findings"][1]["hint"]  # no --ctx given
    mem = rep["memory"]
    assert mem["kv_cache_bytes"] is None and mem["attention"] is None
    assert mem["total_bytes"] == mem["weights_bytes"] == 256 * 272 * 4


@pytest.mark.parametrize("bad", [["-ctk", "q3_k"], ["-ctv", "f8"], ["-np", "0"], ["-np", "257"]])
def test_bad_server_flags_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: list[str]
) -> None:
    model = write_model(tmp_path / "m.gguf", "llama", shapes={})
    code, rep = check(capsys, model, *bad)
    assert code == 2 and rep["error"] and rep["hint"]


def test_server_table_of_llamabuild_toml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_model(tmp_path / "m.gguf", "llama", shapes={})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llamabuild.toml").write_text(
        '[server]\nparallel = 2\ncache_type_k = "q8_0"\nswa_full = true\n'
    )
    server = check(capsys, model, "--ctx", "4096")[1]["memory"]["server"]
    assert server == {
        "slots": 2,
        "kv_unified": False,
        "swa_full": True,
        "cache_type_k": "q8_0",
        "cache_type_v": "f16",
    }
    flags = check(capsys, model, "--ctx", "4096", "-np", "-1", "-ctk", "f16")[1]["memory"]
    assert flags["server"]["slots"] == 4 and flags["server"]["kv_unified"] is True
    assert flags["server"]["cache_type_k"] == "f16"
    assert check(capsys, model, "-np", "-3")[1]["memory"]["server"]["slots"] == 4  # auto too
    (tmp_path / "llamabuild.toml").write_text("[server]\nparallel = 0\n")
    code, rep = check(capsys, model)
    assert code == 2 and "parallel" in rep["error"]
    (tmp_path / "llamabuild.toml").write_text('[server]\ncache_type_v = "q3_k"\n')
    code, rep = check(capsys, model)
    assert code == 2 and "cache_type_v" in rep["error"]


def test_verify_app_and_smoke_use_the_server_table(tmp_path: Path) -> None:
    from llamabuild.builder.model_pins import bundle_models
    from llamabuild.builder.smoke import server_argv
    from llamabuild.config.domain import ServerSection
    from llamabuild.model.bundled import check_bundle_models
    from llamabuild.model.kv_memory import server_flags

    config = tmp_path / "llamabuild.toml"
    config.write_text('[server]\nparallel = 2\nkv_unified = true\ncache_type_v = "q8_0"\n')
    model = write_model(tmp_path / "m.gguf", "llama", shapes={})
    (report,) = check_bundle_models([model], bundle_models(None, config))[0]
    assert report.memory is not None and report.memory.server is not None
    assert (report.memory.server.slots, report.memory.server.kv_unified) == (2, True)
    assert report.memory.server.cache_type_v == "q8_0"
    section = ServerSection(parallel=2, kv_unified=False, swa_full=True, cache_type_k="q4_0")
    flags = server_flags(section)
    assert flags == [
        "--parallel", "2", "--no-kv-unified", "--swa-full", "--cache-type-k", "q4_0"
    ]  # fmt: skip
    argv = server_argv(Path("llama-server"), model, 8080, flags)
    assert argv[-len(flags) :] == flags and argv.index("1") < argv.index("2")  # the last -np wins
    assert server_flags(ServerSection()) == []
