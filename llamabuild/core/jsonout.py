"""One dataclass -> JSON conversion for every command's `--json` and for manifest.json.

`to_jsonable` turns dataclasses (field order kept), enums (their value), paths (str), tuples,
lists, sets and mappings into plain JSON values. A field with `metadata={"omit_none": True}`
is left out while it is None, so optional manifest entries keep their short shape.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

OMIT_NONE = {"omit_none": True}
"""Field metadata: leave the key out of the JSON while the value is None."""


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
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = to_jsonable(value)
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
