//! Three nodes in one process keep a pool of MPC preprocessing batches: the pool fills in the
//! background and shows in `/metrics`; an auction.bench job's first run measures its demand,
//! the next loads pool batches (burned at every node first) and gives the right outcome; after
//! a restart no burned batch is stored, named or handed out again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tacit_node::api::{JobSpec, JobView};
use tacit_node::client::Client;
use tacit_node::config::{MpcPool, NodeConfig};
use tacit_node::daemon::NodeHandle;
use tacit_node::store::PREP_POOL;

const T: Duration = Duration::from_secs(120);
const BIDDERS: usize = 4;
const SEED: u64 = 7;
// A 4-bidder auction.bench (validity, outcome and proof) uses about 7,200 double sharings,
// 160 random sharings and 1,500 bits: one batch covers it.
const POOL: MpcPool = MpcPool { batches: 3, low_water: 1, per_refill: 3, doubles: 16_384, randoms: 4_096, bits: 4_096 };

/// The node's config with the pool on.
fn config(path: &Path) -> NodeConfig {
    let mut cfg = NodeConfig::load(path).unwrap();
    cfg.file.pools.mpc = POOL;
    NodeConfig::from_file(cfg.file, &cfg.base).unwrap()
}

async fn start_all(configs: &[PathBuf]) -> Vec<NodeHandle> {
    let mut nodes = Vec::new();
    for c in configs {
        nodes.push(tacit_node::daemon::start(config(c)).await.unwrap());
    }
    nodes
}

async fn run_auction(client: &Client) -> Vec<JobView> {
    let spec = JobSpec::AuctionBench { bidders: BIDDERS, seed: SEED, one_round_sbox: false };
    common::submit_done(client, &spec, T).await
}

/// The Vickrey outcome of the bids the nodes derive from the seed (same derivation as the
/// node's auction.bench): the highest bidder wins and pays the second-highest bid.
fn expected_outcome() -> (usize, u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(SEED ^ 0x5eed_b1d5);
    let mut bids = Vec::new();
    for _ in 0..BIDDERS {
        let bid = rng.gen_range(1..1_000_000u64);
        let secret = tacit_auction::bidder::BidSecret::new(bid, &mut rng);
        tacit_auction::bidder::deal(&secret.dealt_values(), 3, 1, &mut rng).unwrap();
        bids.push(bid);
    }
    let winner = (0..BIDDERS).max_by_key(|i| bids[*i]).unwrap();
    let mut sorted = bids.clone();
    sorted.sort_unstable();
    (winner, sorted[BIDDERS - 2])
}

fn outcome(v: &JobView) -> (usize, u64) {
    let r = v.result.as_ref().unwrap();
    (r["winners"][0].as_u64().unwrap() as usize, r["price"].as_u64().unwrap())
}

fn batch_ids(v: &JobView) -> Vec<String> {
    v.result.as_ref().unwrap()["prep_batches"].as_array().unwrap().iter().map(|b| b.as_str().unwrap().into()).collect()
}

async fn wait_for_full_stores(nodes: &[NodeHandle]) {
    let deadline = tokio::time::Instant::now() + T;
    for n in nodes {
        while tacit_node::prep::level(&n.shared.store).unwrap() < POOL.batches {
            assert!(tokio::time::Instant::now() < deadline, "pool did not fill");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `/metrics` at every node reports the pool level its store holds, and the target.
async fn metrics_report_levels(nodes: &[NodeHandle]) {
    for n in nodes {
        let level = tacit_node::prep::level(&n.shared.store).unwrap();
        let text = tacit_node::metrics::scrape(n.metrics_addr.unwrap()).await.unwrap();
        for needle in [
            format!("tacit_node_pool_level{{pool=\"mpc_batches\",signers=\"all\"}} {level}"),
            format!("tacit_node_pool_target{{pool=\"mpc_batches\",signers=\"all\"}} {}", POOL.batches),
        ] {
            assert!(text.contains(&needle), "missing {needle} in\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auction_uses_pool_batches_once_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (configs, client_path) = common::setup(dir.path(), 3, 1, 0, 30_000);
    let client = Client::load(&client_path).unwrap();
    let mut nodes = start_all(&configs).await;
    wait_for_full_stores(&nodes).await;
    metrics_report_levels(&nodes).await;
    let want = expected_outcome();

    // First run of the shape: no recorded demand, so no batch; it records what it used.
    let cold = run_auction(&client).await;
    for v in &cold {
        assert_eq!(outcome(v), want);
        assert!(batch_ids(v).is_empty());
    }

    // Second run: the proposer names pool batches, every node burns and loads them.
    let warm = run_auction(&client).await;
    let used = batch_ids(&warm[0]);
    assert!(!used.is_empty());
    for v in &warm {
        assert_eq!(outcome(v), want);
        assert_eq!(batch_ids(v), used);
        assert!(v.result.as_ref().unwrap()["prep_loaded"]["doubles"].as_u64().unwrap() > 0);
    }
    for n in &nodes {
        for id in &used {
            assert!(n.shared.store.single_use_burned(PREP_POOL, &hex::decode(id).unwrap()).unwrap());
        }
    }

    metrics_report_levels(&nodes).await;

    // Restart: the burned batches stay burned, cannot be taken or stored again, and the next
    // job uses other batches.
    for n in nodes.drain(..) {
        n.shutdown().await;
    }
    nodes = start_all(&configs).await;
    for n in &nodes {
        let store = &n.shared.store;
        let err = tacit_node::prep::take_for_job(store, &used, &[9; 16]).unwrap_err().to_string();
        assert!(err.contains("already used"), "{err}");
        let again = vec![(hex::decode(&used[0]).unwrap(), zeroize::Zeroizing::new(vec![1u8; 8]))];
        assert!(store.put_single_use(PREP_POOL, &again).is_err());
        let held = store.single_use_ids(PREP_POOL).unwrap();
        assert!(used.iter().all(|u| !held.contains(&hex::decode(u).unwrap())));
    }
    metrics_report_levels(&nodes).await;
    let after = run_auction(&client).await;
    let fresh = batch_ids(&after[0]);
    assert!(!fresh.is_empty());
    assert!(fresh.iter().all(|f| !used.contains(f)), "{fresh:?} reuses {used:?}");
    for v in &after {
        assert_eq!(outcome(v), want);
    }
    for n in nodes.drain(..) {
        n.shutdown().await;
    }
    for c in &configs {
        let report = tacit_node::cli::check_stores(&config(c)).unwrap();
        assert_eq!(report["running"], 0, "{report}");
        assert!(report["prep_batches_burned"].as_u64().unwrap() >= 2, "{report}");
    }
}
