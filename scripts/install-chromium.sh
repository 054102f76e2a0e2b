#!/usr/bin/env bash
# Headless Chromium for the HTML report's test (tests/test_html_report.py). Idempotent:
# does nothing when `chromium` is already on PATH. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
