"""Apple's Metal compiler (`xcrun -sdk macosx metal`): the build compiles each embedded kernel
group offline, as the user's OS will at first use, so a group the compiler rejects fails the
build instead of the app's GPU path. Only on a Mac: there is no other Metal compiler."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llamabuild.tools import XCODE_HINT, XcrunTool
from llamabuild.tools.runner import Result


def compile_argv(
    xcrun: Path, source: Path, output: Path, language: str, min_macos: str, defines: Sequence[str]
) -> list[str]:
    return [
        str(xcrun),
        "-sdk",
        "macosx",
        "metal",
        f"-std=metal{language}",
        f"-mmacosx-version-min={min_macos}",
        *(f"-D{d}" for d in defines),
        "-c",
        str(source),
        "-o",
        str(output),
    ]


class MetalCompiler(XcrunTool):
    xcrun_name = "metal"
    names = ("xcrun",)  # Xcode's only: there is no other Metal compiler
    hint = XCODE_HINT + "and the Metal toolchain (xcodebuild -downloadComponent MetalToolchain)"

    def compile(
        self, source: Path, output: Path, language: str, min_macos: str, defines: Sequence[str]
    ) -> Result:
        """Never raises for a rejected source: the caller reads the exit code and output."""
        argv = compile_argv(self.exe, source, output, language, min_macos, defines)
        return self.runner.run(argv, check=False)
