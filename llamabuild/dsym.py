"""dSYM creation and checking.

App Store Connect answers "Upload Symbols Failed" when a dSYM's UUIDs do not match the binary
it ships, and dsymutil happily writes an empty dSYM when the object files are gone. So a dSYM is
never trusted: its bundle layout, per-arch UUIDs and `__debug_info` are checked, reading only
headers (a real DWARF file is ~130 MB).
"""

from __future__ import annotations

import dataclasses
import plistlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

from llamabuild.build.interrupt import critical
from llamabuild.errors import InputError, ToolError, UsageError
from llamabuild.findings import Finding, error, has_errors
from llamabuild.inspect import structure
from llamabuild.inspect.model import Binary
from llamabuild.inspect.reader import require_regular
from llamabuild.tools.dsymutil import Dsymutil, warnings
from llamabuild.tools.runner import Runner, default_runner
from llamabuild.tools.strip import Strip

EMPTY_HINT = "the build dir was cleaned before dsymutil ran; keep the object files / rebuild"
RELINK_HINT = (
    "the binary was relinked after the dSYM was made; run `llamabuild dsym` on the binary "
    "you ship, after its last link"
)

Uuids = dict[str, str | None]


@dataclass(frozen=True)
class DsymResult:
    """What `make_dsym` did. `published` is False when the checks failed (nothing replaced)."""

    path: Path
    binary: Path
    uuids: Uuids
    binary_uuids: Uuids
    dwarf_file: Path | None
    findings: list[Finding] = field(default_factory=list)
    published: bool = False
    stripped: bool = False
    tool_warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "binary": str(self.binary),
            "ok": self.ok,
            "published": self.published,
            "stripped": self.stripped,
            "dwarf_file": str(self.dwarf_file) if self.dwarf_file else None,
            "uuids": self.uuids,
            "binary_uuids": self.binary_uuids,
            "tool_warnings": list(self.tool_warnings),
            "findings": [f.to_json() for f in self.findings],
        }


# --- reading a dSYM ---------------------------------------------------------------------------


def dwarf_dir(dsym: Path) -> Path:
    return dsym / "Contents" / "Resources" / "DWARF"


def find_dwarf_file(dsym: Path, name: str | None = None) -> Path | None:
    """DWARF/<name>, else the only file in DWARF/; a flat dSYM is its own DWARF file."""
    if dsym.is_file():
        return dsym
    folder = dwarf_dir(dsym)
    if name and (folder / name).is_file():
        return folder / name
    stem = dsym.name.removesuffix(".dSYM").removesuffix(".app")
    if (folder / stem).is_file():
        return folder / stem
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return files[0] if len(files) == 1 else None


def dsym_uuids(dsym: Path) -> Uuids:
    """arch -> UUID of a .dSYM (bundle or flat file), reading only Mach-O headers."""
    if not dsym.exists():
        raise InputError(f"{dsym}: no such dSYM", hint="check the path (quote it if it has spaces)")
    dwarf = find_dwarf_file(dsym)
    if dwarf is None:
        raise InputError(
            f"{dsym}: no DWARF file in Contents/Resources/DWARF",
            hint="recreate it with `llamabuild dsym BINARY`",
        )
    return structure.read_uuids(dwarf)


def check_dsym(binary: Binary, dsym: Path) -> list[Finding]:
    """Layout, per-arch UUID match and non-empty debug info of `dsym` for `binary`."""
    if not dsym.exists():
        raise InputError(f"{dsym}: no such dSYM", hint="check the path (quote it if it has spaces)")
    return check_against({s.arch: s.uuid for s in binary.slices}, binary.path.name, dsym)


def check_against(binary_uuids: Uuids, name: str, dsym: Path) -> list[Finding]:
    """The checks of `check_dsym`, from the binary's arch -> UUID map (no LIEF needed)."""
    where = str(dsym)
    findings = _check_layout(dsym, name)
    dwarf = find_dwarf_file(dsym, name)
    if dwarf is None:
        return findings
    try:
        with dwarf.open("rb") as fh:
            slices = structure.read_slices(fh, dwarf.stat().st_size, str(dwarf))
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


def load_plist(path: Path) -> dict[str, Any]:
    """A plist file's top-level dict; ValueError for anything malformed (XML or binary)."""
    try:
        data = plistlib.loads(path.read_bytes())
    except (plistlib.InvalidFileException, ExpatError) as exc:
        raise ValueError(str(exc) or "malformed") from exc
    if not isinstance(data, dict):
        raise ValueError("top level is not a dictionary")
    return data


def _check_layout(dsym: Path, name: str) -> list[Finding]:
    where = str(dsym)
    hint = "recreate it with `llamabuild dsym BINARY`"
    if dsym.is_file():
        return [
            error("dsym-layout", "a flat DWARF file, not a .dSYM bundle", path=where, hint=hint)
        ]
    out: list[Finding] = []
    plist = dsym / "Contents" / "Info.plist"
    try:
        load_plist(plist)
    except FileNotFoundError:
        out.append(error("dsym-layout", "Contents/Info.plist is missing", path=where, hint=hint))
    except (ValueError, OSError) as exc:
        msg = f"Contents/Info.plist is not a valid plist ({exc})"
        out.append(error("dsym-layout", msg, path=where, hint=hint))
    if not (dwarf_dir(dsym) / name).is_file():
        found = (
            sorted(p.name for p in dwarf_dir(dsym).iterdir()) if dwarf_dir(dsym).is_dir() else []
        )
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
    require_regular(binary)
    with binary.open("rb") as fh:
        kind = structure.sniff(fh.read(8))
    if kind not in ("macho", "fat"):
        raise InputError(
            f"{binary}: not a Mach-O file; dSYMs exist only for Mach-O",
            hint="pass the macOS llama-server binary",
        )
    return structure.read_uuids(binary)


def make_dsym(
    binary: Path,
    output: Path | None = None,
    *,
    strip: bool = False,
    runner: Runner | None = None,
) -> DsymResult:
    """Run dsymutil into a temp dir beside `output`, check the result, then publish it.

    A dSYM that fails the checks is not published (the previous one stays) and the result
    carries the error findings; `strip` runs only after a published, good dSYM.
    """
    runner = runner or default_runner()
    binary = Path(binary)
    binary_uuids = _binary_uuids(binary)
    output = Path(output) if output else binary.with_name(binary.name + ".dSYM")
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: no such directory", hint="create it first")
    _check_output(binary, output)
    tool = Dsymutil.locate(runner)
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        staged = stage / output.name
        result = tool.run(binary, staged)
        notes = tuple(warnings(result))
        if result.returncode != 0:
            raise ToolError(
                f"dsymutil failed with exit code {result.returncode}: "
                f"{result.tail(1) or 'no output'}",
                hint="the previous dSYM (if any) was kept",
            )
        if not staged.exists():
            raise ToolError(f"dsymutil wrote nothing to {staged}")
        findings = _explain_empty(check_against(binary_uuids, binary.name, staged), notes)
        uuids = _safe_uuids(find_dwarf_file(staged, binary.name))
        if has_errors(findings):
            return DsymResult(
                output, binary, uuids, binary_uuids, None, findings, tool_warnings=notes
            )
        _publish(staged, output, stage)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    final_dwarf = find_dwarf_file(output, binary.name)
    stripped = False
    if strip:
        findings += strip_debug(binary, binary_uuids, runner)
        stripped = not has_errors(findings)
    return DsymResult(
        output,
        binary,
        uuids,
        binary_uuids,
        final_dwarf,
        findings,
        published=True,
        stripped=stripped,
        tool_warnings=notes,
    )


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
    real_out, real_bin = output.resolve(), binary.resolve()
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
    tool = Strip.locate(runner)
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
