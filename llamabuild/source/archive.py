"""Archive sources (.tar.gz/.tgz/.tar.xz/.zip, local or https): download, hash, extract once."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from llamabuild.errors import ConfigError, InputError, ToolError
from llamabuild.files import open_atomic, sha256_file, write_atomic

SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar", ".zip")


def is_archive(location: str) -> bool:
    return location.lower().split("?", 1)[0].endswith(SUFFIXES)


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


def fetch(location: str, expected: str, downloads: Path) -> Path:
    """A local copy of the archive whose sha256 is `expected` (downloaded once, then cached)."""
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
            actual = _download(location, out)
            if actual != expected:
                raise _mismatch(location, expected, actual)
    except (urllib.error.URLError, OSError) as exc:
        raise ToolError(f"download of {location} failed: {exc}", hint="check the URL") from exc
    return target


def _download(location: str, out: BinaryIO) -> str:
    """Stream `location` into `out`, returning the sha256 of what arrived."""
    import urllib.request

    digest = hashlib.sha256()
    with urllib.request.urlopen(location, timeout=120) as resp:  # noqa: S310
        while chunk := resp.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
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


def extract(archive: Path, dest: Path) -> Path:
    """Extract to `dest` atomically (temp dir + rename); returns the single top dir if any."""
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            _unpack(archive, tmp)
            Path(tmp).replace(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    entries = [p for p in dest.iterdir() if not p.name.startswith(".llamabuild")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def _unpack(archive: Path, into: Path) -> None:
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    target = (into / info.filename).resolve()
                    if not target.is_relative_to(into.resolve()):
                        raise InputError(f"{archive}: unsafe path {info.filename!r} in the zip")
                zf.extractall(into)  # noqa: S202 - every member checked above
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(into, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(
            f"cannot extract {archive}: {exc}", hint="is it a complete archive?"
        ) from exc


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
