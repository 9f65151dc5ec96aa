//! Sealed-bid auctions on Tacit.
//!
//! Bidders commit `Poseidon(bid, salt)` on chain and deal Shamir shares of `(bid, salt)` and
//! of the bid's 64 bits to the nodes; after the deadline the nodes check every submission
//! inside the MPC (only a valid/invalid bit per bidder opens), compute the outcome with the
//! auction circuit on shares (only winners and price open), prove it collaboratively, and
//! anyone settles it on chain, where `SealedBidAuction` verifies the proof against the
//! commitments it stored.

pub mod bidder;
pub mod chain;
pub mod circuit;
pub mod local;
pub mod node;
pub mod outcome;

pub use outcome::{reference_outcome, AuctionKind, Outcome};

/// Failures of the auction crate.
#[derive(Debug, thiserror::Error)]
pub enum AuctionError {
    /// Bad parameters or arguments.
    #[error("invalid parameters: {0}")]
    Params(String),
    /// The circuit failed.
    #[error(transparent)]
    Circuit(#[from] tacit_circuits::CircuitError),
    /// The MPC failed (network or a detected cheat, naming its culprit).
    #[error(transparent)]
    Mpc(#[from] tacit_mpc_engine::MpcError),
    /// The embedded EVM failed.
    #[error(transparent)]
    Evm(#[from] tacit_contracts::ContractError),
    /// The contract refused a transaction (its custom error).
    #[error("the contract refused: {0}")]
    Rejected(String),
    /// Reading the chain gave something unexpected.
    #[error("chain: {0}")]
    Chain(String),
    /// A submission was refused (malformed, unauthenticated, or not matching the chain).
    #[error("submission refused: {0}")]
    Submission(String),
    /// The transport to a node failed.
    #[error(transparent)]
    Transport(#[from] tacit_mpc_engine::TransportError),
    /// The prover failed.
    #[error("prover: {0}")]
    Prover(String),
    /// The node's store failed.
    #[error("store: {0}")]
    Store(String),
}

impl From<tacit_prover::collaborative::CollaborativeError> for AuctionError {
    /// An engine failure (a cheat names its culprit) stays one; anything else is the prover's.
    fn from(e: tacit_prover::collaborative::CollaborativeError) -> Self {
        match e {
            tacit_prover::collaborative::CollaborativeError::Mpc(e) => Self::Mpc(e),
            other => Self::Prover(other.to_string()),
        }
    }
}
