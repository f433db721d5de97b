#!/usr/bin/env bash
# The multi-validator benchmark: four release `altan run` validators on loopback, loaded by
# `altan bench` with pre-signed token transfers at an offered rate (default 1,000/s) through
# validator 0; then a fresh full node syncs the whole chain from them, and the script reports its
# catch-up rate. Before that, the same with empty blocks: validators that never wait for
# transactions, and a full node's sync of what they made. RATE (default 1000) and TRANSACTIONS
# (default 30000) set the load, EMPTY_SECONDS (default 10) the empty phase's length; extra
# arguments go to `altan bench` (e.g. --accounts 500).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-setup.sh
. scripts/bench-setup.sh

dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$2" | head -1; }
first_p2p() { sed -n 's/.*"p2p":\["\([^"]*\)".*/\1/p' "$1" | head -1; }
final_height() { "$altan" block final --rpc "$1" --json | sed -n 's/.*"height":\([0-9]*\).*/\1/p' | head -1; }
wait_banner() {
  for _ in $(seq 200); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  echo "bench-validators: a node did not start; its log:" >&2
  tail -n 20 "${1%.json}.log" >&2
  exit 1
}
# start NET NAME DATA_DIR [args...]: starts a node of network NET, waits for its banner.
start() {
  local net="$1" name="$2" data="$3"
  shift 3
  RUST_LOG="${RUST_LOG:-warn,altan::engine=info}" "$altan" run --json --chain "$dir/$net/spec.json" \
    --data-dir "$data" --rpc-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 \
    --p2p-listen /ip4/127.0.0.1/tcp/0 "$@" >"$dir/$net-$name.json" 2>"$dir/$net-$name.log" &
  pids+=("$!")
  wait_banner "$dir/$net-$name.json"
}
# validators NET [args...]: genesis and four validators; sets $boot and $rpc (validator 0's).
validators() {
  local net="$1"
  shift
  "$altan" genesis --validators 4 --out "$dir/$net" >/dev/null
  start "$net" v0 "$dir/$net/validator-0" --keys-dir "$dir/$net/validator-0/keys" \
    --validator-key validator "$@"
  boot="$(first_p2p "$dir/$net-v0.json")"
  for i in 1 2 3; do
    start "$net" "v$i" "$dir/$net/validator-$i" --keys-dir "$dir/$net/validator-$i/keys" \
      --validator-key validator --bootnode "$boot" "$@"
  done
  rpc="$(field rpc "$dir/$net-v0.json")"
}
# catch_up NET: a fresh full node syncs NET's final chain; prints blocks/s and transactions/s.
catch_up() {
  local net="$1" target started ended follower_rpc height metrics hostport transactions
  target="$(final_height "$rpc")"
  started="$(date +%s.%N)"
  start "$net" follower "$dir/$net/follower" --bootnode "$boot"
  follower_rpc="$(field rpc "$dir/$net-follower.json")"
  while :; do
    height="$(final_height "$follower_rpc" || echo 0)"
    [ "${height:-0}" -ge "$target" ] && break
    sleep 0.05
  done
  ended="$(date +%s.%N)"
  # The follower's count of included transactions, from its metrics (HTTP over bash's /dev/tcp).
  metrics="$(field metrics "$dir/$net-follower.json")"
  hostport="${metrics#http://}"
  hostport="${hostport%%/*}"
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"
  printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$hostport" >&3
  transactions="$(sed -n 's/^altan_chain_transactions_total \([0-9]*\).*/\1/p' <&3 | head -1)"
  exec 3<&-
  awk -v n="$target" -v t="${transactions:-0}" -v a="$started" -v b="$ended" \
    'BEGIN { s = b - a; printf "catch-up: %d blocks (%d transactions) in %.2f s = %.0f blocks/s, %.0f transactions/s (process start included)\n", n, t, s, n / s, t / s }'
  # The import rate of each batch of 64, as the follower logged it (without start and polling).
  sed -n 's/.*synced final blocks.*from[^0-9]*\([0-9]*\).*to[^0-9]*\([0-9]*\).*blocks_per_second[^0-9]*\([0-9]*\).*/  batch \1..\2: \3 blocks\/s/p' \
    "$dir/$net-follower.log"
}
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# 1. Empty blocks: validators that never wait for transactions, for a while; then a full node
#    syncs what they made (validators 1-3 stopped first, so the chain stands still).
empty_seconds="${EMPTY_SECONDS:-10}"
validators empty --empty-block-interval 0
sleep "$empty_seconds"
for i in 1 2 3; do kill "${pids[$i]}"; done
echo "empty blocks: four validators made $(final_height "$rpc") in ${empty_seconds} s"
catch_up empty
stop_all

# 2. Load: token transfers offered at a fixed rate through validator 0, then a full node syncs.
validators load
echo "four validators up; loading validator 0 at $rpc"
"$altan" bench --rpc "$rpc" --token-wasm "$token" --node-pid "${pids[0]}" \
  --rate "${RATE:-1000}" --transactions "${TRANSACTIONS:-30000}" "$@"
catch_up load
