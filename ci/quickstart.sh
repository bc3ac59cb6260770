#!/usr/bin/env bash
# Quick start: install everything, then run the main job on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/install.sh
echo "llamabuild installed: $(llamabuild --version)"
