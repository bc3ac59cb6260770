"""`llamabuild notarize`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.signing.notarize import NotarizeReport


@app.command("notarize")
def notarize_cmd(
    path: Annotated[Path, typer.Argument(help="The signed Mach-O executable (Developer ID).")],
    keychain_profile: Annotated[
        str | None,
        typer.Option(
            "--keychain-profile", help="notarytool credentials stored in the keychain (a Mac)."
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="App Store Connect API key: AuthKey_ID.p8 (notarytool), or a unified JSON key "
            "(the rcodesign engine, off a Mac).",
        ),
    ] = None,
    key_id: Annotated[str | None, typer.Option("--key-id", help="The API key's id.")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="The API key's issuer id.")] = None,
    timeout: Annotated[
        int, typer.Option("--timeout", min=1, help="Minutes to wait for Apple's verdict.")
    ] = 60,
    zip_out: Annotated[
        Path | None, typer.Option("--zip-out", help="Also keep the submitted zip here.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Zip a signed executable, submit it to Apple's notary service, fail unless Accepted."""
    from llamabuild.core import report
    from llamabuild.signing.notarize import notarize
    from llamabuild.tools.notarytool import Credentials

    creds = Credentials(keychain_profile=keychain_profile, key=key, key_id=key_id, issuer=issuer)
    result = notarize(path, creds, timeout_min=timeout, keep_zip=zip_out)
    if json_out:
        report.emit_json(result, command="notarize")
    else:
        render_notarize(result)
    raise typer.Exit(0 if result.ok else 1)  # Accepted, or a finding says why not


def render_notarize(result: NotarizeReport) -> None:
    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    out.print(
        f"[bold]{escape(str(result.path))}[/] via {result.engine} ({escape(result.credentials)})"
    )
    sub = result.submission
    if sub is None:
        out.print("[red]not submitted[/]: fix the findings below first")
    else:
        color = "green" if result.ok else "red"
        shown = escape(f"{sub.status} (submission {sub.id}): {sub.message or ''}")
        out.print(f"zip {escape(result.zip_name)} sha256 {result.zip_sha256}")
        out.print(f"[{color}]{shown}[/]")
    report.print_findings(result.findings)
    out.print(escape(result.staple_note))
