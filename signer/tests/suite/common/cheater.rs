//! The engine's shared cheating transport (`tacit_mpc_engine::testing`), armed from the start.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

#[allow(unused_imports)]
pub use tacit_mpc_engine::testing::{Cheater, Rule, KIND_BROADCAST, KIND_BYTES, KIND_DIGEST};

/// `n` parties over memory where party `cheater` applies `rule` to its outgoing messages.
pub fn network_with_cheater(n: usize, cheater: usize, rule: Box<Rule>) -> Vec<Arc<Cheater>> {
    let (all, c) = tacit_mpc_engine::testing::network_with_cheater(n, cheater, rule);
    c.expect("the cheater is one of the parties").arm();
    all
}
