"""`llamabuild release-summary`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.builder.release import ReleaseSummary


@app.command("release-summary")
def release_summary_cmd(
    root: Annotated[
        Path,
        typer.Argument(help="A directory with one sub-directory per recipe's dist/<recipe>/."),
    ],
    json_out: JsonOpt = False,
) -> None:
    """One summary of a release matrix: every recipe's commit, sha256, UUIDs, verify verdict
    and compiler-cache hits (from its manifest.json and verify.json)."""
    from llamabuild.builder.release import summarize, verdicts
    from llamabuild.core import github, report

    summary = summarize(root)
    facts = {f"verify {name}": text for name, text in verdicts(summary).items()}
    facts |= {f"ccache {e.recipe}": e.ccache.describe() for e in summary.recipes if e.ccache}
    github.publish(
        "llamabuild release",
        [],  # each recipe's findings were annotated by its own job; the verdicts are above
        outputs=[
            github.Output(str(e.artifact), e.binary_sha256, {a: u for a, u in e.uuids.items() if u})
            for e in summary.recipes
        ],
        extra=facts,
        default_file=str(root),
    )
    if json_out:
        report.emit_json(summary, command="release-summary")
    else:
        render(summary)
    raise typer.Exit(0 if summary.ok else 1)


def render(summary: ReleaseSummary) -> None:
    from llamabuild.builder.release import verdicts
    from llamabuild.core import report

    verdict = verdicts(summary)
    rows = []
    for e in summary.recipes:
        uuids = ", ".join(f"{a}: {u}" for a, u in e.uuids.items() if u) or "-"
        cache = e.ccache.describe() if e.ccache else "-"
        sha = (e.binary_sha256 or "-")[:16]
        rows.append([e.recipe, e.commit or "-", sha, uuids, verdict[e.recipe], cache])
    columns = ("recipe", "commit", "sha256", "UUIDs", "verify", "ccache")
    report.print_rows(f"release {summary.root}", columns, rows)
    found = [
        [e.recipe, f.severity.value, f.rule, f.message] for e in summary.recipes for f in e.findings
    ]
    if found:
        report.print_rows("findings", ("recipe", "severity", "rule", "message"), found)
