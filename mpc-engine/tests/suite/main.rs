//! Every integration test of this crate in one binary: one link and one copy of the generic
//! code they share, instead of one per file (most of the test build's time).

mod common;

mod engine_ops;
mod fixed;
mod intake_tls;
mod malicious;
mod pooled;
mod quic_engine;
mod quic_transport;
