//! Signed fixed point `(k, f)` on shares: a real `x` is held as the integer `round(x * 2^f)`,
//! which must lie in `[-2^(k-1), 2^(k-1))`; negative values are encoded as `p - |v|`.
//!
//! # Precision (documented guarantees)
//! - Encoding rounds to nearest: error at most `2^-(f+1)`.
//! - Additions and multiplications by public integers are exact (no rounding).
//! - Every truncation by `m` bits ([`Engine::truncate_wide`], used by [`Engine::fx_mul`] and
//!   [`Engine::fx_scale`]) is probabilistic (Catrina–de Hoogh): it returns `floor(a / 2^m)`
//!   or that plus one, rounding up with probability `(a mod 2^m) / 2^m`, so the error is
//!   below one unit of the result (`2^-f` for a fixed-point product) and zero in
//!   expectation. It can also fail to round correctly with probability about
//!   `2^-STATISTICAL_SECURITY` (the masking slack), which is ignored.
//!
//! # Overflow is an error, never a silent wrap
//! Values that arise from inputs or sums are checked with [`Engine::fx_check_range`]: bit
//! decomposition into `k` bits of `a + 2^(k-1)` and a masked test that the bits recompose
//! it. A value outside the range makes the test fail ([`FixedError::Overflow`]) before any
//! output depending on it opens. Multiplications check statically that the product fits the
//! truncation's width, so a range-checked operand can never wrap.
//!
//! Truncation here supports widths up to [`MAX_WIDE_BITS`] (the opened masked value must fit
//! in 128 bits), wider than the comparison family's 64, so that products of two 43-bit
//! fixed-point values truncate in one step.

use crate::compare::STATISTICAL_SECURITY;
use crate::engine::Engine;
use crate::error::MpcError;
use crate::field::{from_i128, low_u128, pow2, to_i128, WireField};
use crate::shares::Shares;
use crate::transport::Transport;

/// Largest width a value may have for [`Engine::truncate_wide`]: `k + 40 + 1 <= 128`.
pub const MAX_WIDE_BITS: u32 = 128 - STATISTICAL_SECURITY - 1;

/// Largest `k` of a fixed-point format (the comparison family takes at most 64 bits).
pub const MAX_FIXED_BITS: u32 = 64;

/// Fixed-point failures.
#[derive(Debug, thiserror::Error)]
pub enum FixedError {
    /// A value does not fit the format: `what` says which value (an index or a name).
    #[error("fixed-point overflow: {what} does not fit in {k} bits")]
    Overflow {
        /// The value that overflowed.
        what: String,
        /// The format's width.
        k: u32,
    },
    /// The format or an operation's widths are not supported.
    #[error("fixed-point parameters: {0}")]
    Params(String),
    /// The engine failed (network, or a detected cheat naming its culprit).
    #[error(transparent)]
    Mpc(#[from] MpcError),
}

/// Result of fixed-point operations.
pub type Result<T, E = FixedError> = std::result::Result<T, E>;

/// A signed fixed-point format: `k` bits in all, `f` of them fractional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FixedPoint {
    /// Total bits (sign included).
    pub k: u32,
    /// Fractional bits.
    pub f: u32,
}

impl FixedPoint {
    /// A format with `0 <= f < k <= 64`.
    pub fn new(k: u32, f: u32) -> Result<Self> {
        let fp = Self { k, f };
        fp.validate()?;
        Ok(fp)
    }

    /// Checks `0 <= f < k <= 64` (for formats read from files).
    pub fn validate(&self) -> Result<()> {
        if self.k < 2 || self.k > MAX_FIXED_BITS || self.f >= self.k {
            return Err(FixedError::Params(format!(
                "need 0 <= f < k <= {MAX_FIXED_BITS}, got k={} f={}",
                self.k, self.f
            )));
        }
        Ok(())
    }

    /// One unit in the last place, `2^-f`.
    pub fn resolution(&self) -> f64 {
        (-(f64::from(self.f))).exp2()
    }

    /// Smallest raw integer of the format, `-2^(k-1)`.
    pub fn min_raw(&self) -> i128 {
        -(1i128 << (self.k - 1))
    }

    /// Largest raw integer of the format, `2^(k-1) - 1`.
    pub fn max_raw(&self) -> i128 {
        (1i128 << (self.k - 1)) - 1
    }

    /// Whether a raw integer fits.
    pub fn fits(&self, raw: i128) -> bool {
        (self.min_raw()..=self.max_raw()).contains(&raw)
    }

    /// `round(x * 2^f)`; an error if `x` is not finite or does not fit.
    pub fn to_raw(&self, x: f64) -> Result<i128> {
        let scaled = (x * f64::from(self.f).exp2()).round();
        if !scaled.is_finite() || scaled.abs() > 2f64.powi(self.k as i32) {
            return Err(FixedError::Overflow { what: format!("{x}"), k: self.k });
        }
        let raw = scaled as i128;
        if !self.fits(raw) {
            return Err(FixedError::Overflow { what: format!("{x}"), k: self.k });
        }
        Ok(raw)
    }

    /// The real value of a raw integer.
    pub fn from_raw(&self, raw: i128) -> f64 {
        raw as f64 * self.resolution()
    }

    /// Field encoding of `x`.
    pub fn encode<F: WireField>(&self, x: f64) -> Result<F> {
        Ok(from_i128(self.to_raw(x)?))
    }

    /// Field encoding of a raw integer; an error if it does not fit.
    pub fn encode_raw<F: WireField>(&self, raw: i128) -> Result<F> {
        if !self.fits(raw) {
            return Err(FixedError::Overflow { what: format!("raw {raw}"), k: self.k });
        }
        Ok(from_i128(raw))
    }

    /// The raw integer of an opened field element; an error if it does not fit.
    pub fn decode_raw<F: WireField>(&self, x: &F) -> Result<i128> {
        match to_i128(x) {
            Some(raw) if self.fits(raw) => Ok(raw),
            _ => Err(FixedError::Overflow { what: "an opened value".into(), k: self.k }),
        }
    }

    /// The real value of an opened field element.
    pub fn decode<F: WireField>(&self, x: &F) -> Result<f64> {
        Ok(self.from_raw(self.decode_raw(x)?))
    }
}

/// A batch of values for [`Engine::fx_check_ranges`]: `values + offset` must lie in
/// `[0, 2^bits)`.
#[derive(Debug)]
pub struct RangeGroup<'a, F: WireField> {
    /// The values.
    pub values: &'a Shares<F>,
    /// Public offset added before the check.
    pub offset: F,
    /// Width.
    pub bits: u32,
    /// Name of the group in the error.
    pub what: String,
}

impl<'a, F: WireField> RangeGroup<'a, F> {
    /// Signed values in `[-2^(bits-1), 2^(bits-1))`.
    pub fn signed(values: &'a Shares<F>, bits: u32, what: &str) -> Self {
        Self { values, offset: pow2::<F>(bits.saturating_sub(1)), bits, what: what.to_string() }
    }

    /// Unsigned values in `[0, 2^bits)`.
    pub fn unsigned(values: &'a Shares<F>, bits: u32, what: &str) -> Self {
        Self { values, offset: F::zero(), bits, what: what.to_string() }
    }
}

/// Bits needed for the magnitude of a public signed integer, plus the sign.
pub fn signed_bits(c: i128) -> u32 {
    128 - c.unsigned_abs().leading_zeros() + 1
}

impl<F: WireField, T: Transport> Engine<F, T> {
    /// Probabilistic truncation of signed values in `[-2^(k-1), 2^(k-1))` by `m` bits, for
    /// widths up to [`MAX_WIDE_BITS`]: `floor(a / 2^m)` or that plus one (see the module
    /// documentation). The caller must know the width holds; a wider value gives a wrong
    /// result, which is why inputs are range-checked first.
    pub async fn truncate_wide(&mut self, a: &Shares<F>, k: u32, m: u32) -> Result<Shares<F>> {
        if k > MAX_WIDE_BITS || m == 0 || m >= k {
            return Err(FixedError::Params(format!("cannot truncate {m} bits of a {k}-bit value")));
        }
        if F::MODULUS_BIT_SIZE < k + STATISTICAL_SECURITY + 8 {
            return Err(FixedError::Params("field too small for statistical masking".into()));
        }
        if a.is_empty() {
            return Ok(Shares::zeros(0));
        }
        self.ensure_live()?;
        let r = async {
            let len = a.len();
            let width = (k + STATISTICAL_SECURITY) as usize;
            let pool = self.take_bits(len * width).await?.into_shares();
            // r = sum 2^i r_i over all bits; r_low over the low m bits.
            let parts: Vec<(Shares<F>, F)> =
                (0..width).map(|i| (pool.slice(i * len..(i + 1) * len), pow2::<F>(i as u32))).collect();
            let refs: Vec<(&Shares<F>, F)> = parts.iter().map(|(s, c)| (s, *c)).collect();
            let r_all = Shares::linear_combination(&refs);
            let r_low = Shares::linear_combination(refs.get(..m as usize).unwrap_or_default());
            let shifted = a.add_scalar(pow2::<F>(k - 1));
            let c = self.open_masked(&shifted.add(&r_all)).await?;
            let mask = (1u128 << m) - 1;
            let c_low: Vec<F> = c.iter().map(|v| F::from(low_u128(v) & mask)).collect();
            let approx_low = r_low.rsub_scalar(F::zero()).add_public(&c_low);
            let inv = pow2::<F>(m).inverse().unwrap_or_default();
            Ok(a.sub(&approx_low).scale(inv))
        }
        .await;
        self.guard(r).await.map_err(FixedError::from)
    }

    /// Checks that every value lies in `[-2^(k-1), 2^(k-1))`, in one verdict (which value
    /// failed is not revealed; `what` names the batch). See [`Engine::fx_check_ranges`].
    pub async fn fx_check_range(&mut self, a: &Shares<F>, k: u32, what: &str) -> Result<()> {
        self.fx_check_ranges(&[RangeGroup::signed(a, k, what)]).await
    }

    /// Range checks of several groups in one batch: one bit decomposition of every value
    /// (offset into `[0, 2^bits)`) at the widest group's width, then per group a random
    /// combination of the recomposition differences and of the bits above the group's
    /// width, times a random mask, all opened at once: zero exactly when the group fits
    /// (except with probability about `len / p`). Everything pending is verified first.
    /// The error names the first group that does not fit.
    pub async fn fx_check_ranges(&mut self, groups: &[RangeGroup<'_, F>]) -> Result<()> {
        let k = groups.iter().map(|g| g.bits).max().unwrap_or(0);
        if groups.iter().any(|g| g.bits == 0) || k > MAX_FIXED_BITS {
            return Err(FixedError::Params(format!("range check of {k} bits")));
        }
        let shifted: Vec<Shares<F>> = groups.iter().map(|g| g.values.add_scalar(g.offset)).collect();
        let all = Shares::concat(&shifted.iter().collect::<Vec<_>>());
        if all.is_empty() {
            return Ok(());
        }
        let bits = self.bit_decompose(&all, k).await?;
        let parts: Vec<(&Shares<F>, F)> = bits.iter().enumerate().map(|(i, b)| (b, pow2::<F>(i as u32))).collect();
        let diff = Shares::linear_combination(&parts).sub(&all);
        let alpha = self.coin().await?;
        let mut combined = Vec::with_capacity(groups.len());
        let mut at = 0;
        for (g, values) in groups.iter().zip(&shifted) {
            let len = values.len();
            // Claims: recomposition differences, then every bit at or above the group's width.
            let mut claims = vec![diff.slice(at..at + len)];
            claims.extend(bits.iter().skip(g.bits as usize).map(|b| b.slice(at..at + len)));
            let claims = Shares::concat(&claims.iter().collect::<Vec<_>>());
            let mut power = alpha;
            let mut weights = Vec::with_capacity(claims.len());
            for _ in 0..claims.len() {
                weights.push(power);
                power *= alpha;
            }
            combined.push(claims.mul_public(&weights).sum());
            at += len;
        }
        let combined = Shares::concat(&combined.iter().collect::<Vec<_>>());
        let mask = self.take_randoms(combined.len()).await?.into_shares();
        let masked = self.mul(&combined, &mask).await?;
        let opened = self.open(&masked).await?;
        for (g, v) in groups.iter().zip(opened.iter().chain(std::iter::repeat(&F::one()))) {
            if !ark_ff::Zero::is_zero(v) {
                return Err(FixedError::Overflow { what: g.what.clone(), k: g.bits });
            }
        }
        Ok(())
    }

    /// Products of fixed-point values of format `fp` (both operands in range), truncated back
    /// to `f` fractional bits. The product has at most `2k - 1` bits, which must not exceed
    /// [`MAX_WIDE_BITS`] (`k <= 43`); the result may need range checking before further use.
    pub async fn fx_mul(&mut self, a: &Shares<F>, b: &Shares<F>, fp: FixedPoint) -> Result<Shares<F>> {
        fp.validate()?;
        let width = 2 * fp.k - 1;
        if width > MAX_WIDE_BITS {
            return Err(FixedError::Params(format!("products of {}-bit values are too wide", fp.k)));
        }
        let product = self.mul(a, b).await?;
        if fp.f == 0 {
            return Ok(product);
        }
        self.truncate_wide(&product, width, fp.f).await
    }

    /// `a * c` for a public fixed-point constant of raw value `c` (real `c * 2^-f`),
    /// truncated back to `f` fractional bits: exact product, then one truncation.
    pub async fn fx_scale(&mut self, a: &Shares<F>, c: i128, fp: FixedPoint) -> Result<Shares<F>> {
        fp.validate()?;
        let width = fp.k + signed_bits(c);
        if width > MAX_WIDE_BITS {
            return Err(FixedError::Params(format!("product with the constant {c} is too wide")));
        }
        let product = a.scale(from_i128(c));
        if fp.f == 0 {
            return Ok(product);
        }
        self.truncate_wide(&product, width, fp.f).await
    }
}
