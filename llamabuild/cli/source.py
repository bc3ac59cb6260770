"""`llamabuild source`: resolve the llama.cpp pin, fetch it into the cache, write the lock."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llamabuild.cli.app import JsonOpt, app
from llamabuild.core import report
from llamabuild.core.report import escape
from llamabuild.source import LOCK_NAME, SourceRequest, SourceTree, resolve_source
from llamabuild.tools.runner import default_runner

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source", help="Git URL (default: llama.cpp on GitHub), local directory or archive."
    ),
]
RefOpt = Annotated[
    str | None,
    typer.Option("--ref", help="Tag, branch or SHA (for an archive: the commit it carries)."),
]
Sha256Opt = Annotated[
    str | None, typer.Option("--sha256", help="Required for an archive: its expected sha256.")
]
UpdateOpt = Annotated[
    bool, typer.Option("--update", help="Re-resolve the pin and rewrite llamabuild.lock.")
]
DirtyOpt = Annotated[
    bool, typer.Option("--allow-dirty", help="Accept a source tree with uncommitted changes.")
]
LockOpt = Annotated[Path, typer.Option("--lock", help="The lock file.")]


@app.command("source")
def source_cmd(
    source: SourceOpt = None,
    ref: RefOpt = None,
    sha256: Sha256Opt = None,
    update: UpdateOpt = False,
    allow_dirty: DirtyOpt = False,
    lock: LockOpt = Path(LOCK_NAME),
    json_out: JsonOpt = False,
) -> None:
    """Pin llama.cpp to a full commit (or archive hash) and fetch it into the cache."""
    req = SourceRequest(
        location=source,
        ref=ref,
        sha256=sha256,
        allow_dirty=allow_dirty,
        update=update,
        lock_path=lock.resolve(),
        check_remote=True,
        progress=not json_out,
    )
    tree = resolve_source(req, default_runner())
    if json_out:
        from llamabuild.source import SourceReport

        report.emit_json(SourceReport(tree, req.lock_path), command="source")
        return
    render_source(tree, req.lock_path)


def render_source(tree: SourceTree, lock: Path) -> None:
    out = report.console()
    pin = tree.pin
    out.print(f"[bold]{pin.kind}[/] {escape(pin.url)}")
    if pin.ref:
        ref = pin.ref + (f" ({pin.refname})" if pin.refname else "")
        out.print(f"  ref     {escape(ref)}")
    out.print(f"  commit  {escape(pin.commit or '-')}")
    if pin.sha256:
        out.print(f"  sha256  {escape(pin.sha256)}")
    out.print(f"  tree    {escape(str(tree.root))}")
    if tree.dirty:
        out.print(f"  [yellow]dirty[/]   {len(tree.dirty)} changed file(s)")
    verb = "wrote" if tree.lock_written else "matches"
    out.print(f"[green]ok[/]: {verb} {escape(str(lock))}")
