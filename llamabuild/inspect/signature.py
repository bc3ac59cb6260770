"""Pure parser of an embedded code signature (SuperBlob) into a Signature.

Read back after signing to prove what was signed: identifier, flags, entitlements. Big-endian
blobs, every offset bounds-checked: a corrupt signature yields what could be read, never a crash.
"""

from __future__ import annotations

import plistlib
import struct
from typing import Any

from llamabuild.inspect.binary import Signature
from llamabuild.tools.signer import flag_names

CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_EMBEDDED_ENTITLEMENTS = 0xFADE7171
CSMAGIC_BLOBWRAPPER = 0xFADE0B01
CSSLOT_SIGNATURESLOT = 0x10000


def _cstr(blob: bytes, off: int) -> str | None:
    if not 0 < off < len(blob):
        return None
    end = blob.find(b"\0", off)
    return blob[off : end if end >= 0 else len(blob)].decode("utf-8", "replace")


def _blobs(data: bytes) -> list[tuple[int, bytes]]:
    if len(data) < 12:
        return []
    magic, _length, count = struct.unpack_from(">III", data, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        return []
    out: list[tuple[int, bytes]] = []
    for i in range(min(count, 64)):
        pos = 12 + 8 * i
        if pos + 8 > len(data):
            break
        slot, off = struct.unpack_from(">II", data, pos)
        if off + 8 > len(data):
            continue
        _m, blen = struct.unpack_from(">II", data, off)
        out.append((slot, data[off : off + max(8, min(blen, len(data) - off))]))
    return out


def parse_signature(data: bytes) -> Signature:
    identifier = team = None
    flags: tuple[str, ...] = ()
    entitlements: dict[str, Any] | None = None
    cms_present = False
    for slot, blob in _blobs(data):
        magic = struct.unpack_from(">I", blob, 0)[0]
        if magic == CSMAGIC_CODEDIRECTORY and len(blob) >= 44 and identifier is None:
            version, cd_flags = struct.unpack_from(">II", blob, 8)
            ident_off = struct.unpack_from(">I", blob, 20)[0]
            identifier = _cstr(blob, ident_off)
            flags = flag_names(cd_flags)
            if version >= 0x20200 and len(blob) >= 52:
                team = _cstr(blob, struct.unpack_from(">I", blob, 48)[0])
        elif magic == CSMAGIC_EMBEDDED_ENTITLEMENTS:
            try:
                value = plistlib.loads(blob[8:])
            except Exception:
                value = None
            entitlements = value if isinstance(value, dict) else None
        elif slot == CSSLOT_SIGNATURESLOT and magic == CSMAGIC_BLOBWRAPPER and len(blob) > 8:
            cms_present = True
    return Signature(
        identifier=identifier,
        flags=flags,
        entitlements=entitlements,
        adhoc="adhoc" in flags or not cms_present,
        linker_signed="linker-signed" in flags,
        team_id=team,
    )
