#!/usr/bin/env bash
# Install the grader's pinned environment. Gradescope runs this once, as root, when it builds the
# autograder image from autograder.zip (unpacked in /autograder/source); the Dockerfile runs the
# very same script, so both deployments get the same Python and the same requirements.lock.
#
# Base: Ubuntu 22.04 (Gradescope's "Ubuntu 22.04" base image; the Dockerfile's default FROM). Python 3.11
# comes from Ubuntu's own python3.11 package (jammy universe); where that is missing, from the
# deadsnakes PPA. It runs unchanged on Debian 12 (bookworm), whose python3 is 3.11: the base
# `make image` makes where no image registry can be reached. The venv is $SOURCE/.venv, where
# run_autograder looks for it.
set -euo pipefail

PYTHON_VERSION=3.11
SOURCE="${AUTOGRADER_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
export DEBIAN_FRONTEND=noninteractive

apt-get update
if ! apt-get install -y --no-install-recommends "python$PYTHON_VERSION" "python$PYTHON_VERSION-venv"; then
    apt-get install -y --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends "python$PYTHON_VERSION" "python$PYTHON_VERSION-venv"
fi
# bubblewrap isolates the student's kernel wherever user namespaces are allowed (not on Gradescope
# itself, where the kernel runs as nobody instead; see run_autograder).
apt-get install -y --no-install-recommends bubblewrap || echo "setup.sh: bubblewrap not installed" >&2
rm -rf /var/lib/apt/lists/*

"python$PYTHON_VERSION" -m venv "$SOURCE/.venv"
"$SOURCE/.venv/bin/python" -m pip install --no-cache-dir --disable-pip-version-check \
    -r "$SOURCE/requirements.lock"

chmod +x "$SOURCE/run_autograder" "$SOURCE/prairielearn/run.sh"  # unzipped without their modes in the Dockerfile
[ -e /autograder/run_autograder ] && chmod +x /autograder/run_autograder || true

# Fail the image build, not the first submission, if the grader cannot start.
cd "$SOURCE"
"$SOURCE/.venv/bin/python" -c "import grader.cli, grader.expected as e; e.load_all(); print('grader ready')"
