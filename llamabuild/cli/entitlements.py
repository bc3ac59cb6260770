"""`llamabuild entitlements`: render a preset (+ extra keys), lint it, print or write it."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from llamabuild import github, report
from llamabuild.cli.app import JsonOpt, app
from llamabuild.errors import InputError
from llamabuild.findings import exit_code

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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: a reader never sees half a file.

    Missing parent folders are created (like `mkdir -p`), and the file gets the mode any new
    file gets (0666 minus the umask), not mkstemp's owner-only 0600.
    """
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        tmp.replace(path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
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
    from llamabuild import entitlements as ent

    result = ent.resolve(
        preset=preset, file=entitlements, sets=sets or (), config=ent.load_config(config)
    )
    findings = list(result.findings)
    code = exit_code(findings)
    if output is not None and code == 0:
        write_atomic(output, result.xml)
    github.publish("llamabuild entitlements", findings, default_file=str(output or "") or None)
    if json_out:
        payload = {"ok": code == 0, **result.to_json()}
        payload["output"] = str(output) if output is not None and code == 0 else None
        payload["plist"] = result.xml.decode("utf-8", "replace")
        report.emit_json(payload)
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
