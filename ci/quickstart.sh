#!/usr/bin/env bash
# Quick start: install everything, then run the main job on this machine: real `llamabuild
# build`s of llama-server from the llama-cpp-python 0.3.36 sdist (llama.cpp 0c1e570 in
# vendor/llama.cpp, pinned by its PyPI sha256): the static Linux server, and the macOS arm64
# server with its dSYM (zig cross build, CPU only: no Metal SDK off a Mac); then verify both.
# Timings measured on 2 cores are in the README; again: a no-op skip in about a second each.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install.sh
echo "llamabuild installed: $(llamabuild --version)"

SDIST=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-0.3.36.tar.gz
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

llamabuild build --recipe linux-x86_64-static \
    --source "$SDIST" --sha256 "$SHA256" --ref 0c1e570 \
    --dist dist

llamabuild verify dist/linux-x86_64-static/llama-server --arch x86_64 --elf-policy static
dist/linux-x86_64-static/llama-server --version
echo "manifest: dist/linux-x86_64-static/manifest.json"

llamabuild build --recipe macos-arm64-cpu-cross \
    --source "$SDIST" --sha256 "$SHA256" --ref 0c1e570 \
    --dist dist

llamabuild verify dist/macos-arm64-cpu-cross/llama-server --arch arm64 --min-macos 14.0 \
    --dsym dist/macos-arm64-cpu-cross/llama-server.dSYM
echo "manifest: dist/macos-arm64-cpu-cross/manifest.json"
