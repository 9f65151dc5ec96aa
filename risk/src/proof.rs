//! The collaborative Groth16 proof of a release, for every template.
//!
//! One circuit per template *shape* ([`Shape`]: institutions, key universe, aggregates,
//! fixed-point format, cohort minimums, the computation and its declared noise bounds),
//! independent of the data and of which keys passed: one verifying key per approved
//! template. Written once over [`Backend`]: `R1cs` in setup mode gives the keys, `Plain`
//! and `R1cs` in prove mode check clear witnesses (tests), `Mpc` computes the shared witness
//! from the nodes' shares and the nodes prove with `tacit_prover::collaborative`.
//!
//! # Public inputs (in order)
//! 1. one commitment per institution (template order), published before the query
//!    ([`commit_values`] of `[counts ‖ aggregate_0 ‖ …]` with a secret salt);
//! 2. the cohort verdicts, two bits per key (`[rows < min_rows]`, then
//!    `[contributors < min_contributors]`), packed [`WORD_BITS`] to a word, least
//!    significant first;
//! 3. the released figures of the template (per [`Kind`]); zero for suppressed keys.
//!
//! # What the circuit states
//! Common to every template, for all keys of the universe:
//! - each institution's salt and vector open its commitment;
//! - the cross-institution sums of every aggregate fit the format,
//!   `-2^(k-1) <= S_ak < 2^(k-1)`;
//! - the cohort bits are computed from the committed inputs: `rows_k = Σ_i count_ik`,
//!   `contributors_k = #{i : count_ik != 0}`, compared with the template's minimums
//!   (as signed differences below `2^40`); a key is released iff both bits are zero;
//! - every noise term satisfies `-2^L <= e < 2^L` for the figure's declared digit count `L`
//!   (the sampler's `|e| <= 2^L - 1`, see [`crate::noise`]).
//!
//! Per template (released keys; suppressed keys release zero):
//! - `sum`/`mean`/`variance`: `released_ak = S_ak + e_ak` for each aggregate (the sum, and
//!   the sum of squares for `variance`) and `released_count_k = rows_k + e_k`; mean and
//!   variance are public post-processing of these;
//! - `weighted_score`: a score `s_k` with `-2^f <= Σ_j w_j S_jk - 2^f s_k < 2^f` (the
//!   probabilistic truncation), then `released_k = s_k + e_k`; with `flag_only` the
//!   released value is the flag bit `[s_k + e_k >= threshold]` and the score stays hidden;
//!   with `score_and_flag` the flag is the public check `released_k >= threshold`;
//! - `herfindahl`: `T̃ = Σ_released S_k + e_T`; with the public factor `c` (the verifier
//!   derives it from `T̃`: `round(2^(f+g) / T̃)`, zero when the index is withheld),
//!   `s_k` with `-2^g <= c S_k - 2^g s_k < 2^g`, `q_k` with `-2^f <= s_k^2 - 2^f q_k < 2^f`,
//!   and `H̃ = Σ q_k + e_H` when the index is released;
//! - `top_k`: noisy exposures `ñ_k = S_k + e_k` never open; with the strict order
//!   `v_k = ñ_k 2^B + (K - 1 - k)` (larger exposure first, ties to the lower key index), a
//!   secret cut `τ` such that a released key is in the top set iff `v_k >= τ`, and the set
//!   has `min(k, released keys)` members: so it is exactly the top `k` by noisy exposure.
//!
//! # What it does not state
//! That the noise follows the declared distribution (only its bound); that an
//! institution's committed aggregates are honest sums of its rows (rows are not
//! committed; a sum of squares is taken as committed); that the budget ledger was
//! charged; the Herfindahl factor `c` and the index's release rule are public checks done
//! by the verifier ([`Statement::from_release`]), as is a `score_and_flag` flag.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_snark::SNARK;
use tacit_circuits::gadgets::poseidon::{poseidon_hash, poseidon_reference};
use tacit_circuits::gadgets::{is_zero, less_than};
use tacit_circuits::{Backend, CircuitError, R1cs};
use tacit_mpc_engine::field::{from_i128, pow2};
use tacit_mpc_engine::fixed::{signed_bits, FixedPoint, MAX_WIDE_BITS};
use tacit_mpc_engine::Shares;
use tacit_prover::qap::R1csMatrices;

use crate::query::{herfindahl_factor, noise_plan, CellStatus, Release, COUNT_BITS};
use crate::table::InstitutionInput;
use crate::template::{Query, ScoreRelease, Template};
use crate::RiskError;

/// Values per leaf hash of a commitment.
pub const LEAF: usize = 12;

/// Largest committed vector.
pub const MAX_COMMITTED: usize = 1 << 20;

/// Bits per packed public word (cohort, flags, top-k membership).
pub const WORD_BITS: usize = 80;

/// Largest key universe a proof covers (key indices break ties in 16 bits).
pub const MAX_KEYS: usize = 1 << 16;

fn circuit_err(e: CircuitError) -> RiskError {
    match e {
        CircuitError::Mpc(e) => RiskError::Mpc(e),
        other => RiskError::Proof(other.to_string()),
    }
}

fn shape_err(what: &str) -> RiskError {
    RiskError::Proof(format!("statement shape: {what}"))
}

/// The commitment to `values` with `salt`: a Poseidon tree of arity [`LEAF`] over the
/// values (each node hashes [`LEAF`] children, the last node of a level padded with zeros)
/// until at most [`LEAF`] - 1 hashes remain, then the root `Poseidon(salt, those…)`.
pub fn commit_values(salt: Fr, values: &[Fr]) -> Result<Fr, RiskError> {
    if values.is_empty() || values.len() > MAX_COMMITTED {
        return Err(RiskError::Proof(format!("cannot commit to {} values (at most {MAX_COMMITTED})", values.len())));
    }
    let mut level = values.to_vec();
    loop {
        let mut next = Vec::with_capacity(level.len().div_ceil(LEAF));
        for chunk in level.chunks(LEAF) {
            let mut node = chunk.to_vec();
            node.resize(LEAF, Fr::from(0u64));
            next.push(poseidon_reference(&node).map_err(circuit_err)?);
        }
        level = next;
        if level.len() < LEAF {
            break;
        }
    }
    let mut root = vec![salt];
    root.extend(level);
    poseidon_reference(&root).map_err(circuit_err)
}

/// An institution's committed vector: counts, then each aggregate, as field elements.
pub fn committed_values(input: &InstitutionInput) -> Vec<Fr> {
    input
        .counts
        .iter()
        .map(|c| Fr::from(*c))
        .chain(input.aggregates.iter().flatten().map(|v| from_i128::<Fr>(*v)))
        .collect()
}

/// The computation part of a [`Shape`], with its declared noise digits (`|e| < 2^L`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `sum`, `mean`, `variance`: per key, each aggregate's noisy sum, then the noisy count.
    /// `noise_bits`: one per figure (aggregates, then count).
    Sums {
        /// Noise digits per figure.
        noise_bits: Vec<u32>,
    },
    /// Weighted score.
    Score {
        /// Raw fixed-point weights, one per aggregate.
        weights: Vec<i128>,
        /// Noise digits.
        noise_bits: u32,
        /// `flag_only`: the raw threshold and the comparison width; `None` releases scores.
        flag: Option<(i128, u32)>,
    },
    /// Herfindahl index.
    Herfindahl {
        /// Noise digits of the total.
        total_bits: u32,
        /// Noise digits of the index.
        index_bits: u32,
        /// Extra precision bits of the factor `c`.
        g: u32,
    },
    /// Top-k by noisy exposure.
    TopK {
        /// How many keys.
        k: usize,
        /// Noise digits.
        noise_bits: u32,
        /// Bits of a noisy exposure (signed): `|ñ| < 2^(width-1)`.
        width: u32,
        /// Bits of a key index (the tie break).
        index_bits: u32,
    },
}

/// What fixes the circuit (and so the keys): derived from the template alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Institutions.
    pub institutions: usize,
    /// Keys in the universe.
    pub keys: usize,
    /// Aggregates per key per institution (after the row count).
    pub aggregates: usize,
    /// Fixed-point format.
    pub fixed: FixedPoint,
    /// Minimum rows per released key.
    pub min_rows: u32,
    /// Minimum contributing institutions per released key.
    pub min_contributors: u32,
    /// The computation.
    pub kind: Kind,
}

fn words(bits: usize) -> usize {
    bits.div_ceil(WORD_BITS)
}

/// Packs bits into words of [`WORD_BITS`], least significant first.
pub fn pack_bits(bits: &[bool]) -> Vec<Fr> {
    bits.chunks(WORD_BITS)
        .map(|chunk| {
            let mut word = 0u128;
            for (i, b) in chunk.iter().enumerate() {
                word |= u128::from(*b) << i;
            }
            Fr::from(word)
        })
        .collect()
}

impl Shape {
    /// The shape of a template's proof.
    pub fn from_template(template: &Template) -> Result<Self, RiskError> {
        template.validate()?;
        let fp = template.fixed;
        let keys = template.keys.len();
        if keys > MAX_KEYS {
            return Err(RiskError::Template(format!("proofs cover at most {MAX_KEYS} keys")));
        }
        let plan = noise_plan(template)?;
        let digits = |name: &str| -> Result<u32, RiskError> {
            plan.get(name).map(|d| d.digits).ok_or_else(|| RiskError::Proof(format!("no noise for {name}")))
        };
        let kind = match &template.query {
            Query::Sum { .. } | Query::Mean { .. } => Kind::Sums { noise_bits: vec![digits("sum")?, digits("count")?] },
            Query::Variance { .. } => {
                Kind::Sums { noise_bits: vec![digits("sum")?, digits("sum_of_squares")?, digits("count")?] }
            }
            Query::WeightedScore { weights, threshold, release } => {
                let weights: Vec<i128> = weights.iter().map(|(_, w)| fp.to_raw(*w)).collect::<Result<_, _>>()?;
                let noise_bits = digits("score")?;
                let flag = match release {
                    ScoreRelease::ScoreAndFlag => None,
                    ScoreRelease::FlagOnly => {
                        let bound = (1i128 << noise_bits) - 1;
                        Some((fp.to_raw(*threshold)?, compare_width(fp, bound)))
                    }
                };
                Kind::Score { weights, noise_bits, flag }
            }
            Query::Herfindahl { .. } => {
                let g = herfindahl_extra_bits(fp);
                if g + 1 > 80 || fp.f + 1 > 80 {
                    return Err(RiskError::Template("herfindahl proofs need at least 6 fractional bits".into()));
                }
                Kind::Herfindahl { total_bits: digits("total")?, index_bits: digits("herfindahl")?, g }
            }
            Query::TopK { k, .. } => {
                let noise_bits = digits("exposure")?;
                let width = compare_width(fp, (1i128 << noise_bits) - 1);
                let index_bits = (usize::BITS - keys.saturating_sub(1).leading_zeros()).max(1);
                if width + index_bits > tacit_circuits::gadgets::compare::MAX_COMPARE_BITS {
                    return Err(RiskError::Template("top-k: exposures too wide to prove".into()));
                }
                Kind::TopK { k: *k, noise_bits, width, index_bits }
            }
        };
        let shape = Self {
            institutions: template.institutions.len(),
            keys,
            aggregates: template.aggregates()?.len(),
            fixed: fp,
            min_rows: template.min_rows,
            min_contributors: template.min_contributors,
            kind,
        };
        shape.check()?;
        Ok(shape)
    }

    fn check(&self) -> Result<(), RiskError> {
        let noise_ok = |l: u32| l < 78;
        let ok = self.institutions > 0
            && self.keys > 0
            && self.keys <= MAX_KEYS
            && self.aggregates > 0
            && self.per_institution() <= MAX_COMMITTED
            && self.fixed.k <= 64
            && self.fixed.f < 79
            && match &self.kind {
                Kind::Sums { noise_bits } => {
                    noise_bits.len() == self.aggregates + 1 && noise_bits.iter().all(|l| noise_ok(*l))
                }
                Kind::Score { weights, noise_bits, flag } => {
                    weights.len() == self.aggregates
                        && noise_ok(*noise_bits)
                        && flag.is_none_or(|(_, w)| w <= tacit_circuits::gadgets::compare::MAX_COMPARE_BITS)
                }
                Kind::Herfindahl { total_bits, index_bits, g } => {
                    self.aggregates == 1 && noise_ok(*total_bits) && noise_ok(*index_bits) && *g < 80
                }
                Kind::TopK { k, noise_bits, width, index_bits } => {
                    self.aggregates == 1
                        && *k > 0
                        && noise_ok(*noise_bits)
                        && width + index_bits <= tacit_circuits::gadgets::compare::MAX_COMPARE_BITS
                }
            };
        if ok {
            Ok(())
        } else {
            Err(shape_err("unsupported sizes"))
        }
    }

    fn per_institution(&self) -> usize {
        self.keys * (1 + self.aggregates)
    }

    /// Public words of the cohort bits.
    pub fn cohort_words(&self) -> usize {
        words(2 * self.keys)
    }

    /// Length of the template part of the public inputs.
    pub fn figures_len(&self) -> usize {
        match &self.kind {
            Kind::Sums { .. } => (self.aggregates + 1) * self.keys,
            Kind::Score { flag: None, .. } => self.keys,
            Kind::Score { flag: Some(_), .. } | Kind::TopK { .. } => words(self.keys),
            Kind::Herfindahl { .. } => 4,
        }
    }

    /// Number of public inputs.
    pub fn public_len(&self) -> usize {
        self.institutions + self.cohort_words() + self.figures_len()
    }

    /// Length of the secret hints the nodes supply after the inputs (see
    /// [`crate::query::ProofMaterial`]).
    pub fn hints_len(&self) -> usize {
        match &self.kind {
            Kind::Sums { .. } => (self.aggregates + 1) * self.keys,
            Kind::Score { .. } => 2 * self.keys,
            Kind::Herfindahl { .. } => 2 * self.keys + 2,
            Kind::TopK { .. } => self.keys + 1,
        }
    }

    /// Length of the dealt witness: per institution its salt and vector, then the hints.
    pub fn witness_len(&self) -> usize {
        self.institutions * (1 + self.per_institution()) + self.hints_len()
    }
}

/// Width of a signed comparison of noisy values: the format's `k` or the noise bound,
/// whichever is wider, plus one (at most 63), as the MPC compares.
pub fn compare_width(fp: FixedPoint, noise_bound: i128) -> u32 {
    (fp.k.max(signed_bits(noise_bound)) + 1).min(63)
}

/// Extra precision bits `g` of the Herfindahl factor `round(2^(f+g) / T̃)`.
pub fn herfindahl_extra_bits(fp: FixedPoint) -> u32 {
    MAX_WIDE_BITS.saturating_sub(fp.f + 2)
}

/// `v_k = ñ_k 2^B + (K - 1 - k)` of top-k (field), and the cut below every value.
pub fn top_k_order(keys: usize, index_bits: u32, width: u32) -> (Fr, Vec<Fr>, Fr) {
    let scale = pow2::<Fr>(index_bits);
    let tie: Vec<Fr> = (0..keys).map(|k| Fr::from((keys - 1 - k) as u64)).collect();
    let floor = -pow2::<Fr>(width - 1 + index_bits);
    (scale, tie, floor)
}

/// The public statement of a release.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The circuit's shape.
    pub shape: Shape,
    /// Institutions' commitments, in template order.
    pub commitments: Vec<Fr>,
    /// Per key: `([rows < min_rows], [contributors < min_contributors])`.
    pub cohort: Vec<(bool, bool)>,
    /// The template part of the public inputs (see [`Kind`] and the module docs).
    pub figures: Vec<Fr>,
}

fn raw_of(v: f64, scale: f64) -> Result<i128, RiskError> {
    let x = v * scale;
    if !x.is_finite() || x.fract() != 0.0 || x.abs() >= 2f64.powi(53) {
        return Err(RiskError::Proof(format!("released figure {v} is not a raw fixed-point value")));
    }
    Ok(x as i128)
}

impl Statement {
    /// The statement of a published release: what a verifier builds from the template, the
    /// institutions' commitments (published before the query) and the release. Also checks
    /// the release's public post-processing (score flags, Herfindahl inclusion) and that
    /// its cohort verdicts and figures are consistent.
    pub fn from_release(template: &Template, commitments: &[Fr], release: &Release) -> Result<Self, RiskError> {
        let shape = Shape::from_template(template)?;
        if release.template != hex::encode(template.hash()?) {
            return Err(RiskError::Proof("the release is of another template".into()));
        }
        if commitments.len() != shape.institutions || release.cells.len() != shape.keys {
            return Err(RiskError::Proof("release or commitments do not fit the template".into()));
        }
        let fp = template.fixed;
        let scale = f64::from(fp.f).exp2();
        let mut cohort = Vec::with_capacity(shape.keys);
        for (cell, key) in release.cells.iter().zip(&template.keys) {
            if cell.key != *key {
                return Err(RiskError::Proof(format!("release cell {:?} where {key:?} is expected", cell.key)));
            }
            cohort.push(match &cell.status {
                CellStatus::Released => (false, false),
                CellStatus::Suppressed { few_rows, few_contributors, .. } if *few_rows || *few_contributors => {
                    if !cell.figures.is_empty() {
                        return Err(RiskError::Proof(format!("suppressed key {key:?} has figures")));
                    }
                    (*few_rows, *few_contributors)
                }
                CellStatus::Suppressed { .. } => {
                    return Err(RiskError::Proof(format!("key {key:?} suppressed without a rule")))
                }
            });
        }
        let released = |k: usize| cohort.get(k).is_some_and(|c| *c == (false, false));
        let figure = |k: usize, name: &str| -> Result<f64, RiskError> {
            release
                .cells
                .get(k)
                .and_then(|c| c.figures.get(name))
                .copied()
                .ok_or_else(|| RiskError::Proof(format!("released key {k} lacks {name}")))
        };
        let summary_f64 = |name: &str| release.summary.get(name).and_then(serde_json::Value::as_f64);
        let mut figures = Vec::new();
        match (&shape.kind, &template.query) {
            (Kind::Sums { .. }, query) => {
                let names: &[(&str, f64)] = match query {
                    Query::Variance { .. } => &[("sum", scale), ("sum_of_squares", scale), ("count", 1.0)],
                    _ => &[("sum", scale), ("count", 1.0)],
                };
                for (name, unit) in names {
                    for k in 0..shape.keys {
                        let raw = if released(k) { raw_of(figure(k, name)?, *unit)? } else { 0 };
                        figures.push(from_i128(raw));
                    }
                }
                // Mean and variance are post-processing of the noisy sums: recomputed here.
                for k in (0..shape.keys).filter(|k| released(*k)) {
                    let (sum, count) = (figure(k, "sum")?, figure(k, "count")?);
                    let n = count.max(1.0);
                    let derived: Vec<(&str, f64)> = match query {
                        Query::Mean { .. } => vec![("mean", sum / n)],
                        Query::Variance { .. } => {
                            let sq = figure(k, "sum_of_squares")?;
                            vec![("variance", (sq / n - (sum / n) * (sum / n)).max(0.0)), ("mean", sum / n)]
                        }
                        _ => Vec::new(),
                    };
                    for (name, want) in derived {
                        if figure(k, name)?.to_bits() != want.to_bits() {
                            return Err(RiskError::Proof(format!("key {k}: {name} is not derived from the sums")));
                        }
                    }
                }
            }
            (Kind::Score { flag: None, .. }, Query::WeightedScore { threshold, .. }) => {
                let thr = fp.to_raw(*threshold)?;
                for k in 0..shape.keys {
                    let raw = if released(k) {
                        let raw = raw_of(figure(k, "score")?, scale)?;
                        if (figure(k, "flag")? == 1.0) != (raw >= thr) {
                            return Err(RiskError::Proof(format!("key {k}: the flag does not match the score")));
                        }
                        raw
                    } else {
                        0
                    };
                    figures.push(from_i128(raw));
                }
            }
            (Kind::Score { flag: Some(_), .. }, _) => {
                let bits: Vec<bool> = (0..shape.keys)
                    .map(|k| if released(k) { figure(k, "flag").map(|f| f == 1.0) } else { Ok(false) })
                    .collect::<Result<_, _>>()?;
                figures = pack_bits(&bits);
            }
            (Kind::Herfindahl { .. }, _) => {
                // Nothing opens when no key passes the cohort: the total is then zero.
                let any = (0..shape.keys).any(released);
                let total = match summary_f64("total") {
                    Some(t) => t,
                    None if !any => 0.0,
                    None => return Err(RiskError::Proof("no total".into())),
                };
                let t_raw = raw_of(total, scale)?;
                let bound = raw_of(release.noise_bounds.get("total").copied().unwrap_or(0.0), scale)?;
                let (c, index) = match (herfindahl_factor(fp, t_raw, bound), summary_f64("herfindahl")) {
                    (Some(c), Some(h)) => (c, raw_of(h, scale)?),
                    (None, None) => (0, 0),
                    _ => return Err(RiskError::Proof("the index's release does not follow the total".into())),
                };
                for k in 0..shape.keys {
                    if released(k) && figure(k, "included")? != 1.0 {
                        return Err(RiskError::Proof(format!("released key {k} is not included")));
                    }
                }
                figures = vec![from_i128(t_raw), from_i128(c), Fr::from(u64::from(c != 0)), from_i128(index)];
            }
            (Kind::TopK { .. }, _) => {
                let bits: Vec<bool> = (0..shape.keys)
                    .map(|k| if released(k) { figure(k, "in_top_k").map(|f| f == 1.0) } else { Ok(false) })
                    .collect::<Result<_, _>>()?;
                let listed: Vec<&String> =
                    template.keys.iter().zip(&bits).filter(|(_, b)| **b).map(|(k, _)| k).collect();
                if release.summary.get("top_k").is_some_and(|v| *v != serde_json::json!(listed)) {
                    return Err(RiskError::Proof("the top-k list does not match the cells".into()));
                }
                figures = pack_bits(&bits);
            }
            _ => return Err(shape_err("template and shape differ")),
        }
        Ok(Self { shape, commitments: commitments.to_vec(), cohort, figures })
    }

    /// A statement with zero public values (setup: only the shape matters).
    pub fn for_setup(shape: Shape) -> Self {
        Self {
            commitments: vec![Fr::from(0u64); shape.institutions],
            cohort: vec![(false, false); shape.keys],
            figures: vec![Fr::from(0u64); shape.figures_len()],
            shape,
        }
    }

    /// The public inputs, in circuit order.
    pub fn public_inputs(&self) -> Vec<Fr> {
        let bits: Vec<bool> = self.cohort.iter().flat_map(|(r, c)| [*r, *c]).collect();
        self.commitments.iter().copied().chain(pack_bits(&bits)).chain(self.figures.iter().copied()).collect()
    }
}

fn split<V: Clone>(v: &[V], at: usize) -> Result<(&[V], &[V]), RiskError> {
    if at > v.len() {
        return Err(shape_err("too few values"));
    }
    Ok(v.split_at(at))
}

fn at<V: Clone>(v: &[V], i: usize) -> Result<V, RiskError> {
    v.get(i).cloned().ok_or_else(|| shape_err("index"))
}

/// The statement's circuit. `witness` (length [`Shape::witness_len`]) holds the clear values
/// in `Plain`/`R1cs` prove mode, `None` in setup mode, this party's shares in `Mpc`.
pub async fn circuit<B: Backend<F = Fr>>(b: &mut B, stmt: &Statement, witness: Option<&[Fr]>) -> Result<(), RiskError> {
    let s = &stmt.shape;
    s.check()?;
    let values = stmt.public_inputs();
    if values.len() != s.public_len() || stmt.cohort.len() != s.keys || stmt.commitments.len() != s.institutions {
        return Err(shape_err("public inputs"));
    }
    let public = b.public_inputs(&values).map_err(circuit_err)?;
    let w = b.dealt_inputs(witness, s.witness_len()).map_err(circuit_err)?;
    let (commitments, rest) = split(&public, s.institutions)?;
    let (cohort_words, figures) = split(rest, s.cohort_words())?;
    let (inputs, hints) = split(&w, s.institutions * (1 + s.per_institution()))?;
    let mut zeros = Vec::new();
    open_commitments(b, s, inputs, commitments, &mut zeros).await?;

    // Per institution: counts[i][k], aggregates[i][a][k]; then the sums across institutions.
    let (nk, na, ni) = (s.keys, s.aggregates, s.institutions);
    let value = |i: usize, j: usize| at(inputs, i * (1 + s.per_institution()) + 1 + j);
    let mut counts = Vec::with_capacity(ni * nk);
    let mut rows = vec![b.constant(Fr::from(0u64)); nk];
    let mut sums = vec![b.constant(Fr::from(0u64)); na * nk];
    for i in 0..ni {
        for (k, r) in rows.iter_mut().enumerate() {
            let c = value(i, k)?;
            *r = b.add(r, &c);
            counts.push(c);
        }
        for (j, sum) in sums.iter_mut().enumerate() {
            *sum = b.add(sum, &value(i, nk + j)?);
        }
    }
    let fp = s.fixed;
    let offset = pow2::<Fr>(fp.k - 1);
    let shifted: Vec<B::Value> = sums.iter().map(|v| b.add_constant(v, offset)).collect();
    b.to_bits(&shifted, fp.k).await.map_err(circuit_err)?;
    let pass = cohort(b, s, &counts, &rows, cohort_words, &mut zeros).await?;

    match &s.kind {
        Kind::Sums { noise_bits } => {
            let mut gates = Vec::new();
            let mut noisy = Vec::new();
            for (f, figure) in sums.chunks(nk).chain(std::iter::once(rows.as_slice())).enumerate() {
                let e = hints.get(f * nk..(f + 1) * nk).ok_or_else(|| shape_err("hints"))?;
                noise_bound(b, e, at(noise_bits, f)?).await?;
                for (x, e) in figure.iter().zip(e) {
                    noisy.push(b.add(x, e));
                }
                gates.extend(pass.iter().cloned());
            }
            let released = b.mul(&gates, &noisy).await.map_err(circuit_err)?;
            for (r, p) in released.iter().zip(figures) {
                zeros.push(b.sub(p, r));
            }
        }
        Kind::Score { weights, noise_bits, flag } => {
            let (score, e) = split(hints, nk)?;
            noise_bound(b, e, *noise_bits).await?;
            let two_f = pow2::<Fr>(fp.f);
            let mut diffs = Vec::with_capacity(nk);
            let mut noisy = Vec::with_capacity(nk);
            for k in 0..nk {
                let mut terms = Vec::with_capacity(na);
                for (a, wt) in weights.iter().enumerate() {
                    terms.push(b.scale(&at(&sums, a * nk + k)?, from_i128(*wt)));
                }
                let exact = b.sum(&terms);
                let sk = at(score, k)?;
                diffs.push(b.sub(&exact, &b.scale(&sk, two_f)));
                noisy.push(b.add(&sk, &at(e, k)?));
            }
            let mut gates = pass.clone();
            let mut gated = diffs;
            match flag {
                None => {
                    gates.extend(pass.iter().cloned());
                    gated.extend(noisy);
                }
                Some((threshold, width)) => {
                    let thr = vec![b.constant(from_i128(*threshold)); nk];
                    let lt = less_than(b, &noisy, &thr, *width).await.map_err(circuit_err)?;
                    gates.extend(pass.iter().cloned());
                    gated.extend(tacit_circuits::gadgets::not(b, &lt));
                }
            }
            let products = b.mul(&gates, &gated).await.map_err(circuit_err)?;
            let (rems, released) = split(&products, nk)?;
            if fp.f == 0 {
                zeros.extend(rems.iter().cloned());
            } else {
                let rems: Vec<B::Value> = rems.iter().map(|r| b.add_constant(r, two_f)).collect();
                b.to_bits(&rems, fp.f + 1).await.map_err(circuit_err)?;
            }
            match flag {
                None => {
                    for (r, p) in released.iter().zip(figures) {
                        zeros.push(b.sub(p, r));
                    }
                }
                Some(_) => {
                    let bits = unpack(b, figures, nk, &mut zeros).await?;
                    for (r, p) in released.iter().zip(&bits) {
                        zeros.push(b.sub(p, r));
                    }
                }
            }
        }
        Kind::Herfindahl { total_bits, index_bits, g } => {
            let e_t = at(hints, 0)?;
            let fractions = hints.get(1..1 + nk).ok_or_else(|| shape_err("hints"))?;
            let q = hints.get(1 + nk..1 + 2 * nk).ok_or_else(|| shape_err("hints"))?;
            let e_h = at(hints, 1 + 2 * nk)?;
            let (t_pub, c_pub, ind_pub, h_pub) = (at(figures, 0)?, at(figures, 1)?, at(figures, 2)?, at(figures, 3)?);
            noise_bound(b, std::slice::from_ref(&e_t), *total_bits).await?;
            noise_bound(b, std::slice::from_ref(&e_h), *index_bits).await?;
            let exposures = sums.get(..nk).ok_or_else(|| shape_err("sums"))?;
            let included = b.mul(&pass, exposures).await.map_err(circuit_err)?;
            let total = b.sum(&included);
            zeros.push(b.sub(&t_pub, &b.add(&total, &e_t)));
            // y_k = c x_k and s_k^2 in one batch.
            let mut left = vec![c_pub.clone(); nk];
            left.extend(fractions.iter().cloned());
            let mut right = included.clone();
            right.extend(fractions.iter().cloned());
            let products = b.mul(&left, &right).await.map_err(circuit_err)?;
            let (scaled, squares) = split(&products, nk)?;
            let two_g = pow2::<Fr>(*g);
            let rem1: Vec<B::Value> = scaled
                .iter()
                .zip(fractions)
                .map(|(y, s)| b.add_constant(&b.sub(y, &b.scale(s, two_g)), two_g))
                .collect();
            b.to_bits(&rem1, g + 1).await.map_err(circuit_err)?;
            let two_f = pow2::<Fr>(fp.f);
            let diffs: Vec<B::Value> = squares.iter().zip(q).map(|(x, q)| b.sub(x, &b.scale(q, two_f))).collect();
            if fp.f == 0 {
                zeros.extend(diffs);
            } else {
                let rem2: Vec<B::Value> = diffs.iter().map(|d| b.add_constant(d, two_f)).collect();
                b.to_bits(&rem2, fp.f + 1).await.map_err(circuit_err)?;
            }
            let index = b.add(&b.sum(q), &e_h);
            let released = b.mul(&[ind_pub], &[index]).await.map_err(circuit_err)?;
            zeros.push(b.sub(&h_pub, &at(&released, 0)?));
        }
        Kind::TopK { k, noise_bits, width, index_bits } => {
            let (e, cut) = split(hints, nk)?;
            let cut = at(cut, 0)?;
            noise_bound(b, e, *noise_bits).await?;
            let (scale, tie, _) = top_k_order(nk, *index_bits, *width);
            let mut order = Vec::with_capacity(nk);
            for ((x, e), t) in sums.iter().zip(e).zip(&tie) {
                order.push(b.add_constant(&b.scale(&b.add(x, e), scale), *t));
            }
            let cuts = vec![cut; nk];
            let below = less_than(b, &order, &cuts, width + index_bits).await.map_err(circuit_err)?;
            let above = tacit_circuits::gadgets::not(b, &below);
            let top = b.mul(&pass, &above).await.map_err(circuit_err)?;
            let bits = unpack(b, figures, nk, &mut zeros).await?;
            for (t, p) in top.iter().zip(&bits) {
                zeros.push(b.sub(p, t));
            }
            // |top| = min(k, released keys).
            let members = b.sum(&bits);
            let released = b.sum(&pass);
            let k_value = b.constant(Fr::from(*k as u64));
            let fewer = less_than(b, std::slice::from_ref(&released), std::slice::from_ref(&k_value), COUNT_BITS)
                .await
                .map_err(circuit_err)?;
            let shortfall = b.mul(&fewer, &[b.sub(&released, &k_value)]).await.map_err(circuit_err)?;
            zeros.push(b.sub(&members, &b.add(&k_value, &at(&shortfall, 0)?)));
        }
    }
    b.assert_zero(&zeros).map_err(circuit_err)
}

/// `-2^L <= e < 2^L` for each noise term.
async fn noise_bound<B: Backend<F = Fr>>(b: &mut B, e: &[B::Value], bits: u32) -> Result<(), RiskError> {
    let shifted: Vec<B::Value> = e.iter().map(|v| b.add_constant(v, pow2::<Fr>(bits))).collect();
    b.to_bits(&shifted, bits + 1).await.map_err(circuit_err)?;
    Ok(())
}

/// The first `count` bits of packed public words; the bits past them must be zero.
async fn unpack<B: Backend<F = Fr>>(
    b: &mut B,
    words: &[B::Value],
    count: usize,
    zeros: &mut Vec<B::Value>,
) -> Result<Vec<B::Value>, RiskError> {
    let bits: Vec<B::Value> =
        b.to_bits(words, WORD_BITS as u32).await.map_err(circuit_err)?.into_iter().flatten().collect();
    let (used, rest) = split(&bits, count)?;
    zeros.extend(rest.iter().cloned());
    Ok(used.to_vec())
}

/// The cohort rule recomputed from the committed counts; the verdicts must equal the public
/// bits. Returns the per-key pass bits (`1` released).
async fn cohort<B: Backend<F = Fr>>(
    b: &mut B,
    s: &Shape,
    counts: &[B::Value],
    rows: &[B::Value],
    words: &[B::Value],
    zeros: &mut Vec<B::Value>,
) -> Result<Vec<B::Value>, RiskError> {
    let nk = s.keys;
    let empty = is_zero(b, counts).await.map_err(circuit_err)?;
    let mut lhs = rows.to_vec();
    for k in 0..nk {
        let mut contributors = b.constant(Fr::from(s.institutions as u64));
        for i in 0..s.institutions {
            contributors = b.sub(&contributors, &at(&empty, i * nk + k)?);
        }
        lhs.push(contributors);
    }
    let mut rhs = vec![b.constant(Fr::from(s.min_rows)); nk];
    rhs.extend(vec![b.constant(Fr::from(s.min_contributors)); nk]);
    let below = less_than(b, &lhs, &rhs, COUNT_BITS).await.map_err(circuit_err)?;
    let bits = unpack(b, words, 2 * nk, zeros).await?;
    let mut few_rows = Vec::with_capacity(nk);
    let mut few_inst = Vec::with_capacity(nk);
    for k in 0..nk {
        let (r, c) = (at(&bits, 2 * k)?, at(&bits, 2 * k + 1)?);
        zeros.push(b.sub(&at(&below, k)?, &r));
        zeros.push(b.sub(&at(&below, nk + k)?, &c));
        few_rows.push(b.sub(&b.constant(Fr::from(1u64)), &r));
        few_inst.push(b.sub(&b.constant(Fr::from(1u64)), &c));
    }
    b.mul(&few_rows, &few_inst).await.map_err(circuit_err)
}

/// Opens every institution's commitment: the same tree as [`commit_values`], one batch per
/// level for all institutions.
async fn open_commitments<B: Backend<F = Fr>>(
    b: &mut B,
    s: &Shape,
    inputs: &[B::Value],
    commitments: &[B::Value],
    zeros: &mut Vec<B::Value>,
) -> Result<(), RiskError> {
    let m = s.per_institution();
    let zero = b.constant(Fr::from(0u64));
    let mut levels: Vec<Vec<B::Value>> = Vec::with_capacity(s.institutions);
    for i in 0..s.institutions {
        let base = i * (1 + m) + 1;
        levels.push(inputs.get(base..base + m).ok_or_else(|| shape_err("inputs"))?.to_vec());
    }
    loop {
        let per = levels.first().map_or(0, |l| l.len().div_ceil(LEAF));
        let mut nodes = Vec::with_capacity(s.institutions * per);
        for level in &levels {
            for chunk in level.chunks(LEAF) {
                let mut node = chunk.to_vec();
                node.resize(LEAF, zero.clone());
                nodes.push(node);
            }
        }
        let hashes = poseidon_hash(b, &nodes).await.map_err(circuit_err)?;
        levels = hashes.chunks(per.max(1)).map(<[B::Value]>::to_vec).collect();
        if per < LEAF {
            break;
        }
    }
    let mut roots = Vec::with_capacity(s.institutions);
    for (i, level) in levels.iter().enumerate() {
        let mut root = vec![at(inputs, i * (1 + m))?];
        root.extend(level.iter().cloned());
        roots.push(root);
    }
    let root_hashes = poseidon_hash(b, &roots).await.map_err(circuit_err)?;
    for (r, c) in root_hashes.iter().zip(commitments) {
        zeros.push(b.sub(r, c));
    }
    Ok(())
}

/// This node's dealt witness: per institution its salt, counts and aggregates, then the
/// hints of the run. (Shares at a node; clear values for the single-party backends.)
pub fn node_witness(inputs: &[crate::NodeShares], hints: &Shares<Fr>) -> zeroize::Zeroizing<Vec<Fr>> {
    let mut values = Vec::new();
    for s in inputs {
        values.extend_from_slice(s.salt.expose_shares());
        values.extend_from_slice(s.counts.expose_shares());
        for a in &s.aggregates {
            values.extend_from_slice(a.expose_shares());
        }
    }
    values.extend_from_slice(hints.expose_shares());
    zeroize::Zeroizing::new(values)
}

/// Groth16 keys of a template's circuit (a local trusted setup; a deployment runs a
/// ceremony per approved template).
#[derive(Debug)]
pub struct Keys {
    /// Proving key.
    pub pk: ProvingKey<Bn254>,
    /// Prepared verifying key.
    pub pvk: PreparedVerifyingKey<Bn254>,
    /// Constraint matrices.
    pub matrices: R1csMatrices,
}

/// The constraint matrices of a shape's circuit.
async fn matrices(shape: &Shape) -> Result<R1csMatrices, RiskError> {
    let mut r1cs = R1cs::<Fr>::new_setup();
    circuit(&mut r1cs, &Statement::for_setup(shape.clone()), None).await?;
    let cs = r1cs.constraint_system().map_err(circuit_err)?;
    R1csMatrices::from_cs(&cs).map_err(|e| RiskError::Proof(e.to_string()))
}

/// Generates keys for a shape (a local trusted setup).
pub async fn setup(shape: &Shape) -> Result<Keys, RiskError> {
    let matrices = matrices(shape).await?;
    let pk = tacit_prover::keys::setup_from_matrices(&matrices, &mut rand::thread_rng())
        .map_err(|e| RiskError::Proof(e.to_string()))?;
    keys_with(pk, matrices)
}

/// Keys for a shape from a proving key made elsewhere (a ceremony, or `tacit risk setup`
/// run once and copied to every node, which must all prove with the same key): the
/// circuit's matrices are synthesized here and the key's sizes checked against them.
pub async fn keys_from_proving_key(shape: &Shape, pk: ProvingKey<Bn254>) -> Result<Keys, RiskError> {
    let matrices = matrices(shape).await?;
    matrices.check_proving_key(&pk).map_err(|e| RiskError::Proof(format!("the proving key does not fit: {e}")))?;
    keys_with(pk, matrices)
}

fn keys_with(pk: ProvingKey<Bn254>, matrices: R1csMatrices) -> Result<Keys, RiskError> {
    let pvk = Groth16::<Bn254>::process_vk(&pk.vk).map_err(|e| RiskError::Proof(e.to_string()))?;
    Ok(Keys { pk, pvk, matrices })
}

/// Checks a proof against the statement.
pub fn verify(stmt: &Statement, pvk: &PreparedVerifyingKey<Bn254>, proof: &Proof<Bn254>) -> bool {
    Groth16::<Bn254>::verify_proof(pvk, proof, &stmt.public_inputs()).unwrap_or(false)
}

/// What a verifier does with a published release: builds the statement from the template,
/// the commitments and the release ([`Statement::from_release`]) and checks the proof.
pub fn verify_release(
    template: &Template,
    commitments: &[Fr],
    release: &Release,
    pvk: &PreparedVerifyingKey<Bn254>,
    proof: &Proof<Bn254>,
) -> Result<bool, RiskError> {
    Ok(verify(&Statement::from_release(template, commitments, release)?, pvk, proof))
}
