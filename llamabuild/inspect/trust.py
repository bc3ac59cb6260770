"""Is a code signature Apple's? The CMS signature verified, its chain followed to Apple's roots.

cms.py parses; this verifies, with `cryptography` (the maintained crypto library):
- the signer's signature over its signed attributes (which carry the CodeDirectory's digest,
  checked by integrity.py), with the signer certificate's key;
- the certificate chain: each certificate directly issued by the next (signature and name),
  from the CMS's own certificates plus Apple's intermediates, ending at Apple Root CA or Apple
  Root CA - G3, pinned by sha256 (llamabuild/data/apple_trust.toml);
- the leaf's marker extension for a signing profile (Developer ID, App Store).
A self-made certificate carrying Apple's Developer ID extension fails the chain. Validity
dates are not judged here: a timestamped signature outlives its certificate.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from llamabuild.core.errors import ToolError
from llamabuild.core.resources import data_file, data_text
from llamabuild.inspect.cms import Certificate, Signer

MAX_CHAIN = 8
DIGESTS = {"sha1": "SHA1", "sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}


@dataclass(frozen=True)
class Anchors:
    roots: dict[str, bytes]  # sha256 hex -> DER of a trusted root
    intermediates: tuple[bytes, ...]
    leaf_oids: dict[str, tuple[str, ...]]  # profile -> marker extension OIDs


@cache
def anchors() -> Anchors:
    """apple_trust.toml with its certificate files, each checked against its sha256 pin."""
    table = tomllib.loads(data_text("apple_trust.toml"))

    def load(entry: dict[str, str]) -> bytes:
        der = data_file(entry["file"]).read_bytes()
        if hashlib.sha256(der).hexdigest() != entry["sha256"]:
            raise ToolError(
                f"llamabuild's copy of {entry['file']} does not match its pinned sha256",
                hint="reinstall llamabuild (pip install --force-reinstall llamabuild)",
            )
        return der

    return Anchors(
        roots={e["sha256"]: load(e) for e in table["roots"].values()},
        intermediates=tuple(load(e) for e in table["intermediates"].values()),
        leaf_oids={k: tuple(v) for k, v in table["leaf_oids"].items()},
    )


def _x509(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def signature_problem(signer: Signer) -> str | None:
    """The signer's signature over its signed attributes, checked with its certificate's key
    (None: it verifies; a CMS without signed attributes or certificate cannot be checked)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    cert = signer.certificate
    if cert is None or not cert.der or signer.signed_attrs is None:
        return "the CMS signature carries no signer certificate or signed attributes"
    digest = DIGESTS.get(signer.digest_algorithm)
    if digest is None:
        return f"the CMS signature uses digest {signer.digest_algorithm}"
    algorithm = getattr(hashes, digest)()
    try:
        key = _x509(cert.der).public_key()
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signer.signature, signer.signed_attrs, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signer.signature, signer.signed_attrs, ec.ECDSA(algorithm))
        else:
            return f"the signer's key is a {type(key).__name__}, not RSA or EC"
    except InvalidSignature:
        return "the CMS signature does not verify with its certificate: the signed data changed"
    except ValueError as exc:
        return f"the signer certificate cannot be read ({exc})"[:200]
    return None


def chain_problem(leaf: Certificate, carried: Sequence[Certificate]) -> str | None:
    """None when `leaf` chains to a pinned Apple root through the CMS's certificates and
    Apple's intermediates; else what stops it, naming the certificate."""
    trust = anchors()
    try:
        pool = [_x509(c.der) for c in carried if c.der]
        pool += [_x509(der) for der in trust.intermediates]
        pool += [_x509(der) for der in trust.roots.values()]
        current = _x509(leaf.der)
    except ValueError as exc:
        return f"a certificate of the signature cannot be read ({exc})"[:200]
    for _ in range(MAX_CHAIN):
        if _fingerprint(current) in trust.roots:
            return None
        issuer = next((c for c in pool if _issued(current, c)), None)
        if issuer is None:
            what = "self-signed" if current.issuer == current.subject else "issued by"
            by = "" if what == "self-signed" else f" {_cn(current.issuer)!r}"
            return (
                f"certificate {_cn(current.subject)!r} is {what}{by}: its chain does not reach "
                "Apple Root CA or Apple Root CA - G3"
            )
        current = issuer
    return f"certificate {leaf.subject_cn!r}: a chain longer than {MAX_CHAIN}"


def kind_problem(leaf: Certificate, profile: str) -> str | None:
    """The leaf must carry one of Apple's marker extensions for `profile`."""
    wanted = anchors().leaf_oids[profile]
    if set(wanted) & set(leaf.extension_oids):
        return None
    return f"certificate {leaf.subject_cn!r} has none of Apple's {profile} markers ({wanted[0]})"


def _issued(child: Any, parent: Any) -> bool:
    """`parent` issued `child`: names match and parent's key verifies child's signature (by
    hand, not verify_directly_issued_by, which refuses the SHA-1 of Apple's older WWDR CAs)."""
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if child.issuer != parent.subject or child == parent or not _is_ca(parent):
        return False
    key, algorithm = parent.public_key(), child.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except Exception:  # cryptography's InvalidSignature, or a key/algorithm mismatch
        return False
    return True


def _is_ca(cert: Any) -> bool:
    """Only a CA issues certificates: a leaf (even Apple's) signing another is no chain."""
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _fingerprint(cert: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def _cn(name: Any) -> str:
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()
