"""What the toolchain links statically into llama-server (llamabuild/provenance/toolchain.py,
data/toolchain_components.toml): glibc, libstdc++ and libgcc of a `-static` gcc build; libc++,
libc++abi and compiler_rt of a zig cross build to macOS; nothing linked dynamically.

Real binaries only: `llamabuild build` of tests/cmake_project with a C++ file, once with
`-static` and once with glibc dynamic (gcc); a tiny C++ program linked by `zig c++ -target
aarch64-macos` (slow: zig builds libc++ on its first link); a Mach-O that imports libc++ from
the OS, linked by ld64.lld against a stub as Apple's toolchain would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.config.domain import PinKind
from llamabuild.core.resources import data_file
from llamabuild.provenance import sbom
from llamabuild.provenance.components import find_components
from llamabuild.provenance.toolchain import (
    LICENSE_DIR,
    Package,
    ToolchainComponent,
    find_toolchain_components,
    load_table,
    shipped_text,
    zig_of,
)
from llamabuild.source.lock import Pin
from llamabuild.tools.zig import wrapper_text, zig_target
from tests.fixtures.macho import Lib, MachOFactory, have_toolchain, system, tool
from tests.test_build import PROJECT

pytestmark = pytest.mark.skipif(shutil.which("c++") is None, reason="needs a C++ compiler")

GNU = {"glibc", "libstdc++", "libgcc"}
ZIG = {"libc++", "libc++abi", "compiler_rt (zig)"}
RECIPE = """
description = "test project with C++, {what}"
platform = "linux"
archs = ["x86_64"]
elf_policy = "{policy}"

[cache]
CMAKE_BUILD_TYPE = "Release"
{flags}BUILD_SHARED_LIBS = false
GGML_NATIVE = false
GGML_OPENMP = false
LLAMA_OPENSSL = false
LLAMA_BUILD_SERVER = true
"""
# Exceptions, std::string, unordered_map: libstdc++ (libsupc++); __int128 division: libgcc.
RUNTIME_CPP = """#include <stdexcept>
#include <string>
#include <unordered_map>
extern "C" int cxx_answer(int n) {
    std::unordered_map<std::string, int> seen;
    seen[std::to_string(n)] = n;
    try {
        if (n > 99) throw std::runtime_error("too many");
    } catch (const std::exception &) {
        return -1;
    }
    __int128 wide = static_cast<__int128>(n) << 70;
    return static_cast<int>(seen.size() + static_cast<long>(wide / (n + 1)));
}
"""
# The same kinds of code for zig's libc++ / libc++abi, and __builtin_available, which needs
# __isPlatformVersionAtLeast: not in libSystem, so zig links it from its compiler_rt.
ZIG_CPP = """#include <cstdio>
#include <stdexcept>
#include <string>
#include <unordered_map>
int main(int argc, char **) {
    std::unordered_map<std::string, int> seen;
    seen[std::to_string(argc)] = argc;
    try {
        if (argc > 5) throw std::runtime_error("many");
    } catch (const std::exception &e) {
        std::puts(e.what());
    }
    if (__builtin_available(macOS 15.0, *)) std::puts("macOS 15");
    return static_cast<int>(seen.size());
}
"""


def cxx_project(dest: Path) -> Path:
    """tests/cmake_project with a C++ source in llama-server (a copy, in the test's tmp)."""
    shutil.copytree(PROJECT, dest)
    root = dest / "CMakeLists.txt"
    root.write_text(
        root.read_text().replace('project("llama.cpp" C)', 'project("llama.cpp" C CXX)')
    )
    server = dest / "tools" / "server"
    (server / "runtime.cpp").write_text(RUNTIME_CPP)
    cmake = server / "CMakeLists.txt"
    cmake.write_text(cmake.read_text().replace("server.c)", "server.c runtime.cpp)", 1))
    source = (server / "server.c").read_text()
    source = source.replace("int main(void) {", "int cxx_answer(int);\nint main(void) {")
    (server / "server.c").write_text(
        source.replace(
            "    return 0;\n}", '    printf("c++ %d\\n", cxx_answer(2));\n    return 0;\n}'
        )
    )
    return dest


@pytest.fixture(scope="module")
def gcc_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`llamabuild build` of the C++ project, fully static and with glibc dynamic: recipe ->
    dist dir."""
    proj = tmp_path_factory.mktemp("gcc") / "My App"
    (proj / "recipes").mkdir(parents=True)
    static = RECIPE.format(
        what="static", policy="static", flags='CMAKE_EXE_LINKER_FLAGS = "-static"\n'
    )
    (proj / "recipes" / "cxx-static.toml").write_text(static)
    flags = 'CMAKE_EXE_LINKER_FLAGS = "-static-libstdc++ -static-libgcc"\n'
    glibc = RECIPE.format(what="glibc dynamic", policy="glibc", flags=flags)
    (proj / "recipes" / "cxx-glibc.toml").write_text(glibc)
    cxx_project(proj / "llama src")
    out: dict[str, Path] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(proj)
        mp.setenv("LLAMABUILD_CACHE", str(proj.parent / "cache"))
        for recipe in ("cxx-static", "cxx-glibc"):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                code = run(["build", "-r", recipe, "--source", "llama src", "--json"])
            assert code == 0, printed.getvalue()[-4000:]
            out[recipe] = proj / "dist" / recipe
    return out


def nm_defined(path: Path) -> set[str]:
    """Symbols `path` defines, by binutils/LLVM nm (a second opinion beside LIEF)."""
    nm = tool("llvm-nm") or shutil.which("nm")
    if nm is None:
        pytest.skip("needs nm")
    argv = [nm, "--defined-only", str(path)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout
    return {parts[-1] for line in out.splitlines() if len(parts := line.split()) >= 3}


def sbom_of(dist: Path) -> dict[str, Any]:
    text = (dist / "llama-server.cdx.json").read_text()
    assert sbom.validate(text) is None  # the CycloneDX 1.6 JSON schema, strict
    bom: dict[str, Any] = json.loads(text)
    return bom


def toolchain_parts(bom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parts = bom["components"]
    return {c["name"]: c for c in parts if c["bom-ref"].startswith("toolchain:")}


def props(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def cxx_output(*argv: str) -> str:
    """A compiler's answer, run in a temp dir: `zig c++ --version` leaves an empty a.o in
    its cwd (measured, zig 0.17), which was landing in the checkout."""
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=cwd)
    return done.stdout.strip()


def test_static_gcc_build_lists_glibc_libstdcxx_libgcc(gcc_builds: dict[str, Path]) -> None:
    dist = gcc_builds["cxx-static"]
    bom = sbom_of(dist)
    found = toolchain_parts(bom)
    assert set(found) == GNU
    gcc_version = cxx_output("c++", "-dumpfullversion")  # the compiler CMake picked: c++
    glibc = cxx_output("getconf", "GNU_LIBC_VERSION").split()[-1]  # this host's libc.a too
    assert found["glibc"]["version"] == glibc
    assert found["libstdc++"]["version"] == found["libgcc"]["version"] == gcc_version
    assert found["glibc"]["licenses"] == [{"license": {"id": "LGPL-2.1-or-later"}}]
    for name in ("libstdc++", "libgcc"):
        assert found[name]["licenses"] == [
            {"expression": "GPL-3.0-or-later WITH GCC-exception-3.1"}
        ]
    assert found["glibc"]["cpe"] == f"cpe:2.3:a:gnu:glibc:{glibc}:*:*:*:*:*:*:*"
    # Evidence: symbols the binary defines (nm agrees), located in llama-server.
    defined = nm_defined(dist / "llama-server")
    for name, comp in found.items():
        occurrences = comp["evidence"]["occurrences"]
        assert occurrences and {o["location"] for o in occurrences} == {"llama-server"}
        assert {o["symbol"] for o in occurrences} <= defined, name
        assert comp["evidence"]["identity"][0]["methods"][0]["technique"] == "binary-analysis"
        assert props(comp, "llamabuild:linkage") == ["static"]
        assert props(comp, "llamabuild:toolchain") == ["gnu"]
    assert "__libc_start_main" in {o["symbol"] for o in found["glibc"]["evidence"]["occurrences"]}
    libc_a = os.path.normpath(cxx_output("c++", "-print-file-name=libc.a"))
    assert props(found["glibc"], "llamabuild:archive") == [libc_a]
    if shutil.which("dpkg-query"):  # the Debian package that installed libc.a
        (package,) = props(found["glibc"], "llamabuild:package")
        assert found["glibc"]["purl"].startswith(f"pkg:deb/debian/{package.split()[0]}@")
    (dep,) = [d for d in bom["dependencies"] if d["ref"] == "llama-server"]
    assert {f"toolchain:{n}" for n in GNU} <= set(dep["dependsOn"])


def test_static_gcc_notices_state_the_lgpl_and_carry_each_text_once(
    gcc_builds: dict[str, Path],
) -> None:
    dist = gcc_builds["cxx-static"]
    notices = (dist / "THIRD_PARTY_NOTICES.txt").read_text()
    credits = (dist / "Credits.html").read_text()
    for name in ("LGPL-2.1.txt", "GPL-3.0.txt", "GCC-exception-3.1.txt"):
        assert notices.count(shipped_text(name).strip()) == 1, name
    label = f"[llamabuild/data/{LICENSE_DIR}/GPL-3.0.txt]"
    assert f"{label}: the same text as above." in notices  # libgcc after libstdc++
    words = " ".join(notices.split())  # the statement is wrapped at 78 columns
    assert "section 6 of the LGPL-2.1" in words and "(6a)" in words
    assert "glibc 2." in notices and "libstdc++ " in notices
    copyright_file = Path("/usr/share/doc/libc6-dev/copyright")
    if shutil.which("dpkg-query") and copyright_file.is_file():
        assert f"[{copyright_file}]" in notices
    assert "customer&#39;s own use" in credits and "section 6 of the LGPL-2.1" in credits
    assert "the same text as above" in credits


SBOM_SCRIPT = """
import hashlib, sys
from pathlib import Path
from llamabuild.config.domain import PinKind
from llamabuild.provenance import sbom
from llamabuild.provenance.components import find_components
from llamabuild.provenance.toolchain import find_toolchain_components
from llamabuild.source.lock import Pin
binary, tree = Path(sys.argv[1]), Path(sys.argv[2])
compilers = [{"CXX": {"id": "GNU", "path": "c++", "version": ""}}]
runtime = find_toolchain_components(binary, "elf", compilers, [])
info = sbom.BinaryInfo(binary.name, "0" * 64, ("x86_64",), "cxx-static")
pin = Pin(kind=PinKind.DIR, url=str(tree))
bom = sbom.make_bom(info, pin, find_components(tree, [], None), "0", runtime)
print(len(runtime), hashlib.sha256(sbom.to_json(bom).encode()).hexdigest())
"""


def test_sbom_bytes_do_not_depend_on_the_process(
    gcc_builds: dict[str, Path], tmp_path: Path
) -> None:
    """The same build gives the same SBOM bytes (evidence occurrences in a stable order), in
    processes with different hash seeds."""
    binary = gcc_builds["cxx-static"] / "llama-server"
    argv = [sys.executable, "-c", SBOM_SCRIPT, str(binary), str(tmp_path)]
    outs = {
        subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1 and outs.pop().startswith("3 ")


def test_glibc_linked_dynamically_is_not_listed(gcc_builds: dict[str, Path]) -> None:
    """-static-libstdc++ -static-libgcc, glibc dynamic (libc.so.6 at run time): glibc's
    symbols are only imports, so it is no component; libstdc++ and libgcc are."""
    dist = gcc_builds["cxx-glibc"]
    found = toolchain_parts(sbom_of(dist))
    assert set(found) == {"libstdc++", "libgcc"}
    defined = nm_defined(dist / "llama-server")
    assert "__libc_start_main" not in defined
    for name, comp in found.items():
        assert {o["symbol"] for o in comp["evidence"]["occurrences"]} <= defined, name
    notices = (dist / "THIRD_PARTY_NOTICES.txt").read_text()
    assert "LGPL" not in notices and "GCC RUNTIME LIBRARY EXCEPTION" in notices


def test_elf_symbol_reader_agrees_with_lief(gcc_builds: dict[str, Path]) -> None:
    """linkcheck reads ELF symbol tables itself (20x faster than LIEF's objects): the same
    names as LIEF, for the static and dynamic executables and every object of their builds."""
    import lief

    from llamabuild.provenance import linkcheck

    lief.logging.disable()
    builds = gcc_builds["cxx-static"].parent.parent.parent / "cache" / "builds"
    files = [d / "llama-server" for d in gcc_builds.values()]
    files += sorted(builds.rglob("*.o"))
    assert len(files) >= 6
    for path in files:
        for external_only in (False, True):
            mine = linkcheck._elf_defined(path, external_only)
            theirs = linkcheck._defined(lief, lief.parse(str(path)), external_only)
            assert mine == theirs and mine, (path.name, external_only)


def test_gnu_evidence_symbols_are_defined_by_their_archives() -> None:
    """Each evidence symbol of the table is one its own library defines (this host's gcc)."""
    for spec in load_table().component:
        if spec.toolchain != "gnu":
            continue
        defined: set[str] = set()
        for archive in spec.archives:
            path = Path(cxx_output("c++", f"-print-file-name={archive}"))
            if not path.is_absolute():
                pytest.skip(f"this gcc has no {archive}")
            defined |= nm_defined(path)
        assert set(spec.evidence) <= defined, (spec.name, set(spec.evidence) - defined)


def test_shipped_license_texts_are_the_official_ones() -> None:
    """The copies in llamabuild/data/licenses/ equal the texts the host's own packages keep."""
    table = load_table()
    folder = data_file(LICENSE_DIR)
    assert {p.name for p in folder.iterdir()} == set(table.license_file)
    for name, source in table.license_file.items():
        assert source.startswith("https://"), name
    same = {
        "LGPL-2.1.txt": Path("/usr/share/common-licenses/LGPL-2.1"),
        "GPL-3.0.txt": Path("/usr/share/common-licenses/GPL-3"),
    }
    for name, machine in same.items():
        if machine.is_file():
            assert shipped_text(name) == machine.read_text(), name
    gcc_copyright = next(Path("/usr/share/doc").glob("gcc-*-base/copyright"), None)
    if gcc_copyright is not None:
        assert shipped_text("GCC-exception-3.1.txt").strip() in gcc_copyright.read_text()
    zig = _ziglang()
    if zig is not None:
        llvm = (Path(zig).parent / "lib" / "libcxx" / "LICENSE.TXT").read_text()
        assert llvm.startswith(shipped_text("Apache-2.0-WITH-LLVM-exception.txt").rstrip())


def test_shipped_table_is_well_formed() -> None:
    from license_expression import get_spdx_licensing

    spdx = get_spdx_licensing()
    table = load_table()
    names = [c.name for c in table.component]
    assert len(names) == len(set(names))
    for spec in table.component:
        assert not spdx.validate(spec.license).errors, spec.license
        assert spec.evidence and spec.texts and spec.source, spec.name
        assert spec.url.startswith("https://"), spec.name
        assert len(set(spec.evidence)) == len(spec.evidence), spec.name
        fmt = table.toolchain[spec.toolchain].format
        if fmt == "macho":  # Mach-O symbol names carry the C name's extra underscore
            assert all(s.startswith("_") for s in spec.evidence), spec.name
    assert {s.format for s in table.toolchain.values()} == {"elf", "macho"}


def test_package_upstream_version() -> None:
    assert Package("libc6-dev", "2.36-9+deb12u14", "amd64").upstream == "2.36"
    assert Package("x", "1:12.2.0-14+deb12u1", "amd64").upstream == "12.2.0"
    assert Package("x", "3.1", "all").upstream == "3.1"


def test_zig_is_found_behind_its_wrapper(tmp_path: Path) -> None:
    """tools/zig.py's wrapper script names the zig that compiled (the toolchain detection)."""
    wrapper = tmp_path / "zig-c++"
    zig = Path("/opt/zig dir/zig")
    wrapper.write_text(wrapper_text(zig, "c++", zig_target("arm64", "14.0")))
    assert zig_of(str(wrapper)) == zig
    other = tmp_path / "cc-wrapper"
    other.write_text('#!/bin/sh\nexec /usr/bin/clang -target arm64-apple-macos "$@"\n')
    assert zig_of(str(other)) is None
    assert zig_of(str(tmp_path / "missing")) is None


# --- macOS: libc++ from the OS (Apple's toolchain) is dynamic: no component ---------------------

LIBCXX_IMPORTS = ("__ZNSt3__19to_stringEi", "___cxa_throw")
APPLE_SOURCE = """int printf(const char *, ...);
extern int _ZNSt3__19to_stringEi(void);
extern int __cxa_throw(void);
int main(int argc, char **argv) {
  if (argc > 99) return _ZNSt3__19to_stringEi() + __cxa_throw();
  printf("libc++ from the OS\\n");
  return 0;
}
"""


@pytest.mark.compile
@pytest.mark.skipif(not have_toolchain(), reason="needs clang-19, ld64.lld-19")
def test_macho_importing_libcxx_from_the_os_lists_nothing(
    macho: MachOFactory, tmp_path: Path
) -> None:
    libcxx = Lib("/usr/lib/libc++.1.dylib", LIBCXX_IMPORTS)
    binary = macho.build("os-libcxx", [*system("libSystem"), libcxx], source=APPLE_SOURCE)
    wrapper = tmp_path / "zig-c++"
    wrapper.write_text(wrapper_text(Path("/opt/zig/zig"), "c++", "aarch64-macos.14.0"))
    for compiler in (
        {"id": "AppleClang", "path": "/usr/bin/c++", "version": "15.0.0"},  # Xcode's
        {"id": "Clang", "path": str(wrapper), "version": "19.1.0"},  # even zig's table
    ):
        findings: list[Any] = []
        assert find_toolchain_components(binary, "macho", [{"CXX": compiler}], findings) == ()
        assert findings == []


# --- zig c++ to aarch64-macos: its libc++, libc++abi and compiler_rt ---------------------------


def _ziglang() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("ziglang")
    exe = Path(spec.origin).parent / "zig" if spec is not None and spec.origin else None
    return str(exe) if exe is not None and exe.is_file() else None


@dataclass(frozen=True)
class ZigBuild:
    binary: Path
    wrapper: Path
    cache: Path


@pytest.fixture(scope="session")
def zig_cxx(tmp_path_factory: pytest.TempPathFactory) -> ZigBuild:
    """A C++ program compiled and linked for aarch64-macos 14.0 the way a zig recipe does
    (llamabuild's wrapper, the link launcher), in the session's shared zig root: its libc++,
    libc++abi and compiler_rt are the ones the real cross build links (built once a session,
    1.5-2.5 min on 2 cores, by whichever comes first)."""
    if _ziglang() is None:
        pytest.skip("needs ziglang (pip install ziglang)")
    from tests.test_zigroot import _zig_link

    shared = Path(os.environ.get("LLAMABUILD_ZIG_ROOT", tmp_path_factory.mktemp("zig root")))
    binary, _dsym, root = _zig_link(shared, tmp_path_factory.mktemp("zig cxx") / "b", ZIG_CPP)
    return ZigBuild(binary, binary.parent / "zig-c++", root.cache)


def zig_components(binary: Path, wrapper: Path) -> tuple[ToolchainComponent, ...]:
    findings: list[Any] = []
    compilers = [{"CXX": {"id": "Clang", "path": str(wrapper), "version": ""}}]
    found = find_toolchain_components(binary, "macho", compilers, findings)
    assert findings == []
    return found


@pytest.mark.slow
def test_zig_macho_lists_libcxx_libcxxabi_compiler_rt(zig_cxx: ZigBuild, tmp_path: Path) -> None:
    binary, wrapper = zig_cxx.binary, zig_cxx.wrapper
    found = {c.name: c for c in zig_components(binary, wrapper)}
    assert set(found) == ZIG
    exe = _ziglang()
    assert exe is not None
    zig_version = cxx_output(exe, "version")
    clang = cxx_output(str(wrapper), "--version").splitlines()[0]  # "clang version 22.1.8 …"
    llvm_major = clang.split("version ")[1].split(".")[0]
    for name in ("libc++", "libc++abi"):
        assert found[name].version is not None and found[name].version.split(".")[0] == llvm_major
        assert found[name].license == "Apache-2.0 WITH LLVM-exception"
    assert found["compiler_rt (zig)"].version == zig_version
    assert "___isPlatformVersionAtLeast" in found["compiler_rt (zig)"].evidence
    assert "__ZNSt3__19to_stringEi" in found["libc++"].evidence
    assert "___cxa_throw" in found["libc++abi"].evidence
    defined = nm_defined(binary)
    for comp in found.values():
        assert set(comp.evidence) <= defined, comp.name
        assert comp.zig_version == zig_version
    lib = Path(exe).parent / "lib"
    assert [t.file for t in found["libc++"].texts] == [str(lib / "libcxx" / "LICENSE.TXT")]
    assert "libc++abi library is dual licensed" in found["libc++abi"].texts[0].text
    assert found["compiler_rt (zig)"].texts[0].file == str(lib.parent / "LICENSE")
    # The SBOM of that binary, validated against the CycloneDX 1.6 schema.
    (tmp_path / "LICENSE").write_text("MIT License\n")
    project = find_components(tmp_path, [], None)
    info = sbom.BinaryInfo("main", "0" * 64, ("arm64",), "test-zig")
    pin = Pin(kind=PinKind.DIR, url=str(tmp_path))
    text = sbom.to_json(sbom.make_bom(info, pin, project, "0", list(found.values())))
    assert sbom.validate(text) is None
    by_name = {c["name"]: c for c in json.loads(text)["components"]}
    assert by_name["libc++"]["purl"] == f"pkg:github/ziglang/zig@{zig_version}#lib/libcxx"
    assert by_name["compiler_rt (zig)"]["licenses"] == [
        {"expression": "MIT AND Apache-2.0 WITH LLVM-exception"}
    ]


@pytest.mark.slow
def test_zig_evidence_symbols_are_defined_by_zigs_archives(zig_cxx: ZigBuild) -> None:
    """Each evidence symbol of the zig entries is one zig's own archive defines (the libc++.a,
    libc++abi.a and libcompiler_rt.a zig built into its cache for aarch64-macos)."""
    archives = {"libc++": "libc++.a", "libc++abi": "libc++abi.a"}
    archives["compiler_rt (zig)"] = "libcompiler_rt.a"
    for spec in load_table().component:
        if spec.toolchain != "zig":
            continue
        defined: set[str] = set()
        for path in zig_cxx.cache.glob(f"o/*/{archives[spec.name]}"):
            defined |= nm_defined(path)
        assert set(spec.evidence) <= defined, (spec.name, set(spec.evidence) - defined)
