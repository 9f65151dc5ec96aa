#!/usr/bin/env bash
# A PSI query on tacit-node daemons: 3 node processes and 3 institutions, each its own
# `tacit psi join` process with its own certificate, on loopback. Every institution has
# --items items, an eighth of them in every set. Prints each institution's JSON line (its
# output and wall time from its join to its output) and the nodes' job results (seconds,
# bytes sent per node).
#
# With --prove (cardinality, sum): keys made first with `tacit psi setup` and copied to every
# node's data folder before the nodes start; each node loads and checks them at start. Both
# are timed apart from the query.
#
#   scripts/psi-nodes.sh [--items 4096] [--mode set|cardinality|sum] [--committed | --prove] [--bin-dir target/release]
set -euo pipefail

ITEMS=4096
MODE=set
COMMITTED=false
PROVE=false
BIN_DIR=target/release
while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS=$2; shift 2 ;;
        --mode) MODE=$2; shift 2 ;;
        --committed) COMMITTED=true; shift ;;
        --prove) PROVE=true; shift ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
. "$(dirname "$0")/nodes-lib.sh"
TACIT="$(tacit_binary "$BIN_DIR")"

enter_work_dir tacit-psi-nodes

BASE=$((20000 + RANDOM % 30000))
"$TACIT" node init --dir . --parties 3 --threshold 1 --institutions 3 --base-port "$BASE" >/dev/null
if $PROVE; then
    # Keys in place before the nodes start: each loads and checks them at start.
    START=$(date +%s%N)
    "$TACIT" psi setup --institutions 3 --items "$ITEMS" --mode "$MODE" --out keys >/dev/null
    KEYS=$(echo keys/*)
    echo "keys ${KEYS#keys/}: made in $(( ($(date +%s%N) - START) / 1000000 )) ms"
    for i in 1 2 3; do mkdir -p "data-$i/psi-keys" && cp -r "$KEYS" "data-$i/psi-keys/"; done
fi
for i in 1 2 3; do
    "$TACIT" node --config "party-$i.toml" >"node-$i.log" 2>&1 &
    PIDS+=($!)
done
wait_for_nodes "$BASE"
if $PROVE; then
    # Wait until every node has loaded the keys (timed apart from the query).
    START=$(date +%s%N)
    until [ "$(grep -l "psi keys loaded" node-*.log 2>/dev/null | wc -l)" -eq 3 ]; do sleep 0.5; done
    echo "keys loaded and checked by the 3 nodes in $(( ($(date +%s%N) - START) / 1000000 )) ms (concurrently)"
fi

COMMON=$((ITEMS / 8))
COMMITMENTS=()
for k in 1 2 3; do
    awk -v n="$ITEMS" -v c="$COMMON" -v k="$k" \
        'BEGIN { for (i = 0; i < n; i++) { if (i < c) print "shared-" i "," (i % 100); else print "own-" k "-" i "," (i % 100) } }' \
        >"$k.csv"
    if $COMMITTED; then
        "$TACIT" psi commit --input "$k.csv" --out "$k.open.json" >/dev/null
        COMMITMENTS+=("$(sed -n 's/.*"commitment": "\([0-9a-f]*\)".*/\1/p' "$k.open.json")")
    fi
done
QUERY=(psi query --mode "$MODE" --out q.json --institution institution-1.cert.der institution-2.cert.der institution-3.cert.der)
if $COMMITTED; then QUERY+=(--commitment "${COMMITMENTS[@]}"); fi
if $PROVE; then QUERY+=(--keys "$KEYS"); fi
"$TACIT" "${QUERY[@]}" >/dev/null
JOB=$(sed -n 's/.*"job_id": "\([0-9a-f]*\)".*/\1/p' q.json)

JOINS=()
for k in 1 2 3; do
    ARGS=(psi join --json --client "institution-$k.toml" --query q.json --input "$k.csv")
    if $COMMITTED; then ARGS+=(--opening "$k.open.json"); fi
    if $PROVE; then ARGS+=(--keys "$KEYS"); fi
    "$TACIT" "${ARGS[@]}" >"out-$k.json" 2>"err-$k.log" &
    JOINS+=($!)
done
for pid in "${JOINS[@]}"; do wait "$pid"; done
for k in 1 2 3; do
    # A set-mode output lists the items: print its length instead.
    sed 's/"items":\[[^]]*\]/"items":"..."/; s/"proof":"\([0-9a-f]\{16\}\)[0-9a-f]*"/"proof":"\1..."/' "out-$k.json"
done
sleep 0.5
"$TACIT" node status --client client.toml --job-id "$JOB" |
    sed 's/.*"bytes_sent":\([0-9]*\).*"seconds":\([0-9.]*\).*/node job: seconds \2, bytes sent \1/'
