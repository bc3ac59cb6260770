"""`verify-app`: the integration guide's App Store checklist for a .app (and its .xcarchive).

Each item maps to an App Store rejection: "Invalid Bundle" (a .dSYM inside the .app),
"App sandbox not enabled" (helper signed without the sandbox entitlement) and "Upload Symbols
Failed" (no dSYM in the archive, or one whose UUIDs do not match the archived helper).

Nothing in the bundle or the archive is opened unless it is a regular file: a FIFO, socket or
device where a file belongs is an error finding (`special-file-in-bundle`, `helper-not-regular`,
`dsym-layout`), never a blocking open().
"""

from __future__ import annotations

import dataclasses
import os
import stat
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath

from llamabuild.appstore.checks import check_app
from llamabuild.appstore.metadata import policy as policy_data
from llamabuild.appstore.metadata import read_info
from llamabuild.appstore.seal import check_seal, check_signers
from llamabuild.appstore.tree import Tree, walk
from llamabuild.config.versions import is_version
from llamabuild.core import plists
from llamabuild.core.errors import InputError, UsageError
from llamabuild.core.findings import Finding, error, has_errors, warning
from llamabuild.core.jsonout import ALWAYS, INTERNAL, OMIT_NONE, derived, model
from llamabuild.core.mapped import file_kind, open_mapped, path_error
from llamabuild.inspect import Binary, inspect_binary, structure
from llamabuild.inspect.binary import Slice
from llamabuild.inspect.dsym import check_dsym, dsym_uuids
from llamabuild.inspect.integrity import bundle_findings
from llamabuild.inspect.metal_kernels import complete
from llamabuild.inspect.policy import Policy, check
from llamabuild.inspect.verify_binary import VerifyReport
from llamabuild.model.bundled import BundleModels, check_bundle_models
from llamabuild.model.verify_model import ModelReport
from llamabuild.provenance.shipped_notices import check_notices

DEFAULT_HELPER = "Contents/Resources/llama-server"
LC_ID_DYLIB = 0xD
DYLIB_CMDS = frozenset(
    {
        LC_ID_DYLIB,
        structure.LC_LOAD_DYLIB,
        structure.LC_LOAD_WEAK_DYLIB,
        structure.LC_REEXPORT_DYLIB,
        structure.LC_LAZY_LOAD_DYLIB,
        structure.LC_LOAD_UPWARD_DYLIB,
    }
)


@dataclass
class ArchivedDsym:
    """A .dSYM found in the .xcarchive, and the UUIDs of the binary it belongs to."""

    path: str
    binary: str
    uuids: dict[str, str | None] = field(default_factory=dict, metadata=ALWAYS)
    binary_uuids: dict[str, str | None] | None = field(default=None, metadata=OMIT_NONE)


class DsymRole(StrEnum):
    HELPER = "helper"
    APP = "app"


@model
class AppReport:
    """`llamabuild verify-app --json`: the App Store checklist for a .app (and .xcarchive)."""

    app: Path
    helper: Path
    xcarchive: Path | None = field(default=None, metadata=ALWAYS)
    ok: bool = derived(lambda r: not has_errors(r.findings))
    helper_binary: VerifyReport | None = derived(lambda r: r.helper_report)
    dsyms: dict[DsymRole, ArchivedDsym] = field(default_factory=dict, metadata=ALWAYS)
    required_reason_apis: dict[str, dict[str, tuple[str, ...]]] = field(
        default_factory=dict, metadata=ALWAYS
    )
    """Each Mach-O (bundle-relative) -> the required-reason API categories it imports ->
    the imported symbols that put it there (llamabuild/data/required_reason_apis.toml)."""
    models: tuple[ModelReport, ...] = field(default=(), metadata=ALWAYS)
    """Every .gguf in the bundle, as `verify-model` reads it."""
    findings: list[Finding] = field(default_factory=list, metadata=ALWAYS)
    helper_report: VerifyReport | None = field(default=None, metadata=INTERNAL)


def verify_app(
    app: Path,
    binary_path: str = DEFAULT_HELPER,
    xcarchive: Path | None = None,
    policy: Policy | None = None,
    strict: bool = False,
    models: BundleModels | None = None,
) -> AppReport:
    """Every checklist item as findings; a missing or non-bundle path raises InputError."""
    app = _require_dir(app, ".app", "an app bundle")
    rel = _relative(binary_path)
    report = AppReport(app=app, helper=app / rel, xcarchive=xcarchive)
    policy = _with_app_minimum(policy or Policy(), app)
    report.helper_report, found = check_helper(report.helper, policy)
    report.findings += found
    bundle = walk(app)  # one walk, read by every pass below
    report.findings += scan_bundle(app, bundle, skip=report.helper)
    report.findings += bundle_findings(app, report.helper, app_executable(app))  # hashes
    report.findings += check_seal(app, app_executable(app), bundle)  # what CodeResources seals
    signed = [app_executable(app), report.helper]
    report.findings += check_signers([p for p in signed if p.is_file()], lambda p: _rel(app, p))
    # Every bundled .gguf, as verify-model checks it (llamabuild/model/).
    ggufs = (path for path, kind in bundle if kind == "file")
    report.models, found = check_bundle_models(ggufs, models)
    report.findings += found
    report.findings += check_notices(app, report.helper)  # Credits.html names llama.cpp
    # Info.plist, provisioning profile, privacy manifests (llamabuild/appstore/)
    helper = report.helper_report.binary if report.helper_report else None
    known = {report.helper: helper} if helper and helper.format == "macho" else {}
    files = [path for path, kind in bundle if kind == "file"]
    store = check_app(app, files, known, strict=strict)
    report.findings += store.findings
    report.required_reason_apis = store.required_reason_apis
    if xcarchive is not None:
        report.xcarchive = _require_dir(xcarchive, ".xcarchive", "an Xcode archive")
        report.findings += check_xcarchive(report, rel)
    return report


def _with_app_minimum(policy: Policy, app: Path) -> Policy:
    """The policy with the app's LSMinimumSystemVersion (a valid one; metadata.py reports a
    missing or broken key) as the oldest macOS the helper runs on."""
    info, _found = read_info(app)
    value = (info or {}).get(policy_data()["minimum_system_version"]["key"])
    if not isinstance(value, str) or not is_version(value):
        return policy
    return dataclasses.replace(policy, app_min_macos=value)


def _rel(app: Path, path: Path) -> str:
    return path.relative_to(app).as_posix() if path.is_relative_to(app) else str(path)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:
        return False


def _require_dir(path: Path, suffix: str, what: str) -> Path:
    try:
        mode = path.stat().st_mode
    except OSError as exc:  # missing, a symlink loop, no permission: each with its hint
        raise path_error(path, exc, "directory") from None
    if not stat.S_ISDIR(mode) or (suffix == ".app" and not _is_dir(path / "Contents")):
        raise InputError(
            f"{path}: not {what} (expected a {suffix} directory with Contents/)",
            hint="pass the .app bundle itself (Products/Applications/<App>.app in an archive)",
        )
    return path


def _relative(binary_path: str) -> PurePosixPath:
    rel = PurePosixPath(binary_path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UsageError(
            f"--binary-path {binary_path!r} must be a path inside the bundle",
            hint=f"e.g. {DEFAULT_HELPER}",
        )
    return rel


def check_helper(helper: Path, policy: Policy) -> tuple[VerifyReport | None, list[Finding]]:
    """Exists, is a regular executable file, passes verify's policy; sandboxed when signed."""
    where = str(helper)
    try:
        mode = helper.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None, [
            error(
                "helper-missing",
                f"no helper binary at {helper.name} in the bundle",
                path=where,
                hint="copy llama-server into Contents/Resources (a Copy Files build phase)",
            )
        ]
    except OSError as exc:  # a symlink loop on the way to it, no permission
        err = path_error(helper, exc)
        return None, [error("helper-invalid", err.message, path=where, hint=err.hint)]
    if not stat.S_ISREG(mode):
        # Never opened: a FIFO would block the check forever.
        msg = f"the helper is {file_kind(mode)}, not a regular file"
        hint = "copy the binary itself into the bundle"
        return None, [error("helper-not-regular", msg, path=where, hint=hint)]
    findings: list[Finding] = []
    if not mode & 0o111:
        findings.append(
            error(
                "helper-not-executable",
                "the helper has no execute permission",
                path=where,
                hint="chmod +x it before it is signed (the copy phase dropped the mode)",
            )
        )
    try:
        binary = inspect_binary(helper)
    except InputError as exc:
        return None, [*findings, error("helper-invalid", exc.message, path=where, hint=exc.hint)]
    if binary.format != "macho":
        arch = ", ".join(s.arch for s in binary.slices)
        findings.append(
            error(
                "helper-invalid",
                f"the helper is an {binary.format.upper()} file ({arch}, a Linux build), not a "
                "Mach-O: macOS cannot run it",
                path=where,
                hint="bundle the macOS build of llama-server (e.g. the macos-arm64-metal recipe)",
            )
        )
        return VerifyReport.of(binary, findings), findings
    binary = complete(binary)  # the Metal kernels' bf16 count
    signed = any(_really_signed(s) for s in binary.slices)
    findings += check(binary, dataclasses.replace(policy, require_sandbox=signed))
    if not signed:
        findings.append(
            warning(
                "helper-unsigned",
                "the helper is not signed yet (at most the linker's ad-hoc signature)",
                path=where,
                hint="sign it with the app-sandbox entitlements before archiving",
            )
        )
    return VerifyReport.of(binary, findings), findings


def _really_signed(sl: Slice) -> bool:
    """Signed by someone after the link.

    ld64 signs every arm64 output ad hoc (flag linker-signed) because arm64 macOS runs nothing
    unsigned; that signature never carries entitlements, so it means "not signed yet", not
    "signed without the sandbox".
    """
    return sl.signed and not (sl.signature is not None and sl.signature.linker_signed)


RPATH_DIRS = (("Contents", "Resources"), ("Contents", "Frameworks"))


def scan_bundle(app: Path, bundle: Tree, skip: Path | None = None) -> list[Finding]:
    """The .app's tree (tree.walk): dSYMs, special files and @rpath dylib leftovers.

    Symlinks are not followed and only regular files are ever opened (a FIFO named `x.dylib`
    would block open() forever). `skip` (the helper) is judged by `check_helper` instead.
    """
    out: list[Finding] = []
    for path, kind in bundle:
        rel = path.relative_to(app)
        if path.name.lower().endswith(".dsym"):
            out.append(
                error(
                    "dsym-in-bundle",
                    f"{rel} is inside the app (App Store: Invalid Bundle)",
                    path=str(path),
                    hint="remove it from Copy Bundle Resources; dSYMs belong in the "
                    "archive's dSYMs folder",
                )
            )
        elif kind == "special" and path != skip:
            out.append(
                error(
                    "special-file-in-bundle",
                    f"{rel} is {file_kind(_lmode(path))}, not a regular file "
                    "(codesign cannot seal it)",
                    path=str(path),
                    hint="remove it from the bundle; it was not opened",
                )
            )
        elif kind == "file" and path.suffix == ".metallib":
            out.append(
                warning(
                    "metal-library-shipped",
                    f"{rel} is a compiled Metal library: ggml's kernels are embedded in "
                    "llama-server as source (GGML_METAL_EMBED_LIBRARY), compiled by the user's "
                    "OS; a .metallib built for one Metal version can fail on another",
                    path=str(path),
                    hint="drop it from the bundle and build llama-server with "
                    "GGML_METAL_EMBED_LIBRARY=ON (verify shows its `metal` object)",
                )
            )
        elif kind == "file" and path.name.endswith(".dylib") and rel.parts[:2] in RPATH_DIRS:
            refs = _rpath_refs(path)
            if refs:
                out.append(
                    error(
                        "rpath-dylib-leftover",
                        f"{rel} references {', '.join(refs)}",
                        path=str(path),
                        hint="a leftover of the dynamic build; the static helper needs "
                        "no dylib: remove it from the bundle",
                    )
                )
    return out


def _lmode(path: Path) -> int:
    try:
        return path.lstat().st_mode
    except OSError:
        return 0


def _rpath_refs(path: Path) -> list[str]:
    try:
        with open_mapped(path) as mm:  # regular files only, O_NONBLOCK, fstat re-check
            slices = structure.read_slices(mm, len(mm), str(path))
    except (InputError, OSError):
        return []
    names: list[str] = []
    for sl in slices:
        for c in sl.commands:
            if c.cmd in DYLIB_CMDS and len(c.data) >= 12:
                (offset,) = struct.unpack_from(sl.endian + "I", c.data, 8)
                name = structure.c_string(c.data, offset)
                if name.startswith("@rpath/") and name not in names:
                    names.append(name)
    return names


# --- the .xcarchive ---------------------------------------------------------------------------


def archived_app(xcarchive: Path, app_name: str) -> Path:
    apps = sorted((xcarchive / "Products" / "Applications").glob("*.app"))
    if not apps:
        raise InputError(
            f"{xcarchive}: not an Xcode archive (no Products/Applications/*.app)",
            hint="pass the .xcarchive made by Product > Archive or `xcodebuild archive`",
        )
    same = [a for a in apps if a.name == app_name]
    return same[0] if same else apps[0]


def app_executable(app: Path) -> Path:
    """Contents/MacOS/<CFBundleExecutable>, or the bundle's stem when Info.plist says nothing."""
    name = app.name.removesuffix(".app")
    try:
        # regular files only, <= 1 MiB; every plistlib failure a ValueError (never a traceback)
        info = plists.load_plist(app / "Contents" / "Info.plist", plists.BUNDLE_FILE_HINT)
    except (InputError, OSError, ValueError):
        info = {}
    if isinstance(info.get("CFBundleExecutable"), str):
        name = info["CFBundleExecutable"]
    return app / "Contents" / "MacOS" / name


def check_xcarchive(report: AppReport, rel: PurePosixPath) -> list[Finding]:
    """dSYMs/<helper>.dSYM and dSYMs/<App>.app.dSYM exist and match what the archive ships."""
    assert report.xcarchive is not None
    archive = report.xcarchive
    app = archived_app(archive, report.app.name)
    helper = app / rel
    out = _check_archived_dsym(report, archive / "dSYMs" / f"{helper.name}.dSYM", helper, "helper")
    exe = app_executable(app)
    out += _check_archived_dsym(report, archive / "dSYMs" / f"{app.name}.dSYM", exe, "app")
    # realpath, not Path.resolve(): it never raises on a symlink loop
    if os.path.realpath(helper) != os.path.realpath(report.helper):
        out += _compare_helpers(report.helper, helper)
    return out


def _check_archived_dsym(report: AppReport, dsym: Path, binary: Path, role: str) -> list[Finding]:
    where = str(dsym)
    mode = _lmode(dsym)
    if mode and not stat.S_ISDIR(mode) and not stat.S_ISLNK(mode):
        msg = f"dSYMs/{dsym.name} is {file_kind(mode)}, not a .dSYM bundle"
        return [error("dsym-layout", msg, path=where, hint="recreate it with `llamabuild dsym`")]
    if not _is_dir(dsym):
        return [
            error(
                "xcarchive-dsym-missing",
                f"the archive has no dSYMs/{dsym.name} for the {role} binary",
                path=where,
                hint=(
                    "copy the .dSYM from `llamabuild dsym` into ${DWARF_DSYM_FOLDER_PATH} in a "
                    "Run Script phase"
                    if role == "helper"
                    else "set Debug Information Format to 'DWARF with dSYM File' for Release"
                ),
            )
        ]
    entry = ArchivedDsym(path=where, binary=str(binary))
    report.dsyms[DsymRole(role)] = entry
    try:
        entry.uuids = dsym_uuids(dsym)
    except InputError as exc:
        return [error("dsym-layout", exc.message, path=where, hint=exc.hint)]
    try:
        target: Binary = inspect_binary(binary)
    except InputError as exc:
        msg = f"cannot check dSYMs/{dsym.name}: the archived {role} binary: {exc.message}"
        return [error("xcarchive-binary-missing", msg, path=str(binary))]
    entry.binary_uuids = {s.arch: s.uuid for s in target.slices}
    try:
        return check_dsym(target, dsym)
    except InputError as exc:  # its Info.plist or DWARF file is a FIFO, a device, a loop
        return [error("dsym-layout", exc.message, path=where, hint=exc.hint)]


def _compare_helpers(shipped: Path, archived: Path) -> list[Finding]:
    """The .app checked and the archive's copy should be the same build."""
    try:
        a, b = structure.read_uuids(shipped), structure.read_uuids(archived)
    except (InputError, OSError):
        return []
    if a == b:
        return []
    return [
        warning(
            "xcarchive-app-differs",
            f"the helper in the app ({a}) differs from the archived one ({b})",
            path=str(archived),
            hint="check the app exported from this archive, or re-archive",
        )
    ]
