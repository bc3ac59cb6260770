"""Build recipes: TOML data in recipes/, resolved with llamabuild.toml and -D overrides.

Precedence, lowest first: the recipe file (after its `extends` chain), llamabuild.toml
`[recipes.<name>]`, llamabuild.toml `[cache]`, then `-D KEY=VALUE` on the command line.
Unknown keys anywhere are refused with a "did you mean" so a typo never silently does nothing.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llamabuild.config import did_you_mean, load_toml, read_config
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


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = sorted(allowed)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}",
                hint=f"allowed keys: {', '.join(allowed)}",
            )


def cache_value(key: str, raw: Any, where: str) -> CacheValue:
    if isinstance(raw, bool | str):
        return raw
    if isinstance(raw, int | float):
        return str(raw)
    raise ConfigError(f"{where}: cache entry {key} must be a string or boolean, not {raw!r}")


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
    _check_keys(data, RECIPE_KEYS, f"recipe {known[name]}")
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
        for key, raw in dict(data.get("cache", {})).items():
            cache[key] = cache_value(key, raw, where)
        merged.update({k: v for k, v in data.items() if k not in ("cache", "extends", "slices")})
    merged["slices"] = chain[-1][1].get("slices", [])  # slices are never inherited
    return _build(name, merged, cache, str(known[name]))


def _build(
    name: str, data: Mapping[str, Any], cache: Mapping[str, CacheValue], origin: str
) -> Recipe:
    where = f"recipe {origin}"
    plat = str(data.get("platform", ""))
    if plat not in PLATFORMS:
        raise ConfigError(f"{where}: platform must be one of {', '.join(PLATFORMS)}, not {plat!r}")
    toolchain = str(data.get("toolchain", "native"))
    if toolchain not in TOOLCHAINS:
        raise ConfigError(f"{where}: toolchain must be one of {', '.join(TOOLCHAINS)}")
    elf_policy = str(data.get("elf_policy", "glibc"))
    if elf_policy not in ELF_POLICIES:
        raise ConfigError(f"{where}: elf_policy must be 'static' or 'glibc'")
    archs = tuple(str(a) for a in data.get("archs", ()))
    if not archs:
        raise ConfigError(f"{where}: `archs` is empty")
    recipe = Recipe(
        name=name,
        description=str(data.get("description", "")),
        platform=plat,
        archs=archs,
        toolchain=toolchain,
        target=str(data.get("target", "llama-server")),
        min_macos=str(data["min_macos"]) if data.get("min_macos") else None,
        elf_policy=elf_policy,
        slices=tuple(str(s) for s in data.get("slices", ())),
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
    cache = {k: cache_value(k, v, where) for k, v in dict(data.get("cache", {})).items()}
    recipes: dict[str, tuple[tuple[str, Any], ...]] = {}
    for rname, table in dict(data.get("recipes", {})).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [recipes.{rname}] must be a table")
        _check_keys(table, OVERRIDABLE, f"{where} [recipes.{rname}]")
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
    """Recipe < [recipes.<name>] < [cache] < -D, each layer validated."""
    where = f"{project.path} [recipes.{recipe.name}]"
    for rname, table in project.recipes:
        if rname != recipe.name:
            continue
        fields = dict(table)
        cache = {k: cache_value(k, v, where) for k, v in dict(fields.pop("cache", {})).items()}
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            changes[key] = tuple(value) if key == "archs" else value
        recipe = replace(recipe, **changes).with_cache(cache)
        recipe = recipe.with_cache(derived_entries(recipe))
    return recipe.with_cache(dict(project.cache)).with_cache(dict(defines))


def resolve(
    name: str | None,
    project: ProjectConfig,
    defines: Mapping[str, CacheValue],
    dirs: Sequence[Path] | None = None,
) -> Recipe:
    base = load_recipe(name or project.recipe or default_recipe_name(), dirs)
    return apply_overrides(base, project, defines)


def cmake_literal(value: CacheValue) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return value
