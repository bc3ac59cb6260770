"""zig (PyPI `ziglang`) as a cross C/C++ toolchain: wrappers + a CMake toolchain file.

CMake wants one executable per compiler, so `zig cc -target …` is wrapped in tiny scripts,
rewritten only when their content changes (ccache keys on them with compiler_check=content).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shlex
from pathlib import Path
from string import Template

from llamabuild.core.errors import ToolError
from llamabuild.core.files import write_atomic
from llamabuild.core.resources import data_file
from llamabuild.tools.install_name_tool import InstallNameTool
from llamabuild.tools.runner import Tool, find_tool

ARCH_TO_ZIG = {"arm64": "aarch64", "x86_64": "x86_64"}


def zig_target(arch: str, min_macos: str | None) -> str:
    """`aarch64-macos.14.0`: zig's triple with the deployment target as OS version."""
    base = f"{ARCH_TO_ZIG.get(arch, arch)}-macos"
    return f"{base}.{min_macos}" if min_macos else base


def wrapper_text(zig: Path, tool: str, target: str | None) -> str:
    args = [str(zig), tool] + (["-target", target] if target else [])
    return f'#!/bin/sh\nexec {shlex.join(args)} "$@"\n'


def _write_if_changed(path: Path, text: str, mode: int = 0o755) -> None:
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text.encode(), mode)


def install_key(zig: Zig) -> str:
    """8 hex digits naming this zig install (its resolved path)."""
    return hashlib.sha256(str(zig.exe.resolve()).encode()).hexdigest()[:8]


class Zig(Tool):
    """Adapter for the zig program (the PyPI ziglang package's, else zig on PATH)."""

    names = ("zig",)
    hint = "pip install ziglang"

    def find(self) -> Path:
        spec = importlib.util.find_spec("ziglang")
        if spec is not None and spec.origin:
            exe = Path(spec.origin).parent / "zig"
            if exe.is_file():
                return exe
        return find_tool(self.names, self.hint)

    def lib_dir(self) -> Path:
        """zig's lib dir (libc++ sources, libc headers): beside the PyPI package's binary, or
        a distribution's lib/zig."""
        exe = self.exe.resolve()
        for candidate in (exe.parent / "lib", exe.parent.parent / "lib" / "zig"):
            if (candidate / "libcxx").is_dir():
                return candidate
        raise ToolError(
            f"cannot find zig's lib dir beside {exe}",
            hint="reinstall zig: pip install --force-reinstall ziglang",
        )

    def version(self) -> str:
        return self.runner.run([self.exe, "version"]).stdout.strip()

    def write_toolchain(self, out_dir: Path, arch: str, min_macos: str | None) -> Path:
        """Wrappers and `zig-toolchain.cmake` in `out_dir`; returns the toolchain file."""
        out_dir.mkdir(parents=True, exist_ok=True)
        target = zig_target(arch, min_macos)
        paths: dict[str, str] = {}
        for key, tool, tgt in (
            ("cc", "cc", target),
            ("cxx", "c++", target),
            ("ar", "ar", None),
            ("ranlib", "ranlib", None),
        ):
            path = out_dir / f"zig-{tool}"
            _write_if_changed(path, wrapper_text(self.exe, tool, tgt))
            paths[key] = str(path)
        int_tool = InstallNameTool(self.runner).exe  # CMake needs it for Mach-O targets
        template = data_file("zig-toolchain.cmake.in")
        text = Template(template.read_text()).substitute(
            system="Darwin",
            processor=arch,
            zig_target=target,
            install_name_tool=str(int_tool),
            **paths,
        )
        toolchain = out_dir / "zig-toolchain.cmake"
        _write_if_changed(toolchain, text, 0o644)
        return toolchain
