//! Discrete Laplace noise sampled inside the MPC from shared random bits.
//!
//! The discrete Laplace distribution with scale `b`, `P(x) ∝ q^|x|` with `q = e^(-1/b)`, is
//! the difference of two independent geometric variables `P(G >= j) = q^j`. The binary
//! digits of such a geometric variable are independent, digit `i` being one with
//! probability `p_i = q^(2^i) / (1 + q^(2^i)) = 1 / (1 + e^(2^i / b))`. Each digit is a biased
//! coin `[U < T_i]` for a shared uniform `U` of [`COIN_BITS`] random bits and the public
//! `T_i = round(p_i * 2^COIN_BITS)`, compared bit by bit (one batched multiplication per
//! bit, for every coin at once). Nobody learns the noise.
//!
//! Exactness, declared: each coin's bias is off by at most `2^-(COIN_BITS+1)`; digits from
//! `L = ceil(log2(40 b))` upwards are dropped, which changes the distribution by at most
//! `2 e^-40` in total variation. So `|noise| < 2^L` always: that is the declared bound.

use ark_bn254::Fr;
use tacit_mpc_engine::field::pow2;
use tacit_mpc_engine::{Engine, Shares, Transport};

use crate::RiskError;

/// Precision of each biased coin, in bits.
pub const COIN_BITS: u32 = 24;

/// A discrete Laplace distribution over integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiscreteLaplace {
    /// Scale `b` (integer units): `sensitivity / epsilon`.
    pub scale: f64,
    /// Digits of each geometric half.
    pub digits: u32,
}

impl DiscreteLaplace {
    /// Scale `b = sensitivity / epsilon` (both in the figure's integer units).
    pub fn new(scale: f64) -> Result<Self, RiskError> {
        if !(scale.is_finite() && scale > 0.0) || scale > 2f64.powi(50) {
            return Err(RiskError::Usage(format!("noise scale {scale} out of range")));
        }
        let digits = (40.0 * scale).log2().ceil().clamp(1.0, 56.0) as u32;
        Ok(Self { scale, digits })
    }

    /// Every sample satisfies `|x| <= bound()`.
    pub fn bound(&self) -> i128 {
        (1i128 << self.digits) - 1
    }

    /// Variance of the exact distribution, `2q / (1-q)^2`.
    pub fn variance(&self) -> f64 {
        let q = (-1.0 / self.scale).exp();
        2.0 * q / ((1.0 - q) * (1.0 - q))
    }

    /// `T_i` for each digit.
    fn thresholds(&self) -> Vec<u64> {
        (0..self.digits)
            .map(|i| {
                let p = 1.0 / (1.0 + (2f64.powi(i as i32) / self.scale).exp());
                (p * 2f64.powi(COIN_BITS as i32)).round() as u64
            })
            .collect()
    }
}

/// `count` independent samples, one distribution per sample (`dists[s]`), as shares.
pub async fn sample<T: Transport>(
    engine: &mut Engine<Fr, T>,
    dists: &[DiscreteLaplace],
) -> Result<Shares<Fr>, RiskError> {
    let count = dists.len();
    if count == 0 {
        return Ok(Shares::zeros(0));
    }
    // Coins: for each sample, two halves, each with its digits; T == 0 coins are always 0.
    struct Coin {
        sample: usize,
        negative: bool,
        digit: u32,
        threshold: u64,
    }
    let mut coins = Vec::new();
    for (s, d) in dists.iter().enumerate() {
        for (i, t) in d.thresholds().into_iter().enumerate() {
            if t == 0 {
                continue;
            }
            for negative in [false, true] {
                coins.push(Coin { sample: s, negative, digit: i as u32, threshold: t });
            }
        }
    }
    let n = coins.len();
    let bits = engine.take_bits(n * COIN_BITS as usize).await?.into_shares();
    let one = Fr::from(1u64);
    let bit_of = |j: u32| -> Vec<bool> { coins.iter().map(|c| (c.threshold >> j) & 1 == 1).collect() };
    // lt = [U mod 2^(j+1) < T mod 2^(j+1)], least significant bit first.
    let u0 = bits.slice(0..n);
    let t0 = bit_of(0);
    let mut lt = Shares::from_raw(
        u0.expose_shares().iter().zip(&t0).map(|(u, t)| if *t { one - u } else { Fr::from(0u64) }).collect(),
    );
    for j in 1..COIN_BITS {
        let u = bits.slice(j as usize * n..(j as usize + 1) * n);
        let prod = engine.mul(&u, &lt).await?;
        let tj = bit_of(j);
        let next: Vec<Fr> = u
            .expose_shares()
            .iter()
            .zip(prod.expose_shares())
            .zip(lt.expose_shares())
            .zip(&tj)
            .map(|(((u, p), l), t)| if *t { one - u + p } else { *l - p })
            .collect();
        lt = Shares::from_raw(next);
    }
    // noise_s = sum over positive coins of 2^digit - sum over negative coins.
    let mut out = vec![Fr::from(0u64); count];
    for (c, share) in coins.iter().zip(lt.expose_shares()) {
        let w = pow2::<Fr>(c.digit);
        if let Some(o) = out.get_mut(c.sample) {
            if c.negative {
                *o -= *share * w;
            } else {
                *o += *share * w;
            }
        }
    }
    Ok(Shares::from_raw(out))
}
