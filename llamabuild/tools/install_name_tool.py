"""install_name_tool (Apple) or llvm-install-name-tool: llamabuild never runs it, CMake does
(for Mach-O targets), so the zig toolchain file names the one found here."""

from __future__ import annotations

from llamabuild.tools.runner import Tool


class InstallNameTool(Tool):
    names = ("install_name_tool", "llvm-install-name-tool-19", "llvm-install-name-tool")
    hint = "apt-get install llvm-19 (llvm-install-name-tool-19); on macOS: xcode-select --install"
