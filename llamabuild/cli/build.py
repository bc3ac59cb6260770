"""`llamabuild build`: pin -> recipe -> stale-flag check -> cmake/ninja -> dSYM -> verify."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from llamabuild.builder import manifest as mf
from llamabuild.builder import remote_cache
from llamabuild.builder.buildplan import BuildPlan, Options
from llamabuild.builder.manifest import OutputRole
from llamabuild.builder.plan import make_plan
from llamabuild.builder.run import BuildReport, check_noop, execute
from llamabuild.cli.app import JsonOpt, app
from llamabuild.cli.source import DirtyOpt, LockOpt, RefOpt, Sha256Opt, SourceOpt, UpdateOpt
from llamabuild.config import recipes
from llamabuild.core import github, report
from llamabuild.core.findings import exit_code
from llamabuild.core.report import escape
from llamabuild.source import LOCK_NAME, SourceRequest, resolve_source
from llamabuild.source.cache import cache_root, slug, zig_home
from llamabuild.tools.runner import default_runner


@app.command("build")
def build_cmd(
    recipe: Annotated[
        str | None,
        typer.Option("--recipe", "-r", help="Recipe name (recipes/*.toml); default per host."),
    ] = None,
    source: SourceOpt = None,
    ref: RefOpt = None,
    sha256: Sha256Opt = None,
    update: UpdateOpt = False,
    allow_dirty: DirtyOpt = False,
    lock: LockOpt = Path(LOCK_NAME),
    define: Annotated[
        list[str] | None,
        typer.Option("--define", "-D", help="Override a cache entry: -D KEY=VALUE (repeatable)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Project file (default ./llamabuild.toml).")
    ] = None,
    dist: Annotated[
        Path | None, typer.Option("--dist", help="Output root; publishes dist/<recipe>/.")
    ] = None,
    build_dir: Annotated[
        Path | None, typer.Option("--build-dir", help="Build trees root (default: in the cache).")
    ] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel jobs.")] = None,
    no_ccache: Annotated[bool, typer.Option("--no-ccache", help="Do not use ccache.")] = False,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="If another build holds this recipe's build dir or dist, fail (exit 3) "
            "instead of waiting for it.",
        ),
    ] = False,
    ccache_remote: Annotated[
        str | None,
        typer.Option(
            "--ccache-remote",
            metavar="URL",
            help="Shared compiler cache (redis://… or http://…) for this build; - for none. "
            "Default: $LLAMABUILD_CCACHE_REMOTE, then [ccache] remote of llamabuild.toml.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if up to date.")] = False,
    check_reproducible: Annotated[
        bool,
        typer.Option(
            "--check-reproducible",
            help="Build a second time (source copy elsewhere, other build dir, empty ccache) "
            "and require the same bytes.",
        ),
    ] = False,
    allow_unreproducible: Annotated[
        bool,
        typer.Option(
            "--allow-unreproducible", help="Publish even when --check-reproducible differs."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show recipe, cache entries and argv; build nothing.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build a self-contained llama-server from a pinned llama.cpp and a recipe, then verify it."""
    start = time.monotonic()
    project = recipes.load_project(config)
    remote = remote_cache.resolve(ccache_remote, os.environ, project.ccache)
    defines = recipes.parse_defines(define or [])
    resolved = recipes.resolve(recipe, project, defines)
    if not dry_run:  # doctor's reasons now, not a CMake failure 40 log lines later
        from llamabuild.builder.doctor import refuse_unrunnable

        refuse_unrunnable(resolved)
    runner = default_runner()
    req = SourceRequest(
        location=source or project.source,
        ref=ref or project.ref,
        sha256=sha256 or project.sha256,
        allow_dirty=allow_dirty,
        update=update,
        lock_path=lock.resolve(),
        write_lock=not dry_run,
        progress=not json_out,
    )
    tree = resolve_source(req, runner)
    cache = cache_root()
    options = Options(
        dist_root=(dist or Path(project.dist or "dist")).resolve(),
        build_root=(build_dir.resolve() if build_dir else cache / "builds" / slug(str(tree.root))),
        cache_root=cache,
        jobs=jobs,
        ccache=not no_ccache,
        ccache_remote=remote,
        zig_base=zig_home(),
        wait=not no_wait,
    )

    def load_slice(name: str) -> recipes.Recipe:
        return recipes.resolve(name, project, defines)

    plan = make_plan(resolved, tree, options, runner, load_slice)
    if dry_run:
        _emit_plan(plan, json_out)
        return
    title = f"llamabuild build ({plan.recipe.name})"
    if not force:
        manifest = check_noop(plan)
        # --check-reproducible always builds twice: a stored verdict proves nothing here.
        if manifest is not None and not check_reproducible:
            # This run's time; manifest.json keeps the duration of the build it describes.
            result = BuildReport(plan, skipped=True, dist_dir=plan.dist_dir, manifest=manifest)
            result.duration = time.monotonic() - start
            # A skipped step still gets its summary: the reviewer sees what is published.
            mf.publish_summary(manifest, [], f"{title}: up to date", root=plan.dist_dir)
            _emit_result(result, json_out)
            return
    # One clock from the command's start: --json's duration_s == manifest.json's duration_s.
    hook = None
    if check_reproducible:
        from functools import partial

        from llamabuild.builder.check_reproducible import check

        hook = partial(check, plan, runner, allow=allow_unreproducible, quiet=False)
    result = execute(plan, runner, quiet=False, started=start, after_build=hook)
    if result.manifest:
        mf.publish_summary(result.manifest, result.findings, title, root=result.dist_dir)
    else:
        github.publish(title, result.findings, default_file=str(plan.dist_dir))
    _emit_result(result, json_out)
    raise typer.Exit(exit_code(result.findings))


def _emit_plan(plan: BuildPlan, json_out: bool) -> None:
    if json_out:
        report.emit_json(plan, command="build")
        return
    out = report.console()
    r = plan.recipe
    out.print(f"[bold]{escape(r.name)}[/]: {escape(r.description)}")
    pin = plan.source.pin
    where = f"{pin.url} @ {pin.commit or pin.ref or '-'} ({plan.source.root})"
    out.print(f"source {escape(where)}")
    for sl in plan.slices:
        out.print(f"[bold]{escape(sl.recipe.name)}[/] -> {escape(str(sl.build_dir))}")
        for key, value in sl.cache_entries.items():
            out.print(escape(f"  -D{key}={value}"))
        out.print(escape("  $ " + " ".join(_quote(a) for a in sl.configure_argv)))
        out.print(escape("  $ " + " ".join(_quote(a) for a in sl.build_argv)))
    out.print(f"would publish to {escape(str(plan.dist_dir))}")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _emit_result(result: BuildReport, json_out: bool) -> None:
    if json_out:
        report.emit_json(result, command="build")
        return
    out = report.console()
    name = result.plan.recipe.name
    if result.skipped:
        where = escape(str(result.dist_dir))
        out.print(
            f"[green]up to date[/]: {where} (inputs unchanged, artifact verifies; "
            f"{result.duration:.2f} s; --force rebuilds)"
        )
        return
    report.print_findings(result.findings, title=f"verify {name}")
    if result.published:
        published = escape(str(result.dist_dir))
        out.print(f"[green]published[/] {published} in {result.duration:.1f} s")
        outputs = result.manifest.outputs if result.manifest else ()
        for o in outputs:
            if o.role in (OutputRole.BINARY, OutputRole.DSYM):
                out.print(escape(f"  {o.path}  {(o.sha256 or '')[:16]}"))
    if result.manifest and result.manifest.ccache:
        out.print(escape(f"ccache: {result.manifest.ccache.describe()}"), soft_wrap=True)
    if not result.published:
        out.print(
            f"[red]not published[/]: {escape(name)} failed verification; dist/ left as it was"
        )
