"""Availability and App Store policy on real binaries: libraries and frameworks newer than the
deployment target, rpaths into the linking machine (issue: verify sees what dyld sees)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llamabuild.cli import run
from tests.fixtures.macho import Lib, MachOFactory, link_sources, system

pytestmark = pytest.mark.compile

RDMA = "/usr/lib/librdma.dylib"
FM = "/System/Library/Frameworks/FoundationModels.framework/Versions/A/FoundationModels"


def verify(capsys: pytest.CaptureFixture[str], path: Path, *args: str) -> tuple[int, dict]:
    code = run(["verify", str(path), *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def rules(rep: dict) -> set[tuple[str, str]]:
    return {(f["rule"], f["severity"]) for f in rep["findings"]}


@pytest.fixture(scope="module")
def built(macho: MachOFactory) -> dict[str, Path]:
    rdma = (RDMA, ("_rdma_open",))
    fm = (FM, ("_FMSessionCreate",))
    b = {
        "rdma_strong": macho.build("av_rdma_strong", [Lib(*rdma)]),
        "rdma_weak": macho.build("av_rdma_weak", [Lib(*rdma, kind="weak")]),
        "fm_strong": macho.build("av_fm_strong", [Lib(*fm)]),
        "fm_weak": macho.build("av_fm_weak", [Lib(*fm, kind="weak")]),
        "fm_strong_x86": macho.build(
            "av_fm_strong_x86", [Lib(*fm)], arch="x86_64", extra_ld=["-no_fixup_chains"]
        ),
        "runner_rpath": macho.build(
            "av_runner_rpath",
            system("libSystem"),
            rpaths=["/Users/runner/work/app/llama.cpp/build/bin"],
        ),
        "home_rpath": macho.build("av_home_rpath", system("libSystem"), rpaths=["/home/ci/b/lib"]),
        "relative_rpath": macho.build("av_rel_rpath", system("libSystem"), rpaths=["lib"]),
        "system_rpath": macho.build("av_sys_rpath", system("libSystem"), rpaths=["/usr/lib/swift"]),
    }
    return b


def test_library_newer_than_target_linked_strongly_is_an_error(capsys, built):
    code, rep = verify(capsys, built["rdma_strong"], "--min-macos", "15.0")
    assert code == 1
    assert rules(rep) == {("library-too-new", "error")}
    (f,) = rep["findings"]
    assert RDMA in f["message"] and "26.2" in f["message"] and "15.0" in f["message"]
    assert "GGML_RPC_RDMA=OFF" in f["hint"]


def test_library_new_enough_for_the_target_is_clean(capsys, built):
    code, rep = verify(capsys, built["rdma_strong"], "--min-macos", "26.2")
    assert code == 0 and rep["findings"] == []


def test_library_newer_than_target_linked_weakly_is_clean(capsys, built):
    code, rep = verify(capsys, built["rdma_weak"], "--min-macos", "15.0")
    assert code == 0, rep["findings"]
    kinds = {d["name"]: d["kind"] for d in rep["slices"][0]["dylibs"]}
    assert kinds[RDMA] == "weak"


@pytest.mark.parametrize("name", ["fm_strong", "fm_strong_x86"])
def test_framework_newer_than_target_strongly_is_an_error(capsys, built, name):
    code, rep = verify(capsys, built[name], "--min-macos", "14.0")
    assert code == 1
    assert rules(rep) == {("library-too-new", "error")}
    assert "FoundationModels" in rep["findings"][0]["message"]


def test_framework_newer_than_target_weakly_is_clean(capsys, built):
    code, rep = verify(capsys, built["fm_weak"], "--min-macos", "14.0")
    assert code == 0, rep["findings"]


def test_table_verdict_names_the_too_new_library(capsys, built):
    code = run(["verify", str(built["fm_strong"])])
    out = capsys.readouterr().out
    assert code == 1
    assert "first shipped in macOS 26.0" in out and "library-too-new" in out


@pytest.mark.parametrize("name", ["runner_rpath", "home_rpath", "relative_rpath"])
def test_rpath_into_the_build_machine_is_an_error_without_rpath_dependency(capsys, built, name):
    code, rep = verify(capsys, built[name])
    assert code == 1
    assert rules(rep) == {("host-rpath", "error")}
    assert "stray-rpath" not in {f["rule"] for f in rep["findings"]}


def test_system_rpath_is_only_a_stray_warning(capsys, built):
    code, rep = verify(capsys, built["system_rpath"])
    assert code == 0
    assert rules(rep) == {("stray-rpath", "warning")}


def test_every_availability_entry_names_its_source():
    from llamabuild.inspect.policy import allowlist

    data = allowlist()["macho"]
    for table in ("libraries", "frameworks", "symbols", "non_public"):
        for group in data[table]:
            assert group["source"].strip(), (table, group)
    assert data["rpath"]["source"]


def test_macos_recipes_turn_off_auto_detected_rdma():
    from llamabuild.config.recipes import load_recipe

    for name in ("macos-arm64-metal", "macos-arm64-cpu-cross", "macos-universal"):
        assert load_recipe(name).cache_dict["GGML_RPC_RDMA"] is False, name


ACCELERATE = "/System/Library/Frameworks/Accelerate.framework/Versions/A/Accelerate"
NEWLAPACK = "_cblas_sgemm$NEWLAPACK$ILP64"
NEWLAPACK_LP64 = "_cblas_dgemm$NEWLAPACK"


def _link_accelerate(root: Path, name: str, arch: str, minos: str, weak: bool) -> Path:
    """A real executable that calls Accelerate's new-LAPACK sgemm/dgemm, as ggml does."""
    attr = "__attribute__((weak_import)) " if weak else ""
    main = (
        f'{attr}extern void sgemm_ilp64(void) __asm("{NEWLAPACK}");\n'
        f'{attr}extern void dgemm_lp64(void) __asm("{NEWLAPACK_LP64}");\n'
        "int main(int argc, char **argv) {\n"
        "  if (argc > 5) { sgemm_ilp64(); dgemm_lp64(); }\n  return 0;\n}\n"
    )
    exports = {
        "/usr/lib/libSystem.B.dylib": "symbols: [ dyld_stub_binder ]",
        ACCELERATE: f"symbols: [ '{NEWLAPACK}', '{NEWLAPACK_LP64}' ]",
    }
    classic = arch == "x86_64"  # classic bind opcodes (LC_DYLD_INFO_ONLY)
    return link_sources(
        root / name, {"m.c": main}, exports, arch=arch, minos=minos, classic=classic
    )


@pytest.fixture(scope="module")
def lapack(macho: MachOFactory) -> dict[tuple[str, str, bool], Path]:
    out = {}
    for arch in ("arm64", "x86_64"):
        for minos in ("13.0", "14.0"):
            for weak in (False, True):
                name = f"lapack_{arch}_{minos}_{'weak' if weak else 'strong'}"
                out[arch, minos, weak] = _link_accelerate(macho.root, name, arch, minos, weak)
    return out


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
@pytest.mark.parametrize("parser", ["auto", "lief"])
def test_newlapack_import_below_13_3_is_an_error(capsys, lapack, arch, parser):
    binary = lapack[arch, "13.0", False]
    code, rep = verify(capsys, binary, "--min-macos", "13.0", "--parser", parser, "--symbols")
    assert code == 1
    by_rule = {f["rule"]: f for f in rep["findings"]}
    assert set(by_rule) == {"non-public-symbol", "symbol-too-new"}
    assert NEWLAPACK in by_rule["non-public-symbol"]["message"]
    assert "ITMS-90338" in by_rule["non-public-symbol"]["message"]
    assert NEWLAPACK_LP64 in by_rule["symbol-too-new"]["message"]
    assert "13.3" in by_rule["symbol-too-new"]["message"]
    (sl,) = rep["slices"]
    assert sl["imports"][ACCELERATE] == 2
    names = {(s["name"], s["dylib"], s["weak"]) for s in sl["symbols"]}
    assert (NEWLAPACK, ACCELERATE, False) in names


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
@pytest.mark.parametrize("parser", ["auto", "lief"])
def test_newlapack_import_at_14_is_clean(capsys, lapack, arch, parser):
    code, rep = verify(capsys, lapack[arch, "14.0", False], "--parser", parser)
    assert code == 0, rep["findings"]
    assert rep["findings"] == []


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_weak_newlapack_import_is_not_too_new_but_still_non_public(capsys, lapack, arch):
    code, rep = verify(capsys, lapack[arch, "13.0", True], "--min-macos", "13.0", "--symbols")
    assert code == 1
    assert {f["rule"] for f in rep["findings"]} == {"non-public-symbol"}
    weak = {s["name"]: s["weak"] for s in rep["slices"][0]["symbols"]}
    assert weak[NEWLAPACK] is True and weak[NEWLAPACK_LP64] is True


def test_symbol_count_shown_per_dependency_in_the_table(capsys, lapack):
    code = run(["verify", str(lapack["arm64", "14.0", False])])
    out = capsys.readouterr().out
    assert code == 0
    (row,) = [line for line in out.splitlines() if "Accelerate" in line]
    assert " 2 " in row.replace("│", " ")


METAL = "/System/Library/Frameworks/Metal.framework/Versions/A/Metal"
RESIDENCY = "_OBJC_CLASS_$_MTLResidencySetDescriptor"


def _link_metal_class(root: Path, name: str, minos: str, weak: bool) -> Path:
    """A real arm64 executable that references MTLResidencySetDescriptor's class object, as
    ggml-metal's `[MTLResidencySetDescriptor new]` does (weak: what @available makes of it)."""
    attr = "__attribute__((weak_import)) " if weak else ""
    main = (
        f'{attr}extern char residency_class __asm("{RESIDENCY}");\n'
        "char *volatile class_ref = &residency_class;  /* a data pointer: a bound import */\n"
        "int main(void) { return class_ref != 0; }\n"
    )
    exports = {
        "/usr/lib/libSystem.B.dylib": "symbols: [ dyld_stub_binder ]",
        METAL: "objc-classes: [ MTLResidencySetDescriptor ]",
    }
    return link_sources(root / name, {"m.c": main}, exports, minos=minos)


@pytest.mark.parametrize("weak", [False, True], ids=["strong", "weak"])
def test_a_metal_class_newer_than_minos_must_be_weak(capsys, macho, weak):
    """macOS 14 users crashed at launch on a strong _OBJC_CLASS_$_MTLResidencySetDescriptor
    (macOS 15+) import: an error at minos 14; a weak one (ggml's @available) passes."""
    binary = _link_metal_class(macho.root, f"metal_residency_{weak}", "14.0", weak)
    code, rep = verify(capsys, binary, "--min-macos", "14.0", "--symbols")
    (sl,) = rep["slices"]
    assert {(s["name"], s["weak"]) for s in sl["symbols"]} >= {(RESIDENCY, weak)}
    if weak:
        assert code == 0, rep["findings"]
    else:
        assert code == 1
        (f,) = [f for f in rep["findings"] if f["rule"] == "symbol-too-new"]
        assert RESIDENCY in f["message"] and "15.0" in f["message"] and "14.0" in f["message"]
    code, _ = verify(capsys, binary, "--min-macos", "15.0")
    assert code == 0  # at minos 15 the class exists everywhere
