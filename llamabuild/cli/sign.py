"""`llamabuild sign`: sign a Mach-O with rendered entitlements and prove the result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app
from llamabuild.cli.entitlements import ConfigOpt, EntitlementsOpt, PresetOpt, SetOpt

if TYPE_CHECKING:
    from llamabuild.signing.sign import SignReport


@app.command("sign")
def sign_cmd(
    binary: Annotated[Path, typer.Argument(help="The Mach-O to sign (thin or fat), in place.")],
    identity: Annotated[
        str, typer.Option("--identity", help="Signing identity for codesign; '-' is ad-hoc.")
    ] = "-",
    preset: PresetOpt = None,
    entitlements: EntitlementsOpt = None,
    sets: SetOpt = None,
    identifier: Annotated[
        str | None,
        typer.Option("--identifier", help="Code signing identifier (default: the file name)."),
    ] = None,
    no_runtime: Annotated[
        bool, typer.Option("--no-runtime", help="Do not enable the hardened runtime.")
    ] = False,
    no_timestamp: Annotated[
        bool, typer.Option("--no-timestamp", help="No secure timestamp (offline signing).")
    ] = False,
    p12: Annotated[
        Path | None,
        typer.Option(
            "--p12",
            help="PKCS#12 identity for the rcodesign engine; password from "
            "LLAMABUILD_P12_PASSWORD only.",
        ),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign with codesign (macOS) or the rcodesign engine, then read the signature back."""
    from llamabuild.core import github, report
    from llamabuild.core.errors import UsageError
    from llamabuild.core.findings import exit_code
    from llamabuild.signing import entitlements as ent
    from llamabuild.signing.sign import SignRequest, sign_binary

    if p12 is not None and identity != "-":
        raise UsageError("--identity and --p12 exclude each other", hint="pass one of them")
    cfg = ent.load_config(config)
    rendered = ent.resolve(preset=preset, file=entitlements, sets=sets or (), config=cfg)
    request = SignRequest(
        identity=identity,
        identifier=identifier or cfg.identifier,
        runtime=not no_runtime,
        timestamp=not no_timestamp,
        p12=p12,
    )
    result = sign_binary(binary, request, rendered)
    github.publish(
        "llamabuild sign",
        result.findings,
        outputs=[github.Output.of_file(binary)] if binary.is_file() else [],
        default_file=str(binary),
    )
    if json_out:
        report.emit_json(result, command="sign")
    else:
        render_sign(result)
    raise typer.Exit(exit_code(result.findings) if result.published else 1)


def render_sign(result: SignReport) -> None:
    from rich.table import Table

    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    req = result.request
    who = f"p12 {req.p12}" if req.p12 else ("ad-hoc" if req.identity == "-" else req.identity)
    out.print(f"[bold]{escape(str(result.path))}[/] via {result.engine} ({escape(who)})")
    out.print(f"entitlements: {escape(result.entitlements_source)}")
    if result.binary is not None:
        table = Table(title="read back", title_justify="left")
        for col in ("arch", "identifier", "flags", "entitlements"):
            table.add_column(col)
        for s in result.binary.slices:
            sig = s.signature
            ents = sig.entitlements if sig else None
            shown = "\n".join(f"{k} = {v!r}" for k, v in (ents or {}).items()) or "-"
            flags = ", ".join(sig.flags) if sig else "unsigned"
            ident = (sig.identifier or "") if sig else "-"
            table.add_row(*(escape(c) for c in (s.arch, ident, flags, shown)))
        out.print(table)
    report.print_findings(result.findings)
    if result.published:
        out.print(f"[bold green]signed[/] {escape(str(result.path))}")
    else:
        out.print(f"[bold red]not signed[/]: {escape(str(result.path))} left untouched")
