"""clang as a C preprocessor: which of ggml's embedded Metal kernels survive a language version.

The Metal compiler is not needed to tell that: the kernels' source decides with the
preprocessor (`#if __METAL_VERSION__ < 310` in kernels/common.h drops the bf16 kernels), so
clang -E at a given `__METAL_VERSION__`, with the macros the Metal compiler and ggml's host
code define, gives the same text the user's OS would compile. On a Mac it is Xcode's clang
(`xcrun clang`), elsewhere LLVM's.

The text is untrusted (it comes out of a binary): `sanitized` removes every directive that
could read a file (#include, #import, #include_next, #embed) or poke at the compiler
(#pragma), the program runs with stdin closed, a timeout and a bound on its output.
"""

from __future__ import annotations

import re
from pathlib import Path

from llamabuild.tools import XCODE_HINT, XcrunTool

TIMEOUT_S = 60.0
# A kernel group's preprocessed text is smaller than its source (comments go); past this
# multiple of the input plus a margin, macros are expanding without end.
OUTPUT_FACTOR, OUTPUT_MARGIN = 8, 1 << 20

# What the Metal compiler predefines that the kernels could test, and what ggml's host code
# passes (ggml-metal-device.m: preprocessorMacros): bf16 as the host enables it on Apple6 /
# Metal3 GPUs, the embedded library. __METAL_VERSION__ is the one that varies.
METAL_DEFINES = (
    "__METAL__=1",
    "__METAL_MACOS__=1",
    "__APPLE__=1",
    "GGML_METAL_HAS_BF16=1",
    "GGML_METAL_EMBED_LIBRARY=1",
)

_FORBIDDEN = re.compile(r"\s*(?:include|include_next|import|embed|pragma)\b")
_HOST_NAME = re.compile(r'host_name\s*\(\s*((?:"[^"\n]*"\s*)+)\)')  # adjacent literals join
_LITERAL = re.compile(r'"([^"\n]*)"')


def metal_version(language: str) -> int:
    """ "3.1" -> 310, as __METAL_VERSION__ spells it."""
    major, _, minor = language.partition(".")
    return int(major) * 100 + int(minor or 0) * 10


def preprocess_argv(prefix: tuple[str, ...], source: Path, language: str) -> list[str]:
    defines = [f"-D{d}" for d in (*METAL_DEFINES, f"__METAL_VERSION__={metal_version(language)}")]
    return [
        *prefix,
        "-E",
        "-P",
        "-x",
        "c++",
        "-std=c++17",
        "-undef",
        "-nostdinc",
        "-nostdinc++",
        "-w",
        *defines,
        str(source),
    ]


def _strip_comments(text: str) -> str:
    """Comments replaced by a space (translation phase 3): `#/**/include` is an include."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            out.append(" ")
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in "/\"'":
                j += 1
            out.append(text[i : max(j, i + 1)])
            i = max(j, i + 1)
    return "".join(out)


def sanitized(text: str) -> str:
    """The text without line splices, comments, or any directive that reads a file or talks to
    the compiler; everything the count depends on (#if, #define, #undef) is kept."""
    joined = re.sub(r"\\\r?\n", "", text)  # translation phase 2
    lines = []
    for line in _strip_comments(joined).splitlines():
        head = line.lstrip()
        if head.startswith("#") and _FORBIDDEN.match(head[1:]):
            continue
        if head.startswith("%:") and _FORBIDDEN.match(head[2:]):  # the digraph of #
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def host_names(output: str) -> list[str]:
    """Every kernel instantiation's [[host_name("...")]] in preprocessed text, in order."""
    return ["".join(_LITERAL.findall(m)) for m in _HOST_NAME.findall(output)]


class Preprocessor(XcrunTool):
    xcrun_name = "clang"
    names = ("clang", "clang-19", "clang-18", "clang-17", "clang-16")
    hint = XCODE_HINT + "on Linux: apt-get install clang-19"

    def host_names(self, source: Path, language: str) -> list[str]:
        """The host names of the kernels `source` (a sanitized file) defines at `language`."""
        size = source.stat().st_size
        result = self.runner.run(
            preprocess_argv(self.prefix, source, language),
            cwd=source.parent,
            timeout=TIMEOUT_S,
            output_limit=OUTPUT_FACTOR * size + OUTPUT_MARGIN,
        )
        return host_names(result.stdout)
