"""What only a Mac can prove, written now and run by .github/workflows/tests.yml on macos-14
(Apple Silicon): the macos-arm64-metal build of the pinned llama.cpp, its smoke run on Metal,
real `codesign` with the app-helper preset read back by Apple and by llamabuild, `xcrun
dsymutil` + UUID match, and verify-app on an .app assembled with Apple's tools.

Elsewhere every test here is skipped with the reason; until that workflow has run on a Mac these
paths are unproven (README says so)."""

from __future__ import annotations

import json
import platform
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llamabuild.inspect import inspect_binary
from llamabuild.signing.entitlements import render_preset

ON_MAC_ARM64 = sys.platform == "darwin" and platform.machine() == "arm64"
pytestmark = [
    pytest.mark.mac,
    pytest.mark.skipif(
        not ON_MAC_ARM64,
        reason="needs macOS on Apple Silicon (Metal, Xcode's codesign, xcrun, dsymutil): "
        "runs in .github/workflows/tests.yml on macos-14",
    ),
]
RECIPE = "macos-arm64-metal"
PRESET = "app-helper"


def cli(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    args = [sys.executable, "-m", "llamabuild", *(str(a) for a in argv)]
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


def apple(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """One of Apple's tools; fails the test with its output when it fails."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def metal_server() -> Path:
    """`llamabuild build -r macos-arm64-metal` of the pinned llama.cpp (tests/plugin_real_llama)."""
    from tests.plugin_real_llama import build_real

    build = build_real(RECIPE)
    assert build.returncode == 0, f"{build.result}\n{build.stderr[-4000:]}"
    return build.binary


@pytest.mark.real_llama
def test_metal_build_is_a_verified_arm64_server_with_its_dsym(metal_server: Path) -> None:
    manifest: dict[str, Any] = json.loads((metal_server.parent / "manifest.json").read_text())
    assert manifest["verify"]["ok"], manifest["verify"]
    (sl,) = inspect_binary(metal_server).slices
    assert sl.arch == "arm64" and sl.minos == "14.0" and sl.uuid
    assert all(d.name.startswith(("/usr/lib/", "/System/")) for d in sl.dylibs)
    assert any("Metal.framework" in d.name for d in sl.dylibs)
    dsym = metal_server.parent / "llama-server.dSYM"
    res = cli("verify", metal_server, "--arch", "arm64", "--dsym", dsym, "--json")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.real_llama
def test_metal_build_embeds_34_groups_that_xcrun_metal_compiled(metal_server: Path) -> None:
    """The build compiled every flattened group offline with `xcrun metal` (no
    metal-compile-failed), recorded their sha256, and the binary's groups are those; the SDK
    the build used keeps the 61 bf16 kernels."""
    manifest_path = metal_server.parent / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    rules = {f["rule"] for f in manifest["verify"]["findings"]}
    assert "metal-compile-failed" not in rules
    (sl,) = manifest["slices"]
    assert len(sl["metal_embed"]) == 34
    res = cli("verify", metal_server, "--manifest", manifest_path, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    metal = json.loads(res.stdout)["slices"][0]["metal"]
    assert metal["kinds"] == 34 and metal["groups"] == sl["metal_embed"]
    assert metal["bf16_defined"] == metal["bf16_kernels"] == 61
    assert metal["sets_language"] is True


@pytest.mark.real_llama
def test_smoke_runs_on_metal(metal_server: Path) -> None:
    devices = subprocess.run(
        [str(metal_server), "--list-devices"], capture_output=True, text=True, timeout=60
    )
    assert "MTL" in devices.stdout + devices.stderr, devices.stdout + devices.stderr
    res = cli("smoke", "--binary", metal_server, "--timeout", "180", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["completion"]


@pytest.mark.real_llama
def test_codesign_with_app_helper_preset_reads_back_the_same(
    metal_server: Path, tmp_path: Path
) -> None:
    helper = tmp_path / "llama-server"
    shutil.copy2(metal_server, helper)
    res = cli("sign", helper, "--identity", "-", "--preset", PRESET, "--no-timestamp", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    want = plistlib.loads(render_preset(PRESET, {}))
    assert want["com.apple.security.app-sandbox"] is True
    apple("codesign", "--verify", "--strict", "--verbose=2", helper)
    shown = apple("codesign", "-d", "--entitlements", "-", "--xml", helper)
    assert plistlib.loads(shown.stdout.encode()) == want  # Apple's reading
    (sl,) = inspect_binary(helper).slices
    assert sl.signature is not None and sl.signature.entitlements == want  # llamabuild's
    assert "runtime" in sl.signature.flags


@pytest.mark.real_llama
def test_xcrun_dsymutil_uuids_match_the_binary(metal_server: Path, tmp_path: Path) -> None:
    dsym = tmp_path / "llama-server.dSYM"
    apple("xcrun", "dsymutil", metal_server, "-o", dsym)
    shown = apple("xcrun", "dwarfdump", "--uuid", dsym).stdout
    (sl,) = inspect_binary(metal_server).slices
    assert sl.uuid and sl.uuid.upper() in shown.upper()
    res = cli("verify", metal_server, "--arch", "arm64", "--dsym", dsym, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [f for f in json.loads(res.stdout)["findings"] if f["rule"].startswith("dsym")]


@pytest.mark.real_llama
def test_verify_app_on_an_app_assembled_with_apple_tools(
    metal_server: Path, tmp_path: Path
) -> None:
    app = _assemble_app(tmp_path, metal_server)
    apple("codesign", "--verify", "--deep", "--strict", app)
    res = cli("verify-app", app, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["ok"]


def _assemble_app(tmp: Path, server: Path) -> Path:
    """Demo.app: an executable built by `xcrun clang`, Info.plist by `plutil`, the helper in
    Contents/Resources signed with the app-helper preset, the app sandboxed, all by codesign."""
    app = tmp / "Demo.app"
    (app / "Contents" / "MacOS").mkdir(parents=True)
    (app / "Contents" / "Resources").mkdir()
    main = tmp / "main.c"
    main.write_text("int main(void) { return 0; }\n")
    exe = app / "Contents" / "MacOS" / "Demo"
    apple("xcrun", "clang", "-arch", "arm64", "-mmacosx-version-min=14.0", main, "-o", exe)
    info = app / "Contents" / "Info.plist"
    apple("plutil", "-create", "xml1", info)
    for key, value in (
        ("CFBundleExecutable", "Demo"),
        ("CFBundleIdentifier", "org.llamabuild.demo"),
        ("CFBundleName", "Demo"),
        ("CFBundlePackageType", "APPL"),
        ("CFBundleShortVersionString", "1.0"),
        ("CFBundleVersion", "1"),
        ("LSMinimumSystemVersion", "14.0"),
    ):
        apple("plutil", "-insert", key, "-string", value, info)
    helper = app / "Contents" / "Resources" / "llama-server"
    shutil.copy2(server, helper)
    helper_ents = tmp / "helper.entitlements"
    helper_ents.write_bytes(render_preset(PRESET, {}))
    app_ents = tmp / "app.entitlements"
    app_ents.write_bytes(plistlib.dumps({"com.apple.security.app-sandbox": True}))
    sign = ["codesign", "--force", "--sign", "-", "--options", "runtime"]
    apple(*sign, "--entitlements", helper_ents, helper)
    apple(*sign, "--entitlements", app_ents, app)
    return app
