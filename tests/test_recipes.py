"""Recipes are data: loading, inheritance, overrides and typo refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamabuild.config import recipes
from llamabuild.config.recipes import ProjectConfig
from llamabuild.core.errors import ConfigError
from llamabuild.core.resources import shipped_dir
from tests.test_schemas import assert_file_valid

SHIPPED = shipped_dir("recipes")

BUNDLED = ["macos-arm64-metal", "macos-x86_64-metal", "macos-universal", "macos-arm64-cpu-cross"]


def test_bundled_recipes_load() -> None:
    names = set(recipes.available([SHIPPED]))
    assert {*BUNDLED, "linux-x86_64-static"} <= names
    for name in names:
        r = recipes.load_recipe(name, [SHIPPED])
        assert r.target == "llama-server"
        assert r.cache_dict["BUILD_SHARED_LIBS"] is False


@pytest.mark.parametrize("name", BUNDLED)
def test_macos_recipes_are_self_contained(name: str) -> None:
    r = recipes.load_recipe(name, [SHIPPED])
    c = r.cache_dict
    assert r.is_macos and r.min_macos == "14.0"
    assert c["CMAKE_BUILD_TYPE"] == "RelWithDebInfo"
    for off in ("GGML_OPENMP", "LLAMA_OPENSSL", "LLAMA_BUILD_UI", "LLAMA_USE_PREBUILT_UI"):
        assert c[off] is False, off
    assert "GGML_STATIC" not in c  # links with -static: Apple's linker rejects it
    assert c["CMAKE_OSX_ARCHITECTURES"] == ";".join(r.archs)
    assert c["CMAKE_OSX_DEPLOYMENT_TARGET"] == "14.0"


def test_inheritance_and_slices() -> None:
    x86 = recipes.load_recipe("macos-x86_64-metal", [SHIPPED])
    assert x86.archs == ("x86_64",) and x86.cache_dict["GGML_METAL"] is True
    uni = recipes.load_recipe("macos-universal", [SHIPPED])
    assert uni.slices == ("macos-arm64-metal", "macos-x86_64-metal")
    cross = recipes.load_recipe("macos-arm64-cpu-cross", [SHIPPED])
    assert cross.toolchain == "zig" and not cross.slices
    assert cross.cache_dict["GGML_METAL"] is False and cross.cache_dict["GGML_ACCELERATE"] is False


def test_unknown_recipe_key_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('platform = "linux"\narchs = ["x86_64"]\ntargte = "x"\n')
    with pytest.raises(ConfigError, match="did you mean 'target'"):
        recipes.load_recipe("bad", [tmp_path])


def test_unknown_recipe_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'macos-arm64-metal'"):
        recipes.load_recipe("macos-arm64-metl", [SHIPPED])


def test_project_file_unknown_key(tmp_path: Path) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text('recipe = "macos-arm64-metal"\n[recipies.x]\n')
    with pytest.raises(ConfigError, match="did you mean 'recipes'"):
        recipes.load_project(cfg)
    cfg.write_text("[recipes.macos-arm64-metal]\nmin_macso = '15.0'\n")
    with pytest.raises(ConfigError, match="did you mean 'min_macos'"):
        recipes.load_project(cfg)


def test_precedence_recipe_project_cache_define(tmp_path: Path) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text(
        "[recipes.macos-arm64-metal]\n"
        "min_macos = '15.0'\n"
        "[recipes.macos-arm64-metal.cache]\n"
        "GGML_RPC = true\nGGML_NATIVE = true\n"
        "[cache]\nGGML_NATIVE = false\nLLAMA_BUILD_TOOLS = true\n"
    )
    assert_file_valid("llamabuild.toml", cfg)
    project = recipes.load_project(cfg)
    defines = recipes.parse_defines(["LLAMA_BUILD_TOOLS=OFF", "GGML_SCHED_MAX_COPIES:STRING=2"])
    r = recipes.resolve("macos-arm64-metal", project, defines, [SHIPPED])
    c = r.cache_dict
    assert c["GGML_RPC"] is True  # [recipes.<name>.cache] over the recipe
    assert c["GGML_NATIVE"] is False  # [cache] over [recipes.<name>]
    assert c["LLAMA_BUILD_TOOLS"] is False  # -D over everything
    assert c["GGML_SCHED_MAX_COPIES"] == "2"
    assert r.min_macos == "15.0" and c["CMAKE_OSX_DEPLOYMENT_TARGET"] == "15.0"


def test_parse_defines() -> None:
    assert recipes.parse_defines(["A=ON", "B=off", "C=x y"]) == {"A": True, "B": False, "C": "x y"}
    for bad in ("NOVALUE", "=1", "A B=1"):
        with pytest.raises(ConfigError, match="bad -D"):
            recipes.parse_defines([bad])


def test_default_recipe_and_empty_project() -> None:
    assert recipes.default_recipe_name() in ("macos-arm64-metal", "linux-x86_64-static")
    assert recipes.load_project(None) == ProjectConfig() or Path("llamabuild.toml").exists()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("min_macos = 15.0", "min_macos` must be a version string"),
        ('archs = "arm64"', "archs` must be a list of names"),
        ('elf_policy = "nope"', "elf_policy` must be one of static, glibc"),
        ("target = 3", "target` must be a non-empty string"),
        ("cache = 1", "cache` must be a table"),
    ],
)
def test_override_values_checked_like_recipe_files(
    tmp_path: Path, line: str, expected: str
) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text(f"[recipes.macos-arm64-metal]\n{line}\n")
    with pytest.raises(ConfigError, match=expected):
        recipes.load_project(cfg)
    # The same value in a recipe file is refused by the same check.
    (tmp_path / "r.toml").write_text(f'platform = "macos"\narchs = ["arm64"]\n{line}\n')
    if "archs" not in line:
        with pytest.raises(ConfigError, match=expected):
            recipes.load_recipe("r", [tmp_path])


def test_override_archs_and_min_macos_reach_the_cache(tmp_path: Path) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text("[recipes.macos-universal]\narchs = ['arm64']\nmin_macos = '15.2'\n")
    assert_file_valid("llamabuild.toml", cfg)
    r = recipes.resolve("macos-universal", recipes.load_project(cfg), {}, [SHIPPED])
    assert r.archs == ("arm64",) and r.min_macos == "15.2"
    assert r.cache_dict["CMAKE_OSX_ARCHITECTURES"] == "arm64"
    assert r.cache_dict["CMAKE_OSX_DEPLOYMENT_TARGET"] == "15.2"


@pytest.mark.parametrize("text", ["cache = 5\n", "recipes = 1\n", "recipe = 3\n", "sign = 'x'\n"])
def test_top_level_wrong_type_is_config_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text(text)
    key = text.split()[0]
    with pytest.raises(ConfigError, match=f"`{key}` must be a"):
        recipes.load_project(cfg)


def test_override_for_unknown_recipe_name(tmp_path: Path) -> None:
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text("[recipes.macos-arm64-metl]\nmin_macos = '15.0'\n")
    project = recipes.load_project(cfg)
    with pytest.raises(ConfigError, match="did you mean 'macos-arm64-metal'"):
        recipes.resolve("macos-arm64-metal", project, {}, [SHIPPED])


@pytest.mark.parametrize("define", ["GGML_RPC=ON;FOO=1", "GGML_RPC=OFF;x", "X=a;B:BOOL=ON"])
def test_semicolon_smuggling_refused(define: str) -> None:
    with pytest.raises(ConfigError, match="list"):
        recipes.parse_defines([define])


def test_real_lists_and_cache_tables_with_semicolons(tmp_path: Path) -> None:
    ok = recipes.parse_defines(["CMAKE_OSX_ARCHITECTURES=arm64;x86_64", "D=a=b"])
    assert ok == {"CMAKE_OSX_ARCHITECTURES": "arm64;x86_64", "D": "a=b"}
    cfg = tmp_path / "llamabuild.toml"
    cfg.write_text('[cache]\nGGML_RPC = "ON;GGML_NATIVE=ON"\n')
    with pytest.raises(ConfigError, match="list"):
        recipes.load_project(cfg)


def test_numbers_in_cache_tables_are_text_and_extends_chains_merge(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        'platform = "macos"\narchs = ["arm64"]\nslices = ["x"]\n[cache]\nA = 1\nB = true\n'
    )
    (tmp_path / "child.toml").write_text('extends = "base"\n[cache]\nB = false\nC = "c"\n')
    r = recipes.load_recipe("child", [tmp_path])
    assert r.cache_dict["A"] == "1" and r.cache_dict["B"] is False and r.cache_dict["C"] == "c"
    assert r.slices == () and r.platform is recipes.Platform.MACOS  # slices never inherited
    assert r.to_json()["platform"] == "macos" and r.to_json()["cache"]["A"] == "1"


def test_recipe_without_platform_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text('archs = ["arm64"]\n')
    with pytest.raises(ConfigError, match="`platform` is missing") as e:
        recipes.load_recipe("r", [tmp_path])
    assert e.value.hint is not None and "r.toml" in e.value.hint
