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
//! A random pair added at the start makes the final `a`, `b` uniform, so the parties open
//! `(a, b, c)` and check `c = a*b`. A false claim survives with probability about
//! `2 log2(N) / |F|`. Each round's error terms are functions of the cheater's errors and
//! public coins only, so nothing about secret values leaks.

use rayon::prelude::*;

use crate::engine::Engine;
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

/// Halvings whose fold is fused with the next level's inner products.
const FUSED_LEVELS: u32 = 8;

/// For vectors split in halves `L | R`: `h(0) = <a_L, b_L>` and
/// `h(2) = <2 a_R - a_L, 2 b_R - b_L>`, the evaluations the parties must share.
fn measure<F: WireField>(a: &[F], b: &[F]) -> (F, F) {
    let h = a.len() / 2;
    let (al, ar) = a.split_at(h);
    let (bl, br) = b.split_at(h);
    let pair_terms = |(al, ar): (&[F], &[F]), (bl, br): (&[F], &[F])| {
        al.iter().zip(ar).zip(bl.iter().zip(br)).fold((F::zero(), F::zero()), |(h0, h2), ((l, r), (bl, br))| {
            (h0 + *l * bl, h2 + (r.double() - l) * (br.double() - bl))
        })
    };
    if h > PAR_CHUNK {
        al.par_chunks(PAR_CHUNK)
            .zip(ar.par_chunks(PAR_CHUNK))
            .zip(bl.par_chunks(PAR_CHUNK).zip(br.par_chunks(PAR_CHUNK)))
            .map(|(x, y)| pair_terms(x, y))
            .reduce(|| (F::zero(), F::zero()), |(a0, a2), (b0, b2)| (a0 + b0, a2 + b2))
    } else {
        pair_terms((al, ar), (bl, br))
    }
}

/// One pass that weights claim `i < weighted` by `alpha^(i+1)` (`a_i *= theta_i`), sums
/// `theta_i z_i`, and measures the first level (`h(0)`, `h(2)`). `a.len()` must be even.
fn weigh_and_measure<F: WireField>(a: &mut [F], b: &[F], z: &[F], weighted: usize, alpha: F) -> (F, F, F) {
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
                let (i, j) = (start + k, h + start + k);
                if i < weighted {
                    *l *= tl;
                    c += tl * z.get(i).copied().unwrap_or_default();
                }
                if j < weighted {
                    *r *= tr;
                    c += tr * z.get(j).copied().unwrap_or_default();
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
        // A random pair whose product claim joins the batch: it makes the final opened
        // (a, b) uniformly random.
        let pair = self.take_randoms(2).await?.into_shares();
        let (a0, b0) = (pair.slice(0..1), pair.slice(1..2));
        self.mul(&a0, &b0).await?;

        // Claim i gets coefficient alpha^(i+1) for a public random alpha: a nonzero error
        // vector survives unless alpha is a root of a polynomial of degree N.
        let mut pending = std::mem::take(&mut self.pending);
        let alpha = self.coin().await?;
        let elementwise = pending.x.len();
        let mut a = std::mem::take(&mut pending.x);
        let mut b = std::mem::take(&mut pending.y);
        let z = std::mem::take(&mut pending.z);
        let mut c_inner = F::zero();
        let mut theta = alpha.pow([elementwise as u64 + 1]);
        for (x, y, z) in pending.inner.iter_mut() {
            a.extend(x.iter().map(|v| *v * theta));
            b.append(y);
            c_inner += *z * theta;
            theta *= alpha;
        }
        drop(pending);
        // Zero padding to a multiple of 2^FUSED_LEVELS lets that many halvings fuse each fold
        // with the next level's inner products.
        let padded = a.len().next_multiple_of(1 << FUSED_LEVELS);
        a.resize(padded, F::zero());
        b.resize(padded, F::zero());
        let (c_elem, mut h0, mut h2) = weigh_and_measure(&mut a, &b, &z, elementwise, alpha);
        drop(z);
        let mut c = c_elem + c_inner;

        let two = F::from(2u64);
        let half = Self::half();
        loop {
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
            let len = a.len();
            if len.is_multiple_of(4) {
                (h0, h2) = fold_and_measure(&mut a, &mut b, rho);
            } else {
                fold_in_place(&mut a, len / 2, rho);
                fold_in_place(&mut b, len / 2, rho);
                if a.len() == 1 {
                    break;
                }
                if !a.len().is_multiple_of(2) {
                    a.push(F::zero());
                    b.push(F::zero());
                }
                (h0, h2) = measure(&a, &b);
            }
        }
        let last =
            Shares::from_raw(vec![a.first().copied().unwrap_or_default(), b.first().copied().unwrap_or_default(), c]);
        let opened = self.open_masked(&last).await?;
        match opened.as_slice() {
            [a, b, c] if *a * b == *c => Ok(()),
            _ => Err(MpcError::Cheating { check: Check::Multiplication, culprit: Culprit::Unknown }),
        }
    }
}
