"""Deterministic builds by default: what makes a build's bytes independent of the checkout
path, the build path, the clock and the user.

Every slice gets (see docs/build.md, "Reproducible builds and recovering a lost dSYM"):
- `-ffile-prefix-map=<src>=.` and `<build>=.` for every language (`__FILE__`, debug info);
- `SOURCE_DATE_EPOCH` from the pin (the commit time; `ARCHIVE_EPOCH` for an archive or a plain
  directory, recorded in the manifest) and `ZERO_AR_DATE=1`;
- deterministic archives (`ar qcD`, `ranlib -D`) where the archiver is GNU or LLVM;
- on Apple's linker `-Wl,-reproducible` and `-Wl,-oso_prefix,<build root>/` (dsymutil then
  gets `--oso-prepend-path`);
- for zig, whose Mach-O linker writes each object's absolute path and mtime into the N_OSO
  debug map and takes neither `-oso_prefix` nor ZERO_AR_DATE: a linker launcher
  (builder/ziglink.py) that links from a link dir with the objects' mtimes set to
  SOURCE_DATE_EPOCH and first has zig build its libc++ for the link's flags from one prime dir;
  every zig path under one private root of a fixed length that the published outputs carry as
  one canonical root (builder/zigroot.py);
- GIT_EXE / GIT_EXECUTABLE: builder/gitpin.py, which answers llama.cpp's configure-time
  `git rev-parse` / `diff-index` from the pin (ggml compiles the answer into ggml.c).

ccache (CCACHE_BASEDIR over both trees, for hits from any build dir or machine) hands the
compiler paths relative to the build dir: `../../src/x.c` for a source, `gen/x.c` for a
generated file. So the maps are four, the last matching one winning (gcc and clang):
`<src>=.`, `<src relative to the build dir>=.`, `<build>=.` (the compile dir) and `<build>/=`
(a generated file is `gen/x.c` with or without ccache). CCACHE_NOHASHDIR stays.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from llamabuild.builder import platforms, zigroot
from llamabuild.builder.buildplan import SlicePlan
from llamabuild.builder.zigroot import ZigRoot, zig_root
from llamabuild.config.recipes import CacheValue, Recipe
from llamabuild.source import SourceTree
from llamabuild.tools.git import Git
from llamabuild.tools.runner import Runner

# 1980-01-01T00:00:00Z: the oldest time a zip can hold. Used when the pin has no commit time
# (an archive, a plain directory); the manifest records the value used.
ARCHIVE_EPOCH: Final = 315532800


PREFIX_MAP: Final = "-ffile-prefix-map="
APPLE_LINK_FLAGS: Final = ("-Wl,-reproducible", "-Wl,-oso_prefix,")
ENV_KEYS: Final = ("SOURCE_DATE_EPOCH", "ZERO_AR_DATE")
LINKER_LAUNCHERS: Final = ("CMAKE_C_LINKER_LAUNCHER", "CMAKE_CXX_LINKER_LAUNCHER")
# ggml's CMakeLists reads GIT_EXE, llama.cpp's build-info.cmake (FindGit) GIT_EXECUTABLE.
GIT_ENTRIES: Final = ("GIT_EXE", "GIT_EXECUTABLE")
ARCHIVE_RULES: Final = {
    "ARCHIVE_CREATE": "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>",
    "ARCHIVE_APPEND": "<CMAKE_AR> qD <TARGET> <LINK_FLAGS> <OBJECTS>",
    "ARCHIVE_FINISH": "<CMAKE_RANLIB> -D <TARGET>",
}


def languages(recipe: Recipe) -> tuple[str, ...]:
    """The languages whose flags get the prefix maps (Objective-C only on macOS: Metal)."""
    return platforms.for_recipe(recipe).target.languages


def source_date_epoch(source: SourceTree, runner: Runner) -> int:
    """The pin's commit time; ARCHIVE_EPOCH when the pin has no commit git can date."""
    if source.pin.commit is None or source.pin.sha256 is not None:
        return ARCHIVE_EPOCH
    found = Git(runner).commit_time(source.root, source.pin.commit)
    return found if found is not None else ARCHIVE_EPOCH


def _arg(text: str) -> str:
    """One argument inside a CMake flags string (run by a shell): quoted when it must be."""
    return shlex.quote(text)


def prefix_flags(source_root: Path, build_dir: Path) -> list[str]:
    """Both trees map to `.`: `__FILE__` and DWARF paths are the same wherever they are, also
    through ccache, which passes the source's paths relative to the build dir."""
    rel = relative_source(source_root, build_dir)
    maps = [f"{source_root}=.", f"{rel}=.", f"{build_dir}=.", f"{build_dir}/="]
    return [_arg(PREFIX_MAP + m) for m in maps]


def zig_link_dir(recipe: Recipe, source: SourceTree, root: ZigRoot) -> Path:
    """Where zig links from: one dir per recipe and pin under the zig root (canonical in the
    outputs, builder/zigroot.py)."""
    pin = source.pin
    key = hashlib.sha256(f"{pin.kind}:{pin.commit}:{pin.sha256}".encode()).hexdigest()[:12]
    return root.link / f"{recipe.name}-{key}"


def entries_for(
    sl: SlicePlan, source: SourceTree, build_root: Path, epoch: int, root: ZigRoot | None
) -> dict[str, CacheValue]:
    """The cache entries one slice gets on top of its recipe's (merged into its flags)."""
    recipe, have = sl.recipe, sl.entries
    out: dict[str, CacheValue] = {}
    flags = prefix_flags(source.root, sl.build_dir)
    for lang in languages(recipe):
        out[f"CMAKE_{lang}_FLAGS"] = _join(have.get(f"CMAKE_{lang}_FLAGS"), flags)
    platform = platforms.for_recipe(recipe)
    if platform.archive_rules:
        for lang in ("C", "CXX"):
            out.update({f"CMAKE_{lang}_{k}": v for k, v in ARCHIVE_RULES.items()})
    link = list(platform.link_flags(build_root))
    if link:
        out["CMAKE_EXE_LINKER_FLAGS"] = _join(have.get("CMAKE_EXE_LINKER_FLAGS"), link)
    if root is not None:
        from llamabuild.builder import ziglink  # stdlib only: runs as a script, installed or not

        launcher = [sys.executable, str(Path(ziglink.__file__).resolve())]
        launcher += [str(zig_link_dir(recipe, source, root)), str(epoch), str(root.prime)]
        out.update({k: ";".join(launcher) for k in LINKER_LAUNCHERS})
    out.update(dict.fromkeys(GIT_ENTRIES, git_stand_in(source)))
    return out


def git_stand_in(source: SourceTree) -> str:
    """The `git` CMake runs (a CMake list: interpreter, script, the pin's answers)."""
    from llamabuild.builder import gitpin  # stdlib only: runs as a script, installed or not

    pin = source.pin
    dirty = "1" if source.dirty else "0"
    script = str(Path(gitpin.__file__).resolve())
    return ";".join([sys.executable, script, pin.build_commit, str(pin.build_number), dirty])


def _join(base: CacheValue | None, flags: list[str]) -> str:
    """`flags` before the recipe's own; flags an earlier `apply` added are dropped first."""
    have = _unmanaged(base) if isinstance(base, str) else ""
    return " ".join([*flags, have] if have else flags)


def _unmanaged(value: str) -> str:
    try:
        args = shlex.split(value)
    except ValueError:
        return value  # unbalanced quotes: the recipe's value as given
    if not any(_managed_flag(a) for a in args):
        return value
    return shlex.join(a for a in args if not _managed_flag(a))


def environment(epoch: int) -> dict[str, str]:
    return {"SOURCE_DATE_EPOCH": str(epoch), "ZERO_AR_DATE": "1"}


def apply(sl: SlicePlan, source: SourceTree, build_root: Path, epoch: int, zig_home: Path) -> None:
    """Make one planned slice deterministic (entries and environment, in place). A zig slice
    works under the zig root in `zig_home` (a second build's is its own, empty)."""
    uses_zig = platforms.for_recipe(sl.recipe).toolchain.uses_zig_root
    root = _zig_root(zig_home) if uses_zig else None
    sl.entries.update(entries_for(sl, source, build_root, epoch, root))
    sl.env.update(environment(epoch))
    if root is not None:
        sl.env.update(zigroot.env(root))


def _zig_root(zig_home: Path) -> ZigRoot:
    """The root for the zig this build runs (its own per install, builder/zigroot.py)."""
    from llamabuild.tools.runner import default_runner
    from llamabuild.tools.zig import Zig, install_key

    return zig_root(zig_home, install_key(Zig(default_runner())))


def relative_source(source_root: Path, build_dir: Path) -> str:
    """The source root as ccache hands it to the compiler: relative to the build dir, where
    ninja runs every compile."""
    return os.path.relpath(source_root, build_dir)


def epoch_of(env: Mapping[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH a slice was planned with (for the manifest)."""
    value = env.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else None


def strip_managed(entries: Mapping[str, str]) -> dict[str, str]:
    """A manifest's cache entries without what `apply` adds (paths of that build): what a
    rebuild passes on, so `apply` can add them again for the new paths."""
    out: dict[str, str] = {}
    for key, value in entries.items():
        if (
            key in LINKER_LAUNCHERS
            or key in GIT_ENTRIES
            or any(key.endswith(f"_{k}") for k in ARCHIVE_RULES)
        ):
            continue
        if key.endswith("_FLAGS"):
            value = _unmanaged(value)
            if not value:
                continue
        out[key] = value
    return out


def _managed_flag(arg: str) -> bool:
    return arg.startswith(PREFIX_MAP) or arg.startswith(APPLE_LINK_FLAGS)


def oso_prepend(recipe: Recipe, build_root: Path) -> Path | None:
    """The dir dsymutil puts before the relative N_OSO paths `-oso_prefix` left (Apple only)."""
    return platforms.for_recipe(recipe).oso_prepend(build_root)
