"""`llamabuild dsym`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.inspect.dsym import DsymReport


@app.command("dsym")
def dsym_cmd(
    binary: Annotated[Path, typer.Argument(help="The Mach-O binary (thin or fat), built with -g.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The .dSYM to write (BINARY.dSYM).")
    ] = None,
    strip: Annotated[
        bool, typer.Option("--strip", help="After a good dSYM, `strip -S` the binary (same UUID).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Extract a .dSYM with dsymutil and prove it matches the binary, arch by arch."""
    from llamabuild.core import github, report
    from llamabuild.core.findings import exit_code
    from llamabuild.inspect.dsym import make_dsym

    result = make_dsym(binary, output, strip=strip)
    github.publish("llamabuild dsym", result.findings, default_file=str(binary))
    if json_out:
        report.emit_json(result, command="dsym")
    else:
        render_dsym(result)
    raise typer.Exit(exit_code(result.findings))


def render_dsym(result: DsymReport) -> None:
    from rich.table import Table

    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    # Paths and dsymutil's own lines are escaped so rich never reads them as markup.
    title = escape(f"{result.binary} -> {result.path}")
    table = Table(title=title, title_justify="left")
    for col in ("arch", "binary UUID", "dSYM UUID"):
        table.add_column(col)
    for arch, uuid in result.binary_uuids.items():
        theirs = escape(str(result.uuids.get(arch) or "-"))
        shown = f"[green]{theirs}[/]" if result.uuids.get(arch) == uuid else f"[red]{theirs}[/]"
        table.add_row(escape(arch), escape(uuid or "-"), shown)
    out.print(table)
    for note in result.tool_warnings[:5]:
        out.print(f"[yellow]dsymutil {escape(note)}[/]")
    if len(result.tool_warnings) > 5:
        out.print(f"[yellow]... {len(result.tool_warnings) - 5} more dsymutil warnings[/]")
    if result.published:
        out.print(
            f"wrote {escape(str(result.path))}"
            + (" and stripped the binary" if result.stripped else "")
        )
    else:
        out.print("[red]not written[/]: the previous dSYM (if any) was kept")
    report.print_findings(result.findings)
