//! Query templates and their approvals.
//!
//! A template fixes everything a query may do: the key universe, the input columns and
//! their bounds, the fixed-point format, the release policy (minimum cohort, epsilon) and
//! the computation. Its hash is BLAKE3 over its canonical JSON (struct field order, no
//! whitespace). Every institution listed in the template signs that hash with its
//! secp256k1 key (ECDSA, RFC 6979, k256); a node runs a template only with a valid
//! signature from every listed institution.

use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use tacit_mpc_engine::fixed::FixedPoint;

use crate::RiskError;

/// One input column and the bounds every row value must respect (rows outside are
/// reported with their line number). The bounds also fix the DP sensitivity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Header name in the CSV.
    pub name: String,
    /// Smallest allowed value.
    pub min: f64,
    /// Largest allowed value.
    pub max: f64,
}

impl Column {
    /// Largest magnitude a row can contribute.
    pub fn max_abs(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }
}

/// What the weighted score releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ScoreRelease {
    /// The noisy score and the flag `noisy score >= threshold`.
    #[default]
    ScoreAndFlag,
    /// Only the flag, computed inside the MPC on the noisy score (the score never opens).
    FlagOnly,
}

/// The computation of a template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Query {
    /// Per key: noisy sum of `column` across institutions and noisy row count.
    Sum {
        /// Column name.
        column: String,
    },
    /// Per key: the mean, as noisy sum over noisy count (post-processing).
    Mean {
        /// Column name.
        column: String,
    },
    /// Per key: the variance, from noisy sum, sum of squares and count (post-processing).
    Variance {
        /// Column name.
        column: String,
    },
    /// Per key: `sum_j w_j * (sum over rows of column_j)`, and the flag `score >= threshold`.
    WeightedScore {
        /// `(column, weight)` pairs.
        weights: Vec<(String, f64)>,
        /// Flag threshold.
        threshold: f64,
        /// What opens.
        #[serde(default)]
        release: ScoreRelease,
    },
    /// Herfindahl index `sum_k (E_k / T)^2` of the per-key exposures `E_k` (sums of a
    /// non-negative column) over the keys that pass the cohort; `T` is released noisy first.
    Herfindahl {
        /// Column name (its `min` must be `>= 0`).
        column: String,
        /// Declared sensitivity of the index to one row (the approvers' responsibility).
        sensitivity: f64,
    },
    /// The `k` keys with the largest noisy aggregate exposure; values and order stay secret.
    TopK {
        /// Column name.
        column: String,
        /// How many keys.
        k: usize,
    },
}

/// An institution that must approve, and feeds inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Institution {
    /// Name.
    pub name: String,
    /// Compressed SEC1 secp256k1 public key, hex.
    pub public_key: String,
}

/// A query template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Name, e.g. `weighted-exposure-q3`.
    pub name: String,
    /// Who asks: the privacy budget is charged to this querier.
    pub querier: String,
    /// Institutions; all must sign.
    pub institutions: Vec<Institution>,
    /// The key universe (counterparties or addresses); rows with other keys are refused.
    pub keys: Vec<String>,
    /// Input columns.
    pub columns: Vec<Column>,
    /// Fixed-point format of values and aggregates.
    pub fixed: FixedPoint,
    /// Minimum number of contributing institutions per released key.
    pub min_contributors: u32,
    /// Minimum number of rows per released key.
    pub min_rows: u32,
    /// Privacy loss of one run (split evenly over the figures a key releases; keys are
    /// disjoint, so it is also the loss of the whole run by parallel composition).
    pub epsilon: f64,
    /// The computation.
    pub query: Query,
}

/// A signature of one institution over a template hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Institution name.
    pub institution: String,
    /// DER-free 64-byte ECDSA signature, hex.
    pub signature: String,
}

/// A template with its approvals, as nodes receive it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedTemplate {
    /// The template.
    pub template: Template,
    /// One approval per institution.
    pub approvals: Vec<Approval>,
}

impl Template {
    /// BLAKE3 of the canonical JSON.
    pub fn hash(&self) -> Result<[u8; 32], RiskError> {
        let bytes = serde_json::to_vec(self).map_err(|e| RiskError::Template(format!("encoding: {e}")))?;
        Ok(*blake3::hash(&bytes).as_bytes())
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Result<usize, RiskError> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| RiskError::Template(format!("no column {name:?}")))
    }

    /// Checks the template is well formed.
    pub fn validate(&self) -> Result<(), RiskError> {
        self.fixed.validate()?;
        if self.fixed.k > 43 {
            return Err(RiskError::Template("fixed.k must be at most 43 (products are truncated in one step)".into()));
        }
        if self.keys.is_empty() || self.institutions.is_empty() {
            return Err(RiskError::Template("no keys or no institutions".into()));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(RiskError::Template("epsilon must be positive".into()));
        }
        let limit = self.fixed.from_raw(self.fixed.max_raw());
        for c in &self.columns {
            if c.min.is_nan() || c.max.is_nan() || c.min > c.max || c.max_abs() > limit {
                return Err(RiskError::Template(format!("column {:?}: bounds do not fit the format", c.name)));
            }
        }
        for a in self.aggregates()? {
            let _ = self.columns.get(a.column).ok_or_else(|| RiskError::Template("column index".into()))?;
        }
        match &self.query {
            Query::Herfindahl { column, sensitivity } => {
                let c = self.columns.get(self.column(column)?).ok_or_else(|| RiskError::Template("column".into()))?;
                if c.min < 0.0 || !(sensitivity.is_finite() && *sensitivity > 0.0) {
                    return Err(RiskError::Template("herfindahl needs a non-negative column and a sensitivity".into()));
                }
            }
            Query::TopK { k, .. } if *k == 0 || *k > self.keys.len() => {
                return Err(RiskError::Template("top-k: k out of range".into()));
            }
            Query::WeightedScore { weights, .. } if weights.is_empty() => {
                return Err(RiskError::Template("weighted score without weights".into()));
            }
            _ => {}
        }
        Ok(())
    }

    /// The per-key aggregates each institution submits (after its row count).
    pub fn aggregates(&self) -> Result<Vec<Aggregate>, RiskError> {
        let plain =
            |c: &str| -> Result<Aggregate, RiskError> { Ok(Aggregate { column: self.column(c)?, squared: false }) };
        Ok(match &self.query {
            Query::Sum { column } | Query::Mean { column } | Query::TopK { column, .. } => vec![plain(column)?],
            Query::Herfindahl { column, .. } => vec![plain(column)?],
            Query::Variance { column } => {
                vec![plain(column)?, Aggregate { column: self.column(column)?, squared: true }]
            }
            Query::WeightedScore { weights, .. } => {
                weights.iter().map(|(c, _)| plain(c)).collect::<Result<Vec<_>, _>>()?
            }
        })
    }

    /// Signs the template hash (an institution's approval).
    pub fn approve(&self, institution: &str, key: &SigningKey) -> Result<Approval, RiskError> {
        let sig: Signature = key.sign(&self.hash()?);
        Ok(Approval { institution: institution.to_string(), signature: hex::encode(sig.to_bytes()) })
    }
}

/// One per-key aggregate of one column: the sum of values, or of squared values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aggregate {
    /// Column index.
    pub column: usize,
    /// Sum of squares instead of sum.
    pub squared: bool,
}

impl SignedTemplate {
    /// Checks the template and that every listed institution signed its hash. The error
    /// names the first institution whose approval is missing or invalid.
    pub fn verify(&self) -> Result<[u8; 32], RiskError> {
        self.template.validate()?;
        let hash = self.template.hash()?;
        for inst in &self.template.institutions {
            let unapproved = |why: &str| RiskError::Unapproved { institution: inst.name.clone(), reason: why.into() };
            let key_bytes = hex::decode(&inst.public_key).map_err(|_| unapproved("public key is not hex"))?;
            let key = VerifyingKey::from_sec1_bytes(&key_bytes).map_err(|_| unapproved("bad public key"))?;
            let approval =
                self.approvals.iter().find(|a| a.institution == inst.name).ok_or_else(|| unapproved("no approval"))?;
            let sig_bytes = hex::decode(&approval.signature).map_err(|_| unapproved("signature is not hex"))?;
            let sig = Signature::from_slice(&sig_bytes).map_err(|_| unapproved("malformed signature"))?;
            key.verify(&hash, &sig).map_err(|_| unapproved("signature does not verify"))?;
        }
        Ok(hash)
    }
}

/// Public key of a signing key, in the template's format.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex::encode(key.verifying_key().to_encoded_point(true).as_bytes())
}
