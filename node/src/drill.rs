//! Drills against a running cluster (`tacit-node drill`), with a DEMO approver whose private
//! key is public (`[7; 32]`): for test clusters only.

use std::time::{Duration, Instant};

use serde_json::json;
use tacit_signer::eth::Intent;
use tacit_signer::k256::ecdsa::SigningKey;
use tacit_signer::policy::{approve, Policy};

use crate::api::{new_job_id, JobSpec, JobView};
use crate::client::Client;
use crate::error::{NodeError, Result};
use crate::store::{now, JobState};

/// The demo destination.
pub const DEMO_DEST: [u8; 20] = [0xdd; 20];

/// The demo approver (public key material: tests and drills only).
pub fn demo_approver() -> Result<SigningKey> {
    SigningKey::from_slice(&[7u8; 32]).map_err(|e| NodeError::Other(e.to_string()))
}

/// A policy trusting the demo approver.
pub fn demo_policy() -> Result<Policy> {
    Ok(Policy {
        approvers: vec![tacit_signer::curve::address_of_key(demo_approver()?.verifying_key())],
        threshold: 1,
        chains: vec![1],
        destinations: vec![DEMO_DEST],
        daily_limit: u128::MAX / 4,
        change_threshold: 1,
        change_delay_s: 3600,
    })
}

/// A transfer of 1000 wei to the demo destination, approved by the demo approver.
pub fn demo_sign(key_id: [u8; 16], nonce: u64, signers: Vec<u16>) -> Result<JobSpec> {
    let intent = Intent::simple_transfer(key_id, DEMO_DEST, 1000, nonce, now() + 600);
    let approval = approve(&demo_approver()?, &intent.digest()).ok_or_else(|| NodeError::Other("approve".into()))?;
    Ok(JobSpec::SignerSign { intent, approvals: vec![approval], signers, presig_id: None })
}

async fn everywhere(client: &Client, spec: &JobSpec, timeout: Duration) -> Result<(Vec<JobView>, f64)> {
    let started = Instant::now();
    let id = new_job_id();
    let answers = client.submit(&id, spec, timeout).await;
    let wall = started.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for (p, a) in answers {
        let v = a.map_err(|e| NodeError::Other(format!("{p}: {e}")))?;
        if v.state != JobState::Done {
            return Err(NodeError::Other(format!("{p}: job {id} {:?}: {}", v.state, v.error.unwrap_or_default())));
        }
        out.push(v);
    }
    Ok((out, wall))
}

/// Runs one drill action, printing JSON lines.
pub async fn run(client: &Client, action: &str, count: usize, signers: &[u16], timeout: Duration) -> Result<()> {
    match action {
        "policy" => {
            let (_, wall) = everywhere(client, &JobSpec::SignerPolicy { policy: demo_policy()? }, timeout).await?;
            println!("{}", json!({ "policy": "set", "wall_s": wall }));
        }
        "info" => {
            let (views, _) = everywhere(client, &JobSpec::SignerInfo, timeout).await?;
            for v in views {
                println!("{}", v.result.unwrap_or_default());
            }
        }
        "sign" => {
            let (views, _) = everywhere(client, &JobSpec::SignerInfo, timeout).await?;
            let key_id = views
                .first()
                .and_then(|v| v.result.as_ref())
                .and_then(|r| r.get("key")?.get("key_id")?.as_str().map(str::to_string))
                .ok_or_else(|| NodeError::Other("no key: run a DKG first".into()))?;
            let mut id = [0u8; 16];
            hex::decode_to_slice(&key_id, &mut id).map_err(|_| NodeError::Other("key id".into()))?;
            for i in 0..count {
                let spec = demo_sign(id, i as u64, signers.to_vec())?;
                let (views, wall) = everywhere(client, &spec, timeout).await?;
                let nodes: Vec<_> = views
                    .iter()
                    .filter_map(|v| v.result.as_ref())
                    .filter(|r| r.get("member") == Some(&json!(true)))
                    .map(|r| json!({ "seconds": r.get("seconds"), "messages_sent": r.get("messages_sent") }))
                    .collect();
                let signature = views.iter().find_map(|v| v.result.as_ref().and_then(|r| r.get("signature")?.as_str()));
                println!("{}", json!({ "sign": i, "wall_s": wall, "signers": nodes, "signature": signature }));
            }
        }
        other => return Err(NodeError::BadRequest(format!("unknown drill {other:?} (policy | sign | info)"))),
    }
    Ok(())
}
