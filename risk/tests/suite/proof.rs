//! The release proof of every template: collaborative proofs over real runs, checked as a
//! verifier would (statement rebuilt from the published release), rejected when a released
//! figure or a public input is altered; the statement on clear witnesses (R1cs); suppression
//! proved without opening; a node cheating in the proof caught.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_groth16::Proof;
use tacit_circuits::{Plain, R1cs};
use tacit_mpc_engine::field::from_i128;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_risk::proof::{circuit, committed_values, setup, verify, verify_release, Keys, Shape, Statement};
use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes_proved, synthetic_csv, ProveOptions};
use tacit_risk::{
    aggregate_csv, query, CellStatus, InstitutionInput, Ledger, Outcome, Query, Release, RiskError, RunOptions,
    ScoreRelease, SignedTemplate,
};

const ULP: f64 = 1.0 / 256.0;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn inputs_for(signed: &SignedTemplate, rows: usize, seed: u64) -> Vec<InstitutionInput> {
    signed
        .template
        .institutions
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            aggregate_csv(&inst.name, &synthetic_csv(i, rows, &signed.template, seed), &signed.template).unwrap()
        })
        .collect()
}

/// A proved run on 3 in-memory nodes: the agreed release, the commitments, the keys and
/// one node's proof (every node's proof verified as a verifier would first).
struct Proved {
    signed: SignedTemplate,
    inputs: Vec<InstitutionInput>,
    release: Release,
    commitments: Vec<Fr>,
    keys: Arc<Keys>,
    proof: Proof<Bn254>,
}

fn proved_run(signed: SignedTemplate, inputs: Vec<InstitutionInput>, options: RunOptions) -> Proved {
    let rt = runtime();
    let keys = Arc::new(rt.block_on(setup(&Shape::from_template(&signed.template).unwrap())).unwrap());
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
    let options = ProveOptions { run: options, ..ProveOptions::default() };
    let (results, commitments) =
        rt.block_on(run_nodes_proved(transports, 1, &signed, &inputs, ledgers, keys.clone(), options)).unwrap();
    let mut release = None;
    let mut proofs = Vec::new();
    for r in results {
        let (node, _) = r.unwrap();
        let Outcome::Released(rel) = node.outcome else { panic!("refused") };
        if let Some(first) = &release {
            assert_eq!(*first, rel, "nodes disagree");
        }
        // The node's own statement is the one a verifier rebuilds from the release.
        let rebuilt = Statement::from_release(&signed.template, &commitments, &rel).unwrap();
        assert_eq!(node.statement.as_ref(), Some(&rebuilt));
        release = Some(rel);
        proofs.push(node.proof.unwrap());
    }
    let release = release.unwrap();
    for p in &proofs {
        assert!(verify_release(&signed.template, &commitments, &release, &keys.pvk, p).unwrap());
    }
    Proved { signed, inputs, release, commitments, keys, proof: proofs.swap_remove(0) }
}

impl Proved {
    fn accepts(&self, release: &Release) -> bool {
        match verify_release(&self.signed.template, &self.commitments, release, &self.keys.pvk, &self.proof) {
            Ok(ok) => ok,
            Err(RiskError::Proof(_)) => false,
            Err(e) => panic!("{e}"),
        }
    }

    /// A verifier rejects the release with one figure changed by `change`.
    fn rejects_changed(&self, change: impl Fn(&mut Release)) {
        let mut wrong = self.release.clone();
        change(&mut wrong);
        assert_ne!(wrong, self.release);
        assert!(!self.accepts(&wrong), "an altered release verified");
    }

    /// Altering any single public input (a commitment, a cohort word, a figure) fails.
    fn rejects_tampered_public_inputs(&self) {
        let stmt = Statement::from_release(&self.signed.template, &self.commitments, &self.release).unwrap();
        let public = stmt.public_inputs();
        let shape = &stmt.shape;
        let figures_at = shape.institutions + shape.cohort_words();
        for at in [0, shape.institutions, figures_at, public.len() - 1] {
            let mut tampered = public.clone();
            tampered[at] += Fr::from(1u64);
            let ok = ark_groth16::Groth16::<Bn254>::verify_proof(&self.keys.pvk, &self.proof, &tampered).unwrap();
            assert!(!ok, "public input {at} altered and still verified");
        }
        // A released key claimed suppressed (and the reverse).
        let mut flipped = stmt.clone();
        let k = flipped.cohort.iter().position(|c| *c == (false, false)).unwrap();
        flipped.cohort[k].0 = true;
        assert!(!verify(&flipped, &self.keys.pvk, &self.proof));
        let mut flipped = stmt.clone();
        let k = flipped.cohort.iter().position(|c| *c != (false, false)).unwrap();
        flipped.cohort[k] = (false, false);
        assert!(!verify(&flipped, &self.keys.pvk, &self.proof));
    }

    fn first_released(&self) -> usize {
        self.release.cells.iter().position(|c| c.status == CellStatus::Released).unwrap()
    }

    fn oracle(&self) -> query::OracleResult {
        query::oracle(&self.signed.template, &self.inputs).unwrap()
    }
}

fn template(query: Query) -> SignedTemplate {
    // 10 keys: the last appears at one institution only and is suppressed.
    approve_all(demo_template(3, 10, query).unwrap()).unwrap()
}

fn run(query: Query) -> Proved {
    let signed = template(query);
    let inputs = inputs_for(&signed, 400, 7);
    proved_run(signed, inputs, RunOptions::default())
}

/// Noisy figures against the oracle: within the declared bound plus `fixed` (fixed point).
fn within_bounds(p: &Proved, names: &[&str], fixed: f64) {
    let (cells, _) = p.oracle();
    for (cell, want) in p.release.cells.iter().zip(&cells) {
        match want {
            None => assert!(cell.figures.is_empty()),
            Some(want) => {
                for name in names {
                    let bound = p.release.noise_bounds[*name] + fixed;
                    assert!((cell.figures[*name] - want[*name]).abs() <= bound + 1e-9, "{name}: {cell:?} vs {want:?}");
                }
            }
        }
    }
}

fn bump(release: &mut Release, key: usize, name: &str, by: f64) {
    *release.cells[key].figures.get_mut(name).unwrap() += by;
}

#[test]
fn sum_release_is_proved() {
    let p = run(Query::Sum { column: "exposure".into() });
    within_bounds(&p, &["sum", "count"], 0.0);
    let k = p.first_released();
    p.rejects_changed(|r| bump(r, k, "sum", ULP));
    p.rejects_changed(|r| bump(r, k, "count", 1.0));
    p.rejects_tampered_public_inputs();
}

#[test]
fn mean_release_is_proved() {
    let p = run(Query::Mean { column: "exposure".into() });
    within_bounds(&p, &["sum", "count"], 0.0);
    let k = p.first_released();
    p.rejects_changed(|r| bump(r, k, "sum", ULP));
    // The mean is post-processing of the proved sums: a different mean is refused too.
    p.rejects_changed(|r| bump(r, k, "mean", 1.0));
}

#[test]
fn variance_release_is_proved() {
    let p = run(Query::Variance { column: "days_past_due".into() });
    within_bounds(&p, &["sum", "sum_of_squares", "count"], 0.0);
    let k = p.first_released();
    p.rejects_changed(|r| bump(r, k, "sum_of_squares", ULP));
    p.rejects_changed(|r| bump(r, k, "variance", 1.0));
    p.rejects_tampered_public_inputs();
}

#[test]
fn weighted_score_release_is_proved() {
    let p = run(demo_weighted_score(5.0e6));
    // One probabilistic truncation: below one unit besides the noise.
    within_bounds(&p, &["score"], ULP);
    let k = p.first_released();
    p.rejects_changed(|r| bump(r, k, "score", ULP));
    p.rejects_changed(|r| bump(r, k, "score", -ULP));
    // The flag is the public check `score >= threshold`.
    p.rejects_changed(|r| {
        let f = r.cells[k].figures.get_mut("flag").unwrap();
        *f = 1.0 - *f;
    });
    p.rejects_tampered_public_inputs();
}

#[test]
fn flag_only_release_is_proved() {
    let mut query = demo_weighted_score(4.0e6);
    if let Query::WeightedScore { release, .. } = &mut query {
        *release = ScoreRelease::FlagOnly;
    }
    let p = run(query);
    let k = p.first_released();
    assert_eq!(p.release.cells[k].figures.keys().collect::<Vec<_>>(), vec!["flag"]);
    p.rejects_changed(|r| {
        let f = r.cells[k].figures.get_mut("flag").unwrap();
        *f = 1.0 - *f;
    });
    p.rejects_tampered_public_inputs();
}

#[test]
fn herfindahl_release_is_proved() {
    let p = run(Query::Herfindahl { column: "exposure".into(), sensitivity: 0.01 });
    assert!(p.release.summary["herfindahl"].is_number(), "{:?}", p.release.summary);
    let bump_summary = |name: &'static str| {
        move |r: &mut Release| {
            let v = r.summary[name].as_f64().unwrap();
            r.summary.insert(name.into(), serde_json::json!(v + ULP));
        }
    };
    p.rejects_changed(bump_summary("herfindahl"));
    p.rejects_changed(bump_summary("total"));
    p.rejects_tampered_public_inputs();
}

#[test]
fn top_k_release_is_proved() {
    let p = run(Query::TopK { column: "exposure".into(), k: 3 });
    let top: Vec<usize> = p
        .release
        .cells
        .iter()
        .enumerate()
        .filter(|(_, c)| c.figures.get("in_top_k") == Some(&1.0))
        .map(|(i, _)| i)
        .collect();
    let out = p.release.cells.iter().position(|c| c.figures.get("in_top_k") == Some(&0.0)).unwrap();
    assert_eq!(top.len(), 3);
    // Another key in place of a top key.
    let swap = |r: &mut Release| {
        r.cells[top[0]].figures.insert("in_top_k".into(), 0.0);
        r.cells[out].figures.insert("in_top_k".into(), 1.0);
        let keys: Vec<String> =
            r.cells.iter().filter(|c| c.figures.get("in_top_k") == Some(&1.0)).map(|c| c.key.clone()).collect();
        r.summary.insert("top_k".into(), serde_json::json!(keys));
    };
    p.rejects_changed(swap);
    // One key fewer, or one more.
    p.rejects_changed(|r| {
        r.cells[top[0]].figures.insert("in_top_k".into(), 0.0);
        r.summary.remove("top_k");
    });
    p.rejects_changed(|r| {
        r.cells[out].figures.insert("in_top_k".into(), 1.0);
        r.summary.remove("top_k");
    });
    p.rejects_tampered_public_inputs();
}

/// Exact mode (no noise): the proved Herfindahl index and top-k set are the oracle's
/// (within the documented fixed-point error).
#[test]
fn exact_herfindahl_and_top_k_are_the_oracle_and_proved() {
    let signed = template(Query::Herfindahl { column: "exposure".into(), sensitivity: 0.01 });
    let inputs = inputs_for(&signed, 200, 5);
    let p = proved_run(signed, inputs, RunOptions { exact_for_tests: true });
    let (_, summary) = p.oracle();
    let (got, want) = (p.release.summary["herfindahl"].as_f64().unwrap(), summary["herfindahl"].as_f64().unwrap());
    assert!((got - want).abs() <= 3.0 * p.release.released() as f64 * ULP, "{got} vs {want}");
    let signed = template(Query::TopK { column: "exposure".into(), k: 3 });
    let inputs = inputs_for(&signed, 200, 5);
    let p = proved_run(signed, inputs, RunOptions { exact_for_tests: true });
    assert_eq!(p.release.summary["top_k"], p.oracle().1["top_k"]);
}

/// Exact mode (no noise): the proved figures are the oracle's, for the templates whose
/// figures are exact.
#[test]
fn exact_sums_are_the_oracle_and_proved() {
    let signed = template(Query::Variance { column: "days_past_due".into() });
    let inputs = inputs_for(&signed, 200, 3);
    let p = proved_run(signed, inputs, RunOptions { exact_for_tests: true });
    let (cells, _) = p.oracle();
    for (cell, want) in p.release.cells.iter().zip(&cells) {
        if let Some(want) = want {
            for name in ["sum", "sum_of_squares", "count"] {
                assert_eq!(cell.figures[name], want[name]);
            }
        }
    }
}

/// Every key below the minimum cohort: nothing computed, opened or charged, and the proof
/// states the suppression from the committed inputs; a release claiming the key passed is
/// refused.
#[test]
fn suppression_below_the_cohort_is_proved() {
    let mut t = demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap();
    t.min_rows = 1_000;
    let signed = approve_all(t).unwrap();
    let inputs = inputs_for(&signed, 40, 9);
    let p = proved_run(signed, inputs, RunOptions::default());
    assert_eq!(p.release.released(), 0);
    assert_eq!(p.release.epsilon_spent, 0.0);
    assert!(p.release.noise_bounds.is_empty());
    let stmt = Statement::from_release(&p.signed.template, &p.commitments, &p.release).unwrap();
    assert!(stmt.cohort.iter().all(|c| *c == (true, false)));
    // Claiming that a key had too few contributors (instead of rows) fails.
    let mut other = stmt.clone();
    other.cohort[0] = (true, true);
    assert!(!verify(&other, &p.keys.pvk, &p.proof));
    // Claiming it passed, with a zero figure, fails.
    let mut passed = stmt.clone();
    passed.cohort[0] = (false, false);
    assert!(!verify(&passed, &p.keys.pvk, &p.proof));
}

/// A node that adds an offset to its share of the witness: the proof aborts on every node,
/// nothing is proved.
#[test]
fn cheating_node_in_the_proof_is_detected() {
    let signed = template(demo_weighted_score(5.0e6));
    let inputs = inputs_for(&signed, 100, 2);
    let rt = runtime();
    let keys = Arc::new(rt.block_on(setup(&Shape::from_template(&signed.template).unwrap())).unwrap());
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
    let options = ProveOptions { tamper_witness: Some((1, Fr::from(7u64))), ..ProveOptions::default() };
    let (results, _) = rt.block_on(run_nodes_proved(transports, 1, &signed, &inputs, ledgers, keys, options)).unwrap();
    for r in results {
        match r {
            Err(RiskError::Proof(e)) => assert!(e.contains("unsatisfied"), "{e}"),
            // Its share no longer lies on the others' polynomial: the first opening of a value
            // derived from it fails its consistency check (or the final zero-claims check).
            Err(RiskError::Mpc(e)) => {
                let e = e.to_string();
                assert!(e.contains("consistency") || e.contains("verification"), "{e}")
            }
            other => panic!("expected detection, got {other:?}"),
        }
    }
}

/// The weighted-score statement on clear witnesses: honest truncations (down or up) and
/// noise within the bound satisfy it; anything else does not.
#[test]
fn score_statement_on_clear_witnesses() {
    let signed = template(demo_weighted_score(5.0e6));
    let inputs = inputs_for(&signed, 200, 1);
    let shape = Shape::from_template(&signed.template).unwrap();
    let tacit_risk::proof::Kind::Score { weights, noise_bits, .. } = &shape.kind else { panic!() };
    let (cells, _) = query::oracle(&signed.template, &inputs).unwrap();
    let f = signed.template.fixed.f;
    let clear = |noise: i128, bump: i128| -> (Statement, Vec<Fr>) {
        let mut values = Vec::new();
        for input in &inputs {
            values.push(input.salt);
            values.extend(committed_values(input));
        }
        let mut scores = Vec::new();
        let mut cohort = Vec::new();
        for (k, cell) in cells.iter().enumerate() {
            let rows: u64 = inputs.iter().map(|i| i.counts[k]).sum();
            let contributors = inputs.iter().filter(|i| i.counts[k] > 0).count() as u32;
            cohort.push((rows < 10, contributors < 3));
            let exact: i128 = inputs
                .iter()
                .map(|i| weights.iter().enumerate().map(|(a, w)| w * i.aggregates[a][k]).sum::<i128>())
                .sum();
            scores.push(if cell.is_some() { exact.div_euclid(1 << f) + bump } else { 0 });
        }
        let noises: Vec<i128> = cells.iter().map(|c| if c.is_some() { noise } else { 0 }).collect();
        values.extend(scores.iter().map(|s| from_i128::<Fr>(*s)));
        values.extend(noises.iter().map(|e| from_i128::<Fr>(*e)));
        let stmt = Statement {
            shape: shape.clone(),
            commitments: inputs.iter().map(|i| i.commitment().unwrap()).collect(),
            cohort,
            figures: scores.iter().zip(&noises).map(|(s, e)| from_i128(s + e)).collect(),
        };
        (stmt, values)
    };
    let rt = runtime();
    let satisfied = |(stmt, values): (Statement, Vec<Fr>)| -> bool {
        let mut r1cs = R1cs::<Fr>::new_prove();
        let r1cs_ok = match rt.block_on(circuit(&mut r1cs, &stmt, Some(&values))) {
            Ok(()) => r1cs.is_satisfied().unwrap(),
            Err(_) => false,
        };
        // The Plain backend (the oracle of the circuit) agrees.
        let plain_ok = rt.block_on(circuit(&mut Plain::new(), &stmt, Some(&values))).is_ok();
        assert_eq!(r1cs_ok, plain_ok);
        r1cs_ok
    };
    let top = (1i128 << noise_bits) - 1;
    assert!(satisfied(clear(-top, 0)));
    // Rounded up (the other outcome of probabilistic truncation) is fine too.
    assert!(satisfied(clear(top, 1)));
    // Off by two units: not a truncation of the exact score.
    assert!(!satisfied(clear(0, 2)));
    assert!(!satisfied(clear(0, -1)));
    // Noise beyond the declared bound.
    assert!(!satisfied(clear(top + 1, 0)));
    assert!(!satisfied(clear(-top - 2, 0)));
    // A released figure that is not score + noise.
    let (mut stmt, values) = clear(5, 0);
    stmt.figures[1] += Fr::from(1u64);
    assert!(!satisfied((stmt, values)));
    // A suppressed key with a nonzero figure.
    let (mut stmt, values) = clear(5, 0);
    stmt.figures[9] += Fr::from(1u64);
    assert!(!satisfied((stmt, values)));
    // Inputs that do not open the commitment.
    let (mut stmt, values) = clear(5, 0);
    stmt.commitments[2] += Fr::from(1u64);
    assert!(!satisfied((stmt, values)));
    // A cohort verdict that the counts do not give.
    let (mut stmt, values) = clear(5, 0);
    stmt.cohort[9] = (false, false);
    assert!(!satisfied((stmt, values)));
}

/// The top-k statement on clear witnesses: the honest set and cut satisfy it; claiming every
/// released key, or another set, does not (whatever cut the prover picks).
#[test]
fn top_k_statement_on_clear_witnesses() {
    let signed = template(Query::TopK { column: "exposure".into(), k: 3 });
    let inputs = inputs_for(&signed, 200, 4);
    let shape = Shape::from_template(&signed.template).unwrap();
    let tacit_risk::proof::Kind::TopK { width, index_bits, .. } = shape.kind else { panic!() };
    let nk = signed.template.keys.len();
    let (_, _, floor) = tacit_risk::proof::top_k_order(nk, index_bits, width);
    let mut cohort = Vec::new();
    let mut order = Vec::new();
    for k in 0..nk {
        let rows: u64 = inputs.iter().map(|i| i.counts[k]).sum();
        let contributors = inputs.iter().filter(|i| i.counts[k] > 0).count() as u32;
        cohort.push((rows < 10, contributors < 3));
        let exposure: i128 = inputs.iter().map(|i| i.aggregates[0][k]).sum();
        order.push((exposure << index_bits) + (nk - 1 - k) as i128);
    }
    let mut ranked: Vec<usize> = (0..nk).filter(|k| cohort[*k] == (false, false)).collect();
    ranked.sort_by_key(|k| std::cmp::Reverse(order[*k]));
    let clear = |members: &[usize], cut: Fr, noise: i128| -> (Statement, Vec<Fr>) {
        let mut values = Vec::new();
        for input in &inputs {
            values.push(input.salt);
            values.extend(committed_values(input));
        }
        values.extend((0..nk).map(|k| from_i128::<Fr>(if k == ranked[0] { noise } else { 0 })));
        values.push(cut);
        let bits: Vec<bool> = (0..nk).map(|k| members.contains(&k)).collect();
        let stmt = Statement {
            shape: shape.clone(),
            commitments: inputs.iter().map(|i| i.commitment().unwrap()).collect(),
            cohort: cohort.clone(),
            figures: tacit_risk::proof::pack_bits(&bits),
        };
        (stmt, values)
    };
    let rt = runtime();
    let satisfied = |(stmt, values): (Statement, Vec<Fr>)| -> bool {
        let mut r1cs = R1cs::<Fr>::new_prove();
        match rt.block_on(circuit(&mut r1cs, &stmt, Some(&values))) {
            Ok(()) => r1cs.is_satisfied().unwrap(),
            Err(_) => false,
        }
    };
    let cut_at = |k: usize| from_i128::<Fr>(order[k]);
    assert!(satisfied(clear(&ranked[..3], cut_at(ranked[2]), 0)));
    // Every released key claimed, with a cut below all of them.
    assert!(!satisfied(clear(&ranked, floor, 0)));
    // The fourth instead of the third, with either cut.
    let other = [ranked[0], ranked[1], ranked[3]];
    assert!(!satisfied(clear(&other, cut_at(ranked[3]), 0)));
    assert!(!satisfied(clear(&other, cut_at(ranked[2]), 0)));
    // Noise beyond the declared bound on the first key.
    let tacit_risk::proof::Kind::TopK { noise_bits, .. } = shape.kind else { panic!() };
    assert!(!satisfied(clear(&ranked[..3], cut_at(ranked[2]), 1 << noise_bits)));
    assert!(satisfied(clear(&ranked[..3], cut_at(ranked[2]), (1 << noise_bits) - 1)));
}
