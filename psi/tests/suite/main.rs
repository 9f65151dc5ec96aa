//! Every integration test of this crate in one binary: one link and one copy of the generic
//! code they share, instead of one per file (most of the test build's time).

mod key;
mod proven;
mod psi;
mod statement;
