"""`llamabuild verify` on real Mach-O binaries built in this session."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from llamabuild.cli import run
from tests.fixtures.macho import Lib, MachOFactory, system, tool

pytestmark = pytest.mark.compile


def verify_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = run(["verify", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def rules(report: dict) -> set[tuple[str, str, str | None]]:
    return {(f["rule"], f["severity"], f["arch"]) for f in report["findings"]}


@pytest.fixture(scope="session")
def fixtures(macho: MachOFactory, clean_arm64: Path) -> dict[str, Path]:
    f: dict[str, Path] = {"clean": clean_arm64}
    f["rpath"] = macho.build(
        "rpath",
        [Lib("@rpath/libmtmd.dylib", ("_mtmd_init",))],
        rpaths=["@executable_path/../Frameworks"],
    )
    f["loader"] = macho.build("loader", [Lib("@loader_path/libggml.dylib", ("_ggml_init",))])
    f["homebrew"] = macho.build(
        "homebrew", [Lib("/opt/homebrew/opt/libomp/lib/libomp.dylib", ("___kmpc_fork_call",))]
    )
    f["openssl"] = macho.build(
        "openssl", [Lib("/usr/local/opt/openssl@3/lib/libssl.3.dylib", ("_SSL_new",))]
    )
    f["rdma"] = macho.build("rdma", [Lib("/usr/lib/librdma.dylib", ("_ibv_open_device",))])
    f["libfoo"] = macho.build("libfoo", [Lib("/usr/lib/libfoo.dylib", ("_foo_init",))])
    f["minos15"] = macho.build("minos15", system("libSystem"), minos="15.0")
    f["x86"] = macho.build("x86", system("libSystem", "Metal"), arch="x86_64")
    f["stray"] = macho.build("stray", system("libSystem"), rpaths=["@loader_path/../lib"])
    f["weak"] = macho.build(
        "weak", [Lib("/usr/lib/libz.1.dylib", ("_zlibVersion",), "weak")], arch="x86_64"
    )
    f["x86_clean"] = macho.build("x86_clean", system("libSystem", "libc++"), arch="x86_64")
    homebrew_x86 = macho.build(
        "homebrew_x86",
        [Lib("/opt/homebrew/opt/libomp/lib/libomp.dylib", ("___kmpc_fork_call",))],
        arch="x86_64",
    )
    f["fat_bad"] = macho.fat("fat_bad", [clean_arm64, homebrew_x86])
    return f


def test_clean_binary_passes(capsys, fixtures):
    code, rep = verify_json(capsys, str(fixtures["clean"]), "--arch", "arm64")
    assert code == 0, rep["findings"]
    assert rep["ok"] is True and rep["format"] == "macho"
    (sl,) = rep["slices"]
    assert sl["arch"] == "arm64" and sl["minos"] == "14.0" and sl["sdk"] == "14.0"
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", sl["uuid"])
    names = [d["name"] for d in sl["dylibs"]]
    assert "/System/Library/Frameworks/Metal.framework/Versions/A/Metal" in names
    assert "/usr/lib/libc++.1.dylib" in names
    assert rep["findings"] == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("rpath", "rpath-dependency"),
        ("loader", "relative-dependency"),
        ("homebrew", "homebrew-dependency"),
        ("openssl", "homebrew-dependency"),
        ("rdma", "library-too-new"),
        ("minos15", "minos-too-new"),
        ("libfoo", "not-shipped-with-macos"),
    ],
)
def test_bad_dependency_is_an_error(capsys, fixtures, name, rule):
    code, rep = verify_json(capsys, str(fixtures[name]))
    assert code == 1
    assert rep["ok"] is False
    assert (rule, "error", "arm64") in rules(rep)


def test_not_shipped_message(capsys, fixtures):
    _, rep = verify_json(capsys, str(fixtures["libfoo"]))
    (f,) = [f for f in rep["findings"] if f["rule"] == "not-shipped-with-macos"]
    assert "/usr/lib/libfoo.dylib" in f["message"] and "not shipped with macOS" in f["message"]


def test_rpath_binary_keeps_its_rpath_without_stray_warning(capsys, fixtures):
    _, rep = verify_json(capsys, str(fixtures["rpath"]))
    assert rep["slices"][0]["rpaths"] == ["@executable_path/../Frameworks"]
    assert not any(f["rule"] == "stray-rpath" for f in rep["findings"])


def test_x86_only_binary_rejected_when_arm64_required(capsys, fixtures):
    code, rep = verify_json(capsys, str(fixtures["x86"]), "--arch", "arm64")
    assert code == 1
    assert ("arch-not-allowed", "error", "x86_64") in rules(rep)
    code, _ = verify_json(capsys, str(fixtures["x86"]), "--arch", "x86_64")
    assert code == 0


def test_stray_rpath_is_a_warning_only(capsys, fixtures):
    code, rep = verify_json(capsys, str(fixtures["stray"]))
    assert code == 0
    assert rules(rep) == {("stray-rpath", "warning", "arm64")}


def test_weak_dependency_kind_reported(capsys, fixtures):
    code, rep = verify_json(capsys, str(fixtures["weak"]))
    assert code == 0
    kinds = {d["name"]: d["kind"] for d in rep["slices"][0]["dylibs"]}
    assert kinds["/usr/lib/libz.1.dylib"] == "weak"


def test_fat_binary_judges_each_slice(capsys, fixtures):
    code, rep = verify_json(capsys, str(fixtures["fat_bad"]))
    assert code == 1
    assert rep["fat"] is True
    assert sorted(s["arch"] for s in rep["slices"]) == ["arm64", "x86_64"]
    errs = [f for f in rep["findings"] if f["severity"] == "error"]
    assert errs and all(f["arch"] == "x86_64" for f in errs)


def test_reexport_in_dylib_and_own_install_name_not_a_dependency(capsys, macho):
    lib = macho.build(
        "libreexp.dylib",
        [Lib("/usr/lib/libxml2.2.dylib", ("_xmlInitParser",), "reexport")],
        dylib="@rpath/libreexp.dylib",
    )
    code, rep = verify_json(capsys, str(lib))
    kinds = [(d["name"], d["kind"]) for d in rep["slices"][0]["dylibs"]]
    assert ("/usr/lib/libxml2.2.dylib", "reexport") in kinds
    assert all(n != "@rpath/libreexp.dylib" for n, _ in kinds)
    assert rep["slices"][0]["filetype"] == "dylib"
    assert code == 0


def test_human_output_has_table_and_verdict(capsys, fixtures):
    code = run(["verify", str(fixtures["homebrew"])])
    out = capsys.readouterr().out
    assert code == 1
    assert "/opt/homebrew/opt/libomp/lib/libomp.dylib" in out
    assert "homebrew-dependency" in out and "FAIL" in out


def test_path_with_spaces(capsys, macho, tmp_path):
    d = tmp_path / "My App.app" / "Contents" / "Resources"
    d.mkdir(parents=True)
    b = macho.build("llama-server", system("libSystem", "Metal"), out_dir=d)
    code, rep = verify_json(capsys, str(b))
    assert code == 0 and rep["path"] == str(b)


@pytest.mark.skipif(tool("llvm-otool") is None, reason="llvm-otool-19 not installed")
def test_dylib_list_equals_llvm_otool(capsys, fixtures, tmp_path):
    otool = tool("llvm-otool")
    for name, path in fixtures.items():
        _, rep = verify_json(capsys, str(path))
        for sl in rep["slices"]:
            thin = path
            if rep["fat"]:  # llvm-otool ignores -arch: compare against the extracted slice
                thin = tmp_path / f"{name}.{sl['arch']}"
                subprocess.run(
                    [tool("llvm-lipo"), str(path), "-thin", sl["arch"], "-output", str(thin)],
                    check=True,
                )
            argv = [otool, "-L", str(thin)]
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            listed = [
                line.strip().split(" (compatibility")[0]
                for line in out.splitlines()[1:]
                if line.startswith("\t")
            ]
            assert [d["name"] for d in sl["dylibs"]] == listed, name


@pytest.mark.skipif(tool("llvm-dwarfdump") is None, reason="llvm-dwarfdump-19 not installed")
def test_uuids_equal_llvm_dwarfdump(capsys, fixtures):
    out = subprocess.run(
        [tool("llvm-dwarfdump"), "--uuid", str(fixtures["fat_bad"])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = dict(re.findall(r"UUID: (\S+) \((\S+)\)", out))
    _, rep = verify_json(capsys, str(fixtures["fat_bad"]))
    assert {s["uuid"]: s["arch"] for s in rep["slices"]} == expected


def test_github_actions_annotations_and_step_summary(capfd, fixtures, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code = run(["verify", str(fixtures["homebrew"]), "--json"])
    captured = capfd.readouterr()
    assert code == 1
    json.loads(captured.out)  # stdout stays one JSON object
    assert f"::error file={fixtures['homebrew']}" in captured.err
    text = summary.read_text()
    assert "llamabuild verify" in text and "homebrew-dependency" in text
    _, rep = verify_json(capfd, str(fixtures["homebrew"]))
    assert rep["slices"][0]["uuid"] in text


@pytest.mark.parametrize(
    "name", ["clean", "rpath", "homebrew", "minos15", "x86", "weak", "fat_bad"]
)
def test_load_command_reader_agrees_with_lief(fixtures, name):
    from llamabuild.inspect.reader import inspect_binary

    assert inspect_binary(fixtures[name]) == inspect_binary(fixtures[name], "lief")


def test_missing_uuid_is_an_error(capsys, macho):
    b = macho.build("nouuid", system("libSystem"), extra_ld=["-no_uuid"])
    code, rep = verify_json(capsys, str(b))
    assert code == 1
    assert ("missing-uuid", "error", "arm64") in rules(rep)
    assert rep["slices"][0]["uuid"] is None


def test_minos_from_lc_version_min_macosx(capsys, macho):
    b = macho.build("old", system("libSystem"), arch="x86_64", minos="10.13")
    out = subprocess.run([tool("llvm-otool"), "-l", str(b)], capture_output=True, text=True).stdout
    assert "LC_VERSION_MIN_MACOSX" in out and "LC_BUILD_VERSION" not in out
    code, rep = verify_json(capsys, str(b))
    assert code == 0
    assert rep["slices"][0]["minos"] == "10.13" and rep["slices"][0]["sdk"] == "10.13"


def test_upward_dependency_kind(capsys, macho, tmp_path):
    """lld cannot link upward; turn a real LC_LOAD_DYLIB into LC_LOAD_UPWARD_DYLIB in place."""
    import struct

    from llamabuild.inspect import structure as st

    b = macho.build("upward", [Lib("/usr/lib/libiconv.2.dylib", ("_iconv",))], arch="x86_64")
    data = bytearray(b.read_bytes())
    with b.open("rb") as fh:
        (raw,) = st.read_slices(fh, len(data), str(b))
    pos = 32
    for c in raw.commands:
        if c.cmd == st.LC_LOAD_DYLIB and b"libiconv" in c.data:
            struct.pack_into("<I", data, pos, st.LC_LOAD_UPWARD_DYLIB)
        pos += len(c.data)
    patched = tmp_path / "upward"
    patched.write_bytes(bytes(data))
    code, rep = verify_json(capsys, str(patched))
    assert code == 0
    kinds = {d["name"]: d["kind"] for d in rep["slices"][0]["dylibs"]}
    assert kinds["/usr/lib/libiconv.2.dylib"] == "upward"
    _, lief_rep = verify_json(capsys, str(patched), "--parser", "lief")
    assert lief_rep["slices"] == rep["slices"]


def test_markup_in_dylib_names_and_paths_is_printed_literally(capsys, macho, tmp_path):
    """Review #7: `[/]` in a dylib name or path made rich raise MarkupError (exit 3)."""
    where = tmp_path / "[red]built[/] here"  # "[/]" spans two directories
    where.mkdir(parents=True)
    b = macho.build("inj", [Lib("@rpath/[/]mtmd.dylib", ("_mtmd_init",))], out_dir=where)
    code = run(["verify", str(b)])
    out = capsys.readouterr().out
    assert code == 1
    assert "@rpath/[/]mtmd.dylib" in out
    assert "[red]built[/] here" in out


def test_unknown_arch_and_bad_min_macos_are_usage_errors(capsys, fixtures):
    """Review #12/#13: bad --arch / --min-macos are exit 2, not a policy failure (exit 1)."""
    clean = str(fixtures["clean"])
    for args in (["--arch", "armv8"], ["--arch", "ARM64"], ["--min-macos", "abc"]):
        assert run(["verify", clean, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "hint:" in err
    code, rep = verify_json(capsys, clean, "--arch", "armv7", "--min-macos", "13.5.1")
    assert code == 1 and ("arch-not-allowed", "error", "arm64") in rules(rep)


def test_verify_does_not_hash_the_binary_outside_actions(capsys, fixtures, monkeypatch):
    """Review #21: Output.of_file reads the whole binary; only under GitHub Actions."""
    from llamabuild.core import github

    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("Output.of_file called outside Actions")

    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setattr(github.Output, "of_file", boom)
    code, rep = verify_json(capsys, str(fixtures["clean"]))
    assert code == 0 and rep["ok"]
