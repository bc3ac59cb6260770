"""The signer interface, shared by `sign` and the signer adapters (tools/codesign.py,
tools/rcodesign.py): what a signer is asked (SignRequest), what it shows (DisplayInfo), and the
Signer protocol. It imports neither side, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from llamabuild.core.findings import Finding

ADHOC = "-"


CS_FLAGS = {
    0x1: "host",
    0x2: "adhoc",
    0x100: "hard",
    0x200: "kill",
    0x800: "restrict",
    0x1000: "enforcement",
    0x2000: "library-validation",
    0x10000: "runtime",
    0x20000: "linker-signed",
}


def flag_names(value: int) -> tuple[str, ...]:
    return tuple(name for bit, name in CS_FLAGS.items() if value & bit)


@dataclass(frozen=True)
class SignRequest:
    """What to sign with. `identity` "-" is ad-hoc unless `p12` names a PKCS#12 identity."""

    identity: str = ADHOC
    entitlements: Path | None = None
    identifier: str | None = None
    runtime: bool = True
    timestamp: bool = True
    p12: Path | None = None

    @property
    def adhoc(self) -> bool:
        return self.p12 is None and self.identity == ADHOC


@dataclass(frozen=True)
class DisplayInfo:
    """What a signer's own display reports about a signature (a second opinion)."""

    identifier: str | None = None
    flags: tuple[str, ...] = ()
    team_id: str | None = None
    entitlements: dict[str, Any] | None = None
    executable: str | None = None


class Signer(Protocol):
    name: str

    def sign(self, request: SignRequest, target: Path) -> None: ...

    def verify(self, target: Path) -> list[Finding]: ...

    def display(self, target: Path) -> DisplayInfo: ...
