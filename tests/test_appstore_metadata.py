"""`verify-app` bundle metadata: Info.plist against the real Mach-Os of a bundle built here."""

from __future__ import annotations

import json
import os
import plistlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from tests.fixtures.appstore import (
    BOOT_TIME,
    FILE_TIMESTAMP,
    HELPER,
    SANDBOX,
    AppBuilder,
    app_parts,
    sign,
)

pytestmark = pytest.mark.compile
__all__ = ["app_parts"]  # the module-scoped fixture


def check(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-app", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def rules(rep: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["rule"], f["severity"]) for f in rep["findings"])


def test_clean_bundle_passes_and_lists_categories(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code, rep = check(capsys, app_parts.make(tmp_path))
    assert (code, rep["findings"]) == (0, [])
    assert rep["required_reason_apis"] == {
        HELPER: {FILE_TIMESTAMP: ["_stat"], BOOT_TIME: ["_mach_absolute_time"]}
    }


def test_human_output_names_the_categories(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    assert run(["verify-app", str(app_parts.make(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert f"required-reason APIs in {HELPER}: {FILE_TIMESTAMP}, {BOOT_TIME}" in out


def test_minos_newer_than_info_plist(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    app = app_parts.make(tmp_path, info={"LSMinimumSystemVersion": "13.5"})
    code, rep = check(capsys, app)
    assert code == 1
    assert rules(rep) == [("plist-minos-mismatch", "error")] * 2  # the app and the helper
    messages = sorted(f["message"] for f in rep["findings"])
    assert messages[0].startswith("Contents/MacOS/My App (arm64) needs macOS 14.0 but")
    assert "LSMinimumSystemVersion is 13.5" in messages[0] and "ITMS-90208" in messages[0]
    assert messages[1].startswith(f"{HELPER} (arm64) needs macOS 14.0")
    # equal versions, however spelled, pass
    app = app_parts.make(tmp_path / "b", info={"LSMinimumSystemVersion": "14"})
    assert check(capsys, app)[0] == 0


def test_minos_missing_or_not_a_version(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code, rep = check(capsys, app_parts.make(tmp_path, info={"LSMinimumSystemVersion": None}))
    assert (code, rules(rep)) == (1, [("plist-minos-missing", "error")])
    app = app_parts.make(tmp_path / "b", info={"LSMinimumSystemVersion": "$(MACOSX_TARGET)"})
    code, rep = check(capsys, app)
    assert (code, rules(rep)) == (1, [("info-plist-invalid", "error")])
    assert "ITMS-90265" in rep["findings"][0]["message"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"CFBundleExecutable": None}, "no CFBundleExecutable"),
        ({"CFBundleExecutable": "Other"}, "no Contents/MacOS/Other"),
        ({"CFBundleExecutable": "../Info.plist"}, "not a file name"),
        ({"CFBundleExecutable": 7}, "no CFBundleExecutable"),
    ],
)
def test_bundle_executable_named_and_present(
    capsys: pytest.CaptureFixture[str],
    app_parts: AppBuilder,
    tmp_path: Path,
    change: dict[str, Any],
    says: str,
) -> None:
    code, rep = check(capsys, app_parts.make(tmp_path, info=change))
    assert code == 1
    found = [f for f in rep["findings"] if f["rule"] == "bundle-executable-invalid"]
    assert len(found) == 1 and says in found[0]["message"], rep["findings"]


def test_bundle_executable_not_a_macho(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexec ./llama-server\n")
    code, rep = check(capsys, app_parts.make(tmp_path / "a", main=script))
    assert code == 1
    assert any(
        f["rule"] == "bundle-executable-invalid" and "not a Mach-O" in f["message"]
        for f in rep["findings"]
    )


def test_helper_with_application_identifier(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    ents = {**SANDBOX, "com.apple.application-identifier": "ABCDE12345.com.example.helper"}
    helper = sign(app_parts.helper, tmp_path / "h" / "llama-server", ents)
    code, rep = check(capsys, app_parts.make(tmp_path, helper=helper))
    assert (code, rules(rep)) == (1, [("helper-application-identifier", "error")])
    assert "ITMS-90885" in rep["findings"][0]["message"]
    assert "com.apple.application-identifier" in rep["findings"][0]["message"]
    ents = {**SANDBOX, "com.apple.developer.team-identifier": "ABCDE12345"}
    helper = sign(app_parts.helper, tmp_path / "t" / "llama-server", ents)
    code, rep = check(capsys, app_parts.make(tmp_path / "t", helper=helper))
    assert (code, rules(rep)) == (1, [("helper-application-identifier", "error")])


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _huge(path: Path) -> None:
    with path.open("wb") as fh:  # sparse: 2 GiB on paper, nothing on disk
        fh.truncate(2 << 30)


HOSTILE_PLISTS: dict[str, Callable[[Path], object]] = {
    "garbage": lambda p: p.write_bytes(b"\x00\x01not a plist at all"),
    "truncated binary": lambda p: p.write_bytes(
        plistlib.dumps({"a": 1}, fmt=plistlib.FMT_BINARY)[:-9]
    ),
    "array": lambda p: p.write_bytes(plistlib.dumps([1, 2])),
    "deep": lambda p: p.write_bytes(b"<plist><array>" * 50_000),
    "empty": lambda p: p.write_bytes(b""),
    # plistlib's own IndexError / LookupError (not InvalidFileException) on these two
    "key outside a dict": lambda p: p.write_bytes(b"<plist><key>a</key></plist>"),
    "unknown encoding": lambda p: p.write_bytes(b'<?xml version="1.0" encoding="UTF88"?><plist/>'),
    "fifo": _fifo,
    "huge": _huge,
    "directory": lambda p: p.mkdir(),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PLISTS))
def test_hostile_info_plist_is_a_finding(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path, kind: str
) -> None:
    app = app_parts.make(tmp_path)
    plist = app / "Contents" / "Info.plist"
    plist.unlink()
    HOSTILE_PLISTS[kind](plist)
    code, rep = check(capsys, app)
    assert code == 1
    found = [f for f in rep["findings"] if f["rule"] == "info-plist-invalid"]
    assert len(found) == 1, rep["findings"]
    assert found[0]["message"].startswith("Contents/Info.plist")
    assert "dsym" not in found[0]["hint"].lower()  # a bundle's hint, not the dSYM reader's


def test_missing_info_plist(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    app = app_parts.make(tmp_path)
    (app / "Contents" / "Info.plist").unlink()
    code, rep = check(capsys, app)
    assert (code, rules(rep)) == (1, [("info-plist-invalid", "error")])
    assert "no such file" in rep["findings"][0]["message"]
