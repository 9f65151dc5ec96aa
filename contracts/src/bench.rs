//! Execution gas of one on-chain verification, for `tacit bench gas`: a real proof of a small
//! circuit with `n` public inputs, verified by a freshly deployed `Groth16Verifier` on revm;
//! and likewise for `Groth16CommittedVerifier` with `n` public inputs and `s` groups.

use ark_bn254::Fr;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use serde::Serialize;
use tacit_prover::committed::{self, CommitLayout, CommittedVerifyingKey};
use tacit_prover::qap::{matrices_for_setup, prove_single, synthesize_for_proving};
use tacit_prover::snarkjs::EvmProof;

use crate::{eip1108_floor, CommittedEvmProof, ContractError, LocalChain, Result};

/// Public `x_i = w_i² + i` for secret `w_i`, `i < w.len()`: `2 n` constraints, `n` public
/// inputs. `None` values give the setup-mode circuit.
#[derive(Clone, Debug)]
pub struct Squares {
    /// The secrets.
    pub w: Vec<Option<Fr>>,
}

impl ConstraintSynthesizer<Fr> for Squares {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        for (i, w) in self.w.iter().enumerate() {
            let k = Fr::from(i as u64);
            let x = cs.new_input_variable(|| w.map(|w| w * w + k).ok_or(SynthesisError::AssignmentMissing))?;
            let wv = cs.new_witness_variable(|| w.ok_or(SynthesisError::AssignmentMissing))?;
            let t = cs.new_witness_variable(|| w.map(|w| w * w).ok_or(SynthesisError::AssignmentMissing))?;
            cs.enforce_r1cs_constraint(|| wv.into(), || wv.into(), || t.into())?;
            cs.enforce_r1cs_constraint(
                || LinearCombination::from(t) + (k, Variable::One),
                || Variable::One.into(),
                || x.into(),
            )?;
        }
        Ok(())
    }
}

/// A verifying key, a proof and its public inputs for [`Squares`] with `n` inputs
/// (deterministic in `seed`).
pub fn squares_proof(n: usize, seed: u64) -> Result<(ark_groth16::VerifyingKey<ark_bn254::Bn254>, EvmProof)> {
    let prover = |e: String| ContractError::Prover(e);
    let mut rng = StdRng::seed_from_u64(seed);
    let (pk, _) =
        tacit_prover::keys::setup(Squares { w: vec![None; n] }, &mut rng).map_err(|e| prover(e.to_string()))?;
    let w: Vec<Option<Fr>> = (0..n).map(|_| Some(Fr::rand(&mut rng))).collect();
    let (matrices, z) = synthesize_for_proving(Squares { w }).map_err(|e| prover(e.to_string()))?;
    let inputs = matrices.public_inputs(&z).map_err(|e| prover(e.to_string()))?.to_vec();
    let proof =
        prove_single(&pk, &matrices, &z, Fr::rand(&mut rng), Fr::rand(&mut rng)).map_err(|e| prover(e.to_string()))?;
    Ok((pk.vk, EvmProof::new(&proof, &inputs)))
}

/// One row of the gas report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GasRow {
    /// Public inputs.
    pub n: usize,
    /// Execution gas of `verifyProof` (transaction gas minus intrinsic gas).
    pub execution_gas: u64,
    /// The EIP-1108 floor `181_000 + 6_150 n`.
    pub floor: u64,
    /// `execution_gas - floor`.
    pub over_floor: i64,
    /// Gas of the whole transaction, as a receipt reports it.
    pub tx_gas: u64,
}

/// Execution gas of one verification of a valid proof with `n` public inputs.
pub fn verification_gas(n: usize) -> Result<GasRow> {
    let (vk, proof) = squares_proof(n, 0x7ac1 + n as u64)?;
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_verifier(&vk)?;
    let r = chain.verify(verifier, &proof)?;
    if !r.returned_true() {
        return Err(ContractError::Evm(format!("a valid proof was not accepted: {:?}", r.outcome)));
    }
    let floor = eip1108_floor(n as u64);
    let over_floor = i64::try_from(r.execution_gas).unwrap_or(i64::MAX) - i64::try_from(floor).unwrap_or(i64::MAX);
    Ok(GasRow { n, execution_gas: r.execution_gas, floor, over_floor, tx_gas: r.tx_gas })
}

/// [`verification_gas`] for `n = 1, 2, 4`.
pub fn gas_report() -> Result<Vec<GasRow>> {
    [1, 2, 4].into_iter().map(verification_gas).collect()
}

/// A circuit with committed groups for measuring `Groth16CommittedVerifier`: public inputs
/// `x_i = w_i² + i` as in [`Squares`], then per group a committed value `v_g` and a blinder,
/// then the challenge `γ`, with `p_g = v_g·γ` constrained per group. Instance layout
/// `[1, x.., (v_g, blinder_g).., γ]` ([`committed_squares_layout`]). `None` values give the
/// setup-mode circuit.
#[derive(Clone, Debug)]
pub struct CommittedSquares {
    /// The secrets behind the public inputs.
    pub w: Vec<Option<Fr>>,
    /// Per group: the committed value and its blinder.
    pub groups: Vec<Option<[Fr; 2]>>,
    /// The challenge.
    pub gamma: Option<Fr>,
}

impl ConstraintSynthesizer<Fr> for CommittedSquares {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let missing = || SynthesisError::AssignmentMissing;
        let mut roots = Vec::with_capacity(self.w.len());
        for (i, w) in self.w.iter().enumerate() {
            let k = Fr::from(i as u64);
            let x = cs.new_input_variable(|| w.map(|w| w * w + k).ok_or_else(missing))?;
            roots.push((x, k, *w));
        }
        let mut values = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let v = cs.new_input_variable(|| g.map(|g| g[0]).ok_or_else(missing))?;
            let _blinder = cs.new_input_variable(|| g.map(|g| g[1]).ok_or_else(missing))?;
            values.push((v, g.map(|g| g[0])));
        }
        let gamma = cs.new_input_variable(|| self.gamma.ok_or_else(missing))?;
        for (x, k, w) in roots {
            let wv = cs.new_witness_variable(|| w.ok_or_else(missing))?;
            let t = cs.new_witness_variable(|| w.map(|w| w * w).ok_or_else(missing))?;
            cs.enforce_r1cs_constraint(|| wv.into(), || wv.into(), || t.into())?;
            cs.enforce_r1cs_constraint(
                || LinearCombination::from(t) + (k, Variable::One),
                || Variable::One.into(),
                || x.into(),
            )?;
        }
        for (v, value) in values {
            let p = cs.new_witness_variable(|| value.zip(self.gamma).map(|(v, g)| v * g).ok_or_else(missing))?;
            cs.enforce_r1cs_constraint(|| v.into(), || gamma.into(), || p.into())?;
        }
        Ok(())
    }
}

/// The layout of [`CommittedSquares`] with `n` public inputs and `s` groups.
pub fn committed_squares_layout(n: usize, s: usize) -> Result<CommitLayout> {
    let groups = (0..s).map(|g| 1 + n + 2 * g..3 + n + 2 * g).collect();
    CommitLayout::new(2 + n + 2 * s, groups, 1 + n + 2 * s).map_err(|e| ContractError::Prover(e.to_string()))
}

/// A committed verifying key and a valid proof (with its public inputs) of
/// [`CommittedSquares`] with `n` public inputs and `s` groups (deterministic in `seed`).
pub fn committed_squares_proof(n: usize, s: usize, seed: u64) -> Result<(CommittedVerifyingKey, CommittedEvmProof)> {
    let prover = |e: String| ContractError::Prover(e);
    let mut rng = StdRng::seed_from_u64(seed);
    let blank = CommittedSquares { w: vec![None; n], groups: vec![None; s], gamma: None };
    let matrices = matrices_for_setup(blank).map_err(|e| prover(e.to_string()))?;
    let keys =
        committed::setup(&matrices, committed_squares_layout(n, s)?, &mut rng).map_err(|e| prover(e.to_string()))?;
    let w: Vec<Option<Fr>> = (0..n).map(|_| Some(Fr::rand(&mut rng))).collect();
    let groups: Vec<Option<[Fr; 2]>> = (0..s).map(|_| Some([Fr::rand(&mut rng), Fr::rand(&mut rng)])).collect();
    let circuit = |gamma| CommittedSquares { w: w.clone(), groups: groups.clone(), gamma: Some(gamma) };
    // The groups fix the challenge; synthesize again with it.
    let (_, partial) = synthesize_for_proving(circuit(Fr::from(0u64))).map_err(|e| prover(e.to_string()))?;
    let gamma = keys.challenge_for(&partial).map_err(|e| prover(e.to_string()))?;
    let (matrices, z) = synthesize_for_proving(circuit(gamma)).map_err(|e| prover(e.to_string()))?;
    let proof = keys.prove(&matrices, &z, &mut rng).map_err(|e| prover(e.to_string()))?;
    let inputs = keys.layout.public_inputs(&z).map_err(|e| prover(e.to_string()))?;
    Ok((keys.vk, CommittedEvmProof::new(&proof, &inputs)))
}

/// Execution gas of one verification of a valid [`committed_squares_proof`] by a freshly
/// deployed `Groth16CommittedVerifier` (see [`crate::committed::committed_verification_gas`]).
pub fn committed_gas(n: usize, s: usize) -> Result<u64> {
    let (vk, proof) = committed_squares_proof(n, s, 0x7ac2 + (n * 16 + s) as u64)?;
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&vk)?;
    let r = chain.verify_committed(verifier, &proof)?;
    if !r.returned_true() {
        return Err(ContractError::Evm(format!("a valid committed proof was not accepted: {:?}", r.outcome)));
    }
    Ok(r.execution_gas)
}
