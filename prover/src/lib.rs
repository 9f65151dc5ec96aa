//! Groth16 proving: keys, single prover, collaborative prover, export formats.
//!
//! * [`keys`]: circuit-specific setup (ark-groth16 0.6, BN254) and validated key files.
//! * [`qap`]: the prover as explicit steps — all linear in the witness except one pointwise
//!   product — so the collaborative prover can run the same steps on secret shares;
//!   [`qap::prove_single`] chains them and matches ark-groth16 exactly.
//! * [`committed`]: Groth16 with committed groups of values and a challenge hashed from
//!   their commitments (LegoGroth16 / gnark style), for circuits that check identities at a
//!   random point.
//! * [`snarkjs`]: `verification_key.json`, `proof.json`, `public.json` and EVM calldata in
//!   snarkjs's formats.

pub mod keys;
pub mod qap;
pub mod snarkjs;

pub mod collaborative;
pub mod committed;
