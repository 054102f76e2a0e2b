#!/usr/bin/env bash
# What `make image` needs where there is no working Docker engine: podman with runc as its runtime
# (crun cannot set rlimits without CAP_SYS_RESOURCE on cgroups v1 hosts), and mmdebstrap to make a
# Debian base image locally when no image registry can be reached (scripts/image.sh).
# Idempotent: installs only what is missing (scripts/install-debs.sh).
exec "$(dirname "$0")/install-debs.sh" install-podman podman:podman runc:runc mmdebstrap:mmdebstrap newuidmap:uidmap
