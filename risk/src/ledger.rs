//! The per-querier privacy budget ledger every node keeps. A query is charged before any
//! figure opens (write-ahead: a crash after the charge loses budget, never grants it), and a
//! query that would exceed the querier's budget is refused. The ledger persists as a JSON
//! file replaced atomically (write to a temporary file, then rename), or wherever its owner
//! stores it ([`Ledger::with_store`], e.g. a node's transactional store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::RiskError;

/// One charge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Charge {
    /// Querier.
    pub querier: String,
    /// Template hash, hex.
    pub template: String,
    /// Epsilon charged.
    pub epsilon: f64,
}

/// The ledger's contents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerState {
    /// Total budget per querier; queriers not listed get `default_budget`.
    pub budgets: BTreeMap<String, f64>,
    /// Budget of queriers not listed.
    pub default_budget: f64,
    /// Every charge, in order.
    pub charges: Vec<Charge>,
}

/// Saves a ledger's state durably; an error fails the charge that caused it.
pub type Persist = Box<dyn FnMut(&LedgerState) -> Result<(), String> + Send>;

/// Where a ledger is kept.
enum Backing {
    Memory,
    File(PathBuf),
    Store(Persist),
}

/// A node's ledger (in memory, optionally persisted).
pub struct Ledger {
    backing: Backing,
    state: LedgerState,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backing = match &self.backing {
            Backing::Memory => "memory".to_string(),
            Backing::File(p) => p.display().to_string(),
            Backing::Store(_) => "store".to_string(),
        };
        f.debug_struct("Ledger").field("backing", &backing).field("state", &self.state).finish()
    }
}

impl Ledger {
    /// An in-memory ledger giving every querier `default_budget`.
    pub fn in_memory(default_budget: f64) -> Self {
        Self { backing: Backing::Memory, state: LedgerState { default_budget, ..LedgerState::default() } }
    }

    /// A ledger with `state` (as last saved), saved through `persist` on every change.
    pub fn with_store(state: LedgerState, persist: Persist) -> Self {
        Self { backing: Backing::Store(persist), state }
    }

    /// The contents.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Opens the ledger at `path`, creating it with `default_budget` if absent.
    pub fn open(path: impl AsRef<Path>, default_budget: f64) -> Result<Self, RiskError> {
        let path = path.as_ref().to_path_buf();
        let state = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| RiskError::Ledger(format!("{}: {e}", path.display())))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                LedgerState { default_budget, ..LedgerState::default() }
            }
            Err(e) => return Err(RiskError::Ledger(format!("{}: {e}", path.display()))),
        };
        let mut ledger = Self { backing: Backing::File(path), state };
        ledger.save()?;
        Ok(ledger)
    }

    /// Sets a querier's total budget.
    pub fn set_budget(&mut self, querier: &str, budget: f64) -> Result<(), RiskError> {
        self.state.budgets.insert(querier.to_string(), budget);
        self.save()
    }

    /// The querier's total budget.
    pub fn budget(&self, querier: &str) -> f64 {
        self.state.budgets.get(querier).copied().unwrap_or(self.state.default_budget)
    }

    /// Epsilon the querier has spent.
    pub fn spent(&self, querier: &str) -> f64 {
        self.state.charges.iter().filter(|c| c.querier == querier).map(|c| c.epsilon).sum()
    }

    /// `Err(reason)` if charging `epsilon` would exceed the budget.
    pub fn check(&self, querier: &str, epsilon: f64) -> Result<(), String> {
        let (spent, budget) = (self.spent(querier), self.budget(querier));
        // A tiny slack so that budgets that are sums of decimal epsilons are not refused by
        // floating-point rounding.
        if spent + epsilon > budget * (1.0 + 1e-9) {
            return Err(format!(
                "privacy budget of {querier:?} exhausted: spent {spent}, budget {budget}, query needs {epsilon}"
            ));
        }
        Ok(())
    }

    /// Charges the querier (after [`Ledger::check`]); persisted before returning.
    pub fn charge(&mut self, querier: &str, template: &[u8; 32], epsilon: f64) -> Result<(), RiskError> {
        self.check(querier, epsilon).map_err(|reason| RiskError::Refused { reason })?;
        self.state.charges.push(Charge { querier: querier.to_string(), template: hex::encode(template), epsilon });
        self.save()
    }

    fn save(&mut self) -> Result<(), RiskError> {
        let path = match &mut self.backing {
            Backing::Memory => return Ok(()),
            Backing::Store(persist) => return persist(&self.state).map_err(RiskError::Ledger),
            Backing::File(path) => &*path,
        };
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(|e| RiskError::Ledger(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(|e| RiskError::Ledger(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| RiskError::Ledger(format!("{}: {e}", path.display())))
    }
}
