"""Stale-flag detection: refuse a -D the pinned tree does not read.

CMake only warns about unused variables, and ggml swallows every GGML_* name, so a removed
flag (LLAMA_METAL, LLAMA_STATIC, ...) silently does nothing. We read the tree's own
option()/set(... CACHE ...)/`DEFINED X` declarations and its llama_option_depr() table, plus a
data table of flags llama.cpp removed entirely, and name the replacement where one exists.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from llamabuild.config.settings import did_you_mean
from llamabuild.core.findings import Finding, error
from llamabuild.core.resources import data_text

SCAN_DIRS = ("cmake", "ggml", "tools", "vendor", "common", "src")
_OPTION = re.compile(r"\b(?:cmake_dependent_)?option\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)", re.I)
_SET = re.compile(r"\bset\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\b([^()]*)\)", re.I)
_DEFINED = re.compile(r"\bDEFINED\s+([A-Za-z_][A-Za-z0-9_]*)")
_DEPR = re.compile(
    r"\bllama_option_depr\s*\(\s*\w+\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+([A-Za-z_][A-Za-z0-9_]*))?\s*\)"
)
_COMMENT = re.compile(r"#[^\n]*")


@dataclass(frozen=True)
class Declarations:
    """What a source tree declares (accepts) and what it marks deprecated (old -> new)."""

    declared: frozenset[str] = frozenset()
    deprecated: dict[str, str | None] = field(default_factory=dict)
    files: int = 0


def cmake_files(root: Path) -> list[Path]:
    files = [p for p in root.iterdir() if p.is_file() and _is_cmake(p)]
    for sub in SCAN_DIRS:
        d = root / sub
        if d.is_dir():
            files += [p for p in d.rglob("*") if _is_cmake(p) and p.is_file()]
    return sorted(files)


def _is_cmake(p: Path) -> bool:
    return p.name == "CMakeLists.txt" or p.suffix == ".cmake"


def parse_declarations(text: str) -> tuple[set[str], dict[str, str | None]]:
    """Names a CMake file declares as inputs, and its deprecation calls (pure)."""
    text = _COMMENT.sub("", text)
    names = {m.group(1) for m in _OPTION.finditer(text)}
    for m in _SET.finditer(text):
        if re.search(r"\bCACHE\b", m.group(2)):
            names.add(m.group(1))
    names |= {m.group(1) for m in _DEFINED.finditer(text)}
    depr = {m.group(1): m.group(2) for m in _DEPR.finditer(text)}
    return names, depr


def scan_tree(root: Path) -> Declarations:
    declared: set[str] = set()
    deprecated: dict[str, str | None] = {}
    files = cmake_files(root)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        names, depr = parse_declarations(text)
        declared |= names
        deprecated.update(depr)
    declared -= set(deprecated)
    return Declarations(frozenset(declared), deprecated, len(files))


@cache
def deprecation_table() -> dict[str, Any]:
    text = data_text("deprecated_flags.toml")
    return tomllib.loads(text)


def always_allowed(name: str) -> bool:
    table = deprecation_table()["always_allowed"]
    return name in table.get("names", []) or name.startswith(tuple(table.get("prefixes", [])))


def check_flags(keys: Iterable[str], decl: Declarations) -> list[Finding]:
    """One error finding per key the tree does not read; deprecated ones name a replacement."""
    table: dict[str, dict[str, str]] = deprecation_table()["flags"]
    out: list[Finding] = []
    for key in sorted(set(keys)):
        if always_allowed(key) or key in decl.declared:
            continue
        entry = table.get(key, {})
        tree_repl = decl.deprecated.get(key)
        repl = entry.get("replacement") or tree_repl
        if key in decl.deprecated or key in table:
            note = entry.get("note")
            msg = f"{key} is deprecated and does nothing in this llama.cpp"
            msg += f"; use {repl}" if repl else "; it was removed"
            out.append(
                error(
                    "stale-flag",
                    msg,
                    hint=note or (f"replace it with {repl}" if repl else "remove it"),
                )
            )
            continue
        suggestion = did_you_mean(key, decl.declared)
        out.append(
            error(
                "unknown-flag",
                f"{key} is not declared anywhere in this llama.cpp tree{suggestion}",
                hint="CMake would ignore it silently; remove it or fix its name",
            )
        )
    return out
