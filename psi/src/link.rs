//! Client–node links and transcript recording.
//!
//! Institutions are clients of the node cluster: each has one authenticated private channel to
//! every node. [`Link`] is that channel: in one process (tokio channels, [`Link::pair`]) or
//! over a node's QUIC intake ([`Link::over`], mutual TLS); every payload a party receives can
//! be appended to a [`Transcript`], and [`Recording`] does the same for the
//! node-to-node transport, so tests can scan exactly what reached each party.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tacit_mpc_engine::transport::intake::IntakeChannel;
use tacit_mpc_engine::{PartyId, SessionId, Transport, TransportError, TransportStats};
use tokio::sync::mpsc::{channel, error::TrySendError, Receiver, Sender};

/// Everything one party received, concatenated (for leakage tests and audits).
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Vec<u8>>>);

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transcript({} bytes)", self.len())
    }
}

impl Transcript {
    fn append(&self, bytes: &[u8]) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.extend_from_slice(bytes);
    }

    /// A copy of the bytes so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `needle` occurs anywhere in the transcript.
    pub fn contains(&self, needle: &[u8]) -> bool {
        if needle.is_empty() {
            return true;
        }
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.windows(needle.len()).any(|w| w == needle)
    }
}

/// How long a party waits for the other end of a link.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(600);

/// Messages a link holds unread at most. The protocol never sends more than two before the
/// other end answers, so a party that does is misbehaving, and memory stays bounded.
pub const LINK_QUEUE: usize = 4;

/// Largest message on a link over the network: the largest input's blinded points or a
/// node's answers ([`crate::MAX_ITEMS`] points of [`crate::oprf::POINT_BYTES`], uncompressed)
/// plus headroom for the key share, the proof and framing. Masked rows (a tag and a value,
/// 32 bytes each, per item) are smaller.
pub const MAX_LINK_MESSAGE: usize = crate::MAX_ITEMS * crate::oprf::POINT_BYTES + (1 << 16);

// The largest answer (key share, proof, points, kind byte) and the largest masked input
// (a tag and a value per item, and a salt) fit.
const _: () = assert!(
    MAX_LINK_MESSAGE > crate::MAX_ITEMS * crate::oprf::POINT_BYTES + crate::oprf::PROOF_BYTES
        && MAX_LINK_MESSAGE >= crate::MAX_ITEMS * 64 + 64
);

/// Link failures.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The other end went away (it aborted or finished).
    #[error("{0} closed the link")]
    Closed(String),
    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// More unread messages than [`LINK_QUEUE`].
    #[error("{0} has too many unread messages")]
    Backlog(String),
    /// A message of the wrong kind or shape.
    #[error("{peer} sent a malformed message: {reason}")]
    Malformed {
        /// The sender.
        peer: String,
        /// What was wrong.
        reason: String,
    },
}

/// One end of a private channel between an institution and a node.
#[derive(Debug)]
pub struct Link {
    peer: String,
    tx: Sender<Bytes>,
    rx: Receiver<Bytes>,
    received: Option<Transcript>,
    bytes_sent: u64,
}

impl Link {
    /// A connected pair: (institution end, node end), named after the other end.
    pub fn pair(
        institution: &str,
        node: &str,
        institution_log: Option<Transcript>,
        node_log: Option<Transcript>,
    ) -> (Link, Link) {
        let (to_node, node_rx) = channel(LINK_QUEUE);
        let (to_inst, inst_rx) = channel(LINK_QUEUE);
        (
            Link { peer: node.into(), tx: to_node, rx: inst_rx, received: institution_log, bytes_sent: 0 },
            Link { peer: institution.into(), tx: to_inst, rx: node_rx, received: node_log, bytes_sent: 0 },
        )
    }

    /// A link over an intake channel to or from `peer` (see
    /// `tacit_mpc_engine::transport::intake`); open it with [`MAX_LINK_MESSAGE`] as its cap.
    pub fn over(peer: &str, channel: IntakeChannel, received: Option<Transcript>) -> Link {
        Link { peer: peer.into(), tx: channel.outgoing, rx: channel.incoming, received, bytes_sent: 0 }
    }

    /// The other end's name.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Sends a message of `kind`.
    pub fn send(&mut self, kind: u8, body: &[u8]) -> Result<(), LinkError> {
        let mut msg = Vec::with_capacity(body.len() + 1);
        msg.push(kind);
        msg.extend_from_slice(body);
        self.bytes_sent += msg.len() as u64;
        self.tx.try_send(Bytes::from(msg)).map_err(|e| match e {
            TrySendError::Full(_) => LinkError::Backlog(self.peer.clone()),
            TrySendError::Closed(_) => LinkError::Closed(self.peer.clone()),
        })
    }

    /// Receives the next message, which must be of `kind`; returns its body.
    pub async fn recv(&mut self, kind: u8) -> Result<Bytes, LinkError> {
        let msg = tokio::time::timeout(LINK_TIMEOUT, self.rx.recv())
            .await
            .map_err(|_| LinkError::Timeout(self.peer.clone()))?
            .ok_or_else(|| LinkError::Closed(self.peer.clone()))?;
        if let Some(log) = &self.received {
            log.append(&msg);
        }
        match msg.first() {
            Some(k) if *k == kind => Ok(msg.slice(1..)),
            other => Err(LinkError::Malformed {
                peer: self.peer.clone(),
                reason: format!("expected message kind {kind}, got {other:?}"),
            }),
        }
    }
}

/// A transport that appends every payload this party receives to a transcript.
#[derive(Debug)]
pub struct Recording<T: Transport> {
    inner: Arc<T>,
    log: Transcript,
}

impl<T: Transport> Recording<T> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<T>, log: Transcript) -> Self {
        Self { inner, log }
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn id(&self) -> PartyId {
        self.inner.id()
    }

    fn n_parties(&self) -> usize {
        self.inner.n_parties()
    }

    fn send(
        &self,
        session: SessionId,
        to: PartyId,
        payload: Bytes,
    ) -> impl std::future::Future<Output = Result<(), TransportError>> + Send {
        self.inner.send(session, to, payload)
    }

    fn recv(
        &self,
        session: SessionId,
        from: PartyId,
    ) -> impl std::future::Future<Output = Result<Bytes, TransportError>> + Send {
        let inner = self.inner.clone();
        let log = self.log.clone();
        async move {
            let b = inner.recv(session, from).await?;
            log.append(&b);
            Ok(b)
        }
    }

    fn close_session(&self, session: SessionId) {
        self.inner.close_session(session);
    }

    fn max_frame(&self) -> usize {
        self.inner.max_frame()
    }

    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }
}
