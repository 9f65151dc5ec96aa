//! Comparison, equality, bit decomposition and probabilistic truncation (Catrina–de Hoogh
//! style): mask with shared random bits, open, and finish with a circuit on the bits.
//! Values are below `2^k`, `k <= 80`; masks carry [`STATISTICAL_SECURITY`] extra bits, so an
//! opened masked value reveals nothing with probability `1 - 2^-40`.

use crate::engine::Engine;
use crate::error::{MpcError, Result};
use crate::field::{low_u128, pow2, WireField};
use crate::shares::Shares;
use crate::transport::Transport;

/// Statistical masking parameter (bits).
pub const STATISTICAL_SECURITY: u32 = 40;

/// Largest value width the comparison family accepts.
/// Opened masked values stay below `2^(80 + 1 + 40)`, within the `u128` the bit circuits use.
pub const MAX_BITS: u32 = 80;

impl<F: WireField, T: Transport> Engine<F, T> {
    fn check_width(&self, k: u32) -> Result<()> {
        if k == 0 || k > MAX_BITS {
            return Err(MpcError::Usage(format!("bit width {k} outside 1..={MAX_BITS}")));
        }
        if F::MODULUS_BIT_SIZE < k + STATISTICAL_SECURITY + 8 {
            return Err(MpcError::Usage("field too small for statistical masking".into()));
        }
        Ok(())
    }

    /// `len` random values `r = sum 2^i r_i` over `bits` shared random bits; returns the bits
    /// (position-major) and `r`.
    async fn random_mask(&mut self, len: usize, bits: u32) -> Result<(Vec<Shares<F>>, Shares<F>)> {
        let pool = self.take_bits(len * bits as usize).await?.into_shares();
        let bit_vectors: Vec<Shares<F>> = (0..bits as usize).map(|i| pool.slice(i * len..(i + 1) * len)).collect();
        let r = weighted_sum(&bit_vectors, 0);
        Ok((bit_vectors, r))
    }

    /// Subtracts shared bits `r` from the public values `c` (both over `r.len()` bits) with a
    /// ripple-borrow circuit: one batched multiplication per bit. Returns the difference's
    /// bits (when `want_bits`) and the final borrow, i.e. `[c mod 2^k < r]`.
    async fn ripple_borrow(
        &mut self,
        c: &[u128],
        r: &[Shares<F>],
        want_bits: bool,
    ) -> Result<(Vec<Shares<F>>, Shares<F>)> {
        let len = c.len();
        let mut borrow = Shares::zeros(len);
        let mut out = Vec::with_capacity(if want_bits { r.len() } else { 0 });
        let two = F::from(2u64);
        for (i, ri) in r.iter().enumerate() {
            let m = if i == 0 { Shares::zeros(len) } else { self.mul(ri, &borrow).await? };
            let sum = ri.add(&borrow);
            let xor = sum.sub(&m.scale(two));
            let or = sum.sub(&m);
            let bit_of = |e: usize| c.get(e).is_some_and(|v| (v >> i) & 1 == 1);
            let xs = xor.expose_shares();
            let (os, ms) = (or.expose_shares(), m.expose_shares());
            if want_bits {
                let bits: Vec<F> =
                    xs.iter().enumerate().map(|(e, x)| if bit_of(e) { F::one() - x } else { *x }).collect();
                out.push(Shares::from_raw(bits));
            }
            let next: Vec<F> =
                os.iter().zip(ms).enumerate().map(|(e, (o, m))| if bit_of(e) { *m } else { *o }).collect();
            borrow = Shares::from_raw(next);
        }
        Ok((out, borrow))
    }

    /// Opens `x + r` for a random mask `r` of `k + 40` bits; returns the mask bits and the
    /// opened integers.
    async fn open_with_mask(&mut self, x: &Shares<F>, k: u32) -> Result<(Vec<Shares<F>>, Vec<u128>)> {
        let (bits, r) = self.random_mask(x.len(), k + STATISTICAL_SECURITY).await?;
        let c = self.open_masked(&x.add(&r)).await?;
        Ok((bits, c.iter().map(low_u128).collect()))
    }

    /// Bits of each value (all below `2^k`), least significant first: `k` shared bit vectors.
    pub async fn bit_decompose(&mut self, a: &Shares<F>, k: u32) -> Result<Vec<Shares<F>>> {
        self.ensure_live()?;
        let r = async {
            self.check_width(k)?;
            let (bits, c) = self.open_with_mask(a, k).await?;
            let (out, _) = self.ripple_borrow(&c, bits.get(..k as usize).unwrap_or_default(), true).await?;
            Ok(out)
        }
        .await;
        self.guard(r).await
    }

    /// `[a < b]` for values below `2^k`.
    pub async fn less_than(&mut self, a: &Shares<F>, b: &Shares<F>, k: u32) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            self.check_width(k)?;
            let two_k = pow2::<F>(k);
            // z = a - b + 2^k lies in (0, 2^(k+1)); its bit k is [a >= b].
            let z = a.sub(b).add_scalar(two_k);
            let (bits, c) = self.open_with_mask(&z, k + 1).await?;
            let low_bits = bits.get(..k as usize).unwrap_or_default();
            let mask = (1u128 << k) - 1;
            let c_low: Vec<u128> = c.iter().map(|v| v & mask).collect();
            let (_, borrow) = self.ripple_borrow(&c_low, low_bits, false).await?;
            // z mod 2^k = c_low - r_low + 2^k * borrow
            let r_low = weighted_sum(low_bits, 0);
            let c_low_f: Vec<F> = c_low.iter().map(|v| F::from(*v)).collect();
            let z_mod = r_low.rsub_scalar(F::zero()).add_public(&c_low_f).add(&borrow.scale(two_k));
            let inv = two_k.inverse().unwrap_or_default();
            let z_k = z.sub(&z_mod).scale(inv);
            Ok(z_k.rsub_scalar(F::one()))
        }
        .await;
        self.guard(r).await
    }

    /// `[a == b]` for values below `2^k`.
    pub async fn equal(&mut self, a: &Shares<F>, b: &Shares<F>, k: u32) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            self.check_width(k)?;
            let two_k = pow2::<F>(k);
            // w = a - b + 2^k lies in (0, 2^(k+1)); a == b iff w == 2^k iff the low k+1 bits of
            // the mask equal (c - 2^k) mod 2^(k+1).
            let w = a.sub(b).add_scalar(two_k);
            let (bits, c) = self.open_with_mask(&w, k + 1).await?;
            let width = (k + 1) as usize;
            let mask = (1u128 << (k + 1)) - 1;
            let e: Vec<u128> = c.iter().map(|v| v.wrapping_sub(1u128 << k) & mask).collect();
            let mut terms: Vec<Shares<F>> = bits
                .iter()
                .take(width)
                .enumerate()
                .map(|(i, r)| {
                    let raw: Vec<F> = r
                        .expose_shares()
                        .iter()
                        .zip(&e)
                        .map(|(r, e)| if (e >> i) & 1 == 1 { *r } else { F::one() - r })
                        .collect();
                    Shares::from_raw(raw)
                })
                .collect();
            // AND of all terms by a product tree: all pairs of one level in one round.
            while terms.len() > 1 {
                let half = terms.len() / 2;
                let left = Shares::concat(&terms.iter().take(half).collect::<Vec<_>>());
                let right = Shares::concat(&terms.iter().skip(half).take(half).collect::<Vec<_>>());
                let prod = self.mul(&left, &right).await?;
                let len = a.len();
                let mut next: Vec<Shares<F>> = (0..half).map(|i| prod.slice(i * len..(i + 1) * len)).collect();
                if terms.len() % 2 == 1 {
                    if let Some(last) = terms.pop() {
                        next.push(last);
                    }
                }
                terms = next;
            }
            Ok(terms.pop().unwrap_or_else(|| Shares::zeros(a.len())))
        }
        .await;
        self.guard(r).await
    }

    /// Probabilistic truncation: for signed values `a` in `[-2^(k-1), 2^(k-1))` (field
    /// encoding), returns `a / 2^m` rounded down or up at random (the error is below one).
    pub async fn truncate(&mut self, a: &Shares<F>, k: u32, m: u32) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            self.check_width(k)?;
            if m == 0 || m >= k {
                return Err(MpcError::Usage(format!("cannot truncate {m} bits of a {k}-bit value")));
            }
            let shifted = a.add_scalar(pow2::<F>(k - 1));
            let (bits, c) = self.open_with_mask(&shifted, k).await?;
            let low = bits.get(..m as usize).unwrap_or_default();
            let r_low = weighted_sum(low, 0);
            let mask = (1u128 << m) - 1;
            let c_low: Vec<F> = c.iter().map(|v| F::from(v & mask)).collect();
            // a mod 2^m is approximately c_low - r_low; the difference is off by 2^m with
            // probability below r_low / 2^m, which is the rounding.
            let approx_low = r_low.rsub_scalar(F::zero()).add_public(&c_low);
            let inv = pow2::<F>(m).inverse().unwrap_or_default();
            Ok(a.sub(&approx_low).scale(inv))
        }
        .await;
        self.guard(r).await
    }
}

/// `sum 2^(i + shift) * bits_i`.
fn weighted_sum<F: WireField>(bits: &[Shares<F>], shift: u32) -> Shares<F> {
    let parts: Vec<(&Shares<F>, F)> = bits.iter().enumerate().map(|(i, b)| (b, pow2::<F>(i as u32 + shift))).collect();
    Shares::linear_combination(&parts)
}
