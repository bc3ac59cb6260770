"""Executing a plan: configure + build each slice, join, dSYM, verify, manifest, publish.

Nothing reaches dist/<recipe>/ unless every step passed: outputs are staged in a temp dir
beside it and swapped in at the end; an interrupt or a failure deletes the staging dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamabuild.builder import manifest as mf
from llamabuild.builder import metal_check, platforms, ziglink, zigroot
from llamabuild.builder import publish as pub
from llamabuild.builder import remote_cache as rc
from llamabuild.builder.buildplan import BuildPlan, RemoteSetting, SlicePlan
from llamabuild.builder.manifest import (
    MANIFEST,
    MANIFEST_SCHEMA,
    Manifest,
    ManifestOutput,
    ManifestSlice,
    ManifestSource,
    ManifestVerify,
    OutputRole,
)
from llamabuild.builder.plan import host_info, init_cache_text
from llamabuild.builder.progress import BuildLog
from llamabuild.builder.reproducible import epoch_of, oso_prepend
from llamabuild.builder.zigroot import ZigRoot
from llamabuild.config.recipes import Recipe, cmake_literal, to_bool
from llamabuild.config.versions import DEFAULT_MIN_MACOS
from llamabuild.core.errors import BuildError, ConfigError, ToolError
from llamabuild.core.files import exclusive, sha256_file
from llamabuild.core.findings import Finding, has_errors, warning
from llamabuild.core.interrupt import guarded
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, model
from llamabuild.inspect.policy import Policy
from llamabuild.model.capabilities import read_capabilities
from llamabuild.tools import cmake as cmake_tool
from llamabuild.tools.lipo import Lipo
from llamabuild.tools.runner import Runner
from llamabuild.tools.zig import Zig

if TYPE_CHECKING:
    from llamabuild.inspect.dsym import DsymReport
    from llamabuild.provenance import Provenance

__all__ = ["MANIFEST", "BuildReport", "check_noop", "execute"]


@dataclass(frozen=True)
class Compared:
    """One output of the first build against the same output of the second."""

    path: str
    same: bool
    sections: tuple[str, ...] = ()
    report: Path | None = None


@dataclass(frozen=True)
class SecondBuild:
    """`build --check-reproducible`: the independent second build that ran, and its verdict
    on each compared output (never a stored verdict: the check always builds again)."""

    duration_s: float
    compared: tuple[Compared, ...]


@model
class BuildReport:
    """`llamabuild build --json`: the outcome, and the manifest of what was published."""

    plan: BuildPlan = field(metadata=INTERNAL)
    ok: bool = derived(lambda r: not has_errors(r.findings))
    skipped: bool = field(default=False, metadata=ALWAYS)
    published: bool = field(default=False, metadata=ALWAYS)
    dist: Path | None = derived(lambda r: r.dist_dir)
    duration_s: float = derived(lambda r: round(r.duration, 3))
    manifest: Manifest | None = field(default=None, metadata=ALWAYS)
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)
    second_build: SecondBuild | None = None
    dist_dir: Path | None = field(default=None, metadata=INTERNAL)
    duration: float = field(default=0.0, metadata=INTERNAL)


def policy_for(recipe: Recipe) -> Policy:
    return platforms.for_recipe(recipe).target.policy(recipe)


def _verify(binary: Path, recipe: Recipe, dsym: Path | None) -> list[Finding]:
    from llamabuild.inspect.verify_binary import verify

    return list(verify(binary, policy_for(recipe), dsym=dsym).findings)


def check_noop(plan: BuildPlan) -> Manifest | None:
    """The published manifest, when inputs are unchanged and its outputs still verify."""
    dist = plan.dist_dir
    try:
        manifest = mf.read(dist / MANIFEST)
    except ConfigError:
        return None  # missing, or written by another llamabuild: rebuild
    if manifest.inputs_key != plan.inputs_key:
        return None
    if manifest.capabilities is None and read_capabilities(plan.source.root) is not None:
        return None  # written before manifests recorded what the pin loads (verify-model)
    binary = manifest.output(OutputRole.BINARY)
    if binary is None or manifest.output(OutputRole.SBOM) is None:
        return None  # no SBOM: published before builds wrote one
    if not all(_unchanged(dist / out.path, out) for out in manifest.outputs):
        return None
    dsym = manifest.output(OutputRole.DSYM)
    dsym_path = dist / dsym.path if dsym is not None else None
    if has_errors(_verify(dist / binary.path, plan.recipe, dsym_path)):
        return None
    return manifest


def _unchanged(path: Path, out: ManifestOutput) -> bool:
    """Present and, for files, the recorded sha256 (re-hashed only if size or mtime moved)."""
    if not path.exists():
        return False
    if not out.sha256:
        return True
    if not path.is_file():
        return False
    st = path.stat()
    if st.st_size == out.size and st.st_mtime_ns == out.mtime_ns:
        return True  # a 140 MB dSYM DWARF file would cost ~0.5 s to hash on every no-op
    return sha256_file(path) == out.sha256


def execute(
    plan: BuildPlan,
    runner: Runner,
    quiet: bool = False,
    started: float | None = None,
    after_build: Callable[[BuildReport, Path], None] | None = None,
) -> BuildReport:
    """Build, verify, write the manifest, publish. `started` (time.monotonic() when the
    command began) makes manifest.json's duration_s the one the CLI reports; `after_build`
    sees the staged outputs before that (the reproducibility check, rebuild's comparison)."""
    start = time.monotonic() if started is None else started
    name = plan.recipe.name
    with guarded(f"build of {name}"), held(plan):
        staging = pub.staging_dir(plan.options.dist_root, name)
        try:
            pub.mark_owner(staging)
            result = _build_into(plan, runner, staging, quiet)
            if after_build is not None:
                after_build(result, staging)
            result.duration = time.monotonic() - start
            assert result.manifest is not None
            result.manifest = replace(result.manifest, duration_s=round(result.duration, 3))
            mf.write(staging / MANIFEST, result.manifest)
            if result.ok:
                result.dist_dir = pub.publish(staging, plan.options.dist_root, name)
                result.published = True
            return result
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def held(plan: BuildPlan) -> Iterator[None]:
    """Every build dir of the plan and its dist dir, locked for the whole build: two runs of
    one recipe (two terminals, two CI steps) never interleave configure, compile or publish.
    The locks live in the cache (never in dist/), one per resolved path, taken in order."""
    targets = [sl.build_dir for sl in plan.slices] + [plan.options.dist_root / plan.recipe.name]
    with contextlib.ExitStack() as stack:
        for target in sorted({t.resolve() for t in targets}):
            lock = lock_file(plan.options.cache_root, target)
            stack.enter_context(exclusive(lock, str(target), wait=plan.options.wait, waiting=_say))
        yield


def lock_file(cache_root: Path, target: Path) -> Path:
    """The lock of a build dir or dist dir: <cache>/locks/<hash of its resolved path>.lock."""
    key = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:16]
    return cache_root / "locks" / f"{key}.lock"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _build_into(plan: BuildPlan, runner: Runner, staging: Path, quiet: bool) -> BuildReport:
    result = BuildReport(plan)
    artifacts: list[Path] = []
    compilers: dict[str, Any] = {}
    remote = plan.options.ccache_remote or RemoteSetting(None, "default")
    ccache = rc.begin(plan.slices, remote, runner, use_ccache=plan.options.ccache)
    for sl in ccache.slices(plan.slices):
        artifact, reply = build_slice(sl, runner, quiet)
        artifacts.append(artifact)
        compilers[sl.recipe.name] = reply.compilers
        result.findings += cache_drift(sl, reply)
    ccache_stats, ccache_findings = ccache.end()
    result.findings += ccache_findings
    if sys.platform == "darwin":  # Apple's Metal compiler: the user's OS compiles these too
        with timed(plan.slices[-1].log, "metal (offline compile)"):
            for sl in plan.slices:
                sources = metal_check.embedded_sources(sl.build_dir)
                minimum = sl.recipe.min_macos or DEFAULT_MIN_MACOS
                result.findings += metal_check.compile_offline(sources, minimum, runner)
    binary = staging / plan.recipe.target
    log = plan.slices[-1].log
    with timed(log, "join"):
        if len(artifacts) > 1:
            Lipo(runner).create(artifacts, binary)
        else:
            shutil.copy2(artifacts[0], binary)
    dsym_path: Path | None = None
    if platforms.for_recipe(plan.recipe).target.makes_dsym:
        with timed(log, "dsym"):
            dsym = binary_dsym(plan.slices, binary, staging, runner, plan.options.build_root)
        result.findings += dsym.findings
        dsym_path = dsym.path
    with timed(log, "verify"):
        result.findings += _verify(binary, plan.recipe, dsym_path)
    with timed(log, "provenance (SBOM, notices)"):
        provenance = _provenance(plan, binary, staging)
    result.findings += provenance.findings
    with timed(log, "manifest (sha256, capabilities)"):
        result.manifest = manifest(plan, staging, binary, dsym_path, compilers, result.findings)
    result.manifest = replace(
        result.manifest, outputs=result.manifest.outputs + _provenance_outputs(provenance, staging)
    )
    result.manifest = replace(result.manifest, ccache=ccache_stats)
    return result


@contextmanager
def timed(log: Path, step: str) -> Iterator[None]:
    """One `post-build STEP: N.NN s` line in the build log (what the compile is not)."""
    start = time.monotonic()
    try:
        yield
    finally:
        with contextlib.suppress(OSError), log.open("a") as fh:
            fh.write(f"post-build {step}: {time.monotonic() - start:.2f} s\n")


def _provenance(plan: BuildPlan, binary: Path, staging: Path) -> Provenance:
    """The SBOM and notices (llamabuild/provenance/), from each slice's code model."""
    from llamabuild import provenance

    build_dirs = [sl.build_dir for sl in plan.slices]
    src, recipe = plan.source, plan.recipe
    epoch = plan.slices[0].env.get("SOURCE_DATE_EPOCH")
    return provenance.write(
        src.root, src.pin, build_dirs, recipe.target, binary, recipe.name, staging, epoch
    )


def _provenance_outputs(prov: Provenance, staging: Path) -> tuple[ManifestOutput, ...]:
    """The manifest records the SBOM's and notices' sha256 beside the binary's."""
    roles = {OutputRole.SBOM: prov.sbom, OutputRole.NOTICES: prov.notices}
    roles[OutputRole.CREDITS] = prov.credits
    return tuple(_output(path, staging, role) for role, path in roles.items())


def build_slice(sl: SlicePlan, runner: Runner, quiet: bool) -> tuple[Path, cmake_tool.FileApiReply]:
    """Configure and build one slice; returns the target's artifact (read from the file API)."""
    sl.build_dir.mkdir(parents=True, exist_ok=True)
    sl.init_cache.write_text(init_cache_text(sl.recipe, sl.entries))
    cmake_tool.write_query(sl.build_dir)
    if sl.toolchain_file is not None:
        zig = Zig(runner)
        zig.write_toolchain(sl.build_dir, sl.recipe.archs[0], sl.recipe.min_macos)
        root = zig_root_of(sl)
        if root is not None:  # before CMake's compiler check links C++ from its dir
            zigroot.prepare(root, zig.lib_dir())
            prime_compiler_checks(sl.build_dir / "zig-c++", root, sl.env)
    label = sl.recipe.name
    with BuildLog(sl.log, label, quiet=quiet) as log:
        log.phase("configure")
        _step(runner, sl.configure_argv, sl, log, "cmake configure")
        reply = cmake_tool.read_reply(sl.build_dir)
        paths = reply.artifacts.get(sl.recipe.target)
        if not paths:
            raise BuildError(
                f"this source tree defines no target '{sl.recipe.target}'",
                hint="check LLAMA_BUILD_SERVER/LLAMA_BUILD_TOOLS in the recipe",
            )
        log.phase("build")
        _step(runner, sl.build_argv, sl, log, "build")
    artifact = Path(paths[0])
    return (artifact if artifact.is_absolute() else sl.build_dir / artifact), reply


def prime_compiler_checks(cxx: Path, root: ZigRoot, env: dict[str, str]) -> None:
    """zig's libc++ for flag-less links (CMake's compiler checks) from the prime dir."""
    try:
        ziglink.prime(cxx, [], root.prime, env)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ToolError(
            f"cannot build zig's libc++ in {root.prime}: {exc}",
            hint=f"{root.path} must be a directory of this user's, and zig must work",
        ) from exc


def zig_root_of(sl: SlicePlan) -> ZigRoot | None:
    """The zig root a slice was planned with (builder/reproducible.apply), if any."""
    lib = sl.env.get("ZIG_LIB_DIR")
    return ZigRoot(Path(lib).parent) if lib else None


def binary_dsym(
    slices: list[SlicePlan], binary: Path, out_dir: Path, runner: Runner, build_root: Path
) -> DsymReport:
    """The dSYM of a macOS binary in `out_dir`. A zig binary first gets the canonical root
    (builder/zigroot.py), then dsymutil reads its objects through a mirror of canonical paths;
    Apple's linker took the build root off with -oso_prefix."""
    from llamabuild.inspect.dsym import make_dsym

    out = out_dir / f"{binary.name}.dSYM"
    roots = {r for r in map(zig_root_of, slices) if r is not None}
    if not roots:
        prepend = oso_prepend(slices[0].recipe, build_root)
        return make_dsym(binary, out, runner=runner, oso_prepend=prepend)
    (root,) = roots  # every slice of a build plans the same zig home
    zigroot.canonicalize(binary, root)
    with zigroot.debug_map_mirror(binary, root) as mirror:
        return make_dsym(binary, out, runner=runner, oso_prepend=mirror)


def _step(runner: Runner, argv: list[str], sl: SlicePlan, log: BuildLog, what: str) -> None:
    log.write("$ " + " ".join(argv))
    res = runner.run(argv, env=sl.env, check=False, on_line=log.line)
    if res.returncode != 0:
        log.show_tail()
        raise BuildError(
            f"{what} of {sl.recipe.name} failed (exit {res.returncode})",
            hint=f"the last lines are above; full log: {sl.log}",
        )


def cache_drift(sl: SlicePlan, reply: cmake_tool.FileApiReply) -> list[Finding]:
    """Warn when CMake's final cache disagrees with what the recipe set (a FORCE in the tree)."""
    out: list[Finding] = []
    for key, want in sl.entries.items():
        got = reply.cache.get(key)
        if got is None:
            continue
        same = to_bool(got) == want if isinstance(want, bool) else got == cmake_literal(want)
        if not same:
            out.append(
                warning(
                    "cache-overridden",
                    f"{key}: the recipe sets {cmake_literal(want)}, CMake's cache has {got}",
                    hint="the source tree forces this value; the recipe entry has no effect",
                )
            )
    return out


def _output(path: Path, root: Path, role: OutputRole, uuids: bool = False) -> ManifestOutput:
    rel = str(path.relative_to(root))
    if not path.is_file():
        return ManifestOutput(rel, role)
    st = path.stat()
    return ManifestOutput(
        rel,
        role,
        sha256=sha256_file(path),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        uuids=_uuids(path) if uuids else None,
    )


def _uuids(binary: Path) -> dict[str, str | None]:
    from llamabuild.inspect import inspect_binary

    b = inspect_binary(binary)
    return {s.arch: s.uuid for s in b.slices}


def manifest(
    plan: BuildPlan,
    staging: Path,
    binary: Path,
    dsym: Path | None,
    compilers: dict[str, Any],
    findings: list[Finding],
) -> Manifest:
    pin = plan.source.pin
    outputs = [_output(binary, staging, OutputRole.BINARY, uuids=True)]
    if dsym is not None and dsym.exists():
        dwarf = sorted((dsym / "Contents" / "Resources" / "DWARF").glob("*"))
        outputs.append(ManifestOutput(str(dsym.relative_to(staging)), OutputRole.DSYM))
        outputs += [_output(d, staging, OutputRole.DSYM_DWARF, uuids=True) for d in dwarf]
    return Manifest(
        schema=MANIFEST_SCHEMA,
        recipe=plan.recipe.name,
        source=ManifestSource(
            kind=pin.kind,
            url=pin.url,
            ref=pin.ref,
            commit=pin.commit,
            sha256=pin.sha256,
            subdir=pin.subdir,
            dirty=plan.source.dirty,
            date_epoch=epoch_of(plan.slices[0].env),
        ),
        slices=tuple(
            ManifestSlice(
                recipe=s.recipe.name,
                archs=s.recipe.archs,
                cache_entries={k: cmake_literal(v) for k, v in sorted(s.entries.items())},
                configure_argv=tuple(s.configure_argv),
                build_argv=tuple(s.build_argv),
                spec=s.recipe,
                metal_embed=metal_check.record(s.build_dir),
            )
            for s in plan.slices
        ),
        versions=plan.versions,
        compilers=compilers,
        host=host_info(),
        outputs=tuple(outputs),
        inputs_key=plan.inputs_key,
        recipe_spec=plan.recipe,
        verify=ManifestVerify(ok=not has_errors(findings), findings=tuple(findings)),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        capabilities=read_capabilities(plan.source.root),
    )
