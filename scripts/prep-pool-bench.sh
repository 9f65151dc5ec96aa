#!/usr/bin/env bash
# auction.bench with and without a warm MPC preprocessing pool: 3 tacit-node processes on
# loopback, one cluster with the pool off and one with it on. Prints one JSON line per run
# (node 1's result: mpc_s, mpc_rounds, prove_s, the batches loaded, what was generated on
# demand). The pool cluster's first run of the shape is cold (it records the demand); the
# runs after it load batches.
#
# With --delay-ms D every dialled link goes through `tacit-node relay` adding D ms each way
# (RTT 2D), as in scripts/netns.sh.
#
#   scripts/prep-pool-bench.sh [--bidders 100] [--runs 2] [--delay-ms 0] [--one-round-sbox] [--bin target/debug/tacit-node]
set -euo pipefail

BIDDERS=100
RUNS=2
DELAY_MS=0
BIN=target/debug/tacit-node
# Batch composition: a 100-bidder auction.bench (validity, outcome and proof) uses about 253k
# double sharings, 2.6k random sharings and 43k bits: four batches.
BATCHES=8
SBOX=false
DOUBLES=65536
RANDOMS=4096
BITS=16384
while [ $# -gt 0 ]; do
    case "$1" in
        --bidders) BIDDERS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --delay-ms) DELAY_MS=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --one-round-sbox) SBOX=true; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

WORK=$(mktemp -d)
PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
}
trap 'stop; rm -rf "$WORK"' EXIT

cluster() { # label base_port batches
    local dir="$WORK/$1"
    "$BIN" init --dir "$dir" --parties 3 --threshold 1 --base-port "$2" --recv-timeout-ms 60000 >/dev/null
    if [ "$DELAY_MS" -gt 0 ]; then
        # Party i dials every j > i: route that link through a delaying relay.
        for i in 1 2; do
            for j in $(seq $((i + 1)) 3); do
                local rp=$(($2 + 50 + i * 3 + j)) mp=$(($2 + j - 1))
                "$BIN" relay --listen "127.0.0.1:$rp" --to "127.0.0.1:$mp" --delay-ms "$DELAY_MS" 2>>"$dir/relay.log" &
                PIDS+=($!)
                sed -i "s|addr = \"127.0.0.1:$mp\"|addr = \"127.0.0.1:$rp\"|" "$dir/party-$i.toml"
            done
        done
    fi
    for i in 1 2 3; do
        sed -i -e "s/^batches = 0$/batches = $3/" -e "s/^per_refill = .*/per_refill = 1/" \
            -e "s/^doubles = .*/doubles = $DOUBLES/" -e "s/^randoms = .*/randoms = $RANDOMS/" \
            -e "s/^bits = .*/bits = $BITS/" -e "s/^job_ms = .*/job_ms = 900000/" "$dir/party-$i.toml"
        "$BIN" --config "$dir/party-$i.toml" 2>"$dir/node-$i.log" &
        PIDS+=($!)
    done
}

level() { # base_port
    curl -s "http://127.0.0.1:$(($1 + 200))/metrics" | awk '/^tacit_node_pool_level\{pool="mpc_batches"/ {print $2}'
}

bench() { # label base_port runs
    local dir="$WORK/$1"
    for run in $(seq 1 "$3"); do
        if [ "$1" = pool ]; then
            # Let the background refill catch up before each run.
            for _ in $(seq 1 600); do
                [ "$(level "$2")" = "$BATCHES" ] && break
                sleep 1
            done
        fi
        "$BIN" submit --client "$dir/client.toml" --timeout-s 900 \
            --job "{\"auction_bench\":{\"bidders\":$BIDDERS,\"seed\":1,\"one_round_sbox\":$SBOX}}" |
            jq -c --arg c "$1" --arg r "$run" --arg d "$DELAY_MS" 'select(.node == 1) | .job.result | {cluster: $c,
                delay_ms: ($d|tonumber), run: ($r|tonumber), mpc_s, mpc_rounds,
                mpc_bytes_sent, prove_s, seconds, batches: (.prep_batches|length), prep_used, prep_generated}'
    done
}

# One cluster at a time: the machine's cores are shared by all three nodes.
cluster nopool 31100 0
sleep 2
bench nopool 31100 "$RUNS"
stop
cluster pool 31400 "$BATCHES"
sleep 2
bench pool 31400 $((RUNS + 1))
