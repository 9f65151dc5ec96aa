//! Range checks, comparison, equality, selection and sums, each batched: one backend call
//! (one round in `Mpc`) per layer, whatever the batch size. An empty batch makes no call.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_ff::{One, Zero};

use crate::backend::{Backend, CircuitError, Result};

/// Largest `bits` that [`less_than`] (and the max gadgets) accept: the difference is
/// decomposed into `bits + 1 <= 80` bits.
pub const MAX_COMPARE_BITS: u32 = 79;

fn check_len(op: &str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(CircuitError::Usage(format!("{op}: operand lengths differ ({a} and {b})")));
    }
    Ok(())
}

/// Constrains every value to be below `2^bits` (`bits <= 80`): one `to_bits` call.
pub async fn range_check<B: Backend>(b: &mut B, a: &[B::Value], bits: u32) -> Result<()> {
    if a.is_empty() {
        return Ok(());
    }
    b.to_bits(a, bits).await.map(|_| ())
}

/// `1 - x` for bits `x`.
pub fn not<B: Backend>(b: &B, x: &[B::Value]) -> Vec<B::Value> {
    x.iter().map(|v| b.sub(&b.constant(B::F::one()), v)).collect()
}

/// `[a_i < c_i]` as bits, for values below `2^bits` (`bits <= 79`). One `to_bits` call on
/// `a_i - c_i + 2^bits` with `bits + 1` bits; the result is `1 -` its top bit. The inputs
/// must be known to be below `2^bits` (range-checked or constructed so); otherwise the
/// difference may not fit and `to_bits` fails or, for an adversarial prover, the
/// comparison means nothing.
pub async fn less_than<B: Backend>(b: &mut B, a: &[B::Value], c: &[B::Value], bits: u32) -> Result<Vec<B::Value>> {
    check_len("less_than", a.len(), c.len())?;
    if bits > MAX_COMPARE_BITS {
        return Err(CircuitError::Usage(format!("less_than takes at most {MAX_COMPARE_BITS} bits, not {bits}")));
    }
    if a.is_empty() {
        return Ok(Vec::new());
    }
    let offset = B::F::from(1u128 << bits);
    let shifted: Vec<B::Value> = a.iter().zip(c).map(|(x, y)| b.add_constant(&b.sub(x, y), offset)).collect();
    let decomposed = b.to_bits(&shifted, bits + 1).await?;
    let tops = decomposed
        .iter()
        .map(|bits| bits.last().cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CircuitError::Synthesis("to_bits returned too few bits".into()))?;
    Ok(not(b, &tops))
}

/// `[a_i == 0]`: one `is_zero` call.
pub async fn is_zero<B: Backend>(b: &mut B, a: &[B::Value]) -> Result<Vec<B::Value>> {
    if a.is_empty() {
        return Ok(Vec::new());
    }
    b.is_zero(a).await
}

/// `[a_i == c_i]`: one `is_zero` call on the differences.
pub async fn is_equal<B: Backend>(b: &mut B, a: &[B::Value], c: &[B::Value]) -> Result<Vec<B::Value>> {
    check_len("is_equal", a.len(), c.len())?;
    let diffs: Vec<B::Value> = a.iter().zip(c).map(|(x, y)| b.sub(x, y)).collect();
    is_zero(b, &diffs).await
}

/// `cond_i ? x_i : y_i` for bits `cond_i`, as `cond * (x - y) + y`: one `mul` call.
pub async fn select<B: Backend>(b: &mut B, cond: &[B::Value], x: &[B::Value], y: &[B::Value]) -> Result<Vec<B::Value>> {
    check_len("select", cond.len(), x.len())?;
    check_len("select", x.len(), y.len())?;
    if cond.is_empty() {
        return Ok(Vec::new());
    }
    let diffs: Vec<B::Value> = x.iter().zip(y).map(|(u, v)| b.sub(u, v)).collect();
    let products = b.mul(cond, &diffs).await?;
    Ok(products.iter().zip(y).map(|(p, v)| b.add(p, v)).collect())
}

/// Sum of each vector (free: linear).
pub fn sums<B: Backend>(b: &B, vectors: &[Vec<B::Value>]) -> Vec<B::Value> {
    vectors.iter().map(|v| b.sum(v)).collect()
}

/// Zero as a backend constant.
pub(crate) fn zero<B: Backend>(b: &B) -> B::Value {
    b.constant(B::F::zero())
}
