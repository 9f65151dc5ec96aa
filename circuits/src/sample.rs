//! Sample circuits for benchmarks and demos.

use ark_bn254::Fr;
use tacit_mpc_engine::PartyId;

use crate::backend::{Backend, Result};
use crate::gadgets::poseidon::poseidon_hash;

/// Each of `parties` parties inputs one secret value; `hashes` Poseidon hashes
/// `H(x_(i mod parties), i)` are computed in one batch (one round per layer in MPC) and
/// their sum is revealed. About 243 constraints per hash.
pub async fn poseidon_batch<B: Backend<F = Fr>>(
    b: &mut B,
    parties: usize,
    hashes: usize,
    mine: Option<(PartyId, Fr)>,
) -> Result<Vec<Fr>> {
    let mut inputs = Vec::with_capacity(parties);
    for owner in PartyId::all(parties) {
        let given = mine.filter(|(p, _)| *p == owner).map(|(_, v)| [v]);
        let mut x = b.private_inputs(owner, given.as_ref().map(|v| &v[..]), 1).await?;
        inputs.push(x.pop().unwrap_or_else(|| b.constant(Fr::from(0u64))));
    }
    let batch: Vec<Vec<B::Value>> = (0..hashes)
        .map(|i| {
            let x = inputs.get(i % parties.max(1)).cloned().unwrap_or_else(|| b.constant(Fr::from(0u64)));
            vec![x, b.constant(Fr::from(i as u64))]
        })
        .collect();
    let digests = poseidon_hash(b, &batch).await?;
    let total = b.sum(&digests);
    b.reveal(&[total]).await
}
