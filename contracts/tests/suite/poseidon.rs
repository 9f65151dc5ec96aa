//! The Solidity Poseidon against circomlib's parameters as the circuits use them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alloy_sol_types::{sol, SolCall};
use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, UniformRand};
use rand::SeedableRng;
use revm::primitives::U256;
use tacit_circuits::gadgets::poseidon_reference;
use tacit_contracts::poseidon::poseidon_t3_solidity;
use tacit_contracts::{LocalChain, Outcome};

sol! {
    function poseidon(uint256 a, uint256 b) external pure returns (uint256);
}

fn u256(x: Fr) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

#[test]
fn generated_source_is_committed() {
    let fresh = poseidon_t3_solidity().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sol/PoseidonT3.sol");
    if std::env::var_os("TACIT_WRITE_SOL").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == fresh,
        "sol/PoseidonT3.sol is stale: rerun with TACIT_WRITE_SOL=1, then node compile.cjs --write"
    );
}

#[test]
fn matches_the_circuit_poseidon_and_rejects_non_field_inputs() {
    let mut chain = LocalChain::new();
    let hasher = chain.deploy_poseidon().unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let mut gas = 0;
    let mut pairs: Vec<(Fr, Fr)> = vec![(Fr::from(1u64), Fr::from(2u64)), (Fr::from(0u64), Fr::from(0u64))];
    pairs.extend((0..8).map(|_| (Fr::rand(&mut rng), Fr::rand(&mut rng))));
    for (a, b) in pairs {
        let data = poseidonCall { a: u256(a), b: u256(b) }.abi_encode();
        let r = chain.call(hasher, data).unwrap();
        let Outcome::Success(out) = &r.outcome else { panic!("{:?}", r.outcome) };
        let got = poseidonCall::abi_decode_returns(out).unwrap();
        assert_eq!(got, u256(poseidon_reference(&[a, b]).unwrap()));
        gas = r.execution_gas;
    }
    println!("PoseidonT3.poseidon execution gas: {gas}");
    // circomlib's known answer: Poseidon([1, 2]).
    let known = U256::from_str_radix("115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a", 16).unwrap();
    let r = chain.call(hasher, poseidonCall { a: U256::from(1), b: U256::from(2) }.abi_encode()).unwrap();
    let Outcome::Success(out) = &r.outcome else { panic!() };
    assert_eq!(poseidonCall::abi_decode_returns(out).unwrap(), known);
    let r_mod = U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
    let r = chain.call(hasher, poseidonCall { a: r_mod, b: U256::from(2) }.abi_encode()).unwrap();
    assert!(matches!(r.outcome, Outcome::Revert(_)));
}
