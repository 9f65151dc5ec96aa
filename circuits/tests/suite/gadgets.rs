//! Comparison, equality, selection, sums and the max family, each three ways (Plain against
//! plaintext, R1cs satisfied with Plain's witness, wrong witness values rejected, setup mode
//! identical), plus the batching cost per layer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use ark_bn254::Fr;
use common::{block_on, check, fr, Checked, Circuit};
use proptest::prelude::*;
use tacit_circuits::gadgets::{
    argmax, argmax_one_hot, is_equal, is_zero, less_than, max, range_check, select, sums, top_two, top_two_one_hot,
};
use tacit_circuits::{Backend, CircuitError, Plain, Result};

fn frs(v: &[u64]) -> Vec<Fr> {
    v.iter().map(|x| fr(*x)).collect()
}

fn mask(bits: u32) -> u64 {
    if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Only private inputs may be unconstrained (an input a computation ignores is free); every
/// witness a gadget allocates must be pinned down.
fn assert_gadget_witnesses_constrained(c: &Checked, inputs: usize) {
    assert!(c.free_witnesses.iter().all(|&i| i < inputs), "free gadget witnesses: {:?}", c.free_witnesses);
}

struct LessThan(u32);
impl Circuit for LessThan {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let (a, c) = x.split_at(x.len() / 2);
        less_than(b, a, c, self.0).await
    }
}

struct RangeCheck(u32);
impl Circuit for RangeCheck {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        range_check(b, &x, self.0).await?;
        Ok(Vec::new())
    }
}

struct Bits(u32);
impl Circuit for Bits {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        Ok(b.to_bits(&x, self.0).await?.concat())
    }
}

struct IsZero;
impl Circuit for IsZero {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        is_zero(b, &x).await
    }
}

struct IsEqual;
impl Circuit for IsEqual {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let (a, c) = x.split_at(x.len() / 2);
        is_equal(b, a, c).await
    }
}

/// Inputs: conditions (range-checked as bits), then xs, then ys.
struct Select;
impl Circuit for Select {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let n = x.len() / 3;
        range_check(b, &x[..n], 1).await?;
        select(b, &x[..n], &x[n..2 * n], &x[2 * n..]).await
    }
}

/// Inputs split into vectors of the given lengths; reveals the sums.
struct Sums(Vec<usize>);
impl Circuit for Sums {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        Ok(sums(b, &split(&x, &self.0)))
    }
}

fn split<V: Clone>(x: &[V], lens: &[usize]) -> Vec<Vec<V>> {
    let mut rest = x;
    lens.iter()
        .map(|&n| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head.to_vec()
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Which {
    Max,
    Argmax,
    ArgmaxOneHot,
    TopTwoOneHot,
    TopTwo,
}

/// Max family over vectors of the given lengths; reveals, per vector, max (then argmax, then
/// second, as asked).
struct MaxFamily {
    lens: Vec<usize>,
    bits: u32,
    which: Which,
}
impl Circuit for MaxFamily {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, x: Vec<B::Value>) -> Result<Vec<B::Value>> {
        let vectors = split(&x, &self.lens);
        Ok(match self.which {
            Which::Max => max(b, &vectors, self.bits).await?,
            Which::Argmax => argmax(b, &vectors, self.bits).await?.into_iter().flat_map(|(m, i)| [m, i]).collect(),
            Which::ArgmaxOneHot => argmax_one_hot(b, &vectors, self.bits)
                .await?
                .into_iter()
                .flat_map(|t| std::iter::once(t.max).chain(t.one_hot))
                .collect(),
            Which::TopTwoOneHot => top_two_one_hot(b, &vectors, self.bits)
                .await?
                .into_iter()
                .flat_map(|t| std::iter::once(t.max).chain(t.one_hot).chain(t.second))
                .collect(),
            Which::TopTwo => {
                top_two(b, &vectors, self.bits).await?.into_iter().flat_map(|t| [t.max, t.argmax, t.second]).collect()
            }
        })
    }
}

/// Plaintext max, lowest argmax, second max (0 for one element).
fn top_two_plain(v: &[u64]) -> (u64, u64, u64) {
    let m = *v.iter().max().unwrap();
    let i = v.iter().position(|x| *x == m).unwrap();
    let second = v.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| *x).max().unwrap_or(0);
    (m, i as u64, second)
}

fn expected_max(vectors: &[Vec<u64>], which: Which) -> Vec<Fr> {
    vectors
        .iter()
        .flat_map(|v| {
            let (m, i, s) = top_two_plain(v);
            match which {
                Which::Max => vec![m],
                Which::Argmax => vec![m, i],
                Which::ArgmaxOneHot => {
                    std::iter::once(m).chain((0..v.len() as u64).map(|j| u64::from(j == i))).collect()
                }
                Which::TopTwoOneHot => {
                    std::iter::once(m).chain((0..v.len() as u64).map(|j| u64::from(j == i))).chain([s]).collect()
                }
                Which::TopTwo => vec![m, i, s],
            }
        })
        .map(fr)
        .collect()
}

fn run_max(vectors: &[Vec<u64>], bits: u32, which: Which) -> Checked {
    let lens: Vec<usize> = vectors.iter().map(Vec::len).collect();
    let flat: Vec<Fr> = vectors.iter().flatten().map(|x| fr(*x)).collect();
    let c = check(&MaxFamily { lens, bits, which }, &flat);
    assert_eq!(c.outputs, expected_max(vectors, which));
    assert_gadget_witnesses_constrained(&c, flat.len());
    c
}

#[test]
fn max_ties_lowest_index_wins() {
    let vectors = vec![vec![5, 9, 9, 2], vec![7], vec![3, 3, 3], vec![0, 0], vec![1, 8, 8, 8, 4]];
    for which in [Which::Max, Which::Argmax, Which::ArgmaxOneHot, Which::TopTwoOneHot, Which::TopTwo] {
        run_max(&vectors, 4, which);
    }
    let c = run_max(&vectors, 4, Which::TopTwo);
    // [5,9,9,2] -> max 9 at index 1, second 9; [7] -> second 0; [1,8,8,8,4] -> index 1.
    assert_eq!(&c.outputs[..6], &frs(&[9, 1, 9, 7, 0, 0]));
    assert_eq!(&c.outputs[12..], &frs(&[8, 1, 8]));
}

#[test]
fn max_family_calls_per_layer() {
    // 5 vectors, longest 9 -> 4 layers, whatever the batch holds.
    let vectors: Vec<Vec<u64>> = vec![(0..9).collect(), vec![3, 1], vec![4], (0..8).rev().collect(), vec![2; 5]];
    let layers = 4;
    for (which, to_bits_per_layer, mul_per_layer) in [(Which::Max, 1, 1), (Which::Argmax, 1, 1), (Which::TopTwo, 2, 2)]
    {
        let c = run_max(&vectors, 10, which);
        let counts = c.plain.counts();
        assert_eq!(counts.to_bits_calls, layers * to_bits_per_layer);
        assert_eq!(counts.mul_calls, layers * mul_per_layer);
        // n - 1 comparisons per vector (pairwise merges), twice with the second maximum.
        let merges: usize = vectors.iter().map(|v| v.len() - 1).sum();
        assert_eq!(counts.to_bits_values, merges * to_bits_per_layer);
    }
    // The one-hot argmax: the tournament's layers, then one mul call per layer back down,
    // n - 1 products per vector.
    let c = run_max(&vectors, 10, Which::ArgmaxOneHot);
    let merges: usize = vectors.iter().map(|v| v.len() - 1).sum();
    assert_eq!((c.plain.counts().to_bits_calls, c.plain.counts().mul_calls), (layers, 2 * layers));
    assert_eq!(c.plain.counts().mul_products, 2 * merges);
    // With the second maximum: the same mul calls carry the opponents (2 products per merge),
    // then one small tournament over each vector's per-layer opponents.
    let c = run_max(&vectors, 10, Which::TopTwoOneHot);
    let small_layers = 2; // 4 opponents each
    assert_eq!(c.plain.counts().to_bits_calls, layers + small_layers);
    assert_eq!(c.plain.counts().to_bits_values, merges + vectors.len() * (layers - 1));
    assert_eq!(c.plain.counts().mul_products, 3 * merges + vectors.len() * (layers - 1));
    // One vector alone costs the same number of calls as the batch.
    let c = run_max(&vectors[..1], 10, Which::Argmax);
    assert_eq!((c.plain.counts().to_bits_calls, c.plain.counts().mul_calls), (layers, layers));
}

#[test]
fn less_than_edges() {
    for bits in [1u32, 8, 63] {
        let top = mask(bits);
        let a = [0, top, top, 0, top - 1];
        let c = [0, top, 0, top, top];
        let flat: Vec<Fr> = a.iter().chain(&c).map(|x| fr(*x)).collect();
        let checked = check(&LessThan(bits), &flat);
        let expected: Vec<Fr> = a.iter().zip(&c).map(|(x, y)| fr(u64::from(x < y))).collect();
        assert_eq!(checked.outputs, expected, "bits {bits}");
        assert_gadget_witnesses_constrained(&checked, flat.len());
        assert_eq!(checked.plain.counts().to_bits_calls, 1);
    }
    let mut b = Plain::new();
    let err = block_on(less_than(&mut b, &[fr(1)], &[fr(2)], 80));
    assert!(matches!(err, Err(CircuitError::Usage(_))));
    // Out-of-range operands do not fit the difference.
    let err = block_on(less_than(&mut b, &[fr(300)], &[fr(2)], 8));
    assert!(matches!(err, Err(CircuitError::Unsatisfied(_))));
}

#[test]
fn to_bits_and_range_check() {
    let c = check(&Bits(64), &[fr(0), fr(u64::MAX), fr(0x8000_0000_0000_0001)]);
    assert_eq!(c.outputs.len(), 3 * 64);
    assert_eq!(c.outputs[64..128], vec![fr(1); 64][..]);
    assert_eq!(c.outputs[128], fr(1));
    assert_eq!(c.outputs[191], fr(1));
    assert!(c.outputs[129..191].iter().all(|b| *b == fr(0)));
    assert_gadget_witnesses_constrained(&c, 3);
    // Inputs are constrained too: the recomposition pins them.
    assert!(c.free_witnesses.is_empty());

    let c = check(&RangeCheck(10), &[fr(1023), fr(0), fr(512)]);
    assert!(c.free_witnesses.is_empty());
    assert_eq!(c.r1cs.num_constraints(), 3 * (10 + 1));

    let mut b = Plain::new();
    assert!(matches!(block_on(range_check(&mut b, &[fr(1024)], 10)), Err(CircuitError::Unsatisfied(_))));
    assert!(matches!(block_on(b.to_bits(&[fr(1)], 81)), Err(CircuitError::Usage(_))));
    let mut r = tacit_circuits::R1cs::new_prove();
    let x = block_on(r.private_inputs(common::p1(), Some(&[fr(1024)]), 1)).unwrap();
    assert!(matches!(block_on(range_check(&mut r, &x, 10)), Err(CircuitError::Unsatisfied(_))));
}

#[test]
fn is_zero_hint_is_the_only_free_witness() {
    let inputs = frs(&[0, 5, 0, 1]);
    let c = check(&IsZero, &inputs);
    assert_eq!(c.outputs, frs(&[1, 0, 1, 0]));
    // Witness layout: 4 inputs, then (flag, hint) per value; the hint of a zero is free.
    assert_eq!(c.free_witnesses, vec![4 + 1, 4 + 2 * 2 + 1]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn less_than_three_ways(
        bits in prop_oneof![Just(1u32), 1u32..=63, Just(63u32)],
        pairs in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<bool>()), 1..6),
    ) {
        // Some pairs equal, to exercise ties.
        let pairs: Vec<(u64, u64)> =
            pairs.iter().map(|(a, c, eq)| (a & mask(bits), if *eq { a & mask(bits) } else { c & mask(bits) })).collect();
        let flat: Vec<Fr> = pairs.iter().map(|p| fr(p.0)).chain(pairs.iter().map(|p| fr(p.1))).collect();
        let c = check(&LessThan(bits), &flat);
        let expected: Vec<Fr> = pairs.iter().map(|(a, b)| fr(u64::from(a < b))).collect();
        prop_assert_eq!(&c.outputs, &expected);
        assert_gadget_witnesses_constrained(&c, flat.len());
    }

    #[test]
    fn is_equal_three_ways(pairs in proptest::collection::vec((0u64..4, 0u64..4), 1..6)) {
        let flat: Vec<Fr> = pairs.iter().map(|p| fr(p.0)).chain(pairs.iter().map(|p| fr(p.1))).collect();
        let c = check(&IsEqual, &flat);
        let expected: Vec<Fr> = pairs.iter().map(|(a, b)| fr(u64::from(a == b))).collect();
        prop_assert_eq!(c.outputs, expected);
        // Free: exactly the hints of equal pairs.
        let n = pairs.len();
        let hints: Vec<usize> =
            pairs.iter().enumerate().filter(|(_, (a, b))| a == b).map(|(i, _)| 2 * n + 2 * i + 1).collect();
        prop_assert_eq!(c.free_witnesses, hints);
    }

    #[test]
    fn select_three_ways(rows in proptest::collection::vec((any::<bool>(), any::<u64>(), any::<u64>()), 1..6)) {
        let n = rows.len();
        let flat: Vec<Fr> = rows
            .iter()
            .map(|r| fr(u64::from(r.0)))
            .chain(rows.iter().map(|r| fr(r.1)))
            .chain(rows.iter().map(|r| fr(r.2)))
            .collect();
        let c = check(&Select, &flat);
        let expected: Vec<Fr> = rows.iter().map(|(s, x, y)| fr(if *s { *x } else { *y })).collect();
        prop_assert_eq!(&c.outputs, &expected);
        assert_gadget_witnesses_constrained(&c, flat.len());
        // An unselected x (condition 0) is the only kind of free input.
        let free_inputs: Vec<usize> =
            rows.iter().enumerate().filter(|(_, r)| !r.0).map(|(i, _)| n + i).collect();
        prop_assert_eq!(c.free_witnesses, free_inputs);
        prop_assert_eq!(c.plain.counts().mul_calls, 1);
    }

    #[test]
    fn sums_three_ways(vectors in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 0..5), 1..4)) {
        let lens: Vec<usize> = vectors.iter().map(Vec::len).collect();
        let flat: Vec<Fr> = vectors.iter().flatten().map(|x| fr(*x)).collect();
        let c = check(&Sums(lens), &flat);
        let expected: Vec<Fr> = vectors.iter().map(|v| v.iter().map(|x| fr(*x)).sum()).collect();
        prop_assert_eq!(c.outputs, expected);
        prop_assert_eq!(c.plain.counts().interactive_calls(), 2, "inputs and reveal only");
    }

    #[test]
    fn max_family_three_ways(
        bits in prop_oneof![Just(2u32), 1u32..=63],
        vectors in proptest::collection::vec(proptest::collection::vec(any::<u64>(), 1..7), 1..4),
    ) {
        let vectors: Vec<Vec<u64>> = vectors.iter().map(|v| v.iter().map(|x| x & mask(bits)).collect()).collect();
        for which in [Which::Max, Which::Argmax, Which::ArgmaxOneHot, Which::TopTwoOneHot, Which::TopTwo] {
            run_max(&vectors, bits, which);
        }
    }
}
