//! Threshold ECDSA for EVM accounts on the Tacit MPC engine (secp256k1).
//!
//! ECDSA from generic MPC (Dalskov, Orlandi, Keller, Shrishak, Shulman, ESORICS 2020): DKG
//! with Feldman VSS, commit-then-reveal and complaints; refresh and reshare; presignatures made
//! by all n nodes in batches (shared k, masked inversion, R opened in the exponent with
//! consistency checks, shared k⁻¹·x), each bound to one signer set and burned durably before
//! use; t+1 signing behind a policy gate every node enforces itself; a hash-chained, signed
//! audit log.

pub mod audit;
pub mod cluster;
pub mod curve;
pub mod dkg;
pub mod error;
pub mod eth;
pub mod keys;
pub mod node;
pub mod policy;
pub mod presign;
pub mod sign;
pub mod store;

pub use error::{PolicyViolation, Result, SignerError};
pub use k256;
pub use node::{Node, SignRequest};
pub use tacit_mpc_engine;
pub use zeroize;
