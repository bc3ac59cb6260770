"""Being a good citizen in a GitHub Actions job.

When GITHUB_ACTIONS=true, findings become `::error`/`::warning` annotations (report.py renders
them) and a short markdown report is appended to $GITHUB_STEP_SUMMARY, so a reviewer sees the
recipe, the commit, each output's sha256/UUID and the findings on the run page. Outside Actions
every function here is a no-op; `--json` stays the machine interface.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

from llamabuild.core import report
from llamabuild.core.files import sha256_file
from llamabuild.core.findings import Finding, Severity


@dataclass(frozen=True)
class Output:
    """One published file: path, sha256 and the Mach-O UUID of each arch (if any)."""

    path: str
    sha256: str | None = None
    uuids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_file(cls, path: Path, uuids: Mapping[str, str] | None = None) -> Output:
        return cls(str(path), sha256_file(path), dict(uuids or {}))


def in_actions(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    """Control characters (ESC, BEL, ...) from untrusted text as \\xNN, never raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\r\n", "\n"))


def _cell(text: object) -> str:
    """Untrusted text in a table cell: no raw control characters, no HTML, no cell break."""
    plain = html.escape(_visible(str(text)), quote=False)
    return plain.replace("|", "\\|").replace("\n", "<br>")


def _code(text: object) -> str:
    """Untrusted text inside a `code` span (entities would show literally there)."""
    return _visible(str(text)).replace("`", "'").replace("|", "\\|").replace("\n", " ")


class Facts(TypedDict, total=False):
    """What a step summary states besides the findings (every key optional)."""

    recipe: str | None
    commit: str | None
    outputs: Sequence[Output]
    extra: Mapping[str, str] | None


def summary_markdown(title: str, findings: Sequence[Finding], **facts: Unpack[Facts]) -> str:
    """The step-summary section: a heading, key facts, outputs table, findings table."""
    outputs = facts.get("outputs", ())
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    verdict = "❌ FAIL" if errors else "✅ OK"
    lines = [f"### {title}: {verdict} ({errors} error(s), {warnings} warning(s))", ""]
    shown_facts = {
        "recipe": facts.get("recipe"),
        "llama.cpp commit": facts.get("commit"),
        **(facts.get("extra") or {}),
    }
    for key, value in shown_facts.items():
        if value:
            lines.append(f"- **{_cell(key)}**: `{_code(value)}`")
    if outputs:
        lines += ["", "| output | sha256 | UUID |", "| --- | --- | --- |"]
        for o in outputs:
            uuids = ", ".join(f"{arch}: {u}" for arch, u in o.uuids.items()) or "-"
            lines.append(f"| `{_code(o.path)}` | `{_code(o.sha256 or '-')}` | {_cell(uuids)} |")
    shown = [f for f in findings if f.severity is not Severity.INFO]
    if shown:
        lines += ["", "| severity | rule | arch | message |", "| --- | --- | --- | --- |"]
        for f in shown:
            msg = f.message + (f" (hint: {f.hint})" if f.hint else "")
            arch, rule = _cell(f.arch or ""), _code(f.rule)
            lines.append(f"| {f.severity.value} | `{rule}` | {arch} | {_cell(msg)} |")
    return "\n".join(lines) + "\n\n"


def append_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY under Actions; returns the file written, else None."""
    env = env if env is not None else os.environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not in_actions(env) or not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(markdown)
    except OSError:
        return None  # a summary is a courtesy; never fail the step over it
    return path


def publish(
    title: str,
    findings: Sequence[Finding],
    *,
    default_file: str | None = None,
    **facts: Unpack[Facts],
) -> None:
    """Annotations on stderr plus the step summary; does nothing outside GitHub Actions."""
    if not in_actions():
        return
    report.print_annotations(findings, default_file)
    append_summary(summary_markdown(title, findings, **facts))
