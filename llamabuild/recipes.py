"""Build recipes: TOML data in recipes/, resolved with llamabuild.toml and -D overrides.

Precedence, lowest first: the recipe file (after its `extends` chain), llamabuild.toml
`[recipes.<name>]`, llamabuild.toml `[cache]`, then `-D KEY=VALUE` on the command line.
Unknown keys anywhere are refused with a "did you mean" so a typo never silently does nothing.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llamabuild.config import check_keys, did_you_mean, load_toml, read_config
from llamabuild.errors import ConfigError
from llamabuild.resources import shipped_dir

CacheValue = str | bool
PLATFORMS = ("macos", "linux")
TOOLCHAINS = ("native", "zig")
ELF_POLICIES = ("static", "glibc")
RECIPE_KEYS = frozenset(
    {
        "description",
        "platform",
        "archs",
        "min_macos",
        "toolchain",
        "target",
        "elf_policy",
        "extends",
        "slices",
        "cache",
    }
)
OVERRIDABLE = RECIPE_KEYS - {"extends", "slices", "platform", "toolchain"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_VERSION = re.compile(r"\d+(?:\.\d+){0,2}")
_ASSIGN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z]+)?=")


@dataclass(frozen=True)
class Recipe:
    """One resolved recipe. `cache` is every CMake cache entry the recipe itself sets."""

    name: str
    description: str
    platform: str
    archs: tuple[str, ...]
    toolchain: str = "native"
    target: str = "llama-server"
    min_macos: str | None = None
    elf_policy: str = "glibc"
    slices: tuple[str, ...] = ()
    cache: tuple[tuple[str, CacheValue], ...] = ()
    origin: str = ""

    @property
    def cache_dict(self) -> dict[str, CacheValue]:
        return dict(self.cache)

    @property
    def is_macos(self) -> bool:
        return self.platform == "macos"

    def with_cache(self, entries: Mapping[str, CacheValue]) -> Recipe:
        merged = {**self.cache_dict, **entries}
        return replace(self, cache=tuple(sorted(merged.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "platform": self.platform,
            "archs": list(self.archs),
            "toolchain": self.toolchain,
            "target": self.target,
            "min_macos": self.min_macos,
            "elf_policy": self.elf_policy,
            "slices": list(self.slices),
            "cache": {k: v for k, v in self.cache},
            "origin": self.origin,
        }


@dataclass(frozen=True)
class ProjectConfig:
    """llamabuild.toml: defaults for the command line and recipe overrides."""

    path: Path | None = None
    recipe: str | None = None
    source: str | None = None
    ref: str | None = None
    sha256: str | None = None
    dist: str | None = None
    cache: tuple[tuple[str, CacheValue], ...] = ()
    recipes: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = field(default=())


def cache_value(key: str, raw: Any, where: str) -> CacheValue:
    if isinstance(raw, str):
        check_list_value(key, raw, where)
        return raw
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return str(raw)
    raise ConfigError(f"{where}: cache entry {key} must be a string or boolean, not {raw!r}")


def check_list_value(key: str, value: str, where: str) -> None:
    """Refuse a ';' that turns an ON/OFF flag into a list or smuggles in `OTHER=...`.

    CMake splits cache values on ';', so `GGML_RPC=ON;FOO=1` would pass FOO unchecked by the
    stale-flag scan. Real lists (CMAKE_OSX_ARCHITECTURES=arm64;x86_64) stay allowed.
    """
    if ";" not in value:
        return
    parts = value.split(";")
    if isinstance(to_bool(parts[0]), bool) or any(_ASSIGN.match(p) for p in parts):
        raise ConfigError(
            f"{where}: {key}={value!r}: ';' would make CMake read this as a list",
            hint="set one flag per entry, e.g. -D GGML_RPC=ON -D OTHER=1",
        )


def _table(value: Any, key: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: `{key}` must be a table, not {value!r}",
            hint=f"write it as a [{key}] section",
        )
    return value


def _names(key: str, value: Any, where: str) -> None:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _NAME.fullmatch(v) for v in value
    ):
        raise ConfigError(
            f"{where}: `{key}` must be a list of names, not {value!r}",
            hint=f'e.g. {key} = ["arm64"]' if key == "archs" else f'e.g. {key} = ["a", "b"]',
        )


def check_fields(data: Mapping[str, Any], where: str) -> None:
    """Type-check every recipe field present: recipe files and [recipes.<name>] alike."""
    choices = {"platform": PLATFORMS, "toolchain": TOOLCHAINS, "elf_policy": ELF_POLICIES}
    for key, value in data.items():
        if key in ("archs", "slices"):
            _names(key, value, where)
        elif key == "cache":
            _table(value, key, where)
        elif key == "min_macos":
            if value is not None and not (isinstance(value, str) and _VERSION.fullmatch(value)):
                raise ConfigError(
                    f'{where}: `min_macos` must be a version string like "14.0", not {value!r}',
                    hint='quote it: min_macos = "14.0"',
                )
        elif key in choices:
            if value not in choices[key]:
                allowed = ", ".join(choices[key])
                raise ConfigError(f"{where}: `{key}` must be one of {allowed}, not {value!r}")
        elif not isinstance(value, str) or (key in ("target", "extends") and not value):
            raise ConfigError(f"{where}: `{key}` must be a non-empty string, not {value!r}")


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


def _raw_chain(
    name: str, known: Mapping[str, Path], depth: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    if name not in known:
        raise ConfigError(
            f"unknown recipe '{name}'{did_you_mean(name, known)}",
            hint=f"available: {', '.join(sorted(known))}",
        )
    if depth > 8:
        raise ConfigError(f"recipe '{name}': `extends` chain too deep (a cycle?)")
    data = load_toml(known[name])
    check_keys(data, RECIPE_KEYS, f"recipe {known[name]}")
    check_fields(data, f"recipe {known[name]}")
    parent = data.get("extends")
    chain = _raw_chain(str(parent), known, depth + 1) if parent else []
    return [*chain, (name, data)]


def load_recipe(name: str, dirs: Sequence[Path] | None = None) -> Recipe:
    """Load `name` and its `extends` parents; a child's keys replace, its cache entries merge."""
    known = available(dirs)
    merged: dict[str, Any] = {}
    cache: dict[str, CacheValue] = {}
    chain = _raw_chain(name, known)
    for rname, data in chain:
        where = f"recipe {known[rname]}"
        for key, raw in data.get("cache", {}).items():
            cache[key] = cache_value(key, raw, where)
        merged.update({k: v for k, v in data.items() if k not in ("cache", "extends", "slices")})
    merged["slices"] = chain[-1][1].get("slices", [])  # slices are never inherited
    return _build(name, merged, cache, str(known[name]))


def _build(
    name: str,
    data: Mapping[str, Any],
    cache: Mapping[str, CacheValue],
    origin: str,
    where: str | None = None,
) -> Recipe:
    """A Recipe from merged fields, every one type-checked by check_fields()."""
    where = where or f"recipe {origin}"
    data = {"toolchain": "native", "elf_policy": "glibc", **data}
    data.setdefault("platform", "")
    check_fields(data, where)
    archs = tuple(data.get("archs", ()))
    if not archs:
        raise ConfigError(f"{where}: `archs` is empty")
    recipe = Recipe(
        name=name,
        description=data.get("description", ""),
        platform=data["platform"],
        archs=archs,
        toolchain=data["toolchain"],
        target=data.get("target", "llama-server"),
        min_macos=data.get("min_macos") or None,
        elf_policy=data["elf_policy"],
        slices=tuple(data.get("slices", ())),
        cache=tuple(sorted(cache.items())),
        origin=origin,
    )
    return recipe.with_cache(derived_entries(recipe))


def derived_entries(recipe: Recipe) -> dict[str, CacheValue]:
    """Entries that follow from the recipe's own fields (arch list, deployment target)."""
    out: dict[str, CacheValue] = {}
    if recipe.is_macos:
        out["CMAKE_OSX_ARCHITECTURES"] = ";".join(recipe.archs)
        if recipe.min_macos:
            out["CMAKE_OSX_DEPLOYMENT_TARGET"] = recipe.min_macos
    return out


def load_project(path: Path | None) -> ProjectConfig:
    """Read llamabuild.toml (an explicit path must exist; ./llamabuild.toml is optional)."""
    found, data = read_config(path)
    if found is None:
        return ProjectConfig()
    path = found
    where = str(path)
    cache = {k: cache_value(k, v, where) for k, v in data.get("cache", {}).items()}
    recipes: dict[str, tuple[tuple[str, Any], ...]] = {}
    for rname, table in data.get("recipes", {}).items():
        section = f"{where} [recipes.{rname}]"
        _table(table, f"recipes.{rname}", where)
        check_keys(table, OVERRIDABLE, section)
        check_fields(table, section)
        for key, value in table.get("cache", {}).items():
            cache_value(key, value, section)
        recipes[rname] = tuple(sorted(table.items()))

    def opt(key: str) -> str | None:
        return str(data[key]) if key in data else None

    return ProjectConfig(
        path=path,
        recipe=opt("recipe"),
        source=opt("source"),
        ref=opt("ref"),
        sha256=opt("sha256"),
        dist=opt("dist"),
        cache=tuple(sorted(cache.items())),
        recipes=tuple(sorted(recipes.items())),
    )


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


def to_bool(value: str) -> CacheValue:
    upper = value.strip().upper()
    if upper in ("ON", "TRUE", "YES", "1"):
        return True
    if upper in ("OFF", "FALSE", "NO", "0"):
        return False
    return value


def apply_overrides(
    recipe: Recipe, project: ProjectConfig, defines: Mapping[str, CacheValue]
) -> Recipe:
    """Recipe < [recipes.<name>] < [cache] < -D, each layer validated like a recipe file."""
    where = f"{project.path} [recipes.{recipe.name}]"
    for rname, table in project.recipes:
        if rname != recipe.name:
            continue
        fields = dict(table)
        raw_cache = _table(fields.pop("cache", {}), "cache", where)
        cache = {k: cache_value(k, v, where) for k, v in raw_cache.items()}
        base = {k: v for k, v in recipe.to_json().items() if k not in ("name", "cache", "origin")}
        merged = {**recipe.cache_dict, **cache}
        recipe = _build(recipe.name, {**base, **fields}, merged, recipe.origin, where)
    return recipe.with_cache(dict(project.cache)).with_cache(dict(defines))


def resolve(
    name: str | None,
    project: ProjectConfig,
    defines: Mapping[str, CacheValue],
    dirs: Sequence[Path] | None = None,
) -> Recipe:
    check_override_names(project, dirs)
    base = load_recipe(name or project.recipe or default_recipe_name(), dirs)
    return apply_overrides(base, project, defines)


def check_override_names(project: ProjectConfig, dirs: Sequence[Path] | None = None) -> None:
    """A [recipes.<name>] for no known recipe (a typo) would silently do nothing."""
    known = available(dirs)
    for rname, _ in project.recipes:
        if rname not in known:
            raise ConfigError(
                f"{project.path}: [recipes.{rname}] names no recipe{did_you_mean(rname, known)}",
                hint=f"available: {', '.join(sorted(known))}",
            )


def cmake_literal(value: CacheValue) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return value
