"""verify-model against the real pinned tree: llama.cpp 0c1e570 from the llama-cpp-python 0.3.36
sdist (vendor/llama.cpp). Reading its sources needs no build; the manifest test uses the
session's real build (tests/plugin_real_llama.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.model.capabilities import PinCapabilities, read_capabilities
from tests.fixtures.gguf_models import write_manifest, write_model
from tests.plugin_real_llama import SDIST_SHA256, SDIST_URL, RealBuild

pytestmark = [pytest.mark.real_llama, pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def pinned_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist's vendor/llama.cpp, extracted in the llamabuild cache (fetched once)."""
    from llamabuild.source import SourceRequest, resolve_source
    from llamabuild.tools.runner import Runner

    lock = tmp_path_factory.mktemp("lock") / "llamabuild.lock"
    req = SourceRequest(location=SDIST_URL, sha256=SDIST_SHA256, lock_path=lock, write_lock=False)
    return resolve_source(req, Runner()).root


@pytest.fixture(scope="module")
def caps(pinned_tree: Path) -> PinCapabilities:
    found = read_capabilities(pinned_tree)
    assert found is not None
    return found


def test_pinned_tree_capabilities(caps: PinCapabilities) -> None:
    assert {"llama", "qwen3", "qwen2", "gemma3"} <= set(caps.architectures)
    assert len(caps.architectures) > 100
    assert {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8, "bf16": 30}.items() <= (
        caps.tensor_types.items()
    )
    assert "q4_2" not in caps.tensor_types  # removed from ggml, commented out in the enum
    assert caps.gguf_versions == (2, 3)


def test_invented_architecture_refused_by_the_pin(
    capsys: pytest.CaptureFixture[str], caps: PinCapabilities, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "manifest.json", caps)
    qwen3 = write_model(tmp_path / "qwen3.gguf", arch="qwen3")
    assert run(["verify-model", str(qwen3), "--manifest", str(manifest), "--json"]) == 0
    capsys.readouterr()
    invented = write_model(tmp_path / "invented.gguf", arch="llamabuild-test-arch")
    code = run(["verify-model", str(invented), "--manifest", str(manifest), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [f["rule"] for f in rep["findings"]] == ["model-arch-unsupported"]
    assert "'llamabuild-test-arch'" in rep["findings"][0]["message"]


def test_build_manifest_records_capabilities(real_llama_build: RealBuild) -> None:
    recorded = real_llama_build.manifest["capabilities"]
    assert {"llama", "qwen3"} <= set(recorded["architectures"])
    assert recorded["tensor_types"]["q4_0"] == 2 and recorded["gguf_versions"] == [2, 3]
