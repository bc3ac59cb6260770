"""`llamabuild sign`: real signing of real Mach-O fixtures (thin and fat), read back
independently; the macOS codesign path by its exact argv and recorded output."""

from __future__ import annotations

import json
import logging
import plistlib
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.core.errors import ToolNotFoundError
from llamabuild.inspect import inspect_binary
from llamabuild.signing import entitlements as ent
from llamabuild.signing.sign import SignRequest, choose_signer, sign_binary
from llamabuild.tools.codesign import Codesign, parse_display, sign_argv
from llamabuild.tools.rcodesign import Rcodesign, parse_entities, parse_problems
from llamabuild.tools.runner import Result, Runner
from tests.fixtures.cms import make_identity
from tests.fixtures.cms import make_p12 as fixture_p12
from tests.fixtures.macho import MachOFactory, system, tool

SANDBOX = "com.apple.security.app-sandbox"
INHERIT = "com.apple.security.inherit"
HELPER = {SANDBOX: True, INHERIT: True}
IDENT = "com.example.myapp.llama-server"
PASSWORD = "pw-Zq8!never-shown"


@pytest.fixture(scope="session")
def thin(macho: MachOFactory) -> Path:
    return macho.build("sign_thin", system("libSystem", "libc++", "Metal"))


@pytest.fixture(scope="session")
def fat(macho: MachOFactory, thin: Path) -> Path:
    x86 = macho.build("sign_x86", system("libSystem", "libc++"), arch="x86_64")
    return macho.fat("sign_fat", [thin, x86])


def copy(src: Path, tmp_path: Path, name: str = "llama-server") -> Path:
    dest = tmp_path / "My App" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def sign_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = run(["sign", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def lief_signature_bytes(path: Path) -> list[bytes]:
    """The raw signature of every slice, located by LIEF (not by llamabuild's reader)."""
    import lief

    parsed = lief.MachO.parse(str(path))
    return [bytes(parsed.at(i).code_signature.content) for i in range(parsed.size)]


def engine_view(path: Path) -> list[Any]:
    """The rcodesign engine's own reader: one display per slice."""
    import apple_platform

    return [parse_entities([e]) for e in apple_platform.read_signature(str(path))]


@pytest.fixture(autouse=True)
def no_codesign_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as off a Mac even if some `codesign` happens to be installed."""
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): None)


# ------------------------------------------------------------------ the must-show case


@pytest.mark.compile
def test_app_helper_reads_back_exactly(thin, tmp_path, capsys):
    target = copy(thin, tmp_path)
    code, payload = sign_json(capsys, str(target), "--preset", "app-helper", "--identifier", IDENT)
    assert code == 0, payload
    assert payload["ok"] is True
    assert payload["engine"] == "rcodesign"
    # independent read-back: llamabuild's own SuperBlob parser
    (sl,) = inspect_binary(target).slices
    assert sl.signature is not None
    assert sl.signature.entitlements == HELPER  # exactly these two, nothing else
    assert "runtime" in sl.signature.flags
    assert sl.signature.identifier == IDENT
    # cross-checks: LIEF locates the same blob, the engine's reader agrees, otool sees it
    (raw,) = lief_signature_bytes(target)
    assert IDENT.encode() in raw
    assert f"<key>{INHERIT}</key>".encode() in raw
    (view,) = engine_view(target)
    assert (view.identifier, view.entitlements) == (IDENT, HELPER)
    assert "runtime" in view.flags
    otool = subprocess.run(
        [tool("llvm-otool"), "-l", str(target)], capture_output=True, text=True, check=True
    )
    assert "LC_CODE_SIGNATURE" in otool.stdout
    # verify learns signatures: per-slice info and --require-sandbox passes
    assert run(["verify", str(target), "--require-sandbox", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    sig = report["slices"][0]["signature"]
    assert report["slices"][0]["signed"] is True
    assert (sig["identifier"], sig["entitlements"]) == (IDENT, HELPER)
    assert "runtime" in sig["flags"]
    assert [p.name for p in target.parent.iterdir()] == ["llama-server"]  # no temp left


@pytest.mark.compile
def test_fat_binary_every_slice_is_signed_and_proven(fat, tmp_path, capsys):
    target = copy(fat, tmp_path)
    code, payload = sign_json(capsys, str(target), "--preset", "standalone-server")
    assert code == 0, payload
    binary = inspect_binary(target)
    assert binary.fat
    assert sorted(binary.archs) == ["arm64", "x86_64"]
    expected = ent.resolve(preset="standalone-server").data
    for sl in binary.slices:
        assert sl.signature is not None
        assert sl.signature.identifier == "llama-server"  # default: the file name
        assert sl.signature.entitlements == expected
        assert "runtime" in sl.signature.flags
    assert len(lief_signature_bytes(target)) == 2
    assert all(v.identifier == "llama-server" for v in engine_view(target))
    assert {s["arch"] for s in payload["slices"]} == {"arm64", "x86_64"}


@pytest.mark.compile
def test_no_runtime_and_human_output(thin, tmp_path, capsys):
    target = copy(thin, tmp_path, "llama server")  # a space in the file name too
    assert run(["sign", str(target), "--no-runtime"]) == 0
    out = capsys.readouterr().out
    assert "signed" in out
    assert "app-sandbox" in out
    (sl,) = inspect_binary(target).slices
    assert sl.signature is not None
    assert "runtime" not in sl.signature.flags
    assert sl.signature.identifier == "llama server"


@pytest.mark.compile
def test_human_output_shows_markup_literally(thin, tmp_path, capsys):
    target = tmp_path / "a[" / "]b [red]c" / "llama-server"  # the path text holds "[/]"
    target.parent.mkdir(parents=True)
    shutil.copy2(thin, target)
    ident = "x.[bold]y[/]"
    team = "com.apple.developer.team-identifier"
    args = ["sign", str(target), "--identifier", ident, "--set", f"{team}=T[/]1"]
    code = run(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{target} via rcodesign (ad-hoc)" in out
    assert f"signed {target}" in out
    assert ident in out and "'T[/]1'" in out
    (sl,) = inspect_binary(target).slices
    assert sl.signature is not None and sl.signature.identifier == ident


@pytest.mark.compile
def test_resigning_a_signed_binary_replaces_the_signature(thin, tmp_path, capsys):
    target = copy(thin, tmp_path)
    assert run(["sign", str(target), "--preset", "standalone-server"]) == 0
    assert run(["sign", str(target), "--preset", "app-helper", "--identifier", IDENT]) == 0
    capsys.readouterr()
    (sl,) = inspect_binary(target).slices
    assert sl.signature is not None
    assert sl.signature.entitlements == HELPER


@pytest.mark.compile
def test_a_symlink_signs_its_target_and_stays_a_link(thin, tmp_path, capsys):
    target = copy(thin, tmp_path, "llama-server-b1234")
    link = target.parent / "llama-server"
    link.symlink_to(target.name)  # relative, like a versioned install
    code, payload = sign_json(capsys, str(link), "--preset", "app-helper")
    assert code == 0, payload
    assert link.is_symlink() and link.resolve() == target
    assert payload["path"] == str(target)
    (sl,) = inspect_binary(target).slices
    assert sl.signature is not None
    assert sl.signature.entitlements == HELPER
    assert sl.signature.identifier == "llama-server"  # the name that was given
    assert sorted(p.name for p in target.parent.iterdir()) == [link.name, target.name]


# ------------------------------------------------------------------ failures leave input as is


@dataclass
class WrongIdentifier:
    """A real engine told the wrong thing: the read-back must catch it."""

    inner: Rcodesign
    name: str = "rcodesign"

    def sign(self, request: SignRequest, target: Path) -> None:
        from dataclasses import replace

        self.inner.sign(replace(request, identifier="something.else", runtime=False), target)

    def verify(self, target: Path) -> list:
        return self.inner.verify(target)

    def display(self, target: Path):
        return self.inner.display(target)


@pytest.mark.compile
def test_a_wrong_signature_is_caught_and_not_published(thin, tmp_path):
    target = copy(thin, tmp_path)
    before = target.read_bytes()
    signer = WrongIdentifier(Rcodesign(Runner()))
    result = sign_binary(target, SignRequest(identifier=IDENT), ent.resolve(), signer=signer)
    assert not result.published
    got = {f.rule for f in result.findings}
    assert {"signature-identifier", "signature-runtime", "signer-display"} <= got
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["llama-server"]


@pytest.mark.compile
def test_entitlements_lint_error_refuses_to_sign(thin, tmp_path, capsys):
    target = copy(thin, tmp_path)
    before = target.read_bytes()
    code, payload = sign_json(capsys, str(target), "--set", f"{INHERIT}=yes")
    assert code == 1
    assert payload["signed"] is False
    assert [f["rule"] for f in payload["findings"]] == ["entitlement-type"]
    assert target.read_bytes() == before


def test_not_a_macho_exits_2(tmp_path, capsys):
    elf = tmp_path / "true"
    shutil.copy2("/bin/true", elf)
    assert run(["sign", str(elf)]) == 2
    assert "only Mach-O" in capsys.readouterr().err
    assert run(["sign", str(tmp_path / "missing")]) == 2


@pytest.mark.compile
def test_a_named_identity_needs_codesign_off_macos(thin, tmp_path, capsys):
    target = copy(thin, tmp_path)
    assert run(["sign", str(target), "--identity", "Apple Development: Jane (ABCDE12345)"]) == 2
    assert "--p12" in capsys.readouterr().err


# ------------------------------------------------------------------ PKCS#12 identity


def make_p12(path: Path, password: str, legacy: bool = True) -> Path:
    """A self-signed code-signing certificate + key as PKCS#12 (what Keychain exports)."""
    signer = make_identity("llamabuild test signer", "ABCDE12345")
    return fixture_p12(path, signer, password, legacy=legacy)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture):
    """Every log line, also after the CLI's logging.basicConfig(force=True) and with the
    native engine's own log capture at its most verbose."""
    import apple_platform

    handler = Collect()
    names = ("llamabuild", "apple_platform", "apple_platform.rust")
    for n in names:
        logging.getLogger(n).addHandler(handler)
    caplog.set_level(logging.DEBUG)
    apple_platform.set_log_level("trace")
    yield lambda: handler.lines + [r.getMessage() for r in caplog.records]
    apple_platform.set_log_level("off")
    for n in names:
        logging.getLogger(n).removeHandler(handler)


@pytest.mark.compile
def test_p12_identity_signs_and_never_shows_the_password(
    fat, tmp_path, capsys, monkeypatch, all_logs
):
    target = copy(fat, tmp_path)
    p12 = make_p12(tmp_path / "My Certs" / "signer id.p12", PASSWORD)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
    code = run(
        [
            "--verbose",
            "sign",
            str(target),
            "--p12",
            str(p12),
            "--identifier",
            IDENT,
            "--no-timestamp",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert code == 0, payload
    assert payload["identity"] == "p12"
    for sl in inspect_binary(target).slices:
        assert sl.signature is not None
        assert not sl.signature.adhoc  # a CMS signature by the p12's certificate
        assert sl.signature.entitlements == HELPER
        assert "runtime" in sl.signature.flags
    logs = all_logs()
    assert logs  # --verbose did log something
    for text in (out, err, *logs):
        assert PASSWORD not in text


@pytest.mark.compile
def test_p12_wrong_or_missing_password(fat, tmp_path, capsys, monkeypatch, all_logs):
    target = copy(fat, tmp_path)
    before = target.read_bytes()
    p12 = make_p12(tmp_path / "id.p12", PASSWORD)
    monkeypatch.delenv("LLAMABUILD_P12_PASSWORD", raising=False)
    assert run(["sign", str(target), "--p12", str(p12), "--no-timestamp"]) == 2
    assert "LLAMABUILD_P12_PASSWORD" in capsys.readouterr().err
    wrong = "wrong-" + PASSWORD
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", wrong)
    assert run(["--verbose", "sign", str(target), "--p12", str(p12), "--no-timestamp"]) == 2
    out, err = capsys.readouterr()
    assert "PKCS#12" in err
    for text in (out, err, *all_logs()):
        assert wrong not in text
        assert PASSWORD not in text
    assert target.read_bytes() == before


@pytest.mark.compile
def test_p12_with_modern_encryption_gets_a_useful_hint(thin, tmp_path, capsys, monkeypatch):
    target = copy(thin, tmp_path)
    p12 = make_p12(tmp_path / "aes.p12", PASSWORD, legacy=False)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
    code = run(["sign", str(target), "--p12", str(p12), "--no-timestamp"])
    err = capsys.readouterr().err
    if code == 0:  # a newer engine reads AES-encrypted archives: fine too
        return
    assert code == 2
    assert "-legacy" in err
    assert PASSWORD not in err


def test_p12_and_identity_exclude_each_other(tmp_path, capsys):
    assert run(["sign", "x", "--p12", "y.p12", "--identity", "Jane"]) == 2
    assert "exclude" in capsys.readouterr().err


# ------------------------------------------------------------------ the macOS codesign path

RECORDED_ENTITLEMENTS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "https://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>com.apple.security.app-sandbox</key>
	<true/>
	<key>com.apple.security.inherit</key>
	<true/>
</dict>
</plist>
"""
APP = "/Users/jane/Library/Developer/Xcode/DerivedData/My_App-abc/Build/Products/Release/My App.app"
RECORDED_STDERR = f"""Executable={APP}/Contents/Resources/llama-server
Identifier=com.example.myapp.llama-server
Format=Mach-O universal (x86_64 arm64)
CodeDirectory v=20500 size=96875 flags=0x10000(runtime) hashes=3016+7 location=embedded
Signature size=4790
Authority=Apple Development: Jane Doe (ABCDE12345)
Authority=Apple Worldwide Developer Relations Certification Authority
Authority=Apple Root CA
Timestamp=2 Mar 2025 at 10:14:03
Info.plist=not bound
TeamIdentifier=ABCDE12345
Runtime Version=14.5.0
Sealed Resources=none
Internal requirements count=1 size=216
Warning: Specifying ':' in the path is deprecated and will not work in a future release
"""


def test_parse_recorded_codesign_display():
    info = parse_display(RECORDED_ENTITLEMENTS, RECORDED_STDERR)
    assert info.identifier == IDENT
    assert info.flags == ("runtime",)
    assert info.team_id == "ABCDE12345"
    assert info.entitlements == HELPER
    assert info.executable is not None and info.executable.endswith(
        "My App.app/Contents/Resources/llama-server"
    )


def test_parse_codesign_display_without_entitlements():
    info = parse_display("", "Executable=/tmp/llama-server\n")
    assert info.entitlements is None
    assert info.identifier is None
    assert info.executable == "/tmp/llama-server"


@dataclass
class RecordingRunner(Runner):
    """Records argv. With `emulate`, does what codesign would do, with the real engine, so the
    whole flow (sign, verify, display, independent read-back) runs on real binaries."""

    emulate: bool = False
    argvs: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str | Path], **kw: Any) -> Result:  # type: ignore[override]
        args = tuple(str(a) for a in argv)
        self.argvs.append(args)
        out = err = ""
        if self.emulate:
            out, err = self._emulate(args)
        return Result(args, 0, out, err, 0.0)

    def _emulate(self, args: tuple[str, ...]) -> tuple[str, str]:
        import apple_platform

        target = args[-1]
        if "--force" in args:
            opt = {
                args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("--")
            }
            apple_platform.sign(
                target,
                binary_identifier=opt.get("--identifier"),
                entitlements_xml_file=opt.get("--entitlements"),
                code_signature_flags=["runtime"] if opt.get("--options") == "runtime" else [],
            )
        if args[1] == "-d":
            view = parse_entities(apple_platform.read_signature(target))
            return plistlib.dumps(view.entitlements or {}).decode(), f"Executable={target}\n"
        return "", ""


def test_codesign_exact_argv_with_identity(tmp_path):
    runner = RecordingRunner()
    cs = Codesign(runner, Path("codesign"))
    req = SignRequest(
        identity="Apple Development: Jane Doe (ABCDE12345)",
        entitlements=tmp_path / "My App" / "e.plist",
        identifier=IDENT,
    )
    binary = tmp_path / "My App.app" / "Contents" / "Resources" / "llama-server"
    cs.sign(req, binary)
    cs.verify(binary)
    cs.display(binary)
    assert runner.argvs == [
        (
            "codesign", "--force", "--sign", "Apple Development: Jane Doe (ABCDE12345)",
            "--entitlements", str(tmp_path / "My App" / "e.plist"),
            "--options", "runtime", "--timestamp", "--identifier", IDENT, str(binary),
        ),
        ("codesign", "--verify", "--strict", "--verbose=2", str(binary)),
        ("codesign", "-d", "--entitlements", ":-", str(binary)),
    ]  # fmt: skip


def test_codesign_argv_adhoc_and_options_off(tmp_path):
    cs = Path("/usr/bin/codesign")
    e = tmp_path / "e.plist"
    adhoc = sign_argv(cs, SignRequest(entitlements=e, identifier="x"), Path("b"))
    assert adhoc == [
        "/usr/bin/codesign", "--force", "--sign", "-", "--entitlements", str(e),
        "--options", "runtime", "--identifier", "x", "b",
    ]  # fmt: skip
    named = sign_argv(
        cs,
        SignRequest(identity="ABC123", entitlements=e, identifier="x", runtime=False,
                    timestamp=False),
        Path("b"),
    )  # fmt: skip
    assert "--options" not in named
    assert "--timestamp=none" in named
    assert "--timestamp" not in named


def test_codesign_verify_failure_is_a_finding(tmp_path):
    @dataclass
    class Failing(Runner):
        def run(self, argv: Sequence[str | Path], **kw: Any) -> Result:  # type: ignore[override]
            return Result(
                tuple(map(str, argv)),
                1,
                "",
                "b: invalid signature (code or signature have been modified)",
                0.0,
            )

    (finding,) = Codesign(Failing(), Path("codesign")).verify(Path("b"))
    assert finding.rule == "codesign-verify"
    assert "invalid signature" in finding.message


@pytest.mark.compile
def test_full_flow_through_the_codesign_adapter(fat, tmp_path):
    target = copy(fat, tmp_path)
    runner = RecordingRunner(emulate=True)
    result = sign_binary(
        target, SignRequest(identifier=IDENT), ent.resolve(preset="app-helper"),
        signer=Codesign(runner, Path("codesign")),
    )  # fmt: skip
    assert result.published, result.findings
    assert result.engine == "codesign"
    signed_copy = runner.argvs[0][-1]
    assert Path(signed_copy).parent.parent == target.parent  # a temp copy beside the binary
    assert runner.argvs[0][:4] == ("codesign", "--force", "--sign", "-")
    assert [a[1] for a in runner.argvs] == ["--force", "--verify", "-d"]
    for sl in inspect_binary(target).slices:
        assert sl.signature is not None
        assert (sl.signature.identifier, sl.signature.entitlements) == (IDENT, HELPER)


def test_rcodesign_problems_are_warnings_and_adhoc_cms_is_none():
    problems = [{"description": "no CMS signature"}, {"description": "bad hash"}, "odd"]
    adhoc = parse_problems(problems, adhoc=True, target=Path("b"))
    assert [(f.rule, f.message) for f in adhoc] == [
        ("rcodesign-verify", "bad hash"),
        ("rcodesign-verify", "odd"),
    ]
    assert len(parse_problems(problems, adhoc=False, target=Path("b"))) == 3


def test_signers_are_found_on_first_use(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    cs = Codesign(Runner())  # constructing never looks for the program
    with pytest.raises(ToolNotFoundError) as err:
        cs.display(Path("b"))
    assert err.value.exit_code == 3 and "rcodesign" in (err.value.hint or "")
    assert Rcodesign(Runner()).exe.name == "apple_platform"


def test_signer_is_chosen_by_capability(monkeypatch, tmp_path):
    fake = tmp_path / "codesign"
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): fake)
    assert isinstance(choose_signer(SignRequest()), Codesign)
    assert isinstance(choose_signer(SignRequest(p12=tmp_path / "id.p12")), Rcodesign)
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): None)
    assert isinstance(choose_signer(SignRequest()), Rcodesign)


def test_engine_errors_are_translated_and_scrubbed():
    from apple_platform import errors as ap_errors

    from llamabuild.core.errors import InputError, ToolError
    from llamabuild.tools.rcodesign import _translate

    bad = _translate(ap_errors.PrivateKeyError(f"bad password {PASSWORD}"), PASSWORD)
    assert isinstance(bad, InputError)
    assert PASSWORD not in bad.message
    assert "***" in bad.message
    offline = _translate(
        ap_errors.ApplePlatformError("CMS error: Time-Stamp Protocol error: HTTP error"), None
    )
    assert isinstance(offline, ToolError)
    assert offline.hint is not None and "--no-timestamp" in offline.hint


@pytest.mark.compile
def test_no_room_for_the_signature_load_command_gets_the_headerpad_hint(
    macho: MachOFactory, tmp_path, capsys
):
    """The engine's "insufficient room to write code signature load command", for real.

    ld64.lld-19 with `-headerpad 0` leaves less than the 16 bytes LC_CODE_SIGNATURE needs
    between the load commands and __text; an x86_64 output carries no linker signature whose
    load command could be reused.
    """
    tight = macho.build(
        "sign_nopad", system("libSystem"), arch="x86_64", extra_ld=["-headerpad", "0"]
    )
    target = copy(tight, tmp_path)
    before = target.read_bytes()
    code, payload = sign_json(capsys, str(target))
    assert code == 2
    assert "insufficient room" in payload["error"]
    assert "-Wl,-headerpad_max_install_names" in payload["hint"]
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["llama-server"]


def test_engine_macho_errors_have_hints():
    from apple_platform import errors as ap_errors

    from llamabuild.core.errors import InputError
    from llamabuild.tools.rcodesign import _translate

    msg = "insufficient room to write code signature load command"
    room = _translate(ap_errors.MachOError(msg), None)
    assert isinstance(room, InputError) and room.exit_code == 2
    assert room.hint is not None and "-Wl,-headerpad_max_install_names" in room.hint
    other = _translate(ap_errors.MachOError("bad header"), None)
    assert other.hint  # type: ignore[attr-defined]
    generic = _translate(ap_errors.ApplePlatformError("something else"), None)
    assert generic.hint  # type: ignore[attr-defined]
