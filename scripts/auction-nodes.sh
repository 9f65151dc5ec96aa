#!/usr/bin/env bash
# A sealed-bid auction hosted by tacit-node daemons: 3 node processes following the auction's
# chain journal, `tacit auction create --nodes`, `host`, one `tacit auction bid` process per
# bidder (commitment on chain, packets to the nodes' bid endpoints), `close`, `settle
# --client`. Prints the bidding wall time and the settlement's JSON line (MPC and proof
# seconds at node 1, settlement gas).
#
#   scripts/auction-nodes.sh [--bidders 100] [--kind vickrey] [--bin-dir target/release]
set -euo pipefail

BIDDERS=100
KIND=vickrey
BIN_DIR=target/release
while [ $# -gt 0 ]; do
    case "$1" in
        --bidders) BIDDERS=$2; shift 2 ;;
        --kind) KIND=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/nodes-lib.sh"
TACIT="$(tacit_binary "$BIN_DIR")"

enter_work_dir tacit-auction-nodes

BASE=$((20000 + RANDOM % 30000))
"$TACIT" node init --dir nodes --parties 3 --threshold 1 --base-port "$BASE" --chain auction/chain.jsonl >/dev/null
"$TACIT" auction create --dir auction --kind "$KIND" --capacity "$BIDDERS" --nodes nodes/client.toml
HASH=$(sed -n 's/.*"proving_key": "\([0-9a-f]*\)".*/\1/p' auction/auction.json)
for i in 1 2 3; do
    mkdir -p "nodes/data-$i/auction-keys"
    cp auction/proving_key.bin "nodes/data-$i/auction-keys/$HASH.pk"
    "$TACIT" node --config "nodes/party-$i.toml" >"node-$i.log" 2>&1 &
    PIDS+=($!)
done
wait_for_nodes "$BASE"
"$TACIT" auction host --dir auction --client nodes/client.toml
START=$(date +%s%N)
for _ in $(seq "$BIDDERS"); do
    "$TACIT" auction bid --dir auction --amount $((1 + RANDOM * 32768 + RANDOM)) >/dev/null
done
echo "bidding: $BIDDERS bidders in $((($(date +%s%N) - START) / 1000000)) ms (one process each)"
"$TACIT" auction close --dir auction >/dev/null
"$TACIT" auction settle --dir auction --client nodes/client.toml --json
