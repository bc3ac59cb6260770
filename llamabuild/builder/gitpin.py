"""The `git` llama.cpp's CMake asks for its version strings (GIT_EXE, GIT_EXECUTABLE).

ggml's CMakeLists runs `git rev-parse --short HEAD` and `git diff-index --quiet HEAD -- .` in
the source tree and compiles the answer into ggml.c (`ggml_commit()`). So the bytes depended on
the checkout, not the pin: measured on the llama-cpp-python sdist, the extracted tree (a
`.git` file pointing at the sdist's `.git/modules`, whose index stat data never matches)
gave `0c1e570-dirty`, a copy of the same tree `unknown`. This stand-in answers from the pin
llamabuild resolved instead: the same short commit, build number and dirty state (llamabuild
refuses a dirty tree unless --allow-dirty) on every machine and path. Anything else it is asked
fails as a missing git would.

Usage (a CMake list in the init cache, run by CMake at configure time):
    python .../llamabuild/builder/gitpin.py COMMIT NUMBER DIRTY GIT-ARGS...
"""

from __future__ import annotations

import sys

NOT_A_REPO = 128  # git's own exit code for "not a git repository"


def answer(commit: str, number: str, dirty: bool, args: list[str]) -> tuple[int, str]:
    """(exit code, stdout) for one git command line."""
    words = [a for a in args if a != "--no-pager"]
    if words == ["--version"]:
        return 0, "git version 2.0.0.llamabuild-pin\n"
    if words == ["rev-parse", "--short", "HEAD"]:
        return 0, f"{commit}\n"
    if words[:1] == ["describe"] and "--always" in words:
        return 0, f"{commit}\n"
    if words == ["rev-list", "--count", "HEAD"]:
        return 0, f"{number}\n"
    if words[:2] == ["diff-index", "--quiet"]:
        return (1 if dirty else 0), ""
    return NOT_A_REPO, ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[2] not in ("0", "1"):
        print("usage: gitpin.py COMMIT NUMBER DIRTY GIT-ARGS...", file=sys.stderr)
        return 2
    code, out = answer(args[0], args[1], args[2] == "1", args[3:])
    if code == NOT_A_REPO:
        print("llamabuild: the build's version strings come from the pin, not git", file=sys.stderr)
    sys.stdout.write(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
