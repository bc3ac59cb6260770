"""ggml's embedded Metal kernels in a real arm64 Mach-O (clang-19 + ld64.lld-19, Metal linked
through a .tbd stub), laid out as the pinned tree's CMake does: each group's flattened source
.incbin'ed into __DATA,__ggml_metallib between _ggml_metallib_<kind>_start and _end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamabuild.cli import run
from tests.fixtures.macho import MachOFactory, link_sources

pytestmark = pytest.mark.compile

METAL = "/System/Library/Frameworks/Metal.framework/Versions/A/Metal"
GOOD = "kernel void kernel_add(device float * x) { x[0] += 1.0f; }\n"


def build(
    root: Path,
    name: str,
    groups: dict[str, bytes] | None,
    *,
    backend: bool = True,
    sdk: str = "14.0",
    reversed_kind: str | None = None,
) -> Path:
    work = root / f"{name}.kernels"
    work.mkdir(parents=True, exist_ok=True)
    asm = []
    if groups is not None:
        asm.append(".section __DATA,__ggml_metallib")
        for kind, text in groups.items():
            (work / f"{kind}.metal").write_bytes(text)
            start, end = f"_ggml_metallib_{kind}_start", f"_ggml_metallib_{kind}_end"
            first, last = (end, start) if kind == reversed_kind else (start, end)
            asm += [f".globl {first}", f"{first}:", f'.incbin "{work / kind}.metal"']
            asm += [f".globl {last}", f"{last}:"]
    main = (
        ("void ggml_backend_metal_init(void) {}\n" if backend else "")
        + "extern void *MTLCreateSystemDefaultDevice(void);\n"
        "int main(int argc, char **argv) {\n"
        "  return argc > 5 ? MTLCreateSystemDefaultDevice() != 0 : 0;\n}\n"
    )
    exports = {
        "/usr/lib/libSystem.B.dylib": "symbols: [ dyld_stub_binder ]",
        METAL: "symbols: [ _MTLCreateSystemDefaultDevice ]",
    }
    sources = {"m.c": main, "lib.s": "\n".join(asm) + "\n"}
    return link_sources(root / name, sources, exports, sdk=sdk)


def verify(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, dict]:
    code = run(["verify", str(path), "--min-macos", "14.0", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_good_embedded_library(macho: MachOFactory, capsys) -> None:
    groups = {k: GOOD.encode() for k in ("base", "mul_mv", "flash_attn")}
    code, rep = verify(capsys, build(macho.root, "metal_good", groups))
    assert code == 0, rep["findings"]
    (sl,) = rep["slices"]
    metal = sl["metal"]
    assert metal["library"] == "embedded" and metal["kinds"] == 3
    assert metal["bytes"] == 3 * len(GOOD) and len(metal["sha256"]) == 64
    assert metal["msl_default"] == "3.1"  # the SDK 14 default: bf16 kernels survive


BROKEN = "metal-library-broken"
G = GOOD.encode()
CASES = {
    "empty group": ({"base": G, "empty": b""}, BROKEN, "'empty' is empty"),
    "not UTF-8": ({"base": b"kernel \xff\xfe"}, BROKEN, "not UTF-8"),
    "sentinel left": ({"base": b"__embed_ggml-common.h__\n" + G}, BROKEN, "__embed_ggml-common"),
    "include left": ({"base": b'#include "ggml-metal-impl.h"\n' + G}, BROKEN, "#include"),
    "include live in #if": (
        {"base": b'#if defined(GGML_METAL_EMBED_LIBRARY)\n#include "ggml-common.h"\n#endif\n' + G},
        BROKEN,
        "#include",
    ),
    "no section": (None, "metal-library-missing", "default.metallib"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_library_is_an_error(macho: MachOFactory, capsys, case: str) -> None:
    groups, rule, said = CASES[case]
    name = "metal_" + case.replace(" ", "_").replace("-", "_")
    code, rep = verify(capsys, build(macho.root, name, groups))
    assert code == 1
    found = [f for f in rep["findings"] if f["rule"] == rule]
    assert found and said in found[0]["message"], rep["findings"]


def test_a_group_that_ends_before_it_starts(macho: MachOFactory, capsys) -> None:
    groups = {"base": GOOD.encode(), "back": GOOD.encode()}
    code, rep = verify(capsys, build(macho.root, "metal_reversed", groups, reversed_kind="back"))
    assert code == 1 and any(
        "'back' is empty or ends before" in f["message"] for f in rep["findings"]
    )


def test_metal_without_ggml_backend_is_not_judged(macho: MachOFactory, capsys) -> None:
    code, rep = verify(capsys, build(macho.root, "metal_plain", None, backend=False))
    assert code == 0
    assert rep["slices"][0]["metal"]["library"] == "none"


def test_sdk_13_implies_metal_3_0(macho: MachOFactory, capsys) -> None:
    groups = {"base": GOOD.encode()}
    _, rep = verify(capsys, build(macho.root, "metal_sdk13", groups, sdk="13.0"))
    assert rep["slices"][0]["metal"]["msl_default"] == "3.0"


def test_no_metal_key_for_a_binary_without_metal(macho: MachOFactory, capsys) -> None:
    from tests.fixtures.macho import system

    plain = macho.build("metal_free", system("libSystem"))
    code = run(["verify", str(plain), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and all("metal" not in sl for sl in rep["slices"])


def test_the_session_fixture_links_metal_without_ggml(clean_arm64: Path, capsys) -> None:
    code = run(["verify", str(clean_arm64), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["slices"][0]["metal"]["library"] == "none"


def test_a_shipped_metallib_is_a_warning(tmp_path: Path, macho: MachOFactory, capsys) -> None:
    from tests.fixtures.appstore import bare_app
    from tests.fixtures.macho import system

    app = bare_app(tmp_path, macho.build("metal_app", system("libSystem")))
    (app / "Contents" / "Resources" / "default.metallib").write_bytes(b"MTLB" + bytes(60))
    run(["verify-app", str(app), "--json"])
    findings = json.loads(capsys.readouterr().out)["findings"]
    (shipped,) = [f for f in findings if f["rule"] == "metal-library-shipped"]
    assert shipped["severity"] == "warning" and "default.metallib" in shipped["message"]


def test_the_pinned_trees_real_kernels_report_34_kinds(
    real_llama_build: object, macho: MachOFactory, capsys
) -> None:
    """The pinned llama.cpp's own kernels, flattened as its CMake does, in a real Mach-O."""
    from llamabuild.source.cache import cache_root
    from tests.fixtures.metal_embed import embed_asm
    from tests.plugin_real_llama import SDIST_SHA256

    archive = cache_root() / "archives" / SDIST_SHA256[:16]
    found = sorted(archive.glob("*/vendor/llama.cpp/ggml/src/ggml-metal"))
    if not found:
        pytest.skip("the pinned llama.cpp is not in this cache (LLAMABUILD_TEST_LLAMA_SERVER)")
    asm = embed_asm(found[0], macho.root / "real-kernels")
    main = (
        "void ggml_backend_metal_init(void) {}\nextern void *MTLCreateSystemDefaultDevice(void);\n"
        "int main(int argc, char **argv) {\n"
        "  return argc > 5 ? MTLCreateSystemDefaultDevice() != 0 : 0;\n}\n"
    )
    exports = {
        "/usr/lib/libSystem.B.dylib": "symbols: [ dyld_stub_binder ]",
        METAL: "symbols: [ _MTLCreateSystemDefaultDevice ]",
    }
    binary = link_sources(macho.root / "metal_real", {"m.c": main, "lib.s": asm}, exports)
    code, rep = verify(capsys, binary)
    metal = rep["slices"][0]["metal"]
    assert code == 0, rep["findings"]  # its #else keeps `#include "ggml-common.h"`: not live
    assert metal["library"] == "embedded" and metal["kinds"] == 34
    assert metal["bytes"] > 4_000_000  # ~4.9 MB of text
