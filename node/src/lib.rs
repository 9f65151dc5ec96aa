//! The Tacit party node daemon (`tacit-node`): one per organisation, long-running.
//!
//! - [`config`]: the `party.toml` file (party index, data dir, peer mesh, job API, metrics,
//!   secret-key source, client policy, pools, timeouts).
//! - [`secret`]: the at-rest key from a file, an environment variable or a passphrase
//!   (Argon2id, salt and parameters kept in the store).
//! - [`store`]: the node's embedded ACID store (redb): job records, a hash-chained audit log,
//!   per-client budgets, sealed secrets. The signer's key share and presignatures live in the
//!   signer's own encrypted store ([`tacit_signer::store::Store`]) under the same key.
//! - [`api`]: the job API's wire types (JSON, size-capped, validated), served over QUIC with
//!   mutual TLS (the client certificate's fingerprint is checked against the policy).
//! - [`mesh`]: the peer mesh (QUIC, mutual TLS) that reconnects after a peer restarts, and
//!   [`coord`]: how the nodes agree on the next job (party 1 proposes, every node checks it
//!   holds the same authorised job, then all run it under one session id).
//! - [`jobs`]: job execution (signer DKG, refresh, reshare, presign, sign, auction.bench).
//! - [`auction`]: hosted sealed-bid auctions (`auction.host`, the bid endpoint, `auction.run`)
//!   over the node's own view of the chain; [`psi`], [`risk`]: queries institutions join.
//! - [`prep`]: the pool of MPC preprocessing batches MPC jobs load (made in the background,
//!   sealed, burned durably before use).
//! - [`metrics`]: Prometheus text on a tiny HTTP endpoint.
//! - [`daemon`]: everything wired together, with graceful shutdown.
//! - [`client`]: the SDK client (sends one job to every node).
//! - [`init`]: writes a local N-party config set with certificates.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod api;
pub mod auction;
pub mod cli;
pub mod client;
pub mod config;
pub mod coord;
pub mod daemon;
pub mod drill;
pub mod error;
pub mod init;
pub mod jobs;
pub mod lobby;
pub mod mesh;
pub mod metrics;
pub mod prep;
pub mod proving;
pub mod psi;
pub mod relay;
pub mod risk;
pub mod secret;
pub mod store;

pub use error::{NodeError, Result};
