"""The closed sets, defaults and file models of llamabuild.toml and recipes.

Every value with a fixed set of choices is a StrEnum here; every default that appeared as a
literal in several places is a named constant. `ProjectFile` (llamabuild.toml), `RecipeFile`
(recipes/*.toml) and `RecipeOverride` ([recipes.<name>]) are read by
llamabuild/config/settings.py and described by the JSON Schemas llamabuild/schema.py
generates from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from llamabuild.config.settings import Check, Doc, NumbersAsText, Pattern, Range, dotted
from llamabuild.config.versions import DEFAULT_MIN_MACOS, VERSION_PATTERN
from llamabuild.core.errors import ConfigError

CONFIG_NAME = "llamabuild.toml"
DEFAULT_TARGET = "llama-server"
from llamabuild.config.constants import SANDBOX_KEY as SANDBOX_KEY  # noqa: E402 (re-exported)


class Platform(StrEnum):
    MACOS = "macos"
    LINUX = "linux"


class Toolchain(StrEnum):
    NATIVE = "native"
    ZIG = "zig"


class ElfPolicy(StrEnum):
    """What verify allows an ELF server to need: nothing (static) or glibc's libraries."""

    STATIC = "static"
    GLIBC = "glibc"


class RemoteScheme(StrEnum):
    """ccache's remote storage backends llamabuild passes on (its http one has no TLS)."""

    REDIS = "redis"
    HTTP = "http"


class PinKind(StrEnum):
    GIT = "git"
    DIR = "dir"
    ARCHIVE = "archive"


DEFAULT_TOOLCHAIN = Toolchain.NATIVE
DEFAULT_ELF_POLICY = ElfPolicy.GLIBC

NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
Name = Annotated[str, Pattern(NAME_PATTERN, "a name", 'e.g. archs = ["arm64"]')]
NonEmpty = Annotated[str, Pattern(r"[\s\S]+", "a non-empty string")]
REL_PATH_PATTERN = r"(?!/)(?!(?:.*/)?\.\.(?:/|$))[^\x00\\]+"
"""A relative path that stays inside its folder: no leading `/`, no `..` part, no NUL."""
RelPath = Annotated[
    str,
    Pattern(
        REL_PATH_PATTERN,
        "a relative path inside its folder (no `..`, no leading `/`)",
        'e.g. "llama-server.dSYM/Contents/Info.plist"',
    ),
]
"""A path a manifest names inside dist/<recipe>: it can never point outside it."""
SubDir = Annotated[
    str,
    Pattern(
        f"|{REL_PATH_PATTERN}",
        "a folder inside the unpacked archive (no `..`, no leading `/`), or empty",
    ),
]
"""Where llama.cpp sits inside an archive: never a path out of it."""
Epoch = Annotated[int, Range(0, 253_402_300_799)]
"""SOURCE_DATE_EPOCH: 1970 to the end of year 9999 (what `date` and zip stamps can show)."""
Count = Annotated[int, Range(0, (1 << 63) - 1)]
"""A size, a count, a nanosecond time: a non-negative 64-bit number."""
Version = Annotated[
    str,
    Pattern(
        VERSION_PATTERN,
        f'a version string like "{DEFAULT_MIN_MACOS}"',
        f'quote it: min_macos = "{DEFAULT_MIN_MACOS}"',
    ),
]

CacheValue = str | bool
_ASSIGN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z]+)?=")


def to_bool(value: str) -> CacheValue:
    """CMake's ON/OFF/TRUE/FALSE/YES/NO/1/0 as a boolean; anything else stays text."""
    upper = value.strip().upper()
    if upper in ("ON", "TRUE", "YES", "1"):
        return True
    if upper in ("OFF", "FALSE", "NO", "0"):
        return False
    return value


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


def _cache_entry(key: str, value: Any, where: str) -> None:
    if isinstance(value, str):
        check_list_value(key, value, where)


CacheEntry = Annotated[
    str | bool,
    NumbersAsText(),
    Check(_cache_entry),
    Doc("a CMake cache value: a string, or true/false for ON/OFF"),
]
CacheTable = Annotated[dict[str, CacheEntry], Doc("CMake cache entries, KEY = value")]


def check_plist_value(key: str, value: Any, where: str) -> None:
    """Only values a plist can hold (TOML dates and nested oddities are refused early)."""
    if isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list):
        for v in value:
            check_plist_value(key, v, where)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            check_plist_value(dotted(key, k), v, where)
        return
    raise ConfigError(
        f"{where}: `{key}`: a {type(value).__name__} cannot be an entitlement value",
        hint=f"fix `{key}` in {where}: use true/false, an integer, a string or an array",
    )


def _entitlements_table(key: str, value: Any, where: str) -> None:
    preset = value.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(
            f"{where}: `{key}.preset` must be a string, not {preset!r}",
            hint=f'fix `{key}.preset` in {where}: quote it: preset = "app-helper"',
        )
    for k, v in value.items():
        check_plist_value(dotted(key, k), v, where)


@dataclass(frozen=True)
class RecipeOverride:
    """A `[recipes.<name>]` table of llamabuild.toml: the recipe fields a project may change."""

    description: str | None = None
    archs: tuple[Name, ...] | None = None
    min_macos: Version | None = None
    target: NonEmpty | None = None
    elf_policy: ElfPolicy | None = None
    cache: CacheTable = field(default_factory=dict)


@dataclass(frozen=True)
class RecipeFile(RecipeOverride):
    """A recipes/<name>.toml file. Unset fields come from `extends`, then the defaults."""

    platform: Platform | None = None
    toolchain: Toolchain | None = None
    extends: Name | None = None
    slices: tuple[Name, ...] | None = None


@dataclass(frozen=True)
class SignSection:
    """[sign] of llamabuild.toml."""

    identifier: str | None = None


Entitlements = Annotated[
    dict[str, Any],
    Check(_entitlements_table),
    Doc("`preset` plus extra entitlement keys (plist values)"),
]


def check_remote_url(key: str, value: str, where: str) -> None:
    """A ccache remote URL (or "-" for off); the message never shows its credentials."""
    from llamabuild.core.redact import redact_rejected

    scheme, sep, rest = value.partition("://")
    if value == "-" or (sep and scheme in set(RemoteScheme) and rest and not _URL_BAD.search(rest)):
        return
    raise ConfigError(
        f"{where}: `{key}` must be a redis:// or http:// URL (or - for off), "
        f"not {redact_rejected(value)!r}",
        hint='e.g. remote = "redis://cache.example:6379" (no spaces, no |)',
    )


_URL_BAD = re.compile(r"[\s|]")
RemoteUrl = Annotated[
    str, Check(check_remote_url), Doc("a ccache remote storage URL: redis://… or http://…")
]


@dataclass(frozen=True)
class CcacheSection:
    """[ccache] of llamabuild.toml: the shared compiler cache (LLAMABUILD_CCACHE_REMOTE and
    `build --ccache-remote` win over it)."""

    remote: RemoteUrl | None = None


ModelPins = Annotated[
    dict[
        str,
        Annotated[
            str, Pattern(r"[0-9a-fA-F]{64}", "a sha256 (64 hex digits)", 'quote it: "ab12…"')
        ],
    ],
    Doc("model file name (e.g. Qwen3-0.6B-Q4_0.gguf) -> its sha256, checked by verify-model"),
]


def _privacy_reasons(key: str, value: Any, where: str) -> None:
    from llamabuild.config.required_reasons import check_reasons

    check_reasons(value, where)


PrivacyReasons = Annotated[
    dict[str, tuple[str, ...]],
    Check(_privacy_reasons),
    Doc("NSPrivacyAccessedAPIType -> its approved reason codes, e.g. C617.1"),
]


@dataclass(frozen=True)
class PrivacySection:
    """[privacy] of llamabuild.toml: the reasons `privacy-manifest` declares per category."""

    reasons: PrivacyReasons = field(default_factory=dict)


KvCacheType = Annotated[
    str,
    Pattern(
        r"f32|f16|bf16|q8_0|q4_0|q4_1|iq4_nl|q5_0|q5_1",
        "a KV cache type llama-server accepts (common/arg.cpp kv_cache_types)",
        'e.g. "q8_0"',
    ),
]


def _slots(key: str, value: Any, where: str) -> None:
    if value == 0:  # llama-server refuses -np 0 (common/arg.cpp:2547)
        raise ConfigError(f"{where}: {key} = 0 is not a slot count", hint="1..256, or -1: auto")


@dataclass(frozen=True)
class ServerSection:
    """[server] of llamabuild.toml: the llama-server settings the app runs with that change its
    memory; verify-model sizes the KV cache with them (its flags win). None: the server's own
    default (-np auto: 4 slots, unified; f16 K and V)."""

    parallel: (
        Annotated[int, Range(-1, 256), Check(_slots), Doc("-np slots, -1: auto (4)")] | None
    ) = None
    kv_unified: bool | None = None
    swa_full: bool | None = None
    cache_type_k: KvCacheType | None = None
    cache_type_v: KvCacheType | None = None


@dataclass(frozen=True)
class ProjectFile:
    """llamabuild.toml: defaults for the command line, recipe overrides, [entitlements], [sign]."""

    recipe: str | None = None
    source: str | None = None
    ref: str | None = None
    sha256: str | None = None
    dist: str | None = None
    cache: CacheTable = field(default_factory=dict)
    recipes: dict[str, RecipeOverride] = field(default_factory=dict)
    entitlements: Entitlements = field(default_factory=dict)
    sign: SignSection = field(default_factory=SignSection)
    ccache: CcacheSection = field(default_factory=CcacheSection)
    models: ModelPins = field(default_factory=dict)
    privacy: PrivacySection = field(default_factory=PrivacySection)
    server: ServerSection = field(default_factory=ServerSection)
