"""The `--json` output of `verify` (and the slice/signature models sign and verify-app reuse).

Apart from outputs.py so that `verify`, the command that must start fastest, defines only the
handful of dataclasses it prints (each costs ~0.7 ms to create at import).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.core.findings import FindingOutput
from llamabuild.core.jsonout import OMIT_NONE
from llamabuild.inspect.binary import BinaryFormat, Signature, Slice

# Plist values (entitlements) as JSON: str/int/float/bool, lists and dicts of them; anything
# else a plist can hold (bytes, dates) as its str(), as the JSON encoder's default=str did.
Plain = Any


def plain(value: Any) -> Any:
    """A plist value as plain JSON data (bytes and dates become their str())."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------- shared parts


@dataclass(frozen=True)
class DylibOutput:
    name: str
    kind: str


@dataclass(frozen=True)
class SymbolOutput:
    """One imported symbol and the dylib (or special lookup) it is bound to."""

    name: str
    dylib: str
    weak: bool


@dataclass(frozen=True)
class SignatureOutput:
    """A slice's embedded code signature, as read back from the file."""

    identifier: str | None
    flags: tuple[str, ...]
    adhoc: bool
    linker_signed: bool
    team_id: str | None
    entitlements: dict[str, Plain] | None

    @classmethod
    def of(cls, sig: Signature) -> SignatureOutput:
        ent = plain(sig.entitlements) if sig.entitlements is not None else None
        return cls(sig.identifier, sig.flags, sig.adhoc, sig.linker_signed, sig.team_id, ent)


@dataclass(frozen=True)
class SliceOutput:
    """One architecture of a binary. `imports` (dylib -> symbol count) only for Mach-O,
    `symbols` only with `verify --symbols`, `signature` when signed, `interpreter` for ELF."""

    arch: str
    filetype: str
    uuid: str | None
    minos: str | None
    sdk: str | None
    dylibs: tuple[DylibOutput, ...]
    rpaths: tuple[str, ...]
    signed: bool
    imports: dict[str, int] | None = field(default=None, metadata=OMIT_NONE)
    symbols: tuple[SymbolOutput, ...] | None = field(default=None, metadata=OMIT_NONE)
    signature: SignatureOutput | None = field(default=None, metadata=OMIT_NONE)
    interpreter: str | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def of(cls, s: Slice, symbols: bool = False, macho: bool = True) -> SliceOutput:
        imports: dict[str, int] | None = None
        listed: tuple[SymbolOutput, ...] | None = None
        if macho:  # what dyld must bind at launch
            imports = {}
            for imp in s.imports:
                imports[imp.dylib] = imports.get(imp.dylib, 0) + 1
            if symbols:
                listed = tuple(SymbolOutput(i.name, i.dylib, i.weak) for i in s.imports)
        return cls(
            arch=s.arch,
            filetype=s.filetype,
            uuid=s.uuid,
            minos=s.minos,
            sdk=s.sdk,
            dylibs=tuple(DylibOutput(d.name, d.kind) for d in s.dylibs),
            rpaths=s.rpaths,
            signed=s.signed,
            imports=imports,
            symbols=listed,
            signature=SignatureOutput.of(s.signature) if s.signature is not None else None,
            interpreter=s.interpreter,
        )


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class VerifyOutput:
    """`llamabuild verify --json`: the binary's slices and the policy findings."""

    path: Path
    format: BinaryFormat
    ok: bool
    fat: bool
    slices: tuple[SliceOutput, ...]
    findings: tuple[FindingOutput, ...]
