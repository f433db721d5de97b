#!/usr/bin/env bash
# The multi-validator benchmark: four release `altan run` validators on loopback, loaded by
# `altan bench` with pre-signed token transfers at an offered rate (default 1,000/s) through
# validator 0; then a fresh full node syncs the whole chain from them, and the script reports its
# catch-up rate. Extra arguments go to `altan bench` (e.g. --rate 2000 --transactions 60000).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/altan-target}"

cargo build --locked --release -p altan-node
cargo run --locked --quiet -p altan-contract-builder -- build contracts/token >/dev/null
altan="$CARGO_TARGET_DIR/release/altan"
token="$CARGO_TARGET_DIR/contracts/token.wasm"

dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

"$altan" genesis --validators 4 --out "$dir/net" >/dev/null

field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -1; }
first_p2p() { sed -n 's/.*"p2p":\["\([^"]*\)".*/\1/p' "$1" | head -1; }
wait_banner() {
  for _ in $(seq 200); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  echo "bench-validators: a node did not start; its log:" >&2
  tail -n 20 "${1%.json}.log" >&2
  exit 1
}
# start NAME DATA_DIR [args...]: starts a node, waits for its banner in $dir/NAME.json.
start() {
  local name="$1" data="$2"
  shift 2
  RUST_LOG="${RUST_LOG:-warn,altan::engine=info}" "$altan" run --json --chain "$dir/net/spec.json" \
    --data-dir "$data" --rpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    --p2p-listen /ip4/127.0.0.1/tcp/0 "$@" >"$dir/$name.json" 2>"$dir/$name.log" &
  pids+=("$!")
  wait_banner "$dir/$name.json"
}

validator_args() { echo --keys-dir "$dir/net/validator-$1/keys" --validator-key validator; }
# shellcheck disable=SC2046
start v0 "$dir/net/validator-0" $(validator_args 0)
node0_pid="${pids[0]}"
boot="$(first_p2p "$dir/v0.json")"
for i in 1 2 3; do
  # shellcheck disable=SC2046
  start "v$i" "$dir/net/validator-$i" $(validator_args "$i") --bootnode "$boot"
done
rpc="$(field rpc "$dir/v0.json")"
echo "four validators up; loading validator 0 at $rpc"

"$altan" bench --rpc "$rpc" --token-wasm "$token" --node-pid "$node0_pid" \
  --rate 1000 --transactions 30000 "$@"

final_height() { "$altan" block final --rpc "$1" --json | sed -n 's/.*"height":\([0-9]*\).*/\1/p' | head -1; }
target="$(final_height "$rpc")"
echo "catch-up: a fresh full node syncs $target final blocks"
started="$(date +%s.%N)"
start follower "$dir/follower" --bootnode "$boot"
follower_rpc="$(field rpc "$dir/follower.json")"
while :; do
  height="$(final_height "$follower_rpc" || echo 0)"
  [ "${height:-0}" -ge "$target" ] && break
  sleep 0.05
done
ended="$(date +%s.%N)"
# The follower's count of included transactions, from its metrics (plain HTTP over bash's /dev/tcp).
metrics="$(field metrics "$dir/follower.json")"
hostport="${metrics#http://}"
hostport="${hostport%%/*}"
exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
transactions="$(sed -n 's/^altan_chain_transactions_total \([0-9]*\).*/\1/p' <&3 | head -1)"
exec 3<&-
awk -v n="$target" -v t="${transactions:-0}" -v a="$started" -v b="$ended" \
  'BEGIN { s = b - a; printf "catch-up: %d blocks (%d transactions) in %.2f s = %.0f blocks/s, %.0f transactions/s (process start included)\n", n, t, s, n / s, t / s }'
grep -h "synced final blocks" "$dir/follower.log" | tail -n 3 || true
