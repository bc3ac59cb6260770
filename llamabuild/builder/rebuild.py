"""`llamabuild rebuild MANIFEST`: recreate a published build from its manifest alone.

The pin (URL, commit or archive sha256), the recipe and every cache entry it was built with
come from manifest.json, never from llamabuild.toml or the recipe file as it is today; the
tools must have the manifest's versions (else an error naming them, or warnings with
`--allow-drift`). The result must have the manifest's sha256 and UUIDs and comes with a
fresh dSYM whose UUIDs match: the way to recover the dSYM of a shipped build (docs/build.md).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from llamabuild.builder import manifest as mf
from llamabuild.builder import reproducible
from llamabuild.builder.buildplan import BuildPlan, Options
from llamabuild.builder.doctor import refuse_unrunnable
from llamabuild.builder.manifest import Manifest, ManifestOutput, ManifestSlice, OutputRole
from llamabuild.builder.plan import LAUNCHERS, make_plan
from llamabuild.builder.run import BuildReport, execute
from llamabuild.config import recipes
from llamabuild.config.domain import PinKind
from llamabuild.config.project import ProjectConfig
from llamabuild.config.recipes import CacheValue, Recipe, to_bool
from llamabuild.core.errors import ConfigError
from llamabuild.core.findings import Finding, error, has_errors, warning
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, model
from llamabuild.source import SourceRequest, SourceTree, resolve_source
from llamabuild.tools.git import is_full_sha
from llamabuild.tools.runner import Runner

READ_HINT = "pass the manifest.json `llamabuild build` published (dist/<recipe>/manifest.json)"
BUILD_INFO = ("LLAMA_BUILD_NUMBER", "LLAMA_BUILD_COMMIT")  # a real one is a few KB
DRIFT_HINT = "install the manifest's versions (see `versions` in it), or pass --allow-drift"


class CompilerCache(StrEnum):
    """What the rebuild compiled with: `empty` (the default: every object compiled again, a
    real proof) or `warm` (`--warm-cache`: the user's ccache and zig cache, a fast relink)."""

    EMPTY = "empty"
    WARM = "warm"


@dataclass(frozen=True)
class ToolDrift:
    """A tool whose version here differs from the manifest's."""

    tool: str
    manifest: str | None
    here: str | None


def _entry(r: RebuildReport, role: OutputRole, *, expected: bool = False) -> ManifestOutput | None:
    """An output of the manifest followed (`expected`) or of the rebuild's own manifest."""
    if expected:
        return r.recorded.output(role)
    built = r.result.manifest if r.result else None
    return built.output(role) if built else None


def _published(r: RebuildReport, role: OutputRole) -> Path | None:
    entry, dist = _entry(r, role), r.dist
    return dist / entry.path if dist and entry else None


def _sha256(entry: ManifestOutput | None) -> str | None:
    return entry.sha256 if entry else None


def _uuids(entry: ManifestOutput | None) -> dict[str, str | None]:
    return (entry.uuids or {}) if entry else {}


@model
class RebuildReport:
    """`llamabuild rebuild --json`: ok when the bytes, the UUIDs and the dSYM all match."""

    ok: bool = derived(lambda r: not has_errors(r.findings))
    manifest: Path  # the manifest.json followed
    recorded: Manifest = field(metadata=INTERNAL)  # what it records
    recipe: str = derived(lambda r: r.recorded.recipe)
    published: bool = derived(lambda r: bool(r.result and r.result.published))
    dist: Path | None = derived(lambda r: r.result.dist_dir if r.result else None)
    binary: Path | None = derived(lambda r: _published(r, OutputRole.BINARY))
    dsym: Path | None = derived(lambda r: _published(r, OutputRole.DSYM))
    sha256: str | None = derived(lambda r: _sha256(_entry(r, OutputRole.BINARY)))
    expected_sha256: str | None = derived(
        lambda r: _sha256(_entry(r, OutputRole.BINARY, expected=True))
    )
    uuids: dict[str, str | None] = derived(lambda r: _uuids(_entry(r, OutputRole.BINARY)))
    expected_uuids: dict[str, str | None] = derived(
        lambda r: _uuids(_entry(r, OutputRole.BINARY, expected=True))
    )
    dsym_uuids: dict[str, str | None] = derived(lambda r: _uuids(_entry(r, OutputRole.DSYM_DWARF)))
    tool_drift: tuple[ToolDrift, ...] = field(default=(), metadata=ALWAYS)
    compiler_cache: CompilerCache = field(default=CompilerCache.EMPTY, metadata=ALWAYS)
    duration_s: float = derived(lambda r: round(r.duration, 3))
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)
    result: BuildReport | None = field(default=None, metadata=INTERNAL)
    duration: float = field(default=0.0, metadata=INTERNAL)


def read_manifest(path: Path) -> Manifest:
    """A published manifest.json (mf.read: a regular file, bounded, our shape), with
    rebuild's hint."""
    try:
        return mf.read(path)
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=READ_HINT) from None


def source_request(m: Manifest, lock_dir: Path) -> SourceRequest:
    """The manifest's pin as a request: the exact commit (or archive hash), no lock file."""
    src = m.source
    ref = src.commit if src.kind is not PinKind.ARCHIVE and src.commit else src.ref
    if src.kind is PinKind.GIT and src.commit and not is_full_sha(src.commit):
        ref = src.ref
    return SourceRequest(
        location=src.url,
        ref=ref,
        sha256=src.sha256,
        allow_dirty=bool(src.dirty),
        lock_path=lock_dir / "llamabuild.lock",
        write_lock=False,
    )


def _defines(entries: Mapping[str, str]) -> dict[str, CacheValue]:
    """A manifest slice's entries as -D overrides, minus what the planner derives per build."""
    kept = reproducible.strip_managed(entries)
    return {k: to_bool(v) for k, v in kept.items() if k not in LAUNCHERS}


def recipe_of(m: Manifest) -> tuple[Recipe, dict[str, Recipe]]:
    """The recipe the manifest recorded; for an older manifest, the recipe by name with each
    slice's recorded cache entries laid over it."""
    specs = {s.recipe: _with_build_info(s.spec, s) for s in m.slices if s.spec is not None}
    if m.recipe_spec is not None and len(specs) == len(m.slices):
        return specs.get(m.recipe, m.recipe_spec), specs
    empty = ProjectConfig()
    by_slice = {s.recipe: s for s in m.slices}
    slices = {
        name: recipes.resolve(name, empty, _defines(s.cache_entries))
        for name, s in by_slice.items()
    }
    top = slices.get(m.recipe) or recipes.resolve(m.recipe, empty, {})
    for name, s in by_slice.items():
        if slices[name].archs != s.archs:
            raise ConfigError(
                f"recipe {name} builds {', '.join(slices[name].archs)} today, the manifest "
                f"{', '.join(s.archs)}",
                hint="rebuild with the llamabuild (and recipes) that made the manifest",
            )
    return top, slices


def _with_build_info(spec: Recipe, sl: ManifestSlice) -> Recipe:
    """The build number and commit llama-server reports, as the build had them (a rebuild
    pins the commit, whose ref no longer says `b<N>`)."""
    keep = {k: sl.cache_entries[k] for k in BUILD_INFO if k in sl.cache_entries}
    return spec.with_cache(keep)


def tool_drift(recorded: Mapping[str, str], here: Mapping[str, str]) -> tuple[ToolDrift, ...]:
    keys = sorted(set(recorded) | set(here))
    return tuple(
        ToolDrift(k, recorded.get(k), here.get(k)) for k in keys if recorded.get(k) != here.get(k)
    )


def refuse_drift(drift: tuple[ToolDrift, ...]) -> None:
    if drift:
        shown = "; ".join(f"{d.tool}: manifest {d.manifest}, here {d.here}" for d in drift)
        raise ConfigError(f"tool versions differ from the manifest: {shown}", hint=DRIFT_HINT)


def plan_rebuild(m: Manifest, tree: SourceTree, options: Options, runner: Runner) -> BuildPlan:
    """The build plan, with the manifest's SOURCE_DATE_EPOCH when it recorded one."""
    top, slices = recipe_of(m)
    plan = make_plan(top, tree, options, runner, slices.__getitem__)
    epoch = m.source.date_epoch
    if epoch is not None and reproducible.epoch_of(plan.slices[0].env) != epoch:
        for sl in plan.slices:
            reproducible.apply(sl, tree, options.build_root, epoch, options.zig_home)
    return plan


def compare(expected: Manifest, result: BuildReport) -> list[Finding]:
    """rebuild-mismatch findings: sha256 and UUIDs of the binary, the dSYM's UUIDs."""
    want = expected.output(OutputRole.BINARY)
    built = result.manifest
    got = built.output(OutputRole.BINARY) if built else None
    if want is None or got is None:
        return [error("rebuild-mismatch", "no binary to compare (the manifest or the build)")]
    out: list[Finding] = []
    if got.sha256 != want.sha256:
        out.append(_mismatch(f"sha256 {got.sha256}, the manifest has {want.sha256}", want))
    if got.uuids != want.uuids:
        out.append(_mismatch(f"UUIDs {got.uuids}, the manifest has {want.uuids}", want))
    dwarf = built.output(OutputRole.DSYM_DWARF) if built else None
    if dwarf is not None and dwarf.uuids != want.uuids:
        out.append(_mismatch(f"the new dSYM has UUIDs {dwarf.uuids}, not {want.uuids}", want))
    return out


def _mismatch(what: str, want: ManifestOutput) -> Finding:
    return error(
        "rebuild-mismatch",
        f"{want.path}: the rebuild has {what}",
        path=want.path,
        hint="the build is not reproducible with these inputs: see docs/build.md "
        "(Reproducible builds); `build --check-reproducible` names the sections",
    )


def rebuild(
    manifest_path: Path, options: Options, runner: Runner, allow_drift: bool, warm: bool = False
) -> RebuildReport:
    """Resolve the pin, plan, check tool versions, build into options.dist_root, compare;
    the build dir (options.build_root, a fresh one) is removed afterwards. Unless `warm`, the
    compiler caches (ccache, zig's) are new and empty under it: every object is compiled
    again, so a match proves the inputs, not what a cache kept."""
    if not warm:
        fresh = options.build_root / "compiler-cache"
        options = replace(options, cache_root=fresh, zig_base=fresh / "zig", ccache_remote=None)
    try:
        job = _rebuild(manifest_path, options, runner, allow_drift)
        job.compiler_cache = CompilerCache.WARM if warm else CompilerCache.EMPTY
        return job
    finally:
        shutil.rmtree(options.build_root, ignore_errors=True)


def _rebuild(
    manifest_path: Path, options: Options, runner: Runner, allow_drift: bool
) -> RebuildReport:
    start = time.monotonic()
    job = RebuildReport(manifest_path, read_manifest(manifest_path))
    refuse_unrunnable(recipe_of(job.recorded)[0])  # a macOS manifest on Linux: exit 2 now
    with tempfile.TemporaryDirectory(prefix="llamabuild-rebuild-") as lock_dir:
        tree = resolve_source(source_request(job.recorded, Path(lock_dir)), runner)
    plan = plan_rebuild(job.recorded, tree, options, runner)
    job.tool_drift = tool_drift(job.recorded.versions, plan.versions)
    if not allow_drift:
        refuse_drift(job.tool_drift)
    drift = [
        warning("tool-drift", f"{d.tool}: manifest {d.manifest}, here {d.here}")
        for d in job.tool_drift
    ]

    def after_build(result: BuildReport, _staging: Path) -> None:
        result.findings += drift + compare(job.recorded, result)

    job.result = execute(plan, runner, after_build=after_build)
    job.findings = job.result.findings
    job.duration = time.monotonic() - start
    return job
