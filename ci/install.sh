#!/usr/bin/env bash
# Installs everything llamabuild and its test suite need on a fresh Debian/Ubuntu machine:
# LLVM 19 (clang, ld64.lld, dsymutil, otool, lipo: real Mach-O tools off-mac) and the package
# with its test extra. Idempotent; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends clang-19 lld-19 llvm-19 git
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
