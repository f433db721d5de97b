# shellcheck shell=bash disable=SC2034
# Sourced by the node benchmarks: builds the release node and the token contract and sets
# $altan and $token to them. Runs from the repository's top directory.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/altan-target}"
cargo build --locked --release -p altan-node
cargo run --locked --quiet -p altan-contract-builder -- build contracts/token >/dev/null
altan="$CARGO_TARGET_DIR/release/altan"
token="$CARGO_TARGET_DIR/contracts/token.wasm"
