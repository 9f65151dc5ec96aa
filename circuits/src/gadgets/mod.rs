//! Gadgets: computations written once over [`Backend`](crate::Backend), each vectorised
//! (slices in, one backend call per layer for the whole batch).

pub mod commitment;
pub mod compare;
pub mod max;
pub mod poseidon;

pub use commitment::{commit, commitment};
pub use compare::{is_equal, is_zero, less_than, not, range_check, select, sums};
pub use max::{argmax, argmax_one_hot, max, top_two, top_two_one_hot, OneHotMax, TopTwo};
pub use poseidon::{params, poseidon_hash, poseidon_reference, PoseidonParams};
