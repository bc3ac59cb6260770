"""The Linux target: an ELF llama-server, checked against the recipe's ELF policy."""

from __future__ import annotations

from pathlib import Path

from llamabuild.config.recipes import Recipe
from llamabuild.core.findings import Finding
from llamabuild.inspect.policy import Policy
from llamabuild.tools.runner import Runner


class LinuxTarget:
    languages = ("C", "CXX", "ASM")
    makes_dsym = False
    native_archives_reproducible = False  # GNU ar: llamabuild's archive rules (D flag)

    def policy(self, recipe: Recipe) -> Policy:
        return Policy(archs=recipe.archs, min_macos=None, elf=recipe.elf_policy)

    def refused_flags(self, recipe: Recipe) -> list[Finding]:
        return []

    def tool_versions(self, runner: Runner) -> dict[str, str]:
        return {}

    def native_link_flags(self, build_root: Path) -> list[str]:
        return []

    def native_oso_prepend(self, build_root: Path) -> Path | None:
        return None
