"""`llamabuild xcode-phase` against a real .app tree, with Xcode's Run Script variables set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.inspect import inspect_binary
from tests.fixtures.macho import Lib, MachOFactory, system

pytestmark = pytest.mark.compile

HELPER = {"com.apple.security.app-sandbox": True, "com.apple.security.inherit": True}
XCODE_VARS = (
    "BUILT_PRODUCTS_DIR",
    "WRAPPER_NAME",
    "PRODUCT_NAME",
    "UNLOCALIZED_RESOURCES_FOLDER_PATH",
    "EXPANDED_CODE_SIGN_IDENTITY",
    "CODE_SIGNING_ALLOWED",
    "SRCROOT",
    "PRODUCT_BUNDLE_IDENTIFIER",
    "MACOSX_DEPLOYMENT_TARGET",
    "ACTION",
)


@pytest.fixture(scope="session")
def server(macho: MachOFactory) -> Path:
    x86 = macho.build("xc_x86", system("libSystem", "libc++", "Metal"), arch="x86_64")
    arm = macho.build("xc_arm", system("libSystem", "libc++", "Metal"))
    return macho.fat("xc_server", [arm, x86])


@pytest.fixture(scope="session")
def homebrew_server(macho: MachOFactory) -> Path:
    return macho.build(
        "xc_brew", [Lib("/opt/homebrew/opt/libomp/lib/libomp.dylib", ("___kmpc_fork_call",))]
    )


@pytest.fixture(autouse=True)
def off_macos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): None)
    for name in XCODE_VARS:
        monkeypatch.delenv(name, raising=False)


def make_app(tmp_path: Path, binary: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DerivedData-like tree with spaces: '.../Build Products/Release/My App.app'."""
    built = tmp_path / "Derived Data" / "Build Products" / "Release"
    resources = built / "My App.app" / "Contents" / "Resources"
    resources.mkdir(parents=True)
    (built / "My App.app" / "Contents" / "MacOS").mkdir()
    shutil.copy2(binary, resources / "llama-server")
    srcroot = tmp_path / "My Project"
    srcroot.mkdir()
    env = {
        "BUILT_PRODUCTS_DIR": str(built),
        "WRAPPER_NAME": "My App.app",
        "PRODUCT_NAME": "My App",
        "UNLOCALIZED_RESOURCES_FOLDER_PATH": "My App.app/Contents/Resources",
        "EXPANDED_CODE_SIGN_IDENTITY": "-",
        "CODE_SIGNING_ALLOWED": "YES",
        "SRCROOT": str(srcroot),
        "PRODUCT_BUNDLE_IDENTIFIER": "com.example.myapp",
        "MACOSX_DEPLOYMENT_TARGET": "14.0",
        "ACTION": "build",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return resources / "llama-server"


def test_signs_and_verifies_the_bundled_server(tmp_path, monkeypatch, capsys, server):
    binary = make_app(tmp_path, server, monkeypatch)
    stamp = tmp_path / "Derived Data" / "DerivedSources" / "llamabuild-sign.stamp"
    assert run(["xcode-phase", "--stamp", str(stamp)]) == 0
    assert stamp.read_text() == f"{binary}\n"
    out = capsys.readouterr().out
    assert "error:" not in out
    assert out.strip().splitlines()[-1].startswith(f"note: llamabuild: {binary}: signed")
    for sl in inspect_binary(binary).slices:
        assert sl.signature is not None
        assert sl.signature.identifier == "com.example.myapp.llama-server"
        assert sl.signature.entitlements == HELPER
        assert "runtime" in sl.signature.flags
    assert sorted(p.name for p in binary.parent.iterdir()) == ["llama-server"]


def test_stamp_is_world_readable_and_a_bad_stamp_path_is_exit_2(
    tmp_path, monkeypatch, capsys, server
):
    import os
    import stat

    make_app(tmp_path, server, monkeypatch)
    stamp = tmp_path / "Derived Data" / "DerivedSources" / "llamabuild-sign.stamp"
    old = os.umask(0o022)
    try:
        assert run(["xcode-phase", "--stamp", str(stamp)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(stamp.stat().st_mode) == 0o644  # not mkstemp's 0600
    capsys.readouterr()
    assert run(["xcode-phase", "--stamp", str(stamp / "x.stamp")]) == 2  # stamp is a file
    err = capsys.readouterr().err
    assert "cannot write" in err and "internal error" not in err


def test_configured_preset_and_identifier_from_srcroot(tmp_path, monkeypatch, capsys, server):
    binary = make_app(tmp_path, server, monkeypatch)
    (tmp_path / "My Project" / "llamabuild.toml").write_text(
        '[entitlements]\npreset = "standalone-server"\n[sign]\nidentifier = "com.example.srv"\n'
    )
    assert run(["xcode-phase", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True
    assert payload["sign"]["entitlements_source"] == "preset standalone-server"
    assert payload["verify"]["ok"] is True
    sl = inspect_binary(binary).slices[0]
    assert sl.signature is not None
    assert sl.signature.identifier == "com.example.srv"
    assert "com.apple.security.network.server" in (sl.signature.entitlements or {})


def test_product_name_stands_in_for_wrapper_name(tmp_path, monkeypatch, capsys, server):
    binary = make_app(tmp_path, server, monkeypatch)
    monkeypatch.delenv("WRAPPER_NAME")
    monkeypatch.delenv("UNLOCALIZED_RESOURCES_FOLDER_PATH")
    assert run(["xcode-phase"]) == 0
    capsys.readouterr()
    assert inspect_binary(binary).slices[0].signature.entitlements == HELPER  # type: ignore[union-attr]


def test_missing_variables_are_named(monkeypatch, capsys):
    assert run(["xcode-phase"]) == 2
    err = capsys.readouterr().err
    for name in ("BUILT_PRODUCTS_DIR", "SRCROOT", "WRAPPER_NAME", "EXPANDED_CODE_SIGN_IDENTITY"):
        assert name in err


def test_signing_not_allowed_skips_signing_but_verifies_linkage(
    tmp_path, monkeypatch, capsys, homebrew_server
):
    binary = make_app(tmp_path, homebrew_server, monkeypatch)
    before = binary.read_bytes()
    monkeypatch.setenv("CODE_SIGNING_ALLOWED", "NO")
    monkeypatch.delenv("EXPANDED_CODE_SIGN_IDENTITY")  # not needed when not signing
    assert run(["xcode-phase"]) == 1
    out = capsys.readouterr().out
    assert f"{binary}: error: homebrew-dependency" in out
    assert "not signed (CODE_SIGNING_ALLOWED=NO)" in out
    assert binary.read_bytes() == before


def test_lint_errors_become_xcode_error_lines(tmp_path, monkeypatch, capsys, server):
    binary = make_app(tmp_path, server, monkeypatch)
    before = binary.read_bytes()
    (tmp_path / "My Project" / "llamabuild.toml").write_text(
        '[entitlements]\n"com.apple.security.netwrk.client" = true\n'
        '"com.apple.security.temporary-exception.files.absolute-path.read-only" = ["/tmp/"]\n'
    )
    assert run(["xcode-phase"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(
        line.startswith(f"{binary}: error: entitlement-unknown-key")
        and "did you mean com.apple.security.network.client" in line
        for line in lines
    )
    assert any(": warning: entitlement-temporary-exception" in line for line in lines)
    assert "NOT signed" in lines[-1]
    assert binary.read_bytes() == before


def test_missing_binary_says_where_to_place_the_phase(tmp_path, monkeypatch, capsys, server):
    binary = make_app(tmp_path, server, monkeypatch)
    binary.unlink()
    assert run(["xcode-phase"]) == 2
    err = capsys.readouterr().err
    assert "Copy Bundle Resources" in err
    assert str(binary) in err


def test_sandbox_is_required_after_signing(tmp_path, monkeypatch, capsys, server):
    make_app(tmp_path, server, monkeypatch)
    (tmp_path / "My Project" / "llamabuild.toml").write_text(
        '[entitlements]\n"com.apple.security.app-sandbox" = false\n'
        '"com.apple.security.inherit" = false\n'
    )
    assert run(["xcode-phase"]) == 1
    out = capsys.readouterr().out
    assert ": error: sandbox-missing" in out
