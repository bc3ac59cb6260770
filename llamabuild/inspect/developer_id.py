"""Developer ID readiness: what Apple's notary service refuses in a signed executable.

Shipping llama-server outside the store (the standalone-server preset) needs notarization,
which fails for a binary without the hardened runtime, without a secure (RFC 3161) timestamp
in its CMS signature, not signed by a Developer ID Application certificate, or carrying the
debug entitlement get-task-allow; `notarytool submit` even exits 0 when it says Invalid. These
checks find all four before the upload, per slice, from the file alone: flags and entitlements
from the SuperBlob, the signer's certificate and timestamp from the CMS blob (asn1crypto via
llamabuild.inspect.cms). The messages and hints are data (llamabuild/data/developer_id.toml).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llamabuild.core.findings import Finding, error
from llamabuild.core.mapped import open_mapped
from llamabuild.core.resources import data_text
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer
from llamabuild.inspect.cms import SignedData, parse_signed_data
from llamabuild.inspect.integrity import (
    CSMAGIC_BLOBWRAPPER,
    CSSLOT_SIGNATURESLOT,
    read_blobs,
    signature_location,
)
from llamabuild.inspect.signature import parse_signature
from llamabuild.inspect.trust import chain_problem

STANDALONE_PRESET = "standalone-server"
"""The entitlements preset for a server shipped outside the store (Developer ID)."""


@cache
def table() -> dict[str, dict[str, str]]:
    """llamabuild/data/developer_id.toml: check -> rule, notary message, hint, source."""
    data: dict[str, dict[str, str]] = tomllib.loads(data_text("developer_id.toml"))
    return data


@dataclass(frozen=True)
class SliceSigning:
    """What readiness needs of one slice's signature."""

    arch: str
    signed: bool = False
    flags: tuple[str, ...] = ()
    entitlements: dict[str, Any] | None = field(default=None, hash=False)
    cms: SignedData | None = field(default=None, hash=False)  # None: ad hoc or unsigned


def _slice(data: Buffer, raw: st.RawSlice, name: str) -> SliceSigning:
    located = signature_location(raw)
    if located is None:
        return SliceSigning(raw.arch)
    start, size = raw.offset + located[0], located[1]
    sig = parse_signature(bytes(data[start : start + size]))
    cms = None
    for blob in read_blobs(data, start, size, name, raw.arch):
        wrapper = blob.slot == CSSLOT_SIGNATURESLOT and blob.magic == CSMAGIC_BLOBWRAPPER
        if wrapper and blob.length > 8:  # an ad-hoc signature's wrapper is empty
            der = bytes(data[blob.start + 8 : blob.start + blob.length])
            cms = parse_signed_data(der, f"{name}: {raw.arch} CMS signature")
    return SliceSigning(raw.arch, True, sig.flags, sig.entitlements, cms)


def read_signing(path: Path) -> list[SliceSigning]:
    """Every slice's flags, entitlements and CMS signature, from the mapped file."""
    with open_mapped(path) as data:
        raws = st.read_slices(st.as_reader(data), len(data), str(path))
        return [_slice(data, raw, str(path)) for raw in raws]


def _problems(s: SliceSigning) -> list[tuple[str, str]]:
    """(check, what is wrong) for one slice; check names a table of developer_id.toml."""
    t = table()
    out: list[tuple[str, str]] = []
    leaf = s.cms.leaf if s.cms else None
    if not s.signed:
        out.append(("certificate", "not signed"))
    elif s.cms is None:
        who = "by the linker" if "linker-signed" in s.flags else "ad hoc"
        out.append(("certificate", f"signed {who}, with no certificate"))
    elif leaf is None or t["certificate"]["oid"] not in leaf.extension_oids:
        cn = leaf.subject_cn if leaf else None
        out.append(("certificate", f"signed by {cn!r}, not a Developer ID Application certificate"))
    else:  # Apple's marker is only worth something on a certificate Apple issued
        untrusted = chain_problem(leaf, s.cms.certificates)
        if untrusted:
            out.append(("certificate", untrusted))
    if "runtime" not in s.flags:
        out.append(("runtime", f"no hardened runtime flag (flags: {', '.join(s.flags) or 'none'})"))
    if s.cms is not None and s.cms.timestamp is None:
        out.append(("timestamp", "the CMS signature has no RFC 3161 timestamp token"))
    key = t["get-task-allow"]["key"]
    if s.entitlements and s.entitlements.get(key) is True:
        out.append(("get-task-allow", f"the entitlements set {key}"))
    return out


def readiness(slices: list[SliceSigning], path: str) -> list[Finding]:
    """Developer ID findings of every slice (pure): each names notarization's own message."""
    t = table()
    return [
        error(
            t[check]["rule"],
            f'{what}: notarization refuses it ("{t[check]["notary"]}")',
            arch=s.arch,
            path=path,
            hint=t[check]["hint"],
        )
        for s in slices
        for check, what in _problems(s)
    ]


def check_developer_id(path: Path, label: str | None = None) -> list[Finding]:
    """`verify --profile developer-id` and the standalone preset's read-back."""
    return readiness(read_signing(path), label or str(path))
