//! Computations written once over a [`Backend`], run by the `Plain`, `R1cs` and `Mpc`
//! backends.

pub mod backend;
pub mod gadgets;
pub mod mpc;
pub mod plain;
pub mod r1cs;
pub mod sample;

pub use backend::{Backend, CircuitError, Result};
pub use plain::Plain;
pub use r1cs::R1cs;
