"""The one renderer: findings and results to a rich table, JSON, GitHub annotations or Xcode.

Human output goes through rich (plain when stdout is not a TTY); `--json` prints exactly one
JSON object on stdout and nothing else there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llamabuild.findings import Finding, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def console(stderr: bool = False) -> Console:
    # Rebuilt on each call so tests that swap sys.stdout see the output. Not a TTY (CI logs,
    # pipes): no colour, and wide enough that paths in tables are never cut.
    file = sys.stderr if stderr else sys.stdout
    width = None if file.isatty() else 200
    return Console(file=file, highlight=False, soft_wrap=True, width=width)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def findings_table(findings: Sequence[Finding], title: str = "Findings") -> Table:
    table = Table(title=title, show_lines=False)
    for col in ("severity", "rule", "arch", "message"):
        table.add_column(col)
    for f in findings:
        # Only the severity is our markup; messages carry paths and dylib names from the input.
        msg = escape(f.message) + (f"\n[dim]hint: {escape(f.hint)}[/dim]" if f.hint else "")
        sev = f"[{_STYLE[f.severity]}]{f.severity.value}[/]"
        table.add_row(sev, escape(f.rule), escape(f.arch or ""), msg)
    return table


def print_findings(findings: Sequence[Finding], title: str = "Findings") -> None:
    out = console()
    if findings:
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
        props = f"file={_escape_prop(file)}," if file else ""
        title = f"title=llamabuild {f.rule}" + (f" ({f.arch})" if f.arch else "")
        text = f.message + (f" (hint: {f.hint})" if f.hint else "")
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
        lines.append(f"{prefix}{f.severity.value}: {f.rule}{arch}: {f.message}{hint}")
    return lines


def print_annotations(findings: Sequence[Finding], default_file: str | None = None) -> None:
    """Every finding as a GitHub annotation, on stderr (stdout stays the --json channel)."""
    for line in github_annotations(findings, default_file):
        print(line, file=sys.stderr)
