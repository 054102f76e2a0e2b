#!/usr/bin/env bash
# What `make image` needs where there is no working Docker engine: podman with runc as its runtime
# (crun cannot set rlimits without CAP_SYS_RESOURCE on cgroups v1 hosts), and mmdebstrap to make a
# Debian base image locally when no image registry can be reached (scripts/image.sh).
# Debian's and Ubuntu's packages. Idempotent: installs only what is missing. Needs root, or sudo
# without a password prompt; exits 1 when it cannot install them.
set -euo pipefail
missing=()
for pair in podman:podman runc:runc mmdebstrap:mmdebstrap newuidmap:uidmap; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        echo "install-podman: not root and no password-less sudo: install ${missing[*]} yourself" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-podman: no apt-get here: install ${missing[*]} with your package manager" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-podman: installing ${missing[*]}" >&2
$SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
}
for c in podman runc mmdebstrap; do command -v "$c" >/dev/null; done
