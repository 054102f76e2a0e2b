#!/usr/bin/env bash
# bubblewrap (Debian's and Ubuntu's `bubblewrap`), the sandbox the grader runs student kernels in
# (grader/sandbox.py). Idempotent: does nothing when `bwrap` is already on PATH. Needs root, or
# sudo without a password prompt; exits 1 when it cannot install it.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-bwrap: not root and no password-less sudo: install the 'bubblewrap' package yourself" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bwrap: no apt-get here: install bubblewrap with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends bubblewrap >/dev/null 2>&1 || {
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends bubblewrap
}
command -v bwrap >/dev/null
