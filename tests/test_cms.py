"""llamabuild.inspect.cms on real CMS SignedData made in the session (cryptography's PKCS#7
builder, RFC 3161 tokens built with asn1crypto) and hostile bytes."""

from __future__ import annotations

import datetime
import plistlib

import pytest

from llamabuild.core.errors import InputError
from llamabuild.inspect.cms import DEVELOPER_ID_APPLICATION_OID, parse_signed_data
from tests.fixtures.cms import make_identity, sign_cms


@pytest.fixture(scope="module")
def dev_id():
    return make_identity(developer_id=True)


@pytest.fixture(scope="module")
def tsa():
    return make_identity("Example TSA", "TSA", code_signing=False, timestamping=True)


def test_attached_content_and_certificate(dev_id):
    profile = plistlib.dumps({"TeamIdentifier": ["ABCDE12345"], "Name": "p"})
    sd = parse_signed_data(sign_cms(profile, dev_id))
    assert sd.content == profile
    assert sd.content_type == "data"
    assert sd.timestamp is None
    leaf = sd.leaf
    assert leaf is not None
    assert leaf.team_id == "ABCDE12345"
    assert leaf.subject_cn.startswith("Developer ID Application:")
    assert leaf.developer_id_application
    assert DEVELOPER_ID_APPLICATION_OID in leaf.extension_oids
    assert leaf.extended_key_usages == ("1.3.6.1.5.5.7.3.3",)
    assert leaf.self_signed
    assert leaf.valid_at(datetime.datetime.now(datetime.UTC))
    assert len(sd.signers) == 1
    assert sd.signers[0].digest_algorithm == "sha256"


def test_detached_with_timestamp(dev_id, tsa):
    sd = parse_signed_data(sign_cms(b"code directory", dev_id, detached=True, timestamp=tsa))
    assert sd.content is None
    ts = sd.timestamp
    assert ts is not None
    assert ts.hash_algorithm == "sha256"
    assert abs(ts.gen_time - datetime.datetime.now(datetime.UTC)).total_seconds() < 600
    assert [c.subject_cn for c in ts.tsa_certificates] == ["Example TSA"]


def test_plain_certificate_is_not_developer_id():
    sd = parse_signed_data(sign_cms(b"x", make_identity("Apple Development: J", "T1")))
    assert sd.leaf is not None
    assert not sd.leaf.developer_id_application


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x30", b"\x30\x82\xff\xff" + b"\0" * 10, b"not der at all", b"\x30\x03\x06\x01\x00"],
)
def test_hostile_bytes_are_input_errors(blob):
    with pytest.raises(InputError, match="not a valid CMS SignedData"):
        parse_signed_data(blob)


def test_truncated_real_cms_is_an_input_error(dev_id):
    der = sign_cms(b"payload", dev_id)
    for cut in (len(der) // 2, len(der) - 1, 10):
        with pytest.raises(InputError):
            parse_signed_data(der[:cut])
