"""The pin and its lock file, llamabuild.lock (TOML): what was built, to the byte."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamabuild.config.domain import Count, NonEmpty, PinKind, SubDir
from llamabuild.config.settings import from_mapping
from llamabuild.core.errors import ConfigError
from llamabuild.core.files import write_atomic
from llamabuild.core.jsonout import to_jsonable

LOCK_NAME = "llamabuild.lock"


@dataclass(frozen=True)
class Pin:
    """A resolved source. `commit` is the full SHA for git; for an archive, the label given."""

    kind: PinKind
    url: NonEmpty
    ref: str | None = None
    refname: str | None = None
    commit: str | None = None
    sha256: str | None = None
    subdir: SubDir = ""
    build_number: Count = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        return data

    @property
    def build_commit(self) -> str:
        """LLAMA_BUILD_COMMIT: llama.cpp shows the short SHA (build-info asks git otherwise)."""
        if not self.commit:
            return "unknown"
        return self.commit[:7] if len(self.commit) == 40 else self.commit


@dataclass(frozen=True)
class LockFile:
    """llamabuild.lock: one [source] table."""

    source: Pin


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def dumps(pin: Pin) -> str:
    lines = [
        "# Written by `llamabuild source`; builds use this pin until `--update`.",
        "[source]",
    ]
    for key, value in pin.to_json().items():
        if value is not None and value != "":
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def loads(text: str, where: str = LOCK_NAME) -> Pin:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}", hint="delete it and rerun") from exc
    try:
        return from_mapping(LockFile, data, where).source
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=f"rerun with --update to rewrite {where}") from exc


def read(path: Path) -> Pin | None:
    if not path.is_file():
        return None
    return loads(path.read_text(encoding="utf-8"), str(path))


def write(path: Path, pin: Pin) -> None:
    """Atomic: a temp file beside the lock, then a rename."""
    write_atomic(path, dumps(pin).encode("utf-8"))
