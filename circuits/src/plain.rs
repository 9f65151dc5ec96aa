//! The `Plain` backend: computes on field elements in the clear. It is the test oracle.
//!
//! Besides the values, `Plain` records the value of every witness variable it allocates, in
//! the order `R1cs` allocates them, and the public values (public inputs and revealed
//! outputs) in instance order, so tests can compare its witness with the one `R1cs` or an
//! opened `Mpc` run produced. It also counts backend calls ([`OpCounts`]), which is how tests
//! check that a gadget batches its work (one call per layer, whatever the batch size).

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_ff::{BigInteger, PrimeField};
use tacit_mpc_engine::PartyId;

use crate::backend::{Backend, CircuitError, Result};

/// Largest `bits` argument `to_bits` accepts (see [`Backend::to_bits`]).
pub const MAX_BITS: u32 = 80;

/// How many times each allocating or interactive operation ran, and on how many values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// `private_inputs` calls.
    pub private_input_calls: usize,
    /// `mul` calls (one round each in `Mpc`).
    pub mul_calls: usize,
    /// Products over all `mul` calls.
    pub mul_products: usize,
    /// `to_bits` calls.
    pub to_bits_calls: usize,
    /// Values decomposed over all `to_bits` calls.
    pub to_bits_values: usize,
    /// `is_zero` calls.
    pub is_zero_calls: usize,
    /// Values tested over all `is_zero` calls.
    pub is_zero_values: usize,
    /// `assert_zero` calls.
    pub assert_zero_calls: usize,
    /// `assert_bits` calls.
    pub assert_bits_calls: usize,
    /// `reveal_is_zero` calls.
    pub reveal_is_zero_calls: usize,
    /// `reveal` calls.
    pub reveal_calls: usize,
}

impl OpCounts {
    /// Calls that need interaction in `Mpc`: `private_inputs`, `mul`, `to_bits`, `is_zero`,
    /// `assert_bits`, `reveal_is_zero` and `reveal` (each is one or a fixed number of rounds
    /// there).
    pub fn interactive_calls(&self) -> usize {
        self.private_input_calls
            + self.mul_calls
            + self.to_bits_calls
            + self.is_zero_calls
            + self.assert_bits_calls
            + self.reveal_is_zero_calls
            + self.reveal_calls
    }
}

/// Computes values in the clear.
#[derive(Debug)]
pub struct Plain<F: PrimeField> {
    witness: Vec<F>,
    instance: Vec<F>,
    counts: OpCounts,
    challenged: bool,
}

impl<F: PrimeField> Default for Plain<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: PrimeField> Plain<F> {
    /// A fresh backend.
    pub fn new() -> Self {
        Self { witness: Vec::new(), instance: Vec::new(), counts: OpCounts::default(), challenged: false }
    }

    fn extend_instance(&mut self, values: &[F]) -> Result<()> {
        if self.challenged {
            return Err(CircuitError::Usage("no instance variable may follow the challenge".into()));
        }
        self.instance.extend_from_slice(values);
        Ok(())
    }

    /// Values of the witness variables allocated so far, in allocation order (the same order
    /// as `R1cs`'s witness assignment).
    pub fn witness(&self) -> &[F] {
        &self.witness
    }

    /// Public values (public inputs and revealed outputs) in instance-variable order,
    /// without the leading constant one.
    pub fn instance(&self) -> &[F] {
        &self.instance
    }

    /// Operation counts so far.
    pub fn counts(&self) -> OpCounts {
        self.counts
    }
}

/// The `bits` least significant bits of `value`, least significant first, or
/// [`CircuitError::Unsatisfied`] if `value` is not below `2^bits`; [`CircuitError::Usage`] if
/// `bits > 80`.
pub fn small_bits<F: PrimeField>(value: F, bits: u32) -> Result<Vec<bool>> {
    check_bits(bits)?;
    let big = value.into_bigint();
    if big.num_bits() > bits {
        return Err(CircuitError::Unsatisfied(format!("value does not fit in {bits} bits")));
    }
    Ok((0..bits as usize).map(|i| big.get_bit(i)).collect())
}

/// Fails with [`CircuitError::Usage`] if `bits` is above [`MAX_BITS`].
pub(crate) fn check_bits(bits: u32) -> Result<()> {
    if bits > MAX_BITS {
        return Err(CircuitError::Usage(format!("to_bits takes at most {MAX_BITS} bits, not {bits}")));
    }
    Ok(())
}

/// Fails with [`CircuitError::Usage`] unless the two operand slices have the same length.
pub(crate) fn check_same_len(op: &str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(CircuitError::Usage(format!("{op}: operand lengths differ ({a} and {b})")));
    }
    Ok(())
}

/// The is-zero flag and hint of `a`: `(1, 1)` for zero, `(0, a^-1)` otherwise.
pub(crate) fn is_zero_witness<F: PrimeField>(a: F) -> (F, F) {
    match a.inverse() {
        Some(inv) => (F::zero(), inv),
        None => (F::one(), F::one()),
    }
}

impl<F: PrimeField> Backend for Plain<F> {
    type F = F;
    type Value = F;

    fn constant(&self, c: F) -> F {
        c
    }

    fn add(&self, a: &F, b: &F) -> F {
        *a + b
    }

    fn sub(&self, a: &F, b: &F) -> F {
        *a - b
    }

    fn scale(&self, a: &F, c: F) -> F {
        *a * c
    }

    fn add_constant(&self, a: &F, c: F) -> F {
        *a + c
    }

    fn sum(&self, values: &[F]) -> F {
        values.iter().sum()
    }

    async fn private_inputs(&mut self, _owner: PartyId, values: Option<&[F]>, len: usize) -> Result<Vec<F>> {
        self.counts.private_input_calls += 1;
        let values = values.ok_or_else(|| CircuitError::Usage("Plain needs the values of private inputs".into()))?;
        check_same_len("private_inputs", values.len(), len)?;
        self.witness.extend_from_slice(values);
        Ok(values.to_vec())
    }

    fn public_inputs(&mut self, values: &[F]) -> Result<Vec<F>> {
        self.extend_instance(values)?;
        Ok(values.to_vec())
    }

    fn known_inputs(&mut self, values: &[F]) -> Result<Vec<F>> {
        self.witness.extend_from_slice(values);
        Ok(values.to_vec())
    }

    fn dealt_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<F>> {
        let values = values.ok_or_else(|| CircuitError::Usage("Plain needs the values of dealt inputs".into()))?;
        check_same_len("dealt_inputs", values.len(), len)?;
        self.witness.extend_from_slice(values);
        Ok(values.to_vec())
    }

    fn committed_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<F>> {
        let values = values.ok_or_else(|| CircuitError::Usage("Plain needs the values of committed inputs".into()))?;
        check_same_len("committed_inputs", values.len(), len)?;
        self.extend_instance(values)?;
        Ok(values.to_vec())
    }

    /// A hash of every instance value so far (`Plain` has no commitments; any value the
    /// prover cannot choose serves the oracle).
    async fn challenge(&mut self) -> Result<F> {
        let mut hash = blake3::Hasher::new_derive_key("tacit circuits plain challenge v1");
        for v in &self.instance {
            hash.update(&v.into_bigint().to_bytes_le());
        }
        let challenge = F::from_le_bytes_mod_order(hash.finalize().as_bytes());
        self.extend_instance(&[challenge])?;
        self.challenged = true;
        Ok(challenge)
    }

    async fn div(&mut self, num: &[F], den: &[F]) -> Result<Vec<F>> {
        check_same_len("div", num.len(), den.len())?;
        let mut out = Vec::with_capacity(num.len());
        for (i, (n, d)) in num.iter().zip(den).enumerate() {
            let inverse = d.inverse().ok_or_else(|| CircuitError::Unsatisfied(format!("divisor {i} is zero")))?;
            out.push(*n * inverse);
        }
        self.witness.extend_from_slice(&out);
        Ok(out)
    }

    async fn mul(&mut self, a: &[F], b: &[F]) -> Result<Vec<F>> {
        check_same_len("mul", a.len(), b.len())?;
        self.counts.mul_calls += 1;
        self.counts.mul_products += a.len();
        let out: Vec<F> = a.iter().zip(b).map(|(x, y)| *x * y).collect();
        self.witness.extend_from_slice(&out);
        Ok(out)
    }

    async fn to_bits(&mut self, a: &[F], bits: u32) -> Result<Vec<Vec<F>>> {
        check_bits(bits)?;
        self.counts.to_bits_calls += 1;
        self.counts.to_bits_values += a.len();
        let mut out = Vec::with_capacity(a.len());
        for value in a {
            let decomposed: Vec<F> = small_bits(*value, bits)?.into_iter().map(F::from).collect();
            self.witness.extend_from_slice(&decomposed);
            out.push(decomposed);
        }
        Ok(out)
    }

    async fn is_zero(&mut self, a: &[F]) -> Result<Vec<F>> {
        self.counts.is_zero_calls += 1;
        self.counts.is_zero_values += a.len();
        let mut out = Vec::with_capacity(a.len());
        for value in a {
            let (z, h) = is_zero_witness(*value);
            self.witness.push(z);
            self.witness.push(h);
            out.push(z);
        }
        Ok(out)
    }

    fn assert_zero(&mut self, a: &[F]) -> Result<()> {
        self.counts.assert_zero_calls += 1;
        match a.iter().position(|v| !v.is_zero()) {
            Some(i) => Err(CircuitError::Unsatisfied(format!("asserted-zero value {i} is not zero"))),
            None => Ok(()),
        }
    }

    async fn assert_bits(&mut self, a: &[F]) -> Result<()> {
        self.counts.assert_bits_calls += 1;
        match a.iter().position(|v| v.square() != *v) {
            Some(i) => Err(CircuitError::Unsatisfied(format!("asserted bit {i} is not a bit"))),
            None => Ok(()),
        }
    }

    async fn reveal_is_zero(&mut self, a: &[F]) -> Result<Vec<bool>> {
        self.counts.reveal_is_zero_calls += 1;
        Ok(a.iter().map(F::is_zero).collect())
    }

    async fn reveal(&mut self, a: &[F]) -> Result<Vec<F>> {
        self.counts.reveal_calls += 1;
        self.extend_instance(a)?;
        Ok(a.to_vec())
    }
}
