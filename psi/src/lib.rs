//! Multi-party private set intersection for compliance queries on Tacit.
//!
//! Institutions (clients) ask a cluster of `n >= 3` nodes (`t < n/2`) how their sets of
//! items (flagged addresses, customer identifiers) overlap, in one of three modes: `set`
//! (each institution learns which of its own items are in every set, or in at least `q` of
//! them), `cardinality` (only the size of the intersection) and `sum` (the sum of the values
//! attached to intersecting items, released only when the intersection is large enough).
//! See `psi/README.md` for the protocol and exactly what each party learns.
//!
//! - [`input`]: CSV parsing and normalisation (EVM addresses with EIP-55 checks, UTF-8
//!   strings, duplicates merged, errors with line numbers).
//! - [`oprf`]: the threshold DH-OPRF over secp256k1 that turns items into pseudonymous tags.
//! - [`protocol`]: the node side, the institution side, the plaintext oracle and an
//!   in-process runner.
//! - [`committed`]: committed inputs (Poseidon Merkle commitments checked on shares) for
//!   `cardinality` and `sum` up to 2^12 items per institution.
//! - [`statement`]: the circuit proven for committed `cardinality` and `sum` (sorted committed
//!   tag lists, a merged list with multiplicities, log-derivative checks).
//! - [`proven`]: proven queries: committed tag lists, and the result with a collaborative
//!   proof of [`statement`].
//! - [`link`]: client–node channels and transcript recording (leakage tests).

pub mod committed;
pub mod input;
pub mod link;
pub mod oprf;
pub mod protocol;
pub mod proven;
pub mod statement;

pub use committed::{commitment, CommittedInput, MAX_COMMITTED_ITEMS};
pub use input::{InputError, InputSet, Item};
pub use protocol::{
    oracle, run_in_memory, run_institution, run_institution_proven, run_local, run_local_committed, run_node, Input,
    LocalRun, Mode, NodeConfig, NodeReport, PsiError, PsiOutput, RunOptions, MAX_ITEMS,
};
pub use tacit_mpc_engine;
