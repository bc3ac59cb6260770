"""llamabuild.toml: one reader for the whole file, so every section is known to every command.

`build` reads recipe/source/cache/recipes, `sign` and `entitlements` read [entitlements] and
[sign]; an unknown top-level key is refused by all of them alike, with "did you mean".
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llamabuild.errors import ConfigError

CONFIG_NAME = "llamabuild.toml"

# Top-level keys of llamabuild.toml and the command that reads them.
SECTIONS = {
    "recipe": "build",
    "source": "build",
    "ref": "build",
    "sha256": "build",
    "dist": "build",
    "cache": "build",
    "recipes": "build",
    "entitlements": "entitlements/sign",
    "sign": "sign",
}
# Sections that must be TOML tables; the rest are plain strings.
TABLES = frozenset({"cache", "recipes", "entitlements", "sign"})


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """` (did you mean 'x'?)` or an empty string, for unknown-name errors."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_keys(data: Iterable[str], allowed: Iterable[str], where: str) -> None:
    """Refuse the first key not in `allowed`, with "did you mean" (typos never pass silently)."""
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}",
                hint=f"allowed keys: {', '.join(allowed)}",
            )


def load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file", hint="check the path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def read_config(
    path: Path | None = None, search_dir: Path | None = None
) -> tuple[Path | None, dict[str, Any]]:
    """(path, data) of llamabuild.toml: `path` must exist when given, else ./llamabuild.toml
    (in `search_dir` or the cwd) is read when present. Unknown top-level keys are refused."""
    if path is None:
        candidate = (search_dir or Path.cwd()) / CONFIG_NAME
        if not candidate.is_file():
            return None, {}
        path = candidate
    elif not path.is_file():
        raise ConfigError(
            f"{path}: no such config file", hint=f"create a {CONFIG_NAME} or drop --config"
        )
    data = load_toml(path)
    check_keys(data, SECTIONS, str(path))
    for key, value in data.items():
        _check_type(path, key, value)
    return path, data


def _check_type(path: Path, key: str, value: Any) -> None:
    """A wrong type (`cache = 5`) is a config error here, not a TypeError later."""
    if key in TABLES and not isinstance(value, dict):
        raise ConfigError(
            f"{path}: `{key}` must be a table, not {value!r}",
            hint=f"write it as a [{key}] section",
        )
    if key not in TABLES and not isinstance(value, str):
        raise ConfigError(
            f"{path}: `{key}` must be a string, not {value!r}",
            hint=f'quote it: {key} = "..."',
        )
