//! Institutions and nodes in one process: a demo template, synthetic tables, approvals, and
//! a run of every node over given transports (in-memory or loopback QUIC).

use std::sync::{Arc, Mutex};

use ark_bn254::Fr;
use k256::ecdsa::SigningKey;
use rand::{Rng, SeedableRng};
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::{MpcError, Security, SessionId, Transport};

use crate::ledger::Ledger;
use crate::query::{run_query, share_input, NodeShares, Outcome, RunOptions};
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

/// What a proved run returns: every node's outcome and ledger, and the statement, keys and
/// each node's copy of the collaborative proof (when a weighted score was released).
pub type ProvedRun = (
    Vec<NodeResult>,
    Option<(crate::proof::ScoreStatement, crate::proof::Keys, Vec<ark_groth16::Proof<ark_bn254::Bn254>>)>,
);

/// As [`run_nodes`] for a weighted-score template, then the collaborative Groth16 proof of
/// the release: the institutions publish their commitments before the run; after the
/// release, keys for the statement's shape come from a local setup (a ceremony in a
/// deployment) and the nodes prove together over their shares.
pub async fn run_nodes_proved<T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    signed: &SignedTemplate,
    inputs: &[InstitutionInput],
    ledgers: Vec<Ledger>,
) -> Result<ProvedRun, RiskError> {
    use crate::proof::{score_circuit, setup, ScoreStatement};
    use crate::query::run_query_with_material;
    use tacit_circuits::mpc::Mpc;

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
    let signed_arc = Arc::new(signed.clone());
    let results =
        run_engines::<Fr, T, _, _, _>(transports, t, Security::Malicious, SessionId::random(), move |mut e| {
            let slots = slots.clone();
            let signed = signed_arc.clone();
            async move {
                let index = e.id().index();
                let slot = slots.lock().ok().and_then(|mut s| s.get_mut(index).and_then(Option::take));
                let Some((shares, mut ledger)) = slot else {
                    return Err(MpcError::Usage("no inputs for this node".into()));
                };
                let r = run_query_with_material(&mut e, &signed, &shares, &mut ledger, RunOptions::default()).await;
                Ok((r, ledger, shares, e))
            }
        })
        .await;
    let mut phase1 = Vec::with_capacity(n);
    for r in results {
        phase1.push(r?);
    }
    // The public statement (every node derives the same from what opened).
    let template = &signed.template;
    let weights: Vec<i128> = match &template.query {
        crate::Query::WeightedScore { weights, .. } => {
            weights.iter().map(|(_, w)| template.fixed.to_raw(*w)).collect::<Result<_, _>>()?
        }
        _ => return Err(RiskError::Usage("proofs are built for weighted-score templates".into())),
    };
    let statement = match phase1.first() {
        Some((Ok((_, Some(m))), ..)) => Some(ScoreStatement {
            commitments: commitments.clone(),
            released_keys: m.released_keys.clone(),
            released: m.released.clone(),
            weights,
            f: template.fixed.f,
            noise_bits: m.noise_bits,
            keys: template.keys.len(),
        }),
        _ => None,
    };
    let Some(statement) = statement else {
        let out = phase1.into_iter().map(|(r, ledger, ..)| r.map(|(o, _)| (o, ledger))).collect();
        return Ok((out, None));
    };
    let keys = Arc::new(setup(&statement).await?);
    let stmt = Arc::new(statement);
    let mut tasks = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    for (r, ledger, shares, engine) in phase1 {
        let (outcome, material) = r?;
        outcomes.push(Ok((outcome, ledger)));
        let material = material.ok_or_else(|| RiskError::Usage("a node has no proof material".into()))?;
        let (keys, stmt) = (keys.clone(), stmt.clone());
        tasks.push(tokio::spawn(async move {
            let mut values: Vec<Fr> = Vec::with_capacity(stmt.witness_len());
            for s in &shares {
                values.extend_from_slice(s.salt.expose_shares());
                values.extend_from_slice(s.counts.expose_shares());
                for a in &s.aggregates {
                    values.extend_from_slice(a.expose_shares());
                }
            }
            values.extend_from_slice(material.scores.expose_shares());
            values.extend_from_slice(material.noise.expose_shares());
            let values = zeroize::Zeroizing::new(values);
            let mut b = Mpc::new(engine);
            score_circuit(&mut b, &stmt, Some(&values)).await?;
            let (assignment, mut engine) = b.finish().await.map_err(|e| RiskError::Proof(e.to_string()))?;
            tacit_prover::collaborative::prove(
                &mut engine,
                &keys.pk,
                &keys.pvk,
                &keys.matrices,
                &assignment.instance,
                &assignment.witness,
            )
            .await
            .map_err(|e| RiskError::Proof(e.to_string()))
        }));
    }
    let mut proofs = Vec::with_capacity(n);
    for task in tasks {
        proofs.push(task.await.map_err(|e| RiskError::Usage(format!("prover task: {e}")))??);
    }
    let keys = Arc::try_unwrap(keys).map_err(|_| RiskError::Usage("keys still shared".into()))?;
    let stmt = Arc::try_unwrap(stmt).map_err(|_| RiskError::Usage("statement still shared".into()))?;
    Ok((outcomes, Some((stmt, keys, proofs))))
}
