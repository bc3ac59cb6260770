"""JSON Schemas for llamabuild.toml, recipes, llamabuild.lock and manifest.json, generated from
the dataclasses the settings loader reads them into, and for every command's `--json` output
(command-<name>.schema.json, error.schema.json), generated from the result classes that print
it (each wing owns its own; COMMAND_MODELS below lists them): one generator, one source of
truth. Field metadata (core/jsonout.py: INTERNAL, OMIT_NONE, ALWAYS, json_view, derived,
FLATTEN) shapes the schema exactly as it shapes the JSON.

`python -m llamabuild.schema` rewrites llamabuild/schemas/*.json; `--check` exits 1 when the
shipped files differ from a fresh generation (tests/test_schemas.py does the same).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from llamabuild.appstore.privacy import PrivacyManifestReport
from llamabuild.appstore.verify_app import AppReport
from llamabuild.builder.buildplan import BuildPlan
from llamabuild.builder.doctor import DoctorReport
from llamabuild.builder.manifest import Manifest
from llamabuild.builder.rebuild import RebuildReport
from llamabuild.builder.release import ReleaseSummary
from llamabuild.builder.run import BuildReport
from llamabuild.builder.smoke import SmokeReport
from llamabuild.config.domain import ProjectFile, RecipeFile
from llamabuild.config.settings import Doc, NumbersAsText, Pattern, Range, hints_of
from llamabuild.core.files import write_atomic
from llamabuild.core.jsonout import to_jsonable
from llamabuild.core.report import ErrorReport
from llamabuild.core.resources import schema_dir
from llamabuild.inspect.dsym import DsymReport
from llamabuild.inspect.verify_binary import VerifyReport
from llamabuild.model.verify_model import ModelReport
from llamabuild.signing.entitlements import EntitlementsReport
from llamabuild.signing.notarize import NotarizeReport
from llamabuild.signing.sign import SignReport
from llamabuild.signing.xcode_phase import PhaseReport
from llamabuild.source import SourceReport
from llamabuild.source.lock import LockFile

SCHEMA_DIR = schema_dir()
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Command name (as typed after `llamabuild`) -> the model(s) of its `--json` output.
COMMAND_MODELS: dict[str, Any] = {
    "build": BuildReport | BuildPlan,
    "doctor": DoctorReport,
    "dsym": DsymReport,
    "entitlements": EntitlementsReport,
    "notarize": NotarizeReport,
    "privacy-manifest": PrivacyManifestReport,
    "rebuild": RebuildReport,
    "release-summary": ReleaseSummary,
    "sign": SignReport,
    "smoke": SmokeReport,
    "source": SourceReport,
    "verify": VerifyReport,
    "verify-app": AppReport,
    "verify-model": ModelReport,
    "xcode-phase": PhaseReport,
}


def command_schema_name(command: str) -> str:
    return f"command-{command}.schema.json"


ERROR_SCHEMA = "error.schema.json"

# File name -> (a dataclass, or a union of them, and the title).
MODELS: dict[str, tuple[Any, str]] = {
    "llamabuild.toml.schema.json": (ProjectFile, "llamabuild.toml"),
    "recipe.schema.json": (RecipeFile, "recipes/<name>.toml"),
    "lock.schema.json": (LockFile, "llamabuild.lock"),
    "manifest.schema.json": (Manifest, "dist/<recipe>/manifest.json"),
    **{
        command_schema_name(name): (model, f"llamabuild {name} --json")
        for name, model in COMMAND_MODELS.items()
    },
    ERROR_SCHEMA: (ErrorReport, "llamabuild <command> --json, on an error"),
}


def _doc(cls: type) -> str | None:
    doc = cls.__doc__ or ""
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None  # the dataclass-generated signature, not a description
    return " ".join(doc.split())


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self.classes: dict[str, type] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        origin = get_origin(tp)
        if origin is Annotated:
            base, *extras = get_args(tp)
            out = self.of(base)
            for extra in extras:
                if isinstance(extra, Pattern):
                    out["pattern"] = f"^(?:{extra.regex})$"
                elif isinstance(extra, Range):
                    out["minimum"], out["maximum"] = extra.minimum, extra.maximum
                elif isinstance(extra, Doc):
                    out["description"] = extra.text
                elif isinstance(extra, NumbersAsText):
                    out = {"anyOf": [out, {"type": "number"}], **_pop_doc(out)}
            return out
        if tp is Any:
            return {}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            seen = self.classes.setdefault(tp.__name__, tp)
            if seen is not tp:
                raise TypeError(f"schema: two classes named {tp.__name__}: {seen!r}, {tp!r}")
            if tp.__name__ not in self.defs:
                self.defs[tp.__name__] = {}  # recursion guard
                self.defs[tp.__name__] = self.object(tp)
            return {"$ref": f"#/$defs/{tp.__name__}"}
        if origin in (Union, types.UnionType):
            return {"anyOf": [self.of(a) for a in get_args(tp)]}
        if tp is type(None):
            return {"type": "null"}
        if origin is Literal:
            values = list(get_args(tp))
            return {"const": values[0]} if len(values) == 1 else {"enum": values}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [m.value for m in tp]}
        if origin in (tuple, list):
            return {"type": "array", "items": self.of(get_args(tp)[0])}
        if isinstance(tp, type) and issubclass(tp, PurePath):
            return {"type": "string"}
        if origin in (dict, Mapping):
            key, value = get_args(tp)
            out = {"type": "object", "additionalProperties": self.of(value)}
            if isinstance(key, type) and issubclass(key, enum.Enum):
                out["propertyNames"] = self.of(key)
            return out
        simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if tp in simple:
            return {"type": simple[tp]}
        raise TypeError(f"schema: unsupported type {tp!r}")

    def object(self, cls: type) -> dict[str, Any]:
        hints = hints_of(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            if not f.metadata.get("json", True):  # INTERNAL: never in the JSON
                continue
            if f.metadata.get("flatten"):  # FLATTEN: the value's own keys, in place
                inner = self.object(hints[f.name])
                for key, prop in inner["properties"].items():
                    # written every time: a key with a default is required here
                    if prop.pop("default", None) is not None or key in inner.get("required", ()):
                        required.append(key)
                    props[key] = prop
                continue
            hint = f.metadata.get("json_type", hints[f.name])  # a json_view's own type
            if f.metadata.get("omit_none"):  # absent while None, never null
                hint = _without_none(hint)
            prop = self.of(hint)
            view_always = "view" in f.metadata and not f.metadata.get("omit_none")
            if f.metadata.get("json_required") or view_always:
                required.append(f.name)  # always written, whatever the constructor's default
            elif "view" in f.metadata:
                pass  # derived from other fields: the constructor's default says nothing
            elif f.default is not dataclasses.MISSING:
                if f.default is not None:
                    prop["default"] = to_jsonable(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                prop["default"] = to_jsonable(f.default_factory())
            else:
                required.append(f.name)
            props[f.name] = prop
        out: dict[str, Any] = {"type": "object"}
        doc = _doc(cls)
        if doc:
            out["description"] = doc
        out["properties"] = props
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        return out


def _without_none(tp: Any) -> Any:
    if get_origin(tp) not in (Union, types.UnionType):
        return tp
    rest = tuple(a for a in get_args(tp) if a is not type(None))
    return rest[0] if len(rest) == 1 else Union[rest]  # noqa: UP007


def _pop_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": schema.pop("description")} if "description" in schema else {}


def json_schema(cls: Any, title: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the dataclass `cls` (or a union of dataclasses: any one of
    them), nested dataclasses under $defs."""
    builder = _Builder()
    root = builder.object(cls) if isinstance(cls, type) else builder.of(cls)
    out: dict[str, Any] = {"$schema": DIALECT, "title": title, **root}
    if builder.defs:
        out["$defs"] = dict(sorted(builder.defs.items()))
    return out


def generate() -> dict[str, str]:
    """File name -> text of every shipped schema."""
    return {
        name: json.dumps(json_schema(cls, title), indent=2) + "\n"
        for name, (cls, title) in MODELS.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    fresh = generate()
    if "--check" in args:
        stale = [n for n, t in fresh.items() if _read(SCHEMA_DIR / n) != t]
        for name in stale:
            print(f"{SCHEMA_DIR / name} is out of date; run python -m llamabuild.schema")
        return 1 if stale else 0
    for name, text in fresh.items():
        write_atomic(SCHEMA_DIR / name, text.encode("utf-8"))
        print(SCHEMA_DIR / name)
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
