"""bench/verify: `llamabuild verify` against the llvm-otool + llvm-dwarfdump chain, on real and
hostile binaries. One run prints ratios measured in that run, as one table.

Goals:
  - in-process analysis (inspect + policy, imported symbols included) <= 0.5 x the
    `llvm-otool-19 -L` + `llvm-dwarfdump-19 --uuid` chain, on the real 14 MB arm64
    llama-server and on zig (a ~170 MB macOS arm64 Mach-O nobody here built);
  - peak memory of a `llamabuild verify --json` child <= 64 MB on both, on a 5 GB sparse
    file and on the llama-server padded to 5 GB (the file is mapped, never read whole);
  - the human table of a binary with 40,000 load commands in <= 2 s;
  - the signature-integrity pass (every CodeDirectory page re-hashed) <= 0.5 s on the
    llama-server (zig's figure is shown, its 174 MB have no goal);
  - whole `verify --json` process <= 0.6 s, <= 150 MB with a 130 MB dSYM beside it,
    and 10,000+ fuzz mutations without a crash.

    python3 bench/verify.py [--binary llama-server] [--dsym llama-server.dSYM]
                            [--runs 7] [--fuzz 10000] [--no-zig] [--json figures.json]

The real llama-server is the one the suite cross-builds (tests/test_real_llama.py, recipe
macos-arm64-cpu-cross) under the llamabuild cache; without it a 14 MB stand-in is linked with
clang-19 + ld64.lld-19 (with a 130 MB dSYM-shaped companion) and the table says so. zig comes
from the macOS arm64 wheel of `ziglang` on PyPI, downloaded once into the llamabuild cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamabuild.source.cache import cache_root  # noqa: E402
from tests.fixtures.macho import MachOFactory, system, tool  # noqa: E402

REAL_RECIPE = "macos-arm64-cpu-cross"
HOLE = 5 * (1 << 30)
RSS_GOAL_MB = 64.0
CHAIN_RATIO_GOAL = 0.5
TABLE_GOAL_S = 2.0
PROCESS_GOAL_S = 0.6
INTEGRITY_GOAL_S = 0.5  # every CodeDirectory's hashes recomputed (signature-invalid)
DSYM_RSS_GOAL_MB = 150.0


@dataclass
class Row:
    measure: str
    result: str  # human text, e.g. "12.3 ms (chain 40.1 ms)"
    goal: str  # human text, e.g. "<= 0.50 x chain"
    ratio: float | None  # the quantity the goal bounds: value / limit, or value / chain
    limit: float | None  # the ratio the goal allows (1.0 for absolute goals)
    value: float | None = None  # raw figure (seconds or MB)
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.limit is None:
            return None
        return self.ratio <= self.limit


ROWS: list[Row] = []


def add(row: Row) -> None:
    ROWS.append(row)
    print(f"  measured {row.measure}: {row.result}", file=sys.stderr, flush=True)


def add_memory(measure: str, rss: float, goal: float = RSS_GOAL_MB) -> None:
    """A peak-memory row: `rss` MB of a child against `goal` MB."""
    add(Row(measure, f"{rss:.1f} MB", f"<= {goal:.0f} MB", rss / goal, 1.0, rss, "MB"))


def print_table(rows: list[Row]) -> None:
    """measure / result / goal / ratio (the quantity the goal bounds) / met."""
    cells = [("measure", "result", "goal", "ratio", "")]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        cells.append(
            (r.measure, r.result, r.goal, ratio, {True: "ok", False: "MISSED"}.get(r.met, ""))
        )
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    for c in cells:
        left = "  ".join(f"{text:<{w}}" for text, w in zip(c[:3], widths, strict=False))
        print(f"{left}  {c[3]:>{widths[3]}}  {c[4]}")


def ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def wall(argv: list[str], runs: int, ok: tuple[int, ...] = (0,)) -> float:
    """Median wall time of `argv`; a run ending with another exit code is not a timing."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode not in ok:
            raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {proc.stderr[-500:]}")
    return statistics.median(times)


PROBE = """
import sys
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        sys.stderr.write('\\nVmHWM-kB ' + line.split()[1] + '\\n')
"""


def child_verify(*args: str) -> tuple[int, str, float]:
    """`llamabuild verify ARGS` in a fresh Python: (exit code, stdout, peak RSS in MB).

    The child reads its own VmHWM: ru_maxrss would carry this process's high-water mark
    across fork + exec, and a reaped child's /proc/<pid>/status has no VmHWM any more.
    """
    code = (
        "import sys\nfrom llamabuild.cli import run\n"
        f"rc = run(['verify', *{list(args)!r}])\nsys.stdout.flush()\n" + PROBE + "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=ROOT
    )
    marks = [ln for ln in proc.stderr.splitlines() if ln.startswith("VmHWM-kB ")]
    if not marks:
        raise RuntimeError(f"verify child died ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.returncode, proc.stdout, int(marks[-1].split()[1]) / 1024


# --- the binaries ------------------------------------------------------------------------------


def real_llama_server() -> tuple[Path | None, Path | None]:
    """The arm64 llama-server tests/test_real_llama.py cross-builds (and its dSYM), if built."""
    dist = cache_root() / "pytest-real-llama" / "dist" / REAL_RECIPE
    binary = dist / "llama-server"
    if not binary.is_file():
        return None, None
    dsym = dist / "llama-server.dSYM"
    return binary, dsym if dsym.is_dir() else None


def stand_in(work: Path) -> tuple[Path, Path]:
    """A 14 MB arm64 Mach-O (the real llama-server's size) and a 130 MB dSYM-shaped companion."""
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


def zig_binary() -> Path | None:
    """zig from the macOS arm64 `ziglang` wheel, downloaded and extracted once (cached)."""
    folder = cache_root() / "bench" / "ziglang"
    zig = folder / "zig"
    if zig.is_file():
        return zig
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("ziglang-*macosx*arm64*.whl"))
    if not wheels:
        print("downloading the macOS arm64 ziglang wheel from PyPI (once) ...", flush=True)
        argv = [sys.executable, "-m", "pip", "download", "--only-binary=:all:"]
        argv += ["--platform", "macosx_11_0_arm64", "--no-deps", "ziglang", "-d", str(folder)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        wheels = sorted(folder.glob("ziglang-*macosx*arm64*.whl"))
        if proc.returncode != 0 or not wheels:
            print(f"zig not measured: pip download failed: {proc.stderr.strip()[-300:]}")
            return None
    with zipfile.ZipFile(wheels[-1]) as zf:
        partial = folder / "zig.partial"
        with zf.open("ziglang/zig") as src, partial.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    partial.chmod(0o755)
    partial.replace(zig)
    return zig


def forty_thousand_rpaths(work: Path) -> Path:
    rsp = work / "rpaths.rsp"
    rsp.write_text("".join(f"-rpath @loader_path/r{i:05d}\n" for i in range(40_000)))
    return MachOFactory(work).build("many", system("libSystem", "libc++"), extra_ld=[f"@{rsp}"])


# --- measures ----------------------------------------------------------------------------------


def analysis_time(binary: Path, runs: int) -> tuple[float, int]:
    """Median in-process inspect + policy (imported symbols included), after one warm-up."""
    from llamabuild.inspect.policy import Policy, check
    from llamabuild.inspect.reader import inspect_binary

    b = inspect_binary(binary)
    check(b, Policy())
    imports = sum(len(getattr(s, "imports", ())) for s in b.slices)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        check(inspect_binary(binary), Policy())
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), imports


def measure_binary(label: str, binary: Path, runs: int) -> None:
    size = binary.stat().st_size / 1e6
    otool = wall([tool("llvm-otool"), "-L", str(binary)], runs)
    dwarfdump = wall([tool("llvm-dwarfdump"), "--uuid", str(binary)], runs)
    chain = otool + dwarfdump
    analysis, imports = analysis_time(binary, runs * 3)
    add(
        Row(
            f"{label} ({size:.0f} MB): analysis, {imports} imports",
            f"{ms(analysis)} (chain {ms(chain)})",
            f"<= {CHAIN_RATIO_GOAL:.2f} x chain",
            analysis / chain,
            CHAIN_RATIO_GOAL,
            analysis,
            "s",
        )
    )
    cli = wall([sys.executable, "-m", "llamabuild", "verify", str(binary), "--json"], runs, (0, 1))
    start = wall([sys.executable, "-c", "pass"], runs)
    add(
        Row(
            f"{label}: whole `verify --json` process",
            f"{ms(cli)} (python start {ms(start)})",
            f"<= {PROCESS_GOAL_S} s",
            cli / PROCESS_GOAL_S,
            1.0,
            cli,
            "s",
        )
    )
    measure_integrity(label, binary, runs, goal=label != "zig")
    _, _, rss = child_verify(str(binary), "--json")
    add_memory(f"{label}: peak memory `verify --json`", rss)


def measure_integrity(label: str, binary: Path, runs: int, goal: bool = True) -> None:
    """The signature-integrity pass alone (every page of every CodeDirectory hashed)."""
    from llamabuild.inspect.integrity import check_file

    slices = check_file(binary)
    pages = sum(s.pages for s in slices)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        check_file(binary)
        samples.append(time.perf_counter() - t0)
    t = statistics.median(samples)
    what = f"{pages} pages" if pages else "unsigned: nothing hashed"
    measure = f"{label}: signature integrity ({what})"
    if not goal:
        add(Row(measure, ms(t), "-", None, None, t, "s"))
        return
    add(Row(measure, ms(t), f"<= {INTEGRITY_GOAL_S} s", t / INTEGRITY_GOAL_S, 1.0, t, "s"))


def measure_sparse(work: Path, binary: Path, label: str) -> None:
    zeros = work / "zeros-5g.bin"
    zeros.touch()
    os.truncate(zeros, HOLE)
    code, out, rss = child_verify(str(zeros), "--json")
    said = json.loads(out).get("error", "") if out.strip() else ""
    verdict = "exit 2" if code == 2 and "not an executable format" in said else f"exit {code}!"
    add_memory(f"5 GB sparse zeros: peak memory ({verdict})", rss)
    zeros.unlink()

    padded = work / "padded-5g"
    shutil.copyfile(binary, padded)
    os.truncate(padded, binary.stat().st_size + HOLE)
    code, out, rss = child_verify(str(padded), "--json")
    ref_code, ref_out, _ = child_verify(str(binary), "--json")
    same = code == ref_code and json.loads(out)["slices"] == json.loads(ref_out)["slices"]
    add_memory(
        f"{label} padded to 5 GB: peak memory ({'same slices' if same else 'DIFFERS!'})", rss
    )
    padded.unlink()


def measure_forty_thousand(work: Path, runs: int) -> None:
    from llamabuild.cli import run

    many = forty_thousand_rpaths(work)
    samples = []
    for _ in range(max(1, runs // 2)):
        sink = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            code = run(["verify", str(many)])
        if code not in (0, 1):
            raise RuntimeError(f"verify of the 40,000-rpath binary exited {code}")
        samples.append(time.perf_counter() - t0)
    t = statistics.median(samples)
    lines = sink.getvalue().count("\n")
    add(
        Row(
            f"40,000 rpaths: human table in-process ({lines} lines)",
            ms(t),
            f"<= {TABLE_GOAL_S:.0f} s",
            t / TABLE_GOAL_S,
            1.0,
            t,
            "s",
        )
    )
    t = wall([sys.executable, "-m", "llamabuild", "verify", str(many)], max(1, runs // 2), (0, 1))
    add(
        Row(
            "40,000 rpaths: human table, whole process",
            ms(t),
            f"<= {TABLE_GOAL_S:.0f} s",
            t / TABLE_GOAL_S,
            1.0,
            t,
            "s",
        )
    )


def measure_dsym(binary: Path, dsym: Path) -> None:
    total = sum(p.stat().st_size for p in dsym.rglob("*") if p.is_file()) / 1e6
    code, _, rss = child_verify(str(binary), "--dsym", str(dsym), "--json")
    add_memory(
        f"verify --dsym ({total:.0f} MB dSYM, exit {code}): peak memory", rss, DSYM_RSS_GOAL_MB
    )


def measure_fuzz(work: Path, count: int) -> bool:
    f = MachOFactory(work)
    x86 = f.build("fuzz_x86", system("libSystem", "libc++"), arch="x86_64")
    arm = f.build("fuzz_arm", system("libSystem"))
    argv = [sys.executable, "-m", "tests.fixtures.fuzz", "99", str(count), str(work)]
    proc = subprocess.run(
        [*argv, str(arm), str(x86)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        print(f"fuzz: child died with {proc.returncode}: {proc.stderr[-500:]}")
        return False
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = len(s["bad"])
    add(
        Row(
            f"fuzz: {s['count']} mutations (exit codes {'/'.join(sorted(s['codes']))})",
            f"{bad} bad, slowest {s['slowest'] * 1000:.0f} ms",
            "0 bad",
            float(bad),
            0.0,
            float(bad),
        )
    )
    return bad == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", type=Path, help="llama-server to measure (default: the real one)")
    ap.add_argument("--dsym", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--fuzz", type=int, default=10000, help="mutations (0: skip)")
    ap.add_argument("--no-zig", action="store_true", help="skip the ziglang download/measure")
    ap.add_argument("--json", type=Path, dest="json_out", help="also write the figures here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llamabuild-bench-"))
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args: argparse.Namespace, work: Path) -> int:
    binaries: dict[str, str] = {}
    if args.binary:
        llama, dsym, label = args.binary, args.dsym, "llama-server"
    else:
        llama, dsym = real_llama_server()
        label = "llama-server"
        if llama is None:
            where = cache_root() / "pytest-real-llama" / "dist" / REAL_RECIPE
            print(
                f"The real arm64 llama-server is not built ({where}/llama-server).\n"
                "  Get it with: python3 -m pytest tests/test_real_llama.py -k zig_cross_build\n"
                "  (a zig cross-build of llama.cpp, minutes; or pass --binary PATH).\n"
                "  Measuring a 14 MB stand-in linked here instead (rows say 'stand-in')."
            )
            llama, dsym = stand_in(work)
            label = "llama-server stand-in"
    binaries[label] = str(llama)
    zig = None if args.no_zig else zig_binary()
    if zig is not None:
        binaries["zig"] = str(zig)

    print("measuring ...", file=sys.stderr, flush=True)
    measure_binary(label, llama, args.runs)
    if zig is not None:
        measure_binary("zig", zig, args.runs)
    measure_sparse(work, llama, label)
    measure_forty_thousand(work, args.runs)
    if dsym is not None and dsym.exists():
        measure_dsym(llama, dsym)
    fuzz_ok = measure_fuzz(work, args.fuzz) if args.fuzz else True

    print()
    print_table(ROWS)
    missed = [r.measure for r in ROWS if r.met is False]
    print(
        f"\n{len(ROWS) - len(missed)}/{len(ROWS)} goals met"
        + ("; missed: " + "; ".join(missed) if missed else "")
    )
    if args.json_out:
        figures = {
            "binaries": binaries,
            "rows": [{**asdict(r), "met": r.met} for r in ROWS],
        }
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json_out}")
    return 0 if fuzz_ok else 1


if __name__ == "__main__":
    sys.exit(main())
