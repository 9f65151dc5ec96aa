//! Shamir sharing over a prime field: party `i` holds the evaluation at `x = i`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ark_ff::PrimeField;
use ark_std::rand::Rng;
use rayon::prelude::*;

use crate::field::{Coeff, PAR_CHUNK};
use crate::party::{PartyId, MAX_PARTIES};

/// Why a set of sharing parameters is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `n` outside `1..=16`.
    #[error("{0} parties: the engine supports 1 to {MAX_PARTIES}")]
    Parties(usize),
    /// Not an honest majority.
    #[error("threshold {t} with {n} parties: need n >= 2t + 1")]
    Threshold {
        /// Parties.
        n: usize,
        /// Threshold.
        t: usize,
    },
}

/// Sharing parameters and the interpolation tables every protocol step reuses.
pub struct Shamir<F: PrimeField> {
    n: usize,
    t: usize,
    points: Vec<F>,
    /// `vandermonde[k][j] = (j + 1)^k`, `k < n - t`: extracts `n - t` random sharings from `n`.
    vandermonde: Vec<Vec<F>>,
    /// Per degree `d`: coefficients predicting share `j > d` from shares `0..=d`.
    predictors: Mutex<HashMap<usize, Arc<Vec<Vec<F>>>>>,
    /// Lagrange coefficients at zero per party set (bit mask over party indices).
    lagrange: Mutex<HashMap<u32, Arc<Vec<F>>>>,
}

impl<F: PrimeField> std::fmt::Debug for Shamir<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shamir").field("n", &self.n).field("t", &self.t).finish()
    }
}

impl<F: PrimeField> Shamir<F> {
    /// Parameters for `n` parties tolerating `t` corruptions.
    pub fn new(n: usize, t: usize) -> Result<Self, ParamError> {
        if n == 0 || n > MAX_PARTIES {
            return Err(ParamError::Parties(n));
        }
        if n < 2 * t + 1 {
            return Err(ParamError::Threshold { n, t });
        }
        let points: Vec<F> = (1..=n as u64).map(F::from).collect();
        let vandermonde = (0..n - t).map(|k| points.iter().map(|x| x.pow([k as u64])).collect()).collect();
        Ok(Self {
            n,
            t,
            points,
            vandermonde,
            predictors: Mutex::new(HashMap::new()),
            lagrange: Mutex::new(HashMap::new()),
        })
    }

    /// Number of parties.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Corruption threshold (the sharing degree).
    pub fn t(&self) -> usize {
        self.t
    }

    /// Evaluation points `1..=n`.
    pub fn points(&self) -> &[F] {
        &self.points
    }

    /// The `(n - t) x n` extraction matrix.
    pub fn vandermonde(&self) -> &[Vec<F>] {
        &self.vandermonde
    }

    /// The extraction matrix, with small entries kept as integers.
    pub(crate) fn vandermonde_coeffs(&self) -> Vec<Vec<Coeff<F>>> {
        self.vandermonde.iter().map(|row| row.iter().map(|c| Coeff::new(*c)).collect()).collect()
    }

    /// Shares of `secret` under a random polynomial of `degree`: element `i` is party `i + 1`'s.
    pub fn share<R: Rng + ?Sized>(&self, secret: F, degree: usize, rng: &mut R) -> Vec<F> {
        let mut coeffs = Vec::with_capacity(degree + 1);
        coeffs.push(secret);
        coeffs.extend((0..degree).map(|_| F::rand(rng)));
        self.points.iter().map(|x| eval_poly(&coeffs, *x)).collect()
    }

    /// A dealer's sharing of every value, by party: element `i` holds party `i + 1`'s shares
    /// of `values`, in order.
    pub fn share_by_party<R: Rng + ?Sized>(&self, values: &[F], degree: usize, rng: &mut R) -> Vec<Vec<F>> {
        let mut by_party: Vec<Vec<F>> = (0..self.n).map(|_| Vec::with_capacity(values.len())).collect();
        for v in values {
            for (party, share) in by_party.iter_mut().zip(self.share(*v, degree, rng)) {
                party.push(share);
            }
        }
        by_party
    }

    /// Lagrange coefficients at zero for the given parties (cached per set).
    pub fn lagrange_at_zero(&self, parties: &[PartyId]) -> Arc<Vec<F>> {
        let mask = parties.iter().fold(0u32, |m, p| m | (1 << p.index()));
        let mut cache = self.lagrange.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(mask)
            .or_insert_with(|| {
                let xs: Vec<F> = parties.iter().map(|p| F::from(u64::from(p.get()))).collect();
                Arc::new(lagrange_coefficients(&xs, F::zero()))
            })
            .clone()
    }

    /// Coefficients that predict shares `d+1..n` from shares `0..=d` of a degree-`d` sharing.
    fn predictors(&self, degree: usize) -> Arc<Vec<Vec<F>>> {
        let mut cache = self.predictors.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(degree)
            .or_insert_with(|| {
                let base = self.points.get(..=degree).unwrap_or(&self.points);
                let rest = self.points.get(degree + 1..).unwrap_or(&[]);
                Arc::new(rest.iter().map(|x| lagrange_coefficients(base, *x)).collect())
            })
            .clone()
    }

    /// Reconstructs the secret of one degree-`degree` sharing from all `n` shares, checking that
    /// every share lies on the polynomial. `None` if inconsistent or the wrong length.
    pub fn reconstruct_checked(&self, shares: &[F], degree: usize) -> Option<F> {
        if shares.len() != self.n || degree >= self.n {
            return None;
        }
        let base = shares.get(..=degree)?;
        let preds = self.predictors(degree);
        for (coeffs, actual) in preds.iter().zip(shares.get(degree + 1..)?) {
            if dot(coeffs, base) != *actual {
                return None;
            }
        }
        let parties: Vec<PartyId> = PartyId::all(degree + 1).collect();
        Some(dot(&self.lagrange_at_zero(&parties), base))
    }

    /// Batch reconstruction. `by_party[j]` holds party `j + 1`'s shares of every secret.
    /// With `check`, every share beyond the first `degree + 1` must lie on the interpolated
    /// polynomial; on failure returns the index of the first inconsistent secret.
    pub fn reconstruct_batch(&self, by_party: &[Vec<F>], degree: usize, check: bool) -> Result<Vec<F>, usize> {
        let len = by_party.first().map_or(0, Vec::len);
        if by_party.len() != self.n || degree >= self.n || by_party.iter().any(|v| v.len() != len) {
            return Err(0);
        }
        let parties: Vec<PartyId> = PartyId::all(degree + 1).collect();
        // Lagrange coefficients of the prefix sets 1..=m are binomials: mostly additions.
        let lambda: Vec<Coeff<F>> = self.lagrange_at_zero(&parties).iter().map(|c| Coeff::new(*c)).collect();
        let preds: Vec<Vec<Coeff<F>>> =
            self.predictors(degree).iter().map(|row| row.iter().map(|c| Coeff::new(*c)).collect()).collect();
        let (base, rest) = by_party.split_at(degree + 1);
        let work = |start: usize, out: &mut [F]| -> Result<(), usize> {
            let end = start + out.len();
            let combine = |coeffs: &[Coeff<F>], target: &mut [F]| {
                for (k, (c, col)) in coeffs.iter().zip(base).enumerate() {
                    let col = col.get(start..end).unwrap_or_default();
                    if k == 0 {
                        target.iter_mut().zip(col).for_each(|(o, v)| *o = c.apply(*v));
                    } else {
                        target.iter_mut().zip(col).for_each(|(o, v)| *o += c.apply(*v));
                    }
                }
            };
            combine(&lambda, out);
            if check {
                let mut predicted = vec![F::zero(); out.len()];
                for (coeffs, col) in preds.iter().zip(rest) {
                    combine(coeffs, &mut predicted);
                    let actual = col.get(start..end).unwrap_or_default();
                    if let Some(i) = predicted.iter().zip(actual).position(|(p, a)| p != a) {
                        return Err(start + i);
                    }
                }
            }
            Ok(())
        };
        let mut out = vec![F::zero(); len];
        if len > PAR_CHUNK {
            let first_bad = out
                .par_chunks_mut(PAR_CHUNK)
                .enumerate()
                .filter_map(|(c, chunk)| work(c * PAR_CHUNK, chunk).err())
                .min();
            if let Some(first) = first_bad {
                return Err(first);
            }
        } else {
            work(0, &mut out)?;
        }
        Ok(out)
    }

    /// Error correction for one sharing: the parties whose shares disagree with the unique
    /// degree-`degree` polynomial that at least `n - t` shares agree on. `None` when the
    /// parameters do not allow identification (`n < degree + 1 + 2t`) or no such polynomial
    /// exists.
    pub fn identify_bad_shares(&self, shares: &[F], degree: usize) -> Option<Vec<PartyId>> {
        let (n, t) = (self.n, self.t);
        if shares.len() != n || n < degree + 1 + 2 * t {
            return None;
        }
        let mut subset: Vec<usize> = (0..=degree).collect();
        loop {
            let xs: Vec<F> = subset.iter().filter_map(|&i| self.points.get(i).copied()).collect();
            let ys: Vec<F> = subset.iter().filter_map(|&i| shares.get(i).copied()).collect();
            let bad: Vec<PartyId> = self
                .points
                .iter()
                .zip(shares)
                .enumerate()
                .filter(|(_, (x, y))| dot(&lagrange_coefficients(&xs, **x), &ys) != **y)
                .filter_map(|(i, _)| PartyId::from_index(i))
                .collect();
            if bad.len() <= t {
                return Some(bad);
            }
            if !next_subset(&mut subset, n) {
                return None;
            }
        }
    }
}

/// Every subset of `size` zero-based indices below `n`, in lexicographic order (for error
/// correction by trying candidate sets of parties).
pub fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if size > n {
        return out;
    }
    let mut current: Vec<usize> = (0..size).collect();
    loop {
        out.push(current.clone());
        if !next_subset(&mut current, n) {
            return out;
        }
    }
}

/// Advances `subset` (strictly increasing indices below `n`) to the next combination.
fn next_subset(subset: &mut [usize], n: usize) -> bool {
    let k = subset.len();
    for pos in (0..k).rev() {
        let limit = n - (k - pos);
        if let Some(v) = subset.get(pos).copied() {
            if v < limit {
                for (off, slot) in subset.iter_mut().skip(pos).enumerate() {
                    *slot = v + 1 + off;
                }
                return true;
            }
        }
    }
    false
}

/// Horner evaluation at a small integer point.
#[inline]
pub(crate) fn eval_poly_small<F: PrimeField>(coeffs: &[F], x: u64) -> F {
    coeffs.iter().rev().fold(F::zero(), |acc, c| crate::field::mul_small(acc, x) + c)
}

/// Horner evaluation.
pub fn eval_poly<F: PrimeField>(coeffs: &[F], x: F) -> F {
    coeffs.iter().rev().fold(F::zero(), |acc, c| acc * x + c)
}

/// `sum a_i * b_i`.
pub fn dot<F: PrimeField>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).fold(F::zero(), |acc, (x, y)| acc + *x * y)
}

/// Lagrange basis polynomials for nodes `xs`, evaluated at `at`.
pub fn lagrange_coefficients<F: PrimeField>(xs: &[F], at: F) -> Vec<F> {
    xs.iter()
        .enumerate()
        .map(|(i, xi)| {
            let mut num = F::one();
            let mut den = F::one();
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    num *= at - xj;
                    den *= *xi - xj;
                }
            }
            num * den.inverse().unwrap_or_default()
        })
        .collect()
}
