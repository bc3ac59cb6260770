"""Required-reason APIs: categories from real imports, PrivacyInfo.xcprivacy read and written."""

from __future__ import annotations

import json
import os
import plistlib
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from llamabuild.appstore import privacy
from llamabuild.cli import run
from llamabuild.inspect import inspect_binary
from tests.fixtures.appstore import (
    BOOT_TIME,
    FILE_TIMESTAMP,
    HELPER,
    AppBuilder,
    app_parts,
    manifest,
)
from tests.plugin_real_llama import RealBuild, build_real

__all__ = ["app_parts"]  # the module-scoped fixture
compile_only = pytest.mark.compile


def verify_app(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-app", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def generate(
    capsys: pytest.CaptureFixture[str], cwd: Path, *args: str | Path
) -> tuple[int, dict[str, Any]]:
    old = Path.cwd()
    os.chdir(cwd)  # llamabuild.toml is found in the working directory
    try:
        code = run(["privacy-manifest", *map(str, args), "--json"])
    finally:
        os.chdir(old)
    return code, json.loads(capsys.readouterr().out)


def config(where: Path, reasons: str) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "llamabuild.toml").write_text(f"[privacy]\nreasons = {{ {reasons} }}\n")
    return where


BOTH = f'{FILE_TIMESTAMP} = ["C617.1"], {BOOT_TIME} = ["35F9.1", "8FFB.1"]'


# --- the table and the symbol reader ----------------------------------------------------------

APPLE = "https://developer.apple.com/documentation/bundleresources/describing-use-of-required-reason-api"
# Apple's published list (the page above), each API as Apple names it -> the symbol a binary
# imports to use it; None: a selector or a Swift property, not a symbol (not detectable).
APPLE_APIS: dict[str, dict[str, str | None]] = {
    FILE_TIMESTAMP: {
        "creationDate": "NSFileCreationDate",
        "modificationDate": "NSFileModificationDate",
        "fileModificationDate": None,
        "contentModificationDateKey": "NSURLContentModificationDateKey",
        "creationDateKey": "NSURLCreationDateKey",
        "getattrlist(_:_:_:_:_:)": "getattrlist",
        "getattrlistbulk(_:_:_:_:_:)": "getattrlistbulk",
        "fgetattrlist(_:_:_:_:_:)": "fgetattrlist",
        "stat": "stat",
        "fstat(_:_:)": "fstat",
        "fstatat(_:_:_:_:)": "fstatat",
        "lstat(_:_:)": "lstat",
        "getattrlistat(_:_:_:_:_:_:)": "getattrlistat",
    },
    BOOT_TIME: {"systemUptime": None, "mach_absolute_time()": "mach_absolute_time"},
    "NSPrivacyAccessedAPICategoryDiskSpace": {
        "volumeAvailableCapacityKey": "NSURLVolumeAvailableCapacityKey",
        "volumeAvailableCapacityForImportantUsageKey": (
            "NSURLVolumeAvailableCapacityForImportantUsageKey"
        ),
        "volumeAvailableCapacityForOpportunisticUsageKey": (
            "NSURLVolumeAvailableCapacityForOpportunisticUsageKey"
        ),
        "volumeTotalCapacityKey": "NSURLVolumeTotalCapacityKey",
        "systemFreeSize": "NSFileSystemFreeSize",
        "systemSize": "NSFileSystemSize",
        "statfs(_:_:)": "statfs",
        "statvfs(_:_:)": "statvfs",
        "fstatfs(_:_:)": "fstatfs",
        "fstatvfs(_:_:)": "fstatvfs",
        "getattrlist(_:_:_:_:_:)": "getattrlist",
        "fgetattrlist(_:_:_:_:_:)": "fgetattrlist",
        "getattrlistat(_:_:_:_:_:_:)": "getattrlistat",
    },
    "NSPrivacyAccessedAPICategoryActiveKeyboards": {
        "activeInputModes": "OBJC_CLASS_$_UITextInputMode"
    },
    "NSPrivacyAccessedAPICategoryUserDefaults": {"UserDefaults": "OBJC_CLASS_$_NSUserDefaults"},
}


def test_table_covers_apples_published_list() -> None:
    """Every API on Apple's page (APPLE) that a binary reaches through a symbol is in the table,
    under the same category, and each category names that page as its source."""
    table = privacy.table()
    assert set(table) == set(APPLE_APIS)
    for category, apis in APPLE_APIS.items():
        assert table[category].source.startswith(APPLE), category
        missing = {
            api: sym for api, sym in apis.items() if sym and sym not in table[category].symbols
        }
        assert not missing, (category, missing)


def test_the_64_bit_inode_spellings_are_in_the_table() -> None:
    table = privacy.table()
    assert {"stat64", "fstat64", "lstat64"} <= table[FILE_TIMESTAMP].symbols
    assert {"statfs64", "fstatfs64"} <= table["NSPrivacyAccessedAPICategoryDiskSpace"].symbols
    assert privacy.symbol_key("_stat64") == "stat64"


def test_table_has_apples_five_categories_with_sources() -> None:
    table = privacy.table()
    assert list(table) == [
        FILE_TIMESTAMP,
        BOOT_TIME,
        "NSPrivacyAccessedAPICategoryDiskSpace",
        "NSPrivacyAccessedAPICategoryActiveKeyboards",
        "NSPrivacyAccessedAPICategoryUserDefaults",
    ]
    assert {"stat", "fstat", "lstat", "fstatat", "getattrlist"} <= table[FILE_TIMESTAMP].symbols
    assert {"statfs", "fstatfs", "statvfs", "getattrlist"} <= table[
        "NSPrivacyAccessedAPICategoryDiskSpace"
    ].symbols
    assert "mach_absolute_time" in table[BOOT_TIME].symbols
    assert "C617.1" in table[FILE_TIMESTAMP].reasons and "35F9.1" in table[BOOT_TIME].reasons
    assert all(c.source.startswith("https://developer.apple.com/") for c in table.values())


def test_symbol_spelling() -> None:
    assert privacy.symbol_key("_stat$INODE64") == "stat"
    assert privacy.symbol_key("_fstatfs64") == "fstatfs64"
    assert privacy.symbol_key("_OBJC_CLASS_$_NSUserDefaults") == "OBJC_CLASS_$_NSUserDefaults"


@compile_only
def test_categories_of_a_real_binary(app_parts: AppBuilder) -> None:
    found = privacy.categories_of(inspect_binary(app_parts.helper))
    assert found == {FILE_TIMESTAMP: ("_stat",), BOOT_TIME: ("_mach_absolute_time",)}
    assert privacy.categories_of(inspect_binary(app_parts.main)) == {}


# --- verify-app -------------------------------------------------------------------------------


@compile_only
def test_undeclared_categories_warn(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code, rep = verify_app(capsys, app_parts.make(tmp_path / "a", privacy=None))
    assert code == 0
    found = [f for f in rep["findings"] if f["rule"] == "privacy-api-undeclared"]
    assert [f["severity"] for f in found] == ["warning", "warning"] and len(rep["findings"]) == 2
    assert all(f["path"].endswith(f"My App.app/{HELPER}") for f in found)
    assert FILE_TIMESTAMP in found[0]["message"] and "_stat" in found[0]["message"]
    assert BOOT_TIME in found[1]["message"] and "ITMS-91053" in found[1]["message"]
    # one category declared: the other still warns
    half = manifest((FILE_TIMESTAMP, ["C617.1"]))
    code, rep = verify_app(capsys, app_parts.make(tmp_path / "b", privacy=half))
    assert [(f["rule"], BOOT_TIME in f["message"]) for f in rep["findings"]] == [
        ("privacy-api-undeclared", True)
    ]


@compile_only
def test_strict_makes_it_an_error(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code, rep = verify_app(capsys, app_parts.make(tmp_path, privacy=None), "--strict")
    assert code == 1
    assert {(f["rule"], f["severity"]) for f in rep["findings"]} == {
        ("privacy-api-undeclared", "error")
    }


INVALID = {
    "unknown category": manifest(("NSPrivacyAccessedAPICategoryFileTimestamps", ["C617.1"])),
    "reason of another category": manifest((FILE_TIMESTAMP, ["E174.1"]), (BOOT_TIME, ["35F9.1"])),
    "no reason": manifest((FILE_TIMESTAMP, []), (BOOT_TIME, ["35F9.1"])),
    "types not an array": plistlib.dumps({"NSPrivacyAccessedAPITypes": "stat"}),
    "not a plist": b"<plist><dict><key>x</key>",
    "array": plistlib.dumps(["NSPrivacyAccessedAPICategoryFileTimestamp"]),
}


@compile_only
@pytest.mark.parametrize("kind", sorted(INVALID))
def test_invalid_manifest(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path, kind: str
) -> None:
    code, rep = verify_app(capsys, app_parts.make(tmp_path, privacy=INVALID[kind]))
    assert code == 1
    bad = [f for f in rep["findings"] if f["rule"] == "privacy-manifest-invalid"]
    assert len(bad) == 1 and bad[0]["severity"] == "error", rep["findings"]
    if kind == "reason of another category":
        assert "E174.1" in bad[0]["message"] and "C617.1" in bad[0]["message"]
    if kind == "unknown category":
        assert f"did you mean '{FILE_TIMESTAMP}'" in bad[0]["message"]


@compile_only
def test_manifest_fifo_and_huge(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    for name, plant in (("fifo", os.mkfifo), ("huge", lambda p: os.truncate(p, 3 << 30))):
        app = app_parts.make(tmp_path / name)
        path = app / "Contents" / "Resources" / "PrivacyInfo.xcprivacy"
        if name == "fifo":
            path.unlink()
        plant(path)
        code, rep = verify_app(capsys, app)
        assert code == 1
        # a FIFO is never opened: the bundle walk flags it and it declares nothing
        expected = (
            {"special-file-in-bundle", "privacy-api-undeclared"}
            if name == "fifo"
            else {"privacy-manifest-invalid", "privacy-api-undeclared"}
        )
        assert {f["rule"] for f in rep["findings"]} == expected, rep["findings"]


# --- privacy-manifest -------------------------------------------------------------------------


@compile_only
def test_generated_manifest_silences_the_warning(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    out = tmp_path / "out dir" / "PrivacyInfo.xcprivacy"
    code, rep = generate(capsys, config(tmp_path / "proj", BOTH), app_parts.helper, "--out", out)
    assert code == 2 and "no such folder" in rep["error"] and not out.parent.exists()
    out.parent.mkdir()
    code, rep = generate(capsys, config(tmp_path / "proj", BOTH), app_parts.helper, "--out", out)
    assert code == 0 and rep["output"] == str(out)
    assert [(c["type"], c["reasons"]) for c in rep["categories"]] == [
        (FILE_TIMESTAMP, ["C617.1"]),
        (BOOT_TIME, ["35F9.1", "8FFB.1"]),
    ]
    assert out.read_text() == rep["manifest"]
    data = plistlib.loads(out.read_bytes())
    assert privacy.problems(data) == [] and privacy.declared(data) == {FILE_TIMESTAMP, BOOT_TIME}
    assert data["NSPrivacyTracking"] is False
    code, rep = verify_app(capsys, app_parts.make(tmp_path / "app", privacy=out.read_bytes()))
    assert (code, rep["findings"]) == (0, [])


@compile_only
def test_output_that_is_no_regular_file_is_never_replaced(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "a folder"
    folder.mkdir()
    proj = config(tmp_path / "proj", BOTH)
    for target in (fifo, Path("/dev/full"), folder):
        code, rep = generate(capsys, proj, app_parts.helper, "--out", target)
        assert code == 2 and "not a regular file" in rep["error"], target
    assert stat.S_ISFIFO(fifo.stat().st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)


@compile_only
def test_missing_reason_is_exit_2_naming_what_to_set(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    proj = config(tmp_path / "proj", f'{FILE_TIMESTAMP} = ["C617.1"]')
    out = tmp_path / "PrivacyInfo.xcprivacy"
    code, rep = generate(capsys, proj, app_parts.helper, "--out", out)
    assert code == 2 and not out.exists()
    assert BOOT_TIME in rep["error"]
    assert f'{BOOT_TIME} = ["<code>"]' in rep["hint"] and "35F9.1" in rep["hint"]


@pytest.mark.parametrize(
    ("reasons", "says"),
    [
        ('NSPrivacyAccessedAPICategoryFileTimestam = ["C617.1"]', "did you mean"),
        (f'{FILE_TIMESTAMP} = ["E174.1"]', "'E174.1' is not a reason code"),
        (f"{FILE_TIMESTAMP} = []", "no reason code"),
        (f'{FILE_TIMESTAMP} = "C617.1"', "must be a list"),
    ],
)
def test_bad_privacy_config_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, reasons: str, says: str
) -> None:
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xcf\xfa\xed\xfe")  # never read: the config is refused first
    code = run(
        [
            "privacy-manifest",
            str(binary),
            "--json",
            "--config",
            str(config(tmp_path, reasons) / "llamabuild.toml"),
        ]
    )
    rep = json.loads(capsys.readouterr().out)
    assert code == 2 and says in rep["error"], rep
    assert rep["hint"]


def test_elf_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, rep = generate(capsys, tmp_path, sys.executable)
    assert code == 2 and "Mach-O" in rep["error"]


def test_registered_and_documented() -> None:
    from llamabuild.cli.app import COMMANDS
    from llamabuild.schema import COMMAND_MODELS

    assert COMMANDS["privacy-manifest"] == "privacy" and "privacy-manifest" in COMMAND_MODELS


# --- the real llama-server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross_server(real_llama_build: RealBuild) -> Path:
    build = build_real("macos-arm64-cpu-cross")
    if build.returncode != 0:
        pytest.fail(f"macos-arm64-cpu-cross build failed: {build.result}")
    return build.binary


@pytest.mark.real_llama
@pytest.mark.slow
@compile_only
def test_real_llama_server(
    capsys: pytest.CaptureFixture[str], cross_server: Path, app_parts: AppBuilder, tmp_path: Path
) -> None:
    found = privacy.categories_of(inspect_binary(cross_server))
    sys.stderr.write(f"\nrequired-reason categories of {cross_server}: {found}\n")
    assert FILE_TIMESTAMP in found and "_stat" in found[FILE_TIMESTAMP]
    # _statvfs is in the symbol table's undefined symbols, not in the chained fixups
    assert "_statvfs" in found["NSPrivacyAccessedAPICategoryDiskSpace"]
    reasons = ", ".join(
        f'{k} = ["{next(iter(privacy.table()[k].reasons))}"]' for k in found if k != FILE_TIMESTAMP
    )
    proj = config(
        tmp_path / "proj", ", ".join(filter(None, [f'{FILE_TIMESTAMP} = ["C617.1"]', reasons]))
    )
    out = tmp_path / "PrivacyInfo.xcprivacy"
    code, rep = generate(capsys, proj, cross_server, "--out", out)
    assert code == 0 and [c["type"] for c in rep["categories"]] == list(found)
    bare = app_parts.make(tmp_path / "bare", helper=cross_server, privacy=None)
    code, rep = verify_app(capsys, bare)
    undeclared = [f for f in rep["findings"] if f["rule"] == "privacy-api-undeclared"]
    assert len(undeclared) == len(found)
    assert rep["required_reason_apis"][HELPER] == {k: list(v) for k, v in found.items()}
    app = app_parts.make(tmp_path / "declared", helper=cross_server, privacy=out.read_bytes())
    code, rep = verify_app(capsys, app)
    assert "privacy-api-undeclared" not in {f["rule"] for f in rep["findings"]}


@compile_only
def test_human_mode_prints_the_manifest(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code = run(
        [
            "privacy-manifest",
            str(app_parts.helper),
            "--config",
            str(config(tmp_path, BOTH) / "llamabuild.toml"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    data = plistlib.loads(captured.out.encode())  # stdout is the plist alone
    assert privacy.declared(data) == {FILE_TIMESTAMP, BOOT_TIME}
    assert "_mach_absolute_time" in captured.err
