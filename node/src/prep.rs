//! The node's pool of MPC preprocessing (BN254 double sharings, random sharings and random
//! bits, malicious security) that MPC jobs load instead of generating their own.
//!
//! - **Made** by internal `prep.refill` jobs the proposer starts when the pool is below its
//!   target: all nodes run one session that generates the batches, verifies them (the engine
//!   hands out nothing unverified) and seals each in the node store under an id every node
//!   derives alike: `seq ‖ refill job id ‖ index`, where `seq` comes from the proposer's
//!   durable counter and orders the pool.
//! - **Named** by the proposer in a job's proposal: the oldest batches covering the demand the
//!   job's shape had on its previous run (a shape's first run generates its own and measures).
//!   A node lacking a named batch refuses the job and names it; the proposer then discards it
//!   (orphans of a refill some node did not store) and the client's retry picks others. A
//!   node discards its own batches older than the oldest named, which the proposer no longer
//!   holds.
//! - **Burned** durably by every node when the job starts (one transaction, before the
//!   plaintext is read), then loaded into the job's session, where every party checks the
//!   others loaded the same batches. A burned id is never stored or handed out again, so a
//!   batch is never used twice, across crashes and retries alike.

use std::sync::Arc;

use ark_bn254::Fr;
use serde_json::json;
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{BatchId, Engine, PrepBatch, PrepCounts, Security, SessionId};
use zeroize::Zeroizing;

use crate::error::{NodeError, Result};
use crate::store::{NodeStore, PREP_POOL};

/// The store counter numbering batches (proposer).
const SEQ_COUNTER: &str = "prep_next_seq";

/// A batch's id: `seq` (big endian, so the store lists the pool oldest first), the refill
/// job's id, the batch's index in it, zeros.
pub fn batch_id(seq: u64, job: &[u8; 16], index: u32) -> BatchId {
    let mut id = [0u8; 32];
    let (seq, index) = (seq.to_be_bytes(), index.to_be_bytes());
    for (slot, byte) in id.iter_mut().zip(seq.iter().chain(job).chain(&index)) {
        *slot = *byte;
    }
    BatchId(id)
}

fn parse_id(hexed: &str) -> Result<Vec<u8>> {
    let mut id = [0u8; 32];
    hex::decode_to_slice(hexed, &mut id)
        .map_err(|_| NodeError::BadRequest(format!("preprocessing batch id {hexed:?} is not 64 hex digits")))?;
    Ok(id.to_vec())
}

/// Batches held here.
pub fn level(store: &NodeStore) -> Result<usize> {
    Ok(store.single_use_ids(PREP_POOL)?.len())
}

/// Reserves `count` batch numbers (proposer); returns the first.
pub fn reserve_seqs(store: &NodeStore, count: usize) -> Result<u64> {
    store.reserve(SEQ_COUNTER, count as u64)
}

/// What one refill job makes: `batches` batches of `counts`, numbered from `first_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefillPlan {
    /// Number of the first batch.
    pub first_seq: u64,
    /// How many batches.
    pub batches: usize,
    /// Items per batch.
    pub counts: PrepCounts,
}

/// The refill job at this node: makes the planned batches in one session and stores them in
/// one transaction.
pub async fn refill(
    store: &NodeStore,
    transport: Arc<QuicTransport>,
    t: usize,
    session: SessionId,
    job: &[u8; 16],
    plan: RefillPlan,
) -> Result<serde_json::Value> {
    let RefillPlan { first_seq, batches, counts } = plan;
    let mut engine: Engine<Fr, QuicTransport> =
        Engine::new(transport, t, Security::Malicious, session).map_err(mpc_err)?;
    let mut made: Vec<(Vec<u8>, Zeroizing<Vec<u8>>)> = Vec::with_capacity(batches);
    for index in 0..batches {
        let index = u32::try_from(index).map_err(|_| NodeError::Other("too many batches".into()))?;
        let id = batch_id(first_seq.saturating_add(u64::from(index)), job, index);
        let batch = engine.export_preprocessing(id, counts).await.map_err(mpc_err)?;
        made.push((id.0.to_vec(), batch.expose_bytes()));
    }
    store.put_single_use(PREP_POOL, &made)?;
    Ok(json!({ "batches": batches, "first_seq": first_seq, "rounds": engine.stats().rounds }))
}

/// The oldest batches covering `demand` with batches of `per_batch` (proposer), as hex ids.
pub fn choose(store: &NodeStore, demand: PrepCounts, per_batch: PrepCounts) -> Result<Vec<String>> {
    let need = |want: usize, per: usize| if per == 0 { 0 } else { want.div_ceil(per) };
    let count = need(demand.doubles, per_batch.doubles)
        .max(need(demand.randoms, per_batch.randoms))
        .max(need(demand.bits, per_batch.bits))
        .min(tacit_mpc_engine::pooled::MAX_LOADED_BATCHES);
    Ok(store.single_use_ids(PREP_POOL)?.into_iter().take(count).map(hex::encode).collect())
}

/// The named batches this node does not hold (a follower checking a proposal). Batches held
/// here that are older than the oldest named are orphans (the proposer lacks them): they are
/// discarded.
pub fn missing(store: &NodeStore, named: &[String]) -> Result<Vec<String>> {
    let ids: Vec<Vec<u8>> = named.iter().map(|h| parse_id(h)).collect::<Result<_>>()?;
    let held = store.single_use_ids(PREP_POOL)?;
    if let Some(oldest) = ids.iter().min() {
        let orphans: Vec<Vec<u8>> = held.iter().filter(|h| *h < oldest).cloned().collect();
        if !orphans.is_empty() {
            let n = store.discard_single_use(PREP_POOL, &orphans, "older than the proposer's oldest batch")?;
            tracing::warn!(target: "tacit::node", discarded = n, "orphaned preprocessing batches discarded");
        }
    }
    Ok(named.iter().zip(&ids).filter(|(_, id)| !held.contains(id)).map(|(h, _)| h.clone()).collect())
}

/// Discards batches a peer lacks (proposer), so no later job names them.
pub fn discard(store: &NodeStore, named: &[String], why: &str) -> Result<usize> {
    let ids: Vec<Vec<u8>> = named.iter().filter_map(|h| parse_id(h).ok()).collect();
    store.discard_single_use(PREP_POOL, &ids, why)
}

/// Burns the named batches for `job` (durably, all or none) and decodes them. Decoding after
/// the burn: a batch that does not decode is lost, never retried.
pub fn take_for_job(store: &NodeStore, named: &[String], job: &[u8; 16]) -> Result<Vec<PrepBatch<Fr>>> {
    let ids: Vec<Vec<u8>> = named.iter().map(|h| parse_id(h)).collect::<Result<_>>()?;
    let plains = store.burn_single_use(PREP_POOL, &ids, &hex::encode(job))?;
    plains
        .iter()
        .zip(named)
        .map(|(p, name)| {
            PrepBatch::from_bytes(p).map_err(|e| NodeError::Store(format!("preprocessing batch {name}: {e}")))
        })
        .collect()
}

fn demand_key(shape: &str) -> String {
    format!("prep_demand/{shape}")
}

/// What a job of `shape` consumed on its last run here.
pub fn demand(store: &NodeStore, shape: &str) -> Option<PrepCounts> {
    let bytes = store.meta(&demand_key(shape)).ok().flatten()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let get = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).and_then(|c| usize::try_from(c).ok());
    Some(PrepCounts { doubles: get("doubles")?, randoms: get("randoms")?, bits: get("bits")? })
}

/// Records what a job of `shape` consumed.
pub fn record_demand(store: &NodeStore, shape: &str, used: PrepCounts) -> Result<()> {
    store.set_meta(&demand_key(shape), counts_json(used).to_string().as_bytes())
}

/// Counts as JSON.
pub fn counts_json(c: PrepCounts) -> serde_json::Value {
    json!({ "doubles": c.doubles, "randoms": c.randoms, "bits": c.bits })
}

fn mpc_err(e: tacit_mpc_engine::MpcError) -> NodeError {
    NodeError::Signer(tacit_signer::SignerError::Mpc(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeySource;

    fn store(dir: &std::path::Path) -> NodeStore {
        let key = dir.join("k");
        std::fs::write(&key, hex::encode([3u8; 32])).unwrap();
        NodeStore::open(&dir.join("n.redb"), &KeySource::File { path: key }, dir).unwrap().0
    }

    #[test]
    fn a_corrupt_batch_is_refused_clearly_and_stays_burned() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let id = batch_id(0, &[1; 16], 0);
        let named = vec![hex::encode(id.0)];
        s.put_single_use(PREP_POOL, &[(id.0.to_vec(), Zeroizing::new(b"not a batch".to_vec()))]).unwrap();
        assert_eq!(missing(&s, &named).unwrap(), Vec::<String>::new());
        let err = take_for_job(&s, &named, &[2; 16]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("preprocessing batch {}", named[0])) && err.contains("not a preprocessing batch")
        );
        // Burned before it was read: never handed out again.
        assert!(s.single_use_burned(PREP_POOL, &id.0).unwrap());
        assert!(take_for_job(&s, &named, &[2; 16]).unwrap_err().to_string().contains("already used"));
        assert_eq!(missing(&s, &named).unwrap(), named);
        assert!(take_for_job(&s, &["zz".to_string()], &[2; 16]).is_err());
    }

    #[test]
    fn batches_are_chosen_oldest_first_and_orphans_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let ids: Vec<BatchId> = (0..4).map(|i| batch_id(i, &[5; 16], i as u32)).collect();
        let items: Vec<(Vec<u8>, Zeroizing<Vec<u8>>)> =
            ids.iter().map(|id| (id.0.to_vec(), Zeroizing::new(vec![0u8; 4]))).collect();
        s.put_single_use(PREP_POOL, &items).unwrap();
        let per = PrepCounts { doubles: 100, randoms: 10, bits: 0 };
        let chosen = choose(&s, PrepCounts { doubles: 150, randoms: 5, bits: 999 }, per).unwrap();
        assert_eq!(chosen, vec![hex::encode(ids[0].0), hex::encode(ids[1].0)]);
        // A proposal naming batch 2 makes batches 0 and 1 orphans here.
        assert!(missing(&s, &[hex::encode(ids[2].0)]).unwrap().is_empty());
        assert_eq!(level(&s).unwrap(), 2);
        assert_eq!(reserve_seqs(&s, 3).unwrap(), 0);
        assert_eq!(reserve_seqs(&s, 1).unwrap(), 3);
    }
}
