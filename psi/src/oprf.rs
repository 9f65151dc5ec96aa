//! Threshold DH-OPRF over secp256k1: `F_k(x) = k · H(x)`, with `H` the RFC 9380 hash to
//! curve (`secp256k1_XMD:SHA-256_SSWU_RO_`) and the key `k` Shamir-shared (degree `t`) across
//! the nodes.
//!
//! - The client blinds `B = ρ·H(x)` with a fresh random `ρ` and sends `B` to every node.
//! - Node `i` returns `Y_i = k_i · B` (one scalar multiplication per item).
//! - The client interpolates in the exponent: `k·ρ·H(x) = Σ_{i ≤ t+1} λ_i Y_i`, and checks
//!   every further response against the same degree-`t` polynomial (`n ≥ t + 2`; the
//!   engine's `n ≥ 2t + 1` gives this for `t ≥ 1`), so a node answering with anything but
//!   `k_i · B` is detected (the honest nodes, at least `t + 1`, fix the polynomial). It then
//!   removes `ρ` and hashes the point to a 32-byte tag.
//!
//! The nodes see only uniformly random blinded points; the client sees `k_i·B` for its own
//! items (which, with the `t` shares it lacks, reveals nothing about `k`).

use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::elliptic_curve::ops::LinearCombination;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::elliptic_curve::{Field, PrimeField};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar, Secp256k1};
use rayon::prelude::*;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{Culprit, PartyId};
use zeroize::Zeroize;

/// Domain separation tag of the hash to curve.
pub const DST: &[u8] = b"TACIT-PSI-V1-OPRF-secp256k1_XMD:SHA-256_SSWU_RO_";

/// Bytes of one point on the wire (SEC1 compressed).
pub const POINT_BYTES: usize = 33;

/// A 32-byte pseudonymous tag `blake3(F_k(x))`.
pub type Tag = [u8; 32];

/// OPRF failures.
#[derive(Debug, thiserror::Error)]
pub enum OprfError {
    /// A point that does not decode, or is the identity.
    #[error("{from} sent an invalid point at index {index}")]
    BadPoint {
        /// Who sent it (a node id, or "the client").
        from: String,
        /// Position.
        index: usize,
    },
    /// Wrong number of responses or points.
    #[error("{0}")]
    Shape(String),
    /// Responses do not lie on one degree-`t` polynomial in the exponent.
    #[error("OPRF responses are inconsistent at item {index}; culprit: {culprit}")]
    Inconsistent {
        /// First inconsistent item.
        index: usize,
        /// The node(s) blamed.
        culprit: Culprit,
    },
    /// Hash to curve failed.
    #[error("hash to curve: {0}")]
    HashToCurve(String),
}

/// `H(item)`.
pub fn hash_to_curve(item: &[u8]) -> Result<ProjectivePoint, OprfError> {
    Secp256k1::hash_from_bytes::<ExpandMsgXmd<sha2::Sha256>>(&[item], &[DST])
        .map_err(|e| OprfError::HashToCurve(e.to_string()))
}

/// Encodes points (compressed), in parallel.
pub fn encode_points(points: &[ProjectivePoint]) -> Vec<u8> {
    let encoded: Vec<[u8; POINT_BYTES]> = points
        .par_iter()
        .map(|p| {
            let e = p.to_affine().to_encoded_point(true);
            let mut out = [0u8; POINT_BYTES];
            if e.as_bytes().len() == POINT_BYTES {
                out.copy_from_slice(e.as_bytes());
            }
            out
        })
        .collect();
    encoded.concat()
}

/// Decodes compressed points, refusing the identity and anything off the curve.
pub fn decode_points(bytes: &[u8], from: &str) -> Result<Vec<ProjectivePoint>, OprfError> {
    if !bytes.len().is_multiple_of(POINT_BYTES) {
        return Err(OprfError::Shape(format!("{from} sent {} bytes, not a whole number of points", bytes.len())));
    }
    bytes
        .par_chunks(POINT_BYTES)
        .enumerate()
        .map(|(index, chunk)| {
            let bad = || OprfError::BadPoint { from: from.to_string(), index };
            let encoded = EncodedPoint::from_bytes(chunk).map_err(|_| bad())?;
            let affine: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
            let point = ProjectivePoint::from(affine.ok_or_else(bad)?);
            if bool::from(point.is_identity()) {
                return Err(bad());
            }
            Ok(point)
        })
        .collect()
}

/// A node's key share as a k256 scalar (same modulus as `ark_secp256k1::Fr`).
pub fn scalar_from_ark(x: &ark_secp256k1::Fr) -> Scalar {
    use ark_ff::{BigInteger, PrimeField as _};
    let mut be = x.into_bigint().to_bytes_be();
    let mut repr = k256::FieldBytes::default();
    if be.len() == repr.len() {
        repr.copy_from_slice(&be);
    }
    be.zeroize();
    let s: Option<Scalar> = Scalar::from_repr(repr).into();
    repr.zeroize();
    s.unwrap_or(Scalar::ZERO)
}

/// The client's blinding factors for one batch (zeroized on drop).
pub struct Blinding {
    rho: Vec<Scalar>,
}

impl std::fmt::Debug for Blinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blinding(len {}, <redacted>)", self.rho.len())
    }
}

impl Drop for Blinding {
    fn drop(&mut self) {
        for r in &mut self.rho {
            *r = Scalar::ZERO;
        }
    }
}

/// Client step 1: blinded points `ρ_j · H(x_j)` (encoded) and the blinding.
pub fn blind(items: &[&[u8]]) -> Result<(Vec<u8>, Blinding), OprfError> {
    let pairs: Vec<(ProjectivePoint, Scalar)> = items
        .par_iter()
        .map(|item| {
            let h = hash_to_curve(item)?;
            let rho = Scalar::random(&mut rand::rngs::OsRng);
            Ok((h * rho, rho))
        })
        .collect::<Result<_, OprfError>>()?;
    let (points, rho): (Vec<ProjectivePoint>, Vec<Scalar>) = pairs.into_iter().unzip();
    Ok((encode_points(&points), Blinding { rho }))
}

/// Node step: `k_i · B_j` for every blinded point (encoded).
pub fn evaluate(key_share: &Scalar, blinded: &[u8], from: &str) -> Result<Vec<u8>, OprfError> {
    let points = decode_points(blinded, from)?;
    let out: Vec<ProjectivePoint> = points.par_iter().map(|p| *p * key_share).collect();
    Ok(encode_points(&out))
}

fn small_scalars(xs: &[u64]) -> Vec<ark_secp256k1::Fr> {
    xs.iter().map(|x| ark_secp256k1::Fr::from(*x)).collect()
}

/// Client step 2: from every node's responses (`responses[i]` from node `i + 1`, encoded),
/// checks consistency and returns the tags. Needs `n ≥ t + 2` for the check.
pub fn finalize(t: usize, responses: &[Vec<u8>], blinding: &Blinding) -> Result<Vec<Tag>, OprfError> {
    let n = responses.len();
    if n < t + 2 {
        return Err(OprfError::Shape(format!("{n} responses cannot be checked at threshold {t}")));
    }
    let len = blinding.rho.len();
    let decoded: Vec<Vec<ProjectivePoint>> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let from = PartyId::from_index(i).map_or_else(|| format!("node {}", i + 1), |p| p.to_string());
            let pts = decode_points(r, &from)?;
            if pts.len() != len {
                return Err(OprfError::Inconsistent {
                    index: 0,
                    culprit: PartyId::from_index(i).map_or(Culprit::Unknown, Culprit::Party),
                });
            }
            Ok(pts)
        })
        .collect::<Result<_, _>>()?;
    let base_x: Vec<u64> = (1..=t as u64 + 1).collect();
    let base = small_scalars(&base_x);
    let lambda: Vec<Scalar> =
        lagrange_coefficients(&base, ark_secp256k1::Fr::from(0u64)).iter().map(scalar_from_ark).collect();
    let predictors: Vec<Vec<Scalar>> = ((t as u64 + 2)..=n as u64)
        .map(|x| lagrange_coefficients(&base, ark_secp256k1::Fr::from(x)).iter().map(scalar_from_ark).collect())
        .collect();
    let (head, rest) = decoded.split_at(t + 1);
    let combine = |j: usize, coeffs: &[Scalar], scale: Option<&Scalar>| -> ProjectivePoint {
        let c: Vec<Scalar> = coeffs.iter().map(|c| scale.map_or(*c, |s| *c * s)).collect();
        let pts: Vec<ProjectivePoint> = head.iter().map(|v| v.get(j).copied().unwrap_or_default()).collect();
        match (pts.as_slice(), c.as_slice()) {
            ([a, b], [x, y]) => ProjectivePoint::lincomb(a, x, b, y),
            _ => pts.iter().zip(&c).fold(ProjectivePoint::IDENTITY, |acc, (p, s)| acc + *p * s),
        }
    };
    let results: Vec<Result<Tag, usize>> = (0..len)
        .into_par_iter()
        .map(|j| {
            for (row, node) in predictors.iter().zip(rest) {
                let expected = combine(j, row, None);
                if node.get(j).copied().unwrap_or_default() != expected {
                    return Err(j);
                }
            }
            let rho_inv: Option<Scalar> = blinding.rho.get(j).map(|r| r.invert()).and_then(|r| r.into());
            let rho_inv = rho_inv.ok_or(j)?;
            let z = combine(j, &lambda, Some(&rho_inv));
            Ok(point_tag(&z))
        })
        .collect();
    let mut tags = Vec::with_capacity(len);
    for r in results {
        match r {
            Ok(tag) => tags.push(tag),
            Err(index) => {
                // n = t + 2 cannot tell which node lied; name every node.
                let all: Vec<PartyId> = PartyId::all(n).collect();
                return Err(OprfError::Inconsistent { index, culprit: Culprit::OneOf(all) });
            }
        }
    }
    Ok(tags)
}

/// `blake3` of the compressed point, domain-separated.
pub fn point_tag(p: &ProjectivePoint) -> Tag {
    let e = p.to_affine().to_encoded_point(true);
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 oprf tag");
    h.update(e.as_bytes());
    *h.finalize().as_bytes()
}

/// The tag computed in the clear from the whole key (tests and the plaintext oracle).
pub fn tag_in_clear(key: &Scalar, item: &[u8]) -> Result<Tag, OprfError> {
    Ok(point_tag(&(hash_to_curve(item)? * key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tacit_mpc_engine::Shamir;

    #[test]
    fn threshold_oprf_matches_clear_and_detects_a_bad_node() {
        let (n, t) = (3usize, 1usize);
        let shamir = Shamir::<ark_secp256k1::Fr>::new(n, t).unwrap_or_else(|_| unreachable!());
        let mut rng = rand::thread_rng();
        let k = <ark_secp256k1::Fr as ark_ff::UniformRand>::rand(&mut rng);
        let shares = shamir.share(k, t, &mut rng);
        let items: Vec<&[u8]> = vec![b"str:alice", b"str:bob", b"addr:xyz"];
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let mut responses: Vec<Vec<u8>> =
            shares.iter().map(|s| evaluate(&scalar_from_ark(s), &blinded, "client").unwrap_or_default()).collect();
        let tags = finalize(t, &responses, &blinding).unwrap_or_default();
        let key = scalar_from_ark(&k);
        for (item, tag) in items.iter().zip(&tags) {
            assert_eq!(Some(*tag), tag_in_clear(&key, item).ok());
        }
        // Node 2 answers item 1 with another point.
        let pts = decode_points(responses.get(1).map_or(&[][..], |v| v), "x").unwrap_or_default();
        let mut pts = pts;
        if let Some(p) = pts.get_mut(1) {
            *p += ProjectivePoint::GENERATOR;
        }
        if let Some(r) = responses.get_mut(1) {
            *r = encode_points(&pts);
        }
        assert!(matches!(finalize(t, &responses, &blinding), Err(OprfError::Inconsistent { index: 1, .. })));
        // An identity point is refused by the node.
        let mut bad = blinded.clone();
        bad.truncate(POINT_BYTES);
        bad.fill(0);
        assert!(evaluate(&key, &bad, "client").is_err());
    }
}
