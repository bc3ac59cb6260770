"""Golden `--json` comparison for refactors: is every command's output unchanged?

Record the suite's `--json` objects before and after a change, with the same base temp dir,
then compare them:

    LLAMABUILD_GOLDEN_RECORD=/tmp/before.jsonl python3 -m pytest --basetemp=/tmp/golden
    (the change)
    LLAMABUILD_GOLDEN_RECORD=/tmp/after.jsonl python3 -m pytest --basetemp=/tmp/golden
    python3 -m tests.golden /tmp/before.jsonl /tmp/after.jsonl

tests/conftest.py appends one line per object printed through `report.emit_json` (commands run
in the test process; those started as subprocesses are not seen). Values that differ from run
to run by nature (durations, ports, pids, random temp names) are masked before the comparison;
everything else must be byte-identical, key order included. Exit 0 when identical, 1 otherwise.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

# Keys whose values are clocks, ports or process ids.
VOLATILE_KEYS = re.compile(r"(^|_)(s|ms|seconds|duration|timings|elapsed|port|pid|started|at)$")
VOLATILE_TEXT = [
    (re.compile(r"/tmp/tmp[A-Za-z0-9_]{6,}"), "/tmp/<tmp>"),
    (re.compile(r"pytest-session-[A-Za-z0-9_]+"), "pytest-session-<id>"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms)\b"), "<time>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
]


def _mask(value: Any, key: str = "") -> Any:
    if key and VOLATILE_KEYS.search(key) and isinstance(value, int | float | dict):
        return "<volatile>"
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        for pattern, repl in VOLATILE_TEXT:
            value = pattern.sub(repl, value)
    return value


def load(path: Path) -> dict[str, list[str]]:
    """Test id -> the masked JSON texts it printed, in order (key order kept)."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        masked = {"command": record["command"], "json": _mask(record["json"])}
        out[record["test"]].append(json.dumps(masked))
    return out


def compare(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    problems: list[str] = []
    for test in sorted(before.keys() | after.keys()):
        a, b = before.get(test, []), after.get(test, [])
        if a == b:
            continue
        if len(a) != len(b):
            problems.append(f"{test}: {len(a)} objects before, {len(b)} after")
            continue
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                problems.append(f"{test} [{i}]:\n  before {x[:600]}\n  after  {y[:600]}")
    return problems


def main(argv: list[str]) -> int:
    before, after = load(Path(argv[0])), load(Path(argv[1]))
    problems = compare(before, after)
    total = sum(len(v) for v in before.values())
    for p in problems:
        print(p)
    print(f"{total} objects from {len(before)} tests before; {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
