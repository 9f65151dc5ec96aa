//! Poseidon: known answers from circomlib's ecosystem, agreement with light-poseidon's own
//! implementation, the three-way check, and the batching cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use std::str::FromStr;

use ark_bn254::Fr;
use ark_ff::PrimeField;
use common::{block_on, check, fr, p1, Circuit};
use proptest::prelude::*;
use tacit_circuits::gadgets::commitment::{commit, commitment};
use tacit_circuits::gadgets::poseidon::{params, poseidon_hash, poseidon_reference, MAX_INPUTS};
use tacit_circuits::{Backend, CircuitError, Plain, R1cs, Result};

fn dec(s: &str) -> Fr {
    Fr::from_str(s).unwrap()
}

fn hex(s: &str) -> Fr {
    let bytes: Vec<u8> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    Fr::from_be_bytes_mod_order(&bytes)
}

fn frs(v: &[u64]) -> Vec<Fr> {
    v.iter().map(|x| fr(*x)).collect()
}

/// Known answers, each with its source.
fn known_answers() -> Vec<(Vec<Fr>, Fr)> {
    vec![
        // go-iden3-crypto, poseidon/poseidon_test.go, TestPoseidonHash.
        (frs(&[1]), dec("18586133768512220936620570745912940619677854269274689475585506675881198879027")),
        (frs(&[1, 2]), dec("7853200120776062878684798364095072458815029376092732009249414926327459813530")),
        (frs(&[1, 2, 0, 0, 0]), dec("1018317224307729531995786483840663576608797660851238720571059489595066344487")),
        (
            frs(&[1, 2, 0, 0, 0, 0]),
            dec("15336558801450556532856248569924170992202208561737609669134139141992924267169"),
        ),
        (frs(&[3, 4, 0, 0, 0]), dec("5811595552068139067952687508729883632420015185677766880877743348592482390548")),
        (
            frs(&[3, 4, 0, 0, 0, 0]),
            dec("12263118664590987767234828103155242843640892839966517009184493198782366909018"),
        ),
        (
            frs(&[1, 2, 3, 4, 5, 6]),
            dec("20400040500897583745843009878988256314335038853985262692600694741116813247201"),
        ),
        // circomlib, test/poseidoncircuit.js (Poseidon(2) and Poseidon(5) circuits).
        (frs(&[3, 4]), dec("14763215145315200506921711489642608356394854266165572616578112107564877678998")),
        (frs(&[3, 4, 5, 10, 23]), dec("13034429309846638789535561449942021891039729847501137143363028890275222221409")),
        // circomlibjs, test/poseidon.js (poseidonperm_x5_254_3 and _5 reference checks).
        (frs(&[1, 2]), hex("115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a")),
        (frs(&[1, 2, 3, 4]), hex("299c867db6c1fdd79dcefa40e4510b9837e60ebb1ce0663dbaa525df65250465")),
        // light-poseidon 0.5, tests/bn254_fq_x5.rs, TEST_CASES: circomlibjs poseidon([1; n]).
        (frs(&[1]), hex("29176100eaa962bdc1fe6c654d6a3c130e96a4d1168b33848b897dc502820133")),
        (frs(&[1, 1]), hex("007af346e2d304279e79e0a9f3023f771294a78acb70e73f90afe27cad401e81")),
        (frs(&[1, 1, 1]), hex("02c0066e10a72abd2b33c3b214cb3e81bcb1b6e30961cd23c202b18673bf2543")),
        (frs(&[1, 1, 1, 1]), hex("082c9c370a0d24f4416fbc414a37681f78442d27d86385991c17d6fc0c4b7d71")),
        (frs(&[1, 1, 1, 1, 1]), hex("10389605ae688d4f14db853122c47d66a803c72b41589cb1bf868741b206b9bb")),
        (frs(&[1, 1, 1, 1, 1, 1]), hex("2a73f679328c3eab724aa3e5bdbf50b39035d7729f135b9709890f85c5dc5e76")),
    ]
}

fn plain_hash(inputs: &[Fr]) -> Fr {
    block_on(async {
        let mut b = Plain::new();
        let v: Vec<Fr> = inputs.to_vec();
        poseidon_hash(&mut b, &[v]).await.unwrap()[0]
    })
}

#[test]
fn known_answers_plain_and_reference() {
    for (inputs, expected) in known_answers() {
        assert_eq!(plain_hash(&inputs), expected, "Plain Poseidon{inputs:?}");
        assert_eq!(poseidon_reference(&inputs).unwrap(), expected, "light-poseidon Poseidon{inputs:?}");
    }
}

/// Hashes `count` hashes of `arity` private inputs each (inputs flattened).
struct Hashes {
    arity: usize,
}

impl Circuit for Hashes {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, inputs: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let batch: Vec<Vec<B::Value>> = inputs.chunks(self.arity).map(<[_]>::to_vec).collect();
        poseidon_hash(b, &batch).await
    }
}

#[test]
fn known_answers_r1cs_three_ways() {
    // One batch per arity: every known answer of that arity at once.
    let answers = known_answers();
    for arity in 1..=6 {
        let cases: Vec<&(Vec<Fr>, Fr)> = answers.iter().filter(|(i, _)| i.len() == arity).collect();
        let flat: Vec<Fr> = cases.iter().flat_map(|(i, _)| i.iter().copied()).collect();
        let checked = check(&Hashes { arity }, &flat);
        let expected: Vec<Fr> = cases.iter().map(|(_, e)| *e).collect();
        assert_eq!(checked.outputs, expected, "arity {arity}");
        assert!(checked.free_witnesses.is_empty(), "every Poseidon witness is constrained");
        let p = params(arity).unwrap();
        assert_eq!(checked.r1cs.num_witness(), flat.len() + cases.len() * p.products_per_hash());
        // One constraint per product, one per revealed output.
        assert_eq!(checked.r1cs.num_constraints(), cases.len() * (p.products_per_hash() + 1));
    }
}

#[test]
fn batch_costs_as_many_calls_as_one_hash() {
    // circomlib's partial rounds for t = 2..7.
    let partial = [56, 57, 56, 60, 60, 63];
    for arity in 1..=6 {
        let p = params(arity).unwrap();
        assert_eq!((p.width, p.full_rounds, p.partial_rounds), (arity + 1, 8, partial[arity - 1]));
        for m in [1usize, 5] {
            let batch: Vec<Vec<Fr>> = (0..m).map(|h| (0..arity).map(|i| fr((h * 10 + i) as u64)).collect()).collect();
            let mut b = Plain::new();
            let out = block_on(poseidon_hash(&mut b, &batch)).unwrap();
            assert_eq!(out.len(), m);
            let counts = b.counts();
            assert_eq!(counts.mul_calls, 3 * (8 + partial[arity - 1]), "arity {arity}, batch {m}");
            assert_eq!(counts.mul_calls, p.mul_calls());
            assert_eq!(counts.interactive_calls(), counts.mul_calls, "only mul is interactive");
            assert_eq!(counts.mul_products, m * 3 * ((arity + 1) * 8 + partial[arity - 1]));
            assert_eq!(b.witness().len(), m * p.products_per_hash());
            for (h, o) in batch.iter().zip(&out) {
                assert_eq!(*o, poseidon_reference(h).unwrap());
            }
        }
    }
}

#[test]
fn r1cs_setup_counts_match_plain() {
    let mut setup = R1cs::new_setup();
    block_on(async {
        let x = setup.private_inputs(p1(), None, 6).await.unwrap();
        let batch = vec![x[..2].to_vec(), x[2..4].to_vec(), x[4..].to_vec()];
        let out = poseidon_hash(&mut setup, &batch).await.unwrap();
        assert!(out.iter().all(|o| o.value().is_none()));
    });
    let p = params(2).unwrap();
    assert_eq!(setup.num_witness(), 6 + 3 * p.products_per_hash());
    assert_eq!(setup.num_constraints(), 3 * p.products_per_hash());
    assert_eq!(p.products_per_hash(), 243, "circomlib's Poseidon(2) has 240 constraints plus 3 for the capacity");
}

#[test]
fn rejects_bad_batches() {
    let mut b = Plain::new();
    let mixed = vec![vec![fr(1)], vec![fr(1), fr(2)]];
    assert!(matches!(block_on(poseidon_hash(&mut b, &mixed)), Err(CircuitError::Usage(_))));
    assert!(matches!(block_on(poseidon_hash(&mut b, &[vec![]])), Err(CircuitError::Usage(_))));
    let too_many = vec![vec![fr(0); MAX_INPUTS + 1]];
    assert!(matches!(block_on(poseidon_hash(&mut b, &too_many)), Err(CircuitError::Usage(_))));
    assert!(block_on(poseidon_hash(&mut b, &[])).unwrap().is_empty());
    assert_eq!(b.counts().mul_calls, 0);
}

struct Commit;

impl Circuit for Commit {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, inputs: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let (values, salts) = inputs.split_at(inputs.len() / 2);
        commit(b, values, salts).await
    }
}

#[test]
fn commitment_known_answer() {
    // circomlib Poseidon(2) on (3, 4), see `known_answers`.
    let expected = dec("14763215145315200506921711489642608356394854266165572616578112107564877678998");
    assert_eq!(commitment(fr(3), fr(4)).unwrap(), expected);
    let checked = check(&Commit, &[fr(3), fr(1), fr(4), fr(2)]);
    assert_eq!(checked.outputs, vec![expected, commitment(fr(1), fr(2)).unwrap()]);
    assert_eq!(checked.plain.counts().mul_calls, 3 * (8 + 57));
}

fn any_fr() -> impl Strategy<Value = Fr> {
    any::<[u8; 32]>().prop_map(|b| Fr::from_le_bytes_mod_order(&b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn plain_matches_light_poseidon(arity in 1usize..=6, seed in proptest::collection::vec(any_fr(), 12)) {
        let batch: Vec<Vec<Fr>> = seed.chunks(arity).filter(|c| c.len() == arity).map(<[_]>::to_vec).collect();
        let out = block_on(async { poseidon_hash(&mut Plain::new(), &batch).await.unwrap() });
        for (h, o) in batch.iter().zip(&out) {
            prop_assert_eq!(*o, poseidon_reference(h).unwrap());
        }
    }

    #[test]
    fn commit_three_ways(values in proptest::collection::vec(any_fr(), 1..4), salt in any_fr()) {
        let salts: Vec<Fr> = (0..values.len()).map(|i| salt + fr(i as u64)).collect();
        let flat: Vec<Fr> = values.iter().chain(&salts).copied().collect();
        let checked = check(&Commit, &flat);
        let expected: Vec<Fr> = values.iter().zip(&salts).map(|(v, s)| commitment(*v, *s).unwrap()).collect();
        prop_assert_eq!(checked.outputs, expected);
        prop_assert!(checked.free_witnesses.is_empty());
    }
}
