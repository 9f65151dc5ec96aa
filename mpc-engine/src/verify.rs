//! Malicious security: agreement on everything broadcast, and batched distributed
//! zero-knowledge verification of every multiplication (Goyal–Song–Zhu 2020 / Boyle et al.
//! 2019 style inner-product compression).
//!
//! DN07 multiplication with honest majority lets a cheater add an error to a product but
//! nothing else. All claims `z = x*y` (and inner products) are folded with powers of a public
//! random coefficient into one inner-product claim `<a, b> = c`, which is halved `log2 N` times:
//! with `f(X) = a_L + X (a_R - a_L)`, `g` alike, `h(X) = <f(X), g(X)>` has degree 2; the
//! parties compute shared `h(0)` and `h(2)` by one degree reduction each, set
//! `h(1) = c - h(0)`, and continue with `(f(rho), g(rho), h(rho))` for a public random `rho`.
//! After `s` halvings (between 1 and 8, so a bounded number of rounds whatever `N`) the
//! remaining `m = N / (2^s - 1)` pairs are opened and `c = <a, b>` is checked in the clear: `m` random product claims placed first
//! make every opened value uniformly random. A false claim survives with probability about
//! `(N + 2s) / |F|`. Each round's error terms are functions of the cheater's errors and
//! public coins only, so nothing about secret values leaks.

use rayon::prelude::*;

use crate::engine::{par_dot, Engine};
use crate::error::{Check, Culprit, MpcError, Result};
use crate::field::{WireField, PAR_CHUNK};
use crate::party::PartyId;
use crate::shares::Shares;
use crate::transport::Transport;

/// `alpha, alpha^2, ..., alpha^len`, computed in parallel chunks.
pub(crate) fn powers<F: WireField>(alpha: F, len: usize) -> Vec<F> {
    let mut out = vec![F::zero(); len];
    out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(c, chunk)| {
        let mut acc = alpha.pow([(c * PAR_CHUNK) as u64 + 1]);
        for o in chunk {
            *o = acc;
            acc *= alpha;
        }
    });
    out
}

/// `v[i] = v[i] + rho * (v[h + i] - v[i])` for `i < h`, then `v` keeps its first `h`.
fn fold_in_place<F: WireField>(v: &mut Vec<F>, h: usize, rho: F) {
    let (left, right) = v.split_at_mut(h);
    if h > PAR_CHUNK {
        left.par_iter_mut().zip(right.par_iter()).for_each(|(l, r)| *l += rho * (*r - *l));
    } else {
        left.iter_mut().zip(right.iter()).for_each(|(l, r)| *l += rho * (*r - *l));
    }
    v.truncate(h);
}

/// Most halvings: the verification takes a bounded number of rounds whatever the batch
/// size; what remains (about `N / 255` pairs) is opened masked, a small fraction of `N`.
const MAX_LEVELS: u32 = 8;

/// Number of halvings for `claims` claims: at least one (so every opened value is masked),
/// about `log2(N / 16)` for small batches, at most [`MAX_LEVELS`].
fn verification_levels(claims: usize) -> u32 {
    let ratio = claims.div_ceil(16).max(1);
    (usize::BITS - (ratio - 1).leading_zeros()).clamp(1, MAX_LEVELS)
}

/// Which positions hold element-wise claims `z_i = x_i y_i`: `0..elementwise` and
/// `mask_start..`.
struct Weights<'a, F> {
    elementwise: usize,
    z: &'a [F],
    mask_start: usize,
    mask_z: &'a [F],
}

impl<F: WireField> Weights<'_, F> {
    #[inline]
    fn z_at(&self, i: usize) -> Option<F> {
        if i < self.elementwise {
            self.z.get(i).copied()
        } else if i >= self.mask_start {
            self.mask_z.get(i - self.mask_start).copied()
        } else {
            None
        }
    }
}

/// One pass that weights each position `i` holding an element-wise claim by `alpha^(i+1)`
/// (`a_i *= theta_i`), sums `theta_i z_i`, and measures the first level (`h(0)`, `h(2)`).
/// `a.len()` must be even.
fn weigh_and_measure<F: WireField>(a: &mut [F], b: &[F], weights: &Weights<'_, F>, alpha: F) -> (F, F, F) {
    let h = a.len() / 2;
    let (al, ar) = a.split_at_mut(h);
    let (bl, br) = b.split_at(h);
    al.par_chunks_mut(PAR_CHUNK)
        .zip(ar.par_chunks_mut(PAR_CHUNK))
        .zip(bl.par_chunks(PAR_CHUNK).zip(br.par_chunks(PAR_CHUNK)))
        .enumerate()
        .map(|(chunk, ((al, ar), (bl, br)))| {
            let start = chunk * PAR_CHUNK;
            let mut tl = alpha.pow([start as u64 + 1]);
            let mut tr = alpha.pow([(h + start) as u64 + 1]);
            let (mut c, mut h0, mut h2) = (F::zero(), F::zero(), F::zero());
            for (k, ((l, r), (bl, br))) in al.iter_mut().zip(ar.iter_mut()).zip(bl.iter().zip(br)).enumerate() {
                if let Some(z) = weights.z_at(start + k) {
                    *l *= tl;
                    c += tl * z;
                }
                if let Some(z) = weights.z_at(h + start + k) {
                    *r *= tr;
                    c += tr * z;
                }
                tl *= alpha;
                tr *= alpha;
                h0 += *l * bl;
                h2 += (r.double() - *l) * (br.double() - bl);
            }
            (c, h0, h2)
        })
        .reduce(|| (F::zero(), F::zero(), F::zero()), |(a, b, c), (x, y, z)| (a + x, b + y, c + z))
}

/// Folds `a` and `b` (length divisible by 4) with `rho` into their first halves and returns
/// the next level's `h(0)`, `h(2)`, in one pass: input quarters `(0, 2)` fold into output
/// element `i`, quarters `(1, 3)` into output element `h/2 + i`.
fn fold_and_measure<F: WireField>(a: &mut Vec<F>, b: &mut Vec<F>, rho: F) -> (F, F) {
    let q = a.len() / 4;
    fn quarters<F>(v: &mut [F], q: usize) -> (&mut [F], &mut [F], &[F], &[F]) {
        let (first, rest) = v.split_at_mut(q);
        let (second, rest) = rest.split_at_mut(q);
        let (third, fourth) = rest.split_at_mut(q);
        (first, second, third, fourth)
    }
    let (a0, a1, a2, a3) = quarters(a, q);
    let (b0, b1, b2, b3) = quarters(b, q);
    let sums = a0
        .par_chunks_mut(PAR_CHUNK)
        .zip(a1.par_chunks_mut(PAR_CHUNK))
        .zip(a2.par_chunks(PAR_CHUNK).zip(a3.par_chunks(PAR_CHUNK)))
        .zip(
            b0.par_chunks_mut(PAR_CHUNK)
                .zip(b1.par_chunks_mut(PAR_CHUNK))
                .zip(b2.par_chunks(PAR_CHUNK).zip(b3.par_chunks(PAR_CHUNK))),
        )
        .map(|(((a0, a1), (a2, a3)), ((b0, b1), (b2, b3)))| {
            let (mut h0, mut h2) = (F::zero(), F::zero());
            let a_iter = a0.iter_mut().zip(a1.iter_mut()).zip(a2.iter().zip(a3));
            let b_iter = b0.iter_mut().zip(b1.iter_mut()).zip(b2.iter().zip(b3));
            for (((x0, x1), (x2, x3)), ((y0, y1), (y2, y3))) in a_iter.zip(b_iter) {
                *x0 += rho * (*x2 - *x0);
                *x1 += rho * (*x3 - *x1);
                *y0 += rho * (*y2 - *y0);
                *y1 += rho * (*y3 - *y1);
                h0 += *x0 * *y0;
                h2 += (x1.double() - *x0) * (y1.double() - *y0);
            }
            (h0, h2)
        })
        .reduce(|| (F::zero(), F::zero()), |(a0, a2), (b0, b2)| (a0 + b0, a2 + b2));
    a.truncate(2 * q);
    b.truncate(2 * q);
    sums
}

/// Turns digest disagreements `(sender, reporter)` into a culprit. We know what we sent, and
/// a party's report about its own messages must match what we received from it.
pub(crate) fn agreement_culprit(me: PartyId, mismatches: &[(PartyId, PartyId)]) -> Culprit {
    for (sender, reporter) in mismatches {
        if *sender == me || sender == reporter {
            return Culprit::Party(*reporter);
        }
    }
    let mut suspects: Vec<PartyId> = mismatches.iter().flat_map(|(s, r)| [*s, *r]).collect();
    suspects.sort();
    suspects.dedup();
    Culprit::OneOf(suspects)
}

impl<F: WireField, T: Transport> Engine<F, T> {
    /// Verifies everything computed so far (malicious mode; a no-op when semi-honest): all
    /// parties saw the same broadcasts, and every multiplication is correct. Runs before any
    /// output opens; on failure the session aborts.
    pub async fn verify(&mut self) -> Result<()> {
        if !self.malicious() {
            return Ok(());
        }
        self.ensure_live()?;
        let r = async {
            self.check_agreement().await?;
            if !self.pending.is_empty() {
                self.verify_products().await?;
                self.check_agreement().await?;
            }
            Ok(())
        }
        .await;
        self.guard(r).await
    }

    async fn check_agreement(&mut self) -> Result<()> {
        let mismatches = self.net.digest_round().await?;
        if mismatches.is_empty() {
            Ok(())
        } else {
            Err(MpcError::Cheating {
                check: Check::BroadcastAgreement,
                culprit: agreement_culprit(self.id(), &mismatches),
            })
        }
    }

    async fn verify_products(&mut self) -> Result<()> {
        let mut claims = std::mem::take(&mut self.pending);
        let claim_count = claims.x.len() + claims.inner.iter().map(|(x, _, _)| x.len()).sum::<usize>();
        // Fold `levels` times down to `masks` values, then open them. Each of the `masks`
        // final positions gathers original positions congruent to it, the first of which
        // holds a random product claim: every opened value is masked by fresh randomness.
        let levels = verification_levels(claim_count);
        let masks = claim_count.div_ceil((1 << levels) - 1).max(1);
        let r = self.take_randoms(2 * masks).await?.into_shares();
        let (ra, rb) = (r.slice(0..masks), r.slice(masks..2 * masks));
        self.mul(&ra, &rb).await?;
        let mut mask_claims = std::mem::take(&mut self.pending);

        // Claim i gets coefficient alpha^(i+1) for a public random alpha: a nonzero error
        // vector survives unless alpha is a root of a polynomial of degree N. Layout:
        // element-wise claims, inner-product claims (pre-weighted), zeros, then the mask
        // claims in the last `masks` positions (congruent to every final position).
        let alpha = self.coin().await?;
        let total = masks << levels;
        let mask_start = total - masks;
        let mut a = std::mem::take(&mut claims.x);
        let mut b = std::mem::take(&mut claims.y);
        let z = std::mem::take(&mut claims.z);
        let elementwise = a.len();
        let mut c_inner = F::zero();
        let mut theta = alpha.pow([total as u64 + 1]);
        for (x, y, z) in claims.inner.iter_mut() {
            a.extend(x.iter().map(|v| *v * theta));
            b.append(y);
            c_inner += *z * theta;
            theta *= alpha;
        }
        drop(claims);
        a.resize(mask_start, F::zero());
        b.resize(mask_start, F::zero());
        a.append(&mut mask_claims.x);
        b.append(&mut mask_claims.y);
        let mask_z = std::mem::take(&mut mask_claims.z);
        let weights = Weights { elementwise, z: &z, mask_start, mask_z: &mask_z };
        let (c_weighted, mut h0, mut h2) = weigh_and_measure(&mut a, &b, &weights, alpha);
        drop(z);
        drop(mask_z);
        let mut c = c_weighted + c_inner;

        let two = F::from(2u64);
        let half = Self::half();
        for level in 0..levels {
            let hs = self.reduce_degree(vec![h0, h2]).await?;
            let (s0, s2) = match hs.expose_shares() {
                [h0, h2] => (*h0, *h2),
                _ => return Err(MpcError::Usage("degree reduction returned the wrong length".into())),
            };
            let s1 = c - s0;
            let rho = self.coin().await?;
            // Lagrange basis on {0, 1, 2} at rho.
            let l0 = (rho - F::one()) * (rho - two) * half;
            let l1 = -(rho * (rho - two));
            let l2 = rho * (rho - F::one()) * half;
            c = l0 * s0 + l1 * s1 + l2 * s2;
            if level + 1 < levels {
                (h0, h2) = fold_and_measure(&mut a, &mut b, rho);
            } else {
                let h = a.len() / 2;
                fold_in_place(&mut a, h, rho);
                fold_in_place(&mut b, h, rho);
            }
        }
        let last = Shares::concat(&[&Shares::from_raw(a), &Shares::from_raw(b), &Shares::from_raw(vec![c])]);
        let opened = self.open_masked(&last).await?;
        let (oa, rest) = opened.split_at(masks.min(opened.len()));
        let (ob, oc) = rest.split_at(masks.min(rest.len()));
        match oc {
            [c] if oa.len() == masks && ob.len() == masks && par_dot(oa, ob) == *c => Ok(()),
            _ => Err(MpcError::Cheating { check: Check::Multiplication, culprit: Culprit::Unknown }),
        }
    }
}
