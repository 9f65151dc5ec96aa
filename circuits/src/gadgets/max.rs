//! Maximum, argmax and second maximum over vectors, by a tournament run on all vectors of a
//! batch in lockstep: each layer pairs neighbours (`[0,1], [2,3], ...`; an odd last element
//! passes to the next layer unchanged) and compares every pair of every vector in one
//! [`less_than`] call, then selects in one `mul` call. A vector of `n` values takes
//! `ceil(log2 n)` layers; the batch takes as many layers as its longest vector.
//!
//! Values must be below `2^bits` (`bits <= 63`); see [`less_than`].
//!
//! Ties: the right element of a pair wins only if the left is strictly smaller, and the left
//! subtree always holds the lower indices, so among equal maxima the **lowest index wins**.
//! The second maximum is the largest value once the argmax element is removed (so it equals
//! the maximum when the maximum is tied), and `0` for a one-element vector.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use super::compare::{less_than, select, zero};
use crate::backend::{Backend, CircuitError, Result};

/// The two largest values of a vector, and where the largest is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopTwo<V> {
    /// The maximum.
    pub max: V,
    /// Index of the maximum (lowest index among ties), as a value.
    pub argmax: V,
    /// The largest value other than the argmax element (`0` for one element).
    pub second: V,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    index: Option<V>,
    second: Option<V>,
}

/// How one tournament layer paired its vectors: per vector, the number of pairs and whether
/// an odd tail passed unchanged; per pair (all vectors in order), whether the right won.
struct Layer<V> {
    pairs_per_list: Vec<usize>,
    tails: Vec<bool>,
    right_won: Vec<V>,
    /// Per pair, the loser's value (linear in the pair and the winner).
    losers: Vec<V>,
}

/// Runs the tournament; per layer: one `less_than` and one `mul` call, plus (when tracking
/// the second maximum) a second `less_than` and a second `mul` call.
///
/// Per pair `(l, r)` with `c = [l.value < r.value]`, the first `mul` call multiplies, pair by
/// pair, `c` by `r.value - l.value`, then (if tracked) by `r.index - l.index`, then (if
/// tracked) by `r.second - l.second`. The winner takes `l + product`; the loser's value is
/// `l.value + r.value - winner`; the new second maximum is `max(loser, c ? r.second :
/// l.second)`, compared and selected in the second `less_than` and `mul` calls.
async fn tournament<B: Backend>(
    b: &mut B,
    vectors: &[Vec<B::Value>],
    bits: u32,
    track_index: bool,
    track_second: bool,
    mut layers: Option<&mut Vec<Layer<B::Value>>>,
) -> Result<Vec<Entry<B::Value>>> {
    if vectors.iter().any(Vec::is_empty) {
        return Err(CircuitError::Usage("max over an empty vector".into()));
    }
    let mut lists: Vec<Vec<Entry<B::Value>>> = vectors
        .iter()
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(i, x)| Entry {
                    value: x.clone(),
                    index: track_index.then(|| b.constant(B::F::from(i as u64))),
                    second: track_second.then(|| zero(b)),
                })
                .collect()
        })
        .collect();

    while lists.iter().any(|l| l.len() > 1) {
        // Pairs of every vector, in order; odd tails wait.
        let mut lefts = Vec::new();
        let mut rights = Vec::new();
        let mut tails = Vec::with_capacity(lists.len());
        let mut pairs_per_list = Vec::with_capacity(lists.len());
        for list in lists.drain(..) {
            let mut it = list.into_iter();
            let mut pairs = 0usize;
            let mut tail = None;
            while let Some(l) = it.next() {
                match it.next() {
                    Some(r) => {
                        lefts.push(l);
                        rights.push(r);
                        pairs += 1;
                    }
                    None => tail = Some(l),
                }
            }
            pairs_per_list.push(pairs);
            tails.push(tail);
        }

        let lv: Vec<B::Value> = lefts.iter().map(|e| e.value.clone()).collect();
        let rv: Vec<B::Value> = rights.iter().map(|e| e.value.clone()).collect();
        let c = less_than(b, &lv, &rv, bits).await?;

        let mut factors = Vec::new();
        let mut diffs = Vec::new();
        for ((l, r), ci) in lefts.iter().zip(&rights).zip(&c) {
            factors.push(ci.clone());
            diffs.push(b.sub(&r.value, &l.value));
            if let (Some(li), Some(ri)) = (&l.index, &r.index) {
                factors.push(ci.clone());
                diffs.push(b.sub(ri, li));
            }
            if let (Some(ls), Some(rs)) = (&l.second, &r.second) {
                factors.push(ci.clone());
                diffs.push(b.sub(rs, ls));
            }
        }
        let products = b.mul(&factors, &diffs).await?;
        let mut products = products.into_iter();
        let mut next =
            || products.next().ok_or_else(|| CircuitError::Synthesis("mul returned too few products".into()));

        let mut winners = Vec::with_capacity(lefts.len());
        let mut losers = Vec::new();
        let mut others = Vec::new();
        for (l, r) in lefts.iter().zip(&rights) {
            let value = b.add(&l.value, &next()?);
            let index = match &l.index {
                Some(li) => Some(b.add(li, &next()?)),
                None => None,
            };
            if let Some(ls) = &l.second {
                others.push(b.add(ls, &next()?));
                losers.push(b.sub(&b.add(&l.value, &r.value), &value));
            }
            winners.push(Entry { value, index, second: None });
        }
        if track_second {
            let lt = less_than(b, &losers, &others, bits).await?;
            let seconds = select(b, &lt, &others, &losers).await?;
            for (w, s) in winners.iter_mut().zip(seconds) {
                w.second = Some(s);
            }
        }

        if let Some(layers) = layers.as_deref_mut() {
            let losers =
                lefts.iter().zip(&rights).zip(&winners).map(|((l, r), w)| b.sub(&b.add(&l.value, &r.value), &w.value));
            layers.push(Layer {
                pairs_per_list: pairs_per_list.clone(),
                tails: tails.iter().map(Option::is_some).collect(),
                right_won: c,
                losers: losers.collect(),
            });
        }
        let mut winners = winners.into_iter();
        for (pairs, tail) in pairs_per_list.into_iter().zip(tails) {
            let mut list: Vec<Entry<B::Value>> = winners.by_ref().take(pairs).collect();
            list.extend(tail);
            lists.push(list);
        }
    }

    lists
        .into_iter()
        .map(|l| l.into_iter().next().ok_or_else(|| CircuitError::Synthesis("empty tournament".into())))
        .collect()
}

fn missing() -> CircuitError {
    CircuitError::Synthesis("tournament lost a tracked value".into())
}

/// The maximum of each vector (non-empty; values below `2^bits`).
pub async fn max<B: Backend>(b: &mut B, vectors: &[Vec<B::Value>], bits: u32) -> Result<Vec<B::Value>> {
    Ok(tournament(b, vectors, bits, false, false, None).await?.into_iter().map(|e| e.value).collect())
}

/// The maximum of each vector and its index (lowest among ties), as `(max, index)`.
pub async fn argmax<B: Backend>(b: &mut B, vectors: &[Vec<B::Value>], bits: u32) -> Result<Vec<(B::Value, B::Value)>> {
    tournament(b, vectors, bits, true, false, None)
        .await?
        .into_iter()
        .map(|e| e.index.map(|i| (e.value, i)).ok_or_else(missing))
        .collect()
}

/// The maximum of a vector, the one-hot indicator of where it is, and (when asked) the
/// second maximum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneHotMax<V> {
    /// The maximum.
    pub max: V,
    /// `one_hot[i] = 1` exactly at the argmax (lowest index among ties); the index itself is
    /// the linear `sum_i i * one_hot[i]`.
    pub one_hot: Vec<V>,
    /// The largest value other than the argmax element (`0` for one element), if asked.
    pub second: Option<V>,
}

/// The maximum of each vector and the one-hot indicator of where it is (lowest index among
/// ties), see [`OneHotMax`].
///
/// The tournament does not carry indices; the indicator is rebuilt from the layers' outcome
/// bits, root to leaves, one `mul` call per layer: a pair's right member gets `parent * c`,
/// its left member `parent - parent * c`. That is `n - 1` products per vector, against the
/// `2n` comparisons that finding the argmax by its index would take.
pub async fn argmax_one_hot<B: Backend>(
    b: &mut B,
    vectors: &[Vec<B::Value>],
    bits: u32,
) -> Result<Vec<OneHotMax<B::Value>>> {
    one_hot_tournament(b, vectors, bits, false).await
}

/// [`argmax_one_hot`] with the second maximum. The second maximum lost directly to the
/// maximum (whoever beat it is at least as large, and following those wins ends at the
/// maximum), so it is the largest of the maximum's opponents, one per layer: the descent
/// picks each layer's opponent with the products it already makes (`parent * loser`, in the
/// same `mul` call), and a tournament over those `ceil(log2 n)` values finds the largest,
/// instead of a second tournament over all `n`.
pub async fn top_two_one_hot<B: Backend>(
    b: &mut B,
    vectors: &[Vec<B::Value>],
    bits: u32,
) -> Result<Vec<OneHotMax<B::Value>>> {
    one_hot_tournament(b, vectors, bits, true).await
}

async fn one_hot_tournament<B: Backend>(
    b: &mut B,
    vectors: &[Vec<B::Value>],
    bits: u32,
    with_second: bool,
) -> Result<Vec<OneHotMax<B::Value>>> {
    let mut layers = Vec::new();
    let tops = tournament(b, vectors, bits, false, false, Some(&mut layers)).await?;
    let one = b.constant(B::F::from(1u64));
    let mut indicators: Vec<Vec<B::Value>> = vec![vec![one]; vectors.len()];
    // Per vector, the maximum's opponent at each layer (zero where it passed as a tail).
    let mut opponents: Vec<Vec<B::Value>> = vec![Vec::with_capacity(layers.len()); vectors.len()];
    let too_few = || CircuitError::Synthesis("mul returned too few products".into());
    for layer in layers.iter().rev() {
        let mut factors = Vec::with_capacity(2 * layer.right_won.len());
        let mut operands = Vec::with_capacity(2 * layer.right_won.len());
        let mut pair = 0usize;
        for (list, pairs) in indicators.iter().zip(&layer.pairs_per_list) {
            for parent in list.iter().take(*pairs) {
                factors.push(parent.clone());
                operands.push(layer.right_won.get(pair).cloned().ok_or_else(missing)?);
                if with_second {
                    factors.push(parent.clone());
                    operands.push(layer.losers.get(pair).cloned().ok_or_else(missing)?);
                }
                pair += 1;
            }
        }
        let products = b.mul(&factors, &operands).await?;
        let mut products = products.into_iter();
        let mut next = Vec::with_capacity(indicators.len());
        for (((list, pairs), tail), opponent) in
            indicators.iter().zip(&layer.pairs_per_list).zip(&layer.tails).zip(opponents.iter_mut())
        {
            let mut expanded = Vec::with_capacity(2 * pairs + 1);
            let mut picked = zero(b);
            for parent in list.iter().take(*pairs) {
                let r = products.next().ok_or_else(too_few)?;
                if with_second {
                    picked = b.add(&picked, &products.next().ok_or_else(too_few)?);
                }
                expanded.push(b.sub(parent, &r));
                expanded.push(r);
            }
            if *tail {
                expanded.push(list.get(*pairs).cloned().ok_or_else(missing)?);
            }
            opponent.push(picked);
            next.push(expanded);
        }
        indicators = next;
    }
    let seconds = if with_second {
        // A one-element vector had no opponent: its second maximum is 0.
        for list in opponents.iter_mut().filter(|o| o.is_empty()) {
            list.push(zero(b));
        }
        max(b, &opponents, bits).await?.into_iter().map(Some).collect()
    } else {
        vec![None; vectors.len()]
    };
    Ok(tops
        .into_iter()
        .zip(indicators)
        .zip(seconds)
        .map(|((top, one_hot), second)| OneHotMax { max: top.value, one_hot, second })
        .collect())
}

/// The maximum, its index and the second maximum of each vector.
pub async fn top_two<B: Backend>(b: &mut B, vectors: &[Vec<B::Value>], bits: u32) -> Result<Vec<TopTwo<B::Value>>> {
    tournament(b, vectors, bits, true, true, None)
        .await?
        .into_iter()
        .map(|e| match (e.index, e.second) {
            (Some(argmax), Some(second)) => Ok(TopTwo { max: e.value, argmax, second }),
            _ => Err(missing()),
        })
        .collect()
}
