"""Source pinning against real git repositories and archives made in the test."""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.core.errors import ConfigError, InputError
from llamabuild.source import archive, lock
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


# --- archive members that would escape their folder, on both tarfile paths ----------------------
#
# Python 3.11.4+ has tarfile's "data" filter; 3.11.0-3.11.3 (Debian 12: 3.11.2) has none, and
# llamabuild writes the members itself by the same rules. `extraction` runs each test on both:
# the fallback is forced here by taking tarfile.data_filter away, as an old tarfile lacks it.


@pytest.fixture(params=["data-filter", "no-filter"])
def extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "no-filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
        assert not archive.has_data_filter()
    elif not archive.has_data_filter():
        pytest.skip(f"this Python ({sys.version.split()[0]}) has no tarfile filters")
    return str(request.param)


def member(
    name: str,
    data: bytes | None = b"",
    *,
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    mode: int = 0o644,
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, mode
    info.uid, info.gid, info.uname, info.gname = 4242, 4242, "mallory", "mallory"
    info.size = len(data) if data is not None and kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def tar_of(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


ESCAPES = {
    "absolute path": [member("{outside}/planted", b"x")],
    "dot-dot": [member("pkg/../../planted", b"x")],
    "symlink out": [member("pkg/out", kind=tarfile.SYMTYPE, link="../../")],
    "symlink then write through it": [
        member("pkg/ok", kind=tarfile.SYMTYPE, link="."),
        member("pkg/up", kind=tarfile.SYMTYPE, link="../.."),
        member("pkg/up/planted", b"x"),
    ],
    "absolute symlink": [member("pkg/abs", kind=tarfile.SYMTYPE, link="{outside}")],
    "hardlink out": [member("pkg/hard", kind=tarfile.LNKTYPE, link="../planted")],
    "absolute hardlink": [member("pkg/hard", kind=tarfile.LNKTYPE, link="{outside}/victim")],
    "fifo": [member("pkg/fifo", kind=tarfile.FIFOTYPE)],
    "device": [member("pkg/null", kind=tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_tar_member_escaping_its_folder_is_refused(
    tmp_path: Path, extraction: str, case: str
) -> None:
    outside = tmp_path / "outside dir"
    outside.mkdir()
    (outside / "victim").write_text("keep me\n")
    members = []
    for info, data in ESCAPES[case]:
        info = copy.copy(info)
        info.name = info.name.format(outside=outside)
        info.linkname = info.linkname.format(outside=outside)
        members.append((info, data))
    arc = tar_of(tmp_path / "evil.tar.gz", *members)
    dest = tmp_path / "cache" / "archives" / "x"
    with pytest.raises(InputError, match="unsafe member") as err:
        archive.extract(arc, dest)
    assert err.value.exit_code == 2 and err.value.hint
    assert not dest.exists()
    assert [p.name for p in (tmp_path / "cache" / "archives").iterdir()] == []  # no temp left
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "keep me\n"
    assert not (tmp_path / "planted").exists() and not (tmp_path / "cache" / "planted").exists()


def test_tar_member_check_is_the_one_the_cli_reports(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extraction: str
) -> None:
    arc = tar_of(tmp_path / "evil.tar.gz", member("pkg/../../x", b"x"))
    digest = hashlib.sha256(arc.read_bytes()).hexdigest()
    code = run(["source", "--source", str(arc), "--sha256", digest])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "unsafe member 'pkg/../../x'" in err
    assert "hint: " in err and "Traceback" not in err


def tree_of(root: Path) -> dict[str, tuple[str, int | str | bytes]]:
    out: dict[str, tuple[str, int | str | bytes]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir", 0)
        else:
            out[rel] = (oct(st.st_mode & 0o7777), path.read_bytes())
    return out


def test_tar_extracts_the_same_tree_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files, modes (setuid and group/other write dropped, the executable bit kept), symlinks
    and hard links inside the tree, a later member replacing an earlier one."""
    arc = tar_of(
        tmp_path / "ok.tar.gz",
        member("pkg-1.0/", kind=tarfile.DIRTYPE, mode=0o700),
        member("pkg-1.0/run.sh", b"#!/bin/sh\n", mode=0o4775),
        member("pkg-1.0/data.txt", b"data", mode=0o666),
        member("pkg-1.0/ro.txt", b"ro", mode=0o444),
        member("pkg-1.0/sub dir/link", kind=tarfile.SYMTYPE, link="../data.txt"),
        member("pkg-1.0/hard", kind=tarfile.LNKTYPE, link="pkg-1.0/data.txt"),
        member("pkg-1.0/twice", b"first"),
        member("pkg-1.0/twice", b"second"),
        member("./pkg-1.0/dot", b"dot"),
    )
    want = {
        "dot": ("0o644", b"dot"),
        "data.txt": ("0o644", b"data"),
        "hard": ("0o644", b"data"),
        "ro.txt": ("0o644", b"ro"),
        "run.sh": ("0o755", b"#!/bin/sh\n"),
        "sub dir": ("dir", 0),
        "sub dir/link": ("link", "../data.txt"),
        "twice": ("0o644", b"second"),
    }
    trees = {}
    for path in ("data-filter", "no-filter"):
        with monkeypatch.context() as mp:
            if path == "no-filter":
                mp.delattr(tarfile, "data_filter", raising=False)
            elif not archive.has_data_filter():
                continue
            old = os.umask(0o022)
            try:
                top = archive.extract(arc, tmp_path / path)
            finally:
                os.umask(old)
        assert top == tmp_path / path / "pkg-1.0"
        trees[path] = tree_of(top)
        assert trees[path] == want, path
        assert (top / "hard").stat().st_ino == (top / "data.txt").stat().st_ino
        assert (top / "run.sh").stat().st_uid == os.getuid()  # never the archive's owner


def test_zip_member_escaping_its_folder_is_refused(tmp_path: Path) -> None:
    for name in ("../planted", "/tmp/planted", "pkg/../../planted"):
        arc = tmp_path / "evil.zip"
        with zipfile.ZipFile(arc, "w") as zf:
            zf.writestr("pkg/ok.txt", "ok")
            zf.writestr(zipfile.ZipInfo(name), "x")  # ZipInfo keeps the name as given
        dest = tmp_path / "out"
        with pytest.raises(InputError, match="unsafe member"):
            archive.extract(arc, dest)
        assert not dest.exists() and not (tmp_path / "planted").exists()


def test_archive_source_on_a_python_without_tar_filters(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`source` from an sdist-like archive where tarfile has no filters (Python < 3.11.4)."""
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    arc, digest = make_archive(tmp_path)
    code, out, _ = cli(capsys, "source", "--source", str(arc), "--sha256", digest)
    assert code == 0, out
    root = Path(str(out["root"]))
    assert root.name == "llama.cpp" and (root / "CMakeLists.txt").is_file()
    assert (root / "ggml").is_dir()


# --- download and unpack progress --------------------------------------------------------------


def test_progress_callbacks_get_sane_numbers(
    tmp_path: Path, http_archive: tuple[str, dict[str, bytes]]
) -> None:
    url, served = http_archive
    body = os.urandom(700_000)  # several chunks
    served["body"] = body
    calls: list[tuple[int, int | None]] = []
    digest = hashlib.sha256(body).hexdigest()
    got = archive.fetch(url, digest, tmp_path / "downloads", lambda d, t: calls.append((d, t)))
    assert got.read_bytes() == body
    assert calls[0] == (0, len(body)) and calls[-1] == (len(body), len(body))
    assert len(calls) >= 3
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))
    # Cached now: no download, no progress.
    calls.clear()
    assert archive.fetch(url, digest, tmp_path / "downloads", calls.append) == got  # type: ignore[arg-type]
    assert calls == []

    arc, _ = make_archive(tmp_path)
    size = arc.stat().st_size
    unpack: list[tuple[int, int | None]] = []
    archive.extract(arc, tmp_path / "out", lambda d, t: unpack.append((d, t)))
    assert unpack and unpack[-1] == (size, size)
    assert all(t == size and 0 <= d <= size for d, t in unpack)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(unpack))


def test_transfer_display_shows_bytes_and_speed() -> None:
    from rich.console import Console

    from llamabuild.source import TransferDisplay

    screen = io.StringIO()
    display = TransferDisplay(Console(file=screen, force_terminal=True, width=100))
    step = display.step("download pkg [red]1.0.tar.gz")
    for done in range(0, 3_000_001, 1_000_000):
        step(done, 3_000_000)
        time.sleep(0.01)  # a speed needs time between two updates
    display.close()
    text = screen.getvalue()
    assert "download pkg [red]1.0.tar.gz" in text  # a file name, never markup
    assert "3.0/3.0 MB" in text and "/s" in text


def run_on_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run `python -m llamabuild ARGV` with stderr on a pseudo-terminal: (code, stdout, tty)."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llamabuild", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_download_and_unpack_progress_only_on_a_terminal(
    work: Path, tmp_path: Path, http_archive: tuple[str, dict[str, bytes]]
) -> None:
    url, served = http_archive
    arc, digest = make_archive(tmp_path)
    served["body"] = arc.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS")}
    env.update(TERM="xterm-256color", LLAMABUILD_CACHE=str(tmp_path / "tty cache"))
    argv = ["source", "--source", url, "--sha256", digest, "--lock", str(tmp_path / "a.lock")]
    code, out, tty = run_on_terminal(argv, work, env)
    assert code == 0, tty
    assert "download pkg-1.0.tar.gz" in tty and "unpack pkg-1.0.tar.gz" in tty
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? kB", tty)  # the speed may be "?" this fast
    # Cached: nothing to download or unpack, so no bar.
    code, out, tty = run_on_terminal(argv, work, env)
    assert code == 0 and "download" not in tty and "unpack" not in tty
    # --json on a terminal, and a plain pipe: no bar either.
    env["LLAMABUILD_CACHE"] = str(tmp_path / "json cache")
    code, out, tty = run_on_terminal([*argv, "--json", "--update"], work, env)
    assert code == 0 and json.loads(out)["pin"]["sha256"] == digest
    assert "download" not in tty and "unpack" not in tty
    env["LLAMABUILD_CACHE"] = str(tmp_path / "pipe cache")
    proc = subprocess.run(
        [sys.executable, "-m", "llamabuild", *argv, "--update"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
