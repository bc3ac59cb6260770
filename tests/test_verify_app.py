"""`llamabuild verify-app` on .app and .xcarchive trees assembled here from real binaries."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llamabuild.appstore.verify_app import verify_app
from llamabuild.cli import run
from tests.fixtures.macho import Lib, MachOFactory, system, tool
from tests.test_dsym import dsymutil19, dwarfdump_uuids

pytestmark = pytest.mark.compile

SANDBOX = {"com.apple.security.app-sandbox": True, "com.apple.security.inherit": True}


@dataclass(frozen=True)
class Parts:
    helper: Path  # arm64, signed ad hoc with the sandbox entitlements
    helper_dsym: Path
    linker_signed: Path  # arm64 as ld64.lld left it: signed, no entitlements
    unsigned: Path  # x86_64: lld does not sign it
    homebrew: Path  # links libomp from Homebrew
    relinked_dsym: Path  # a dSYM of an earlier link of the helper
    empty_dsym: Path
    main: Path  # the app's own executable "My App"
    main_dsym: Path
    rpath_dylib: Path  # libllama.dylib with install name @rpath/libllama.dylib


def sign_with_sandbox(src: Path, dst: Path, tmp: Path) -> Path:
    import apple_platform.signing

    ents = tmp / "helper.entitlements"
    ents.write_bytes(plistlib.dumps(SANDBOX))
    apple_platform.signing.sign(
        str(src), str(dst), entitlements_xml_file=str(ents), binary_identifier="llama-server"
    )
    return dst


@pytest.fixture(scope="module")
def parts(macho: MachOFactory, tmp_path_factory: pytest.TempPathFactory) -> Parts:
    root = tmp_path_factory.mktemp("app parts") / "My Parts"
    libs = system("libSystem", "Metal", "Foundation", "Accelerate")
    old = macho.build("llama-server", libs, out_dir=root / "old", salt="yesterday")
    relinked_dsym = dsymutil19(old, root / "old" / "llama-server.dSYM")
    linker_signed = macho.build("llama-server", libs, out_dir=root / "h")
    helper_dsym = dsymutil19(linker_signed, root / "h" / "llama-server.dSYM")
    (root / "signed").mkdir()
    helper = sign_with_sandbox(linker_signed, root / "signed" / "llama-server", root)
    # the same link, but its object files gone (a cleaned build dir) when dsymutil runs
    objects = root / "h" / "llama-server.build"
    objects.rename(root / "h" / "elsewhere")
    (root / "cleaned").mkdir()
    empty_dsym = dsymutil19(linker_signed, root / "cleaned" / "llama-server.dSYM")
    (root / "h" / "elsewhere").rename(objects)
    main = macho.build("My App", system("libSystem", "Foundation"), out_dir=root / "main")
    main_dsym = dsymutil19(main, root / "main" / "My App.app.dSYM")
    return Parts(
        helper=helper,
        helper_dsym=helper_dsym,
        linker_signed=linker_signed,
        unsigned=macho.build("llama-server", libs, arch="x86_64", out_dir=root / "x86"),
        homebrew=macho.build(
            "llama-server",
            [Lib("/opt/homebrew/opt/libomp/lib/libomp.dylib", ("___kmpc_fork_call",))],
            out_dir=root / "brew",
        ),
        relinked_dsym=relinked_dsym,
        empty_dsym=empty_dsym,
        main=main,
        main_dsym=main_dsym,
        rpath_dylib=macho.build(
            "libllama.dylib", out_dir=root / "dylib", dylib="@rpath/libllama.dylib"
        ),
    )


def make_app(where: Path, parts: Parts, helper: Path | None = None, name: str = "My App") -> Path:
    """Contents/{Info.plist, MacOS/<exe>, Resources/llama-server}, as Xcode lays it out."""
    app = where / f"{name}.app"
    (app / "Contents" / "MacOS").mkdir(parents=True)
    (app / "Contents" / "Resources").mkdir()
    info = {
        "CFBundleExecutable": name,
        "CFBundleIdentifier": "com.example.myapp",
        "LSMinimumSystemVersion": "14.0",  # plist-minos-missing otherwise
    }
    (app / "Contents" / "Info.plist").write_bytes(plistlib.dumps(info))
    shutil.copy2(parts.main, app / "Contents" / "MacOS" / name)
    shutil.copy2(helper or parts.helper, app / "Contents" / "Resources" / "llama-server")
    credits = "<p>llama-server, built from llama.cpp</p>"  # notices-missing otherwise
    (app / "Contents" / "Resources" / "Credits.html").write_text(credits)
    return app


def make_archive(
    where: Path,
    app: Path,
    helper_dsym: Path | None,
    main_dsym: Path | None,
) -> Path:
    archive = where / "My App 2025-01-01.xcarchive"
    shutil.copytree(app, archive / "Products" / "Applications" / app.name, symlinks=True)
    (archive / "dSYMs").mkdir()
    if helper_dsym:
        shutil.copytree(helper_dsym, archive / "dSYMs" / "llama-server.dSYM")
    if main_dsym:
        shutil.copytree(main_dsym, archive / "dSYMs" / f"{app.name}.dSYM")
    (archive / "Info.plist").write_bytes(plistlib.dumps({"Name": app.stem}))
    return archive


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-app", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def errors(rep: dict[str, Any]) -> set[str]:
    return {f["rule"] for f in rep["findings"] if f["severity"] == "error"}


def test_good_app_and_archive_pass(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, parts)
    archive = make_archive(tmp_path, app, parts.helper_dsym, parts.main_dsym)
    code, rep = check(capsys, app, "--xcarchive", archive)
    assert code == 0, rep["findings"]
    assert rep["findings"] == []
    helper_uuids = dwarfdump_uuids(app / "Contents" / "Resources" / "llama-server")
    assert rep["dsyms"]["helper"]["uuids"] == helper_uuids
    assert rep["dsyms"]["helper"]["uuids"] == dwarfdump_uuids(archive / "dSYMs/llama-server.dSYM")
    assert rep["dsyms"]["app"]["uuids"] == dwarfdump_uuids(app / "Contents" / "MacOS" / "My App")
    sig = rep["helper_binary"]["slices"][0]["signature"]
    assert sig["entitlements"]["com.apple.security.app-sandbox"] is True
    # the archive's own copy of the app passes too
    assert check(capsys, next((archive / "Products/Applications").glob("*.app")))[0] == 0


def test_human_output(capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path) -> None:
    app = make_app(tmp_path, parts)
    archive = make_archive(tmp_path, app, parts.helper_dsym, parts.main_dsym)
    assert run(["verify-app", str(app), "--xcarchive", str(archive)]) == 0
    out = capsys.readouterr().out
    assert "sandboxed" in out and "OK: 0 error(s)" in out


def test_linker_signed_helper_is_not_signed_yet(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """Review #26: ld64's ad-hoc arm64 signature is "not signed yet", not "no sandbox"."""
    code, rep = check(capsys, make_app(tmp_path, parts, parts.linker_signed))
    sig = rep["helper_binary"]["slices"][0]["signature"]
    assert sig["linker_signed"] and not sig["entitlements"]
    assert code == 0
    assert {(f["rule"], f["severity"]) for f in rep["findings"]} == {("helper-unsigned", "warning")}


def test_sandbox_missing_when_signed_without_it(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    import apple_platform.signing

    resigned = tmp_path / "resigned" / "llama-server"
    resigned.parent.mkdir()
    apple_platform.signing.sign(
        str(parts.linker_signed), str(resigned), binary_identifier="llama-server"
    )
    code, rep = check(capsys, make_app(tmp_path, parts, resigned))
    assert code == 1
    assert errors(rep) == {"sandbox-missing"}
    (f,) = [f for f in rep["findings"] if f["rule"] == "sandbox-missing"]
    assert "App Sandbox not enabled" in f["message"]


def test_bad_min_macos_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """Review #12: --min-macos abc was "newer than abc" (exit 1)."""
    app = make_app(tmp_path, parts, parts.homebrew)
    code, rep = check(capsys, app, "--min-macos", "abc")
    assert code == 2 and "--min-macos" in rep["error"] and rep["hint"]


def test_human_output_prints_markup_literally(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """Review #7: a `[/]` in the app's path must not reach rich as markup."""
    where = tmp_path / "[red]x[/] dir"  # "[/]" spans two directories
    where.mkdir(parents=True)
    app = make_app(where, parts, parts.homebrew)
    archive = make_archive(where, app, parts.helper_dsym, parts.main_dsym)
    assert run(["verify-app", str(app), "--xcarchive", str(archive)]) == 1
    out = capsys.readouterr().out
    assert f"{where}/My App.app" in out and "FAIL" in out


def test_unsigned_helper_is_a_warning(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    code, rep = check(capsys, make_app(tmp_path, parts, parts.unsigned))
    assert code == 0
    assert {f["rule"] for f in rep["findings"]} == {"helper-unsigned"}


def test_helper_failing_verify_policy(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    code, rep = check(capsys, make_app(tmp_path, parts, parts.homebrew))
    assert code == 1
    assert errors(rep) == {"homebrew-dependency"}


def test_helper_missing_not_executable_not_regular_not_binary(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    helper = Path("Contents/Resources/llama-server")
    cases: dict[str, Any] = {
        "helper-missing": lambda p: p.unlink(),
        "helper-not-executable": lambda p: p.chmod(0o644),
        "helper-not-regular": lambda p: (p.unlink(), p.symlink_to("../MacOS/My App")),
        "helper-invalid": lambda p: p.write_text("#!/bin/sh\necho not a binary\n"),
    }
    for i, (rule, spoil) in enumerate(cases.items()):
        where = tmp_path / f"case {i}"
        where.mkdir()
        app = make_app(where, parts)
        spoil(app / helper)
        code, rep = check(capsys, app)
        assert code == 1, rule
        assert errors(rep) == {rule}, rep["findings"]
    # the helper at another path inside the bundle
    app = tmp_path / "case 0" / "My App.app"
    moved = app / "Contents" / "Helpers" / "llama-server"
    moved.parent.mkdir()
    shutil.copy2(parts.helper, moved)
    assert check(capsys, app, "--binary-path", "Contents/Helpers/llama-server")[0] == 0


def test_dsym_inside_the_app_is_invalid_bundle(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, parts)
    shutil.copytree(parts.helper_dsym, app / "Contents" / "Resources" / "llama-server.dSYM")
    code, rep = check(capsys, app)
    assert code == 1
    assert errors(rep) == {"dsym-in-bundle"}
    (f,) = rep["findings"]
    assert "Invalid Bundle" in f["message"]
    assert f["path"] == str(app / "Contents" / "Resources" / "llama-server.dSYM")


def test_rpath_dylib_leftover(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    for sub in ("Frameworks", "Resources/lib"):
        where = tmp_path / sub.replace("/", " ")
        where.mkdir()
        app = make_app(where, parts)
        target = app / "Contents" / sub / "libllama.dylib"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(parts.rpath_dylib, target)
        code, rep = check(capsys, app)
        assert code == 1
        assert errors(rep) == {"rpath-dylib-leftover"}
        assert "@rpath/libllama.dylib" in rep["findings"][0]["message"]


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        ("no helper dSYM", "xcarchive-dsym-missing"),
        ("no app dSYM", "xcarchive-dsym-missing"),
        ("relinked", "dsym-uuid-mismatch"),
        ("empty", "dsym-empty"),
    ],
)
def test_bad_archives(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path, variant: str, rule: str
) -> None:
    app = make_app(tmp_path, parts)
    helper_dsym: Path | None = {
        "no helper dSYM": None,
        "relinked": parts.relinked_dsym,
        "empty": parts.empty_dsym,
    }.get(variant, parts.helper_dsym)
    main_dsym = None if variant == "no app dSYM" else parts.main_dsym
    archive = make_archive(tmp_path, app, helper_dsym, main_dsym)
    code, rep = check(capsys, app, "--xcarchive", archive)
    assert code == 1
    assert errors(rep) == {rule}, rep["findings"]
    if variant == "relinked":
        (f,) = rep["findings"]
        assert dwarfdump_uuids(parts.relinked_dsym)["arm64"] in f["message"]
        assert dwarfdump_uuids(parts.helper)["arm64"] in f["message"]


def test_app_differs_from_archive_is_a_warning(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    (tmp_path / "export").mkdir()
    exported = make_app(tmp_path / "export", parts, parts.unsigned)
    archived = make_app(tmp_path, parts)
    archive = make_archive(tmp_path, archived, parts.helper_dsym, parts.main_dsym)
    code, rep = check(capsys, exported, "--xcarchive", archive)
    assert code == 0
    assert {f["rule"] for f in rep["findings"]} == {"helper-unsigned", "xcarchive-app-differs"}


def test_bad_paths_are_exit_2(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, parts)
    not_archive = tmp_path / "Not An.xcarchive"
    not_archive.mkdir()
    plain = tmp_path / "file.app"
    plain.write_text("")
    for args in (
        [tmp_path / "Missing.app"],
        [plain],
        [tmp_path],  # a directory without Contents/
        [app, "--xcarchive", tmp_path / "missing.xcarchive"],
        [app, "--xcarchive", not_archive],
        [app, "--binary-path", "../../etc/passwd"],
    ):
        code, rep = check(capsys, *args)
        assert code == 2, args
        assert rep["ok"] is False and rep["hint"]


def test_api_report(parts: Parts, tmp_path: Path) -> None:
    app = make_app(tmp_path, parts)
    report = verify_app(app)
    assert report.ok and report.helper == app / "Contents" / "Resources" / "llama-server"
    assert report.helper_report is not None
    assert report.helper_report.binary.slices[0].uuid == dwarfdump_uuids(parts.helper)["arm64"]


def test_fat_helper_in_archive(
    capsys: pytest.CaptureFixture[str], macho: MachOFactory, parts: Parts, tmp_path: Path
) -> None:
    """A universal helper: its dSYM must carry both slices; one arch only is an error."""
    d = tmp_path / "fat parts"
    a = macho.build("srv-arm64", out_dir=d)
    x = macho.build("srv-x86_64", arch="x86_64", out_dir=d)
    fat = d / "llama-server"
    subprocess.run([tool("llvm-lipo"), "-create", str(a), str(x), "-output", str(fat)], check=True)
    good = dsymutil19(fat, d / "llama-server.dSYM")
    arm_only = dsymutil19(fat, d / "arm only.dSYM", "--arch", "arm64")
    for dsym, expected in ((good, set()), (arm_only, {"dsym-missing-slice"})):
        where = tmp_path / dsym.stem
        where.mkdir()
        app = make_app(where, parts, fat)
        archive = make_archive(where, app, dsym, parts.main_dsym)
        _, rep = check(capsys, app, "--xcarchive", archive)
        # the fat helper is not signed on x86_64 (lld signs arm64 only): sandbox error expected
        assert errors(rep) - {"sandbox-missing"} == expected, rep["findings"]


# --- never hang, regular files only (FIFOs are findings while verify-app walks) ------------------


def no_traceback(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = run(["verify-app", *map(str, args)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err
    return code, out, err


@pytest.mark.timeout(20)
def test_fifo_in_the_bundle_is_a_finding_never_opened(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """A FIFO named x.dylib in Contents/Frameworks blocked open() forever (and Ctrl-C)."""
    app = make_app(tmp_path, parts)
    (app / "Contents" / "Frameworks").mkdir()
    os.mkfifo(app / "Contents" / "Frameworks" / "x.dylib")
    (app / "Contents" / "Resources" / "lib").mkdir()
    os.mkfifo(app / "Contents" / "Resources" / "lib" / "libggml.dylib")
    os.mkfifo(app / "Contents" / "MacOS" / "pipe")
    code, rep = check(capsys, app)
    assert code == 1
    assert {(f["rule"], f["severity"]) for f in rep["findings"]} == {
        ("special-file-in-bundle", "error")
    }
    assert sorted(Path(f["path"]).name for f in rep["findings"]) == [
        "libggml.dylib",
        "pipe",
        "x.dylib",
    ]
    assert all("FIFO" in f["message"] and f["hint"] for f in rep["findings"])
    code, out, _err = no_traceback(capsys, app)
    assert code == 1 and "special-file-in-bundle" in out


@pytest.mark.timeout(20)
def test_fifo_helper_is_not_regular_and_reported_once(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    app = make_app(tmp_path, parts)
    helper = app / "Contents" / "Resources" / "llama-server"
    helper.unlink()
    os.mkfifo(helper)
    code, rep = check(capsys, app)
    assert code == 1
    (f,) = rep["findings"]
    assert f["rule"] == "helper-not-regular" and "FIFO" in f["message"] and f["hint"]


ARCHIVED = "Products/Applications/My App.app"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("spoil", "rule"),
    [
        ("dSYMs/llama-server.dSYM/Contents/Info.plist", "dsym-layout"),
        ("dSYMs/llama-server.dSYM/Contents/Resources/DWARF/llama-server", "dsym-layout"),
        ("dSYMs/My App.app.dSYM/Contents/Resources/DWARF/My App", "dsym-layout"),
        ("dSYMs/llama-server.dSYM", "dsym-layout"),
        (
            "Products/Applications/My App.app/Contents/Resources/llama-server",
            "xcarchive-binary-missing",
        ),
        ("Products/Applications/My App.app/Contents/Info.plist", None),
    ],
)
def test_fifos_in_the_archive_are_findings(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path, spoil: str, rule: str | None
) -> None:
    """`verify-app --xcarchive`: a FIFO where a dSYM or archived file belongs is never opened."""
    app = make_app(tmp_path, parts)
    archive = make_archive(tmp_path, app, parts.helper_dsym, parts.main_dsym)
    target = archive / spoil
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    os.mkfifo(target)
    code, out, _err = no_traceback(capsys, app, "--xcarchive", archive, "--json")
    rep = json.loads(out)
    if rule is None:  # the archived app's Info.plist only names its executable: default used
        assert code == 0, rep["findings"]
        return
    assert code == 1, rep["findings"]
    assert errors(rep) == {rule}, rep["findings"]
    assert any("FIFO" in f["message"] for f in rep["findings"])


def test_static_linux_elf_helper_is_invalid(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """A Linux build in the bundle passed with only `helper-unsigned`."""
    src = tmp_path / "server.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("llama"); return 0; }\n')
    elf = tmp_path / "llama-server"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(elf), str(src)], check=True)
    assert elf.read_bytes()[:4] == b"\x7fELF"
    code, rep = check(capsys, make_app(tmp_path, parts, elf))
    assert code == 1
    (f,) = rep["findings"]
    assert (f["rule"], f["severity"]) == ("helper-invalid", "error")
    assert "ELF" in f["message"] and "Mach-O" in f["message"] and f["hint"]


def test_symlink_loops_are_exit_2_with_a_hint(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    loop = tmp_path / "Loop.app"
    loop.symlink_to(loop)
    app = make_app(tmp_path, parts)
    for args in ([loop], [app, "--xcarchive", loop]):
        code, rep = check(capsys, *args)
        assert code == 2, args
        assert "symlink loop" in rep["error"] and "symlink loop" in rep["hint"]
    # a loop inside the bundle is a finding about the bundle
    helper = app / "Contents" / "Resources" / "llama-server"
    helper.unlink()
    helper.symlink_to(helper)
    code, rep = check(capsys, app)
    assert code == 1 and errors(rep) == {"helper-not-regular"}


def java_class_file() -> bytes:
    """A minimal valid class file (`public class Hello {}`, Java 21): 0xCAFEBABE, 0, 65."""

    def utf8(text: str) -> bytes:
        raw = text.encode()
        return b"\x01" + struct.pack(">H", len(raw)) + raw

    pool = [b"\x07\x00\x02", utf8("Hello"), b"\x07\x00\x04", utf8("java/lang/Object")]
    return (
        struct.pack(">IHHH", 0xCAFEBABE, 0, 65, len(pool) + 1)
        + b"".join(pool)
        + struct.pack(">HHHHHHH", 0x0021, 1, 3, 0, 0, 0, 0)  # flags, this, super, no members
    )


def test_java_class_file_gets_a_hint(
    capsys: pytest.CaptureFixture[str], parts: Parts, tmp_path: Path
) -> None:
    """0xCAFEBABE + version 65 read as a fat header listing 65 slices, with no hint.

    The hint comes from llamabuild/inspect/structure.py (`_fat_entries`), owned elsewhere: this
    test fails until it names Java class files there.
    """
    cls = tmp_path / "Hello.class"
    cls.write_bytes(java_class_file())
    for command in (["verify", str(cls)], ["dsym", str(cls)]):
        code = run([*command, "--json"])
        rep = json.loads(capsys.readouterr().out)
        assert code == 2, command
        assert "Mach-O" in rep["error"] and "Java" in (rep["hint"] or ""), rep
    code, rep = check(capsys, make_app(tmp_path, parts, cls))
    assert code == 1
    (f,) = [f for f in rep["findings"] if f["rule"] == "helper-invalid"]
    assert "Java" in (f.get("hint") or ""), f
