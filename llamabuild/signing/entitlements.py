"""Entitlements: render a preset template (+ extra keys), parse it back, lint it against data.

The plist that gets signed is always the one parsed back here, so what `sign` later proves
(embedded entitlements == rendered plist) compares data with data, never text with text.
"""

from __future__ import annotations

import difflib
import plistlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llamabuild.config.project import ProjectConfig, load_project
from llamabuild.config.settings import did_you_mean
from llamabuild.core.errors import InputError, ToolError, UsageError
from llamabuild.core.findings import Finding, error, warning
from llamabuild.core.jsonout import ALWAYS, INTERNAL, Plain, derived, model, plain
from llamabuild.core.resources import data_text, shipped_dir

DEFAULT_PRESET = "app-helper"
_SUFFIX = ".plist.j2"


def templates_dir() -> Path:
    """templates/entitlements, in the checkout or inside the installed wheel."""
    return shipped_dir("templates") / "entitlements"


def presets() -> list[str]:
    return sorted(
        p.name[: -len(_SUFFIX)]
        for p in templates_dir().glob(f"*{_SUFFIX}")
        if not p.name.startswith("_")
    )


@cache
def key_data() -> dict[str, Any]:
    text = data_text("entitlement_keys.toml")
    return tomllib.loads(text)


# ---------------------------------------------------------------- values from --set / TOML

_INT = re.compile(r"^[+-]?\d+$")


def parse_value(text: str) -> Any:
    """`--set` values are typed: true/false, integers, `[a, b]` (array), else a string."""
    raw = text.strip()
    if raw in ("true", "false"):
        return raw == "true"
    if _INT.match(raw):
        return int(raw)
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [parse_value(part.strip()) for part in inner.split(",")] if inner else []
    return text


def parse_set(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise UsageError(
            f"--set {item!r}: expected KEY=VALUE",
            hint="e.g. --set com.apple.security.network.client=true",
        )
    return key.strip(), parse_value(value)


# ---------------------------------------------------------------- llamabuild.toml


def load_config(path: Path | None = None, search_dir: Path | None = None) -> ProjectConfig:
    """`path` must exist when given; else llamabuild.toml in `search_dir` (cwd) if present."""
    return load_project(path, search_dir)


# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Entitlements:
    """A rendered (or loaded) entitlements plist, parsed back, with its lint findings."""

    source: str
    xml: bytes
    data: dict[str, Any]
    findings: tuple[Finding, ...] = ()


@model(frozen=True)
class EntitlementsReport:
    """`llamabuild entitlements --json`: the rendered plist, parsed back, and its lint."""

    ok: bool
    rendered: Entitlements = field(metadata=INTERNAL)
    source: str = derived(lambda r: r.rendered.source)
    entitlements: dict[str, Plain] = derived(lambda r: plain(r.rendered.data))
    findings: tuple[Finding, ...] = derived(lambda r: r.rendered.findings)
    output: Path | None = field(default=None, metadata=ALWAYS)
    """Where the plist was written (null: stdout, or not written because the lint failed)."""
    plist: str = derived(lambda r: r.rendered.xml.decode("utf-8", "replace"))


def render_preset(name: str, extra: Mapping[str, Any]) -> bytes:
    import jinja2

    if name not in presets():
        raise UsageError(
            f"unknown entitlements preset {name!r}{did_you_mean(name, presets())}",
            hint=f"presets: {', '.join(presets())}",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    try:
        text = env.get_template(name + _SUFFIX).render(extra=dict(extra))
    except jinja2.TemplateError as exc:
        raise ToolError(f"template {name}{_SUFFIX} failed to render: {exc}") from exc
    return text.encode("utf-8")


def _read_plist_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file", hint="check the --entitlements path") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc


def load_plist(path: Path) -> dict[str, Any]:
    return parse_plist(_read_plist_bytes(path), str(path))


def _xml_text(raw: bytes, data: dict[str, Any]) -> bytes:
    """Keep a UTF-8 XML file as written (comments and all); re-serialise anything else.

    A binary plist (or another encoding) cannot go to stdout or into JSON as text.
    """
    if raw.startswith(b"bplist"):
        return plistlib.dumps(data)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return plistlib.dumps(data)
    return raw


def parse_plist(raw: bytes, origin: str) -> dict[str, Any]:
    try:
        value = plistlib.loads(raw)
    except Exception as exc:
        raise InputError(
            f"{origin}: not a valid property list ({exc})",
            hint="an entitlements file is an XML plist whose top level is a <dict>",
        ) from exc
    if not isinstance(value, dict):
        raise InputError(f"{origin}: the top level of an entitlements plist must be a <dict>")
    return value


def resolve(
    preset: str | None = None,
    file: Path | None = None,
    sets: Sequence[str] = (),
    config: ProjectConfig | None = None,
) -> Entitlements:
    """Render (preset) or load (file), add config keys then --set keys, parse back, lint."""
    if preset and file:
        raise UsageError("--preset and --entitlements exclude each other", hint="pass one")
    config = config or ProjectConfig()
    extra: dict[str, Any] = dict(config.keys)
    extra.update(parse_set(s) for s in sets)
    if file is not None:
        raw = _read_plist_bytes(file)
        base = parse_plist(raw, str(file))
        xml = plistlib.dumps({**base, **extra}) if extra else _xml_text(raw, base)
        source = str(file)
    else:
        name = preset or config.preset or DEFAULT_PRESET
        xml = render_preset(name, extra)
        source = f"preset {name}"
    data = parse_plist(xml, source)
    return Entitlements(source=source, xml=xml, data=data, findings=tuple(lint(data)))


# ---------------------------------------------------------------- lint

_TYPE_NAMES = {
    "bool": "a boolean",
    "string": "a string",
    "integer": "an integer",
    "strings": "an array of strings",
    "dict": "a dictionary",
    "string-or-strings": "a string or an array of strings",
}


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _type_ok(kind: str, value: Any) -> bool:
    """Whether `value` has the plist type the data file names (unknown type names pass)."""
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "strings":
        return _strings(value)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "string-or-strings":
        return isinstance(value, str) or _strings(value)
    return True


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a dictionary"
    return f"the {type(value).__name__} {value!r}"


def lint(data: Mapping[str, Any], where: str | None = None) -> list[Finding]:
    """Typos, wrong types, temporary exceptions and the inherit rules (see the data file)."""
    meta = key_data()
    known: dict[str, str] = meta["keys"]
    rules = meta["lint"]
    out: list[Finding] = []
    for key, value in data.items():
        kind = known.get(key)
        if kind is None:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
            guess = f" (did you mean {close[0]}?)" if close else ""
            out.append(
                error(
                    "entitlement-unknown-key",
                    f"unknown entitlement key {key}{guess}",
                    path=where,
                    hint="fix the typo, or add the key to llamabuild/data/entitlement_keys.toml",
                )
            )
        elif not _type_ok(kind, value):
            out.append(
                error(
                    "entitlement-type",
                    f"{key} must be {_TYPE_NAMES.get(kind, kind)}, not {_describe(value)}",
                    path=where,
                )
            )
        if key.startswith(rules["temporary_exception_prefix"]):
            out.append(
                warning(
                    "entitlement-temporary-exception",
                    f"{key} is a temporary exception: App Review rejects most of them",
                    path=where,
                    hint="use the app container or user-selected files instead",
                )
            )
    inherit, sandbox = rules["inherit_key"], rules["sandbox_key"]
    if data.get(inherit) is True:
        for key in data:
            if key.startswith(tuple(rules["ignored_with_inherit_prefixes"])):
                out.append(
                    warning(
                        "entitlement-ignored-with-inherit",
                        f"{key} is ignored next to {inherit}: a child gets the parent's rights",
                        path=where,
                        hint="give the parent app this entitlement, or drop inherit",
                    )
                )
        if data.get(sandbox) is not True:
            out.append(
                error(
                    "entitlement-inherit-without-sandbox",
                    f"{inherit} requires {sandbox} = true",
                    path=where,
                    hint=f"add {sandbox} (the app-helper preset has both)",
                )
            )
    return out
