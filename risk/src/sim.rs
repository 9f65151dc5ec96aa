//! Institutions and nodes in one process: a demo template, synthetic tables, approvals, and
//! a run of every node over given transports (in-memory or loopback QUIC).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_groth16::Proof;
use k256::ecdsa::SigningKey;
use rand::{Rng, SeedableRng};
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::{MpcError, Security, SessionId, Transport};

use tacit_circuits::mpc::Mpc;

use crate::ledger::Ledger;
use crate::proof::{circuit, node_witness, Keys, Statement};
use crate::query::{run_query, run_query_with_material, share_input, NodeShares, Outcome, ProofMaterial, RunOptions};
use crate::table::InstitutionInput;
use crate::template::{public_key_hex, Column, Institution, Query, SignedTemplate, Template};
use crate::{FixedPoint, RiskError};

/// Institution names of the demo.
pub fn institution_name(i: usize) -> String {
    format!("inst-{}", i + 1)
}

/// Key names of the demo (counterparties).
pub fn key_name(k: usize) -> String {
    format!("cp-{k:04}")
}

/// Deterministic demo signing key of institution `i` (demo only).
pub fn demo_signing_key(i: usize) -> Result<SigningKey, RiskError> {
    let mut seed = *blake3::hash(format!("tacit risk demo institution {i}").as_bytes()).as_bytes();
    let key = SigningKey::from_slice(&seed).map_err(|e| RiskError::Usage(format!("demo key: {e}")));
    seed.fill(0);
    key
}

/// The demo's columns: exposure, collateral shortfall, days past due.
pub fn demo_columns() -> Vec<Column> {
    vec![
        Column { name: "exposure".into(), min: 0.0, max: 100_000.0 },
        Column { name: "shortfall".into(), min: 0.0, max: 50_000.0 },
        Column { name: "days_past_due".into(), min: 0.0, max: 365.0 },
    ]
}

/// The demo weighted score: `0.2 exposure + 1.0 shortfall + 10 days_past_due`, flagged at
/// `threshold`.
pub fn demo_weighted_score(threshold: f64) -> Query {
    Query::WeightedScore {
        weights: vec![("exposure".into(), 0.2), ("shortfall".into(), 1.0), ("days_past_due".into(), 10.0)],
        threshold,
        release: crate::ScoreRelease::ScoreAndFlag,
    }
}

/// A template over `institutions` demo institutions and `keys` keys; fixed point (43, 8).
pub fn demo_template(institutions: usize, keys: usize, query: Query) -> Result<Template, RiskError> {
    let mut insts = Vec::with_capacity(institutions);
    for i in 0..institutions {
        insts.push(Institution { name: institution_name(i), public_key: public_key_hex(&demo_signing_key(i)?) });
    }
    Ok(Template {
        name: "demo".into(),
        querier: "regulator".into(),
        institutions: insts,
        keys: (0..keys).map(key_name).collect(),
        columns: demo_columns(),
        fixed: FixedPoint::new(43, 8)?,
        min_contributors: 3.min(institutions as u32),
        min_rows: 10,
        epsilon: 1.0,
        query,
    })
}

/// Every listed institution approves (demo keys).
pub fn approve_all(template: Template) -> Result<SignedTemplate, RiskError> {
    let mut approvals = Vec::with_capacity(template.institutions.len());
    for (i, inst) in template.institutions.iter().enumerate() {
        approvals.push(template.approve(&inst.name, &demo_signing_key(i)?)?);
    }
    Ok(SignedTemplate { template, approvals })
}

/// A synthetic CSV table of institution `i` with `rows` rows over the template's keys. The
/// last tenth of the keys only ever appear at institution 0 (so the cohort rule suppresses
/// them when `min_contributors > 1`).
pub fn synthetic_csv(i: usize, rows: usize, template: &Template, seed: u64) -> String {
    let mut rng = rand_chacha_like(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let nkeys = template.keys.len();
    let common = (nkeys - nkeys / 10).max(1);
    let mut out = String::with_capacity(rows * 40);
    out.push_str("key,exposure,shortfall,days_past_due\n");
    for _ in 0..rows {
        let k = if i == 0 && rng.gen_bool(0.05) { rng.gen_range(0..nkeys) } else { rng.gen_range(0..common) };
        let exposure: f64 = rng.gen_range(0.0..100_000.0);
        let shortfall: f64 = if rng.gen_bool(0.2) { rng.gen_range(0.0..50_000.0) } else { 0.0 };
        let dpd: u32 = if rng.gen_bool(0.1) { rng.gen_range(1..365) } else { 0 };
        let key = template.keys.get(k).map(String::as_str).unwrap_or_default();
        out.push_str(&format!("{key},{exposure:.2},{shortfall:.2},{dpd}\n"));
    }
    out
}

fn rand_chacha_like(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// What one node returns from a simulated run.
pub type NodeResult = Result<(Outcome, Ledger), RiskError>;

/// Runs the query at every node over `transports` (party `i` gets `ledgers[i]`); the
/// institutions deal their shares first. `tamper` may change node `i`'s engine before the run
/// (tests of cheating nodes).
pub async fn run_nodes<T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    signed: &SignedTemplate,
    inputs: &[InstitutionInput],
    ledgers: Vec<Ledger>,
    options: RunOptions,
    tamper: Option<(usize, Fr)>,
) -> Result<Vec<NodeResult>, RiskError> {
    let n = transports.len();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut per_node: Vec<Vec<NodeShares>> = (0..n).map(|_| Vec::with_capacity(inputs.len())).collect();
    for input in inputs {
        for (node, shares) in per_node.iter_mut().zip(share_input(input, n, t, &mut rng)?) {
            node.push(shares);
        }
    }
    type Slot = Option<(Vec<NodeShares>, Ledger)>;
    let slots: Vec<Slot> = per_node.into_iter().zip(ledgers).map(Some).collect();
    let slots = Arc::new(Mutex::new(slots));
    let errors: Arc<Mutex<Vec<Option<RiskError>>>> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
    let signed = Arc::new(signed.clone());
    let errs = errors.clone();
    let results =
        run_engines::<Fr, T, _, _, _>(transports, t, Security::Malicious, SessionId::random(), move |mut e| {
            let slots = slots.clone();
            let signed = signed.clone();
            let errs = errs.clone();
            async move {
                let index = e.id().index();
                let slot = slots.lock().ok().and_then(|mut s| s.get_mut(index).and_then(Option::take));
                let Some((shares, mut ledger)) = slot else {
                    return Err(MpcError::Usage("no inputs for this node".into()));
                };
                if let Some((cheater, delta)) = tamper {
                    if cheater == index {
                        e.inject_product_error_for_tests(delta);
                    }
                }
                match run_query(&mut e, &signed, &shares, &mut ledger, options).await {
                    Ok(outcome) => Ok((outcome, ledger)),
                    Err(err) => {
                        if let Ok(mut errs) = errs.lock() {
                            if let Some(slot) = errs.get_mut(index) {
                                *slot = Some(err);
                            }
                        }
                        Err(MpcError::Usage("risk query failed".into()))
                    }
                }
            }
        })
        .await;
    let mut errors = errors.lock().map_err(|_| RiskError::Usage("poisoned".into()))?;
    Ok(results
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Ok(v) => Ok(v),
            Err(e) => Err(errors.get_mut(i).and_then(Option::take).unwrap_or(RiskError::Mpc(e))),
        })
        .collect())
}

/// Knobs of a proved run.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProveOptions {
    /// Knobs of the query.
    pub run: RunOptions,
    /// Tests of a cheating node: node `i` adds `delta` to its share of the last hint of the
    /// witness before proving.
    #[doc(hidden)]
    pub tamper_witness: Option<(usize, Fr)>,
}

/// One node's result of a proved run.
#[derive(Debug)]
pub struct NodeProved {
    /// The outcome.
    pub outcome: Outcome,
    /// The statement this node proved (the release's, see [`Statement::from_release`]);
    /// `None` when the query was refused.
    pub statement: Option<Statement>,
    /// This node's copy of the collaborative proof (checked against the statement before
    /// it is returned).
    pub proof: Option<Proof<Bn254>>,
    /// Seconds of the query (approvals to the last opening).
    pub query_seconds: f64,
    /// Seconds of the proof (witness on shares and collaborative Groth16).
    pub proof_seconds: f64,
}

/// What one node returns from a proved run.
pub type ProvedNodeResult = Result<(NodeProved, Ledger), RiskError>;

/// Runs the query and then proves the release at every node ([`crate::proof`]): the
/// institutions publish their commitments before the run (returned with the results); each
/// node builds the statement from its release and proves it with the others over the
/// shares it holds, in the same engine session. `keys` are the template's keys
/// ([`crate::proof::setup`]).
pub async fn run_nodes_proved<T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    signed: &SignedTemplate,
    inputs: &[InstitutionInput],
    ledgers: Vec<Ledger>,
    keys: Arc<Keys>,
    options: ProveOptions,
) -> Result<(Vec<ProvedNodeResult>, Vec<Fr>), RiskError> {
    let n = transports.len();
    // Published before the query.
    let commitments: Vec<Fr> = inputs.iter().map(InstitutionInput::commitment).collect::<Result<_, _>>()?;
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut per_node: Vec<Vec<NodeShares>> = (0..n).map(|_| Vec::with_capacity(inputs.len())).collect();
    for input in inputs {
        for (node, shares) in per_node.iter_mut().zip(share_input(input, n, t, &mut rng)?) {
            node.push(shares);
        }
    }
    type Slot = Option<(Vec<NodeShares>, Ledger)>;
    let slots: Vec<Slot> = per_node.into_iter().zip(ledgers).map(Some).collect();
    let slots = Arc::new(Mutex::new(slots));
    let signed = Arc::new(signed.clone());
    let published = Arc::new(commitments.clone());
    let results =
        run_engines::<Fr, T, _, _, _>(transports, t, Security::Malicious, SessionId::random(), move |mut e| {
            let slots = slots.clone();
            let signed = signed.clone();
            let keys = keys.clone();
            let commitments = published.clone();
            async move {
                let index = e.id().index();
                let slot = slots.lock().ok().and_then(|mut s| s.get_mut(index).and_then(Option::take));
                let Some((shares, mut ledger)) = slot else {
                    return Err(MpcError::Usage("no inputs for this node".into()));
                };
                let start = Instant::now();
                let r = run_query_with_material(&mut e, &signed, &shares, &mut ledger, options.run).await;
                let query_seconds = start.elapsed().as_secs_f64();
                let (outcome, material) = match r {
                    Ok(v) => v,
                    Err(err) => return Ok((Err(err), ledger)),
                };
                let (Outcome::Released(release), Some(material)) = (&outcome, material) else {
                    let node = NodeProved { outcome, statement: None, proof: None, query_seconds, proof_seconds: 0.0 };
                    return Ok((Ok(node), ledger));
                };
                let start = Instant::now();
                let tamper = options.tamper_witness.filter(|(i, _)| *i == index).map(|(_, d)| d);
                let proved =
                    prove_release(e, &signed.template, &commitments, release, &shares, &material, &keys, tamper)
                        .await
                        .map(|(statement, proof)| NodeProved {
                            outcome: outcome.clone(),
                            statement: Some(statement),
                            proof: Some(proof),
                            query_seconds,
                            proof_seconds: start.elapsed().as_secs_f64(),
                        });
                Ok((proved, ledger))
            }
        })
        .await;
    let mut out = Vec::with_capacity(n);
    for r in results {
        out.push(match r {
            Ok((Ok(node), ledger)) => Ok((node, ledger)),
            Ok((Err(e), _)) => Err(e),
            Err(e) => Err(RiskError::Mpc(e)),
        });
    }
    Ok((out, commitments))
}

/// One node's part of the proof of a release, in the engine session of the query (after
/// [`crate::query::run_query_with_material`]): the statement built from the template, the
/// published commitments and the release, and the collaborative proof of it over this
/// node's shares of the inputs and of the proof material.
pub async fn prove_at_node<T: Transport>(
    engine: tacit_mpc_engine::Engine<Fr, T>,
    template: &crate::Template,
    commitments: &[Fr],
    release: &crate::Release,
    shares: &[NodeShares],
    material: &ProofMaterial,
    keys: &Keys,
) -> Result<(Statement, Proof<Bn254>), RiskError> {
    prove_release(engine, template, commitments, release, shares, material, keys, None).await
}

#[allow(clippy::too_many_arguments)]
async fn prove_release<T: Transport>(
    engine: tacit_mpc_engine::Engine<Fr, T>,
    template: &crate::Template,
    commitments: &[Fr],
    release: &crate::Release,
    shares: &[NodeShares],
    material: &ProofMaterial,
    keys: &Keys,
    tamper: Option<Fr>,
) -> Result<(Statement, Proof<Bn254>), RiskError> {
    let statement = Statement::from_release(template, commitments, release)?;
    let mut values = node_witness(shares, &material.hints);
    if let (Some(delta), Some(last)) = (tamper, values.last_mut()) {
        *last += delta;
    }
    let mut b = Mpc::new(engine);
    circuit(&mut b, &statement, Some(&values)).await?;
    let (assignment, mut engine) = b.finish().await.map_err(|e| match e {
        tacit_circuits::CircuitError::Mpc(e) => RiskError::Mpc(e),
        other => RiskError::Proof(other.to_string()),
    })?;
    let proof = tacit_prover::collaborative::prove(
        &mut engine,
        &keys.pk,
        &keys.pvk,
        &keys.matrices,
        &assignment.instance,
        &assignment.witness,
    )
    .await?;
    Ok((statement, proof))
}
