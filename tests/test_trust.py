"""Whose signature is it? The CMS signature verified and its chain followed to Apple's roots
(llamabuild/inspect/trust.py), on Apple's real CA certificates and on apps signed here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.inspect.cms import parse_signed_data
from llamabuild.inspect.integrity import integrity_findings
from llamabuild.inspect.trust import anchors, chain_problem, signature_problem
from tests.fixtures.appstore import bare_app
from tests.fixtures.cms import apple_issued, make_identity, make_p12, sign_cms
from tests.fixtures.macho import MachOFactory, system

PASSWORD = "pw"
APPLE_PUBLISHED = {  # https://www.apple.com/certificateauthority/ : SHA-256 fingerprints
    "Apple Root CA": "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024",
    "Apple Root CA - G3": "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179",
}
APP_STORE_OID = "1.2.840.113635.100.6.1.7"


def test_the_pinned_roots_are_apples_published_ones() -> None:
    import tomllib

    from llamabuild.core.resources import data_file, data_text

    table = tomllib.loads(data_text("apple_trust.toml"))
    for name, entry in table["roots"].items():
        assert entry["sha256"] == APPLE_PUBLISHED[name]
        assert hashlib.sha256(data_file(entry["file"]).read_bytes()).hexdigest() == entry["sha256"]


def test_every_shipped_intermediate_chains_to_a_pinned_root() -> None:
    """Real Apple certificates, real signatures: each CA that issues signing certificates
    (Developer ID, WWDR) verifies up to Apple Root CA or Apple Root CA - G3."""
    from asn1crypto import x509

    from llamabuild.inspect.cms import _certificate

    real = anchors()
    for der in real.intermediates:
        cert = _certificate(x509.Certificate.load(der))
        assert chain_problem(cert, []) is None, cert.subject_cn


def test_a_self_signed_certificate_does_not_chain() -> None:
    forged = make_identity("Apple Distribution: Forged (ABCDE12345)")
    cms = parse_signed_data(sign_cms(b"cd", forged, detached=True))
    assert cms.leaf is not None
    problem = chain_problem(cms.leaf, cms.certificates)
    assert problem and "'Apple Distribution: Forged (ABCDE12345)' is self-signed" in problem
    assert signature_problem(cms.signers[0]) is None  # a valid signature, by nobody Apple knows


def test_a_changed_signed_attribute_fails_the_signature() -> None:
    dev = apple_issued("Developer ID Application: Example Corp (ABCDE12345)", developer_id=True)
    der = bytearray(sign_cms(b"cd", dev, detached=True))
    cms = parse_signed_data(bytes(der))
    attrs = cms.signers[0].signed_attrs
    assert attrs is not None and signature_problem(cms.signers[0]) is None
    at = bytes(der).find(attrs[4:40])  # inside the signed attributes as sent
    der[at + 20] ^= 0x01
    changed = parse_signed_data(bytes(der))
    assert "does not verify" in (signature_problem(changed.signers[0]) or "")


@pytest.fixture
def app(tmp_path: Path, macho: MachOFactory) -> Path:
    return bare_app(tmp_path, macho.build("trust_arm", system("libSystem")))


def sign_app(app: Path, identity: object, tmp_path: Path) -> None:
    import apple_platform

    p12 = make_p12(tmp_path / "id.p12", identity, PASSWORD)  # type: ignore[arg-type]
    signer = apple_platform.Signer(p12=apple_platform.P12Key(path=str(p12), password=PASSWORD))
    apple_platform.sign(str(app), signer=signer, timestamp_url="none")


def verify_app(app: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]]]:
    code = run(["verify-app", str(app), "--json"])
    return code, json.loads(capsys.readouterr().out)["findings"]


@pytest.mark.parametrize(
    ("who", "rule", "names"),
    [
        ("self-signed", "signature-untrusted", "Apple Distribution: Self (ABCDE12345)"),
        ("apple, development", "signature-certificate-kind", "Apple Development: Jane"),
        ("apple, distribution", None, None),
    ],
)
def test_verify_app_names_an_untrusted_signer(
    app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], who: str, rule, names
) -> None:
    from cryptography import x509  # noqa: F401  (the fixture's identities need it)

    if who == "self-signed":
        identity = make_identity("Apple Distribution: Self (ABCDE12345)")
    elif who == "apple, development":
        identity = apple_issued("Apple Development: Jane Doe (ABCDE12345)")
    else:
        identity = apple_issued("Apple Distribution: Example Corp (ABCDE12345)", app_store=True)
    sign_app(app, identity, tmp_path)
    assert integrity_findings(app / "Contents" / "MacOS" / "My App") == []
    _code, findings = verify_app(app, capsys)
    trust = [f for f in findings if f["rule"].startswith("signature-")]
    if rule is None:
        assert trust == [], trust
    else:
        assert trust and trust[0]["rule"] == rule and names in trust[0]["message"], trust
        assert "Contents/MacOS/My App" in trust[0]["message"]


def test_a_leaf_cannot_issue_a_certificate() -> None:
    """A certificate Apple issued to a developer (a leaf, CA:FALSE) signing another is no
    chain to Apple: only a CA issues."""
    leaf = apple_issued("Apple Development: Jane Doe (ABCDE12345)")
    minted = make_identity("Developer ID Application: Minted (ABCDE12345)", issuer=leaf)
    cms = parse_signed_data(sign_cms(b"cd", minted, detached=True, extra_certs=[leaf]))
    assert cms.leaf is not None
    problem = chain_problem(cms.leaf, cms.certificates)
    assert problem and "Minted" in problem
