//! Three nodes in one process over loopback QUIC: policy, DKG, presignature pool, signing,
//! client authorisation, metrics, graceful shutdown and restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use tacit_node::api::{new_job_id, JobSpec};
use tacit_node::client::Client;
use tacit_node::config::NodeConfig;

const T: Duration = Duration::from_secs(60);

async fn all_done(client: &Client, spec: &JobSpec) -> Vec<tacit_node::api::JobView> {
    common::submit_done(client, spec, T).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_sign_with_pool_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (configs, client_path) = common::setup(dir.path(), 3, 1, 3, 5_000);
    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let client = Client::load(&client_path).unwrap();

    all_done(&client, &JobSpec::SignerPolicy { policy: common::policy() }).await;
    let dkg = all_done(&client, &JobSpec::SignerDkg).await;
    let key = dkg[0].result.clone().unwrap();
    for v in &dkg {
        assert_eq!(v.result.as_ref().unwrap()["address"], key["address"]);
    }
    let key_id = key["key_id"].as_str().unwrap().to_string();

    // The pool fills in the background to its target of 3 for signer set [1, 2].
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info = all_done(&client, &JobSpec::SignerInfo).await;
        let levels: Vec<u64> =
            info.iter().map(|v| v.result.as_ref().unwrap()["presignatures"]["1-2"].as_u64().unwrap()).collect();
        if levels[0] >= 3 && levels[1] >= 3 {
            assert_eq!(levels[2], 0, "party 3 is not in the set");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "pool did not fill: {levels:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Sign with a pool presignature; the signature recovers to the key's address.
    let spec = common::sign_spec(&key_id, 0, vec![1, 2]);
    let signed = all_done(&client, &spec).await;
    let sig = signed[0].result.as_ref().unwrap()["signature"].as_str().unwrap().to_string();
    assert_eq!(signed[1].result.as_ref().unwrap()["signature"].as_str().unwrap(), sig);
    assert_eq!(signed[2].result.as_ref().unwrap()["member"], false);
    let prehash = hex::decode(signed[0].result.as_ref().unwrap()["prehash"].as_str().unwrap()).unwrap();
    let rsv = hex::decode(sig.trim_start_matches("0x")).unwrap();
    let s = tacit_signer::k256::ecdsa::Signature::from_slice(&rsv[..64]).unwrap();
    let rid = tacit_signer::k256::ecdsa::RecoveryId::from_byte(rsv[64] - 27).unwrap();
    let vk = tacit_signer::k256::ecdsa::VerifyingKey::recover_from_prehash(&prehash, &s, rid).unwrap();
    let addr = tacit_signer::curve::address_of_key(&vk);
    assert_eq!(format!("0x{}", hex::encode(addr)), key["address"].as_str().unwrap());

    // A retried (same id) finished job returns its result; a different job under a used id is refused.
    // A client that is not in the policy is refused at every node.
    let stranger =
        tacit_mpc_engine::transport::quic::PartyIdentity::generate(tacit_mpc_engine::PartyId::new(1).unwrap()).unwrap();
    let text = std::fs::read_to_string(&client_path).unwrap();
    let file: tacit_node::client::ClientFile = toml::from_str(&text).unwrap();
    let other = Client::new(stranger, file.nodes.clone()).unwrap();
    for (_, a) in other.submit(&new_job_id(), &JobSpec::SignerDkg, T).await {
        let e = a.unwrap_err().to_string();
        assert!(e.contains("not authorised"), "{e}");
    }
    // A malformed spec is refused before anything is queued.
    let bad = JobSpec::SignerPresign { count: 0, signers: vec![1, 2] };
    for (_, a) in client.submit(&new_job_id(), &bad, T).await {
        assert!(a.unwrap_err().to_string().contains("count"));
    }

    // Metrics.
    let text = tacit_node::metrics::scrape(nodes[0].metrics_addr.unwrap()).await.unwrap();
    for needle in [
        "tacit_node_jobs_total{type=\"signer.sign\",status=\"done\"} 1",
        "tacit_node_jobs_total{type=\"signer.dkg\",status=\"done\"} 1",
        "tacit_node_job_duration_seconds{type=\"signer.sign\",quantile=\"0.95\"}",
        "tacit_node_pool_level{pool=\"presignatures\",signers=\"1-2\"}",
        "tacit_node_pool_target{pool=\"presignatures\",signers=\"1-2\"} 3",
        "tacit_node_queue_depth 0",
        "tacit_node_sign_approval_latency_seconds_count 1",
        "tacit_node_job_failures_total{type=\"signer.dkg\",reason=\"unauthorised\"} 1",
        "tacit_node_mesh_connected 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }

    // Graceful shutdown, restart, sign again with the same key.
    for n in nodes.drain(..) {
        n.shutdown().await;
    }
    for c in &configs {
        let cfg = NodeConfig::load(c).unwrap();
        let report = tacit_node::cli::check_stores(&cfg).unwrap();
        assert_eq!(report["running"], 0, "{report}");
        nodes.push(tacit_node::daemon::start(cfg).await.unwrap());
    }
    let spec = common::sign_spec(&key_id, 1, vec![1, 2]);
    let id = new_job_id();
    let signed: Vec<_> = client.submit(&id, &spec, T).await.into_iter().map(|(_, a)| a.unwrap()).collect();
    assert!(signed[0].result.as_ref().unwrap()["signature"].is_string());

    // P3 went down after its last message of that job, before recording it (its record says
    // running, as a kill would leave it). Asked again, P1 and P2 answer from their records and
    // P3, told by the proposer, says the others finished it without it instead of waiting for
    // a proposal that will not come.
    nodes.pop().unwrap().shutdown().await;
    let cfg3 = NodeConfig::load(&configs[2]).unwrap();
    record_as_running(&cfg3, &id);
    nodes.push(tacit_node::daemon::start(cfg3).await.unwrap());
    let again = client.submit(&id, &spec, T).await;
    for (p, a) in &again {
        let v = a.as_ref().unwrap();
        if p.get() == 3 {
            assert_eq!(v.state, tacit_node::store::JobState::Failed, "{v:?}");
            let e = v.error.as_deref().unwrap_or_default();
            assert!(e.contains("P1 and the other nodes finished this job in attempt 1"), "{e}");
        } else {
            assert_eq!(v.result, signed[p.index()].result, "{p}");
        }
    }

    // A presign batch that P2 (a member) and P3 stored, but whose last barrier message they
    // missed (killed before recording it): P1 finished it, so every node stored its part. Asked
    // again, P2 confirms its part (now the proposer's choice can name them) and both are done.
    let presign = JobSpec::SignerPresign { count: 2, signers: vec![1, 2] };
    let id = new_job_id();
    let first: Vec<_> = client.submit(&id, &presign, T).await.into_iter().map(|(_, a)| a.unwrap()).collect();
    assert!(first.iter().all(|v| v.state == tacit_node::store::JobState::Done), "{first:?}");
    let mut raw = [0u8; 16];
    hex::decode_to_slice(&id, &mut raw).unwrap();
    let batch = tacit_node::coord::job_session(&raw, first[1].attempts);
    let ids: Vec<[u8; 32]> = (0..2).map(|i| tacit_signer::presign::presig_id(&batch, i)).collect();
    for _ in 0..2 {
        nodes.pop().unwrap().shutdown().await;
    }
    for c in &configs[1..] {
        let cfg = NodeConfig::load(c).unwrap();
        record_as_running(&cfg, &id);
        if cfg.me.get() == 2 {
            let signer = tacit_node::cli::open_stores(&cfg).unwrap().1;
            let records: Vec<_> = ids.iter().map(|p| (*p, signer.store().get_presig(p).unwrap().unwrap())).collect();
            signer.store().put_presigs(&records, Some(&batch.0)).unwrap();
        }
    }
    for c in &configs[1..] {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let again = common::submit_until_done(&client, &id, &presign, T).await;
    assert_eq!(again[1].result.as_ref().unwrap()["confirmed_after"], "the other nodes finished", "{again:?}");
    assert_eq!(again[2].result.as_ref().unwrap()["member"], false, "{again:?}");
    assert!(nodes[1].shared.signer.store().unconfirmed_ids().unwrap().is_empty());
    // A member that holds no part of the batch cannot be done with it (it would lack the
    // presignatures its proposer names); a job other than a presign is never done elsewhere.
    let unknown = [7u8; 16];
    let member = &nodes[1].shared.signer;
    assert!(tacit_node::jobs::finish_presign_elsewhere(member, &presign, &unknown, 1).unwrap().is_none());
    assert!(tacit_node::jobs::finish_presign_elsewhere(member, &JobSpec::SignerDkg, &raw, 1).unwrap().is_none());

    // The mirror case: the followers finished a job whose attempt the proposer did not (its
    // record says running, as a kill would leave it). Asked again, P1 proposes a new attempt
    // and the followers, holding their finished copies again, run it rather than refuse it.
    let presign = JobSpec::SignerPresign { count: 1, signers: vec![1, 2] };
    let id = new_job_id();
    for (p, a) in client.submit(&id, &presign, T).await {
        assert_eq!(a.unwrap().state, tacit_node::store::JobState::Done, "{p}");
    }
    nodes.remove(0).shutdown().await;
    let cfg1 = NodeConfig::load(&configs[0]).unwrap();
    record_as_running(&cfg1, &id);
    nodes.insert(0, tacit_node::daemon::start(cfg1).await.unwrap());
    let again = common::submit_until_done(&client, &id, &presign, T).await;
    for v in &again {
        assert!(v.attempts >= 2, "every node ran a new attempt: {v:?}");
    }
    for n in nodes.drain(..) {
        n.shutdown().await;
    }
}

/// Sets a stopped node's record of job `id` back to running, as a kill after its last message
/// and before the record would leave it.
fn record_as_running(cfg: &NodeConfig, id: &str) {
    let (store, _) =
        tacit_node::store::NodeStore::open(&cfg.data_dir().join("node.redb"), &cfg.file.secret_key, &cfg.base).unwrap();
    let mut raw = [0u8; 16];
    hex::decode_to_slice(id, &mut raw).unwrap();
    let mut rec = store.job(&raw).unwrap().unwrap();
    rec.state = tacit_node::store::JobState::Running;
    rec.result = None;
    store.put_job(&raw, &rec, "running").unwrap();
}
