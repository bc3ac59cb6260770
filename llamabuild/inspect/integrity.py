"""Signature integrity: recompute every CodeDirectory's hashes over the mapped file.

`verify` used to read a signature's identifier, flags and entitlements without checking that
its hashes still match the bytes: a helper stripped, lipo'd, patched or `cp`'d over after
signing passed, then died at launch with `Killed: 9` ("code or signature have been
modified"). This module recomputes, per slice and for every CodeDirectory (the primary one and
the alternates at slots 0x1000..), the code-page hashes (the CD's hash type and page size, up
to its code limit) and the special slots whose data is at hand: requirements (-2),
entitlements (-5), DER entitlements (-7) from the SuperBlob; Info.plist (-1) and the bundle's
CodeResources (-3) when the caller names them (a bundle's main executable).

Structure the kernel would refuse (a CD outside its SuperBlob, overlapping blobs, absurd slot
counts or hash offsets, a code limit past the slice) is an InputError (exit 2); hashes that do
not match are `signature-invalid` findings (exit 1) naming the first bad page's file range and
the likely cause. Pages are hashed from the mapping without copies; on an mmap the hashed pages
are dropped from the process's resident set as it goes, so a 170 MB binary costs no 170 MB.
"""

from __future__ import annotations

import hashlib
import itertools
import mmap
import stat
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error
from llamabuild.core.mapped import hash_mapped, open_mapped
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Buffer

RULE = "signature-invalid"
TRAILING = "signature-trailing-bytes"
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_BLOBWRAPPER = 0xFADE0B01
CSSLOT_CODEDIRECTORY = 0
CSSLOT_ALTERNATE_CODEDIRECTORIES = range(0x1000, 0x1005)
CSSLOT_SIGNATURESLOT = 0x10000
MAX_BLOBS = 64  # a real SuperBlob has at most ~10 entries
MAX_SPECIAL_SLOTS = 64  # Apple defines 7 (plus a few reserved); more is a corrupt CD
MIN_PAGE_SHIFT, MAX_PAGE_SHIFT = 9, 24  # 0 = one page; codesign uses 12 (4 KiB) and 14 (16 KiB)
RELEASE_EVERY = 8 << 20  # drop hashed pages of an mmap from the resident set every 8 MiB
DONTNEED: int | None = getattr(mmap, "MADV_DONTNEED", None)

# hashType -> (name, hashlib constructor, stored size)
HASH_TYPES: dict[int, tuple[str, Callable[..., Any], int]] = {
    1: ("sha1", hashlib.sha1, 20),
    2: ("sha256", hashlib.sha256, 32),
    3: ("sha256-truncated", hashlib.sha256, 20),
    4: ("sha384", hashlib.sha384, 48),
}

# special slot -> (what it seals, its SuperBlob slot or None for a file, cause of a mismatch)
SPECIAL_SLOTS: dict[int, tuple[str, str]] = {
    1: ("Info.plist", "Info.plist changed after signing (edit it first, then sign)"),
    2: ("requirements", "the requirements blob was replaced after signing"),
    3: (
        "resources (CodeResources)",
        "a bundle resource or _CodeSignature/CodeResources changed after signing",
    ),
    5: ("entitlements", "the entitlements blob was swapped after signing"),
    7: ("DER entitlements", "the DER entitlements blob was swapped after signing"),
}
CMS_DIGESTS = frozenset({"sha1", "sha256", "sha384", "sha512"})
BLOB_SLOTS = frozenset({2, 5, 7})  # special slots whose data is a SuperBlob entry
HINT = (
    "sign again after the last step that changes the file (strip, lipo, install_name_tool, "
    "cp, a patch): `llamabuild sign PATH`; never modify a signed binary"
)


@dataclass(frozen=True)
class BundleSeal:
    """Files a bundle's main executable seals in special slots -1 and -3 (None: not checked)."""

    info_plist: Path | None = None
    resources: Path | None = None


@dataclass(frozen=True)
class Blob:
    slot: int
    magic: int
    start: int  # absolute file offset
    length: int


@dataclass(frozen=True)
class CodeDirectory:
    slot: int
    start: int  # absolute file offset of the CD blob
    length: int
    version: int
    hash_offset: int
    n_special: int
    n_code: int
    code_limit: int
    hash_type: int
    page_shift: int

    @property
    def label(self) -> str:
        name = HASH_TYPES[self.hash_type][0]
        where = "" if self.slot == CSSLOT_CODEDIRECTORY else f", alternate slot {self.slot:#x}"
        return f"{name} CodeDirectory{where}"

    @property
    def page_size(self) -> int:
        return 1 << self.page_shift if self.page_shift else max(self.code_limit, 1)


@dataclass(frozen=True)
class SliceIntegrity:
    """What was checked in one slice and what did not match."""

    arch: str
    directories: tuple[str, ...] = ()
    pages: int = 0
    findings: tuple[Finding, ...] = field(default=())


def _corrupt(name: str, arch: str, what: str) -> InputError:
    return InputError(
        f"{name}: corrupt code signature in the {arch} slice ({what})",
        hint="the signature was damaged or patched by hand; sign the binary again",
    )


def read_blobs(data: Buffer, start: int, size: int, name: str, arch: str) -> list[Blob]:
    """The SuperBlob's index, every entry inside the SuperBlob and none overlapping another."""
    if size < 12:
        raise _corrupt(name, arch, f"LC_CODE_SIGNATURE is {size} bytes")
    magic, length, count = struct.unpack(">III", data[start : start + 12])
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        raise _corrupt(name, arch, f"SuperBlob magic {magic:#x}")
    if not 12 <= length <= size or count > MAX_BLOBS or 12 + 8 * count > length:
        raise _corrupt(name, arch, f"SuperBlob of {length} bytes with {count} entries")
    index = data[start + 12 : start + 12 + 8 * count]
    blobs: list[Blob] = []
    for i in range(count):
        slot, off = struct.unpack_from(">II", index, 8 * i)
        if off < 12 + 8 * count or off + 8 > length:
            raise _corrupt(name, arch, f"blob {slot:#x} at {off} outside the SuperBlob")
        bmagic, blen = struct.unpack(">II", data[start + off : start + off + 8])
        if blen < 8 or off + blen > length:
            raise _corrupt(name, arch, f"blob {slot:#x} of {blen} bytes runs past the SuperBlob")
        blobs.append(Blob(slot, bmagic, start + off, blen))
    spans = sorted((b.start, b.start + b.length, b.slot) for b in blobs)
    for (_a0, a_end, a_slot), (b0, _b_end, b_slot) in itertools.pairwise(spans):
        if a_end > b0:
            raise _corrupt(name, arch, f"blobs {a_slot:#x} and {b_slot:#x} overlap")
    return blobs


def read_code_directory(data: Buffer, blob: Blob, slice_size: int, where: str) -> CodeDirectory:
    """One CodeDirectory's header, every count and offset bounded by its blob and the slice."""
    if blob.length < 44:
        raise InputError(f"{where}: CodeDirectory of {blob.length} bytes is truncated")
    head = data[blob.start : blob.start + min(blob.length, 64)]
    version, _flags, hash_offset, ident = struct.unpack_from(">IIII", head, 8)
    n_special, n_code, code_limit = struct.unpack_from(">III", head, 24)
    hash_size, hash_type, _platform, page_shift = struct.unpack_from(">BBBB", head, 36)
    if version >= 0x20300 and len(head) >= 64:
        limit64 = struct.unpack_from(">Q", head, 56)[0]
        code_limit = limit64 or code_limit
    if hash_type not in HASH_TYPES or HASH_TYPES[hash_type][2] != hash_size:
        raise InputError(f"{where}: unknown hash type {hash_type} (size {hash_size})")
    if n_special > MAX_SPECIAL_SLOTS or not n_special * hash_size <= hash_offset <= blob.length:
        raise InputError(f"{where}: hash offset {hash_offset} / {n_special} special slots")
    if hash_offset + n_code * hash_size > blob.length:
        raise InputError(f"{where}: {n_code} code slots run past the CodeDirectory")
    if page_shift and not MIN_PAGE_SHIFT <= page_shift <= MAX_PAGE_SHIFT:
        raise InputError(f"{where}: page size 2^{page_shift}")
    if code_limit > slice_size:
        raise InputError(f"{where}: code limit {code_limit} past the {slice_size}-byte slice")
    _check_string(data, blob, ident, "identifier", where)
    if version >= 0x20200 and len(head) >= 52:
        team = struct.unpack_from(">I", head, 48)[0]
        if team:
            _check_string(data, blob, team, "team id", where)
    cd = CodeDirectory(
        blob.slot, blob.start, blob.length, version, hash_offset, n_special, n_code,
        code_limit, hash_type, page_shift,
    )  # fmt: skip
    pages = -(-code_limit // cd.page_size)
    if n_code != pages:
        raise InputError(f"{where}: {n_code} code slots for {code_limit} bytes ({pages} pages)")
    return cd


def _check_string(data: Buffer, blob: Blob, offset: int, what: str, where: str) -> None:
    """A C string the CodeDirectory points at lies inside it, NUL-terminated (codesign
    refuses the signature otherwise; reading past it would show another blob's bytes)."""
    end = blob.start + blob.length
    if not 44 <= offset < blob.length or data.find(b"\0", blob.start + offset, end) < 0:
        raise InputError(
            f"{where}: the {what} at offset {offset} is not a string inside the "
            f"{blob.length}-byte CodeDirectory"
        )


def page_hashes(data: Buffer, base: int, cd: CodeDirectory, view: memoryview) -> Iterator[bytes]:
    """Each page's hash, truncated to the CD's size; an mmap's hashed pages are released."""
    _name, ctor, size = HASH_TYPES[cd.hash_type]
    page, limit = cd.page_size, cd.code_limit
    released = base - base % mmap.PAGESIZE
    for pos in range(0, limit, page):
        yield ctor(view[base + pos : base + min(pos + page, limit)]).digest()[:size]
        done = base + pos + page
        if (
            DONTNEED is not None
            and isinstance(data, mmap.mmap)
            and done - released >= RELEASE_EVERY
        ):
            end = done - done % mmap.PAGESIZE
            data.madvise(DONTNEED, released, end - released)
            released = end


def _regions(raw: st.RawSlice) -> Iterator[tuple[str, int, int]]:
    """(name, fileoff, size) of the header + load commands, each section and __LINKEDIT,
    relative to the slice (from load commands structure.py already bounded)."""
    e = raw.endian
    yield (
        "the Mach-O header and load commands",
        0,
        (32 if raw.is64 else 28) + sum(len(c.data) for c in raw.commands),
    )
    for c in raw.commands:
        if c.cmd != st.LC_SEGMENT_64 or len(c.data) < 72:
            continue  # 32-bit slices: named by the header or not at all
        segname = st.c_string(c.data[8:24] + b"\0", 0)
        fileoff, filesize = struct.unpack_from(e + "QQ", c.data, 40)
        if segname == "__LINKEDIT":
            yield "__LINKEDIT", fileoff, filesize
        nsects = struct.unpack_from(e + "I", c.data, 64)[0]
        for i in range(min(nsects, (len(c.data) - 72) // 80)):
            sect = c.data[72 + 80 * i : 152 + 80 * i]
            size, offset = struct.unpack_from(e + "QI", sect, 40)
            sectname = st.c_string(sect[:16] + b"\0", 0)
            if offset and size:
                yield f"{segname},{sectname}", offset, size


def page_cause(raw: st.RawSlice, cd: CodeDirectory, sig_offset: int, pos: int) -> str:
    """The likely cause of a bad page at slice offset `pos`: what the page holds."""
    if cd.code_limit != sig_offset:
        return (
            f"the file's layout changed after signing (strip or lipo rewrote it): the signature "
            f"seals {cd.code_limit} bytes but now starts at {sig_offset}"
        )
    end = pos + cd.page_size
    held = [name for name, off, size in _regions(raw) if off < end and pos < off + size]
    what = ", ".join(held[:4]) + (" …" if len(held) > 4 else "") or "padding"
    if held == ["__LINKEDIT"]:
        why = "strip or install_name_tool after signing, or a patch"
    elif held and held[0].startswith("the Mach-O header"):
        why = "install_name_tool, strip or lipo after signing, or a byte patch"
    else:
        why = "a byte patch, or another build copied over the signed file"
    return f"the page holds {what}, changed after signing ({why})"


def _special_digest(
    data: Buffer,
    slot: int,
    blobs: dict[int, Blob],
    seal: BundleSeal | None,
    ctor: Callable[..., Any],
) -> bytes | None:
    """Hash of what special slot -`slot` seals: b"" when that is absent, None when it is not at
    hand (Info.plist and CodeResources outside a bundle). Files are hashed from a mapping."""
    if slot in BLOB_SLOTS:
        b = blobs.get(slot)
        if b is None:
            return b""
        with memoryview(data) as view:
            digest: bytes = ctor(view[b.start : b.start + b.length]).digest()
        return digest
    target = {1: seal.info_plist, 3: seal.resources}.get(slot) if seal else None
    if target is None:
        return None
    if not target.exists():
        return b""
    with open_mapped(target) as mm:  # streamed: a 3 GB sparse Info.plist costs 8 MiB
        digest = hash_mapped(mm, ctor).digest()
    return bytes(digest)


def special_mismatch(
    data: Buffer, cd: CodeDirectory, blobs: dict[int, Blob], seal: BundleSeal | None
) -> str | None:
    """The first special slot whose data does not match its hash: what and why."""
    _name, ctor, size = HASH_TYPES[cd.hash_type]
    zero = bytes(size)
    for slot, (what, cause) in SPECIAL_SLOTS.items():
        sealed = slot <= cd.n_special
        at = cd.start + cd.hash_offset - slot * size
        expected = bytes(data[at : at + size]) if sealed else zero
        actual = _special_digest(data, slot, blobs, seal, ctor)
        if actual is None or (expected == zero and not actual):
            continue
        if expected == zero:
            if slot in BLOB_SLOTS:  # a blob the CodeDirectory does not seal: added afterwards
                return f"special slot -{slot} ({what}) is not sealed: {cause}"
            continue
        if not actual:
            return f"special slot -{slot} ({what}): the sealed data is missing ({cause})"
        if actual[:size] != expected:
            return f"special slot -{slot} ({what}) does not match its hash: {cause}"
    return None


def first_bad_page(data: Buffer, base: int, cd: CodeDirectory) -> int | None:
    """Index of the first code page whose hash differs from the CD's table, else None."""
    size = HASH_TYPES[cd.hash_type][2]
    table_at = cd.start + cd.hash_offset
    expected = bytes(data[table_at : table_at + cd.n_code * size])
    with memoryview(data) as view:
        actual = b"".join(page_hashes(data, base, cd, view))
    if actual == expected:
        return None
    for i in range(0, len(expected), size):
        if actual[i : i + size] != expected[i : i + size]:
            return i // size
    return 0


def signature_location(raw: st.RawSlice) -> tuple[int, int] | None:
    for c in raw.find(st.LC_CODE_SIGNATURE):
        if len(c.data) >= 16:
            off, size = struct.unpack_from(raw.endian + "II", c.data, 8)
            return int(off), int(size)
    return None


def check_slice(
    data: Buffer, raw: st.RawSlice, name: str, seal: BundleSeal | None = None
) -> SliceIntegrity:
    """Every CodeDirectory of one slice: code pages, then special slots."""
    located = signature_location(raw)
    if located is None:
        return SliceIntegrity(raw.arch)
    sig_off, sig_size = located
    blobs = read_blobs(data, raw.offset + sig_off, sig_size, name, raw.arch)
    by_slot = {b.slot: b for b in blobs}
    cds = [
        read_code_directory(data, b, raw.size, f"{name}: {raw.arch} slot {b.slot:#x}")
        for b in blobs
        if b.magic == CSMAGIC_CODEDIRECTORY
        and (b.slot == CSSLOT_CODEDIRECTORY or b.slot in CSSLOT_ALTERNATE_CODEDIRECTORIES)
    ]
    if not cds:
        raise _corrupt(name, raw.arch, "no CodeDirectory")
    findings: list[Finding] = []
    problems = [(cd.label, _cd_problem(data, raw, cd, sig_off, by_slot, seal)) for cd in cds]
    primary = next((cd for cd in cds if cd.slot == CSSLOT_CODEDIRECTORY), None)
    if CSSLOT_SIGNATURESLOT in by_slot and primary is not None:
        problems.append(
            ("CMS signature", cms_problem(data, by_slot[CSSLOT_SIGNATURESLOT], primary, cds))
        )
    for label, problem in problems:
        if problem:
            findings.append(error(RULE, f"{label}: {problem}", arch=raw.arch, path=name, hint=HINT))
    trailing = raw.size - (sig_off + sig_size)
    if trailing > 0:
        msg = (
            f"{trailing} bytes follow the code signature (file bytes "
            f"{raw.offset + sig_off + sig_size:#x}-{raw.offset + raw.size - 1:#x}): appended after "
            "signing, covered by no hash"
        )
        hint = "rebuild or copy the binary again, then sign it; never append to a signed file"
        findings.append(error(TRAILING, msg, arch=raw.arch, path=name, hint=hint))
    return SliceIntegrity(
        raw.arch,
        tuple(cd.label for cd in cds),
        sum(cd.n_code for cd in cds),
        tuple(findings),
    )


def _cd_problem(
    data: Buffer,
    raw: st.RawSlice,
    cd: CodeDirectory,
    sig_off: int,
    blobs: dict[int, Blob],
    seal: BundleSeal | None,
) -> str | None:
    bad = first_bad_page(data, raw.offset, cd)
    if bad is not None:
        pos = bad * cd.page_size
        start = raw.offset + pos
        end = raw.offset + min(pos + cd.page_size, cd.code_limit)
        cause = page_cause(raw, cd, sig_off, pos)
        return (
            f"page {bad} of {cd.n_code} (file bytes {start:#x}-{end - 1:#x}) does not match "
            f"its hash: {cause}"
        )
    return special_mismatch(data, cd, blobs, seal)


def cms_problem(
    data: Buffer, wrapper: Blob, primary: CodeDirectory, cds: Sequence[CodeDirectory] = ()
) -> str | None:
    """The CMS signature over the CodeDirectories: its signer's signature must verify with its
    certificate (inspect/trust.py), its messageDigest be the primary CodeDirectory's hash, and
    Apple's CDHashes attribute list the CodeDirectories there are (an ad-hoc signature's
    empty wrapper is skipped). Else the CodeDirectory or the signed data changed after signing."""
    if wrapper.magic != CSMAGIC_BLOBWRAPPER or wrapper.length <= 8:
        return None
    from llamabuild.inspect.cms import parse_signed_data
    from llamabuild.inspect.trust import signature_problem

    signed = parse_signed_data(bytes(data[wrapper.start + 8 : wrapper.start + wrapper.length]))
    for signer in signed.signers:
        problem = signature_problem(signer)
        if problem:
            return problem
        if signer.message_digest is None or signer.digest_algorithm not in CMS_DIGESTS:
            continue
        cd = bytes(data[primary.start : primary.start + primary.length])
        if hashlib.new(signer.digest_algorithm, cd).digest() != signer.message_digest:
            return (
                "its signed digest is not the primary CodeDirectory's: the CodeDirectory was "
                "replaced after signing"
            )
        if signer.cd_hashes and not set(signer.cd_hashes) <= {
            cdhash(data, cd) for cd in cds or (primary,)
        }:
            return "its signed CDHashes list a CodeDirectory this signature does not have"
    return None


def cdhash(data: Buffer, cd: CodeDirectory) -> bytes:
    """The CodeDirectory's hash with its own hash type, truncated to 20 bytes (a cdhash)."""
    _name, ctor, _size = HASH_TYPES[cd.hash_type]
    digest: bytes = ctor(bytes(data[cd.start : cd.start + cd.length])).digest()
    return digest[:20]


def check_data(data: Buffer, name: str, seal: BundleSeal | None = None) -> list[SliceIntegrity]:
    """Every slice of a mapped Mach-O (thin or fat)."""
    raws = st.read_slices(st.as_reader(data), len(data), name)
    return [check_slice(data, raw, name, seal) for raw in raws]


def check_file(
    path: Path, seal: BundleSeal | None = None, label: str | None = None
) -> list[SliceIntegrity]:
    """Map `path` (regular files only) and check every slice's signature; findings name
    `label` (default: the path), e.g. the file a temporary signed copy will replace."""
    with open_mapped(path) as data:
        return check_data(data, label or str(path), seal)


def integrity_findings(
    path: Path, seal: BundleSeal | None = None, label: str | None = None
) -> list[Finding]:
    """`signature-invalid` findings of every slice (empty: intact or unsigned)."""
    return [f for s in check_file(path, seal, label) for f in s.findings]


def _is_macho_file(path: Path) -> bool:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if not stat.S_ISREG(mode):
        return False  # never opened: a FIFO would block; other checks report the file
    with path.open("rb") as fh:
        return st.sniff(fh.read(8)) in ("macho", "fat")


def checked_findings(path: Path, seal: BundleSeal | None = None) -> list[Finding]:
    """integrity_findings(), with a signature too corrupt to read as a finding, not exit 2."""
    try:
        return integrity_findings(path, seal)
    except InputError as exc:
        return [error(RULE, exc.message, path=str(path), hint=exc.hint)]


def bundle_findings(app: Path, helper: Path, main_executable: Path) -> list[Finding]:
    """verify-app's pass: the helper, and the app's main executable with the Info.plist (-1) and
    _CodeSignature/CodeResources (-3) it seals. Missing or non-Mach-O files are skipped here
    (their own checks report them)."""
    contents = app / "Contents"
    seal = BundleSeal(contents / "Info.plist", contents / "_CodeSignature" / "CodeResources")
    out: list[Finding] = []
    for path, sealed in ((helper, None), (main_executable, seal)):
        if _is_macho_file(path) and not (sealed and path == helper):
            out += checked_findings(path, sealed)
    return out
