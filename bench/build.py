"""bench/build: `llamabuild build` against the raw CMake commands for the same tree and flags.

One run prints ratios measured in that run (goals from issue 4):
  llamabuild build (cold ccache) / raw cmake configure+build (cold ccache)   <= 1.03
  warm-ccache rebuild (fresh build dir) / cold build                         <= 0.05
  no-op `llamabuild build` (inputs unchanged, artifact verifies)             <= 1 s
  --guide: llamabuild build (cold) / the integration guide's manual procedure <= 0.6
  --remote-cache: runner B (empty local cache, shared Redis) / runner A (cold) <= 0.1
  --reproducible: the extra time of `build --check-reproducible` (a second, cold build from a
                  source copy with an empty ccache), in seconds and in cold builds

    python3 bench/build.py [--recipe linux-x86_64-static] [--source URL --sha256 H --ref R]
                           [--guide] [--remote-cache] [--reproducible] [--no-raw]

Everything (extracted source, build trees, ccache) lives in a temp cache dir, so both sides
start cold; the source extraction is done first and not timed. Takes two cold builds
(~6 min each on 2 cores) plus a warm one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from guide import time_guide  # bench/guide.py: the guide's own commands
from remote_ab import hit_rate, redis_server  # bench/remote_ab.py: a throwaway redis-server

from llamabuild.builder.plan import cmake_escape

# The llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e570 in vendor/llama.cpp): the same pin as
# ci/quickstart.sh and tests/plugin_real_llama.py. Standalone: needs llamabuild, not pytest.
SDIST_URL = (
    "https://files.pythonhosted.org/packages/ec/e9/"
    "e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/"
    "llama_cpp_python-0.3.36.tar.gz"
)
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LLAMA_COMMIT = "0c1e570"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-3000:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipe", default="linux-x86_64-static")
    ap.add_argument("--source", default=SDIST_URL)
    ap.add_argument("--sha256", default=SDIST_SHA256)
    ap.add_argument("--ref", default=LLAMA_COMMIT)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--guide", action="store_true", help="also time the guide's procedure")
    ap.add_argument(
        "--no-raw", action="store_true", help="skip the raw cmake build (and its ratio)"
    )
    ap.add_argument(
        "--remote-cache", action="store_true", help="cold build fills a redis; runner B reads it"
    )
    ap.add_argument(
        "--reproducible", action="store_true", help="also time build --check-reproducible"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="llamabuild bench "))  # a space on purpose
    serving = redis_server(tmp / "redis") if args.remote_cache else nullcontext(None)
    with serving as remote:
        return run_bench(args, tmp, remote)


def run_bench(args: argparse.Namespace, tmp: Path, remote: str | None) -> int:
    """Every measure of one run (the docstring's list), printed as a table."""

    cache = tmp / "cache"
    # Reuse the downloaded archive (not part of any timing) if the user cache has it.
    user_dl = Path.home() / ".cache" / "llamabuild" / "downloads" / args.sha256
    if user_dl.is_dir():
        shutil.copytree(user_dl, cache / "downloads" / args.sha256)
    env = {**os.environ, "LLAMABUILD_CACHE": str(cache)}
    lb = [sys.executable, "-m", "llamabuild"]
    src = ["--source", args.source, "--sha256", args.sha256, "--ref", args.ref]
    work = tmp / "project"
    work.mkdir()

    # 0. Resolve + extract the source (untimed) and get the exact plan.
    dry = subprocess.run(
        [*lb, "build", "-r", args.recipe, *src, "--dry-run", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(dry.stdout)
    (sl,) = plan["slices"]
    subprocess.run([*lb, "source", *src], cwd=work, env=env, capture_output=True, check=True)

    # 1. Raw cmake: the same tree, the same -D entries (incl. the ccache launcher), cold ccache.
    raw_dir = tmp / "raw build"
    cmake = sl["configure_argv"][0]
    raw_env = {**env, **sl["env"], "CCACHE_DIR": str(tmp / "raw-ccache")}
    raw_env["CCACHE_BASEDIR"] = os.path.commonpath([plan["source"]["root"], str(raw_dir)])
    # The entries through a -C file, as llamabuild passes them: a -D value that starts with a
    # quote (the prefix maps of a path with a space) loses it on CMake's command line.
    init = tmp / "raw-init-cache.cmake"
    init.write_text(
        "".join(
            f'set({k} "{cmake_escape(v)}" CACHE STRING "bench" FORCE)\n'
            for k, v in sl["cache_entries"].items()
        )
    )
    configure = [cmake, "-G", "Ninja", sl["configure_argv"][4], "-C", str(init)]
    configure += ["-S", plan["source"]["root"], "-B", str(raw_dir)]
    build = [cmake, "--build", str(raw_dir), "--target", "llama-server"]
    t_raw = None
    if not args.no_raw:
        print(f"raw cmake configure + build ({args.recipe}) ...", flush=True)
        t_raw = timed(configure, work, raw_env) + timed(build, work, raw_env)
    extra_rows = []
    if args.guide:
        print("the guide's cmake configure + cmake --build (all targets) ...", flush=True)
        t_guide = time_guide(cmake, Path(plan["source"]["root"]), tmp / "guide build")
        extra_rows.append(("guide's procedure (all targets)", t_guide, ""))

    # 2. llamabuild build, cold ccache (its own, empty), fresh build dir.
    print("llamabuild build (cold) ...", flush=True)
    remote_args = ["--ccache-remote", remote] if remote else ["--ccache-remote", "-"]
    t_cold = timed([*lb, "build", "-r", args.recipe, *src, *remote_args], work, env)
    if args.guide:
        extra_rows.append(
            ("llamabuild cold / guide", t_cold, f"ratio {t_cold / t_guide:.3f} (goal <= 0.6)")
        )

    # 3. Warm ccache: throw the build tree away, rebuild everything through ccache.
    shutil.rmtree(sl["build_dir"])
    print("llamabuild build --force (warm ccache, fresh build dir) ...", flush=True)
    t_warm = timed([*lb, "build", "-r", args.recipe, *src, "--force"], work, env)

    if args.reproducible:  # warm ccache for the build, then a cold one (an empty ccache)
        print("llamabuild build --force --check-reproducible ...", flush=True)
        check = [*lb, "build", "-r", args.recipe, *src, "--force", "--check-reproducible"]
        t_check = timed(check, work, env)
        more = t_check - t_warm
        extra = f"extra over the warm build: {more:.1f} s, {more / t_cold:.2f} x cold"
        extra_rows.append(("build --check-reproducible", t_check, extra))

    # 4. No-op: inputs unchanged and the artifact verifies.
    noops = [timed([*lb, "build", "-r", args.recipe, *src], work, env) for _ in range(3)]
    t_noop = min(noops)
    if remote:
        t_b = runner_b(lb, src, remote_args, args.recipe, work, env, cache)
        rate = hit_rate(work / "dist" / args.recipe / "manifest.json")
        extra_rows.append(
            ("runner B, shared Redis cache", t_b, f"ratio {t_b / t_cold:.3f} (goal <= 0.1); {rate}")
        )

    raw_rows = [] if t_raw is None else [("raw cmake configure+build", t_raw, "")]
    vs_raw = "" if t_raw is None else f"ratio {t_cold / t_raw:.3f} (goal <= 1.03)"
    rows = [
        *raw_rows,
        ("llamabuild build (cold)", t_cold, vs_raw),
        ("llamabuild rebuild, warm ccache", t_warm, f"ratio {t_warm / t_cold:.3f} (goal <= 0.05)"),
        ("llamabuild no-op (best of 3)", t_noop, f"{t_noop:.2f} s (goal <= 1 s)"),
        *extra_rows,
    ]
    print()
    for name, secs, note in rows:
        print(f"{name:36s} {secs:8.2f} s   {note}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept {tmp}")
    return 0


def runner_b(
    lb: list[str],
    src: list[str],
    remote_args: list[str],
    recipe: str,
    work: Path,
    env: dict[str, str],
    cache: Path,
) -> float:
    """A fresh runner: runner A's whole cache dir (sources, ccache, build trees) and dist/ are
    gone, the source is fetched again (untimed); then one timed build at the same paths."""
    downloads = cache.parent / "downloads kept"
    if (cache / "downloads").is_dir():
        shutil.copytree(cache / "downloads", downloads, dirs_exist_ok=True)
    shutil.rmtree(cache)
    shutil.rmtree(work / "dist", ignore_errors=True)
    if downloads.is_dir():
        shutil.copytree(downloads, cache / "downloads")
    subprocess.run([*lb, "source", *src], cwd=work, env=env, capture_output=True, check=True)
    print("runner B: llamabuild build, empty local cache, shared Redis ...", flush=True)
    return timed([*lb, "build", "-r", recipe, *src, *remote_args], work, env)


if __name__ == "__main__":
    sys.exit(main())
