//! PSI queries hosted by the node. Institutions join a query over channels of the job API
//! (mutual TLS, by certificate fingerprint); the node holds each institution's link in a
//! lobby until every institution listed in the query has joined, then queues the query as a
//! coordinated job, which runs `tacit_psi::run_node` over the mesh with those links.
//! Only public facts go in the job's result: the intersection size is not among them (in
//! `sum` mode the institutions do not learn it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tacit_mpc_engine::transport::intake::IntakeRequest;
use tacit_mpc_engine::transport::quic::{Fingerprint, QuicTransport};
use tacit_mpc_engine::{Security, SessionId};
use tacit_psi::link::{Link, MAX_LINK_MESSAGE};
use tokio::time::Instant;

use crate::api::{parse_job_id, psi_commitments, ClientRequest, JobSpec, JobType, JobView};
use crate::daemon::{Shared, MAX_HELD_JOBS};
use crate::error::{NodeError, Result};
use crate::store::JobState;

/// Links of queries waiting for institutions, and of queries ready to run.
#[derive(Debug, Default)]
pub struct Lobby {
    waiting: HashMap<[u8; 16], Waiting>,
    ready: HashMap<[u8; 16], Vec<Link>>,
}

#[derive(Debug)]
struct Waiting {
    digest: [u8; 32],
    links: Vec<Option<Link>>,
    since: Instant,
}

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

/// Answers a channel request: a PSI join is accepted as the institution's link, anything
/// else refused.
pub fn join(shared: &Arc<Shared>, req: IntakeRequest) {
    let admitted = admit(shared, &req.payload, req.client);
    let Admitted { id, spec, index, client, view } = match admitted {
        Ok(a) => a,
        Err(e) => {
            shared.metrics.job_refused(JobType::PsiQuery.name(), e.reason_label());
            tracing::warn!(target: "tacit::node", kind = JobType::PsiQuery.name(), "join refused: {e}");
            req.respond(Err(e.to_string()));
            return;
        }
    };
    let answer = serde_json::to_vec(&view).unwrap_or_default();
    let Some(channel) = req.accept_channel(answer, MAX_LINK_MESSAGE) else { return };
    let link = Link::over(&format!("institution {index}"), channel, None);
    tracing::info!(target: "tacit::node", job = %hex::encode(id), institution = index, "institution joined");
    if let Some(complete) = park(shared, id, &spec, index, link) {
        lock(&shared.psi).ready.insert(id, complete);
        if let Err(e) = shared.enqueue(id, spec, client) {
            lock(&shared.psi).ready.remove(&id);
            tracing::warn!(target: "tacit::node", job = %hex::encode(id), "query not queued: {e}");
        }
    }
}

fn admit(shared: &Arc<Shared>, payload: &[u8], client: Option<Fingerprint>) -> Result<Admitted> {
    let ClientRequest::PsiJoin { job_id, spec } = ClientRequest::decode(payload)? else {
        return Err(NodeError::BadRequest("a channel is opened by psi_join only".into()));
    };
    let name = crate::daemon::authorise(&shared.cfg, client, JobType::PsiQuery)?;
    if spec.job_type() != JobType::PsiQuery {
        return Err(NodeError::BadRequest("psi_join carries a psi_query".into()));
    }
    spec.validate(shared.cfg.n, shared.cfg.t())?;
    let id = parse_job_id(&job_id)?;
    let index = client
        .and_then(|fp| spec.institution_index(&fp))
        .ok_or_else(|| NodeError::Unauthorised { client: name.clone(), job: format!("query {job_id}") })?;
    let digest = hex::encode(spec.digest());
    let view = match shared.store.job(&id)? {
        Some(rec) if rec.spec_digest != digest => {
            return Err(NodeError::BadRequest("job id in use with another job".into()));
        }
        Some(rec) if rec.state == JobState::Done => {
            return Err(NodeError::BadRequest(format!("query {job_id} is done")));
        }
        Some(rec) if rec.state == JobState::Running => {
            return Err(NodeError::BadRequest(format!("query {job_id} is running")));
        }
        _ => JobView {
            job_id,
            kind: JobType::PsiQuery.name().into(),
            state: JobState::Queued,
            attempts: 0,
            result: None,
            error: None,
        },
    };
    Ok(Admitted { id, spec: *spec, index, client: name, view })
}

/// Puts an institution's link in the lobby; returns all the query's links once complete.
fn park(shared: &Arc<Shared>, id: [u8; 16], spec: &JobSpec, index: usize, link: Link) -> Option<Vec<Link>> {
    let JobSpec::PsiQuery { institutions, .. } = spec else { return None };
    let digest = spec.digest();
    let expiry = shared.cfg.job_timeout();
    let mut lobby = lock(&shared.psi);
    // Queries whose institutions never all came are dropped (closing their links).
    lobby.waiting.retain(|_, w| w.since.elapsed() < expiry);
    if lobby.waiting.get(&id).is_some_and(|w| w.digest != digest) {
        tracing::warn!(target: "tacit::node", job = %hex::encode(id), "join with another spec: dropped");
        return None;
    }
    if !lobby.waiting.contains_key(&id) && lobby.waiting.len() >= MAX_HELD_JOBS {
        tracing::warn!(target: "tacit::node", "{MAX_HELD_JOBS} queries are waiting for institutions: join dropped");
        return None;
    }
    let waiting = lobby.waiting.entry(id).or_insert_with(|| Waiting {
        digest,
        links: (0..institutions.len()).map(|_| None).collect(),
        since: Instant::now(),
    });
    // A second join by the same institution replaces its first link (a reconnect).
    *waiting.links.get_mut(index)? = Some(link);
    if waiting.links.iter().all(Option::is_some) {
        let w = lobby.waiting.remove(&id)?;
        return Some(w.links.into_iter().flatten().collect());
    }
    None
}

/// Drops a finished query's links (if it never ran).
pub fn forget(shared: &Shared, id: &[u8; 16]) {
    lock(&shared.psi).ready.remove(id);
}

/// Runs a queued query at this node.
pub async fn run(
    shared: &Shared,
    id: &[u8; 16],
    spec: &JobSpec,
    transport: Arc<QuicTransport>,
    session: SessionId,
) -> Result<serde_json::Value> {
    let JobSpec::PsiQuery { mode, institutions, commitments } = spec else {
        return Err(NodeError::Other("not a PSI query".into()));
    };
    let links = lock(&shared.psi)
        .ready
        .remove(id)
        .ok_or_else(|| NodeError::Other("the institutions' links are gone: they must join again".into()))?;
    let commitments = commitments.as_deref().map(psi_commitments).transpose()?;
    let config = tacit_psi::NodeConfig {
        t: shared.cfg.t(),
        security: Security::Malicious,
        session,
        mode: *mode,
        commitments,
        cheat: None,
    };
    // Nodes wait on institutions (and each other) longer than the mesh's receive timeout.
    let patient = Arc::new(crate::jobs::Patient::new(transport, Duration::from_secs(600)));
    tacit_psi::run_node(patient, config, links).await.map_err(psi_err)?;
    Ok(serde_json::json!({ "mode": mode.name(), "institutions": institutions.len() }))
}

fn psi_err(e: tacit_psi::PsiError) -> NodeError {
    match e {
        tacit_psi::PsiError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) => NodeError::Transport(t),
        other => NodeError::Other(format!("psi: {other}")),
    }
}
