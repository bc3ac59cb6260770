"""zig's private root (builder/zigroot.py): per user, owner-checked, a fixed length, rewritten to
one canonical root in the outputs, so two users (other HOME, other cache, other build dir)
get the same bytes. Real Mach-O throughout: ld64.lld-19 fixtures and real zig links."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llamabuild.builder import ziglink, zigroot
from llamabuild.builder.zigroot import CANONICAL, ROOT_LENGTH, ZigRoot, zig_root
from llamabuild.core.errors import ConfigError, ToolError
from llamabuild.inspect import integrity
from llamabuild.inspect.dsym import make_dsym
from llamabuild.inspect.structure import read_uuids
from tests.fixtures.macho import MachOFactory
from tests.test_build import _have_zig_tools

EPOCH = "315532800"
HELLO = """#include <cstdio>
#include <stdexcept>
#include <string>
int main(int argc, char **argv) {
    try {
        if (argc > 5) throw std::runtime_error(std::string(argv[0]));
    } catch (const std::exception &e) { std::puts(e.what()); }
    std::string s(argc, 'x');
    std::printf("%zu\\n", s.size());
    return 0;
}
"""


def _contains(path: Path, needle: bytes) -> bool:
    return needle in path.read_bytes()


def test_the_root_has_a_fixed_length_whatever_the_home(tmp_path: Path) -> None:
    short = zig_root(tmp_path / "a")
    longer = zig_root(tmp_path / "a much longer cache dir with spaces" / "zig", "0123abcd")
    assert len(os.fsencode(short.path)) == len(os.fsencode(longer.path)) == ROOT_LENGTH
    assert longer.path.name.startswith("0123abcd-__")
    assert len(CANONICAL) == ROOT_LENGTH and short.cache.parent == short.path
    with pytest.raises(ConfigError, match="too long") as err:
        zig_root(tmp_path / ("x" * 200))
    assert err.value.hint is not None and "LLAMABUILD_CACHE" in err.value.hint


def test_prepare_is_private_and_refuses_a_shared_dir(tmp_path: Path) -> None:
    lib = tmp_path / "zig lib"
    (lib / "libcxx").mkdir(parents=True)
    root = zig_root(tmp_path / "home")
    zigroot.prepare(root, lib)
    assert (root.path.stat().st_mode & 0o777) == 0o700
    assert root.lib.readlink() == lib.resolve() and root.cache.is_dir() and root.prime.is_dir()
    other = tmp_path / "other lib"
    other.mkdir()
    zigroot.prepare(root, other)  # another zig install: the link follows it
    assert root.lib.readlink() == other.resolve()
    shared = zig_root(tmp_path / "shared")
    shared.path.parent.mkdir(parents=True)
    shared.path.parent.chmod(0o777)  # another user could plant a libc++ here
    with pytest.raises(ToolError, match="refusing zig's root") as err:
        zigroot.prepare(shared, lib)
    assert err.value.hint is not None and "LLAMABUILD_CACHE" in err.value.hint
    planted = zig_root(tmp_path / "planted")
    planted.path.parent.mkdir(parents=True)
    planted.path.symlink_to(tmp_path)  # a symlink is never the root
    with pytest.raises(ToolError, match="refusing zig's root"):
        zigroot.prepare(planted, lib)


@pytest.mark.compile
def test_canonicalize_rewrites_the_root_and_keeps_the_signature_valid(
    macho: MachOFactory, tmp_path: Path
) -> None:
    """An lld-linked (ad-hoc signed) arm64 + x86_64 pair whose debug map and strings name the
    root: after the rewrite no byte of the root is left, each slice has a new UUID derived from
    its bytes, every code page hash matches again, and dsymutil, reading the objects through the
    mirror, makes a dSYM with those UUIDs and canonical strings only."""
    root = zig_root(tmp_path / "home")
    root.path.mkdir(parents=True)
    salt = f"{root.path}/libcxx"
    arm = macho.build("zr-arm", salt=salt, out_dir=root.path)
    x86 = macho.build("zr-x86", arch="x86_64", salt=salt, out_dir=root.path)
    binary = macho.fat("zr-fat", [arm, x86])
    before = read_uuids(binary)
    real = os.fsencode(root.path)
    assert _contains(binary, real)
    uuids = zigroot.canonicalize(binary, root)
    assert uuids == read_uuids(binary)
    assert set(uuids) == {"arm64", "x86_64"} and all(uuids[a] != before[a] for a in uuids)
    assert not _contains(binary, real) and _contains(binary, CANONICAL.encode())
    assert integrity.checked_findings(binary) == []
    assert zigroot.canonicalize(binary, root) == uuids  # idempotent
    names = set(zigroot.debug_map_paths(binary))
    assert names == {f"{CANONICAL}/zr-arm.build/zr-arm.o", f"{CANONICAL}/zr-x86.build/zr-x86.o"}
    with zigroot.debug_map_mirror(binary, root) as mirror:
        copy = Path(f"{mirror}{CANONICAL}/zr-arm.build/zr-arm.o")
        assert copy.is_file() and not copy.is_symlink() and not _contains(copy, real)
        made = make_dsym(binary, tmp_path / "zr-fat.dSYM", oso_prepend=mirror)
    assert not mirror.exists() and made.path is not None and made.findings == ()
    dwarf = made.path / "Contents" / "Resources" / "DWARF" / "zr-fat"
    assert read_uuids(dwarf) == uuids and not _contains(dwarf, real)
    assert _contains(dwarf, f"{CANONICAL}/zr-arm.build/zr-arm.c".encode())  # DW_AT_name
    dump = subprocess.run(
        ["llvm-dwarfdump-19", "--uuid", str(dwarf)], capture_output=True, text=True, check=True
    ).stdout
    assert all(u in dump for u in uuids.values())


def _zig_link(home: Path, build: Path, source: str = HELLO) -> tuple[Path, Path, ZigRoot]:
    """Compile and link `source` the way a zig recipe does (prefix maps, the link launcher),
    make its dSYM with dsymutil-19, then canonicalize: (binary, dSYM, root)."""
    from llamabuild.tools.runner import Runner
    from llamabuild.tools.zig import Zig, install_key

    zig = Zig(Runner())
    root = zig_root(home, install_key(zig))
    zigroot.prepare(root, zig.lib_dir())
    build.mkdir(parents=True)
    zig.write_toolchain(build, "arm64", "14.0")
    assert ziglink.PRIME_SOURCE
    (build / "hello.cpp").write_text(source)
    env = {**os.environ, **zigroot.env(root)}
    cxx = str(build / "zig-c++")
    flags = ["-g", "-O2", f"-ffile-prefix-map={build}=."]
    compile_ = [cxx, *flags, "-c", "hello.cpp", "-o", "hello.o"]
    subprocess.run(compile_, cwd=build, env=env, check=True)
    launcher = [sys.executable, ziglink.__file__, str(root.link / "t"), EPOCH, str(root.prime)]
    subprocess.run(
        [*launcher, cxx, *flags, "hello.o", "-o", "hello"], cwd=build, env=env, check=True
    )
    zigroot.canonicalize(build / "hello", root)
    with zigroot.debug_map_mirror(build / "hello", root) as mirror:
        made = make_dsym(build / "hello", build / "hello.dSYM", oso_prepend=mirror)
    assert made.path is not None and made.findings == (), made.findings
    return build / "hello", made.path, root


@pytest.mark.slow
@pytest.mark.second_build  # zig builds its libc++ again in the empty root: a second-build proof
@pytest.mark.skipif(not _have_zig_tools(), reason="needs ziglang, dsymutil-19, llvm-19")
def test_two_zig_roots_give_the_same_bytes(tmp_path: Path) -> None:
    """The shared (warm) root of this session and a new, empty one elsewhere (zig builds its
    libc++ again there: ~1-1.5 min on 2 cores): the same binary and dSYM, byte for byte."""
    shared = Path(os.environ.get("LLAMABUILD_ZIG_ROOT", tmp_path / "warm"))
    a = _zig_link(shared, tmp_path / "build a")
    b = _zig_link(tmp_path / "another user's cache" / "zig", tmp_path / "b" / "elsewhere")
    assert a[0].read_bytes() == b[0].read_bytes()
    files = sorted(p.relative_to(a[1]) for p in a[1].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b[1]) for p in b[1].rglob("*") if p.is_file())
    for rel in files:
        assert (a[1] / rel).read_bytes() == (b[1] / rel).read_bytes(), rel
    dwarf = a[1] / "Contents" / "Resources" / "DWARF" / "hello"
    assert read_uuids(a[0]) == read_uuids(dwarf)
    assert integrity.checked_findings(a[0]) == []
    stabs = subprocess.run(
        ["llvm-nm-19", "-ap", str(a[0])], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    oso = [line.split(" OSO ", 1)[1] for line in stabs if " OSO " in line]
    assert oso and all(p.startswith(CANONICAL) for p in oso)
    dirs = {line.split(" SO ", 1)[1] for line in stabs if " SO " in line}
    assert f"{CANONICAL}/libcxx" in dirs  # libc++ was compiled from the prime dir
    assert not any(str(tmp_path) in d for d in dirs)
    for _binary, _dsym, root in (a, b):
        assert not _contains(_binary, os.fsencode(root.path))
    if shutil.which("llvm-otool-19"):
        otool = subprocess.run(
            ["llvm-otool-19", "-l", str(a[0])], capture_output=True, text=True, check=True
        ).stdout
        assert "LC_CODE_SIGNATURE" in otool
