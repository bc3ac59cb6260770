"""llamabuild.toml: one reader for the whole file, so every section is known to every command.

`build` reads recipe/source/cache/recipes, `sign` and `entitlements` read [entitlements] and
[sign]; the file is read into one `ProjectFile` (llamabuild/config/domain.py) by the one settings
loader, so an unknown key anywhere is refused by all commands alike, with "did you mean".
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llamabuild.config.domain import CONFIG_NAME, ProjectFile
from llamabuild.config.settings import did_you_mean, load_file, load_toml
from llamabuild.core.errors import ConfigError

__all__ = ["CONFIG_NAME", "ProjectConfig", "did_you_mean", "load_project", "load_toml"]

ENTITLEMENT_SETTINGS = frozenset({"preset"})  # [entitlements] keys that are not entitlements


@dataclass(frozen=True)
class ProjectConfig(ProjectFile):
    """llamabuild.toml as read, plus where from (`path` None when there is none): the one
    project config every command (build, entitlements, sign, smoke) reads."""

    path: Path | None = None

    @property
    def preset(self) -> str | None:
        preset = self.entitlements.get("preset")
        return preset if isinstance(preset, str) else None

    @property
    def identifier(self) -> str | None:
        return self.sign.identifier

    @property
    def keys(self) -> dict[str, Any]:
        """Extra entitlement keys from [entitlements] (everything but `preset`)."""
        return {k: v for k, v in self.entitlements.items() if k not in ENTITLEMENT_SETTINGS}


def find_config(path: Path | None = None, search_dir: Path | None = None) -> Path | None:
    """`path` (must exist) or ./llamabuild.toml in `search_dir` (the cwd) when present."""
    if path is None:
        candidate = (search_dir or Path.cwd()) / CONFIG_NAME
        return candidate if candidate.is_file() else None
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such config file", hint=f"create a {CONFIG_NAME} or drop --config"
        )
    return path


def load_project(path: Path | None = None, search_dir: Path | None = None) -> ProjectConfig:
    """llamabuild.toml, every key and type checked (ConfigError names the file and key)."""
    found = find_config(path, search_dir)
    if found is None:
        return ProjectConfig()
    data = load_file(ProjectFile, found)
    return ProjectConfig(path=found, **{f.name: getattr(data, f.name) for f in fields(data)})
