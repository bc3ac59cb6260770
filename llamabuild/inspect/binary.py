"""What inspection returns: plain data, never parser objects, so policy code needs no parser."""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple


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

    identifier: str | None = None
    flags: tuple[str, ...] = ()
    entitlements: dict[str, Any] | None = field(default=None, hash=False, compare=True)
    adhoc: bool = True
    linker_signed: bool = False
    team_id: str | None = None


@dataclass(frozen=True)
class Slice:
    arch: str
    filetype: str
    offset: int
    size: int
    minos: str | None = None
    sdk: str | None = None
    uuid: str | None = None
    dylibs: tuple[Dylib, ...] = ()
    rpaths: tuple[str, ...] = ()
    signed: bool = False
    signature: Signature | None = None
    interpreter: str | None = None
    imports: tuple[Import, ...] = ()  # sorted, unique; Mach-O only


@dataclass(frozen=True)
class Binary:
    path: Path
    format: BinaryFormat
    slices: tuple[Slice, ...]
    fat: bool = False

    @property
    def archs(self) -> tuple[str, ...]:
        return tuple(s.arch for s in self.slices)
