//! Tacit's Shamir secret-sharing MPC engine.
//!
//! Honest majority (`n >= 2t + 1`), generic over `ark_ff::PrimeField`. Dealerless
//! preprocessing, vectorised online operations (one network round per batch), and malicious
//! security with abort by batched distributed zero-knowledge verification of every
//! multiplication before any output is opened.

pub mod party;
pub mod transport;

pub use party::{PartyId, SessionId, MAX_PARTIES};
pub use transport::{Transport, TransportError, TransportStats};
