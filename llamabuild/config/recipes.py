"""Build recipes: TOML data in recipes/, resolved with llamabuild.toml and -D overrides.

Precedence, lowest first: the recipe file (after its `extends` chain), llamabuild.toml
`[recipes.<name>]`, llamabuild.toml `[cache]`, then `-D KEY=VALUE` on the command line; all of
it happens in `resolve`. Files are read by the one settings loader
(llamabuild/config/settings.py), so unknown keys anywhere are refused with a "did you mean"
and a typo never silently does nothing.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from llamabuild.config.domain import (
    DEFAULT_ELF_POLICY,
    DEFAULT_TARGET,
    DEFAULT_TOOLCHAIN,
    NAME_PATTERN,
    CacheValue,
    ElfPolicy,
    Name,
    Platform,
    RecipeFile,
    RecipeOverride,
    Toolchain,
    check_list_value,
    to_bool,
)
from llamabuild.config.project import ProjectConfig, load_project
from llamabuild.config.settings import did_you_mean, load_file
from llamabuild.core.errors import ConfigError
from llamabuild.core.jsonout import to_jsonable
from llamabuild.core.resources import shipped_dir

__all__ = [
    "CacheValue",
    "ElfPolicy",
    "Platform",
    "ProjectConfig",
    "Recipe",
    "Toolchain",
    "load_project",
    "load_recipe",
    "parse_defines",
    "resolve",
    "to_bool",
]


@dataclass(frozen=True)
class Recipe:
    """One resolved recipe. `cache` is every CMake cache entry the recipe itself sets."""

    name: Name  # a folder name under dist/ and the build root: checked again when read back
    description: str
    platform: Platform
    archs: tuple[Name, ...]
    toolchain: Toolchain = DEFAULT_TOOLCHAIN
    target: Name = DEFAULT_TARGET  # the published file's name
    min_macos: str | None = None
    elf_policy: ElfPolicy = DEFAULT_ELF_POLICY
    slices: tuple[Name, ...] = ()
    cache: Mapping[str, CacheValue] = field(default_factory=dict)
    origin: str = ""

    @property
    def cache_dict(self) -> dict[str, CacheValue]:
        return dict(self.cache)

    @property
    def is_macos(self) -> bool:
        return self.platform is Platform.MACOS

    def with_cache(self, entries: Mapping[str, CacheValue]) -> Recipe:
        merged = {**self.cache, **entries}
        return replace(self, cache=dict(sorted(merged.items())))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable(self)
        return data


def recipe_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    """Where recipes are looked up: explicit dirs, ./recipes, then the bundled ones."""
    dirs = [*extra, Path.cwd() / "recipes", shipped_dir("recipes")]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.append(d.resolve())
    return seen


def available(dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs if dirs is not None else recipe_dirs():
        for p in sorted(d.glob("*.toml")):
            found.setdefault(p.stem, p)
    return found


def default_recipe_name() -> str:
    """macos-arm64-metal on a Mac (x86_64 Macs too: App Store Macs are mostly arm64)."""
    return "macos-arm64-metal" if platform.system() == "Darwin" else "linux-x86_64-static"


def layer(base: RecipeFile, over: RecipeOverride) -> RecipeFile:
    """`over`'s set fields replace `base`'s; cache entries merge (the one merge rule)."""
    changes = {
        f.name: getattr(over, f.name)
        for f in fields(over)
        if f.name != "cache" and getattr(over, f.name) is not None
    }
    return replace(base, **changes, cache={**base.cache, **over.cache})


def _unknown(name: str, known: Mapping[str, Path]) -> ConfigError:
    return ConfigError(
        f"unknown recipe '{name}'{did_you_mean(name, known)}",
        hint=f"available: {', '.join(sorted(known))}",
    )


def load_file_chain(name: str, known: Mapping[str, Path], depth: int = 0) -> RecipeFile:
    """The recipe file with its `extends` parents layered under it (slices never inherit)."""
    if name not in known:
        raise _unknown(name, known)
    if depth > 8:
        raise ConfigError(
            f"recipe '{name}': `extends` chain too deep (a cycle?)",
            hint=f"check `extends` in {known[name]}",
        )
    data = load_file(RecipeFile, known[name])
    if data.extends is None:
        return data
    parent = replace(load_file_chain(data.extends, known, depth + 1), slices=None)
    return layer(parent, data)


def finish(name: str, data: RecipeFile, origin: str, where: str) -> Recipe:
    """A Recipe from merged fields: required ones present, defaults filled, derived entries."""
    if data.platform is None:
        raise ConfigError(
            f"{where}: `platform` is missing",
            hint=f'add platform = "macos" or "linux" to {origin}',
        )
    if not data.archs:
        raise ConfigError(f"{where}: `archs` is empty", hint=f'e.g. archs = ["arm64"] in {origin}')
    recipe = Recipe(
        name=name,
        description=data.description or "",
        platform=data.platform,
        archs=data.archs,
        toolchain=data.toolchain or DEFAULT_TOOLCHAIN,
        target=data.target or DEFAULT_TARGET,
        min_macos=data.min_macos or None,
        elf_policy=data.elf_policy or DEFAULT_ELF_POLICY,
        slices=data.slices or (),
        cache=dict(sorted(data.cache.items())),
        origin=origin,
    )
    return recipe.with_cache(derived_entries(recipe))


def load_recipe(name: str, dirs: Sequence[Path] | None = None) -> Recipe:
    """Load `name` and its `extends` parents; a child's keys replace, its cache entries merge."""
    known = available(dirs)
    if name in known and not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(
            f"recipe file {known[name]}: {name!r} is no recipe name "
            "(letters, digits, `_`, `.` and `-`; not starting with `.` or `-`)",
            hint="rename the file: its name is the dist/ folder and the build dir",
        )
    data = load_file_chain(name, known)
    return finish(name, data, str(known[name]), f"recipe {known[name]}")


def derived_entries(recipe: Recipe) -> dict[str, CacheValue]:
    """Entries that follow from the recipe's own fields (arch list, deployment target)."""
    out: dict[str, CacheValue] = {}
    if recipe.is_macos:
        out["CMAKE_OSX_ARCHITECTURES"] = ";".join(recipe.archs)
        if recipe.min_macos:
            out["CMAKE_OSX_DEPLOYMENT_TARGET"] = recipe.min_macos
    return out


def parse_defines(defines: Sequence[str]) -> dict[str, CacheValue]:
    """`-D KEY=VALUE` (also KEY:TYPE=VALUE); ON/OFF/TRUE/FALSE become booleans."""
    out: dict[str, CacheValue] = {}
    for d in defines:
        key, sep, value = d.partition("=")
        key = key.split(":", 1)[0].strip()
        if not sep or not key or not key.replace("_", "").isalnum():
            raise ConfigError(f"bad -D {d!r}", hint="use -D KEY=VALUE, e.g. -D GGML_METAL=ON")
        check_list_value(key, value, "-D")
        out[key] = to_bool(value)
    return out


def resolve(
    name: str | None,
    project: ProjectConfig,
    defines: Mapping[str, CacheValue],
    dirs: Sequence[Path] | None = None,
) -> Recipe:
    """The one place of precedence: recipe < [recipes.<name>] < [cache] < -D."""
    known = available(dirs)
    check_override_names(project, known)
    name = name or project.recipe or default_recipe_name()
    data = load_file_chain(name, known)
    origin = str(known[name])
    where = f"recipe {origin}"
    override = project.recipes.get(name)
    if override is not None:
        data = layer(data, override)
        where = f"{project.path} [recipes.{name}]"
    recipe = finish(name, data, origin, where)
    return recipe.with_cache(project.cache).with_cache(defines)


def check_override_names(project: ProjectConfig, known: Mapping[str, Path]) -> None:
    """A [recipes.<name>] for no known recipe (a typo) would silently do nothing."""
    for rname in project.recipes:
        if rname not in known:
            raise ConfigError(
                f"{project.path}: [recipes.{rname}] names no recipe{did_you_mean(rname, known)}",
                hint=f"available: {', '.join(sorted(known))}",
            )


def cmake_literal(value: CacheValue) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return value
