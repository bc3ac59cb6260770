"""`llamabuild entitlements`: render a preset (+ extra keys), lint it, print or write it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

PresetOpt = Annotated[
    str | None,
    typer.Option("--preset", help="Template in templates/entitlements (app-helper by default)."),
]
EntitlementsOpt = Annotated[
    Path | None,
    typer.Option("--entitlements", help="Use this plist instead of a preset (merged with --set)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Extra key: KEY=VALUE, typed true/false/int/[a,b]/string."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="llamabuild.toml to read [entitlements] from (default: ./)."),
]


def write_atomic(path: Path, data: bytes, parents: bool = True) -> None:
    """files.write_atomic, with a write failure as a one-line InputError (exit 2). Only a
    regular file is ever replaced (a FIFO, a device such as /dev/full or a folder is refused,
    never turned into a file); without `parents` a missing folder is refused too."""
    import stat

    from llamabuild.core import files
    from llamabuild.core.errors import InputError

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        hint = "check the path"
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})", hint=hint) from None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(
            f"{path}: exists and is not a regular file (refusing to replace it)",
            hint="name a new file, or a regular file to overwrite",
        )
    if not parents and not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder", hint="create it first, or fix the path")
    try:
        files.write_atomic(path, data)
    except OSError as exc:
        raise InputError(
            f"{path}: cannot write ({exc.strerror or exc})",
            hint="the folder must be writable and every part of the path above the file a folder",
        ) from exc


@app.command("entitlements")
def entitlements_cmd(
    preset: PresetOpt = None,
    entitlements: EntitlementsOpt = None,
    sets: SetOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the plist here (else stdout); missing folders are created.",
        ),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Render entitlements from a preset, parse them back and lint them."""
    from llamabuild.core import github, report
    from llamabuild.core.findings import exit_code
    from llamabuild.core.report import escape
    from llamabuild.signing import entitlements as ent

    result = ent.resolve(
        preset=preset, file=entitlements, sets=sets or (), config=ent.load_config(config)
    )
    findings = list(result.findings)
    code = exit_code(findings)
    if output is not None and code == 0:
        write_atomic(output, result.xml)
    github.publish("llamabuild entitlements", findings, default_file=str(output or "") or None)
    if json_out:
        written = output if code == 0 else None
        report.emit_json(ent.EntitlementsReport(code == 0, result, written), command="entitlements")
    else:
        err = report.console(stderr=True)
        if findings:
            err.print(
                report.findings_table(findings, f"Entitlements lint ({escape(result.source)})")
            )
        if output is None:
            # The plist is data, not a message: byte for byte (rich would expand its tabs).
            sys.stdout.write(result.xml.decode("utf-8"))
            sys.stdout.flush()
        elif code == 0:
            err.print(
                f"wrote {escape(str(output))} ({escape(result.source)}, {len(result.data)} keys)"
            )
        else:
            err.print(f"[bold red]not written[/]: {escape(str(output))} (fix the errors above)")
    raise typer.Exit(code)
