//! The `Transport` trait protocols are written against, and its implementations.
//!
//! Protocol code never opens sockets: it sends byte payloads to party ids under a session id
//! and receives them from party ids. Implementations: [`memory`] (n parties in one process, for
//! tests) and [`quic`] (quinn + rustls with mutual TLS and pinned certificates).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::party::{PartyId, SessionId};

pub mod intake;
pub mod memory;
pub mod quic;
pub mod tls;

/// Counters a transport keeps for benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Payload bytes sent to peers (frame headers included).
    pub bytes_sent: u64,
    /// Payload bytes received from peers (frame headers included).
    pub bytes_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
}

/// Default cap on one message's payload; larger frames are refused before allocation.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Default time to wait for a peer's message.
pub const DEFAULT_RECV_TIMEOUT: Duration = Duration::from_secs(60);

/// Point-to-point authenticated channels between the parties of one cluster.
///
/// Within one session, messages from a given peer are delivered in the order sent.
/// Implementations are shared by many concurrent sessions.
pub trait Transport: Send + Sync + 'static {
    /// This party's id.
    fn id(&self) -> PartyId;

    /// Number of parties in the cluster (ids `1..=n`).
    fn n_parties(&self) -> usize;

    /// Sends `payload` to `to` under `session`.
    fn send(
        &self,
        session: SessionId,
        to: PartyId,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Receives the next payload `from` sent under `session`, waiting at most the transport's
    /// receive timeout.
    fn recv(&self, session: SessionId, from: PartyId) -> impl Future<Output = Result<Bytes, TransportError>> + Send;

    /// Drops any buffered state for `session` (call when a session ends).
    fn close_session(&self, session: SessionId);

    /// Largest payload this transport accepts.
    fn max_frame(&self) -> usize {
        DEFAULT_MAX_FRAME
    }

    /// Traffic counters so far.
    fn stats(&self) -> TransportStats;
}

/// Transport failures. Every variant that concerns a peer names it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer sent nothing within the receive timeout.
    #[error("timed out after {after:?} waiting for {peer}")]
    Timeout {
        /// The silent peer.
        peer: PartyId,
        /// How long we waited.
        after: Duration,
    },
    /// The connection to the peer is gone.
    #[error("connection to {peer} closed: {reason}")]
    Closed {
        /// The peer.
        peer: PartyId,
        /// What the connection reported.
        reason: String,
    },
    /// The peer announced a frame over the cap; nothing was allocated for it.
    #[error("{peer} sent a frame of {len} bytes, over the cap of {cap}")]
    FrameTooLarge {
        /// The peer.
        peer: PartyId,
        /// Announced length.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// The peer sent bytes that are not a valid frame.
    #[error("{peer} sent a malformed frame: {reason}")]
    Malformed {
        /// The peer.
        peer: PartyId,
        /// What was wrong.
        reason: String,
    },
    /// Could not connect to the peer.
    #[error("could not connect to {peer}: {reason}")]
    Connect {
        /// The peer.
        peer: PartyId,
        /// Why.
        reason: String,
    },
    /// A party id outside the cluster (or ourselves) was addressed.
    #[error("no such peer: {0}")]
    UnknownPeer(PartyId),
    /// A payload we were asked to send is over the cap.
    #[error("payload of {len} bytes is over the frame cap of {cap}")]
    PayloadTooLarge {
        /// Payload length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// Bad local configuration (certificates, keys, addresses).
    #[error("transport configuration: {0}")]
    Config(String),
}

impl TransportError {
    /// The peer this error is about, if any.
    pub fn peer(&self) -> Option<PartyId> {
        match self {
            Self::Timeout { peer, .. }
            | Self::Closed { peer, .. }
            | Self::FrameTooLarge { peer, .. }
            | Self::Malformed { peer, .. }
            | Self::Connect { peer, .. } => Some(*peer),
            Self::UnknownPeer(p) => Some(*p),
            Self::PayloadTooLarge { .. } | Self::Config(_) => None,
        }
    }
}
