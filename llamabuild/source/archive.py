"""Archive sources (.tar.gz/.tgz/.tar.xz/.zip, local or https): download, hash, extract once.

Every member is checked before it is written: no absolute name, no `..` component, no link
leading out of the destination, no device or FIFO; modes lose setuid/setgid/sticky and
group/other write. Python 3.11.4+ also applies tarfile's own "data" filter; older 3.11 (Debian
12 has 3.11.2) has no filters, so there the members are written here, by the same rules.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from llamabuild.core.errors import ConfigError, InputError, ToolError
from llamabuild.core.files import open_atomic, sha256_file, write_atomic

SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip")
CHUNK = 1 << 18

ProgressFn = Callable[[int, int | None], None]
"""Download/unpack progress: (bytes done, total bytes or None when the server gave no size)."""


def is_archive(location: str) -> bool:
    return location.lower().split("?", 1)[0].endswith(SUFFIXES)


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


def fetch(
    location: str, expected: str, downloads: Path, progress: ProgressFn | None = None
) -> Path:
    """A local copy of the archive whose sha256 is `expected` (downloaded once, then cached).

    `progress` hears of each chunk of a download; a local file or a cached copy calls it never.
    """
    if not is_url(location):
        path = Path(location).expanduser()
        if not path.is_file():
            raise InputError(f"archive {path} not found")
        return path
    name = location.split("?", 1)[0].rsplit("/", 1)[-1] or "source.tar.gz"
    target = downloads / expected / name
    if target.is_file():
        return target
    import urllib.error  # only when downloading: http.client costs ~30 ms on every build

    try:
        # Only a matching download is ever cached under its hash: a mismatch raises inside
        # the block, so the temp file is dropped and `target` never appears.
        with open_atomic(target) as out:
            actual = _download(location, out, progress)
            if actual != expected:
                raise _mismatch(location, expected, actual)
    except (urllib.error.URLError, OSError) as exc:
        raise ToolError(f"download of {location} failed: {exc}", hint="check the URL") from exc
    return target


def _download(location: str, out: BinaryIO, progress: ProgressFn | None = None) -> str:
    """Stream `location` into `out`, returning the sha256 of what arrived."""
    import urllib.request

    digest = hashlib.sha256()
    with urllib.request.urlopen(location, timeout=120) as resp:  # noqa: S310
        length = resp.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else None
        done = 0
        if progress is not None:
            progress(done, total)
        while chunk := resp.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _mismatch(what: object, expected: str, actual: str) -> ConfigError:
    return ConfigError(
        f"archive sha256 mismatch for {what}: expected {expected}, got {actual}",
        hint="the archive changed; check its origin, then pass the new --sha256 with --update",
    )


def verified_hash(path: Path, expected: str, stamp: Path) -> str:
    """sha256 of `path`, re-hashed only when its size or mtime changed since the last check."""
    st = path.stat()
    key = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        if json.loads(stamp.read_text()) == {**key, "sha256": expected}:
            return expected
    except (OSError, ValueError):
        pass
    actual = sha256_file(path)
    if actual != expected:
        raise _mismatch(path, expected, actual)
    if stamp.parent.is_dir():
        write_atomic(stamp, json.dumps({**key, "sha256": actual}).encode())
    return actual


def extract(archive: Path, dest: Path, progress: ProgressFn | None = None) -> Path:
    """Extract to `dest` atomically (temp dir + rename); returns the single top dir if any.

    `progress` hears how far through the archive file the unpacking is (an already extracted
    `dest` calls it never)."""
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            _unpack(archive, tmp, progress)
            Path(tmp).replace(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    entries = [p for p in dest.iterdir() if not p.name.startswith(".llamabuild")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def _unpack(archive: Path, into: Path, progress: ProgressFn | None) -> None:
    try:
        if archive.name.lower().endswith(".zip"):
            _unpack_zip(archive, into, progress)
        else:
            _unpack_tar(archive, into, progress)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(
            f"cannot extract {archive}: {exc}", hint="is it a complete archive?"
        ) from exc


def has_data_filter() -> bool:
    """tarfile's extraction filters arrived in 3.11.4 (and 3.8.17, 3.9.17, 3.10.12)."""
    return hasattr(tarfile, "data_filter")


def _unpack_zip(archive: Path, into: Path, progress: ProgressFn | None) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        real = into.resolve()
        for info in infos:  # all checked before anything is written
            _check_name(archive, info.filename, into, real)
        total = sum(info.file_size for info in infos)
        done = 0
        for info in infos:
            # zipfile writes a symlink entry as a plain file holding the link text.
            zf.extract(info, into)
            done += info.file_size
            if progress is not None:
                progress(done, total)


def _unpack_tar(archive: Path, into: Path, progress: ProgressFn | None) -> None:
    total = archive.stat().st_size
    real = into.resolve()
    with archive.open("rb") as raw, tarfile.open(fileobj=raw) as tf:

        def checked() -> Iterator[tarfile.TarInfo]:
            """Each member checked just before it is written (links made earlier count)."""
            done = 0
            for member in tf:
                _check_member(archive, member, into, real)
                yield member
                done = max(done, min(raw.tell(), total))  # of the compressed file
                if progress is not None:
                    progress(done, total)

        if has_data_filter():
            tf.extractall(into, members=checked(), filter="data")
        else:
            for member in checked():
                _write_member(tf, member, into)
    if progress is not None:
        progress(total, total)


def _unsafe(archive: Path, name: str, why: str) -> InputError:
    return InputError(
        f"{archive}: unsafe member {name!r} ({why}); nothing was extracted",
        hint="check where the archive comes from: llamabuild extracts only files, folders and "
        "links that stay inside the archive's folder",
    )


def _check_name(archive: Path, name: str, into: Path, real: Path) -> None:
    """No absolute name, no `..` component, and no earlier symlink leading it elsewhere."""
    parts = PurePosixPath(name.replace("\\", "/"))
    if parts.is_absolute():
        raise _unsafe(archive, name, "an absolute path")
    if ".." in parts.parts:
        raise _unsafe(archive, name, "a '..' component")
    if not (into / name).resolve().is_relative_to(real):
        raise _unsafe(archive, name, "a link leads it out of the destination")


def _check_member(archive: Path, member: tarfile.TarInfo, into: Path, real: Path) -> None:
    _check_name(archive, member.name, into, real)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise _unsafe(archive, member.name, "a device, FIFO or other special file")
    if not (member.issym() or member.islnk()):
        return
    link = member.linkname
    if PurePosixPath(link).is_absolute():
        raise _unsafe(archive, member.name, f"a link to the absolute path {link!r}")
    # A symlink's target is relative to the link's folder, a hard link's to the archive's top.
    base = posixpath.dirname(member.name) if member.issym() else ""
    lexical = posixpath.normpath(posixpath.join(base, link))
    resolved = (into / base / link).resolve()
    if lexical == ".." or lexical.startswith("../") or not resolved.is_relative_to(real):
        raise _unsafe(archive, member.name, f"a link to {link!r}, outside the destination")


def _write_member(tf: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> None:
    """One checked member, written the way tarfile's "data" filter would let it be: for a
    Python without filters. Owners are never applied; a regular file keeps only its owner's
    read/write/execute and group/other read/execute bits; folders get the default mode."""
    target = into / member.name
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()  # a later member replaces an earlier one; never written through a link
    if member.issym():
        target.symlink_to(member.linkname)
        return
    if member.islnk():
        target.hardlink_to(into / member.linkname)
        return
    source = tf.extractfile(member)
    if source is None:
        raise tarfile.ExtractError(f"no data for {member.name!r}")
    with source, target.open("xb") as out:
        shutil.copyfileobj(source, out, CHUNK)
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    target.chmod(mode | 0o600)
    os.utime(target, (member.mtime, member.mtime))


def find_llama_root(tree: Path) -> Path:
    """The llama.cpp directory inside an extracted tree: itself or vendor/llama.cpp."""
    for cand in (tree, tree / "vendor" / "llama.cpp", tree / "llama.cpp"):
        if (cand / "CMakeLists.txt").is_file() and (cand / "ggml").is_dir():
            return cand
    if (tree / "CMakeLists.txt").is_file():
        return tree
    raise InputError(
        f"no llama.cpp tree (CMakeLists.txt + ggml/) in {tree}",
        hint="the archive should contain llama.cpp at its top or in vendor/llama.cpp",
    )
