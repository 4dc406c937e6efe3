#!/usr/bin/env bash
# Makes the homes of the four compose validators (./homes/acta0..acta3) and one genesis
# for them, and writes .env for compose.yaml. Runs actad from the image ACTA_IMAGE
# (default acta:local), or the local binary ACTAD if set:
#   ./init.sh
#   ACTAD=../../target/release/actad ./init.sh
# Settings (environment): ACTA_IMAGE, ACTAD, ACTA_CHAIN_ID (default acta-compose),
# ACTA_NET (the network's first three octets, default 172.28.0: node I is ACTA_NET.1I).
set -euo pipefail
cd "$(dirname "$0")"

image=${ACTA_IMAGE:-acta:local}
chain_id=${ACTA_CHAIN_ID:-acta-compose}
net=${ACTA_NET:-172.28.0}
nodes=(acta0 acta1 acta2 acta3)

if [ -e homes ]; then
  echo "init.sh: ./homes exists; to start a new chain: docker compose down, then rm -rf homes .env" >&2
  exit 1
fi

# The containers run as the owner of ./homes, never as root.
uid=$(id -u)
gid=$(id -g)
if [ "$uid" -eq 0 ]; then
  uid=10001
  gid=10001
fi

mkdir -p homes
for n in "${nodes[@]}"; do
  mkdir -p "homes/$n"
done

# actad ARGS: runs actad, which sees ./homes as $h.
if [ -n "${ACTAD:-}" ]; then
  h=$PWD/homes
  actad() { "$ACTAD" "$@"; }
else
  h=/homes
  actad() { docker run --rm --user "$uid:$gid" -v "$PWD/homes:/homes" "$image" "$@"; }
  # A root-owned ./homes would not be writable by the container's user.
  [ "$(id -u)" -ne 0 ] || chown -R "$uid:$gid" homes
fi

for n in "${nodes[@]}"; do
  # Inside the compose network both ports listen on every address; compose publishes
  # only the API, and only on 127.0.0.1.
  actad init --home "$h/$n" --moniker "$n" \
    --p2p-listen /ip4/0.0.0.0/tcp/26656 --rpc-listen 0.0.0.0:26657
  actad show-node --home "$h/$n" > "homes/$n.json"
done

# The council: a real network names the agencies' council keys (acta keys new). Here the
# first validator's consensus key stands in, so that the genesis is complete.
council=$(sed -n 's/.*"consensus_key": *"\([0-9a-f]*\)".*/\1/p' homes/acta0.json)
if [ -z "$council" ]; then
  echo "init.sh: no consensus_key in homes/acta0.json" >&2
  exit 1
fi

actad genesis new --chain-id "$chain_id" --council "$council" --threshold 1 --out "$h/genesis.json"
for i in "${!nodes[@]}"; do
  n=${nodes[$i]}
  # The fixed address compose.yaml gives the service.
  actad genesis add-validator "$h/genesis.json" --node "$h/$n.json" \
    --address "/ip4/$net.1$i/tcp/26656" --power 10
done
for n in "${nodes[@]}"; do
  cp homes/genesis.json "homes/$n/genesis.json"
done
actad genesis validate "$h/acta0/genesis.json"

if [ -n "${ACTAD:-}" ] && [ "$(id -u)" -eq 0 ]; then
  chown -R "$uid:$gid" homes
fi

cat > .env <<ENV
ACTA_IMAGE=$image
ACTA_UID=$uid
ACTA_GID=$gid
ACTA_NET=$net
ENV

echo "init.sh: homes ready; start them with: docker compose up -d"
