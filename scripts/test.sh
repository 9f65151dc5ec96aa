#!/usr/bin/env bash
# Runs every check and test of the workspace; installs what it needs on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh checkout gains nothing from incremental caches; they doubled the target folder's size.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

if ! cargo fmt --version >/dev/null 2>&1; then rustup component add rustfmt; fi
if ! cargo clippy --version >/dev/null 2>&1; then rustup component add clippy; fi
# Pinned npm tools: snarkjs verifies exported proofs; contracts (once they exist) use solc.
(cd tools/snarkjs && npm ci --no-audit --no-fund)
if [ -f contracts/package-lock.json ]; then (cd contracts && npm ci --no-audit --no-fund); fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
# Targets without unit tests say `test = false` (below); none may have gained some.
python3 scripts/check-test-false.py
echo "== cargo test, clippy as the compiler"
# Clippy runs as the compiler of the workspace's own crates while they build for the tests, so
# the dependencies compile once (a separate `cargo clippy` checks them all a second time).
# CLIPPY_ARGS is how `cargo clippy` hands its lint flags to clippy-driver.
RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-Dwarnings__CLIPPY_HACKERY__"
# The criterion benches: built (so linted), not run. `--bench '*'` rather than `--benches`,
# which would also build every library again as a test harness.
cargo test --workspace --bench '*' --no-run
# The default targets: libraries and binaries that have unit tests (`test = false` in the
# manifests of those that have none, so they compile once), integration tests, examples
# (built, not run) and doc tests.
cargo test --workspace
echo "== multi-host drills: tacit-node in network namespaces (skipped where not permitted)"
# The tests above built tacit-node; rebuilding it alone would compile half the workspace again.
./scripts/netns.sh --parties "3 5" --bidders 0 --bin "${CARGO_TARGET_DIR:-$PWD/target}/debug/tacit-node"
