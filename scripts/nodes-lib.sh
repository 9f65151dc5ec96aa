# Shared by the scripts that run tacit-node processes on loopback (psi-nodes.sh,
# auction-nodes.sh); sourced, not run.

# The tacit binary under $1 (absolute, or relative to the repository); exits if missing.
tacit_binary() {
    local root dir="$1"
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
    [ -x "$dir/tacit" ] || { echo "no $dir/tacit: cargo build --release -p tacit-cli" >&2; exit 1; }
    echo "$dir/tacit"
}

# Moves into a fresh temporary folder named after $1; on exit, kills the processes listed in
# PIDS and removes the folder.
PIDS=()
enter_work_dir() {
    WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
    trap 'for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done; rm -rf "$WORK"' EXIT
    cd "$WORK"
}

# Waits until the metrics endpoints of nodes 1..3 (base port $1 + 200) accept connections.
wait_for_nodes() {
    local i
    for i in 0 1 2; do
        until (exec 3<>"/dev/tcp/127.0.0.1/$(($1 + 200 + i))") 2>/dev/null; do sleep 0.1; done
    done
}
