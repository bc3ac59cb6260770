"""CMS SignedData (PKCS#7) as plain data: a code signature's blob wrapper, a provisioning profile.

Parsed with asn1crypto (the maintained ASN.1/CMS library), never by hand: this module only turns
its objects into frozen dataclasses so policy code needs no ASN.1. What callers need:

- ``content``: the encapsulated content (a provisioning profile's plist; None when detached,
  as in a code signature, whose content is the CodeDirectory).
- ``certificates``: every X.509 certificate carried, with subject CN/OU (OU is Apple's team id),
  issuer, validity and extended key usages / Apple's Developer ID Application OID.
- ``signers``: each SignerInfo, matched to its certificate, with its RFC 3161 timestamp token
  (unsigned attribute 1.2.840.113549.1.9.16.2.14) when present.

Every input is untrusted: any parse failure is an InputError (exit 2), never a traceback.
API (stable; other modules import it)::

    sd = parse_signed_data(der)
    sd.content, sd.certificates, sd.signers, sd.timestamp, sd.leaf
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llamabuild.core.errors import InputError

DEVELOPER_ID_APPLICATION_OID = "1.2.840.113635.100.6.1.13"
"""Certificate extension marking an Apple Developer ID Application certificate."""
DEVELOPER_ID_INSTALLER_OID = "1.2.840.113635.100.6.1.14"
CODE_SIGNING_EKU = "1.3.6.1.5.5.7.3.3"
TIMESTAMP_TOKEN_OID = "1.2.840.113549.1.9.16.2.14"  # noqa: S105 (an OID)
"""id-aa-timeStampToken: RFC 3161 token in a SignerInfo's unsigned attributes."""
CD_HASHES_OID = "1.2.840.113635.100.9.1"
"""Apple's signed attribute listing every CodeDirectory's hash (a plist)."""
MAX_CMS_BYTES = 16 * 1024 * 1024
"""Provisioning profiles and code-signature CMS blobs are kilobytes; refuse absurd input."""


@dataclass(frozen=True)
class Certificate:
    """One X.509 certificate, reduced to what signing policy reads."""

    subject_cn: str | None
    subject_ou: str | None  # Apple puts the team identifier here
    subject_o: str | None
    issuer_cn: str | None
    serial: int
    not_before: datetime
    not_after: datetime
    extended_key_usages: tuple[str, ...]  # dotted OIDs
    extension_oids: tuple[str, ...]  # every extension's dotted OID
    sha256: str  # hex fingerprint of the DER
    self_signed: bool
    der: bytes = field(default=b"", repr=False, compare=False)  # for chain checks (trust.py)

    @property
    def developer_id_application(self) -> bool:
        """True when Apple's Developer ID Application marker extension is present."""
        return DEVELOPER_ID_APPLICATION_OID in self.extension_oids

    @property
    def team_id(self) -> str | None:
        return self.subject_ou

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when <= self.not_after


@dataclass(frozen=True)
class Timestamp:
    """An RFC 3161 timestamp token's TSTInfo: when and by which authority."""

    gen_time: datetime
    policy: str
    hash_algorithm: str
    tsa_certificates: tuple[Certificate, ...]


@dataclass(frozen=True)
class Signer:
    """One SignerInfo with its certificate (None if the CMS does not carry it)."""

    digest_algorithm: str
    signature_algorithm: str
    certificate: Certificate | None
    signing_time: datetime | None
    timestamp: Timestamp | None
    message_digest: bytes | None = None  # signed attribute: digest of the signed content
    signed_attrs: bytes | None = field(default=None, repr=False)  # DER, as the signature covers
    signature: bytes = field(default=b"", repr=False)
    cd_hashes: tuple[bytes, ...] = ()  # Apple's CDHashes attribute: every CodeDirectory's hash


@dataclass(frozen=True)
class SignedData:
    """A parsed CMS SignedData."""

    content_type: str
    content: bytes | None
    certificates: tuple[Certificate, ...]
    signers: tuple[Signer, ...]

    @property
    def timestamp(self) -> Timestamp | None:
        """The first signer's RFC 3161 timestamp (a "secure timestamp" for notarization)."""
        return next((s.timestamp for s in self.signers if s.timestamp), None)

    @property
    def leaf(self) -> Certificate | None:
        """The first signer's certificate: the identity that signed."""
        return next((s.certificate for s in self.signers if s.certificate), None)


def _name_attr(name: Any, key: str) -> str | None:
    value = name.native.get(key) if name is not None else None
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def _certificate(cert: Any) -> Certificate:
    tbs = cert["tbs_certificate"]
    eku = cert.extended_key_usage_value
    validity = tbs["validity"]
    return Certificate(
        subject_cn=_name_attr(cert.subject, "common_name"),
        subject_ou=_name_attr(cert.subject, "organizational_unit_name"),
        subject_o=_name_attr(cert.subject, "organization_name"),
        issuer_cn=_name_attr(cert.issuer, "common_name"),
        serial=int(cert.serial_number),
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
        extended_key_usages=tuple(e.dotted for e in eku) if eku is not None else (),
        extension_oids=tuple(e["extn_id"].dotted for e in tbs["extensions"]),
        sha256=hashlib.sha256(cert.dump()).hexdigest(),
        self_signed=cert.self_signed != "no",
        der=bytes(cert.dump()),
    )


def _certificates(signed: Any) -> list[tuple[Any, Certificate]]:
    out = []
    for choice in signed["certificates"] or ():
        if choice.name == "certificate":
            out.append((choice.chosen, _certificate(choice.chosen)))
    return out


def _match(sid: Any, certs: list[tuple[Any, Certificate]]) -> Certificate | None:
    for raw, cert in certs:
        if sid.name == "issuer_and_serial_number":
            isn = sid.chosen
            if isn["serial_number"].native == raw.serial_number and isn["issuer"] == raw.issuer:
                return cert
        elif sid.chosen.native == raw.key_identifier:
            return cert
    return None


def _attr(attrs: Any, oid: str) -> Any:
    for attr in attrs or ():
        if attr["type"].dotted == oid and len(attr["values"]):
            return attr["values"][0]
    return None


def _timestamp(token: Any) -> Timestamp | None:
    from asn1crypto import tsp

    inner = token["content"]
    econtent = inner["encap_content_info"]
    if econtent["content_type"].native != "tst_info":
        return None
    raw = econtent["content"].parsed
    tst = raw if isinstance(raw, tsp.TSTInfo) else tsp.TSTInfo.load(raw.native)
    return Timestamp(
        gen_time=tst["gen_time"].native,
        policy=tst["policy"].dotted,
        hash_algorithm=tst["message_imprint"]["hash_algorithm"]["algorithm"].native,
        tsa_certificates=tuple(c for _r, c in _certificates(inner)),
    )


def _cd_hashes(attrs: Any) -> tuple[bytes, ...]:
    """Apple's CDHashes signed attribute: a plist {cdhashes: [data, ...]} in an OCTET STRING."""
    value = _attr(attrs, CD_HASHES_OID)
    if value is None:
        return ()
    from llamabuild.core.plists import parse

    try:
        listed = parse(bytes(value.native)).get("cdhashes")
    except (ValueError, TypeError):
        return ()
    return tuple(bytes(h) for h in listed or () if isinstance(h, bytes))


def _signer(info: Any, certs: list[tuple[Any, Certificate]]) -> Signer:
    signing_time = _attr(info["signed_attrs"], "1.2.840.113549.1.9.5")
    digest = _attr(info["signed_attrs"], "1.2.840.113549.1.9.4")
    token = _attr(info["unsigned_attrs"], TIMESTAMP_TOKEN_OID)
    attrs = info["signed_attrs"]
    # The signature covers the attributes as a SET OF (tag 0x31), not as the [0] they are sent in
    signed_attrs = b"\x31" + attrs.dump()[1:] if len(attrs) else None
    return Signer(
        digest_algorithm=info["digest_algorithm"]["algorithm"].native,
        signature_algorithm=info["signature_algorithm"]["algorithm"].native,
        certificate=_match(info["sid"], certs),
        signing_time=signing_time.native if signing_time is not None else None,
        timestamp=_timestamp(token) if token is not None else None,
        message_digest=bytes(digest.native) if digest is not None else None,
        signed_attrs=signed_attrs,
        signature=bytes(info["signature"].native),
        cd_hashes=_cd_hashes(attrs),
    )


def parse_signed_data(der: bytes, what: str = "CMS signature") -> SignedData:
    """Parse DER (or BER) CMS ContentInfo holding SignedData; InputError if it is anything else.

    `what` names the input in the error ("embedded.provisionprofile", ...)."""
    from asn1crypto import cms

    if len(der) > MAX_CMS_BYTES:
        raise InputError(f"{what}: {len(der)} bytes, too large for a CMS signature")
    try:
        info = cms.ContentInfo.load(bytes(der))
        if info["content_type"].native != "signed_data":
            raise ValueError(f"content type {info['content_type'].native}, not signed_data")
        signed = info["content"]
        certs = _certificates(signed)
        econtent = signed["encap_content_info"]
        content = econtent["content"]
        return SignedData(
            content_type=str(econtent["content_type"].native),
            content=bytes(content.native) if content.native is not None else None,
            certificates=tuple(c for _r, c in certs),
            signers=tuple(_signer(s, certs) for s in signed["signer_infos"]),
        )
    except InputError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise InputError(
            f"{what}: not a valid CMS SignedData ({type(exc).__name__}: {exc})"[:300],
            hint="the file is truncated or not a signature; re-create or re-download it",
        ) from None
