//! Test harness: n parties in one process, and a transport that lets one party cheat (the
//! shared `tacit_mpc_engine::testing` support, also used by the applications' tests).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

pub use tacit_mpc_engine::testing::{add_to_element, Cheater, Rule, KIND_BROADCAST, KIND_DEAL};

/// A network of `n` parties over memory where party `cheater` uses `rule` once armed.
pub fn network_with_cheater(n: usize, cheater: usize, rule: Box<Rule>) -> (Vec<Arc<Cheater>>, Arc<Cheater>) {
    let (all, c) = tacit_mpc_engine::testing::network_with_cheater(n, cheater, rule);
    (all, c.expect("the cheater is one of the parties"))
}
