//! Secret types: a party's shares of a vector of secrets, and the typed preprocessing items.
//!
//! All of them zeroize on drop, print `<redacted>`, have no `Clone` where an item must be used
//! once, and no `Serialize`: reading raw shares needs an explicit `expose_*` call.

use ark_ff::PrimeField;
use rayon::prelude::*;
use zeroize::Zeroize;

use crate::field::PAR_CHUNK;

macro_rules! redacted_debug {
    ($($ty:ident),*) => {$(
        impl<F: PrimeField> std::fmt::Debug for $ty<F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "(len {}, <redacted>)"), self.len())
            }
        }
    )*};
}

/// This party's shares of a vector of secret values (degree-`t` Shamir sharings).
#[derive(Clone, PartialEq, Eq)]
pub struct Shares<F: PrimeField>(Vec<F>);

impl<F: PrimeField> Drop for Shares<F> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

fn zip_map<F: PrimeField>(a: &[F], b: &[F], f: impl Fn(&F, &F) -> F + Sync + Send) -> Vec<F> {
    if a.len() > PAR_CHUNK {
        a.par_iter().zip(b.par_iter()).map(|(x, y)| f(x, y)).collect()
    } else {
        a.iter().zip(b).map(|(x, y)| f(x, y)).collect()
    }
}

fn map<F: PrimeField>(a: &[F], f: impl Fn(&F) -> F + Sync + Send) -> Vec<F> {
    if a.len() > PAR_CHUNK {
        a.par_iter().map(f).collect()
    } else {
        a.iter().map(f).collect()
    }
}

impl<F: PrimeField> Shares<F> {
    /// Wraps raw shares (e.g. a share vector received from an input protocol).
    pub fn from_raw(shares: Vec<F>) -> Self {
        Self(shares)
    }

    /// Shares of the public vector `values` (every party holds the value itself).
    pub fn constant(values: &[F]) -> Self {
        Self(values.to_vec())
    }

    /// Shares of `len` zeros.
    pub fn zeros(len: usize) -> Self {
        Self(vec![F::zero(); len])
    }

    /// Number of shared values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This party's raw shares. Handle with care: they are secret.
    pub fn expose_shares(&self) -> &[F] {
        &self.0
    }

    /// Takes the raw shares out. Handle with care: they are secret.
    pub fn into_exposed(mut self) -> Vec<F> {
        std::mem::take(&mut self.0)
    }

    /// Element-wise sum (lengths must match; the shorter length wins otherwise).
    pub fn add(&self, other: &Self) -> Self {
        Self(zip_map(&self.0, &other.0, |a, b| *a + b))
    }

    /// Element-wise difference.
    pub fn sub(&self, other: &Self) -> Self {
        Self(zip_map(&self.0, &other.0, |a, b| *a - b))
    }

    /// Multiplies every value by the public scalar `c`.
    pub fn scale(&self, c: F) -> Self {
        Self(map(&self.0, |a| *a * c))
    }

    /// Element-wise product with a public vector.
    pub fn mul_public(&self, c: &[F]) -> Self {
        Self(zip_map(&self.0, c, |a, b| *a * b))
    }

    /// Adds the public vector `c` element-wise.
    pub fn add_public(&self, c: &[F]) -> Self {
        Self(zip_map(&self.0, c, |a, b| *a + b))
    }

    /// Adds the public scalar `c` to every value.
    pub fn add_scalar(&self, c: F) -> Self {
        Self(map(&self.0, |a| *a + c))
    }

    /// `c - self` for a public scalar `c`.
    pub fn rsub_scalar(&self, c: F) -> Self {
        Self(map(&self.0, |a| c - a))
    }

    /// Sum of all values, as one shared value.
    pub fn sum(&self) -> Self {
        Self(vec![self.0.iter().copied().sum()])
    }

    /// The values `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self(self.0.get(range).map(<[F]>::to_vec).unwrap_or_default())
    }

    /// Concatenation.
    pub fn concat(parts: &[&Self]) -> Self {
        Self(parts.iter().flat_map(|p| p.0.iter().copied()).collect())
    }

    /// Linear combination `sum_k c_k * parts_k` of equal-length vectors.
    pub fn linear_combination(parts: &[(&Self, F)]) -> Self {
        let len = parts.iter().map(|(p, _)| p.len()).min().unwrap_or(0);
        let mut out = vec![F::zero(); len];
        for (part, c) in parts {
            if c.is_one() {
                out.iter_mut().zip(&part.0).for_each(|(o, v)| *o += v);
            } else {
                out.iter_mut().zip(&part.0).for_each(|(o, v)| *o += *v * c);
            }
        }
        Self(out)
    }
}

macro_rules! pool_item {
    ($(#[$doc:meta])* $ty:ident { $($field:ident),+ }) => {
        $(#[$doc])*
        pub struct $ty<F: PrimeField> { $(pub(crate) $field: Vec<F>),+ }

        impl<F: PrimeField> Drop for $ty<F> {
            fn drop(&mut self) { $(self.$field.zeroize();)+ }
        }

        impl<F: PrimeField> Default for $ty<F> {
            fn default() -> Self { Self { $($field: Vec::new()),+ } }
        }

        impl<F: PrimeField> $ty<F> {
            /// Number of items.
            pub fn len(&self) -> usize {
                [$(self.$field.len()),+].into_iter().min().unwrap_or(0)
            }

            /// Whether there are none.
            pub fn is_empty(&self) -> bool { self.len() == 0 }

            /// Moves `count` items out (from the end); `None` if fewer are left.
            pub fn take(&mut self, count: usize) -> Option<Self> {
                let len = self.len();
                if count > len { return None; }
                Some(Self { $($field: self.$field.split_off(len - count)),+ })
            }

            /// Moves all of `other`'s items into this pool.
            pub fn append(&mut self, mut other: Self) {
                $(self.$field.append(&mut other.$field);)+
            }
        }
    };
}

pool_item!(
    /// Random degree-`t` sharings of unknown uniformly random values.
    RandomShares { r }
);
pool_item!(
    /// DN07 double sharings: the same random value under degree `t` and degree `2t`.
    DoubleShares { r_t, r_2t }
);
pool_item!(
    /// Beaver triples `(a, b, c = a*b)`.
    BeaverTriples { a, b, c }
);
pool_item!(
    /// Shared uniformly random bits.
    RandomBits { bits }
);

impl<F: PrimeField> RandomShares<F> {
    /// Uses the items as plain shares of random values.
    pub fn into_shares(mut self) -> Shares<F> {
        Shares(std::mem::take(&mut self.r))
    }
}

impl<F: PrimeField> RandomBits<F> {
    /// Uses the items as shares of bits.
    pub fn into_shares(mut self) -> Shares<F> {
        Shares(std::mem::take(&mut self.bits))
    }
}

impl<F: PrimeField> BeaverTriples<F> {
    /// Corrupts this party's share of `c` in the first triple, to test that the engine
    /// catches a party using a bad triple. Only a party's own state changes.
    #[doc(hidden)]
    pub fn tamper_for_tests(&mut self, delta: F) {
        if let Some(c) = self.c.first_mut() {
            *c += delta;
        }
    }
}

redacted_debug!(Shares, RandomShares, DoubleShares, BeaverTriples, RandomBits);
