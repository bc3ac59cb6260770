"""`llamabuild doctor`: can this machine run a recipe, and if not, what to install.

Which tools exist, where and in which version, is probed through the Runner; which tools a
recipe needs is data (llamabuild/data/doctor_tools.toml) keyed by the recipe's platform and
toolchain. Every gap is a finding with an install hint, so the exit code follows the usual rule.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cache
from pathlib import Path

from llamabuild.config.recipes import Recipe, available, default_recipe_name, load_recipe
from llamabuild.config.versions import banner_version
from llamabuild.core.errors import LlamabuildError, ToolError, UsageError
from llamabuild.core.findings import Finding, Severity, error, exit_code, warning
from llamabuild.core.host import HostInfo
from llamabuild.core.jsonout import ALWAYS, INTERNAL, derived, model
from llamabuild.core.resources import data_file
from llamabuild.tools.runner import Runner, Tool, default_runner, python_scripts, which

DATA = data_file("doctor_tools.toml")

Which = Callable[[Sequence[str], Sequence[Path]], Path | None]


class ToolRole(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_NEEDED = "not needed"


@dataclass(frozen=True)
class ToolStatus:
    """One tool `doctor` looked for: where and which version, what lacks without it."""

    tool: str
    label: str
    found: bool
    path: str | None
    version: str | None
    detail: str | None
    affects: str
    hint: str
    role: ToolRole = field(default=ToolRole.NOT_NEEDED, metadata=ALWAYS)
    """Its role in the recipe `doctor` judged (DoctorReport.tools sets it)."""


@dataclass(frozen=True)
class ToolSpec:
    key: str
    label: str
    names: tuple[str, ...]
    affects: str
    hint: str
    version_args: tuple[str, ...] = ()
    module: str | None = None
    distribution: str | None = None
    env: str | None = None
    detail_only: bool = False


@dataclass(frozen=True)
class Needs:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    host: str | None = None  # platform.system() the recipe must build on


def _roles(r: DoctorReport) -> tuple[ToolStatus, ...]:
    role = {k: ToolRole.OPTIONAL for k in r.optional}
    role.update({k: ToolRole.REQUIRED for k in r.required})
    return tuple(replace(t, role=role.get(k, ToolRole.NOT_NEEDED)) for k, t in r.found.items())


@model
class DoctorReport:
    """`llamabuild doctor --json`: the tools a recipe needs, found or how to install them."""

    ok: bool = derived(lambda r: r.runnable)
    recipe: str
    runnable: bool = derived(lambda r: exit_code(r.findings) == 0)
    host: HostInfo
    required: tuple[str, ...] = field(metadata=INTERNAL)
    optional: tuple[str, ...] = field(metadata=INTERNAL)
    found: dict[str, ToolStatus] = field(metadata=INTERNAL)  # tool key -> what the probe found
    tools: tuple[ToolStatus, ...] = derived(_roles)
    recipes: dict[str, bool] = field(default_factory=dict, metadata=ALWAYS)
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)


@cache
def load_data(path: Path = DATA) -> tuple[dict[str, ToolSpec], dict[str, Needs]]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    specs = {}
    for key, t in raw["tools"].items():
        specs[key] = ToolSpec(
            key=key,
            label=t["label"],
            names=adapter_names(t["adapter"]) if "adapter" in t else tuple(t["names"]),
            affects=t["affects"],
            hint=t["hint"],
            version_args=tuple(t.get("version_args", ())),
            module=t.get("module"),
            distribution=t.get("distribution"),
            env=t.get("env"),
            detail_only=bool(t.get("detail_only", False)),
        )
    needs = {
        name: Needs(tuple(n.get("required", ())), tuple(n.get("optional", ())), n.get("host"))
        for name, n in raw["needs"].items()
    }
    return specs, needs


def adapter_names(ref: str) -> tuple[str, ...]:
    """The candidate names, in their order, of the tools/ adapter `ref` ("module:Class") that
    the build runs: doctor looks for the same program the build will use (one list)."""
    module, _, cls = ref.partition(":")
    tool = getattr(importlib.import_module(module), cls, None)
    if not (isinstance(tool, type) and issubclass(tool, Tool) and tool.names):
        raise ToolError(f"{DATA.name}: adapter {ref!r} is not a tool adapter with names")
    return tool.names


def parse_version(text: str) -> str | None:
    """The first dotted version in a tool's banner ("Apple clang version 15.0.0 ..." -> 15.0.0)."""
    return banner_version(text)


def first_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return None


def needs_sets(recipe: Recipe) -> list[str]:
    """Which [needs.*] tables apply: common, <platform>-<toolchain>, universal if it joins."""
    sets = ["common", f"{recipe.platform}-{recipe.toolchain}"]
    if len(recipe.archs) > 1 or recipe.slices:
        sets.append("universal")
    return sets


class Doctor:
    """Probes tools (once each) and judges recipes. `which` and `runner` are swappable."""

    def __init__(
        self,
        runner: Runner | None = None,
        host: HostInfo | None = None,
        which_fn: Which | None = None,
        modules: Callable[[str], bool] | None = None,
        versions: bool = True,
    ) -> None:
        self.runner = runner or default_runner()
        self.versions = versions  # False: found on PATH is enough (no `--version` runs)
        self.host = host or HostInfo.current()
        self.which: Which = which_fn or which
        self.has_module = modules or (lambda m: importlib.util.find_spec(m) is not None)
        self.specs, self.needs = load_data()
        self._probed: dict[str, ToolStatus] = {}

    def probe(self, key: str) -> ToolStatus:
        if key not in self._probed:
            self._probed[key] = self._probe(self.specs[key])
        return self._probed[key]

    def _probe(self, spec: ToolSpec) -> ToolStatus:
        names = list(spec.names)
        override = os.environ.get(spec.env) if spec.env else None
        if override:
            names.insert(0, override)
        path = self.which(names, python_scripts())
        argv: list[str] | None = [str(path)] if path else None
        if path is None and spec.module and self.has_module(spec.module):
            if spec.distribution:  # a library standing in for a program: no argv to ask
                version = _dist_version(spec.distribution)
                return self._status(spec, f"python module {spec.module}", version, None)
            argv = [sys.executable, "-m", spec.module]
        if argv is None:
            return ToolStatus(
                spec.key, spec.label, False, None, None, None, spec.affects, spec.hint
            )
        version = detail = None
        if spec.version_args and self.versions:
            try:
                res = self.runner.run([*argv, *spec.version_args], check=False, timeout=20)
            except (LlamabuildError, OSError) as exc:
                detail = f"cannot run: {exc}"
            else:
                text = res.stdout if res.stdout.strip() else res.stderr
                if res.returncode != 0:
                    detail = f"exit {res.returncode}: {first_line(text) or 'no output'}"
                    return ToolStatus(
                        spec.key,
                        spec.label,
                        False,
                        " ".join(argv),
                        None,
                        detail,
                        spec.affects,
                        spec.hint,
                    )
                if spec.detail_only:
                    detail = first_line(text)
                else:
                    version, detail = parse_version(text), first_line(text)
        return self._status(spec, " ".join(argv), version, detail)

    @staticmethod
    def _status(spec: ToolSpec, where: str, version: str | None, detail: str | None) -> ToolStatus:
        return ToolStatus(
            spec.key, spec.label, True, where, version, detail, spec.affects, spec.hint
        )

    def requirements(self, recipe: Recipe) -> tuple[Needs, list[Finding]]:
        """Required/optional tool keys and host findings (wrong OS or CPU for this recipe)."""
        required: list[str] = []
        optional: list[str] = []
        findings: list[Finding] = []
        for name in needs_sets(recipe):
            needs = self.needs.get(name)
            if needs is None:
                findings.append(
                    error(
                        "recipe-unsupported",
                        f"no tool list for {recipe.platform}/{recipe.toolchain} recipes",
                        hint=f"add [needs.{name}] to {DATA.name}",
                    )
                )
                continue
            required += [k for k in needs.required if k not in required]
            optional += [k for k in needs.optional if k not in optional and k not in required]
            if needs.host and needs.host != self.host.system:
                findings.append(
                    error(
                        "host-unsupported",
                        f"recipe {recipe.name} builds natively on "
                        f"{'macOS' if needs.host == 'Darwin' else needs.host}; "
                        f"this host is {self.host.label}",
                        hint=_host_hint(recipe),
                    )
                )
        native_linux = recipe.platform == "linux" and recipe.toolchain == "native"
        if native_linux and self.host.machine not in recipe.archs:
            findings.append(
                error(
                    "host-unsupported",
                    f"recipe {recipe.name} builds {'/'.join(recipe.archs)} natively; "
                    f"this host is {self.host.label}",
                    hint="run it on a machine of that architecture",
                )
            )
        optional = [k for k in optional if k not in required]
        return Needs(tuple(required), tuple(optional)), findings

    def check(self, recipe: Recipe) -> tuple[Needs, list[Finding]]:
        needs, findings = self.requirements(recipe)
        for key in needs.required:
            st = self.probe(key)
            if not st.found:
                findings.append(
                    error(
                        "tool-missing",
                        f"{st.label} not found: needed for {st.affects}",
                        hint=st.hint,
                        path=st.path,
                    )
                )
        for key in needs.optional:
            st = self.probe(key)
            if not st.found:
                findings.append(
                    warning(
                        "tool-optional-missing", f"{st.label} not found: {st.affects}", hint=st.hint
                    )
                )
        return needs, findings

    def diagnose(self, recipe_name: str | None = None) -> DoctorReport:
        name = recipe_name or default_recipe_name()
        recipe = load_recipe(name)
        needs, findings = self.check(recipe)
        verdicts = {}
        for other in sorted(available()):
            try:
                verdicts[other] = exit_code(self.check(load_recipe(other))[1]) == 0
            except LlamabuildError:
                verdicts[other] = False
        for key in self.specs:  # show every tool, even ones this recipe does not need
            self.probe(key)
        return DoctorReport(
            recipe=name,
            host=self.host,
            required=needs.required,
            optional=needs.optional,
            found=dict(self._probed),
            findings=findings,
            recipes=verdicts,
        )


def refuse_unrunnable(recipe: Recipe, doctor: Doctor | None = None) -> None:
    """Before a build: raise UsageError (exit 2) with doctor's reasons when `recipe` cannot run
    on this machine (wrong OS or CPU, a required tool missing), instead of a CMake failure
    40 log lines later. Tools are looked up on PATH only (no `--version` runs): milliseconds."""
    doc = doctor or Doctor(versions=False)
    _, findings = doc.check(recipe)
    reasons = [f for f in findings if f.severity is Severity.ERROR]
    if not reasons:
        return
    first_hint = next((f.hint for f in reasons if f.hint), None)
    hint = f"`llamabuild doctor --recipe {recipe.name}` lists what is missing"
    raise UsageError(
        f"recipe {recipe.name} cannot run on this machine: "
        + "; ".join(f.message for f in reasons),
        hint=f"{first_hint}; {hint}" if first_hint else hint,
    )


def _host_hint(recipe: Recipe) -> str:
    if recipe.platform == "macos":
        return (
            "build it on a Mac (e.g. the macos-14 GitHub runner); "
            "on Linux use macos-arm64-cpu-cross"
        )
    return "build it on a Linux machine (or in a Linux container)"


def _dist_version(dist: str) -> str | None:
    import importlib.metadata  # 14 ms: only when a version is shown, not for build's check

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def diagnose(recipe: str | None = None, runner: Runner | None = None) -> DoctorReport:
    try:
        return Doctor(runner).diagnose(recipe)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - bundled data is tested
        raise ToolError(f"{DATA}: invalid TOML: {exc}") from exc


def tool_rows(report: DoctorReport) -> list[tuple[str, ToolStatus]]:
    """Tools in display order: required, optional, then the rest; each with its role."""
    order: list[tuple[str, ToolStatus]] = []
    seen: set[str] = set()
    groups: Mapping[str, Sequence[str]] = {
        "required": report.required,
        "optional": report.optional,
        "not needed": list(report.found),
    }
    for role, keys in groups.items():
        for k in keys:
            if k not in seen and k in report.found:
                seen.add(k)
                order.append((role, report.found[k]))
    return order
