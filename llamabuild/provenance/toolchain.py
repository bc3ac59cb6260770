"""Code the toolchain links statically into llama-server: glibc, libstdc++ and libgcc of a
`-static` gcc build; the libc++, libc++abi and compiler_rt zig builds into a macOS binary.

The table (data/toolchain_components.toml) names each with its license and symbols only its
own objects define. A component is listed when the build's toolchain (CMake's toolchains
reply) is its toolchain and the binary defines one of them: a dynamic link only imports them.
Versions, the archive and package each came from and the license texts kept on the machine
are read from that toolchain, and only for components found, so a build without any (a
dynamic C build) starts no process here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from llamabuild.config.settings import from_mapping
from llamabuild.core.errors import ConfigError, InputError, ToolError
from llamabuild.core.findings import Finding, warning
from llamabuild.core.mapped import open_mapped
from llamabuild.core.resources import data_file, data_text
from llamabuild.provenance.components import MAX_TEXT, LicenseText, TextSpec, excerpt
from llamabuild.provenance.linkcheck import defined_symbols
from llamabuild.tools.runner import Runner

TABLE = "toolchain_components.toml"
LICENSE_DIR = "licenses"
MAX_SCRIPT = 64 * 1024  # a compiler wrapper script
MAX_FILE = 4 * MAX_TEXT  # a machine file a text is cut from (gcc's copyright: ~70 KB)
PROBE_TIMEOUT = 60.0
OS_RELEASE = Path("/etc/os-release")
Compilers = Mapping[str, Mapping[str, str]]  # language -> CMake's id, version, path


@dataclass(frozen=True)
class ToolchainSpec:
    """One [toolchain.<name>]: the binary format and compilers that select it."""

    description: str
    format: Literal["elf", "macho"]
    compilers: tuple[str, ...]
    driver: Literal["cc", "zig"]
    source: str


@dataclass(frozen=True)
class ToolchainText:
    """A license text: shipped with llamabuild, or a file of the build host (shipped as the
    fallback); `optional` ones are skipped without a warning where the host lacks them."""

    shipped: str | None = None
    file: str | None = None
    from_: str | None = None  # `from` in the TOML
    to: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class ToolchainComponentSpec:
    """One [[component]] of data/toolchain_components.toml."""

    toolchain: str
    name: str
    license: str
    url: str
    source: str
    evidence: tuple[str, ...]
    texts: tuple[ToolchainText, ...]
    version: Literal["glibc", "gcc", "libcxx", "zig"] | None = None
    archives: tuple[str, ...] = ()
    cpe: str | None = None
    purl: str | None = None
    notice: str | None = None


@dataclass(frozen=True)
class ToolchainTable:
    toolchain: dict[str, ToolchainSpec]
    component: tuple[ToolchainComponentSpec, ...]
    license_file: dict[str, str]  # shipped text -> its official source


def load_table(text: str | None = None, where: str = TABLE) -> ToolchainTable:
    """The shipped table (or `text`), typed and cross-checked; ConfigError on a bad entry."""
    try:
        raw = tomllib.loads(data_text(TABLE) if text is None else text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for entry in raw.get("component", []):
        for t in entry.get("texts", []) if isinstance(entry, dict) else []:
            if isinstance(t, dict) and "from" in t:
                t["from_"] = t.pop("from")
    table = from_mapping(ToolchainTable, raw, where)
    for c in table.component:
        if c.toolchain not in table.toolchain:
            raise ConfigError(f"{where}: {c.name}: no [toolchain.{c.toolchain}]")
        for t in c.texts:
            if t.shipped is None and t.file is None:
                raise ConfigError(f"{where}: {c.name}: a text needs `shipped` or `file`")
            if t.shipped is not None and t.shipped not in table.license_file:
                raise ConfigError(f"{where}: {c.name}: {t.shipped} is not in [license_file]")
    return table


def shipped_text(name: str) -> str:
    """llamabuild/data/licenses/<name>: a license text llamabuild ships verbatim."""
    return data_file(f"{LICENSE_DIR}/{name}").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Package:
    """The Debian package an archive was installed by (dpkg)."""

    name: str
    version: str
    arch: str

    @property
    def upstream(self) -> str:
        """1:12.2.0-14+deb12u1 -> 12.2.0: without the epoch and the Debian revision."""
        version = self.version.split(":", 1)[-1]
        return version.rsplit("-", 1)[0]


@dataclass(frozen=True)
class ToolchainComponent:
    """A component the toolchain linked into the binary, with what proves it."""

    spec: ToolchainComponentSpec
    version: str | None
    texts: tuple[LicenseText, ...]
    evidence: tuple[str, ...]  # its symbols the binary defines (empty: no symbol table)
    archives: tuple[str, ...] = ()  # the static libraries the driver linked it from
    package: Package | None = None
    zig_version: str | None = None
    distro: str | None = None  # os-release ID-VERSION_ID, for the deb purl

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def license(self) -> str:
        return self.spec.license

    @property
    def url(self) -> str | None:
        return self.spec.url

    @property
    def notice(self) -> str | None:
        return self.spec.notice

    @property
    def cpe(self) -> str | None:
        return _fill(self.spec.cpe, version=self.version)

    @property
    def purl(self) -> str | None:
        """The spec's purl (filled); the SBOM uses the package's deb purl when there is one."""
        return _fill(self.spec.purl, version=self.version, zig_version=self.zig_version)


def _fill(template: str | None, **values: str | None) -> str | None:
    """`template` with its {fields} filled; None when one of them is unknown."""
    if template is None:
        return None
    try:
        return template.format_map({k: v for k, v in values.items() if v})
    except (KeyError, ValueError):
        return None


def zig_of(compiler: str) -> Path | None:
    """The zig behind a compiler path: zig itself, or the `exec <zig> cc|c++` line of a wrapper
    script (tools/zig.py writes those); None for any other compiler."""
    path = Path(compiler)
    try:
        if not path.is_file():
            return None
        if path.name in ("zig", "zig.exe"):
            return path
        if path.stat().st_size > MAX_SCRIPT:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"#!"):
        return None
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.startswith("exec "):
            continue
        try:
            argv = shlex.split(line)[1:]
        except ValueError:
            return None
        if len(argv) >= 2 and Path(argv[0]).name.startswith("zig") and argv[1] in ("cc", "c++"):
            return Path(argv[0])
    return None


def _macro(text: str, name: str) -> str | None:
    m = re.search(rf"^#define {re.escape(name)} (\S+)", text, re.M)
    return m.group(1) if m else None


def _zon_or_json(text: str, key: str) -> str | None:
    """A string field of `zig env` (ZON since zig 0.15, JSON before)."""
    m = re.search(rf'(?:\.{key}\s*=|"{key}"\s*:)\s*"([^"]*)"', text)
    return m.group(1) if m else None


@cache
def _read_os_release() -> str | None:
    """`debian-12`: the distribution of the packages dpkg names (the deb purl's `distro`)."""
    try:
        text = OS_RELEASE.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, re.M))
    if not fields.get("ID"):
        return None
    return "-".join(v for v in (fields["ID"], fields.get("VERSION_ID")) if v)


class Toolchain:
    """The toolchain that built the binary; each question is asked once, and only when a
    component found in the binary needs the answer."""

    def __init__(
        self, name: str, spec: ToolchainSpec, compiler: Mapping[str, str], runner: Runner
    ) -> None:
        self.name = name
        self.spec = spec
        self.compiler = compiler
        self.runner = runner
        path = compiler.get("path", "")
        found = shutil.which(path) if path and not Path(path).is_file() else path
        self.driver = found or None  # CMake names it by absolute path; a bare name: on PATH
        self.zig = zig_of(path) if path and spec.driver == "zig" else None
        self._archives: dict[str, str | None] = {}
        self._packages: dict[str, Package | None] = {}
        self._versions: dict[str, str | None] = {}
        self._zig_env: dict[str, str] | None = None

    def _out(self, argv: Sequence[str | Path], input_bytes: bytes | None = None) -> str | None:
        """stdout of a successful run, else None (a probe that fails leaves a field empty). Run
        in a temp dir: `zig c++ --version` (and -E) leaves an empty a.o in its cwd (measured,
        zig 0.17), which must not land in the user's project."""
        try:
            with tempfile.TemporaryDirectory(prefix="llamabuild-probe-") as cwd:
                res = self.runner.run(
                    argv, check=False, timeout=PROBE_TIMEOUT, input_bytes=input_bytes, cwd=Path(cwd)
                )
        except ToolError:
            return None
        return res.stdout if res.returncode == 0 else None

    def archive(self, name: str) -> str | None:
        """Where the driver takes `name` from (-print-file-name), as an absolute path."""
        if name not in self._archives:
            out = self._out([self.driver, f"-print-file-name={name}"]) if self.driver else None
            found = Path(os.path.normpath(out.strip())) if out and out.strip() else None
            ok = found is not None and found.is_absolute() and found.is_file()
            self._archives[name] = str(found) if ok else None
        return self._archives[name]

    def packages(self, paths: Iterable[str]) -> dict[str, Package]:
        """The Debian packages that installed `paths` (none without dpkg): one dpkg-query -S
        and one -W for all of them."""
        paths = list(paths)
        todo = sorted({p for p in paths if p not in self._packages})
        if todo and shutil.which("dpkg-query"):
            owners: dict[str, str] = {}
            for line in (self._out(["dpkg-query", "-S", *todo]) or "").splitlines():
                pkg, sep, path = line.partition(": ")
                if sep and path in todo and "," not in pkg and " " not in pkg:
                    owners[path] = pkg
            names = sorted(set(owners.values()))
            fmt = "${binary:Package}\t${Version}\t${Architecture}\n"
            listed = self._out(["dpkg-query", "-W", "-f", fmt, *names]) if names else None
            known: dict[str, Package] = {}
            for line in (listed or "").splitlines():
                parts = line.split("\t")
                if len(parts) == 3 and all(parts):
                    known[parts[0]] = Package(parts[0].split(":")[0], parts[1], parts[2])
            for path in todo:
                self._packages[path] = known.get(owners.get(path, ""))
        for path in todo:
            self._packages.setdefault(path, None)
        return {p: got for p in paths if (got := self._packages.get(p)) is not None}

    def zig_env(self) -> dict[str, str]:
        """`zig env`: lib_dir and version of the zig that built the binary."""
        if self._zig_env is None:
            out = self._out([self.zig, "env"]) if self.zig else None
            fields = {k: _zon_or_json(out or "", k) for k in ("lib_dir", "version")}
            self._zig_env = {k: v for k, v in fields.items() if v}
        return self._zig_env

    def version(self, probe: str, package: Package | None) -> str | None:
        """The version a component's `version` probe names (see the table's header), else
        the upstream part of its package's version."""
        if probe not in self._versions:
            self._versions[probe] = self._version(probe)
        return self._versions[probe] or (package.upstream if package else None)

    def _version(self, probe: str) -> str | None:
        if probe == "glibc" and self.driver:
            out = self._out(
                [self.driver, "-E", "-dM", "-x", "c", "-"], input_bytes=b"#include <features.h>\n"
            )
            parts = [_macro(out or "", m) for m in ("__GLIBC__", "__GLIBC_MINOR__")]
            if all(parts):
                return ".".join(p for p in parts if p)
        if probe == "gcc" and self.driver and self.compiler.get("id") == "GNU":
            out = (self._out([self.driver, "-dumpfullversion"]) or "").strip()
            if re.fullmatch(r"[0-9][0-9.]*", out):
                return out
        if probe == "libcxx":
            return self._libcxx_version()
        if probe == "zig":
            return self.zig_env().get("version")
        return None

    def _libcxx_version(self) -> str | None:
        """_LIBCPP_VERSION of zig's libc++ headers: 220108 -> 22.1.8 (LLVM 16+ numbering)."""
        lib = self.zig_env().get("lib_dir")
        if lib is None:
            return None
        try:
            with open_mapped(Path(lib) / "libcxx" / "include" / "__config") as mm:
                text = bytes(mm[:MAX_FILE]).decode("utf-8", "replace")
        except InputError:
            return None
        m = re.search(r"^#\s*define\s+_LIBCPP_VERSION\s+(\d+)", text, re.M)
        if m is None:
            return None
        n = int(m.group(1))
        return f"{n // 10000}.{n // 100 % 100}.{n % 100}" if n >= 100000 else str(n)

    def places(self, package: Package | None) -> dict[str, str]:
        """What a text's `file` may name: {package_doc}, {zig_lib}, {zig_root}."""
        out: dict[str, str] = {}
        if package is not None:
            out["package_doc"] = f"/usr/share/doc/{package.name}"
        lib = self.zig_env().get("lib_dir") if self.zig else None
        if lib:
            out["zig_lib"] = lib
            out["zig_root"] = str(Path(lib).parent)
        return out


def detect(
    fmt: str, compilers: Compilers, table: ToolchainTable, runner: Runner
) -> Toolchain | None:
    """The table's toolchain that built a binary of `fmt` with `compilers` (C++ first); an
    unknown compiler (a CMake without the toolchains reply) matches by format alone."""
    compiler = compilers.get("CXX") or compilers.get("C") or {}
    for name, spec in table.toolchain.items():
        if spec.format != fmt or (compiler and compiler.get("id") not in spec.compilers):
            continue
        if spec.driver == "zig" and compiler and zig_of(compiler.get("path", "")) is None:
            continue  # a plain clang: not the libc++ zig ships
        return Toolchain(name, spec, compiler, runner)
    return None


def find_toolchain_components(
    binary: Path,
    fmt: str,
    compilers: Sequence[Compilers],
    findings: list[Finding],
    table: ToolchainTable | None = None,
    runner: Runner | None = None,
) -> tuple[ToolchainComponent, ...]:
    """The table's components the toolchain of each slice (`compilers`: CMake's compilers of
    each build dir) linked statically into `binary`; unreadable texts are findings."""
    tab = load_table() if table is None else table
    symbols = defined_symbols(binary)
    run = runner or Runner()
    out: dict[str, ToolchainComponent] = {}
    for comps in compilers:
        tc = detect(fmt, comps, tab, run)
        if tc is None:
            continue
        found: list[tuple[ToolchainComponentSpec, tuple[str, ...], tuple[str, ...]]] = []
        for spec in tab.component:
            if spec.toolchain != tc.name or spec.name in out:
                continue
            evidence = tuple(s for s in spec.evidence if s in symbols)
            if symbols and not evidence:
                continue  # not linked, or linked dynamically (its symbols only imported)
            archives = tuple(a for a in (tc.archive(n) for n in spec.archives) if a)
            found.append((spec, evidence, archives))
        packages = tc.packages(a[0] for _, _, a in found if a)  # one dpkg-query for all
        for spec, evidence, archives in found:
            package = packages.get(archives[0]) if archives else None
            out[spec.name] = _component(spec, tc, evidence, archives, package, findings)
    return tuple(out.values())


def _component(
    spec: ToolchainComponentSpec,
    tc: Toolchain,
    evidence: tuple[str, ...],
    archives: tuple[str, ...],
    package: Package | None,
    findings: list[Finding],
) -> ToolchainComponent:
    return ToolchainComponent(
        spec=spec,
        version=tc.version(spec.version, package) if spec.version else None,
        texts=_texts(spec, tc.places(package), findings),
        evidence=evidence,
        archives=archives,
        package=package,
        zig_version=tc.zig_env().get("version") if tc.zig else None,
        distro=_read_os_release() if package else None,
    )


def _texts(
    spec: ToolchainComponentSpec, places: Mapping[str, str], findings: list[Finding]
) -> tuple[LicenseText, ...]:
    """Each text of `spec`: the host's file when it has it, else the shipped copy."""
    out: list[LicenseText] = []
    for t in spec.texts:
        text: LicenseText | None = None
        problem: str | None = None
        path = _fill(t.file, **places) if t.file else None
        if path is not None:
            try:
                text = LicenseText(path, _read_host_text(Path(path), t))
            except InputError as exc:
                problem = exc.message
        elif t.file is not None:
            problem = f"{t.file}: this host has no such place"
        if text is None and t.shipped is not None:
            label = f"llamabuild/data/{LICENSE_DIR}/{t.shipped}"
            text = LicenseText(label, shipped_text(t.shipped))
        if text is not None:
            out.append(text)
        elif not t.optional:
            findings.append(
                warning(
                    "license-text-missing",
                    f"{spec.name}: no license text: {problem}",
                    hint=f"the notices lack it; check the toolchain or data/{TABLE}",
                )
            )
    return tuple(out)


def _read_host_text(path: Path, t: ToolchainText) -> str:
    """A license text kept by the toolchain or the distribution (bounded, regular files)."""
    with open_mapped(path) as mm:
        data = bytes(mm[:MAX_FILE]).decode("utf-8", "replace")
    if t.from_ is not None:
        data = excerpt(data, TextSpec(file=str(path), to=t.to, from_=t.from_))
    return data.strip()[:MAX_TEXT] + "\n"
