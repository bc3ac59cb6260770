"""The bundle seal and who signed the bundle. The seal: what Contents/_CodeSignature/CodeResources
lists, checked against the bundle
as `codesign --verify --deep --strict` does. Modified, missing and added files, changed
symlinks and nested code are `bundle-seal-broken` findings naming the file.

The main executable's CodeDirectory seals CodeResources itself (special slot -3, checked by
inspect/integrity.py); this reads what CodeResources seals in turn (its `files2`, format v2):
  {hash2: sha256}            a resource; `optional` ones (localizations) may be missing
  {symlink: target}          a symlink and where it points
  {cdhash: bytes, ...}       nested code: the CodeDirectory hash of the Mach-O
Files the seal does not list are "added", unless rules2 omits them (.DS_Store, Info.plist,
PkgInfo) or they are the main executable or the seal itself. Every file is hashed streamed
(core/mapped.hash_mapped); only regular files and symlinks are opened or read.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from llamabuild.appstore.tree import Tree
from llamabuild.config.domain import REL_PATH_PATTERN
from llamabuild.core import plists
from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error, warning
from llamabuild.core.mapped import hash_mapped, open_mapped
from llamabuild.inspect import structure as st
from llamabuild.inspect.developer_id import read_signing
from llamabuild.inspect.integrity import (
    CSSLOT_CODEDIRECTORY,
    cdhash,
    checked_findings,
    read_blobs,
    read_code_directory,
    signature_location,
)
from llamabuild.inspect.trust import chain_problem, kind_problem

RULE = "bundle-seal-broken"
TRUST = "signature-untrusted"
KIND = "signature-certificate-kind"
HINT = "sign the app again after its last change (Xcode's Archive, or codesign --deep)"
MAX_CODE_RESOURCES = 64 << 20  # a seal lists every resource: large apps reach megabytes
MAX_LISTED = 20  # findings past this many are counted in the last one
SEAL = "_CodeSignature"


def check_signers(paths: Sequence[Path], label: Callable[[Path], str]) -> list[Finding]:
    """Who signed each Mach-O (the main executable, the helper): a certificate signature
    (not ad hoc) must chain to Apple's roots (`signature-untrusted`) and carry Apple's App
    Store marker (`signature-certificate-kind`, a warning: a development build is signed for
    testing, not for upload)."""
    out: list[Finding] = []
    for path in paths:
        try:
            slices = read_signing(path)
        except InputError:
            continue  # not a Mach-O, or damaged: the integrity checks report it
        for s in slices:
            leaf = s.cms.leaf if s.cms else None
            if leaf is None or s.cms is None:
                continue
            where, at = label(path), {"arch": s.arch, "path": str(path)}
            problem = chain_problem(leaf, s.cms.certificates)
            if problem:
                hint = "sign with your Apple Distribution identity (Xcode's Archive, or codesign)"
                out.append(error(TRUST, f"{where}: {problem}", hint=hint, **at))
                continue
            kind = kind_problem(leaf, "app-store")
            if kind:
                hint = "export the archive for App Store Connect (Apple Distribution signing)"
                out.append(warning(KIND, f"{where}: {kind}", hint=hint, **at))
    return out


def check_seal(app: Path, main_executable: Path, bundle: Tree) -> list[Finding]:
    """`bundle-seal-broken` findings for a signed .app ([] when it carries no seal: the
    signature checks report an unsigned app); `bundle` is its tree (tree.walk)."""
    contents = app / "Contents"
    resources = contents / SEAL / "CodeResources"
    if not os.path.lexists(resources):
        return []
    try:
        seal = plists.load_plist(resources, plists.BUNDLE_FILE_HINT, MAX_CODE_RESOURCES)
    except (InputError, ValueError) as exc:
        why = exc.message if isinstance(exc, InputError) else str(exc)
        return [error(RULE, f"{SEAL}/CodeResources cannot be read: {why}", path=str(resources))]
    files2 = seal.get("files2")
    if not isinstance(files2, dict):
        return [error(RULE, f"{SEAL}/CodeResources has no files2 (a v1 seal)", path=str(app))]
    omit = _omitted(seal.get("rules2"))
    problems = list(_listed(contents, files2))
    problems += _added(contents, bundle, files2, omit, main_executable)
    findings = [error(RULE, msg, path=str(contents / rel), hint=HINT) for rel, msg in problems]
    if len(findings) > MAX_LISTED:
        more = len(findings) - MAX_LISTED + 1
        last = error(RULE, f"and {more} more files differ from the seal", path=str(app), hint=HINT)
        findings = [*findings[: MAX_LISTED - 1], last]
    return findings


def _listed(contents: Path, files2: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Each sealed entry against the file it names: (relative path, what is wrong)."""
    for rel, entry in sorted(files2.items()):
        if not isinstance(rel, str) or not isinstance(entry, dict) or not _inside(rel):
            yield str(rel), "a malformed entry in the seal"
            continue
        path = contents / rel
        try:
            mode = path.lstat().st_mode
        except OSError:
            if not entry.get("optional"):
                yield rel, f"{rel} is sealed but missing"
            continue
        if "symlink" in entry:
            if not stat.S_ISLNK(mode) or str(path.readlink()) != entry["symlink"]:
                sealed = entry["symlink"]
                yield rel, f"{rel}: the symlink changed after signing (sealed: {sealed!r})"
        elif "hash2" in entry:
            if not stat.S_ISREG(mode):
                yield rel, f"{rel} is no longer a regular file"
            elif _sha256(path) != entry["hash2"]:
                yield rel, f"{rel} was modified after signing (its sha256 differs from the seal)"
        elif "cdhash" in entry:
            if not stat.S_ISREG(mode) or _cdhash(path) != entry["cdhash"]:
                yield rel, f"{rel}: nested code changed after signing (its CodeDirectory hash)"
            elif checked_findings(path):  # the same CodeDirectory over changed pages
                yield rel, f"{rel}: nested code was modified after signing (its page hashes)"


def _added(
    contents: Path,
    bundle: Tree,
    files2: Mapping[str, Any],
    omit: list[re.Pattern[str]],
    main: Path,
) -> list[tuple[str, str]]:
    """Everything under Contents/ that the seal does not list or omit: files, symlinks,
    special files, and a .dSYM the walk does not enter whose contents are not sealed."""
    out = []
    for path, kind in bundle:
        if not path.is_relative_to(contents) or path == main:
            continue
        rel = path.relative_to(contents).as_posix()
        if kind == "dir" and (
            not rel.lower().endswith(".dsym") or any(k.startswith(f"{rel}/") for k in files2)
        ):
            continue
        if rel in files2 or rel.split("/", 1)[0] == SEAL or any(p.search(rel) for p in omit):
            continue
        out.append((rel, f"{rel} was added after signing (not in the seal)"))
    return out


def _omitted(rules2: Any) -> list[re.Pattern[str]]:
    """The rules2 patterns marked `omit` (what the seal leaves out on purpose)."""
    out = []
    if isinstance(rules2, dict):
        for pattern, rule in rules2.items():
            if isinstance(rule, dict) and rule.get("omit") and isinstance(pattern, str):
                try:
                    out.append(re.compile(pattern))
                except re.error:
                    continue
    return out


def _inside(rel: str) -> bool:
    return re.fullmatch(REL_PATH_PATTERN, rel) is not None


def _sha256(path: Path) -> bytes | None:
    try:
        with open_mapped(path) as mm:
            return bytes(hash_mapped(mm).digest())
    except InputError:
        return None


def _cdhash(path: Path) -> bytes | None:
    """The cdhash of the first slice's primary CodeDirectory (integrity.cdhash: its own hash
    type, truncated to 20 bytes), as codesign records nested code in the seal."""
    try:
        with open_mapped(path) as mm:
            raw = st.read_slices(mm, len(mm), str(path))[0]
            located = signature_location(raw)
            if located is None:
                return None
            blobs = read_blobs(mm, raw.offset + located[0], located[1], str(path), raw.arch)
            blob = next((b for b in blobs if b.slot == CSSLOT_CODEDIRECTORY), None)
            if blob is None:
                return None
            return cdhash(mm, read_code_directory(mm, blob, raw.size, str(path)))
    except InputError:
        return None
