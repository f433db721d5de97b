#!/usr/bin/env bash
# Installs what building and testing Altan needs on a Debian machine that has the Rust toolchain
# (rustup). Idempotent and quiet when everything is there already; safe to run before every task.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

# Debian packages: a C++ compiler for rocksdb's bundled sources, make for jemalloc's (the node's
# allocator), libclang for rocksdb's bindings, binaryen for wasm-opt (contract builds).
packages=(g++ make libclang-dev binaryen)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root or sudo to install: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Rust components and targets. wasm32 is what contracts compile to.
installed_components=$(rustup component list --installed)
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed_components" || { log "adding $component"; rustup component add "$component"; }
done
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest (a few minutes, once)"
  cargo install cargo-nextest --locked
fi
