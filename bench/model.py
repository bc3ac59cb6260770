"""bench/model: `llamabuild verify-model` on a multi-GB sparse GGUF, and 10,000 mutations.

Goals (one run prints each measure against its goal):
  - `verify-model --json` on a Qwen3-shaped Q8_0 GGUF (a real header with the full 151,936
    token vocabulary and merges; tensor data a hole) <= 1 s, peak RSS <= 64 MB;
  - with `--sha256`, the whole command at >= 0.8 x `sha256sum`'s speed on the same file;
  - 10,000 seeded mutations of real GGUFs: exit 0, 1 or 2 only, no traceback, no hang.

    python3 bench/model.py [--layers 4] [--runs 5] [--fuzz 10000] [--json figures.json]

--layers sets the file size (4: 2.3 GB, 32: 8.7 GB); the sparse file costs ~7 MB of disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamabuild.model.gguf_tiny import write_tiny_llama  # noqa: E402
from tests.fixtures.gguf_models import sparse_model, write_model  # noqa: E402

TIME_GOAL_S = 1.0
RSS_GOAL_MB = 64.0
HASH_SPEED_GOAL = 0.8

# The child reads its own high-water mark (ru_maxrss would carry the parent's over fork+exec).
CHILD = """
import resource, sys
from llamabuild.cli import run
rc = run(sys.argv[1:])
sys.stdout.flush()
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        sys.stderr.write('\\nVmHWM-kB ' + line.split()[1] + '\\n')
usage = resource.getrusage(resource.RUSAGE_SELF)
sys.stderr.write(f'\\nCPU-s {usage.ru_utime + usage.ru_stime}\\n')
sys.exit(rc)
"""


def child(*argv: str) -> tuple[int, float, float, float]:
    """`llamabuild ARGV` in a fresh Python: (exit code, wall s, CPU s, peak RSS in MB).

    CPU time (user + system, Python's start-up included) is shown beside the wall time: on
    a shared machine the wall time also counts the time other jobs held the cores."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, cwd=ROOT
    )
    wall = time.perf_counter() - t0
    marks = [ln for ln in proc.stderr.splitlines() if ln.startswith("VmHWM-kB ")]
    cpu = [ln for ln in proc.stderr.splitlines() if ln.startswith("CPU-s ")]
    if not marks or not cpu:
        raise RuntimeError(f"child died ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.returncode, wall, float(cpu[-1].split()[1]), int(marks[-1].split()[1]) / 1024


def measure_verify(model: Path, runs: int) -> dict[str, float]:
    walls, cpus, peaks = [], [], []
    for _ in range(runs):
        code, wall, cpu, peak = child("verify-model", str(model), "--json")
        if code != 0:
            raise RuntimeError(f"verify-model exited {code}")
        walls.append(wall)
        cpus.append(cpu)
        peaks.append(peak)
    return {
        "wall_s": statistics.median(walls),
        "best_wall_s": min(walls),
        "cpu_s": statistics.median(cpus),
        "peak_rss_mb": max(peaks),
    }


def measure_hash(model: Path) -> dict[str, float]:
    """sha256sum, then verify-model --sha256 with its digest, on the same (cached) file."""
    t0 = time.perf_counter()
    out = subprocess.run(["sha256sum", str(model)], capture_output=True, text=True, check=True)
    tool_s = time.perf_counter() - t0
    digest = out.stdout.split()[0]
    code, ours_s, _, peak = child("verify-model", str(model), "--json", "--sha256", digest)
    if code != 0:
        raise RuntimeError(f"verify-model --sha256 exited {code}")
    return {"sha256sum_s": tool_s, "verify_sha256_s": ours_s, "peak_rss_mb": peak}


def fuzz(count: int, work: Path) -> dict[str, Any]:
    seeds = [write_tiny_llama(work / "tiny.gguf"), write_model(work / "small.gguf", "qwen3")]
    argv = ["-m", "tests.fixtures.gguf_fuzz", "11", str(count), str(work), *map(str, seeds)]
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"fuzz child died ({proc.returncode}): {proc.stderr[-500:]}")
    summary: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return summary


def table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| measure | result | goal | ratio |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines)


def bench(args: argparse.Namespace, work: Path) -> int:
    model = sparse_model(work / "sparse-qwen3-q8_0.gguf", layers=args.layers)
    size_gb = model.stat().st_size / 1e9
    print(f"measuring on a {size_gb:.1f} GB sparse GGUF ...", file=sys.stderr, flush=True)
    verify = measure_verify(model, args.runs)
    hashed = measure_hash(model)
    speed = hashed["sha256sum_s"] / hashed["verify_sha256_s"]
    rows = [
        (
            f"`verify-model --json`, {size_gb:.1f} GB sparse GGUF (median of {args.runs})",
            f"{verify['wall_s']:.3f} s (best {verify['best_wall_s']:.3f} s, "
            f"CPU {verify['cpu_s']:.3f} s; load average {os.getloadavg()[0]:.1f})",
            f"<= {TIME_GOAL_S} s",
            f"{verify['wall_s'] / TIME_GOAL_S:.2f}",
        ),
        (
            "peak RSS of that process",
            f"{verify['peak_rss_mb']:.1f} MB",
            f"<= {RSS_GOAL_MB:.0f} MB",
            f"{verify['peak_rss_mb'] / RSS_GOAL_MB:.2f}",
        ),
        (
            "`verify-model --sha256` vs `sha256sum`, same file",
            f"{hashed['verify_sha256_s']:.2f} s vs {hashed['sha256sum_s']:.2f} s "
            f"(peak {hashed['peak_rss_mb']:.1f} MB)",
            f">= {HASH_SPEED_GOAL} x speed",
            f"{speed:.2f}",
        ),
    ]
    figures: dict[str, object] = {"size_gb": size_gb, "verify": verify, "hash": hashed}
    ok = verify["wall_s"] <= TIME_GOAL_S and verify["peak_rss_mb"] <= RSS_GOAL_MB
    ok = ok and speed >= HASH_SPEED_GOAL
    if args.fuzz:
        summary = fuzz(args.fuzz, work)
        figures["fuzz"] = summary
        bad = summary["problems"]
        rows.append(
            (
                f"{args.fuzz:,} seeded mutations",
                f"exits {summary['codes']}, {len(bad)} bad, slowest {summary['slowest_s']} s, "
                f"peak {summary['peak_rss_mb']} MB, {summary['seconds']} s",
                "0 bad",
                "",
            )
        )
        ok = ok and not bad
    print(table(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=4, help="model layers (4: 2.3 GB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fuzz", type=int, default=10000, help="mutations (0: skip)")
    ap.add_argument("--json", type=Path, dest="json_out", help="also write the figures here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llamabuild-bench-model-"))
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
