"""The `git` program: resolve refs, shallow fetch, checkout, dirty-tree check.

Parsing of git's output lives in pure functions (tested without git); `Git` only runs argv.
"""

from __future__ import annotations

import re
from pathlib import Path

from llamabuild.core.errors import InputError, ToolError
from llamabuild.tools.runner import Tool

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# Git must never ask for a password on a terminal or open an editor in a build.
QUIET_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "GIT_EDITOR": "true"}


def is_full_sha(ref: str) -> bool:
    return bool(SHA_RE.match(ref.lower()))


def parse_ls_remote(text: str) -> dict[str, str]:
    """`<sha>\\t<refname>` lines -> {refname: sha}; annotated tags keep their `^{}` entry."""
    refs: dict[str, str] = {}
    for line in text.splitlines():
        sha, _, name = line.strip().partition("\t")
        if SHA_RE.match(sha) and name:
            refs[name] = sha
    return refs


def pick_ref(refs: dict[str, str], ref: str) -> tuple[str, str] | None:
    """(refname, commit) for `ref` as a tag (peeled), branch or full refname; tags win."""
    candidates = (
        [ref] if ref.startswith("refs/") else [f"refs/tags/{ref}", f"refs/heads/{ref}", ref]
    )
    for name in candidates:
        peeled = refs.get(f"{name}^{{}}")
        if peeled:
            return name, peeled
        if name in refs:
            return name, refs[name]
    return None


def parse_status_porcelain(text: str) -> list[str]:
    """Paths that make a tree dirty (modified, staged, untracked)."""
    return [line[3:] for line in text.splitlines() if len(line) > 3]


class Git(Tool):
    """Adapter for the git CLI; every call goes through the Runner."""

    names = ("git",)
    hint = "install git (apt-get install git / xcode-select)"

    def run(self, *args: str | Path, cwd: Path | None = None, check: bool = True) -> str:
        result = self.runner.run([self.exe, *args], cwd=cwd, env=QUIET_ENV, check=check)
        return result.stdout

    def ls_remote(self, url: str, ref: str) -> dict[str, str]:
        patterns = [ref] if ref.startswith("refs/") else [ref, f"{ref}^{{}}"]
        try:
            out = self.run("ls-remote", "--", url, *patterns)
        except ToolError as exc:
            raise ToolError(
                f"cannot list refs of {url}: {exc.message}",
                hint="check the URL and your network; a local path works too",
            ) from exc
        return parse_ls_remote(out)

    def resolve(self, url: str, ref: str) -> tuple[str, str]:
        """(refname, full commit) of `ref` on the remote; a full SHA is taken as is."""
        if is_full_sha(ref):
            return ref.lower(), ref.lower()
        found = pick_ref(self.ls_remote(url, ref), ref)
        if found is None:
            raise InputError(
                f"ref '{ref}' not found in {url}",
                hint="use a tag, a branch or a full 40-character commit",
            )
        return found

    def ensure_repo(self, path: Path, url: str) -> None:
        if not (path / ".git").exists():
            path.mkdir(parents=True, exist_ok=True)
            self.run("init", "-q", path)
            self.run("remote", "add", "origin", url, cwd=path)
        else:
            self.run("remote", "set-url", "origin", url, cwd=path)

    def fetch(self, path: Path, what: str) -> None:
        """Shallow fetch of one ref or commit (depth 1: llama.cpp's history is large)."""
        self.run("fetch", "-q", "--depth", "1", "--no-tags", "origin", what, cwd=path)

    def checkout(self, path: Path, commit: str) -> None:
        self.run("checkout", "-q", "--detach", "--force", commit, cwd=path)

    def head(self, path: Path) -> str:
        return self.run("rev-parse", "HEAD", cwd=path).strip()

    def head_or_none(self, path: Path) -> str | None:
        """HEAD of `path`, or None when it is no repository or has no commit yet."""
        if not (path / ".git").exists():
            return None
        result = self.runner.run(
            [self.exe, "rev-parse", "HEAD"], cwd=path, env=QUIET_ENV, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def toplevel(self, path: Path) -> Path | None:
        result = self.runner.run(
            [self.exe, "rev-parse", "--show-toplevel"], cwd=path, env=QUIET_ENV, check=False
        )
        return Path(result.stdout.strip()) if result.returncode == 0 else None

    def dirty(self, path: Path) -> list[str]:
        """Changed or untracked files under `path` (only there, not the whole repository)."""
        out = self.run("status", "--porcelain", "--untracked-files=normal", "--", ".", cwd=path)
        return parse_status_porcelain(out)

    def commit_time(self, path: Path, commit: str = "HEAD") -> int | None:
        """The committer time of `commit` (SOURCE_DATE_EPOCH), None when git cannot tell."""
        result = self.runner.run(
            [self.exe, "show", "-s", "--format=%ct", commit, "--"],
            cwd=path,
            env=QUIET_ENV,
            check=False,
        )
        text = result.stdout.strip()
        return int(text) if result.returncode == 0 and text.isdigit() else None

    def version(self) -> str:
        return self.run("--version").strip()
