//! Groth16 proving: keys, single prover, collaborative prover, export formats.
