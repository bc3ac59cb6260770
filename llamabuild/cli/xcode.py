"""`llamabuild xcode-phase`: the Run Script build phase (Xcode's variables in, issue lines out)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app
from llamabuild.cli.entitlements import EntitlementsOpt, PresetOpt

if TYPE_CHECKING:
    from llamabuild.signing.xcode_phase import PhaseReport


@app.command("xcode-phase")
def xcode_phase_cmd(
    preset: PresetOpt = None,
    entitlements: EntitlementsOpt = None,
    identifier: Annotated[
        str | None,
        typer.Option(
            "--identifier",
            help="Signing identifier (default: $PRODUCT_BUNDLE_IDENTIFIER.llama-server).",
        ),
    ] = None,
    timestamp: Annotated[
        bool | None,
        typer.Option(
            "--timestamp/--no-timestamp",
            help="Secure timestamp (default: only when archiving, ACTION=install).",
        ),
    ] = None,
    binary_name: Annotated[
        str, typer.Option("--binary-name", help="File name inside Contents/Resources.")
    ] = "llama-server",
    stamp: Annotated[
        Path | None,
        typer.Option(
            "--stamp",
            help="Touch this file on success (the phase's output file); missing folders are "
            "created.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign and verify Contents/Resources/llama-server from an Xcode Run Script phase."""
    from llamabuild.core import report
    from llamabuild.core.findings import exit_code
    from llamabuild.signing.xcode_phase import run_phase

    result = run_phase(
        os.environ,
        preset=preset,
        entitlements_file=entitlements,
        identifier=identifier,
        timestamp=timestamp,
        binary_name=binary_name,
    )
    binary = str(result.inputs.binary)
    if stamp is not None and result.ok:
        from llamabuild.cli.entitlements import write_atomic

        write_atomic(stamp, f"{binary}\n".encode())
    if json_out:
        report.emit_json(result, command="xcode-phase")
    else:
        for line in report.xcode_lines(result.findings, default_file=binary):
            print(line)
        print(_summary(result.inputs.binary, result))
    raise typer.Exit(exit_code(result.findings) if result.ok else 1)


def _summary(binary: Path, result: PhaseReport) -> str:
    if result.sign is not None and not result.sign.published:
        return f"note: llamabuild: {binary} NOT signed (left untouched)"
    if result.sign is not None:
        sign = result.sign
        what = f"signed ({sign.engine}, {sign.entitlements_source}, {sign.request.identifier})"
    else:
        what = "not signed (CODE_SIGNING_ALLOWED=NO), linkage verified"
    verdict = "ok" if result.ok else "FAILED"
    return f"note: llamabuild: {binary}: {what}; verify {verdict}"
