//! Engine errors. A detected cheat aborts with the culprit named wherever the protocol can
//! identify it.

use std::fmt;

use crate::party::PartyId;
use crate::shamir::ParamError;
use crate::transport::TransportError;

/// Who caused an abort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    /// This party, with certainty.
    Party(PartyId),
    /// At least one of these parties (the protocol cannot tell which).
    OneOf(Vec<PartyId>),
    /// Some corrupted party; the check that failed cannot attribute it.
    Unknown,
}

impl fmt::Display for Culprit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Party(p) => write!(f, "{p}"),
            Self::OneOf(ps) => {
                let names: Vec<String> = ps.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", names.join(", "))
            }
            Self::Unknown => f.write_str("unidentified (the check cannot attribute it)"),
        }
    }
}

/// Which check caught a cheat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Shares sent in an opening do not lie on one polynomial of the right degree.
    OpeningConsistency,
    /// Parties received different values in a step where everyone must see the same.
    BroadcastAgreement,
    /// Batched verification of all multiplications and dealt bits.
    Multiplication,
    /// Dealt random sharings are not of the right degree.
    DealtDegree,
    /// An output assembled from opened shares failed the check of the protocol built on the
    /// engine (for example, a collaboratively made proof that does not verify).
    OutputVerification,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OpeningConsistency => "opening consistency",
            Self::BroadcastAgreement => "broadcast agreement",
            Self::Multiplication => "multiplication verification",
            Self::DealtDegree => "dealt sharing degree",
            Self::OutputVerification => "output verification",
        })
    }
}

/// Engine failures.
#[derive(Debug, thiserror::Error)]
pub enum MpcError {
    /// The network failed; the error names the peer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A peer sent a message that does not fit the protocol (wrong length, out-of-range
    /// element, wrong round).
    #[error("{peer} violated the protocol: {reason}")]
    Protocol {
        /// The sender.
        peer: PartyId,
        /// What was wrong.
        reason: String,
    },
    /// A check failed: the session aborted before revealing anything derived from the cheat.
    #[error("aborted: {check} check failed; culprit: {culprit}")]
    Cheating {
        /// The failed check.
        check: Check,
        /// Who.
        culprit: Culprit,
    },
    /// A peer aborted the session and told us why (its own reason, not a verdict of ours).
    #[error("{peer} aborted the session: {reason}")]
    PeerAborted {
        /// The peer that aborted.
        peer: PartyId,
        /// Its stated reason.
        reason: String,
    },
    /// Bad parameters.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The caller misused the API (mismatched lengths, too many bits).
    #[error("invalid request: {0}")]
    Usage(String),
    /// A previous error left this session unusable.
    #[error("session aborted earlier; start a new one")]
    Aborted,
}

impl MpcError {
    /// The parties this error blames, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            Self::Transport(e) => e.peer().into_iter().collect(),
            Self::Protocol { peer, .. } => vec![*peer],
            Self::Cheating { culprit: Culprit::Party(p), .. } => vec![*p],
            Self::Cheating { culprit: Culprit::OneOf(ps), .. } => ps.clone(),
            _ => Vec::new(),
        }
    }

    /// The party blamed with certainty, if any.
    pub fn identified(&self) -> Option<PartyId> {
        match self {
            Self::Transport(e) => e.peer(),
            Self::Protocol { peer, .. } | Self::Cheating { culprit: Culprit::Party(peer), .. } => Some(*peer),
            _ => None,
        }
    }
}

/// Engine result.
pub type Result<T, E = MpcError> = std::result::Result<T, E>;
