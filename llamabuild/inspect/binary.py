"""What inspection returns: plain data, never parser objects, so policy code needs no parser."""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from llamabuild.core.jsonout import ALWAYS, INTERNAL, OMIT_NONE, Plain, json_view, plain


class MetalSource(StrEnum):
    EMBEDDED = "embedded"  # __ggml_metallib holds the kernels' source
    EXTERNAL = "external"  # ggml's Metal backend, without it: a .metallib or .metal at run time
    NONE = "none"  # links Metal, but no ggml Metal backend


class MetalSpan(NamedTuple):
    """One kernel group's text: where it is in the file (not the slice), and its digest."""

    kind: str
    offset: int
    size: int
    sha256: str


@dataclass(frozen=True)
class MetalLibrary:
    """ggml's Metal kernels in one slice."""

    library: MetalSource
    kinds: int  # kernel groups: _ggml_metallib_<kind>_start/_end pairs
    bytes: int
    sha256: str | None
    msl_default: str | None  # the Metal language newLibraryWithSource defaults to (by the SDK)
    # How many bf16 kernel instantiations survive msl_default, and how many the source defines
    # where bf16 exists (Metal 3.1): counted with a C preprocessor (tools/preprocessor.py).
    bf16_kernels: int | None = field(default=None, metadata=ALWAYS)
    bf16_defined: int | None = field(default=None, metadata=ALWAYS)
    bf16_note: str | None = field(default=None, metadata=OMIT_NONE)  # why not counted
    tensor_api: bool = False  # the text holds Metal 4 tensor-API code (GGML_METAL_HAS_TENSOR)
    sets_language: bool = False  # the binary sends setLanguageVersion: (MTLCompileOptions)
    groups: dict[str, str] = field(default_factory=dict)  # kind -> sha256 of its text
    spans: tuple[MetalSpan, ...] = field(default=(), metadata=INTERNAL)
    problems: tuple[tuple[str, str], ...] = field(default=(), metadata=INTERNAL)  # (rule, why)


def _entitlements(sig: Signature) -> dict[str, Plain] | None:
    return plain(sig.entitlements) if sig.entitlements is not None else None


class BinaryFormat(StrEnum):
    MACHO = "macho"
    ELF = "elf"


class Parser(StrEnum):
    """Mach-O reader: llamabuild's own load-command reader, or LIEF as a second opinion."""

    AUTO = "auto"
    LIEF = "lief"


class VerifyProfile(StrEnum):
    """What `verify --profile` checks beyond linkage: the App Store helper (default), or a
    Developer ID build's readiness for notarization (runtime, timestamp, certificate)."""

    APP_STORE = "app-store"
    DEVELOPER_ID = "developer-id"


# What parsers read: a mapped file (mmap) in the CLI, bytes in tests. Both slice to bytes.
Buffer = bytes | mmap.mmap


@dataclass(frozen=True)
class Dylib:
    name: str
    kind: str  # Mach-O: load, weak, reexport, upward, lazy; ELF: needed


# Pseudo-dylibs of an import whose library ordinal is special rather than a load command.
SELF = "<self>"  # ordinal 0: this image
MAIN_EXECUTABLE = "<main executable>"  # ordinal -1
FLAT_LOOKUP = "<flat lookup>"  # ordinal -2: flat namespace / -undefined dynamic_lookup
WEAK_LOOKUP = "<weak lookup>"  # ordinal -3 (chained fixups) or a classic weak-bind entry
SPECIAL_ORDINALS = {0: SELF, -1: MAIN_EXECUTABLE, -2: FLAT_LOOKUP, -3: WEAK_LOOKUP}


class Import(NamedTuple):
    """One symbol a slice needs from elsewhere at load time (dyld resolves it or fails).

    A NamedTuple, not a dataclass: a 170 MB binary has thousands, and a frozen dataclass
    costs 2 µs each to build."""

    dylib: str  # install name of the dylib its library ordinal names, or one of the above
    name: str  # the symbol as linked, e.g. "_cblas_sgemm$NEWLAPACK$ILP64"
    weak: bool = False  # weak import: a missing symbol becomes NULL instead of a launch crash


@dataclass(frozen=True)
class Signature:
    """A slice's embedded code signature, as read back from the file."""

    identifier: str | None = field(default=None, metadata=ALWAYS)
    flags: tuple[str, ...] = field(default=(), metadata=ALWAYS)
    adhoc: bool = field(default=True, metadata=ALWAYS)
    linker_signed: bool = field(default=False, metadata=ALWAYS)
    team_id: str | None = field(default=None, metadata=ALWAYS)
    entitlements: dict[str, Any] | None = field(
        default=None,
        hash=False,
        compare=True,
        metadata=json_view(_entitlements, dict[str, Plain] | None),
    )


@dataclass(frozen=True)
class Symbol:
    """One imported symbol and the dylib (or special lookup) it is bound to."""

    name: str
    dylib: str
    weak: bool


def _import_counts(s: Slice) -> dict[str, int] | None:
    """The JSON's `imports`: what dyld must bind at launch (Mach-O only)."""
    return import_counts(s) if s.macho else None


def import_counts(s: Slice) -> dict[str, int]:
    """dylib (or special lookup) -> how many symbols the slice imports from it."""
    counts: dict[str, int] = {}
    for imp in s.imports:
        counts[imp.dylib] = counts.get(imp.dylib, 0) + 1
    return counts


def _symbol_rows(s: Slice) -> tuple[Symbol, ...] | None:
    if not (s.symbols and s.macho):
        return None
    return tuple(Symbol(i.name, i.dylib, i.weak) for i in s.imports)


@dataclass(frozen=True)
class Slice:
    """One architecture of a binary. `imports` (dylib -> symbol count) only for Mach-O,
    `symbols` only with `verify --symbols`, `signature` when signed, `interpreter` for ELF."""

    arch: str
    filetype: str
    uuid: str | None = field(default=None, metadata=ALWAYS)
    minos: str | None = field(default=None, metadata=ALWAYS)
    sdk: str | None = field(default=None, metadata=ALWAYS)
    dylibs: tuple[Dylib, ...] = field(default=(), metadata=ALWAYS)
    rpaths: tuple[str, ...] = field(default=(), metadata=ALWAYS)
    signed: bool = field(default=False, metadata=ALWAYS)
    imports: tuple[Import, ...] = field(  # sorted, unique; Mach-O only
        default=(), metadata=json_view(_import_counts, dict[str, int] | None, omit_none=True)
    )
    symbols: bool = field(  # list every import in the JSON (`verify --symbols`)
        default=False, metadata=json_view(_symbol_rows, tuple[Symbol, ...] | None, omit_none=True)
    )
    signature: Signature | None = field(default=None, metadata=OMIT_NONE)
    interpreter: str | None = field(default=None, metadata=OMIT_NONE)
    metal: MetalLibrary | None = field(default=None, metadata=OMIT_NONE)  # links Metal
    offset: int = field(default=0, metadata=INTERNAL)
    size: int = field(default=0, metadata=INTERNAL)
    macho: bool = field(default=True, metadata=INTERNAL)


@dataclass(frozen=True)
class Binary:
    path: Path
    format: BinaryFormat
    slices: tuple[Slice, ...]
    fat: bool = False

    @property
    def archs(self) -> tuple[str, ...]:
        return tuple(s.arch for s in self.slices)
