"""`llamabuild dsym` and `verify --dsym` on real Mach-O binaries and real dsymutil output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from llamabuild.cli import run
from llamabuild.core.errors import ToolError, ToolNotFoundError
from llamabuild.core.jsonout import to_jsonable
from llamabuild.inspect import inspect_binary, structure
from llamabuild.inspect.dsym import check_dsym, dsym_uuids, make_dsym
from llamabuild.tools.dsymutil import Dsymutil, dsymutil_argv, parse_warnings
from llamabuild.tools.runner import Result, Runner
from llamabuild.tools.strip import Strip, strip_debug_argv
from tests.fixtures.macho import MachOFactory, system, tool

pytestmark = pytest.mark.compile

UUID_LINE = re.compile(r"^UUID: ([0-9A-F-]{36}) \((\w+)\) ", re.M)


def dwarfdump_uuids(path: Path) -> dict[str, str]:
    """arch -> UUID as `llvm-dwarfdump-19 --uuid` prints it (the reference for every UUID)."""
    out = subprocess.run(
        [tool("llvm-dwarfdump"), "--uuid", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return {arch: uuid for uuid, arch in UUID_LINE.findall(out)}


def lipo_env(tmp: Path) -> dict[str, str]:
    """LLVM dsymutil merges fat dSYMs with `lipo`; on Linux that is llvm-lipo-19."""
    shim = tmp / "lipo-shim"
    shim.mkdir(exist_ok=True)
    if not (shim / "lipo").exists():
        (shim / "lipo").symlink_to(tool("llvm-lipo"))
    return {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}


def dsymutil19(binary: Path, out: Path, *extra: str) -> Path:
    subprocess.run(
        [tool("dsymutil"), *extra, str(binary), "-o", str(out)],
        check=True,
        capture_output=True,
        env=lipo_env(out.parent),
    )
    return out


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dsym") / "My Builds"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def thin(macho: MachOFactory, space_dir: Path) -> Path:
    return macho.build("llama-server", system("libSystem", "Metal"), out_dir=space_dir / "thin")


@pytest.fixture(scope="module")
def fat(macho: MachOFactory, space_dir: Path) -> Path:
    d = space_dir / "fat"
    a = macho.build("srv-arm64", system("libSystem", "Metal"), out_dir=d)
    x = macho.build("srv-x86_64", system("libSystem", "Metal"), arch="x86_64", out_dir=d)
    out = d / "llama-server"
    subprocess.run([tool("llvm-lipo"), "-create", str(a), str(x), "-output", str(out)], check=True)
    return out


def fresh(macho: MachOFactory, where: Path, name: str = "llama-server", **kw: object) -> Path:
    """A binary of its own (tests below modify it or its object files)."""
    return macho.build(name, system("libSystem"), out_dir=where, **kw)  # type: ignore[arg-type]


def rules(findings: Sequence[object]) -> set[tuple[str, str | None]]:
    return {(f.rule, f.arch) for f in findings}  # type: ignore[attr-defined]


# --- reading and checking dSYMs made by dsymutil-19 ---------------------------------------------


def test_thin_dsym_from_dsymutil19_matches(thin: Path) -> None:
    dsym = dsymutil19(thin, thin.parent / "llama-server.dSYM")
    expected = dwarfdump_uuids(thin)
    assert set(expected) == {"arm64"}
    assert dsym_uuids(dsym) == expected == dwarfdump_uuids(dsym)
    assert check_dsym(inspect_binary(thin), dsym) == []


def test_fat_dsym_from_dsymutil19_matches(fat: Path) -> None:
    dsym = dsymutil19(fat, fat.parent / "llama-server.dSYM")
    expected = dwarfdump_uuids(fat)
    assert set(expected) == {"arm64", "x86_64"}
    assert expected["arm64"] != expected["x86_64"]
    assert dsym_uuids(dsym) == expected == dwarfdump_uuids(dsym)
    assert check_dsym(inspect_binary(fat), dsym) == []


def test_fat_binary_with_one_arch_dsym_is_missing_a_slice(fat: Path) -> None:
    dsym = dsymutil19(fat, fat.parent / "arm64 only.dSYM", "--arch", "arm64")
    found = check_dsym(inspect_binary(fat), dsym)
    assert rules(found) == {("dsym-missing-slice", "x86_64")}


def test_relinked_binary_no_longer_matches(macho: MachOFactory, tmp_path: Path) -> None:
    where = tmp_path / "My App"
    binary = fresh(macho, where)
    dsym = dsymutil19(binary, where / "llama-server.dSYM")
    old = dwarfdump_uuids(binary)
    fresh(macho, where, salt="relinked with a change")
    new = dwarfdump_uuids(binary)
    assert old != new
    found = check_dsym(inspect_binary(binary), dsym)
    assert rules(found) == {("dsym-uuid-mismatch", "arm64")}
    (f,) = found
    assert old["arm64"] in f.message and new["arm64"] in f.message
    assert f.hint and "relinked" in f.hint


def test_objects_removed_before_dsymutil_is_an_empty_dsym(
    macho: MachOFactory, tmp_path: Path
) -> None:
    binary = fresh(macho, tmp_path / "cleaned build")
    shutil.rmtree(binary.parent / "llama-server.build")
    dsym = dsymutil19(binary, tmp_path / "empty.dSYM")  # exits 0: it only warns
    found = check_dsym(inspect_binary(binary), dsym)
    assert rules(found) == {("dsym-empty", "arm64")}
    assert "build dir was cleaned" in (found[0].hint or "")


def test_broken_layouts(thin: Path, tmp_path: Path) -> None:
    good = dsymutil19(thin, tmp_path / "good.dSYM")
    bad_plist = tmp_path / "bad plist.dSYM"
    shutil.copytree(good, bad_plist)
    (bad_plist / "Contents" / "Info.plist").write_text("<plist><dict><key>oops")
    assert {f.rule for f in check_dsym(inspect_binary(thin), bad_plist)} == {"dsym-layout"}

    renamed = tmp_path / "renamed.dSYM"
    shutil.copytree(good, renamed)
    dwarf = renamed / "Contents" / "Resources" / "DWARF"
    (dwarf / "llama-server").rename(dwarf / "something-else")
    found = check_dsym(inspect_binary(thin), renamed)
    assert [f.rule for f in found] == ["dsym-layout"]
    assert "something-else" in found[0].message


def test_verify_dsym_exit_codes(
    capsys: pytest.CaptureFixture[str], macho: MachOFactory, tmp_path: Path
) -> None:
    where = tmp_path / "My App"
    binary = fresh(macho, where)
    dsym = dsymutil19(binary, where / "llama-server.dSYM")

    def verify(d: Path) -> tuple[int, dict[str, object]]:
        code = run(["verify", str(binary), "--dsym", str(d), "--json"])
        out = capsys.readouterr().out
        return code, json.loads(out)

    assert verify(dsym)[0] == 0
    assert verify(tmp_path / "nope.dSYM")[0] == 2
    fresh(macho, where, salt="other")
    code, rep = verify(dsym)
    assert code == 1
    assert [f["rule"] for f in rep["findings"]] == ["dsym-uuid-mismatch"]  # type: ignore[index,union-attr]


# --- make_dsym ------------------------------------------------------------------------------------


def test_make_dsym_thin_and_fat(thin: Path, fat: Path, tmp_path: Path) -> None:
    for binary in (thin, fat):
        out = tmp_path / f"{binary.parent.name} out.dSYM"
        result = make_dsym(binary, out)
        assert result.ok and result.published, result.findings
        expected = dwarfdump_uuids(binary)
        assert result.uuids == result.binary_uuids == expected == dwarfdump_uuids(out)
        assert result.dwarf_file == out / "Contents" / "Resources" / "DWARF" / "llama-server"
        assert check_dsym(inspect_binary(binary), out) == []
        assert json.loads(json.dumps(to_jsonable(result)))["uuids"] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fat out.dSYM", "thin out.dSYM"]


def test_make_dsym_default_output_beside_binary(macho: MachOFactory, tmp_path: Path) -> None:
    binary = fresh(macho, tmp_path / "a b")
    result = make_dsym(binary)
    assert result.path == binary.parent / "llama-server.dSYM"
    assert result.path.is_dir() and result.ok


def test_empty_dsym_is_not_published_and_the_old_one_stays(
    macho: MachOFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = fresh(macho, tmp_path / "My App")
    out = tmp_path / "My App" / "llama-server.dSYM"
    good = make_dsym(binary, out)
    assert good.ok
    before = (good.dwarf_file or out).read_bytes()
    shutil.rmtree(binary.parent / "llama-server.build")

    result = make_dsym(binary, out)
    assert not result.ok and not result.published
    assert rules(result.findings) == {("dsym-empty", "arm64")}
    assert any("unable to open object file" in w for w in result.tool_warnings)
    assert (out / "Contents" / "Resources" / "DWARF" / "llama-server").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["llama-server", "llama-server.dSYM"]

    code = run(["dsym", str(binary), "-o", str(out), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 1 and rep["published"] is False
    assert rep["findings"][0]["hint"].startswith("the build dir was cleaned")


def test_binary_without_debug_info_gets_its_own_hint(macho: MachOFactory, tmp_path: Path) -> None:
    binary = fresh(macho, tmp_path, debug=False)
    result = make_dsym(binary)
    assert rules(result.findings) == {("dsym-empty", "arm64")}
    assert "-g" in (result.findings[0].hint or "")


class CrashingRunner(Runner):
    """Runs dsymutil for real (so a half bundle exists), then reports a crash."""

    def run(self, argv, **kw):  # type: ignore[no-untyped-def,override]
        real = super().run(argv, **kw)
        return Result(real.argv, 139, real.stdout, "Segmentation fault", real.duration)


def test_failed_dsymutil_keeps_previous_dsym(macho: MachOFactory, tmp_path: Path) -> None:
    binary = fresh(macho, tmp_path / "x y")
    out = make_dsym(binary).path
    before = dsym_uuids(out)
    fresh(macho, tmp_path / "x y", salt="new build")
    with pytest.raises(ToolError) as err:
        make_dsym(binary, runner=CrashingRunner())
    assert err.value.exit_code == 3 and "Segmentation fault" in err.value.message
    assert dsym_uuids(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "llama-server",
        "llama-server.build",
        "llama-server.dSYM",
    ]


def test_strip_keeps_uuid_and_dsym_still_matches(macho: MachOFactory, tmp_path: Path) -> None:
    binary = fresh(macho, tmp_path / "My App")
    before = dwarfdump_uuids(binary)
    size = binary.stat().st_size
    result = make_dsym(binary, strip=True)
    assert result.ok and result.stripped, result.findings
    assert dwarfdump_uuids(binary) == before
    assert binary.stat().st_size < size
    assert os.access(binary, os.X_OK)
    nm = subprocess.run([tool("llvm-nm"), "-a", str(binary)], capture_output=True, text=True)
    assert " OSO " not in nm.stdout  # the debug map is gone
    assert check_dsym(inspect_binary(binary), result.path) == []
    sig = inspect_binary(binary).slices[0].signature
    assert sig is not None and sig.identifier == "llama-server"
    assert sorted(p.name for p in binary.parent.iterdir()) == [
        "llama-server",
        "llama-server.build",
        "llama-server.dSYM",
    ]


def test_cli_dsym_json_and_input_errors(
    capsys: pytest.CaptureFixture[str], thin: Path, tmp_path: Path
) -> None:
    out = tmp_path / "My Out.dSYM"
    code = run(["dsym", str(thin), "-o", str(out), "--json"])
    rep = json.loads(capsys.readouterr().out)
    assert code == 0 and rep["ok"] and rep["uuids"] == dwarfdump_uuids(thin)

    assert run(["dsym", str(tmp_path / "missing"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2
    text = tmp_path / "notes.txt"
    text.write_text("not a binary")
    assert run(["dsym", str(text)]) == 2
    assert "not a Mach-O" in capsys.readouterr().err


def test_missing_dsymutil_is_exit_3_with_hint(
    capsys: pytest.CaptureFixture[str], thin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolNotFoundError) as err:
        make_dsym(thin, tmp_path / "x.dSYM")
    assert err.value.exit_code == 3 and "llvm-19" in (err.value.hint or "")
    assert run(["dsym", str(thin), "-o", str(tmp_path / "x.dSYM")]) == 3
    assert "hint:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- the Apple adapter: exact argv, replayed with the local LLVM tools ---------------------------


class AppleReplay(Runner):
    """Records the argv a Mac would run and replays it with the LLVM equivalents."""

    def __init__(self) -> None:
        super().__init__()
        self.argvs: list[list[str]] = []
        self.cwds: list[Path | None] = []

    def run(self, argv, **kw):  # type: ignore[no-untyped-def,override]
        args = [str(a) for a in argv]
        self.argvs.append(args)
        self.cwds.append(kw.get("cwd"))
        assert Path(args[0]).name == "xcrun"
        local = {"dsymutil": tool("dsymutil"), "strip": tool("llvm-strip")}[args[1]]
        return super().run([local, *args[2:]], **kw)


@pytest.fixture
def fake_xcrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "xcode bin"
    bindir.mkdir()
    xcrun = bindir / "xcrun"
    xcrun.write_text("#!/bin/sh\necho 'xcrun must not run here' >&2\nexit 99\n")
    xcrun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return xcrun


def test_apple_adapters_argv(fake_xcrun: Path) -> None:
    d = Dsymutil(Runner())
    assert d.apple
    binary, out = Path("/b/My App/llama-server"), Path("/b/My App/llama-server.dSYM")
    assert dsymutil_argv(d.prefix, binary, out) == [
        str(fake_xcrun),
        "dsymutil",
        str(binary),
        "-o",
        str(out),
    ]
    s = Strip(Runner())
    assert strip_debug_argv(s.prefix, binary, Path("/t/llama-server")) == [
        str(fake_xcrun),
        "strip",
        "-S",
        "-o",
        "/t/llama-server",
        str(binary),
    ]


def test_parse_warnings_keeps_each_warning_once() -> None:
    text = "note: x\n warning: no debug symbols in a.o\nwarning: no debug symbols in a.o\n"
    assert parse_warnings(text + "warning: b.o missing") == [
        "warning: no debug symbols in a.o",
        "warning: b.o missing",
    ]


def test_make_dsym_with_xcrun_runs_the_apple_argv(
    fake_xcrun: Path, macho: MachOFactory, tmp_path: Path
) -> None:
    binary = fresh(macho, tmp_path / "My App")
    replay = AppleReplay()
    result = make_dsym(binary, strip=True, runner=replay)
    assert result.ok and result.stripped, result.findings
    (dsym_argv, strip_argv) = replay.argvs
    # Run in the binary's dir, named by file name: dsymutil writes the path it is given into
    # the dSYM (Relocations/<arch>/<name>.yml), which must not name this build's dir.
    assert dsym_argv[:4] == [str(fake_xcrun), "dsymutil", "llama-server", "-o"]
    assert replay.cwds[0] == binary.parent
    staged = Path(dsym_argv[4])
    assert staged.name == "llama-server.dSYM" and staged.parent.parent == binary.parent
    assert strip_argv[:5] == [str(fake_xcrun), "strip", "-S", "-o", strip_argv[4]]
    assert Path(strip_argv[4]).name == "llama-server" and strip_argv[5] == str(binary)
    assert Path(strip_argv[4]).parent.parent == binary.parent
    assert result.uuids == dwarfdump_uuids(binary)


def test_structure_sections_reads_debug_info_headers(thin: Path, tmp_path: Path) -> None:
    dsym = dsymutil19(thin, tmp_path / "s.dSYM")
    dwarf = dsym / "Contents" / "Resources" / "DWARF" / "llama-server"
    with dwarf.open("rb") as fh:
        (sl,) = structure.read_slices(fh, dwarf.stat().st_size, str(dwarf))
    names = {s.sectname: s.size for s in structure.sections(sl, "__DWARF")}
    ref = subprocess.run(
        [tool("llvm-otool"), "-l", str(dwarf)], capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"sectname __debug_info\n\s+segname __DWARF\n\s+addr \S+\n\s+size (\S+)", ref)
    assert m and names["__debug_info"] == int(m.group(1), 16) > 0


def test_output_that_is_not_a_dsym_is_refused(
    macho: MachOFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review #1: -o the binary itself, or a plain directory, was replaced (data lost)."""
    binary = fresh(macho, tmp_path / "My Bin")
    before = binary.read_bytes()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "file.txt").write_text("keep me")
    plain = tmp_path / "notes.dSYM"
    plain.write_text("a file that happens to end in .dSYM")
    for target in (binary, binary.parent, precious, plain):
        code = run(["dsym", str(binary), "-o", str(target), "--json"])
        rep = json.loads(capsys.readouterr().out)
        assert code == 2 and rep["hint"], target
    assert binary.read_bytes() == before
    assert (precious / "file.txt").read_text() == "keep me"
    assert plain.read_text().startswith("a file")
    assert sorted(p.name for p in binary.parent.iterdir()) == ["llama-server", "llama-server.build"]
    # an existing dSYM bundle is still replaced
    out = tmp_path / "My Bin" / "llama-server.dSYM"
    assert run(["dsym", str(binary), "-o", str(out)]) == 0
    assert run(["dsym", str(binary), "-o", str(out)]) == 0


@pytest.mark.timeout(20)
def test_fifo_binary_is_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review #16: a FIFO was reported as "no such file"."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert run(["dsym", str(fifo)]) == 2
    err = capsys.readouterr().err
    assert "FIFO, not a regular file" in err and "no such file" not in err


def test_interrupt_during_the_swap_keeps_a_dsym(
    macho: MachOFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctrl_c_raises: None
) -> None:
    """Review #17: SIGINT between the two renames lost the previous dSYM (rmtree of stage)."""
    binary = fresh(macho, tmp_path / "sig")
    out = tmp_path / "sig" / "llama-server.dSYM"
    assert make_dsym(binary, out).ok
    real_replace = Path.replace

    def replace_then_sigint(self: Path, target: str | os.PathLike[str]) -> Path:
        moved = real_replace(self, target)
        if self == out:  # the old dSYM just went aside: Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)
        return moved

    monkeypatch.setattr(Path, "replace", replace_then_sigint)
    with pytest.raises(KeyboardInterrupt):
        make_dsym(binary, out)
    monkeypatch.undo()
    assert dsym_uuids(out) == dwarfdump_uuids(binary)
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "llama-server",
        "llama-server.build",
        "llama-server.dSYM",
    ]


def test_human_output_prints_markup_literally(
    macho: MachOFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review #7: a path with `[red]`/`[/]` is shown as is, never read as rich markup."""
    binary = fresh(macho, tmp_path / "[red]x[/] y")
    assert run(["dsym", str(binary)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {binary}.dSYM" in out and "[red]x[/] y" in out


# --- never hang, regular files only; exit 2 with a hint outside verify-app ----------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, object]]:
    code = run([*map(str, args), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err
    return code, json.loads(out)


@pytest.mark.timeout(20)
def test_fifos_inside_a_dsym_are_exit_2(
    capsys: pytest.CaptureFixture[str], thin: Path, tmp_path: Path
) -> None:
    """`verify --dsym`: a FIFO as Info.plist or DWARF file blocked read_bytes()/open() forever."""
    good = dsymutil19(thin, tmp_path / "good.dSYM")
    for i, part in enumerate(("Contents/Info.plist", "Contents/Resources/DWARF/llama-server")):
        dsym = tmp_path / f"fifo {i}.dSYM"
        shutil.copytree(good, dsym)
        (dsym / part).unlink()
        os.mkfifo(dsym / part)
        code, rep = cli(capsys, "verify", thin, "--dsym", dsym)
        assert code == 2, part
        assert "FIFO, not a regular file" in str(rep["error"]) and rep["hint"], rep
    flat = tmp_path / "flat.dSYM"
    os.mkfifo(flat)
    code, rep = cli(capsys, "verify", thin, "--dsym", flat)
    assert code == 2 and "FIFO" in str(rep["error"]) and rep["hint"]


@pytest.mark.timeout(20)
def test_fifos_as_dsym_output_or_inside_the_previous_dsym(
    capsys: pytest.CaptureFixture[str], macho: MachOFactory, tmp_path: Path
) -> None:
    """`llamabuild dsym`: -o a FIFO is refused; a previous dSYM holding FIFOs is replaced."""
    binary = fresh(macho, tmp_path / "fifo out")
    pipe = tmp_path / "fifo out" / "pipe.dSYM"
    os.mkfifo(pipe)
    code, rep = cli(capsys, "dsym", binary, "-o", pipe)
    assert code == 2 and rep["hint"]
    out = binary.parent / "llama-server.dSYM"
    for part in ("Contents/Info.plist", "Contents/Resources/DWARF/llama-server"):
        (out / part).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(out / part)
    code, rep = cli(capsys, "dsym", binary)
    assert code == 0 and rep["published"] is True
    assert dsym_uuids(out) == dwarfdump_uuids(binary)


@pytest.mark.timeout(20)
def test_oversized_info_plist_is_refused_unread(thin: Path, tmp_path: Path) -> None:
    """A 4 GiB (sparse) Info.plist: a dsym-layout finding at once, not 4 GiB read into memory."""
    dsym = dsymutil19(thin, tmp_path / "big.dSYM")
    with (dsym / "Contents" / "Info.plist").open("r+b") as fh:
        fh.truncate(4 << 30)
    found = check_dsym(inspect_binary(thin), dsym)
    assert [f.rule for f in found] == ["dsym-layout"]
    assert "not read" in found[0].message and found[0].hint


def test_dsym_json_reports_the_published_path(
    capsys: pytest.CaptureFixture[str], macho: MachOFactory, tmp_path: Path
) -> None:
    """Findings named the temp dir (.llama-server.dSYM.xxxx.tmp) that was already deleted."""
    binary = fresh(macho, tmp_path / "My App")
    out = tmp_path / "My App" / "Out.dSYM"
    code, rep = cli(capsys, "dsym", binary, "-o", out)
    assert code == 0 and rep["path"] == str(out)
    assert rep["dwarf_file"] == str(out / "Contents" / "Resources" / "DWARF" / "llama-server")
    shutil.rmtree(binary.parent / "llama-server.build")  # the next dSYM comes out empty
    code, rep = cli(capsys, "dsym", binary, "-o", out)
    assert code == 1 and rep["published"] is False
    assert rep["path"] == str(out)
    assert [f["path"] for f in rep["findings"]] == [str(out)]  # type: ignore[union-attr,index]
    assert ".tmp" not in json.dumps(rep)
    assert Path(str(rep["path"])).is_dir()


def test_symlink_loops_get_a_hint(
    capsys: pytest.CaptureFixture[str], thin: Path, tmp_path: Path
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for args in (
        ["verify", loop],
        ["dsym", loop],
        ["dsym", thin, "-o", loop],
        ["dsym", thin, "-o", loop / "x.dSYM"],
        ["verify", thin, "--dsym", loop],
    ):
        code, rep = cli(capsys, *args)
        assert code == 2, args
        assert "symlink loop" in str(rep["hint"]), (args, rep)


@pytest.mark.parametrize(
    "raw",
    [
        b"<plist><key>a</key></plist>",  # plistlib: IndexError
        b'<?xml version="1.0" encoding="x-unknown"?><plist><dict/></plist>',  # LookupError
        b"bplist00" + b"\xa1\x01" * 4000,  # nested arrays
    ],
)
def test_hostile_dsym_plist_is_a_value_error(tmp_path: Path, raw: bytes) -> None:
    """Every way plistlib fails on a dSYM's Info.plist is a ValueError (a finding), no crash."""
    from llamabuild.core.plists import load_plist

    path = tmp_path / "Info.plist"
    path.write_bytes(raw)
    with pytest.raises(ValueError):
        load_plist(path, "hint")
