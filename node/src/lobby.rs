//! Jobs whose institutions take part as clients (`psi.query`, `risk.query`). Each institution
//! joins the job over a channel of the job API (mutual TLS, by certificate fingerprint, which
//! the job lists); the node holds each institution's channel in a lobby until every listed
//! institution has joined, then queues the job as a coordinated job, which runs over the mesh
//! with those channels ([`crate::psi`], [`crate::risk`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tacit_mpc_engine::transport::intake::{IntakeChannel, IntakeRequest};
use tacit_mpc_engine::transport::quic::Fingerprint;
use tokio::time::Instant;

use crate::api::{parse_job_id, ClientRequest, JobSpec, JobView};
use crate::daemon::{Shared, MAX_HELD_JOBS};
use crate::error::{NodeError, Result};
use crate::store::JobState;

/// Channels of jobs waiting for institutions, and of jobs ready to run.
#[derive(Debug, Default)]
pub struct Lobby {
    waiting: HashMap<[u8; 16], Waiting>,
    ready: HashMap<[u8; 16], Vec<IntakeChannel>>,
}

#[derive(Debug)]
struct Waiting {
    digest: [u8; 32],
    institutions: Vec<Fingerprint>,
    channels: Vec<Option<IntakeChannel>>,
    since: Instant,
}

/// Jobs one institution may be waiting in at once at a node: each waiting channel may hold
/// a frame read ahead, so this bounds what one client can make a node keep.
pub const MAX_WAITING_PER_INSTITUTION: usize = 8;

fn lock(lobby: &Mutex<Lobby>) -> std::sync::MutexGuard<'_, Lobby> {
    lobby.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a join request is, once checked.
struct Admitted {
    id: [u8; 16],
    spec: JobSpec,
    index: usize,
    client: String,
    view: JobView,
}

/// Answers a channel request: a join of a listed institution is accepted and its channel
/// held for the job; anything else is refused.
pub fn join(shared: &Arc<Shared>, req: IntakeRequest) {
    let Admitted { id, spec, index, client, view } = match admit(shared, &req.payload, req.client) {
        Ok(a) => a,
        Err(e) => {
            shared.metrics.job_refused("join", e.reason_label());
            tracing::warn!(target: "tacit::node", "join refused: {e}");
            req.respond(Err(e.to_string()));
            return;
        }
    };
    let kind = spec.job_type().name();
    let answer = serde_json::to_vec(&view).unwrap_or_default();
    let Some(channel) = req.accept_channel(answer, max_message(&spec)) else { return };
    tracing::info!(target: "tacit::node", job = %hex::encode(id), kind, institution = index, "institution joined");
    if let Some(complete) = park(shared, id, &spec, index, channel) {
        lock(&shared.lobby).ready.insert(id, complete);
        if let Err(e) = shared.enqueue(id, spec, client) {
            lock(&shared.lobby).ready.remove(&id);
            tracing::warn!(target: "tacit::node", job = %hex::encode(id), "job not queued: {e}");
        }
    }
}

/// The largest frame an institution may send for `spec`.
fn max_message(spec: &JobSpec) -> usize {
    match spec {
        JobSpec::RiskQuery { template, .. } => crate::risk::max_input_message(template),
        _ => tacit_psi::link::MAX_LINK_MESSAGE,
    }
}

fn admit(shared: &Arc<Shared>, payload: &[u8], client: Option<Fingerprint>) -> Result<Admitted> {
    let ClientRequest::Join { job_id, spec } = ClientRequest::decode(payload)? else {
        return Err(NodeError::BadRequest("a channel is opened by join only".into()));
    };
    let kind = spec.job_type();
    if !kind.joined() {
        return Err(NodeError::BadRequest(format!("{} is not joined by institutions", kind.name())));
    }
    let name = crate::daemon::authorise(&shared.cfg, client, kind)?;
    spec.validate(shared.cfg.n, shared.cfg.t())?;
    let id = parse_job_id(&job_id)?;
    let (fp, index) = client
        .and_then(|fp| Some((fp, spec.institution_index(&fp)?)))
        .ok_or_else(|| NodeError::Unauthorised { client: name.clone(), job: format!("job {job_id}") })?;
    room(shared, &id, &spec, &fp)?;
    let digest = hex::encode(spec.digest());
    let view = match shared.store.job(&id)? {
        Some(rec) if rec.spec_digest != digest => {
            return Err(NodeError::BadRequest("job id in use with another job".into()));
        }
        Some(rec) if rec.state == JobState::Done => {
            return Err(NodeError::BadRequest(format!("job {job_id} is done")));
        }
        Some(rec) if rec.state == JobState::Running => {
            return Err(NodeError::BadRequest(format!("job {job_id} is running")));
        }
        _ => JobView {
            job_id,
            kind: kind.name().into(),
            state: JobState::Queued,
            attempts: 0,
            result: None,
            error: None,
        },
    };
    Ok(Admitted { id, spec: *spec, index, client: name, view })
}

/// Whether the lobby takes a join of `client` to job `id`: the job is not waiting under
/// another spec, and neither the lobby nor this institution's share of it is full.
fn room(shared: &Shared, id: &[u8; 16], spec: &JobSpec, client: &Fingerprint) -> Result<()> {
    let expiry = shared.cfg.job_timeout();
    let mut lobby = lock(&shared.lobby);
    // Jobs whose institutions never all came are dropped (closing their channels).
    lobby.waiting.retain(|_, w| w.since.elapsed() < expiry);
    match lobby.waiting.get(id) {
        Some(w) if w.digest != spec.digest() => {
            return Err(NodeError::BadRequest("job id in use with another job".into()));
        }
        Some(_) => return Ok(()),
        None if lobby.waiting.len() >= MAX_HELD_JOBS => {
            return Err(NodeError::BadRequest(format!("{MAX_HELD_JOBS} jobs are waiting for institutions: try later")));
        }
        None => {}
    }
    let mine = lobby
        .waiting
        .values()
        .filter(|w| w.institutions.iter().zip(&w.channels).any(|(f, c)| f == client && c.is_some()))
        .count();
    if mine >= MAX_WAITING_PER_INSTITUTION {
        return Err(NodeError::BadRequest(format!(
            "this institution is already waiting in {MAX_WAITING_PER_INSTITUTION} jobs here"
        )));
    }
    Ok(())
}

/// Puts an institution's channel in the lobby; returns all the job's channels once complete.
fn park(
    shared: &Arc<Shared>,
    id: [u8; 16],
    spec: &JobSpec,
    index: usize,
    channel: IntakeChannel,
) -> Option<Vec<IntakeChannel>> {
    let digest = spec.digest();
    let mut lobby = lock(&shared.lobby);
    // Checked by `room` before the channel was accepted; checked again for a racing join.
    if lobby.waiting.get(&id).is_some_and(|w| w.digest != digest) {
        tracing::warn!(target: "tacit::node", job = %hex::encode(id), "join with another spec: dropped");
        return None;
    }
    if !lobby.waiting.contains_key(&id) && lobby.waiting.len() >= MAX_HELD_JOBS {
        tracing::warn!(target: "tacit::node", "{MAX_HELD_JOBS} jobs are waiting for institutions: join dropped");
        return None;
    }
    let waiting = lobby.waiting.entry(id).or_insert_with(|| Waiting {
        digest,
        institutions: spec.institutions().to_vec(),
        channels: spec.institutions().iter().map(|_| None).collect(),
        since: Instant::now(),
    });
    // A second join by the same institution replaces its first channel (a reconnect).
    *waiting.channels.get_mut(index)? = Some(channel);
    if waiting.channels.iter().all(Option::is_some) {
        let w = lobby.waiting.remove(&id)?;
        return Some(w.channels.into_iter().flatten().collect());
    }
    None
}

/// Takes a queued job's channels (in institution order) to run it.
pub fn take(shared: &Shared, id: &[u8; 16]) -> Result<Vec<IntakeChannel>> {
    lock(&shared.lobby)
        .ready
        .remove(id)
        .ok_or_else(|| NodeError::Other("the institutions' channels are gone: they must join again".into()))
}

/// Drops a finished job's channels (if it never ran).
pub fn forget(shared: &Shared, id: &[u8; 16]) {
    lock(&shared.lobby).ready.remove(id);
}
