"""One dataclass -> JSON conversion for every command's `--json` and for manifest.json.

`to_jsonable` turns dataclasses (field order kept), enums (their value), paths (str), tuples,
lists, sets and mappings into plain JSON values. A result class is its own `--json` model;
field metadata says where its JSON differs from its fields:
- OMIT_NONE: the key is left out while the value is None (optional entries keep a short shape);
- INTERNAL: the field is for the code only, never in the JSON;
- `json_view(fn, json_type)`: the JSON holds `fn(obj)` (typed `json_type` in the schema);
- ALWAYS: in the schema's `required` although the constructor has a default;
- `derived(fn)`: a field computed from the others on every read (a property), never stored,
  shown in the JSON at its place (a result's `ok`, say).
llamabuild/schema.py reads the same metadata, so JSON and schema cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import PurePath
from typing import Any, Literal, TypeVar, cast, dataclass_transform, overload

T = TypeVar("T")

OMIT_NONE = {"omit_none": True}
"""Field metadata: leave the key out of the JSON while the value is None."""
INTERNAL = {"json": False}
"""Field metadata: a field the code uses that the JSON never shows."""
FLATTEN = {"flatten": True}
"""Field metadata: the value's own JSON keys appear in place of the field (a command result
that is a tree or a report plus a few keys of its own)."""
ALWAYS = {"json_required": True}
"""Field metadata: always in the JSON (required in the schema) though it has a default."""


Plain = Any


def plain(value: Any) -> Any:
    """A plist value as plain JSON data (bytes and dates become their str())."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def json_view(
    fn: Callable[[Any], Any], json_type: Any, *, omit_none: bool = False
) -> dict[str, Any]:
    """Field metadata: the JSON holds `fn(obj)` (the whole object, so a view can read its other
    fields), of type `json_type` in the schema; with `omit_none`, left out when that is None."""
    return {"view": fn, "json_type": json_type, "omit_none": omit_none}


def derived(fn: Callable[[Any], T], *, init: Literal[False] = False) -> T:
    """A field that is a property: `fn(self)` on every read, not an __init__ argument, in the
    JSON (and required in the schema) at its place among the fields. Classes using it are
    declared with `@model` so type checkers know it is no __init__ argument."""
    del init  # always False; the parameter tells type checkers (PEP 681)
    prop = property(fn)
    return cast(T, field(init=False, default=prop, repr=False, compare=False, metadata=ALWAYS))


@overload
def model(cls: type[T], /) -> type[T]: ...
@overload
def model(*, frozen: bool = ...) -> Callable[[type[T]], type[T]]: ...
@dataclass_transform(field_specifiers=(field, derived))
def model(cls: Any = None, /, *, frozen: bool = False) -> Any:
    """@dataclass for a result that is its own `--json` model with `derived` fields."""
    if cls is None:
        return lambda c: dataclasses.dataclass(c, frozen=frozen)
    return dataclasses.dataclass(cls, frozen=frozen)


_Plan = tuple[tuple[str, bool, Callable[[Any], Any] | None, bool], ...]
_PLANS: dict[type, _Plan] = {}


def _plan(cls: type) -> _Plan:
    """(name, omit_none, view, flatten) of each JSON field, once per class: 40,000 findings
    convert in a fraction of a second instead of walking dataclasses.fields() each time."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = tuple(
            (
                f.name,
                bool(f.metadata.get("omit_none")),
                f.metadata.get("view"),
                bool(f.metadata.get("flatten")),
            )
            for f in dataclasses.fields(cls)
            if f.metadata.get("json", True)
        )
        _PLANS[cls] = plan
    return plan


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data (dict/list/str/int/float/bool/None) for `obj`."""
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, str):
        return obj
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for name, omit_none, view, flatten in _plan(type(obj)):
            value = view(obj) if view is not None else getattr(obj, name)
            if value is None and omit_none:
                continue
            if flatten:
                out.update(to_jsonable(value))
            else:
                out[name] = to_jsonable(value)
        return out
    if isinstance(obj, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted(to_jsonable(v) for v in obj)
    to_json = getattr(obj, "to_json", None)
    if callable(to_json):
        return to_jsonable(to_json())
    raise TypeError(f"{type(obj).__name__} is not JSON data")


def dumps(obj: Any, indent: int | None = 2) -> str:
    """`to_jsonable` then json.dumps (keys in field order), newline-terminated."""
    return json.dumps(to_jsonable(obj), indent=indent) + "\n"
