//! Commitments `Poseidon(value, salt)` (circomlib's `Poseidon(2)`), so a commitment made
//! off-chain by circomlibjs, go-iden3-crypto or a Solidity Poseidon library matches the one
//! the circuit recomputes.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::Fr;

use super::poseidon::{poseidon_hash, poseidon_reference};
use crate::backend::{Backend, CircuitError, Result};

/// `Poseidon(values[i], salts[i])` for every `i`, as one batch (the cost of one hash in
/// calls: `3 * (8 + 57)` `mul` calls).
pub async fn commit<B: Backend<F = Fr>>(b: &mut B, values: &[B::Value], salts: &[B::Value]) -> Result<Vec<B::Value>> {
    if values.len() != salts.len() {
        return Err(CircuitError::Usage(format!("commit: {} values but {} salts", values.len(), salts.len())));
    }
    let inputs: Vec<Vec<B::Value>> = values.iter().zip(salts).map(|(v, s)| vec![v.clone(), s.clone()]).collect();
    poseidon_hash(b, &inputs).await
}

/// The commitment to `value` with `salt`, in the clear.
pub fn commitment(value: Fr, salt: Fr) -> Result<Fr> {
    poseidon_reference(&[value, salt])
}
