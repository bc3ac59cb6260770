"""What inspection returns: plain data, never parser objects, so policy code needs no parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Dylib:
    name: str
    kind: str  # Mach-O: load, weak, reexport, upward, lazy; ELF: needed


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


@dataclass(frozen=True)
class Binary:
    path: Path
    format: str  # "macho" or "elf"
    slices: tuple[Slice, ...]
    fat: bool = False

    @property
    def archs(self) -> tuple[str, ...]:
        return tuple(s.arch for s in self.slices)
