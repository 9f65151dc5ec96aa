//! Every integration test of this crate in one binary: one link and one copy of the generic
//! code they share, instead of one per file (most of the test build's time).

mod committed_registry;
mod committed_verifier;
mod journal;
mod poseidon;
mod verifier;
