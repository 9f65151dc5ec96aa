//! The online engine: one session between the parties, its preprocessing pools, and the
//! vectorised operations on shares.

use std::sync::Arc;

use ark_std::rand::{RngCore, SeedableRng};
use rand_chacha::{ChaCha12Rng, ChaCha8Rng};
use rayon::prelude::*;

use crate::error::{Check, Culprit, MpcError, Result};
use crate::field::{WireField, PAR_CHUNK};
use crate::net::{Kind, Net};
use crate::party::{PartyId, SessionId};
use crate::shamir::Shamir;
use crate::shares::{BeaverTriples, DoubleShares, RandomBits, RandomShares, Shares};
use crate::transport::{Transport, TransportStats};

/// Which adversary the session defends against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Security {
    /// Parties follow the protocol; fastest.
    SemiHonest,
    /// Up to `t` parties deviate arbitrarily; any deviation aborts before an output opens.
    #[default]
    Malicious,
}

/// Multiplication claims `z = x*y` awaiting the batched verification.
#[derive(Default)]
pub(crate) struct Pending<F: WireField> {
    pub(crate) x: Vec<F>,
    pub(crate) y: Vec<F>,
    pub(crate) z: Vec<F>,
    /// Inner-product claims `z = <x, y>`.
    pub(crate) inner: Vec<(Vec<F>, Vec<F>, F)>,
}

impl<F: WireField> Pending<F> {
    pub(crate) fn is_empty(&self) -> bool {
        self.x.is_empty() && self.inner.is_empty()
    }
}

impl<F: WireField> Drop for Pending<F> {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.x.zeroize();
        self.y.zeroize();
        self.z.zeroize();
        for (x, y, z) in &mut self.inner {
            x.zeroize();
            y.zeroize();
            z.zeroize();
        }
    }
}

/// Counters of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Communication rounds so far.
    pub rounds: u64,
    /// Multiplications computed (each element of a batch counts).
    pub multiplications: u64,
    /// Transport counters (shared by every session on the transport).
    pub transport: TransportStats,
}

/// Batches at least this long are degree-reduced through kings (see `reduce_degree`).
const KING_THRESHOLD: usize = 4096;

/// Preprocessing batch sizes are rounded up to this.
const MIN_PREP_BATCH: usize = 1024;

/// One MPC session of this party.
pub struct Engine<F: WireField, T: Transport> {
    pub(crate) net: Net<T>,
    pub(crate) shamir: Arc<Shamir<F>>,
    pub(crate) security: Security,
    pub(crate) rng: ChaCha12Rng,
    pub(crate) randoms: RandomShares<F>,
    pub(crate) doubles: DoubleShares<F>,
    pub(crate) bits: RandomBits<F>,
    pub(crate) triples: BeaverTriples<F>,
    /// Shares of `r, r², r³, r⁴, r⁵` for random `r`, one tuple per fifth power (see `pow5`).
    powers: [Shares<F>; 5],
    pub(crate) pending: Pending<F>,
    pub(crate) multiplications: u64,
    aborted: bool,
    /// Added to this party's next degree-reduction message (tests of the verification).
    product_error: Option<F>,
    /// Counts preprocessing taken and generated on demand, for whoever sized a pool.
    pub(crate) meter: Option<Arc<crate::pooled::PrepMeter>>,
}

impl<F: WireField, T: Transport> std::fmt::Debug for Engine<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("party", &self.net.me)
            .field("session", &self.net.session)
            .field("n", &self.shamir.n())
            .field("t", &self.shamir.t())
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl<F: WireField, T: Transport> Engine<F, T> {
    /// A session over `transport` with threshold `t`.
    pub fn new(transport: Arc<T>, t: usize, security: Security, session: SessionId) -> Result<Self> {
        let shamir = Arc::new(Shamir::new(transport.n_parties(), t)?);
        Ok(Self::with_shamir(transport, shamir, security, session))
    }

    /// As [`Engine::new`], sharing interpolation tables with other sessions.
    pub fn with_shamir(transport: Arc<T>, shamir: Arc<Shamir<F>>, security: Security, session: SessionId) -> Self {
        let malicious = security == Security::Malicious;
        Self {
            net: Net::new(transport, session, malicious),
            shamir,
            security,
            rng: ChaCha12Rng::from_entropy(),
            randoms: RandomShares::default(),
            doubles: DoubleShares::default(),
            bits: RandomBits::default(),
            triples: BeaverTriples::default(),
            powers: std::array::from_fn(|_| Shares::from_raw(Vec::new())),
            pending: Pending::default(),
            multiplications: 0,
            aborted: false,
            product_error: None,
            meter: None,
        }
    }

    /// This party.
    pub fn id(&self) -> PartyId {
        self.net.me
    }

    /// Number of parties.
    pub fn n(&self) -> usize {
        self.shamir.n()
    }

    /// Threshold.
    pub fn t(&self) -> usize {
        self.shamir.t()
    }

    /// Makes this party add `delta` to its next degree-reduction message, consistently to
    /// everyone and in its own state: the additive attack the verification must catch. For
    /// tests; a party can only cheat with its own messages.
    #[doc(hidden)]
    pub fn inject_product_error_for_tests(&mut self, delta: F) {
        self.product_error = Some(delta);
    }

    /// Security mode.
    pub fn security(&self) -> Security {
        self.security
    }

    /// The sharing parameters.
    pub fn shamir(&self) -> &Arc<Shamir<F>> {
        &self.shamir
    }

    /// Session counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            rounds: self.net.rounds,
            multiplications: self.multiplications,
            transport: self.net.transport.stats(),
        }
    }

    pub(crate) fn malicious(&self) -> bool {
        self.security == Security::Malicious
    }

    /// An error aborts the session for good; peers are told unless the error came from them.
    pub(crate) async fn guard<R>(&mut self, result: Result<R>) -> Result<R> {
        if let Err(e) = &result {
            if !self.aborted && !matches!(e, MpcError::PeerAborted { .. } | MpcError::Aborted) {
                self.net.send_abort(&e.to_string()).await;
            }
            self.aborted = true;
        }
        result
    }

    pub(crate) fn ensure_live(&self) -> Result<()> {
        if self.aborted {
            Err(MpcError::Aborted)
        } else {
            Ok(())
        }
    }

    fn same_len(a: &Shares<F>, b: &Shares<F>) -> Result<()> {
        if a.len() == b.len() {
            Ok(())
        } else {
            Err(MpcError::Usage(format!("operands of lengths {} and {}", a.len(), b.len())))
        }
    }

    // ----- openings -------------------------------------------------------------------------

    /// Opens a vector whose values may be revealed without first verifying the session (it is
    /// masked by fresh randomness, or is a coin). Every share is checked for consistency in
    /// malicious mode.
    pub(crate) async fn open_masked(&mut self, x: &Shares<F>) -> Result<Vec<F>> {
        let by_party = self.net.broadcast(x.expose_shares()).await?;
        self.reconstruct(&by_party, self.t())
    }

    /// Reconstructs degree-`degree` sharings from every party's shares, checking consistency
    /// (and naming the bad party where `n` allows error correction) in malicious mode.
    pub(crate) fn reconstruct(&self, by_party: &[Vec<F>], degree: usize) -> Result<Vec<F>> {
        let check = self.malicious() && self.n() > degree + 1;
        self.shamir.reconstruct_batch(by_party, degree, check).map_err(|i| {
            let column: Vec<F> = by_party.iter().map(|v| v.get(i).copied().unwrap_or_default()).collect();
            let culprit = match self.shamir.identify_bad_shares(&column, degree) {
                Some(bad) if bad.len() == 1 => bad.first().map_or(Culprit::Unknown, |p| Culprit::Party(*p)),
                Some(bad) if !bad.is_empty() => Culprit::OneOf(bad),
                _ => Culprit::Unknown,
            };
            MpcError::Cheating { check: Check::OpeningConsistency, culprit }
        })
    }

    /// Reveals `x` to every party. In malicious mode all pending multiplications are verified
    /// first, so nothing derived from a cheated value is ever opened.
    pub async fn open(&mut self, x: &Shares<F>) -> Result<Vec<F>> {
        self.ensure_live()?;
        let r = async {
            self.verify().await?;
            self.open_masked(x).await
        }
        .await;
        self.guard(r).await
    }

    /// Reveals `x` to `owner` only (after verification); other parties get `None`.
    pub async fn open_to(&mut self, owner: PartyId, x: &Shares<F>) -> Result<Option<Vec<F>>> {
        self.ensure_live()?;
        let r = async {
            self.verify().await?;
            self.open_to_unverified(owner, x).await
        }
        .await;
        self.guard(r).await
    }

    pub(crate) async fn open_to_unverified(&mut self, owner: PartyId, x: &Shares<F>) -> Result<Option<Vec<F>>> {
        let me = self.id();
        if owner == me {
            let incoming: Vec<(PartyId, usize)> = self.net.peers().map(|p| (p, x.len())).collect();
            let got = self.net.round::<F>(Kind::ToOne, &[], &incoming).await?;
            let mut by_party = vec![Vec::new(); self.n()];
            if let Some(slot) = by_party.get_mut(me.index()) {
                *slot = x.expose_shares().to_vec();
            }
            for (p, v) in got {
                if let Some(slot) = by_party.get_mut(p.index()) {
                    *slot = v;
                }
            }
            // The owner always checks: it is the only one who sees these shares.
            let check = self.n() > self.t() + 1;
            let values = self
                .shamir
                .reconstruct_batch(&by_party, self.t(), check)
                .map_err(|_| MpcError::Cheating { check: Check::OpeningConsistency, culprit: Culprit::Unknown })?;
            Ok(Some(values))
        } else {
            self.net.round::<F>(Kind::ToOne, &[(owner, x.expose_shares())], &[]).await?;
            Ok(None)
        }
    }

    /// One round of private messages: sends each `(peer, values)` and receives `len` values
    /// from each `(peer, len)` (a peer sending another length is refused). Every party of the
    /// session takes part, with empty lists if it neither sends nor receives, since the round
    /// is one step of the session for all. Nothing here is digested or verified: a protocol
    /// using it (e.g. a re-sharing among some of the parties) must check what the messages
    /// carry, as its own step.
    pub async fn exchange(
        &mut self,
        outgoing: &[(PartyId, &[F])],
        incoming: &[(PartyId, usize)],
    ) -> Result<Vec<(PartyId, Vec<F>)>> {
        self.ensure_live()?;
        let me = self.id();
        if outgoing
            .iter()
            .map(|(p, _)| p)
            .chain(incoming.iter().map(|(p, _)| p))
            .any(|p| *p == me || p.index() >= self.n())
        {
            return self.guard(Err(MpcError::Usage("a private message to ourselves or to no party".into()))).await;
        }
        let r = self.net.round::<F>(Kind::ToOne, outgoing, incoming).await;
        self.guard(r).await
    }

    /// Secret-shares `owner`'s input vector of length `len` (`values` is `Some` at the owner
    /// only). The owner learns a random mask privately and broadcasts its input minus the mask.
    pub async fn input(&mut self, owner: PartyId, values: Option<&[F]>, len: usize) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            if owner.index() >= self.n() {
                return Err(MpcError::Usage(format!("no party {owner}")));
            }
            let mask = self.take_randoms(len).await?.into_shares();
            let opened = self.open_to_unverified(owner, &mask).await?;
            let masked: Vec<F> = match (opened, values) {
                (Some(r), Some(v)) if v.len() == len => v.iter().zip(&r).map(|(v, r)| *v - r).collect(),
                (Some(_), _) => return Err(MpcError::Usage(format!("the input owner must supply {len} values"))),
                (None, _) => vec![F::zero(); len],
            };
            let from_owner = self.net.broadcast_from(owner, &masked, len).await?;
            Ok(mask.add_public(&from_owner))
        }
        .await;
        self.guard(r).await
    }

    /// Broadcasts an opaque payload (e.g. shares of group elements) and returns every party's
    /// payload by index, ours included; a peer's payload over `max_len` bytes is refused before
    /// it is used. Digested for the agreement check like every broadcast.
    pub async fn broadcast_bytes(&mut self, payload: &[u8], max_len: usize) -> Result<Vec<Vec<u8>>> {
        self.ensure_live()?;
        let r = self.net.broadcast_bytes(payload, max_len).await;
        self.guard(r).await
    }

    /// Makes sure `count` fifth powers can follow without preprocessing rounds: the powers
    /// `r, ..., r⁵` of fresh shared random values, in three rounds for all of them.
    pub async fn prepare_pow5(&mut self, count: usize) -> Result<()> {
        self.ensure_live()?;
        let need = count.saturating_sub(self.powers[0].len());
        if need == 0 {
            return Ok(());
        }
        let r = async {
            let r = self.take_randoms(need).await?.into_shares();
            let r2 = self.mul(&r, &r).await?;
            let r3_r4 = self.mul(&Shares::concat(&[&r2, &r2]), &Shares::concat(&[&r, &r2])).await?;
            let (r3, r4) = (r3_r4.slice(0..need), r3_r4.slice(need..2 * need));
            let r5 = self.mul(&r4, &r).await?;
            for (pool, fresh) in self.powers.iter_mut().zip([r, r2, r3, r4, r5]) {
                *pool = Shares::concat(&[&*pool, &fresh]);
            }
            Ok(())
        }
        .await;
        self.guard(r).await
    }

    /// `x²`, `x⁴` and `x⁵` of each value in one round: `m = x + r` opens (uniform, since `r`
    /// is), and the powers of `x = m - r` are linear in the shared powers of `r` (binomial
    /// expansion). The powers of `r` come from verified multiplications, so a cheat there
    /// is caught before anything derived opens; the opening itself is checked for
    /// consistency like every opening.
    pub async fn pow5(&mut self, x: &Shares<F>) -> Result<[Shares<F>; 3]> {
        self.prepare_pow5(x.len()).await?;
        let r = async {
            let k = x.len();
            let mut taken: Vec<Shares<F>> = Vec::with_capacity(5);
            for pool in self.powers.iter_mut() {
                let len = pool.len();
                taken.push(pool.slice(0..k));
                *pool = pool.slice(k..len);
            }
            let [r1, r2, r3, r4, r5] = taken.as_slice() else {
                return Err(MpcError::Usage("power pool".into()));
            };
            let m = self.open_masked(&x.add(r1)).await?;
            let (r1, r2, r3, r4, r5) =
                (r1.expose_shares(), r2.expose_shares(), r3.expose_shares(), r4.expose_shares(), r5.expose_shares());
            let (c2, c4, c5) = (F::from(2u64), F::from(4u64), F::from(5u64));
            let (c6, c10) = (F::from(6u64), F::from(10u64));
            let (x2, (x4, x5)): (Vec<F>, (Vec<F>, Vec<F>)) = m
                .par_iter()
                .enumerate()
                .map(|(i, m1)| {
                    let at = |v: &[F]| v.get(i).copied().unwrap_or_default();
                    let (p1, p2, p3, p4, p5) = (at(r1), at(r2), at(r3), at(r4), at(r5));
                    let m2 = m1.square();
                    let m3 = m2 * m1;
                    let m4 = m2.square();
                    let x2 = m2 - c2 * m1 * p1 + p2;
                    let x4 = m4 - c4 * m3 * p1 + c6 * m2 * p2 - c4 * *m1 * p3 + p4;
                    let x5 = m4 * m1 - c5 * m4 * p1 + c10 * m3 * p2 - c10 * m2 * p3 + c5 * *m1 * p4 - p5;
                    (x2, (x4, x5))
                })
                .unzip();
            let (x2, x4, x5) = (Shares::from_raw(x2), Shares::from_raw(x4), Shares::from_raw(x5));
            Ok([x2, x4, x5])
        }
        .await;
        self.guard(r).await
    }

    /// Like [`Self::broadcast_bytes`], but only `senders` send and only they are waited on
    /// (a party that is not needed cannot stall the round); the others' slots stay empty.
    pub async fn broadcast_bytes_from(
        &mut self,
        senders: &[PartyId],
        payload: &[u8],
        max_len: usize,
    ) -> Result<Vec<Vec<u8>>> {
        self.ensure_live()?;
        let r = self.net.broadcast_bytes_from(senders, payload, max_len).await;
        self.guard(r).await
    }

    /// Records a failure detected by a protocol built on the engine: the session aborts and
    /// peers are told.
    pub async fn abort_with(&mut self, error: MpcError) -> MpcError {
        match self.guard::<()>(Err(error)).await {
            Err(e) => e,
            Ok(()) => MpcError::Aborted,
        }
    }

    // ----- multiplication -------------------------------------------------------------------

    /// Element-wise products, one network round for the whole batch (DN07 degree reduction
    /// with double sharings). In malicious mode every product joins the batched verification.
    pub async fn mul(&mut self, x: &Shares<F>, y: &Shares<F>) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            Self::same_len(x, y)?;
            let (xs, ys) = (x.expose_shares(), y.expose_shares());
            let local: Vec<F> = if xs.len() > PAR_CHUNK {
                xs.par_iter().zip(ys.par_iter()).map(|(a, b)| *a * b).collect()
            } else {
                xs.iter().zip(ys).map(|(a, b)| *a * b).collect()
            };
            let z = self.reduce_degree(local).await?;
            if self.malicious() {
                // Room for the verification's padding, so it does not reallocate.
                let room = xs.len() + xs.len() / 128 + 4096;
                for v in [&mut self.pending.x, &mut self.pending.y, &mut self.pending.z] {
                    if v.capacity() - v.len() < room {
                        v.reserve(room);
                    }
                }
                self.pending.x.extend_from_slice(xs);
                self.pending.y.extend_from_slice(ys);
                self.pending.z.extend_from_slice(z.expose_shares());
            }
            self.multiplications += xs.len() as u64;
            Ok(z)
        }
        .await;
        self.guard(r).await
    }

    /// Several inner products `<x_k, y_k>`, all reduced in one round.
    pub async fn inner_products(&mut self, pairs: &[(&Shares<F>, &Shares<F>)]) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            for (x, y) in pairs {
                Self::same_len(x, y)?;
            }
            let local: Vec<F> = pairs.iter().map(|(x, y)| par_dot(x.expose_shares(), y.expose_shares())).collect();
            let z = self.reduce_degree(local).await?;
            if self.malicious() {
                for ((x, y), z) in pairs.iter().zip(z.expose_shares()) {
                    self.pending.inner.push((x.expose_shares().to_vec(), y.expose_shares().to_vec(), *z));
                }
            }
            self.multiplications += pairs.iter().map(|(x, _)| x.len() as u64).sum::<u64>();
            Ok(z)
        }
        .await;
        self.guard(r).await
    }

    /// Turns degree-`2t` shares into degree-`t` shares of the same values (DN07): open
    /// `v - r` under degree `2t`, add `[r]_t`. Small batches open all-to-all in one round;
    /// large ones send each block to a "king" that reconstructs and returns it, which moves a
    /// third fewer bytes and does a third of the interpolation work, at one more flight.
    pub(crate) async fn reduce_degree(&mut self, mut local: Vec<F>) -> Result<Shares<F>> {
        let len = local.len();
        let doubles = self.take_doubles(len).await?;
        sub_assign(&mut local, &doubles.r_2t);
        if let (Some(e), Some(first)) = (self.product_error.take(), local.first_mut()) {
            *first += e;
        }
        let mut opened = if len >= KING_THRESHOLD && self.n() > 1 {
            self.open_degree_2t_via_kings(&local).await?
        } else {
            let by_party = self.net.broadcast(&local).await?;
            self.reconstruct(&by_party, 2 * self.t())?
        };
        use zeroize::Zeroize;
        local.zeroize();
        add_assign(&mut opened, &doubles.r_t);
        Ok(Shares::from_raw(opened))
    }

    /// Block `j` of a batch of `len` (contiguous, sizes differ by at most one).
    fn king_block(&self, len: usize, j: usize) -> std::ops::Range<usize> {
        let n = self.n();
        let (base, extra) = (len / n, len % n);
        let start = j * base + j.min(extra);
        start..start + base + usize::from(j < extra)
    }

    /// Opens degree-`2t` sharings: party `j` reconstructs block `j` from everyone's shares
    /// (checked when there is redundancy) and broadcasts it; the kings' broadcasts are
    /// digested like every other broadcast.
    async fn open_degree_2t_via_kings(&mut self, local: &[F]) -> Result<Vec<F>> {
        let n = self.n();
        let me = self.id();
        let blocks: Vec<std::ops::Range<usize>> = (0..n).map(|j| self.king_block(local.len(), j)).collect();
        let mine = blocks.get(me.index()).cloned().unwrap_or(0..0);
        let outgoing: Vec<(PartyId, &[F])> = self
            .net
            .peers()
            .map(|p| (p, local.get(blocks.get(p.index()).cloned().unwrap_or(0..0)).unwrap_or_default()))
            .collect();
        let incoming: Vec<(PartyId, usize)> = self.net.peers().map(|p| (p, mine.len())).collect();
        let received = self.net.round(Kind::ToOne, &outgoing, &incoming).await?;
        let mut by_party: Vec<Vec<F>> = vec![Vec::new(); n];
        if let Some(slot) = by_party.get_mut(me.index()) {
            *slot = local.get(mine.clone()).unwrap_or_default().to_vec();
        }
        for (p, v) in received {
            if let Some(slot) = by_party.get_mut(p.index()) {
                *slot = v;
            }
        }
        let my_block = self.reconstruct(&by_party, 2 * self.t())?;
        drop(by_party);
        let lens: Vec<usize> = blocks.iter().map(|b| b.len()).collect();
        let all = self.net.broadcast_lens(&my_block, &lens).await?;
        Ok(all.into_iter().flatten().collect())
    }

    /// Beaver multiplication with caller-provided triples (consumed).
    pub async fn mul_beaver(&mut self, x: &Shares<F>, y: &Shares<F>, triples: BeaverTriples<F>) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = async {
            Self::same_len(x, y)?;
            if triples.len() != x.len() {
                return Err(MpcError::Usage(format!("{} triples for {} products", triples.len(), x.len())));
            }
            let mut triples = triples;
            let a = Shares::from_raw(std::mem::take(&mut triples.a));
            let b = Shares::from_raw(std::mem::take(&mut triples.b));
            let c = Shares::from_raw(std::mem::take(&mut triples.c));
            let d_e = Shares::concat(&[&x.sub(&a), &y.sub(&b)]);
            let opened = self.open_masked(&d_e).await?;
            let (d, e) = opened.split_at(x.len());
            let de: Vec<F> = d.iter().zip(e).map(|(d, e)| *d * e).collect();
            let z = c.add(&b.mul_public(d)).add(&a.mul_public(e)).add_public(&de);
            self.multiplications += x.len() as u64;
            Ok(z)
        }
        .await;
        self.guard(r).await
    }

    // ----- preprocessing pools --------------------------------------------------------------

    /// Fills the pools ahead of the online phase. In malicious mode the material is verified
    /// here (with anything else pending), so the online phase only verifies its own work.
    pub async fn preprocess(&mut self, doubles: usize, randoms: usize, bits: usize) -> Result<()> {
        self.ensure_live()?;
        let r = async {
            if self.doubles.len() < doubles {
                let more = self.generate_doubles(doubles - self.doubles.len()).await?;
                self.doubles.append(more);
            }
            if self.randoms.len() < randoms {
                let more = self.generate_randoms(randoms - self.randoms.len()).await?;
                self.randoms.append(more);
            }
            if self.bits.len() < bits {
                let more = self.generate_bits(bits - self.bits.len()).await?;
                self.bits.append(more);
            }
            self.verify().await
        }
        .await;
        self.guard(r).await
    }

    /// Takes `count` random sharings from the pool, generating more if it runs short.
    pub async fn take_randoms(&mut self, count: usize) -> Result<RandomShares<F>> {
        if self.randoms.len() < count {
            let more = self.generate_randoms((count - self.randoms.len()).max(MIN_PREP_BATCH)).await?;
            self.meter_generated(crate::pooled::PrepKind::Randoms, more.len());
            self.randoms.append(more);
        }
        self.meter_taken(crate::pooled::PrepKind::Randoms, count);
        self.randoms.take(count).ok_or_else(|| MpcError::Usage("random pool short".into()))
    }

    pub(crate) async fn take_doubles(&mut self, count: usize) -> Result<DoubleShares<F>> {
        if self.doubles.len() < count {
            let more = self.generate_doubles((count - self.doubles.len()).max(MIN_PREP_BATCH)).await?;
            self.meter_generated(crate::pooled::PrepKind::Doubles, more.len());
            self.doubles.append(more);
        }
        self.meter_taken(crate::pooled::PrepKind::Doubles, count);
        self.doubles.take(count).ok_or_else(|| MpcError::Usage("double-sharing pool short".into()))
    }

    /// Takes `count` shared random bits, generating more if the pool runs short.
    pub async fn take_bits(&mut self, count: usize) -> Result<RandomBits<F>> {
        if self.bits.len() < count {
            let more = self.generate_bits((count - self.bits.len()).max(MIN_PREP_BATCH)).await?;
            self.meter_generated(crate::pooled::PrepKind::Bits, more.len());
            self.bits.append(more);
        }
        self.meter_taken(crate::pooled::PrepKind::Bits, count);
        self.bits.take(count).ok_or_else(|| MpcError::Usage("bit pool short".into()))
    }

    /// `count` random degree-`2t` sharings of zero (`[r]_2t - [r]_t` of double sharings), to
    /// re-randomise degree-`2t` shares before they are opened.
    pub async fn zero_sharings_2t(&mut self, count: usize) -> Result<Shares<F>> {
        self.ensure_live()?;
        let r = self.take_doubles(count).await;
        let doubles = self.guard(r).await?;
        let mut zeros = doubles.r_2t.clone();
        sub_assign(&mut zeros, &doubles.r_t);
        Ok(Shares::from_raw(zeros))
    }

    /// Generates `count` Beaver triples: random `a`, `b` and `c = a*b` by one batched
    /// multiplication (verified with everything else in malicious mode).
    pub async fn triples(&mut self, count: usize) -> Result<BeaverTriples<F>> {
        self.ensure_live()?;
        let r = async {
            let a = self.take_randoms(count).await?.into_shares();
            let b = self.take_randoms(count).await?.into_shares();
            let c = self.mul(&a, &b).await?;
            Ok(BeaverTriples { a: a.into_exposed(), b: b.into_exposed(), c: c.into_exposed() })
        }
        .await;
        self.guard(r).await
    }

    /// Takes `count` triples from the session's triple pool, generating more when short.
    pub async fn take_triples(&mut self, count: usize) -> Result<BeaverTriples<F>> {
        if self.triples.len() < count {
            let more = self.triples((count - self.triples.len()).max(MIN_PREP_BATCH)).await?;
            self.triples.append(more);
        }
        self.triples.take(count).ok_or_else(|| MpcError::Usage("triple pool short".into()))
    }

    /// Seeds for `chunks` parallel generators, drawn from the session RNG.
    pub(crate) fn chunk_rngs(&mut self, chunks: usize) -> Vec<ChaCha8Rng> {
        (0..chunks)
            .map(|_| {
                let mut seed = [0u8; 32];
                self.rng.fill_bytes(&mut seed);
                ChaCha8Rng::from_seed(seed)
            })
            .collect()
    }

    // ----- coins ----------------------------------------------------------------------------

    /// A uniformly random public field element no coalition of `t` can predict or bias.
    pub async fn coin(&mut self) -> Result<F> {
        let r = self.take_randoms(1).await?.into_shares();
        let v = self.open_masked(&r).await?;
        v.first().copied().ok_or_else(|| MpcError::Usage("empty coin".into()))
    }

    /// `F::ONE / 2`.
    pub(crate) fn half() -> F {
        F::from(2u64).inverse().unwrap_or_default()
    }
}

pub(crate) fn sub_assign<F: WireField>(a: &mut [F], b: &[F]) {
    if a.len() > PAR_CHUNK {
        a.par_iter_mut().zip(b.par_iter()).for_each(|(x, y)| *x -= y);
    } else {
        a.iter_mut().zip(b).for_each(|(x, y)| *x -= y);
    }
}

/// `a += b` element-wise (in parallel above a chunk).
pub fn add_assign<F: WireField>(a: &mut [F], b: &[F]) {
    if a.len() > PAR_CHUNK {
        a.par_iter_mut().zip(b.par_iter()).for_each(|(x, y)| *x += y);
    } else {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }
}

pub(crate) fn par_dot<F: WireField>(a: &[F], b: &[F]) -> F {
    if a.len() > PAR_CHUNK {
        a.par_chunks(PAR_CHUNK)
            .zip(b.par_chunks(PAR_CHUNK))
            .map(|(x, y)| x.iter().zip(y).fold(F::zero(), |acc, (p, q)| acc + *p * q))
            .sum()
    } else {
        a.iter().zip(b).fold(F::zero(), |acc, (p, q)| acc + *p * q)
    }
}

/// Runs CPU-heavy work (seconds of MSMs or FFTs) from inside a session. On a multi-threaded
/// tokio runtime the worker hands its other tasks (QUIC drivers, keep-alives, other
/// parties in the same process) to another thread first, so a long computation cannot
/// starve the connections into an idle timeout; elsewhere it just runs `work`.
pub fn heavy<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
