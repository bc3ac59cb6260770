"""Apple's `codesign` (macOS only): sign, verify, display. Output parsing is pure.

Tests cannot run codesign here, so they give a recording Runner and assert the exact argv that
would run on a Mac, and feed recorded `codesign -d` output to `parse_display`.
"""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llamabuild.findings import Finding, error
from llamabuild.inspect.signature import flag_names
from llamabuild.tools.runner import Runner

if TYPE_CHECKING:
    from llamabuild.sign import SignRequest

ADHOC = "-"


@dataclass(frozen=True)
class DisplayInfo:
    """What a signer's own display reports about a signature (a second opinion)."""

    identifier: str | None = None
    flags: tuple[str, ...] = ()
    team_id: str | None = None
    entitlements: dict[str, Any] | None = None
    executable: str | None = None


_FLAGS = re.compile(r"flags=0x([0-9a-fA-F]+)")


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


class Codesign:
    """The Apple adapter. Needs a Mac with the signing identity in a keychain."""

    name = "codesign"

    def __init__(self, runner: Runner, program: str | Path = "codesign") -> None:
        self.runner = runner
        self.program = str(program)

    def sign_argv(self, request: SignRequest, target: Path) -> list[str]:
        argv = [self.program, "--force", "--sign", request.identity]
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

    def sign(self, request: SignRequest, target: Path) -> None:
        self.runner.run(self.sign_argv(request, target))

    def verify(self, target: Path) -> list[Finding]:
        res = self.runner.run(
            [self.program, "--verify", "--strict", "--verbose=2", str(target)], check=False
        )
        if res.returncode == 0:
            return []
        return [
            error(
                "codesign-verify",
                f"codesign --verify --strict failed: {res.tail(1) or 'no output'}",
                path=str(target),
                hint="the signature does not hold; re-sign, and sign nothing after it",
            )
        ]

    def display(self, target: Path) -> DisplayInfo:
        res = self.runner.run([self.program, "-d", "--entitlements", ":-", str(target)])
        return parse_display(res.stdout, res.stderr)
