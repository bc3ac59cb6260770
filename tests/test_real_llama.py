"""The real thing: llama-server from the llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e570),
built by `llamabuild build`, verified, with a manifest; plus the zig cross build to macOS.

These run in CI (`python3 -m pytest`). The build happens once per session (plugin_real_llama)
and is a no-op skip when the cache already holds a verifying artifact for the same inputs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from llamabuild.inspect import inspect_binary
from llamabuild.inspect.policy import Policy
from llamabuild.inspect.verify_binary import verify
from tests.plugin_real_llama import LLAMA_COMMIT, SDIST_SHA256, RealBuild, build_real

pytestmark = [pytest.mark.real_llama, pytest.mark.slow, pytest.mark.timeout(3600)]


def test_linux_static_server_is_built_verified_and_manifested(
    real_llama_build: RealBuild,
) -> None:
    build = real_llama_build
    assert build.result["ok"] is True
    m = build.manifest
    assert m["recipe"] == "linux-x86_64-static"
    assert m["source"]["kind"] == "archive" and m["source"]["sha256"] == SDIST_SHA256
    assert m["source"]["subdir"] == "vendor/llama.cpp"
    entries = m["slices"][0]["cache_entries"]
    assert entries["LLAMA_BUILD_COMMIT"] == LLAMA_COMMIT
    assert entries["LLAMA_OPENSSL"] == "OFF" and entries["GGML_OPENMP"] == "OFF"
    assert m["verify"]["ok"] is True
    # Fully static, as the recipe declares: no NEEDED at all, no interpreter.
    b = inspect_binary(build.binary)
    assert b.format == "elf" and b.archs == ("x86_64",)
    assert b.slices[0].dylibs == () and b.slices[0].interpreter is None
    report = verify(build.binary, Policy(archs=("x86_64",), min_macos=None, elf="static"))
    assert report.ok, report.findings
    version = subprocess.run(
        [build.binary, "--version"], capture_output=True, text=True, timeout=60
    )
    assert f"commit {LLAMA_COMMIT}" in version.stdout + version.stderr


def test_second_build_is_a_noop(real_llama_build: RealBuild) -> None:
    again = build_real("linux-x86_64-static")
    assert again.returncode == 0, again.stderr
    assert again.result["skipped"] is True


@pytest.mark.parametrize(
    ("define", "replacement"),
    [
        ("LLAMA_METAL=ON", "GGML_METAL"),
        ("LLAMA_CURL=ON", "LLAMA_OPENSSL"),
        ("LLAMA_STATIC=ON", "BUILD_SHARED_LIBS=OFF"),
    ],
)
def test_real_tree_refuses_stale_flags(
    real_llama_build: RealBuild, define: str, replacement: str
) -> None:
    res = build_real("linux-x86_64-static", "--dry-run", "-D", define)
    assert res.returncode == 2
    assert replacement in res.result["error"]


@pytest.mark.parametrize(
    "recipe", ["macos-arm64-metal", "macos-universal", "macos-arm64-cpu-cross"]
)
def test_real_tree_accepts_every_recipe_flag(real_llama_build: RealBuild, recipe: str) -> None:
    res = build_real(recipe, "--dry-run")
    assert res.returncode == 0, res.result
    for sl in res.result["slices"]:
        assert sl["cache_entries"]["GGML_METAL_EMBED_LIBRARY"] in ("ON", "OFF")
        assert "GGML_STATIC" not in sl["cache_entries"]


def test_zig_cross_build_is_macho_arm64_with_dsym(real_cross_build: RealBuild) -> None:
    build = real_cross_build
    b = inspect_binary(build.binary)
    (sl,) = b.slices
    assert b.format == "macho" and sl.arch == "arm64" and sl.minos == "14.0"
    assert [d.name for d in sl.dylibs] == ["/usr/lib/libSystem.B.dylib"]
    outputs = {o["role"]: o for o in build.manifest["outputs"]}
    assert outputs["dsym-dwarf"]["uuids"] == {"arm64": sl.uuid}
    assert build.manifest["versions"]["zig"]
    dsym = build.dist / "llama-server.dSYM"
    report = verify(build.binary, Policy(archs=("arm64",), min_macos="14.0"), dsym=dsym)
    assert report.ok, report.findings
    assert Path(dsym / "Contents" / "Info.plist").is_file()
    # The new checks see the real imports (248 from libSystem, C++ weak definitions through
    # the weak lookup ordinal), the same in both readers.
    dylibs = {i.dylib for i in sl.imports}
    assert dylibs == {"/usr/lib/libSystem.B.dylib", "<weak lookup>"}
    assert {"_malloc", "_pthread_create"} <= {i.name for i in sl.imports}
    assert inspect_binary(build.binary, "lief") == b
    assert [f.rule for f in report.findings] == []
