//! Poseidon over BN254 with circomlib's parameters (x^5 S-box, 8 full rounds, circomlib's
//! partial-round counts, round constants and MDS matrices), so hashes match circomlib's
//! `Poseidon(n)` circuit, circomlibjs and go-iden3-crypto. The constants come from the
//! `light-poseidon` crate (`parameters::bn254_x5`), which generates them with the Poseidon
//! authors' script exactly as circomlib does.
//!
//! The permutation, for `n` inputs and width `t = n + 1`: the state starts as
//! `[0, in_1, ..., in_n]`; each of `RF + RP` rounds adds the round's `t` constants, applies
//! the S-box `x -> x^5` to every element (the first `RF/2` and last `RF/2` rounds, "full") or
//! to the first element only (the `RP` middle rounds, "partial"), then multiplies by the MDS
//! matrix (`s'_i = sum_j M[i][j] s_j`). The hash is the first state element.
//!
//! # Cost and allocation order
//! Only the S-box allocates: every round makes one [`Backend::pow5`] call over all hashes of
//! the batch at once, which allocates like three `mul` calls: `x^2 = x * x`, then
//! `x^4 = x^2 * x^2`, then `x^5 = x^4 * x`, where `x` lists the S-box inputs hash by hash,
//! and within a hash state element by element (all `t` of them in a full round, only the
//! first in a partial round). So a batch of `m` hashes has `3 * m * (t * RF + RP)` products
//! (and as many constraints and witness variables). On `Mpc` each round costs three
//! communication rounds, or one with `Mpc::one_round_sbox` (after three that prepare the
//! randomness of the whole batch).

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::OnceLock;

use ark_bn254::Fr;
use ark_ff::Zero;
use light_poseidon::{PoseidonHasher, MAX_X5_LEN};

use crate::backend::{Backend, CircuitError, Result};

/// Most inputs one hash takes (circomlib's widths as carried by light-poseidon).
pub const MAX_INPUTS: usize = MAX_X5_LEN - 1;

/// circomlib's Poseidon parameters for one width.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoseidonParams {
    /// State width `t` (inputs + 1).
    pub width: usize,
    /// Full rounds `RF` (half before, half after the partial rounds).
    pub full_rounds: usize,
    /// Partial rounds `RP`.
    pub partial_rounds: usize,
    /// Round constants, `width` per round, round by round.
    pub round_constants: Vec<Fr>,
    /// MDS matrix, `width` rows of `width`.
    pub mds: Vec<Vec<Fr>>,
}

impl PoseidonParams {
    /// Total rounds `RF + RP`.
    pub fn rounds(&self) -> usize {
        self.full_rounds + self.partial_rounds
    }

    /// Whether round `round` (0-based) is a full round.
    pub fn is_full_round(&self, round: usize) -> bool {
        let half = self.full_rounds / 2;
        round < half || round >= half + self.partial_rounds
    }

    /// Products (constraints, witness variables) one hash costs: `3 * (t * RF + RP)`.
    pub fn products_per_hash(&self) -> usize {
        3 * (self.width * self.full_rounds + self.partial_rounds)
    }

    /// `mul` calls any batch of hashes of this width makes: `3 * (RF + RP)`.
    pub fn mul_calls(&self) -> usize {
        3 * self.rounds()
    }

    fn load(inputs: usize) -> Result<Self> {
        let unsupported = || CircuitError::Usage(format!("Poseidon takes 1 to {MAX_INPUTS} inputs, not {inputs}"));
        if inputs == 0 || inputs > MAX_INPUTS {
            return Err(unsupported());
        }
        let width = inputs + 1;
        let t = u8::try_from(width).map_err(|_| unsupported())?;
        let p = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(t)
            .map_err(|e| CircuitError::Usage(format!("Poseidon parameters for width {width}: {e}")))?;
        let consistent = p.alpha == 5
            && p.width == width
            && p.full_rounds % 2 == 0
            && p.ark.len() == width * (p.full_rounds + p.partial_rounds)
            && p.mds.len() == width
            && p.mds.iter().all(|row| row.len() == width);
        if !consistent {
            return Err(CircuitError::Usage(format!("inconsistent Poseidon parameters for width {width}")));
        }
        Ok(Self {
            width,
            full_rounds: p.full_rounds,
            partial_rounds: p.partial_rounds,
            round_constants: p.ark,
            mds: p.mds,
        })
    }
}

/// circomlib's parameters for `inputs` inputs (`1..=MAX_INPUTS`), loaded once per width.
pub fn params(inputs: usize) -> Result<&'static PoseidonParams> {
    static CACHE: [OnceLock<PoseidonParams>; MAX_INPUTS] = [const { OnceLock::new() }; MAX_INPUTS];
    let slot = inputs
        .checked_sub(1)
        .and_then(|i| CACHE.get(i))
        .ok_or_else(|| CircuitError::Usage(format!("Poseidon takes 1 to {MAX_INPUTS} inputs, not {inputs}")))?;
    if let Some(p) = slot.get() {
        return Ok(p);
    }
    let loaded = PoseidonParams::load(inputs)?;
    Ok(slot.get_or_init(|| loaded))
}

/// Reference hash in the clear, computed by `light-poseidon`'s own implementation (an
/// independent check on [`poseidon_hash`]).
pub fn poseidon_reference(inputs: &[Fr]) -> Result<Fr> {
    let mut hasher = light_poseidon::Poseidon::<Fr>::new_circom(inputs.len())
        .map_err(|e| CircuitError::Usage(format!("Poseidon: {e}")))?;
    hasher.hash(inputs).map_err(|e| CircuitError::Usage(format!("Poseidon: {e}")))
}

/// Poseidon hashes of a batch: one hash per inner vector, all of the same length
/// (`1..=MAX_INPUTS`). See the module docs for cost and allocation order. An empty batch
/// returns at once without any backend call.
pub async fn poseidon_hash<B: Backend<F = Fr>>(b: &mut B, inputs: &[Vec<B::Value>]) -> Result<Vec<B::Value>> {
    let Some(first) = inputs.first() else {
        return Ok(Vec::new());
    };
    let arity = first.len();
    if inputs.iter().any(|h| h.len() != arity) {
        return Err(CircuitError::Usage("Poseidon batch: all hashes must take the same number of inputs".into()));
    }
    let p = params(arity)?;
    let t = p.width;
    let mut states: Vec<Vec<B::Value>> =
        inputs.iter().map(|h| std::iter::once(b.constant(Fr::zero())).chain(h.iter().cloned()).collect()).collect();
    b.prepare_pow5(inputs, t * p.full_rounds + p.partial_rounds).await?;

    for (round, constants) in p.round_constants.chunks_exact(t).enumerate() {
        let full = p.is_full_round(round);
        for state in states.iter_mut() {
            for (x, c) in state.iter_mut().zip(constants) {
                *x = b.add_constant(x, *c);
            }
        }

        let x: Vec<B::Value> = if full {
            states.iter().flatten().cloned().collect()
        } else {
            states.iter().filter_map(|s| s.first().cloned()).collect()
        };
        let x5 = b.pow5(&x).await?;
        if full {
            for (s, y) in states.iter_mut().flatten().zip(x5) {
                *s = y;
            }
        } else {
            for (state, y) in states.iter_mut().zip(x5) {
                if let Some(s) = state.first_mut() {
                    *s = y;
                }
            }
        }

        for state in states.iter_mut() {
            let mixed: Vec<B::Value> = p
                .mds
                .iter()
                .map(|row| {
                    let terms: Vec<B::Value> = row.iter().zip(state.iter()).map(|(m, s)| b.scale(s, *m)).collect();
                    b.sum(&terms)
                })
                .collect();
            *state = mixed;
        }
    }

    states
        .into_iter()
        .map(|s| s.into_iter().next().ok_or_else(|| CircuitError::Synthesis("empty Poseidon state".into())))
        .collect()
}
