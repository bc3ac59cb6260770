"""dSYM creation and checking.

App Store Connect answers "Upload Symbols Failed" when a dSYM's UUIDs do not match the binary
it ships, and dsymutil happily writes an empty dSYM when the object files are gone. So a dSYM is
never trusted: its bundle layout, per-arch UUIDs and `__debug_info` are checked, reading only
headers (a real DWARF file is ~130 MB).
"""

from __future__ import annotations

import dataclasses
import errno
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llamabuild.core import plists
from llamabuild.core.errors import LOOP_HINT, InputError, ToolError, UsageError
from llamabuild.core.findings import Finding, error, has_errors
from llamabuild.core.interrupt import critical
from llamabuild.core.mapped import file_kind, open_mapped, path_error, require_file
from llamabuild.inspect import structure
from llamabuild.inspect.binary import Binary
from llamabuild.tools.dsymutil import Dsymutil, parse_warnings
from llamabuild.tools.runner import Runner, default_runner
from llamabuild.tools.strip import Strip

DAMAGED_HINT = "a .dSYM holds regular files only: recreate it with `llamabuild dsym BINARY`"
EMPTY_HINT = "the build dir was cleaned before dsymutil ran; keep the object files / rebuild"
RELINK_HINT = (
    "the binary was relinked after the dSYM was made; run `llamabuild dsym` on the binary "
    "you ship, after its last link"
)

Uuids = dict[str, str | None]

# A dSYM's Info.plist is a few hundred bytes; anything this big is not one and is not read.
MAX_PLIST = plists.MAX_PLIST


@dataclass(frozen=True)
class DsymReport:
    """`llamabuild dsym --json`: the dSYM made, its UUIDs against the binary's. `published` is
    False when the checks failed (nothing replaced)."""

    path: Path
    binary: Path
    ok: bool = field(init=False)  # no error among the findings
    published: bool
    stripped: bool
    dwarf_file: Path | None
    uuids: dict[str, str | None]
    binary_uuids: dict[str, str | None]
    tool_warnings: tuple[str, ...]
    findings: tuple[Finding, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", not has_errors(self.findings))


# --- reading a dSYM ---------------------------------------------------------------------------


def dwarf_dir(dsym: Path) -> Path:
    return dsym / "Contents" / "Resources" / "DWARF"


def _lexists(path: Path) -> bool:
    try:
        path.lstat()
    except OSError:
        return False
    return True


def find_dwarf_file(dsym: Path, name: str | None = None) -> Path | None:
    """DWARF/<name>, else the only non-directory in DWARF/; a flat dSYM is its own DWARF file.

    An entry is returned whatever its type: the caller opens it with `open_mapped`, which
    refuses a FIFO or device (an `is_file()` filter would report it as missing instead).
    """
    if not dsym.is_dir():
        return dsym
    folder = dwarf_dir(dsym)
    stem = dsym.name.removesuffix(".dSYM").removesuffix(".app")
    for candidate in (name, stem):
        if candidate and _lexists(folder / candidate):
            return folder / candidate
    try:
        files = sorted(p for p in folder.iterdir() if not p.is_dir())
    except OSError:
        return None
    return files[0] if len(files) == 1 else None


def _require_dsym(dsym: Path) -> None:
    """A .dSYM bundle (directory) or a flat DWARF file; exit 2 with a hint for anything else."""
    try:
        mode = dsym.stat().st_mode
    except OSError as exc:
        raise path_error(dsym, exc, "dSYM") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise InputError(
            f"{dsym}: {file_kind(mode)}, not a .dSYM bundle or DWARF file",
            hint="pass the .dSYM folder that `llamabuild dsym` or dsymutil wrote",
        )


def dsym_uuids(dsym: Path) -> Uuids:
    """arch -> UUID of a .dSYM (bundle or flat file), reading only Mach-O headers."""
    _require_dsym(dsym)
    dwarf = find_dwarf_file(dsym)
    if dwarf is None:
        raise InputError(
            f"{dsym}: no DWARF file in Contents/Resources/DWARF",
            hint="recreate it with `llamabuild dsym BINARY`",
        )
    require_file(dwarf, DAMAGED_HINT)  # a FIFO or device is refused, never opened
    return structure.read_uuids(dwarf)


def check_dsym(binary: Binary, dsym: Path) -> list[Finding]:
    """Layout, per-arch UUID match and non-empty debug info of `dsym` for `binary`.

    InputError (exit 2) when the dSYM, its Info.plist or its DWARF file is not a regular
    file/folder (a FIFO, a device, a symlink loop): nothing such is ever opened.
    """
    _require_dsym(dsym)
    return check_against({s.arch: s.uuid for s in binary.slices}, binary.path.name, dsym)


def check_against(binary_uuids: Uuids, name: str, dsym: Path) -> list[Finding]:
    """The checks of `check_dsym`, from the binary's arch -> UUID map (no LIEF needed)."""
    where = str(dsym)
    findings = _check_layout(dsym, name)
    dwarf = find_dwarf_file(dsym, name)
    if dwarf is None:
        return findings
    require_file(dwarf, DAMAGED_HINT)  # a FIFO, device or loop: InputError (exit 2), not opened
    try:
        with open_mapped(dwarf) as mm:
            slices = structure.read_slices(mm, len(mm), str(dwarf))
    except (InputError, OSError) as exc:
        msg = exc.message if isinstance(exc, InputError) else str(exc)
        return [*findings, error("dsym-layout", f"unreadable DWARF file: {msg}", path=where)]
    by_arch = {s.arch: s for s in slices}
    for arch, uuid in binary_uuids.items():
        sl = by_arch.get(arch)
        if sl is None:
            findings.append(
                error(
                    "dsym-missing-slice",
                    f"the dSYM has no {arch} slice (it has {', '.join(by_arch) or 'none'})",
                    arch=arch,
                    path=where,
                    hint="make the dSYM from the final (fat) binary, not from one slice",
                )
            )
            continue
        findings += _check_slice(sl, uuid, where)
    return findings


def _check_layout(dsym: Path, name: str) -> list[Finding]:
    where = str(dsym)
    hint = "recreate it with `llamabuild dsym BINARY`"
    if dsym.is_file():
        return [
            error("dsym-layout", "a flat DWARF file, not a .dSYM bundle", path=where, hint=hint)
        ]
    out: list[Finding] = []
    plist = dsym / "Contents" / "Info.plist"
    if not _lexists(plist):
        out.append(error("dsym-layout", "Contents/Info.plist is missing", path=where, hint=hint))
    else:
        try:
            plists.load_plist(
                plist, DAMAGED_HINT
            )  # a FIFO, device or loop: InputError (exit 2), never opened
        except ValueError as exc:
            msg = f"Contents/Info.plist is not a valid plist ({exc})"
            out.append(error("dsym-layout", msg, path=where, hint=hint))
    if not _lexists(dwarf_dir(dsym) / name):
        try:
            found = sorted(p.name for p in dwarf_dir(dsym).iterdir())
        except OSError:
            found = []
        shown = ", ".join(found) or "nothing"
        out.append(
            error(
                "dsym-layout",
                f"Contents/Resources/DWARF/{name} is missing (found {shown})",
                path=where,
                hint=hint,
            )
        )
    return out


def _check_slice(sl: structure.RawSlice, uuid: str | None, where: str) -> list[Finding]:
    arch = sl.arch
    if sl.filetype != "dsym":
        msg = f"the DWARF file is a Mach-O {sl.filetype}, not a dSYM companion file"
        return [error("dsym-layout", msg, arch=arch, path=where)]
    out: list[Finding] = []
    if uuid is None:
        msg = "the binary has no LC_UUID, so no dSYM can match it"
        out.append(error("dsym-uuid-mismatch", msg, arch=arch, path=where))
    elif sl.uuid != uuid:
        out.append(
            error(
                "dsym-uuid-mismatch",
                f"dSYM UUID {sl.uuid or 'none'} != binary UUID {uuid}",
                arch=arch,
                path=where,
                hint=RELINK_HINT,
            )
        )
    info = [s for s in structure.sections(sl, "__DWARF") if s.sectname == "__debug_info"]
    if not info or all(s.size == 0 for s in info):
        what = "is empty" if info else "is missing"
        out.append(
            error(
                "dsym-empty",
                f"__DWARF,__debug_info {what}: the dSYM carries no debug info",
                arch=arch,
                path=where,
                hint=EMPTY_HINT,
            )
        )
    return out


# --- making a dSYM ----------------------------------------------------------------------------


def _binary_uuids(binary: Path) -> Uuids:
    with open_mapped(binary) as mm:
        if structure.sniff(mm[:8]) not in ("macho", "fat"):
            raise InputError(
                f"{binary}: not a Mach-O file; dSYMs exist only for Mach-O",
                hint="pass the macOS llama-server binary",
            )
        return {s.arch: s.uuid for s in structure.read_slices(mm, len(mm), str(binary))}


def make_dsym(
    binary: Path,
    output: Path | None = None,
    *,
    strip: bool = False,
    runner: Runner | None = None,
    oso_prepend: Path | None = None,
) -> DsymReport:
    """Run dsymutil into a temp dir beside `output`, check the result, then publish it.

    A dSYM that fails the checks is not published (the previous one stays) and the result
    carries the error findings; `strip` runs only after a published, good dSYM. `oso_prepend`
    is the build root that `-oso_prefix` took off the debug map's object paths.
    """
    runner = runner or default_runner()
    binary = Path(binary)
    binary_uuids = _binary_uuids(binary)
    output = Path(output) if output else binary.with_name(binary.name + ".dSYM")
    try:
        is_dir = stat.S_ISDIR(output.parent.stat().st_mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise path_error(output.parent, exc) from None
        is_dir = False
    if not is_dir:
        raise InputError(f"{output.parent}: no such directory", hint="create it first")
    _check_output(binary, output)
    tool = Dsymutil(runner)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        staged = stage / output.name
        result = tool.run(binary, staged, oso_prepend)
        notes = tuple(parse_warnings(result.stdout + "\n" + result.stderr))
        if result.returncode != 0:
            raise ToolError(
                f"dsymutil failed with exit code {result.returncode}: "
                f"{result.tail(1) or 'no output'}",
                hint="the previous dSYM (if any) was kept",
            )
        if not staged.exists():
            raise ToolError(f"dsymutil wrote nothing to {staged}")
        findings = _explain_empty(check_against(binary_uuids, binary.name, staged), notes)
        # Findings name the published path, not the temp dir that is deleted below.
        findings = [_moved(f, staged, output) for f in findings]
        uuids = _safe_uuids(find_dwarf_file(staged, binary.name))
        if has_errors(findings):
            return DsymReport(
                path=output,
                binary=binary,
                published=False,
                stripped=False,
                dwarf_file=None,
                uuids=uuids,
                binary_uuids=binary_uuids,
                tool_warnings=notes,
                findings=tuple(findings),
            )
        _publish(staged, output, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    final_dwarf = find_dwarf_file(output, binary.name)
    stripped = False
    if strip:
        findings += strip_debug(binary, binary_uuids, runner)
        stripped = not has_errors(findings)
    return DsymReport(
        path=output,
        binary=binary,
        published=True,
        stripped=stripped,
        dwarf_file=final_dwarf,
        uuids=uuids,
        binary_uuids=binary_uuids,
        tool_warnings=notes,
        findings=tuple(findings),
    )


def _moved(f: Finding, staged: Path, output: Path) -> Finding:
    """`f` with the staged dSYM's path (in path and message) replaced by the final one."""
    old, new = str(staged), str(output)
    path = new + f.path[len(old) :] if f.path and f.path.startswith(old) else f.path
    return dataclasses.replace(f, path=path, message=f.message.replace(old, new))


def _safe_uuids(dwarf: Path | None) -> Uuids:
    try:
        return structure.read_uuids(dwarf) if dwarf else {}
    except (InputError, OSError):
        return {}


NO_DEBUG_HINT = (
    "the binary has no debug map: compile with -g (RelWithDebInfo) and run dsymutil before "
    "any strip"
)


def _explain_empty(findings: list[Finding], notes: tuple[str, ...]) -> list[Finding]:
    """An empty dSYM from a binary built without -g gets a different hint than a cleaned build."""
    missing_objects = any("unable to open object file" in n for n in notes)
    no_debug = any("no debug symbols in executable" in n for n in notes)
    if missing_objects or not no_debug:
        return findings
    return [
        dataclasses.replace(f, hint=NO_DEBUG_HINT) if f.rule == "dsym-empty" else f
        for f in findings
    ]


def _is_dsym_bundle(path: Path) -> bool:
    return path.is_dir() and path.name.endswith(".dSYM") and dwarf_dir(path).is_dir()


def _check_output(binary: Path, output: Path) -> None:
    """Refuse an -o that would replace anything but a previous dSYM bundle (never the binary)."""
    hint = "name a new or existing BINARY.dSYM bundle, e.g. -o llama-server.dSYM"
    try:
        real_out, real_bin = output.resolve(), binary.resolve()
    except RuntimeError:  # Python < 3.13: "Symlink loop from ..."
        raise UsageError(f"-o {output}: cannot resolve (symlink loop)", hint=LOOP_HINT) from None
    except OSError as exc:
        raise path_error(output, exc) from None
    if real_out == real_bin or real_bin.is_relative_to(real_out):
        raise UsageError(f"-o {output}: that is (or holds) the binary itself", hint=hint)
    if (output.exists() or output.is_symlink()) and not _is_dsym_bundle(output):
        raise UsageError(
            f"-o {output}: exists and is not a .dSYM bundle (Contents/Resources/DWARF); "
            "refusing to replace it",
            hint=hint,
        )


def _publish(staged: Path, output: Path, stage: Path) -> None:
    """Swap the checked dSYM in; the old one is moved aside first and restored on failure.

    Ctrl-C/SIGTERM are deferred during the two renames: an interrupt between them would let
    the caller's cleanup of `stage` delete the previous dSYM while none is in place.
    """
    aside = stage / "previous"
    with critical():
        had_old = output.exists() or output.is_symlink()
        if had_old:
            output.replace(aside)
        try:
            staged.replace(output)
        except OSError as exc:
            if had_old:
                aside.replace(output)
            raise ToolError(f"cannot write {output}: {exc.strerror}") from exc


def strip_debug(binary: Path, before: Uuids, runner: Runner) -> list[Finding]:
    """`strip -S` into a temp file beside `binary`; replace it only if its UUIDs are unchanged."""
    tool = Strip(runner)
    stage = Path(tempfile.mkdtemp(prefix=f".{binary.name}.", suffix=".strip", dir=binary.parent))
    try:
        # Same basename: a linker-signed binary is re-signed under its file name.
        out = stage / binary.name
        tool.strip_debug(binary, out)
        if not out.is_file():
            raise ToolError(f"strip wrote nothing to {out}")
        after = structure.read_uuids(out)
        if after != before:
            return [
                error(
                    "strip-uuid-changed",
                    f"strip changed the UUIDs ({before} -> {after}); the binary was left as is",
                    path=str(binary),
                    hint="strip with `strip -S` only (never -x or a relink)",
                )
            ]
        shutil.copymode(binary, out)
        out.replace(binary)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return []
