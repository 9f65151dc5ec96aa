//! Threshold DH-OPRF over secp256k1: `F_k(x) = k · H(x)`, with `H` the RFC 9380 hash to
//! curve (`secp256k1_XMD:SHA-256_SSWU_RO_`) and the key `k` Shamir-shared (degree `t`) across
//! the nodes.
//!
//! - Each client is answered by `t + 1` nodes `S` ([`answering_nodes`], rotated per client so
//!   every node answers about as many items); the others only send their table of `K_i`.
//! - The client blinds additively: `B = H(x) + ρ·G` with a fresh random `ρ` (a fixed-base
//!   multiplication), and sends `B` to the nodes of `S`.
//! - Node `i ∈ S` returns `Y_i = λ_i k_i · B` (one scalar multiplication per item), with
//!   `λ_i` its Lagrange coefficient at 0 in `S`, so the client only adds:
//!   `Σ_{i∈S} Y_i = k·B = k·H(x) + ρ·K` with `K = k·G`. It removes `ρ·K` (a fixed-base
//!   multiplication by a table built once per batch) and hashes `k·H(x)` to a 32-byte tag.
//! - Every answering node sends its scaled public key share `λ_i K_i` (`K_i = k_i·G`) and one
//!   batched Chaum–Pedersen proof that its answers `Y_j` and `λ_i K_i` have the same discrete
//!   logarithm: for coefficients `c_j` (128 bits each) hashed from `λ_i K_i`, the blinded
//!   points and the answers (Fiat–Shamir), it proves `log_G λ_i K_i = log_{B*} Y*` with
//!   `B* = Σ c_j B_j`, `Y* = Σ c_j Y_j`. A batch with any `Y_j ≠ λ_i k_i·B_j` passes only
//!   with probability about `2^-128` per hash query. The client verifies every proof: with
//!   `t + 1` answers there is no redundancy to check against, and a proof costs it two 64-bit
//!   multi-scalar multiplications per batch, a fraction of the scalar multiplication per item
//!   a further answering node would cost.
//! - The key comes from a Feldman-verifiable DKG, so every `K_i` is public: each node sends
//!   the table `(K_1, ..., K_n)` it derived from the dealers' commitments. The honest nodes,
//!   more than half, send the same table; the client takes it ([`agreed_key_shares`], naming
//!   every node whose table differs), names an answering node whose `λ_i K_i` is not the
//!   table's, and names a node whose proof fails (any `n`, `n = 3` included).
//!
//! The nodes see only uniformly random blinded points (`ρ·G` is uniform and independent of
//! `x`); the client sees `λ_i k_i·B` for its own items and `k_i·G` (which, with the `t`
//! shares it lacks, reveal nothing about `k`). Both blinding multiplications are by the
//! fixed points `G` and `K`, in constant time: about half of a variable-base one each.

use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::PrimeField as _;
use k256::elliptic_curve::group::prime::PrimeCurveAffine;
use k256::elliptic_curve::group::Group as _;
use k256::elliptic_curve::hash2curve::{hash_to_field, ExpandMsgXmd, GroupDigest, Isogeny, OsswuMap};
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::ops::{LinearCombination, MulByGenerator};
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq as _};
use k256::elliptic_curve::BatchNormalize;
use k256::elliptic_curve::{Field, PrimeField};
use k256::{AffinePoint, EncodedPoint, FieldElement, ProjectivePoint, Scalar, Secp256k1};
use rayon::prelude::*;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::PartyId;
use zeroize::Zeroize;

/// Domain separation tag of the hash to curve.
pub const DST: &[u8] = b"TACIT-PSI-V1-OPRF-secp256k1_XMD:SHA-256_SSWU_RO_";

/// Bytes of one point on the wire (SEC1 uncompressed, `04 ‖ x ‖ y`): decoding checks the
/// curve equation only, where a compressed point costs a square root (about 9 µs here) at
/// every node and client that reads it.
pub const POINT_BYTES: usize = 65;

/// The SEC1 prefix of an uncompressed point, the only one accepted.
const UNCOMPRESSED: u8 = 0x04;

/// Whether an encoded point has the wire's form (libsecp256k1 and k256 also parse the
/// compressed and hybrid forms).
fn wire_form(chunk: &[u8]) -> bool {
    chunk.first() == Some(&UNCOMPRESSED)
}

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
    /// These answering nodes' answers fail their batch proof (an answer is not
    /// `λ_i k_i · B`), or their answer does not parse or has the wrong length.
    #[error("{} answered the OPRF wrong", names(nodes))]
    WrongAnswers {
        /// The nodes named.
        nodes: Vec<PartyId>,
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
    /// These nodes answered under a public key share other than `λ_i K_i` from the agreed
    /// table.
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

/// `H(item)` for every item, equal to [`hash_to_curve`]: the same RFC 9380 steps, with every
/// field inversion (the simplified SWU map's and the 3-isogeny's, six per item) done as one
/// batch inversion per chunk of items (Montgomery's trick), and the map's square root taken
/// by one fixed exponentiation ([`sswu`]) instead of the generic square-root ratio, which
/// cost three times as much here.
pub fn hash_to_curve_batch(items: &[&[u8]]) -> Result<Vec<ProjectivePoint>, OprfError> {
    items.par_chunks(256).map(|c| hash_chunk(c, DST)).collect::<Result<Vec<_>, _>>().map(|chunks| chunks.concat())
}

fn hash_chunk(items: &[&[u8]], dst: &[u8]) -> Result<Vec<ProjectivePoint>, OprfError> {
    let coefficients = <FieldElement as Isogeny>::COEFFICIENTS;
    let mut us = Vec::with_capacity(2 * items.len());
    for item in items {
        let mut u = [FieldElement::ZERO; 2];
        hash_to_field::<ExpandMsgXmd<sha2::Sha256>, FieldElement>(&[item], &[dst], &mut u)
            .map_err(|e| OprfError::HashToCurve(e.to_string()))?;
        us.extend(u);
    }
    // The map's denominators `Z²u⁴ + Zu²`, inverted together (a zero one, for u = 0 or
    // u² = -1/Z, takes the RFC's exceptional value in `sswu`).
    let params = &<FieldElement as OsswuMap>::PARAMS;
    let zu2: Vec<FieldElement> = us.iter().map(|u| (params.z * u.square()).normalize()).collect();
    let mut inverses: Vec<FieldElement> = zu2.iter().map(|t| (t.square() + t).normalize()).collect();
    let exceptional: Vec<Choice> = inverses.iter().map(FieldElement::normalizes_to_zero).collect();
    for (d, z) in inverses.iter_mut().zip(&exceptional) {
        d.conditional_assign(&FieldElement::ONE, *z);
    }
    batch_invert(&mut inverses);
    let constants = SswuConstants::get();
    // Per map output (two per item): the isogeny's numerators and denominators.
    let mut numerators = Vec::with_capacity(4 * items.len());
    let mut denominators = Vec::with_capacity(4 * items.len());
    for (((u, zu2), inverse), exceptional) in us.iter().zip(&zu2).zip(&inverses).zip(&exceptional) {
        let (x, y) = sswu(u, zu2, inverse, *exceptional, constants);
        let powers = [FieldElement::ONE, x, x.square(), x.square() * x];
        let poly = |k: &[FieldElement]| FieldElement::compute_iso(&powers, k);
        numerators.extend([poly(coefficients.xnum), poly(coefficients.ynum) * y]);
        denominators.extend([poly(coefficients.xden), poly(coefficients.yden)]);
    }
    // A zero denominator (probability about 2^-256) stays zero, and the point is refused
    // below as off the curve, rather than spoiling the batch inversion.
    let zero: Vec<Choice> = denominators.iter().map(|d| d.normalizes_to_zero()).collect();
    for (d, z) in denominators.iter_mut().zip(&zero) {
        d.conditional_assign(&FieldElement::ONE, *z);
    }
    batch_invert(&mut denominators);
    let coordinates: Vec<FieldElement> = numerators
        .iter()
        .zip(&denominators)
        .zip(&zero)
        .map(|((n, d), z)| FieldElement::conditional_select(&(*n * d), &FieldElement::ZERO, *z).normalize())
        .collect();
    coordinates
        .chunks_exact(4)
        .zip(items)
        .map(|(c, item)| {
            let bad = || OprfError::HashToCurve(format!("no point for an item of {} bytes", item.len()));
            let affine = |x: &FieldElement, y: &FieldElement| -> Result<AffinePoint, OprfError> {
                let e = EncodedPoint::from_affine_coordinates(&x.to_bytes(), &y.to_bytes(), false);
                Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&e)).ok_or_else(bad)
            };
            match c {
                [x0, y0, x1, y1] => Ok(ProjectivePoint::from(affine(x0, y0)?) + affine(x1, y1)?),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Constants of the simplified SWU map onto the curve isogenous to secp256k1 (RFC 9380,
/// 6.6.2 and 8.7: `A'`, `B'`, `Z = -11`).
struct SswuConstants {
    /// `-B'/A'`.
    minus_b_over_a: FieldElement,
    /// `B'/(Z·A')`, `x1` when the map's denominator is zero.
    b_over_za: FieldElement,
    /// `√-Z = √11` (11 is a square: -1 and -11 are not).
    sqrt_minus_z: FieldElement,
}

impl SswuConstants {
    fn get() -> &'static Self {
        static CONSTANTS: std::sync::OnceLock<SswuConstants> = std::sync::OnceLock::new();
        CONSTANTS.get_or_init(|| {
            let params = &<FieldElement as OsswuMap>::PARAMS;
            let inverse = |x: FieldElement| Option::<FieldElement>::from(x.invert()).unwrap_or(FieldElement::ZERO);
            let minus_z = params.z.normalize().negate(1).normalize();
            Self {
                minus_b_over_a: (params.map_b * inverse(params.map_a)).normalize().negate(1).normalize(),
                b_over_za: (params.map_b * inverse(params.z * params.map_a)).normalize(),
                sqrt_minus_z: Option::<FieldElement>::from(minus_z.sqrt()).unwrap_or(FieldElement::ZERO),
            }
        })
    }
}

/// `a^((p+1)/4)`: a square root of `a` when `a` is a square, else one of `-a` (`p ≡ 3 mod 4`).
/// The addition chain of k256's `sqrt`, without its final check, in constant time.
fn pow_sqrt_exponent(a: &FieldElement) -> FieldElement {
    let pow2k = |x: FieldElement, k: usize| (0..k).fold(x, |x, _| x.square());
    let x2 = pow2k(*a, 1) * a;
    let x3 = pow2k(x2, 1) * a;
    let x6 = pow2k(x3, 3) * x3;
    let x9 = pow2k(x6, 3) * x3;
    let x11 = pow2k(x9, 2) * x2;
    let x22 = pow2k(x11, 11) * x11;
    let x44 = pow2k(x22, 22) * x22;
    let x88 = pow2k(x44, 44) * x44;
    let x176 = pow2k(x88, 88) * x88;
    let x220 = pow2k(x176, 44) * x44;
    let x223 = pow2k(x220, 3) * x3;
    pow2k(pow2k(pow2k(x223, 23) * x22, 6) * x2, 2)
}

/// The simplified SWU map (RFC 9380, 6.6.2) of `u` onto the isogenous curve, given
/// `zu2 = Z·u²` and `inverse = 1/(Z²u⁴ + Zu²)` (`exceptional` when that is zero). One
/// exponentiation: `s = gx1^((p+1)/4)` is `√gx1` when `gx1` is a square, and otherwise
/// `s² = -gx1`, so that `√gx2 = √(Z³u⁶·gx1) = Z·u³·√-Z·s`. The sign of `y` follows `u`'s.
/// The result is the RFC's (it fixes `x` and the sign of `y`); constant time.
fn sswu(
    u: &FieldElement,
    zu2: &FieldElement,
    inverse: &FieldElement,
    exceptional: Choice,
    c: &SswuConstants,
) -> (FieldElement, FieldElement) {
    let params = &<FieldElement as OsswuMap>::PARAMS;
    let x1 = FieldElement::conditional_select(
        &(c.minus_b_over_a * (FieldElement::ONE + inverse)),
        &c.b_over_za,
        exceptional,
    )
    .normalize();
    let gx1 = ((x1.square() + params.map_a) * x1 + params.map_b).normalize();
    let s = pow_sqrt_exponent(&gx1).normalize();
    let is_square = s.square().normalize().ct_eq(&gx1);
    let x2 = (*zu2 * x1).normalize();
    let y2 = (*zu2 * u * c.sqrt_minus_z * s).normalize();
    let x = FieldElement::conditional_select(&x2, &x1, is_square);
    let y = FieldElement::conditional_select(&y2, &s, is_square);
    let flip = u.normalize().is_odd() ^ y.is_odd();
    (x, FieldElement::conditional_select(&y, &y.negate(1).normalize(), flip))
}

/// Replaces every element (none zero) by its inverse, with one inversion in all.
fn batch_invert(elements: &mut [FieldElement]) {
    let mut prefix = Vec::with_capacity(elements.len());
    let mut acc = FieldElement::ONE;
    for e in elements.iter() {
        prefix.push(acc);
        acc *= e;
    }
    let mut inverse = Option::<FieldElement>::from(acc.invert()).unwrap_or(FieldElement::ZERO);
    for (e, before) in elements.iter_mut().zip(prefix).rev() {
        let next = inverse * *e;
        *e = inverse * before;
        inverse = next;
    }
}

/// Encodes points (uncompressed), in parallel.
pub fn encode_points(points: &[ProjectivePoint]) -> Vec<u8> {
    let encoded: Vec<[u8; POINT_BYTES]> = normalize(points).par_iter().map(encoded).collect();
    encoded.concat()
}

/// To affine form, in parallel, with one field inversion per chunk of 1024.
fn normalize(points: &[ProjectivePoint]) -> Vec<AffinePoint> {
    points
        .par_chunks(1024)
        .flat_map_iter(<ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize)
        .collect()
}

/// One point, uncompressed (the identity, which has no such form, as zeros, which no reader
/// accepts).
fn encoded(point: &AffinePoint) -> [u8; POINT_BYTES] {
    let e = point.to_encoded_point(false);
    let mut out = [0u8; POINT_BYTES];
    if e.as_bytes().len() == POINT_BYTES {
        out.copy_from_slice(e.as_bytes());
    }
    out
}

/// Decodes uncompressed points, refusing the identity, any other prefix and anything off the
/// curve (secp256k1 has cofactor 1: a point on the curve is in the group).
pub fn decode_points(bytes: &[u8], from: &str) -> Result<Vec<ProjectivePoint>, OprfError> {
    Ok(decode_affine(bytes, from)?.into_iter().map(ProjectivePoint::from).collect())
}

/// Refuses a byte string that is not a whole number of encoded points.
fn check_whole_points(bytes: &[u8], from: &str) -> Result<(), OprfError> {
    if bytes.len().is_multiple_of(POINT_BYTES) {
        Ok(())
    } else {
        Err(OprfError::Shape(format!("{from} sent {} bytes, not a whole number of points", bytes.len())))
    }
}

/// As [`decode_points`], in affine form.
pub fn decode_affine(bytes: &[u8], from: &str) -> Result<Vec<AffinePoint>, OprfError> {
    check_whole_points(bytes, from)?;
    bytes
        .par_chunks(POINT_BYTES)
        .enumerate()
        .map(|(index, chunk)| {
            let bad = || OprfError::BadPoint { from: from.to_string(), index };
            if !wire_form(chunk) {
                return Err(bad());
            }
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
        (Some(x), Some(y)) => ark_from_xy(x, y),
        _ => ark_secp256k1::Affine::zero(),
    }
}

/// A point given by its big-endian affine coordinates, known to be on the curve.
fn ark_from_xy(x: &[u8], y: &[u8]) -> ark_secp256k1::Affine {
    ark_secp256k1::Affine::new_unchecked(
        ark_secp256k1::Fq::from_be_bytes_mod_order(x),
        ark_secp256k1::Fq::from_be_bytes_mod_order(y),
    )
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
    encoded(&p.to_affine())
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

/// `B*` of node `i`'s batch (the blinded points given encoded and in arkworks form, converted
/// once for all the proofs of a batch), and `Y*` when its answers are given in affine form
/// (the node itself computes `Y* = k_i·B*`).
fn batch_statement(
    public: &[u8],
    blinded: (&[u8], &[ark_secp256k1::Affine]),
    answers: (&[u8], Option<&[AffinePoint]>),
) -> (ProjectivePoint, Option<ProjectivePoint>) {
    let (lo, hi) = batch_coefficients(public, blinded.0, answers.0, blinded.1.len());
    let b_star = combine(blinded.1, &lo, &hi);
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

/// The client's blinding factors for one batch (zeroized on drop), and the blinded points.
pub struct Blinding {
    rho: Vec<Scalar>,
    points: Vec<AffinePoint>,
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

/// The `t + 1` nodes that answer client `client`'s OPRF among `n`: from node
/// `client mod n + 1` on, wrapping, so the clients' items spread evenly over the nodes.
/// In increasing order.
pub fn answering_nodes(client: usize, n: usize, t: usize) -> Vec<PartyId> {
    let mut nodes: Vec<PartyId> =
        (0..=t.min(n.saturating_sub(1))).filter_map(|j| PartyId::from_index((client + j) % n.max(1))).collect();
    nodes.sort();
    nodes
}

/// The Lagrange coefficients at 0 of `nodes` (distinct ids), in their order: `Σ λ_i k_i = k`.
pub fn lagrange_at_zero(nodes: &[PartyId]) -> Vec<Scalar> {
    let xs: Vec<ark_secp256k1::Fr> = nodes.iter().map(|p| ark_secp256k1::Fr::from(u64::from(p.get()))).collect();
    lagrange_coefficients(&xs, ark_secp256k1::Fr::from(0u64)).iter().map(scalar_from_ark).collect()
}

/// `k·P` for secret `k` and one fixed `P`, in constant time: 64 windows of 4 bits, each a
/// table of `d·16^w·P` (`d = 0..15`, affine), every entry read for every window.
struct FixedBase {
    windows: Vec<[AffinePoint; 16]>,
}

impl FixedBase {
    fn new(point: &ProjectivePoint) -> Self {
        let mut windows = Vec::with_capacity(64);
        let mut base = *point;
        for _ in 0..64 {
            let mut sum = ProjectivePoint::IDENTITY;
            let multiples: [ProjectivePoint; 15] = std::array::from_fn(|_| {
                sum += base;
                sum
            });
            let affine = <ProjectivePoint as BatchNormalize<[ProjectivePoint; 15]>>::batch_normalize(&multiples);
            let mut row = [AffinePoint::IDENTITY; 16];
            for (slot, a) in row.iter_mut().skip(1).zip(affine) {
                *slot = a;
            }
            windows.push(row);
            for _ in 0..4 {
                base = base.double();
            }
        }
        Self { windows }
    }

    fn mul(&self, k: &Scalar) -> ProjectivePoint {
        let mut bytes = k.to_bytes();
        let mut acc = ProjectivePoint::IDENTITY;
        // Little-endian nibbles: byte 31 holds windows 0 and 1.
        let nibbles = bytes.iter().rev().flat_map(|b| [b & 0x0f, b >> 4]);
        for (digit, row) in nibbles.zip(&self.windows) {
            let mut pick = AffinePoint::IDENTITY;
            for (d, entry) in (0u8..).zip(row) {
                pick.conditional_assign(entry, digit.ct_eq(&d));
            }
            acc += pick;
        }
        bytes.zeroize();
        acc
    }
}

/// `k·G` for a secret `k`, by libsecp256k1's constant-time generator multiplication (28 µs
/// against k256's 39 µs on this machine, `--example oprf_ops`).
fn times_generator(secp: &secp256k1::Secp256k1<secp256k1::SignOnly>, k: &Scalar) -> Result<ProjectivePoint, OprfError> {
    let mut bytes: [u8; 32] = k.to_bytes().into();
    let secret = secp256k1::SecretKey::from_byte_array(bytes);
    bytes.zeroize();
    let mut secret = secret.map_err(|_| OprfError::Shape("a blinding scalar is zero".into()))?;
    let public = secp256k1::PublicKey::from_secret_key(secp, &secret);
    secret.non_secure_erase();
    let encoded = EncodedPoint::from_bytes(public.serialize_uncompressed())
        .map_err(|_| OprfError::Shape("libsecp256k1 returned a malformed point".into()))?;
    let affine: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
    affine
        .map(ProjectivePoint::from)
        .ok_or_else(|| OprfError::Shape("libsecp256k1 returned a point off the curve".into()))
}

/// Client step 1: blinded points `H(x_j) + ρ_j·G` (encoded) and the blinding.
pub fn blind(items: &[&[u8]]) -> Result<(Vec<u8>, Blinding), OprfError> {
    let hashed = hash_to_curve_batch(items)?;
    let secp = secp256k1::Secp256k1::signing_only();
    let pairs: Vec<(ProjectivePoint, Scalar)> = hashed
        .par_iter()
        .map(|h| {
            let rho = Scalar::random(&mut rand::rngs::OsRng);
            Ok((*h + times_generator(&secp, &rho)?, rho))
        })
        .collect::<Result<_, OprfError>>()?;
    let (points, rho): (Vec<ProjectivePoint>, Vec<Scalar>) = pairs.into_iter().unzip();
    let points = normalize(&points);
    let bytes: Vec<[u8; POINT_BYTES]> = points.par_iter().map(encoded).collect();
    Ok((bytes.concat(), Blinding { rho, points }))
}

/// Node step, with `key_share` the node's share scaled by its Lagrange coefficient
/// (`λ_i k_i`, [`lagrange_at_zero`] over [`answering_nodes`]): its public `λ_i k_i·G` and the
/// batch proof ([`PROOF_BYTES`]), then `λ_i k_i · B_j` for every blinded point (encoded).
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
    let (answer_bytes, points) = answer_points(answer_key, blinded, from)?;
    let public = ProjectivePoint::mul_by_generator(key_share);
    let public_bytes = point_bytes(&public);
    // Batch proof: the node knows k_i with K_i = k_i·G and Y* = k_i·B*.
    let (b_star, _) = batch_statement(&public_bytes, (blinded, &points), (&answer_bytes, None));
    let y_star = b_star * key_share;
    let mut nonce = Scalar::random(&mut rand::rngs::OsRng);
    let (a1, a2) = (ProjectivePoint::mul_by_generator(&nonce), b_star * nonce);
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

/// `key·B_j` for every compressed blinded point `B_j` (encoded), and the `B_j` in arkworks form
/// for the batch proof. The points are decoded, checked (on the curve, not the identity) and
/// multiplied by libsecp256k1 (`secp256k1_ec_pubkey_tweak_mul`, constant time: 48 µs against
/// k256's 85 µs on this machine, `--example oprf_ops`); the encodings are the same SEC1
/// compressed form.
fn answer_points(key: &Scalar, blinded: &[u8], from: &str) -> Result<(Vec<u8>, Vec<ark_secp256k1::Affine>), OprfError> {
    check_whole_points(blinded, from)?;
    let mut key_bytes: [u8; 32] = key.to_bytes().into();
    let tweak = secp256k1::Scalar::from_be_bytes(key_bytes);
    key_bytes.zeroize();
    let mut tweak = tweak.map_err(|_| OprfError::Shape("the key share is not a scalar".into()))?;
    let secp = secp256k1::Secp256k1::verification_only();
    let answered: Result<Vec<([u8; POINT_BYTES], ark_secp256k1::Affine)>, OprfError> = blinded
        .par_chunks(POINT_BYTES)
        .enumerate()
        .map(|(index, chunk)| {
            let bad = || OprfError::BadPoint { from: from.to_string(), index };
            if !wire_form(chunk) {
                return Err(bad());
            }
            let point = secp256k1::PublicKey::from_slice(chunk).map_err(|_| bad())?;
            let ark = ark_from_xy(chunk.get(1..33).unwrap_or_default(), chunk.get(33..).unwrap_or_default());
            // Fails only for a zero key (a product of nonzero factors here is never the identity).
            let answer =
                point.mul_tweak(&secp, &tweak).map_err(|_| OprfError::Shape("the key share is zero".into()))?;
            Ok((answer.serialize_uncompressed(), ark))
        })
        .collect();
    tweak = secp256k1::Scalar::ZERO;
    let _ = tweak;
    let answered = answered?;
    let mut bytes = Vec::with_capacity(answered.len() * POINT_BYTES);
    let mut points = Vec::with_capacity(answered.len());
    for (b, p) in answered {
        bytes.extend_from_slice(&b);
        points.push(p);
    }
    Ok((bytes, points))
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
fn verify_batch(answer: &Answer<'_>, blinded: &[u8], blinded_points: &[ark_secp256k1::Affine]) -> bool {
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

/// The answering nodes whose batch proof fails (`responses[r]` from `answering[r]`, the
/// blinded points as sent, encoded), or whose answer does not parse or has another length.
/// Every proof is checked against the public key share the node sent; the caller checks
/// those against the table. Public for benchmarks.
pub fn failing_proofs(answering: &[PartyId], responses: &[Vec<u8>], blinded: &[u8]) -> Result<Vec<PartyId>, OprfError> {
    let blinded_points = decode_affine(blinded, "the client")?;
    let parsed: Vec<Option<Answer<'_>>> = responses
        .iter()
        .zip(answering)
        .map(|(r, node)| parse_answer(r, &node.to_string()).ok().filter(|a| a.points.len() == blinded_points.len()))
        .collect();
    Ok(failing(answering, &parsed, blinded, &blinded_points))
}

fn failing(
    answering: &[PartyId],
    parsed: &[Option<Answer<'_>>],
    blinded: &[u8],
    points: &[AffinePoint],
) -> Vec<PartyId> {
    let points = to_ark_all(points);
    let points = points.as_slice();
    parsed
        .iter()
        .zip(answering)
        .filter(|(a, _)| !a.as_ref().is_some_and(|a| verify_batch(a, blinded, points)))
        .map(|(_, node)| *node)
        .collect()
}

/// Client step 2: from the answering nodes' answers (`responses[r]` from `answering[r]`:
/// scaled key share, proof, points; [`answering_nodes`]) to the blinded points `blinded` (as
/// sent), returns the tags. `key_shares` is the agreed table of public key shares
/// ([`agreed_key_shares`]). A node answering under another key share than `λ_i K_i` is named
/// ([`OprfError::KeyShare`]), then a node whose answers fail its batch proof
/// ([`OprfError::WrongAnswers`]).
pub fn finalize(
    key_shares: &[ProjectivePoint],
    answering: &[PartyId],
    responses: &[Vec<u8>],
    blinding: &Blinding,
    blinded: &[u8],
) -> Result<Vec<Tag>, OprfError> {
    if responses.len() != answering.len() || answering.is_empty() {
        return Err(OprfError::Shape(format!("{} answers from {} answering nodes", responses.len(), answering.len())));
    }
    let len = blinding.rho.len();
    let lambda = lagrange_at_zero(answering);
    let expected: Vec<ProjectivePoint> = answering
        .iter()
        .zip(&lambda)
        .map(|(node, l)| {
            key_shares
                .get(node.index())
                .map(|k| *k * l)
                .ok_or_else(|| OprfError::Shape(format!("no key share of {node}")))
        })
        .collect::<Result<_, _>>()?;
    let parsed: Vec<Option<Answer<'_>>> = responses
        .iter()
        .zip(answering)
        .map(|(r, node)| parse_answer(r, &node.to_string()).ok().filter(|a| a.points.len() == len))
        .collect();
    let malformed: Vec<PartyId> =
        parsed.iter().zip(answering).filter(|(a, _)| a.is_none()).map(|(_, node)| *node).collect();
    if !malformed.is_empty() {
        return Err(OprfError::WrongAnswers { nodes: malformed });
    }
    let answers: Vec<&Answer<'_>> = parsed.iter().flatten().collect();
    // Each node's key is the table's, so its proof binds its answers to its true share.
    let wrong_keys: Vec<PartyId> = answers
        .iter()
        .zip(&expected)
        .zip(answering)
        .filter(|((a, k), _)| a.public != **k)
        .map(|(_, node)| *node)
        .collect();
    if !wrong_keys.is_empty() {
        return Err(OprfError::KeyShare { nodes: wrong_keys });
    }
    let failing = failing(answering, &parsed, blinded, &blinding.points);
    if !failing.is_empty() {
        return Err(OprfError::WrongAnswers { nodes: failing });
    }
    let key = expected.iter().fold(ProjectivePoint::IDENTITY, |acc, k| acc + k);
    if bool::from(key.is_identity()) {
        return Err(OprfError::Shape("the key's public point is the identity".into()));
    }
    let unblind = FixedBase::new(&key);
    let tags: Vec<ProjectivePoint> = (0..len)
        .into_par_iter()
        .with_min_len(256)
        .map(|j| {
            let sum = answers.iter().fold(ProjectivePoint::IDENTITY, |acc, a| match a.points.get(j) {
                Some(y) => acc + y,
                None => acc,
            });
            let rho = blinding.rho.get(j).copied().unwrap_or(Scalar::ZERO);
            sum - unblind.mul(&rho)
        })
        .collect();
    Ok(normalize(&tags).par_iter().map(affine_tag).collect())
}

/// `blake3` of the compressed point, domain-separated.
pub fn point_tag(p: &ProjectivePoint) -> Tag {
    affine_tag(&p.to_affine())
}

fn affine_tag(p: &AffinePoint) -> Tag {
    let e = p.to_encoded_point(true);
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

    fn id(i: u16) -> PartyId {
        PartyId::new(i).unwrap_or_else(|| unreachable!())
    }

    /// The answers of `answering` (honest: each under its scaled share `λ_i k_i`).
    fn answers(shares: &[Scalar], answering: &[PartyId], blinded: &[u8]) -> Vec<Vec<u8>> {
        let lambda = lagrange_at_zero(answering);
        answering
            .iter()
            .zip(&lambda)
            .map(|(p, l)| {
                let share = shares.get(p.index()).copied().unwrap_or_default();
                evaluate(&(share * l), blinded, "client").unwrap_or_default()
            })
            .collect()
    }

    /// Node `r`'s answer with its point `j` replaced by `f(point)`.
    fn tamper(responses: &mut [Vec<u8>], r: usize, j: usize, f: impl Fn(ProjectivePoint) -> ProjectivePoint) {
        let Some(response) = responses.get_mut(r) else { return };
        let (header, body) = response.split_at(PROOF_BYTES);
        let mut pts = decode_points(body, "x").unwrap_or_default();
        if let Some(p) = pts.get_mut(j) {
            *p = f(*p);
        }
        *response = [header, &encode_points(&pts)].concat();
    }

    #[test]
    fn answering_nodes_rotate_and_cover_every_node() {
        assert_eq!(answering_nodes(0, 3, 1), vec![id(1), id(2)]);
        assert_eq!(answering_nodes(1, 3, 1), vec![id(2), id(3)]);
        assert_eq!(answering_nodes(2, 3, 1), vec![id(1), id(3)]);
        assert_eq!(answering_nodes(5, 5, 2), vec![id(1), id(2), id(3)]);
        assert_eq!(answering_nodes(4, 5, 2), vec![id(1), id(2), id(5)]);
    }

    #[test]
    fn threshold_oprf_matches_clear_and_names_a_bad_node() {
        let (n, t) = (3usize, 1usize);
        let (k, shares) = shares(n, t);
        let items: Vec<&[u8]> = vec![b"str:alice", b"str:bob", b"addr:xyz"];
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let key_shares = public_shares(&shares);
        let key = scalar_from_ark(&k);
        // Every answering set (every client's rotation) gives the same tags.
        for client in 0..n {
            let answering = answering_nodes(client, n, t);
            let responses = answers(&shares, &answering, &blinded);
            let tags = finalize(&key_shares, &answering, &responses, &blinding, &blinded).unwrap_or_default();
            assert_eq!(tags.len(), items.len());
            for (item, tag) in items.iter().zip(&tags) {
                assert_eq!(Some(*tag), tag_in_clear(&key, item).ok());
            }
            assert_eq!(failing_proofs(&answering, &responses, &blinded).ok(), Some(vec![]));
        }
        let answering = vec![id(2), id(3)];
        let honest = answers(&shares, &answering, &blinded);
        // Node 2 answers item 1 with another point: named by its failing proof.
        let mut responses = honest.clone();
        tamper(&mut responses, 0, 1, |p| p + ProjectivePoint::GENERATOR);
        match finalize(&key_shares, &answering, &responses, &blinding, &blinded) {
            Err(OprfError::WrongAnswers { nodes }) => assert_eq!(nodes, vec![id(2)]),
            other => panic!("{other:?}"),
        }
        // A wrong (valid) public key share is named against the agreed table, before the
        // answers are looked at.
        if let Some(r) = responses.get_mut(1) {
            let k3 = decode_points(r.get(..POINT_BYTES).unwrap_or_default(), "x").unwrap_or_default();
            let wrong = encode_points(&[k3.first().copied().unwrap_or_default() + ProjectivePoint::GENERATOR]);
            r.splice(..POINT_BYTES, wrong);
        }
        match finalize(&key_shares, &answering, &responses, &blinding, &blinded) {
            Err(OprfError::KeyShare { nodes }) => assert_eq!(nodes, vec![id(3)]),
            other => panic!("{other:?}"),
        }
        // A node that answers consistently under a wrong key share (so its proof verifies
        // against the key it sends) is named too: it is not the table's, scaled.
        let mut consistent_liar = honest.clone();
        let lambda = lagrange_at_zero(&answering);
        if let (Some(r), Some(s), Some(l)) = (consistent_liar.get_mut(0), shares.get(1), lambda.first()) {
            *r = evaluate(&(*s * l + Scalar::ONE), &blinded, "client").unwrap_or_default();
        }
        match finalize(&key_shares, &answering, &consistent_liar, &blinding, &blinded) {
            Err(OprfError::KeyShare { nodes }) => assert_eq!(nodes, vec![id(2)]),
            other => panic!("{other:?}"),
        }
        // Unscaled (the share itself, as if answering alone): named as well.
        let mut unscaled = honest;
        if let (Some(r), Some(s)) = (unscaled.get_mut(1), shares.get(2)) {
            *r = evaluate(s, &blinded, "client").unwrap_or_default();
        }
        match finalize(&key_shares, &answering, &unscaled, &blinding, &blinded) {
            Err(OprfError::KeyShare { nodes }) => assert_eq!(nodes, vec![id(3)]),
            other => panic!("{other:?}"),
        }
        // An identity point is refused by the node.
        let mut bad = blinded.clone();
        bad.truncate(POINT_BYTES);
        bad.fill(0);
        assert!(evaluate(&key, &bad, "client").is_err());
        // A point off the curve, a coordinate beyond the field, the compressed or hybrid form
        // of a valid point (any prefix other than 04) are refused naming their index, by the
        // node and by the client's decoder; a partial point is refused too.
        let valid: [u8; POINT_BYTES] = blinded[..POINT_BYTES].try_into().unwrap_or_else(|_| unreachable!());
        let mut off_curve = valid;
        off_curve[POINT_BYTES - 1] ^= 1;
        let mut beyond = valid;
        beyond[1..33].fill(0xff);
        let compressed = decode_affine(&valid, "test")
            .ok()
            .and_then(|p| p.first().map(|p| p.to_encoded_point(true).as_bytes().to_vec()))
            .unwrap_or_default();
        let mut hybrid = valid;
        hybrid[0] = 6 + (valid[POINT_BYTES - 1] & 1);
        assert!(secp256k1::PublicKey::from_slice(&hybrid).is_ok(), "libsecp256k1 parses the hybrid form");
        let cases: [(usize, Vec<u8>); 4] = [
            (1, off_curve.to_vec()),
            (2, beyond.to_vec()),
            (1, hybrid.to_vec()),
            (2, [compressed.clone(), vec![0; 32]].concat()),
        ];
        for (index, point_bytes) in cases {
            let mut bad = blinded.clone();
            bad[index * POINT_BYTES..(index + 1) * POINT_BYTES].copy_from_slice(&point_bytes);
            match evaluate(&key, &bad, "client") {
                Err(OprfError::BadPoint { index: i, .. }) => assert_eq!(i, index),
                other => panic!("{other:?}"),
            }
            assert!(matches!(decode_affine(&bad, "node"), Err(OprfError::BadPoint { index: i, .. }) if i == index));
        }
        assert!(matches!(evaluate(&key, &blinded[..POINT_BYTES + 5], "client"), Err(OprfError::Shape(_))));
    }

    /// Five nodes at threshold 2: a node answering with a wrong key share is named, and
    /// truncated or garbled answers name their node without a panic.
    #[test]
    fn five_nodes_name_the_wrong_answer_and_refuse_garbage() {
        let (n, t) = (5usize, 2usize);
        let (_, shares) = shares(n, t);
        let key_shares = public_shares(&shares);
        let items: Vec<&[u8]> = vec![b"a", b"b", b"c", b"d"];
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let answering = answering_nodes(3, n, t);
        assert_eq!(answering, vec![id(1), id(4), id(5)]);
        let lambda = lagrange_at_zero(&answering);
        let mut responses: Vec<Vec<u8>> = answering
            .iter()
            .zip(&lambda)
            .map(|(p, l)| {
                let s = shares.get(p.index()).copied().unwrap_or_default() * l;
                let answer_key = if p.get() == 4 { s + Scalar::ONE } else { s };
                evaluate_with(&s, &answer_key, &blinded, "client").unwrap_or_default()
            })
            .collect();
        match finalize(&key_shares, &answering, &responses, &blinding, &blinded) {
            Err(OprfError::WrongAnswers { nodes }) => assert_eq!(nodes, vec![id(4)]),
            other => panic!("{other:?}"),
        }
        for len in [0, 10, PROOF_BYTES, PROOF_BYTES + 40] {
            if let Some(r) = responses.get_mut(0) {
                r.truncate(len);
            }
            match finalize(&key_shares, &answering, &responses, &blinding, &blinded) {
                Err(OprfError::WrongAnswers { nodes }) => assert_eq!(nodes, vec![id(1)], "length {len}"),
                other => panic!("length {len}: {other:?}"),
            }
        }
        // Answers from another set than the client's, or too few, are refused.
        assert!(finalize(&key_shares, &answering, responses.get(..2).unwrap_or_default(), &blinding, &blinded).is_err());
        assert!(finalize(&key_shares, &[], &[], &blinding, &blinded).is_err());
    }

    /// One wrong answer, the last of 300, from any answering node, fails that node's batch
    /// proof: the node is named.
    #[test]
    fn one_wrong_answer_in_a_large_batch_is_found() {
        let (n, t) = (5usize, 2usize);
        let (k, shares) = shares(n, t);
        let key_shares = public_shares(&shares);
        let owned: Vec<Vec<u8>> = (0..300u32).map(|i| format!("str:item{i}").into_bytes()).collect();
        let items: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let (blinded, blinding) = blind(&items).unwrap_or_else(|_| unreachable!());
        let answering = answering_nodes(1, n, t);
        let honest = answers(&shares, &answering, &blinded);
        let tags = finalize(&key_shares, &answering, &honest, &blinding, &blinded).unwrap_or_default();
        let key = scalar_from_ark(&k);
        assert_eq!(tags.len(), 300);
        assert!(items.iter().zip(&tags).all(|(item, tag)| tag_in_clear(&key, item).ok() == Some(*tag)));
        for liar in 0..answering.len() {
            let mut responses = honest.clone();
            tamper(&mut responses, liar, 299, |p| p + p);
            let named = answering.get(liar).copied().unwrap_or_else(|| unreachable!());
            match finalize(&key_shares, &answering, &responses, &blinding, &blinded) {
                Err(OprfError::WrongAnswers { nodes }) => assert_eq!(nodes, vec![named]),
                other => panic!("{other:?}"),
            }
        }
    }

    /// The batched hash to curve is the RFC 9380 hash (k256's), item by item, for empty,
    /// short and long items and across chunk boundaries.
    #[test]
    fn batched_hash_to_curve_matches_the_rfc_hash() {
        let owned: Vec<Vec<u8>> = (0..600u32)
            .map(|i| match i {
                0 => Vec::new(),
                1 => vec![0u8; 300],
                _ => format!("str:item-{i}").into_bytes(),
            })
            .collect();
        let items: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let batch = hash_to_curve_batch(&items).unwrap_or_default();
        assert_eq!(batch.len(), items.len());
        for (item, h) in items.iter().zip(&batch) {
            assert_eq!(hash_to_curve(item).ok(), Some(*h));
        }
        assert_eq!(hash_to_curve_batch(&[]).ok(), Some(vec![]));
    }

    /// The fixed-base table multiplies like the curve's own multiplication, for edge scalars.
    #[test]
    fn the_batched_hash_gives_the_rfc_9380_vector() {
        // RFC 9380, J.8.1 (secp256k1_XMD:SHA-256_SSWU_RO_), msg = "".
        let dst = b"QUUX-V01-CS02-with-secp256k1_XMD:SHA-256_SSWU_RO_";
        let p = hash_chunk(&[b""], dst).unwrap_or_default();
        let e = p.first().map(|p| p.to_affine().to_encoded_point(false)).unwrap_or_default();
        let hex = |b: Option<&k256::FieldBytes>| b.map(|b| hex::encode(b.as_slice())).unwrap_or_default();
        assert_eq!(hex(e.x()), "c1cae290e291aee617ebaef1be6d73861479c48b841eaba9b7b5852ddfeb1346");
        assert_eq!(hex(e.y()), "64fa678e07ae116126f08b022a94af6de15985c996c3a91b64c406a960e51067");
    }

    #[test]
    fn the_map_matches_the_rfc_map_exceptional_inputs_included() {
        let params = &<FieldElement as OsswuMap>::PARAMS;
        let constants = SswuConstants::get();
        let mut rng = rand::rngs::OsRng;
        // u = 0 and u² = -1/Z make the map's denominator zero; the rest are random, squares
        // and non-squares for gx1 alike.
        let minus_inverse_z = Option::<FieldElement>::from(params.z.normalize().negate(1).invert())
            .and_then(|v| Option::<FieldElement>::from(v.sqrt()))
            .unwrap_or_else(|| unreachable!());
        let mut inputs = vec![FieldElement::ZERO, minus_inverse_z, minus_inverse_z.negate(1).normalize()];
        inputs.extend((0..200).map(|_| FieldElement::random(&mut rng)));
        let mut exceptional_seen = 0;
        for u in inputs {
            let zu2 = (params.z * u.square()).normalize();
            let denominator = (zu2.square() + zu2).normalize();
            let exceptional = denominator.normalizes_to_zero();
            exceptional_seen += usize::from(bool::from(exceptional));
            let inverse = Option::<FieldElement>::from(denominator.invert()).unwrap_or(FieldElement::ONE);
            let (x, y) = sswu(&u, &zu2, &inverse, exceptional, constants);
            let (rx, ry) = u.osswu();
            assert_eq!((x.normalize(), y.normalize()), (rx.normalize(), ry.normalize()), "u = {u:?}");
        }
        assert_eq!(exceptional_seen, 3);
    }

    #[test]
    fn fixed_base_multiplication_matches() {
        let point = ProjectivePoint::GENERATOR * Scalar::from(12345u64);
        let table = FixedBase::new(&point);
        let mut rng = rand::thread_rng();
        for k in [Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(16u64), Scalar::random(&mut rng)] {
            assert_eq!(table.mul(&k), point * k);
        }
    }

    /// The client takes the table most nodes sent and names every node that sent another
    /// (or a malformed) one; without a majority it aborts.
    #[test]
    fn the_majority_key_table_is_agreed_and_dissenters_are_named() {
        let (n, t) = (5usize, 2usize);
        let (_, shares) = shares(n, t);
        let honest = encode_points(&public_shares(&shares));
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
