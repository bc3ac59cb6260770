"""One llamabuild.toml serves build, entitlements and sign; unknown keys are refused by all."""

from __future__ import annotations

import json
import plistlib
import shutil
from pathlib import Path

import pytest

from llamabuild.cli import run
from tests.test_build import PROJECT, RECIPE
from tests.test_schemas import assert_file_valid

CONFIG = """
recipe = "test-native"

[recipes.test-native]
min_macos = "14.0"

[cache]
GGML_RPC = true

[entitlements]
preset = "standalone-server"
"com.apple.security.files.downloads.read-only" = true

[sign]
identifier = "com.example.app.llama-server"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "My Project"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    shutil.copytree(PROJECT, proj / "llama src")
    (proj / "llamabuild.toml").write_text(CONFIG)
    monkeypatch.chdir(proj)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    assert_file_valid("llamabuild.toml", proj / "llamabuild.toml")
    assert_file_valid("recipe", proj / "recipes" / "test-native.toml")
    return proj


def test_build_reads_its_sections_and_accepts_the_others(project, capsys):
    code = run(["build", "--source", "llama src", "--dry-run", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["recipe"]["name"] == "test-native"
    assert out["slices"][0]["cache_entries"]["GGML_RPC"] == "ON"


def test_entitlements_read_the_same_file(project, capsys):
    assert run(["entitlements", "-o", "out.plist"]) == 0
    data = plistlib.loads((project / "out.plist").read_bytes())
    assert data["com.apple.security.network.server"] is True
    assert data["com.apple.security.files.downloads.read-only"] is True


@pytest.mark.parametrize("command", [["build", "--dry-run"], ["entitlements"]])
def test_unknown_top_level_key_refused_everywhere(project, capfd, command):
    (project / "llamabuild.toml").write_text('recipies = "x"\n' + CONFIG)
    assert run([*command, "--json"]) == 2
    captured = capfd.readouterr()
    assert "unknown key 'recipies' (did you mean 'recipes'?)" in captured.err
    assert json.loads(captured.out)["exit_code"] == 2


@pytest.mark.parametrize("bad", ["cache = 5", "recipes = 1"])
@pytest.mark.parametrize("command", [["build", "--dry-run"], ["entitlements"]])
def test_top_level_wrong_type_is_exit_2(project, capfd, command, bad):
    (project / "llamabuild.toml").write_text(f"{bad}\n")
    assert run([*command, "--json"]) == 2
    captured = capfd.readouterr()
    assert f"`{bad.split()[0]}` must be a table" in captured.err
    assert "Traceback" not in captured.err
    assert json.loads(captured.out)["exit_code"] == 2


def test_override_for_a_misspelt_recipe_is_exit_2(project, capfd):
    (project / "llamabuild.toml").write_text(
        CONFIG.replace("[recipes.test-native]", "[recipes.test-natve]")
    )
    assert run(["build", "--dry-run", "--json"]) == 2
    assert "did you mean 'test-native'" in json.loads(capfd.readouterr().out)["error"]
