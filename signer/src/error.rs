//! Signer errors. Every detected cheat names the party responsible.

use tacit_mpc_engine::{MpcError, PartyId};

/// Why the policy gate refused a request (each node decides this itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer valid approvals than the policy requires.
    #[error("{got} valid approvals, {need} required")]
    NotEnoughApprovals {
        /// Valid distinct approvals found.
        got: usize,
        /// Approvals the policy requires.
        need: usize,
    },
    /// An approval whose signature does not recover to the approver it names.
    #[error("forged approval claiming approver 0x{}", hex::encode(approver))]
    ForgedApproval {
        /// The approver the forged approval names.
        approver: [u8; 20],
    },
    /// An approval by someone who is not an approver.
    #[error("0x{} is not an approver", hex::encode(approver))]
    UnknownApprover {
        /// The signer of the approval.
        approver: [u8; 20],
    },
    /// The same approver counted twice.
    #[error("approver 0x{} approved twice", hex::encode(approver))]
    DuplicateApproval {
        /// The approver.
        approver: [u8; 20],
    },
    /// The intent's expiry has passed.
    #[error("the intent expired at {expiry} (now {now})")]
    Expired {
        /// Expiry (unix seconds).
        expiry: u64,
        /// Node time.
        now: u64,
    },
    /// The request id was used before.
    #[error("request id {} was already used", hex::encode(request_id))]
    RequestReused {
        /// The request id.
        request_id: [u8; 32],
    },
    /// The destination is not on the allowlist.
    #[error("destination 0x{} is not on the allowlist", hex::encode(to))]
    DestinationNotAllowed {
        /// The destination.
        to: [u8; 20],
    },
    /// The chain is not on the allowlist.
    #[error("chain {chain_id} is not on the allowlist")]
    ChainNotAllowed {
        /// The chain id.
        chain_id: u64,
    },
    /// The rolling 24-hour spend would exceed the limit.
    #[error("spend {spent} + {value} over 24h exceeds the limit {limit}")]
    SpendLimit {
        /// Spent in the window so far.
        spent: u128,
        /// This request's value.
        value: u128,
        /// The limit.
        limit: u128,
    },
    /// The request is not well formed (data hash mismatch, wrong key, wrong kind fields).
    #[error("malformed intent: {0}")]
    Malformed(String),
    /// A policy change without enough approvals, or before its time lock.
    #[error("policy change refused: {0}")]
    PolicyChange(String),
}

/// Signer failures.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The MPC engine failed or detected a cheat (culprit inside).
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// A party deviated from the signer protocol; it is named.
    #[error("{party} cheated: {reason}")]
    Cheater {
        /// The culprit.
        party: PartyId,
        /// What it did.
        reason: String,
    },
    /// One of several parties deviated; the check cannot tell which.
    #[error("one of {parties:?} cheated: {reason}")]
    OneOf {
        /// The suspects.
        parties: Vec<PartyId>,
        /// What failed.
        reason: String,
    },
    /// The policy gate refused the request.
    #[error("policy rejected the request: {0}")]
    Policy(#[from] PolicyViolation),
    /// The presignature was already used (burn record present).
    #[error("presignature {presig} was already used (refused by {refused_by})")]
    PresignatureBurned {
        /// Presignature id (hex).
        presig: String,
        /// The node holding the burn record.
        refused_by: PartyId,
    },
    /// The presignature is bound to another signer set, epoch or key.
    #[error("presignature {presig} refused by {node}: {reason}")]
    PresignatureMismatch {
        /// Presignature id (hex).
        presig: String,
        /// The refusing node.
        node: PartyId,
        /// Why.
        reason: String,
    },
    /// A signer node refused to take part (its own reason).
    #[error("{node} refused: {reason}")]
    Refused {
        /// The refusing node.
        node: PartyId,
        /// Its reason.
        reason: String,
    },
    /// Shares of another epoch.
    #[error("epoch {got} refused: the key is at epoch {current}")]
    StaleEpoch {
        /// Presented epoch.
        got: u64,
        /// Current epoch.
        current: u64,
    },
    /// Storage failure.
    #[error("store: {0}")]
    Store(String),
    /// Encryption at rest failed (wrong key or tampered record).
    #[error("decryption failed for {0} (wrong key or tampered record)")]
    Decrypt(String),
    /// The combined signature did not verify (should be impossible once shares verified).
    #[error("combined signature failed verification")]
    BadSignature,
    /// Bad caller input.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Audit log problem.
    #[error("audit log: {0}")]
    Audit(String),
}

impl SignerError {
    /// Parties this error blames.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            Self::Mpc(e) => e.culprits(),
            Self::Cheater { party, .. } => vec![*party],
            Self::OneOf { parties, .. } => parties.clone(),
            _ => Vec::new(),
        }
    }

    /// The party blamed with certainty.
    pub fn identified(&self) -> Option<PartyId> {
        match self {
            Self::Mpc(e) => e.identified(),
            Self::Cheater { party, .. } => Some(*party),
            _ => None,
        }
    }
}

/// Signer result.
pub type Result<T, E = SignerError> = std::result::Result<T, E>;
