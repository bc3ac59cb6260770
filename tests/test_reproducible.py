"""Deterministic builds, `build --check-reproducible` and `rebuild MANIFEST` on tests/cmake_project:
real cmake + ninja + cc (and zig for the Mach-O cross build) builds, no mocks. Apple's linker and
dsymutil flags are checked as argv (no Mac here)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from llamabuild.builder import reproducible, ziglink
from llamabuild.builder.zigroot import ROOT_LENGTH, ZigRoot
from llamabuild.cli import run
from llamabuild.inspect import sectiondiff
from llamabuild.inspect.structure import read_uuids
from llamabuild.tools.dsymutil import dsymutil_argv
from tests.test_build import ZIG_RECIPE, _have_zig_tools, work  # noqa: F401 - fixture
from tests.test_schemas import assert_file_valid

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
needs_zig = pytest.mark.skipif(not _have_zig_tools(), reason="needs ziglang, dsymutil-19, llvm-19")

# A path leak the prefix maps cannot fix: the checkout path as a string literal from a -D.
PLANT_CMAKE = (
    '\ntarget_compile_definitions(llama-server PRIVATE PLANTED="${CMAKE_CURRENT_SOURCE_DIR}")\n'
)
PLANT_C = 'int main(void) {\n    printf("built from %s\\n", PLANTED);\n'

MAC_NATIVE = """
description = "test project, Apple's toolchain"
platform = "macos"
archs = ["arm64"]
min_macos = "14.0"

[cache]
CMAKE_BUILD_TYPE = "RelWithDebInfo"
CMAKE_EXE_LINKER_FLAGS = "-Wl,-dead_strip"
LLAMA_BUILD_SERVER = true
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = run(list(argv))
    cap = capsys.readouterr()
    return code, json.loads(cap.out), cap.err


def build(
    capsys: pytest.CaptureFixture[str], recipe: str, *extra: str
) -> tuple[int, dict[str, Any], str]:
    return cli(capsys, "build", "-r", recipe, "--source", "llama src", "--json", *extra)


def plant(tree: Path) -> None:
    server = tree / "tools" / "server"
    with (server / "CMakeLists.txt").open("a") as fh:
        fh.write(PLANT_CMAKE)
    source = (server / "server.c").read_text()
    (server / "server.c").write_text(source.replace("int main(void) {\n", PLANT_C))


def rules(out: dict[str, Any]) -> list[str]:
    return [f["rule"] for f in out["findings"]]


def test_two_builds_from_other_paths_are_identical(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = build(capsys, "test-native")
    assert code == 0, err
    a = work / "dist" / "test-native" / "llama-server"
    # Through ccache, each with its own (cold) cache: ccache hands the compiler normalized
    # relative paths, the same from any checkout.
    monkeypatch.setenv("LLAMABUILD_CACHE", str(work.parent / "other cache"))
    b = _build_elsewhere(capsys, work.parent / "elsewhere" / "another checkout", work)
    assert a.read_bytes() == b.read_bytes()
    assert sectiondiff.differing(a, b) == []
    assert out["manifest"]["source"]["date_epoch"] == reproducible.ARCHIVE_EPOCH
    # -g is on (RelWithDebInfo): neither checkout path is anywhere in the binary.
    assert b"llama src" not in a.read_bytes() and b"another checkout" not in b.read_bytes()
    # Without ccache, two checkouts agree with each other; not with a ccache build, whose
    # `__FILE__` of a header found through `-I<dir>/..` is normalized (measured on llama.cpp's
    # vendor/nlohmann): what --check-reproducible's second build mirrors.
    c = _build_elsewhere(capsys, work.parent / "third" / "c c", work, "--no-ccache")
    d = _build_elsewhere(capsys, work.parent / "fourth" / "d", work, "--no-ccache")
    assert c.read_bytes() == d.read_bytes()
    assert b"./tools/server/where/../where/where.h" in c.read_bytes()
    assert b"./tools/server/where/where.h" in a.read_bytes()


def _build_elsewhere(
    capsys: pytest.CaptureFixture[str], checkout: Path, project: Path, *extra: str
) -> Path:
    """Build a copy of the test tree at `checkout`, with its own build and dist dirs."""
    shutil.copytree(project / "llama src", checkout)
    argv = ["--source", str(checkout), "--lock", str(checkout.parent / "lock"), *extra]
    argv += ["--dist", str(checkout.parent / "dist"), "--build-dir", str(checkout.parent / "b")]
    code, _, err = cli(capsys, "build", "-r", "test-native", "--json", *argv)
    assert code == 0, err
    return checkout.parent / "dist" / "test-native" / "llama-server"


def test_check_reproducible_passes_and_is_recorded(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = build(capsys, "test-native", "--check-reproducible")
    assert code == 0, (out, err)
    assert out["published"] is True and out["manifest"]["reproducible"] is True
    manifest = work / "dist" / "test-native" / "manifest.json"
    assert_file_valid("manifest", manifest)
    second = out["second_build"]
    assert second["duration_s"] > 0
    assert {c["path"]: c["same"] for c in second["compared"]} == {"llama-server": True}
    # Up to date and already checked: the flag still builds twice (a stored verdict is no proof).
    code, again, _ = build(capsys, "test-native", "--check-reproducible")
    assert code == 0 and again["skipped"] is False and again["second_build"]["compared"]
    code, plain, _ = build(capsys, "test-native")
    assert code == 0 and plain["skipped"] is True and plain["second_build"] is None


def test_source_inside_a_git_repo_is_reproducible(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The llama-cpp-python sdist case: the tree's git data lies outside the source root, so
    ggml's configure-time `git rev-parse` answered in the checkout and not in the check's copy
    (measured: `0c1e570-dirty` against `unknown` in ggml.c). The pin answers for git now."""
    import subprocess

    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "outer"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=work, check=True
        )
    code, out, _ = build(capsys, "test-native", "--check-reproducible")
    assert code == 0, [(f["rule"], f["message"]) for f in out["findings"]]
    assert out["manifest"]["reproducible"] is True
    binary = work / "dist" / "test-native" / "llama-server"
    ran = subprocess.run([binary], capture_output=True, text=True, check=True).stdout
    assert "ggml commit: unknown\n" in ran  # a directory pin has no commit


def test_planted_path_leak_is_not_reproducible(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    plant(work / "llama src")
    code, out, err = build(capsys, "test-native", "--check-reproducible")
    assert code == 1, err
    (finding,) = [f for f in out["findings"] if f["rule"] == "not-reproducible"]
    assert finding["path"] == "llama-server" and ".rodata" in finding["message"]
    assert out["published"] is False and not (work / "dist" / "test-native").exists()
    code, out, err = build(capsys, "test-native", "--check-reproducible", "--allow-unreproducible")
    assert code == 0, err
    assert "not-reproducible-allowed" in rules(out) and "not-reproducible" not in rules(out)
    assert out["published"] is True and out["manifest"]["reproducible"] is False


def test_rebuild_reproduces_and_names_tool_drift(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = build(capsys, "test-native")
    assert code == 0, err
    manifest = work / "dist" / "test-native" / "manifest.json"
    code, res, err = cli(capsys, "rebuild", str(manifest), "--out", "rebuilt", "--json")
    assert code == 0, (res, err)
    binary = out["manifest"]["outputs"][0]
    assert res["ok"] is True and res["sha256"] == res["expected_sha256"] == binary["sha256"]
    assert (
        Path(res["binary"]).read_bytes()
        == (work / "dist" / "test-native" / "llama-server").read_bytes()
    )
    assert res["uuids"] == binary["uuids"] and res["tool_drift"] == []
    assert res["compiler_cache"] == "empty"  # the default: every object compiled again
    code, warm, err = cli(capsys, "rebuild", str(manifest), "--out", "w", "--json", "--warm-cache")
    assert code == 0 and warm["compiler_cache"] == "warm" and warm["sha256"] == res["sha256"]
    # The recipe file is gone: the manifest alone is enough.
    (work / "recipes" / "test-native.toml").unlink()
    data = json.loads(manifest.read_text())
    data["versions"]["cmake"] = "0.0.1"
    drifted = work / "drifted.json"
    drifted.write_text(json.dumps(data))
    code, res, err = cli(capsys, "rebuild", str(drifted), "--out", "r2", "--json")
    assert code == 2 and "cmake: manifest 0.0.1" in res["error"], err
    code, res, err = cli(capsys, "rebuild", str(drifted), "--out", "r2", "--json", "--allow-drift")
    assert code == 0, err
    assert res["tool_drift"][0]["tool"] == "cmake" and "tool-drift" in rules(res)


def test_rebuild_mismatch_is_exit_1_and_not_published(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = build(capsys, "test-native")
    assert code == 0, err
    manifest = work / "dist" / "test-native" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["outputs"][0]["sha256"] = "0" * 64
    tampered = work / "tampered.json"
    tampered.write_text(json.dumps(data))
    code, res, _ = cli(capsys, "rebuild", str(tampered), "--out", "r3", "--json")
    assert code == 1 and "rebuild-mismatch" in rules(res)
    assert res["published"] is False and not (work / "r3" / "test-native").exists()


@pytest.mark.slow
@pytest.mark.second_build  # zig's libc++ built again (empty caches): ~1.5 min each
@needs_zig
def test_zig_cross_build_is_reproducible_and_rebuilds_with_its_dsym(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (work / "recipes" / "test-zig.toml").write_text(ZIG_RECIPE)
    code, out, err = build(capsys, "test-zig", "--check-reproducible")
    assert code == 0, (out, err)
    assert out["manifest"]["reproducible"] is True
    dist = work / "dist" / "test-zig"
    uuids = read_uuids(dist / "llama-server")
    code, res, err = cli(capsys, "rebuild", str(dist / "manifest.json"), "--out", "rz", "--json")
    assert code == 0, (res, err)
    assert res["sha256"] == res["expected_sha256"]
    assert res["uuids"] == res["dsym_uuids"] == uuids
    assert (
        read_uuids(Path(res["dsym"]) / "Contents" / "Resources" / "DWARF" / "llama-server") == uuids
    )


@pytest.mark.slow
@pytest.mark.second_build  # zig's libc++ built again (empty caches): ~1.5 min each
@needs_zig
def test_zig_planted_leak_names_the_cstring_section(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (work / "recipes" / "test-zig.toml").write_text(ZIG_RECIPE)
    plant(work / "llama src")
    code, out, _ = build(capsys, "test-zig", "--check-reproducible")
    assert code == 1
    messages = [f["message"] for f in out["findings"] if f["rule"] == "not-reproducible"]
    assert any(m.startswith("llama-server:") and "__TEXT,__cstring" in m for m in messages)


def test_every_toolchain_gets_the_deterministic_flags(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    (work / "recipes" / "test-zig.toml").write_text(ZIG_RECIPE)
    (work / "recipes" / "test-mac.toml").write_text(MAC_NATIVE)
    src = str(work / "llama src")
    for recipe in ("test-native", "test-zig", "test-mac"):
        code, out, err = build(capsys, recipe, "--dry-run")
        assert code == 0, err
        (sl,) = out["slices"]
        entries, env = sl["cache_entries"], sl["env"]
        assert env["SOURCE_DATE_EPOCH"] == str(reproducible.ARCHIVE_EPOCH)
        assert env["ZERO_AR_DATE"] == "1"
        # Paths with spaces stay one argument of the flags string.
        for lang in ("C", "CXX"):
            assert f"'-ffile-prefix-map={src}=.'" in entries[f"CMAKE_{lang}_FLAGS"]
            assert f"-ffile-prefix-map={sl['build_dir']}=." in entries[f"CMAKE_{lang}_FLAGS"]
        archive = entries.get("CMAKE_C_ARCHIVE_CREATE")
        launcher = entries.get("CMAKE_CXX_LINKER_LAUNCHER", "")
        link = entries.get("CMAKE_EXE_LINKER_FLAGS", "")
        if recipe == "test-mac":  # Apple's ar/ranlib take ZERO_AR_DATE
            assert archive is None and launcher == ""
            root = Path(sl["build_dir"]).parent
            assert link.startswith(f"-Wl,-reproducible {shlex.quote(f'-Wl,-oso_prefix,{root}/')}")
            assert link.endswith(" -Wl,-dead_strip")  # the recipe's own flags stay
        else:
            assert archive == "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>"
            assert "-reproducible" not in link
        assert entries["GIT_EXE"] == entries["GIT_EXECUTABLE"]
        assert entries["GIT_EXE"].split(";")[2:] == ["unknown", "0", "0"]  # a directory pin
        if recipe == "test-zig":
            root = ZigRoot(Path(env["ZIG_LIB_DIR"]).parent)
            assert len(os.fsencode(root.path)) == ROOT_LENGTH
            assert root.path.parent == Path(os.environ["LLAMABUILD_ZIG_ROOT"])
            assert env["ZIG_GLOBAL_CACHE_DIR"] == str(root.cache)
            assert env["ZIG_LIB_DIR"] == str(root.lib)
            parts = launcher.split(";")
            assert parts[1] == str(Path(ziglink.__file__).resolve())
            assert parts[2].startswith(f"{root.link}/test-zig-")
            assert parts[4] == str(root.prime)


def test_dsymutil_gets_the_oso_prepend_path() -> None:
    argv = dsymutil_argv(
        ["xcrun", "dsymutil"], Path("/b/llama-server"), Path("/o.dSYM"), Path("/x y")
    )
    assert argv == [
        "xcrun",
        "dsymutil",
        "--oso-prepend-path=/x y",
        "/b/llama-server",
        "-o",
        "/o.dSYM",
    ]


def test_strip_managed_gives_back_the_recipe_entries() -> None:
    entries = {
        "CMAKE_C_FLAGS": "'-ffile-prefix-map=/a b=.' -ffile-prefix-map=/c=. -O3 '-DX=a b'",
        "CMAKE_CXX_FLAGS": "-ffile-prefix-map=/a=.",
        "CMAKE_EXE_LINKER_FLAGS": "-Wl,-reproducible '-Wl,-oso_prefix,/r r/' -Wl,-dead_strip",
        "CMAKE_C_ARCHIVE_CREATE": "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>",
        "CMAKE_C_LINKER_LAUNCHER": "python;ziglink.py;/tmp/x;1",
        "GIT_EXE": "python;gitpin.py;0c1e570;0;0",
        "GIT_EXECUTABLE": "python;gitpin.py;0c1e570;0;0",
        "GGML_METAL": "OFF",
    }
    assert reproducible.strip_managed(entries) == {
        "CMAKE_C_FLAGS": "-O3 '-DX=a b'",
        "CMAKE_EXE_LINKER_FLAGS": "-Wl,-dead_strip",
        "GGML_METAL": "OFF",
    }


def test_ziglink_stages_objects_with_the_epoch_and_links_archives(tmp_path: Path) -> None:
    build = tmp_path / "build"
    (build / "o").mkdir(parents=True)
    (build / "o" / "a.o").write_bytes(b"obj")
    (build / "libx.a").write_bytes(b"!<arch>\n")
    link = tmp_path / "link dir"
    args = ["-O2", "o/a.o", "libx.a", "-o", "bin/out", "/usr/lib/libz.a"]
    staged = [ziglink.stage(a, build, link, 315532800) for a in args]
    assert staged == [
        "-O2",
        str(link / "o" / "a.o"),
        str(link / "libx.a"),
        "-o",
        "bin/out",
        "/usr/lib/libz.a",
    ]
    assert (link / "o" / "a.o").read_bytes() == b"obj"
    assert os.stat(link / "o" / "a.o").st_mtime == 315532800
    assert (link / "libx.a").is_symlink() and (link / "libx.a").resolve() == build / "libx.a"
    assert os.stat(build / "o" / "a.o").st_mtime != 315532800  # ninja's view is untouched


def test_rebuild_refuses_what_is_no_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    code, res, err = cli(capsys, "rebuild", str(fifo), "--json")
    assert code == 2 and "FIFO" in res["error"], err  # refused without opening: no hang
    junk = tmp_path / "junk.json"
    junk.write_text('{"schema": 1}')
    code, res, err = cli(capsys, "rebuild", str(junk), "--json")
    assert code == 2 and "dist/<recipe>/manifest.json" in res["hint"]
    assert err.startswith("error: ") and "Traceback" not in err


def test_diffoscope_is_optional(tmp_path: Path) -> None:
    from llamabuild.tools.diffoscope import Diffoscope, report_argv
    from llamabuild.tools.runner import Runner

    argv = report_argv(Path("/d/diffoscope"), Path("/a b/x"), Path("/c/x"), Path("/r.txt"))
    assert argv == ["/d/diffoscope", "--text", "/r.txt", "--no-progress", "/a b/x", "/c/x"]
    missing = Diffoscope(Runner(), exe=tmp_path / "no-diffoscope-here")
    assert missing.report(tmp_path / "a", tmp_path / "b", tmp_path / "r.txt") is None


def test_git_pin_dates_the_build_and_rebuild_keeps_its_build_number(
    work: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess

    tree = work / "llama src"
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "pin"], ["tag", "b42"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=tree, check=True
        )
    # Stat-dirty, content-clean (a fresh copy, a restored CI cache): git's own `diff-index`
    # without a refresh calls it dirty and ggml compiled `<sha>-dirty` in; the pin says clean.
    os.utime(tree / "ggml" / "src" / "ggml.c", (1, 1))
    code, out, err = build(capsys, "test-native", "--ref", "b42")
    assert code == 0, err
    assert out["manifest"]["source"]["date_epoch"] == 1704164645  # the commit time
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True)
    binary = work / "dist" / "test-native" / "llama-server"
    ran = subprocess.run([binary], capture_output=True, text=True, check=True).stdout
    assert f"ggml commit: {sha.stdout[:7]}\n" in ran
    manifest = work / "dist" / "test-native" / "manifest.json"
    code, res, err = cli(capsys, "rebuild", str(manifest), "--out", "rg", "--json")
    assert code == 0, (res, err)
    version = subprocess.run([res["binary"]], capture_output=True, text=True, check=True).stdout
    assert "version: 42 (" in version and res["sha256"] == res["expected_sha256"]


def test_gitpin_answers_from_the_pin() -> None:
    from llamabuild.builder import gitpin

    assert gitpin.answer("0c1e570", "7", False, ["rev-parse", "--short", "HEAD"]) == (
        0,
        "0c1e570\n",
    )
    assert gitpin.answer("0c1e570", "7", False, ["rev-list", "--count", "HEAD"]) == (0, "7\n")
    assert gitpin.answer("0c1e570", "7", True, ["diff-index", "--quiet", "HEAD", "--", "."])[0] == 1
    assert gitpin.answer("a", "0", False, ["diff-index", "--quiet", "HEAD", "--", "."])[0] == 0
    assert gitpin.answer("a", "0", False, ["--version"])[1].startswith("git version ")
    assert gitpin.answer("a", "0", False, ["log", "-1", "--format=%ad"]) == (gitpin.NOT_A_REPO, "")
    assert gitpin.main(["only-one-arg"]) == 2


def test_zig_prime_dir_not_writable_is_a_tool_error(tmp_path: Path) -> None:
    from llamabuild.builder.run import prime_compiler_checks
    from llamabuild.builder.zigroot import ZigRoot
    from llamabuild.core.errors import ToolError

    blocker = tmp_path / "a file"
    blocker.write_text("not a dir")
    with pytest.raises(ToolError, match="cannot build zig's libc\\+\\+") as err:
        prime_compiler_checks(Path("/bin/true"), ZigRoot(blocker), {})
    assert err.value.hint is not None and "directory of this user's" in err.value.hint
