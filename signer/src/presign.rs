//! Presignatures by all n nodes, in batches (Dalskov et al. 2020): a shared random nonce k and
//! a mask a; u = k·a opened (masked inversion) after the engine verified every multiplication;
//! k⁻¹ = a·u⁻¹ and k⁻¹x = (a·x)·u⁻¹ stay shared.
//!
//! The nonce is dealt with Feldman VSS so that R = k·G and every node's k_i·G follow from
//! public commitments, and a bad nonce share names its dealer whatever n is (n = t + 2
//! included, where a degree check of self-reported k_i·G points could only detect): each node
//! broadcasts a fresh ephemeral key and a hash of its coefficient commitments, then reveals the
//! commitments (a reveal that differs from the hash names the dealer: nobody can bias R after
//! seeing the others) with its sub-shares encrypted to each receiver under the pairwise
//! ephemeral Diffie–Hellman key, on the agreed broadcast. A receiver whose sub-shares fail
//! the Feldman check complains; it then reveals its ephemeral secret, everyone decrypts the
//! disputed deal and checks it, and either the dealer (a bad deal) or the complainer (a false
//! complaint) is named. A complaint aborts the batch, so the keys revealed protect nothing in use.
//!
//! Each node then broadcasts (k⁻¹)_i·R and (k⁻¹x)_i·R, which must interpolate to G and to the
//! public key (a degree check with one more known point, so a bad point names its sender);
//! they later check every signature share on its own. Checks are batched with random linear
//! combinations and fall back to per-presignature checks to name the culprit.

use std::sync::Arc;

use ark_ec::CurveGroup;
use ark_ff::{Field, UniformRand, Zero};
use rayon::prelude::*;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{Engine, PartyId, SessionId, Shares, Transport, WireField};
use zeroize::{Zeroize, Zeroizing};

use crate::curve::{
    generator, k256_points_to_bytes, msm, mul_small, point_from_bytes, point_len, r_of, scalar_to_k256, to_k256, Point,
    Scalar,
};
use crate::error::{Result, SignerError};
use crate::keys::{KeyShare, Presignature};

/// Faults a test party injects into its own presignature messages.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct PresignFaults {
    /// Publish a nonce commitment (this dealer's part of R) off the polynomial it deals, for
    /// the first presignature.
    pub bad_nonce_point: bool,
    /// Complain about a valid nonce deal from this dealer (a false complaint).
    pub false_complaint_about: Option<PartyId>,
    /// Publish a wrong (k⁻¹)_i·R for the first presignature.
    pub bad_check_point: bool,
}

/// Checks that a signer set is t+1 distinct parties of the cluster, ascending.
pub fn validate_signers(signers: &[PartyId], n: usize, t: usize) -> Result<()> {
    let ascending = signers.windows(2).all(|w| matches!(w, [a, b] if a < b));
    if signers.len() != t + 1 || !ascending || signers.iter().any(|p| p.index() >= n) {
        return Err(SignerError::Invalid(format!("a signer set is {} distinct parties in ascending order", t + 1)));
    }
    Ok(())
}

/// The id of presignature `index` of batch `batch`.
pub fn presig_id(batch: &SessionId, index: usize) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tacit signer presignature id v1");
    h.update(&batch.0);
    h.update(&(index as u64).to_be_bytes());
    *h.finalize().as_bytes()
}

fn x_of(p: PartyId) -> Scalar {
    Scalar::from(u64::from(p.get()))
}

/// Whether the points (with an optional known value at 0) lie on one degree-`t` polynomial.
fn consistent(xs: &[Scalar], pts: &[Point], constant: Option<Point>, t: usize) -> bool {
    let mut all_x: Vec<Scalar> = Vec::with_capacity(xs.len() + 1);
    let mut all_p: Vec<Point> = Vec::with_capacity(xs.len() + 1);
    if let Some(c) = constant {
        all_x.push(Scalar::zero());
        all_p.push(c);
    }
    all_x.extend_from_slice(xs);
    all_p.extend_from_slice(pts);
    if all_x.len() <= t + 1 {
        return true;
    }
    let (bx, ex) = all_x.split_at(t + 1);
    let (bp, ep) = all_p.split_at(t + 1);
    ex.iter().zip(ep).all(|(x, p)| {
        let l = lagrange_coefficients(bx, *x);
        bp.iter().zip(&l).map(|(q, c)| mul_small(q, c)).sum::<Point>() == *p
    })
}

/// The parties whose removal makes the points consistent. A party is only a suspect when the
/// rest would pin the polynomial even if t of them lied: at least t + 1 of the remaining
/// points (with the known value at 0) must then be honest ones, so an honest party is never
/// framed by colluding ones.
fn suspects(parties: &[PartyId], pts: &[Point], constant: Option<Point>, t: usize) -> Vec<PartyId> {
    let mut out = Vec::new();
    for (skip, p) in parties.iter().enumerate() {
        let xs: Vec<Scalar> = parties.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, q)| x_of(*q)).collect();
        let ps: Vec<Point> = pts.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, q)| *q).collect();
        let pinned = xs.len().saturating_sub(t) + usize::from(constant.is_some());
        if pinned > t && consistent(&xs, &ps, constant, t) {
            out.push(*p);
        }
    }
    out
}

fn blame(parties: &[PartyId], pts: &[Point], constant: Option<Point>, t: usize, what: &str) -> SignerError {
    match suspects(parties, pts, constant, t).as_slice() {
        [one] => SignerError::Cheater { party: *one, reason: format!("published an inconsistent {what}") },
        [] => SignerError::OneOf { parties: parties.to_vec(), reason: format!("inconsistent {what}") },
        many => SignerError::OneOf { parties: many.to_vec(), reason: format!("inconsistent {what}") },
    }
}

/// Random 128-bit weights from the transcript (all points are fixed before they are drawn).
fn weights(session: &SessionId, label: &str, transcript: &[&[u8]], count: usize) -> Vec<Scalar> {
    let mut h = blake3::Hasher::new_derive_key("tacit signer presign batch check v1");
    h.update(&session.0);
    h.update(label.as_bytes());
    for part in transcript {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part);
    }
    let mut xof = h.finalize_xof();
    (0..count)
        .map(|_| {
            let mut b = [0u8; 16];
            xof.fill(&mut b);
            Scalar::from(u128::from_le_bytes(b))
        })
        .collect()
}

fn decode_points(
    by_party: &[Vec<u8>],
    parties: &[PartyId],
    count: usize,
) -> std::result::Result<Vec<Vec<Point>>, PartyId> {
    let plen = point_len();
    let mut out = Vec::with_capacity(parties.len());
    for p in parties {
        let bytes = by_party.get(p.index()).ok_or(*p)?;
        if bytes.len() != plen * count {
            return Err(*p);
        }
        let pts: Option<Vec<Point>> = bytes.par_chunks(plen).map(point_from_bytes).collect();
        out.push(pts.ok_or(*p)?);
    }
    Ok(out)
}

/// Batched check that, for every presignature b, the points `pts[j][b]` of all parties lie on
/// one degree-t polynomial (through `constants[b]` at 0 when given).
#[allow(clippy::too_many_arguments)]
fn check_batch(
    session: &SessionId,
    label: &str,
    parties: &[PartyId],
    pts: &[Vec<Point>],
    constant: Option<Point>,
    t: usize,
    raw: &[&[u8]],
    count: usize,
) -> Result<()> {
    let rho = weights(session, label, raw, count);
    let aggregated: Vec<Point> = pts.par_iter().map(|col| msm(col, &rho)).collect();
    let agg_constant = constant.map(|c| c * rho.iter().sum::<Scalar>());
    let xs: Vec<Scalar> = parties.iter().map(|p| x_of(*p)).collect();
    if consistent(&xs, &aggregated, agg_constant, t) {
        return Ok(());
    }
    for b in 0..count {
        let column: Vec<Point> = pts.iter().map(|col| col.get(b).copied().unwrap_or_default()).collect();
        if !consistent(&xs, &column, constant, t) {
            return Err(blame(parties, &column, constant, t, label));
        }
    }
    Err(SignerError::OneOf { parties: parties.to_vec(), reason: format!("inconsistent {label}") })
}

async fn fail<T: Transport>(engine: &mut Engine<Scalar, T>, err: SignerError) -> SignerError {
    let reason = err.to_string();
    let mpc = match err.identified() {
        Some(peer) => tacit_mpc_engine::MpcError::Protocol { peer, reason },
        None => tacit_mpc_engine::MpcError::Usage(reason),
    };
    let _ = engine.abort_with(mpc).await;
    err
}

fn nonce_commit_hash(session: &SessionId, dealer: PartyId, commitments: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tacit signer presign nonce commitments v1");
    h.update(&session.0);
    h.update(&dealer.get().to_be_bytes());
    h.update(commitments);
    *h.finalize().as_bytes()
}

/// The ephemeral Diffie–Hellman point `secret·public`, encoded (k256: constant time on the
/// secret).
fn ecdh(secret: &Scalar, public: &Point) -> Zeroizing<Vec<u8>> {
    let p = to_k256(&public.into_affine()).unwrap_or(k256::ProjectivePoint::IDENTITY);
    let mut s = scalar_to_k256(secret);
    let out = Zeroizing::new(k256_points_to_bytes(&[p * s]));
    s.zeroize();
    out
}

/// The keystream that encrypts `dealer`'s sub-shares to `receiver` (`shared` = their ephemeral
/// Diffie–Hellman point; fresh keys every batch, so each stream is used once).
fn deal_keystream(
    session: &SessionId,
    dealer: PartyId,
    receiver: PartyId,
    shared: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut h = blake3::Hasher::new_derive_key("tacit signer presign nonce deal v1");
    h.update(&session.0);
    h.update(&dealer.get().to_be_bytes());
    h.update(&receiver.get().to_be_bytes());
    h.update(shared);
    let mut out = Zeroizing::new(vec![0u8; len]);
    h.finalize_xof().fill(&mut out);
    out
}

/// Where `dealer`'s ciphertext to `receiver` sits in the dealer's reveal.
fn ct_range(
    dealer: PartyId,
    receiver: PartyId,
    parties: &[PartyId],
    offset: usize,
    count: usize,
) -> Option<std::ops::Range<usize>> {
    let slot = parties.iter().filter(|p| **p != dealer).position(|p| *p == receiver)?;
    let start = offset + slot * count * 32;
    Some(start..start + count * 32)
}

/// Decrypts sub-shares; `None` when one is not a canonical scalar.
fn open_deal(ct: &[u8], stream: &[u8]) -> Option<Zeroizing<Vec<Scalar>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(ct.len() / 32));
    for (c, k) in ct.chunks(32).zip(stream.chunks(32)) {
        let mut b = [0u8; 32];
        b.iter_mut().zip(c.iter().zip(k)).for_each(|(o, (c, k))| *o = c ^ k);
        let v = Scalar::read_wire(&b);
        b.zeroize();
        out.push(v?);
    }
    Some(out)
}

/// Whether `shares[b]·G = Σ_l x^l · commitments[b][l]` for every b (batched with random
/// weights; an exact per-item answer only matters on the dispute path, which checks each).
fn deal_valid(
    session: &SessionId,
    commitments: &[Point],
    raw: &[u8],
    shares: Option<&[Scalar]>,
    count: usize,
    x: Scalar,
    t: usize,
) -> bool {
    let Some(shares) = shares.filter(|s| s.len() == count) else {
        return false;
    };
    if commitments.len() != count * (t + 1) {
        return false;
    }
    let rho = weights(session, "nonce deal", &[raw], count);
    let mut powers = Vec::with_capacity(t + 1);
    let mut acc = Scalar::from(1u64);
    for _ in 0..=t {
        powers.push(acc);
        acc *= x;
    }
    let scalars: Vec<Scalar> = rho.iter().flat_map(|r| powers.iter().map(move |p| *r * p)).collect();
    let lhs: Scalar = rho.iter().zip(shares).map(|(r, s)| *r * s).sum();
    generator() * lhs == msm(commitments, &scalars)
}

/// The dealt nonce shares and R (one per presignature).
async fn deal_nonces<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    batch: &SessionId,
    count: usize,
    parties: &[PartyId],
    faults: &PresignFaults,
) -> Result<(Shares<Scalar>, Vec<Point>)> {
    let me = engine.id();
    let t = engine.t();
    let n = parties.len();
    let plen = point_len();
    let session = batch.child("presign-nonce", 0);

    // Round 1: an ephemeral key and the hash of the coefficient commitments.
    let (eph, coeffs) = {
        let mut rng = rand::thread_rng();
        let eph = Zeroizing::new(Scalar::rand(&mut rng));
        let coeffs: Zeroizing<Vec<Scalar>> =
            Zeroizing::new((0..count * (t + 1)).map(|_| Scalar::rand(&mut rng)).collect());
        (eph, coeffs)
    };
    let eph_pub =
        <k256::ProjectivePoint as k256::elliptic_curve::ops::MulByGenerator>::mul_by_generator(&scalar_to_k256(&eph));
    let mut commits: Vec<k256::ProjectivePoint> = coeffs
        .par_iter()
        .map(|c| {
            <k256::ProjectivePoint as k256::elliptic_curve::ops::MulByGenerator>::mul_by_generator(&scalar_to_k256(c))
        })
        .collect();
    if faults.bad_nonce_point {
        if let Some(p) = commits.first_mut() {
            *p += k256::ProjectivePoint::GENERATOR;
        }
    }
    let commit_bytes = k256_points_to_bytes(&commits);
    drop(commits);
    let mut first = k256_points_to_bytes(&[eph_pub]);
    first.extend_from_slice(&nonce_commit_hash(&session, me, &commit_bytes));
    let firsts = engine.broadcast_bytes(&first, plen + 32).await?;
    let mut eph_pubs = Vec::with_capacity(n);
    for p in parties {
        let msg = firsts.get(p.index()).map(Vec::as_slice).unwrap_or_default();
        match msg.get(..plen).and_then(point_from_bytes) {
            Some(y) if msg.len() == plen + 32 && !y.is_zero() => eph_pubs.push(y),
            _ => {
                let e = SignerError::Cheater { party: *p, reason: "sent a malformed ephemeral key".into() };
                return Err(fail(engine, e).await);
            }
        }
    }

    // Round 2: the commitments, and every sub-share encrypted to its receiver.
    let x_of_me = x_of(me);
    let mut own = Zeroizing::new(Vec::with_capacity(count));
    let mut reveal = commit_bytes;
    let commit_len = reveal.len();
    for p in parties {
        let poly = |b: usize| coeffs.get(b * (t + 1)..(b + 1) * (t + 1)).unwrap_or_default();
        let eval = |b: usize, x: Scalar| poly(b).iter().rev().fold(Scalar::zero(), |acc, c| acc * x + c);
        if *p == me {
            own.extend((0..count).map(|b| eval(b, x_of_me)));
            continue;
        }
        let shared = ecdh(&eph, &eph_pubs.get(p.index()).copied().unwrap_or_default());
        let stream = deal_keystream(&session, me, *p, &shared, count * 32);
        let mut plain = Zeroizing::new(vec![0u8; count * 32]);
        for (b, chunk) in plain.chunks_mut(32).enumerate() {
            eval(b, x_of(*p)).write_wire(chunk);
        }
        reveal.extend(plain.iter().zip(stream.iter()).map(|(a, b)| a ^ b));
    }
    drop(coeffs);
    let reveal_len = commit_len + (n - 1) * count * 32;
    let reveals = engine.broadcast_bytes(&reveal, reveal_len).await?;
    drop(reveal);

    // Each dealer's reveal against its hash; then my sub-shares against its commitments.
    let mut commitments: Vec<Vec<Point>> = Vec::with_capacity(n);
    let mut received: Vec<Zeroizing<Vec<Scalar>>> = Vec::with_capacity(n);
    let mut complaints = vec![0u8; n];
    for p in parties {
        let r = reveals.get(p.index()).map(Vec::as_slice).unwrap_or_default();
        let hash = firsts.get(p.index()).and_then(|m| m.get(plen..)).unwrap_or_default();
        let (Some(c_raw), true) = (r.get(..commit_len), r.len() == reveal_len) else {
            return Err(
                fail(engine, SignerError::Cheater { party: *p, reason: "sent a malformed nonce deal".into() }).await
            );
        };
        if nonce_commit_hash(&session, *p, c_raw).as_slice() != hash {
            let e = SignerError::Cheater {
                party: *p,
                reason: "revealed nonce commitments that differ from its committed hash".into(),
            };
            return Err(fail(engine, e).await);
        }
        let pts: Option<Vec<Point>> = c_raw.par_chunks(plen).map(point_from_bytes).collect();
        let Some(pts) = pts else {
            let e = SignerError::Cheater { party: *p, reason: "revealed malformed nonce commitments".into() };
            return Err(fail(engine, e).await);
        };
        if *p == me {
            received.push(Zeroizing::new(own.to_vec()));
        } else {
            let shared = ecdh(&eph, &eph_pubs.get(p.index()).copied().unwrap_or_default());
            let stream = deal_keystream(&session, *p, me, &shared, count * 32);
            let ct = ct_range(*p, me, parties, commit_len, count).and_then(|rg| r.get(rg)).unwrap_or_default();
            let opened = open_deal(ct, &stream);
            let complain = !deal_valid(&session, &pts, c_raw, opened.as_deref().map(Vec::as_slice), count, x_of_me, t)
                || faults.false_complaint_about == Some(*p);
            if let Some(slot) = complaints.get_mut(p.index()) {
                *slot = u8::from(complain);
            }
            received.push(opened.unwrap_or_else(|| Zeroizing::new(vec![Scalar::zero(); count])));
        }
        commitments.push(pts);
    }
    drop(own);

    // Round 3: complaints; any complaint is settled in public and aborts the batch.
    let all_complaints = engine.broadcast_bytes(&complaints, n).await?;
    let disputes: Vec<(PartyId, PartyId)> = parties
        .iter()
        .flat_map(|c| {
            let row = all_complaints.get(c.index()).cloned().unwrap_or_default();
            parties
                .iter()
                .filter(move |d| row.get(d.index()).is_some_and(|f| *f != 0) && **d != *c)
                .map(move |d| (*c, *d))
        })
        .collect();
    if let Some(err) =
        settle(engine, &session, parties, &eph_pubs, &eph, &commitments, &reveals, &disputes, commit_len, count, t)
            .await?
    {
        return Err(fail(engine, err).await);
    }

    let k: Vec<Scalar> =
        (0..count).map(|b| received.iter().map(|r| r.get(b).copied().unwrap_or_default()).sum()).collect();
    let big_r: Vec<Point> = (0..count)
        .into_par_iter()
        .map(|b| commitments.iter().map(|c| c.get(b * (t + 1)).copied().unwrap_or_default()).sum())
        .collect();
    Ok((Shares::from_raw(k), big_r))
}

/// Settles complaints: each complainer reveals its ephemeral secret, everyone decrypts the
/// disputed deals and checks them. Returns the party to name (none when nobody complained).
#[allow(clippy::too_many_arguments)]
async fn settle<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    session: &SessionId,
    parties: &[PartyId],
    eph_pubs: &[Point],
    eph: &Scalar,
    commitments: &[Vec<Point>],
    reveals: &[Vec<u8>],
    disputes: &[(PartyId, PartyId)],
    commit_len: usize,
    count: usize,
    t: usize,
) -> Result<Option<SignerError>> {
    if disputes.is_empty() {
        return Ok(None);
    }
    let me = engine.id();
    // Everybody must have seen the same deals and complaints before anyone is named.
    engine.verify().await?;
    let mut mine = Vec::new();
    if disputes.iter().any(|(c, _)| *c == me) {
        let mut b = [0u8; 32];
        eph.write_wire(&mut b);
        mine.extend_from_slice(&b);
        b.zeroize();
    }
    let secrets = engine.broadcast_bytes(&mine, 32).await?;
    engine.verify().await?;
    // The first dispute (every party takes the same) settles the batch.
    if let Some((c, d)) = disputes.first() {
        let y = secrets.get(c.index()).and_then(|s| Scalar::read_wire(s));
        let y_pub = eph_pubs.get(c.index()).copied().unwrap_or_default();
        let Some(y) = y.filter(|y| generator() * y == y_pub) else {
            return Ok(Some(SignerError::Cheater {
                party: *c,
                reason: "complained about a nonce deal and did not reveal its ephemeral key".into(),
            }));
        };
        let shared = ecdh(&y, &eph_pubs.get(d.index()).copied().unwrap_or_default());
        let stream = deal_keystream(session, *d, *c, &shared, count * 32);
        let r = reveals.get(d.index()).map(Vec::as_slice).unwrap_or_default();
        let ct = ct_range(*d, *c, parties, commit_len, count).and_then(|rg| r.get(rg)).unwrap_or_default();
        let opened = open_deal(ct, &stream);
        let pts = commitments.get(d.index()).map(Vec::as_slice).unwrap_or_default();
        let c_raw = r.get(..commit_len).unwrap_or_default();
        if deal_valid(session, pts, c_raw, opened.as_deref().map(Vec::as_slice), count, x_of(*c), t) {
            return Ok(Some(SignerError::Cheater {
                party: *c,
                reason: format!("complained about a valid nonce deal from {d}"),
            }));
        }
        return Ok(Some(SignerError::Cheater {
            party: *d,
            reason: format!("dealt {c} nonce shares off its published commitments"),
        }));
    }
    Ok(None)
}

/// Makes `count` presignatures for `key`, all bound to `signers`. Every node of the cluster
/// runs it; only members of `signers` keep their parts (returned), the others drop theirs.
pub async fn presign<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    key: &KeyShare,
    batch: SessionId,
    count: usize,
    signers: &[PartyId],
    faults: &PresignFaults,
) -> Result<Vec<Presignature>> {
    let n = engine.n();
    let t = engine.t();
    let me = engine.id();
    if key.public.n != n || key.public.t != t {
        return Err(SignerError::Invalid("key and session parameters differ".into()));
    }
    validate_signers(signers, n, t)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let parties: Vec<PartyId> = PartyId::all(n).collect();
    let plen = point_len();

    // The nonce k, dealt with Feldman VSS (see the module notes); R from the commitments.
    let (k, big_r) = deal_nonces(engine, &batch, count, &parties, faults).await?;

    // Mask a; u = k·a and a·x in one batched multiplication.
    let a = engine.take_randoms(count).await?.into_shares();
    let x = Shares::from_raw(vec![key.expose_share(); count]);
    let left = Shares::concat(&[&k, &a]);
    let right = Shares::concat(&[&a, &x]);
    drop(k);
    let products = engine.mul(&left, &right).await?;
    drop(left);
    drop(right);
    let u_shares = products.slice(0..count);
    let ax = products.slice(count..2 * count);

    // Masked inversion (the engine verifies every product before u opens).
    let u = engine.open(&u_shares).await?;
    let mut u_inv = Vec::with_capacity(count);
    for value in &u {
        match value.inverse() {
            Some(i) => u_inv.push(i),
            None => return Err(fail(engine, SignerError::Invalid("k·a = 0; retry the batch".into())).await),
        }
    }
    let w = a.mul_public(&u_inv);
    let v = ax.mul_public(&u_inv);
    drop(a);
    drop(ax);

    let mut rs = Vec::with_capacity(count);
    for r in &big_r {
        match r_of(r) {
            Some((r, _, _)) if !r.is_zero() => rs.push(r),
            _ => return Err(fail(engine, SignerError::Invalid("R has r = 0; retry the batch".into())).await),
        }
    }

    // (k⁻¹)_i·R and (k⁻¹x)_i·R to everyone, checked against G and the public key.
    let ws = w.expose_shares();
    let vs = v.expose_shares();
    // The two multiplications by each R run on k256 (GLV), then one batched normalisation.
    let r_affine = Point::normalize_batch(&big_r);
    let mut mine: Vec<k256::ProjectivePoint> = r_affine
        .par_iter()
        .zip(ws.par_iter().zip(vs.par_iter()))
        .flat_map_iter(|(r, (w, v))| {
            let kr = to_k256(r).unwrap_or(k256::ProjectivePoint::IDENTITY);
            [kr * scalar_to_k256(w), kr * scalar_to_k256(v)]
        })
        .collect();
    if faults.bad_check_point {
        if let Some(p) = mine.first_mut() {
            *p += k256::ProjectivePoint::GENERATOR;
        }
    }
    let wv_bytes = k256_points_to_bytes(&mine);
    let wv_by_party = engine.broadcast_bytes(&wv_bytes, 2 * plen * count).await?;
    engine.verify().await?;
    let wv_pts = match decode_points(&wv_by_party, &parties, 2 * count) {
        Ok(p) => p,
        Err(p) => {
            return Err(
                fail(engine, SignerError::Cheater { party: p, reason: "sent malformed check points".into() }).await
            )
        }
    };
    let w_pts: Vec<Vec<Point>> = wv_pts.iter().map(|c| c.iter().step_by(2).copied().collect()).collect();
    let v_pts: Vec<Vec<Point>> = wv_pts.iter().map(|c| c.iter().skip(1).step_by(2).copied().collect()).collect();
    let raw_wv: Vec<&[u8]> = wv_by_party.iter().map(Vec::as_slice).collect();
    let checks = [("share of k⁻¹·R", &w_pts, generator()), ("share of k⁻¹x·R", &v_pts, key.public.public_key)];
    for (label, pts, constant) in checks {
        if let Err(e) = check_batch(&batch, label, &parties, pts, Some(constant), t, &raw_wv, count) {
            return Err(fail(engine, e).await);
        }
    }

    if !signers.contains(&me) {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(count);
    for b in 0..count {
        let signer_checks: Vec<(Point, Point)> = signers
            .iter()
            .map(|s| {
                let wp = w_pts.get(s.index()).and_then(|c| c.get(b)).copied().unwrap_or_default();
                let vp = v_pts.get(s.index()).and_then(|c| c.get(b)).copied().unwrap_or_default();
                (wp, vp)
            })
            .collect();
        out.push(Presignature::new(
            presig_id(&batch, b),
            key.public.key_id,
            key.public.epoch,
            signers.to_vec(),
            big_r.get(b).copied().unwrap_or_default(),
            rs.get(b).copied().unwrap_or_default(),
            ws.get(b).copied().unwrap_or_default(),
            vs.get(b).copied().unwrap_or_default(),
            signer_checks,
        ));
    }
    Ok(out)
}

/// Keeps `Arc` in scope for callers that hold transports next to engines.
#[doc(hidden)]
pub type SharedTransport<T> = Arc<T>;
