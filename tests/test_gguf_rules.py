"""verify-model refuses what the pinned llama.cpp's GGUF loader refuses: one file per rule of
llamabuild/data/gguf_rules.toml, each test named after its line of ggml/src/gguf.cpp."""

from __future__ import annotations

import json
import struct
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.core.resources import data_text
from tests.fixtures.gguf_raw import (
    ARRAY,
    F32,
    Q4_0,
    STRING,
    U8,
    U64,
    gguf,
    kv,
    string,
    tensor,
    text,
    u32,
)

TABLE = tomllib.loads(data_text("gguf_rules.toml"))
RULES: dict[str, dict[str, Any]] = TABLE["rules"]
F32_ROW = [tensor("t", (8,), F32, 0)]


def _two_tensors_out_of_order() -> bytes:
    infos = [tensor("a", (8,), F32, 0), tensor("b", (8,), F32, 64)]  # b belongs at 32
    return gguf(tensors=infos, data=b"\0" * 96)


FILES: dict[str, Callable[[], bytes]] = {
    "magic": lambda: gguf(magic=b"GGUX"),
    "version-zero": lambda: gguf(version=0),
    "version-other-endian": lambda: gguf(version=3 << 16),
    "version-1": lambda: gguf(version=1),
    "version-newer": lambda: gguf(version=4),
    "array-too-long": lambda: gguf([kv("x.a", ARRAY, struct.pack("<IQ", U8, (1 << 30) + 1))]),
    "string-too-long": lambda: gguf([kv("x.s", STRING, struct.pack("<Q", (1 << 30) + 1))]),
    "string-past-the-end": lambda: gguf([kv("x.s", STRING, struct.pack("<Q", 1000) + b"abc")]),
    "key-empty": lambda: gguf([u32("", 1)]),
    "key-duplicate": lambda: gguf([u32("x.k", 1), u32("x.k", 2)]),
    "value-type-unknown": lambda: gguf([kv("x.k", 13, b"\0" * 8)]),
    "alignment-not-uint32": lambda: gguf([kv("general.alignment", U64, struct.pack("<Q", 32))]),
    "alignment-not-power-of-two": lambda: gguf([u32("general.alignment", 48)]),
    "tensor-name-too-long": lambda: gguf(tensors=[tensor("n" * 64, (8,), F32, 0)]),
    "tensor-name-duplicate": lambda: gguf(
        tensors=[tensor("t", (8,), F32, 0), tensor("t", (8,), F32, 32)], data=b"\0" * 64
    ),
    "tensor-dimensions": lambda: gguf(tensors=[tensor("t", (1, 1, 1, 1, 1), F32, 0)]),
    "tensor-negative-dimension": lambda: gguf(tensors=[tensor("t", (8, -1), F32, 0)]),
    "tensor-element-overflow": lambda: gguf(tensors=[tensor("t", (1 << 62, 4), F32, 0)]),
    "tensor-type-unknown": lambda: gguf(tensors=[tensor("t", (8,), 99, 0)], data=b"\0" * 32),
    "tensor-row-not-whole-blocks": lambda: gguf(tensors=[tensor("t", (33,), Q4_0, 0)]),
    "tensor-bytes-overflow": lambda: gguf(tensors=[tensor("t", (1 << 62,), F32, 0)]),
    "tensor-offset-out-of-order": _two_tensors_out_of_order,
}


def test_every_rule_has_a_file() -> None:
    assert set(FILES) == set(RULES)
    assert gguf(tensors=F32_ROW)  # the writer's happy path is a loadable file:
    assert text("a", "b") and string("x")


def test_the_happy_path_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ok.gguf"
    path.write_bytes(gguf(tensors=F32_ROW, data=b"\0" * 32))
    assert run(["verify-model", str(path), "--json"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    "rule", sorted(RULES), ids=[f"{r}-gguf.cpp:{RULES[r]['line']}" for r in sorted(RULES)]
)
def test_refused_as_the_pinned_loader_does(
    rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(FILES[rule]())
    code = run(["verify-model", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    refusal = RULES[rule]["refusal"]
    if refusal == "exit-2":
        assert code == 2 and not out["ok"], out
        assert out["error"].count("\n") == 0
    else:
        assert code == 1, out
        assert refusal in {f["rule"] for f in out["findings"] if f["severity"] == "error"}, out


def test_the_pinned_loader_says_it_on_that_line(real_llama_build: Any) -> None:
    """The table's line numbers are the pinned gguf.cpp's (fetched by the real build)."""
    from llamabuild.source.cache import cache_root
    from tests.plugin_real_llama import SDIST_SHA256

    found = sorted(
        (cache_root() / "archives" / SDIST_SHA256[:16]).glob(
            f"*/vendor/llama.cpp/{TABLE['source']}"
        )
    )
    if not found:
        pytest.skip(
            "the pinned llama.cpp source is not in this cache (LLAMABUILD_TEST_LLAMA_SERVER)"
        )
    lines = found[0].read_text(encoding="utf-8").splitlines()
    wrong = {
        r: lines[v["line"] - 1].strip()
        for r, v in RULES.items()
        if v["says"] not in lines[v["line"] - 1]
    }
    assert not wrong, wrong


def _many_strings(path: Path) -> None:
    """100 metadata strings of 1 MiB each, their bytes left sparse (a 100 MB file on paper)."""
    with path.open("wb") as fh:
        fh.write(gguf(n_kv_extra=100))
        for i in range(100):
            fh.write(kv(f"x.s{i}", STRING, struct.pack("<Q", 1 << 20)))
            fh.seek(1 << 20, 1)
        fh.write(b"\0")


def _many_arrays(path: Path) -> None:
    arr = struct.pack("<IQ", 4, 65536) + b"\0" * (4 * 65536)
    path.write_bytes(gguf([kv(f"x.a{i}", ARRAY, arr) for i in range(400)]))


def _many_tensors(path: Path) -> None:
    path.write_bytes(gguf(tensors=[tensor(f"t{i}", (8,), F32, 32 * i) for i in range(70_000)]))


@pytest.mark.parametrize(
    "make", [_many_strings, _many_arrays, _many_tensors], ids=["strings", "arrays", "tensors"]
)
def test_hostile_metadata_is_bounded_in_time_and_memory(tmp_path: Path, make: Any) -> None:
    """300 x 1 MiB strings took 639 MB, 400 x 65,536-item arrays 1.15 GB, 2^20 tensors 545 MB
    and 8.8 s: kept values are capped in total, walked pages dropped, tensors bounded."""
    import time

    from tests.test_verify_hostile import child

    path = tmp_path / "model.gguf"
    make(path)
    start = time.monotonic()
    code, _out, err, peak_mb = child("verify-model", str(path), "--json")
    assert code in (0, 1, 2) and "Traceback" not in err
    assert time.monotonic() - start < 10
    assert peak_mb < 64, peak_mb
