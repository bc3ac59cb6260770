"""The shipped JSON Schemas are a fresh generation from the dataclasses, and every file the
project ships or the test suite writes validates against its schema."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llamabuild import schema
from llamabuild.builder.manifest import Manifest
from llamabuild.domain import ProjectFile, RecipeFile
from llamabuild.errors import ConfigError
from llamabuild.resources import schema_dir, shipped_dir
from llamabuild.settings import from_mapping
from llamabuild.source.lock import LockFile

KINDS = {
    "llamabuild.toml": ("llamabuild.toml.schema.json", ProjectFile),
    "recipe": ("recipe.schema.json", RecipeFile),
    "lock": ("lock.schema.json", LockFile),
    "manifest": ("manifest.schema.json", Manifest),
}


def assert_valid(kind: str, data: Any) -> None:
    """`data` passes both the shipped JSON Schema of `kind` and the settings loader."""
    name, cls = KINDS[kind]
    spec = json.loads((schema_dir() / name).read_text())
    jsonschema.Draft202012Validator(spec).validate(data)
    from_mapping(cls, data, kind)


def assert_file_valid(kind: str, path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert_valid(kind, json.loads(text) if path.suffix == ".json" else tomllib.loads(text))


def test_shipped_schemas_are_a_fresh_generation() -> None:
    fresh = schema.generate()
    assert sorted(fresh) == sorted(p.name for p in schema_dir().glob("*.json"))
    for name, text in fresh.items():
        shipped = (schema_dir() / name).read_text()
        assert shipped == text, f"{name} is stale: run python -m llamabuild.schema"
    assert schema.main(["--check"]) == 0


def test_schemas_are_valid_json_schema() -> None:
    for path in schema_dir().glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize("path", sorted(shipped_dir("recipes").glob("*.toml")), ids=str)
def test_every_shipped_recipe_validates(path: Path) -> None:
    assert_file_valid("recipe", path)


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("recipe", {"targte": "x"}, "did you mean 'target'"),
        ("recipe", {"platform": "windows"}, "one of macos, linux"),
        ("recipe", {"min_macos": "fourteen"}, "version string"),
        ("recipe", {"archs": ["arm 64"]}, "list of names"),
        ("llamabuild.toml", {"recipes": {"x": {"platform": "linux"}}}, "unknown key"),
        ("llamabuild.toml", {"sign": {"identifer": "x"}}, "did you mean 'identifier'"),
        ("lock", {"source": {"kind": "svn", "url": "x"}}, "one of git, dir, archive"),
        ("lock", {"source": {"kind": "git"}}, "`source.url` is missing"),
    ],
)
def test_loader_and_schema_refuse_the_same(kind: str, data: Any, message: str) -> None:
    name, cls = KINDS[kind]
    spec = json.loads((schema_dir() / name).read_text())
    assert not jsonschema.Draft202012Validator(spec).is_valid(data)
    with pytest.raises(ConfigError, match=message):
        from_mapping(cls, data, kind)


def test_errors_name_the_file_and_dotted_key() -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(ProjectFile, {"recipes": {"a": {"cache": {"X": [1]}}}}, "p/llamabuild.toml")
    assert info.value.message.startswith("p/llamabuild.toml: `recipes.a.cache.X` must be")
    assert info.value.hint is not None and "p/llamabuild.toml" in info.value.hint
    with pytest.raises(ConfigError, match=r'`entitlements\."com\.apple\.x"`: a date'):
        import datetime

        from_mapping(ProjectFile, {"entitlements": {"com.apple.x": datetime.date.today()}}, "p")
