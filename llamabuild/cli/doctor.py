"""`llamabuild doctor`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llamabuild.builder.doctor import DoctorReport


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
    from llamabuild.builder.doctor import diagnose
    from llamabuild.core import github, report
    from llamabuild.core.findings import exit_code

    result = diagnose(recipe)
    github.publish(
        f"llamabuild doctor ({result.recipe})",
        result.findings,
        recipe=result.recipe,
        extra={"host": result.host.label},
    )
    if json_out:
        report.emit_json(result, command="doctor")
    else:
        render(result)
    raise typer.Exit(exit_code(result.findings))


# The tools table: fixed columns, then the path column with what is left of the width.
TOOL_WIDTH = 20  # labels wrap at spaces beyond this (never below their longest word)
ROLE_WIDTH = len("not needed")
STATUS_WIDTH = len("missing")
MIN_PATH_WIDTH = 24  # the longest word of what a tool is for: "CMAKE_INSTALL_NAME_TOOL)"
PATH_HEADER = "path / used for"


def break_path(text: str, width: int) -> list[str]:
    """`text` (a path, or a path plus arguments) in lines of at most `width` cells, broken
    after a `/` or at a space, never inside a name; a single name longer than `width` is left
    whole for the table to fold."""
    import re

    from rich.cells import cell_len

    lines = [""]
    for piece in re.findall(r"[^/ ]*/|[^/ ]+ *| +", text):
        if lines[-1] and cell_len(lines[-1] + piece.rstrip()) > width:
            lines[-1] = lines[-1].rstrip()
            lines.append("")
        lines[-1] += piece
    return [line.rstrip() for line in lines]


@dataclass(frozen=True)
class _Row:
    """One tool as shown: untrusted text already made inert (control characters escaped)."""

    label: str
    role: str
    status: str  # markup
    version: str
    where: str  # path, and what it answered when that is not a version
    affects: str


def _rows(result: DoctorReport) -> list[_Row]:
    from llamabuild.builder.doctor import tool_rows
    from llamabuild.core.report import inert

    rows = []
    for role, st in tool_rows(result):
        if st.found:
            status = "[green]found[/]"
        elif role == "required":
            status = "[bold red]missing[/]"
        else:
            status = "[yellow]missing[/]" if role == "optional" else "[dim]missing[/]"
        detail = st.detail if st.found and not st.version else None
        where = " ".join(t for t in (st.path, f"({detail})" if detail else None) if t)
        rows.append(
            _Row(
                inert(st.label),
                role,
                status,
                inert(st.version or ""),
                inert(where),
                inert(st.affects),
            )
        )
    return rows


def _longest_word(texts: Sequence[str]) -> int:
    from rich.cells import cell_len

    return max((cell_len(w) for t in texts for w in t.split()), default=1)


def _tools_table(rows: Sequence[_Row], width: int) -> Table | None:
    """The tools as a table of at most `width` columns with no word split, or None when the
    terminal is too narrow for one."""
    from rich.cells import cell_len
    from rich.table import Table

    from llamabuild.core.report import escape

    labels = [r.label for r in rows]
    tool_w = max(min(TOOL_WIDTH, max(map(cell_len, labels), default=1)), _longest_word(labels))
    version_w = max([len("version"), *(cell_len(r.version) for r in rows)])
    need_path = max(MIN_PATH_WIDTH, _longest_word([r.affects for r in rows]))
    texts = [PATH_HEADER, *(r.where for r in rows), *(r.affects for r in rows)]
    wanted = max(need_path, *map(cell_len, texts))
    # Six rules and ten padding spaces; a narrow terminal drops the outer rules and padding
    # (four rules, eight spaces) and gives labels only their longest word.
    edge = width - (tool_w + ROLE_WIDTH + STATUS_WIDTH + version_w + 16) >= need_path
    if not edge:
        tool_w = _longest_word(labels)
    room = width - (tool_w + ROLE_WIDTH + STATUS_WIDTH + version_w + (16 if edge else 12))
    if room < need_path:
        return None
    path_w = min(wanted, room)
    table = Table(show_lines=False, show_edge=edge, pad_edge=edge)
    table.add_column("tool", width=tool_w, overflow="fold")
    table.add_column("role", width=ROLE_WIDTH, no_wrap=True)
    table.add_column("status", width=STATUS_WIDTH, no_wrap=True)
    table.add_column("version", width=version_w, overflow="fold")
    table.add_column(PATH_HEADER, width=path_w, overflow="fold")
    for r in rows:
        lines = [escape(line) for line in break_path(r.where, path_w)] if r.where else []
        cell = "\n".join([*lines, f"[dim]{escape(r.affects)}[/]"])
        table.add_row(escape(r.label), r.role, r.status, escape(r.version), cell)
    return table


def render(result: DoctorReport, out: Console | None = None) -> None:
    """The report, fitting the terminal (100 columns when not one, or $COLUMNS).

    Nothing is cut with an ellipsis and no word is split: labels and what a tool is for wrap
    at spaces, paths after a `/`, and every column is at least as wide as its longest word.
    Below about 80 columns the tools are a list instead of a table."""
    from llamabuild.core import report
    from llamabuild.core.findings import Severity
    from llamabuild.core.report import escape

    out = out or report.console()
    width = out.width if out.is_terminal else min(out.width, _columns())
    recipe = escape(result.recipe)
    out.print(f"[bold]recipe {recipe}[/] on {escape(result.host.label)}")
    rows = _rows(result)
    table = _tools_table(rows, width)
    if table is not None:
        out.print(table, width=width)
    else:
        for r in rows:
            version = f" {escape(r.version)}" if r.version else ""
            out.print(f"{escape(r.label)} ({r.role}): {r.status}{version}", width=width)
            if r.where:
                out.print(f"  {escape(r.where)}", width=width)
            out.print(f"  [dim]{escape(r.affects)}[/]", width=width)
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
