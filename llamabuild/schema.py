"""JSON Schemas for llamabuild.toml, recipes, llamabuild.lock and manifest.json, generated from
the dataclasses the settings loader reads them into (one generator, one source of truth).

`python -m llamabuild.schema` rewrites llamabuild/schemas/*.json; `--check` exits 1 when the
shipped files differ from a fresh generation (tests/test_schemas.py does the same).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from llamabuild.builder.manifest import Manifest
from llamabuild.domain import ProjectFile, RecipeFile
from llamabuild.files import write_atomic
from llamabuild.jsonout import to_jsonable
from llamabuild.resources import schema_dir
from llamabuild.settings import Doc, NumbersAsText, Pattern, hints_of
from llamabuild.source.lock import LockFile

SCHEMA_DIR = schema_dir()
DIALECT = "https://json-schema.org/draft/2020-12/schema"

MODELS: dict[str, tuple[type, str]] = {
    "llamabuild.toml.schema.json": (ProjectFile, "llamabuild.toml"),
    "recipe.schema.json": (RecipeFile, "recipes/<name>.toml"),
    "lock.schema.json": (LockFile, "llamabuild.lock"),
    "manifest.schema.json": (Manifest, "dist/<recipe>/manifest.json"),
}


def _doc(cls: type) -> str | None:
    doc = cls.__doc__ or ""
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None  # the dataclass-generated signature, not a description
    return " ".join(doc.split())


class _Builder:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        origin = get_origin(tp)
        if origin is Annotated:
            base, *extras = get_args(tp)
            out = self.of(base)
            for extra in extras:
                if isinstance(extra, Pattern):
                    out["pattern"] = f"^(?:{extra.regex})$"
                elif isinstance(extra, Doc):
                    out["description"] = extra.text
                elif isinstance(extra, NumbersAsText):
                    out = {"anyOf": [out, {"type": "number"}], **_pop_doc(out)}
            return out
        if tp is Any:
            return {}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
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
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of(get_args(tp)[1])}
        simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if tp in simple:
            return {"type": simple[tp]}
        raise TypeError(f"schema: unsupported type {tp!r}")

    def object(self, cls: type) -> dict[str, Any]:
        hints = hints_of(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            prop = self.of(hints[f.name])
            if f.default is not dataclasses.MISSING:
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


def _pop_doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": schema.pop("description")} if "description" in schema else {}


def json_schema(cls: type, title: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the dataclass `cls`, nested dataclasses under $defs."""
    builder = _Builder()
    root = builder.object(cls)
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
