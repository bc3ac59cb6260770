"""The SBOM and notices of the real llama-server (llama.cpp 0c1e570 from the llama-cpp-python
0.3.36 sdist), as `llamabuild build` publishes them; checked against the binary's own symbol
table (llvm-nm, independent of llamabuild's LIEF-based link check) and the pinned tree's files.

Uses the session's real build (tests/plugin_real_llama.py): a no-op when the cache holds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llamabuild.provenance.components import load_table, read_texts
from llamabuild.provenance.sbom import validate
from tests.plugin_real_llama import LLAMA_COMMIT, RealBuild

pytestmark = [pytest.mark.real_llama, pytest.mark.slow, pytest.mark.timeout(3600)]

# What the binary's symbol table shows of each component (a demangled-name substring).
EVIDENCE = {
    "cpp-httplib": "httplib::",
    "nlohmann-json": "nlohmann::json_abi",
    "stb_image": "stbi_",
    "miniaudio": "ma_decoder",
    "subprocess.h": "subprocess_",
    "sha256.c": "sha256_final",
    "base64.hpp": "base64_decode",
    "llamafile-sgemm": "llamafile_sgemm",
}
# In the tree (vendor/hash builds them into libvendor-hash.a) but not in the binary.
ABSENT = {"xxHash": "XXH64", "sha1": "SHA1Update"}
# Macros only, no symbol of their own: listed with what includes them (sha256.c).
HEADER_ONLY = {"rotate-bits.h"}
VERSIONS = {"cpp-httplib": "0.58.0", "nlohmann-json": "3.12.0", "miniaudio": "0.11.25"}


def nm_symbols(binary: Path) -> str:
    nm = shutil.which("llvm-nm-19") or shutil.which("llvm-nm") or shutil.which("nm")
    if nm is None:
        pytest.skip("needs llvm-nm or nm")
    argv = [nm, "-C", "--defined-only", str(binary)]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout


def source_root(manifest: dict[str, Any]) -> Path:
    argv = manifest["slices"][0]["configure_argv"]
    return Path(argv[argv.index("-S") + 1])


def check_sbom(build: RealBuild, arch: str) -> dict[str, Any]:
    text = (build.dist / "llama-server.cdx.json").read_text()
    assert validate(text) is None
    bom: dict[str, Any] = json.loads(text)
    root = bom["metadata"]["component"]
    assert {"name": "llamabuild:arch", "value": arch} in root["properties"]
    (binary_out,) = [o for o in build.manifest["outputs"] if o["role"] == "binary"]
    assert root["hashes"][0]["content"] == binary_out["sha256"]
    names = {c["name"] for c in bom["components"]}
    symbols = nm_symbols(build.binary)
    for name, symbol in EVIDENCE.items():
        assert (name in names) == (symbol in symbols), (name, symbol)
    for name, symbol in ABSENT.items():
        assert name not in names and symbol not in symbols, name
    tree = source_root(build.manifest)
    assert (tree / "vendor/hash/xxhash/xxhash.c").is_file()  # in the tree, compiled, not linked
    assert (tree / "tools/ui/src/lib/vendors/big-integer/LICENSE").is_file()  # web UI only
    toolchain = names - {"llama.cpp", *EVIDENCE, *HEADER_ONLY}
    if arch == "x86_64":  # gcc -static: the C library and the C++ runtime are in the binary
        assert toolchain == {"glibc", "libstdc++", "libgcc"}
    else:  # zig: its libc++ and libc++abi (compiler_rt only when libSystem lacks a builtin)
        assert {"libc++", "libc++abi"} <= toolchain <= {"libc++", "libc++abi", "compiler_rt (zig)"}
    return bom


def test_real_sbom_lists_what_llama_server_links(real_llama_build: RealBuild) -> None:
    bom = check_sbom(real_llama_build, "x86_64")
    by_name = {c["name"]: c for c in bom["components"]}
    assert by_name["llama.cpp"]["purl"] == f"pkg:github/ggml-org/llama.cpp@{LLAMA_COMMIT}"
    assert by_name["llama.cpp"]["licenses"] == [{"license": {"id": "MIT"}}]
    for name, version in VERSIONS.items():
        assert by_name[name]["version"] == version
    assert by_name["stb_image"]["licenses"] == [{"expression": "MIT OR Unlicense"}]
    refs = by_name["llama.cpp"]["externalReferences"]
    (dist,) = [r for r in refs if r["type"] == "distribution"]  # the sdist, with its sha256
    assert dist["hashes"][0]["content"] == real_llama_build.manifest["source"]["sha256"]


def test_real_notices_contain_each_license_text(real_llama_build: RealBuild) -> None:
    dist = real_llama_build.dist
    notices = (dist / "THIRD_PARTY_NOTICES.txt").read_text()
    credits = (dist / "Credits.html").read_text()
    tree = source_root(real_llama_build.manifest)
    bom = json.loads((dist / "llama-server.cdx.json").read_text())
    listed = {c["name"] for c in bom["components"]}
    table = load_table()
    specs = [table.project, *(s for s in table.component if s.name in listed)]
    assert len(specs) == len(listed - {"glibc", "libstdc++", "libgcc"})  # toolchain: below
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in notices  # static glibc: LGPL-2.1
    assert "GCC RUNTIME LIBRARY EXCEPTION" in notices.upper()
    for spec in specs:
        found: list[Any] = []
        texts = read_texts(tree, spec, found)
        assert texts and not found, spec.name
        for t in texts:
            assert t.text.strip() in notices, (spec.name, t.file)
            assert f"[{t.file}]" in notices
    # Whole license files, byte for byte from the tree:
    for rel in ["LICENSE", "vendor/cpp-httplib/LICENSE", "licenses/LICENSE-jsonhpp"]:
        assert (tree / rel).read_text().strip() in notices, rel
    assert "Yann Collet" not in notices  # xxHash is not linked
    assert "Niels Lohmann" in credits and "Sean Barrett" in credits
    sums = {o["role"]: o["sha256"] for o in real_llama_build.manifest["outputs"]}
    assert {"sbom", "notices", "credits"} <= set(sums)


def test_real_macos_cross_sbom(real_cross_build: RealBuild) -> None:
    build = real_cross_build
    check_sbom(build, "arm64")
    assert "llama.cpp" in (build.dist / "Credits.html").read_text()
