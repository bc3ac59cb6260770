"""The one renderer: findings and results to a rich table, JSON, GitHub annotations or Xcode.

Human output goes through rich (plain when stdout is not a TTY); `--json` prints exactly one
JSON object on stdout and nothing else there.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # rich loads on first human output: `--json` never pays for it
    from rich.console import Console
    from rich.table import Table

from llamabuild.core.findings import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


# C0/C1 controls, DEL, and the bidi overrides that reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class ErrorReport:
    """Any command's `--json` when it stops on an error: the message, a hint, the exit code."""

    ok: Literal[False]
    error: str
    hint: str | None
    exit_code: int


def _escaped(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """Text from a file (a dylib name, an rpath, a path) with every control character shown as
    an escape: an ESC sequence, CR or bidi override can no longer repaint a terminal, forge a
    GitHub annotation or an Xcode issue line. JSON keeps the exact string instead."""
    return _CONTROL.sub(_escaped, text)


def escape(text: str) -> str:
    """Untrusted text for rich: control characters escaped, then markup escaped."""
    from rich.markup import escape as markup_escape

    return markup_escape(inert(text))


# Above this many rows a table is printed as aligned plain lines: rich measures every cell
# (40,000 rows took a minute) and the output is for logs by then anyway.
RICH_TABLE_ROWS = 500


def print_rows(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table of untrusted cells (escaped here): rich when small, plain aligned lines when big.

    Long cells (paths) wrap instead of being cut with an ellipsis.
    """
    out = console()
    if len(rows) <= RICH_TABLE_ROWS:
        from rich.table import Table

        table = Table(title=escape(title), title_justify="left")
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(escape(c) for c in row))
        out.print(table)
        return
    cells = [[inert(c) for c in row] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    widths[-1] = 0  # the last column is not padded
    lines = [inert(title), "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    out.file.write("\n".join(lines) + "\n")
    out.file.flush()


def console(stderr: bool = False) -> Console:
    # Rebuilt on each call so tests that swap sys.stdout see the output. Not a TTY (CI logs,
    # pipes): no colour, and wide enough that paths in tables are never cut.
    file = sys.stderr if stderr else sys.stdout
    width = None if file.isatty() else 200
    from rich.console import Console

    return Console(file=file, highlight=False, soft_wrap=True, width=width)


def json_text(obj: Any, indent: int | None = None) -> str:
    """One JSON document, newline-terminated: a command's result (its own --json model) through
    `to_jsonable`, or plain data as it is (anything else in it as its str())."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        from llamabuild.core.jsonout import to_jsonable

        obj = to_jsonable(obj)
    return json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n"


def emit_json(obj: Any, *, command: str | None = None) -> None:
    """Print `obj` as the one JSON object of a `--json` run.

    `command` names the command it is the output of: the object follows
    llamabuild/schemas/command-<command>.schema.json (the error object, error.schema.json,
    has no command). The test suite checks every object printed against that schema.
    """
    del command  # the tests' check reads it; the output is the same
    # Indented only for a person at a terminal: the indenting encoder is pure Python and
    # takes seconds on a 40,000-command binary, the compact one is C.
    sys.stdout.write(json_text(obj, indent=2 if sys.stdout.isatty() else None))
    sys.stdout.flush()


def findings_table(findings: Sequence[Finding], title: str = "Findings") -> Table:
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("severity", "rule", "arch", "message"):
        table.add_column(col, overflow="fold")
    for f in findings:
        # Only the severity is our markup; messages carry paths and dylib names from the input.
        msg = escape(f.message) + (f"\n[dim]hint: {escape(f.hint)}[/dim]" if f.hint else "")
        sev = f"[{_STYLE[f.severity]}]{f.severity.value}[/]"
        table.add_row(sev, escape(f.rule), escape(f.arch or ""), msg)
    return table


def print_findings(findings: Sequence[Finding], title: str = "Findings") -> None:
    out = console()
    if len(findings) > RICH_TABLE_ROWS:
        rows = [
            (
                f.severity.value,
                f.rule,
                f.arch or "",
                f.message + (f" (hint: {f.hint})" if f.hint else ""),
            )
            for f in findings
        ]
        print_rows(title, ("severity", "rule", "arch", "message"), rows)
    elif findings:
        out.print(findings_table(findings, title))
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    verdict = "[bold red]FAIL[/]" if errors else "[bold green]OK[/]"
    out.print(f"{verdict}: {errors} error(s), {warnings} warning(s)")


def github_annotations(findings: Iterable[Finding], default_file: str | None = None) -> list[str]:
    """`::error file=...::message` lines, the GitHub Actions workflow-command format."""
    lines = []
    for f in findings:
        if f.severity is Severity.INFO:
            continue
        file = f.path or default_file
        props = f"file={_escape_prop(inert(file))}," if file else ""
        title = inert(f"title=llamabuild {f.rule}" + (f" ({f.arch})" if f.arch else ""))
        text = inert(f.message + (f" (hint: {f.hint})" if f.hint else ""))
        lines.append(f"::{f.severity.value} {props}{_escape_prop(title)}::{_escape_data(text)}")
    return lines


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def xcode_lines(findings: Iterable[Finding], default_file: str | None = None) -> list[str]:
    """`path: error: message` lines that Xcode's issue navigator picks up from a Run Script."""
    lines = []
    for f in findings:
        if f.severity is Severity.INFO:
            continue
        where = f.path or default_file
        prefix = f"{where}: " if where else ""
        arch = f" [{f.arch}]" if f.arch else ""
        hint = f" (hint: {f.hint})" if f.hint else ""
        line = f"{prefix}{f.severity.value}: {f.rule}{arch}: {f.message}{hint}"
        lines.append(inert(line))
    return lines


def print_annotations(findings: Sequence[Finding], default_file: str | None = None) -> None:
    """Every finding as a GitHub annotation, on stderr (stdout stays the --json channel)."""
    for line in github_annotations(findings, default_file):
        print(line, file=sys.stderr)
