"""The one settings loader: a TOML/JSON mapping -> a frozen dataclass, by its type hints.

Every file llamabuild reads (llamabuild.toml, recipes, llamabuild.lock, manifest.json) is a
dataclass; `from_mapping` walks its type hints (nested dataclasses, tuples, dicts, Optional,
unions, StrEnum, Literal, Annotated markers), refuses unknown keys with "did you mean" and
names the file and the dotted key in every error. llamabuild/schema.py walks the same hints to
write the JSON Schemas, so the files and their schemas cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

from llamabuild.core.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Pattern:
    """Annotated marker: a string must fully match `regex` (described as `describe`)."""

    regex: str
    describe: str
    example: str = ""


@dataclass(frozen=True)
class NumbersAsText:
    """Annotated marker: a TOML number is taken as its text (CMake cache values: `2` -> "2")."""


@dataclass(frozen=True)
class Range:
    """Annotated marker: a number must lie in [minimum, maximum] (a manifest's epoch, a
    size: a hostile 10**30 is refused when read, not deep inside a build)."""

    minimum: int
    maximum: int


@dataclass(frozen=True)
class Check:
    """Annotated marker: a domain check run on the converted value: func(dotted_key, value,
    where) raises ConfigError."""

    func: Callable[[str, Any, str], None]


@dataclass(frozen=True)
class Doc:
    """Annotated marker: a description for the JSON Schema."""

    text: str


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """` (did you mean 'x'?)` or an empty string: the one suggestion helper of the package."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file", hint="check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint=f"fix the syntax of {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}", hint=f"check {path}") from exc


def load_file(cls: type[T], path: Path) -> T:
    """A TOML file read into `cls`."""
    return from_mapping(cls, load_toml(path), str(path))


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """`data` (parsed TOML/JSON) converted to `cls`; ConfigError names `where` and the key."""
    return cast(T, convert(cls, data, where, ""))


def dotted(parent: str, key: str) -> str:
    part = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'
    return f"{parent}.{part}" if parent else part


def hints_of(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls, include_extras=True)


def is_optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def describe(tp: Any) -> str:
    """ "a string", "a list of names", "one of static, glibc", … for error messages."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extras = get_args(tp)
        for extra in extras:
            if isinstance(extra, Pattern):
                return extra.describe
        return describe(base)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(tp) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin is tuple or origin is list:
        item = describe(get_args(tp)[0])
        return "a list of " + re.sub(r"^an? ", "", item) + "s"
    if origin in (dict, Mapping) or dataclasses.is_dataclass(tp):
        return "a table"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    names = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    return names.get(tp, "a value")


def _fail(tp: Any, value: Any, where: str, key: str, example: str = "") -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    if not example:
        if describe(tp) == "a table":
            example = f"write it as a [{key}] section"
        elif tp is str or describe(tp) == "a string":
            example = f'quote it: {leaf} = "..."'
    hint = f"fix `{key}` in {where}" + (f": {example}" if example else "")
    return ConfigError(f"{where}: `{key}` must be {describe(tp)}, not {value!r}", hint=hint)


def _annotated(tp: Any, value: Any, where: str, key: str) -> Any:
    """An Annotated type: numbers given as text, a Pattern the text must match, Checks."""
    base, *extras = get_args(tp)
    if any(isinstance(e, NumbersAsText) for e in extras) and (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        value = str(value)
    pattern = next((e for e in extras if isinstance(e, Pattern)), None)
    try:
        out = convert(base, value, where, key)
    except ConfigError:
        if pattern is None:
            raise
        raise _fail(tp, value, where, key, pattern.example) from None
    for extra in extras:
        if isinstance(extra, Pattern) and not (
            isinstance(out, str) and re.fullmatch(extra.regex, out)
        ):
            raise _fail(tp, value, where, key, extra.example)
        if isinstance(extra, Range) and not extra.minimum <= out <= extra.maximum:
            raise ConfigError(
                f"{where}: `{key}` = {out if abs(out) < 10**30 else 'a huge number'} "
                f"is outside {extra.minimum}..{extra.maximum}",
                hint=f"fix `{key}` in {where}",
            )
        if isinstance(extra, Check):
            extra.func(key, out, where)
    return out


def convert(tp: Any, value: Any, where: str, key: str) -> Any:
    """One value checked against (and converted to) the type `tp`."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _annotated(tp, value, where, key)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp, value, where, key)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, where, key)
            except ConfigError as exc:
                if len([a for a in args if a is not type(None)]) == 1:
                    raise exc from None
        raise _fail(tp, value, where, key)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise _fail(tp, value, where, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _fail(tp, value, where, key) from None
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise _fail(tp, value, where, key)
        item = get_args(tp)[0]
        try:
            items = [convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        except ConfigError:
            if dataclasses.is_dataclass(item):
                raise  # names the entry's own key: outputs[0].uuid
            raise _fail(tp, value, where, key) from None  # "must be a list of names"
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _fail(tp, value, where, key)
        _, vtype = get_args(tp)
        return {str(k): convert(vtype, v, where, dotted(key, str(k))) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"settings: unsupported type {tp!r} at {key}")
    raise _fail(tp, value, where, key)


def _dataclass(cls: type, value: Any, where: str, key: str) -> Any:
    if not isinstance(value, Mapping):
        raise _fail(cls, value, where, key)
    hints = hints_of(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    allowed = sorted(fields)
    for name in value:
        if name not in fields:
            section = f"[{key}]" if key else "the top level"
            suggestion = did_you_mean(str(name), allowed)
            raise ConfigError(
                f"{where}: unknown key '{dotted(key, str(name))}'{suggestion}",
                hint=f"keys allowed at {section} of {where}: {', '.join(allowed)}",
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = convert(hints[name], value[name], where, dotted(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            full = dotted(key, name)
            raise ConfigError(
                f"{where}: `{full}` is missing", hint=f"add `{full}` ({describe(hints[name])})"
            )
    return cls(**kwargs)
