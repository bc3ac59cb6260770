"""The CLI contract: usage errors exit 2 in one message, --json always yields one JSON object."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from llamabuild.cli import run

COMMANDS = [
    "verify",
    "verify-app",
    "dsym",
    "build",
    "rebuild",
    "source",
    "sign",
    "entitlements",
    "xcode-phase",
    "smoke",
    "doctor",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option_is_usage_error(command, capfd):
    assert run([command, "--no-such-option"]) == 2
    err = capfd.readouterr().err
    assert "No such option" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_json_and_help(command, capfd):
    assert run([command, "--help"]) == 0
    assert "--json" in capfd.readouterr().out


def test_usage_error_with_json_is_one_object(capfd):
    assert run(["verify", "--json", "--bogus"]) == 2
    out = json.loads(capfd.readouterr().out)
    assert out["ok"] is False and out["exit_code"] == 2


def test_version_and_no_args():
    proc = subprocess.run(
        [sys.executable, "-m", "llamabuild", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith("llamabuild ")
    proc = subprocess.run([sys.executable, "-m", "llamabuild"], capture_output=True, text=True)
    assert proc.returncode in (0, 2)
    assert "verify" in proc.stdout + proc.stderr


# --- usage errors: one `error:` line + one `hint:` line, exit 2 ---------------------------


@pytest.mark.parametrize(
    ("argv", "message", "command"),
    [
        (["verify", "--bogus"], "No such option: --bogus", "verify"),
        (["verify"], "Missing argument 'PATH'", "verify"),
        (["smoke", "--port", "x"], "Invalid value for '--port'", "smoke"),
        (["smoke", "--timeout", "soon"], "Invalid value for '--timeout'", "smoke"),
        (["no-such-command"], "No such command 'no-such-command'", None),
    ],
)
def test_usage_error_is_one_error_and_one_hint_line(argv, message, command, capfd):
    assert run(argv) == 2
    out, err = capfd.readouterr()
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("error: ") and message in lines[0]
    where = f"llamabuild {command}" if command else "llamabuild"
    assert lines[1] == f"hint: run `{where} --help`"
    assert "Usage:" not in err and "╭" not in err and out == ""


def test_usage_error_json_object_has_error_hint_and_code(capfd):
    assert run(["verify", "--json"]) == 2
    out, err = capfd.readouterr()
    data = json.loads(out)
    assert data == {
        "ok": False,
        "error": "Missing argument 'PATH'.",
        "hint": "run `llamabuild verify --help`",
        "exit_code": 2,
    }
    assert err.startswith("error: Missing argument")


# --- global options before or after the command --------------------------------------------


@pytest.mark.parametrize("flag", ["--debug", "-v", "--verbose"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_global_flags_before_or_after_the_command(flag, where, tmp_path, capfd):
    from llamabuild.cli.app import State

    missing = str(tmp_path / "missing")
    argv = [flag, "verify", missing] if where == "before" else ["verify", missing, flag]
    State.debug = False
    code = run(argv)
    err = capfd.readouterr().err
    assert code == 2 and "No such option" not in err and "missing" in err
    assert State.debug is (flag == "--debug")
    State.debug = False
    logging.getLogger().setLevel(logging.WARNING)


def test_global_flags_after_double_dash_are_left_alone():
    from llamabuild.cli import global_flags_first

    assert global_flags_first(["verify", "x", "--debug", "--", "-v"]) == [
        "--debug",
        "verify",
        "x",
        "--",
        "-v",
    ]


# --- help text -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_readable(command, capfd):
    assert run([command, "--help"]) == 0
    out = capfd.readouterr().out
    assert "<list[" not in out and "<path>" not in out and "{" not in out.splitlines()[0]
    for line in out.splitlines():  # never two defaults for one option
        assert line.count("[default:") <= 1, line


def test_help_metavars_and_single_defaults(capfd):
    assert run(["verify", "--help"]) == 0
    out = " ".join(capfd.readouterr().out.split())
    assert "Usage: llamabuild verify [OPTIONS] PATH" in out
    assert "--arch ARCH" in out and "--dsym PATH" in out
    assert run(["smoke", "--help"]) == 0
    out = " ".join(capfd.readouterr().out.split())
    assert "[default: a free random port]" in out and "[default: 0]" not in out
    assert "--binary PATH" in out and "--port PORT" in out


def test_root_help_shows_whole_summaries(capfd):
    assert run(["--help"]) == 0
    out = " ".join(capfd.readouterr().out.split())
    for command in COMMANDS:
        assert f" {command} " in out
    assert "against the App Store policy." in out  # verify's summary, no longer cut at "..."
    assert "..." not in out.split("Commands:")[1]


# --- fast start: a command imports what it uses ---------------------------------------------

HEAVY = (
    "lief", "jinja2", "gguf", "apple_platform", "pydantic", "numpy", "rich", "psutil",
    "asn1crypto", "cryptography", "cyclonedx", "diffoscope", "redis",
)  # fmt: skip


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys, io, contextlib\n"
        "from llamabuild.cli import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    run({argv!r})\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def _heavy(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY}


def test_version_imports_no_command():
    mods = _modules_after(["--version"])
    assert _heavy(mods) == set()
    ours = {m for m in mods if m.startswith("llamabuild")}
    assert ours == {
        "llamabuild",
        "llamabuild.cli",
        "llamabuild.cli.app",
        "llamabuild.core",  # an empty package __init__
        "llamabuild.core.errors",
    }


def test_verify_json_imports_only_what_verify_uses(tmp_path):
    target = tmp_path / "not-a-binary"
    target.write_bytes(b"\0" * 64)
    mods = _modules_after(["verify", "--json", str(target)])
    assert not _heavy(mods) - {"rich"}  # rich: llamabuild.core.report's import (one JSON line)
    build_side = ("llamabuild.builder.plan", "llamabuild.builder.run", "llamabuild.source")
    assert not [m for m in mods if m.startswith(build_side)]
    assert "llamabuild.cli.build" not in mods and "llamabuild.signing.sign" not in mods
    assert "llamabuild.tools.cmake" not in mods and "llamabuild.builder.smoke" not in mods


def test_verify_app_default_helper_matches_bundle():
    from llamabuild.appstore.verify_app import DEFAULT_HELPER
    from llamabuild.cli.verify_app import DEFAULT_HELPER as SHOWN

    assert SHOWN == DEFAULT_HELPER


def test_builds_host_check_stays_light():
    """`build` asks doctor before every build (a no-op too): doctor must not pull in smoke's
    HTTP client, importlib.metadata or the other wings' result models."""
    code = "import sys, llamabuild.builder.doctor; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    mods = set(proc.stdout.split())
    assert proc.returncode == 0, proc.stderr
    assert not {"llamabuild.builder.smoke", "llamabuild.signing.sign", "urllib.request"} & mods
    assert "importlib.metadata" not in mods and not _heavy(mods) - {"rich", "psutil"}
