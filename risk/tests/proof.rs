//! The weighted-score release proof: the circuit's statement on clear values (R1cs), and
//! the collaborative proof over a real run, checked with ark-groth16.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use ark_bn254::Fr;
use tacit_circuits::R1cs;
use tacit_mpc_engine::field::from_i128;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_risk::proof::{committed_values, score_circuit, verify, ScoreStatement};
use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes_proved, synthetic_csv};
use tacit_risk::{aggregate_csv, InstitutionInput, Ledger, Outcome, Query};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn setup(keys: usize) -> (tacit_risk::SignedTemplate, Vec<InstitutionInput>) {
    let signed = approve_all(demo_template(3, keys, demo_weighted_score(5.0e6)).unwrap()).unwrap();
    let inputs = signed
        .template
        .institutions
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            aggregate_csv(&inst.name, &synthetic_csv(i, 200, &signed.template, 1), &signed.template).unwrap()
        })
        .collect();
    (signed, inputs)
}

/// Clear witness: salts and vectors, scores floor(exact / 2^f) (+ `bump`), noise.
fn clear(
    signed: &tacit_risk::SignedTemplate,
    inputs: &[InstitutionInput],
    noise: i128,
    bump: i128,
) -> (ScoreStatement, Vec<Fr>) {
    let t = &signed.template;
    let Query::WeightedScore { weights, .. } = &t.query else { panic!() };
    let weights: Vec<i128> = weights.iter().map(|(_, w)| t.fixed.to_raw(*w).unwrap()).collect();
    let keys: Vec<usize> = (0..t.keys.len()).collect();
    let mut values = Vec::new();
    for input in inputs {
        values.push(input.salt);
        values.extend(committed_values(input));
    }
    let mut scores = Vec::new();
    for k in &keys {
        let exact: i128 =
            inputs.iter().map(|i| weights.iter().enumerate().map(|(a, w)| w * i.aggregates[a][*k]).sum::<i128>()).sum();
        scores.push(exact.div_euclid(1 << t.fixed.f) + bump);
    }
    values.extend(scores.iter().map(|s| from_i128::<Fr>(*s)));
    values.extend(scores.iter().map(|_| from_i128::<Fr>(noise)));
    let stmt = ScoreStatement {
        commitments: inputs.iter().map(|i| i.commitment().unwrap()).collect(),
        released_keys: keys,
        released: scores.iter().map(|s| from_i128(s + noise)).collect(),
        weights,
        f: t.fixed.f,
        noise_bits: 10,
        keys: t.keys.len(),
    };
    (stmt, values)
}

fn satisfied(stmt: &ScoreStatement, values: &[Fr]) -> bool {
    let mut r1cs = R1cs::<Fr>::new_prove();
    let rt = runtime();
    match rt.block_on(score_circuit(&mut r1cs, stmt, Some(values))) {
        Ok(()) => r1cs.is_satisfied().unwrap(),
        Err(_) => false,
    }
}

#[test]
fn statement_accepts_honest_releases_and_rejects_others() {
    let (signed, inputs) = setup(4);
    let (stmt, values) = clear(&signed, &inputs, -1000, 0);
    assert!(satisfied(&stmt, &values));
    // Rounded up (the other outcome of probabilistic truncation) is fine too.
    let (stmt, values) = clear(&signed, &inputs, 1023, 1);
    assert!(satisfied(&stmt, &values));
    // Off by two units: not a truncation of the exact score.
    let (stmt, values) = clear(&signed, &inputs, 0, 2);
    assert!(!satisfied(&stmt, &values));
    // Noise beyond the declared bound.
    let (stmt, values) = clear(&signed, &inputs, 1024, 0);
    assert!(!satisfied(&stmt, &values));
    // A released figure that is not score + noise.
    let (mut stmt, values) = clear(&signed, &inputs, 5, 0);
    stmt.released[1] += Fr::from(1u64);
    assert!(!satisfied(&stmt, &values));
    // Inputs that do not open the commitment.
    let (mut stmt, values) = clear(&signed, &inputs, 5, 0);
    stmt.commitments[2] += Fr::from(1u64);
    assert!(!satisfied(&stmt, &values));
    // A commitment tree of several levels (40 keys: 160 committed values per institution).
    let (signed, inputs) = setup(40);
    let (stmt, values) = clear(&signed, &inputs, 3, 0);
    assert!(satisfied(&stmt, &values));
}

#[test]
fn collaborative_proof_of_a_noisy_weighted_score_verifies() {
    let (signed, inputs) = setup(4);
    let rt = runtime();
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
    let (outcomes, proved) = rt.block_on(run_nodes_proved(transports, 1, &signed, &inputs, ledgers)).unwrap();
    let (stmt, keys, proofs) = proved.expect("a release to prove");
    let Outcome::Released(release) = &outcomes[0].as_ref().unwrap().0 else { panic!("refused") };
    assert_eq!(stmt.released.len(), release.released());
    // The released figures in the statement are the ones published.
    for (k, v) in stmt.released_keys.iter().zip(&stmt.released) {
        let published = release.cells[*k].figures["score"];
        assert_eq!(signed.template.fixed.decode(v).unwrap(), published);
    }
    for proof in &proofs {
        assert!(verify(&stmt, &keys.pvk, proof));
    }
    let mut wrong = stmt.clone();
    wrong.released[0] += Fr::from(1u64);
    assert!(!verify(&wrong, &keys.pvk, &proofs[0]));
}
