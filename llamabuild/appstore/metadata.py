"""Bundle metadata against the binaries: Info.plist, CFBundleExecutable, every Mach-O's minos.

App Store Connect refuses a bundle whose Info.plist contradicts its binaries: ITMS-90208 when a
Mach-O needs a newer macOS than `LSMinimumSystemVersion`, Transporter when the key is absent,
ITMS-90885 when a nested helper claims an App ID. Policy (keys, sources) is
llamabuild/data/app_store.toml.
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from llamabuild.config.versions import is_version, version_tuple
from llamabuild.core import plists
from llamabuild.core.errors import InputError
from llamabuild.core.findings import Finding, error
from llamabuild.core.mapped import open_mapped
from llamabuild.core.resources import data_text
from llamabuild.inspect import Binary, inspect_binary

INFO_PLIST = "Contents/Info.plist"
MACHO_MAGICS = frozenset(
    {
        b"\xfe\xed\xfa\xce",
        b"\xce\xfa\xed\xfe",
        b"\xfe\xed\xfa\xcf",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe",  # fat (also a Java class file: inspect_binary tells them apart)
        b"\xca\xfe\xba\xbf",  # fat64
    }
)


@cache
def policy() -> dict[str, Any]:
    """llamabuild/data/app_store.toml."""
    return tomllib.loads(data_text("app_store.toml"))


@dataclass(frozen=True)
class Bundle:
    """What the metadata checks learnt: Info.plist, the main executable, every Mach-O."""

    app: Path
    info: Mapping[str, Any] | None
    main: Path | None
    machos: Mapping[Path, Binary]

    def rel(self, path: Path) -> str:
        return path.relative_to(self.app).as_posix()


def _is_macho(path: Path) -> bool:
    try:
        with open_mapped(path) as mm:  # regular files only, never a FIFO
            return bytes(mm[:4]) in MACHO_MAGICS
    except (InputError, OSError):
        return False


def find_machos(files: Iterable[Path], known: Mapping[Path, Binary]) -> dict[Path, Binary]:
    """Every regular file of the bundle that is a readable Mach-O (`known`: already inspected)."""
    out: dict[Path, Binary] = {}
    for path in files:
        if path in known:
            out[path] = known[path]
        elif _is_macho(path):
            try:
                binary = inspect_binary(path)
            except InputError:
                continue  # a Java class file or a damaged dylib: scan_bundle/verify judge those
            if binary.format == "macho":
                out[path] = binary
    return out


def read_info(app: Path) -> tuple[dict[str, Any] | None, list[Finding]]:
    """Contents/Info.plist, or an `info-plist-invalid` finding saying why it cannot be read."""
    path = app / INFO_PLIST
    hint = "Info.plist is an XML or binary property list whose top level is a <dict>"
    try:
        return plists.load_plist(path, plists.BUNDLE_FILE_HINT), []
    except InputError as exc:
        msg = f"{INFO_PLIST}: {exc.message.removeprefix(f'{path}: ')}"
        return None, [error("info-plist-invalid", msg, path=str(path), hint=exc.hint or hint)]
    except ValueError as exc:
        msg = f"{INFO_PLIST} is not a valid property list ({exc})"
        return None, [error("info-plist-invalid", msg, path=str(path), hint=hint)]


def main_executable(app: Path, info: Mapping[str, Any]) -> tuple[Path | None, list[Finding]]:
    """Contents/MacOS/<CFBundleExecutable>: named, a regular file, a Mach-O."""
    name = info.get("CFBundleExecutable")
    where = str(app / INFO_PLIST)
    hint = "set CFBundleExecutable to the file name of the app's binary in Contents/MacOS"
    if not isinstance(name, str) or not name:
        msg = "Info.plist has no CFBundleExecutable (macOS cannot launch the app)"
        return None, [error("bundle-executable-invalid", msg, path=where, hint=hint)]
    rel = PurePosixPath(name)
    if len(rel.parts) != 1 or name in (".", ".."):
        msg = f"CFBundleExecutable {name!r} is not a file name"
        return None, [error("bundle-executable-invalid", msg, path=where, hint=hint)]
    exe = app / "Contents" / "MacOS" / name
    try:
        mode = exe.lstat().st_mode
    except OSError:
        msg = f"CFBundleExecutable {name!r}: no Contents/MacOS/{name}"
        return None, [error("bundle-executable-invalid", msg, path=str(exe), hint=hint)]
    if not stat.S_ISREG(mode) or not _is_macho(exe):
        what = "not a regular file" if not stat.S_ISREG(mode) else "not a Mach-O binary"
        msg = f"CFBundleExecutable Contents/MacOS/{name} is {what}"
        return None, [error("bundle-executable-invalid", msg, path=str(exe), hint=hint)]
    return exe, []


def check_minos(bundle: Bundle) -> list[Finding]:
    """LSMinimumSystemVersion is present, a version, and no older than any Mach-O's minos."""
    rules = policy()["minimum_system_version"]
    key = rules["key"]
    where = str(bundle.app / INFO_PLIST)
    info = bundle.info or {}
    value = info.get(key)
    if value is None:
        return [
            error(
                "plist-minos-missing",
                f"Info.plist has no {key}: Transporter refuses the upload and macOS would "
                "offer the app to every version",
                path=where,
                hint=f"set {key} to the deployment target (MACOSX_DEPLOYMENT_TARGET)",
            )
        ]
    if not isinstance(value, str) or not is_version(value):
        return [
            error(
                "info-plist-invalid",
                f'{key} {value!r} is not a version string like "14.0" (App Store: ITMS-90265)',
                path=where,
                hint=f"set {key} to the deployment target, e.g. 14.0",
            )
        ]
    out: list[Finding] = []
    for path, binary in bundle.machos.items():
        for sl in binary.slices:
            if sl.minos and version_tuple(sl.minos) > version_tuple(value):
                out.append(
                    error(
                        "plist-minos-mismatch",
                        f"{bundle.rel(path)} ({sl.arch}) needs macOS {sl.minos} but Info.plist "
                        f"{key} is {value} (App Store: ITMS-90208 Invalid Bundle)",
                        arch=sl.arch,
                        path=str(path),
                        hint=f"raise {key} to {sl.minos}, or rebuild the binary with "
                        f"--min-macos {value}",
                    )
                )
    return out


def entitlements_of(binary: Binary) -> dict[str, Any]:
    """The signed entitlements (the first slice that has any; slices of one signing agree)."""
    for sl in binary.slices:
        if sl.signature is not None and sl.signature.entitlements:
            return dict(sl.signature.entitlements)
    return {}


def check_nested(bundle: Bundle) -> list[Finding]:
    """`helper-application-identifier`: a nested executable claiming an App ID or team."""
    keys = policy()["nested"]["forbidden_keys"]
    out: list[Finding] = []
    macos = bundle.app / "Contents" / "MacOS"
    for path, binary in bundle.machos.items():
        # unknown main executable (Info.plist unreadable): Contents/MacOS is given the benefit
        if path == bundle.main or (bundle.main is None and path.parent == macos):
            continue
        claimed = [k for k in keys if k in entitlements_of(binary)]
        if claimed:
            out.append(
                error(
                    "helper-application-identifier",
                    f"{bundle.rel(path)} is a nested executable signed with "
                    f"{', '.join(claimed)} (App Store: ITMS-90885)",
                    path=str(path),
                    hint="sign the helper with app-sandbox + inherit only "
                    "(`llamabuild sign --preset app-helper`)",
                )
            )
    return out


def inspect_bundle(
    app: Path, files: Iterable[Path], known: Mapping[Path, Binary]
) -> tuple[Bundle, list[Finding]]:
    """Read Info.plist and every Mach-O once; the metadata findings."""
    info, out = read_info(app)
    main = None
    if info is not None:
        main, found = main_executable(app, info)
        out += found
    bundle = Bundle(app=app, info=info, main=main, machos=find_machos(files, known))
    if info is not None:
        out += check_minos(bundle)
    out += check_nested(bundle)
    return bundle, out
