//! Three `tacit-node` processes on loopback: jobs while a node is killed (SIGKILL) at random
//! points and restarted; the survivors' errors name it, a retry of the same job succeeds after
//! the restart, every store opens with its invariants intact (job records, audit chain, no
//! presignature or MPC preprocessing batch both burned and available), SIGTERM stops the nodes
//! gracefully, and no secret (store keys, TLS keys, key shares) appears in any log line (JSON
//! logs at debug level).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use tacit_node::api::{new_job_id, JobSpec};
use tacit_node::client::Client;
use tacit_node::config::NodeConfig;
use tacit_node::store::JobState;

/// How long a job may keep failing before the test gives up on its retries (generous: CI
/// machines are small and shared).
const RETRY: Duration = Duration::from_secs(120);

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tacit-node"))
        .arg("--config")
        .arg(config)
        .args(["--log-format", "json", "--log-level", "debug"])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap()
}

fn sigterm(child: &Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

fn tune(configs: &[PathBuf]) {
    // Fast failure detection for the test: 1 s keep-alive, 4 s idle timeout.
    for c in configs {
        let mut text = std::fs::read_to_string(c).unwrap();
        text = text
            .replace("keep_alive_ms = 2000", "keep_alive_ms = 1000")
            .replace("idle_timeout_ms = 10000", "idle_timeout_ms = 4000")
            // A small MPC preprocessing pool (one batch covers a 4-bidder auction.bench).
            .replace("batches = 0", "batches = 2")
            .replace("doubles = 65536", "doubles = 8192")
            .replace("randoms = 4096", "randoms = 1024")
            .replace("bits = 16384", "bits = 2048");
        std::fs::write(c, text).unwrap();
    }
}

#[test]
fn kill_restart_retry_consistent_stores_and_clean_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (configs, client_path) = common::setup(dir.path(), 3, 1, 0, 2_000);
    tune(&configs);
    let logs: Vec<PathBuf> = (1..=3).map(|i| dir.path().join(format!("node-{i}.log"))).collect();
    let mut procs: Vec<Child> = configs.iter().zip(&logs).map(|(c, l)| spawn(c, l)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client = Client::load(&client_path).unwrap();
    let mut rng = rand::thread_rng();
    let mut named = 0;

    rt.block_on(async {
        common::submit_until_done(&client, &new_job_id(), &JobSpec::SignerPolicy { policy: common::policy() }, RETRY)
            .await;
        let dkg = common::submit_until_done(&client, &new_job_id(), &JobSpec::SignerDkg, RETRY).await;
        let key_id = dkg[0].result.as_ref().unwrap()["key_id"].as_str().unwrap().to_string();
        common::submit_until_done(
            &client,
            &new_job_id(),
            &JobSpec::SignerPresign { count: 8, signers: vec![1, 2] },
            RETRY,
        )
        .await;

        // An auction's first run records its preprocessing demand; later runs load pool batches.
        let auction = JobSpec::AuctionBench { bidders: 4, seed: 3, one_round_sbox: false };
        common::submit_until_done(&client, &new_job_id(), &auction, RETRY).await;

        for round in 0..4u64 {
            // The signing (round 1) always loses a member of its signer set {P1, P2}.
            let victim = if round == 1 { 2 } else { rng.gen_range(2..=3usize) };
            let spec = match round {
                0 | 2 => JobSpec::SignerPresign { count: 16, signers: vec![1, 2] },
                1 => common::sign_spec(&key_id, round, vec![1, 2]),
                _ => auction.clone(),
            };
            let id = new_job_id();
            let job = {
                let (client, id, spec) = (&client, id.clone(), spec.clone());
                // A request in flight to the killed process is abandoned after 10 s.
                async move { client.submit(&id, &spec, Duration::from_secs(10)).await }
            };
            // A signing takes a few milliseconds: its kill comes early enough to hit it.
            let kill_after =
                Duration::from_millis(if round == 1 { rng.gen_range(0..30) } else { rng.gen_range(0..60) });
            let mut restarted = None;
            let (answers, ()) = tokio::join!(job, async {
                tokio::time::sleep(kill_after).await;
                procs[victim - 1].kill().unwrap();
                procs[victim - 1].wait().unwrap();
                // Back after a short outage, while the job may still be in flight.
                tokio::time::sleep(Duration::from_millis(300)).await;
                restarted = Some(spawn(&configs[victim - 1], &logs[victim - 1]));
            });
            procs[victim - 1] = restarted.unwrap();
            let victim_name = format!("P{victim}");
            for (p, a) in &answers {
                if let Ok(v) = a {
                    if v.state == JobState::Failed {
                        let e = v.error.clone().unwrap_or_default();
                        assert!(p.get() as usize != victim);
                        if e.contains(&victim_name) {
                            named += 1;
                        }
                    }
                }
            }
            let states: Vec<String> = answers
                .iter()
                .map(|(p, a)| match a {
                    Ok(v) => format!("{p}: {:?} {}", v.state, v.error.clone().unwrap_or_default()),
                    Err(e) => format!("{p}: {e}"),
                })
                .collect();
            eprintln!("round {round}: killed {victim_name} after {kill_after:?}: {states:?}");
            let t0 = Instant::now();
            // The same job id, retried, succeeds once the node is back; when the others had
            // finished it before the kill, the victim says it lost its copy instead of waiting.
            let finished_before = answers
                .iter()
                .all(|(p, a)| p.get() as usize == victim || a.as_ref().is_ok_and(|v| v.state == JobState::Done));
            let lost = finished_before.then(|| tacit_mpc_engine::PartyId::new(victim as u16).unwrap());
            common::submit_until_settled(&client, &id, &spec, RETRY, lost).await;
            eprintln!("round {round}: retry done after {:?}", t0.elapsed());
        }
        // One more signature after all the restarts.
        common::submit_until_done(&client, &new_job_id(), &common::sign_spec(&key_id, 99, vec![1, 2]), RETRY).await;
        // And an auction once the proposer holds a pool batch again: it loads one.
        let metrics = NodeConfig::load(&configs[0]).unwrap().file.metrics_listen.unwrap();
        let start = Instant::now();
        loop {
            let text = tacit_node::metrics::scrape(metrics).await.unwrap_or_default();
            let level = text
                .lines()
                .find_map(|l| l.strip_prefix("tacit_node_pool_level{pool=\"mpc_batches\",signers=\"all\"} "))
                .and_then(|v| v.parse::<u64>().ok());
            if level.is_some_and(|l| l >= 1) {
                break;
            }
            assert!(start.elapsed() < RETRY, "the pool did not refill: {level:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        common::submit_until_done(&client, &new_job_id(), &auction, RETRY).await;
    });

    for p in &procs {
        sigterm(p);
    }
    for p in &mut procs {
        let start = Instant::now();
        loop {
            if let Some(status) = p.try_wait().unwrap() {
                assert!(status.success(), "graceful stop failed: {status}");
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Every store opens and its invariants hold.
    let mut secrets: Vec<String> = Vec::new();
    let mut held: Vec<std::collections::BTreeSet<[u8; 32]>> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let cfg = NodeConfig::load(c).unwrap();
        let report = tacit_node::cli::check_stores(&cfg).unwrap();
        assert_eq!(report["running"], 0, "{report}");
        assert_eq!(report["queued"], 0, "{report}");
        if i == 0 {
            // The proposer burned the batches its auctions loaded.
            assert!(report["prep_batches_burned"].as_u64().unwrap() >= 1, "{report}");
        }
        secrets.push(std::fs::read_to_string(dir.path().join(format!("party-{}.store.key", i + 1))).unwrap());
        secrets.push(hex::encode(std::fs::read(dir.path().join(format!("party-{}.key.der", i + 1))).unwrap()));
        let signer = tacit_node::cli::open_stores(&cfg).unwrap().1;
        // The presignatures this node could propose (confirmed) or sign with (any unused).
        let set = [tacit_mpc_engine::PartyId::new(1).unwrap(), tacit_mpc_engine::PartyId::new(2).unwrap()];
        held.push(if i == 0 {
            signer.presigs_for(&set).unwrap().into_iter().collect()
        } else {
            signer.presig_ids().unwrap().into_iter().collect()
        });
        let share = signer.key_share().unwrap();
        let be = tacit_signer::curve::scalar_to_be(&share.expose_share());
        secrets.push(hex::encode(be));
        let mut le = be;
        le.reverse();
        secrets.push(hex::encode(le));
    }
    // The proposer puts forward only presignatures the other member of {P1, P2} holds too.
    let lacking = held[0].difference(&held[1]).count();
    assert_eq!(lacking, 0, "P1 could propose {lacking} presignatures P2 lacks");
    secrets.push(hex::encode(std::fs::read(dir.path().join("client.key.der")).unwrap()));
    let mut lines = 0;
    for l in &logs {
        let text = std::fs::read_to_string(l).unwrap();
        for line in text.lines() {
            lines += 1;
            let lower = line.to_lowercase();
            for s in &secrets {
                // Any 32-hex-digit window of a secret.
                for w in s.as_bytes().windows(32).step_by(16) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!lower.contains(w), "secret material in a log line: {line}");
                }
            }
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "not JSON: {line}");
        }
    }
    assert!(lines > 20, "too few log lines ({lines})");
    assert!(named >= 1, "no survivor named the killed node");
}
