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
//! - To name a node that answers wrong, node `i` also sends its public key share
//!   `K_i = k_i·G` and one batched Chaum–Pedersen proof per batch that its answers `Y_j` and
//!   `K_i` have the same discrete logarithm: for coefficients `c_j` (128 bits each) hashed
//!   from `K_i`, the blinded points and the answers (Fiat–Shamir), it proves
//!   `log_G K_i = log_{B*} Y*` with `B* = Σ c_j B_j`, `Y* = Σ c_j Y_j`. A batch with any
//!   `Y_j ≠ k_i·B_j` passes only with probability about `2^-128` per hash query.
//! - The key comes from a Feldman-verifiable DKG, so every `K_i` is public: each node also
//!   sends the table `(K_1, ..., K_n)` it derived from the dealers' commitments. The honest
//!   nodes, more than half, send the same table; the client takes it ([`agreed_key_shares`],
//!   naming every node whose table differs), names a node whose `K_i` is not the table's,
//!   and verifies the proofs when the answers are inconsistent: a node whose proof fails is
//!   named (also with `n = 3`).
//!
//! The nodes see only uniformly random blinded points; the client sees `k_i·B` for its own
//! items and `k_i·G` (which, with the `t` shares it lacks, reveal nothing about `k`).

use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::PrimeField as _;
use k256::elliptic_curve::group::prime::PrimeCurveAffine;
use k256::elliptic_curve::hash2curve::{ExpandMsgXmd, GroupDigest};
use k256::elliptic_curve::ops::LinearCombination;
use k256::elliptic_curve::ops::Reduce;
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

/// Bytes of the header of a node's answer: its public key share `K_i` and the batch proof
/// (challenge and response scalars).
pub const PROOF_BYTES: usize = POINT_BYTES + 64;

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
    /// These nodes sent a table of public key shares other than the one more than half of
    /// the nodes sent (the honest nodes all send the key generation's table).
    #[error("{} sent public key shares that differ from the majority's", names(nodes))]
    KeyTable {
        /// The nodes named.
        nodes: Vec<PartyId>,
    },
    /// No table of public key shares was sent by more than half of the nodes: more than `t`
    /// nodes deviate, which the protocol does not tolerate.
    #[error("no table of public key shares has a majority of the nodes")]
    NoKeyTableMajority,
    /// These nodes answered under a public key share `K_i` other than the agreed table's.
    #[error("{} published a wrong public key share", names(nodes))]
    KeyShare {
        /// The nodes named.
        nodes: Vec<PartyId>,
    },
    /// Hash to curve failed.
    #[error("hash to curve: {0}")]
    HashToCurve(String),
}

fn names(nodes: &[PartyId]) -> String {
    nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `H(item)`.
pub fn hash_to_curve(item: &[u8]) -> Result<ProjectivePoint, OprfError> {
    Secp256k1::hash_from_bytes::<ExpandMsgXmd<sha2::Sha256>>(&[item], &[DST])
        .map_err(|e| OprfError::HashToCurve(e.to_string()))
}

/// Encodes points (compressed), in parallel.
pub fn encode_points(points: &[ProjectivePoint]) -> Vec<u8> {
    let encoded: Vec<[u8; POINT_BYTES]> = points.par_iter().map(|p| compressed(&p.to_affine())).collect();
    encoded.concat()
}

/// One point, compressed (the identity, which has no compressed form here, as zeros).
fn compressed(point: &AffinePoint) -> [u8; POINT_BYTES] {
    let e = point.to_encoded_point(true);
    let mut out = [0u8; POINT_BYTES];
    if e.as_bytes().len() == POINT_BYTES {
        out.copy_from_slice(e.as_bytes());
    }
    out
}

/// Decodes compressed points, refusing the identity and anything off the curve.
pub fn decode_points(bytes: &[u8], from: &str) -> Result<Vec<ProjectivePoint>, OprfError> {
    Ok(decode_affine(bytes, from)?.into_iter().map(ProjectivePoint::from).collect())
}

/// As [`decode_points`], in affine form.
pub fn decode_affine(bytes: &[u8], from: &str) -> Result<Vec<AffinePoint>, OprfError> {
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
            let point = affine.ok_or_else(bad)?;
            if bool::from(point.is_identity()) {
                return Err(bad());
            }
            Ok(point)
        })
        .collect()
}

/// The same point in arkworks form (both libraries implement secp256k1).
fn to_ark(p: &AffinePoint) -> ark_secp256k1::Affine {
    let e = p.to_encoded_point(false);
    match (e.x(), e.y()) {
        (Some(x), Some(y)) => ark_secp256k1::Affine::new_unchecked(
            ark_secp256k1::Fq::from_be_bytes_mod_order(x),
            ark_secp256k1::Fq::from_be_bytes_mod_order(y),
        ),
        _ => ark_secp256k1::Affine::zero(),
    }
}

fn to_ark_all(points: &[AffinePoint]) -> Vec<ark_secp256k1::Affine> {
    points.par_iter().map(to_ark).collect()
}

/// Back to k256 (the identity for the point at infinity).
fn from_ark(p: &ark_secp256k1::Projective) -> ProjectivePoint {
    use ark_ff::BigInteger;
    let Some((x, y)) = p.into_affine().xy() else { return ProjectivePoint::IDENTITY };
    let (x, y) = (x.into_bigint().to_bytes_be(), y.into_bigint().to_bytes_be());
    if x.len() != 32 || y.len() != 32 {
        return ProjectivePoint::IDENTITY;
    }
    let e = EncodedPoint::from_affine_coordinates(
        k256::FieldBytes::from_slice(&x),
        k256::FieldBytes::from_slice(&y),
        false,
    );
    let a: Option<AffinePoint> = AffinePoint::from_encoded_point(&e).into();
    a.map_or(ProjectivePoint::IDENTITY, ProjectivePoint::from)
}

fn point_bytes(p: &ProjectivePoint) -> [u8; POINT_BYTES] {
    let e = p.to_affine().to_encoded_point(true);
    let mut out = [0u8; POINT_BYTES];
    if e.as_bytes().len() == POINT_BYTES {
        out.copy_from_slice(e.as_bytes());
    }
    out
}

/// The batch's 128-bit coefficients `c_j` (as low and high 64-bit halves), hashed from the
/// statement: the node's `K_i`, the blinded points and its answers (all encoded).
fn batch_coefficients(public: &[u8], blinded: &[u8], answers: &[u8], len: usize) -> (Vec<u64>, Vec<u64>) {
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 oprf batch dleq coefficients");
    h.update(&(len as u64).to_le_bytes());
    h.update(public);
    h.update(blinded);
    h.update(answers);
    let mut xof = h.finalize_xof();
    let mut lo = Vec::with_capacity(len);
    let mut hi = Vec::with_capacity(len);
    let mut buf = [0u8; 16 * 256];
    let mut left = len;
    while left > 0 {
        let take = left.min(256);
        let chunk = buf.get_mut(..16 * take).unwrap_or_default();
        xof.fill(chunk);
        for c in chunk.chunks_exact(16) {
            let (l, h) = c.split_at(8);
            lo.push(u64::from_le_bytes(l.try_into().unwrap_or_default()));
            hi.push(u64::from_le_bytes(h.try_into().unwrap_or_default()));
        }
        left -= take;
    }
    (lo, hi)
}

/// `Σ c_j P_j` for 128-bit `c_j = lo_j + 2^64·hi_j` (two 64-bit multi-scalar multiplications).
fn combine(points: &[ark_secp256k1::Affine], lo: &[u64], hi: &[u64]) -> ProjectivePoint {
    let low = ark_secp256k1::Projective::msm_u64(points, lo);
    let high = ark_secp256k1::Projective::msm_u64(points, hi);
    let two_64 = ark_secp256k1::Fr::from(u64::MAX) + ark_secp256k1::Fr::from(1u64);
    from_ark(&(low + high * two_64))
}

/// The Chaum–Pedersen challenge for `log_G K = log_{B*} Y*` with commitments `A1, A2`.
fn dleq_challenge(points: [&ProjectivePoint; 5]) -> Scalar {
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 oprf batch dleq challenge");
    for p in points {
        h.update(&point_bytes(p));
    }
    <Scalar as Reduce<k256::U256>>::reduce_bytes(&k256::FieldBytes::from(*h.finalize().as_bytes()))
}

/// `B*` of node `i`'s batch, and `Y*` when its answers are given in affine form (the node
/// itself computes `Y* = k_i·B*`).
fn batch_statement(
    public: &[u8],
    blinded: (&[u8], &[AffinePoint]),
    answers: (&[u8], Option<&[AffinePoint]>),
) -> (ProjectivePoint, Option<ProjectivePoint>) {
    let (lo, hi) = batch_coefficients(public, blinded.0, answers.0, blinded.1.len());
    let b_star = combine(&to_ark_all(blinded.1), &lo, &hi);
    (b_star, answers.1.map(|a| combine(&to_ark_all(a), &lo, &hi)))
}

/// The table `(K_1, ..., K_n)` a node sends the client: the key generation's public key
/// shares (arkworks points), compressed. An identity entry (probability `2^-256` for honest
/// dealers) is encoded as zeros, which the client refuses.
pub fn encode_key_table(public_shares: &[ark_secp256k1::Projective]) -> Vec<u8> {
    let points: Vec<ProjectivePoint> = public_shares.iter().map(from_ark).collect();
    encode_points(&points)
}

/// The client's view of the public key shares: the table sent by more than half of the `n`
/// nodes (`tables[i]` from node `i + 1`). With at most `t < n/2` cheating nodes that is the
/// honest nodes' table, so a node whose table differs (or does not decode: exactly `n` valid
/// points) is named.
pub fn agreed_key_shares(tables: &[Vec<u8>]) -> Result<Vec<ProjectivePoint>, OprfError> {
    let n = tables.len();
    let decoded: Vec<Option<Vec<ProjectivePoint>>> = tables
        .iter()
        .map(|table| (table.len() == n * POINT_BYTES).then(|| decode_points(table, "a node").ok()).flatten())
        .collect();
    let votes = |candidate: &Vec<ProjectivePoint>| decoded.iter().filter(|d| d.as_ref() == Some(candidate)).count();
    let agreed = decoded.iter().flatten().find(|candidate| 2 * votes(candidate) > n).cloned();
    let agreed = agreed.ok_or(OprfError::NoKeyTableMajority)?;
    let dissenters: Vec<PartyId> = decoded
        .iter()
        .enumerate()
        .filter(|(_, d)| d.as_ref() != Some(&agreed))
        .filter_map(|(i, _)| PartyId::from_index(i))
        .collect();
    if !dissenters.is_empty() {
        return Err(OprfError::KeyTable { nodes: dissenters });
    }
    Ok(agreed)
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

/// Node step: its public key share `K_i = k_i·G` and the batch proof ([`PROOF_BYTES`]), then
/// `k_i · B_j` for every blinded point (encoded).
pub fn evaluate(key_share: &Scalar, blinded: &[u8], from: &str) -> Result<Vec<u8>, OprfError> {
    evaluate_with(key_share, key_share, blinded, from)
}

/// As [`evaluate`], with the answers computed under `answer_key` while `K_i` and the proof
/// use `key_share` (tests: a node that answers with a wrong key share).
#[doc(hidden)]
pub fn evaluate_with(
    key_share: &Scalar,
    answer_key: &Scalar,
    blinded: &[u8],
    from: &str,
) -> Result<Vec<u8>, OprfError> {
    let points = decode_affine(blinded, from)?;
    let answers: Vec<ProjectivePoint> = points.par_iter().map(|p| ProjectivePoint::from(*p) * answer_key).collect();
    let answers_affine: Vec<AffinePoint> = answers.par_iter().map(|p| p.to_affine()).collect();
    let answer_bytes = encode_affine(&answers_affine);
    let public = ProjectivePoint::GENERATOR * key_share;
    let public_bytes = point_bytes(&public);
    // Batch proof: the node knows k_i with K_i = k_i·G and Y* = k_i·B*.
    let (b_star, _) = batch_statement(&public_bytes, (blinded, &points), (&answer_bytes, None));
    let y_star = b_star * key_share;
    let mut nonce = Scalar::random(&mut rand::rngs::OsRng);
    let (a1, a2) = (ProjectivePoint::GENERATOR * nonce, b_star * nonce);
    let challenge = dleq_challenge([&public, &b_star, &y_star, &a1, &a2]);
    let response = nonce + challenge * key_share;
    nonce = Scalar::ZERO;
    let _ = nonce;
    let mut out = Vec::with_capacity(PROOF_BYTES + answer_bytes.len());
    out.extend_from_slice(&public_bytes);
    out.extend_from_slice(&challenge.to_bytes());
    out.extend_from_slice(&response.to_bytes());
    out.extend_from_slice(&answer_bytes);
    Ok(out)
}

fn encode_affine(points: &[AffinePoint]) -> Vec<u8> {
    let encoded: Vec<[u8; POINT_BYTES]> = points.par_iter().map(compressed).collect();
    encoded.concat()
}

/// One node's answer, split: `K_i`, the proof and the answered points.
struct Answer<'a> {
    public: ProjectivePoint,
    public_bytes: &'a [u8],
    challenge: Option<Scalar>,
    response: Option<Scalar>,
    points_bytes: &'a [u8],
    points: Vec<AffinePoint>,
}

fn parse_answer<'a>(bytes: &'a [u8], from: &str) -> Result<Answer<'a>, OprfError> {
    if bytes.len() < PROOF_BYTES {
        return Err(OprfError::Shape(format!("{from} sent no key share and proof")));
    }
    let (header, points_bytes) = bytes.split_at(PROOF_BYTES);
    let (public_bytes, scalars) = header.split_at(POINT_BYTES);
    let (challenge, response) = scalars.split_at(32);
    let scalar = |b: &[u8]| -> Option<Scalar> { Scalar::from_repr(*k256::FieldBytes::from_slice(b)).into() };
    let public = decode_points(public_bytes, from)?.first().copied().unwrap_or(ProjectivePoint::IDENTITY);
    Ok(Answer {
        public,
        public_bytes,
        challenge: scalar(challenge),
        response: scalar(response),
        points_bytes,
        points: decode_affine(points_bytes, from)?,
    })
}

/// Verifies one node's batch proof against its `K_i` (the caller checked the `K_i`).
fn verify_batch(answer: &Answer<'_>, blinded: &[u8], blinded_points: &[AffinePoint]) -> bool {
    let (Some(challenge), Some(response)) = (answer.challenge, answer.response) else { return false };
    if answer.points.len() != blinded_points.len() {
        return false;
    }
    let (b_star, y_star) =
        batch_statement(answer.public_bytes, (blinded, blinded_points), (answer.points_bytes, Some(&answer.points)));
    let Some(y_star) = y_star else { return false };
    let minus_e = -challenge;
    let a1 = ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &response, &answer.public, &minus_e);
    let a2 = ProjectivePoint::lincomb(&b_star, &response, &y_star, &minus_e);
    dleq_challenge([&answer.public, &b_star, &y_star, &a1, &a2]) == challenge
}

/// Checks every node's batch proof (the blinded points as sent, encoded) and returns the
/// nodes whose proof fails; `responses[i]` is node `i + 1`'s answer. Run by [`finalize`]
/// when the answers are inconsistent; public for benchmarks.
pub fn failing_proofs(responses: &[Vec<u8>], blinded: &[u8]) -> Result<Vec<PartyId>, OprfError> {
    let blinded_points = decode_affine(blinded, "the client")?;
    let mut failing = Vec::new();
    for (i, r) in responses.iter().enumerate() {
        let node = PartyId::from_index(i).ok_or_else(|| OprfError::Shape(format!("no node {}", i + 1)))?;
        let ok = parse_answer(r, &node.to_string()).is_ok_and(|a| verify_batch(&a, blinded, &blinded_points));
        if !ok {
            failing.push(node);
        }
    }
    Ok(failing)
}

fn small_scalars(xs: &[u64]) -> Vec<ark_secp256k1::Fr> {
    xs.iter().map(|x| ark_secp256k1::Fr::from(*x)).collect()
}

/// Client step 2: from every node's answers (`responses[i]` from node `i + 1`: key share,
/// proof, points) to the blinded points `blinded` (as sent), checks consistency and returns
/// the tags. `key_shares` is the agreed table of public key shares ([`agreed_key_shares`]):
/// a node answering under another `K_i` is named. Needs `n ≥ t + 2` for the check. When
/// the answers are inconsistent, the batch proofs name the node(s) that answered wrong.
pub fn finalize(
    t: usize,
    key_shares: &[ProjectivePoint],
    responses: &[Vec<u8>],
    blinding: &Blinding,
    blinded: &[u8],
) -> Result<Vec<Tag>, OprfError> {
    let n = responses.len();
    if n < t + 2 {
        return Err(OprfError::Shape(format!("{n} responses cannot be checked at threshold {t}")));
    }
    if key_shares.len() != n {
        return Err(OprfError::Shape(format!("{} public key shares for {n} nodes", key_shares.len())));
    }
    let len = blinding.rho.len();
    let all_nodes = || Culprit::OneOf(PartyId::all(n).collect());
    let answers: Vec<Answer<'_>> = responses
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let node = PartyId::from_index(i);
            let from = node.map_or_else(|| format!("node {}", i + 1), |p| p.to_string());
            let blame = || OprfError::Inconsistent { index: 0, culprit: node.map_or(Culprit::Unknown, Culprit::Party) };
            let answer = parse_answer(r, &from).map_err(|_| blame())?;
            if answer.points.len() != len {
                return Err(blame());
            }
            Ok(answer)
        })
        .collect::<Result<_, _>>()?;
    let base_x: Vec<u64> = (1..=t as u64 + 1).collect();
    let base = small_scalars(&base_x);
    let lambda: Vec<Scalar> =
        lagrange_coefficients(&base, ark_secp256k1::Fr::from(0u64)).iter().map(scalar_from_ark).collect();
    let predictors: Vec<Vec<Scalar>> = ((t as u64 + 2)..=n as u64)
        .map(|x| lagrange_coefficients(&base, ark_secp256k1::Fr::from(x)).iter().map(scalar_from_ark).collect())
        .collect();
    // Each node's K_i is the agreed one, so its proof binds its answers to its true k_i.
    let wrong_keys: Vec<PartyId> = answers
        .iter()
        .zip(key_shares)
        .enumerate()
        .filter(|(_, (a, k))| a.public != **k)
        .filter_map(|(i, _)| PartyId::from_index(i))
        .collect();
    if !wrong_keys.is_empty() {
        return Err(OprfError::KeyShare { nodes: wrong_keys });
    }
    let (head, rest) = answers.split_at(t + 1);
    let point = |a: &Answer<'_>, j: usize| -> ProjectivePoint {
        a.points.get(j).map_or(ProjectivePoint::IDENTITY, |p| ProjectivePoint::from(*p))
    };
    let combine = |j: usize, coeffs: &[Scalar], scale: Option<&Scalar>| -> ProjectivePoint {
        let c: Vec<Scalar> = coeffs.iter().map(|c| scale.map_or(*c, |s| *c * s)).collect();
        let pts: Vec<ProjectivePoint> = head.iter().map(|a| point(a, j)).collect();
        match (pts.as_slice(), c.as_slice()) {
            ([a, b], [x, y]) => ProjectivePoint::lincomb(a, x, b, y),
            _ => pts.iter().zip(&c).fold(ProjectivePoint::IDENTITY, |acc, (p, s)| acc + *p * s),
        }
    };
    // The honest nodes' proofs verify; a node that answered wrong cannot prove it.
    let blame = |index: usize| -> OprfError {
        let culprit = match failing_proofs(responses, blinded) {
            Err(e) => return e,
            Ok(failing) => match failing.as_slice() {
                [one] => Culprit::Party(*one),
                [] => all_nodes(),
                several => Culprit::OneOf(several.to_vec()),
            },
        };
        OprfError::Inconsistent { index, culprit }
    };
    // Every further node's answers must lie on the polynomial through the first t + 1 nodes'
    // answers. One random combination of the whole batch checks that; only a failing batch
    // is searched item by item, for the first wrong index.
    if !batch_consistent(head, rest, &predictors) {
        let wrong =
            |j: &usize| predictors.iter().zip(rest).any(|(row, node)| point(node, *j) != combine(*j, row, None));
        return Err(blame((0..len).find(wrong).unwrap_or(0)));
    }
    let results: Vec<Result<Tag, usize>> = (0..len)
        .into_par_iter()
        .map(|j| {
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
            Err(index) => return Err(blame(index)),
        }
    }
    Ok(tags)
}

/// Whether every node of `rest` answered on the degree-`t` polynomial through the answers of
/// `head` (`predictors[r]`: the Lagrange coefficients at `rest[r]`'s point), for the whole
/// batch at once: with coefficients `c_j` of 128 bits drawn here, after every answer arrived,
/// `Σ c_j Y_{r,j} = Σ_i λ_{r,i} Σ_j c_j Y_{i,j}`. A batch holding a wrong answer passes with
/// probability at most 2^-128. Costs two 64-bit multi-scalar multiplications per node
/// instead of a `(t + 1)`-term combination per item per further node.
fn batch_consistent(head: &[Answer<'_>], rest: &[Answer<'_>], predictors: &[Vec<Scalar>]) -> bool {
    use rand::Rng as _;
    let len = head.first().map_or(0, |a| a.points.len());
    if rest.is_empty() || len == 0 {
        return true;
    }
    let mut rng = rand::thread_rng();
    let lo: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
    let hi: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
    let sum = |a: &Answer<'_>| combine(&to_ark_all(&a.points), &lo, &hi);
    let head_sums: Vec<ProjectivePoint> = head.iter().map(sum).collect();
    rest.iter().zip(predictors).all(|(node, row)| {
        let predicted = head_sums.iter().zip(row).fold(ProjectivePoint::IDENTITY, |acc, (p, c)| acc + *p * c);
        node.points.len() == len && sum(node) == predicted
    })
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

    fn shares(n: usize, t: usize) -> (ark_secp256k1::Fr, Vec<Scalar>) {
        let shamir = Shamir::<ark_secp256k1::Fr>::new(n, t).unwrap_or_else(|_| unreachable!());
        let mut rng = rand::thread_rng();
        let k = <ark_secp256k1::Fr as ark_ff::UniformRand>::rand(&mut rng);
        (k, shamir.share(k, t, &mut rng).iter().map(scalar_from_ark).collect())
    }

    fn public_shares(shares: &[Scalar]) -> Vec<ProjectivePoint> {
        shares.iter().map(|s| ProjectivePoint::GENERATOR * s).collect()
    }

    #[test]
    fn threshold_oprf_matches_clear_and_names_a_bad_node() {
        let (n, t) = (3usize, 1usize);
        let (k, shares) = shares(n, t);
        let items: Vec<&[u8]> = vec![b"str:alice", b"str:bob", b"addr:xyz"];
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let key_shares = public_shares(&shares);
        let mut responses: Vec<Vec<u8>> =
            shares.iter().map(|s| evaluate(s, &blinded, "client").unwrap_or_default()).collect();
        let honest = responses.clone();
        let tags = finalize(t, &key_shares, &responses, &blinding, &blinded).unwrap_or_default();
        let key = scalar_from_ark(&k);
        assert_eq!(tags.len(), items.len());
        for (item, tag) in items.iter().zip(&tags) {
            assert_eq!(Some(*tag), tag_in_clear(&key, item).ok());
        }
        assert_eq!(failing_proofs(&responses, &blinded).ok(), Some(vec![]));
        // Node 2 answers item 1 with another point: named by its failing proof.
        let (header, body) = responses.get(1).map_or((&[][..], &[][..]), |r| r.split_at(PROOF_BYTES));
        let mut pts = decode_points(body, "x").unwrap_or_default();
        if let Some(p) = pts.get_mut(1) {
            *p += ProjectivePoint::GENERATOR;
        }
        let tampered = [header, &encode_points(&pts)].concat();
        if let Some(r) = responses.get_mut(1) {
            *r = tampered;
        }
        let two = PartyId::new(2).unwrap_or_else(|| unreachable!());
        match finalize(t, &key_shares, &responses, &blinding, &blinded) {
            Err(OprfError::Inconsistent { index: 1, culprit: Culprit::Party(p) }) => assert_eq!(p, two),
            other => panic!("{other:?}"),
        }
        // A wrong (valid) public key share is named against the agreed table, before the
        // answers are looked at.
        if let Some(r) = responses.get_mut(2) {
            let k3 = decode_points(r.get(..POINT_BYTES).unwrap_or_default(), "x").unwrap_or_default();
            let wrong = encode_points(&[k3.first().copied().unwrap_or_default() + ProjectivePoint::GENERATOR]);
            r.splice(..POINT_BYTES, wrong);
        }
        let three = PartyId::new(3).unwrap_or_else(|| unreachable!());
        match finalize(t, &key_shares, &responses, &blinding, &blinded) {
            Err(OprfError::KeyShare { nodes }) => assert_eq!(nodes, vec![three]),
            other => panic!("{other:?}"),
        }
        // A node that answers consistently under a wrong key share (so its proof verifies
        // against the K_i it sends) is named too: its K_i is not the table's.
        let mut consistent_liar = honest;
        if let (Some(r), Some(s)) = (consistent_liar.get_mut(0), shares.first()) {
            *r = evaluate(&(*s + Scalar::ONE), &blinded, "client").unwrap_or_default();
        }
        let one = PartyId::new(1).unwrap_or_else(|| unreachable!());
        match finalize(t, &key_shares, &consistent_liar, &blinding, &blinded) {
            Err(OprfError::KeyShare { nodes }) => assert_eq!(nodes, vec![one]),
            other => panic!("{other:?}"),
        }
        // An identity point is refused by the node.
        let mut bad = blinded.clone();
        bad.truncate(POINT_BYTES);
        bad.fill(0);
        assert!(evaluate(&key, &bad, "client").is_err());
    }

    /// Five nodes at threshold 2: a node answering with a wrong key share is named, and
    /// truncated or garbled answers are refused without a panic.
    #[test]
    fn five_nodes_name_the_wrong_answer_and_refuse_garbage() {
        let (n, t) = (5usize, 2usize);
        let (_, shares) = shares(n, t);
        let key_shares = public_shares(&shares);
        let items: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d"];
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let mut responses: Vec<Vec<u8>> = shares
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let answer_key = if i == 3 { *s + Scalar::ONE } else { *s };
                evaluate_with(s, &answer_key, &blinded, "client").unwrap_or_default()
            })
            .collect();
        let four = PartyId::new(4).unwrap_or_else(|| unreachable!());
        match finalize(t, &key_shares, &responses, &blinding, &blinded) {
            Err(OprfError::Inconsistent { culprit: Culprit::Party(p), .. }) => assert_eq!(p, four),
            other => panic!("{other:?}"),
        }
        for len in [0, 10, PROOF_BYTES, PROOF_BYTES + 40] {
            if let Some(r) = responses.get_mut(0) {
                r.truncate(len);
            }
            assert!(finalize(t, &key_shares, &responses, &blinding, &blinded).is_err());
        }
    }

    /// The consistency check combines the whole batch: one wrong answer, the last of 300, by a
    /// node outside the first `t + 1` (whose answers are predicted) or inside them, is found,
    /// its index reported and the node named.
    #[test]
    fn one_wrong_answer_in_a_large_batch_is_found() {
        let (n, t) = (5usize, 2usize);
        let (k, shares) = shares(n, t);
        let key_shares = public_shares(&shares);
        let owned: Vec<Vec<u8>> = (0..300u32).map(|i| format!("str:item{i}").into_bytes()).collect();
        let items: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let honest: Vec<Vec<u8>> = shares.iter().map(|s| evaluate(s, &blinded, "client").unwrap_or_default()).collect();
        let tags = finalize(t, &key_shares, &honest, &blinding, &blinded).unwrap_or_default();
        let key = scalar_from_ark(&k);
        assert_eq!(tags.len(), 300);
        assert!(items.iter().zip(&tags).all(|(item, tag)| tag_in_clear(&key, item).ok() == Some(*tag)));
        for liar in [4usize, 1] {
            let mut responses = honest.clone();
            let (header, body) = responses.get(liar).map_or((&[][..], &[][..]), |r| r.split_at(PROOF_BYTES));
            let mut pts = decode_points(body, "x").unwrap_or_default();
            if let Some(p) = pts.last_mut() {
                *p += *p;
            }
            let tampered = [header, &encode_points(&pts)].concat();
            if let Some(r) = responses.get_mut(liar) {
                *r = tampered;
            }
            let named = PartyId::from_index(liar).unwrap_or_else(|| unreachable!());
            match finalize(t, &key_shares, &responses, &blinding, &blinded) {
                Err(OprfError::Inconsistent { index: 299, culprit: Culprit::Party(p) }) => assert_eq!(p, named),
                other => panic!("{other:?}"),
            }
        }
    }

    /// The client takes the table most nodes sent and names every node that sent another
    /// (or a malformed) one; without a majority it aborts.
    #[test]
    fn the_majority_key_table_is_agreed_and_dissenters_are_named() {
        let (n, t) = (5usize, 2usize);
        let (_, shares) = shares(n, t);
        let honest = encode_points(&public_shares(&shares));
        let id = |i: u16| PartyId::new(i).unwrap_or_else(|| unreachable!());
        let mut tables = vec![honest.clone(); n];
        assert_eq!(agreed_key_shares(&tables).ok(), Some(public_shares(&shares)));
        // Node 2 frames node 4 (another valid point), node 5 sends a truncated table.
        let mut framed = public_shares(&shares);
        if let Some(k) = framed.get_mut(3) {
            *k += ProjectivePoint::GENERATOR;
        }
        if let Some(table) = tables.get_mut(1) {
            *table = encode_points(&framed);
        }
        if let Some(table) = tables.get_mut(4) {
            table.truncate(4 * POINT_BYTES);
        }
        match agreed_key_shares(&tables) {
            Err(OprfError::KeyTable { nodes }) => assert_eq!(nodes, vec![id(2), id(5)]),
            other => panic!("{other:?}"),
        }
        // An invalid point (not on the curve) makes a table malformed, never a panic.
        if let Some(table) = tables.get_mut(4) {
            *table = honest.clone();
            table.iter_mut().skip(1).take(32).for_each(|b| *b = 0xff);
        }
        match agreed_key_shares(&tables) {
            Err(OprfError::KeyTable { nodes }) => assert_eq!(nodes, vec![id(2), id(5)]),
            other => panic!("{other:?}"),
        }
        // Three of five disagreeing: no majority.
        if let Some(table) = tables.get_mut(0) {
            *table = Vec::new();
        }
        assert!(matches!(agreed_key_shares(&tables), Err(OprfError::NoKeyTableMajority)));
        assert!(matches!(agreed_key_shares(&[]), Err(OprfError::NoKeyTableMajority)));
    }
}
