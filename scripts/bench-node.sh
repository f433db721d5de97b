#!/usr/bin/env bash
# The node benchmark: a release `altan dev` loaded by `altan bench` with pre-signed token transfers
# over RPC. Extra arguments go to `altan bench` (e.g. --transactions 100000 --accounts 500).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-setup.sh
. scripts/bench-setup.sh

log="$(mktemp)"
"$altan" dev --json --rpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 >"$log" 2>/dev/null &
node=$!
trap 'kill "$node" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  [ -s "$log" ] && break
  sleep 0.1
done
rpc="$(sed -n 's/.*"rpc":"\([^"]*\)".*/\1/p' "$log" | head -1)"
[ -n "$rpc" ] || { echo "bench-node: altan dev did not start" >&2; exit 1; }
"$altan" bench --rpc "$rpc" --token-wasm "$token" --node-pid "$node" "$@"
