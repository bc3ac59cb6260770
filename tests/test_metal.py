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
    sets_language: bool = False,
    minos: str = "14.0",
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
    if sets_language:  # what `options.languageVersion = ...` leaves in an Objective-C binary
        asm += [".section __TEXT,__objc_methname,cstring_literals", '.asciz "setLanguageVersion:"']
    sources = {"m.c": main, "lib.s": "\n".join(asm) + "\n"}
    return link_sources(root / name, sources, exports, sdk=sdk, minos=minos)


def verify(
    capsys: pytest.CaptureFixture[str], path: Path, *extra: str, min_macos: str = "14.0"
) -> tuple[int, dict]:
    code = run(["verify", str(path), "--min-macos", min_macos, "--json", *extra])
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
    """The pinned llama.cpp's own kernels, flattened as its CMake does, in a real Mach-O: 34
    groups, 61 bf16 kernel instantiations at Metal 3.1 (the SDK 14 default), none at 3.0."""
    from llamabuild.source.cache import cache_root
    from tests.fixtures.metal_embed import embed_asm
    from tests.plugin_real_llama import SDIST_SHA256

    archive = cache_root() / "archives" / SDIST_SHA256[:16]
    found = sorted(archive.glob("*/vendor/llama.cpp/ggml/src/ggml-metal"))
    if not found:
        pytest.skip("the pinned llama.cpp is not in this cache (LLAMABUILD_TEST_LLAMA_SERVER)")
    asm = embed_asm(found[0], macho.root / "real-kernels")
    asm += '.section __TEXT,__objc_methname,cstring_literals\n.asciz "setLanguageVersion:"\n'
    main = (
        "void ggml_backend_metal_init(void) {}\nextern void *MTLCreateSystemDefaultDevice(void);\n"
        "int main(int argc, char **argv) {\n"
        "  return argc > 5 ? MTLCreateSystemDefaultDevice() != 0 : 0;\n}\n"
    )
    exports = {
        "/usr/lib/libSystem.B.dylib": "symbols: [ dyld_stub_binder ]",
        METAL: "symbols: [ _MTLCreateSystemDefaultDevice ]",
    }
    sources = {"m.c": main, "lib.s": asm}
    binary = link_sources(macho.root / "metal_real", sources, exports, sdk="14.0")
    code, rep = verify(capsys, binary)
    metal = rep["slices"][0]["metal"]
    assert code == 0, rep["findings"]  # its #else keeps `#include "ggml-common.h"`: not live
    assert metal["library"] == "embedded" and metal["kinds"] == 34 == len(metal["groups"])
    assert metal["bytes"] > 4_000_000  # ~4.9 MB of text
    assert (metal["bf16_defined"], metal["bf16_kernels"]) == (61, 61)
    assert metal["tensor_api"] is True and metal["sets_language"] is True
    old_sdk = link_sources(macho.root / "metal_real_sdk13", sources, exports, sdk="13.0")
    code, rep = verify(capsys, old_sdk)
    metal = rep["slices"][0]["metal"]
    assert (metal["bf16_defined"], metal["bf16_kernels"]) == (61, 0)
    assert code == 1 and "metal-bf16-dropped" in _rules(rep)


# kernels/common.h's guard and two instantiations the way the pinned kernels spell them (one
# with the space before `)` that fa_f16.metal has), behind a comment that hides nothing.
BF16 = b"""#if __METAL_VERSION__ < 310 && defined(GGML_METAL_HAS_BF16)
#undef GGML_METAL_HAS_BF16
#endif
kernel void kernel_add(device float * x) { x[0] += 1.0f; }
#if defined(GGML_METAL_HAS_BF16) // bf16 needs Metal 3.1
template [[host_name("kernel_get_rows_bf16")]] kernel get_rows_t kernel_get_rows<bfloat>;
template [[host_name("kernel_flash_attn_ext_bf16_dk64" )]] kernel fa_t kernel_fa<bfloat>;
#endif
"""


def _rules(rep: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in rep["findings"]}


def test_bf16_kernels_are_counted_at_the_sdks_language(macho: MachOFactory, capsys) -> None:
    code, rep = verify(capsys, build(macho.root, "bf16_sdk14", {"base": BF16}))
    metal = rep["slices"][0]["metal"]
    assert code == 0, rep["findings"]
    assert (metal["bf16_defined"], metal["bf16_kernels"]) == (2, 2)


def test_an_sdk_13_binary_drops_its_bf16_kernels(macho: MachOFactory, capsys) -> None:
    """The SDK 13 default language is Metal 3.0: common.h compiles the bf16 kernels out while
    the host still enables bf16 ("Function kernel_*bf16* was not found in the library")."""
    code, rep = verify(capsys, build(macho.root, "bf16_sdk13", {"base": BF16}, sdk="13.0"))
    metal = rep["slices"][0]["metal"]
    assert code == 1 and (metal["bf16_defined"], metal["bf16_kernels"]) == (2, 0)
    dropped = _rules(rep)["metal-bf16-dropped"]
    assert dropped["severity"] == "error" and "2 of 2 bf16 kernels" in dropped["message"]
    assert "14.0 SDK" in dropped["hint"]


def test_a_deployment_target_below_14_names_the_launcher_setting(
    macho: MachOFactory, capsys
) -> None:
    binary = build(macho.root, "bf16_min13", {"base": BF16}, sdk="14.0", minos="13.0")
    code, rep = verify(capsys, binary, min_macos="13.0")
    old = _rules(rep)["metal-bf16-old-macos"]
    assert code == 0 and old["severity"] == "warning"
    assert "GGML_METAL_BF16_DISABLE=1" in old["hint"]
    plain_binary = build(macho.root, "nobf16_min13", {"base": G}, minos="13.0")
    _, plain = verify(capsys, plain_binary, min_macos="13.0")
    assert "metal-bf16-old-macos" not in _rules(plain)  # no bf16 kernels: nothing drops


def test_verify_app_takes_the_minimum_from_info_plist(
    tmp_path: Path, macho: MachOFactory, capsys
) -> None:
    from tests.fixtures.appstore import bare_app

    helper = build(macho.root, "bf16_app", {"base": BF16}, minos="13.5")
    app = bare_app(tmp_path, helper)
    info = app / "Contents" / "Info.plist"
    text = info.read_text()
    assert "<string>14.0</string>" in text
    info.write_text(text.replace("<string>14.0</string>", "<string>13.5</string>"))
    run(["verify-app", str(app), "--json"])
    found = _rules(json.loads(capsys.readouterr().out))
    assert "13.5" in found["metal-bf16-old-macos"]["message"]


TENSOR = b"#ifdef GGML_METAL_HAS_TENSOR\n#include <metal_tensor>\n#endif\n" + G


def test_tensor_code_needs_the_language_setter(macho: MachOFactory, capsys) -> None:
    _, rep = verify(capsys, build(macho.root, "tensor_noset", {"base": TENSOR}))
    assert rep["slices"][0]["metal"]["tensor_api"] is True
    assert _rules(rep)["metal-tensor-language"]["severity"] == "warning"
    binary = build(macho.root, "tensor_set", {"base": TENSOR}, sets_language=True)
    code, rep = verify(capsys, binary)
    assert code == 0 and rep["slices"][0]["metal"]["sets_language"] is True
    assert "metal-tensor-language" not in _rules(rep)


def test_a_stripped_binary_reads_its_groups_from_the_dsym(
    macho: MachOFactory, tmp_path: Path, capsys
) -> None:
    import shutil
    import subprocess

    binary = build(macho.root, "metal_to_strip", {"base": BF16, "mul": G})
    dsym = tmp_path / "metal_to_strip.dSYM"
    subprocess.run(["dsymutil-19", str(binary), "-o", str(dsym)], check=True, capture_output=True)
    stripped = tmp_path / "metal_to_strip"
    shutil.copy2(binary, stripped)
    subprocess.run(["llvm-strip-19", str(stripped)], check=True, capture_output=True)
    _, alone = verify(capsys, stripped)
    assert "pass its dSYM with --dsym" in _rules(alone)["metal-library-broken"]["message"]
    _, rep = verify(capsys, stripped, "--dsym", str(dsym))
    metal = rep["slices"][0]["metal"]
    assert metal["kinds"] == 2 and metal["bf16_defined"] == 2
    assert set(metal["groups"]) == {"base", "mul"}
    assert "metal-library-broken" not in _rules(rep)


def test_without_a_preprocessor_the_text_is_counted_and_said(
    macho: MachOFactory, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llamabuild.tools.preprocessor import Preprocessor

    binary = build(macho.root, "bf16_nocpp", {"base": BF16}, sdk="13.0")
    monkeypatch.setattr(Preprocessor, "names", ("llamabuild-no-such-clang",))
    monkeypatch.setenv("PATH", "/nonexistent")  # no xcrun either
    code, rep = verify(capsys, binary)
    metal = rep["slices"][0]["metal"]
    assert metal["bf16_kernels"] is None and metal["bf16_defined"] == 2
    assert "not preprocessed" in metal["bf16_note"]
    assert code == 1 and "metal-bf16-dropped" in _rules(rep)  # nothing known to survive


def test_too_many_groups_are_not_preprocessed(macho: MachOFactory, capsys) -> None:
    """Each group is one clang run: a binary with hundreds of bf16 groups is not ggml's."""
    from llamabuild.inspect.metal_kernels import MAX_GROUPS

    groups = {f"g{i}": BF16 + f"// {i}\n".encode() for i in range(MAX_GROUPS + 1)}
    _, rep = verify(capsys, build(macho.root, "metal_many", groups))
    metal = rep["slices"][0]["metal"]
    assert metal["kinds"] == MAX_GROUPS + 1 and metal["bf16_kernels"] is None
    assert f"more than {MAX_GROUPS}" in metal["bf16_note"]
