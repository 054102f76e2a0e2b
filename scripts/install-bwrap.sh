#!/usr/bin/env bash
# bubblewrap (Debian's and Ubuntu's `bubblewrap`), the sandbox the grader runs student kernels in
# (grader/sandbox.py). Idempotent: does nothing when `bwrap` is already on PATH (scripts/install-debs.sh).
exec "$(dirname "$0")/install-debs.sh" install-bwrap bwrap:bubblewrap
