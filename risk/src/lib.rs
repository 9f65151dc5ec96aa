//! Aggregate risk scoring on Tacit, with the release policy inside the MPC.
//!
//! Institutions are clients: each parses its table ([`table`]), aggregates it per key of the
//! template's key universe in fixed point, and secret-shares the result to the nodes
//! ([`query::share_input`]). Query templates ([`template`]) are approved (signed) by every
//! institution before any node runs them. Each node ([`query::run_query`]) checks the
//! approvals, agrees with the others on its privacy-budget verdict ([`ledger`]), checks
//! the inputs (consistent dealing, ranges), applies the minimum-cohort rule on shares
//! (only pass/fail bits open), computes the template, adds discrete Laplace noise sampled
//! inside the MPC from shared random bits ([`noise`]), charges the ledger, and only then
//! opens the noisy figures. The nodes then prove the release collaboratively ([`proof`]):
//! the released figures are the template applied to the institutions' committed inputs
//! plus noise within the declared bounds, and the cohort verdicts follow from those inputs.
//! [`sim`] runs institutions and nodes in one process (tests, demo).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod ledger;
pub mod noise;
pub mod proof;
pub mod query;
pub mod sim;
pub mod table;
pub mod template;

/// Re-exported for the CLI (institution keys).
pub use k256;
pub use ledger::Ledger;
pub use query::{run_query, Cell, CellStatus, NodeShares, Outcome, Release, RunOptions};
pub use table::{aggregate_csv, InstitutionInput};
pub use tacit_mpc_engine::fixed::FixedPoint;
pub use template::{Approval, Column, Institution, Query, ScoreRelease, SignedTemplate, Template};

use tacit_mpc_engine::fixed::FixedError;
use tacit_mpc_engine::MpcError;

/// Failures of a risk query.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    /// A row of an input table is malformed or out of range.
    #[error("line {line}: {reason}")]
    Input {
        /// 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The template is malformed.
    #[error("template: {0}")]
    Template(String),
    /// An institution has not (validly) approved the template.
    #[error("template not approved by {institution}: {reason}")]
    Unapproved {
        /// The institution.
        institution: String,
        /// Why.
        reason: String,
    },
    /// The query was refused (privacy budget).
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The ledger file could not be read or written.
    #[error("ledger: {0}")]
    Ledger(String),
    /// An institution's shares are not a consistent sharing.
    #[error("inconsistent shares from {institution} (or a node's opening of them; culprit by the check: {culprit})")]
    InconsistentShares {
        /// The institution.
        institution: String,
        /// What the engine's check named.
        culprit: String,
    },
    /// Fixed-point failure: overflow (naming the value) or parameters.
    #[error(transparent)]
    Fixed(#[from] FixedError),
    /// The engine failed or detected a cheating node (named where possible).
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// Circuit or proof failure.
    #[error("proof: {0}")]
    Proof(String),
    /// Misuse.
    #[error("invalid request: {0}")]
    Usage(String),
}

impl From<tacit_prover::collaborative::CollaborativeError> for RiskError {
    /// An engine failure (a cheat names its culprit) stays one; anything else is the proof's.
    fn from(e: tacit_prover::collaborative::CollaborativeError) -> Self {
        match e {
            tacit_prover::collaborative::CollaborativeError::Mpc(e) => Self::Mpc(e),
            other => Self::Proof(other.to_string()),
        }
    }
}
