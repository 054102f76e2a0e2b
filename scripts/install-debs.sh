#!/usr/bin/env bash
# Install the Debian/Ubuntu packages behind the commands a make target needs, for the install-*.sh
# scripts: `install-debs.sh WHO COMMAND:PACKAGE...`. Idempotent: installs only the packages whose
# command is missing. Needs root, or sudo without a password prompt; exits 1 when it cannot install
# them, or when a command is still missing afterwards.
set -euo pipefail
who="$1"
shift
missing=()
for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "$who: not root and no password-less sudo: install ${missing[*]} yourself" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: no apt-get here: install ${missing[*]} with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "$who: installing ${missing[*]}" >&2
$SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
}
for pair in "$@"; do command -v "${pair%%:*}" >/dev/null; done
