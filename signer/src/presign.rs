//! Presignatures by all n nodes, in batches (Dalskov et al. 2020): shared random k and a mask
//! a; u = k·a opened (masked inversion) after the engine verified every multiplication;
//! k⁻¹ = a·u⁻¹ and k⁻¹x = (a·x)·u⁻¹ stay shared. R = k·G is opened in the exponent: each node
//! broadcasts k_i·G, and all n points must lie on one degree-t polynomial. Each node then
//! broadcasts (k⁻¹)_i·R and (k⁻¹x)_i·R, which must interpolate to G and to the public key
//! (a degree check with one more known point, so a bad point names its sender); they later
//! check every signature share on its own. Checks are batched with random linear combinations
//! and fall back to per-presignature checks to name the culprit.

use std::sync::Arc;

use ark_ec::CurveGroup;
use ark_ff::{Field, Zero};
use rayon::prelude::*;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{Engine, PartyId, SessionId, Shares, Transport};

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
    /// Publish a wrong k_i·G for the first presignature.
    pub bad_nonce_point: bool,
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

/// The parties whose removal makes the points consistent.
fn suspects(parties: &[PartyId], pts: &[Point], constant: Option<Point>, t: usize) -> Vec<PartyId> {
    let mut out = Vec::new();
    for (skip, p) in parties.iter().enumerate() {
        let xs: Vec<Scalar> = parties.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, q)| x_of(*q)).collect();
        let ps: Vec<Point> = pts.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, q)| *q).collect();
        let extra = xs.len() + usize::from(constant.is_some());
        if extra > t + 1 && consistent(&xs, &ps, constant, t) {
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

    // Shared k and mask a; u = k·a and a·x in one batched multiplication.
    let k = engine.take_randoms(count).await?.into_shares();
    let a = engine.take_randoms(count).await?.into_shares();
    let x = Shares::from_raw(vec![key.expose_share(); count]);
    let left = Shares::concat(&[&k, &a]);
    let right = Shares::concat(&[&a, &x]);
    let products = engine.mul(&left, &right).await?;
    let u_shares = products.slice(0..count);
    let ax = products.slice(count..2 * count);

    // k_i·G to everyone (k256: constant time on the secret share).
    let mut my_k: Vec<k256::ProjectivePoint> = k
        .expose_shares()
        .par_iter()
        .map(|x| {
            <k256::ProjectivePoint as k256::elliptic_curve::ops::MulByGenerator>::mul_by_generator(&scalar_to_k256(x))
        })
        .collect();
    drop(k);
    if faults.bad_nonce_point {
        if let Some(p) = my_k.first_mut() {
            *p += k256::ProjectivePoint::GENERATOR;
        }
    }
    let my_k_bytes = k256_points_to_bytes(&my_k);
    let k_by_party = engine.broadcast_bytes(&my_k_bytes, plen * count).await?;

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

    // R = k·G in the exponent, checked across all n.
    let k_pts = match decode_points(&k_by_party, &parties, count) {
        Ok(p) => p,
        Err(p) => {
            return Err(
                fail(engine, SignerError::Cheater { party: p, reason: "sent malformed k·G points".into() }).await
            )
        }
    };
    let raw_k: Vec<&[u8]> = k_by_party.iter().map(Vec::as_slice).collect();
    if let Err(e) = check_batch(&batch, "nonce commitment k_i·G", &parties, &k_pts, None, t, &raw_k, count) {
        return Err(fail(engine, e).await);
    }
    let basis: Vec<Scalar> = parties.iter().take(t + 1).map(|p| x_of(*p)).collect();
    let lambdas = lagrange_coefficients(&basis, Scalar::zero());
    let big_r: Vec<Point> = (0..count)
        .into_par_iter()
        .map(|b| {
            k_pts.iter().zip(&lambdas).map(|(col, l)| mul_small(&col.get(b).copied().unwrap_or_default(), l)).sum()
        })
        .collect();
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
