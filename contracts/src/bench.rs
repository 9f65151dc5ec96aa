//! Execution gas of one on-chain verification, for `tacit bench gas`: a real proof of a small
//! circuit with `n` public inputs, verified by a freshly deployed `Groth16Verifier` on revm.

use ark_bn254::Fr;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use serde::Serialize;
use tacit_prover::qap::{prove_single, synthesize_for_proving};
use tacit_prover::snarkjs::EvmProof;

use crate::{eip1108_floor, ContractError, LocalChain, Result};

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
