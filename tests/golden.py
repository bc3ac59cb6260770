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
everything else must be identical, key order included. It prints each JSON path that differs,
with how often and one test that shows it. Exit 0 when identical, 1 otherwise.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Keys whose values are clocks, ports or process ids.
VOLATILE_KEYS = re.compile(
    r"(^|_)(s|ms|seconds|duration|timings|elapsed|port|pid|started|at|ns)$|^inputs_key$"
)  # inputs_key hashes llamabuild's own code: it changes with any change, by design
VOLATILE_TEXT = [
    (re.compile(r"/tmp/tmp[A-Za-z0-9_]{6,}"), "/tmp/<tmp>"),
    (re.compile(r"pytest-session-[A-Za-z0-9_]+"), "pytest-session-<id>"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms)\b"), "<time>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"--port \d+"), "--port <port>"),
    (re.compile(r"/session-[a-z0-9_]{8}/"), "/session-<id>/"),
]


def _mask(value: Any, key: str = "") -> Any:
    if key and VOLATILE_KEYS.search(key) and value is not None:
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


def _paths(a: Any, b: Any, at: str = "") -> Iterator[str]:
    """The JSON paths where `a` and `b` differ (key order included)."""
    if type(a) is not type(b):
        yield f"{at} (type)"
    elif isinstance(a, dict):
        if list(a) != list(b):
            yield f"{at} (keys {sorted(set(a) ^ set(b))} or their order)"
        for key in a.keys() & b.keys():
            yield from _paths(a[key], b[key], f"{at}.{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            yield f"{at} (length {len(a)} -> {len(b)})"
        for x, y in zip(a, b, strict=False):
            yield from _paths(x, y, f"{at}[]")
    elif a != b:
        yield at


def compare(
    before: dict[str, list[str]], after: dict[str, list[str]]
) -> tuple[Counter[str], dict[str, str]]:
    """`command.json.path` -> in how many objects it differs, and one test that shows it."""
    found: Counter[str] = Counter()
    example: dict[str, str] = {}
    for test in sorted(before.keys() | after.keys()):
        a, b = before.get(test, []), after.get(test, [])
        if len(a) != len(b):
            found[f"{test}: {len(a)} objects before, {len(b)} after"] += 1
            continue
        for x, y in zip(a, b, strict=True):
            if x == y:
                continue
            old, new = json.loads(x), json.loads(y)
            for path in set(_paths(old["json"], new["json"])):
                where = f"{old['command']}{path}"
                found[where] += 1
                example.setdefault(where, test)
    return found, example


def main(argv: list[str]) -> int:
    before, after = load(Path(argv[0])), load(Path(argv[1]))
    problems, example = compare(before, after)
    total = sum(len(v) for v in before.values())
    for where, count in problems.most_common():
        print(f"{count:5} {where}  (e.g. {example.get(where, '-')})")
    differing = sum(problems.values())
    print(f"{total} objects from {len(before)} tests before; {differing} differing values")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
