"""What a user would do instead: the integration guide's manual procedure, timed.

The guide (static-llama-cpp-macos-guide.md, "Build Static Binary with Debug Symbols") runs
`cmake ..` with its flags in an empty build dir and then
`cmake --build . --config RelWithDebInfo -j<all cores>`: every default target, CMake's default
generator, no compiler cache. Off a Mac only its flags that mean something on this host are
passed: GGML_METAL, GGML_ACCELERATE, CMAKE_OSX_* and the `-framework` linker flags are
Apple's, and the CPU backend the linux-x86_64-static recipe builds is what is left without them
(no flag). LLAMA_USE_PREBUILT_UI=OFF is added only because this machine has no network (the
guide's user would download the web UI: more time, not less).

Standalone (bench/build.py imports it): needs cmake and a compiler, not pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The guide's configure flags that apply off a Mac, verbatim (LLAMA_STATIC and LLAMA_NATIVE
# are stale in today's llama.cpp: CMake ignores the first and GGML_NATIVE stays ON).
GUIDE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
    "-DLLAMA_STATIC=ON",
    "-DLLAMA_NATIVE=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DCMAKE_FIND_LIBRARY_SUFFIXES=.a",
    "-DCMAKE_CXX_FLAGS=-O3 -g",
)
# This host's one necessity (no network).
HOST_FLAGS = ("-DLLAMA_USE_PREBUILT_UI=OFF",)


def guide_argv(cmake: str, source: Path, build_dir: Path) -> tuple[list[str], list[str]]:
    """(configure, build) argv of the guide's procedure for `source` into `build_dir`."""
    configure = [cmake, "-S", str(source), "-B", str(build_dir), *GUIDE_FLAGS, *HOST_FLAGS]
    jobs = str(os.cpu_count() or 1)  # the guide: -j$(sysctl -n hw.logicalcpu)
    build = [cmake, "--build", str(build_dir), "--config", "RelWithDebInfo", "-j", jobs]
    return configure, build


def time_guide(cmake: str, source: Path, build_dir: Path) -> float:
    """Seconds for the guide's configure + build, from an empty build dir; exits on failure.
    The environment is cleaned of compiler launchers and CCACHE_*: the guide uses none."""
    shutil.rmtree(build_dir, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCACHE_", "CMAKE_"))}
    total = 0.0
    for argv in guide_argv(cmake, source, build_dir):
        start = time.monotonic()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        total += time.monotonic() - start
        if proc.returncode != 0:
            sys.exit(f"guide step failed ({proc.returncode}): {argv}\n{proc.stdout[-3000:]}")
    if not (build_dir / "bin" / "llama-server").is_file():
        sys.exit(f"the guide's build made no {build_dir / 'bin' / 'llama-server'}")
    return total
