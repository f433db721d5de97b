#!/usr/bin/env bash
# Builds the node image (default tag altan:dev) from the Dockerfile's `host` stage: the release
# binary is compiled here, on the host, and copied in, so nothing compiles inside docker.
#
#   scripts/docker-image.sh [--tag TAG] [--base IMAGE] [--binary PATH] [--keep-debug]
#
# The base image, in order: --base or $ALTAN_DOCKER_BASE; debian:bookworm-slim when the engine
# has it or can pull it; otherwise altan-base:bookworm, made once by scripts/docker-base.sh with
# debootstrap (for an engine without a registry). --binary puts that altan binary in the image
# instead of building the release one (the devnet test uses the debug binary it was built with).
# The binary's debug info is stripped (the release binary's line tables are over 500 MB; symbols
# stay, so backtraces still name functions) unless --keep-debug.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'docker-image: %s\n' "$*" >&2; }

tag=altan:dev
base="${ALTAN_DOCKER_BASE:-}"
binary=""
strip_debug=1
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --keep-debug) strip_debug=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/altan-target}"
started=$SECONDS
if [ -z "$binary" ]; then
  scripts/setup.sh
  log "cargo build --release -p altan-node --bin altan"
  cargo build --release --locked --quiet -p altan-node --bin altan
  binary="$CARGO_TARGET_DIR/release/altan"
fi
[ -x "$binary" ] || { log "$binary is not an executable"; exit 1; }

# The context holds the binary under target/docker/ (.dockerignore lets only that file of
# target/ in). A copy, renamed into place, so a concurrent build never sees half a file.
mkdir -p target/docker
if [ "$strip_debug" -eq 1 ] && command -v strip >/dev/null; then
  strip --strip-debug -o target/docker/altan.tmp "$binary"
else
  cp "$binary" target/docker/altan.tmp
fi
mv -f target/docker/altan.tmp target/docker/altan

if [ -z "$base" ]; then
  if docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
    docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    base=debian:bookworm-slim
  else
    base=altan-base:bookworm
    log "no debian:bookworm-slim from a registry: using $base (scripts/docker-base.sh)"
    scripts/docker-base.sh "$base"
  fi
fi

previous=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
built=$SECONDS
log "docker build --target host --build-arg BASE=$base -t $tag"
# Quiet unless it fails (the legacy builder also warns on every run that it is deprecated).
if ! output=$(docker build --quiet --target host --build-arg "BASE=$base" -t "$tag" . 2>&1); then
  printf '%s\n' "$output" >&2
  log "docker build failed"
  exit 1
fi
# The image the tag named before, untagged now: removed unless a container still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
log "$tag built: image $((SECONDS - built)) s, $((SECONDS - started)) s in all"
