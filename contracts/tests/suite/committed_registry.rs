//! `CommittedResultRegistry` on revm with real committed proofs: owners post their groups'
//! commitments, a result is published only over exactly those, once; every refusal is
//! checked by its error.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use revm::primitives::Address;
use tacit_contracts::bench::committed_squares_proof;
use tacit_contracts::registry::{registry_error, result_hash};
use tacit_contracts::{CommittedEvmProof, LocalChain};

const QUERY: [u8; 32] = [7; 32];

fn owner(k: u8) -> Address {
    Address::with_last_byte(0x40 + k)
}

/// A chain with a verifier for a proof of 2 inputs and 3 groups, and a registry whose first
/// two groups are owned.
fn deployed() -> (LocalChain, Address, CommittedEvmProof) {
    let (vk, proof) = committed_squares_proof(2, 3, 0x5eed).unwrap();
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&vk).unwrap();
    let registry = chain.deploy_committed_registry(verifier, 2).unwrap();
    (chain, registry, proof)
}

#[test]
fn a_result_is_published_once_over_the_commitments_its_owners_posted() {
    let (mut chain, registry, proof) = deployed();
    let refused = |r: &tacit_contracts::CallResult| registry_error(r).unwrap_or("none");
    // Nothing happens to a query that was never opened.
    let r = chain.post_commitment(registry, owner(0), &QUERY, 0, &proof.commitments[0]).unwrap();
    assert_eq!(refused(&r), "NoQuery");
    let r = chain.open_query(registry, &QUERY, &[owner(0)]).unwrap();
    assert_eq!(refused(&r), "WrongOwners");
    let r = chain.open_query(registry, &QUERY, &[owner(0), Address::ZERO]).unwrap();
    assert_eq!(refused(&r), "WrongOwners");
    let r = chain.open_query(registry, &QUERY, &[owner(0), owner(1)]).unwrap();
    assert!(matches!(r.outcome, tacit_contracts::Outcome::Success(_)), "{r:?}");
    assert_eq!(refused(&chain.open_query(registry, &QUERY, &[owner(2), owner(3)]).unwrap()), "QueryExists");

    // Not before every owner has posted.
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &proof).unwrap()), "MissingCommitment");
    let r = chain.post_commitment(registry, owner(1), &QUERY, 0, &proof.commitments[0]).unwrap();
    assert_eq!(refused(&r), "NotOwner");
    let r = chain.post_commitment(registry, owner(0), &QUERY, 2, &proof.commitments[2]).unwrap();
    assert_eq!(refused(&r), "NotOwner", "the third group is not owned");
    chain.post_commitment(registry, owner(0), &QUERY, 0, &proof.commitments[0]).unwrap();
    let r = chain.post_commitment(registry, owner(0), &QUERY, 0, &proof.commitments[1]).unwrap();
    assert_eq!(refused(&r), "AlreadyPosted");
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &proof).unwrap()), "MissingCommitment");
    let posted = chain.post_commitment(registry, owner(1), &QUERY, 1, &proof.commitments[1]).unwrap();
    println!("post: {} execution gas", posted.execution_gas);

    // A proof whose owned group is not the posted one (the groups swapped: itself invalid too,
    // but refused before the verifier runs).
    let mut swapped = proof.clone();
    swapped.commitments.swap(0, 1);
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &swapped).unwrap()), "CommitmentMismatch");
    // The unowned group may be anything the verifier accepts: a changed one is an invalid proof.
    let mut unowned = proof.clone();
    unowned.commitments[2] = proof.commitments[0];
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &unowned).unwrap()), "InvalidProof");
    let mut forged = proof.clone();
    forged.public_inputs[0][31] ^= 1;
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &forged).unwrap()), "InvalidProof");
    let mut short = proof.clone();
    short.public_inputs.pop();
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &short).unwrap()), "WrongCall");
    // Calldata for another function of the verifier: it reverts, an invalid proof here.
    let mut other = proof.calldata();
    other[0] ^= 1;
    let call = tacit_contracts::registry::RegistryAbi::publishCall { queryId: QUERY.into(), call: other.into() };
    let r = chain.call(registry, alloy_sol_types::SolCall::abi_encode(&call)).unwrap();
    assert_eq!(refused(&r), "InvalidProof");
    assert_eq!(chain.committed_result(registry, &QUERY).unwrap(), None);

    let r = chain.publish_committed(registry, &QUERY, &proof).unwrap();
    assert!(matches!(r.outcome, tacit_contracts::Outcome::Success(_)), "{r:?}");
    assert_eq!(r.logs.len(), 1, "ResultPublished");
    println!("publish: {} execution gas", r.execution_gas);
    assert_eq!(chain.committed_result(registry, &QUERY).unwrap(), Some(result_hash(&proof)));
    assert_eq!(refused(&chain.publish_committed(registry, &QUERY, &proof).unwrap()), "AlreadyPublished");
}

#[test]
fn a_registry_owns_one_to_all_groups() {
    let (vk, _) = committed_squares_proof(1, 2, 0x5eee).unwrap();
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&vk).unwrap();
    assert!(chain.deploy_committed_registry(verifier, 0).is_err());
    assert!(chain.deploy_committed_registry(verifier, 3).is_err());
    assert!(chain.deploy_committed_registry(verifier, 2).is_ok());
}
