#!/usr/bin/env bash
# The devnet's entry point inside the node image (installed as /usr/local/bin/altan-devnet;
# docker-compose.yml runs it):
#
#   altan-devnet genesis [altan genesis options]
#       once: `altan genesis` into $ALTAN_GENESIS/chain (the shared genesis volume); does nothing
#       when that chain exists, so restarts and re-runs of `docker compose up` keep it.
#   altan-devnet validator <i> [altan run options]
#       validator i: at first start copies its directory from the genesis (consensus key, network
#       key) into $ALTAN_DATA (its own volume), then runs `altan run` with its key.
#   altan-devnet rpc [altan run options]
#       a node without a validator key: follows the chain and serves RPC.
#
# Environment: ALTAN_GENESIS (/genesis), ALTAN_DATA (/data), ALTAN_P2P_PORT (30333), and
# ALTAN_VALIDATOR_HOSTS, the address of each validator in index order, comma-separated: IPv4
# addresses or DNS names, from which the bootnode addresses are made.
set -euo pipefail

genesis_dir="${ALTAN_GENESIS:-/genesis}"
data_dir="${ALTAN_DATA:-/data}"
p2p_port="${ALTAN_P2P_PORT:-30333}"
chain="$genesis_dir/chain"
report="$chain/genesis.json"
marker="$data_dir/.altan-devnet"

log() { printf 'altan-devnet: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

genesis() {
  if [ -f "$chain/spec.json" ]; then
    log "the chain in $chain exists; keeping it (docker compose down -v makes a new one)"
    return
  fi
  # Written beside, then renamed: a node never sees half a genesis, and an interrupted run
  # leaves only the temporary directory, which the next run replaces.
  local tmp="$genesis_dir/chain.tmp"
  rm -rf "$tmp" "$tmp.json"
  altan genesis --out "$tmp" --json "$@" >"$tmp.json"
  # The report names the paths it wrote; name them where they end up.
  sed "s#$tmp/#$chain/#g" "$tmp.json" >"$tmp/genesis.json"
  rm -f "$tmp.json"
  mv "$tmp" "$chain"
  log "genesis: $chain/spec.json"
  cat "$report"
}

# Waits for the genesis (docker compose starts the nodes after it, but a node started by hand
# may come first).
wait_for_genesis() {
  local waited=0
  while [ ! -f "$report" ]; do
    [ "$waited" -lt 120 ] || die "no genesis in $chain after 120 s (run: altan-devnet genesis)"
    sleep 1
    waited=$((waited + 1))
  done
}

# The validators' peer ids, one a line in index order, from `altan genesis --json`.
peer_ids() {
  grep -o '"peerId"[[:space:]]*:[[:space:]]*"[^"]*"' "$report" | sed 's/.*"\([^"]*\)"$/\1/'
}

# --bootnode arguments for every validator but `skip` (an index, or -1).
bootnodes=()
make_bootnodes() {
  local skip="$1" hosts ids i
  IFS=',' read -r -a hosts <<<"${ALTAN_VALIDATOR_HOSTS:?set ALTAN_VALIDATOR_HOSTS}"
  mapfile -t ids < <(peer_ids)
  [ "${#ids[@]}" -eq "${#hosts[@]}" ] ||
    die "the genesis has ${#ids[@]} validators but ALTAN_VALIDATOR_HOSTS names ${#hosts[@]}"
  for i in "${!ids[@]}"; do
    [ "$i" -ne "$skip" ] || continue
    local host="${hosts[$i]}" proto=dns4
    [[ "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] && proto=ip4
    bootnodes+=(--bootnode "/$proto/$host/tcp/$p2p_port/p2p/${ids[$i]}")
  done
}

run() {
  log "altan $*"
  exec altan "$@"
}

node_args=(--p2p-listen "/ip4/0.0.0.0/tcp/$p2p_port" --rpc-addr 0.0.0.0:9944
  --metrics-addr 0.0.0.0:9615)

command="${1:-}"
shift || true
case "$command" in
  genesis)
    genesis "$@"
    ;;
  validator)
    index="${1:?usage: altan-devnet validator <index> [altan run options]}"
    shift
    [[ "$index" =~ ^[0-9]+$ ]] || die "not a validator index: $index"
    wait_for_genesis
    source_dir="$chain/validator-$index"
    [ -d "$source_dir" ] || die "the genesis has no validator $index ($source_dir)"
    if [ ! -f "$marker" ]; then
      cp -a "$source_dir/." "$data_dir/"
      printf 'validator %s\n' "$index" >"$marker"
      log "copied validator $index's keys from the genesis into $data_dir"
    fi
    make_bootnodes "$index"
    run run --chain "$chain/spec.json" --data-dir "$data_dir" --validator-key validator \
      --keys-dir "$data_dir/keys" "${node_args[@]}" "${bootnodes[@]}" "$@"
    ;;
  rpc)
    wait_for_genesis
    make_bootnodes -1
    run run --chain "$chain/spec.json" --data-dir "$data_dir" "${node_args[@]}" \
      "${bootnodes[@]}" "$@"
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
