"""The CLI contract: usage errors exit 2 in one message, --json always yields one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llamabuild.cli import run

COMMANDS = [
    "verify",
    "verify-app",
    "dsym",
    "build",
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
