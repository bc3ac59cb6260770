"""Developer ID readiness (llamabuild/inspect/developer_id.py): `verify --profile developer-id`
and the standalone-server preset's read-back, on real Mach-O binaries signed here by the rcodesign
engine with certificates made in the session (a Developer ID Application one carries Apple's
marker extension). The engine cannot reach a timestamp server here, so the positive case adds
a real RFC 3161 token (a TSTInfo signed by a TSA identity made here) to the engine's CMS as the
unsigned attribute Apple's codesign --timestamp adds: unsigned, so the signature stays valid."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.inspect.cms import parse_signed_data
from llamabuild.inspect.developer_id import SliceSigning, read_signing, readiness
from llamabuild.inspect.integrity import check_file, read_blobs
from tests.fixtures.cms import apple_issued, make_identity, make_p12, sign_cms, timestamp_token
from tests.fixtures.macho import MachOFactory, system
from tests.test_signature_integrity import superblob

PASSWORD = "pw-devid-Kx3"
RULES = (
    "developer-id-certificate",
    "developer-id-runtime",
    "developer-id-timestamp",
    "developer-id-get-task-allow",
)


@pytest.fixture(autouse=True)
def engine_not_codesign(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): None)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)


@pytest.fixture(scope="session")
def arm(macho: MachOFactory) -> Path:
    return macho.build("devid_arm", system("libSystem"))


@pytest.fixture(scope="session")
def fat(macho: MachOFactory, arm: Path) -> Path:
    return macho.fat(
        "devid_fat", [arm, macho.build("devid_x86", system("libSystem"), arch="x86_64")]
    )


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ids")
    dev = apple_issued("Developer ID Application: Example Corp (ABCDE12345)", developer_id=True)
    other = make_identity("Apple Development: Jane Doe (ABCDE12345)")
    return {
        "developer-id": make_p12(folder / "devid.p12", dev, PASSWORD),
        "development": make_p12(folder / "dev.p12", other, PASSWORD),
    }


@pytest.fixture(scope="session")
def tsa():
    return make_identity("Example TSA", "TSA", code_signing=False, timestamping=True)


def copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "dist dir" / "llama-server"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def fired(payload: dict[str, Any]) -> list[str]:
    return sorted(f["rule"] for f in payload["findings"] if f["rule"] in RULES)


def sign_standalone(capsys, target: Path, p12: Path | None, *extra: str):
    args = ["sign", str(target), "--preset", "standalone-server", "--no-timestamp", *extra]
    return cli_json(capsys, *args, *(["--p12", str(p12)] if p12 else []))


def add_timestamp(target: Path, tsa) -> None:
    """Add an RFC 3161 token over the signer's signature value to the slice's CMS blob, as
    the unsigned attribute id-aa-timeStampToken (what `codesign --timestamp` gets from
    Apple's TSA), inside the room the signer reserved in LC_CODE_SIGNATURE."""
    from asn1crypto import cms

    at, size, _raw = superblob(target)
    data = bytearray(target.read_bytes())
    (wrapper,) = [b for b in read_blobs(data, at, size, "t", "arm64") if b.slot == 0x10000]
    info = cms.ContentInfo.load(bytes(data[wrapper.start + 8 : wrapper.start + wrapper.length]))
    signer = info["content"]["signer_infos"][0]
    token = timestamp_token(signer["signature"].native, tsa).dump()
    signer["unsigned_attrs"] = cms.CMSAttributes(
        [{"type": "signature_time_stamp_token", "values": [cms.ContentInfo.load(token)]}]
    )
    info["content"]["signer_infos"] = cms.SignerInfos([signer])
    der = info.dump()
    end = wrapper.start + 8 + len(der)
    assert end <= at + size, "no room for the token in LC_CODE_SIGNATURE"
    data[wrapper.start : end] = struct.pack(">II", 0xFADE0B01, 8 + len(der)) + der
    struct.pack_into(">I", data, at + 4, end - at)  # the SuperBlob's length
    data[end : at + size] = bytes(at + size - end)
    target.write_bytes(bytes(data))


# --- the sign preset's read-back ------------------------------------------------------------


@pytest.mark.compile
def test_standalone_with_developer_id_but_no_timestamp(arm, identities, tmp_path, capsys):
    target = copy(arm, tmp_path)
    code, payload = sign_standalone(capsys, target, identities["developer-id"])
    assert code == 1
    assert payload["signed"] is True and payload["ok"] is False  # signed, not notarizable
    assert fired(payload) == ["developer-id-timestamp"]
    (f,) = [f for f in payload["findings"] if f["rule"] == "developer-id-timestamp"]
    assert "The signature does not include a secure timestamp." in f["message"]
    assert "--no-timestamp" in f["hint"]
    assert check_file(target)[0].findings == ()


@pytest.mark.compile
def test_standalone_with_a_development_certificate(fat, identities, tmp_path, capsys):
    target = copy(fat, tmp_path)
    code, payload = sign_standalone(capsys, target, identities["development"])
    assert code == 1
    cert = [f for f in payload["findings"] if f["rule"] == "developer-id-certificate"]
    assert sorted(f["arch"] for f in cert) == ["arm64", "x86_64"]  # every slice
    assert "'Apple Development: Jane Doe (ABCDE12345)'" in cert[0]["message"]


@pytest.mark.compile
def test_standalone_ad_hoc_is_local_testing_not_distribution(arm, tmp_path, capsys):
    target = copy(arm, tmp_path)
    code, payload = sign_standalone(capsys, target, None)
    assert code == 0 and fired(payload) == []  # no identity: no Developer ID verdict
    code, payload = cli_json(capsys, "verify", str(target), "--profile", "developer-id")
    assert code == 1
    assert fired(payload) == ["developer-id-certificate"]
    assert "signed ad hoc" in payload["findings"][-1]["message"]


@pytest.mark.compile
def test_no_runtime_and_get_task_allow(arm, identities, tmp_path, capsys):
    target = copy(arm, tmp_path)
    extra = ("--no-runtime", "--set", "com.apple.security.get-task-allow=true")
    code, payload = sign_standalone(capsys, target, identities["developer-id"], *extra)
    assert code == 1
    assert fired(payload) == [
        "developer-id-get-task-allow",
        "developer-id-runtime",
        "developer-id-timestamp",
    ]


# --- verify --profile developer-id ----------------------------------------------------------


@pytest.mark.compile
def test_ready_once_the_cms_carries_a_timestamp(arm, identities, tsa, tmp_path, capsys):
    target = copy(arm, tmp_path)
    sign_standalone(capsys, target, identities["developer-id"])
    add_timestamp(target, tsa)
    (s,) = read_signing(target)
    assert s.cms is not None and s.cms.timestamp is not None
    assert s.cms.leaf is not None and s.cms.leaf.developer_id_application
    code, payload = cli_json(capsys, "verify", str(target), "--profile", "developer-id")
    assert fired(payload) == []
    assert [f for f in payload["findings"] if f["rule"] == "signature-invalid"] == []
    assert code == 0, payload["findings"]
    code, payload = cli_json(capsys, "verify", str(target))  # the default profile: no verdict
    assert fired(payload) == []


@pytest.mark.compile
def test_linker_signature_and_unknown_profile(arm, capsys):
    code, payload = cli_json(capsys, "verify", str(arm), "--profile", "developer-id")
    assert code == 1
    assert fired(payload) == ["developer-id-certificate", "developer-id-runtime"]
    assert any("signed by the linker" in f["message"] for f in payload["findings"])
    assert run(["verify", str(arm), "--profile", "mac-app-store"]) == 2
    assert "unknown --profile" in capsys.readouterr().err


def test_readiness_from_real_cms(tsa):
    """The pure check on CMS made by cryptography's PKCS#7 builder."""
    dev = apple_issued("Developer ID Application: Example Corp (ABCDE12345)", developer_id=True)
    stamped = parse_signed_data(sign_cms(b"cd", dev, detached=True, timestamp=tsa))
    bare = parse_signed_data(sign_cms(b"cd", dev, detached=True))
    ok = SliceSigning(
        "arm64", True, ("runtime",), {"com.apple.security.app-sandbox": True}, stamped
    )
    assert readiness([ok], "x") == []
    late = SliceSigning("arm64", True, ("runtime",), None, bare)
    assert [f.rule for f in readiness([late], "x")] == ["developer-id-timestamp"]
    unsigned = SliceSigning("x86_64")
    assert [f.rule for f in readiness([unsigned], "x")] == [
        "developer-id-certificate",
        "developer-id-runtime",
    ]


def test_a_self_made_developer_id_certificate_is_refused(tsa):
    """A certificate anyone can make, carrying Apple's Developer ID extension, used to pass:
    its chain must reach Apple Root CA or Apple Root CA - G3 (llamabuild/data/apple_trust.toml)."""
    forged = make_identity("Developer ID Application: Forged (ABCDE12345)", developer_id=True)
    cms = parse_signed_data(sign_cms(b"cd", forged, detached=True, timestamp=tsa))
    signed = SliceSigning("arm64", True, ("runtime",), None, cms)
    (found,) = readiness([signed], "x")
    assert found.rule == "developer-id-certificate"
    assert "'Developer ID Application: Forged (ABCDE12345)' is self-signed" in found.message
    assert "Apple Root CA" in found.message
