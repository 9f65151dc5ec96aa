//! Dealerless preprocessing: random sharings and double sharings by DN07 dealing with
//! Vandermonde extraction, and random bits as the XOR of bits dealt by `t + 1` parties.

use rayon::prelude::*;

use crate::engine::Engine;
use crate::error::{Check, Culprit, MpcError, Result};
use crate::field::{WireField, PAR_CHUNK};
use crate::net::Kind;
use crate::party::PartyId;
use crate::shamir::eval_poly_small;
use crate::shares::{DoubleShares, RandomBits, RandomShares, Shares};
use crate::transport::Transport;

/// Per chunk of slots, the destination slices of every recipient (degree t, degree 2t).
type DealJob<'a, F> = (Vec<&'a mut [F]>, Vec<&'a mut [F]>);

impl<F: WireField, T: Transport> Engine<F, T> {
    /// Whether honest parties' shares alone can be inconsistent (more than `t + 1` of them),
    /// so dealt sharings need a degree check.
    fn needs_degree_check(&self) -> bool {
        self.malicious() && self.n() > 2 * self.t() + 1
    }

    /// Every party deals `slots` random values under degree `t` (and `2t` when `double`);
    /// returns, per dealer index, our shares (`slots` degree-t then `slots` degree-2t).
    async fn deal(&mut self, slots: usize, double: bool) -> Result<Vec<Vec<F>>> {
        let (n, t) = (self.n(), self.t());
        let points: Vec<u64> = (1..=n as u64).collect();
        let per = if double { 2 * slots } else { slots };
        let chunks = slots.div_ceil(PAR_CHUNK);
        let rngs = self.chunk_rngs(chunks);
        // Layout per recipient: `slots` degree-t shares, then `slots` degree-2t shares. Each
        // chunk of slots is generated in parallel straight into its place.
        let mut per_recipient: Vec<Vec<F>> = (0..n).map(|_| vec![F::zero(); per]).collect();
        let mut jobs: Vec<DealJob<'_, F>> = (0..chunks).map(|_| (Vec::new(), Vec::new())).collect();
        for dest in per_recipient.iter_mut() {
            let (low, high) = dest.split_at_mut(slots);
            for ((job_t, _), piece) in jobs.iter_mut().zip(low.chunks_mut(PAR_CHUNK)) {
                job_t.push(piece);
            }
            for ((_, job_2t), piece) in jobs.iter_mut().zip(high.chunks_mut(PAR_CHUNK)) {
                job_2t.push(piece);
            }
        }
        jobs.into_par_iter().zip(rngs).for_each(|((mut shares_t, mut shares_2t), mut rng)| {
            let count = shares_t.first().map_or(0, |s| s.len());
            let mut coeffs_t = vec![F::zero(); t + 1];
            let mut coeffs_2t = vec![F::zero(); 2 * t + 1];
            for slot in 0..count {
                coeffs_t.iter_mut().for_each(|c| *c = F::rand(&mut rng));
                for (x, dest) in points.iter().zip(shares_t.iter_mut()) {
                    if let Some(d) = dest.get_mut(slot) {
                        *d = eval_poly_small(&coeffs_t, *x);
                    }
                }
                if double {
                    coeffs_2t.iter_mut().for_each(|c| *c = F::rand(&mut rng));
                    // Same secret under both degrees.
                    if let (Some(c0), Some(secret)) = (coeffs_2t.first_mut(), coeffs_t.first()) {
                        *c0 = *secret;
                    }
                    for (x, dest) in points.iter().zip(shares_2t.iter_mut()) {
                        if let Some(d) = dest.get_mut(slot) {
                            *d = eval_poly_small(&coeffs_2t, *x);
                        }
                    }
                }
            }
        });
        let me = self.id();
        let peers: Vec<PartyId> = self.net.peers().collect();
        let outgoing: Vec<(PartyId, &[F])> =
            peers.iter().filter_map(|p| per_recipient.get(p.index()).map(|v| (*p, v.as_slice()))).collect();
        let incoming: Vec<(PartyId, usize)> = peers.iter().map(|p| (*p, per)).collect();
        let received = self.net.round(Kind::Deal, &outgoing, &incoming).await?;
        let mut by_dealer: Vec<Vec<F>> = vec![Vec::new(); n];
        if let (Some(slot), Some(own)) = (by_dealer.get_mut(me.index()), per_recipient.get_mut(me.index())) {
            *slot = std::mem::take(own);
        }
        for (p, v) in received {
            if let Some(slot) = by_dealer.get_mut(p.index()) {
                *slot = v;
            }
        }
        use zeroize::Zeroize;
        per_recipient.zeroize();
        Ok(by_dealer)
    }

    /// Applies the Vandermonde extraction to `by_dealer[..][offset..offset+slots]`: output
    /// `slot * (n - t) + k` is `sum_j (j + 1)^k * dealt_j[slot]`.
    fn extract(&self, by_dealer: &[Vec<F>], offset: usize, slots: usize) -> Vec<F> {
        let rows = self.shamir.vandermonde_coeffs();
        let outputs = rows.len();
        let columns: Vec<&[F]> = by_dealer.iter().map(|d| d.get(offset..offset + slots).unwrap_or_default()).collect();
        let mut out = vec![F::zero(); slots * outputs];
        out.par_chunks_mut(outputs * PAR_CHUNK).enumerate().for_each(|(c, chunk)| {
            let base = c * PAR_CHUNK;
            let count = chunk.len() / outputs.max(1);
            let cols: Vec<&[F]> = columns.iter().map(|col| col.get(base..base + count).unwrap_or_default()).collect();
            for (s, row_out) in chunk.chunks_exact_mut(outputs).enumerate() {
                for (o, coeffs) in row_out.iter_mut().zip(&rows) {
                    let mut acc = F::zero();
                    for (col, k) in cols.iter().zip(coeffs) {
                        acc += k.apply(col.get(s).copied().unwrap_or_default());
                    }
                    *o = acc;
                }
            }
        });
        out
    }

    /// Checks that `vectors` are degree-`degree` sharings: opens a random combination masked
    /// by `mask`, with every share checked. The coin comes from `coin_share`.
    async fn check_degree(&mut self, vectors: &[&[F]], degree: usize, mask: F, coin: F) -> Result<()> {
        let total: usize = vectors.iter().map(|v| v.len()).sum();
        let gammas = crate::verify::powers(coin, total);
        let mut combined = mask;
        let mut g = gammas.iter();
        for v in vectors {
            combined += v.iter().zip(g.by_ref()).map(|(x, g)| *x * g).sum::<F>();
        }
        let by_party = self.net.broadcast(&[combined]).await?;
        self.reconstruct(&by_party, degree).map(|_| ()).map_err(|e| match e {
            MpcError::Cheating { .. } => MpcError::Cheating { check: Check::DealtDegree, culprit: Culprit::Unknown },
            other => other,
        })
    }

    /// Opens a coin from a sharing we just extracted (bootstrapping: the pools may be empty).
    async fn bootstrap_coin(&mut self, share: F) -> Result<F> {
        let by_party = self.net.broadcast(&[share]).await?;
        let v = self.reconstruct(&by_party, self.t())?;
        v.first().copied().ok_or_else(|| MpcError::Usage("empty coin".into()))
    }

    /// Generates at least `count` random degree-`t` sharings.
    pub(crate) async fn generate_randoms(&mut self, count: usize) -> Result<RandomShares<F>> {
        let check = self.needs_degree_check();
        let want = count + if check { 2 } else { 0 };
        let slots = want.div_ceil(self.n() - self.t());
        let by_dealer = self.deal(slots, false).await?;
        let mut r = self.extract(&by_dealer, 0, slots);
        if check {
            let coin_share = r.pop().unwrap_or_default();
            let mask = r.pop().unwrap_or_default();
            let coin = self.bootstrap_coin(coin_share).await?;
            self.check_degree(&[&r], self.t(), mask, coin).await?;
        }
        Ok(RandomShares { r })
    }

    /// Generates at least `count` double sharings.
    pub(crate) async fn generate_doubles(&mut self, count: usize) -> Result<DoubleShares<F>> {
        let check = self.needs_degree_check();
        let want = count + if check { 2 } else { 0 };
        let slots = want.div_ceil(self.n() - self.t());
        let by_dealer = self.deal(slots, true).await?;
        let mut r_t = self.extract(&by_dealer, 0, slots);
        let mut r_2t = self.extract(&by_dealer, slots, slots);
        if check {
            let coin_share = r_t.pop().unwrap_or_default();
            r_2t.pop();
            let mask_t = r_t.pop().unwrap_or_default();
            let mask_2t = r_2t.pop().unwrap_or_default();
            let coin = self.bootstrap_coin(coin_share).await?;
            self.check_degree(&[&r_t], self.t(), mask_t, coin).await?;
            self.check_degree(&[&r_2t], 2 * self.t(), mask_2t, coin).await?;
        }
        Ok(DoubleShares { r_t, r_2t })
    }

    /// Generates `count` shared random bits: parties `1..=t+1` each deal random bits, and the
    /// bits are XORed. That each output is a bit is a multiplication claim `b * (b - 1) = 0`
    /// checked by the batched verification before any output opens.
    pub(crate) async fn generate_bits(&mut self, count: usize) -> Result<RandomBits<F>> {
        let (n, t) = (self.n(), self.t());
        let me = self.id();
        let dealers: Vec<PartyId> = PartyId::all(t + 1).collect();
        let mut outgoing_vecs: Vec<(PartyId, Vec<F>)> = Vec::new();
        let mut own: Option<Vec<F>> = None;
        if dealers.contains(&me) {
            let chunks = count.div_ceil(PAR_CHUNK);
            let rngs = self.chunk_rngs(chunks);
            let points: Vec<u64> = (1..=n as u64).collect();
            let mut per_recipient: Vec<Vec<F>> = (0..n).map(|_| vec![F::zero(); count]).collect();
            let mut jobs: Vec<Vec<&mut [F]>> = (0..chunks).map(|_| Vec::with_capacity(n)).collect();
            for dest in per_recipient.iter_mut() {
                for (job, piece) in jobs.iter_mut().zip(dest.chunks_mut(PAR_CHUNK)) {
                    job.push(piece);
                }
            }
            jobs.into_par_iter().zip(rngs).for_each(|(mut dests, mut rng)| {
                let len = dests.first().map_or(0, |d| d.len());
                let mut coeffs = vec![F::zero(); t + 1];
                for k in 0..len {
                    coeffs.iter_mut().for_each(|c| *c = F::rand(&mut rng));
                    if let Some(c0) = coeffs.first_mut() {
                        *c0 = F::from(u64::from(rand::Rng::gen::<bool>(&mut rng)));
                    }
                    for (x, dest) in points.iter().zip(dests.iter_mut()) {
                        if let Some(d) = dest.get_mut(k) {
                            *d = eval_poly_small(&coeffs, *x);
                        }
                    }
                }
            });
            for (i, v) in per_recipient.into_iter().enumerate() {
                match PartyId::from_index(i) {
                    Some(p) if p == me => own = Some(v),
                    Some(p) => outgoing_vecs.push((p, v)),
                    None => {}
                }
            }
        }
        let outgoing: Vec<(PartyId, &[F])> = outgoing_vecs.iter().map(|(p, v)| (*p, v.as_slice())).collect();
        let incoming: Vec<(PartyId, usize)> = dealers.iter().filter(|d| **d != me).map(|d| (*d, count)).collect();
        let received = self.net.round(Kind::Deal, &outgoing, &incoming).await?;
        drop(outgoing_vecs);
        // In dealer order at every party: the verification pairs claims by position.
        let mut by_dealer: Vec<(PartyId, Vec<F>)> = received;
        if let Some(own) = own {
            by_dealer.push((me, own));
        }
        by_dealer.sort_by_key(|(p, _)| *p);
        let dealt_bits: Vec<Shares<F>> = by_dealer.into_iter().map(|(_, v)| Shares::from_raw(v)).collect();
        if self.needs_degree_check() {
            let mask = self.take_randoms(1).await?.into_shares();
            let coin = self.coin().await?;
            let views: Vec<&[F]> = dealt_bits.iter().map(|s| s.expose_shares()).collect();
            let mask = mask.expose_shares().first().copied().unwrap_or_default();
            self.check_degree(&views, t, mask, coin).await?;
        }
        let mut iter = dealt_bits.into_iter();
        let mut acc = iter.next().unwrap_or_else(|| Shares::zeros(count));
        for b in iter {
            // a XOR b = a + b - 2ab
            let prod = self.mul(&acc, &b).await?;
            acc = acc.add(&b).sub(&prod.scale(F::from(2u64)));
        }
        // One claim per output bit suffices: the output is h XOR c for an honest dealer's bit
        // h, and h + c - 2hc is in {0, 1} only if c is too, whichever bit h is. With the XOR
        // multiplications verified, a verified output bit is uniform and secret.
        if self.malicious() {
            let minus_one = acc.add_scalar(-F::one());
            self.pending.x.extend_from_slice(acc.expose_shares());
            self.pending.y.extend_from_slice(minus_one.expose_shares());
            self.pending.z.extend(std::iter::repeat_n(F::zero(), acc.len()));
        }
        Ok(RandomBits { bits: acc.into_exposed() })
    }
}
