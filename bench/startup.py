"""bench/startup: how long the CLI takes to start, against `python -c pass`, in one run.

  llamabuild --version                      goal: <= 0.10 s over the baseline
  llamabuild verify --json MACHO            goal: <= 0.15 s over the baseline
  llamabuild build (no-op skip)             goal: <= 0.30 s over the baseline

    python3 bench/startup.py [--repeat 7] [--before OTHER_CHECKOUT] [--macho llama-server]

Each command runs as a user runs it (`python -m llamabuild ...`, a fresh interpreter); the best
of --repeat runs is taken for each, the baseline included, so a loaded machine shifts all alike.
MACHO is the real llama-server of a macos-* build under the llamabuild cache (where
tests/plugin_real_llama.py builds it) if present, else a small Mach-O linked here with
clang-19 / ld64.lld-19 (tests/fixtures/macho.py). The no-op build uses tests/cmake_project, as
tests/test_build.py does: one real build first (not timed), then the timed no-op skips.
With --before, the same commands also run from another checkout (PYTHONPATH, its own no-op
project and cache), interleaved in the same run: a change's before and after, measured alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = """
description = "bench project, native"
platform = "linux"
archs = ["x86_64"]
elf_policy = "glibc"

[cache]
CMAKE_BUILD_TYPE = "RelWithDebInfo"
BUILD_SHARED_LIBS = false
GGML_NATIVE = false
GGML_OPENMP = false
LLAMA_OPENSSL = false
LLAMA_BUILD_SERVER = true
"""


# As an installed package runs: with bytecode caches (a PYTHONDONTWRITEBYTECODE=1 shell would
# recompile every module on every run; the first, cache-writing run is one of the discarded).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def best(
    argv: list[str],
    repeat: int,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env or ENV, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok:
            sys.exit(f"{' '.join(argv)} -> exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return min(times)


def real_macho() -> Path | None:
    from llamabuild.source.cache import cache_root

    real = cache_root() / "pytest-real-llama"
    found = sorted(real.glob("*/dist/macos-*/llama-server"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None  # the newest session's


def fixture_macho(tmp: Path) -> Path:
    from tests.fixtures.macho import MachOFactory, have_toolchain, system

    if not have_toolchain():
        sys.exit("no real macOS llama-server in the cache and no clang-19/ld64.lld-19 to link one")
    return MachOFactory(tmp / "macho").build("llama-server", system("libSystem", "libc++"))


def tree_env(tree: Path | None, **extra: str) -> dict[str, str]:
    """The environment that runs llamabuild from `tree` (None: the installed one)."""
    env = {**ENV, **extra}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


def noop_project(tmp: Path, tree: Path | None = None) -> tuple[Path, dict[str, str], list[str]]:
    proj = tmp / "proj"
    (proj / "recipes").mkdir(parents=True)
    (proj / "recipes" / "bench-native.toml").write_text(RECIPE)
    shutil.copytree(ROOT / "tests" / "cmake_project", proj / "llama src")
    env = tree_env(tree, LLAMABUILD_CACHE=str(tmp / "cache"))
    argv = [sys.executable, "-m", "llamabuild", "build", "-r", "bench-native"]
    argv += ["--source", "llama src", "--json"]
    first = subprocess.run(argv, cwd=proj, env=env, capture_output=True, text=True)
    if first.returncode != 0:
        sys.exit(f"the first (real) build failed: {first.stderr[-2000:]}")
    return proj, env, argv


def measures(tmp: Path, macho: Path, repeat: int, tree: Path | None) -> list[float]:
    """--version, verify --json, the no-op build: best wall times, from `tree`."""
    py, env = sys.executable, tree_env(tree)
    proj, build_env, build_argv = noop_project(tmp, tree)
    verify = [py, "-m", "llamabuild", "verify", "--json", str(macho)]
    return [
        best([py, "-m", "llamabuild", "--version"], repeat, env=env),
        best(verify, repeat, env=env, ok=(0, 1)),
        best(build_argv, repeat, proj, build_env),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", type=Path, help="another checkout to measure alongside")
    ap.add_argument("--macho", type=Path, help="the Mach-O verify reads (default: found)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="llamabuild-startup-") as td:
        tmp = Path(td)
        macho = args.macho or real_macho() or fixture_macho(tmp)
        base = best([sys.executable, "-c", "pass"], args.repeat)
        after = measures(tmp / "after", macho, args.repeat, None)
        before = measures(tmp / "before", macho, args.repeat, args.before) if args.before else None
        size = macho.stat().st_size
    names = [
        "llamabuild --version",
        f"llamabuild verify --json ({size / 1e6:.1f} MB Mach-O)",
        "llamabuild build (no-op skip)",
    ]
    goals = [0.10, 0.15, 0.30]
    print(f"baseline `python -c pass`: {base * 1000:.0f} ms (best of {args.repeat})")
    head = f"{'measure':<44} {'result':>10}"
    head += f" {'before':>10}" if before else ""
    print(f"{head} {'goal':>10} {'ratio':>7}")
    failed = False
    for i, (name, goal) in enumerate(zip(names, goals, strict=True)):
        over = after[i] - base
        ratio = over / goal
        failed |= ratio > 1
        was = f" {(before[i] - base) * 1000:>7.0f} ms" if before else ""
        print(
            f"{name:<44} {over * 1000:>7.0f} ms{was} {goal * 1000:>7.0f} ms {ratio:>7.2f}"
            f"  {'ok' if ratio <= 1 else 'OVER'}"
        )
    print("result = best wall time minus the baseline; ratio = result / goal (<= 1 meets it)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
