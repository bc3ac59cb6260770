"""Apple's `codesign` (macOS only): sign, verify, display.

Tests cannot run codesign here, so they give a recording Runner and assert the exact argv that
would run on a Mac (the `*_argv` functions), and feed recorded `codesign -d` output to
`parse_display`.
"""

from __future__ import annotations

import plistlib
import re
from pathlib import Path
from typing import Any

from llamabuild.core.findings import Finding, error
from llamabuild.tools.runner import Result, Tool
from llamabuild.tools.signer import ADHOC, DisplayInfo, SignRequest, flag_names

HINT = "codesign comes with macOS; off a Mac sign with the rcodesign engine (apple-platform-py)"
_FLAGS = re.compile(r"flags=0x([0-9a-fA-F]+)")


def sign_argv(codesign: Path, request: SignRequest, target: Path) -> list[str]:
    argv = [str(codesign), "--force", "--sign", request.identity]
    if request.entitlements is not None:
        argv += ["--entitlements", str(request.entitlements)]
    if request.runtime:
        argv += ["--options", "runtime"]
    if request.identity != ADHOC:
        argv.append("--timestamp" if request.timestamp else "--timestamp=none")
    if request.identifier:
        argv += ["--identifier", request.identifier]
    argv.append(str(target))
    return argv


def verify_argv(codesign: Path, target: Path) -> list[str]:
    return [str(codesign), "--verify", "--strict", "--verbose=2", str(target)]


def display_argv(codesign: Path, target: Path) -> list[str]:
    return [str(codesign), "-d", "--entitlements", ":-", str(target)]


def parse_verify(result: Result, target: Path) -> list[Finding]:
    """`codesign --verify` exit status -> a finding (none when it holds)."""
    if result.returncode == 0:
        return []
    return [
        error(
            "codesign-verify",
            f"codesign --verify --strict failed: {result.tail(1) or 'no output'}",
            path=str(target),
            hint="the signature does not hold; re-sign, and sign nothing after it",
        )
    ]


def parse_display(stdout: str, stderr: str = "") -> DisplayInfo:
    """Parse `codesign -d [--verbose] --entitlements :- BINARY` output.

    The entitlements XML is on stdout; `Executable=`, `Identifier=`, `CodeDirectory ... flags=`
    and `TeamIdentifier=` lines are on stderr (the last three only with --verbose).
    """
    fields: dict[str, str] = {}
    flags: tuple[str, ...] = ()
    for line in (stderr + "\n" + stdout).splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("Executable", "Identifier", "TeamIdentifier"):
            fields.setdefault(key, value.strip())
        if line.startswith("CodeDirectory ") and (m := _FLAGS.search(line)):
            flags = flag_names(int(m.group(1), 16))
    team = fields.get("TeamIdentifier")
    return DisplayInfo(
        identifier=fields.get("Identifier"),
        flags=flags,
        team_id=None if team in (None, "not set") else team,
        entitlements=parse_entitlements_xml(stdout),
        executable=fields.get("Executable"),
    )


def parse_entitlements_xml(text: str) -> dict[str, Any] | None:
    """The plist in `--entitlements :-` output; None when the binary has no entitlements."""
    start = text.find("<?xml")
    if start < 0:
        start = text.find("<plist")
    if start < 0:
        return None
    end = text.find("</plist>", start)
    chunk = text[start : end + len("</plist>")] if end >= 0 else text[start:]
    try:
        value = plistlib.loads(chunk.encode("utf-8"))
    except Exception:
        return None
    return value if isinstance(value, dict) else None


class Codesign(Tool):
    """The Apple signer. Needs a Mac with the signing identity in a keychain."""

    name = "codesign"
    names = ("codesign",)
    hint = HINT

    def sign(self, request: SignRequest, target: Path) -> None:
        self.runner.run(sign_argv(self.exe, request, target))

    def verify(self, target: Path) -> list[Finding]:
        return parse_verify(self.runner.run(verify_argv(self.exe, target), check=False), target)

    def display(self, target: Path) -> DisplayInfo:
        res = self.runner.run(display_argv(self.exe, target))
        return parse_display(res.stdout, res.stderr)
