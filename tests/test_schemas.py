"""The shipped JSON Schemas are a fresh generation from the dataclasses, and every file the
project ships or the test suite writes validates against its schema."""

from __future__ import annotations

import functools
import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llamabuild import schema
from llamabuild.builder.manifest import Manifest
from llamabuild.config.domain import ProjectFile, RecipeFile
from llamabuild.config.settings import from_mapping
from llamabuild.core.errors import ConfigError
from llamabuild.core.resources import schema_dir, shipped_dir
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


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The shipped schema `name` (llamabuild/schemas/<name>), read once per test session."""
    return jsonschema.Draft202012Validator(json.loads((schema_dir() / name).read_text()))


def _keys_fit(name: str, data: Any) -> bool:
    """A cheap first look (the full check of a 40,000-finding object takes seconds): could the
    top-level keys of `data` follow schema `name` (every required key there, no unknown one)?"""
    spec = validator(name).schema
    roots = (
        [spec["$defs"][r["$ref"].rsplit("/", 1)[1]] for r in spec["anyOf"]]
        if "anyOf" in spec
        else [spec]
    )
    keys = set(data) if isinstance(data, dict) else set()
    return any(
        set(root.get("required", ())) <= keys
        and (root.get("additionalProperties", True) is not False or keys <= set(root["properties"]))
        for root in roots
    )


def command_json_errors(data: Any, command: str | None = None) -> tuple[str | None, str]:
    """Which schema a command's `--json` object follows: (schema file name, "") when it follows
    the schema of `command` (any command's, when None) or the error object's, else
    (None, why not)."""
    names = (
        [schema.command_schema_name(command)]
        if command is not None
        else [schema.command_schema_name(c) for c in schema.COMMAND_MODELS]
    )
    names.append(schema.ERROR_SCHEMA)
    for name in names:
        if (command is not None or _keys_fit(name, data)) and validator(name).is_valid(data):
            return name, ""
    first = validator(names[0])
    best = jsonschema.exceptions.best_match(first.iter_errors(data))
    where = "/".join(str(p) for p in best.absolute_path) if best is not None else ""
    why = f"{best.message} at /{where}" if best is not None else "no schema matched"
    wanted = names[0] if command is not None else "any command-*.schema.json"
    return None, f"not valid against {wanted}: {why}"


# Schema file name -> how many `--json` objects this test session validated against it.
VALIDATED: Counter[str] = Counter()


def assert_command_json(data: Any, command: str | None = None) -> str:
    """`data` (a parsed `--json` object) follows the schema of `command` or the error object's;
    the schema file name it matched."""
    name, why = command_json_errors(data, command)
    assert name is not None, why
    VALIDATED[name] += 1
    return name


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


# --- the `--json` output of every command ---------------------------------------------------


def test_every_command_has_an_output_schema() -> None:
    import re

    cli = Path(schema.__file__).parent / "cli"
    names = {
        m.group(1)
        for path in cli.glob("*.py")
        for m in re.finditer(r'@app\.command\(\s*"([^"]+)"', path.read_text(encoding="utf-8"))
    }
    assert names == set(schema.COMMAND_MODELS)
    for name in names:
        assert (schema_dir() / schema.command_schema_name(name)).is_file()


ERROR = {"ok": False, "error": "x: no such file", "hint": None, "exit_code": 2}


@pytest.mark.parametrize(
    ("data", "command"),
    [
        ({"ok": True}, None),
        ({"ok": True}, "verify"),
        ({**ERROR, "extra": 1}, None),
        ({**ERROR, "ok": True}, None),
        (["not", "an", "object"], None),
    ],
)
def test_an_object_of_another_shape_follows_no_schema(data: Any, command: str | None) -> None:
    name, why = command_json_errors(data, command)
    assert name is None and why


def test_the_error_object_follows_the_error_schema_whatever_the_command() -> None:
    assert command_json_errors(ERROR) == (schema.ERROR_SCHEMA, "")
    assert command_json_errors(ERROR, "build") == (schema.ERROR_SCHEMA, "")


def test_a_key_present_only_sometimes_is_optional_and_never_null() -> None:
    from llamabuild.core.findings import Finding, Severity
    from llamabuild.core.jsonout import to_jsonable

    spec = validator("command-verify.schema.json").schema["$defs"]
    finding = spec["Finding"]
    assert finding["required"] == ["rule", "severity", "message", "arch"]
    assert finding["properties"]["hint"] == {"type": "string"}
    assert to_jsonable(Finding("r", Severity.INFO, "m", None)) == {
        "rule": "r",
        "severity": "info",
        "message": "m",
        "arch": None,
    }
    slice_spec = spec["Slice"]
    assert {"imports", "symbols", "signature", "interpreter"}.isdisjoint(slice_spec["required"])


def test_doctor_and_smoke_output_follows_their_schemas() -> None:
    """What doctor and smoke print (their models) follows their schemas; smoke succeeds only
    against a real llama-server, so this is the fast suite's check of its shape."""
    from llamabuild.builder.doctor import DoctorReport, ToolStatus
    from llamabuild.builder.smoke import HostInfo, SmokeReport
    from llamabuild.core.findings import error
    from llamabuild.core.jsonout import to_jsonable

    tools = {
        "cmake": ToolStatus("cmake", "cmake", True, "/b/cmake", "4.1", None, "configuring", ""),
        "cc": ToolStatus("cc", "C compiler", False, None, None, None, "native builds", "apt"),
        "zig": ToolStatus("zig", "zig", False, None, None, "d", "cross builds", "pip"),
    }
    gap = error("tool-missing", "C compiler not found", hint="x")
    doctor = DoctorReport(
        "r", HostInfo("Linux", "x86_64"), ("cc",), ("cmake",), tools, {"r": False}, [gap]
    )
    smoke = SmokeReport(
        Path("/b/llama-server"),
        Path("/m.gguf"),
        True,
        8080,
        timings={"start_s": 0.123456},
        models=["tiny"],
        finish_reason="length",
        completion_tokens=4,
        stopped_by="SIGTERM",
        server_exit_code=0,
    )
    for model, command in ((doctor, "doctor"), (smoke, "smoke")):
        data = json.loads(json.dumps(to_jsonable(model)))
        assert assert_command_json(data, command) == schema.command_schema_name(command)
    assert to_jsonable(doctor)["tools"][2]["role"] == "not needed"
    assert to_jsonable(smoke)["timings"] == {"start_s": 0.1235}
