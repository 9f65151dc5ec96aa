//! The node side of a query: approvals, budget agreement, input checks, the cohort policy on
//! shares, the computation, noise inside the MPC, the ledger charge, then the only openings.
//!
//! Order of what opens, which is the whole leakage of a run besides the released figures:
//! 1. a random combination of each institution's shares plus a random mask (consistency:
//!    uniformly random), and masked zero tests for range checks (zero or noise);
//! 2. per key, the two cohort bits `[rows >= min_rows]`, `[contributors >= min_contributors]`;
//! 3. for keys that pass both, the noisy figures (or only the flag), after the ledger charge.

use std::collections::BTreeMap;

use ark_bn254::Fr;
use ark_ff::Zero;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use tacit_mpc_engine::field::{from_i128, pow2};
use tacit_mpc_engine::fixed::{signed_bits, FixedPoint, RangeGroup, MAX_WIDE_BITS};
use tacit_mpc_engine::{Engine, MpcError, Shamir, Shares, Transport};

use crate::ledger::Ledger;
use crate::noise::{self, DiscreteLaplace};
use crate::table::InstitutionInput;
use crate::template::{Query, ScoreRelease, SignedTemplate, Template};
use crate::RiskError;

/// Row totals per key are below `2^COUNT_BITS` (the cohort comparison's width).
pub const COUNT_BITS: u32 = 40;

/// What one node receives from one institution: its shares of the per-key counts and
/// aggregates.
pub struct NodeShares {
    /// Institution name.
    pub institution: String,
    /// Shares of rows per key.
    pub counts: Shares<Fr>,
    /// Shares of each aggregate per key.
    pub aggregates: Vec<Shares<Fr>>,
    /// Share of the commitment salt.
    pub salt: Shares<Fr>,
}

impl std::fmt::Debug for NodeShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeShares({}, <redacted>)", self.institution)
    }
}

/// The institution (a client of the nodes) deals Shamir shares of its input: element `i` of
/// the result goes to party `i + 1`.
pub fn share_input<R: RngCore + CryptoRng>(
    input: &InstitutionInput,
    n: usize,
    t: usize,
    rng: &mut R,
) -> Result<Vec<NodeShares>, RiskError> {
    let shamir = Shamir::<Fr>::new(n, t).map_err(MpcError::from)?;
    let mut share_vec = |values: Vec<Fr>| -> Vec<Vec<Fr>> {
        let mut per_party = vec![Vec::with_capacity(values.len()); n];
        for v in values {
            for (p, s) in per_party.iter_mut().zip(shamir.share(v, t, rng)) {
                p.push(s);
            }
        }
        per_party
    };
    let counts = share_vec(input.counts.iter().map(|c| Fr::from(*c)).collect());
    let salts = share_vec(vec![input.salt]);
    let aggregates: Vec<Vec<Vec<Fr>>> =
        input.aggregates.iter().map(|a| share_vec(a.iter().map(|v| from_i128(*v)).collect())).collect();
    let mut out = Vec::with_capacity(n);
    for ((p, counts), salt) in counts.into_iter().enumerate().zip(salts) {
        out.push(NodeShares {
            salt: Shares::from_raw(salt),
            institution: input.institution.clone(),
            counts: Shares::from_raw(counts),
            aggregates: aggregates.iter().map(|a| Shares::from_raw(a.get(p).cloned().unwrap_or_default())).collect(),
        });
    }
    Ok(out)
}

/// Why a cell was not released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CellStatus {
    /// Released.
    Released,
    /// Suppressed by the release policy; the reason says which rule.
    Suppressed {
        /// Which rule.
        reason: String,
        /// Fewer rows than the minimum.
        #[serde(default)]
        few_rows: bool,
        /// Fewer contributing institutions than the minimum.
        #[serde(default)]
        few_contributors: bool,
    },
}

/// One key's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// The key.
    pub key: String,
    /// Released or why not.
    #[serde(flatten)]
    pub status: CellStatus,
    /// Released figures by name (empty when suppressed).
    pub figures: BTreeMap<String, f64>,
}

/// A run's release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Template hash, hex.
    pub template: String,
    /// Epsilon charged to the querier (zero when nothing was released).
    pub epsilon_spent: f64,
    /// Per key.
    pub cells: Vec<Cell>,
    /// Figures over all keys (Herfindahl index, total; top-k keys).
    pub summary: BTreeMap<String, serde_json::Value>,
    /// Declared noise bounds per figure name, in the figure's units: every noisy figure is
    /// within this of the exact one (plus the fixed-point error).
    pub noise_bounds: BTreeMap<String, f64>,
}

impl Release {
    /// Keys released.
    pub fn released(&self) -> usize {
        self.cells.iter().filter(|c| c.status == CellStatus::Released).count()
    }

    /// Keys suppressed.
    pub fn suppressed(&self) -> usize {
        self.cells.len() - self.released()
    }
}

/// Outcome of a run at one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Refused before any input was touched; the reason says why.
    Refused {
        /// Why.
        reason: String,
    },
    /// Ran.
    Released(Release),
}

/// Knobs of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Adds no noise. Only for tests against the exact oracle; charges nothing.
    #[doc(hidden)]
    pub exact_for_tests: bool,
}

fn mpc(e: tacit_mpc_engine::fixed::FixedError) -> RiskError {
    RiskError::from(e)
}

/// A noisy figure to add: which vector, its unit, and its noise distribution.
struct Figure {
    name: &'static str,
    raw: Shares<Fr>,
    /// Scale factor from raw units to the released real value.
    unit: f64,
    dist: DiscreteLaplace,
}

/// The noise distribution of every figure a template releases, by name (`sum`,
/// `sum_of_squares`, `count`, `score`, `total`, `herfindahl`, `exposure`): discrete Laplace
/// of scale `Δ / ε_figure` in raw units. The proof's declared bounds come from here too.
pub fn noise_plan(template: &Template) -> Result<BTreeMap<&'static str, DiscreteLaplace>, RiskError> {
    let scale = f64::from(template.fixed.f).exp2();
    let eps = template.epsilon;
    let max_abs = |name: &str| -> Result<f64, RiskError> {
        template
            .columns
            .get(template.column(name)?)
            .map(|c| c.max_abs())
            .ok_or_else(|| RiskError::Template("column".into()))
    };
    // (name, sensitivity in raw units, epsilon of the figure)
    let figures: Vec<(&'static str, f64, f64)> = match &template.query {
        Query::Sum { column } | Query::Mean { column } => {
            vec![("sum", max_abs(column)? * scale, eps / 2.0), ("count", 1.0, eps / 2.0)]
        }
        Query::Variance { column } => {
            let m = max_abs(column)?;
            vec![("sum", m * scale, eps / 3.0), ("sum_of_squares", m * m * scale, eps / 3.0), ("count", 1.0, eps / 3.0)]
        }
        Query::WeightedScore { weights, .. } => {
            let mut sensitivity = 0.0;
            for (name, w) in weights {
                sensitivity += w.abs() * max_abs(name)?;
            }
            vec![("score", sensitivity * scale, eps)]
        }
        Query::Herfindahl { column, sensitivity } => {
            vec![("total", max_abs(column)? * scale, eps / 2.0), ("herfindahl", sensitivity * scale, eps / 2.0)]
        }
        Query::TopK { column, .. } => vec![("exposure", max_abs(column)? * scale, eps)],
    };
    figures.into_iter().map(|(name, sens, e)| Ok((name, DiscreteLaplace::new(sens.max(1.0) / e)?))).collect()
}

/// The factor `c = round(2^(f+g) / T̃)` of the Herfindahl index for the released raw noisy
/// total `T̃` (see [`crate::proof::herfindahl_extra_bits`]), or `None` when the total is too
/// small for a stable index (`T̃ < max(4 * bound, 1)`, `bound` the total's raw noise bound).
pub fn herfindahl_factor(fp: FixedPoint, t_raw: i128, bound_raw: i128) -> Option<i128> {
    let t = t_raw as f64;
    if t < (4.0 * bound_raw as f64).max(1.0) {
        return None;
    }
    let g = crate::proof::herfindahl_extra_bits(fp);
    let c = (2f64.powi((fp.f + g) as i32) / t).round();
    (c >= 1.0).then_some(c as i128)
}

/// This node's secret hints for the proof of a release, laid out as the circuit takes them
/// after the inputs (every vector over all keys of the universe, zero at suppressed keys):
/// - `sum`/`mean`/`variance`: the noise of each figure (aggregates, then the count);
/// - `weighted_score`: the truncated scores, then their noise;
/// - `herfindahl`: the total's noise, the truncated shares `s_k`, the truncated squares
///   `q_k`, the index's noise (all zero when the index is withheld);
/// - `top_k`: the noise of the exposures, then the cut `τ` (the order value of the weakest
///   key in the top set).
pub struct ProofMaterial {
    /// Shares of the hints.
    pub hints: Shares<Fr>,
}

impl std::fmt::Debug for ProofMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProofMaterial({} hints, <redacted>)", self.hints.len())
    }
}

/// Shares over all `nkeys` keys: `v[i]` at `passing[i]`, zero elsewhere.
fn scatter(v: &Shares<Fr>, passing: &[usize], nkeys: usize) -> Shares<Fr> {
    let mut out = vec![Fr::zero(); nkeys];
    for (x, k) in v.expose_shares().iter().zip(passing) {
        if let Some(o) = out.get_mut(*k) {
            *o = *x;
        }
    }
    Shares::from_raw(out)
}

/// Runs one query at this node. Every node calls it with the same signed template and its
/// own shares from every institution (in the template's institution order).
pub async fn run_query<T: Transport>(
    engine: &mut Engine<Fr, T>,
    signed: &SignedTemplate,
    inputs: &[NodeShares],
    ledger: &mut Ledger,
    options: RunOptions,
) -> Result<Outcome, RiskError> {
    Ok(run(engine, signed, inputs, ledger, options, false).await?.0)
}

/// [`run_query`], also returning this node's proof material ([`ProofMaterial`]) when the
/// query ran (not refused) and the template can be proved ([`crate::proof::Shape`]).
pub async fn run_query_with_material<T: Transport>(
    engine: &mut Engine<Fr, T>,
    signed: &SignedTemplate,
    inputs: &[NodeShares],
    ledger: &mut Ledger,
    options: RunOptions,
) -> Result<(Outcome, Option<ProofMaterial>), RiskError> {
    run(engine, signed, inputs, ledger, options, true).await
}

async fn run<T: Transport>(
    engine: &mut Engine<Fr, T>,
    signed: &SignedTemplate,
    inputs: &[NodeShares],
    ledger: &mut Ledger,
    options: RunOptions,
    want_material: bool,
) -> Result<(Outcome, Option<ProofMaterial>), RiskError> {
    // 1. Approvals: every node checks every institution's signature itself.
    let hash = signed.verify()?;
    let template = &signed.template;
    let fp = template.fixed;
    let querier = &template.querier;

    // 2. Budget: each node checks its own ledger; all nodes agree on the template hash and
    //    any refusal refuses everywhere.
    let epsilon = if options.exact_for_tests { 0.0 } else { template.epsilon };
    let verdict = ledger.check(querier, epsilon);
    let mut payload = hash.to_vec();
    payload.push(u8::from(verdict.is_ok()));
    let all = engine.broadcast_bytes(&payload, 33).await?;
    for (i, p) in all.iter().enumerate() {
        if p.get(..32) != Some(&hash[..]) {
            let e = MpcError::Usage(format!("party {} runs a different template", i + 1));
            return Err(engine.abort_with(e).await.into());
        }
    }
    if let Err(reason) = verdict {
        return Ok((Outcome::Refused { reason }, None));
    }
    if let Some(i) = all.iter().position(|p| p.get(32) != Some(&1)) {
        let reason = format!("node {} refused: privacy budget of {querier:?} exhausted", i + 1);
        return Ok((Outcome::Refused { reason }, None));
    }

    // 3. Inputs: shape, consistency of each institution's dealing, ranges.
    let nkeys = template.keys.len();
    let aggregates = template.aggregates()?;
    if inputs.len() != template.institutions.len() {
        return Err(RiskError::Usage(format!(
            "{} inputs for {} institutions",
            inputs.len(),
            template.institutions.len()
        )));
    }
    for (inst, input) in template.institutions.iter().zip(inputs) {
        if input.institution != inst.name
            || input.counts.len() != nkeys
            || input.aggregates.len() != aggregates.len()
            || input.aggregates.iter().any(|a| a.len() != nkeys)
        {
            return Err(RiskError::Usage(format!("input of {:?} does not fit the template", inst.name)));
        }
    }
    for input in inputs {
        let all_values: Vec<&Shares<Fr>> = [&input.counts, &input.salt].into_iter().chain(&input.aggregates).collect();
        let values = Shares::concat(&all_values);
        check_consistent(engine, &values, &input.institution).await?;
    }

    // 4. Aggregate (local); then one batch of range checks of what the computation relies
    //    on: the sums across institutions fit the format, the row totals fit the cohort
    //    comparison. (An institution's own values need no separate check: out-of-range
    //    values only change its own contribution, which it controls anyway; honest
    //    institutions' tables are checked row by row when they are parsed.)
    let counts = sum_all(inputs.iter().map(|i| &i.counts), nkeys);
    let sums: Vec<Shares<Fr>> =
        (0..aggregates.len()).map(|a| sum_all(inputs.iter().filter_map(|i| i.aggregates.get(a)), nkeys)).collect();
    let all_sums = Shares::concat(&sums.iter().collect::<Vec<_>>());
    engine
        .fx_check_ranges(&[
            RangeGroup::signed(&all_sums, fp.k, "an aggregate across institutions"),
            RangeGroup::unsigned(&counts, COUNT_BITS, "a row total across institutions"),
        ])
        .await?;

    // 5. Cohort on shares; only the two pass bits per key open.
    let all_counts = Shares::concat(&inputs.iter().map(|i| &i.counts).collect::<Vec<_>>());
    // An institution's count outside [0, 2^32) only garbles its own contribution bit (a
    // bit in any case), which its input controls anyway.
    let is_empty = engine.equal(&all_counts, &Shares::zeros(all_counts.len()), 32).await?;
    let mut contributors = Shares::constant(&vec![Fr::from(inputs.len() as u64); nkeys]);
    for i in 0..inputs.len() {
        contributors = contributors.sub(&is_empty.slice(i * nkeys..(i + 1) * nkeys));
    }
    let below = engine
        .less_than(
            &Shares::concat(&[&counts, &contributors]),
            &Shares::concat(&[
                &Shares::constant(&vec![Fr::from(template.min_rows); nkeys]),
                &Shares::constant(&vec![Fr::from(template.min_contributors); nkeys]),
            ]),
            COUNT_BITS,
        )
        .await?;
    let opened = engine.open(&below).await?;
    let mut passing = Vec::new();
    let mut cells: Vec<Cell> = Vec::with_capacity(nkeys);
    for (k, key) in template.keys.iter().enumerate() {
        let few_rows = opened.get(k).is_none_or(|v| !v.is_zero());
        let few_inst = opened.get(nkeys + k).is_none_or(|v| !v.is_zero());
        let status = match (few_rows, few_inst) {
            (false, false) => {
                passing.push(k);
                CellStatus::Released
            }
            (true, false) => CellStatus::Suppressed {
                reason: format!("fewer than {} rows", template.min_rows),
                few_rows,
                few_contributors: few_inst,
            },
            (false, true) => CellStatus::Suppressed {
                reason: format!("fewer than {} contributing institutions", template.min_contributors),
                few_rows,
                few_contributors: few_inst,
            },
            (true, true) => CellStatus::Suppressed {
                reason: format!(
                    "fewer than {} rows and fewer than {} contributing institutions",
                    template.min_rows, template.min_contributors
                ),
                few_rows,
                few_contributors: few_inst,
            },
        };
        cells.push(Cell { key: key.clone(), status, figures: BTreeMap::new() });
    }
    let mut release = Release {
        template: hex::encode(hash),
        epsilon_spent: 0.0,
        cells,
        summary: BTreeMap::new(),
        noise_bounds: BTreeMap::new(),
    };
    let plan = noise_plan(template)?;
    let dist = |name: &str| -> Result<DiscreteLaplace, RiskError> {
        plan.get(name).copied().ok_or_else(|| RiskError::Template(format!("no noise for {name}")))
    };
    // The proof's shape, when the material is wanted and the template can be proved.
    let shape = if want_material { crate::proof::Shape::from_template(template).ok() } else { None };
    if passing.is_empty() {
        // Nothing computed, opened or charged; the proof's hints are all zero.
        let material = shape.map(|s| ProofMaterial { hints: Shares::zeros(s.hints_len()) });
        return Ok((Outcome::Released(release), material));
    }
    let pick = |v: &Shares<Fr>| -> Shares<Fr> {
        Shares::from_raw(passing.iter().map(|k| v.expose_shares().get(*k).copied().unwrap_or_default()).collect())
    };
    let counts_p = pick(&counts);
    let sums_p: Vec<Shares<Fr>> = sums.iter().map(pick).collect();
    let ulp = fp.resolution();
    let scale = f64::from(fp.f).exp2();

    // 6. Charge before anything derived from the figures opens.
    if epsilon > 0.0 {
        ledger.charge(querier, &hash, epsilon)?;
        release.epsilon_spent = epsilon;
    }
    let hints: Shares<Fr> = match &template.query {
        Query::Sum { .. } | Query::Mean { .. } | Query::Variance { .. } => {
            let mut figures = vec![Figure {
                name: "sum",
                raw: sums_p.first().cloned().unwrap_or_else(|| Shares::zeros(0)),
                unit: ulp,
                dist: dist("sum")?,
            }];
            if let Query::Variance { .. } = template.query {
                figures.push(Figure {
                    name: "sum_of_squares",
                    raw: sums_p.get(1).cloned().unwrap_or_else(|| Shares::zeros(0)),
                    unit: ulp,
                    dist: dist("sum_of_squares")?,
                });
            }
            figures.push(Figure { name: "count", raw: counts_p, unit: 1.0, dist: dist("count")? });
            let (values, noise) = noisy_open(engine, &figures, &mut release, options).await?;
            for (i, k) in passing.iter().enumerate() {
                let Some(cell) = release.cells.get_mut(*k) else { continue };
                let get = |f: usize| values.get(f).and_then(|v| v.get(i)).copied().unwrap_or(f64::NAN);
                let (sum, count) = (get(0), get(figures.len() - 1));
                let n = count.max(1.0);
                // The noisy sums are the released figures (what the proof covers); mean and
                // variance are post-processing of them.
                cell.figures.insert("sum".into(), sum);
                cell.figures.insert("count".into(), count);
                match &template.query {
                    Query::Sum { .. } => {}
                    Query::Mean { .. } => {
                        cell.figures.insert("mean".into(), sum / n);
                    }
                    _ => {
                        let sq = get(1);
                        cell.figures.insert("sum_of_squares".into(), sq);
                        cell.figures.insert("variance".into(), (sq / n - (sum / n) * (sum / n)).max(0.0));
                        cell.figures.insert("mean".into(), sum / n);
                    }
                }
            }
            let parts: Vec<Shares<Fr>> = noise.iter().map(|e| scatter(e, &passing, nkeys)).collect();
            Shares::concat(&parts.iter().collect::<Vec<_>>())
        }
        Query::WeightedScore { weights, threshold, release: what } => {
            let mut parts = Vec::with_capacity(weights.len());
            let mut wbits = 0;
            for ((_, w), s) in weights.iter().zip(&sums_p) {
                let w_raw = fp.to_raw(*w)?;
                wbits = wbits.max(signed_bits(w_raw));
                parts.push((s, from_i128::<Fr>(w_raw)));
            }
            let width = fp.k + wbits + (usize::BITS - weights.len().leading_zeros());
            if width > MAX_WIDE_BITS {
                return Err(RiskError::Template("weights too large for the format".into()));
            }
            let exact = Shares::linear_combination(&parts);
            let score = if fp.f == 0 { exact } else { engine.truncate_wide(&exact, width, fp.f).await.map_err(mpc)? };
            engine.fx_check_range(&score, fp.k, "a weighted score").await?;
            let fig = Figure { name: "score", raw: score, unit: ulp, dist: dist("score")? };
            let (noisy, noise) = add_noise(engine, &fig, &mut release, options).await?;
            // flag = [noisy >= threshold], signed values offset into [0, 2^W).
            let bound = release.noise_bounds.get("score").copied().unwrap_or(0.0) * scale;
            let w = (fp.k.max(signed_bits(bound as i128)) + 1).min(63);
            let off = pow2::<Fr>(w - 1);
            let thr = from_i128::<Fr>(fp.to_raw(*threshold)?);
            let lt =
                engine.less_than(&noisy.add_scalar(off), &Shares::constant(&vec![thr + off; noisy.len()]), w).await?;
            let flag = lt.rsub_scalar(Fr::from(1u64));
            let opened = match what {
                ScoreRelease::ScoreAndFlag => engine.open(&Shares::concat(&[&noisy, &flag])).await?,
                ScoreRelease::FlagOnly => engine.open(&flag).await?,
            };
            let m = passing.len();
            for (i, k) in passing.iter().enumerate() {
                let Some(cell) = release.cells.get_mut(*k) else { continue };
                let flag_at = if *what == ScoreRelease::ScoreAndFlag { m + i } else { i };
                let flag = opened.get(flag_at).is_some_and(|v| !v.is_zero());
                cell.figures.insert("flag".into(), if flag { 1.0 } else { 0.0 });
                if *what == ScoreRelease::ScoreAndFlag {
                    let v = opened.get(i).ok_or_else(|| RiskError::Usage("opened too few".into()))?;
                    cell.figures.insert("score".into(), fp.decode(v)?);
                }
            }
            Shares::concat(&[&scatter(&fig.raw, &passing, nkeys), &scatter(&noise, &passing, nkeys)])
        }
        Query::Herfindahl { .. } => {
            let exposures = sums_p.first().cloned().unwrap_or_else(|| Shares::zeros(0));
            let total = exposures.sum();
            let fig = Figure { name: "total", raw: total, unit: ulp, dist: dist("total")? };
            let (t_values, t_noise) = noisy_open(engine, std::slice::from_ref(&fig), &mut release, options).await?;
            let t_raw = (t_values.first().and_then(|v| v.first()).copied().unwrap_or(0.0) * scale) as i128;
            release.summary.insert("total".into(), serde_json::json!(t_raw as f64 / scale));
            let t_bound = (release.noise_bounds.get("total").copied().unwrap_or(0.0) * scale) as i128;
            let e_t = t_noise.first().cloned().unwrap_or_else(|| Shares::zeros(1));
            let mut hints = vec![e_t];
            match herfindahl_factor(fp, t_raw, t_bound) {
                None => {
                    release.summary.insert(
                        "herfindahl".into(),
                        serde_json::json!({"status": "suppressed", "reason": "total exposure too small for a stable index"}),
                    );
                    hints.push(Shares::zeros(2 * nkeys + 1));
                }
                Some(c_raw) => {
                    // s_k = E_k / T~ in fixed point: E_k * round(2^(f+g) / T~), truncated by g.
                    let g = crate::proof::herfindahl_extra_bits(fp);
                    let shares_fp = FixedPoint::new(fp.f + 2, fp.f)?;
                    let scaled = exposures.scale(from_i128(c_raw));
                    let s = engine.truncate_wide(&scaled, fp.f + g + 2, g).await.map_err(mpc)?;
                    let sq = engine.fx_mul(&s, &s, shares_fp).await.map_err(mpc)?;
                    let hhi = sq.sum();
                    let fig = Figure { name: "herfindahl", raw: hhi, unit: ulp, dist: dist("herfindahl")? };
                    let (h, h_noise) = noisy_open(engine, std::slice::from_ref(&fig), &mut release, options).await?;
                    let value = h.first().and_then(|v| v.first()).copied().unwrap_or(f64::NAN);
                    release.summary.insert("herfindahl".into(), serde_json::json!(value));
                    hints.push(scatter(&s, &passing, nkeys));
                    hints.push(scatter(&sq, &passing, nkeys));
                    hints.push(h_noise.first().cloned().unwrap_or_else(|| Shares::zeros(1)));
                }
            }
            for k in &passing {
                if let Some(cell) = release.cells.get_mut(*k) {
                    cell.figures.insert("included".into(), 1.0);
                }
            }
            Shares::concat(&hints.iter().collect::<Vec<_>>())
        }
        Query::TopK { k, .. } => {
            let exposures = sums_p.first().cloned().unwrap_or_else(|| Shares::zeros(0));
            let fig = Figure { name: "exposure", raw: exposures, unit: ulp, dist: dist("exposure")? };
            let (noisy, noise) = add_noise(engine, &fig, &mut release, options).await?;
            let m = passing.len();
            // The proof's order of keys (see `proof::top_k_order`), when a proof is wanted.
            let order_of = shape.as_ref().and_then(|s| match s.kind {
                crate::proof::Kind::TopK { width, index_bits, .. } => {
                    Some(crate::proof::top_k_order(nkeys, index_bits, width))
                }
                _ => None,
            });
            let mut cut = Shares::constant(&[order_of.as_ref().map_or(Fr::zero(), |o| o.2)]);
            let in_top: Vec<bool> = if m <= *k {
                vec![true; m]
            } else {
                let bound = release.noise_bounds.get("exposure").copied().unwrap_or(0.0) * scale;
                let w = (fp.k.max(signed_bits(bound as i128)) + 1).min(63);
                let off = pow2::<Fr>(w - 1);
                let (mut left, mut right, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
                let shifted = noisy.add_scalar(off);
                for i in 0..m {
                    for j in i + 1..m {
                        left.push(shifted.expose_shares().get(i).copied().unwrap_or_default());
                        right.push(shifted.expose_shares().get(j).copied().unwrap_or_default());
                        pairs.push((i, j));
                    }
                }
                // lt_ij = [E_i < E_j]: j beats i when 1, i beats j (ties too) when 0.
                let lt = engine.less_than(&Shares::from_raw(left), &Shares::from_raw(right), w).await?;
                let mut rank = vec![Fr::zero(); m];
                for ((i, j), v) in pairs.iter().zip(lt.expose_shares()) {
                    if let Some(r) = rank.get_mut(*i) {
                        *r += v;
                    }
                    if let Some(r) = rank.get_mut(*j) {
                        *r += Fr::from(1u64) - v;
                    }
                }
                let rank_bits = usize::BITS - m.leading_zeros() + 1;
                let rank = Shares::from_raw(rank);
                let top = engine.less_than(&rank, &Shares::constant(&vec![Fr::from(*k as u64); m]), rank_bits).await?;
                let opened = engine.open(&top).await?;
                if let Some((order_scale, tie, _)) = &order_of {
                    // The proof's cut: the order value of the key ranked k - 1 (never opens).
                    let weakest =
                        engine.equal(&rank, &Shares::constant(&vec![Fr::from(*k as u64 - 1); m]), rank_bits).await?;
                    let ties: Vec<Fr> = passing.iter().map(|key| tie.get(*key).copied().unwrap_or_default()).collect();
                    let order = noisy.scale(*order_scale).add_public(&ties);
                    cut = engine.mul(&weakest, &order).await?.sum();
                }
                opened.iter().map(|v| !v.is_zero()).collect()
            };
            let mut top_keys = Vec::new();
            for (i, key) in passing.iter().enumerate() {
                let Some(cell) = release.cells.get_mut(*key) else { continue };
                let is_top = in_top.get(i).copied().unwrap_or(false);
                cell.figures.insert("in_top_k".into(), if is_top { 1.0 } else { 0.0 });
                if is_top {
                    top_keys.push(cell.key.clone());
                }
            }
            release.summary.insert("top_k".into(), serde_json::json!(top_keys));
            Shares::concat(&[&scatter(&noise, &passing, nkeys), &cut])
        }
    };
    let material = match shape {
        Some(s) if hints.len() == s.hints_len() => Some(ProofMaterial { hints }),
        Some(_) => return Err(RiskError::Proof("proof hints do not fit the statement".into())),
        None => None,
    };
    Ok((Outcome::Released(release), material))
}

fn sum_all<'a>(parts: impl Iterator<Item = &'a Shares<Fr>>, len: usize) -> Shares<Fr> {
    parts.fold(Shares::zeros(len), |acc, s| acc.add(s))
}

/// Opens a random combination of an institution's shares plus a random mask: reconstruction
/// checks that the dealt shares lie on one degree-`t` polynomial (an inconsistent dealing
/// fails; with `n = 2t + 1` the check cannot tell a bad dealing from a node's bad opening).
async fn check_consistent<T: Transport>(
    engine: &mut Engine<Fr, T>,
    values: &Shares<Fr>,
    institution: &str,
) -> Result<(), RiskError> {
    let alpha = engine.coin().await?;
    let mut power = alpha;
    let mut weights = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        weights.push(power);
        power *= alpha;
    }
    let combined = values.mul_public(&weights).sum();
    let mask = engine.take_randoms(1).await?.into_shares();
    match engine.open(&combined.add(&mask)).await {
        Ok(_) => Ok(()),
        Err(MpcError::Cheating { check: tacit_mpc_engine::Check::OpeningConsistency, culprit }) => {
            Err(RiskError::InconsistentShares { institution: institution.to_string(), culprit: culprit.to_string() })
        }
        Err(e) => Err(e.into()),
    }
}

/// Adds discrete Laplace noise to a figure (nothing when exact), recording its declared
/// bound. Returns the noisy figure and the noise.
async fn add_noise<T: Transport>(
    engine: &mut Engine<Fr, T>,
    fig: &Figure,
    release: &mut Release,
    options: RunOptions,
) -> Result<(Shares<Fr>, Shares<Fr>), RiskError> {
    if options.exact_for_tests {
        release.noise_bounds.insert(fig.name.into(), 0.0);
        return Ok((fig.raw.clone(), Shares::zeros(fig.raw.len())));
    }
    release.noise_bounds.insert(fig.name.into(), fig.dist.bound() as f64 * fig.unit);
    let noise = noise::sample(engine, &vec![fig.dist; fig.raw.len()]).await?;
    Ok((fig.raw.add(&noise), noise))
}

/// Adds noise to each figure, opens them all in one opening, and decodes them. Returns the
/// decoded figures and each figure's noise.
async fn noisy_open<T: Transport>(
    engine: &mut Engine<Fr, T>,
    figures: &[Figure],
    release: &mut Release,
    options: RunOptions,
) -> Result<(Vec<Vec<f64>>, Vec<Shares<Fr>>), RiskError> {
    let mut noisy = Vec::with_capacity(figures.len());
    let mut noise = Vec::with_capacity(figures.len());
    for f in figures {
        let (x, e) = add_noise(engine, f, release, options).await?;
        noisy.push(x);
        noise.push(e);
    }
    let opened = engine.open(&Shares::concat(&noisy.iter().collect::<Vec<_>>())).await?;
    let mut out = Vec::with_capacity(figures.len());
    let mut at = 0;
    for (f, v) in figures.iter().zip(&noisy) {
        let slice = opened.get(at..at + v.len()).ok_or_else(|| RiskError::Usage("opened too few".into()))?;
        out.push(
            slice
                .iter()
                .map(|x| tacit_mpc_engine::field::to_i128(x).map(|r| r as f64 * f.unit).unwrap_or(f64::NAN))
                .collect(),
        );
        at += v.len();
    }
    Ok((out, noise))
}

/// The oracle's answer: per key `None` (suppressed) or the figures; and summary figures.
pub type OracleResult = (Vec<Option<BTreeMap<String, f64>>>, BTreeMap<String, serde_json::Value>);

/// The exact figures of a template over plaintext inputs (no noise): the oracle of the
/// tests. Per key: `None` if the cohort rule suppresses it, else its figures; and summary
/// figures.
pub fn oracle(template: &Template, inputs: &[InstitutionInput]) -> Result<OracleResult, RiskError> {
    let fp = template.fixed;
    let nkeys = template.keys.len();
    let ulp = fp.resolution();
    let mut cells = Vec::with_capacity(nkeys);
    let mut summary = BTreeMap::new();
    let agg = |a: usize, k: usize| -> f64 {
        inputs.iter().map(|i| i.aggregates.get(a).and_then(|v| v.get(k)).copied().unwrap_or(0) as f64).sum::<f64>()
            * ulp
    };
    let mut passing = Vec::new();
    for k in 0..nkeys {
        let rows: u64 = inputs.iter().map(|i| i.counts.get(k).copied().unwrap_or(0)).sum();
        let contributors = inputs.iter().filter(|i| i.counts.get(k).copied().unwrap_or(0) > 0).count() as u32;
        if rows < u64::from(template.min_rows) || contributors < template.min_contributors {
            cells.push(None);
            continue;
        }
        passing.push(k);
        let n = (rows as f64).max(1.0);
        let mut figures = BTreeMap::new();
        match &template.query {
            Query::Sum { .. } => {
                figures.insert("sum".into(), agg(0, k));
                figures.insert("count".into(), rows as f64);
            }
            Query::Mean { .. } => {
                figures.insert("sum".into(), agg(0, k));
                figures.insert("mean".into(), agg(0, k) / n);
                figures.insert("count".into(), rows as f64);
            }
            Query::Variance { .. } => {
                let (s, q) = (agg(0, k), agg(1, k));
                figures.insert("sum".into(), s);
                figures.insert("sum_of_squares".into(), q);
                figures.insert("variance".into(), (q / n - (s / n) * (s / n)).max(0.0));
                figures.insert("mean".into(), s / n);
                figures.insert("count".into(), rows as f64);
            }
            Query::WeightedScore { weights, threshold, release } => {
                let score: f64 = weights
                    .iter()
                    .enumerate()
                    .map(|(j, (_, w))| fp.from_raw(fp.to_raw(*w).unwrap_or(0)) * agg(j, k))
                    .sum();
                if *release == ScoreRelease::ScoreAndFlag {
                    figures.insert("score".into(), score);
                }
                figures.insert("flag".into(), if score >= *threshold { 1.0 } else { 0.0 });
            }
            Query::Herfindahl { .. } => {
                figures.insert("included".into(), 1.0);
            }
            Query::TopK { .. } => {}
        }
        cells.push(Some(figures));
    }
    match &template.query {
        Query::Herfindahl { .. } => {
            let total: f64 = passing.iter().map(|k| agg(0, *k)).sum();
            let hhi: f64 = passing.iter().map(|k| (agg(0, *k) / total).powi(2)).sum();
            summary.insert("total".into(), serde_json::json!(total));
            summary.insert("herfindahl".into(), serde_json::json!(hhi));
        }
        Query::TopK { k, .. } => {
            let mut order: Vec<usize> = passing.clone();
            order.sort_by(|a, b| agg(0, *b).total_cmp(&agg(0, *a)).then(a.cmp(b)));
            let mut chosen: Vec<usize> = order.iter().take(*k).copied().collect();
            // The release reveals the set only, listed in key order.
            chosen.sort_unstable();
            let top: Vec<String> = chosen.iter().filter_map(|i| template.keys.get(*i).cloned()).collect();
            summary.insert("top_k".into(), serde_json::json!(top));
            for (i, cell) in cells.iter_mut().enumerate() {
                if let Some(f) = cell {
                    let key = template.keys.get(i).cloned().unwrap_or_default();
                    f.insert("in_top_k".into(), if top.contains(&key) { 1.0 } else { 0.0 });
                }
            }
        }
        _ => {}
    }
    Ok((cells, summary))
}
