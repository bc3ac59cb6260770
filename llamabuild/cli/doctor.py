"""`llamabuild doctor`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from rich.console import Console

    from llamabuild.doctor import DoctorReport


def _columns() -> int:
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 100


@app.command("doctor")
def doctor_cmd(
    recipe: Annotated[
        str | None,
        typer.Option("--recipe", help="Recipe to check [default: the host's default recipe]."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Which tools a recipe needs, which are here (path, version), and how to install the rest."""
    from llamabuild import github, report
    from llamabuild.doctor import diagnose
    from llamabuild.findings import exit_code

    result = diagnose(recipe)
    github.publish(
        f"llamabuild doctor ({result.recipe})",
        result.findings,
        recipe=result.recipe,
        extra={"host": result.host.label},
    )
    if json_out:
        report.emit_json(result.output(), command="doctor")
    else:
        render(result)
    raise typer.Exit(exit_code(result.findings))


def render(result: DoctorReport, out: Console | None = None) -> None:
    """The report as a table that fits the terminal (100 columns when not one, or $COLUMNS):
    long cells (paths, versions, what a tool affects) wrap, never cut with an ellipsis."""
    from rich.table import Table

    from llamabuild import report
    from llamabuild.doctor import tool_rows
    from llamabuild.findings import Severity
    from llamabuild.report import escape

    out = out or report.console()
    width = out.width if out.is_terminal else min(out.width, _columns())
    recipe = escape(result.recipe)
    out.print(f"[bold]recipe {recipe}[/] on {escape(result.host.label)}")
    table = Table(show_lines=False, expand=True)
    table.add_column("tool", overflow="fold", max_width=22)
    table.add_column("role", overflow="fold", max_width=10)
    table.add_column("status", no_wrap=True)
    table.add_column("version", overflow="fold", max_width=16)
    table.add_column("path", overflow="fold", ratio=3)
    table.add_column("affects", overflow="fold", ratio=2)
    for role, st in tool_rows(result):
        if st.found:
            status = "[green]found[/]"
        elif role == "required":
            status = "[bold red]missing[/]"
        else:
            status = "[yellow]missing[/]" if role == "optional" else "[dim]missing[/]"
        version = st.version or (st.detail if st.found else "") or ""
        cells = (st.label, role, version, st.path or "", st.affects)
        label, role_cell, version, path, affects = (escape(c) for c in cells)
        table.add_row(label, role_cell, status, version, path, affects)
    out.print(table, width=width)
    verdicts = ", ".join(
        f"{escape(name)} [{'green' if ok else 'red'}]{'yes' if ok else 'no'}[/]"
        for name, ok in result.recipes.items()
    )
    out.print(f"runnable here: {verdicts}", width=width, soft_wrap=False)
    if result.findings:
        out.print(report.findings_table(result.findings, "Gaps"), width=width)
    errors = sum(f.severity is Severity.ERROR for f in result.findings)
    warnings = sum(f.severity is Severity.WARNING for f in result.findings)
    verdict = "[bold red]FAIL[/]" if errors else "[bold green]OK[/]"
    out.print(f"{verdict}: {errors} error(s), {warnings} warning(s)")
    if result.runnable:
        out.print(f"[bold green]{recipe} can run on this machine[/]")
    else:
        out.print(f"[bold red]{recipe} cannot run on this machine[/]")
