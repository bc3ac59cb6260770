"""bench/verify: `llamabuild verify --json` against the llvm-otool + llvm-dwarfdump chain.

One run prints ratios measured in that run. Goals (issue 2): in-process analysis <= the otool
chain's time, whole process <= 0.6 s, peak memory <= 150 MB even with a 130 MB dSYM beside it,
and 10,000+ fuzz mutations without a crash.

    python3 bench/verify.py [--binary llama-server] [--dsym llama-server.dSYM] [--fuzz 10000]

Without --binary it links a 14 MB arm64 Mach-O (the real llama-server's size) with clang-19 +
ld64.lld-19 and a 130 MB dSYM-shaped companion, in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.macho import MachOFactory, system, tool  # noqa: E402


def wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_rss_mb(code: str) -> float:
    """Peak RSS of a fresh Python child running `code`, from its own VmHWM.

    (Not ru_maxrss: Linux carries the parent's high-water mark across fork+exec.)
    """
    probe = (
        "\nimport sys\nfor line in open('/proc/self/status'):\n"
        "    if line.startswith('VmHWM:'):\n        sys.stderr.write(line.split()[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code + probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def synthetic(work: Path) -> tuple[Path, Path]:
    blob = work / "blob.bin"
    blob.write_bytes(os.urandom(14 * 1024 * 1024))
    f = MachOFactory(work)
    binary = f.build(
        "llama-server",
        system("libSystem", "libc++", "Metal", "Foundation", "Accelerate"),
        extra_ld=["-sectcreate", "__DATA", "__weights", str(blob)],
    )
    dsym = work / "llama-server.dSYM"
    subprocess.run([tool("dsymutil"), str(binary), "-o", str(dsym)], check=True)
    dwarf = dsym / "Contents" / "Resources" / "DWARF" / "llama-server"
    # Grow the DWARF file to ~130 MB (a real llama-server dSYM's size) with trailing bytes:
    # headers, load commands and UUID stay valid, so only what verify reads matters.
    with dwarf.open("ab") as fh:
        for _ in range(130):
            fh.write(os.urandom(1024 * 1024))
    return binary, dsym


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", type=Path)
    ap.add_argument("--dsym", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--fuzz", type=int, default=10000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llamabuild-bench-"))
    binary, dsym = (args.binary, args.dsym) if args.binary else synthetic(work)
    size_mb = binary.stat().st_size / 1e6
    print(f"binary: {binary} ({size_mb:.1f} MB)")

    exe = [sys.executable, "-m", "llamabuild"]
    cli = wall([*exe, "verify", str(binary), "--json"], args.runs)
    cli_lief = wall([*exe, "verify", str(binary), "--json", "--parser", "lief"], args.runs)
    otool = wall([tool("llvm-otool"), "-L", str(binary)], args.runs)
    dwarfdump = wall([tool("llvm-dwarfdump"), "--uuid", str(binary)], args.runs)
    chain = otool + dwarfdump

    import lief  # noqa: F401  (warm: analysis time excludes the import)

    from llamabuild.inspect.policy import Policy, check
    from llamabuild.inspect.reader import inspect_binary

    samples = []
    for _ in range(args.runs * 3):
        t0 = time.perf_counter()
        check(inspect_binary(binary), Policy())
        samples.append(time.perf_counter() - t0)
    analysis = statistics.median(samples)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import lief"], check=True)
    lief_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python_start = time.perf_counter() - t0

    rss = peak_rss_mb(f"from llamabuild.cli import run; run(['verify', {str(binary)!r}, '--json'])")
    print(f"llvm-otool-19 -L                     {otool * 1000:8.1f} ms")
    print(f"llvm-dwarfdump-19 --uuid             {dwarfdump * 1000:8.1f} ms")
    print(f"otool chain (both)                   {chain * 1000:8.1f} ms")
    print(
        f"in-process analysis (parse+policy)   {analysis * 1000:8.1f} ms   "
        f"ratio to chain {analysis / chain:.2f} (goal <= 1.00)"
    )
    print(
        f"whole `llamabuild verify --json`     {cli * 1000:8.1f} ms   "
        f"ratio to 0.6 s {cli / 0.6:.2f} (goal <= 1.00); python start {python_start * 1000:.0f} ms,"
        f" import lief {lief_import * 1000:.0f} ms"
    )
    print(
        f"whole process with --parser lief       {cli_lief * 1000:8.1f} ms   "
        f"ratio to 0.6 s {cli_lief / 0.6:.2f}"
    )
    print(f"peak memory verify                   {rss:8.1f} MB   ratio to 150 MB {rss / 150:.2f}")
    if dsym is not None and dsym.exists():
        dwarf = next(dsym.glob("Contents/Resources/DWARF/*"))
        try:
            rss_d = peak_rss_mb(
                "from llamabuild.cli import run; "
                f"run(['verify', {str(binary)!r}, '--dsym', {str(dsym)!r}, '--json'])"
            )
            from llamabuild.inspect.structure import read_uuids

            t0 = time.perf_counter()
            read_uuids(dwarf)
            uuid_big = time.perf_counter() - t0
            total = sum(p.stat().st_size for p in dsym.rglob("*") if p.is_file()) / 1e6
            print(
                f"peak memory verify --dsym ({total:.0f} MB dSYM dir) {rss_d:6.1f} MB   "
                f"ratio to 150 MB {rss_d / 150:.2f}; UUIDs of the DWARF file in "
                f"{uuid_big * 1000:.1f} ms"
            )
        except Exception as exc:
            print(f"verify --dsym not measured: {exc}")

    if args.fuzz:
        x86 = MachOFactory(work).build("fuzz_x86", system("libSystem", "libc++"), arch="x86_64")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.fixtures.fuzz",
                "99",
                str(args.fuzz),
                str(work),
                str(
                    binary
                    if size_mb < 2
                    else MachOFactory(work).build("fuzz_arm", system("libSystem"))
                ),
                str(x86),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
        if summary is None:
            print(f"fuzz: child died with {proc.returncode}: {proc.stderr[-500:]}")
            return 1
        print(
            f"fuzz: {summary['count']} mutations in {summary['seconds']} s, exit codes "
            f"{summary['codes']}, slowest {summary['slowest'] * 1000:.0f} ms, "
            f"bad {len(summary['bad'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
