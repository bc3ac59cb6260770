"""The `--json` output of every command as typed, frozen models.

`report.emit_json` prints `to_jsonable(model)`; `python -m llamabuild.schema` turns the same
models into llamabuild/schemas/command-<name>.schema.json (and error.schema.json). A key that is
only present sometimes is an OMIT_NONE field; everything else is always there.

The shared classes (Finding, Slice, Signature) keep their own shape; the JSON-facing models here
are built from them (`FindingOutput.of`, `SliceOutput.of`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from llamabuild.core.findings import FindingOutput as FindingOutput  # re-exported
from llamabuild.core.findings import findings_output as findings_output  # re-exported
from llamabuild.core.jsonout import OMIT_NONE
from llamabuild.model.results import ModelOutput as ModelOutput  # re-exported
from llamabuild.outputs_doctor import DoctorOutput as DoctorOutput  # re-exported
from llamabuild.outputs_doctor import HostOutput as HostOutput
from llamabuild.outputs_doctor import ToolOutput as ToolOutput
from llamabuild.outputs_doctor import ToolRole as ToolRole
from llamabuild.outputs_doctor import ToolStatus as ToolStatus
from llamabuild.outputs_verify import (  # re-exported: every output model is importable here
    DylibOutput as DylibOutput,
)
from llamabuild.outputs_verify import Plain as Plain
from llamabuild.outputs_verify import SignatureOutput as SignatureOutput
from llamabuild.outputs_verify import SliceOutput as SliceOutput
from llamabuild.outputs_verify import SymbolOutput as SymbolOutput
from llamabuild.outputs_verify import VerifyOutput as VerifyOutput
from llamabuild.outputs_verify import plain as plain


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
    required_reason_apis: dict[str, dict[str, tuple[str, ...]]]
    """Each Mach-O (bundle-relative) -> the required-reason API categories it imports ->
    the imported symbols that put it there (llamabuild/data/required_reason_apis.toml)."""
    models: tuple[ModelOutput, ...]
    """Every .gguf in the bundle, as `verify-model` reads it."""
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


@dataclass(frozen=True)
class ErrorOutput:
    """Any command's `--json` when it stops on an error: the message, a hint, the exit code."""

    ok: Literal[False]
    error: str
    hint: str | None
    exit_code: int
