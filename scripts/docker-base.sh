#!/usr/bin/env bash
# Builds a Debian bookworm base image locally, for a docker engine that cannot pull images (no
# registry, or none reachable): debootstrap a minimal system from a Debian mirror, then
# `docker import` it. The image holds what the `altan` binary links against (glibc, libstdc++,
# libgcc) and nothing else of note. With a registry, skip this: the Dockerfile's default base,
# debian:bookworm-slim, is the same system.
#
#   scripts/docker-base.sh [--force] [IMAGE]     (IMAGE defaults to altan-base:bookworm)
#
# Does nothing when IMAGE exists already, unless --force. Needs root (or sudo) for debootstrap,
# and installs debootstrap through apt when it is missing. The mirror is the one apt uses on this
# machine (from /etc/apt/sources.list*), or $DEBIAN_MIRROR.
set -euo pipefail

log() { printf 'docker-base: %s\n' "$*" >&2; }

force=0
image=""
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) log "unknown option $arg"; exit 2 ;;
    *) image="$arg" ;;
  esac
done
image="${image:-altan-base:bookworm}"
suite=bookworm

if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image exists (--force rebuilds it)"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { log "debootstrap needs root or sudo"; exit 1; }
  sudo="sudo"
fi

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq debootstrap >/dev/null
fi

# The Debian mirror apt uses here: a one-line `deb URL bookworm main` entry, or a deb822
# `URIs:` field next to `Suites: bookworm`. The security archive is skipped.
apt_mirror() {
  local file
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    awk -v suite="$suite" '$1 == "deb" && $0 !~ /security/ {
        for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /^https?:/) { url = $i; s = $(i + 1); break }
        if (s == suite) { print url; exit }
      }' "$file"
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    # Stanzas are separated by blank lines; print the URI of one that lists the suite.
    awk -v suite="$suite" 'BEGIN { RS = "" } {
        uri = ""; has = 0
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^URIs:/) { split(lines[i], f, /[ \t]+/); uri = f[2] }
          if (lines[i] ~ /^Suites:/ && (" " lines[i] " ") ~ (" " suite " ")) has = 1
        }
        if (has && uri != "" && uri !~ /security/) { print uri; exit }
      }' "$file"
  done
}
mirror="${DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}"
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d "${TMPDIR:-/tmp}/altan-base.XXXXXX")"
cleanup() { $sudo rm -rf --one-file-system "$root" "$root.log"; }
trap cleanup EXIT

started=$SECONDS
log "debootstrap $suite from $mirror (a minute or two)"
# minbase is the Priority: required set plus apt: it already holds libc6, libstdc++6, libgcc-s1,
# bash, coreutils, grep and sed, which is all the image and its entry script use.
if ! $sudo debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
  tail -n 30 "$root.log" >&2
  log "debootstrap failed (log above; set DEBIAN_MIRROR to use another mirror)"
  exit 1
fi
rm -f "$root.log"

# Smaller: no package lists, caches, docs or manuals (apt-get update restores the lists).
$sudo rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* "$root"/usr/share/man/* \
  "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/tmp/*
printf 'deb %s %s main\n' "$mirror" "$suite" | $sudo tee "$root/etc/apt/sources.list" >/dev/null

$sudo tar --numeric-owner -C "$root" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $suite $mirror" \
    - "$image" >/dev/null
log "$image built in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
