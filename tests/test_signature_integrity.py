"""Signature integrity (llamabuild/inspect/integrity.py): every CodeDirectory's hashes are
recomputed over the file. Real Mach-O binaries linked here (clang-19 + ld64.lld-19), signed here
by the rcodesign engine through `llamabuild sign` (ad hoc and with a PKCS#12 identity made in
the session), thin and fat (llvm-lipo-19), then modified the ways that break helpers in the
field: a byte patched in __TEXT, strip after signing, an entitlements blob swapped. The
engine's own verifier cross-checks; `codesign --verify --strict` does on a Mac."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llamabuild.cli import run
from llamabuild.core.errors import InputError
from llamabuild.inspect import inspect_binary
from llamabuild.inspect import structure as st
from llamabuild.inspect.integrity import (
    BundleSeal,
    check_file,
    integrity_findings,
    read_blobs,
)
from llamabuild.signing.entitlements import resolve
from llamabuild.signing.sign import SignRequest, sign_binary
from llamabuild.tools.rcodesign import Rcodesign
from llamabuild.tools.runner import default_runner
from tests.fixtures.cms import make_identity, make_p12
from tests.fixtures.macho import MachOFactory, system, tool

pytestmark = pytest.mark.compile

PASSWORD = "pw-integrity-Zq8"
mac_only = pytest.mark.skipif(
    sys.platform != "darwin", reason="needs Apple's codesign (macOS only)"
)


@pytest.fixture(autouse=True)
def engine_not_codesign(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sign with the rcodesign engine even where a `codesign` exists (the Mac tests call
    codesign themselves, to verify)."""
    monkeypatch.setattr("llamabuild.signing.sign.which", lambda names, extra_dirs=(): None)


@pytest.fixture(scope="session")
def arm(macho: MachOFactory) -> Path:
    return macho.build("integ_arm", system("libSystem", "libc++"))


@pytest.fixture(scope="session")
def fat(macho: MachOFactory, arm: Path) -> Path:
    x86 = macho.build("integ_x86", system("libSystem"), arch="x86_64")
    return macho.fat("integ_fat", [arm, x86])


@pytest.fixture(scope="session")
def p12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("identity")
    return make_p12(folder / "dev id.p12", make_identity(developer_id=True), PASSWORD)


def copy(src: Path, tmp_path: Path, name: str = "llama-server") -> Path:
    dest = tmp_path / "My App" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def sign(target: Path, *args: str) -> None:
    """`llamabuild sign` (the rcodesign engine), which must succeed."""
    code = run(["sign", str(target), "--preset", "app-helper", "--no-timestamp", *args])
    assert code == 0


def verify_json(capsys: pytest.CaptureFixture[str], target: Path) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()  # what signing printed
    code = run(["verify", str(target), "--json"])
    return code, json.loads(capsys.readouterr().out)


def invalid(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in payload["findings"] if f["rule"] == "signature-invalid"]


def engine_problems(target: Path) -> list[str]:
    """The rcodesign engine's own verifier (advisory), minus "no CMS" of ad-hoc signatures."""
    import apple_platform

    return [
        str(p.get("description"))
        for p in apple_platform.verify_macho(str(target))
        if "CMS" not in str(p) and "no cryptographic signature" not in str(p)
    ]


def text_offset(target: Path, arch: str) -> int:
    """File offset of the slice's __TEXT,__text section, located by LIEF (not by llamabuild)."""
    import lief

    fat = lief.MachO.parse(str(target))
    slices = {s.arch: s for s in inspect_binary(target).slices}
    for i in range(fat.size):
        b = fat.at(i)
        name = "arm64" if b.header.cpu_type == lief.MachO.Header.CPU_TYPE.ARM64 else "x86_64"
        if name == arch:
            return int(slices[arch].offset + b.get_section("__text").offset)
    raise AssertionError(arch)


def flip(target: Path, offset: int) -> None:
    with target.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def superblob(target: Path, arch: str = "arm64") -> tuple[int, int, st.RawSlice]:
    """(absolute offset, size) of a slice's SuperBlob, from its LC_CODE_SIGNATURE."""
    data = target.read_bytes()
    for raw in st.read_slices(st.as_reader(data), len(data), str(target)):
        if raw.arch == arch:
            (cmd,) = raw.find(st.LC_CODE_SIGNATURE)
            off, size = struct.unpack_from("<II", cmd.data, 8)
            return raw.offset + off, size, raw
    raise AssertionError(arch)


# --- intact signatures --------------------------------------------------------------------


def test_lld_linker_signature_is_intact(arm, capsys):
    (sl,) = check_file(arm)
    assert sl.directories == ("sha256 CodeDirectory",)
    assert sl.pages > 0
    assert sl.findings == ()
    assert inspect_binary(arm).slices[0].signature.linker_signed
    _code, payload = verify_json(capsys, arm)
    assert invalid(payload) == []


@pytest.mark.real_llama
def test_real_llama_server_linker_signature_is_intact(real_cross_build):
    """The session's zig cross build: its signature, re-hashed after the canonical root went
    in (builder/zigroot.py), is intact page by page."""
    real = real_cross_build.binary
    (sl,) = check_file(real)
    assert sl.findings == ()
    assert sl.pages * 16384 >= real.stat().st_size - 16384 * 8  # 16 KiB pages, all hashed


@pytest.mark.parametrize("identity", ["adhoc", "p12"])
@pytest.mark.parametrize("shape", ["thin", "fat"])
def test_signed_in_session_verifies_intact(
    identity, shape, arm, fat, p12, tmp_path, capsys, monkeypatch
):
    target = copy(arm if shape == "thin" else fat, tmp_path)
    if identity == "p12":
        monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
        sign(target, "--p12", str(p12))
    else:
        sign(target)
    capsys.readouterr()
    slices = check_file(target)
    assert len(slices) == (1 if shape == "thin" else 2)
    for sl in slices:
        assert sl.findings == ()
        assert sl.directories and sl.pages > 0
    assert [s.signature.adhoc for s in inspect_binary(target).slices] == [
        identity == "adhoc"
    ] * len(slices)
    _code, payload = verify_json(capsys, target)
    assert invalid(payload) == []
    assert engine_problems(target) == []  # the engine's verifier agrees


@pytest.mark.parametrize(
    "digests",
    [["sha1", "sha256"], ["sha1", "sha256", "sha384"], ["sha384"], ["sha256-truncated"]],
)
def test_every_hash_type_and_alternate_is_checked(digests, arm, tmp_path):
    """The engine signs with each hash type Apple defines; extra digests become alternate
    CodeDirectories (slots 0x1000..). Each is checked, and each reports a patched page."""
    import apple_platform

    target = copy(arm, tmp_path)
    apple_platform.sign(str(target), binary_identifier="x", digests=digests, timestamp_url="none")
    (sl,) = check_file(target)
    names = [d.split(" CodeDirectory")[0] for d in sl.directories]
    assert names == digests
    assert [", alternate slot 0x100" in d for d in sl.directories] == [
        i > 0 for i in range(len(digests))
    ]
    assert sl.findings == ()
    flip(target, text_offset(target, "arm64") + 3)
    (sl,) = check_file(target)
    assert [f.message.split(":")[0] for f in sl.findings] == list(sl.directories)
    assert engine_problems(target)  # the engine's verifier agrees


def one_page_code_directory(target: Path) -> None:
    """Rewrite the (ad-hoc) primary CodeDirectory to pageSize 0 ("one page": the whole code
    limit hashed at once): nCodeSlots 1, the one hash first in its table."""
    import hashlib

    data, cd = _blob(target, 0)
    hash_offset = struct.unpack_from(">I", data, cd.start + 16)[0]
    limit = struct.unpack_from(">I", data, cd.start + 32)[0]
    struct.pack_into(">I", data, cd.start + 28, 1)  # nCodeSlots
    data[cd.start + 39] = 0  # pageSize: log2, 0 = one page
    digest = hashlib.sha256(bytes(data[:limit])).digest()
    data[cd.start + hash_offset : cd.start + hash_offset + 32] = digest
    target.write_bytes(bytes(data))


def test_page_size_zero_is_one_page(arm, tmp_path):
    target = copy(arm, tmp_path)
    sign(target)
    one_page_code_directory(target)
    (sl,) = check_file(target)
    assert (sl.pages, sl.findings) == (1, ())
    flip(target, text_offset(target, "arm64"))
    (found,) = check_file(target)[0].findings
    assert "page 0 of 1 (file bytes 0x0-0x" in found.message


# --- modified after signing -----------------------------------------------------------------


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_byte_flipped_in_text_is_invalid(arch, fat, p12, tmp_path, capsys, monkeypatch):
    target = copy(fat, tmp_path)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
    sign(target, "--p12", str(p12))
    capsys.readouterr()
    where = text_offset(target, arch) + 5
    flip(target, where)
    code, payload = verify_json(capsys, target)
    assert code == 1
    (found,) = invalid(payload)
    assert found["arch"] == arch
    assert found["severity"] == "error"
    msg = found["message"]
    assert "__TEXT,__text" in msg and "changed after signing" in msg
    lo, hi = (int(x, 16) for x in msg.split("file bytes ")[1].split(")")[0].split("-"))
    assert lo <= where <= hi and hi - lo + 1 <= 16384  # the page that holds the patch
    assert "llamabuild sign" in found["hint"]
    other = {s.arch for s in check_file(target) if not s.findings}
    assert other == {"arm64", "x86_64"} - {arch}  # the other slice is still intact
    problems = engine_problems(target)  # the engine sees a digest mismatch too
    assert problems and all("digest mismatch" in p for p in problems)


def test_llvm_strip_after_signing_replaces_the_signature(arm, tmp_path, capsys):
    """llvm-strip-19 rewrites the file and re-signs it ad hoc, as the linker would: the
    hashes match again, but the signature that carried the identifier and entitlements is
    gone (what `--require-sandbox` and verify-app's helper-unsigned report)."""
    target = copy(arm, tmp_path)
    sign(target, "--identifier", "com.example.helper")
    subprocess.run([tool("llvm-strip"), str(target)], check=True)
    (sl,) = inspect_binary(target).slices
    assert sl.signature.linker_signed and sl.signature.entitlements is None
    assert sl.signature.identifier != "com.example.helper"
    assert check_file(target)[0].findings == ()
    capsys.readouterr()
    assert run(["verify", str(target), "--require-sandbox", "--json"]) == 1
    rules = {f["rule"] for f in json.loads(capsys.readouterr().out)["findings"]}
    assert "sandbox-missing" in rules


def keep_old_signature(stripped: Path, signed: Path) -> None:
    """What Apple's `strip` leaves on a binary signed after the link: the stripped file with
    the old signature carried over (strip warns "changes being made to the file will
    invalidate the code signature" and does not re-sign)."""
    old_at, old_size, _ = superblob(signed)
    old = signed.read_bytes()[old_at : old_at + old_size]
    at, _size, raw = superblob(stripped)
    data = bytearray(stripped.read_bytes()[:at] + old)
    cmds = 32
    for c in raw.commands:
        if c.cmd == st.LC_CODE_SIGNATURE:
            struct.pack_into("<I", data, cmds + 12, len(old))
        elif c.cmd == st.LC_SEGMENT_64 and c.data[8:18] == b"__LINKEDIT":
            fileoff = struct.unpack_from("<Q", c.data, 40)[0]
            struct.pack_into("<Q", data, cmds + 48, len(data) - fileoff)
            struct.pack_into("<Q", data, cmds + 32, -(-(len(data) - fileoff) // 16384) * 16384)
        cmds += len(c.data)
    stripped.write_bytes(bytes(data))


def test_strip_after_signing_is_invalid(arm, tmp_path, capsys):
    signed = copy(arm, tmp_path, "signed")
    sign(signed, "--identifier", "com.example.helper")
    target = copy(signed, tmp_path)
    subprocess.run([tool("llvm-strip"), str(target)], check=True)
    keep_old_signature(target, signed)
    assert inspect_binary(target).slices[0].signature.identifier == "com.example.helper"
    code, payload = verify_json(capsys, target)
    assert code == 1
    (found,) = invalid(payload)
    assert "layout changed after signing (strip or lipo rewrote it)" in found["message"]
    assert "page " in found["message"] and "file bytes 0x" in found["message"]
    assert engine_problems(target)  # the engine refuses it too


def swap_entitlements(target: Path, new: dict[str, Any]) -> None:
    """Replace the signed entitlements blob (slot 5) by another plist of the same length."""
    import plistlib

    at, size, _raw = superblob(target)
    data = bytearray(target.read_bytes())
    (blob,) = [b for b in read_blobs(data, at, size, "t", "arm64") if b.slot == 5]
    xml = plistlib.dumps(new)
    assert len(xml) <= blob.length - 8
    data[blob.start + 8 : blob.start + blob.length] = xml.ljust(blob.length - 8, b"\n")
    target.write_bytes(bytes(data))


def test_swapped_entitlements_blob_is_invalid(arm, tmp_path, capsys):
    target = copy(arm, tmp_path)
    sign(target)
    debug = {"com.apple.security.get-task-allow": True}
    swap_entitlements(target, debug)
    assert inspect_binary(target).slices[0].signature.entitlements == debug  # reads back fine
    code, payload = verify_json(capsys, target)
    assert code == 1
    (found,) = invalid(payload)
    assert "special slot -5 (entitlements) does not match its hash" in found["message"]
    assert "entitlements blob was swapped after signing" in found["message"]
    assert engine_problems(target)


def test_sign_read_back_refuses_a_copy_modified_after_signing(arm, tmp_path):
    """A signer whose output is changed before the read-back (a build step racing the
    signature): nothing is published and the input is left as it was."""

    class PatchAfter(Rcodesign):
        def sign(self, request: SignRequest, target: Path) -> None:
            super().sign(request, target)
            flip(target, text_offset(target, "arm64"))

    target = copy(arm, tmp_path)
    before = target.read_bytes()
    report = sign_binary(
        target,
        SignRequest(timestamp=False),
        resolve(preset="app-helper"),
        PatchAfter(default_runner()),
    )
    assert not report.published
    assert [f.rule for f in report.findings if f.rule == "signature-invalid"] == [
        "signature-invalid"
    ]
    assert report.findings[-1].path == str(target)  # named by the file, not the temp copy
    assert target.read_bytes() == before


# --- a bundle's main executable: Info.plist and CodeResources seals -----------------------


@pytest.fixture
def signed_app(tmp_path: Path, macho: MachOFactory, arm: Path) -> Path:
    import apple_platform

    from tests.fixtures.appstore import bare_app

    app = bare_app(tmp_path, arm)
    (app / "Contents" / "Resources" / "notes.txt").write_text("hello\n")
    apple_platform.sign(str(app), timestamp_url="none")
    return app


def main_seal(app: Path) -> BundleSeal:
    c = app / "Contents"
    return BundleSeal(c / "Info.plist", c / "_CodeSignature" / "CodeResources")


def test_bundle_main_executable_seals_info_plist_and_resources(signed_app):
    exe = signed_app / "Contents" / "MacOS" / "My App"
    assert (signed_app / "Contents" / "_CodeSignature" / "CodeResources").is_file()
    assert integrity_findings(exe, main_seal(signed_app)) == []
    plist = signed_app / "Contents" / "Info.plist"
    plist.write_bytes(plist.read_bytes().replace(b"14.0", b"13.0"))
    (found,) = integrity_findings(exe, main_seal(signed_app))
    assert "special slot -1 (Info.plist) does not match its hash" in found.message
    assert integrity_findings(exe) == []  # without the bundle, slot -1 is not at hand


def test_verify_app_reports_a_changed_code_resources(signed_app, capsys):
    resources = signed_app / "Contents" / "_CodeSignature" / "CodeResources"
    resources.write_bytes(resources.read_bytes().replace(b"notes.txt", b"notes.txx"))
    run(["verify-app", str(signed_app), "--json"])
    payload = json.loads(capsys.readouterr().out)
    (found,) = invalid(payload)
    assert "special slot -3 (resources (CodeResources))" in found["message"]
    assert found["path"].endswith("MacOS/My App")


# --- hostile signatures: exit 2, one line, no traceback ---------------------------------------


def _cd_field(target: Path, offset: int, value: int, fmt: str = ">I") -> None:
    at, size, _ = superblob(target)
    data = bytearray(target.read_bytes())
    (cd,) = [b for b in read_blobs(data, at, size, "t", "arm64") if b.slot == 0]
    struct.pack_into(fmt, data, cd.start + offset, value)
    target.write_bytes(bytes(data))


def _overlap(target: Path) -> None:
    """Point the requirements entry (index 1) into the middle of the CodeDirectory."""
    at, _size, _ = superblob(target)
    data = bytearray(target.read_bytes())
    cd_off = struct.unpack_from(">I", data, at + 16)[0]
    struct.pack_into(">I", data, at + 12 + 8 + 4, cd_off + 16)
    target.write_bytes(bytes(data))


HOSTILE = {
    "absurd nCodeSlots": (lambda t: _cd_field(t, 28, 0x7FFFFFFF), "code slots run past"),
    "hashOffset past the CD": (lambda t: _cd_field(t, 16, 0xFFFFFF00), "hash offset"),
    "truncated CD length": (lambda t: _cd_field(t, 4, 20), "truncated"),
    "CD length past the SuperBlob": (lambda t: _cd_field(t, 4, 0x7FFFFFF0), "runs past"),
    "code limit past the slice": (lambda t: _cd_field(t, 32, 0x7FFFFFF0), "code limit"),
    "unknown hash type": (lambda t: _cd_field(t, 37, 9, ">B"), "unknown hash type"),
    "page size 2^40": (lambda t: _cd_field(t, 39, 40, ">B"), "page size"),
    "overlapping CD": (_overlap, "overlap|runs past"),
    "identOffset past the CD": (lambda t: _cd_field(t, 20, 0xFFFFFF00), "identifier at offset"),
    "identOffset in the header": (lambda t: _cd_field(t, 20, 8), "identifier at offset"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_code_directory_is_a_clean_exit_2(case, arm, tmp_path, capsys):
    target = copy(arm, tmp_path)
    sign(target)
    capsys.readouterr()
    patch, said = HOSTILE[case]
    patch(target)
    with pytest.raises(InputError, match=said):
        check_file(target)
    assert run(["verify", str(target)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert run(["verify", str(target), "--json"]) == 2  # JSON error object, schema-checked
    capsys.readouterr()


# --- Apple's codesign, on a Mac --------------------------------------------------------------


@mac_only
@pytest.mark.parametrize("shape", ["thin", "fat"])
def test_codesign_agrees_intact(shape, arm, fat, tmp_path):
    target = copy(arm if shape == "thin" else fat, tmp_path)
    sign(target)
    assert check_file(target)[0].findings == ()
    proc = subprocess.run(["codesign", "--verify", "--strict", str(target)], check=False)
    assert proc.returncode == 0


@mac_only
def test_codesign_agrees_modified(arm, tmp_path):
    target = copy(arm, tmp_path)
    sign(target)
    flip(target, text_offset(target, "arm64"))
    assert integrity_findings(target)
    proc = subprocess.run(
        ["codesign", "--verify", "--strict", str(target)], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "invalid signature" in proc.stderr or "modified" in proc.stderr


# --- the CMS signature binds the primary CodeDirectory -----------------------------------------


def _blob(target: Path, slot: int) -> tuple[bytearray, Any]:
    at, size, _ = superblob(target)
    data = bytearray(target.read_bytes())
    (blob,) = [b for b in read_blobs(data, at, size, "t", "arm64") if b.slot == slot]
    return data, blob


def test_code_directory_replaced_under_a_cms_signature(arm, p12, tmp_path, capsys, monkeypatch):
    """A CodeDirectory edited after signing (its identifier here): its pages still match, but
    the CMS signer's digest no longer does."""
    target = copy(arm, tmp_path)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
    sign(target, "--p12", str(p12), "--identifier", "com.example.helperA")
    data, cd = _blob(target, 0)
    at = data.index(b"com.example.helperA", cd.start)
    data[at : at + 19] = b"com.example.helperB"
    target.write_bytes(bytes(data))
    code, payload = verify_json(capsys, target)
    assert code == 1
    (found,) = invalid(payload)
    assert found["message"].startswith("CMS signature: its signed digest is not the primary")


def test_garbage_cms_is_a_clean_exit_2(arm, p12, tmp_path, capsys, monkeypatch):
    target = copy(arm, tmp_path)
    monkeypatch.setenv("LLAMABUILD_P12_PASSWORD", PASSWORD)
    sign(target, "--p12", str(p12))
    data, wrapper = _blob(target, 0x10000)
    data[wrapper.start + 8 : wrapper.start + wrapper.length] = bytes(wrapper.length - 8)
    target.write_bytes(bytes(data))
    capsys.readouterr()
    assert run(["verify", str(target)]) == 2
    err = capsys.readouterr().err
    assert "not a valid CMS SignedData" in err and "Traceback" not in err


def test_bytes_appended_after_the_signature_are_reported(arm, tmp_path, capsys):
    """A signed file with bytes appended passed silently: the signature hashes up to its own
    code limit, so nothing covers the tail."""
    target = copy(arm, tmp_path)
    sign(target)
    capsys.readouterr()
    assert integrity_findings(target) == []
    with target.open("ab") as fh:
        fh.write(b"\0" * 100 + b"payload")
    (found,) = integrity_findings(target)
    assert found.rule == "signature-trailing-bytes" and "107 bytes follow" in found.message
    assert run(["verify", str(target)]) == 1


@pytest.mark.parametrize("sealed", ["Info.plist", "_CodeSignature/CodeResources"])
def test_a_huge_sealed_file_is_hashed_streamed(signed_app, sealed):
    """A 3 GB sparse Info.plist took 16.9 s and 3.17 GB RSS, a 2 GB CodeResources 2.1 GB and
    exit 0: the seal's hash is now fed in 8 MiB steps, their pages dropped."""
    from tests.test_verify_hostile import child

    target = signed_app / "Contents" / sealed
    with target.open("r+b") as fh:
        fh.truncate(1 << 30)  # sparse: 1 GiB on paper
    code, out, err, peak_mb = child("verify-app", str(signed_app), "--json")
    assert code in (1, 2) and "Traceback" not in err, err[-2000:]
    assert peak_mb < 64, peak_mb
    if code == 1:
        report = json.loads(out)
        assert any(sealed.split("/")[-1] in f["message"] for f in report["findings"]), report


# --- the bundle seal: what _CodeSignature/CodeResources lists (rcodesign writes it) ------------


@pytest.fixture
def sealed_app(signed_app, arm):
    """signed_app plus a symlink and nested code (Contents/MacOS/helper, a cdhash entry),
    signed again so the seal lists them."""
    import apple_platform

    res = signed_app / "Contents" / "Resources"
    (res / "link").symlink_to("notes.txt")
    shutil.copy2(arm, signed_app / "Contents" / "MacOS" / "helper")
    apple_platform.sign(str(signed_app), timestamp_url="none")
    return signed_app


def seal_findings(app):
    from llamabuild.appstore.seal import check_seal
    from llamabuild.appstore.tree import walk
    from llamabuild.appstore.verify_app import app_executable

    return check_seal(app, app_executable(app), walk(app))


def test_an_intact_seal_has_no_findings(sealed_app):
    import plistlib

    seal = plistlib.loads((sealed_app / "Contents/_CodeSignature/CodeResources").read_bytes())
    assert (
        "cdhash" in seal["files2"]["MacOS/helper"] and "symlink" in seal["files2"]["Resources/link"]
    )
    assert seal_findings(sealed_app) == []


def _retarget(c):
    (c / "Resources/link").unlink()
    (c / "Resources/link").symlink_to("llama-server")


TAMPER = {
    "modified": (lambda c: (c / "Resources/notes.txt").write_text("x\n"), "notes.txt was modified"),
    "removed": (lambda c: (c / "Resources/notes.txt").unlink(), "notes.txt is sealed but missing"),
    "added": (lambda c: (c / "Resources/extra.txt").write_text("x"), "extra.txt was added"),
    "symlink retargeted": (_retarget, "the symlink changed"),
    "nested code patched": (lambda c: _flip_text_byte(c / "MacOS/helper"), "nested code was"),
    "nested code replaced": (
        lambda c: shutil.copy2(c / "Resources/llama-server", c / "MacOS/helper"),
        "nested code",
    ),
}


def _flip_text_byte(path):
    data = bytearray(path.read_bytes())
    data[0x4000 + 8] ^= 0xFF  # inside the first code page after the header page
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_a_tampered_bundle_fails_verify_app_naming_the_file(sealed_app, case, capsys):
    tamper, said = TAMPER[case]
    tamper(sealed_app / "Contents")
    found = [f for f in seal_findings(sealed_app) if f.rule == "bundle-seal-broken"]
    assert found and said in found[0].message, [f.message for f in found]
    assert run(["verify-app", str(sealed_app), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "bundle-seal-broken" in {f["rule"] for f in report["findings"]}
