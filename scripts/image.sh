#!/usr/bin/env bash
# The grader's container image (Dockerfile): build it, and grade one notebook in a fresh container.
#
#   scripts/image.sh build                  # the image $IMAGE (default resnet-grader)
#   scripts/image.sh run NOTEBOOK OUTDIR    # OUTDIR/results.json (and the grader's log on stdout)
#   scripts/image.sh engine                 # prints the engine command it would use
#
# Engine: docker where `docker info` reaches an engine, else podman (installed with
# scripts/install-podman.sh when missing), run with this folder's podman/containers.conf (runc,
# no default rlimits: what works on cgroups v1 hosts) and the vfs storage driver.
#
# Bases: the Dockerfile's defaults (ubuntu:22.04, python:3.11-slim) where they are present or can
# be pulled; else a Debian bookworm base made here with mmdebstrap and imported, as
# localhost/resnet-grader-base:bookworm (plus :bookworm-python, the builder stage's, with python3).
#
# Settings (environment):
#   IMAGE                   the image's name (default resnet-grader)
#   IMAGE_BASE              the final stage's base: an image, or "debian" for the local bookworm
#                           base; empty (default): the Dockerfile's, else the local one
#   IMAGE_BUNDLE_BASE       the builder stage's base (default: follows IMAGE_BASE)
#   IMAGE_ENGINE            docker or podman, instead of detecting
#   PODMAN_STORAGE_DRIVER   default vfs
#   IMAGE_CPUS, IMAGE_MEMORY, IMAGE_PIDS  the caps of `run` (default 1, 5g and 1024 processes and
#                           threads: docs/DEPLOY.md)
#   IMAGE_ISOLATION         what isolates the student's kernel in `run`: nobody (default: the
#                           engine's default confinement; the kernel runs as nobody, with the
#                           solution and expected outputs unreadable to it, as on Gradescope) or
#                           bubblewrap (the container's /proc unmasked, so that bubblewrap can give
#                           the kernel its own PID namespace and a view without those files at all)
#   IMAGE_RUN_FLAGS         more flags for `run`
#
# The build, and only the build, uses the host's network (--network host), so apt and pip inside
# it reach the package mirrors the way this host does; with podman it also gets the CA bundle and
# index the host's pip is configured with (never stored in the image). `run` has no network.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
IMAGE="${IMAGE:-resnet-grader}"
LOCAL_BASE=localhost/resnet-grader-base:bookworm
LOCAL_BUNDLE_BASE=localhost/resnet-grader-base:bookworm-python

say() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

# ENGINE: the command line of the container engine.
choose_engine() {
    local kind="${IMAGE_ENGINE:-}"
    if [ -z "$kind" ]; then
        if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
            kind=docker
        else
            kind=podman
        fi
    fi
    case "$kind" in
        docker) ENGINE=(docker) ;;
        podman)
            "$HERE/install-podman.sh" || die "podman is needed (no working docker engine here)"
            export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/podman/containers.conf}"
            ENGINE=(podman --storage-driver "${PODMAN_STORAGE_DRIVER:-vfs}") ;;
        *) die "IMAGE_ENGINE must be docker or podman, not '$kind'" ;;
    esac
    KIND="$kind"
}

has_image() { "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1; }

# Present, or pulled within a minute (a registry that cannot be reached fails at once or times out).
available() {
    has_image "$1" || timeout 60 "${ENGINE[@]}" pull "$1" >/dev/null 2>&1
}

# The local Debian base, made once: mmdebstrap --variant=minbase bookworm, imported as $1.
make_base() {
    local ref="$1" include="$2" tar
    has_image "$ref" && return 0
    "$HERE/install-podman.sh" || die "mmdebstrap is needed to make a local base image"
    tar="$(mktemp "${TMPDIR:-/tmp}/resnet-grader-base.XXXXXX.tar")"
    say "making $ref with mmdebstrap --variant=minbase ${include:+--include=$include }bookworm"
    mmdebstrap --quiet --variant=minbase ${include:+--include="$include"} bookworm "$tar" \
        || { rm -f "$tar"; die "mmdebstrap failed: cannot make a local base image"; }
    "${ENGINE[@]}" import "$tar" "$ref" >/dev/null || { rm -f "$tar"; die "could not import $tar"; }
    rm -f "$tar"
}

# A setting of the host's pip (environment first, then its config files), e.g. cert, index-url.
pip_setting() {
    local env="PIP_$(printf '%s' "$1" | tr 'a-z-' 'A-Z_')" pip
    if [ -n "${!env:-}" ]; then printf '%s\n' "${!env}"; return; fi
    pip="$(command -v pip3 || command -v pip || true)"
    [ -n "$pip" ] || return 0
    "$pip" config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | head -n 1
}

# BUILD_FLAGS for podman: the host's pip CA bundle and index, bind-mounted for the RUN steps only.
pip_mounts() {
    local cert index conf
    cert="$(pip_setting cert)"
    index="$(pip_setting index-url)"
    case "$index" in http://*|https://*) ;; *) index="" ;; esac  # a file:// index is not in the build
    [ -n "$cert" ] && [ -f "$cert" ] || cert=""
    [ -n "$cert$index" ] || return 0
    conf="$WORK/pip.conf"
    { echo "[global]"
      [ -n "$cert" ] && echo "cert = /run/resnet-grader-build/ca.pem"
      [ -n "$index" ] && echo "index-url = $index"
      true; } >"$conf"
    BUILD_FLAGS+=(--volume "$conf:/etc/pip.conf:ro")
    [ -n "$cert" ] && BUILD_FLAGS+=(--volume "$cert:/run/resnet-grader-build/ca.pem:ro")
    say "pip in the build uses the host's${cert:+ CA bundle ($cert)}${index:+ index ($index)}"
}

build() {
    choose_engine
    local base="${IMAGE_BASE:-}" bundle="${IMAGE_BUNDLE_BASE:-}" args=() start
    if [ -z "$base" ]; then
        # The Dockerfile's defaults, fully qualified for podman (which has no default registry).
        if available docker.io/library/ubuntu:22.04 && available docker.io/library/python:3.11-slim; then
            base=docker.io/library/ubuntu:22.04
            bundle="${bundle:-docker.io/library/python:3.11-slim}"
        else
            say "no image registry can be reached: using a local Debian bookworm base"
            base=debian
        fi
    fi
    if [ "$base" = debian ]; then
        make_base "$LOCAL_BASE" ""
        base="$LOCAL_BASE"
        if [ -z "$bundle" ]; then make_base "$LOCAL_BUNDLE_BASE" python3; bundle="$LOCAL_BUNDLE_BASE"; fi
    fi
    args+=(--build-arg "BASE=$base")
    [ -n "$bundle" ] && args+=(--build-arg "BUNDLE_BASE=$bundle")
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/resnet-grader-build.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    BUILD_FLAGS=(--network host)
    [ "$KIND" = podman ] && pip_mounts
    say "building $IMAGE with $KIND from $base${bundle:+ (builder: $bundle)}"
    start=$(date +%s)
    "${ENGINE[@]}" build "${BUILD_FLAGS[@]}" "${args[@]}" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT"
    say "built $IMAGE in $(( $(date +%s) - start )) s; size $("${ENGINE[@]}" image inspect --format '{{.Size}}' "$IMAGE" \
        | awk '{printf "%.0f MB", $1 / 1e6}')"
    # vfs keeps every layer of a superseded image in full: drop the untagged ones.
    "${ENGINE[@]}" image prune -f >/dev/null 2>&1 || true
}

# Grade one notebook in a fresh container: no network, the notebook read-only, OUTDIR for the result.
run() {
    [ $# -eq 2 ] || die "usage: scripts/image.sh run NOTEBOOK OUTDIR"
    local notebook="$1" out="$2" name isolation=()
    [ -f "$notebook" ] || die "no notebook at $notebook"
    choose_engine
    has_image "$IMAGE" || { say "no image $IMAGE yet: building it"; (build); }
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    case "$out" in *:*|*,*) die "OUTDIR may not contain ':' or ',' (a container mount cannot name it): $out" ;; esac
    # The notebook, alone in a folder of its own, keeps its name whatever characters it holds.
    SUB="$(mktemp -d "${TMPDIR:-/tmp}/resnet-grader-submission.XXXXXX")"
    trap 'rm -rf "$SUB"' EXIT
    cp "$notebook" "$SUB/"
    chmod -R a+rX "$SUB"
    case "${IMAGE_ISOLATION:-nobody}" in
        nobody) ;;
        # bubblewrap mounts a fresh /proc for the kernel's PID namespace, which the kernel refuses
        # while the engine masks parts of the container's /proc (its default).
        bubblewrap)
            if [ "$KIND" = podman ]; then isolation=(--security-opt unmask=ALL)
            else isolation=(--security-opt systempaths=unconfined --security-opt seccomp=unconfined); fi ;;
        *) die "IMAGE_ISOLATION must be nobody or bubblewrap, not '${IMAGE_ISOLATION}'" ;;
    esac
    name="${IMAGE_CONTAINER_NAME:-resnet-grader-$$}"
    # shellcheck disable=SC2086  # IMAGE_RUN_FLAGS is a list of flags
    "${ENGINE[@]}" run --rm --name "$name" --network none \
        --cpus "${IMAGE_CPUS:-1}" --memory "${IMAGE_MEMORY:-5g}" --pids-limit "${IMAGE_PIDS:-1024}" \
        -v "$SUB:/autograder/submission:ro" -v "$out:/autograder/results" \
        "${isolation[@]}" ${IMAGE_RUN_FLAGS:-} "$IMAGE"
}

case "${1:-}" in
    build) shift; build "$@" ;;
    run) shift; run "$@" ;;
    engine) choose_engine; echo "${ENGINE[*]}" ;;
    *) die "usage: scripts/image.sh build | run NOTEBOOK OUTDIR | engine" ;;
esac
