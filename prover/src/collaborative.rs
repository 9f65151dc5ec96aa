//! The collaborative Groth16 prover: the parties prove over a secret-shared witness.
//!
//! Every step of [`crate::qap`] is linear in the assignment except the pointwise product on
//! the coset. Each party runs the linear steps on its shares, takes the product of its
//! degree-`t` shares locally (a degree-`2t` sharing that only feeds the linear `h` MSM), and
//! the parties open just four group elements: `A`, `B` (G2) and `B1` from degree-`t` shares,
//! then `C` from degree-`2t` shares re-randomised by a sharing of zero. The blinders `r`, `s`
//! are shared random values and `rs` one verified multiplication. A constant number of
//! rounds whatever the circuit size.
//!
//! Shares of the opened group elements are checked for consistency wherever there is
//! redundancy (`n >= t + 2` for the degree-`t` elements `A`, `B`, `B1`; `n >= 2t + 2` for
//! `C`), and an inconsistency aborts at once; the sender is named when error correction can
//! single it out (`n >= 3t + 1`, resp. `n >= 4t + 1`). Finally the proof is verified before
//! it is returned: a wrong share the checks could not see (no redundancy) aborts there. The
//! run never returns an invalid proof.

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::{CurveGroup, PrimeGroup};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{Check, Culprit, Engine, MpcError, PartyId, Shares, Transport};

use crate::qap::{
    abc_evaluations, h_from_coset_product, msm_a, msm_b_g1, msm_b_g2, msm_c_parts, pointwise_ab_minus_c,
    to_coset_evaluations, QapError, R1csMatrices,
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
    matrices.check_proving_key(pk)?;
    // z = [1, instance, witness]: public parts are their own shares (constant polynomials).
    let mut z = Vec::with_capacity(1 + instance.len() + witness.len());
    z.push(Fr::from(1u64));
    z.extend_from_slice(instance);
    z.extend_from_slice(witness.expose_shares());

    let domain = matrices.domain()?;
    let (a, b, c) = abc_evaluations(matrices, &z)?;
    let a = to_coset_evaluations(&domain, a)?;
    let b = to_coset_evaluations(&domain, b)?;
    let c = to_coset_evaluations(&domain, c)?;
    // The one product, local: degree-2t shares of h.
    let h = h_from_coset_product(&domain, pointwise_ab_minus_c(&a, &b, &c)?)?;
    drop((a, b, c));

    let blinders = engine.take_randoms(2).await?.into_shares();
    let (r, s) = (blinders.slice(0..1), blinders.slice(1..2));
    let rs = engine.mul(&r, &s).await?;
    let (r, s, rs) = (first(&r), first(&s), first(&rs));
    let a_share = msm_a(pk, &z, r)?;
    let b_share = msm_b_g2(pk, &z, s)?;
    let b1_share = msm_b_g1(pk, &z, s)?;
    let c_parts = msm_c_parts(pk, &z, &h)?;
    drop(h);
    // A degree-2t sharing of zero (from a double sharing) hides the structure of the
    // product shares when C is opened.
    let zero_2t = first(&engine.zero_sharings_2t(1).await?);
    let t = engine.t();

    // Nothing opens before every multiplication so far is verified.
    engine.verify().await?;

    let mut payload = Vec::with_capacity(ABB_BYTES);
    serialize_into(&a_share.into_affine(), &mut payload);
    serialize_into(&b_share.into_affine(), &mut payload);
    serialize_into(&b1_share.into_affine(), &mut payload);
    let all = engine.broadcast_bytes(&payload, ABB_BYTES).await?;
    let mut a_shares = Vec::with_capacity(all.len());
    let mut b_shares = Vec::with_capacity(all.len());
    let mut b1_shares = Vec::with_capacity(all.len());
    for (i, bytes) in all.iter().enumerate() {
        let peer = PartyId::from_index(i).ok_or(MpcError::Usage("party index".into()))?;
        let (pa, rest) = bytes.split_at(32.min(bytes.len()));
        let (pb, pb1) = rest.split_at(64.min(rest.len()));
        a_shares.push(decode::<G1Projective>(pa, peer)?);
        b_shares.push(decode::<G2Projective>(pb, peer)?);
        b1_shares.push(decode::<G1Projective>(pb1, peer)?);
    }
    let n = a_shares.len();
    let checked = check_points(&a_shares, t, t)
        .and_then(|()| check_points(&b_shares, t, t))
        .and_then(|()| check_points(&b1_shares, t, t));
    if let Err(culprit) = checked {
        return Err(engine.abort_with(MpcError::Cheating { check: Check::OpeningConsistency, culprit }).await.into());
    }
    let a_open = reconstruct(&a_shares, &prefix(t + 1));
    let b_open = reconstruct(&b_shares, &prefix(t + 1));
    let b1_open = reconstruct(&b1_shares, &prefix(t + 1));

    let c_share = c_parts + a_open * s + b1_open * r - pk.delta_g1 * rs + G1Projective::generator() * zero_2t;
    let mut payload = Vec::with_capacity(C_BYTES);
    serialize_into(&c_share.into_affine(), &mut payload);
    let all = engine.broadcast_bytes(&payload, C_BYTES).await?;
    let mut c_shares = Vec::with_capacity(all.len());
    for (i, bytes) in all.iter().enumerate() {
        let peer = PartyId::from_index(i).ok_or(MpcError::Usage("party index".into()))?;
        c_shares.push(decode::<G1Projective>(bytes, peer)?);
    }
    if let Err(culprit) = check_points(&c_shares, (2 * t).min(n.saturating_sub(1)), t) {
        return Err(engine.abort_with(MpcError::Cheating { check: Check::OpeningConsistency, culprit }).await.into());
    }
    let c_open = reconstruct(&c_shares, &prefix((2 * t + 1).min(n)));

    let proof = Proof { a: a_open.into_affine(), b: b_open.into_affine(), c: c_open.into_affine() };
    if verifies(pvk, instance, &proof) {
        return Ok(proof);
    }
    Err(engine
        .abort_with(MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown })
        .await
        .into())
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

/// Subsets of `size` zero-based indices out of `n`, in lexicographic order.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if size > n {
        return out;
    }
    let mut current: Vec<usize> = (0..size).collect();
    loop {
        out.push(current.clone());
        let Some(pos) = (0..size).rev().find(|&p| current.get(p).is_some_and(|v| *v < n - (size - p))) else {
            return out;
        };
        let start = current.get(pos).copied().unwrap_or(0) + 1;
        for (off, slot) in current.iter_mut().skip(pos).enumerate() {
            *slot = start + off;
        }
    }
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

/// Checks that group-element shares lie on one polynomial of `degree` (possible when there
/// are more than `degree + 1`). On failure names the parties off the unique polynomial that
/// all but at most `t` shares agree on, when `n >= degree + 1 + 2t` makes it unique.
fn check_points<P: CurveGroup<ScalarField = Fr>>(shares: &[P], degree: usize, t: usize) -> Result<(), Culprit> {
    let n = shares.len();
    if n <= degree + 1 || off_polynomial(shares, &prefix(degree + 1)).is_empty() {
        return Ok(());
    }
    if n >= degree + 1 + 2 * t {
        for set in subsets(n, degree + 1) {
            let bad = off_polynomial(shares, &set);
            if bad.len() <= t {
                let named: Vec<PartyId> = bad.into_iter().filter_map(PartyId::from_index).collect();
                return Err(match named.as_slice() {
                    [one] => Culprit::Party(*one),
                    _ => Culprit::OneOf(named),
                });
            }
        }
    }
    Err(Culprit::Unknown)
}
