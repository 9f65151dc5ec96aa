#!/usr/bin/env bash
# Multi-host drills for tacit-node in Linux network namespaces.
#
# Each node runs in its own network namespace, linked by a veth pair to a bridge in a hub
# namespace (where the client runs); tc netem on each node's veth adds DELAY_MS one way (so
# 2*DELAY_MS round trip between nodes) and optional loss. Runs, for 3 and then 5 nodes:
#   1. figures: DKG, a presignature batch and signatures with a presignature in hand, first
#      without netem ("loopback": the same veth path, no added delay), then with it;
#   2. kill drill: a node killed mid-session; the others abort within the timeout with an
#      error naming it; the same job retried after its restart succeeds;
#   3. partition drill: a node cut off (its link down), the job fails naming it; healed, the
#      retry succeeds;
#   4. reshare drill (3 nodes): a signer replaced (data wiped, same identity), the key
#      reshared to it with the same address, then a signature by a set including it.
# Needs root and ip; exits 0 with a message where network namespaces are not permitted. Where
# the kernel has no netem qdisc (tc reports "unknown qdisc"), the delay and loss are added by
# `tacit-node relay`, a userspace UDP relay in the hub namespace on every dialling peer's path
# (each way: the same round trip), and the script says so. Namespaces, processes and files
# are removed on exit.
#
# Usage: scripts/netns.sh [--parties "3 5"] [--delay-ms 10] [--loss 0] [--signs 5]
#                         [--bidders 100] [--bin PATH] [--keep-logs DIR]
# (--bidders 0 skips the auction figure: a benchmark auction whose bids every node derives from
# a public seed, i.e. the real protocol and proof over the mesh, with no privacy.)
# Environment: CARGO_TARGET_DIR (where the tacit-node binary is built; dev profile).
set -euo pipefail

PARTIES="3 5"
DELAY_MS=10
LOSS=0
SIGNS=5
BIDDERS=100
BIN=""
KEEP_LOGS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --parties) PARTIES="$2"; shift 2 ;;
    --delay-ms) DELAY_MS="$2"; shift 2 ;;
    --loss) LOSS="$2"; shift 2 ;;
    --signs) SIGNS="$2"; shift 2 ;;
    --bidders) BIDDERS="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --keep-logs) KEEP_LOGS="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "netns.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

skip() { echo "netns.sh: skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root"
command -v ip >/dev/null || skip "no ip command"
P="tn$$"
ip netns add "${P}probe" 2>/dev/null || skip "network namespaces are not permitted here"
if ! ip netns exec "${P}probe" ip link set lo up 2>/dev/null; then
  ip netns del "${P}probe" 2>/dev/null || true
  skip "cannot enter a network namespace"
fi
ip link add "${P}a" type veth peer name "${P}b" 2>/dev/null || { ip netns del "${P}probe"; skip "cannot create veth pairs"; }
ip link set "${P}a" netns "${P}probe"
DELAY_MODE=netem
if ! command -v tc >/dev/null || ! ip netns exec "${P}probe" tc qdisc add dev "${P}a" root netem delay 1ms 2>/dev/null; then
  DELAY_MODE=relay
fi
ip netns del "${P}probe"
ip link del "${P}b" 2>/dev/null || true

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build -q -p tacit-node)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tacit-node"
fi
[ -x "$BIN" ] || { echo "netns.sh: no binary at $BIN" >&2; exit 1; }

WORK="$(mktemp -d /tmp/tacit-netns.XXXXXX)"
declare -A PIDS=()
RELAYS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]:-}" "${RELAYS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${P}" ); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if [ -n "$KEEP_LOGS" ]; then mkdir -p "$KEEP_LOGS"; cp -r "$WORK"/. "$KEEP_LOGS"/ 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

HUB="${P}hub"
ns() { echo "${P}n$1"; }
hubx() { ip netns exec "$HUB" "$@"; }

net_up() { # n
  local n=$1
  ip netns add "$HUB"
  hubx ip link set lo up
  hubx ip link add br0 type bridge
  hubx ip addr add 10.77.0.254/24 dev br0
  hubx ip link set br0 up
  for i in $(seq 1 "$n"); do
    ip netns add "$(ns "$i")"
    ip link add "${P}v$i" type veth peer name "${P}h$i"
    ip link set "${P}v$i" netns "$(ns "$i")"
    ip link set "${P}h$i" netns "$HUB"
    hubx ip link set "${P}h$i" master br0
    hubx ip link set "${P}h$i" up
    ip netns exec "$(ns "$i")" ip link set lo up
    ip netns exec "$(ns "$i")" ip addr add "10.77.0.$i/24" dev "${P}v$i"
    ip netns exec "$(ns "$i")" ip link set "${P}v$i" up
  done
}

net_down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${P}"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  PIDS=()
  # Reaped here, so the shell does not report each relay as "Killed".
  for pid in "${RELAYS[@]:-}"; do if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; done
  RELAYS=()
  return 0
}

netem() { # n delay_ms loss
  local n=$1 d=$2 loss=$3
  for i in $(seq 1 "$n"); do
    if [ "$d" = 0 ] && [ "$loss" = 0 ]; then
      ip netns exec "$(ns "$i")" tc qdisc del dev "${P}v$i" root 2>/dev/null || true
    else
      ip netns exec "$(ns "$i")" tc qdisc replace dev "${P}v$i" root netem delay "${d}ms" loss "${loss}%"
    fi
  done
}

start_node() { # i
  local i=$1
  ip netns exec "$(ns "$i")" "$BIN" --config "$DIR/party-$i.toml" --log-format json \
    >>"$DIR/node-$i.log" 2>&1 &
  PIDS[$i]=$!
}

stop_node() { # i (SIGTERM, wait)
  local i=$1 pid=${PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PIDS[$i]=""
}

kill_node() { # i (SIGKILL)
  local i=$1 pid=${PIDS[$1]:-}
  [ -n "$pid" ] || return 0
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  PIDS[$i]=""
}

client() { hubx "$BIN" "$@"; }
SUBMIT_TIMEOUT=60
submit() { # job json [job id]
  if [ $# -ge 2 ]; then client submit --client "$DIR/client.toml" --job "$1" --job-id "$2" --timeout-s "$SUBMIT_TIMEOUT"
  else client submit --client "$DIR/client.toml" --job "$1" --timeout-s "$SUBMIT_TIMEOUT"; fi
}
wait_failed_at_p1() { # job id: seconds until P1 reports the job failed (or done)
  local id=$1 t0; t0=$(date +%s.%N)
  for _ in $(seq 1 300); do
    if client status --client "$DIR/client.toml" --job-id "$id" --node 1 2>/dev/null | grep -q '"state":"\(failed\|done\)"'; then
      printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc -l)"; return 0
    fi
    sleep 0.2
  done
  echo "never"
}
jobid() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

figures() { # n t label
  local n=$1 t=$2 label=$3 set
  set=$(seq -s, 1 $((t + 1)))
  local out="$DIR/fig-$label.jsonl"
  local s0 s1
  s0=$(date +%s.%N)
  submit "{\"signer_presign\":{\"count\":$((SIGNS + 2)),\"signers\":[${set}]}}" > "$out.presign"
  s1=$(date +%s.%N)
  client drill --client "$DIR/client.toml" sign --count "$SIGNS" --signers "$set" > "$out"
  local wall node msgs
  wall=$(grep -o '"wall_s":[0-9.e-]*' "$out" | cut -d: -f2 | median)
  node=$(grep -o '"seconds":[0-9.e-]*' "$out" | cut -d: -f2 | median)
  msgs=$(grep -o '"messages_sent":[0-9]*' "$out" | head -1 | cut -d: -f2)
  local pwall psec pmsg
  pwall=$(echo "$s1 - $s0" | bc -l)
  psec=$(grep -o '"seconds":[0-9.e-]*' "$out.presign" | head -1 | cut -d: -f2)
  pmsg=$(grep -o '"messages_sent":[0-9]*' "$out.presign" | head -1 | cut -d: -f2)
  printf '  %-22s sign (presignature in hand): client wall p50 %.1f ms, node protocol p50 %.1f ms, %s messages per signer (%s rounds)\n' \
    "$label" "$(echo "$wall*1000" | bc -l)" "$(echo "$node*1000" | bc -l)" "$msgs" "$((msgs / t))"
  printf '  %-22s presign batch of %s: node protocol %.1f ms, client wall %.1f ms, %s messages per node\n' \
    "$label" "$((SIGNS + 2))" "$(echo "$psec*1000" | bc -l)" "$(echo "$pwall*1000" | bc -l)" "$pmsg"
  if [ "$BIDDERS" -gt 0 ] && [ "$n" = 3 ]; then
    # The first run at a shape makes the (seeded) setup; the figure is the second run.
    SUBMIT_TIMEOUT=600 submit "{\"auction_bench\":{\"bidders\":$BIDDERS,\"seed\":1}}" > "$out.auction0" || true
    s0=$(date +%s.%N)
    if ! SUBMIT_TIMEOUT=600 submit "{\"auction_bench\":{\"bidders\":$BIDDERS,\"seed\":1}}" > "$out.auction"; then
      echo "  $label auction FAILED:"; cut -c1-300 "$out.auction"; return 0
    fi
    s1=$(date +%s.%N)
    local mpc rounds prove
    mpc=$(grep -o '"mpc_s":[0-9.e-]*' "$out.auction" | cut -d: -f2 | sort -g | tail -1)
    rounds=$(grep -o '"mpc_rounds":[0-9]*' "$out.auction" | head -1 | cut -d: -f2)
    prove=$(grep -o '"prove_s":[0-9.e-]*' "$out.auction" | cut -d: -f2 | sort -g | tail -1)
    printf '  %-22s auction, %s bidders (Vickrey): MPC %.2f s in %s rounds, collaborative proof %.2f s, client wall %.2f s\n' \
      "$label" "$BIDDERS" "$mpc" "$rounds" "$prove" "$(echo "$s1 - $s0" | bc -l)"
  fi
}

relays_on() { # n: stop the nodes, route every dialled peer through a delaying relay, restart
  local n=$1
  for i in $(seq 1 "$n"); do stop_node "$i"; done
  for i in $(seq 1 "$n"); do
    for j in $(seq $((i + 1)) "$n"); do
      local rp=$((9000 + i * 20 + j)) mp=$((7100 + j - 1))
      hubx "$BIN" relay --listen "10.77.0.254:$rp" --to "10.77.0.$j:$mp" --delay-ms "$DELAY_MS" --loss "$LOSS" \
        >>"$DIR/relay.log" 2>&1 &
      RELAYS+=($!)
      sed -i "s|addr = \"10.77.0.$j:$mp\"|addr = \"10.77.0.254:$rp\"|" "$DIR/party-$i.toml"
    done
  done
  for i in $(seq 1 "$n"); do start_node "$i"; done
}

expect_failure_naming() { # file party
  if grep -q "\"state\":\"failed\"" "$1" && grep -q "P$2" "$1"; then
    echo "    ok: the others failed the job naming P$2: $(grep -o 'P'"$2"'[^"]*' "$1" | head -1 | cut -c1-120)"
  else
    echo "    FAILED: expected an error naming P$2:"; cat "$1"; return 1
  fi
}

run_cluster() { # n
  local n=$1 t=$(( ($1 - 1) / 2 ))
  DIR="$WORK/c$n"
  local hosts
  hosts=$(for i in $(seq 1 "$n"); do printf '10.77.0.%s,' "$i"; done | sed 's/,$//')
  "$BIN" init --dir "$DIR" --parties "$n" --threshold "$t" --base-port 7100 --hosts "$hosts" --recv-timeout-ms 5000 >/dev/null
  # The client reaches the nodes from the hub.
  net_up "$n"
  for i in $(seq 1 "$n"); do start_node "$i"; done
  echo "== $n nodes (t = $t), 10.77.0.1..$n, client in the hub namespace"
  local t0=$(date +%s)
  client drill --client "$DIR/client.toml" policy >/dev/null
  submit '"signer_dkg"' > "$DIR/dkg.jsonl"
  local addr
  addr=$(grep -o '"address":"0x[0-9a-f]*"' "$DIR/dkg.jsonl" | head -1)
  echo "  DKG done: $addr"

  figures "$n" "$t" "no-delay"
  if [ "$DELAY_MODE" = netem ]; then
    netem "$n" "$DELAY_MS" "$LOSS"
  else
    relays_on "$n"
  fi
  figures "$n" "$t" "rtt-$((2 * DELAY_MS))ms-loss-${LOSS}%"

  # Kill drill: a big presignature batch in flight, the last node killed.
  echo "  kill drill: P$n killed mid-session"
  local id; id=$(jobid)
  local set; set=$(seq -s, 1 $((t + 1)))
  local job="{\"signer_presign\":{\"count\":1024,\"signers\":[${set}]}}"
  # A request in flight to the killed process is abandoned after 20 s by the client.
  ( SUBMIT_TIMEOUT=20 submit "$job" "$id" > "$DIR/kill.jsonl" 2>&1 || true ) &
  local sub=$!
  sleep 0.4
  local killed_at; killed_at=$(date +%s.%N)
  kill_node "$n"
  echo "    P1 recorded the outcome $(wait_failed_at_p1 "$id") s after the kill (receive timeout 5 s)"
  wait "$sub" || true
  expect_failure_naming "$DIR/kill.jsonl" "$n" || true
  start_node "$n"
  local ok=0
  for _ in $(seq 1 20); do
    if submit "$job" "$id" > "$DIR/kill-retry.jsonl" 2>&1; then ok=1; break; fi
    sleep 1
  done
  [ $ok = 1 ] && echo "    ok: the same job retried after the restart succeeded" || { echo "    FAILED: retry"; cat "$DIR/kill-retry.jsonl"; }

  # Partition drill: P2 cut off, then healed.
  echo "  partition drill: P2's link down, then up"
  hubx ip link set "${P}h2" down
  id=$(jobid)
  job="{\"signer_presign\":{\"count\":4,\"signers\":[${set}]}}"
  ( SUBMIT_TIMEOUT=30 submit "$job" "$id" > "$DIR/part.jsonl" 2>&1 || true ) &
  sub=$!
  sleep 0.3
  echo "    P1 failed the job $(wait_failed_at_p1 "$id") s after submission (connect timeout 10 s)"
  wait "$sub" || true
  expect_failure_naming "$DIR/part.jsonl" 2 || true
  hubx ip link set "${P}h2" up
  ok=0
  for _ in $(seq 1 30); do
    if submit "$job" "$id" > "$DIR/part-retry.jsonl" 2>&1; then ok=1; break; fi
    sleep 1
  done
  [ $ok = 1 ] && echo "    ok: after healing, the retry succeeded" || { echo "    FAILED: retry after healing"; cat "$DIR/part-retry.jsonl"; }

  if [ "$n" = 3 ]; then
    # Reshare drill: P3 replaced (store wiped, same identity and address), key reshared to it.
    echo "  reshare drill: P3 replaced"
    stop_node 3
    rm -rf "$DIR/data-3"
    start_node 3
    submit '{"signer_reshare":{"replaced":3}}' > "$DIR/reshare.jsonl"
    local addr2
    addr2=$(grep -o '"address":"0x[0-9a-f]*"' "$DIR/reshare.jsonl" | sort -u)
    if [ "$addr2" = "$addr" ]; then echo "    ok: reshared, same $addr"; else echo "    FAILED: address $addr2 vs $addr"; fi
    client drill --client "$DIR/client.toml" policy >/dev/null 2>&1 || true # the new node's policy
    submit '{"signer_presign":{"count":2,"signers":[1,3]}}' >/dev/null
    if client drill --client "$DIR/client.toml" sign --count 1 --signers 1,3 > "$DIR/sign13.jsonl"; then
      echo "    ok: signed by {P1, P3} with the new share"
    else
      echo "    FAILED: signing with the new share"; cat "$DIR/sign13.jsonl"
    fi
  fi

  for i in $(seq 1 "$n"); do stop_node "$i"; done
  for i in $(seq 1 "$n"); do
    "$BIN" check --config "$DIR/party-$i.toml" >/dev/null || echo "    FAILED: store check of P$i"
  done
  echo "  stores checked; $n-node run took $(( $(date +%s) - t0 )) s"
  net_down
}

echo "tacit-node netns drills: ${DELAY_MS} ms one way (RTT $((2 * DELAY_MS)) ms), loss ${LOSS}%, delay by $DELAY_MODE, binary $BIN"
START=$(date +%s)
for n in $PARTIES; do run_cluster "$n"; done
echo "netns.sh: done in $(( $(date +%s) - START )) s"
