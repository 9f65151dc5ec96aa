//! Groth16 with committed groups: a permutation check whose challenge is drawn from the
//! commitments to both lists.

use ark_bn254::{Fr, G1Affine};
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{One, Zero};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_std::UniformRand;

use tacit_prover::committed::{self, CommitError, CommitLayout, CommittedKeys, CommittedProof, CommittedVerifyingKey};
use tacit_prover::qap::{matrices_for_setup, synthesize_for_proving, R1csMatrices};

use crate::rng;

/// Public `sum`; group 0: `a_1..a_k` and a blinder; group 1: `b_1..b_k` and a blinder;
/// public challenge `γ`. Constrains `Σ a = sum` and `Π (γ - a_i) = Π (γ - b_i)`, i.e. (for a
/// `γ` drawn after both lists are fixed) `b` is a permutation of `a`.
#[derive(Clone)]
struct Permutation {
    k: usize,
    a: Option<Vec<Fr>>,
    b: Option<Vec<Fr>>,
    blinders: Option<[Fr; 2]>,
    gamma: Option<Fr>,
}

impl Permutation {
    fn blank(k: usize) -> Self {
        Self { k, a: None, b: None, blinders: None, gamma: None }
    }

    /// Instance layout: `[1, sum, a.., ra, b.., rb, γ]`.
    fn layout(k: usize) -> CommitLayout {
        CommitLayout::new(2 * k + 5, vec![2..k + 3, k + 3..2 * k + 4], 2 * k + 4).unwrap()
    }
}

fn value<T: Copy>(v: &Option<Vec<T>>, i: usize) -> Result<T, SynthesisError> {
    v.as_ref().and_then(|v| v.get(i).copied()).ok_or(SynthesisError::AssignmentMissing)
}

impl ConstraintSynthesizer<Fr> for Permutation {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let sum =
            cs.new_input_variable(|| self.a.as_ref().map(|a| a.iter().sum()).ok_or(SynthesisError::AssignmentMissing))?;
        let mut lists = Vec::new();
        for (g, list) in [&self.a, &self.b].into_iter().enumerate() {
            let vars = (0..self.k).map(|i| cs.new_input_variable(|| value(list, i))).collect::<Result<Vec<_>, _>>()?;
            let _blinder =
                cs.new_input_variable(|| self.blinders.map(|r| r[g]).ok_or(SynthesisError::AssignmentMissing))?;
            lists.push(vars);
        }
        let gamma = cs.new_input_variable(|| self.gamma.ok_or(SynthesisError::AssignmentMissing))?;
        let sum_lc = lists[0].iter().fold(LinearCombination::zero(), |lc, v| lc + *v);
        cs.enforce_r1cs_constraint(|| sum_lc, || Variable::One.into(), || sum.into())?;
        let mut products = Vec::new();
        for (vars, list) in lists.iter().zip([&self.a, &self.b]) {
            let mut acc = LinearCombination::from(gamma) - vars[0];
            let mut acc_value = self.gamma.zip(list.as_ref()).map(|(g, l)| g - l[0]);
            for (i, v) in vars.iter().enumerate().skip(1) {
                let next_value = acc_value.zip(self.gamma).zip(list.as_ref()).map(|((p, g), l)| p * (g - l[i]));
                let next = cs.new_witness_variable(|| next_value.ok_or(SynthesisError::AssignmentMissing))?;
                let factor = LinearCombination::from(gamma) - *v;
                cs.enforce_r1cs_constraint(|| acc.clone(), || factor, || next.into())?;
                acc = next.into();
                acc_value = next_value;
            }
            products.push(acc);
        }
        let (pa, pb) = (products[0].clone(), products[1].clone());
        cs.enforce_r1cs_constraint(|| pa, || Variable::One.into(), || pb)?;
        Ok(())
    }
}

const K: usize = 6;

fn keys() -> (CommittedKeys, R1csMatrices) {
    let matrices = matrices_for_setup(Permutation::blank(K)).unwrap();
    let keys = committed::setup(&matrices, Permutation::layout(K), &mut rng(11)).unwrap();
    (keys, matrices)
}

/// The full assignment for `a`, `b`: synthesized once with a zero challenge to fix the
/// groups, then again with the challenge their commitments give.
fn assignment(keys: &CommittedKeys, a: &[Fr], b: &[Fr], blinders: [Fr; 2]) -> Vec<Fr> {
    let circuit = |gamma| Permutation {
        k: K,
        a: Some(a.to_vec()),
        b: Some(b.to_vec()),
        blinders: Some(blinders),
        gamma: Some(gamma),
    };
    let (_, partial) = synthesize_for_proving(circuit(Fr::zero())).unwrap();
    let gamma = keys.challenge_for(&partial).unwrap();
    let (_, z) = synthesize_for_proving(circuit(gamma)).unwrap();
    z
}

fn lists(seed: u64) -> (Vec<Fr>, Vec<Fr>, [Fr; 2]) {
    let mut r = rng(seed);
    let a: Vec<Fr> = (0..K).map(|_| Fr::rand(&mut r)).collect();
    let mut b = a.clone();
    b.reverse();
    b.swap(0, 2);
    (a, b, [Fr::rand(&mut r), Fr::rand(&mut r)])
}

fn honest() -> (CommittedKeys, R1csMatrices, Vec<Fr>, CommittedProof) {
    let (keys, matrices) = keys();
    let (a, b, blinders) = lists(3);
    let z = assignment(&keys, &a, &b, blinders);
    let proof = keys.prove(&matrices, &z, &mut rng(4)).unwrap();
    (keys, matrices, z, proof)
}

#[test]
fn a_permutation_proves_and_verifies() {
    let (keys, _, z, proof) = honest();
    let public = keys.layout.public_inputs(&z).unwrap();
    assert_eq!(public, vec![z[1]]);
    assert!(keys.vk.verify(&public, &proof).unwrap());
    // The reduced key has the constant's, the sum's and the challenge's points only.
    assert_eq!(keys.vk.vk.gamma_abc_g1.len(), 3);
    assert_eq!(keys.vk.num_groups(), 2);
}

#[test]
fn the_challenge_is_keccak_of_the_inputs_and_commitments() {
    let (_, _, z, proof) = honest();
    use sha3::{Digest, Keccak256};
    let mut words = Vec::new();
    let be = |x: &[u8]| {
        let mut w = [0u8; 32];
        w[32 - x.len()..].copy_from_slice(x);
        w
    };
    use ark_ff::{BigInteger, PrimeField};
    words.push(be(&z[1].into_bigint().to_bytes_be()));
    for g in &proof.groups {
        let (x, y) = g.commitment.xy().unwrap();
        words.push(be(&x.into_bigint().to_bytes_be()));
        words.push(be(&y.into_bigint().to_bytes_be()));
    }
    let digest = Keccak256::digest(words.concat());
    assert_eq!(z[2 * K + 4], Fr::from_be_bytes_mod_order(&digest));
}

#[test]
fn lists_that_are_not_permutations_cannot_be_proven() {
    let (keys, matrices) = keys();
    let (a, mut b, blinders) = lists(5);
    b[1] += Fr::one();
    let z = assignment(&keys, &a, &b, blinders);
    assert!(matches!(keys.prove(&matrices, &z, &mut rng(6)), Err(CommitError::Qap(_))));
}

#[test]
fn an_assignment_reusing_another_lists_challenge_is_refused() {
    let (keys, matrices) = keys();
    let (a, b, blinders) = lists(7);
    let gamma = assignment(&keys, &a, &b, blinders)[2 * K + 4];
    // Other lists, still a permutation, so every constraint holds with the old challenge;
    // but their commitments give another challenge.
    let (a2, b2): (Vec<Fr>, Vec<Fr>) =
        (a.iter().map(|x| *x + Fr::one()).collect(), b.iter().map(|x| *x + Fr::one()).collect());
    let circuit = Permutation { k: K, a: Some(a2), b: Some(b2), blinders: Some(blinders), gamma: Some(gamma) };
    let (_, z) = synthesize_for_proving(circuit).unwrap();
    tacit_prover::qap::check_satisfied(&matrices, &z).unwrap();
    assert!(matches!(keys.prove(&matrices, &z, &mut rng(8)), Err(CommitError::WrongChallenge)));
}

#[test]
fn tampered_commitments_do_not_verify() {
    let (keys, _, z, proof) = honest();
    let public = keys.layout.public_inputs(&z).unwrap();
    // Another list committed correctly (valid knowledge proof) in place of group 1.
    let mut other = proof.clone();
    let values: Vec<Fr> = (0..=K).map(|i| Fr::from(i as u64 + 1)).collect();
    other.groups[1] = keys.commitment_keys[1].commit(&values).unwrap();
    assert!(!keys.vk.verify(&public, &other).unwrap());
    // Moving weight between the groups: D_0 + K, D_1 - K for a point K of group 1. The sum
    // of commitments is unchanged, but the knowledge proofs fail.
    let k = keys.commitment_keys[1].basis[0];
    let mut moved = proof.clone();
    moved.groups[0].commitment = (moved.groups[0].commitment + k).into_affine();
    moved.groups[1].commitment = (moved.groups[1].commitment - k).into_affine();
    assert!(!keys.vk.verify(&public, &moved).unwrap());
    // Identity commitment and knowledge.
    let mut zero = proof.clone();
    zero.groups[0].commitment = G1Affine::zero();
    zero.groups[0].knowledge = G1Affine::zero();
    assert!(!keys.vk.verify(&public, &zero).unwrap());
    // Groups swapped.
    let mut swapped = proof.clone();
    swapped.groups.swap(0, 1);
    assert!(!keys.vk.verify(&public, &swapped).unwrap());
    // A different public input.
    assert!(!keys.vk.verify(&[public[0] + Fr::one()], &proof).unwrap());
    // Wrong numbers of inputs or groups are errors, not a verdict.
    assert!(keys.vk.verify(&[], &proof).is_err());
    let mut short = proof.clone();
    short.groups.pop();
    assert!(keys.vk.verify(&public, &short).is_err());
}

#[test]
fn blinded_commitments_differ_for_the_same_list() {
    let (keys, _) = keys();
    let (a, b, _) = lists(9);
    let z1 = assignment(&keys, &a, &b, [Fr::from(1u64), Fr::from(2u64)]);
    let z2 = assignment(&keys, &a, &b, [Fr::from(3u64), Fr::from(2u64)]);
    let c1 = keys.commit_groups(&z1).unwrap();
    let c2 = keys.commit_groups(&z2).unwrap();
    assert_ne!(c1[0].commitment, c2[0].commitment);
    assert_eq!(c1[1], c2[1]);
}

#[test]
fn keys_and_proofs_round_trip_and_bad_encodings_are_refused() {
    let (keys, _, z, proof) = honest();
    let public = keys.layout.public_inputs(&z).unwrap();
    let vk_bytes = committed::to_bytes(&keys.vk).unwrap();
    let vk = CommittedVerifyingKey::from_bytes(&vk_bytes).unwrap();
    assert_eq!(vk, keys.vk);
    let proof_bytes = committed::to_bytes(&proof).unwrap();
    let decoded = committed::proof_from_bytes(&proof_bytes).unwrap();
    assert!(vk.verify(&public, &decoded).unwrap());
    let ck_bytes = committed::to_bytes(&keys.commitment_keys[0]).unwrap();
    assert_eq!(committed::CommitmentKey::from_bytes(&ck_bytes).unwrap(), keys.commitment_keys[0]);

    let mut trailing = proof_bytes.clone();
    trailing.push(0);
    assert!(matches!(committed::proof_from_bytes(&trailing), Err(CommitError::TrailingBytes(1))));
    assert!(committed::proof_from_bytes(&proof_bytes[..proof_bytes.len() - 1]).is_err());
    let mut flipped = proof_bytes;
    let last = flipped.len() - 5;
    flipped[last] ^= 0x40;
    assert!(committed::proof_from_bytes(&flipped).map(|p| !vk.verify(&public, &p).unwrap()).unwrap_or(true));

    // An identity sigma would accept any commitment with a zero knowledge proof.
    let mut weak = keys.vk.clone();
    weak.sigma_g2[1] = ark_bn254::G2Affine::zero();
    assert!(CommittedVerifyingKey::from_bytes(&committed::to_bytes(&weak).unwrap()).is_err());
    // A G2 point off the subgroup is refused when decoding.
    let mut off = keys.vk.clone();
    off.sigma_g2[0] = crate::g2_outside_subgroup();
    assert!(CommittedVerifyingKey::from_bytes(&committed::to_bytes(&off).unwrap()).is_err());
}

#[test]
fn bad_layouts_are_refused() {
    let one = |r: std::ops::Range<usize>| vec![r];
    assert!(CommitLayout::new(10, vec![], 9).is_err());
    assert!(CommitLayout::new(10, one(0..3), 9).is_err());
    assert!(CommitLayout::new(10, vec![1..4, 3..5], 9).is_err());
    assert!(CommitLayout::new(10, one(1..4), 3).is_err());
    assert!(CommitLayout::new(10, one(1..11), 9).is_err());
    assert!(CommitLayout::new(10, one(2..2), 9).is_err());
    let layout = CommitLayout::new(10, vec![2..4, 6..8], 5).unwrap();
    assert_eq!(layout.public_indices(), vec![1, 4, 8, 9]);
}
