"""Required-reason APIs: which categories a Mach-O imports, what PrivacyInfo.xcprivacy declares.

App Store Connect answers ITMS-91053 "Missing API declaration" when a binary references a
required-reason API (file timestamps via stat, boot time via mach_absolute_time, disk space via
statfs, ...) that no privacy manifest declares, and ITMS-91056 when a manifest is invalid. The
categories, their symbols and the approved reason codes are data
(llamabuild/data/required_reason_apis.toml, copied from Apple's "Describing use of required
reason API" page); a binary's categories come from its imported symbols (inspect/imports.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamabuild.config.required_reasons import table as table  # re-exported
from llamabuild.config.settings import did_you_mean
from llamabuild.core import plists
from llamabuild.core.errors import InputError, ToolError
from llamabuild.core.findings import Finding, error, warning
from llamabuild.core.mapped import open_mapped
from llamabuild.core.resources import shipped_dir
from llamabuild.inspect import structure as st
from llamabuild.inspect.binary import Binary
from llamabuild.inspect.symtab import undefined_symbols

MANIFEST_NAME = "PrivacyInfo.xcprivacy"
TYPES_KEY = "NSPrivacyAccessedAPITypes"
TYPE_KEY = "NSPrivacyAccessedAPIType"
REASONS_KEY = "NSPrivacyAccessedAPITypeReasons"
TEMPLATE = "PrivacyInfo.xcprivacy.j2"
MANIFEST_DIR = "Contents/Resources"
"""Where a macOS app's privacy manifest goes (Xcode puts a target's resource there)."""


@dataclass(frozen=True)
class FoundCategory:
    """One required-reason API category the binary imports."""

    type: str
    """NSPrivacyAccessedAPIType, e.g. NSPrivacyAccessedAPICategoryFileTimestamp."""
    name: str
    symbols: tuple[str, ...]
    """The imported symbols (as linked) that put the binary in this category."""
    reasons: tuple[str, ...]
    """The reason codes declared for it (from llamabuild.toml [privacy].reasons)."""
    source: str


@dataclass(frozen=True)
class PrivacyManifestReport:
    """`llamabuild privacy-manifest --json`: the categories found and the manifest written."""

    binary: Path
    ok: bool
    categories: tuple[FoundCategory, ...]
    output: Path | None
    """The file written (atomically), or null when it went to stdout only."""
    manifest: str
    """The PrivacyInfo.xcprivacy XML, validated as a plist and by verify-app's check."""


def symbol_key(name: str) -> str:
    """`_stat$INODE64` -> `stat`: the table's spelling of an imported Mach-O symbol.

    C symbols carry a leading underscore and, on x86_64, variant suffixes after `$`
    ($INODE64, $UNIX2003); Objective-C class symbols (OBJC_CLASS_$_X) keep their `$`."""
    bare = name[1:] if name.startswith("_") else name
    if bare.startswith("OBJC_"):
        return bare
    return bare.split("$", 1)[0]


def _undefined(binary: Binary) -> dict[str, tuple[str, ...]]:
    """Arch -> the symbol table's undefined externals (a Mach-O only; {} when unreadable:
    verify reports a damaged file, this scan only adds names)."""
    if binary.format != "macho":
        return {}
    try:
        with open_mapped(binary.path) as mm:
            raws = st.read_slices(mm, len(mm), str(binary.path))
            return {raw.arch: undefined_symbols(mm, raw) for raw in raws}
    except InputError:
        return {}


def categories_of(binary: Binary) -> dict[str, tuple[str, ...]]:
    """Category -> the symbols (as linked, every slice) that put `binary` in it: its imports
    (chained fixups or binds) and its symbol table's undefined externals."""
    by_symbol: dict[str, list[str]] = {}
    for category in table().values():
        for sym in category.symbols:
            by_symbol.setdefault(sym, []).append(category.type)
    found: dict[str, set[str]] = {}
    undefined = _undefined(binary)
    for sl in binary.slices:
        names = {imp.name for imp in sl.imports} | set(undefined.get(sl.arch, ()))
        for name in names:
            for cat in by_symbol.get(symbol_key(name), ()):
                found.setdefault(cat, set()).add(name)
    order = list(table())
    return {c: tuple(sorted(found[c])) for c in sorted(found, key=order.index)}


# --- reading a manifest -----------------------------------------------------------------------


def problems(data: Mapping[str, Any]) -> list[str]:
    """What makes a manifest's NSPrivacyAccessedAPITypes invalid (App Store: ITMS-91056)."""
    entries = data.get(TYPES_KEY, [])
    if not isinstance(entries, list):
        return [f"{TYPES_KEY} is not an array"]
    out: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{TYPES_KEY}[{i}]"
        if not isinstance(entry, dict):
            out.append(f"{where} is not a dictionary")
            continue
        kind = entry.get(TYPE_KEY)
        category = table().get(kind) if isinstance(kind, str) else None
        if category is None:
            out.append(f"{where}: unknown {TYPE_KEY} {kind!r}{did_you_mean(str(kind), table())}")
            continue
        reasons = entry.get(REASONS_KEY)
        if not isinstance(reasons, list) or not reasons:
            out.append(f"{where}: {REASONS_KEY} must be a non-empty array of reason codes")
            continue
        bad = [r for r in reasons if r not in category.reasons]
        if bad:
            allowed = ", ".join(category.reasons)
            out.append(f"{where}: {bad!r} not a reason for {kind} (allowed: {allowed})")
    return out


def declared(data: Mapping[str, Any]) -> set[str]:
    """The categories a (valid or not) manifest names with at least one reason."""
    entries = data.get(TYPES_KEY, [])
    if not isinstance(entries, list):
        return set()
    return {
        e[TYPE_KEY]
        for e in entries
        if isinstance(e, dict) and isinstance(e.get(TYPE_KEY), str) and e.get(REASONS_KEY)
    }


def read_manifests(paths: Iterable[Path]) -> tuple[set[str], list[Finding]]:
    """Categories declared by every PrivacyInfo.xcprivacy in `paths`, and what is wrong with
    them (`privacy-manifest-invalid`)."""
    found: set[str] = set()
    out: list[Finding] = []
    hint = "fix it (plutil -lint) or regenerate it with `llamabuild privacy-manifest`"
    for path in paths:
        try:
            data = plists.load_plist(path, plists.BUNDLE_FILE_HINT)
        except (InputError, ValueError) as exc:
            reason = exc.message if isinstance(exc, InputError) else str(exc)
            msg = f"{path.name}: not a readable property list ({reason})"
            out.append(error("privacy-manifest-invalid", msg, path=str(path), hint=hint))
            continue
        for problem in problems(data):
            out.append(error("privacy-manifest-invalid", problem, path=str(path), hint=hint))
        found |= declared(data)
    return found, out


def undeclared(
    app: Path, uses: Mapping[str, Mapping[str, Sequence[str]]], declared_types: set[str]
) -> list[Finding]:
    """`privacy-api-undeclared` for each binary (path relative to `app`) and category nobody
    declares."""
    out: list[Finding] = []
    for rel, categories in uses.items():
        for kind, symbols in categories.items():
            if kind in declared_types:
                continue
            shown = ", ".join(symbols[:4]) + (", ..." if len(symbols) > 4 else "")
            out.append(
                warning(
                    "privacy-api-undeclared",
                    f"{rel} imports {shown} ({table()[kind].name}) but no {MANIFEST_NAME} "
                    f"declares {kind} (App Store: ITMS-91053 Missing API declaration)",
                    path=str(app / rel),
                    hint=f"add {MANIFEST_DIR}/{MANIFEST_NAME}: `llamabuild privacy-manifest "
                    f"BINARY` writes one from the reasons in llamabuild.toml [privacy]",
                )
            )
    return out


# --- writing a manifest -----------------------------------------------------------------------


def missing_reasons(found: Iterable[str], reasons: Mapping[str, Sequence[str]]) -> list[str]:
    """Categories the binary uses that [privacy] gives no reason for."""
    return [kind for kind in found if not reasons.get(kind)]


def render(found: Sequence[str], reasons: Mapping[str, Sequence[str]]) -> bytes:
    """PrivacyInfo.xcprivacy declaring `found` with the configured reasons (templates/)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(shipped_dir("templates"))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    entries = [(kind, list(reasons[kind])) for kind in found]
    try:
        text = env.get_template(TEMPLATE).render(entries=entries, table=table())
    except jinja2.TemplateError as exc:
        raise ToolError(f"template {TEMPLATE} failed to render: {exc}") from exc
    return text.encode("utf-8")


def validate_rendered(xml: bytes, found: Iterable[str]) -> None:
    """The rendered manifest parses, is valid and declares every category found: else a
    ToolError (a broken template is llamabuild's bug, never written out)."""
    try:
        data = plists.parse(xml)
    except ValueError as exc:
        raise ToolError(f"{TEMPLATE} rendered an invalid property list: {exc}") from None
    wrong = problems(data) + [f"{k} not declared" for k in found if k not in declared(data)]
    if wrong:
        raise ToolError(f"{TEMPLATE} rendered an invalid privacy manifest: {wrong[0]}")
