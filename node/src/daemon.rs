//! The node: store, signer, mesh, job API, metrics and the coordinator, with graceful
//! shutdown (stop accepting, let the job in flight finish within `shutdown_ms` or abort it,
//! fail what is still queued, close the mesh and the store).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tacit_mpc_engine::transport::intake::{IntakeRequest, IntakeServer};
use tacit_mpc_engine::transport::quic::Fingerprint;
use tacit_mpc_engine::PartyId;
use tacit_signer::Node as SignerNode;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::api::{new_job_id, parse_job_id, ClientRequest, JobSpec, JobType, JobView};
use crate::config::NodeConfig;
use crate::error::{NodeError, Result};
use crate::jobs::Resolved;
use crate::mesh::Mesh;
use crate::metrics::Metrics;
use crate::store::{now, JobRecord, JobState, NodeStore};

/// Jobs held in memory (queued or running) at most; further submissions are refused.
pub const MAX_HELD_JOBS: usize = 1024;

/// A job this node holds in memory (queued or running).
#[derive(Debug)]
struct Entry {
    spec: JobSpec,
    digest: [u8; 32],
    client: Option<String>,
    submitted: Instant,
    started: Option<Instant>,
    done: watch::Sender<Option<JobView>>,
    /// A follower's record of this job finished here in an earlier attempt: the copy is held
    /// again in case the proposer runs a new attempt (it did not finish the earlier one); if
    /// instead it does not run it, this record is the answer.
    done_before: Option<JobView>,
}

#[derive(Debug, Default)]
struct Registry {
    entries: HashMap<[u8; 16], Entry>,
    queue: VecDeque<[u8; 16]>,
}

/// State shared by the node's tasks.
#[derive(Debug)]
pub struct Shared {
    /// Configuration.
    pub cfg: NodeConfig,
    /// The node's store.
    pub store: NodeStore,
    /// The signer (its own encrypted store, same key).
    pub signer: SignerNode,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The peer mesh.
    pub mesh: Mesh,
    /// The proposer (party 1).
    pub leader: PartyId,
    /// Signalled when a job is queued.
    pub notify: Notify,
    registry: Mutex<Registry>,
    notices: Mutex<Vec<crate::coord::Control>>,
    /// Jobs the proposer said the others finished (follower): (job, attempt, when heard).
    finished_elsewhere: Mutex<VecDeque<([u8; 16], u32, std::time::Instant)>>,
    /// Institutions' channels of joined jobs.
    pub(crate) lobby: Mutex<crate::lobby::Lobby>,
    /// The node's view of the chain (hosted auctions), if it follows one.
    pub chain: Option<crate::auction::ChainView>,
}

fn view(rec: &JobRecord) -> JobView {
    JobView {
        job_id: rec.id.clone(),
        kind: rec.kind.clone(),
        state: rec.state,
        attempts: rec.attempts,
        result: rec.result.clone(),
        error: rec.error.clone(),
    }
}

impl Shared {
    fn reg(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_queue_metric(&self, reg: &Registry) {
        self.metrics.set_queue_depth(reg.queue.len());
    }

    /// Notices for the peers outside proposals (proposer): aborts and finished jobs.
    pub fn take_notices(&self) -> Vec<crate::coord::Control> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Keeps notices for a later attempt (at most 1024; one copy of each, so a client asking
    /// again and again for a finished job queues one notice).
    pub fn keep_notices(&self, pending: Vec<crate::coord::Control>) {
        let mut a = self.notices.lock().unwrap_or_else(|e| e.into_inner());
        for notice in pending {
            if !a.contains(&notice) {
                a.push(notice);
            }
        }
        let excess = a.len().saturating_sub(1024);
        a.drain(..excess);
    }

    /// Queues one abort.
    pub fn add_abort(&self, job: String, reason: String) {
        self.keep_notices(vec![crate::coord::Control::Abort { job, reason }]);
        self.notify.notify_one();
    }

    /// Follower: the proposer says the other nodes finished `id` in `attempt` while this node
    /// was not part of it (e.g. it was killed after its last message). A copy held here that is
    /// not running fails with that reason, and one that arrives shortly after does too.
    pub fn finished_elsewhere(&self, id: [u8; 16], attempt: u32) {
        {
            let mut heard = self.finished_elsewhere.lock().unwrap_or_else(|e| e.into_inner());
            heard.retain(|(j, _, _)| *j != id);
            heard.push_back((id, attempt, std::time::Instant::now()));
            let excess = heard.len().saturating_sub(64);
            heard.drain(..excess);
        }
        let waiting = self.reg().entries.get(&id).is_some_and(|e| e.started.is_none());
        if waiting {
            self.finish_as_elsewhere(&id, attempt);
        }
    }

    /// Finishes a held copy of `id` that the other nodes finished in `attempt` without this
    /// node: done if what the job stores is held here anyway (a presign batch this node stored
    /// before it lost the job), else failed with [`NodeError::FinishedWithout`].
    fn finish_as_elsewhere(&self, id: &[u8; 16], attempt: u32) {
        let Some(spec) = self.reg().entries.get(id).map(|e| e.spec.clone()) else { return };
        let outcome = match crate::jobs::finish_presign_elsewhere(&self.signer, &spec, id, attempt) {
            Ok(Some(result)) => Ok(result),
            Ok(None) => Err(NodeError::FinishedWithout { leader: self.leader, attempt }),
            Err(e) => Err(e),
        };
        self.finish(id, attempt, outcome);
    }

    /// A notice from the proposer about `id` heard within `recent`, if any (its attempt).
    fn heard_finished(&self, id: &[u8; 16], recent: Duration) -> Option<u32> {
        let heard = self.finished_elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        heard.iter().find(|(j, _, at)| j == id && at.elapsed() < recent).map(|(_, a, _)| *a)
    }

    /// The next queued job (proposer).
    pub fn pop_queued(&self) -> Option<[u8; 16]> {
        let mut reg = self.reg();
        while let Some(id) = reg.queue.pop_front() {
            if reg.entries.contains_key(&id) {
                self.update_queue_metric(&reg);
                return Some(id);
            }
        }
        self.update_queue_metric(&reg);
        None
    }

    /// A queued job's spec, digest and whether it is the node's own.
    pub fn entry_spec(&self, id: &[u8; 16]) -> Option<(JobSpec, [u8; 32], bool)> {
        self.reg().entries.get(id).map(|e| (e.spec.clone(), e.digest, e.client.is_none()))
    }

    /// What the proposer fixes for a job before proposing it.
    pub fn resolve(&self, spec: &JobSpec) -> Result<Resolved> {
        match spec {
            JobSpec::SignerSign { intent, signers, presig_id: None, .. } => {
                let ids: Vec<PartyId> = signers.iter().filter_map(|s| PartyId::new(*s)).collect();
                if !ids.contains(&self.cfg.me) {
                    return Err(NodeError::BadRequest(format!(
                        "the proposer ({}) is not in signer set {signers:?}: name a presig_id",
                        self.cfg.me
                    )));
                }
                let id = self.signer.choose_presig(intent, &ids, now())?.ok_or_else(|| {
                    NodeError::Other(format!("no presignature for signer set {signers:?} in the pool"))
                })?;
                Ok(Resolved { presig_id: Some(id), ..Resolved::default() })
            }
            JobSpec::SignerReshare { .. } => {
                let p = self.signer.key_public()?;
                Ok(Resolved { key_public: Some(hex::encode(p.to_bytes())), ..Resolved::default() })
            }
            JobSpec::AuctionBench { .. } => {
                // The batches covering what this shape used last time; none on its first run
                // (it generates its own preprocessing and the demand is recorded).
                let demand = crate::jobs::demand_shape(spec).and_then(|shape| crate::prep::demand(&self.store, &shape));
                let prep_batches = match demand {
                    Some(d) => crate::prep::choose(&self.store, d, self.cfg.file.pools.mpc.counts())?,
                    None => Vec::new(),
                };
                Ok(Resolved { prep_batches, ..Resolved::default() })
            }
            _ => Ok(Resolved::default()),
        }
    }

    /// A job to refill a pool, if one is low (proposer): presignatures first, then MPC
    /// preprocessing batches.
    pub fn pool_refill(&self) -> Option<JobSpec> {
        self.presign_refill().or_else(|| self.prep_refill())
    }

    fn prep_refill(&self) -> Option<JobSpec> {
        let mpc = &self.cfg.file.pools.mpc;
        if mpc.batches == 0 {
            return None;
        }
        let level = match crate::prep::level(&self.store) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(target: "tacit::node", "store: {e}");
                return None;
            }
        };
        if level >= mpc.batches || (level >= mpc.low_water && mpc.batches - level < mpc.per_refill) {
            return None;
        }
        let batches = mpc.per_refill.min(mpc.batches - level);
        let first_seq = match crate::prep::reserve_seqs(&self.store, batches) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target: "tacit::node", "store: {e}");
                return None;
            }
        };
        Some(JobSpec::PrepRefill { first_seq, batches, doubles: mpc.doubles, randoms: mpc.randoms, bits: mpc.bits })
    }

    fn presign_refill(&self) -> Option<JobSpec> {
        let pools = &self.cfg.file.pools;
        if pools.presignatures == 0 || self.signer.key_share().is_err() {
            return None;
        }
        for (set, (_, level)) in
            self.cfg.pool_sets.iter().zip(crate::jobs::pool_levels(&self.signer, &self.cfg.pool_sets))
        {
            if !set.contains(&self.cfg.me.get()) {
                continue;
            }
            let target = pools.presignatures;
            if level < target && (level < pools.low_water || target - level >= pools.batch) {
                return Some(JobSpec::SignerPresign { count: pools.batch.min(target - level), signers: set.clone() });
            }
        }
        None
    }

    fn insert_entry(&self, reg: &mut Registry, id: [u8; 16], spec: JobSpec, client: Option<String>) {
        let digest = spec.digest();
        let (done, _) = watch::channel(None);
        let entry = Entry { spec, digest, client, submitted: Instant::now(), started: None, done, done_before: None };
        reg.entries.insert(id, entry);
        reg.queue.push_back(id);
        self.update_queue_metric(reg);
    }

    /// Registers one of the node's own jobs (pool refill); returns its id.
    pub fn register_internal(&self, spec: JobSpec) -> [u8; 16] {
        let id = parse_job_id(&new_job_id()).unwrap_or([0; 16]);
        let rec = JobRecord::queued(&id, spec.job_type().name(), &spec.digest(), None);
        if let Err(e) = self.store.put_job(&id, &rec, "internal") {
            tracing::error!(target: "tacit::node", "store: {e}");
        }
        let mut reg = self.reg();
        self.insert_entry(&mut reg, id, spec, None);
        reg.queue.retain(|q| *q != id);
        self.update_queue_metric(&reg);
        id
    }

    fn record(&self, id: &[u8; 16]) -> Option<JobRecord> {
        match self.store.job(id) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(target: "tacit::node", "store: {e}");
                None
            }
        }
    }

    /// Counts a new attempt (proposer); returns its number.
    pub fn start_attempt(&self, id: &[u8; 16]) -> u32 {
        let Some(mut rec) = self.record(id) else { return 1 };
        rec.attempts = rec.attempts.saturating_add(1);
        rec.state = JobState::Running;
        rec.error = None;
        rec.updated = now();
        if let Err(e) = self.store.put_job(id, &rec, "attempt") {
            tracing::error!(target: "tacit::node", "store: {e}");
        }
        rec.attempts
    }

    /// Marks a job running at `attempt`.
    pub fn mark_running(&self, id: &[u8; 16], attempt: u32) {
        if let Some(e) = self.reg().entries.get_mut(id) {
            e.started = Some(Instant::now());
        }
        let Some(mut rec) = self.record(id) else { return };
        if rec.state == JobState::Running && rec.attempts == attempt {
            return;
        }
        rec.attempts = attempt.max(rec.attempts);
        rec.state = JobState::Running;
        rec.updated = now();
        if let Err(e) = self.store.put_job(id, &rec, "run") {
            tracing::error!(target: "tacit::node", "store: {e}");
        }
    }

    /// Records a job's outcome, answers its waiting clients, updates the metrics.
    pub fn finish(&self, id: &[u8; 16], attempt: u32, result: Result<serde_json::Value>) {
        let entry = {
            let mut reg = self.reg();
            reg.queue.retain(|q| q != id);
            let e = reg.entries.remove(id);
            self.update_queue_metric(&reg);
            e
        };
        crate::lobby::forget(self, id);
        let Some(entry) = entry else { return };
        if let (Some(before), None, Err(_)) = (&entry.done_before, entry.started, &result) {
            // Not run again (the proposer had finished it too, or the mesh is down): the
            // record of the earlier attempt stands.
            let _ = entry.done.send(Some(before.clone()));
            return;
        }
        let kind = entry.spec.job_type().name();
        let mut rec =
            self.record(id).unwrap_or_else(|| JobRecord::queued(id, kind, &entry.digest, entry.client.clone()));
        rec.attempts = rec.attempts.max(attempt).max(1);
        rec.updated = now();
        let secs = entry.started.unwrap_or(entry.submitted).elapsed().as_secs_f64();
        match &result {
            Ok(v) => {
                rec.state = JobState::Done;
                rec.result = Some(v.clone());
                rec.error = None;
                self.metrics.job_finished(kind, "done", secs, None);
                if matches!(entry.spec, JobSpec::SignerSign { .. }) {
                    self.metrics.sign_approval_latency(entry.submitted.elapsed().as_secs_f64());
                }
                tracing::info!(target: "tacit::node", job = %rec.id, kind, attempt, seconds = secs, "job done");
            }
            Err(e) => {
                rec.state = JobState::Failed;
                rec.error = Some(e.to_string());
                self.metrics.job_finished(kind, "failed", secs, Some(e.reason_label()));
                let culprit = e.culprit().map(|p| p.to_string()).unwrap_or_default();
                tracing::warn!(target: "tacit::node", job = %rec.id, kind, attempt, culprit = %culprit, "job failed: {e}");
            }
        }
        let event = if rec.state == JobState::Done { "done" } else { "failed" };
        if let Err(e) = self.store.put_job(id, &rec, event) {
            tracing::error!(target: "tacit::node", "store: {e}");
        }
        self.update_pool_metrics();
        let _ = entry.done.send(Some(view(&rec)));
    }

    /// Refreshes the pool gauges.
    pub fn update_pool_metrics(&self) {
        let target = self.cfg.file.pools.presignatures;
        for (label, level) in crate::jobs::pool_levels(&self.signer, &self.cfg.pool_sets) {
            self.metrics.set_pool("presignatures", &label, level, target);
        }
        let mpc = &self.cfg.file.pools.mpc;
        if mpc.batches > 0 {
            match crate::prep::level(&self.store) {
                // Every party takes part in an MPC job: the signer-set label is "all".
                Ok(level) => self.metrics.set_pool("mpc_batches", "all", level, mpc.batches),
                Err(e) => tracing::error!(target: "tacit::node", "store: {e}"),
            }
        }
    }

    /// A follower's check of a proposal: the job is held here from an authorised client with
    /// the same spec (waiting up to `proposal_wait` for the client's copy), or it is an
    /// internal pool refill this node's configuration allows.
    pub async fn check_proposal(
        &self,
        job: &str,
        digest: &str,
        internal: Option<JobSpec>,
    ) -> Result<([u8; 16], JobSpec)> {
        let id = parse_job_id(job)?;
        if let Some(spec) = internal {
            let allowed = match &spec {
                JobSpec::SignerPresign { count, signers } => {
                    *count <= self.cfg.file.pools.batch && self.cfg.pool_sets.contains(signers)
                }
                JobSpec::PrepRefill { batches, doubles, randoms, bits, .. } => {
                    let mpc = &self.cfg.file.pools.mpc;
                    mpc.batches > 0
                        && *batches <= mpc.per_refill
                        && (*doubles, *randoms, *bits) == (mpc.doubles, mpc.randoms, mpc.bits)
                }
                _ => false,
            };
            if !allowed || hex::encode(spec.digest()) != digest {
                return Err(NodeError::BadRequest(format!("internal job {job} is not allowed here")));
            }
            let rec = JobRecord::queued(&id, spec.job_type().name(), &spec.digest(), None);
            let mut reg = self.reg();
            if !reg.entries.contains_key(&id) {
                self.store.put_job(&id, &rec, "internal")?;
                self.insert_entry(&mut reg, id, spec.clone(), None);
            }
            return Ok((id, spec));
        }
        let deadline = Instant::now() + self.cfg.proposal_wait();
        loop {
            if let Some(e) = self.reg().entries.get(&id) {
                if hex::encode(e.digest) != digest {
                    return Err(NodeError::BadRequest(format!("job {job} differs from the client's copy here")));
                }
                return Ok((id, e.spec.clone()));
            }
            if Instant::now() >= deadline {
                return Err(NodeError::BadRequest(format!("job {job} was not submitted here by an authorised client")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails the jobs queued for longer than `age` (a follower whose mesh is down).
    pub fn fail_waiting(&self, age: Duration, why: &NodeError) {
        let ids: Vec<[u8; 16]> = self
            .reg()
            .entries
            .iter()
            .filter(|(_, e)| e.started.is_none() && e.submitted.elapsed() >= age)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.finish(&id, 0, Err(NodeError::Other(format!("the mesh is down: {why}"))));
        }
    }

    /// Fails every job still held (shutdown).
    fn fail_pending(&self) {
        let ids: Vec<[u8; 16]> = self.reg().entries.keys().copied().collect();
        for id in ids {
            self.finish(&id, 0, Err(NodeError::ShuttingDown));
        }
    }
}

pub(crate) fn authorise(cfg: &NodeConfig, client: Option<Fingerprint>, job: JobType) -> Result<String> {
    let fp = client.ok_or_else(|| NodeError::Unauthorised { client: "anonymous".into(), job: job.name().into() })?;
    let entry = cfg
        .client_policy(&fp)
        .ok_or_else(|| NodeError::Unauthorised { client: fp.to_hex(), job: job.name().into() })?;
    if entry.jobs.iter().any(|j| j == "*" || j == job.name()) {
        Ok(entry.name.clone())
    } else {
        Err(NodeError::Unauthorised { client: format!("{} ({})", entry.name, fp.to_hex()), job: job.name().into() })
    }
}

async fn handle(shared: Arc<Shared>, req: IntakeRequest) {
    if req.wants_channel {
        crate::lobby::join(&shared, req);
        return;
    }
    let answer = handle_inner(&shared, &req.payload, req.client).await;
    let answer = answer.and_then(|v| serde_json::to_vec(&v).map_err(|e| NodeError::Other(e.to_string())));
    req.respond(answer.map_err(|e| e.to_string()));
}

async fn handle_inner(shared: &Arc<Shared>, payload: &[u8], client: Option<Fingerprint>) -> Result<JobView> {
    let request = match ClientRequest::decode(payload) {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.job_refused("unknown", e.reason_label());
            return Err(e);
        }
    };
    match request {
        ClientRequest::Status { job_id } => {
            authorise(&shared.cfg, client, JobType::JobStatus)?;
            let id = parse_job_id(&job_id)?;
            shared.store.job(&id)?.map(|r| view(&r)).ok_or_else(|| NodeError::BadRequest(format!("no job {job_id}")))
        }
        ClientRequest::Join { .. } => Err(NodeError::BadRequest("join needs a channel request".into())),
        ClientRequest::Submit { spec, .. } if spec.job_type().joined() => {
            Err(NodeError::BadRequest(format!("institutions join {} jobs (join)", spec.job_type().name())))
        }
        ClientRequest::Submit { job_id, spec } => {
            let kind = spec.job_type();
            let checked = authorise(&shared.cfg, client, kind).and_then(|name| {
                spec.validate(shared.cfg.n, shared.cfg.t())?;
                Ok((name, parse_job_id(&job_id)?))
            });
            let (name, id) = match checked {
                Ok(v) => v,
                Err(e) => {
                    shared.metrics.job_refused(kind.name(), e.reason_label());
                    tracing::warn!(target: "tacit::node", kind = kind.name(), "request refused: {e}");
                    return Err(e);
                }
            };
            if kind.coordinated() {
                submit_coordinated(shared, id, *spec, name).await
            } else {
                run_local(shared, id, *spec, name).await
            }
        }
    }
}

async fn run_local(shared: &Arc<Shared>, id: [u8; 16], spec: JobSpec, client: String) -> Result<JobView> {
    let started = Instant::now();
    let result = match &spec {
        JobSpec::AuctionHost { auction, proving_key } => crate::auction::host(shared, auction, proving_key).await,
        _ => crate::jobs::run_local(&shared.signer, &spec, &shared.cfg.pool_sets),
    };
    let kind = spec.job_type().name();
    let mut rec =
        JobRecord { state: JobState::Done, attempts: 1, ..JobRecord::queued(&id, kind, &spec.digest(), Some(client)) };
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(v) => {
            rec.result = Some(v);
            shared.metrics.job_finished(kind, "done", secs, None);
        }
        Err(e) => {
            rec.state = JobState::Failed;
            rec.error = Some(e.to_string());
            shared.metrics.job_finished(kind, "failed", secs, Some(e.reason_label()));
        }
    }
    if kind != JobType::SignerInfo.name() {
        shared.store.put_job(&id, &rec, "local")?;
    }
    Ok(view(&rec))
}

async fn submit_coordinated(shared: &Arc<Shared>, id: [u8; 16], spec: JobSpec, client: String) -> Result<JobView> {
    let mut rx = match shared.enqueue(id, spec, client)? {
        Queued::Done(view) => return Ok(view),
        Queued::Waiting(rx) => rx,
    };
    let wait = async {
        loop {
            if let Some(v) = rx.borrow_and_update().clone() {
                return Ok(v);
            }
            if rx.changed().await.is_err() {
                return Err(NodeError::ShuttingDown);
            }
        }
    };
    match tokio::time::timeout(shared.cfg.job_timeout(), wait).await {
        Ok(r) => r,
        Err(_) => shared.store.job(&id)?.map(|r| view(&r)).ok_or_else(|| NodeError::Other("job vanished".into())),
    }
}

/// Where a client's coordinated job stands once submitted.
#[derive(Debug)]
pub enum Queued {
    /// It had finished before: its record.
    Done(JobView),
    /// Queued (or already held): its outcome arrives here.
    Waiting(watch::Receiver<Option<JobView>>),
}

impl Shared {
    /// Queues a client's coordinated job (a failed one is retried; a finished one answered
    /// from the store).
    pub fn enqueue(&self, id: [u8; 16], spec: JobSpec, client: String) -> Result<Queued> {
        let digest = spec.digest();
        let mut reg = self.reg();
        if let Some(e) = reg.entries.get(&id) {
            if e.digest != digest {
                return Err(NodeError::BadRequest("job id in use with another job".into()));
            }
            return Ok(Queued::Waiting(e.done.subscribe()));
        }
        if reg.entries.len() >= MAX_HELD_JOBS {
            return Err(NodeError::BadRequest(format!("{MAX_HELD_JOBS} jobs are waiting: try later")));
        }
        let rec = match self.store.job(&id)? {
            Some(rec) if rec.spec_digest != hex::encode(digest) => {
                return Err(NodeError::BadRequest("job id in use with another job".into()));
            }
            Some(rec) if rec.state == JobState::Done => {
                if self.cfg.me == self.leader && rec.client.is_some() {
                    // A client asks again for a job finished here: a peer may hold a copy it
                    // lost (killed after its last message), which no proposal will ever run.
                    self.keep_notices(vec![crate::coord::Control::Finished {
                        job: rec.id.clone(),
                        attempt: rec.attempts,
                    }]);
                    self.notify.notify_one();
                }
                if self.cfg.me == self.leader {
                    return Ok(Queued::Done(view(&rec)));
                }
                // A follower cannot tell whether the proposer finished that attempt too (a
                // non-member's part of a signature, say, ends before the signers'): it holds
                // the copy again, and answers this record unless a new attempt is proposed.
                self.insert_entry(&mut reg, id, spec, Some(client));
                if let Some(e) = reg.entries.get_mut(&id) {
                    e.done_before = Some(view(&rec));
                }
                let rx = reg.entries.get(&id).map(|e| e.done.subscribe());
                drop(reg);
                if let Some(attempt) = self.heard_finished(&id, self.cfg.proposal_wait() * 2) {
                    self.finish(&id, attempt, Err(NodeError::FinishedWithout { leader: self.leader, attempt }));
                }
                return rx.map(Queued::Waiting).ok_or_else(|| NodeError::Other("job vanished".into()));
            }
            Some(mut rec) => {
                rec.state = JobState::Queued;
                rec.error = None;
                rec.updated = now();
                rec
            }
            None => JobRecord::queued(&id, spec.job_type().name(), &digest, Some(client.clone())),
        };
        let event = if rec.attempts > 0 { "retry" } else { "submit" };
        self.store.put_job(&id, &rec, event)?;
        self.insert_entry(&mut reg, id, spec, Some(client));
        let rx = reg.entries.get(&id).map(|e| e.done.subscribe());
        drop(reg);
        if let Some(attempt) = self.heard_finished(&id, self.cfg.proposal_wait() * 2) {
            // The proposer's notice came before the client's copy.
            self.finish_as_elsewhere(&id, attempt);
        }
        self.notify.notify_one();
        rx.map(Queued::Waiting).ok_or_else(|| NodeError::Other("job vanished".into()))
    }
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    /// Where the job API listens.
    pub api_addr: SocketAddr,
    /// Where `/metrics` is served.
    pub metrics_addr: Option<SocketAddr>,
    /// The shared state (tests).
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeHandle {
    /// Graceful shutdown; returns once the store is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Opens the store (recovering interrupted jobs), the signer, the metrics endpoint, the job
/// API and the mesh, and starts the coordinator.
pub async fn start(cfg: NodeConfig) -> Result<NodeHandle> {
    let data = cfg.data_dir();
    std::fs::create_dir_all(&data).map_err(|e| NodeError::Store(format!("{}: {e}", data.display())))?;
    let (store, signer) = crate::cli::open_stores(&cfg)?;
    let interrupted = store.recover()?;
    let metrics = Arc::new(Metrics::default());
    let metrics_addr = match cfg.file.metrics_listen {
        Some(addr) => Some(
            crate::metrics::serve(addr, metrics.clone())
                .await
                .map_err(|e| NodeError::Config(format!("metrics on {addr}: {e}")))?,
        ),
        None => None,
    };
    // A node restarted at once may find its UDP ports still held by its previous endpoints,
    // which release them asynchronously: wait for them a little instead of failing.
    wait_for_udp_port(cfg.file.api_listen).await;
    wait_for_udp_port(cfg.file.mesh_listen).await;
    let mut intake = IntakeServer::bind_authenticated(cfg.file.api_listen, &cfg.quic.identity, cfg.file.max_request)?;
    let api_addr = intake.local_addr()?;
    let leader = PartyId::new(1).ok_or_else(|| NodeError::Config("no party 1".into()))?;
    let chain = cfg.chain_journal().map(crate::auction::ChainView::open).transpose()?;
    let bids = match cfg.file.bid_listen {
        Some(addr) => {
            wait_for_udp_port(addr).await;
            Some(IntakeServer::bind(addr, &cfg.quic.identity, tacit_auction::bidder::PACKET_LEN)?)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        chain,
        mesh: Mesh::new(cfg.quic.clone(), metrics.clone()),
        cfg,
        store,
        signer,
        metrics,
        leader,
        notify: Notify::new(),
        registry: Mutex::new(Registry::default()),
        notices: Mutex::new(Vec::new()),
        finished_elsewhere: Mutex::new(VecDeque::new()),
        lobby: Mutex::new(crate::lobby::Lobby::default()),
    });
    shared.update_pool_metrics();
    tracing::info!(
        target: "tacit::node",
        party = shared.cfg.me.get(),
        api = %api_addr,
        mesh = %shared.cfg.file.mesh_listen,
        interrupted,
        "node started"
    );
    let (stop, stop_rx) = watch::channel(false);
    let coordinator = {
        let shared = shared.clone();
        let stop_rx = stop_rx.clone();
        if shared.cfg.me == shared.leader {
            tokio::spawn(crate::coord::lead(shared, stop_rx))
        } else {
            tokio::spawn(crate::coord::follow(shared, stop_rx))
        }
    };
    tokio::spawn(crate::psi::preload(shared.clone()));
    if let Some(mut bids) = bids {
        let shared = shared.clone();
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = bids.next() => match r {
                        Some(req) => { tokio::spawn(crate::auction::accept_bid(shared.clone(), req)); }
                        None => break,
                    },
                    _ = stop_rx.changed() => break,
                }
            }
            bids.close();
        });
    }
    let task = {
        let shared = shared.clone();
        let mut stop_rx = stop_rx;
        let metrics_task = metrics_addr.as_ref().map(|(_, t)| t.abort_handle());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = intake.next() => match r {
                        Some(req) => { tokio::spawn(handle(shared.clone(), req)); }
                        None => break,
                    },
                    _ = stop_rx.changed() => break,
                }
            }
            tracing::info!(target: "tacit::node", party = shared.cfg.me.get(), "shutting down: no new jobs");
            intake.close();
            let limit = Duration::from_millis(shared.cfg.file.timeouts.shutdown_ms);
            let abort = coordinator.abort_handle();
            if tokio::time::timeout(limit, coordinator).await.is_err() {
                abort.abort();
                tracing::warn!(target: "tacit::node", "the job in flight was aborted at shutdown");
            }
            shared.fail_pending();
            shared.mesh.shutdown().await;
            let _ = shared.store.audit("stop", "graceful shutdown");
            if let Some(m) = metrics_task {
                m.abort();
            }
            tracing::info!(target: "tacit::node", party = shared.cfg.me.get(), "stopped");
        })
    };
    Ok(NodeHandle { api_addr, metrics_addr: metrics_addr.map(|(a, _)| a), shared, stop, task })
}

/// Runs the node until `signal` completes, then shuts down gracefully.
pub async fn run(cfg: NodeConfig, signal: impl std::future::Future<Output = ()>) -> Result<()> {
    let node = start(cfg).await?;
    signal.await;
    node.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn termination() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Returns once `addr` can be bound for UDP, or after 10 s (the bind that follows then
/// reports the error).
async fn wait_for_udp_port(addr: std::net::SocketAddr) {
    if addr.port() == 0 {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::UdpSocket::bind(addr).is_err() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
