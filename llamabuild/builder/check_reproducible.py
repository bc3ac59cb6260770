"""`build --check-reproducible`: build the same pin and recipe a second time, independently (a
copy of the source at another path, another build dir, nothing from the first build's compiler
cache), and compare every output's sha256 and per-arch UUIDs. Different bytes are a
`not-reproducible` finding naming the Mach-O / ELF sections that differ
(inspect/sectiondiff.py), with diffoscope's report when installed.

The second build goes through ccache exactly when the first did, with an empty cache dir of its
own and no remote: nothing compiled is reused, yet the compiler gets the same kind of argv.
ccache rewrites paths under its base dir to normalized relative ones, and gcc and clang put
those into `__FILE__`: measured on llama.cpp's json.cpp (`-I<src>/vendor/nlohmann/..`), a
ccache build has `./vendor/nlohmann/json.hpp`, a plain one `./vendor/nlohmann/../nlohmann/
json.hpp`. A build with ccache and one without can differ; two builds alike must not.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from llamabuild.builder import platforms
from llamabuild.builder.buildplan import BuildPlan
from llamabuild.builder.manifest import OutputRole
from llamabuild.builder.plan import make_plan
from llamabuild.builder.remote_cache import STORAGE_ENV
from llamabuild.builder.reproducible import apply, epoch_of
from llamabuild.builder.run import (
    BuildReport,
    Compared,
    SecondBuild,
    binary_dsym,
    build_slice,
)
from llamabuild.core.files import sha256_file
from llamabuild.core.findings import Finding, error, warning
from llamabuild.inspect import sectiondiff, structure
from llamabuild.tools.lipo import Lipo
from llamabuild.tools.runner import Runner

# What the second build makes again (the SBOM and notices are written from the same tree).
COMPARED = (OutputRole.BINARY, OutputRole.DSYM_DWARF)


def second_build(plan: BuildPlan, runner: Runner, work: Path, quiet: bool) -> Path:
    """The outputs of an independent build of `plan` under `work` (its dist-like dir)."""
    source = work / "source copy"
    shutil.copytree(plan.source.root, source, symlinks=True)
    options = replace(
        plan.options,
        build_root=work / "build",
        dist_root=work / "dist",
        cache_root=work / "cache",
        zig_base=work / "zig",  # its own zig cache: libc++ is built again, from another root
    )
    slices = {s.recipe.name: s.recipe for s in plan.slices}
    tree = replace(plan.source, root=source)
    again = make_plan(plan.recipe, tree, options, runner, slices.__getitem__)
    epoch = epoch_of(plan.slices[0].env)  # the copy may lack the .git that dated the pin
    for sl in again.slices:
        if epoch is not None:
            apply(sl, tree, options.build_root, epoch, options.zig_home)
        if "CCACHE_DIR" in sl.env:  # a fresh dir (the plan's); a remote would hand back hits
            sl.env[STORAGE_ENV] = ""
    artifacts = [build_slice(sl, runner, quiet)[0] for sl in again.slices]
    out = work / "out"
    out.mkdir()
    binary = out / plan.recipe.target
    if len(artifacts) > 1:
        Lipo(runner).create(artifacts, binary)
    else:
        shutil.copy2(artifacts[0], binary)
    if platforms.for_recipe(plan.recipe).target.makes_dsym:
        binary_dsym(again.slices, binary, out, runner, options.build_root)
    return out


def compare(first: Path, second: Path, rel: str, runner: Runner, reports: Path) -> Compared:
    """sha256, then (when they differ) the differing sections and diffoscope's detail."""
    a, b = first / rel, second / rel
    if not b.is_file():
        return Compared(rel, False, ("(missing from the second build)",))
    if sha256_file(a) == sha256_file(b) and _uuids(a) == _uuids(b):
        return Compared(rel, True)
    sections = tuple(sectiondiff.differing(a, b))
    kept = reports / "second-build" / rel  # kept for a look (the work dir is removed)
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(b, kept)
    from llamabuild.tools.diffoscope import Diffoscope

    report = Diffoscope(runner).report(a, b, reports / f"{Path(rel).name}.diffoscope.txt")
    return Compared(rel, False, sections, report or kept)


def _uuids(path: Path) -> dict[str, str | None]:
    with path.open("rb") as fh:
        head = fh.read(4)
    return structure.read_uuids(path) if structure.sniff(head) in ("macho", "fat") else {}


def findings_for(results: list[Compared], allow: bool) -> list[Finding]:
    out: list[Finding] = []
    for r in results:
        if r.same:
            continue
        shown = ", ".join(r.sections[:12]) + (" …" if len(r.sections) > 12 else "")
        message = f"{r.path}: a second build differs in {shown or 'bytes outside any section'}"
        detail = f"the second build's file or diffoscope's report: {r.report}"
        if allow:
            out.append(warning("not-reproducible-allowed", message, path=r.path, hint=detail))
        else:
            hint = f"see docs/build.md (Reproducible builds); {detail}"
            out.append(error("not-reproducible", message, path=r.path, hint=hint))
    return out


def check(
    plan: BuildPlan, runner: Runner, result: BuildReport, staging: Path, allow: bool, quiet: bool
) -> None:
    """The after_build hook of builder/run.execute: compare, add findings, mark the manifest."""
    if not result.ok or result.manifest is None:
        return  # nothing will be published anyway
    work = Path(tempfile.mkdtemp(prefix="repro-", dir=_work_root(plan)))
    start = time.monotonic()
    try:
        second = second_build(plan, runner, work, quiet)
        files = [o.path for o in result.manifest.outputs if o.role in COMPARED and o.sha256]
        reports = plan.slices[0].build_dir  # kept beside the first build's log
        compared = [compare(staging, second, rel, runner, reports) for rel in files]
        result.findings += findings_for(compared, allow)
        same = bool(compared) and all(c.same for c in compared)
        result.manifest = replace(result.manifest, reproducible=same)
        result.second_build = SecondBuild(round(time.monotonic() - start, 3), tuple(compared))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_root(plan: BuildPlan) -> Path:
    root = plan.options.cache_root / "reproducible"
    root.mkdir(parents=True, exist_ok=True)
    return root
