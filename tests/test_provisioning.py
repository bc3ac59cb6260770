"""embedded.provisionprofile: real CMS SignedData made here (self-signed certificate), checked
against the real signed main executable of a bundle built here."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llamabuild.appstore.provisioning import parse_profile, value_allowed, wildcard_match
from llamabuild.cli import run
from llamabuild.inspect.cms import parse_signed_data
from tests.fixtures.appstore import (
    APP_ENTITLEMENTS,
    BUNDLE_ID,
    TEAM,
    AppBuilder,
    app_parts,
    cms_profile,
    profile_plist,
    sign,
)

pytestmark = pytest.mark.compile
__all__ = ["app_parts"]  # the module-scoped fixture


def check(capsys: pytest.CaptureFixture[str], app: Path) -> tuple[int, dict[str, Any]]:
    code = run(["verify-app", str(app), "--json"])
    return code, json.loads(capsys.readouterr().out)


def only(rep: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    """The findings of `rule`, after asserting no other rule fired."""
    assert {f["rule"] for f in rep["findings"]} == {rule}, rep["findings"]
    return [f for f in rep["findings"] if f["rule"] == rule]


def test_profile_is_real_cms_with_the_plist_inside(app_parts: AppBuilder) -> None:
    der = app_parts.profile()
    signed = parse_signed_data(der, what="profile")
    assert signed.content is not None
    assert plistlib.loads(signed.content)["TeamIdentifier"] == [TEAM]
    assert signed.certificates[0].subject_cn == "llamabuild test profile signer"
    profile = parse_profile(der)
    assert profile.team_ids == (TEAM,) and profile.platforms == ("OSX",)
    assert profile.expires > datetime.now(UTC)
    openssl = shutil.which("openssl")
    if openssl:  # a second, independent CMS reader agrees on the content
        out = subprocess.run(
            [openssl, "cms", "-verify", "-noverify", "-inform", "DER"],
            input=der,
            capture_output=True,
            check=True,
        ).stdout
        assert out == signed.content


def test_the_main_executable_carries_the_team(app_parts: AppBuilder) -> None:
    from llamabuild.inspect import inspect_binary

    sig = inspect_binary(app_parts.main).slices[0].signature
    assert sig is not None and sig.team_id == TEAM
    assert sig.entitlements == APP_ENTITLEMENTS


def test_expired_profile(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    expired = datetime(2025, 3, 1, 12, 0)
    code, rep = check(
        capsys, app_parts.make(tmp_path, profile=app_parts.profile(ExpirationDate=expired))
    )
    (f,) = only(rep, "provisioning-expired")
    assert code == 1 and "expired on 2025-03-01 12:00 UTC" in f["message"]


def test_team_mismatch(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    profile = app_parts.profile(TeamIdentifier=["ZZZZZ99999"])
    code, rep = check(capsys, app_parts.make(tmp_path, profile=profile))
    (f,) = only(rep, "provisioning-team-mismatch")
    assert code == 1 and TEAM in f["message"] and "ZZZZZ99999" in f["message"]


def test_ios_profile_in_a_mac_app(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    code, rep = check(capsys, app_parts.make(tmp_path, profile=app_parts.profile(Platform=["iOS"])))
    (f,) = only(rep, "provisioning-platform")
    assert code == 1 and "iOS" in f["message"]


def _entitlements(**changes: Any) -> dict[str, Any]:
    ents: dict[str, Any] = dict(profile_plist()["Entitlements"])
    for key, value in changes.items():
        if value is None:
            ents.pop(key.replace("_", "-"), None)
        else:
            ents[key] = value
    return ents


@pytest.mark.parametrize(
    ("entitlements", "key"),
    [
        (_entitlements(keychain_access_groups=None), "keychain-access-groups"),
        (
            {**_entitlements(), "keychain-access-groups": ["OTHER.*"]},
            "keychain-access-groups",
        ),
        (
            {**_entitlements(), "com.apple.application-identifier": f"{TEAM}.com.example.other"},
            "com.apple.application-identifier",
        ),
    ],
)
def test_entitlement_not_in_profile(
    capsys: pytest.CaptureFixture[str],
    app_parts: AppBuilder,
    tmp_path: Path,
    entitlements: dict[str, Any],
    key: str,
) -> None:
    profile = app_parts.profile(Entitlements=entitlements)
    code, rep = check(capsys, app_parts.make(tmp_path, profile=profile))
    (f,) = only(rep, "entitlement-not-in-profile")
    assert code == 1 and key in f["message"]


def test_wildcard_app_id_profile_allows_the_app(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    ents = {**_entitlements(), "com.apple.application-identifier": f"{TEAM}.*"}
    code, rep = check(
        capsys, app_parts.make(tmp_path, profile=app_parts.profile(Entitlements=ents))
    )
    assert (code, rep["findings"]) == (0, [])


def test_no_profile(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path
) -> None:
    """TN3125: restricted entitlements need a profile; sandbox-only apps need none."""
    code, rep = check(capsys, app_parts.make(tmp_path / "a", profile=None))
    found = only(rep, "entitlement-not-in-profile")
    claimed = {
        "com.apple.application-identifier",
        "com.apple.developer.team-identifier",
        "keychain-access-groups",
    }
    assert code == 1 and len(found) == len(claimed)
    assert all(any(k in f["message"] for k in claimed) for f in found)
    sandboxed = {"com.apple.security.app-sandbox": True, "com.apple.security.network.server": True}
    main = sign(app_parts.main, tmp_path / "m" / "My App", sandboxed, team=TEAM)
    code, rep = check(capsys, app_parts.make(tmp_path / "b", main=main, profile=None))
    assert (code, rep["findings"]) == (0, [])


def test_wildcard_and_array_semantics() -> None:
    assert wildcard_match(f"{TEAM}.*", f"{TEAM}.{BUNDLE_ID}")
    assert not wildcard_match(f"{TEAM}.*", f"OTHER.{BUNDLE_ID}")
    assert wildcard_match("*", "anything") and not wildcard_match("a.b", "a.bc")
    allowed = [f"{TEAM}.*", "group.shared"]
    assert value_allowed([f"{TEAM}.one", "group.shared"], allowed)
    assert not value_allowed([f"{TEAM}.one", "group.other"], allowed)
    assert value_allowed("production", ["development", "production"])
    assert value_allowed(False, True) and value_allowed(True, True)
    assert not value_allowed(True, False)
    assert not value_allowed(["x"], "y")


def _write_fifo(path: Path) -> None:
    os.mkfifo(path)


def _write_huge(path: Path) -> None:
    with path.open("wb") as fh:
        fh.truncate(64 << 20)


def _hostile(parts: AppBuilder) -> dict[str, Any]:
    good = parts.profile()
    return {
        "truncated CMS": good[: len(good) // 2],
        "a bare plist": plistlib.dumps(profile_plist()),
        "CMS of garbage": cms_profile(parts.signer, b"\x00not a plist"),
        "CMS of an array": cms_profile(parts.signer, plistlib.dumps([1])),
        "no ExpirationDate": parts.profile(ExpirationDate=None),
        "Platform a string": parts.profile(Platform="OSX"),
        "empty": b"",
        "fifo": _write_fifo,
        "huge": _write_huge,
    }


HOSTILE = [
    "truncated CMS",
    "a bare plist",
    "CMS of garbage",
    "CMS of an array",
    "no ExpirationDate",
    "Platform a string",
    "empty",
    "fifo",
    "huge",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_profile_is_a_finding(
    capsys: pytest.CaptureFixture[str], app_parts: AppBuilder, tmp_path: Path, kind: str
) -> None:
    app = app_parts.make(tmp_path, profile=None)
    path = app / "Contents" / "embedded.provisionprofile"
    plant = _hostile(app_parts)[kind]
    if callable(plant):
        plant(path)
    else:
        path.write_bytes(plant)
    code, rep = check(capsys, app)
    if kind == "fifo":  # the bundle walk flags it too (codesign cannot seal a FIFO)
        rep["findings"] = [f for f in rep["findings"] if f["rule"] != "special-file-in-bundle"]
    (f,) = only(rep, "provisioning-invalid")
    assert code == 1 and f["message"].startswith("Contents/embedded.provisionprofile: ")
    assert "Traceback" not in f["message"]


def test_expiry_is_compared_in_utc(app_parts: AppBuilder) -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=5)).replace(tzinfo=None)
    assert parse_profile(app_parts.profile(ExpirationDate=soon)).expires > datetime.now(UTC)
