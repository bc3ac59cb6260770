"""The third-party components compiled into a target: the vendored-code table matched against
what the code model says is linked, with versions and license texts read from the pinned tree.

Every file is read from the source tree being built (regular files only, mapped, bounded), so
the notices always carry the text of the exact copy that was compiled.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from llamabuild.config.settings import from_mapping
from llamabuild.core.errors import ConfigError, InputError
from llamabuild.core.findings import Finding, warning
from llamabuild.core.mapped import open_mapped
from llamabuild.core.resources import data_text
from llamabuild.provenance.fileapi import LinkedTree

TABLE = "vendored_components.toml"
MAX_TEXT = 256 * 1024  # one license text; the longest vendored one is ~2 KB
MAX_VERSION = 64
MAX_WALK = 10_000  # files looked at under one vendored folder
SOURCE_SUFFIXES = frozenset({".c", ".cc", ".cpp", ".cxx", ".m", ".mm"})
Linked = Callable[[str | None], bool]  # an object file (or None: unknown) -> taken by the linker


@dataclass(frozen=True)
class VersionSpec:
    file: str
    macros: tuple[str, ...] = ()
    pattern: str | None = None


@dataclass(frozen=True)
class TextSpec:
    file: str
    to: str | None = None
    from_: str | None = None  # `from` in the TOML (a Python keyword)


@dataclass(frozen=True)
class ComponentSpec:
    """One [[component]] of llamabuild/data/vendored_components.toml."""

    name: str
    texts: tuple[TextSpec, ...]
    source: str
    paths: tuple[str, ...] = ()
    license: str | None = None
    license_name: str | None = None
    version: VersionSpec | None = None
    url: str | None = None
    purl: str | None = None

    def covers(self, path: str) -> bool:
        return any(_under(path, prefix) for prefix in self.paths)

    def compiled(self, linked: LinkedTree) -> list[str]:
        """The static-library sources of `linked` that belong to this component."""
        return [p for p in linked.archived if self.covers(p)]

    def linked_whole(self, linked: LinkedTree) -> bool:
        """Part of the executable itself, or a header-only library it links."""
        return any(self.covers(p) for p in (*linked.files, *linked.dirs))


@dataclass(frozen=True)
class ComponentTable:
    """llama.cpp itself (`project`) and the code it vendors (`component`)."""

    project: ComponentSpec
    component: tuple[ComponentSpec, ...]


@dataclass(frozen=True)
class LicenseText:
    """One license text with the tree path it was read from."""

    file: str
    text: str


@dataclass(frozen=True)
class Component:
    """A component really compiled into the target, as found in the pinned tree."""

    spec: ComponentSpec
    version: str | None
    texts: tuple[LicenseText, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def license(self) -> str:
        return self.spec.license or self.spec.license_name or "NOASSERTION"

    @property
    def url(self) -> str | None:
        return self.spec.url

    @property
    def notice(self) -> str | None:
        """Vendored code needs no statement beyond its license text."""
        return None


@lru_cache(maxsize=65536)
def _parts(path: str) -> tuple[str, ...]:
    return PurePosixPath(path).parts


def _under(path: str, prefix: str) -> bool:
    """`path` is `prefix` or inside it. Parts cached: every component is matched against every
    linked source (11 x 1200 paths took 0.49 s building PurePosixPaths, now 0.02 s)."""
    p, q = _parts(path), _parts(prefix)
    return p[: len(q)] == q


def load_table(text: str | None = None, where: str = TABLE) -> ComponentTable:
    """The shipped table (or `text`), typed; ConfigError on a bad entry."""
    try:
        raw = tomllib.loads(data_text(TABLE) if text is None else text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    for entry in [raw.get("project"), *raw.get("component", [])]:
        for t in entry.get("texts", []) if isinstance(entry, dict) else []:
            if isinstance(t, dict) and "from" in t:
                t["from_"] = t.pop("from")
    return from_mapping(ComponentTable, raw, where)


@dataclass(frozen=True)
class Found:
    """llama.cpp and the vendored components compiled in, with what could not be read;
    `not_linked` names components built into a static library the linker did not take."""

    project: Component
    vendored: tuple[Component, ...]
    findings: tuple[Finding, ...]
    not_linked: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[Component, ...]:
        return (self.project, *self.vendored)


def _linked(
    root: Path, spec: ComponentSpec, trees: Sequence[LinkedTree], linked: Linked
) -> bool | None:
    """True: in the binary; False: only in archive members the linker left; None: absent."""
    compiled = False
    for tree in trees:
        if spec.linked_whole(tree):
            return True
        members = spec.compiled(tree)
        compiled = compiled or bool(members)
        if any(linked(tree.objects.get(p)) for p in members):
            return True
        included = any(_under(q, d) for q in spec.paths for d in tree.include_dirs)
        if not members and included and _header_only(root, spec):
            return True  # older CMake: a header-only library under an include directory
    return False if compiled else None


def _header_only(root: Path, spec: ComponentSpec) -> bool:
    """Its paths exist in the tree and hold no C/C++ source (only then can an include
    directory alone say it is compiled in)."""
    paths = [root / p for p in spec.paths]
    if not any(p.exists() for p in paths):
        return False
    files = [p for p in paths if p.is_file()]
    for d in (p for p in paths if p.is_dir()):
        files += list(itertools.islice(d.rglob("*"), MAX_WALK))
    return not any(f.suffix in SOURCE_SUFFIXES for f in files)


def find_components(
    root: Path,
    trees: Sequence[LinkedTree],
    project_version: str | None,
    linked: Linked = lambda _obj: True,
    table: ComponentTable | None = None,
) -> Found:
    """The table's components that the binary built from `trees` contains, read from the tree
    at `root`; `linked(object)` says whether the linker took a static library's member.
    llama.cpp itself (the table's project) has the pin's version."""
    tab = load_table() if table is None else table
    findings: list[Finding] = []
    verdicts = {s.name: _linked(root, s, trees, linked) for s in tab.component}
    picked = [s for s in tab.component if verdicts[s.name]]
    project = Component(tab.project, project_version, read_texts(root, tab.project, findings))
    vendored = [
        Component(s, read_version(root, s.version), read_texts(root, s, findings)) for s in picked
    ]
    not_linked = tuple(name for name, v in verdicts.items() if v is False)
    return Found(project, tuple(vendored), tuple(findings), not_linked)


def _read(root: Path, rel: str) -> bytes:
    """A file of the tree; refuses paths that leave it (the table is data)."""
    path = root / rel
    if ".." in PurePosixPath(rel).parts or PurePosixPath(rel).is_absolute():
        raise ConfigError(f"{TABLE}: {rel!r} is not a path inside the source tree")
    with open_mapped(path) as mm:
        return bytes(mm[:])


def read_version(root: Path, spec: VersionSpec | None) -> str | None:
    """The version the vendored file states, or None (no spec, file or match)."""
    if spec is None:
        return None
    try:
        text = _read(root, spec.file).decode("utf-8", "replace")
    except InputError:
        return None
    if spec.pattern:
        m = re.search(spec.pattern, text)
        return m.group(1)[:MAX_VERSION] if m else None
    parts = []
    for macro in spec.macros:
        m = re.search(rf"^\s*#\s*define\s+{re.escape(macro)}\s+\"?([0-9A-Za-z.+-]+)", text, re.M)
        if m is None:
            return None
        parts.append(m.group(1))
    return ".".join(parts)[:MAX_VERSION] or None


def read_texts(root: Path, spec: ComponentSpec, findings: list[Finding]) -> tuple[LicenseText, ...]:
    """Each license text of `spec`; one that cannot be read is a `license-text-missing` warning."""
    out = []
    for t in spec.texts:
        try:
            data = _read(root, t.file).decode("utf-8", "replace")
            text = data if t.from_ is None else excerpt(data, t)
        except InputError as exc:
            findings.append(
                warning(
                    "license-text-missing",
                    f"{spec.name}: no license text: {exc.message}",
                    hint=f"the notices lack it; if the tree moved it, update data/{TABLE}",
                )
            )
            continue
        out.append(LicenseText(t.file, text.strip()[:MAX_TEXT] + "\n"))
    return tuple(out)


def excerpt(data: str, t: TextSpec) -> str:
    """The lines of `data` from the one containing `t.from_` to the first after it containing
    `t.to` (a leading `//` dropped); InputError when `t.from_` is not there."""
    lines = data.splitlines()
    start = next((i for i, line in enumerate(lines) if t.from_ and t.from_ in line), None)
    if start is None:
        raise InputError(f"{t.file} has no line with {t.from_!r}")
    end = len(lines) - 1
    if t.to is not None:
        end = next((i for i in range(start, len(lines)) if t.to in lines[i]), end)
    picked = [re.sub(r"^\s*// ?", "", line) for line in lines[start : end + 1]]
    if picked and picked[-1].strip() == "*/":
        picked.pop()
    return "\n".join(picked)
