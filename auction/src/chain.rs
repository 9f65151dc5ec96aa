//! `SealedBidAuction` on chain: deployment, commitments, reads and settlement, ABI by
//! alloy-sol-types. The contract's artifacts are committed under `auction/artifacts/` (built
//! by `contracts/compile.cjs` with the pinned solc), so nothing compiles at run time.

use alloy_sol_types::{sol, SolCall, SolError, SolEvent, SolInterface, SolValue};
use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use revm::primitives::{Address, U256};
use tacit_contracts::{CallResult, LocalChain, Outcome as EvmOutcome};
use tacit_prover::snarkjs::EvmProof;

use crate::outcome::AuctionKind;
use crate::AuctionError;

// The ABI comes from the committed artifact, so it cannot drift from the compiled contract.
sol!(
    #[allow(missing_docs)]
    SealedBidAuction,
    "artifacts/SealedBidAuction.json"
);

const ARTIFACT_JSON: &str = include_str!("../artifacts/SealedBidAuction.json");

/// Converts a field element to a `uint256`.
pub fn fr_to_u256(x: Fr) -> U256 {
    U256::from_be_slice(&x.into_bigint().to_bytes_be())
}

/// Converts a `uint256` below r to a field element.
pub fn u256_to_fr(x: U256) -> Result<Fr, AuctionError> {
    let r = U256::from_be_slice(&Fr::MODULUS.to_bytes_be());
    if x >= r {
        return Err(AuctionError::Chain("word is not below r".into()));
    }
    Ok(Fr::from_be_bytes_mod_order(&x.to_be_bytes::<32>()))
}

/// Why a transaction failed, decoded from the contract's custom errors.
fn failure(r: &CallResult) -> AuctionError {
    match &r.outcome {
        EvmOutcome::Revert(data) => match SealedBidAuction::SealedBidAuctionErrors::abi_decode(data) {
            Ok(e) => AuctionError::Rejected(error_name(&e).to_string()),
            Err(_) => AuctionError::Rejected(format!("revert 0x{}", hex::encode(data))),
        },
        EvmOutcome::Halt(reason) => AuctionError::Rejected(format!("halted: {reason}")),
        EvmOutcome::Success(_) => AuctionError::Rejected("unexpected success".into()),
    }
}

fn error_name(e: &SealedBidAuction::SealedBidAuctionErrors) -> &'static str {
    use SealedBidAuction::SealedBidAuctionErrors as E;
    match e {
        E::BadParameters(_) => SealedBidAuction::BadParameters::SIGNATURE,
        E::BiddingClosed(_) => SealedBidAuction::BiddingClosed::SIGNATURE,
        E::BiddingOpen(_) => SealedBidAuction::BiddingOpen::SIGNATURE,
        E::AlreadyCommitted(_) => SealedBidAuction::AlreadyCommitted::SIGNATURE,
        E::DuplicateCommitment(_) => SealedBidAuction::DuplicateCommitment::SIGNATURE,
        E::AuctionFull(_) => SealedBidAuction::AuctionFull::SIGNATURE,
        E::NotAFieldElement(_) => SealedBidAuction::NotAFieldElement::SIGNATURE,
        E::AlreadySettled(_) => SealedBidAuction::AlreadySettled::SIGNATURE,
        E::MalformedResult(_) => SealedBidAuction::MalformedResult::SIGNATURE,
        E::ProofRejected(_) => SealedBidAuction::ProofRejected::SIGNATURE,
    }
}

fn succeeded(r: CallResult) -> Result<CallResult, AuctionError> {
    match r.outcome {
        EvmOutcome::Success(_) => Ok(r),
        _ => Err(failure(&r)),
    }
}

/// Parameters the contract is created with.
#[derive(Clone, Debug)]
pub struct AuctionParams {
    /// Kind (and units).
    pub kind: AuctionKind,
    /// Most bidders.
    pub capacity: usize,
    /// Commitments are accepted while the block timestamp is below this.
    pub deadline: u64,
    /// Hash of the node set's cluster configuration.
    pub node_set: [u8; 32],
}

/// Deploys a `SealedBidAuction` using the verifier and Poseidon contracts at the given addresses.
pub fn deploy(
    chain: &mut LocalChain,
    verifier: Address,
    hasher: Address,
    params: &AuctionParams,
) -> Result<Address, AuctionError> {
    let artifact = tacit_contracts::app_artifact("SealedBidAuction", ARTIFACT_JSON)?;
    let mut code = artifact.bytecode;
    code.extend(
        (
            verifier,
            hasher,
            U256::from(params.kind.code()),
            U256::from(params.kind.units()),
            U256::from(params.capacity),
            U256::from(params.deadline),
            revm::primitives::B256::from(params.node_set),
        )
            .abi_encode_params(),
    );
    Ok(chain.deploy("SealedBidAuction", code)?)
}

/// Posts `commitment` from `bidder`; returns the bidder's index and the transaction's gas.
pub fn commit(
    chain: &mut LocalChain,
    auction: Address,
    bidder: Address,
    commitment: Fr,
) -> Result<(usize, u64), AuctionError> {
    let data = SealedBidAuction::commitCall { commitment: fr_to_u256(commitment) }.abi_encode();
    let r = succeeded(chain.call_from(bidder, auction, data)?)?;
    let EvmOutcome::Success(out) = &r.outcome else { return Err(failure(&r)) };
    let index =
        SealedBidAuction::commitCall::abi_decode_returns(out).map_err(|e| AuctionError::Chain(e.to_string()))?;
    Ok((usize::try_from(index).map_err(|_| AuctionError::Chain("index overflows".into()))?, r.tx_gas))
}

fn view<C: SolCall>(chain: &mut LocalChain, auction: Address, call: C) -> Result<C::Return, AuctionError> {
    let out = chain.view(auction, call.abi_encode())?;
    C::abi_decode_returns(&out).map_err(|e| AuctionError::Chain(e.to_string()))
}

/// What the nodes read from the contract before running the auction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnChainBids {
    /// The contract (the accumulator's seed).
    pub address: Address,
    /// Commitments in order.
    pub commitments: Vec<Fr>,
    /// The address that posted each commitment.
    pub bidders: Vec<Address>,
    /// The contract's accumulator over the commitments.
    pub accumulator: Fr,
}

impl OnChainBids {
    /// The accumulator's start: the contract's address as a field element.
    pub fn seed(&self) -> Fr {
        Fr::from_be_bytes_mod_order(self.address.as_slice())
    }
}

/// Reads every commitment and bidder.
pub fn read_bids(chain: &mut LocalChain, auction: Address) -> Result<OnChainBids, AuctionError> {
    let count = view(chain, auction, SealedBidAuction::bidderCountCall {})?;
    let count = usize::try_from(count).map_err(|_| AuctionError::Chain("bidder count overflows".into()))?;
    let mut commitments = Vec::with_capacity(count);
    let mut bidders = Vec::with_capacity(count);
    for i in 0..count {
        commitments.push(u256_to_fr(view(chain, auction, SealedBidAuction::commitmentsCall(U256::from(i)))?)?);
        bidders.push(view(chain, auction, SealedBidAuction::biddersCall(U256::from(i)))?);
    }
    let accumulator = u256_to_fr(view(chain, auction, SealedBidAuction::accumulatorCall {})?)?;
    Ok(OnChainBids { address: auction, commitments, bidders, accumulator })
}

/// Commitment `index` and the address that posted it, if there is one.
pub fn read_bid(chain: &mut LocalChain, auction: Address, index: u32) -> Result<Option<(Fr, Address)>, AuctionError> {
    let Some(bidder) = read_bidder(chain, auction, index)? else { return Ok(None) };
    let commitment = u256_to_fr(view(chain, auction, SealedBidAuction::commitmentsCall(U256::from(index)))?)?;
    Ok(Some((commitment, bidder)))
}

/// The address that posted commitment `index`, if there is one (what a node checks a share
/// packet's signer against).
pub fn read_bidder(chain: &mut LocalChain, auction: Address, index: u32) -> Result<Option<Address>, AuctionError> {
    let count = view(chain, auction, SealedBidAuction::bidderCountCall {})?;
    if U256::from(index) >= count {
        return Ok(None);
    }
    Ok(Some(view(chain, auction, SealedBidAuction::biddersCall(U256::from(index)))?))
}

/// The recorded outcome, once settled (the excluded bidders are in the `Settled` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The price.
    pub price: u64,
    /// Winners, highest-ranked first.
    pub winners: Vec<usize>,
}

fn indices(v: Vec<U256>) -> Result<Vec<usize>, AuctionError> {
    v.into_iter().map(|x| usize::try_from(x).map_err(|_| AuctionError::Chain("index overflows".into()))).collect()
}

/// Reads the settlement; `None` while unsettled.
pub fn read_settlement(chain: &mut LocalChain, auction: Address) -> Result<Option<Settlement>, AuctionError> {
    if !view(chain, auction, SealedBidAuction::settledCall {})? {
        return Ok(None);
    }
    let price = view(chain, auction, SealedBidAuction::priceCall {})?;
    Ok(Some(Settlement {
        price: u64::try_from(price).map_err(|_| AuctionError::Chain("price overflows".into()))?,
        winners: indices(view(chain, auction, SealedBidAuction::winnersCall {})?)?,
    }))
}

/// What a settlement transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettleReceipt {
    /// Execution gas (without the 21,000 and calldata).
    pub execution_gas: u64,
    /// Gas as a receipt reports it.
    pub tx_gas: u64,
    /// The excluded bidders the `Settled` event lists.
    pub excluded: Vec<usize>,
}

/// Calls `settle`.
pub fn settle(
    chain: &mut LocalChain,
    from: Address,
    auction: Address,
    outcome: &crate::Outcome,
    proof: &EvmProof,
) -> Result<SettleReceipt, AuctionError> {
    let words: Vec<U256> = proof.proof.iter().map(|w| U256::from_be_bytes(*w)).collect();
    let proof: [U256; 8] = words.try_into().map_err(|_| AuctionError::Chain("proof is not 8 words".into()))?;
    let call = SealedBidAuction::settleCall {
        price_: U256::from(outcome.price),
        winnerList: outcome.winners.iter().map(|w| U256::from(*w)).collect(),
        excludedList: outcome.excluded.iter().map(|w| U256::from(*w)).collect(),
        proof,
    };
    let r = succeeded(chain.call_from(from, auction, call.abi_encode())?)?;
    let mut excluded = Vec::new();
    for log in &r.logs {
        if let Ok(event) = SealedBidAuction::Settled::decode_log_data(&log.data) {
            excluded = indices(event.excluded)?;
        }
    }
    Ok(SettleReceipt { execution_gas: r.execution_gas, tx_gas: r.tx_gas, excluded })
}

/// An auction contract as deployed: its parameters (read back from its immutables) and the
/// contracts it calls.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// Kind, capacity, deadline and node set.
    pub params: AuctionParams,
    /// Its Groth16 verifier.
    pub verifier: Address,
    /// Its Poseidon contract.
    pub hasher: Address,
}

/// Reads an auction contract's parameters.
pub fn read_deployed(chain: &mut LocalChain, auction: Address) -> Result<Deployed, AuctionError> {
    if chain.code_hash(auction).is_none_or(|h| h == revm::primitives::KECCAK_EMPTY) {
        return Err(AuctionError::Chain(format!("no contract at {auction}")));
    }
    let word = |x: U256, what: &str| -> Result<u64, AuctionError> {
        u64::try_from(x).map_err(|_| AuctionError::Chain(format!("{what} overflows")))
    };
    let units = usize::try_from(view(chain, auction, SealedBidAuction::unitsCall {})?)
        .map_err(|_| AuctionError::Chain("units overflow".into()))?;
    let kind = match view(chain, auction, SealedBidAuction::kindCall {})? {
        0 if units == 1 => AuctionKind::FirstPrice,
        1 if units == 1 => AuctionKind::Vickrey,
        2 => AuctionKind::Uniform { units },
        code => return Err(AuctionError::Chain(format!("unknown auction kind {code} with {units} units"))),
    };
    let capacity = usize::try_from(view(chain, auction, SealedBidAuction::capacityCall {})?)
        .map_err(|_| AuctionError::Chain("capacity overflows".into()))?;
    let deadline = word(view(chain, auction, SealedBidAuction::deadlineCall {})?, "deadline")?;
    let node_set = view(chain, auction, SealedBidAuction::nodeSetCall {})?.0;
    Ok(Deployed {
        params: AuctionParams { kind, capacity, deadline, node_set },
        verifier: view(chain, auction, SealedBidAuction::verifierCall {})?,
        hasher: view(chain, auction, SealedBidAuction::hasherCall {})?,
    })
}

/// Checks that a deployed auction (as [`read_deployed`] read it) is one this node set may
/// run: it names exactly `node_set`, and its verifier holds `vk` (the verifier's code equals a
/// fresh deployment of the verifier for `vk`, the key being in the code's immutables). The
/// shape needs no check here: the proving key is checked against the contract's shape.
pub fn check_deployed(
    chain: &mut LocalChain,
    deployed: &Deployed,
    vk: &ark_groth16::VerifyingKey<ark_bn254::Bn254>,
    node_set: [u8; 32],
) -> Result<(), AuctionError> {
    if deployed.params.node_set != node_set {
        return Err(AuctionError::Chain("the contract names another node set".into()));
    }
    let mut scratch = LocalChain::new();
    let reference = scratch.deploy_verifier(vk)?;
    if scratch.code_hash(reference) != chain.code_hash(deployed.verifier) {
        return Err(AuctionError::Chain(format!("the verifier at {} does not hold this key", deployed.verifier)));
    }
    Ok(())
}

/// The node set a contract records: a hash of the nodes' certificate fingerprints in party
/// order.
pub fn node_set_hash<'a>(fingerprints: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for fp in fingerprints {
        hasher.update(fp);
    }
    *hasher.finalize().as_bytes()
}
