//! secp256k1 helpers: arkworks points (native to the engine's scalar field) for the MPC work in
//! the exponent, k256 for ECDSA verification, recovery and normalisation, Keccak and addresses.

use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInteger, PrimeField, Zero};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::error::{Result, SignerError};

/// The scalar field (the engine's field).
pub type Scalar = ark_secp256k1::Fr;
/// A point, projective.
pub type Point = ark_secp256k1::Projective;
/// A point, affine.
pub type Affine = ark_secp256k1::Affine;

/// Bytes of an encoded point (SEC1 uncompressed; validated on decode).
pub const POINT_BYTES: usize = 65;

/// The generator.
pub fn generator() -> Point {
    Point::generator()
}

/// Keccak-256.
pub fn keccak(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// Keccak-256 of several parts.
pub fn keccak_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Big-endian 32 bytes of a scalar.
pub fn scalar_to_be(x: &Scalar) -> [u8; 32] {
    let v = x.into_bigint().to_bytes_be();
    let mut out = [0u8; 32];
    let off = 32usize.saturating_sub(v.len());
    if let Some(dst) = out.get_mut(off..) {
        dst.copy_from_slice(v.get(v.len().saturating_sub(32)..).unwrap_or_default());
    }
    out
}

/// A scalar from 32 big-endian bytes, reduced modulo the group order (message hashes).
pub fn scalar_from_be_reduced(bytes: &[u8; 32]) -> Scalar {
    Scalar::from_be_bytes_mod_order(bytes)
}

/// A scalar from 32 big-endian bytes; `None` unless canonical (below the order).
pub fn scalar_from_be_canonical(bytes: &[u8]) -> Option<Scalar> {
    if bytes.len() != 32 {
        return None;
    }
    let x = Scalar::from_be_bytes_mod_order(bytes);
    (scalar_to_be(&x).as_slice() == bytes).then_some(x)
}

/// Encodes a point: SEC1 uncompressed (0x04 || x || y, 65 bytes); the identity is 65 zeros.
pub fn point_to_bytes(p: &Point) -> Vec<u8> {
    affine_to_bytes(&p.into_affine()).to_vec()
}

/// Encodes many points (one batched inversion).
pub fn points_to_bytes(points: &[Point]) -> Vec<u8> {
    let affine = Point::normalize_batch(points);
    let mut out = Vec::with_capacity(POINT_BYTES * affine.len());
    for a in &affine {
        out.extend_from_slice(&affine_to_bytes(a));
    }
    out
}

/// SEC1 uncompressed bytes of an affine point (65 zeros for the identity).
pub fn affine_to_bytes(a: &Affine) -> [u8; POINT_BYTES] {
    let mut out = [0u8; POINT_BYTES];
    if let Some((x, y)) = a.xy() {
        out[0] = 4;
        let xb = x.into_bigint().to_bytes_be();
        let yb = y.into_bigint().to_bytes_be();
        if let Some(dx) = out.get_mut(1..33) {
            dx.copy_from_slice(xb.get(..32).unwrap_or(&[0u8; 32]));
        }
        if let Some(dy) = out.get_mut(33..65) {
            dy.copy_from_slice(yb.get(..32).unwrap_or(&[0u8; 32]));
        }
    }
    out
}

fn fq_canonical(bytes: &[u8]) -> Option<ark_secp256k1::Fq> {
    let x = ark_secp256k1::Fq::from_be_bytes_mod_order(bytes);
    (x.into_bigint().to_bytes_be().as_slice() == bytes).then_some(x)
}

/// Decodes a point written by [`point_to_bytes`], checking the encoding is canonical and the
/// point is on the curve (the group has cofactor 1).
pub fn point_from_bytes(bytes: &[u8]) -> Option<Point> {
    if bytes.len() != POINT_BYTES {
        return None;
    }
    if bytes.iter().all(|b| *b == 0) {
        return Some(Point::zero());
    }
    if bytes.first() != Some(&4) {
        return None;
    }
    let x = fq_canonical(bytes.get(1..33)?)?;
    let y = fq_canonical(bytes.get(33..65)?)?;
    let a = Affine::new_unchecked(x, y);
    a.is_on_curve().then(|| a.into())
}

/// Encoded length of [`point_to_bytes`].
pub fn point_len() -> usize {
    POINT_BYTES
}

/// The k256 point of an affine arkworks point (`None` for the identity).
pub fn to_k256(a: &Affine) -> Option<k256::ProjectivePoint> {
    use k256::elliptic_curve::sec1::FromEncodedPoint;
    let bytes = affine_to_bytes(a);
    let ep = k256::EncodedPoint::from_bytes(bytes).ok()?;
    let a: Option<k256::AffinePoint> = k256::AffinePoint::from_encoded_point(&ep).into();
    a.map(k256::ProjectivePoint::from)
}

/// The k256 scalar of an arkworks scalar.
pub fn scalar_to_k256(x: &Scalar) -> k256::Scalar {
    use k256::elliptic_curve::PrimeField as _;
    let s: Option<k256::Scalar> = k256::Scalar::from_repr(scalar_to_be(x).into()).into();
    s.unwrap_or(k256::Scalar::ZERO)
}

/// Encodes k256 points (one batched inversion) in the format of [`point_to_bytes`].
pub fn k256_points_to_bytes(points: &[k256::ProjectivePoint]) -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    use k256::elliptic_curve::BatchNormalize;
    let affine = <k256::ProjectivePoint as BatchNormalize<[k256::ProjectivePoint]>>::batch_normalize(points);
    let mut out = Vec::with_capacity(POINT_BYTES * affine.len());
    for a in &affine {
        let ep = a.to_encoded_point(false);
        if ep.is_identity() {
            out.extend_from_slice(&[0u8; POINT_BYTES]);
        } else {
            out.extend_from_slice(ep.as_bytes());
        }
    }
    out
}

/// SEC1 uncompressed encoding (0x04 || x || y); `None` for the identity.
pub fn sec1_uncompressed(p: &Point) -> Option<[u8; 65]> {
    let a = p.into_affine();
    let (x, y) = a.xy()?;
    let mut out = [0u8; 65];
    out[0] = 4;
    let xb = x.into_bigint().to_bytes_be();
    let yb = y.into_bigint().to_bytes_be();
    out.get_mut(1..33)?.copy_from_slice(xb.get(..32)?);
    out.get_mut(33..65)?.copy_from_slice(yb.get(..32)?);
    Some(out)
}

/// The k256 verifying key of a point.
pub fn verifying_key(p: &Point) -> Result<VerifyingKey> {
    let sec1 = sec1_uncompressed(p).ok_or_else(|| SignerError::Invalid("public key is the identity".into()))?;
    VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| SignerError::Invalid(format!("public key: {e}")))
}

/// The EVM address of a k256 key: the last 20 bytes of keccak(x || y).
pub fn address_of_key(key: &VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let bytes = point.as_bytes();
    let h = keccak(bytes.get(1..).unwrap_or_default());
    let mut out = [0u8; 20];
    out.copy_from_slice(h.get(12..).unwrap_or_default());
    out
}

/// The EVM address of a point.
pub fn address_of(p: &Point) -> Result<[u8; 20]> {
    Ok(address_of_key(&verifying_key(p)?))
}

/// EIP-55 checksummed hex of an address.
pub fn checksum_address(addr: &[u8; 20]) -> String {
    let lower = hex::encode(addr);
    let h = keccak(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = h.get(i / 2).map_or(0, |b| if i % 2 == 0 { b >> 4 } else { b & 0x0f });
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a 0x-prefixed (or bare) hex string of exactly `N` bytes.
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let v = hex::decode(s).map_err(|e| SignerError::Invalid(format!("hex: {e}")))?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| SignerError::Invalid(format!("expected {N} bytes, got {}", v.len())))
}

/// The x coordinate of `R` reduced modulo the order, and whether it overflowed the order.
pub fn r_of(big_r: &Point) -> Option<(Scalar, bool, bool)> {
    let a = big_r.into_affine();
    let (x, y) = a.xy()?;
    let xb = x.into_bigint().to_bytes_be();
    let mut arr = [0u8; 32];
    arr.copy_from_slice(xb.get(..32)?);
    let r = Scalar::from_be_bytes_mod_order(&arr);
    let overflow = scalar_to_be(&r) != arr;
    let odd = y.into_bigint().is_odd();
    Some((r, odd, overflow))
}

/// A finished ECDSA signature in Ethereum form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdsaSignature {
    /// r, big endian.
    pub r: [u8; 32],
    /// s, big endian, low (s <= n/2).
    pub s: [u8; 32],
    /// Recovery id (y parity of R after normalisation; 0 or 1, bit 1 for x overflow).
    pub v: u8,
}

impl EcdsaSignature {
    /// 65 bytes r || s || (27 + v) as `eth_sign` and EIP-712 wallets return.
    pub fn to_rsv_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = 27 + self.v;
        out
    }

    /// The k256 signature.
    pub fn to_k256(&self) -> Result<Signature> {
        Signature::from_scalars(self.r, self.s).map_err(|_| SignerError::BadSignature)
    }

    /// The address this signature recovers to for `prehash`.
    pub fn recover(&self, prehash: &[u8; 32]) -> Result<[u8; 20]> {
        let rid = RecoveryId::from_byte(self.v).ok_or(SignerError::BadSignature)?;
        let key = VerifyingKey::recover_from_prehash(prehash, &self.to_k256()?, rid)
            .map_err(|_| SignerError::BadSignature)?;
        Ok(address_of_key(&key))
    }
}

/// Finishes `(r, s)` over `prehash` made with nonce point `big_r`: checks the ECDSA equation
/// `s·R = m·G + r·X` against `public` (X) with R itself, not only its x coordinate, so the
/// recovery parity taken from R is right; normalises s to the low half (flipping the parity);
/// and verifies the encoded signature with k256 as any verifier would.
pub fn finish_signature(big_r: &Point, s: Scalar, prehash: &[u8; 32], public: &Point) -> Result<EcdsaSignature> {
    let (r, odd, overflow) = r_of(big_r).ok_or(SignerError::BadSignature)?;
    if r.is_zero() || s.is_zero() {
        return Err(SignerError::BadSignature);
    }
    let m = scalar_from_be_reduced(prehash);
    if !ecdsa_equation_holds(big_r, s, m, r, public) {
        return Err(SignerError::BadSignature);
    }
    let high = s.into_bigint() > Scalar::MODULUS_MINUS_ONE_DIV_TWO;
    let (s, odd) = if high { (-s, !odd) } else { (s, odd) };
    let sig = EcdsaSignature { r: scalar_to_be(&r), s: scalar_to_be(&s), v: u8::from(odd) | (u8::from(overflow) << 1) };
    let key = verifying_key(public)?;
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    key.verify_prehash(prehash, &sig.to_k256()?).map_err(|_| SignerError::BadSignature)?;
    Ok(sig)
}

/// Whether `s·R = m·G + r·X` (k256: one GLV multiplication and one two-term combination).
pub fn ecdsa_equation_holds(big_r: &Point, s: Scalar, m: Scalar, r: Scalar, public: &Point) -> bool {
    use k256::elliptic_curve::ops::LinearCombination;
    let (Some(kr), Some(kx)) = (to_k256(&big_r.into_affine()), to_k256(&public.into_affine())) else {
        return false;
    };
    let lhs = kr * scalar_to_k256(&s);
    let rhs = k256::ProjectivePoint::lincomb(
        &k256::ProjectivePoint::GENERATOR,
        &scalar_to_k256(&m),
        &kx,
        &scalar_to_k256(&r),
    );
    lhs == rhs
}

/// `Σ coeff_i · P_i` (a multi-scalar multiplication).
pub fn msm(points: &[Point], scalars: &[Scalar]) -> Point {
    use ark_ec::VariableBaseMSM;
    let affine = Point::normalize_batch(points);
    Point::msm_unchecked(&affine, scalars)
}

/// `c · P`, cheap when `c` or `-c` is a small integer (Lagrange coefficients of small sets).
pub fn mul_small(p: &Point, c: &Scalar) -> Point {
    let neg = -*c;
    if neg.into_bigint().num_bits() < c.into_bigint().num_bits() {
        -(*p * neg)
    } else {
        *p * c
    }
}
