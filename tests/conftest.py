from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.macho import MachOFactory, have_toolchain


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if have_toolchain():
        return
    skip = pytest.mark.skip(
        reason="clang-19 / ld64.lld-19 not installed (apt-get install clang-19 lld-19 llvm-19)"
    )
    for item in items:
        if "compile" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def macho(tmp_path_factory: pytest.TempPathFactory) -> MachOFactory:
    return MachOFactory(tmp_path_factory.mktemp("macho"))


@pytest.fixture(scope="session")
def clean_arm64(macho: MachOFactory) -> Path:
    from tests.fixtures.macho import system

    return macho.build("clean", system("libSystem", "libc++", "Metal", "Foundation", "Accelerate"))


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C's default (KeyboardInterrupt) for one test: a script that starts pytest in the
    background (`python3 -m pytest &`) hands it SIGINT ignored, and Python keeps an ignored
    SIGINT ignored, so the SIGINT the test sends itself would do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session", autouse=True)
def _shared_zig_root() -> Iterator[None]:
    """One zig root for every test build (LLAMABUILD_ZIG_ROOT), the user's own by default: a
    zig cache is content-addressed and its libc++ is always built from its prime dir
    (builder/ziglink.py), so sharing it is like sharing ccache; without it each test's fresh
    LLAMABUILD_CACHE would build libc++ again (1-2 min each). Proofs that need an empty one
    (check-reproducible's second build, rebuild) make their own."""
    from llamabuild.source.cache import cache_root

    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("LLAMABUILD_ZIG_ROOT"):
            mp.setenv("LLAMABUILD_ZIG_ROOT", str(cache_root() / "zig"))
        yield


@pytest.fixture(scope="session", autouse=True)
def _stand_in_apple_root() -> Iterator[None]:
    """Apple's roots plus a test CA standing in for them (tests/fixtures/cms.stand_in_root):
    identities it issues chain to a trusted root in-process; self-signed ones still do not."""
    import dataclasses
    import hashlib

    from llamabuild.inspect import trust
    from tests.fixtures.cms import stand_in_root

    real = trust.anchors()
    der = stand_in_root().cert_der
    patched = dataclasses.replace(real, roots={**real.roots, hashlib.sha256(der).hexdigest(): der})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trust, "anchors", lambda: patched)
        yield


# --- every `--json` object a command prints follows its shipped JSON Schema ----------------

_json_problems: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _checked_emit_json() -> Iterator[None]:
    """Wrap report.emit_json for the whole session: each object printed is validated against
    llamabuild/schemas/command-<command>.schema.json (the error object, printed without
    `command=`: error.schema.json). A mismatch fails the test that printed it (below),
    never the command itself (the CLI would turn an exception into an internal error)."""
    from llamabuild.core import report
    from llamabuild.schema import ERROR_SCHEMA
    from tests.test_schemas import VALIDATED, command_json_errors

    original = report.emit_json

    golden = os.environ.get("LLAMABUILD_GOLDEN_RECORD")

    def checked(obj: Any, *, command: str | None = None) -> None:
        text = report.json_text(obj)
        if golden:  # tests/golden.py: every --json object of the run, for a before/after diff
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
            record = {"test": test, "command": command, "json": json.loads(text)}
            with open(golden, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=False) + "\n")
        name, why = command_json_errors(json.loads(text), command)
        if name is None:
            _json_problems.append(f"emit_json(command={command!r}): {why}")
        elif command is None and name != ERROR_SCHEMA:
            _json_problems.append(f"emit_json without command= printed a {name} object")
        else:
            VALIDATED[name] += 1
        original(obj, command=command)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(report, "emit_json", checked)
        yield


@pytest.fixture(autouse=True)
def _printed_json_follows_its_schema() -> Iterator[None]:
    """Fails a test whose commands printed a `--json` object that follows no schema."""
    del _json_problems[:]
    yield
    if _json_problems:
        problems = "\n".join(_json_problems)
        del _json_problems[:]
        pytest.fail(f"--json output does not follow its schema:\n{problems}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    module = sys.modules.get("tests.test_schemas")
    counts = getattr(module, "VALIDATED", None)
    if counts:
        names = sorted(counts.items())
        detail = ", ".join(f"{n.removesuffix('.schema.json')} {c}" for n, c in names)
        terminalreporter.write_line(
            f"--json objects validated against their schema: {sum(counts.values())} ({detail})"
        )


pytest_plugins = ["tests.plugin_real_llama"]
