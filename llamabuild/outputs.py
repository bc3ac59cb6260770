"""The `--json` output of every command as typed, frozen models.

`report.emit_json` prints `to_jsonable(model)`; `python -m llamabuild.schema` turns the same
models into llamabuild/schemas/command-<name>.schema.json (and error.schema.json). A key that is
only present sometimes is an OMIT_NONE field; everything else is always there.

The shared classes (Finding, Slice, Signature) keep their own shape; the JSON-facing models here
are built from them (`FindingOutput.of`, `SliceOutput.of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from llamabuild.findings import FindingOutput as FindingOutput  # re-exported
from llamabuild.findings import findings_output as findings_output  # re-exported
from llamabuild.inspect.model import BinaryFormat, Signature, Slice
from llamabuild.jsonout import OMIT_NONE

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


@dataclass(frozen=True)
class ArchivedDsym:
    """A .dSYM found in the .xcarchive, and the UUIDs of the binary it belongs to."""

    path: str
    binary: str
    uuids: dict[str, str | None]
    binary_uuids: dict[str, str | None] | None = field(default=None, metadata=OMIT_NONE)


class DsymRole(StrEnum):
    HELPER = "helper"
    APP = "app"


@dataclass(frozen=True)
class AppOutput:
    """`llamabuild verify-app --json`: the App Store checklist for a .app (and .xcarchive)."""

    app: Path
    helper: Path
    xcarchive: Path | None
    ok: bool
    helper_binary: VerifyOutput | None
    dsyms: dict[DsymRole, ArchivedDsym]
    findings: tuple[FindingOutput, ...]


@dataclass(frozen=True)
class DsymOutput:
    """`llamabuild dsym --json`: the dSYM made, its UUIDs against the binary's."""

    path: Path
    binary: Path
    ok: bool
    published: bool
    stripped: bool
    dwarf_file: Path | None
    uuids: dict[str, str | None]
    binary_uuids: dict[str, str | None]
    tool_warnings: tuple[str, ...]
    findings: tuple[FindingOutput, ...]


@dataclass(frozen=True)
class SignOutput:
    """`llamabuild sign --json`: what was asked, and the signature read back from the file."""

    ok: bool
    path: Path
    signed: bool
    engine: str
    identity: str
    p12: Path | None
    identifier: str | None
    runtime: bool
    timestamp: bool
    entitlements_source: str
    entitlements: dict[str, Plain]
    slices: tuple[SliceOutput, ...]
    findings: tuple[FindingOutput, ...]


@dataclass(frozen=True)
class EntitlementsOutput:
    """`llamabuild entitlements --json`: the rendered plist, parsed back, and its lint."""

    ok: bool
    source: str
    entitlements: dict[str, Plain]
    findings: tuple[FindingOutput, ...]
    output: Path | None
    plist: str


@dataclass(frozen=True)
class PhaseOutput:
    """`llamabuild xcode-phase --json`: the signing (unless not allowed) and the verification."""

    ok: bool
    app: Path
    binary: Path
    signing_allowed: bool
    sign: SignOutput | None
    verify: VerifyOutput | None
    findings: tuple[FindingOutput, ...]


@dataclass(frozen=True)
class CompletionOutput:
    finish_reason: str | None
    completion_tokens: int | None


@dataclass(frozen=True)
class SmokeOutput:
    """`llamabuild smoke --json`: the server started, answered and stopped."""

    ok: Literal[True]
    binary: Path
    model: Path
    model_generated: bool
    host: str
    port: int
    timings: dict[str, float]
    models: tuple[str, ...]
    completion: CompletionOutput
    stopped_by: str
    server_exit_code: int | None


class ToolRole(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True)
class ToolOutput:
    """One tool `doctor` looked for: where and which version, what lacks without it."""

    tool: str
    label: str
    found: bool
    path: str | None
    version: str | None
    detail: str | None
    affects: str
    hint: str
    role: ToolRole


@dataclass(frozen=True)
class HostOutput:
    system: str
    machine: str


@dataclass(frozen=True)
class DoctorOutput:
    """`llamabuild doctor --json`: the tools a recipe needs, found or how to install them."""

    ok: bool
    recipe: str
    runnable: bool
    host: HostOutput
    tools: tuple[ToolOutput, ...]
    recipes: dict[str, bool]
    findings: tuple[FindingOutput, ...]


@dataclass(frozen=True)
class ErrorOutput:
    """Any command's `--json` when it stops on an error: the message, a hint, the exit code."""

    ok: Literal[False]
    error: str
    hint: str | None
    exit_code: int
