//! Job execution at one node. Coordinated jobs run over the mesh under the session the nodes
//! agreed on (see [`crate::coord`]); local jobs answer from this node's state alone. Results
//! hold public values only (key id, address, presignature ids, signatures).

use std::sync::Arc;

use serde_json::json;
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{Engine, PartyId, PrepCounts, PrepMeter, Security, SessionId};
use tacit_signer::curve::{keccak, point_to_bytes, Scalar};
use tacit_signer::dkg::DkgFaults;
use tacit_signer::keys::KeyPublic;
use tacit_signer::presign::PresignFaults;
use tacit_signer::{Node as SignerNode, SignRequest};

use crate::api::JobSpec;
use crate::error::{NodeError, Result};
use crate::store::{now, NodeStore};

/// What the proposing node resolved for a job (e.g. which pool presignature a signing uses).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolved {
    /// The presignature a signing job uses (hex).
    #[serde(default, with = "crate::api::hex32", skip_serializing_if = "Option::is_none")]
    pub presig_id: Option<[u8; 32]>,
    /// The public key description, for a replaced node that has none yet (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_public: Option<String>,
    /// The preprocessing batches an MPC job loads (hex ids, see [`crate::prep`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prep_batches: Vec<String>,
}

fn key_json(p: &KeyPublic) -> serde_json::Value {
    json!({
        "key_id": hex::encode(p.key_id),
        "epoch": p.epoch,
        "address": p.address().map(|a| format!("0x{}", hex::encode(a))).unwrap_or_default(),
        "public_key_hash": hex::encode(keccak(&point_to_bytes(&p.public_key))),
    })
}

fn ids(signers: &[u16]) -> Result<Vec<PartyId>> {
    signers.iter().map(|s| PartyId::new(*s).ok_or_else(|| NodeError::BadRequest(format!("no party {s}")))).collect()
}

/// Runs coordinated job `job` at this node.
#[allow(clippy::too_many_arguments)]
pub async fn run_coordinated(
    signer: &SignerNode,
    store: &NodeStore,
    job: &[u8; 16],
    transport: Arc<QuicTransport>,
    t: usize,
    session: SessionId,
    spec: &JobSpec,
    resolved: &Resolved,
) -> Result<serde_json::Value> {
    let me = signer.id();
    match spec {
        JobSpec::SignerDkg | JobSpec::SignerRefresh | JobSpec::SignerReshare { .. } => {
            let mut engine: Engine<Scalar, QuicTransport> =
                Engine::new(transport.clone(), t, Security::Malicious, session)
                    .map_err(tacit_signer::SignerError::from)?;
            let f = DkgFaults::default();
            let (share, event) = match spec {
                JobSpec::SignerDkg => (tacit_signer::dkg::dkg(&mut engine, &transport, session, &f).await?, "dkg"),
                JobSpec::SignerRefresh => {
                    let old = signer.key_share()?;
                    (tacit_signer::dkg::refresh(&mut engine, &transport, session, &old, &f).await?, "refresh")
                }
                JobSpec::SignerReshare { replaced } => {
                    let replaced =
                        PartyId::new(*replaced).ok_or_else(|| NodeError::BadRequest("no such party".into()))?;
                    let public = match signer.key_public() {
                        Ok(p) => p,
                        Err(_) if me == replaced => {
                            let hexed = resolved
                                .key_public
                                .as_ref()
                                .ok_or_else(|| NodeError::Other("no public key for the replaced node".into()))?;
                            let bytes =
                                hex::decode(hexed).map_err(|_| NodeError::Other("public key not hex".into()))?;
                            let p = KeyPublic::from_bytes(&bytes)?;
                            signer.set_public(&p)?;
                            p
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let old = if me == replaced { None } else { Some(signer.key_share()?) };
                    let share = tacit_signer::dkg::reshare(
                        &mut engine,
                        &transport,
                        session,
                        &public,
                        old.as_ref(),
                        replaced,
                        &f,
                    )
                    .await?;
                    (share, "reshare")
                }
                _ => return Err(NodeError::Other("unreachable job kind".into())),
            };
            signer.install_share(&share, event, &session.0, now())?;
            Ok(key_json(&share.public))
        }
        JobSpec::SignerPresign { count, signers } => {
            let signers = ids(signers)?;
            let key = signer.key_share()?;
            let mut engine: Engine<Scalar, QuicTransport> =
                Engine::new(transport.clone(), t, Security::Malicious, session)
                    .map_err(tacit_signer::SignerError::from)?;
            let presigs =
                tacit_signer::presign::presign(&mut engine, &key, session, *count, &signers, &PresignFaults::default())
                    .await?;
            // Stored unconfirmed, then confirmed once every node says it stored its part: the
            // proposer never puts forward a presignature some member lacks (a node killed after
            // its last presign message, say, can leave one node done and another failed).
            if !presigs.is_empty() {
                signer.store_presigs_unconfirmed(&presigs, &session)?;
            }
            signer.audit(
                now(),
                tacit_signer::audit::AuditRecord {
                    event: "presign".into(),
                    session: hex::encode(session.0),
                    key_id: hex::encode(key.public.key_id),
                    signers: signers.iter().map(|p| p.get()).collect(),
                    status: Some(tacit_signer::audit::AuditStatus::Success),
                    detail: format!("{} presignatures kept, epoch {}", presigs.len(), key.public.epoch),
                    ..Default::default()
                },
            )?;
            // Up to one receive timeout per peer, as for the presign's own messages. The audit
            // entry comes first: the batch is kept here whether or not this confirms it.
            barrier(&transport, session.child("presign-stored", 0), std::time::Duration::ZERO).await?;
            signer.confirm_presigs(&session)?;
            Ok(json!({ "made": count, "kept": presigs.len(), "member": signers.contains(&me) }))
        }
        JobSpec::SignerSign { intent, approvals, signers, presig_id } => {
            let presig_id = presig_id
                .or(resolved.presig_id)
                .ok_or_else(|| NodeError::Other("no presignature was chosen".into()))?;
            if !ids(signers)?.contains(&me) {
                return Ok(json!({ "member": false, "presig_id": hex::encode(presig_id) }));
            }
            let req = SignRequest {
                intent: intent.clone(),
                approvals: approvals.clone(),
                presig_id,
                signers: signers.clone(),
            };
            let out = tacit_signer::sign::sign(signer, &*transport, &req, now(), session).await?;
            Ok(json!({
                "member": true,
                "presig_id": hex::encode(presig_id),
                "signature": format!("0x{}", hex::encode(out.signature.to_rsv_bytes())),
                "prehash": hex::encode(out.prehash),
                "raw_tx": out.raw_tx.map(|b| format!("0x{}", hex::encode(b))),
                "tx_hash": out.tx_hash.map(|b| format!("0x{}", hex::encode(b))),
            }))
        }
        JobSpec::AuctionBench { bidders, seed, one_round_sbox } => {
            let pooled = Pooled { store, job, batches: &resolved.prep_batches };
            let options = tacit_auction::node::RunOptions { one_round_sbox: *one_round_sbox };
            auction_bench(transport, t, session, (*bidders, *seed), options, pooled).await
        }
        JobSpec::PrepRefill { first_seq, batches, doubles, randoms, bits } => {
            let counts = PrepCounts { doubles: *doubles, randoms: *randoms, bits: *bits };
            let plan = crate::prep::RefillPlan { first_seq: *first_seq, batches: *batches, counts };
            crate::prep::refill(store, transport, t, session, job, plan).await
        }
        JobSpec::SignerPolicy { .. } | JobSpec::SignerInfo | JobSpec::AuctionHost { .. } => {
            Err(NodeError::Other("not a coordinated job".into()))
        }
        JobSpec::AuctionRun { .. } => Err(NodeError::Other("auction runs need the node's chain view".into())),
        JobSpec::PsiQuery { .. } | JobSpec::RiskQuery { .. } => {
            Err(NodeError::Other("joined jobs run with their institutions' channels".into()))
        }
    }
}

type KeyCache = std::sync::Mutex<Option<((usize, u64), Arc<tacit_auction::node::AuctionKeys>)>>;

/// The last benchmark auction's keys (a setup per shape and seed, made once).
static AUCTION_KEYS: KeyCache = std::sync::Mutex::new(None);

fn auction_err(e: tacit_auction::AuctionError) -> NodeError {
    NodeError::Other(format!("auction: {e}"))
}

fn prep_load_err(e: tacit_mpc_engine::MpcError) -> NodeError {
    NodeError::Signer(tacit_signer::SignerError::Mpc(e))
}

/// The pool batches an MPC job loads, and where they are kept.
struct Pooled<'a> {
    store: &'a NodeStore,
    job: &'a [u8; 16],
    batches: &'a [String],
}

/// The shape a job's preprocessing demand is recorded under.
pub fn demand_shape(spec: &JobSpec) -> Option<String> {
    match spec {
        JobSpec::AuctionBench { bidders, one_round_sbox, .. } => {
            Some(format!("auction.bench/{bidders}{}", if *one_round_sbox { "/one-round-sbox" } else { "" }))
        }
        _ => None,
    }
}

/// The benchmark auction at this node: keys and bids from the public seed (the same at every
/// node), this node's column of the dealt shares, the pool batches the proposal named (burned
/// here first, then loaded), then the node's run (validity checks, the outcome on shares, the
/// collaborative proof, verified).
async fn auction_bench(
    transport: Arc<QuicTransport>,
    t: usize,
    session: SessionId,
    (bidders, seed): (usize, u64),
    options: tacit_auction::node::RunOptions,
    pooled: Pooled<'_>,
) -> Result<serde_json::Value> {
    use rand::SeedableRng;
    use tacit_auction::bidder::{deal, BidSecret};
    use tacit_auction::circuit::Shape;
    use tacit_auction::AuctionKind;
    use tacit_mpc_engine::Transport;

    let n = transport.n_parties();
    let me = transport.id();
    let setup_started = std::time::Instant::now();
    let cached = AUCTION_KEYS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let keys = match cached {
        Some((k, keys)) if k == (bidders, seed) => keys,
        _ => {
            let keys = tokio::task::spawn_blocking(move || {
                let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
                tacit_auction::node::setup_keys(Shape { kind: AuctionKind::Vickrey, capacity: bidders }, &mut rng)
            })
            .await
            .map_err(|e| NodeError::Other(format!("setup: {e}")))?
            .map_err(auction_err)?;
            let keys = Arc::new(keys);
            *AUCTION_KEYS.lock().unwrap_or_else(|e| e.into_inner()) = Some(((bidders, seed), keys.clone()));
            keys
        }
    };
    let setup_s = setup_started.elapsed().as_secs_f64();
    // The setup takes each node its own time: wait for everyone (beyond the receive timeout)
    // before the protocol's rounds start.
    barrier(&transport, session.child("auction-setup", 0), std::time::Duration::from_secs(600)).await?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed ^ 0x5eed_b1d5);
    let mut commitments = Vec::with_capacity(bidders);
    let mut mine = Vec::with_capacity(bidders);
    for _ in 0..bidders {
        let bid = rand::Rng::gen_range(&mut rng, 1..1_000_000u64);
        let secret = BidSecret::new(bid, &mut rng);
        commitments.push(secret.commitment().map_err(auction_err)?);
        let columns = deal(&secret.dealt_values(), n, t, &mut rng).map_err(auction_err)?;
        mine.push(columns.into_iter().nth(me.index()));
    }
    let bids = tacit_auction::chain::OnChainBids {
        address: revm::primitives::Address::repeat_byte(0x7a),
        bidders: vec![revm::primitives::Address::ZERO; bidders],
        commitments,
        accumulator: ark_bn254::Fr::from(0u64),
    };
    // Proving keeps a node busy for seconds between messages on a loaded machine: wait for
    // peers up to two minutes (a dead peer still fails at once when its connection closes).
    let patient = Arc::new(Patient { inner: transport, limit: std::time::Duration::from_secs(120) });
    let mut engine: Engine<ark_bn254::Fr, Patient> =
        Engine::new(patient, t, Security::Malicious, session).map_err(|e| NodeError::Other(e.to_string()))?;
    let meter = Arc::new(PrepMeter::default());
    engine.set_prep_meter(meter.clone());
    let mut loaded = PrepCounts::default();
    if !pooled.batches.is_empty() {
        // Burned before use; a node that cannot take them aborts the session, so the others
        // stop at once with an error naming it.
        match crate::prep::take_for_job(pooled.store, pooled.batches, pooled.job) {
            Ok(batches) => loaded = engine.load_preprocessing(batches).await.map_err(prep_load_err)?,
            Err(e) => {
                let reason = tacit_mpc_engine::MpcError::Usage(e.to_string());
                engine.abort_with(reason).await;
                return Err(e);
            }
        }
    }
    let run = tacit_auction::node::run_node_with(engine, &keys, &bids, mine, options).await.map_err(auction_err)?;
    let used = meter.reading();
    let spec = JobSpec::AuctionBench { bidders, seed, one_round_sbox: options.one_round_sbox };
    if let Some(shape) = demand_shape(&spec) {
        crate::prep::record_demand(pooled.store, &shape, used.taken)?;
    }
    Ok(json!({
        "prep_batches": pooled.batches,
        "prep_loaded": crate::prep::counts_json(loaded),
        "prep_used": crate::prep::counts_json(used.taken),
        "prep_generated": crate::prep::counts_json(used.generated),
        "bidders": bidders,
        "winners": run.outcome.winners,
        "price": run.outcome.price,
        "excluded": run.outcome.excluded.len(),
        "mpc_s": run.mpc_s,
        "mpc_rounds": run.mpc_rounds,
        "mpc_bytes_sent": run.mpc_bytes,
        "prove_s": run.prove_s,
        "setup_s": setup_s,
    }))
}

/// The mesh with a longer wait for messages than its receive timeout (heavy jobs).
#[derive(Debug)]
pub(crate) struct Patient {
    inner: Arc<QuicTransport>,
    limit: std::time::Duration,
}

impl Patient {
    /// Waits up to `limit` for each message.
    pub(crate) fn new(inner: Arc<QuicTransport>, limit: std::time::Duration) -> Self {
        Self { inner, limit }
    }
}

impl tacit_mpc_engine::Transport for Patient {
    fn id(&self) -> PartyId {
        self.inner.id()
    }

    fn n_parties(&self) -> usize {
        self.inner.n_parties()
    }

    async fn send(
        &self,
        session: SessionId,
        to: PartyId,
        payload: bytes::Bytes,
    ) -> std::result::Result<(), tacit_mpc_engine::TransportError> {
        self.inner.send(session, to, payload).await
    }

    async fn recv(
        &self,
        session: SessionId,
        from: PartyId,
    ) -> std::result::Result<bytes::Bytes, tacit_mpc_engine::TransportError> {
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            match self.inner.recv(session, from).await {
                Err(tacit_mpc_engine::TransportError::Timeout { .. }) if tokio::time::Instant::now() < deadline => {}
                other => return other,
            }
        }
    }

    fn close_session(&self, session: SessionId) {
        self.inner.close_session(session);
    }

    fn max_frame(&self) -> usize {
        self.inner.max_frame()
    }

    fn stats(&self) -> tacit_mpc_engine::TransportStats {
        self.inner.stats()
    }
}

/// A presign job the other nodes finished in `attempt` while this node's copy failed (it
/// missed the last barrier message, or restarted after its own): they passed the barrier, so
/// every node stored its part of that attempt's batch, this one included. Confirms the part
/// held here and returns the job's result; `None` for any other job, or a member that holds no
/// part of the batch (then it lost it).
pub fn finish_presign_elsewhere(
    signer: &SignerNode,
    spec: &JobSpec,
    job: &[u8; 16],
    attempt: u32,
) -> Result<Option<serde_json::Value>> {
    let JobSpec::SignerPresign { count, signers } = spec else { return Ok(None) };
    let batch = crate::coord::job_session(job, attempt);
    let member = ids(signers)?.contains(&signer.id());
    if member {
        let confirmed = signer.confirm_presigs(&batch)?;
        let first = tacit_signer::presign::presig_id(&batch, 0);
        let held = confirmed > 0 || signer.store().get_presig(&first)?.is_some() || signer.store().is_burned(&first)?;
        if !held {
            return Ok(None);
        }
    }
    let kept = if member { *count } else { 0 };
    Ok(Some(json!({ "made": count, "kept": kept, "member": member, "confirmed_after": "the other nodes finished" })))
}

/// Every node sends a byte to every other and waits for theirs, up to `limit`.
async fn barrier(transport: &Arc<QuicTransport>, session: SessionId, limit: std::time::Duration) -> Result<()> {
    use tacit_mpc_engine::{Transport, TransportError};
    let me = transport.id();
    let peers: Vec<PartyId> = PartyId::all(transport.n_parties()).filter(|p| *p != me).collect();
    for p in &peers {
        transport.send(session, *p, bytes::Bytes::from_static(b"r")).await?;
    }
    let deadline = tokio::time::Instant::now() + limit;
    for p in &peers {
        loop {
            match transport.recv(session, *p).await {
                Ok(_) => break,
                Err(TransportError::Timeout { .. }) if tokio::time::Instant::now() < deadline => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    transport.close_session(session);
    Ok(())
}

/// Presignatures per signer set that this node could propose now (reserved ones are not
/// counted, so a refill replaces them).
pub fn pool_levels(signer: &SignerNode, sets: &[Vec<u16>]) -> Vec<(String, usize)> {
    let now = now();
    sets.iter()
        .map(|set| {
            let label = set.iter().map(u16::to_string).collect::<Vec<_>>().join("-");
            let level = ids(set).ok().and_then(|ids| signer.available_presigs(&ids, now).ok()).map_or(0, |v| v.len());
            (label, level)
        })
        .collect()
}

/// Runs a local job at this node.
pub fn run_local(signer: &SignerNode, spec: &JobSpec, sets: &[Vec<u16>]) -> Result<serde_json::Value> {
    match spec {
        JobSpec::SignerPolicy { policy } => {
            signer.init_policy(policy)?;
            Ok(json!({ "policy": "set" }))
        }
        JobSpec::SignerInfo => {
            let key = signer.key_public().ok().map(|p| key_json(&p));
            let pools: serde_json::Map<String, serde_json::Value> =
                pool_levels(signer, sets).into_iter().map(|(k, v)| (k, json!(v))).collect();
            Ok(json!({ "party": signer.id().get(), "key": key, "presignatures": pools }))
        }
        _ => Err(NodeError::Other("not a local job".into())),
    }
}
