"""`llamabuild build` on tests/cmake_project: dry-run, stale flags, publish, no-op, failures,
interrupts. Real cmake + ninja + cc builds (a few seconds each), no mocks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llamabuild.builder.plan import init_cache_text
from llamabuild.builder.stale import Declarations, check_flags, parse_declarations
from llamabuild.cli import run
from llamabuild.config.recipes import Recipe
from llamabuild.tools.cmake import parse_progress, read_reply
from llamabuild.tools.lipo import create_argv
from llamabuild.tools.runner import Result, Runner
from llamabuild.tools.zig import Zig
from tests.test_schemas import assert_file_valid, assert_valid

PROJECT = Path(__file__).parent / "cmake_project"
RECIPE = """
description = "test project, native"
platform = "linux"
archs = ["x86_64"]
elf_policy = "{policy}"

[cache]
CMAKE_BUILD_TYPE = "RelWithDebInfo"
BUILD_SHARED_LIBS = false
GGML_NATIVE = false
GGML_OPENMP = false
LLAMA_OPENSSL = false
LLAMA_BUILD_SERVER = true
"""

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = a project with recipes/, the test CMake project as a local source (spaces!)."""
    proj = tmp_path / "My App"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "test-native.toml").write_text(RECIPE.format(policy="glibc"))
    (proj / "recipes" / "test-static-policy.toml").write_text(RECIPE.format(policy="static"))
    shutil.copytree(PROJECT, proj / "llama src")
    monkeypatch.chdir(proj)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    for recipe in (proj / "recipes").glob("*.toml"):
        assert_file_valid("recipe", recipe)
    return proj


def build(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any], str]:
    argv = ["build", "-r", "test-native", "--source", "llama src", "--json", *extra]
    code = run(argv)
    cap = capsys.readouterr()
    return code, json.loads(cap.out), cap.err


def server(work: Path, recipe: str = "test-native") -> Path:
    return work / "dist" / recipe / "llama-server"


def test_dry_run_shows_recipe_entries_and_argv(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = build(capsys, "--dry-run", "-D", "GGML_RPC=ON")
    assert code == 0 and out["dry_run"] is True
    assert out["recipe"]["name"] == "test-native"
    (sl,) = out["slices"]
    entries = sl["cache_entries"]
    assert entries["GGML_RPC"] == "ON" and entries["BUILD_SHARED_LIBS"] == "OFF"
    assert entries["LLAMA_BUILD_COMMIT"] == "unknown"  # a plain directory has no commit
    argv = sl["configure_argv"]
    assert argv[1] == "--fresh" and argv[argv.index("-C") + 1] == sl["init_cache"]
    assert argv[argv.index("-S") + 1] == str(work / "llama src")
    assert sl["build_argv"][-2:] == ["--target", "llama-server"]
    assert not (work / "dist").exists() and not Path(sl["build_dir"]).exists()
    assert not (work / "llamabuild.lock").exists()


@pytest.mark.parametrize(
    ("define", "expected"),
    [
        ("LLAMA_METAL=ON", "use GGML_METAL"),
        ("LLAMA_STATIC=ON", "use BUILD_SHARED_LIBS=OFF"),
        ("LLAMA_CURL=OFF", "use LLAMA_OPENSSL"),
        ("GGML_MTEAL=ON", "did you mean 'GGML_METAL'"),
        ("GGML_METAL_USE_BF16=ON", "removed"),
    ],
)
def test_stale_flags_refused(
    work: Path, capsys: pytest.CaptureFixture[str], define: str, expected: str
) -> None:
    code, out, err = build(capsys, "--dry-run", "-D", define)
    assert code == 2
    assert expected in out["error"] and define.split("=")[0] in out["error"]
    assert err.startswith("error: ") and "hint: " in err


def test_stale_flag_in_recipe_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = work / "recipes" / "test-native.toml"
    recipe.write_text(recipe.read_text() + "LLAMA_ACCELERATE = true\n")
    code, out, _ = build(capsys, "--dry-run")
    assert code == 2 and "GGML_ACCELERATE" in out["error"]


def test_declaration_scanner() -> None:
    names, depr = parse_declarations(
        'option(A "x" ON)\nset(B "1" CACHE STRING\n  "doc")\nset(C 1)\n'
        "# option(COMMENTED)\nif (NOT DEFINED D)\nendif()\nllama_option_depr(WARNING OLD NEW)\n"
        "llama_option_depr(WARNING GONE)\n"
    )
    assert names == {"A", "B", "D"}
    assert depr == {"OLD": "NEW", "GONE": None}
    findings = check_flags(
        ["A", "CMAKE_C_FLAGS", "OLD", "AA"], Declarations(frozenset(names), depr)
    )
    assert [f.rule for f in findings] == ["unknown-flag", "stale-flag"]


def test_build_publishes_manifest_then_noop_then_force(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = build(capsys)
    assert code == 0, err
    assert out["published"] is True and out["skipped"] is False
    binary = server(work)
    assert subprocess.run([binary], capture_output=True, text=True).stdout.startswith("version: 0")
    manifest = json.loads((binary.parent / "manifest.json").read_text())
    assert_valid("manifest", manifest)
    assert manifest["duration_s"] == out["duration_s"]  # one clock for --json and the file
    assert manifest["recipe"] == "test-native"
    assert manifest["source"]["kind"] == "dir"
    assert manifest["slices"][0]["cache_entries"]["GGML_OPENMP"] == "OFF"
    assert {"cmake", "ninja", "cc", "cxx"} <= set(manifest["versions"])
    assert manifest["compilers"]["test-native"]["C"]["id"]  # read back via the file API
    (out_bin,) = [o for o in manifest["outputs"] if o["role"] == "binary"]
    assert out_bin["sha256"] and set(out_bin["uuids"]) == {"x86_64"}  # ELF: build-id
    assert manifest["verify"]["ok"] is True and manifest["duration_s"] > 0
    assert "[4/4]" in err or "llama-server" in err  # plain progress lines (no TTY)
    log = Path(manifest["slices"][0]["configure_argv"][-1]) / "llamabuild.log"
    text = log.read_text()
    assert "Linking C executable bin/llama-server" in text
    steps = ["join", "verify", "provenance (SBOM, notices)", "manifest (sha256, capabilities)"]
    assert all(f"post-build {s}: " in text for s in steps)  # each timed in the build log

    code, out, _ = build(capsys)
    assert code == 0 and out["skipped"] is True and out["published"] is False

    code, out, _ = build(capsys, "-D", "GGML_RPC=ON")  # changed input: rebuilt
    assert code == 0 and out["published"] is True
    code, out, _ = build(capsys, "-D", "GGML_RPC=ON", "--force")
    assert code == 0 and out["skipped"] is False and out["published"] is True
    assert not list((work / "dist").glob(".*"))  # no staging or .old left behind


def test_tampered_artifact_is_rebuilt(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build(capsys)[0] == 0
    server(work).write_bytes(b"garbage")
    code, out, _ = build(capsys)
    assert code == 0 and out["skipped"] is False and out["published"] is True


def test_failed_build_keeps_previous_artifact(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(capsys)[0] == 0
    before = server(work).read_bytes()
    code, out, err = build(capsys, "-D", "FAKE_FAIL=ON")
    assert code == 3
    assert "build of test-native failed" in out["error"] and "llamabuild.log" in out["hint"]
    assert "this compile error is on purpose" in err  # the last lines of the log
    assert server(work).read_bytes() == before
    assert not list((work / "dist").glob(".*"))


def test_verify_failure_is_exit_1_and_not_published(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["build", "-r", "test-static-policy", "--source", "llama src", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["published"] is False
    assert any(f["rule"] == "elf-needed" for f in out["findings"])  # dynamic libc vs "static"
    assert not (work / "dist" / "test-static-policy").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_mid_build_leaves_previous_artifact(
    work: Path, capsys: pytest.CaptureFixture[str], sig: signal.Signals
) -> None:
    assert build(capsys)[0] == 0
    before = server(work).read_bytes()
    marker = "37"
    argv = [sys.executable, "-m", "llamabuild", "build", "-r", "test-native"]
    argv += ["--source", "llama src", "-D", f"FAKE_SLEEP_SECONDS={marker}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _sleepers(marker, work.parent):  # ninja prints a step when it ends: watch /proc
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"interrupted ({sig.name})" in err and "intact" in err
    assert server(work).read_bytes() == before
    assert not list((work / "dist").glob(".*"))
    time.sleep(0.5)
    assert not _sleepers(marker, work.parent), "the build's children survived the interrupt"


def _sleepers(marker: str, under: Path) -> list[str]:
    """This test's `cmake -E sleep` processes (by cwd: other runs may sleep at the same time)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
            cwd = os.readlink(cmdline.parent / "cwd")
        except OSError:
            continue
        mine = Path(cwd).is_relative_to(under)
        if mine and b"-E" in args and b"sleep" in args and marker.encode() in args:
            found.append(str(cmdline))
    return found


def test_unknown_source_and_bad_define_exit_2(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["build", "-r", "test-native", "--source", "nowhere", "--dry-run"]) == 2
    assert run(["build", "-r", "test-native", "-D", "NOEQUALS", "--dry-run"]) == 2
    assert run(["build", "-r", "no-such-recipe", "--dry-run"]) == 2
    capsys.readouterr()


def test_init_cache_text_forces_every_entry() -> None:
    r = Recipe("x", "", "linux", ("x86_64",))
    text = init_cache_text(r, {"A": True, "B": 'say "hi"', "C": False})
    assert 'set(A "ON" CACHE BOOL "llamabuild: x" FORCE)' in text
    assert 'set(B "say \\"hi\\"" CACHE STRING' in text and 'set(C "OFF" CACHE BOOL' in text


def test_progress_lines() -> None:
    assert parse_progress("[12/206] Building CXX object a.o") == (
        12,
        206,
        "Building CXX object a.o",
    )
    assert parse_progress("warning: x") is None


def test_file_api_reply_missing_is_tool_error(tmp_path: Path) -> None:
    from llamabuild.core.errors import ToolError

    with pytest.raises(ToolError, match="file-API"):
        read_reply(tmp_path)


class Recorder(Runner):
    def __init__(self) -> None:
        self.history: list[Result] = []

    def run(self, argv: Any, **kw: Any) -> Result:  # type: ignore[override]
        args = tuple(str(a) for a in argv)
        self.history.append(Result(args, 0, "0.14.0\n", "", 0.0))
        return self.history[-1]


def test_lipo_argv_and_zig_toolchain(tmp_path: Path) -> None:
    argv = create_argv(Path("/usr/bin/lipo"), [Path("a b/arm64"), Path("x86")], Path("out"))
    assert argv == ["/usr/bin/lipo", "-create", "a b/arm64", "x86", "-output", "out"]
    zig = Zig(Recorder(), exe=Path("/opt/zig dir/zig"))
    if shutil.which("llvm-install-name-tool-19") is None and not shutil.which("install_name_tool"):
        pytest.skip("no install_name_tool")
    tc = zig.write_toolchain(tmp_path / "tc", "arm64", "14.0")
    text = tc.read_text()
    assert "set(CMAKE_SYSTEM_NAME Darwin)" in text and "CMAKE_INSTALL_NAME_TOOL" in text
    cc = (tmp_path / "tc" / "zig-cc").read_text()
    assert "'/opt/zig dir/zig' cc -target aarch64-macos.14.0" in cc
    assert os.access(tmp_path / "tc" / "zig-c++", os.X_OK)


ZIG_RECIPE = """
description = "test project, zig cross to macOS arm64"
platform = "macos"
archs = ["arm64"]
min_macos = "14.0"
toolchain = "zig"

[cache]
CMAKE_BUILD_TYPE = "RelWithDebInfo"
BUILD_SHARED_LIBS = false
GGML_NATIVE = false
GGML_OPENMP = false
GGML_METAL = false
LLAMA_BUILD_SERVER = true
"""


def _have_zig_tools() -> bool:
    import importlib.util

    tools = ("dsymutil-19", "llvm-install-name-tool-19")
    return importlib.util.find_spec("ziglang") is not None and all(map(shutil.which, tools))


@pytest.mark.slow
@pytest.mark.skipif(not _have_zig_tools(), reason="needs ziglang, dsymutil-19, llvm-19")
def test_zig_cross_build_to_macho_with_dsym(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llamabuild.inspect import inspect_binary

    (work / "recipes" / "test-zig.toml").write_text(ZIG_RECIPE)
    code = run(["build", "-r", "test-zig", "--source", "llama src", "--json"])
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert code == 0, cap.err
    dist = work / "dist" / "test-zig"
    b = inspect_binary(dist / "llama-server")
    (sl,) = b.slices
    assert b.format == "macho" and sl.arch == "arm64" and sl.minos == "14.0"
    assert [d.name for d in sl.dylibs] == ["/usr/lib/libSystem.B.dylib"]
    outputs = {o["role"]: o for o in out["manifest"]["outputs"]}
    assert_file_valid("manifest", dist / "manifest.json")
    assert outputs["dsym-dwarf"]["uuids"] == {"arm64": sl.uuid}
    assert (dist / "llama-server.dSYM" / "Contents" / "Info.plist").is_file()
    tc = Path(out["manifest"]["slices"][0]["configure_argv"][-1]) / "zig-toolchain.cmake"
    assert "CMAKE_INSTALL_NAME_TOOL" in tc.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _have_zig_tools(), reason="needs ziglang, dsymutil-19, llvm-19")
def test_universal_joins_slices_with_lipo(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two zig slices built separately, joined with lipo, one dSYM with both UUIDs."""
    from llamabuild.inspect import inspect_binary

    recipes = work / "recipes"
    (recipes / "t-arm64.toml").write_text(ZIG_RECIPE)
    (recipes / "t-x86_64.toml").write_text('extends = "t-arm64"\narchs = ["x86_64"]\n')
    (recipes / "t-universal.toml").write_text(
        'extends = "t-arm64"\narchs = ["arm64", "x86_64"]\nslices = ["t-arm64", "t-x86_64"]\n'
    )
    for recipe in recipes.glob("t-*.toml"):
        assert_file_valid("recipe", recipe)
    code = run(["build", "-r", "t-universal", "--source", "llama src", "--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    out = json.loads(cap.out)
    b = inspect_binary(work / "dist" / "t-universal" / "llama-server")
    assert b.fat and sorted(b.archs) == ["arm64", "x86_64"]
    outputs = {o["role"]: o for o in out["manifest"]["outputs"]}
    assert outputs["dsym-dwarf"]["uuids"] == {s.arch: s.uuid for s in b.slices}
    assert [s["recipe"] for s in out["manifest"]["slices"]] == ["t-arm64", "t-x86_64"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
def test_init_cache_keeps_dollar_and_quotes_literal(tmp_path: Path) -> None:
    """Real cmake reads the -C file: `${HOME}` must reach the cache unexpanded."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.14)\nproject(x NONE)\n")
    values = {"X": "${HOME}/a", "Y": 'q"\\$ENV{PATH}', "Z": True}
    init = tmp_path / "init.cmake"
    init.write_text(init_cache_text(Recipe('r"${HOME}', "", "linux", ("x86_64",)), values))
    subprocess.run(
        ["cmake", "-C", str(init), "-S", str(src), "-B", str(tmp_path / "b")],
        check=True,
        capture_output=True,
    )
    cache = (tmp_path / "b" / "CMakeCache.txt").read_text()
    assert "X:STRING=${HOME}/a\n" in cache
    assert 'Y:STRING=q"\\$ENV{PATH}\n' in cache
    assert "Z:BOOL=ON\n" in cache


def test_skipped_build_still_writes_step_summary(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = work / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert build(capsys)[0] == 0
    first = summary.read_text()
    assert "llamabuild build (test-native)" in first
    code, out, _ = build(capsys)
    assert code == 0 and out["skipped"] is True
    added = summary.read_text()[len(first) :]
    assert "llamabuild build (test-native): up to date" in added
    assert "llama-server" in added  # the published outputs, read from the manifest


def test_markup_in_paths_and_values_is_printed_literally(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "llama src").rename(work / "llama [red]src")  # no "/" in a file name
    recipe = work / "recipes" / "test-native.toml"
    recipe.write_text(recipe.read_text().replace("test project", "test [/] project"))
    argv = ["build", "-r", "test-native", "--source", "llama [red]src", "--dry-run"]
    assert run([*argv, "-D", "FAKE_SLEEP_SECONDS=[/]1"]) == 0
    out = capsys.readouterr().out
    assert str(work / "llama [red]src") in out
    assert "-DFAKE_SLEEP_SECONDS=[/]1" in out and "test [/] project" in out


def test_progress_display_does_not_read_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llamabuild.builder.progress import BuildLog

    with BuildLog(tmp_path / "log", "x [/] [red]y", tty=True) as log:
        log.phase("configure [/]")
        log.line("[1/2] Building C object [bold]a[/].o")
    err = capsys.readouterr().err
    assert "x [/] [red]y: configure [/]" in err
    assert "Building C object [bold]a[/].o" in err


def test_stop_group_reaches_jobs_in_other_process_groups(tmp_path: Path) -> None:
    """Like ninja's jobs: a grandchild in its own process group (same session) must not outlive
    a stop that had to SIGKILL its parent."""
    from llamabuild.core.processes import session_members, stop_group

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '300'], process_group=0)\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    grandchild = int((tmp_path / "pid").read_text())
    assert grandchild in session_members(proc.pid)
    ended = stop_group(proc, (signal.SIGTERM, signal.SIGKILL), grace=0.5)
    assert ended == "SIGKILL"
    time.sleep(0.2)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
