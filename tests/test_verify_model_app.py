"""`verify-app` checks every .gguf in the bundle as `verify-model` does (real .app trees)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from llamabuild.model.capabilities import read_capabilities
from llamabuild.model.gguf_tiny import write_tiny_llama
from tests.fixtures.gguf_models import fake_tree, write_manifest, write_model
from tests.test_verify_app import (
    Parts,
    check,
    make_app,
    parts,  # noqa: F401 - test_verify_app's module fixture
)

pytestmark = pytest.mark.compile


@pytest.fixture
def app_parts(request: pytest.FixtureRequest) -> Parts:
    """test_verify_app's real helper binaries (built once per module)."""
    built: Parts = request.getfixturevalue("parts")
    return built


def model_rules(rep: dict[str, object]) -> set[str]:
    findings = rep["findings"]
    assert isinstance(findings, list)
    return {f["rule"] for f in findings if f["rule"].startswith(("gguf", "model", "tensor"))}


def test_good_bundled_model(
    capsys: pytest.CaptureFixture[str], app_parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, app_parts)
    write_tiny_llama(app / "Contents" / "Resources" / "Qwen3-0.6B-Q4_0.gguf")
    caps = read_capabilities(fake_tree(tmp_path / "llama.cpp"))
    manifest = write_manifest(tmp_path / "manifest.json", caps)
    code, rep = check(capsys, app, "--manifest", manifest)
    assert code == 0, rep["findings"]
    (model,) = rep["models"]
    assert model["architecture"] == "llama" and model["checked_against_pin"] is True
    assert model["path"].endswith("Contents/Resources/Qwen3-0.6B-Q4_0.gguf")


def test_bad_bundled_models(
    capsys: pytest.CaptureFixture[str], app_parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, app_parts)
    res = app / "Contents" / "Resources"
    write_model(res / "new-arch.gguf", arch="llamabuild-invented")
    truncated = write_tiny_llama(res / "truncated.gguf")
    truncated.write_bytes(truncated.read_bytes()[:200])
    os.mkfifo(res / "pipe.gguf")  # reported as a special file, never opened
    caps = read_capabilities(fake_tree(tmp_path / "llama.cpp"))
    manifest = write_manifest(tmp_path / "manifest.json", caps)
    code, rep = check(capsys, app, "--manifest", manifest)
    assert code == 1
    assert model_rules(rep) == {"model-arch-unsupported", "gguf-invalid"}
    assert "special-file-in-bundle" in {f["rule"] for f in rep["findings"]}
    assert [m["architecture"] for m in rep["models"]] == ["llamabuild-invented"]


def test_bundled_model_sha256_pin(
    capsys: pytest.CaptureFixture[str],
    app_parts: Parts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(tmp_path / "a", app_parts)
    model = write_tiny_llama(app / "Contents" / "Resources" / "tiny.gguf")
    good = hashlib.sha256(model.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llamabuild.toml").write_text(f'[models]\n"tiny.gguf" = "{good}"\n')
    code, rep = check(capsys, app)
    assert code == 0 and rep["models"][0]["sha256"] == good
    (tmp_path / "llamabuild.toml").write_text(f'[models]\n"tiny.gguf" = "{"2" * 64}"\n')
    code, rep = check(capsys, app)
    assert code == 1 and model_rules(rep) == {"model-sha256-mismatch"}
