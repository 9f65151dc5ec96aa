//! Tacit's Shamir secret-sharing MPC engine.
//!
//! Honest majority (`n >= 2t + 1`), generic over `ark_ff::PrimeField`. Dealerless
//! preprocessing (DN07 random and double sharings, random bits), vectorised online operations
//! (one network round per batch), and malicious security with abort: every multiplication is
//! verified in a batch, and all broadcasts checked for agreement, before any output opens.
//! Verified preprocessing can outlive its session ([`pooled`]): exported as a batch, kept by
//! the caller, loaded into a later session of the same cluster.
//!
//! Protocols run against the [`Transport`] trait; [`transport::memory`] runs n parties in one
//! process and [`transport::quic`] runs them over QUIC with mutual TLS.

pub mod compare;
pub mod engine;
pub mod error;
pub mod field;
pub mod fixed;
mod net;
pub mod party;
pub mod pooled;
pub mod prep;
pub mod shamir;
pub mod shares;
pub mod simulate;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod transport;
pub mod verify;

pub use engine::{Engine, Security, SessionStats};
pub use error::{Check, Culprit, MpcError};
pub use field::WireField;
pub use party::{PartyId, SessionId, MAX_PARTIES};
pub use pooled::{BatchError, BatchId, PrepBatch, PrepCounts, PrepMeter, PrepReading};
pub use shamir::{ParamError, Shamir};
pub use shares::{BeaverTriples, DoubleShares, RandomBits, RandomShares, Shares};
pub use transport::{Transport, TransportError, TransportStats};
