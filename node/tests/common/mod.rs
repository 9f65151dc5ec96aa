#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use tacit_node::api::{new_job_id, JobSpec, JobView};
use tacit_node::client::Client;
use tacit_node::config::Timeouts;
use tacit_node::init::InitOptions;
use tacit_node::store::JobState;

fn free(port: u16) -> bool {
    let a = (Ipv4Addr::LOCALHOST, port);
    UdpSocket::bind(a).is_ok() && TcpListener::bind(a).is_ok()
}

/// A base port whose mesh, API and metrics ports are free for `n` parties.
pub fn base_port(n: usize) -> u16 {
    loop {
        let base: u16 = 20_000 + (rand::random::<u16>() % 30_000);
        if (0..n as u16).all(|i| [0u16, 100, 200, 300].iter().all(|off| free(base + off + i))) {
            return base;
        }
    }
}

pub fn setup(dir: &Path, n: usize, t: usize, pool: usize, recv_ms: u64) -> (Vec<PathBuf>, PathBuf) {
    setup_with(dir, n, t, pool, recv_ms, 0, None)
}

/// As [`setup`], with `institutions` PSI institution client files (`institution-<k>.toml`),
/// and the nodes following the chain journal `chain` (with bid endpoints) where given.
pub fn setup_with(
    dir: &Path,
    n: usize,
    t: usize,
    pool: usize,
    recv_ms: u64,
    institutions: usize,
    chain: Option<PathBuf>,
) -> (Vec<PathBuf>, PathBuf) {
    let timeouts = Timeouts { recv_ms, connect_ms: 5_000, job_ms: 20_000, proposal_wait_ms: 2_000, shutdown_ms: 5_000 };
    tacit_node::init::init(
        dir,
        &InitOptions {
            parties: n,
            threshold: t,
            base_port: base_port(n),
            hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            pool,
            timeouts,
            institutions,
            chain,
        },
    )
    .unwrap()
}

/// The drills' policy: the demo approver, chain 1, the demo destination.
pub fn policy() -> tacit_signer::policy::Policy {
    tacit_node::drill::demo_policy().unwrap()
}

/// A signing job for `key_id` (hex) with one approval.
pub fn sign_spec(key_id_hex: &str, nonce: u64, signers: Vec<u16>) -> JobSpec {
    let mut key_id = [0u8; 16];
    hex::decode_to_slice(key_id_hex, &mut key_id).unwrap();
    tacit_node::drill::demo_sign(key_id, nonce, signers).unwrap()
}

/// Submits `spec` under a fresh job id to every node and returns each node's view, asserting
/// that every node answered and finished the job.
pub async fn submit_done(client: &Client, spec: &JobSpec, timeout: std::time::Duration) -> Vec<JobView> {
    let answers = client.submit(&new_job_id(), spec, timeout).await;
    answers
        .into_iter()
        .map(|(p, a)| {
            let v = a.unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(v.state, JobState::Done, "{p}: {v:?}");
            v
        })
        .collect()
}

/// Job `job`'s view at `node` once it is no longer running (or after `timeout`): a joined
/// job's institutions may have their output before the node records the job.
pub async fn settled(
    client: &Client,
    node: tacit_mpc_engine::PartyId,
    job: &str,
    timeout: std::time::Duration,
) -> JobView {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let view = client.status(node, job, timeout).await.unwrap();
        if view.state != JobState::Running || tokio::time::Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Submits job `id` to every node again and again until every node reports it done (a retry
/// after a node came back: the first attempts may find the mesh still reconnecting).
pub async fn submit_until_done(client: &Client, id: &str, spec: &JobSpec, limit: std::time::Duration) -> Vec<JobView> {
    submit_until_settled(client, id, spec, limit, None).await
}

/// As [`submit_until_done`], but node `lost` may instead report that the others finished the
/// job without it (it went down after its last message, so the job was done when retried).
pub async fn submit_until_settled(
    client: &Client,
    id: &str,
    spec: &JobSpec,
    limit: std::time::Duration,
    lost: Option<tacit_mpc_engine::PartyId>,
) -> Vec<JobView> {
    let start = tokio::time::Instant::now();
    loop {
        let answers = client.submit(id, spec, limit).await;
        let settled = |p: &tacit_mpc_engine::PartyId, v: &JobView| {
            v.state == JobState::Done
                || (Some(*p) == lost && v.error.as_deref().is_some_and(|e| e.contains("finished this job in attempt")))
        };
        let ok: Vec<JobView> =
            answers.iter().filter_map(|(p, a)| a.as_ref().ok().filter(|v| settled(p, v)).cloned()).collect();
        if ok.len() == answers.len() {
            return ok;
        }
        assert!(start.elapsed() < limit, "job {id} did not succeed on retry: {answers:?}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
