//! The collaborative Groth16 prover: the parties prove over a secret-shared witness.
//!
//! Every step of [`crate::qap`] is linear in the assignment except the pointwise product on
//! the coset, which is one batched, verified multiplication (or, in [`ProductMode::Local`],
//! each party's local product of its shares, a degree-`2t` sharing that only feeds the linear
//! `h` MSM). The parties open just four group elements: `A`, `B1` (G1) from every party's
//! degree-`t` shares, checked for consistency (`n >= t + 2`) before anything depends on them,
//! then `B` (G2) and `C` from the first `t + 1` (resp. `deg C + 1`) parties only; the proof
//! itself checks those, and only if it fails do the other parties compute and send their
//! shares, to name the sender. In an honest run the parties outside the reconstructing sets
//! skip the G2 MSM, the `h` and witness MSMs of `C` and three of seven FFTs. The blinders
//! `r`, `s` are shared random values and `rs` one verified multiplication. A constant number
//! of rounds whatever the circuit size.
//!
//! An inconsistency aborts at once; the sender is named when the proof can serve as the
//! oracle (degree-`t` `C`) or error correction can single it out (`n >= 3t + 1`). The proof
//! is verified before it is returned: the run never returns an invalid proof.

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::{CurveGroup, PrimeGroup};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use tacit_mpc_engine::engine::heavy;
use tacit_mpc_engine::shamir::{lagrange_coefficients, subsets};
use tacit_mpc_engine::{Check, Culprit, Engine, MpcError, PartyId, Shares, Transport};

use crate::committed::{self, CommitmentKey, CommittedKeys, CommittedProof, GroupCommitment};
use crate::qap::{
    abc_evaluations, h_from_coset_product, msm_a, msm_b_g1, msm_b_g2, msm_c_parts, to_coset_evaluations, QapError,
    R1csMatrices,
};

/// Collaborative proving failures.
#[derive(Debug, thiserror::Error)]
pub enum CollaborativeError {
    /// The engine failed or detected a cheat (the error names the culprit where it can).
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// The circuit, key and assignment do not fit together.
    #[error(transparent)]
    Qap(#[from] QapError),
}

/// Result of collaborative proving.
pub type Result<T, E = CollaborativeError> = std::result::Result<T, E>;

/// Bytes of one party's shares of `A`, `B`, `B1` (compressed points).
const ABB_BYTES: usize = 32 + 64 + 32;
/// Bytes of one party's share of `C`.
const C_BYTES: usize = 32;

/// How the one non-linear step, the pointwise product on the coset, is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductMode {
    /// One batched, verified multiplication: every opened element has degree-`t` shares, so
    /// with `n >= t + 2` a wrong share is both detected and its sender named (the proof
    /// itself is the oracle that tells a right reconstruction from a wrong one).
    #[default]
    Batched,
    /// Each party multiplies its own shares: no communication, but `C` then has degree-`2t`
    /// shares, so a wrong `C` share is only named when `n >= 2t + 2` gives redundancy
    /// (error correction from `n >= 4t + 1`); otherwise the run aborts unattributed.
    Local,
}

/// Proves over a shared witness. Every party calls this with the same key, matrices and
/// public `instance` (`[public inputs...]`, without the leading one) and its own shares of
/// the witness, in the order the R1cs backend allocated it.
pub async fn prove<T: Transport>(
    engine: &mut Engine<Fr, T>,
    pk: &ProvingKey<Bn254>,
    pvk: &PreparedVerifyingKey<Bn254>,
    matrices: &R1csMatrices,
    instance: &[Fr],
    witness: &Shares<Fr>,
) -> Result<Proof<Bn254>> {
    prove_with(engine, pk, pvk, matrices, instance, witness, ProductMode::default()).await
}

/// [`prove`] with a chosen [`ProductMode`].
///
/// Work is split by need: `A` and `B1` feed every honest party's `C` share, so all parties
/// compute and open them, and their redundancy is checked before any `C` share leaves. `B`
/// (the G2 MSM) and `C` (the `h` and witness MSMs) are only reconstructed, from the first
/// `t + 1` (resp. `deg C + 1`) parties; a wrong share there only makes the proof fail, and
/// only then do the other parties compute and send theirs, to name the sender. In an honest
/// run the remaining parties skip their largest MSMs and three of their seven FFTs.
pub async fn prove_with<T: Transport>(
    engine: &mut Engine<Fr, T>,
    pk: &ProvingKey<Bn254>,
    pvk: &PreparedVerifyingKey<Bn254>,
    matrices: &R1csMatrices,
    instance: &[Fr],
    witness: &Shares<Fr>,
    mode: ProductMode,
) -> Result<Proof<Bn254>> {
    let oracle = |proof: &Proof<Bn254>| verifies(pvk, instance, proof);
    prove_core(engine, pk, matrices, instance, witness, mode, &oracle).await
}

/// The collaborative prover for any verifier: `instance` is this party's shares of the
/// instance part (public values are their own shares), and `oracle` tells a verifying proof.
async fn prove_core<T: Transport>(
    engine: &mut Engine<Fr, T>,
    pk: &ProvingKey<Bn254>,
    matrices: &R1csMatrices,
    instance: &[Fr],
    witness: &Shares<Fr>,
    mode: ProductMode,
    oracle: &(dyn Fn(&Proof<Bn254>) -> bool + Sync),
) -> Result<Proof<Bn254>> {
    matrices.check_proving_key(pk)?;
    // z = [1, instance, witness]: public parts are their own shares (constant polynomials).
    let mut z = Vec::with_capacity(1 + instance.len() + witness.len());
    z.push(Fr::from(1u64));
    z.extend_from_slice(instance);
    z.extend_from_slice(witness.expose_shares());
    let (t, n, me) = (engine.t(), engine.n(), engine.id().index());
    let c_degree = match mode {
        ProductMode::Batched => t,
        ProductMode::Local => 2 * t,
    }
    .min(n.saturating_sub(1));
    let (b_senders, c_senders) = (t + 1, c_degree + 1);

    let domain = matrices.domain()?;
    let (a, b, c) = heavy(|| -> Result<_> {
        let (a, b, c) = abc_evaluations(matrices, &z)?;
        Ok((to_coset_evaluations(&domain, a)?, to_coset_evaluations(&domain, b)?, c))
    })?;
    let product = match mode {
        ProductMode::Local => {
            use rayon::prelude::*;
            a.par_iter().zip(b.par_iter()).map(|(a, b)| *a * b).collect()
        }
        ProductMode::Batched => engine.mul(&Shares::from_raw(a), &Shares::from_raw(b)).await?.into_exposed(),
    };

    let blinders = engine.take_randoms(2).await?.into_shares();
    let (r, s) = (blinders.slice(0..1), blinders.slice(1..2));
    let rs = engine.mul(&r, &s).await?;
    let (r, s, rs) = (first(&r), first(&s), first(&rs));
    // A degree-2t sharing of zero hides the structure of locally multiplied shares.
    let zero_2t = match mode {
        ProductMode::Local => first(&engine.zero_sharings_2t(1).await?),
        ProductMode::Batched => Fr::from(0u64),
    };
    let mut mine =
        OwnShares { pk, z: &z, domain: &domain, deferred: Some((product, c)), s, rs, zero_2t, b: None, c_base: None };
    let (a_share, b1_share) = heavy(|| -> Result<_> { Ok((msm_a(pk, &z, r)?, msm_b_g1(pk, &z, s)?)) })?;

    // Nothing opens before every multiplication so far is verified.
    engine.verify().await?;

    let mut payload = Vec::with_capacity(ABB_BYTES);
    serialize_into(&a_share.into_affine(), &mut payload);
    serialize_into(&b1_share.into_affine(), &mut payload);
    if me < b_senders {
        serialize_into(&mine.b()?.into_affine(), &mut payload);
    }
    let all = engine.broadcast_bytes(&payload, ABB_BYTES).await?;
    // Everyone must have received the same shares before deciding how to go on, or an
    // equivocating party could split the honest parties between paths.
    engine.verify().await?;
    let a_shares = decode_shares::<G1Projective>(&all, 0..32)?;
    let b1_shares = decode_shares::<G1Projective>(&all, 32..64)?;
    let b_first = decode_optional::<G2Projective>(&all, 64, b_senders)?;
    let consistent =
        off_polynomial(&a_shares, &prefix(t + 1)).is_empty() && off_polynomial(&b1_shares, &prefix(t + 1)).is_empty();
    if !consistent {
        // Some A/B1 share is off: complete B from everyone, then name the sender.
        let b_shares = complete(engine, &b_first, me, mine.b_if(me >= b_senders)?, 64).await?;
        let abb = Abb { a: &a_shares, b: &b_shares, b1: &b1_shares };
        let culprit = if c_degree == t {
            blame_abb(engine, &abb, t, oracle, mine.c_base()?, r, s).await?
        } else {
            correctable(&abb, t)
        };
        return Err(engine.abort_with(MpcError::Cheating { check: Check::OpeningConsistency, culprit }).await.into());
    }
    let a_open = reconstruct(&a_shares, &prefix(t + 1));
    let b1_open = reconstruct(&b1_shares, &prefix(t + 1));
    let b_open = reconstruct(&b_first, &prefix(b_senders));

    let c_share = |c_base: G1Projective| c_base + a_open * s + b1_open * r;
    let mut payload = Vec::with_capacity(C_BYTES);
    if me < c_senders {
        serialize_into(&c_share(mine.c_base()?).into_affine(), &mut payload);
    }
    let all = engine.broadcast_bytes(&payload, C_BYTES).await?;
    let c_first = decode_optional::<G1Projective>(&all, 0, c_senders)?;
    let proof = Proof {
        a: a_open.into_affine(),
        b: b_open.into_affine(),
        c: reconstruct(&c_first, &prefix(c_senders)).into_affine(),
    };
    if oracle(&proof) {
        return Ok(proof);
    }

    // A B or C share is off: the other parties now send theirs (only they are waited on, so
    // a cheater that left cannot stall this), and a set of parties whose shares give a
    // verifying proof names whoever is off its polynomials.
    let own_c = if me >= c_senders { Some(c_share(mine.c_base()?)) } else { None };
    let b_shares = complete(engine, &b_first, me, mine.b_if(me >= b_senders)?, 64).await?;
    let c_shares = complete(engine, &c_first, me, own_c, C_BYTES).await?;
    let mut culprit = Culprit::Unknown;
    if n > c_senders {
        for set in subsets(n, c_senders) {
            let b_set = set.get(..b_senders).unwrap_or(&set);
            let candidate = Proof {
                a: proof.a,
                b: reconstruct(&b_shares, b_set).into_affine(),
                c: reconstruct(&c_shares, &set).into_affine(),
            };
            if oracle(&candidate) {
                let mut bad = [off_polynomial(&b_shares, b_set), off_polynomial(&c_shares, &set)].concat();
                bad.sort_unstable();
                bad.dedup();
                culprit = named(bad);
                break;
            }
        }
    }
    let check = if matches!(culprit, Culprit::Unknown) { Check::OutputVerification } else { Check::OpeningConsistency };
    Err(engine.abort_with(MpcError::Cheating { check, culprit }).await.into())
}

/// This party's own `B` share and linear part of `C`, computed when first needed: the
/// parties outside the reconstructing sets only compute them to name a cheater.
struct OwnShares<'a> {
    pk: &'a ProvingKey<Bn254>,
    z: &'a [Fr],
    domain: &'a crate::qap::Domain,
    /// The coset product `a·b` (shares) and the `c` evaluations, until `h` is needed.
    deferred: Option<(Vec<Fr>, Vec<Fr>)>,
    s: Fr,
    rs: Fr,
    zero_2t: Fr,
    b: Option<G2Projective>,
    c_base: Option<G1Projective>,
}

impl OwnShares<'_> {
    fn b(&mut self) -> Result<G2Projective> {
        if let Some(b) = self.b {
            return Ok(b);
        }
        let b = heavy(|| msm_b_g2(self.pk, self.z, self.s))?;
        self.b = Some(b);
        Ok(b)
    }

    fn b_if(&mut self, wanted: bool) -> Result<Option<G2Projective>> {
        if wanted {
            self.b().map(Some)
        } else {
            Ok(None)
        }
    }

    /// `Σ witness·l_query + Σ h·h_query − rs·delta` (plus the zero sharing in local mode).
    fn c_base(&mut self) -> Result<G1Projective> {
        if let Some(c) = self.c_base {
            return Ok(c);
        }
        let (product, c) = self.deferred.take().ok_or(QapError::LengthMismatch { what: "h", expected: 1, got: 0 })?;
        let c_base = heavy(|| -> Result<_> {
            let c = to_coset_evaluations(self.domain, c)?;
            let h = h_from_coset_product(self.domain, sub_in_place(product, &c))?;
            drop(c);
            Ok(msm_c_parts(self.pk, self.z, &h)?)
        })? - self.pk.delta_g1 * self.rs
            + G1Projective::generator() * self.zero_2t;
        self.c_base = Some(c_base);
        Ok(c_base)
    }
}

fn sub_in_place(mut x: Vec<Fr>, y: &[Fr]) -> Vec<Fr> {
    use rayon::prelude::*;
    x.par_iter_mut().zip(y.par_iter()).for_each(|(x, y)| *x -= y);
    x
}

/// One round in which the parties that did not send a share of some element (those from
/// `first.len()` on) send it, and only they are waited on: all shares, by party index.
async fn complete<T: Transport, P: CurveGroup>(
    engine: &mut Engine<Fr, T>,
    first: &[P],
    me: usize,
    own: Option<P>,
    size: usize,
) -> Result<Vec<P>> {
    let mut payload = Vec::with_capacity(size);
    if let (true, Some(own)) = (me >= first.len(), own) {
        serialize_into(&own.into_affine(), &mut payload);
    }
    let senders: Vec<PartyId> = (first.len()..engine.n()).filter_map(PartyId::from_index).collect();
    let all = engine.broadcast_bytes_from(&senders, &payload, size).await?;
    let mut shares = first.to_vec();
    for (i, bytes) in all.iter().enumerate() {
        let peer = PartyId::from_index(i).ok_or(MpcError::Usage("party index".into()))?;
        if i >= first.len() {
            shares.push(decode(bytes, peer)?);
        } else if !bytes.is_empty() {
            return Err(MpcError::Protocol { peer, reason: "a share it was not asked for".into() }.into());
        }
    }
    Ok(shares)
}

/// The opened shares of `A`, `B` and `B1`.
struct Abb<'a> {
    a: &'a [G1Projective],
    b: &'a [G2Projective],
    b1: &'a [G1Projective],
}

impl Abb<'_> {
    fn a_bad(&self, set: &[usize]) -> Vec<usize> {
        off_polynomial(self.a, set)
    }
    fn b_bad(&self, set: &[usize]) -> Vec<usize> {
        off_polynomial(self.b, set)
    }
    fn b1_bad(&self, set: &[usize]) -> Vec<usize> {
        off_polynomial(self.b1, set)
    }
    /// Parties off the polynomials through `set`, for any of the three.
    fn bad(&self, set: &[usize]) -> Vec<usize> {
        let mut all: Vec<usize> = [self.a_bad(set), self.b_bad(set), self.b1_bad(set)].concat();
        all.sort_unstable();
        all.dedup();
        all
    }
}

fn named(bad: Vec<usize>) -> Culprit {
    let parties: Vec<PartyId> = bad.into_iter().filter_map(PartyId::from_index).collect();
    match parties.as_slice() {
        [] => Culprit::Unknown,
        [one] => Culprit::Party(*one),
        _ => Culprit::OneOf(parties),
    }
}

/// Without a usable oracle: name by error correction where `n >= 3t + 1` allows it.
fn correctable(abb: &Abb<'_>, t: usize) -> Culprit {
    let n = abb.a.len();
    if n > 3 * t {
        for set in subsets(n, t + 1) {
            let bad = abb.bad(&set);
            if bad.len() <= t {
                return named(bad);
            }
        }
    }
    Culprit::Unknown
}

/// One extra round after inconsistent `A`/`B`/`B1` shares (degree-`t` `C` only): every party
/// sends its `C` share for the reconstruction from each candidate set of `t + 1` parties; a
/// set of honest parties yields a verifying proof from its own shares alone, and whoever is
/// off that set's polynomials is named.
#[allow(clippy::too_many_arguments)]
async fn blame_abb<T: Transport>(
    engine: &mut Engine<Fr, T>,
    abb: &Abb<'_>,
    t: usize,
    oracle: &(dyn Fn(&Proof<Bn254>) -> bool + Sync),
    c_base: G1Projective,
    r: Fr,
    s: Fr,
) -> Result<Culprit> {
    let n = abb.a.len();
    let sets = subsets(n, t + 1);
    let candidates: Vec<(G1Projective, G2Projective, G1Projective)> =
        sets.iter().map(|set| (reconstruct(abb.a, set), reconstruct(abb.b, set), reconstruct(abb.b1, set))).collect();
    let mut payload = Vec::with_capacity(C_BYTES * sets.len());
    for (a, _, b1) in &candidates {
        serialize_into(&(c_base + *a * s + *b1 * r).into_affine(), &mut payload);
    }
    let all = engine.broadcast_bytes(&payload, C_BYTES * sets.len()).await?;
    for (k, (set, (a, b, _))) in sets.iter().zip(&candidates).enumerate() {
        // A malformed candidate share only disqualifies sets containing its sender.
        let c_shares: Vec<G1Projective> = all
            .iter()
            .zip(PartyId::all(all.len()))
            .map(|(bytes, peer)| {
                decode(bytes.get(k * C_BYTES..(k + 1) * C_BYTES).unwrap_or_default(), peer).unwrap_or_default()
            })
            .collect();
        let c = reconstruct(&c_shares, set);
        let proof = Proof { a: a.into_affine(), b: b.into_affine(), c: c.into_affine() };
        if oracle(&proof) {
            return Ok(named(abb.bad(set)));
        }
    }
    Ok(Culprit::Unknown)
}

fn first(v: &Shares<Fr>) -> Fr {
    v.expose_shares().first().copied().unwrap_or_default()
}

fn prefix(k: usize) -> Vec<usize> {
    (0..k).collect()
}

fn serialize_into<P: CanonicalSerialize>(p: &P, out: &mut Vec<u8>) {
    // Serialising a valid point into a Vec cannot fail.
    let _ = p.serialize_with_mode(&mut *out, Compress::Yes);
}

/// The group element at `offset` of the payloads of the first `senders` parties, each of
/// which must end there; the other parties' payloads must end before `offset`.
fn decode_optional<P: CurveGroup>(all: &[Vec<u8>], offset: usize, senders: usize) -> Result<Vec<P>, MpcError> {
    let mut out = Vec::with_capacity(senders);
    for (i, bytes) in all.iter().enumerate() {
        let peer = PartyId::from_index(i).ok_or(MpcError::Usage("party index".into()))?;
        if i < senders {
            out.push(decode(bytes.get(offset..).unwrap_or_default(), peer)?);
        } else if bytes.len() > offset {
            return Err(MpcError::Protocol { peer, reason: "a share it was not asked for".into() });
        }
    }
    Ok(out)
}

/// Each party's group element at `range` of its payload (payloads by party index).
fn decode_shares<P: CurveGroup>(all: &[Vec<u8>], range: std::ops::Range<usize>) -> Result<Vec<P>, MpcError> {
    all.iter()
        .enumerate()
        .map(|(i, bytes)| {
            let peer = PartyId::from_index(i).ok_or(MpcError::Usage("party index".into()))?;
            decode(bytes.get(range.clone()).unwrap_or_default(), peer)
        })
        .collect()
}

fn decode<P: CurveGroup>(bytes: &[u8], peer: PartyId) -> Result<P, MpcError> {
    let mut reader = bytes;
    let point = P::Affine::deserialize_with_mode(&mut reader, Compress::Yes, Validate::Yes)
        .map_err(|e| MpcError::Protocol { peer, reason: format!("invalid group element share: {e}") })?;
    if !reader.is_empty() {
        return Err(MpcError::Protocol { peer, reason: "trailing bytes after a group element share".into() });
    }
    Ok(point.into())
}

/// `sum lambda_j P_j` over the parties at `indices` (zero-based), Lagrange at zero.
fn reconstruct<P: CurveGroup<ScalarField = Fr>>(shares: &[P], indices: &[usize]) -> P {
    let xs: Vec<Fr> = indices.iter().map(|i| Fr::from(*i as u64 + 1)).collect();
    let lambda = lagrange_coefficients(&xs, Fr::from(0u64));
    indices.iter().zip(lambda).fold(P::zero(), |acc, (i, l)| acc + shares.get(*i).copied().unwrap_or_default() * l)
}

fn verifies(pvk: &PreparedVerifyingKey<Bn254>, instance: &[Fr], proof: &Proof<Bn254>) -> bool {
    Groth16::<Bn254>::verify_proof(pvk, proof, instance).unwrap_or(false)
}

/// Parties (zero-based) outside `set` whose share is not on the degree-`|set| - 1`
/// polynomial (in the exponent) through the shares of `set`.
fn off_polynomial<P: CurveGroup<ScalarField = Fr>>(shares: &[P], set: &[usize]) -> Vec<usize> {
    let xs: Vec<Fr> = set.iter().map(|i| Fr::from(*i as u64 + 1)).collect();
    (0..shares.len())
        .filter(|j| !set.contains(j))
        .filter(|j| {
            let coeffs = lagrange_coefficients(&xs, Fr::from(*j as u64 + 1));
            let predicted = set
                .iter()
                .zip(coeffs)
                .fold(P::zero(), |acc, (i, l)| acc + shares.get(*i).copied().unwrap_or_default() * l);
            shares.get(*j) != Some(&predicted)
        })
        .collect()
}

/// Each group's commitment and knowledge proof computed on this party's shares of the
/// instance part `[1, instance...]`, exchanged and opened ([`open_group_commitments`]).
pub async fn open_commitments<T: Transport>(
    engine: &mut Engine<Fr, T>,
    keys: &CommittedKeys,
    instance_with_one: &[Fr],
) -> Result<Vec<GroupCommitment>> {
    let mut groups = Vec::with_capacity(keys.layout.groups().len());
    for (g, key) in keys.commitment_keys.iter().enumerate() {
        let values = keys.layout.group_values(g, instance_with_one).map_err(|e| QapError::KeyShape(e.to_string()))?;
        groups.push((key, values));
    }
    open_group_commitments(engine, &groups).await
}

/// Commitments to shared groups of values, each with its commitment key, computed on this
/// party's shares, exchanged and opened: every party's shares must lie on one degree-`t`
/// polynomial (checked with `n >= t + 2`; the sender named where error correction allows,
/// `n >= 3t + 1`), so no party can bend a commitment (nor the challenge hashed from it).
/// Every pending multiplication is verified first.
pub async fn open_group_commitments<T: Transport>(
    engine: &mut Engine<Fr, T>,
    groups: &[(&CommitmentKey, &[Fr])],
) -> Result<Vec<GroupCommitment>> {
    let mine = heavy(|| groups.iter().map(|(key, values)| key.commit(values)).collect::<Result<Vec<_>, _>>())
        .map_err(|e| QapError::KeyShape(e.to_string()))?;
    let width = 64 * mine.len();
    let mut payload = Vec::with_capacity(width);
    for group in &mine {
        serialize_into(&group.commitment, &mut payload);
        serialize_into(&group.knowledge, &mut payload);
    }
    engine.verify().await?;
    let all = engine.broadcast_bytes(&payload, width).await?;
    let t = engine.t();
    let mut opened = Vec::with_capacity(mine.len());
    let mut bad = Vec::new();
    let mut columns = Vec::with_capacity(2 * mine.len());
    for g in 0..mine.len() {
        let d = decode_shares::<G1Projective>(&all, 64 * g..64 * g + 32)?;
        let p = decode_shares::<G1Projective>(&all, 64 * g + 32..64 * g + 64)?;
        bad.extend(off_polynomial(&d, &prefix(t + 1)));
        bad.extend(off_polynomial(&p, &prefix(t + 1)));
        opened.push(GroupCommitment {
            commitment: reconstruct(&d, &prefix(t + 1)).into_affine(),
            knowledge: reconstruct(&p, &prefix(t + 1)).into_affine(),
        });
        columns.push(d);
        columns.push(p);
    }
    if !bad.is_empty() {
        let culprit = correct_columns(&columns, t);
        return Err(engine.abort_with(MpcError::Cheating { check: Check::OpeningConsistency, culprit }).await.into());
    }
    Ok(opened)
}

/// Names the parties off the polynomials of a set of `t + 1` parties that explains all but
/// at most `t` shares of every column (`n >= 3t + 1`), else no one.
fn correct_columns(columns: &[Vec<G1Projective>], t: usize) -> Culprit {
    let n = columns.first().map_or(0, Vec::len);
    if n > 3 * t {
        for set in subsets(n, t + 1) {
            let mut bad: Vec<usize> = columns.iter().flat_map(|c| off_polynomial(c, &set)).collect();
            bad.sort_unstable();
            bad.dedup();
            if bad.len() <= t {
                return named(bad);
            }
        }
    }
    Culprit::Unknown
}

/// The challenge for a shared `[1, instance...]`: [`open_commitments`], then the hash of
/// the public inputs (public values, the same at every party) and the opened commitments.
/// Returns the opened commitments too, for [`prove_committed_with`].
pub async fn commitment_challenge<T: Transport>(
    engine: &mut Engine<Fr, T>,
    keys: &CommittedKeys,
    instance_with_one: &[Fr],
) -> Result<(Fr, Vec<GroupCommitment>)> {
    let groups = open_commitments(engine, keys, instance_with_one).await?;
    let (_, challenge) = public_and_challenge(keys, instance_with_one, &groups)?;
    Ok((challenge, groups))
}

/// `[1, instance...]`; the instance holds this party's shares of committed values, so the
/// copy is wiped on drop.
fn with_one(instance: &[Fr]) -> zeroize::Zeroizing<Vec<Fr>> {
    zeroize::Zeroizing::new(std::iter::once(Fr::from(1u64)).chain(instance.iter().copied()).collect())
}

/// The public inputs of `[1, instance...]` and the challenge they and the opened `groups`
/// give (as the verifier derives it).
fn public_and_challenge(
    keys: &CommittedKeys,
    instance_with_one: &[Fr],
    groups: &[GroupCommitment],
) -> Result<(Vec<Fr>, Fr)> {
    let public = keys.layout.public_inputs(instance_with_one).map_err(|e| QapError::KeyShape(e.to_string()))?;
    let ds: Vec<_> = groups.iter().map(|g| g.commitment).collect();
    let challenge = committed::challenge(&public, &ds);
    Ok((public, challenge))
}

/// The collaborative prover for a circuit with committed groups: opens the groups'
/// commitments, then [`prove_committed_with`]. `instance` is this party's shares of the
/// instance part (without the one).
pub async fn prove_committed<T: Transport>(
    engine: &mut Engine<Fr, T>,
    keys: &CommittedKeys,
    matrices: &R1csMatrices,
    instance: &[Fr],
    witness: &Shares<Fr>,
    mode: ProductMode,
) -> Result<CommittedProof> {
    let groups = open_commitments(engine, keys, &with_one(instance)).await?;
    prove_committed_with(engine, keys, matrices, instance, witness, mode, groups).await
}

/// Proves with the groups' commitments already opened (by [`commitment_challenge`] when the
/// challenge was drawn, from the same shares): checks the shared assignment holds the
/// challenge they give, proves, and checks the proof with the committed verifier (so
/// commitments that are not the assignment's give no proof).
pub async fn prove_committed_with<T: Transport>(
    engine: &mut Engine<Fr, T>,
    keys: &CommittedKeys,
    matrices: &R1csMatrices,
    instance: &[Fr],
    witness: &Shares<Fr>,
    mode: ProductMode,
    groups: Vec<GroupCommitment>,
) -> Result<CommittedProof> {
    let with_one = with_one(instance);
    let (public, challenge) = public_and_challenge(keys, &with_one, &groups)?;
    if with_one.get(keys.layout.challenge()) != Some(&challenge) {
        return Err(QapError::KeyShape("the shared assignment's challenge is not its commitments'".into()).into());
    }
    let oracle = |proof: &Proof<Bn254>| {
        keys.vk.verify(&public, &CommittedProof { proof: proof.clone(), groups: groups.clone() }).unwrap_or(false)
    };
    let proof = prove_core(engine, &keys.pk, matrices, instance, witness, mode, &oracle).await?;
    Ok(CommittedProof { proof, groups })
}
