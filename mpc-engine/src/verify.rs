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
        let theta = powers(alpha, elementwise + pending.inner.len());
        let (theta_elem, theta_inner) = theta.split_at(elementwise);
        let mut a = std::mem::take(&mut pending.x);
        if a.len() > PAR_CHUNK {
            a.par_iter_mut().zip(theta_elem.par_iter()).for_each(|(x, t)| *x *= t);
        } else {
            a.iter_mut().zip(theta_elem).for_each(|(x, t)| *x *= t);
        }
        let mut b = std::mem::take(&mut pending.y);
        let mut c = par_dot(&pending.z, theta_elem);
        for ((x, y, z), t) in pending.inner.iter_mut().zip(theta_inner) {
            a.extend(x.iter().map(|v| *v * t));
            b.append(y);
            c += *z * t;
        }
        drop(pending);
        drop(theta);

        let two = F::from(2u64);
        let half = Self::half();
        while a.len() > 1 {
            if a.len() % 2 == 1 {
                a.push(F::zero());
                b.push(F::zero());
            }
            let h = a.len() / 2;
            let (al, ar) = a.split_at(h);
            let (bl, br) = b.split_at(h);
            let h0 = par_dot(al, bl);
            let h2 = if h > PAR_CHUNK {
                al.par_chunks(PAR_CHUNK)
                    .zip(ar.par_chunks(PAR_CHUNK))
                    .zip(bl.par_chunks(PAR_CHUNK).zip(br.par_chunks(PAR_CHUNK)))
                    .map(|((al, ar), (bl, br))| {
                        al.iter()
                            .zip(ar)
                            .zip(bl.iter().zip(br))
                            .fold(F::zero(), |acc, ((l, r), (bl, br))| acc + (two * r - l) * (two * br - bl))
                    })
                    .sum()
            } else {
                al.iter()
                    .zip(ar)
                    .zip(bl.iter().zip(br))
                    .fold(F::zero(), |acc, ((l, r), (bl, br))| acc + (two * r - l) * (two * br - bl))
            };
            let hs = self.reduce_degree(vec![h0, h2]).await?;
            let (h0, h2) = match hs.expose_shares() {
                [h0, h2] => (*h0, *h2),
                _ => return Err(MpcError::Usage("degree reduction returned the wrong length".into())),
            };
            let h1 = c - h0;
            let rho = self.coin().await?;
            fold_in_place(&mut a, h, rho);
            fold_in_place(&mut b, h, rho);
            // Lagrange basis on {0, 1, 2} at rho.
            let l0 = (rho - F::one()) * (rho - two) * half;
            let l1 = -(rho * (rho - two));
            let l2 = rho * (rho - F::one()) * half;
            c = l0 * h0 + l1 * h1 + l2 * h2;
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
