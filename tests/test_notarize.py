"""`llamabuild notarize`: a real Developer ID-ready binary made here (signed by the rcodesign
engine with a Developer ID certificate generated in the session, plus a real RFC 3161 token);
Apple's notarytool and notary service are the only things not run: the Runner records the exact
argv and answers with recorded JSON in Apple's shapes (tests/data/notary/)."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.core.errors import ToolError, UsageError
from llamabuild.signing.notarize import STAPLE_NOTE, notarize, zip_executable
from llamabuild.tools.notarytool import (
    Credentials,
    EngineNotary,
    Notarytool,
    engine_credentials,
    log_argv,
    parse_log,
    parse_submission,
    submit_argv,
)
from llamabuild.tools.runner import Result, Runner
from tests.fixtures.cms import apple_issued, make_identity, make_p12
from tests.fixtures.macho import MachOFactory, system
from tests.test_developer_id import PASSWORD, add_timestamp

DATA = Path(__file__).parent / "data" / "notary"
XCRUN = Path("/usr/bin/xcrun")
PROFILE = Credentials(keychain_profile="llama notary")
API_KEY = Credentials(key=Path("/keys/My Keys/AuthKey_ABC123.p8"), key_id="ABC123", issuer="i-5")


def recorded(name: str) -> str:
    return (DATA / name).read_text()


@dataclass
class NotaryRunner(Runner):
    """Answers `xcrun notarytool` with recorded output, in order, and records every argv."""

    answers: list[Result] = field(default_factory=list)
    argvs: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str | Path], **kw: Any) -> Result:  # type: ignore[override]
        args = tuple(str(a) for a in argv)
        self.argvs.append(args)
        answer = self.answers.pop(0)
        return Result(args, answer.returncode, answer.stdout, answer.stderr, 0.0)


def answer(stdout: str, code: int = 0, stderr: str = "") -> Result:
    return Result((), code, stdout, stderr, 0.0)


@pytest.fixture(scope="session")
def ready(macho: MachOFactory, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Developer ID-ready executable: hardened runtime, Developer ID certificate, timestamp."""
    import apple_platform

    folder = tmp_path_factory.mktemp("ready")
    dev = apple_issued("Developer ID Application: Example Corp (ABCDE12345)", developer_id=True)
    p12 = make_p12(folder / "devid.p12", dev, PASSWORD)
    target = shutil.copy2(macho.build("notary_arm", system("libSystem")), folder / "llama-server")
    signer = apple_platform.Signer(p12=apple_platform.P12Key(path=str(p12), password=PASSWORD))
    apple_platform.sign(
        str(target), signer=signer, code_signature_flags=["runtime"], timestamp_url="none"
    )
    tsa = make_identity("Example TSA", "TSA", code_signing=False, timestamping=True)
    add_timestamp(Path(target), tsa)
    return Path(target)


def copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "dist dir" / "llama-server"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


# --- argv and parsing (pure) ------------------------------------------------------------------


def test_submit_and_log_argv():
    z = Path("/tmp/a b/llama-server.zip")
    assert submit_argv(XCRUN, z, PROFILE, 30) == [
        "/usr/bin/xcrun", "notarytool", "submit", "/tmp/a b/llama-server.zip", "--wait",
        "--timeout", "30m", "--output-format", "json", "--keychain-profile", "llama notary",
    ]  # fmt: skip
    assert log_argv(XCRUN, "id-1", API_KEY) == [
        "/usr/bin/xcrun", "notarytool", "log", "id-1", "--output-format", "json",
        "--key", "/keys/My Keys/AuthKey_ABC123.p8", "--key-id", "ABC123", "--issuer", "i-5",
    ]  # fmt: skip
    with pytest.raises(UsageError, match="needs credentials"):
        Credentials(key_id="ABC123").argv()


def test_parse_recorded_answers():
    ok = parse_submission(recorded("submit-accepted.json"))
    assert (ok.id, ok.status, ok.finished) == (
        "2efe2717-52ef-43a5-96dc-0797e4ca1041",
        "Accepted",
        True,
    )
    assert (
        parse_submission(
            "Conducting pre-submission checks...\n" + recorded("submit-invalid.json")
        ).status
        == "Invalid"
    )
    pending = parse_submission(recorded("submit-in-progress.json"))
    assert pending.status == "In Progress" and not pending.finished
    api = parse_submission(recorded("api-accepted.json"))  # the engine's Notary API shape
    assert (api.id, api.status) == ("2efe2717-52ef-43a5-96dc-0797e4ca1041", "Accepted")
    log = parse_log(recorded("log-invalid.json"))
    assert log.status == "Invalid"
    assert log.summary == "Archive contains critical validation errors"
    assert [i.message for i in log.issues] == [
        "The signature does not include a secure timestamp.",
        "The binary is not signed with a valid Developer ID certificate.",
    ]
    assert log.issues[0].architecture == "arm64" and log.issues[0].doc_url.endswith("#3087733")
    with pytest.raises(ToolError, match="no JSON"):
        parse_submission("Error: HTTP status code: 401. Unable to authenticate.")


def test_zip_is_ditto_like_and_reproducible(ready, tmp_path):
    a = zip_executable(ready, tmp_path / "a.zip")
    b = zip_executable(ready, tmp_path / "b.zip")
    assert a == b and (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        (info,) = zf.infolist()
        assert info.filename == "llama-server"  # the file itself at the root (--keepParent)
        assert stat.S_IMODE(info.external_attr >> 16) == 0o755
        assert zf.read(info) == ready.read_bytes()


# --- the whole command, on a Mac's notarytool (recorded) ----------------------------------------


def test_accepted(ready, tmp_path, capsys):
    target = copy(ready, tmp_path)
    runner = NotaryRunner(answers=[answer(recorded("submit-accepted.json"))])
    report = notarize(target, PROFILE, 30, Notarytool(runner, XCRUN), keep_zip=tmp_path / "k.zip")
    assert report.ok and report.findings == []
    (argv,) = runner.argvs
    assert argv[:4] == ("/usr/bin/xcrun", "notarytool", "submit", argv[3])
    assert argv[3].endswith("/llama-server.zip") and argv[4:] == (
        "--wait", "--timeout", "30m", "--output-format", "json",
        "--keychain-profile", "llama notary",
    )  # fmt: skip
    out = report
    assert out.status == "Accepted" and out.stapled is False and out.staple_note == STAPLE_NOTE
    assert out.zip_sha256 == zip_executable(target, tmp_path / "again.zip")
    assert (tmp_path / "k.zip").is_file()


def write_key(folder: Path) -> Path:
    key = folder / "My Keys" / "AuthKey_ABC123.p8"
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n")
    return key


def test_invalid_even_though_notarytool_exits_0(ready, tmp_path):
    target = copy(ready, tmp_path)
    runner = NotaryRunner(
        answers=[answer(recorded("submit-invalid.json")), answer(recorded("log-invalid.json"))]
    )
    creds = Credentials(key=write_key(tmp_path), key_id="ABC123", issuer="i-5")
    report = notarize(target, creds, 60, Notarytool(runner, XCRUN))
    assert not report.ok
    assert runner.argvs[1] == tuple(log_argv(XCRUN, "8c1a9b4e-1f3d-4c55-9a77-3f2b6d0e9c12", creds))
    assert [f.rule for f in report.findings] == ["notarization-rejected"] * 3
    assert "status Invalid" in report.findings[0].message
    assert "Archive contains critical validation errors" in report.findings[0].message
    assert (
        "secure timestamp" in report.findings[1].message and "arm64" in report.findings[1].message
    )
    assert report.findings[1].hint.endswith("#3087733")
    assert len(report.issues) == 2


def test_in_progress_then_timeout_is_exit_3(ready, tmp_path):
    target = copy(ready, tmp_path)
    runner = NotaryRunner(answers=[answer(recorded("submit-in-progress.json"), code=0)])
    with pytest.raises(ToolError, match="still In Progress after 1 min") as info:
        notarize(target, PROFILE, 1, Notarytool(runner, XCRUN))
    assert "notarytool info 5b0f6a3c" in (info.value.hint or "")
    assert len(runner.argvs) == 1  # no log for an undecided submission


def test_notarytool_failure_without_json(ready, tmp_path):
    target = copy(ready, tmp_path)
    runner = NotaryRunner(answers=[answer("", 69, "Error: No Keychain password item found")])
    with pytest.raises(ToolError, match="exit code 69"):
        notarize(target, PROFILE, 5, Notarytool(runner, XCRUN))


def test_preflight_refuses_before_any_upload(macho, tmp_path):
    """Linker-signed only: notarization would refuse it, so nothing is zipped or sent."""
    target = copy(macho.build("notary_plain", system("libSystem")), tmp_path)
    runner = NotaryRunner()
    report = notarize(target, PROFILE, 5, Notarytool(runner, XCRUN))
    assert runner.argvs == [] and report.submission is None
    assert {f.rule for f in report.findings} == {
        "developer-id-certificate",
        "developer-id-runtime",
    }


# --- the CLI, and the engine's client off a Mac -------------------------------------------------


def test_cli_json_and_credentials_never_shown(ready, tmp_path, capsys, monkeypatch):
    target = copy(ready, tmp_path)
    runner = NotaryRunner(
        answers=[answer(recorded("submit-invalid.json")), answer(recorded("log-invalid.json"))]
    )
    monkeypatch.setattr(
        "llamabuild.signing.notarize.choose_notary", lambda runner_=None: Notarytool(runner, XCRUN)
    )
    key = tmp_path / "AuthKey_ABC123.p8"
    key.write_text("-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n")
    args = ["notarize", str(target), "--key", str(key), "--key-id", "ABC123", "--issuer", "i-5"]
    assert run([*args, "--json"]) == 1
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert payload["ok"] is False and payload["status"] == "Invalid"
    assert payload["credentials"] == "API key ABC123"
    assert payload["stapled"] is False and "bare executable" in payload["staple_note"]
    assert "SECRETKEYMATERIAL" not in out + err
    runner.answers[:] = [answer(recorded("submit-accepted.json"))]
    assert run(args) == 0
    human = capsys.readouterr().out
    assert "Accepted" in human and "stapled" in human
    assert "SECRETKEYMATERIAL" not in human


def test_engine_credentials_off_a_mac():
    assert engine_credentials(Credentials(key=Path("k.json"))) == {"api_key_path": "k.json"}
    assert engine_credentials(Credentials(key_id="K", issuer="I")) == {
        "api_issuer": "I",
        "api_key": "K",
    }
    with pytest.raises(UsageError, match="needs notarytool on a Mac"):
        engine_credentials(PROFILE)
    with pytest.raises(UsageError, match="off a Mac"):
        engine_credentials(API_KEY)  # a bare .p8 path: notarytool only
    with pytest.raises(UsageError, match="needs credentials"):
        engine_credentials(Credentials())


def test_cli_missing_file_and_credentials(ready, tmp_path, capsys):
    assert run(["notarize", str(tmp_path / "nope"), "--keychain-profile", "p"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(["notarize", str(ready), "--json"]) == 2  # no credentials: JSON error object
    assert json.loads(capsys.readouterr().out)["error"] == "notarization needs credentials"


def test_engine_client_answers(ready, tmp_path, monkeypatch):
    """The engine's notary client talks to Apple: its two calls answer recorded data."""
    import apple_platform.notarize as engine

    calls: list[tuple[str, Any]] = []

    def submit(path: str, creds: Any, *, wait_seconds: int | None = None) -> dict[str, Any]:
        calls.append(("submit", (Path(path).name, creds.to_config(), wait_seconds)))
        return {"submission_id": "8c1a", "response": json.loads(recorded("api-accepted.json"))}

    monkeypatch.setattr(engine, "submit", submit)
    target = copy(ready, tmp_path)
    creds = Credentials(key_id="K", issuer="I")
    report = notarize(target, creds, 2, EngineNotary(NotaryRunner()))
    assert report.ok and report.engine == "rcodesign"
    assert calls == [("submit", ("llama-server.zip", {"api_issuer": "I", "api_key": "K"}, 120))]
    monkeypatch.setattr(
        engine, "submit", lambda *a, **k: {"submission_id": "8c1a", "response": None}
    )
    with pytest.raises(ToolError, match="still In Progress"):
        notarize(target, creds, 2, EngineNotary(NotaryRunner()))


def _hostile_keys(tmp_path: Path) -> dict[str, Path]:
    import os

    fifo = tmp_path / "AuthKey_FIFO.p8"
    os.mkfifo(fifo)
    big = tmp_path / "AuthKey_BIG.p8"
    with big.open("wb") as fh:
        fh.truncate(3 << 30)  # 3 GB on paper: never read
    garbage = tmp_path / "AuthKey_JUNK.p8"
    garbage.write_text("SECRET-NOT-A-KEY")
    bad_json = tmp_path / "key.json"
    bad_json.write_text('{"SECRET": 1}')
    return {
        "missing": tmp_path / "AuthKey_NONE.p8",
        "directory": tmp_path,
        "fifo": fifo,
        "device": Path("/dev/zero"),
        "3 GB": big,
        "garbage": garbage,
        "json without the key fields": bad_json,
    }


@pytest.mark.parametrize("engine", ["notarytool", "rcodesign"])
def test_a_key_that_is_no_key_is_exit_2_before_any_work(ready, tmp_path, engine, monkeypatch):
    """A missing or garbage --key said "check the API key and the network" (exit 3); a FIFO,
    a directory or /dev/zero "cannot be used off a Mac"; a 3 GB key was read whole."""
    import time

    from llamabuild.tools.notarytool import EngineNotary

    target = copy(ready, tmp_path)
    runner = NotaryRunner(answers=[])
    notary = Notarytool(runner, XCRUN) if engine == "notarytool" else EngineNotary(runner)
    monkeypatch.setattr("llamabuild.signing.notarize.choose_notary", lambda runner_=None: notary)
    for name, key in _hostile_keys(tmp_path).items():
        start = time.monotonic()
        args = ["notarize", str(target), "--key", str(key), "--key-id", "K", "--issuer", "i"]
        assert run(args) == 2, name
        assert time.monotonic() - start < 5, name
        assert runner.argvs == [], name  # nothing was submitted


def test_key_errors_name_the_file_never_its_contents(ready, tmp_path, capsys):
    target = copy(ready, tmp_path)
    for key in _hostile_keys(tmp_path).values():
        run(["notarize", str(target), "--key", str(key), "--key-id", "K", "--issuer", "i"])
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "SECRET" not in err and "Traceback" not in err
