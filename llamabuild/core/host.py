"""The machine llamabuild runs on, as recipes and binaries name it (light: doctor and smoke)."""

from __future__ import annotations

import platform
from dataclasses import dataclass

ARCH_ALIASES = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}


@dataclass(frozen=True)
class HostInfo:
    system: str  # platform.system(): "Linux", "Darwin"
    machine: str  # normalised: "x86_64", "arm64"

    @classmethod
    def current(cls) -> HostInfo:
        m = platform.machine().lower()
        return cls(platform.system(), ARCH_ALIASES.get(m, m))

    @property
    def binary_format(self) -> str:
        return "macho" if self.system == "Darwin" else "elf"

    @property
    def label(self) -> str:
        return f"{'macOS' if self.system == 'Darwin' else self.system} {self.machine}"
