//! Field elements on the wire: raw Montgomery limbs, range-checked on receipt.
//!
//! Validated arkworks deserialisation costs as much as the link itself; a Montgomery limb
//! vector is valid exactly when it is below the modulus, which is one comparison.

use std::marker::PhantomData;

use ark_ff::{BigInt, BigInteger, Fp, FpConfig, PrimeField};
use rayon::prelude::*;

/// Elements per rayon task for bulk field work.
pub(crate) const PAR_CHUNK: usize = 1 << 12;

/// A prime field whose elements travel as raw Montgomery limbs.
pub trait WireField: PrimeField {
    /// Bytes per element on the wire.
    const WIRE_BYTES: usize;

    /// Appends the element's Montgomery limbs, little endian.
    fn write_wire(&self, out: &mut [u8]);

    /// Reads an element written by [`WireField::write_wire`]; `None` unless `bytes` has exactly
    /// [`WireField::WIRE_BYTES`] bytes encoding a value below the modulus.
    fn read_wire(bytes: &[u8]) -> Option<Self>;
}

impl<P: FpConfig<N>, const N: usize> WireField for Fp<P, N> {
    const WIRE_BYTES: usize = N * 8;

    fn write_wire(&self, out: &mut [u8]) {
        for (limb, chunk) in self.0 .0.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
    }

    fn read_wire(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != N * 8 {
            return None;
        }
        let mut limbs = [0u64; N];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        let value = BigInt(limbs);
        (value < P::MODULUS).then_some(Fp(value, PhantomData))
    }
}

/// Encodes `values` into `out` (which must hold exactly `values.len() * WIRE_BYTES` bytes).
pub(crate) fn encode_into<F: WireField>(values: &[F], out: &mut [u8]) {
    let w = F::WIRE_BYTES;
    if values.len() > PAR_CHUNK {
        out.par_chunks_mut(w * PAR_CHUNK)
            .zip(values.par_chunks(PAR_CHUNK))
            .for_each(|(o, v)| v.iter().zip(o.chunks_exact_mut(w)).for_each(|(x, c)| x.write_wire(c)));
    } else {
        values.iter().zip(out.chunks_exact_mut(w)).for_each(|(x, c)| x.write_wire(c));
    }
}

/// Decodes exactly `bytes.len() / WIRE_BYTES` elements; `Err(i)` names the first invalid one.
pub(crate) fn decode_into<F: WireField>(bytes: &[u8], out: &mut Vec<F>) -> Result<(), usize> {
    let w = F::WIRE_BYTES;
    if !bytes.len().is_multiple_of(w) {
        return Err(bytes.len() / w);
    }
    let start = out.len();
    let count = bytes.len() / w;
    out.resize(start + count, F::zero());
    let target = out.get_mut(start..).unwrap_or_default();
    let decode = |(t, b): (&mut [F], &[u8])| -> Option<usize> {
        for (i, (slot, chunk)) in t.iter_mut().zip(b.chunks_exact(w)).enumerate() {
            match F::read_wire(chunk) {
                Some(v) => *slot = v,
                None => return Some(i),
            }
        }
        None
    };
    let bad = if count > PAR_CHUNK {
        target
            .par_chunks_mut(PAR_CHUNK)
            .zip(bytes.par_chunks(w * PAR_CHUNK))
            .enumerate()
            .filter_map(|(c, pair)| decode(pair).map(|i| c * PAR_CHUNK + i))
            .min()
    } else {
        decode((target, bytes))
    };
    match bad {
        Some(i) => {
            out.truncate(start);
            Err(i)
        }
        None => Ok(()),
    }
}

/// The low 128 bits of a field element's canonical integer.
pub fn low_u128<F: PrimeField>(x: &F) -> u128 {
    let limbs = x.into_bigint();
    let limbs = limbs.as_ref();
    let lo = limbs.first().copied().unwrap_or(0);
    let hi = limbs.get(1).copied().unwrap_or(0);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// Whether a field element's canonical integer is below `2^bits` (`bits <= 128`).
pub fn fits_bits<F: PrimeField>(x: &F, bits: u32) -> bool {
    let big = x.into_bigint();
    big.num_bits() <= bits
}

/// `2^k` as a field element.
pub fn pow2<F: PrimeField>(k: u32) -> F {
    F::from(2u64).pow([u64::from(k)])
}

/// Signed integer to field element.
pub fn from_i128<F: PrimeField>(v: i128) -> F {
    let mag = F::from(v.unsigned_abs());
    if v < 0 {
        -mag
    } else {
        mag
    }
}

/// Field element to a signed integer, reading elements above `p/2` as negative; `None` when
/// the magnitude does not fit in 127 bits.
pub fn to_i128<F: PrimeField>(x: &F) -> Option<i128> {
    let neg = -*x;
    if x.into_bigint() <= neg.into_bigint() {
        fits_bits(x, 127).then(|| low_u128(x) as i128)
    } else {
        fits_bits(&neg, 127).then(|| -(low_u128(&neg) as i128))
    }
}

/// Largest factor [`mul_small`] handles by additions.
pub(crate) const SMALL_FACTOR_LIMIT: u64 = 1 << 8;

/// `x * k` for a small integer `k` by doubling and adding: much cheaper than a Montgomery
/// multiplication for the tiny evaluation points and extraction coefficients of sharing.
#[inline]
pub(crate) fn mul_small<F: PrimeField>(x: F, k: u64) -> F {
    match k {
        0 => F::zero(),
        1 => x,
        2 => x.double(),
        3 => x.double() + x,
        4 => x.double().double(),
        _ if k < SMALL_FACTOR_LIMIT => {
            let mut acc = F::zero();
            let mut base = x;
            let mut k = k;
            while k > 0 {
                if k & 1 == 1 {
                    acc += base;
                }
                base.double_in_place();
                k >>= 1;
            }
            acc
        }
        _ => x * F::from(k),
    }
}

/// A public coefficient, kept as a small signed integer when it is one, so that multiplying
/// by it costs a few additions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coeff<F> {
    /// `+k`.
    Small(u64),
    /// `-k`.
    NegSmall(u64),
    /// Anything else.
    Full(F),
}

impl<F: PrimeField> Coeff<F> {
    pub(crate) fn new(c: F) -> Self {
        let small = |v: &F| fits_bits(v, 8).then(|| low_u128(v) as u64);
        if let Some(k) = small(&c) {
            Self::Small(k)
        } else if let Some(k) = small(&-c) {
            Self::NegSmall(k)
        } else {
            Self::Full(c)
        }
    }

    /// `x * self`.
    #[inline]
    pub(crate) fn apply(&self, x: F) -> F {
        match self {
            Self::Small(k) => mul_small(x, *k),
            Self::NegSmall(k) => -mul_small(x, *k),
            Self::Full(c) => x * c,
        }
    }
}
