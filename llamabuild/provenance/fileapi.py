"""What CMake compiles into a target, from its file-API code model (codemodel-v2).

llamabuild already asks for the code model before configure (tools/cmake.write_query); this
reads the reply back and follows the target's link libraries transitively: static libraries
bring their sources, header-only (INTERFACE) libraries their source directory. Build-order-only
dependencies (a custom target that generates files) are not followed: they link nothing.
Imported targets (Threads::Threads, OpenSSL::SSL) are system libraries, not tree code.

A static library's sources are only candidates: the linker takes an archive member only when
the program references it (provenance/linkcheck.py checks that), so they are kept apart
(`archived`), each with its object file from compile_commands.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from llamabuild.core.errors import ToolError
from llamabuild.tools.cmake import CLIENT

MAX_REPLY_BYTES = 64 * 1024 * 1024  # one reply file; llama.cpp's largest is ~200 KB
LINKED_TYPES = frozenset({"STATIC_LIBRARY", "OBJECT_LIBRARY", "INTERFACE_LIBRARY", "EXECUTABLE"})


@dataclass(frozen=True)
class LinkedTree:
    """The files of the source tree that end up in one target (paths relative to the tree)."""

    target: str
    targets: tuple[str, ...]
    files: tuple[str, ...]  # linked whole: the executable's and object libraries' sources
    archived: tuple[str, ...]  # static library sources: linked when referenced
    dirs: tuple[str, ...]  # header-only (INTERFACE) libraries' source directories
    objects: dict[str, str] = field(default_factory=dict)  # source -> object file
    # Before codemodel 2.9 (no linkLibraries, no INTERFACE targets): the in-tree include
    # directories, which hold any header-only library that is compiled in (and maybe more).
    include_dirs: tuple[str, ...] = ()


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file() or path.stat().st_size > MAX_REPLY_BYTES:
        raise ToolError(f"{path}: not a CMake file-API reply file", hint="configure again")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _reply(rdir: Path, kind: str) -> dict[str, Any]:
    """One reply object (`codemodel`, `toolchains`) of the newest index."""
    try:
        index_path = max(rdir.glob("index-*.json"), key=lambda p: p.name)
    except ValueError as exc:
        raise ToolError(f"CMake wrote no file-API reply in {rdir}", hint="configure again") from exc
    index = _load(index_path)
    responses = index["reply"][CLIENT]["query.json"]["responses"]
    (found,) = [r for r in responses if r.get("kind") == kind and "jsonFile" in r]
    return _load(rdir / found["jsonFile"])


def _codemodel(rdir: Path) -> dict[str, Any]:
    return _reply(rdir, "codemodel")


def compilers(build_dir: Path) -> dict[str, dict[str, str]]:
    """Language -> the compiler CMake used (id, version, path), from the toolchains reply;
    empty when this CMake wrote none (before 3.20) or it is unreadable."""
    try:
        reply = _reply(build_dir / ".cmake" / "api" / "v1" / "reply", "toolchains")
        out: dict[str, dict[str, str]] = {}
        for tc in reply.get("toolchains", []):
            comp = tc.get("compiler", {})
            keys = ("id", "version", "path")
            out[str(tc.get("language", "?"))] = {k: str(comp.get(k, "")) for k in keys}
        return out
    except (ToolError, KeyError, IndexError, TypeError, ValueError, OSError):
        return {}


def linked_tree(build_dir: Path, target: str) -> LinkedTree:
    """Sources and header-only library dirs compiled into `target` (ToolError if unreadable)."""
    rdir = build_dir / ".cmake" / "api" / "v1" / "reply"
    try:
        model = _codemodel(rdir)
        config = model["configurations"][0]
        by_id = {t["id"]: t for t in [*config["targets"], *config.get("abstractTargets", [])]}
        root = PurePosixPath(model["paths"]["source"])
        start = [t["id"] for t in config["targets"] if t["name"] == target]
        if not start:
            raise ToolError(f"the CMake code model has no target '{target}'")
        tree = _walk(rdir, by_id, start[0], root, target)
        return replace(tree, objects=_objects(build_dir, root))
    except (KeyError, IndexError, TypeError, ValueError, OSError) as exc:
        raise ToolError(f"unreadable CMake code model in {rdir}: {exc}") from exc


def _walk(
    rdir: Path, by_id: dict[str, Any], start: str, root: PurePosixPath, target: str
) -> LinkedTree:
    seen: set[str] = set()
    todo = [start]
    names: list[str] = []
    found: dict[str, set[str]] = {"files": set(), "archived": set(), "dirs": set(), "inc": set()}
    while todo:
        tid = todo.pop()
        if tid in seen or tid not in by_id:
            continue
        seen.add(tid)
        detail = _load(rdir / by_id[tid]["jsonFile"])
        kind = detail.get("type")
        if kind not in LINKED_TYPES or detail.get("imported"):
            continue
        names.append(detail["name"])
        into = found["archived" if kind == "STATIC_LIBRARY" else "files"]
        into.update(p for s in detail.get("sources", []) if (p := _in_tree(s["path"], root)))
        if kind == "INTERFACE_LIBRARY" and detail.get("paths", {}).get("source"):
            found["dirs"].add(detail["paths"]["source"])
        todo += [lib["id"] for lib in _links(detail) if "id" in lib]
        if "linkLibraries" not in detail and "interfaceLinkLibraries" not in detail:
            found["inc"].update(_includes(detail, root))
    files, archived, dirs, inc = (
        tuple(sorted(found[k])) for k in ("files", "archived", "dirs", "inc")
    )
    return LinkedTree(target, tuple(sorted(names)), files, archived, dirs, include_dirs=inc)


def _includes(detail: dict[str, Any], root: PurePosixPath) -> set[str]:
    groups = detail.get("compileGroups", [])
    paths = (inc.get("path", "") for g in groups for inc in g.get("includes", []))
    return {p for path in paths if (p := _in_tree(path, root)) is not None}


def _objects(build_dir: Path, root: PurePosixPath) -> dict[str, str]:
    """compile_commands.json's source -> object map (empty when the tree does not export it)."""
    path = build_dir / "compile_commands.json"
    if not path.is_file() or path.stat().st_size > MAX_REPLY_BYTES:
        return {}
    out: dict[str, str] = {}
    for entry in json.loads(path.read_text(encoding="utf-8")):
        if not isinstance(entry, dict) or "output" not in entry:
            continue
        rel = _in_tree(str(entry.get("file", "")), root)
        if rel is not None:
            out[rel] = str(Path(str(entry.get("directory", build_dir))) / str(entry["output"]))
    return out


def _links(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """linkLibraries (codemodel 2.9+, with INTERFACE libraries), else the build dependencies."""
    if "linkLibraries" in detail or "interfaceLinkLibraries" in detail:
        return [*detail.get("linkLibraries", []), *detail.get("interfaceLinkLibraries", [])]
    links: list[dict[str, Any]] = detail.get("dependencies", [])
    return links


def _in_tree(path: str, root: PurePosixPath) -> str | None:
    """A source path relative to the tree, or None for generated files in the build dir."""
    p = PurePosixPath(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.relative_to(root))
    except ValueError:
        return None
