"""Source pinning against real git repositories and archives made in the test."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.errors import ConfigError
from llamabuild.source import lock
from llamabuild.tools.git import parse_ls_remote, pick_ref
from tests.test_schemas import assert_file_valid

PROJECT = Path(__file__).parent / "cmake_project"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> str:
    import os

    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return out.stdout.decode().strip()


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project dir (with a space in its path) as cwd and a private cache."""
    proj = tmp_path / "My Project"
    proj.mkdir()
    monkeypatch.chdir(proj)
    monkeypatch.setenv("LLAMABUILD_CACHE", str(tmp_path / "cache dir"))
    return proj


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A llama.cpp-like git repo: annotated tag v1, lightweight release tag b42."""
    r = tmp_path / "upstream repo"
    shutil.copytree(PROJECT, r)
    git(r, "init", "-q", "-b", "master")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "first")
    git(r, "tag", "-a", "v1", "-m", "release v1")
    git(r, "tag", "b42")
    return r


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object], str]:
    code = run([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_ls_remote_parsing_peels_annotated_tags() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    refs = parse_ls_remote(f"{a}\trefs/tags/v1\n{b}\trefs/tags/v1^{{}}\n{c}\trefs/heads/main\n")
    assert pick_ref(refs, "v1") == ("refs/tags/v1", b)
    assert pick_ref(refs, "main") == ("refs/heads/main", c)
    assert pick_ref(refs, "nope") is None


def test_git_tag_resolves_to_full_commit_and_locks(
    work: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = repo.as_uri()
    code, out, _ = cli(capsys, "source", "--source", url, "--ref", "v1")
    assert code == 0, out
    pin = lock.read(work / "llamabuild.lock")
    assert pin is not None
    assert_file_valid("lock", work / "llamabuild.lock")
    assert pin.commit == git(repo, "rev-parse", "v1^{commit}")  # peeled, not the tag object
    assert pin.commit != git(repo, "rev-parse", "v1")
    assert pin.refname == "refs/tags/v1" and pin.kind == "git"
    root = Path(str(out["root"]))
    assert (root / "CMakeLists.txt").is_file()
    assert git(root, "rev-parse", "HEAD") == pin.commit
    # The same again is a no-op that matches the lock.
    code, out, _ = cli(capsys, "source")
    assert code == 0 and out["lock_written"] is False


def test_release_tag_gives_build_number(
    work: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "source", "--source", repo.as_uri(), "--ref", "b42")
    assert code == 0
    assert out["pin"]["build_number"] == 42  # type: ignore[index]


def test_moved_tag_is_an_error_naming_both(
    work: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "source", "--source", repo.as_uri(), "--ref", "v1")[0] == 0
    old = git(repo, "rev-parse", "v1^{commit}")
    (repo / "NEWS").write_text("moved\n")
    git(repo, "add", "NEWS")
    git(repo, "commit", "-q", "-m", "second")
    git(repo, "tag", "-f", "-a", "v1", "-m", "moved v1")
    new = git(repo, "rev-parse", "v1^{commit}")
    code, out, err = cli(capsys, "source")
    assert code == 2
    assert old in str(out["error"]) and new in str(out["error"]) and "moved" in str(out["error"])
    assert "--update" in err
    code, out, _ = cli(capsys, "source", "--update")
    assert code == 0 and out["pin"]["commit"] == new  # type: ignore[index]


def test_ref_different_from_lock_is_refused(
    work: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "source", "--source", repo.as_uri(), "--ref", "v1")[0] == 0
    code, out, _ = cli(capsys, "source", "--ref", "b42")
    assert code == 2 and "--update" in str(out["hint"])


def test_unknown_ref(work: Path, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "source", "--source", repo.as_uri(), "--ref", "v9")
    assert code == 2 and "v9" in str(out["error"])


def test_dirty_directory_refused_unless_allowed(
    work: Path, repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "ggml" / "src" / "ggml.c").write_text("int ggml_answer(void) { return 7; }\n")
    code, out, _ = cli(capsys, "source", "--source", str(repo))
    assert code == 2 and "uncommitted" in str(out["error"]) and "ggml.c" in str(out["error"])
    assert not (work / "llamabuild.lock").exists()
    code, out, _ = cli(capsys, "source", "--source", str(repo), "--allow-dirty")
    assert code == 0 and out["dirty"] == ["ggml/src/ggml.c"]
    assert out["pin"]["commit"] == git(repo, "rev-parse", "HEAD")  # type: ignore[index]


def make_archive(tmp_path: Path) -> tuple[Path, str]:
    """An sdist-like archive: top dir with llama.cpp in vendor/llama.cpp."""
    arc = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        tf.add(PROJECT, arcname="pkg-1.0/vendor/llama.cpp")
        tf.add(Path(__file__), arcname="pkg-1.0/setup.py")
    return arc, hashlib.sha256(arc.read_bytes()).hexdigest()


def test_archive_requires_and_checks_sha256(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arc, digest = make_archive(tmp_path)
    code, out, _ = cli(capsys, "source", "--source", str(arc))
    assert code == 2 and "--sha256 is required" in str(out["error"])
    wrong = "0" * 64
    code, out, _ = cli(capsys, "source", "--source", str(arc), "--sha256", wrong)
    assert code == 2 and wrong in str(out["error"]) and digest in str(out["error"])
    code, out, _ = cli(capsys, "source", "--source", str(arc), "--sha256", digest, "--ref", "b7")
    assert code == 0
    assert str(out["root"]).endswith("vendor/llama.cpp")
    pin = out["pin"]
    assert pin["sha256"] == digest and pin["subdir"] == "vendor/llama.cpp"  # type: ignore[index]
    assert pin["build_number"] == 7  # type: ignore[index]
    # A different hash than the lock names both values.
    other = "f" * 64
    code, out, _ = cli(capsys, "source", "--source", str(arc), "--sha256", other)
    assert code == 2 and digest in str(out["error"]) and other in str(out["error"])


def test_changed_archive_under_lock(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arc, digest = make_archive(tmp_path)
    assert cli(capsys, "source", "--source", str(arc), "--sha256", digest)[0] == 0
    with tarfile.open(arc, "w:gz") as tf:  # the "same" archive, republished
        tf.add(PROJECT, arcname="pkg-1.1/vendor/llama.cpp")
    new = hashlib.sha256(arc.read_bytes()).hexdigest()
    code, out, _ = cli(capsys, "source")
    assert code == 2 and digest in str(out["error"]) and new in str(out["error"])


def test_not_a_source(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "source", "--source", "no/such/thing")
    assert code == 2 and "not a git URL" in str(out["error"])


@pytest.fixture
def http_archive(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 127.0.0.1 server for /pkg-1.0.tar.gz; the test sets what it serves in `served`."""
    import http.server
    import threading

    served: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served["body"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/pkg-1.0.tar.gz", served
    finally:
        srv.shutdown()
        srv.server_close()


def test_bad_download_is_not_cached_under_the_expected_hash(
    work: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    http_archive: tuple[str, dict[str, bytes]],
) -> None:
    url, served = http_archive
    arc, digest = make_archive(tmp_path)
    served["body"] = arc.read_bytes()[:-100]  # a truncated download
    code, out, _ = cli(capsys, "source", "--source", url, "--sha256", digest)
    assert code == 2 and "mismatch" in str(out["error"]) and digest in str(out["error"])
    downloads = tmp_path / "cache dir" / "downloads" / digest
    assert not downloads.exists() or not any(downloads.iterdir())
    served["body"] = arc.read_bytes()  # fixed upstream: the next run must fetch again
    code, out, _ = cli(capsys, "source", "--source", url, "--sha256", digest)
    assert code == 0, out
    assert str(out["root"]).endswith("vendor/llama.cpp")
    assert [p.name for p in downloads.iterdir()] == ["pkg-1.0.tar.gz"]


def test_dir_vendored_in_an_app_repo_is_a_plain_dir(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "My App repo"
    shutil.copytree(PROJECT, app / "vendor" / "llama.cpp")
    git(app, "init", "-q", "-b", "main")
    git(app, "add", ".")
    git(app, "commit", "-q", "-m", "app")
    (app / "AppDelegate.swift").write_text("// uncommitted app change\n")
    for source in (app / "vendor" / "llama.cpp", app):
        code, out, _ = cli(capsys, "source", "--source", str(source), "--update")
        assert code == 0, out
        assert out["pin"]["commit"] is None and out["dirty"] == []  # type: ignore[index]
        assert out["root"] == str(app / "vendor" / "llama.cpp")
    # Its own repository inside the app's (like a submodule) keeps its own pin.
    inner = app / "vendor" / "llama.cpp"
    git(inner, "init", "-q", "-b", "master")
    git(inner, "add", ".")
    git(inner, "commit", "-q", "-m", "llama")
    code, out, _ = cli(capsys, "source", "--source", str(inner), "--update")
    assert code == 0, out
    assert out["pin"]["commit"] == git(inner, "rev-parse", "HEAD")  # type: ignore[index]
    assert out["pin"]["commit"] != git(app, "rev-parse", "HEAD")  # type: ignore[index]


def test_source_output_prints_markup_literally(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "llama [red]src"
    shutil.copytree(PROJECT, src)
    assert run(["source", "--source", str(src), "--ref", "b[/]1"]) == 0
    out = capsys.readouterr().out
    assert str(src) in out and "b[/]1" in out


def test_lock_with_unknown_or_bad_keys_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "llamabuild.lock"
    path.write_text('[source]\nkind = "git"\nurl = "https://x"\ncomit = "abc"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'source\.comit' \(did you mean") as e:
        lock.read(path)
    assert e.value.hint is not None and "--update" in e.value.hint
    path.write_text('[source]\nkind = "svn"\nurl = "https://x"\n')
    with pytest.raises(ConfigError, match=r"`source\.kind` must be one of git, dir, archive"):
        lock.read(path)
