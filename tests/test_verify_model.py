"""`llamabuild verify-model` on GGUF files written here with the `gguf` package.

Hostile files are real GGUFs with bytes patched at the offsets the reader reports, plus 1,000
seeded mutations run in a child process (tests/fixtures/gguf_fuzz.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import gguf
import pytest

from llamabuild.cli import run
from llamabuild.model.capabilities import read_capabilities
from llamabuild.model.gguf_tiny import write_tiny_llama
from llamabuild.model.memory import parse_size
from llamabuild.model.verify_model import ModelOptions, verify_model
from tests.fixtures.gguf_models import (
    fake_tree,
    header,
    key_value_at,
    patch,
    tensor_field,
    write_manifest,
    write_model,
)

ROOT = Path(__file__).resolve().parent.parent


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-model", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def rules(rep: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in rep.get("findings", ())}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest whose pin knows llama and qwen3, f32/f16/q4_0 and GGUF 2..3."""
    where = tmp_path_factory.mktemp("pin")
    caps = read_capabilities(fake_tree(where / "llama.cpp"))
    assert caps is not None
    return write_manifest(where / "manifest.json", caps)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return write_model(tmp_path / "model.gguf")


def test_capabilities_parse_the_source_layout(tmp_path: Path) -> None:
    caps = read_capabilities(fake_tree(tmp_path / "t"))
    assert caps is not None
    assert caps.architectures == ("llama", "qwen3")  # not the commented-out one, not (unknown)
    assert caps.tensor_types == {"f32": 0, "f16": 1, "q4_0": 2}  # no COUNT, no removed Q4_2
    assert caps.gguf_versions == (2, 3)  # gguf.cpp refuses v1 by name
    assert read_capabilities(tmp_path) is None  # not a llama.cpp tree


def test_capabilities_refuse_a_fifo_source(tmp_path: Path) -> None:
    root = fake_tree(tmp_path / "t")
    (root / "src" / "llama-arch.cpp").unlink()
    os.mkfifo(root / "src" / "llama-arch.cpp")
    assert read_capabilities(root) is None  # never opened, never blocks


def test_valid_llama_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "tiny.gguf")
    code, rep = check(capsys, path)
    assert code == 0 and rep["ok"] and rep["findings"] == []
    assert rep["architecture"] == "llama" and rep["gguf_version"] == 3
    assert rep["name"] == "llamabuild-tiny-llama" and rep["file_type"] == "ALL_F32"
    assert rep["context_length"] == 2048 and rep["tokenizer_model"] == "llama"
    assert rep["chat_template"] is True and rep["tensors"] == 21
    assert rep["tensor_types"] == {"f32": 21}
    mem = rep["memory"]
    # 2 layers x 2 KV heads x (16 + 16) x 2 bytes x 2048 tokens (the model's own context)
    assert mem["ctx"] == 2048 and mem["kv_cache_bytes"] == 2 * 2 * 32 * 2 * 2048
    assert mem["weights_bytes"] == rep["parameters"] * 4


def test_human_output(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    assert run(["verify-model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "llama" in out and "OK: 0 error(s)" in out


def test_pinned_model_passes(
    capsys: pytest.CaptureFixture[str], model: Path, manifest: Path
) -> None:
    code, rep = check(capsys, model, "--manifest", manifest)
    assert code == 0 and rep["checked_against_pin"] is True


def test_unknown_architecture_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, manifest: Path
) -> None:
    path = write_model(tmp_path / "m.gguf", arch="llamabuild-invented")
    assert check(capsys, path)[0] == 0  # nothing to compare with without a manifest
    code, rep = check(capsys, path, "--manifest", manifest)
    assert code == 1 and rules(rep) == {"model-arch-unsupported"}
    assert "'llamabuild-invented'" in rep["findings"][0]["message"]


def test_tensor_type_the_pin_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, manifest: Path
) -> None:
    q8 = gguf.GGMLQuantizationType.Q8_0
    path = write_model(tmp_path / "m.gguf", extra_types=[q8])
    assert check(capsys, path)[0] == 0
    code, rep = check(capsys, path, "--manifest", manifest)
    assert code == 1 and rules(rep) == {"tensor-type-unsupported"}
    assert "q8_0" in rep["findings"][0]["message"]


def test_unknown_tensor_type_id(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    patch(model, tensor_field(model, "blk.0.attn_q.weight", "type"), "I", 99)
    code, rep = check(capsys, model)
    assert code == 1 and rules(rep) == {"tensor-type-unsupported"}
    assert "type id 99" in rep["findings"][0]["message"]


def test_gguf_version_the_pin_lacks(
    capsys: pytest.CaptureFixture[str], model: Path, manifest: Path, tmp_path: Path
) -> None:
    caps = read_capabilities(fake_tree(tmp_path / "old", version=2))
    old = write_manifest(tmp_path / "old.json", caps)
    code, rep = check(capsys, model, "--manifest", old)
    assert code == 1 and rules(rep) == {"gguf-version-unsupported"}


def test_tensor_data_past_eof(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    with model.open("r+b") as fh:
        fh.truncate(fh.seek(0, 2) - 100)
    code, rep = check(capsys, model)
    assert code == 1 and rules(rep) == {"gguf-invalid"}
    assert "past the end of the file" in rep["findings"][0]["message"]


@pytest.mark.parametrize(
    ("tensor", "value", "words"),
    [
        ("blk.0.ffn_up.weight", 0, "overlapping"),  # shares token_embd's offset
        ("blk.0.ffn_up.weight", 33, "not aligned"),
    ],
)
def test_tensor_layout(
    capsys: pytest.CaptureFixture[str], model: Path, tensor: str, value: int, words: str
) -> None:
    patch(model, tensor_field(model, tensor, "offset"), "Q", value)
    code, rep = check(capsys, model)
    assert code == 1 and "gguf-invalid" in rules(rep)
    assert any(words in f["message"] for f in rep["findings"])


def test_duplicate_tensor_name(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    at = header(model).tensors[4].info_at  # blk.1.ffn_up.weight -> blk.0.ffn_up.weight
    data = bytearray(model.read_bytes())
    assert data[at + 8 : at + 27] == b"blk.1.ffn_up.weight"
    data[at + 12] = ord("0")
    model.write_bytes(bytes(data))
    code, rep = check(capsys, model)
    assert code == 1 and "duplicate tensor name" in rep["findings"][0]["message"]


def test_missing_architecture(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    data = model.read_bytes().replace(b"general.architecture", b"general.architecturX", 1)
    model.write_bytes(data)
    code, rep = check(capsys, model)
    assert code == 1 and rules(rep) == {"model-metadata-missing"}


def test_broken_chat_template_is_a_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_model(tmp_path / "m.gguf", template="{% for m in %}{{ m }")
    code, rep = check(capsys, path)
    assert code == 0 and rules(rep) == {"chat-template-invalid"}


def test_template_is_parsed_never_rendered(tmp_path: Path) -> None:
    marker = tmp_path / "rendered"
    evil = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    report = verify_model(write_model(tmp_path / "m.gguf", template=evil))
    assert report.ok and not marker.exists()


def test_memory_estimate_and_limit(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    code, rep = check(capsys, model, "--ctx", "8192", "--max-memory", "1M")
    assert code == 0 and rules(rep) == {"model-too-large"}
    mem = rep["memory"]
    assert mem["ctx"] == 8192 and mem["max_memory_bytes"] == 1 << 20
    # 2 layers x 2 KV heads x head size 8 (32 / 4 heads) x (K + V) x f16 x 8192
    assert mem["kv_cache_bytes"] == 2 * 2 * 8 * 2 * 2 * 8192
    assert check(capsys, model, "--max-memory", "8G")[1]["findings"] == []


def test_sizes() -> None:
    assert parse_size("8G") == parse_size("8GiB") == parse_size("8gb") == 8 << 30
    assert parse_size("1.5M") == 3 << 19 and parse_size("4096") == 4096


@pytest.mark.parametrize(
    "bad",
    [
        ["--max-memory", "lots"],
        ["--max-memory", "9" * 400],  # was an OverflowError (exit 3)
        ["--max-memory", "99999999999999999999T"],
        ["--ctx", "0"],
        ["--ctx", "1e400"],
        ["--sha256", "ab"],
    ],
)
def test_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], model: Path, bad: list[str]
) -> None:
    code, rep = check(capsys, model, *bad)
    assert code == 2 and rep["error"] and rep["hint"]


def test_sha256_match_and_mismatch(capsys: pytest.CaptureFixture[str], model: Path) -> None:
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    code, rep = check(capsys, model, "--sha256", digest.upper())
    assert code == 0 and rep["sha256"] == digest
    code, rep = check(capsys, model, "--sha256", "0" * 64)
    assert code == 1 and rules(rep) == {"model-sha256-mismatch"}
    assert rep["sha256"] == digest and rep["sha256_expected"] == "0" * 64


def test_sha256_pin_from_llamabuild_toml(
    capsys: pytest.CaptureFixture[str],
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llamabuild.toml").write_text(f'[models]\n"{model.name}" = "{"1" * 64}"\n')
    code, rep = check(capsys, model)
    assert code == 1 and rules(rep) == {"model-sha256-mismatch"}
    (tmp_path / "llamabuild.toml").write_text('[models]\n"x.gguf" = "not hex"\n')
    code, rep = check(capsys, model)
    assert code == 2 and "models" in rep["error"]


def test_manifest_without_capabilities(
    capsys: pytest.CaptureFixture[str], model: Path, tmp_path: Path
) -> None:
    old = write_manifest(tmp_path / "manifest.json", None)
    code, rep = check(capsys, model, "--manifest", old)
    assert code == 2 and "rebuild" in rep["hint"]


# --- hostile input: every one a clean exit 2 -------------------------------------------------


def _bad_magic(p: Path) -> None:
    p.write_bytes(b"GGML" + p.read_bytes()[4:])


def _truncated_header(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:100])


def _string_past_eof(p: Path) -> None:
    patch(p, key_value_at(p, "general.name"), "Q", 1 << 29)  # under gguf.cpp's 1 GiB limit


def _string_over_a_gib(p: Path) -> None:
    patch(p, key_value_at(p, "general.name"), "Q", 1 << 40)


def _tensor_count(p: Path) -> None:
    patch(p, 8, "Q", 1 << 63)


def _kv_count(p: Path) -> None:
    patch(p, 16, "Q", (1 << 64) - 1)


def _array_count(p: Path) -> None:
    patch(p, key_value_at(p, "tokenizer.ggml.tokens") + 4, "Q", 1 << 40)


def _value_type(p: Path) -> None:
    patch(p, key_value_at(p, "general.name") - 4, "I", 77)


def _nested_array(p: Path) -> None:
    patch(p, key_value_at(p, "tokenizer.ggml.tokens"), "I", 9)


def _dims(p: Path) -> None:
    at = header(p).tensors[0].info_at
    patch(p, at + 8 + len(b"token_embd.weight"), "I", 0xFFFFFFFF)


def _version(p: Path) -> None:
    patch(p, 4, "I", 3 << 24)  # a big-endian v3 read as little-endian


def _empty(p: Path) -> None:
    p.write_bytes(b"")


HOSTILE = {
    "bad magic": (_bad_magic, "not a GGUF file"),
    "truncated header": (_truncated_header, "cannot fit in the 84 bytes left"),
    "string length past EOF": (_string_past_eof, "past the end"),
    "string over 1 GiB": (_string_over_a_gib, "over gguf.cpp's 1 GiB"),
    "2^63 tensors": (_tensor_count, "tensor count"),
    "2^64-1 metadata entries": (_kv_count, "metadata count"),
    "2^40-element array": (_array_count, "over gguf.cpp"),
    "unknown value type": (_value_type, "unknown value type 77"),
    "nested array": (_nested_array, "unknown array item type 9"),
    "2^32 dimensions": (_dims, "dimensions"),
    "big-endian version": (_version, "big-endian"),
    "empty file": (_empty, "empty file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_header_exits_2(capsys: pytest.CaptureFixture[str], model: Path, case: str) -> None:
    damage, words = HOSTILE[case]
    damage(model)
    tracemalloc.start()
    try:
        code, rep = check(capsys, model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2, rep
    assert words in rep["error"] and rep["hint"]
    assert peak < 8 << 20  # whatever the header claims


def test_directory_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, rep = check(capsys, tmp_path)
    assert code == 2 and "directory" in rep["error"]


def test_fifo_exits_2_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "llamabuild", "verify-model", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "FIFO" in proc.stderr and "Traceback" not in proc.stderr


def test_long_template_is_measured_not_kept(tmp_path: Path) -> None:
    """A 2 MiB template (over MAX_KEPT_STRING) is skipped by length, never copied or parsed."""
    path = write_model(tmp_path / "m.gguf", template="{{ x }}" * (300 << 10))
    tracemalloc.start()
    try:
        report = verify_model(path, ModelOptions())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [f.rule for f in report.findings] == ["chat-template-unchecked"]
    assert peak < 1 << 20


@pytest.mark.slow
def test_thousand_mutations(tmp_path: Path) -> None:
    """1,000 seeded mutations of a real GGUF: exit 0, 1 or 2, never a traceback or a hang."""
    seed_model = write_tiny_llama(tmp_path / "seed.gguf")
    argv = ["-m", "tests.fixtures.gguf_fuzz", "1", "1000", str(tmp_path), str(seed_model)]
    proc = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["runs"] == 1000 and not summary["problems"], summary
    assert set(summary["codes"]) <= {"0", "1", "2"} and "2" in summary["codes"]
    assert summary["peak_rss_mb"] < 256


def test_negative_head_size_gives_no_estimate_never_a_negative_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A hostile key/value length (stored as INT32 -64) once made the KV estimate negative,
    so the total passed any `--max-memory` with exit 0."""
    import gguf
    import numpy as np

    path = tmp_path / "neg.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(2)
    w.add_embedding_length(32)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_context_length(4096)
    w.add_int32("llama.attention.key_length", -64)
    w.add_int32("llama.attention.value_length", -64)
    w.add_token_list(["<unk>", "a"])
    w.add_tensor("token_embd.weight", np.zeros((2, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    code, rep = check(capsys, path, "--ctx", "4096", "--max-memory", "100")  # bytes
    assert code == 0  # a warning
    mem = rep["memory"]
    assert mem.get("kv_cache_bytes") is None and mem["total_bytes"] >= mem["weights_bytes"] > 0
    assert "model-too-large" in rules(rep), rep
