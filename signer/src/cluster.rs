//! Runs the signer protocols for every node of a cluster held in one process (tests, the demo,
//! the benchmark): one task per node, each with its own engine over its own transport.

use std::sync::Arc;

use tacit_mpc_engine::{Engine, MpcError, PartyId, Security, SessionId, Transport};

use crate::curve::Scalar;
use crate::dkg::DkgFaults;
use crate::error::{Result, SignerError};
use crate::keys::KeyPublic;
use crate::node::{Node, SignRequest};
use crate::presign::PresignFaults;
use crate::sign::{SignFaults, SignOutput};

/// Per-party results, in party order.
pub type PerParty<R> = Vec<Result<R>>;

async fn join<R: Send + 'static>(handles: Vec<tokio::task::JoinHandle<Result<R>>>) -> PerParty<R> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| Err(SignerError::Mpc(MpcError::Usage(format!("task failed: {e}"))))));
    }
    out
}

/// The first error, preferring one that names a culprit; else all results.
pub fn first_ok<R>(results: PerParty<R>) -> Result<Vec<R>> {
    let mut oks = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(oks);
    }
    let pos = errors.iter().position(|e| e.identified().is_some()).unwrap_or(0);
    Err(errors.swap_remove(pos))
}

/// Which kind of VSS run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOp {
    /// Fresh key.
    Dkg,
    /// New shares, same key.
    Refresh,
    /// New shares to all, including a replacement for this party.
    Reshare(PartyId),
}

/// Runs DKG, refresh or reshare on every node and installs the new shares.
pub async fn key_op<T: Transport>(
    op: KeyOp,
    transports: &[Arc<T>],
    nodes: &[Arc<Node>],
    t: usize,
    session: SessionId,
    now: u64,
    faults: &dyn Fn(PartyId) -> DkgFaults,
) -> PerParty<KeyPublic> {
    let mut handles = Vec::new();
    for (transport, node) in transports.iter().zip(nodes) {
        let (transport, node) = (transport.clone(), node.clone());
        let f = faults(node.id());
        handles.push(tokio::spawn(async move {
            let mut engine: Engine<Scalar, T> = Engine::new(transport.clone(), t, Security::Malicious, session)?;
            let share = match op {
                KeyOp::Dkg => crate::dkg::dkg(&mut engine, &transport, session, &f).await?,
                KeyOp::Refresh => {
                    let old = node.key_share()?;
                    crate::dkg::refresh(&mut engine, &transport, session, &old, &f).await?
                }
                KeyOp::Reshare(replaced) => {
                    let public = node.key_public()?;
                    let old = if node.id() == replaced { None } else { Some(node.key_share()?) };
                    crate::dkg::reshare(&mut engine, &transport, session, &public, old.as_ref(), replaced, &f).await?
                }
            };
            let event = match op {
                KeyOp::Dkg => "dkg",
                KeyOp::Refresh => "refresh",
                KeyOp::Reshare(_) => "reshare",
            };
            node.install_share(&share, event, &session.0, now)?;
            Ok(share.public.clone())
        }));
    }
    join(handles).await
}

/// Makes `count` presignatures bound to `signers` on every node; members keep them. Returns
/// the ids per node (empty for non-members).
#[allow(clippy::too_many_arguments)]
pub async fn presign<T: Transport>(
    transports: &[Arc<T>],
    nodes: &[Arc<Node>],
    t: usize,
    batch: SessionId,
    count: usize,
    signers: &[PartyId],
    now: u64,
    faults: &dyn Fn(PartyId) -> PresignFaults,
) -> PerParty<Vec<[u8; 32]>> {
    let mut handles = Vec::new();
    for (transport, node) in transports.iter().zip(nodes) {
        let (transport, node) = (transport.clone(), node.clone());
        let signers = signers.to_vec();
        let f = faults(node.id());
        handles.push(tokio::spawn(async move {
            let key = node.key_share()?;
            let mut engine: Engine<Scalar, T> = Engine::new(transport, t, Security::Malicious, batch)?;
            let presigs = crate::presign::presign(&mut engine, &key, batch, count, &signers, &f).await?;
            node.store_presigs(&presigs)?;
            node.audit(
                now,
                crate::audit::AuditRecord {
                    event: "presign".into(),
                    session: hex::encode(batch.0),
                    key_id: hex::encode(key.public.key_id),
                    signers: signers.iter().map(|p| p.get()).collect(),
                    status: Some(crate::audit::AuditStatus::Success),
                    detail: format!("{} presignatures kept, epoch {}", presigs.len(), key.public.epoch),
                    ..Default::default()
                },
            )?;
            Ok(presigs.iter().map(|p| p.id).collect())
        }));
    }
    join(handles).await
}

/// Signs `req` on every member of its signer set. Results in signer-set order.
pub async fn sign<T: Transport>(
    transports: &[Arc<T>],
    nodes: &[Arc<Node>],
    req: &SignRequest,
    now: u64,
    faults: &dyn Fn(PartyId) -> SignFaults,
) -> PerParty<SignOutput> {
    let signers = match req.signer_ids() {
        Ok(s) => s,
        Err(e) => return vec![Err(e)],
    };
    let attempt = SessionId::random();
    let mut handles = Vec::new();
    for p in signers {
        let (Some(transport), Some(node)) = (transports.get(p.index()).cloned(), nodes.get(p.index()).cloned()) else {
            return vec![Err(SignerError::Invalid(format!("no node {p}")))];
        };
        let req = req.clone();
        let f = faults(p);
        handles.push(tokio::spawn(async move {
            crate::sign::sign_with_faults(&node, &*transport, &req, now, attempt, &f).await
        }));
    }
    join(handles).await
}

/// No faults.
pub fn honest<F: Default>(_: PartyId) -> F {
    F::default()
}
