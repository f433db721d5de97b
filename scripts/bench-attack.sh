#!/usr/bin/env bash
# The attack benchmark (issue #16): a release `altan dev` loaded by `altan bench` with token
# transfers at a fixed offered rate, once alone and once while every attack on free work runs
# from 40 clients each (deep queries, compiling dry runs, idle WebSockets, whole blocks, event
# scans, old proofs). Each run reports honest submit-to-final p50/p99, the block intervals, the
# sustained rate, the node's peak memory and how the attacks were answered.
#
# usage: scripts/bench-attack.sh [--block-time MS] [--each] [altan bench arguments...]
#   --block-time MS  the dev node makes a block every MS milliseconds (default: on demand)
#   --each           also run every attack alone
set -euo pipefail
cd "$(dirname "$0")/.."
dev_args=()
each=false
while [ $# -gt 0 ]; do
  case "$1" in
    --block-time) dev_args+=(--block-time "$2"); shift 2 ;;
    --each) each=true; shift ;;
    *) break ;;
  esac
done
attacks=(queries dry-runs websockets blocks events proofs)
# shellcheck source=scripts/bench-setup.sh
. scripts/bench-setup.sh
cargo run --locked --quiet -p altan-contract-builder -- build contracts/recurse >/dev/null
recurse="$CARGO_TARGET_DIR/contracts/recurse.wasm"

# Starts a dev node, runs `altan bench` against it with the given arguments, stops the node.
run() {
  local log data node rpc status=0
  log="$(mktemp)"
  data="$(mktemp -d)"
  "$altan" dev "${dev_args[@]}" --json --data-dir "$data" --rpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 >"$log" 2>/dev/null &
  node=$!
  for _ in $(seq 100); do
    [ -s "$log" ] && break
    sleep 0.1
  done
  rpc="$(sed -n 's/.*"rpc":"\([^"]*\)".*/\1/p' "$log" | head -1)"
  [ -n "$rpc" ] || { echo "bench-attack: altan dev did not start" >&2; kill "$node"; exit 1; }
  "$altan" bench --rpc "$rpc" --token-wasm "$token" --node-pid "$node" \
    --rate 1000 --transactions 20000 "$@" || status=$?
  echo "data directory: $(du -sh "$data" | cut -f1)"
  kill "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  rm -rf "$log" "$data"
  return "$status"
}

echo "== without attack"
run "$@"
if $each; then
  for attack in "${attacks[@]}"; do
    echo "== under the $attack attack alone"
    run --attack "$attack" --recurse-wasm "$recurse" "$@"
  done
fi
echo "== under all attacks at once"
run --attack "$(IFS=,; echo "${attacks[*]}")" --recurse-wasm "$recurse" "$@"
