"""zig's working root: one per user and cache, then rewritten to one canonical root.

zig's Mach-O linker writes absolute paths into the N_OSO/N_SO debug map (the objects it
links, its libc++/compiler-rt in its cache, the dir that cache was built from, its own lib dir)
and takes no `-oso_prefix`. A fixed shared path such as /tmp/x makes those the same everywhere
but lets any local user plant a libc++ there, and blocks a second user. So every zig path lives
under a private root (0700, owner-checked, in the user's cache) whose path is padded to exactly
ROOT_LENGTH bytes, and after the link:
- `canonicalize` replaces those bytes in the binary with CANONICAL (the same length, so no
  offset moves), derives each slice's LC_UUID from the result and re-hashes the linker's ad-hoc
  code signature;
- `debug_map_mirror` gives dsymutil (`--oso-prepend-path`) the objects the debug map names at
  their canonical paths, each holding the root rewritten too, so dsymutil computes every string
  and accelerator-table hash of the dSYM from canonical text (rewriting a finished dSYM cannot:
  `__apple_names` hashes the names and `__apple_types` the qualified names, some of which hold
  paths: lambdas in libc++ templates).
Measured with zig 0.17: two roots of one length give byte-identical binaries and dSYMs.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import shutil
import stat
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llamabuild.core.errors import ConfigError, ToolError
from llamabuild.inspect import integrity
from llamabuild.inspect import structure as st

ROOT_LENGTH: Final = 160
_NAME: Final = "/llamabuild-zig-root/"
CANONICAL: Final = _NAME + "_" * (ROOT_LENGTH - len(_NAME))
"""What every zig root path becomes in a published binary and dSYM (the same on every machine)."""
_CD_MAGIC: Final = 0xFADE0C02
N_OSO: Final = 0x66
_MEMBER: Final = re.compile(r"^(.*\.a)\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class ZigRoot:
    """The private root: zig's cache, the libc++ prime dir, the link dirs, zig's lib dir."""

    path: Path

    @property
    def cache(self) -> Path:
        return self.path / "cache"

    @property
    def prime(self) -> Path:
        return self.path / "libcxx"

    @property
    def link(self) -> Path:
        return self.path / "link"

    @property
    def lib(self) -> Path:
        return self.path / "lib"


def zig_root(home: Path, key: str = "") -> ZigRoot:
    """`<home>/<key>-____…`: a path of exactly ROOT_LENGTH bytes. `key` names the zig install
    (tools/zig.install_key), so two installs never share a root's lib link or cache."""
    base = home.absolute()
    prefix = f"{key}-" if key else ""
    pad = ROOT_LENGTH - len(os.fsencode(base)) - 1 - len(prefix)
    if pad < 1:
        raise ConfigError(
            f"zig's root dir {home} is too long for a reproducible zig build",
            hint=f"set LLAMABUILD_CACHE (or LLAMABUILD_ZIG_ROOT) to a path shorter than "
            f"{ROOT_LENGTH - 8} bytes",
        )
    return ZigRoot(base / (prefix + "_" * pad))


def prepare(root: ZigRoot, zig_lib: Path) -> None:
    """Create the root 0700 and refuse one another user owns or can write; point `lib` at
    zig's lib dir (zig keeps ZIG_LIB_DIR as given, so its sources land under the root)."""
    try:
        root.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (root.path.parent, root.path):
            _check_private(path)
        for sub in (root.cache, root.prime, root.link):
            sub.mkdir(mode=0o700, exist_ok=True)
        target = str(zig_lib.resolve())
        if not root.lib.is_symlink() or str(root.lib.readlink()) != target:
            tmp = root.path / f".lib-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            tmp.replace(root.lib)
    except OSError as exc:
        raise ToolError(
            f"cannot prepare zig's root {root.path}: {exc.strerror or exc}",
            hint="it must be a directory this user owns and can write (under LLAMABUILD_CACHE)",
        ) from exc


def _check_private(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ToolError(
            f"refusing zig's root {path}: not a directory owned by this user and private",
            hint="remove it, or set LLAMABUILD_CACHE to a directory of your own",
        )
    if info.st_mode & 0o077:
        path.chmod(0o700)


def env(root: ZigRoot) -> dict[str, str]:
    """What every zig process of a build gets: the private cache and the lib dir under it."""
    cache = str(root.cache)
    return {
        "ZIG_GLOBAL_CACHE_DIR": cache,
        "ZIG_LOCAL_CACHE_DIR": cache,
        "ZIG_LIB_DIR": str(root.lib),
    }


def canonicalize(binary: Path, root: ZigRoot) -> dict[str, str]:
    """Rewrite `root` to CANONICAL in the binary, give each slice a UUID derived from its new
    bytes and re-hash its code signature. Returns the UUIDs by architecture."""
    real = _real(root)
    with binary.open("r+b") as fh, mmap.mmap(fh.fileno(), 0) as data:
        _replace_all(data, real, CANONICAL.encode())
        found: dict[str, str] = {}
        for raw in st.read_slices(data, len(data), binary.name):
            at = _uuid_offset(raw)
            if at is None:
                continue
            new = _derived_uuid(data, raw, at)
            data[at : at + 16] = new
            found[raw.arch] = st.format_uuid(new)
            _rehash(data, raw, binary.name)
        data.flush()
    return found


@contextmanager
def debug_map_mirror(binary: Path, root: ZigRoot) -> Iterator[Path]:
    """A dir to pass dsymutil as `--oso-prepend-path` for a canonicalized binary: every object
    its debug map names sits at <dir><canonical path>, a symlink to the real file, or a copy
    with the root rewritten when it holds the root's bytes (zig's libc++, objects that include
    its headers). Removed afterwards."""
    real = _real(root)
    mirror = Path(tempfile.mkdtemp(prefix="dsym-", dir=root.path))
    try:
        for name in sorted(set(debug_map_paths(binary))):
            if not name.startswith(CANONICAL):
                continue
            source = Path(os.fsdecode(real) + name[len(CANONICAL) :])
            dest = Path(str(mirror) + name)
            if dest.exists() or not source.is_file():
                continue  # dsymutil names what is missing in its warnings
            dest.parent.mkdir(parents=True, exist_ok=True)
            if _holds(source, real):
                shutil.copy2(source, dest)
                with dest.open("r+b") as fh, mmap.mmap(fh.fileno(), 0) as data:
                    _replace_all(data, real, CANONICAL.encode())
                shutil.copystat(source, dest)  # dsymutil compares mtimes with the debug map
            else:
                dest.symlink_to(source)
        yield mirror
    finally:
        shutil.rmtree(mirror, ignore_errors=True)


def debug_map_paths(binary: Path) -> Iterator[str]:
    """The files the N_OSO entries of every slice name (an archive member's archive)."""
    with binary.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for raw in st.read_slices(data, len(data), binary.name):
            for name in _oso_names(data, raw):
                member = _MEMBER.match(name)
                yield member.group(1) if member else name


def _oso_names(data: mmap.mmap, raw: st.RawSlice) -> Iterator[str]:
    for c in raw.find(st.LC_SYMTAB):
        symoff, nsyms, stroff, strsize = struct.unpack_from(raw.endian + "IIII", c.data, 8)
        size = 16 if raw.is64 else 12
        base = raw.offset
        if symoff + nsyms * size > raw.size or stroff + strsize > raw.size:
            return
        for i in range(nsyms):
            entry = base + symoff + i * size
            strx, n_type = struct.unpack_from(raw.endian + "IB", data, entry)
            if n_type == N_OSO and strx < strsize:
                start = base + stroff + strx
                end = data.find(b"\0", start, base + stroff + strsize)
                yield os.fsdecode(data[start : end if end != -1 else base + stroff + strsize])


def _holds(path: Path, needle: bytes) -> bool:
    if path.stat().st_size == 0:
        return False
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(needle) != -1


def _real(root: ZigRoot) -> bytes:
    real = os.fsencode(root.path)
    if len(real) != ROOT_LENGTH:
        raise ToolError(f"zig's root {root.path} is not {ROOT_LENGTH} bytes long")
    return real


def _replace_all(data: mmap.mmap, old: bytes, new: bytes) -> None:
    pos = data.find(old)
    while pos != -1:
        data[pos : pos + len(new)] = new
        pos = data.find(old, pos + len(new))


def _uuid_offset(raw: st.RawSlice) -> int | None:
    """File offset of the 16 UUID bytes of LC_UUID."""
    at = raw.offset + (32 if raw.is64 else 28)
    for c in raw.commands:
        if c.cmd == st.LC_UUID and len(c.data) >= 24:
            return at + 8
        at += len(c.data)
    return None


def _derived_uuid(data: mmap.mmap, raw: st.RawSlice, at: int) -> bytes:
    """sha256 of the slice with its UUID zeroed and its code signature left out, shaped as an
    RFC 4122 name-based UUID (version 5 bits)."""
    end = raw.offset + raw.size
    located = integrity.signature_location(raw)
    if located is not None:
        end = min(end, raw.offset + located[0])
    digest = hashlib.sha256()
    digest.update(data[raw.offset : at])
    digest.update(bytes(16))
    digest.update(data[at + 16 : end])
    out = bytearray(digest.digest()[:16])
    out[6] = (out[6] & 0x0F) | 0x50
    out[8] = (out[8] & 0x3F) | 0x80
    return bytes(out)


def _rehash(data: mmap.mmap, raw: st.RawSlice, name: str) -> None:
    """Every CodeDirectory's code-page hashes, recomputed over the rewritten slice."""
    located = integrity.signature_location(raw)
    if located is None:
        return
    start = raw.offset + located[0]
    for blob in integrity.read_blobs(data, start, located[1], name, raw.arch):
        if blob.magic != _CD_MAGIC:
            continue
        cd = integrity.read_code_directory(data, blob, raw.size, name)
        if cd.n_special:
            raise ToolError(
                f"{name}: zig's output carries a full signature, not the linker's ad-hoc one",
                hint="sign after the build (`llamabuild sign`), not inside it",
            )
        size = integrity.HASH_TYPES[cd.hash_type][2]
        table = cd.start + cd.hash_offset
        with memoryview(data) as view:
            hashes = b"".join(integrity.page_hashes(data, raw.offset, cd, view))
        data[table : table + cd.n_code * size] = hashes
