//! Risk queries on the node (`risk.query`). Each institution joins with its certificate (see
//! [`crate::lobby`]) and sends this node its shares of its per-key input, one frame; the
//! nodes run the approved template over the mesh (approvals, budget, input checks, cohort
//! rule, noise inside the MPC, release), every node charging the querier in its own ledger
//! (in `node.redb`, before any figure opens). Every institution receives the outcome on its
//! channel; it is also the job's result, since the released figures are public by design.
//! With a proving key named in the job, the nodes then prove the release collaboratively
//! against the institutions' published commitments, in the same engine session; the proof
//! (snarkjs JSON) and its public inputs join the result once this node has verified it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ark_bn254::Fr;
use tacit_mpc_engine::field::WireField;
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{Engine, Security, SessionId, Shares};
use tacit_risk::ledger::LedgerState;
use tacit_risk::proof::{Keys, Shape};
use tacit_risk::{InstitutionInput, Ledger, NodeShares, Outcome, SignedTemplate};

use crate::api::JobSpec;
use crate::daemon::Shared;
use crate::error::{NodeError, Result};

/// Where the ledger is kept in the node's store.
const LEDGER_KEY: &str = "risk.ledger";
/// How long a node waits for an institution's input once the job runs.
const INPUT_WAIT: Duration = Duration::from_secs(600);

/// Proving keys loaded so far, by file hash (decoding and checking one takes a while).
static KEYS: Mutex<Option<HashMap<String, Arc<Keys>>>> = Mutex::new(None);

pub use crate::proving::proving_key_hash;

/// The keys for `template` from the proving key file `<data_dir>/risk-keys/<hash>.pk`,
/// checked against the hash and against the template's circuit.
async fn keys(shared: &Shared, template: &SignedTemplate, hash: &str) -> Result<Arc<Keys>> {
    if let Some(k) = KEYS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(hash)) {
        return Ok(k.clone());
    }
    let pk = crate::proving::read_proving_key(&shared.store, &shared.cfg.data_dir(), "risk-keys", hash).await?;
    let shape = Shape::from_template(&template.template).map_err(|e| NodeError::BadRequest(e.to_string()))?;
    let keys =
        tacit_risk::proof::keys_from_proving_key(&shape, pk).await.map_err(|e| NodeError::Config(e.to_string()))?;
    let keys = Arc::new(keys);
    KEYS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(hash.into(), keys.clone());
    Ok(keys)
}

/// Field elements an institution deals to each node for `template`: its row counts and each
/// aggregate per key, and its commitment salt.
pub fn input_len(template: &SignedTemplate) -> Result<usize> {
    let t = &template.template;
    let aggregates = t.aggregates().map_err(|e| NodeError::BadRequest(e.to_string()))?.len();
    Ok(t.keys.len() * (1 + aggregates) + 1)
}

/// The largest input frame an institution may send for `template`.
pub fn max_input_message(template: &SignedTemplate) -> usize {
    input_len(template).map_or(0, |n| n.saturating_mul(Fr::WIRE_BYTES))
}

/// Encodes one node's shares of an institution's input, as [`decode_input`] reads them.
pub fn encode_input(shares: &NodeShares) -> Vec<u8> {
    let fields: Vec<&Fr> = shares
        .counts
        .expose_shares()
        .iter()
        .chain(shares.aggregates.iter().flat_map(|a| a.expose_shares()))
        .chain(shares.salt.expose_shares())
        .collect();
    let mut out = vec![0u8; fields.len() * Fr::WIRE_BYTES];
    for (x, chunk) in fields.into_iter().zip(out.chunks_exact_mut(Fr::WIRE_BYTES)) {
        x.write_wire(chunk);
    }
    out
}

fn decode_input(template: &SignedTemplate, institution: usize, frame: &[u8]) -> Result<NodeShares> {
    let t = &template.template;
    let name = t.institutions.get(institution).map(|i| i.name.clone()).unwrap_or_default();
    let bad = |reason: &str| NodeError::BadRequest(format!("institution {name}: {reason}"));
    let nkeys = t.keys.len();
    if frame.len() != input_len(template)? * Fr::WIRE_BYTES {
        return Err(bad("input of the wrong length"));
    }
    let mut fields = frame
        .chunks_exact(Fr::WIRE_BYTES)
        .map(|c| Fr::read_wire(c).ok_or_else(|| bad("an element is out of range")))
        .collect::<Result<Vec<Fr>>>()?;
    let salt = fields.pop().ok_or_else(|| bad("no salt"))?;
    let mut chunks = fields.chunks_exact(nkeys.max(1));
    let counts = if nkeys == 0 { Vec::new() } else { chunks.next().map(<[Fr]>::to_vec).unwrap_or_default() };
    let aggregates = chunks.map(|c| Shares::from_raw(c.to_vec())).collect();
    Ok(NodeShares {
        institution: name,
        counts: Shares::from_raw(counts),
        aggregates,
        salt: Shares::from_raw(vec![salt]),
    })
}

/// This node's ledger: the stored charges under the configured budgets.
fn ledger(shared: &Arc<Shared>) -> Result<Ledger> {
    let mut state: LedgerState = match shared.store.meta(LEDGER_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| NodeError::Store(format!("risk ledger: {e}")))?,
        None => LedgerState::default(),
    };
    let settings = &shared.cfg.file.risk;
    state.default_budget = settings.default_budget;
    state.budgets = settings.budgets.clone();
    let store = shared.clone();
    let persist = Box::new(move |state: &LedgerState| {
        let bytes = serde_json::to_vec(state).map_err(|e| e.to_string())?;
        store.store.set_meta(LEDGER_KEY, &bytes).map_err(|e| e.to_string())
    });
    Ok(Ledger::with_store(state, persist))
}

/// Runs a queued risk query at this node.
pub async fn run(
    shared: &Arc<Shared>,
    id: &[u8; 16],
    spec: &JobSpec,
    transport: Arc<QuicTransport>,
    session: SessionId,
) -> Result<serde_json::Value> {
    let JobSpec::RiskQuery { template, commitments, proving_key, .. } = spec else {
        return Err(NodeError::Other("not a risk query".into()));
    };
    // Keys first: a node that cannot prove fails before anything is charged or opened.
    let proving = match (proving_key, commitments) {
        (Some(hash), Some(c)) => Some((keys(shared, template, hash).await?, crate::api::field_elements(c)?)),
        _ => None,
    };
    let mut channels = crate::lobby::take(shared, id)?;
    let mut inputs = Vec::with_capacity(channels.len());
    for (c, channel) in channels.iter_mut().enumerate() {
        let frame = tokio::time::timeout(INPUT_WAIT, channel.incoming.recv())
            .await
            .ok()
            .flatten()
            .ok_or_else(|| NodeError::Other(format!("institution {c} sent no input")))?;
        inputs.push(decode_input(template, c, &frame)?);
    }
    let mut ledger = ledger(shared)?;
    let patient = Arc::new(crate::jobs::Patient::new(transport, INPUT_WAIT));
    let mut engine = Engine::<Fr, _>::new(patient, shared.cfg.t(), Security::Malicious, session)
        .map_err(|e| NodeError::Other(format!("risk: {e}")))?;
    let (outcome, material) =
        tacit_risk::query::run_query_with_material(&mut engine, template, &inputs, &mut ledger, Default::default())
            .await
            .map_err(risk_err)?;
    let body = serde_json::to_vec(&outcome).map_err(|e| NodeError::Other(e.to_string()))?;
    for channel in &channels {
        // An institution that left misses its copy; the job's result holds the same.
        let _ = channel.outgoing.send(body.clone().into()).await;
    }
    drop(channels);
    let mut result = serde_json::json!({ "template": template.template.name, "outcome": outcome });
    if let (Some((keys, commitments)), Outcome::Released(release), Some(material)) = (proving, &outcome, material) {
        let started = std::time::Instant::now();
        let (statement, proof) = tacit_risk::sim::prove_at_node(
            engine,
            &template.template,
            &commitments,
            release,
            &inputs,
            &material,
            &keys,
        )
        .await
        .map_err(risk_err)?;
        if !tacit_risk::proof::verify(&statement, &keys.pvk, &proof) {
            return Err(NodeError::Other("the collaborative proof does not verify".into()));
        }
        let proof = serde_json::to_value(tacit_prover::snarkjs::proof_to_snarkjs(&proof))
            .map_err(|e| NodeError::Other(e.to_string()))?;
        let public = tacit_prover::snarkjs::public_to_snarkjs(&statement.public_inputs());
        if let Some(map) = result.as_object_mut() {
            map.insert("proof".into(), proof);
            map.insert("public".into(), serde_json::json!(public));
            map.insert("proof_seconds".into(), serde_json::json!(started.elapsed().as_secs_f64()));
        }
    }
    Ok(result)
}

fn risk_err(e: tacit_risk::RiskError) -> NodeError {
    match e {
        tacit_risk::RiskError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) => NodeError::Transport(t),
        other => NodeError::Other(format!("risk: {other}")),
    }
}

/// An institution's side: its shares for every node, in party order (element `i` for party
/// `i + 1`), encoded for its channels.
pub fn deal(input: &InstitutionInput, n: usize, t: usize) -> Result<Vec<Vec<u8>>> {
    let mut rng = rand::rngs::OsRng;
    let shares = tacit_risk::query::share_input(input, n, t, &mut rng).map_err(|e| NodeError::Other(e.to_string()))?;
    Ok(shares.iter().map(encode_input).collect())
}
