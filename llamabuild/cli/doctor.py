"""`llamabuild doctor`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.doctor import DoctorReport


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
        report.emit_json(result.to_json())
    else:
        render(result)
    raise typer.Exit(exit_code(result.findings))


def render(result: DoctorReport) -> None:
    from rich.table import Table

    from llamabuild import report
    from llamabuild.doctor import tool_rows
    from llamabuild.report import escape

    out = report.console()
    recipe = escape(result.recipe)
    out.print(f"[bold]recipe {recipe}[/] on {escape(result.host.label)}")
    table = Table(show_lines=False)
    for col in ("tool", "role", "status", "version", "path", "affects"):
        table.add_column(col)
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
    out.print(table)
    verdicts = ", ".join(
        f"{escape(name)} [{'green' if ok else 'red'}]{'yes' if ok else 'no'}[/]"
        for name, ok in result.recipes.items()
    )
    out.print(f"runnable here: {verdicts}")
    report.print_findings(result.findings, title="Gaps")
    if result.runnable:
        out.print(f"[bold green]{recipe} can run on this machine[/]")
    else:
        out.print(f"[bold red]{recipe} cannot run on this machine[/]")
