"""cmake and ninja (from PyPI, or PATH): configure, build, and the CMake file API.

Two adapters, `CMake` and `Ninja` (the generator CMake drives; llamabuild only asks its
version and reads its `[n/m]` progress lines).

Results are read back through the file API (codemodel, cache, toolchains replies) instead of
scraping logs: which artifact the target produced, the cache values CMake really used, and the
compiler it picked.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamabuild.config.versions import banner_version
from llamabuild.core.errors import ToolError
from llamabuild.tools.runner import Runner, Tool, find_tool

CLIENT = "client-llamabuild"
QUERY = {
    "requests": [
        {"kind": "codemodel", "version": 2},
        {"kind": "cache", "version": 2},
        {"kind": "toolchains", "version": 1},
    ]
}
PROGRESS_RE = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")


def _pypi_bin_dirs() -> list[Path]:
    """cmake/ninja wheels put their binaries in package data dirs (not always on PATH)."""
    dirs: list[Path] = []
    # The wheel's layout (<package>/data/bin), found without importing it: `import cmake`
    # walks its distribution's file list (~0.1 s, a third of a no-op build).
    spec = importlib.util.find_spec("cmake")
    bundled = (
        [Path(p) / "data" / "bin" for p in (spec.submodule_search_locations or [])] if spec else []
    )
    if bundled and (bundled[0] / "cmake").is_file():
        dirs.append(bundled[0])
    else:
        try:
            import cmake

            dirs.append(Path(cmake.CMAKE_BIN_DIR))
        except (ImportError, AttributeError):
            pass
    try:
        import ninja

        dirs.append(Path(ninja.BIN_DIR))
    except (ImportError, AttributeError):
        pass
    return dirs


def parse_version(text: str) -> str:
    """The version in a `--version` banner, else its first line (never empty)."""
    found = banner_version(text, suffix=True)
    if found:
        return found
    return text.strip().splitlines()[0] if text.strip() else "unknown"


def parse_progress(line: str) -> tuple[int, int, str] | None:
    """Ninja's `[n/m] description` status lines."""
    m = PROGRESS_RE.match(line)
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def write_query(build_dir: Path) -> Path:
    """Ask CMake (before configure) to write codemodel/cache/toolchains replies."""
    qdir = build_dir / ".cmake" / "api" / "v1" / "query" / CLIENT
    qdir.mkdir(parents=True, exist_ok=True)
    path = qdir / "query.json"
    path.write_text(json.dumps(QUERY))
    return path


@dataclass(frozen=True)
class FileApiReply:
    """What CMake reports about a configured build tree."""

    cache: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compilers: dict[str, dict[str, str]] = field(default_factory=dict)


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def read_reply(build_dir: Path) -> FileApiReply:
    """Parse the newest reply index for our client (pure, no CMake run)."""
    rdir = build_dir / ".cmake" / "api" / "v1" / "reply"
    try:
        index_path = max(rdir.glob("index-*.json"), key=lambda p: p.name)
    except ValueError as exc:
        raise ToolError(
            f"CMake wrote no file-API reply in {rdir}", hint="is cmake older than 3.14?"
        ) from exc
    try:
        index = _load(index_path)
        responses = index["reply"][CLIENT]["query.json"]["responses"]
        by_kind = {r["kind"]: _load(rdir / r["jsonFile"]) for r in responses if "jsonFile" in r}
        return _reply_from(index, by_kind, rdir)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise ToolError(f"unreadable CMake file-API reply in {rdir}: {exc}") from exc


def _reply_from(index: dict[str, Any], by_kind: dict[str, Any], rdir: Path) -> FileApiReply:
    cache = {e["name"]: str(e["value"]) for e in by_kind.get("cache", {}).get("entries", [])}
    artifacts: dict[str, tuple[str, ...]] = {}
    codemodel = by_kind.get("codemodel", {})
    for config in codemodel.get("configurations", [])[:1]:
        for target in config.get("targets", []):
            detail = _load(rdir / target["jsonFile"])
            paths = tuple(a["path"] for a in detail.get("artifacts", []))
            artifacts[target["name"]] = paths
    compilers: dict[str, dict[str, str]] = {}
    for tc in by_kind.get("toolchains", {}).get("toolchains", []):
        comp = tc.get("compiler", {})
        compilers[tc.get("language", "?")] = {
            "id": str(comp.get("id", "")),
            "version": str(comp.get("version", "")),
            "path": str(comp.get("path", "")),
        }
    return FileApiReply(cache=cache, artifacts=artifacts, compilers=compilers)


def configure_argv(
    cmake: Path,
    ninja: Path,
    source: Path,
    build_dir: Path,
    init_cache: Path,
    toolchain_file: Path | None = None,
) -> list[str]:
    """The exact configure command (shown by --dry-run, run by build)."""
    argv = [
        str(cmake),
        "--fresh",
        "-G",
        "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={ninja}",
        "-C",
        str(init_cache),
    ]
    if toolchain_file is not None:
        argv.append(f"-DCMAKE_TOOLCHAIN_FILE={toolchain_file}")
    argv += ["-S", str(source), "-B", str(build_dir)]
    return argv


def build_argv(cmake: Path, build_dir: Path, target: str, jobs: int | None = None) -> list[str]:
    argv = [str(cmake), "--build", str(build_dir), "--target", target]
    if jobs:
        argv += ["--parallel", str(jobs)]
    return argv


class _PyPITool(Tool):
    """Found in its PyPI wheel's folder first (not always on PATH), then on PATH."""

    def find(self) -> Path:
        return find_tool(self.names, self.hint, extra_dirs=_pypi_bin_dirs())

    def version(self) -> str:
        return parse_version(self.runner.run([self.exe, "--version"]).stdout)


class Ninja(_PyPITool):
    names = ("ninja",)
    hint = "pip install ninja"


class CMake(_PyPITool):
    names = ("cmake",)
    hint = "pip install cmake"

    def __init__(self, runner: Runner, exe: Path | None = None) -> None:
        super().__init__(runner, exe)
        self.ninja_tool = Ninja(runner)

    @property
    def ninja(self) -> Path:
        return self.ninja_tool.exe

    def versions(self) -> dict[str, str]:
        return {"cmake": self.version(), "ninja": self.ninja_tool.version()}
