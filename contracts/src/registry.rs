//! `CommittedResultRegistry`: results proven with committed groups, published over
//! commitments their owners posted themselves.
//!
//! A query is opened with one account per *owned* group (the first `ownedGroups` groups of
//! the proofs, e.g. one per institution of a PSI query). Each owner posts its group's
//! commitment `D_g` from its own account, once. `publish` takes the committed verifier's whole
//! calldata ([`CommittedEvmProof::calldata`]). It accepts the result only if every owner has
//! posted, every owned group of the proof is exactly the posted commitment, and the verifier
//! accepts the proof. It then stores `keccak256(publicInputs)` and emits
//! `ResultPublished(queryId, publisher, publicInputs)`, and refuses a second result for the
//! query. A reader of the result therefore knows it was computed from what each named
//! account committed to: a third party cannot substitute a group. Reverts carry the custom
//! errors of [`RegistryAbi`].

use revm::primitives::{keccak256, Address, U256};

use crate::committed::CommittedEvmProof;
use crate::{parse_artifact, Artifact, CallResult, ContractError, LocalChain, Result, Word};

alloy_sol_types::sol!(
    /// The registry's ABI, read from its compiled artifact (functions and errors).
    #[allow(missing_docs)]
    #[sol(all_derives)]
    RegistryAbi,
    "artifacts/CommittedResultRegistry.json"
);

const REGISTRY_JSON: &str = include_str!("../artifacts/CommittedResultRegistry.json");

/// The committed `CommittedResultRegistry` artifact.
pub fn committed_registry_artifact() -> Result<Artifact> {
    parse_artifact("CommittedResultRegistry", REGISTRY_JSON)
}

/// Creation code of a registry over the committed verifier at `verifier`, whose first
/// `owned_groups` groups belong to a query's accounts.
pub fn committed_registry_deploy_code(verifier: Address, owned_groups: usize) -> Result<Vec<u8>> {
    let mut code = committed_registry_artifact()?.bytecode;
    code.extend(alloy_sol_types::SolValue::abi_encode_params(&(verifier, U256::from(owned_groups))));
    Ok(code)
}

/// What the registry stores for a published proof: `keccak256` of its packed public inputs
/// (made nonzero, as the contract does).
pub fn result_hash(proof: &CommittedEvmProof) -> Word {
    let packed: Vec<u8> = proof.public_inputs.iter().flatten().copied().collect();
    let h: Word = keccak256(packed).0;
    if h == [0; 32] {
        let mut one = [0; 32];
        one[31] = 1;
        return one;
    }
    h
}

/// The name of the registry error a reverted call returned, if it is one of [`RegistryAbi`]'s.
pub fn registry_error(result: &CallResult) -> Option<&'static str> {
    use alloy_sol_types::SolInterface;
    let crate::Outcome::Revert(data) = &result.outcome else { return None };
    let error = RegistryAbi::RegistryAbiErrors::abi_decode(data).ok()?;
    Some(match error {
        RegistryAbi::RegistryAbiErrors::BadOwnedGroups(_) => "BadOwnedGroups",
        RegistryAbi::RegistryAbiErrors::QueryExists(_) => "QueryExists",
        RegistryAbi::RegistryAbiErrors::NoQuery(_) => "NoQuery",
        RegistryAbi::RegistryAbiErrors::WrongOwners(_) => "WrongOwners",
        RegistryAbi::RegistryAbiErrors::NotOwner(_) => "NotOwner",
        RegistryAbi::RegistryAbiErrors::AlreadyPosted(_) => "AlreadyPosted",
        RegistryAbi::RegistryAbiErrors::AlreadyPublished(_) => "AlreadyPublished",
        RegistryAbi::RegistryAbiErrors::MissingCommitment(_) => "MissingCommitment",
        RegistryAbi::RegistryAbiErrors::WrongCall(_) => "WrongCall",
        RegistryAbi::RegistryAbiErrors::CommitmentMismatch(_) => "CommitmentMismatch",
        RegistryAbi::RegistryAbiErrors::InvalidProof(_) => "InvalidProof",
    })
}

impl LocalChain {
    /// Deploys a `CommittedResultRegistry` over the committed verifier at `verifier`.
    pub fn deploy_committed_registry(&mut self, verifier: Address, owned_groups: usize) -> Result<Address> {
        self.deploy("CommittedResultRegistry", committed_registry_deploy_code(verifier, owned_groups)?)
    }

    /// Opens `query` at `registry` with `owners` (one per owned group, in group order).
    pub fn open_query(&mut self, registry: Address, query: &Word, owners: &[Address]) -> Result<CallResult> {
        let call = RegistryAbi::openCall { queryId: (*query).into(), owners: owners.to_vec() };
        self.call(registry, alloy_sol_types::SolCall::abi_encode(&call))
    }

    /// Posts `commitment` (`D_g` as `(x, y)` words) for group `slot` of `query`, from `owner`.
    pub fn post_commitment(
        &mut self,
        registry: Address,
        owner: Address,
        query: &Word,
        slot: usize,
        commitment: &[Word; 2],
    ) -> Result<CallResult> {
        let call = RegistryAbi::postCall {
            queryId: (*query).into(),
            slot: U256::from(slot),
            x: U256::from_be_bytes(commitment[0]),
            y: U256::from_be_bytes(commitment[1]),
        };
        self.call_from(owner, registry, alloy_sol_types::SolCall::abi_encode(&call))
    }

    /// Publishes the result `proof` proves for `query`.
    pub fn publish_committed(
        &mut self,
        registry: Address,
        query: &Word,
        proof: &CommittedEvmProof,
    ) -> Result<CallResult> {
        let call = RegistryAbi::publishCall { queryId: (*query).into(), call: proof.calldata().into() };
        self.call(registry, alloy_sol_types::SolCall::abi_encode(&call))
    }

    /// The stored hash of `query`'s published public inputs ([`result_hash`]), if published.
    pub fn committed_result(&mut self, registry: Address, query: &Word) -> Result<Option<Word>> {
        let call = RegistryAbi::resultOfCall { queryId: (*query).into() };
        let out = self.view(registry, alloy_sol_types::SolCall::abi_encode(&call))?;
        let word: Word = out
            .get(..32)
            .and_then(|w| w.try_into().ok())
            .ok_or_else(|| ContractError::Evm("resultOf returned no word".into()))?;
        Ok((word != [0; 32]).then_some(word))
    }
}
