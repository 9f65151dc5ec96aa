//! How the nodes agree on the next job: party 1 (the proposer) takes jobs in the order its
//! clients submitted them and, in two phases over a control session of the mesh, proposes one
//! (job id, attempt, spec digest, what it resolved) to every peer; each peer answers whether it
//! holds the same job from an authorised client (waiting a little for the client's copy); then
//! the proposer tells all to run it or not. All run it under the session derived from (job id,
//! attempt). Any transport failure drops the mesh at the node that saw it (closing its
//! connections, which the others then see too), so every node reconnects and the proposer
//! re-proposes with the next attempt number.
//!
//! The proposer also keeps the presignature pools topped up: when idle and a pool is below its
//! target it proposes an internal presign job, which every peer accepts only for a signer set
//! and batch size its own configuration allows.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{PartyId, SessionId, Transport, TransportError};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api::JobSpec;
use crate::daemon::Shared;
use crate::error::{NodeError, Result};
use crate::jobs::Resolved;

/// The control session of every mesh incarnation.
pub const CONTROL: SessionId = SessionId(*b"tacit-node-ctl-1");
/// Largest control message.
pub const MAX_CONTROL: usize = 256 << 10;
/// Coordination messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// The proposer's next job.
    Propose {
        /// Job id (hex).
        job: String,
        /// Attempt number (part of the session id).
        attempt: u32,
        /// Spec digest (hex).
        digest: String,
        /// The spec of an internal job (pool refill); client jobs are not sent, every node
        /// holds its own copy from the client.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        internal: Option<Box<JobSpec>>,
        /// What the proposer resolved.
        #[serde(default)]
        resolved: Resolved,
    },
    /// A peer's answer.
    Ack {
        /// Job id (hex).
        job: String,
        /// Attempt.
        attempt: u32,
        /// Whether it will run the job.
        ok: bool,
        /// Why not.
        #[serde(default)]
        reason: String,
        /// Named preprocessing batches this node does not hold (hex ids).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing_batches: Vec<String>,
    },
    /// The proposer failed a job before committing it (e.g. a peer was unreachable): every
    /// node fails its copy.
    Abort {
        /// Job id (hex).
        job: String,
        /// Why.
        reason: String,
    },
    /// A client asked the proposer again for a job it finished: a node that holds a copy it
    /// did not finish (it went down after its last message) fails it instead of waiting for a
    /// proposal that will not come.
    Finished {
        /// Job id (hex).
        job: String,
        /// The attempt that finished.
        attempt: u32,
    },
    /// The proposer's decision.
    Commit {
        /// Job id (hex).
        job: String,
        /// Attempt.
        attempt: u32,
        /// Run it.
        go: bool,
        /// Why not.
        #[serde(default)]
        reason: String,
    },
}

impl Control {
    fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(bytes: &[u8], from: PartyId) -> Result<Self> {
        if bytes.len() > MAX_CONTROL {
            return Err(NodeError::Malformed { peer: from, reason: "control message too long".into() });
        }
        serde_json::from_slice(bytes).map_err(|e| NodeError::Malformed { peer: from, reason: e.to_string() })
    }
}

/// The session a job attempt runs under.
pub fn job_session(job: &[u8; 16], attempt: u32) -> SessionId {
    let mut h = blake3::Hasher::new_derive_key("tacit node job session v1");
    h.update(job);
    h.update(&attempt.to_be_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(h.finalize().as_bytes().get(..16).unwrap_or(&[0u8; 16]));
    SessionId(out)
}

async fn recv_until(t: &QuicTransport, from: PartyId, deadline: Instant) -> Result<Control> {
    loop {
        match t.recv(CONTROL, from).await {
            Ok(b) => return Control::decode(&b, from),
            Err(TransportError::Timeout { .. }) if Instant::now() < deadline => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Proposer: runs jobs in order, refills pools when idle. Returns when `stop` turns true
/// (after the job in flight).
pub async fn lead(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut pool_backoff = Instant::now();
    loop {
        if *stop.borrow() {
            return;
        }
        flush_notices(&shared, &mut stop).await;
        let next = shared.pop_queued();
        if let Some(id) = next {
            lead_job(&shared, id, &mut stop).await;
            pool_backoff = Instant::now();
            continue;
        }
        if Instant::now() >= pool_backoff {
            match shared.pool_refill() {
                Some(spec) => {
                    let id = shared.register_internal(spec);
                    if !lead_job(&shared, id, &mut stop).await {
                        pool_backoff = Instant::now() + Duration::from_secs(2);
                    }
                    continue;
                }
                // Pools are full (or off): look again in a second, or after the next job.
                None => pool_backoff = Instant::now() + Duration::from_secs(1),
            }
        }
        tokio::select! {
            _ = shared.notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Tells the peers about jobs failed before they were committed, or finished without one of
/// them (best effort: kept until a mesh is up).
async fn flush_notices(shared: &Arc<Shared>, stop: &mut watch::Receiver<bool>) {
    let pending = shared.take_notices();
    if pending.is_empty() {
        return;
    }
    let limit = Duration::from_millis(shared.cfg.file.timeouts.connect_ms);
    let transport = match shared.mesh.get_within(stop, Some(limit)).await {
        Ok(t) => t,
        Err(_) => {
            shared.keep_notices(pending);
            return;
        }
    };
    for msg in &pending {
        for p in PartyId::all(shared.cfg.n).filter(|p| *p != shared.cfg.me) {
            if let Err(e) = transport.send(CONTROL, p, msg.encode()).await {
                shared.keep_notices(pending.clone());
                shared.mesh.reset(&e.to_string()).await;
                return;
            }
        }
    }
}

/// Fails a job the peers may hold but never saw committed, and queues the abort for them.
fn fail_uncommitted(shared: &Shared, id: &[u8; 16], attempt: u32, e: NodeError, internal: bool) {
    if !internal {
        shared.add_abort(hex::encode(id), e.to_string());
    }
    shared.finish(id, attempt, Err(e));
}

/// Proposes and runs one job; `true` if it succeeded.
async fn lead_job(shared: &Arc<Shared>, id: [u8; 16], stop: &mut watch::Receiver<bool>) -> bool {
    let Some((spec, digest, internal)) = shared.entry_spec(&id) else { return false };
    let deadline = Instant::now() + shared.cfg.job_timeout();
    let resolved = match shared.resolve(&spec) {
        Ok(r) => r,
        Err(e) => {
            // The followers' copies fail with the same reason rather than wait for a proposal.
            fail_uncommitted(shared, &id, 0, e, internal);
            return false;
        }
    };
    let mut attempt = shared.start_attempt(&id);
    let peers: Vec<PartyId> = PartyId::all(shared.cfg.n).filter(|p| *p != shared.cfg.me).collect();
    let connect = Duration::from_millis(shared.cfg.file.timeouts.connect_ms);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let transport = match tokio::time::timeout_at(deadline, shared.mesh.get_within(stop, Some(connect))).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                fail_uncommitted(shared, &id, attempt, e, internal);
                return false;
            }
            Err(_) => {
                let e = NodeError::Other("the mesh did not connect in time".into());
                fail_uncommitted(shared, &id, attempt, e, internal);
                return false;
            }
        };
        let job = hex::encode(id);
        let propose = Control::Propose {
            job: job.clone(),
            attempt,
            digest: hex::encode(digest),
            internal: internal.then(|| Box::new(spec.clone())),
            resolved: resolved.clone(),
        };
        let phase1 = async {
            for p in &peers {
                transport.send(CONTROL, *p, propose.encode()).await?;
            }
            let wait =
                Instant::now() + shared.cfg.proposal_wait() + Duration::from_millis(shared.cfg.file.timeouts.recv_ms);
            let mut refusal = None;
            for p in &peers {
                match recv_until(&transport, *p, wait.min(deadline)).await? {
                    Control::Ack { job: j, attempt: a, ok, reason, missing_batches } if j == job && a == attempt => {
                        if !missing_batches.is_empty() {
                            // Orphans of a refill that peer did not store: never name them again.
                            let why = format!("{p} lacks them");
                            if let Err(e) = crate::prep::discard(&shared.store, &missing_batches, &why) {
                                tracing::error!(target: "tacit::node", "store: {e}");
                            }
                            shared.update_pool_metrics();
                        }
                        if !ok && refusal.is_none() {
                            refusal = Some(NodeError::PeerRefused { peer: *p, job: job.clone(), reason });
                        }
                    }
                    other => {
                        return Err(NodeError::Malformed {
                            peer: *p,
                            reason: format!("expected an ack, got {other:?}"),
                        })
                    }
                }
            }
            Ok::<_, NodeError>(refusal)
        };
        let refusal = match phase1.await {
            Ok(r) => r,
            Err(e) => {
                shared.mesh.reset(&e.to_string()).await;
                if tries < 3 && Instant::now() + Duration::from_millis(500) < deadline && !*stop.borrow() {
                    tracing::warn!(target: "tacit::node", job = %job, attempt, "proposal failed, reconnecting: {e}");
                    attempt = shared.start_attempt(&id);
                    continue;
                }
                fail_uncommitted(shared, &id, attempt, e, internal);
                return false;
            }
        };
        let go = refusal.is_none();
        let reason = refusal.as_ref().map(ToString::to_string).unwrap_or_default();
        let commit = Control::Commit { job: job.clone(), attempt, go, reason };
        let mut sent = Ok(());
        for p in &peers {
            if let Err(e) = transport.send(CONTROL, *p, commit.encode()).await {
                sent = Err(e);
            }
        }
        if let Some(refusal) = refusal {
            shared.finish(&id, attempt, Err(refusal));
            return false;
        }
        if let Err(e) = sent {
            // Some peer will not run it; the others fail naming us or it.
            shared.mesh.reset(&e.to_string()).await;
            shared.finish(&id, attempt, Err(e.into()));
            return false;
        }
        return run_job(shared, &id, attempt, &spec, &resolved, transport, deadline).await;
    }
}

async fn run_job(
    shared: &Arc<Shared>,
    id: &[u8; 16],
    attempt: u32,
    spec: &JobSpec,
    resolved: &Resolved,
    transport: Arc<QuicTransport>,
    deadline: Instant,
) -> bool {
    let session = job_session(id, attempt);
    shared.mark_running(id, attempt);
    let before = transport.stats();
    let started = Instant::now();
    let run = async {
        match spec {
            JobSpec::PsiQuery { .. } => crate::psi::run(shared, id, spec, transport.clone(), session).await,
            JobSpec::RiskQuery { .. } => crate::risk::run(shared, id, spec, transport.clone(), session).await,
            JobSpec::AuctionRun { .. } => crate::auction::run(shared, spec, transport.clone(), session).await,
            _ => {
                crate::jobs::run_coordinated(
                    &shared.signer,
                    &shared.store,
                    id,
                    transport.clone(),
                    shared.cfg.t(),
                    session,
                    spec,
                    resolved,
                )
                .await
            }
        }
    };
    let mut result = match tokio::time::timeout_at(deadline, run).await {
        Ok(r) => r,
        Err(_) => Err(NodeError::Other(format!("job did not finish within {:?}", shared.cfg.job_timeout()))),
    };
    if let Ok(serde_json::Value::Object(map)) = &mut result {
        // The protocol's own wall time and traffic at this node (the job's session only: jobs
        // run one at a time).
        let after = transport.stats();
        map.insert("seconds".into(), serde_json::json!(started.elapsed().as_secs_f64()));
        map.insert("messages_sent".into(), serde_json::json!(after.messages_sent.saturating_sub(before.messages_sent)));
        map.insert("bytes_sent".into(), serde_json::json!(after.bytes_sent.saturating_sub(before.bytes_sent)));
    }
    transport.close_session(session);
    drop(transport);
    let broken = result.as_ref().err().filter(|e| e.is_transport()).map(ToString::to_string);
    let ok = result.is_ok();
    shared.finish(id, attempt, result);
    if let Some(why) = broken {
        // Let the other nodes reach their own timeout on the failed peer (so their errors
        // name it, not us) before our connections close.
        if shared.cfg.me == shared.leader {
            let pause = Duration::from_millis(shared.cfg.file.timeouts.recv_ms / 2).min(Duration::from_secs(2));
            tokio::time::sleep(pause).await;
        }
        shared.mesh.reset(&why).await;
    }
    ok
}

/// Every other node: waits for proposals, checks them, runs the committed jobs.
pub async fn follow(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let leader = shared.leader;
    loop {
        if *stop.borrow() {
            return;
        }
        let connect = Duration::from_millis(shared.cfg.file.timeouts.connect_ms);
        let transport = match shared.mesh.get_within(&mut stop, Some(connect)).await {
            Ok(t) => t,
            Err(NodeError::ShuttingDown) => return,
            Err(e) => {
                // The proposer cannot reach everyone either: fail what clients are waiting for
                // (a retry after the mesh heals runs it), naming the peer that did not connect.
                shared.fail_waiting(connect, &e);
                continue;
            }
        };
        let msg = tokio::select! {
            m = transport.recv(CONTROL, leader) => m,
            _ = stop.changed() => return,
        };
        let bytes = match msg {
            Ok(b) => b,
            Err(TransportError::Timeout { .. }) => continue,
            Err(e) => {
                shared.mesh.reset(&e.to_string()).await;
                continue;
            }
        };
        let (job, attempt, digest, internal, resolved) = match Control::decode(&bytes, leader) {
            Ok(Control::Propose { job, attempt, digest, internal, resolved }) => {
                (job, attempt, digest, internal, resolved)
            }
            Ok(Control::Abort { job, reason }) => {
                if let Ok(id) = crate::api::parse_job_id(&job) {
                    shared.finish(&id, 0, Err(NodeError::Other(format!("aborted by {leader}: {reason}"))));
                }
                continue;
            }
            Ok(Control::Finished { job, attempt }) => {
                if let Ok(id) = crate::api::parse_job_id(&job) {
                    shared.finished_elsewhere(id, attempt);
                }
                continue;
            }
            Ok(other) => {
                shared.mesh.reset(&format!("{leader} sent {other:?} out of turn")).await;
                continue;
            }
            Err(e) => {
                shared.mesh.reset(&e.to_string()).await;
                continue;
            }
        };
        let mut missing_batches = Vec::new();
        let check = match crate::prep::missing(&shared.store, &resolved.prep_batches) {
            Ok(m) if m.is_empty() => shared.check_proposal(&job, &digest, internal.map(|b| *b)).await,
            Ok(m) => {
                let list = m.join(", ");
                missing_batches = m;
                Err(NodeError::BadRequest(format!("job {job} names preprocessing batches not held here: {list}")))
            }
            Err(e) => Err(e),
        };
        let (ok, reason) = match &check {
            Ok(_) => (true, String::new()),
            Err(e) => (false, e.to_string()),
        };
        let ack = Control::Ack { job: job.clone(), attempt, ok, reason, missing_batches };
        if let Err(e) = transport.send(CONTROL, leader, ack.encode()).await {
            shared.mesh.reset(&e.to_string()).await;
            continue;
        }
        let deadline = Instant::now() + shared.cfg.job_timeout();
        let commit = tokio::select! {
            c = recv_until(&transport, leader, deadline) => c,
            _ = stop.changed() => return,
        };
        let go = match commit {
            Ok(Control::Commit { job: j, attempt: a, go, reason }) if j == job && a == attempt => {
                if !go {
                    if let Ok((id, _)) = &check {
                        shared.finish(id, attempt, Err(NodeError::Other(format!("aborted by {leader}: {reason}"))));
                    }
                }
                go
            }
            Ok(other) => {
                shared.mesh.reset(&format!("{leader} sent {other:?} instead of a commit")).await;
                continue;
            }
            Err(e) => {
                shared.mesh.reset(&e.to_string()).await;
                continue;
            }
        };
        if !go {
            continue;
        }
        let Ok((id, spec)) = check else { continue };
        run_job(&shared, &id, attempt, &spec, &resolved, transport, deadline).await;
    }
}
