//! Proven queries: the result with a collaborative proof over the institutions' committed
//! tag lists, against the oracle; a commitment that does not match the dealt list.

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::{One, Zero};
use rand::SeedableRng;
use tacit_psi::proven::ProofKeys;
use tacit_psi::statement::{Shape, StatementMode};
use tacit_psi::{oracle, run_in_memory, InputSet, Item, Mode, PsiError, PsiOutput, RunOptions};

const ROWS: usize = 24;

/// Keys per mode for 3 institutions of up to `ROWS` items (8-bit limbs keep them small).
fn keys(mode: StatementMode) -> ProofKeys {
    static CARD: OnceLock<ProofKeys> = OnceLock::new();
    static SUM: OnceLock<ProofKeys> = OnceLock::new();
    let cell = if mode == StatementMode::Sum { &SUM } else { &CARD };
    cell.get_or_init(|| {
        let shape = Shape { institutions: 3, rows: ROWS, mode, limb_bits: 8 };
        ProofKeys::generate(shape, &mut rand_chacha::ChaCha20Rng::seed_from_u64(31)).unwrap_or_else(|e| panic!("{e}"))
    })
    .clone()
}

fn sets(seed: u64) -> Vec<InputSet> {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..3)
        .map(|c| {
            let mut pairs: Vec<(Item, u64)> = (0..5)
                .map(|i| (Item::parse(&format!("common-{i}")).unwrap_or_else(|e| panic!("{e}")), rng.gen_range(0..100)))
                .collect();
            if c < 2 {
                pairs.push((Item::parse("pair").unwrap_or_else(|e| panic!("{e}")), 7));
            }
            for i in 0..(10 + 3 * c) {
                pairs.push((
                    Item::parse(&format!("own-{c}-{i}")).unwrap_or_else(|e| panic!("{e}")),
                    rng.gen_range(0..100),
                ));
            }
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn public(output: &PsiOutput, mode: Mode) -> Vec<Fr> {
    match (output, mode) {
        (PsiOutput::Cardinality(c), _) => vec![Fr::from(*c)],
        (PsiOutput::Sum(Some(s)), Mode::Sum { min_size }) => vec![Fr::from(min_size), Fr::one(), Fr::from(*s)],
        (PsiOutput::Sum(None), Mode::Sum { min_size }) => vec![Fr::from(min_size), Fr::zero(), Fr::zero()],
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_results_match_the_oracle_and_their_proofs_verify() {
    let inputs = sets(1);
    for mode in [Mode::Cardinality, Mode::Sum { min_size: 5 }, Mode::Sum { min_size: 6 }] {
        let statement_mode = if mode == Mode::Cardinality { StatementMode::Cardinality } else { StatementMode::Sum };
        let keys = keys(statement_mode);
        let mut options = RunOptions::new(1, mode);
        options.proof = Some(keys.clone());
        let run = run_in_memory(3, &inputs, &options).await;
        let proofs = run.proofs.clone();
        let (outputs, report) = run.into_result().unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(outputs, oracle(&inputs, mode), "{mode:?}");
        assert_eq!(report.intersection_size, 5);
        // The histogram counts items, not padding rows: 5 in all three, 1 in two, the rest in one.
        assert_eq!(report.histogram, vec![10 + 13 + 16, 1, 5]);
        let first = proofs[0].clone().unwrap_or_else(|| panic!("no proof"));
        assert!(proofs.iter().all(|p| p.as_ref() == Some(&first)), "every institution holds the same proof");
        assert!(keys.keys.vk.verify(&public(&outputs[0], mode), &first).unwrap_or(false));
        // Another result does not verify with this proof.
        let mut wrong = public(&outputs[0], mode);
        if let Some(last) = wrong.last_mut() {
            *last += Fr::one();
        }
        assert!(!keys.keys.vk.verify(&wrong, &first).unwrap_or(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_dealing_another_list_than_it_committed_to_is_named() {
    let inputs = sets(2);
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.proof = Some(keys(StatementMode::Cardinality));
    options.mismatched_commitment = Some(1);
    let run = run_in_memory(3, &inputs, &options).await;
    for node in &run.nodes {
        assert!(matches!(node, Err(PsiError::Commitment { institution: 1 })), "{node:?}");
    }
    assert!(run.institutions.iter().all(Result::is_err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_larger_than_the_proofs_rows_is_refused() {
    let mut inputs = sets(3);
    let big: Vec<(Item, u64)> =
        (0..ROWS + 1).map(|i| (Item::parse(&format!("big-{i}")).unwrap_or_else(|e| panic!("{e}")), 1)).collect();
    inputs[2] = InputSet::from_pairs(big).unwrap_or_else(|e| panic!("{e}"));
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.proof = Some(keys(StatementMode::Cardinality));
    let run = run_in_memory(3, &inputs, &options).await;
    assert!(run.nodes.iter().all(|n| matches!(n, Err(PsiError::Institution { institution: 2, .. }))));
}

/// A node reporting another count than it proved: the institutions see the nodes disagree,
/// and the proof would not verify for that count anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reporting_another_result_than_the_proof_is_refused() {
    let inputs = sets(4);
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.proof = Some(keys(StatementMode::Cardinality));
    let cheater = tacit_psi::tacit_mpc_engine::PartyId::new(2).unwrap_or_else(|| panic!("party"));
    options.cheat = Some((cheater, tacit_psi::protocol::Cheat::Output));
    let run = run_in_memory(3, &inputs, &options).await;
    // No institution accepts a result (each reports the first failure it sees, normally
    // that the nodes disagree).
    assert!(run.institutions.iter().any(|i| matches!(i, Err(PsiError::Nodes { .. }))), "{:?}", run.institutions);
    assert!(run.institutions.iter().all(Result::is_err), "{:?}", run.institutions);
    assert!(run.proofs.iter().all(Option::is_none));
}

/// Keys written to a folder read back (validated or trusted) and prove; keys that do not
/// fit together are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_written_and_read_back_prove_and_mixed_keys_are_refused() {
    let dir = std::env::temp_dir().join(format!("tacit-psi-keys-{}", std::process::id()));
    let other_dir = dir.join("other");
    let _ = std::fs::remove_dir_all(&dir);
    let keys = keys(StatementMode::Cardinality);
    keys.write(&dir).unwrap_or_else(|e| panic!("{e}"));
    let id = keys.id().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ProofKeys::peek(&dir).map(|(found, shape)| (found == id, shape)).ok(), Some((true, keys.shape)));
    for trusted in [false, true] {
        let read = ProofKeys::read(&dir, trusted).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.shape, &read.keys.vk), (keys.shape, &keys.keys.vk));
        assert_eq!(read.keys.commitment_keys, keys.keys.commitment_keys);
    }
    let read = ProofKeys::read(&dir, true).unwrap_or_else(|e| panic!("{e}"));
    let inputs = sets(5);
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.proof = Some(read);
    let run = run_in_memory(3, &inputs, &options).await;
    let proof = run.proofs[0].clone().unwrap_or_else(|| panic!("no proof"));
    let (outputs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert!(keys.keys.vk.verify(&public(&outputs[0], Mode::Cardinality), &proof).unwrap_or(false));

    // Another setup of the same shape: each of its files mixed into these keys is refused.
    let shape = keys.shape;
    ProofKeys::generate(shape, &mut rand_chacha::ChaCha20Rng::seed_from_u64(99))
        .and_then(|k| k.write(&other_dir))
        .unwrap_or_else(|e| panic!("{e}"));
    for file in ["commitment_keys.bin", "verifying_key.bin", "proving_key.bin"] {
        let mixed = dir.join(format!("mixed-{file}"));
        keys.write(&mixed).unwrap_or_else(|e| panic!("{e}"));
        std::fs::copy(other_dir.join(file), mixed.join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert!(ProofKeys::read(&mixed, true).is_err(), "{file}");
        // An institution reads no proving key; mixed commitment keys fail their sigma check,
        // another verifying key has another id.
        let institution = tacit_psi::proven::InstitutionKeys::read(&mixed, &id);
        assert_eq!(institution.is_err(), file != "proving_key.bin", "{file}");
    }
    // The institution's part of the keys, read by their id; another id is refused.
    let institution = tacit_psi::proven::InstitutionKeys::read(&dir, &id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((institution.shape, &*institution.vk), (keys.shape, &keys.keys.vk));
    assert_eq!(*institution.commitment_keys, keys.keys.commitment_keys);
    assert!(tacit_psi::proven::InstitutionKeys::read(&dir, &"ab".repeat(32)).is_err());
    assert!(ProofKeys::read_named(&dir, &id, true).is_ok());
    assert!(ProofKeys::read_named(&other_dir, &id, true).is_err());
    // Another shape than the keys were made for.
    let wrong_shape = dir.join("wrong-shape");
    keys.write(&wrong_shape).unwrap_or_else(|e| panic!("{e}"));
    let other = Shape { rows: ROWS + 1, ..shape };
    std::fs::write(wrong_shape.join("shape.json"), serde_json::to_vec(&other).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ProofKeys::read(&wrong_shape, true).is_err());
    assert!(tacit_psi::proven::InstitutionKeys::read(&wrong_shape, &id).is_err());
    // A shape the statement does not support is refused before anything is sized by it.
    let absurd = Shape { institutions: 1 << 40, ..shape };
    std::fs::write(wrong_shape.join("shape.json"), serde_json::to_vec(&absurd).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tacit_psi::proven::InstitutionKeys::read(&wrong_shape, &id).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An institution dealing limbs that do not fit its list makes the statement fail; the
/// nodes then check every institution's limbs on shares and name it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_dealing_limbs_that_do_not_fit_its_list_is_named() {
    let inputs = sets(5);
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.proof = Some(keys(StatementMode::Cardinality));
    options.wrong_limbs = Some(2);
    let run = run_in_memory(3, &inputs, &options).await;
    for node in &run.nodes {
        assert!(
            matches!(node, Err(PsiError::Institution { institution: 2, reason }) if reason.contains("limbs")),
            "{node:?}"
        );
    }
    assert!(run.institutions.iter().all(Result::is_err));
}
