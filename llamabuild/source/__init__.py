"""Source pinning: a git URL, a local directory or an archive, resolved to an exact pin.

With a lock file present, builds use its pin (no network when the cached checkout already is
at the pinned commit); `--update` re-resolves. A moved tag or a changed archive is an error
naming both values, never a silent rebuild from different code.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llamabuild.config.domain import PinKind
from llamabuild.core.errors import ConfigError, InputError
from llamabuild.core.jsonout import ALWAYS, FLATTEN
from llamabuild.source import archive, lock
from llamabuild.source.cache import cache_root, slug
from llamabuild.source.lock import LOCK_NAME, Pin
from llamabuild.tools.git import Git, is_full_sha
from llamabuild.tools.runner import Runner

if TYPE_CHECKING:  # rich's progress bar loads only when a download or unpack shows one
    from rich.console import Console
    from rich.progress import Progress

DEFAULT_GIT_URL = "https://github.com/ggml-org/llama.cpp"
GIT_PREFIXES = ("https://", "http://", "ssh://", "git://", "file://", "git@")

__all__ = ["DEFAULT_GIT_URL", "LOCK_NAME", "Pin", "SourceRequest", "SourceTree", "resolve_source"]


@dataclass(frozen=True)
class SourceRequest:
    """What the user asked for; None means "from the lock file, else the default"."""

    location: str | None = None
    ref: str | None = None
    sha256: str | None = None
    allow_dirty: bool = False
    update: bool = False
    lock_path: Path = field(default_factory=lambda: Path.cwd() / LOCK_NAME)
    check_remote: bool = False
    write_lock: bool = True
    progress: bool = False
    """Show an archive's download and unpack progress on stderr (only if it is a terminal)."""


@dataclass(frozen=True)
class SourceTree:
    root: Path
    pin: Pin
    dirty: tuple[str, ...] = ()
    lock_written: bool = False


@dataclass(frozen=True)
class SourceReport:
    """`llamabuild source --json`: the resolved tree, its pin, and the lock file."""

    ok: Literal[True] = field(default=True, init=False, metadata=ALWAYS)
    tree: SourceTree = field(metadata=FLATTEN)
    lock: Path


def classify(location: str) -> PinKind:
    if archive.is_archive(location):
        return PinKind.ARCHIVE
    if location.startswith(GIT_PREFIXES):
        return PinKind.GIT
    path = Path(location).expanduser()
    if path.is_dir():
        return PinKind.DIR
    if path.is_file():
        return PinKind.ARCHIVE
    raise InputError(
        f"source {location!r} is not a git URL, a directory or an archive",
        hint="use a git URL (https://, file://), a local llama.cpp directory or a .tar.gz/.zip",
    )


def normalize(location: str, kind: PinKind) -> str:
    if kind is PinKind.DIR or (kind is PinKind.ARCHIVE and not archive.is_url(location)):
        return str(Path(location).expanduser().resolve())
    return location


def build_number(*refs: str | None) -> int:
    """llama.cpp release tags are b<N>; N is the build number llama-server reports."""
    for ref in refs:
        m = re.fullmatch(r"(?:refs/tags/)?b(\d+)", ref or "")
        if m:
            return int(m.group(1))
    return 0


def resolve_source(req: SourceRequest, runner: Runner, cache: Path | None = None) -> SourceTree:
    cache = cache or cache_root()
    git = Git(runner)
    locked = lock.read(req.lock_path)
    if locked is not None and req.update:
        # Re-resolve the same source and ref unless new ones are given.
        same = req.location is None
        req = replace(
            req,
            location=req.location or locked.url,
            ref=req.ref or (locked.ref if same else None),
            sha256=req.sha256 or (locked.sha256 if same else None),
        )
        locked = None
    if locked is not None:
        _check_against_lock(req, locked)
        tree = _materialize(locked, req, git, cache, from_lock=True)
        return tree
    pin = _fresh_pin(req, git)
    tree = _materialize(pin, req, git, cache, from_lock=False)
    if not req.write_lock:
        return tree
    lock.write(req.lock_path, tree.pin)
    return replace(tree, lock_written=True)


def _check_against_lock(req: SourceRequest, pin: Pin) -> None:
    where = str(req.lock_path)
    if req.location is not None:
        asked = normalize(req.location, classify(req.location))
        if asked != pin.url:
            raise ConfigError(
                f"{where} pins source {pin.url}, but --source is {asked}",
                hint="rerun with --update to re-pin to the new source",
            )
    if req.ref is not None and req.ref not in (pin.ref, pin.commit, pin.refname):
        raise ConfigError(
            f"{where} pins ref {pin.ref} ({pin.commit}), but --ref is {req.ref}",
            hint="rerun with --update to re-pin",
        )
    if req.sha256 is not None and pin.sha256 and req.sha256.lower() != pin.sha256:
        raise ConfigError(
            f"archive hash changed: {where} has sha256 {pin.sha256}, --sha256 is {req.sha256}",
            hint="if the new archive is intended, rerun with --update",
        )


def _fresh_pin(req: SourceRequest, git: Git) -> Pin:
    location = req.location or DEFAULT_GIT_URL
    kind = classify(location)
    url = normalize(location, kind)
    if kind is PinKind.GIT:
        ref = req.ref or "HEAD"
        refname, commit = git.resolve(url, ref)
        return Pin(PinKind.GIT, url, ref, refname, commit, build_number=build_number(ref, refname))
    if kind is PinKind.ARCHIVE:
        if not req.sha256:
            raise InputError(
                "--sha256 is required for an archive source",
                hint="pass the archive's published sha256 (or `sha256sum` of a file you trust)",
            )
        if not re.fullmatch(r"[0-9a-fA-F]{64}", req.sha256):
            raise InputError(f"--sha256 {req.sha256!r} is not 64 hex digits")
        return Pin(
            PinKind.ARCHIVE,
            url,
            req.ref,
            None,
            req.ref,
            req.sha256.lower(),
            build_number=build_number(req.ref),
        )
    return Pin(PinKind.DIR, url, req.ref, build_number=build_number(req.ref))


def _materialize(
    pin: Pin, req: SourceRequest, git: Git, cache: Path, from_lock: bool
) -> SourceTree:
    if pin.kind is PinKind.ARCHIVE:
        with transfer_display(req.progress) as display:
            return _archive_tree(pin, cache, display)
    if pin.kind is PinKind.DIR:
        return _dir_tree(pin, req, git, from_lock)
    return _git_tree(pin, req, git, cache)


class TransferDisplay:
    """A rich bar per step (bytes, speed) on stderr; started by the first progress call, so a
    cached archive shows nothing."""

    def __init__(self, console: Console | None = None) -> None:
        self._bar: Progress | None = None
        self._console = console

    def step(self, label: str) -> archive.ProgressFn:
        task = None

        def update(done: int, total: int | None) -> None:
            nonlocal task
            bar = self._start()
            if task is None:
                task = bar.add_task(label, total=total)
            bar.update(task, completed=done, total=total)

        return update

    def _start(self) -> Progress:
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            from llamabuild.core import report

            self._bar = Progress(
                TextColumn("{task.description}", markup=False),  # a file name, not markup
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=self._console or report.console(stderr=True),
            )
            self._bar.start()
        return self._bar

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def transfer_display(enabled: bool) -> Iterator[TransferDisplay | None]:
    """A TransferDisplay when `enabled` and stderr is a terminal (CI logs get no redraws)."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    display = TransferDisplay()
    try:
        yield display
    finally:
        display.close()


def _archive_tree(pin: Pin, cache: Path, display: TransferDisplay | None = None) -> SourceTree:
    assert pin.sha256 is not None
    name = pin.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "archive"
    download = display.step(f"download {name}") if display else None
    local = archive.fetch(pin.url, pin.sha256, cache / "downloads", download)
    dest = cache / "archives" / pin.sha256[:16]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        archive.verified_hash(local, pin.sha256, cache / "archives" / f"{pin.sha256[:16]}.stamp")
    except ConfigError:
        if archive.is_url(pin.url):  # a bad copy cached by an older llamabuild: fetch afresh
            local.unlink(missing_ok=True)
        raise
    top = archive.extract(local, dest, display.step(f"unpack {name}") if display else None)
    root = top / pin.subdir if pin.subdir else archive.find_llama_root(top)
    subdir = str(root.relative_to(top)) if root != top else ""
    return SourceTree(root, replace(pin, subdir="" if subdir == "." else subdir))


def _dirty_or_refuse(paths: list[str], root: Path, allow_dirty: bool) -> tuple[str, ...]:
    if paths and not allow_dirty:
        shown = ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")
        raise InputError(
            f"the source tree {root} has uncommitted changes: {shown}",
            hint="commit or stash them, or pass --allow-dirty (the manifest records it)",
        )
    return tuple(paths)


def _dir_tree(pin: Pin, req: SourceRequest, git: Git, from_lock: bool) -> SourceTree:
    root = Path(pin.url)
    if not root.is_dir():
        raise InputError(f"source directory {root} not found")
    llama = archive.find_llama_root(root)
    top = git.toplevel(llama)
    if top is None or top.resolve() != llama.resolve():
        # Plain files vendored inside another repository (the app's): its HEAD and dirty
        # list are not llama.cpp's, so treat the tree as a plain directory.
        return SourceTree(llama, pin)
    root = llama
    head = git.head(root)
    if req.ref and not from_lock:
        wanted = git.run("rev-parse", f"{req.ref}^{{commit}}", cwd=root).strip()
        if wanted != head:
            raise InputError(
                f"--ref {req.ref} is {wanted}, but {root} has {head} checked out",
                hint=f"check out {req.ref} in that directory first",
            )
    if from_lock and pin.commit and pin.commit != head:
        raise ConfigError(
            f"{req.lock_path} pins commit {pin.commit}, but {root} is at {head}",
            hint="check out the pinned commit, or rerun with --update",
        )
    dirty = _dirty_or_refuse(git.dirty(root), root, req.allow_dirty)
    return SourceTree(llama, replace(pin, commit=head), dirty)


def _git_tree(pin: Pin, req: SourceRequest, git: Git, cache: Path) -> SourceTree:
    assert pin.commit is not None
    repo = cache / "git" / slug(pin.url)
    if req.check_remote and pin.ref and not is_full_sha(pin.ref):
        _, remote = git.resolve(pin.url, pin.ref)
        _moved_check(pin, remote, req)
    ready = git.head_or_none(repo) == pin.commit
    if not ready:
        git.ensure_repo(repo, pin.url)
        what = pin.refname if pin.refname and not is_full_sha(pin.refname) else pin.commit
        git.fetch(repo, what)
        fetched = git.run("rev-parse", "FETCH_HEAD^{commit}", cwd=repo).strip()
        _moved_check(pin, fetched, req)
        git.checkout(repo, pin.commit)
        head = git.head(repo)
        if head != pin.commit:
            raise ConfigError(f"checkout of {pin.commit} left HEAD at {head} in {repo}")
    dirty = _dirty_or_refuse(git.dirty(repo), repo, req.allow_dirty)
    return SourceTree(archive.find_llama_root(repo), pin, dirty)


def _moved_check(pin: Pin, actual: str, req: SourceRequest) -> None:
    if actual != pin.commit:
        raise ConfigError(
            f"ref {pin.ref} moved: {req.lock_path.name} has {pin.commit}, "
            f"{pin.url} now has {actual}",
            hint="if the new commit is intended, rerun with --update to re-pin",
        )
