"""`llamabuild rebuild MANIFEST`: the same bytes again, and a fresh matching dSYM."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from llamabuild.cli.app import JsonOpt, app

if TYPE_CHECKING:
    from llamabuild.builder.rebuild import RebuildReport
    from llamabuild.core.findings import Finding


@app.command("rebuild")
def rebuild_cmd(
    manifest: Annotated[
        Path, typer.Argument(help="dist/<recipe>/manifest.json of the build to recreate.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output root; publishes OUT/<recipe>/.")
    ] = Path("rebuild"),
    allow_tool_drift: Annotated[
        bool,
        typer.Option(
            "--allow-drift",
            "--allow-tool-drift",
            help="Try even when tool versions differ (a tool-drift warning each).",
        ),
    ] = False,
    warm_cache: Annotated[
        bool,
        typer.Option(
            "--warm-cache",
            help="Compile through this user's ccache and zig cache (fast, but not a proof "
            "that the sources alone give these bytes). Default: new, empty caches.",
        ),
    ] = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel jobs.")] = None,
    no_ccache: Annotated[bool, typer.Option("--no-ccache", help="Do not use ccache.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recreate a build from its manifest alone: same sha256 and UUIDs, and a matching dSYM."""
    from llamabuild.builder.buildplan import Options
    from llamabuild.builder.rebuild import rebuild
    from llamabuild.core import report
    from llamabuild.core.findings import exit_code
    from llamabuild.source.cache import cache_root, zig_home
    from llamabuild.tools.runner import default_runner

    cache = cache_root()
    (cache / "builds").mkdir(parents=True, exist_ok=True)
    options = Options(
        dist_root=out.resolve(),
        build_root=Path(tempfile.mkdtemp(prefix="rebuild-", dir=cache / "builds")),
        cache_root=cache,
        jobs=jobs,
        ccache=not no_ccache,
        zig_base=zig_home(),
    )
    job = rebuild(manifest, options, default_runner(), allow_tool_drift, warm=warm_cache)
    if json_out:
        report.emit_json(job, command="rebuild")
    else:
        render(job, job.findings)
    raise typer.Exit(exit_code(job.findings))


def render(result: RebuildReport, findings: list[Finding]) -> None:
    from llamabuild.core import report
    from llamabuild.core.report import escape

    out = report.console()
    out.print(f"compiler cache: {result.compiler_cache}")
    for d in result.tool_drift:
        out.print(f"[yellow]tool drift[/] {escape(f'{d.tool}: {d.manifest} -> {d.here}')}")
    report.print_findings(findings, title=f"rebuild {escape(result.recipe)}")
    same = result.sha256 == result.expected_sha256
    out.print(
        escape(f"sha256 {result.sha256}") + (" [green]matches[/]" if same else " [red]differs[/]")
    )
    for arch, uuid in result.expected_uuids.items():
        got = result.dsym_uuids.get(arch)
        line = escape(f"{arch}: binary {result.uuids.get(arch)}, dSYM {got or '-'}")
        out.print(line + (" [green]matches[/]" if got == uuid else ""))
    if result.published:
        out.print(f"[green]published[/] {escape(str(result.dist))}")
    else:
        out.print("[red]not published[/]: the rebuild does not match the manifest")
