//! The statement the nodes prove for committed `cardinality` and `sum` queries, written once
//! over the circuits [`Backend`] (the oracle, the constraint system and the computation on
//! shares all come from [`intersection_statement`]).
//!
//! **Statement.** Institution `c` has committed (a group of `tacit_prover::committed`,
//! published before the query) to its list of `rows` tags, sorted strictly increasing, each
//! below `2^63` for real items (random padding above: see [`pad_list`]), in `sum` mode followed by one
//! value below `2^64` per tag, and a blinder. The result is the number of tags present in
//! every list (`cardinality`), or the sum of all values attached to those tags, released
//! only if there are at least `min_size` of them (`sum`).
//!
//! **How it is checked** (about 20 constraints per row; no hash in the circuit):
//!
//! * The prover commits to two more groups, the *hints* ([`Hints`]): the merged list `M` of
//!   all distinct tags, strictly increasing, padded to `institutions·rows` entries; the
//!   multiplicity `μ_k` of each (0 for padding), the summed value `V_k` of each (`sum`); the
//!   limbs of every difference and value that must be range-checked; and how often each
//!   limb value occurs among the limbs. The nodes know `M` and `μ` in the clear (the opened,
//!   shuffled tags), so those form their own group, which costs no communication on shares.
//! * Strict order: each difference `x_{j+1} - x_j - 1` of every list and of `M` is made of
//!   limbs (four of 16 bits), so every list is a set and `M` has distinct entries.
//! * With the challenge `α` drawn after both kinds of groups are committed:
//!   `Σ_rows 1/(α - a) = Σ_k μ_k/(α - M_k)` (so `μ_k` is exactly the number of rows holding
//!   `M_k`, and every row's tag is in `M`), `Σ_rows v/(α - a) = Σ_k V_k/(α - M_k)` (`sum`),
//!   and the limbs' lookup `Σ_limbs 1/(α - l) = Σ_{i<2^b} count_i/(α - i)` (log-derivative
//!   lookup: every limb is below `2^b`).
//! * A tag is in every list iff its multiplicity is the number of institutions (no list
//!   holds a tag twice): the count is `Σ_k [μ_k = m]`, the sum `Σ_k [μ_k = m]·V_k`.
//!
//! The outputs are revealed before the challenge (they are fixed by the committed groups);
//! the challenge is the last instance variable.

use std::collections::BTreeMap;
use std::sync::Arc;

use ark_bn254::Fr;
use ark_ff::PrimeField;
use tacit_circuits::gadgets::compare::less_than;
use tacit_circuits::mpc::MpcChallenge;
use tacit_circuits::{Backend, CircuitError, Result};
use tacit_mpc_engine::Transport;
use tacit_prover::collaborative::{commitment_challenge, CollaborativeError};
use tacit_prover::committed::{CommittedKeys, GroupCommitment};

/// Range-checked quantities (differences, values) are below `2^RANGE_BITS`.
pub const RANGE_BITS: u32 = 64;
/// Real tags are below `2^TAG_BITS`; padding lies above.
pub const TAG_BITS: u32 = 63;
/// Counts (and `min_size`) are below `2^COUNT_BITS`: at most 64 institutions of `2^20` rows.
const COUNT_BITS: u32 = 27;

/// What is proven about the lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatementMode {
    /// The intersection size.
    Cardinality,
    /// The sum of the intersecting items' values, released if at least `min_size` items
    /// intersect (`min_size` is a public input).
    Sum,
}

/// The fixed shape of a statement (what the keys are generated for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Number of institutions (`>= 2`).
    pub institutions: usize,
    /// Rows per institution, padding included (`>= 1`, at most `2^20`).
    pub rows: usize,
    /// Cardinality or sum.
    pub mode: StatementMode,
    /// Bits per limb: 4, 8 or 16. The lookup table has `2^limb_bits` entries (one constraint
    /// each) and every range check `64 / limb_bits` limbs (one constraint each): 16 is the
    /// cheapest from about 2^11 rows on; small tests use 8.
    pub limb_bits: u32,
}

impl Shape {
    /// Checks the shape is one the statement supports (2 to 64 institutions, 1 to 2^20 rows,
    /// limbs of 4, 8 or 16 bits).
    pub fn check(&self) -> Result<()> {
        if self.institutions < 2
            || self.rows == 0
            || self.rows > 1 << 20
            || self.institutions > 64
            || ![4, 8, 16].contains(&self.limb_bits)
        {
            return Err(CircuitError::Usage(format!("unsupported shape {self:?}")));
        }
        Ok(())
    }

    /// Limbs per range-checked quantity.
    pub fn limbs(&self) -> usize {
        (RANGE_BITS / self.limb_bits) as usize
    }

    /// Entries of the lookup table.
    pub fn table(&self) -> usize {
        1 << self.limb_bits
    }

    /// Values in one institution's committed group: tags, values (`sum`), the blinder.
    pub fn list_len(&self) -> usize {
        match self.mode {
            StatementMode::Cardinality => self.rows + 1,
            StatementMode::Sum => 2 * self.rows + 1,
        }
    }

    /// Entries of the merged list.
    pub fn merged_len(&self) -> usize {
        self.institutions * self.rows
    }

    /// Quantities range-checked with the secret hints: every institution list's
    /// differences and (`sum`) every value.
    pub fn secret_ranges(&self) -> usize {
        let values = match self.mode {
            StatementMode::Cardinality => 0,
            StatementMode::Sum => self.merged_len(),
        };
        self.institutions * (self.rows - 1) + values
    }

    /// Values in the known hints group: `M`, `μ`, the limbs of `M`'s differences, blinder.
    pub fn known_hints_len(&self) -> usize {
        2 * self.merged_len() + self.limbs() * (self.merged_len() - 1) + 1
    }

    /// Values in the secret hints group: `V` (`sum`), the limbs of the lists' differences
    /// and of the values, the table counts of all limbs, blinder.
    pub fn secret_hints_len(&self) -> usize {
        let sums = match self.mode {
            StatementMode::Cardinality => 0,
            StatementMode::Sum => self.merged_len(),
        };
        sums + self.limbs() * self.secret_ranges() + self.table() + 1
    }
}

/// The prover's two hint groups. *Known*: what the nodes see in the clear once the shuffled
/// tags are opened (the merged list, multiplicities, the limbs of its differences).
/// *Secret*: what stays shared (summed values, limbs of the institutions' differences and
/// values, the limb counts). Wiped on drop; `Debug` prints only their lengths.
#[derive(Clone, PartialEq, Eq)]
pub struct Hints<F: zeroize::Zeroize> {
    /// The known group.
    pub known: Vec<F>,
    /// The secret group.
    pub secret: Vec<F>,
}

impl<F: zeroize::Zeroize> Drop for Hints<F> {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.known.zeroize();
        self.secret.zeroize();
    }
}

impl<F: zeroize::Zeroize> std::fmt::Debug for Hints<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hints {{ known: {} values, secret: <redacted> ({} values) }}", self.known.len(), self.secret.len())
    }
}

/// The public result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementOutput<F> {
    /// The intersection size.
    Cardinality(F),
    /// Whether the sum is released, and the sum (zero when withheld).
    Sum {
        /// `1` if at least `min_size` items intersect, else `0`.
        released: F,
        /// The sum when released, else zero.
        sum: F,
    },
}

/// Padding of the institutions' lists lies in `[2^63, MERGED_PADDING)`; the merged list's own
/// padding (multiplicity zero) above it.
const MERGED_PADDING: u64 = u64::MAX - (1 << 32) + 1;

/// An institution's padded list: its real tags (each below `2^63`, distinct) sorted,
/// followed by `rows - items` distinct random values in `[2^63, 2^64 - 2^32)`, sorted.
/// Random, not counted from a fixed base: another institution that could predict them
/// could put them in its own list and make them count as intersection items. Values (`sum`)
/// are padded with zeros. Returns `(tags, values)` of length `rows`.
pub fn pad_list<R: rand::RngCore + ?Sized>(
    rows: usize,
    items: &[(u64, u64)],
    rng: &mut R,
) -> Result<(Vec<u64>, Vec<u64>)> {
    if items.len() > rows {
        return Err(CircuitError::Usage(format!("{} items exceed {rows} rows", items.len())));
    }
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0].0 == w[1].0) || sorted.iter().any(|(t, _)| *t >> TAG_BITS != 0) {
        return Err(CircuitError::Usage("tags must be distinct and below 2^63".into()));
    }
    let mut pads = std::collections::BTreeSet::new();
    while pads.len() < rows - sorted.len() {
        let pad = (1u64 << TAG_BITS) | (rng.next_u64() >> 1);
        if pad < MERGED_PADDING {
            pads.insert(pad);
        }
    }
    let (mut tags, mut values): (Vec<u64>, Vec<u64>) = sorted.into_iter().unzip();
    values.extend(std::iter::repeat_n(0, pads.len()));
    tags.extend(pads);
    Ok((tags, values))
}

/// The committed group of one institution from its padded list: tags, values (`sum`), blinder.
pub fn list_group<F: PrimeField>(shape: &Shape, tags: &[u64], values: &[u64], blinder: F) -> Vec<F> {
    let mut group: Vec<F> = tags.iter().map(|t| F::from(*t)).collect();
    if shape.mode == StatementMode::Sum {
        group.extend(values.iter().map(|v| F::from(*v)));
    }
    group.push(blinder);
    group
}

fn limbs_of(shape: &Shape, x: u64) -> impl Iterator<Item = u64> {
    let (bits, mask) = (shape.limb_bits, (shape.table() - 1) as u64);
    (0..shape.limbs() as u32).map(move |i| (x >> (bits * i)) & mask)
}

fn diffs(list: &[u64]) -> Result<Vec<u64>> {
    list.windows(2)
        .map(|w| {
            w[1].checked_sub(w[0])
                .and_then(|d| d.checked_sub(1))
                .ok_or_else(|| CircuitError::Unsatisfied("a list is not strictly increasing".into()))
        })
        .collect()
}

/// What an institution contributes to the secret hints: the limbs of its list's
/// differences, of its values (`sum`), and how often each limb value occurs among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstitutionLimbs<F> {
    /// Limbs of `x_{j+1} - x_j - 1`, difference by difference.
    pub diffs: Vec<F>,
    /// Limbs of each value (`sum`), value by value.
    pub values: Vec<F>,
    /// `counts[i]`: limbs equal to `i` among the two.
    pub counts: Vec<F>,
}

impl<F: PrimeField> InstitutionLimbs<F> {
    /// Length of [`Self::to_vec`] for `shape`.
    pub fn len(shape: &Shape) -> usize {
        let values = if shape.mode == StatementMode::Sum { shape.rows } else { 0 };
        shape.limbs() * (shape.rows - 1 + values) + shape.table()
    }

    /// `diffs ‖ values ‖ counts`.
    pub fn to_vec(&self) -> Vec<F> {
        [self.diffs.as_slice(), &self.values, &self.counts].concat()
    }

    /// The inverse of [`Self::to_vec`]; `None` for a wrong length.
    pub fn from_slice(shape: &Shape, v: &[F]) -> Option<Self> {
        if v.len() != Self::len(shape) {
            return None;
        }
        let values = if shape.mode == StatementMode::Sum { shape.rows } else { 0 };
        let (diffs, rest) = v.split_at(shape.limbs() * (shape.rows - 1));
        let (values, counts) = rest.split_at(shape.limbs() * values);
        Some(Self { diffs: diffs.to_vec(), values: values.to_vec(), counts: counts.to_vec() })
    }

    /// Every element, for zeroizing.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut F> {
        self.diffs.iter_mut().chain(self.values.iter_mut()).chain(self.counts.iter_mut())
    }
}

fn count_limbs(shape: &Shape, ranged: &[u64], counts: &mut [u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(ranged.len() * shape.limbs());
    for x in ranged {
        for limb in limbs_of(shape, *x) {
            if let Some(c) = counts.get_mut(limb as usize) {
                *c += 1;
            }
            out.push(limb);
        }
    }
    out
}

/// An institution's limbs for its padded list (`tags` strictly increasing).
pub fn institution_limbs<F: PrimeField>(shape: &Shape, tags: &[u64], values: &[u64]) -> Result<InstitutionLimbs<F>> {
    shape.check()?;
    if tags.len() != shape.rows || values.len() != shape.rows {
        return Err(CircuitError::Usage("a list does not fit the shape".into()));
    }
    let mut counts = vec![0u64; shape.table()];
    let diffs = count_limbs(shape, &diffs(tags)?, &mut counts);
    let values = if shape.mode == StatementMode::Sum { count_limbs(shape, values, &mut counts) } else { Vec::new() };
    let field = |v: Vec<u64>| v.into_iter().map(F::from).collect::<Vec<F>>();
    Ok(InstitutionLimbs { diffs: field(diffs), values: field(values), counts: field(counts) })
}

/// The merged list of the padded lists: every distinct tag in order with its multiplicity
/// and (`sum`) its summed values, padded to `institutions·rows` entries.
pub fn merged_list(shape: &Shape, lists: &[(Vec<u64>, Vec<u64>)]) -> Vec<(u64, u64, u128)> {
    let mut merged: BTreeMap<u64, (u64, u128)> = BTreeMap::new();
    for (tags, values) in lists {
        for (t, v) in tags.iter().zip(values) {
            let entry = merged.entry(*t).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += u128::from(*v);
        }
    }
    let mut m: Vec<(u64, u64, u128)> = merged.into_iter().map(|(t, (mu, v))| (t, mu, v)).collect();
    pad_merged(shape, &mut m);
    m
}

/// Pads a merged list with entries above every list's padding, multiplicity zero (at most
/// `64 · 2^20 < 2^32` of them).
fn pad_merged<V: Default>(shape: &Shape, m: &mut Vec<(u64, u64, V)>) {
    for j in 0..shape.merged_len().saturating_sub(m.len()) {
        m.push((MERGED_PADDING + j as u64, 0, V::default()));
    }
}

/// The hints from their parts: `merged` the distinct tags in order with multiplicities (at
/// most `institutions·rows`; padded here), `sums` the summed values in that order (`sum`
/// mode; shares at a node), the institutions' limbs (shares at a node), the two blinders.
pub fn hints_from_parts<F: PrimeField>(
    shape: &Shape,
    merged: &[(u64, u64)],
    sums: &[F],
    limbs: &[InstitutionLimbs<F>],
    blinders: [F; 2],
) -> Result<Hints<F>> {
    shape.check()?;
    let sum_mode = shape.mode == StatementMode::Sum;
    if merged.len() > shape.merged_len()
        || limbs.len() != shape.institutions
        || (sum_mode && sums.len() != merged.len())
        || limbs.iter().any(|l| l.diffs.len() + l.values.len() + l.counts.len() != InstitutionLimbs::<F>::len(shape))
    {
        return Err(CircuitError::Usage("hint parts do not fit the shape".into()));
    }
    let mut m: Vec<(u64, u64, ())> = merged.iter().map(|(t, mu)| (*t, *mu, ())).collect();
    pad_merged(shape, &mut m);
    let mut known_counts = vec![0u64; shape.table()];
    let mut known: Vec<F> = m.iter().map(|e| F::from(e.0)).collect();
    known.extend(m.iter().map(|e| F::from(e.1)));
    let merged_tags: Vec<u64> = m.iter().map(|e| e.0).collect();
    known.extend(count_limbs(shape, &diffs(&merged_tags)?, &mut known_counts).into_iter().map(F::from));
    known.push(blinders[0]);

    let mut secret: Vec<F> = Vec::with_capacity(shape.secret_hints_len());
    if sum_mode {
        secret.extend_from_slice(sums);
        secret.extend(std::iter::repeat_n(F::zero(), shape.merged_len() - sums.len()));
    }
    for l in limbs {
        secret.extend_from_slice(&l.diffs);
    }
    for l in limbs {
        secret.extend_from_slice(&l.values);
    }
    for (i, known) in known_counts.iter().enumerate() {
        let dealt: F = limbs.iter().filter_map(|l| l.counts.get(i)).copied().sum();
        secret.push(dealt + F::from(*known));
    }
    secret.push(blinders[1]);
    Ok(Hints { known, secret })
}

/// The prover's hint groups from the padded lists in the clear (the oracle's and a single
/// prover's view; the nodes assemble the same vectors with [`hints_from_parts`], the
/// secret one from shares), with a blinder for each group.
pub fn hints<F: PrimeField>(shape: &Shape, lists: &[(Vec<u64>, Vec<u64>)], blinders: [F; 2]) -> Result<Hints<F>> {
    shape.check()?;
    if lists.len() != shape.institutions || lists.iter().any(|(t, v)| t.len() != shape.rows || v.len() != shape.rows) {
        return Err(CircuitError::Usage("lists do not fit the shape".into()));
    }
    let merged = merged_list(shape, lists);
    let limbs = lists.iter().map(|(t, v)| institution_limbs::<F>(shape, t, v)).collect::<Result<Vec<_>>>()?;
    let sums: Vec<F> =
        if shape.mode == StatementMode::Sum { merged.iter().map(|e| F::from(e.2)).collect() } else { Vec::new() };
    let pairs: Vec<(u64, u64)> = merged.iter().map(|e| (e.0, e.1)).collect();
    hints_from_parts(shape, &pairs, &sums, &limbs, blinders)
}

/// `x_{j+1} - x_j - 1` for consecutive entries.
fn gaps<B: Backend>(b: &B, list: &[B::Value]) -> Vec<B::Value> {
    list.windows(2).map(|w| b.add_constant(&b.sub(&w[1], &w[0]), -B::F::from(1u64))).collect()
}

/// The statement. `lists[c]`: institution `c`'s committed group ([`list_group`]; its
/// values, or this party's shares in `Mpc`, `None` in setup mode); `hints`: the prover's
/// groups ([`hints`]; in `Mpc` the known group's values and this party's shares of the
/// secret group); `min_size`: the public threshold (`sum` mode). Allocates the
/// institutions' groups, then the known and the secret hints, then the outputs, then the
/// challenge.
pub async fn intersection_statement<B: Backend>(
    b: &mut B,
    shape: &Shape,
    lists: &[Option<Vec<B::F>>],
    hints: Option<&Hints<B::F>>,
    min_size: Option<u64>,
) -> Result<StatementOutput<B::F>> {
    shape.check()?;
    if lists.len() != shape.institutions {
        return Err(CircuitError::Usage(format!("{} lists for {} institutions", lists.len(), shape.institutions)));
    }
    let (m, rows, total) = (shape.institutions, shape.rows, shape.merged_len());
    let sum_mode = shape.mode == StatementMode::Sum;
    let min_size = match (sum_mode, min_size) {
        (true, Some(s)) if s >> COUNT_BITS == 0 => Some(b.public_inputs(&[B::F::from(s)])?),
        (true, Some(s)) => return Err(CircuitError::Usage(format!("min_size {s} is not below 2^{COUNT_BITS}"))),
        (true, None) => return Err(CircuitError::Usage("sum mode needs min_size".into())),
        (false, _) => None,
    };

    let mut tags = Vec::with_capacity(m);
    let mut values = Vec::new();
    for list in lists {
        let group = b.committed_inputs(list.as_deref(), shape.list_len())?;
        tags.push(group.get(..rows).map(<[_]>::to_vec).unwrap_or_default());
        if sum_mode {
            values.extend(group.get(rows..2 * rows).map(<[_]>::to_vec).unwrap_or_default());
        }
    }
    let known = b.committed_known_inputs(hints.map(|h| h.known.as_slice()), shape.known_hints_len())?;
    let secret = b.committed_inputs(hints.map(|h| h.secret.as_slice()), shape.secret_hints_len())?;
    let take = |group: &[B::Value], from: usize, len: usize| -> Result<Vec<B::Value>> {
        group.get(from..from + len).map(<[_]>::to_vec).ok_or_else(|| CircuitError::Synthesis("hints too short".into()))
    };
    let merged = take(&known, 0, total)?;
    let mult = take(&known, total, total)?;
    let known_limbs = take(&known, 2 * total, shape.limbs() * (total - 1))?;
    let sums = if sum_mode { total } else { 0 };
    let merged_values = take(&secret, 0, sums)?;
    let secret_limbs = take(&secret, sums, shape.limbs() * shape.secret_ranges())?;
    let counts = take(&secret, sums + shape.limbs() * shape.secret_ranges(), shape.table())?;

    // Outputs, from the committed values only.
    let full: Vec<B::Value> = mult.iter().map(|mu| b.add_constant(mu, -B::F::from(m as u64))).collect();
    let in_all = b.is_zero(&full).await?;
    let count = b.sum(&in_all);
    let output = if sum_mode {
        let weighted = b.mul(&in_all, &merged_values).await?;
        let sum = b.sum(&weighted);
        let threshold =
            min_size.and_then(|s| s.into_iter().next()).ok_or_else(|| CircuitError::Synthesis("no min_size".into()))?;
        let below = less_than(b, &[count], &[threshold], COUNT_BITS).await?;
        let released = b.add_constant(&b.scale(&below[0], -B::F::from(1u64)), B::F::from(1u64));
        let shown = b.mul(std::slice::from_ref(&released), &[sum]).await?;
        let opened = b.reveal(&[released, shown[0].clone()]).await?;
        StatementOutput::Sum { released: opened[0], sum: opened[1] }
    } else {
        StatementOutput::Cardinality(b.reveal(&[count]).await?[0])
    };

    let alpha = b.challenge().await?;

    // Strict order and value ranges: every ranged quantity is its limbs.
    let mut secret_ranged = Vec::with_capacity(shape.secret_ranges());
    for list in &tags {
        secret_ranged.extend(gaps(b, list));
    }
    secret_ranged.extend(values.iter().cloned());
    let known_ranged = gaps(b, &merged);
    let recomposed: Vec<B::Value> = secret_ranged
        .iter()
        .zip(secret_limbs.chunks(shape.limbs()))
        .chain(known_ranged.iter().zip(known_limbs.chunks(shape.limbs())))
        .map(|(x, ls)| recompose(b, shape, x, ls))
        .collect();
    b.assert_zero(&recomposed)?;
    let limbs = [secret_limbs, known_limbs].concat();

    // Lookup of every limb in the table.
    let lookup = lookup_residual(b, shape, &alpha, &limbs, &counts).await?;

    // Multiset of all rows against the merged list with multiplicities.
    let one = b.constant(B::F::from(1u64));
    let shifted = |b: &B, xs: &[B::Value]| -> Vec<B::Value> { xs.iter().map(|x| b.sub(&alpha, x)).collect() };
    let rows_all: Vec<B::Value> = tags.concat();
    let row_inverses = b.div(&vec![one.clone(); rows_all.len()], &shifted(b, &rows_all)).await?;
    let merged_inverses = b.div(&vec![one; total], &shifted(b, &merged)).await?;
    let merged_terms = b.mul(&mult, &merged_inverses).await?;
    let mut zero = vec![lookup, b.sub(&b.sum(&row_inverses), &b.sum(&merged_terms))];
    if sum_mode {
        let row_values = b.mul(&values, &row_inverses).await?;
        let merged_value_terms = b.mul(&merged_values, &merged_inverses).await?;
        zero.push(b.sub(&b.sum(&row_values), &b.sum(&merged_value_terms)));
    }
    b.assert_zero(&zero)?;
    Ok(output)
}

/// `x - Σ_i l_i·2^(limb_bits·i)`: zero iff the limbs `ls` recompose `x`.
fn recompose<B: Backend>(b: &B, shape: &Shape, x: &B::Value, ls: &[B::Value]) -> B::Value {
    let mut acc = x.clone();
    for (i, l) in ls.iter().enumerate() {
        acc = b.sub(&acc, &b.scale(l, B::F::from(1u64 << (shape.limb_bits as usize * i))));
    }
    acc
}

/// The log-derivative lookup `Σ_l 1/(α - l) - Σ_i counts_i/(α - i)` over the table
/// `0..2^limb_bits`: zero (except with probability about `limbs / |F|` over `α`) iff every
/// limb is in the table and `counts_i` is how often `i` occurs among them.
async fn lookup_residual<B: Backend>(
    b: &mut B,
    shape: &Shape,
    alpha: &B::Value,
    limbs: &[B::Value],
    counts: &[B::Value],
) -> Result<B::Value> {
    let one = b.constant(B::F::from(1u64));
    let limb_den: Vec<B::Value> = limbs.iter().map(|l| b.sub(alpha, l)).collect();
    let limb_terms = b.div(&vec![one; limbs.len()], &limb_den).await?;
    let table_den: Vec<B::Value> = (0..shape.table() as u64).map(|i| b.add_constant(alpha, -B::F::from(i))).collect();
    let table_terms = b.div(counts, &table_den).await?;
    Ok(b.sub(&b.sum(&limb_terms), &b.sum(&table_terms)))
}

/// For each institution, whether the limbs and counts it dealt fit its list: every
/// difference of its tags and (`sum`) every value is its limbs, every limb is in the table
/// and the counts are the limbs' (checked at `alpha`, a public value drawn after the deal).
/// The statement holds exactly when every institution's limbs fit (and the nodes' hints are
/// right), so a failed statement is blamed on the institutions this finds. `lists[c]` and
/// `limbs[c]`: institution `c`'s dealt group ([`list_group`]) and limbs (values, or this
/// party's shares in `Mpc`). Only whether each check holds is revealed.
pub async fn limbs_fit<B: Backend>(
    b: &mut B,
    shape: &Shape,
    lists: &[Vec<B::F>],
    limbs: &[InstitutionLimbs<B::F>],
    alpha: B::F,
) -> Result<Vec<bool>> {
    shape.check()?;
    if lists.len() != shape.institutions || limbs.len() != shape.institutions {
        return Err(CircuitError::Usage("one list and one set of limbs per institution".into()));
    }
    let rows = shape.rows;
    let alpha_value = b.constant(alpha);
    let mut residuals = Vec::with_capacity(2 * lists.len());
    for (list, dealt) in lists.iter().zip(limbs) {
        let group = b.dealt_inputs(Some(list), shape.list_len())?;
        let diffs = b.dealt_inputs(Some(&dealt.diffs), shape.limbs() * (rows - 1))?;
        let value_limbs = if shape.mode == StatementMode::Sum { rows * shape.limbs() } else { 0 };
        let values_limbs = b.dealt_inputs(Some(&dealt.values), value_limbs)?;
        let counts = b.dealt_inputs(Some(&dealt.counts), shape.table())?;
        let tags = group.get(..rows).ok_or_else(|| CircuitError::Usage("a list shorter than its rows".into()))?;
        let mut ranged = gaps(b, tags);
        if shape.mode == StatementMode::Sum {
            ranged.extend(group.get(rows..2 * rows).map(<[_]>::to_vec).unwrap_or_default());
        }
        let all_limbs = [diffs, values_limbs].concat();
        // One combination with public powers of α: zero iff every recomposition is, except
        // with probability about `rows / |F|`.
        let mut power = alpha;
        let mut combined = b.constant(B::F::from(0u64));
        for (x, ls) in ranged.iter().zip(all_limbs.chunks(shape.limbs())) {
            combined = b.add(&combined, &b.scale(&recompose(b, shape, x, ls), power));
            power *= alpha;
        }
        residuals.push(combined);
        residuals.push(lookup_residual(b, shape, &alpha_value, &all_limbs, &counts).await?);
    }
    let zero = b.reveal_is_zero(&residuals).await?;
    Ok(zero.chunks(2).map(|z| z.iter().all(|holds| *holds)).collect())
}

/// The groups' commitments an `Mpc` run's challenge was drawn from, kept for the proof
/// (`tacit_prover::collaborative::prove_committed_with`), so they are not computed twice.
pub type OpenedGroups = Arc<std::sync::Mutex<Option<Vec<GroupCommitment>>>>;

/// The challenge deriver of an `Mpc` run of the statement: the groups' commitments computed
/// on shares with the statement's keys, opened (consistency-checked) and hashed; the opened
/// commitments are left in the returned slot.
pub fn mpc_challenge<T: Transport>(keys: Arc<CommittedKeys>) -> (MpcChallenge<Fr, T>, OpenedGroups) {
    let opened: OpenedGroups = Arc::default();
    let slot = opened.clone();
    let deriver: MpcChallenge<Fr, T> = Box::new(move |engine, instance_with_one| {
        let (keys, slot) = (keys.clone(), slot.clone());
        Box::pin(async move {
            let (challenge, groups) =
                commitment_challenge(engine, &keys, instance_with_one).await.map_err(|e| match e {
                    CollaborativeError::Mpc(e) => CircuitError::Mpc(e),
                    other => CircuitError::Synthesis(other.to_string()),
                })?;
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(groups);
            }
            Ok(challenge)
        })
    });
    (deriver, opened)
}
