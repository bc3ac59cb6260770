"""`llamabuild verify-app`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app
from llamabuild.config.versions import DEFAULT_MIN_MACOS

if TYPE_CHECKING:
    from llamabuild.appstore.verify_app import AppReport

# bundle.DEFAULT_HELPER (a test keeps the two equal): the default shows in --help without
# importing the bundle checks.
DEFAULT_HELPER = "Contents/Resources/llama-server"


@app.command("verify-app")
def verify_app_cmd(
    app_path: Annotated[Path, typer.Argument(metavar="APP.app", help="The .app bundle.")],
    xcarchive: Annotated[
        Path | None,
        typer.Option("--xcarchive", help="The .xcarchive: its dSYMs must match the archived app."),
    ] = None,
    binary_path: Annotated[
        str, typer.Option("--binary-path", help="The helper's path inside the bundle.")
    ] = DEFAULT_HELPER,
    min_macos: Annotated[
        str,
        typer.Option("--min-macos", help="Deployment target; a newer helper minos is an error."),
    ] = DEFAULT_MIN_MACOS,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Undeclared required-reason APIs are errors, not warnings."),
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", help="dist/<recipe>/manifest.json: bundled models must load."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a .app (and its .xcarchive) for the App Store rejections a helper binary causes."""
    from llamabuild.appstore.verify_app import verify_app
    from llamabuild.builder.model_pins import bundle_models
    from llamabuild.core import github, report
    from llamabuild.core.findings import exit_code
    from llamabuild.inspect.policy import Policy, parse_min_macos

    policy = Policy(min_macos=parse_min_macos(min_macos))
    models = bundle_models(manifest)
    result = verify_app(app_path, binary_path, xcarchive, policy, strict=strict, models=models)
    github.publish("llamabuild verify-app", result.findings, default_file=str(app_path))
    if json_out:
        report.emit_json(result, command="verify-app")
    else:
        render_app(result)
    raise typer.Exit(exit_code(result.findings))


def render_app(result: AppReport) -> None:
    from llamabuild.config.constants import SANDBOX_KEY
    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    # Paths come from the user's tree: escaped so rich never reads them as markup.
    out.print(f"[bold]{escape(str(result.app))}[/]")
    out.print(f"helper: {escape(str(result.helper))}")
    if result.helper_report is not None:
        for s in result.helper_report.binary.slices:
            sig = "unsigned"
            if s.signature is not None:
                sandbox = bool((s.signature.entitlements or {}).get(SANDBOX_KEY))
                sig = f"signed ({'sandboxed' if sandbox else 'no sandbox'})"
            out.print(escape(f"  {s.arch}  uuid {s.uuid or '-'}  {sig}"))
    if result.xcarchive is not None:
        out.print(f"archive: {escape(str(result.xcarchive))}")
        for role, entry in result.dsyms.items():
            uuids = ", ".join(f"{a} {u}" for a, u in entry.uuids.items())
            out.print(escape(f"  {role} dSYM: {entry.path}  {uuids or '-'}"))
    for rel, categories in result.required_reason_apis.items():
        out.print(escape(f"required-reason APIs in {rel}: {', '.join(categories)}"))
    for m in result.models:
        out.print(escape(f"model: {m.path}  {m.architecture or '-'}  {m.tensors} tensors"))
    report.print_findings(result.findings)
