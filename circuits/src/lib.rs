//! Computations written once over a [`Backend`], run by the `Plain`, `R1cs` and `Mpc`
//! backends.

pub mod backend;

pub use backend::{Backend, CircuitError, Result};
