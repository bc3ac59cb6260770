"""The macOS target: a Mach-O llama-server with a dSYM, Objective-C for Metal, and what
Apple's own linker needs to be reproducible (`-reproducible`, `-oso_prefix`)."""

from __future__ import annotations

import shlex
from pathlib import Path

from llamabuild.config.recipes import Recipe
from llamabuild.config.versions import DEFAULT_MIN_MACOS
from llamabuild.core.findings import Finding, error
from llamabuild.inspect.policy import Policy
from llamabuild.tools.runner import Runner


class MacosTarget:
    languages = ("C", "CXX", "ASM", "OBJC", "OBJCXX")
    makes_dsym = True
    native_archives_reproducible = True  # Apple's ar/libtool honour ZERO_AR_DATE

    def policy(self, recipe: Recipe) -> Policy:
        return Policy(archs=recipe.archs, min_macos=recipe.min_macos or DEFAULT_MIN_MACOS)

    def refused_flags(self, recipe: Recipe) -> list[Finding]:
        if recipe.cache_dict.get("GGML_STATIC") in (None, False, "OFF"):
            return []
        return [
            error(
                "macos-ggml-static",
                "GGML_STATIC=ON links with -static, which Apple's linker rejects",
                hint="drop GGML_STATIC; BUILD_SHARED_LIBS=OFF already makes a static server",
            )
        ]

    def tool_versions(self, runner: Runner) -> dict[str, str]:
        """The dSYM's bytes are dsymutil's."""
        from llamabuild.tools.dsymutil import Dsymutil

        return {"dsymutil": Dsymutil(runner).version()}

    def native_link_flags(self, build_root: Path) -> list[str]:
        return ["-Wl,-reproducible", shlex.quote(f"-Wl,-oso_prefix,{build_root}/")]

    def native_oso_prepend(self, build_root: Path) -> Path | None:
        return build_root
