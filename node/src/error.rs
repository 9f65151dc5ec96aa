//! Node errors. Errors that concern a peer or a client name it.

use tacit_mpc_engine::{PartyId, TransportError};

/// Result alias.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// What can go wrong in a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is unusable.
    #[error("config: {0}")]
    Config(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// A sealed record did not decrypt (wrong key or tampering).
    #[error("store: record {0} does not decrypt (wrong key or tampered)")]
    Decrypt(String),
    /// A client request was malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A client is not allowed to run a job type.
    #[error("client {client} is not authorised for {job}")]
    Unauthorised {
        /// Client certificate fingerprint (hex).
        client: String,
        /// The job type.
        job: String,
    },
    /// A peer refused or failed a job; it is named.
    #[error("{peer} refused job {job}: {reason}")]
    PeerRefused {
        /// The peer.
        peer: PartyId,
        /// Job id (hex).
        job: String,
        /// Its reason.
        reason: String,
    },
    /// A peer sent a malformed coordination message.
    #[error("{peer} sent a malformed message: {reason}")]
    Malformed {
        /// The peer.
        peer: PartyId,
        /// What was wrong.
        reason: String,
    },
    /// Transport failure (names the peer).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The signer refused or failed (culprits inside).
    #[error(transparent)]
    Signer(#[from] tacit_signer::SignerError),
    /// The other nodes finished this job while this node was not part of it (e.g. it was killed
    /// after sending its last message): whatever the job stores was not stored here.
    #[error("{leader} and the other nodes finished this job in attempt {attempt} while this node was not part of it: its outputs are not stored here")]
    FinishedWithout {
        /// The proposer that said so.
        leader: PartyId,
        /// The attempt they finished.
        attempt: u32,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl NodeError {
    /// The peer this error names, if any.
    pub fn culprit(&self) -> Option<PartyId> {
        match self {
            NodeError::PeerRefused { peer, .. } | NodeError::Malformed { peer, .. } => Some(*peer),
            NodeError::Transport(t) => t.peer(),
            NodeError::Signer(s) => s.identified().or(match s {
                tacit_signer::SignerError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) => t.peer(),
                tacit_signer::SignerError::Refused { node, .. }
                | tacit_signer::SignerError::PresignatureMismatch { node, .. } => Some(*node),
                tacit_signer::SignerError::PresignatureBurned { refused_by, .. } => Some(*refused_by),
                _ => None,
            }),
            _ => None,
        }
    }

    /// A short label for metrics (`failure reasons`).
    pub fn reason_label(&self) -> &'static str {
        match self {
            NodeError::Config(_) => "config",
            NodeError::Store(_) | NodeError::Decrypt(_) => "store",
            NodeError::BadRequest(_) => "bad_request",
            NodeError::Unauthorised { .. } => "unauthorised",
            NodeError::PeerRefused { .. } => "peer_refused",
            NodeError::Malformed { .. } => "malformed",
            NodeError::Transport(TransportError::Timeout { .. }) => "timeout",
            NodeError::Transport(_) => "transport",
            NodeError::Signer(tacit_signer::SignerError::Policy(_)) => "policy",
            NodeError::Signer(tacit_signer::SignerError::Mpc(tacit_mpc_engine::MpcError::Transport(
                TransportError::Timeout { .. },
            ))) => "timeout",
            NodeError::Signer(tacit_signer::SignerError::Mpc(tacit_mpc_engine::MpcError::Transport(_))) => "transport",
            NodeError::Signer(s) if s.identified().is_some() => "cheat",
            NodeError::Signer(_) => "signer",
            NodeError::FinishedWithout { .. } => "finished_without",
            NodeError::ShuttingDown => "shutdown",
            NodeError::Other(_) => "other",
        }
    }

    /// Whether the mesh should be rebuilt after this error (a peer's connection failed).
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            NodeError::Transport(_)
                | NodeError::Signer(tacit_signer::SignerError::Mpc(tacit_mpc_engine::MpcError::Transport(_)))
        )
    }
}
