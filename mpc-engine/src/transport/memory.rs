//! In-memory transport: n parties in one process, for tests and single-process benches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Transport, TransportError, TransportStats, DEFAULT_MAX_FRAME, DEFAULT_RECV_TIMEOUT};
use crate::party::{PartyId, SessionId};

type Key = (SessionId, PartyId, PartyId); // (session, from, to)

struct Channel {
    tx: mpsc::UnboundedSender<Bytes>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Bytes>>,
}

#[derive(Default)]
struct Hub {
    channels: Mutex<HashMap<Key, Arc<Channel>>>,
}

impl Hub {
    fn channel(&self, key: Key) -> Arc<Channel> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                Arc::new(Channel { tx, rx: tokio::sync::Mutex::new(rx) })
            })
            .clone()
    }

    fn drop_session(&self, session: SessionId, to: PartyId) {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(s, _, t), _| !(*s == session && *t == to));
    }
}

/// One party's end of an in-memory network.
pub struct MemoryTransport {
    id: PartyId,
    n: usize,
    hub: Arc<Hub>,
    recv_timeout: Duration,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
}

impl std::fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTransport").field("id", &self.id).field("n", &self.n).finish()
    }
}

impl MemoryTransport {
    /// Connected transports for parties `1..=n`, index `i` is party `i + 1`.
    pub fn network(n: usize) -> Vec<MemoryTransport> {
        Self::network_with_timeout(n, DEFAULT_RECV_TIMEOUT)
    }

    /// As [`MemoryTransport::network`] with a receive timeout.
    pub fn network_with_timeout(n: usize, recv_timeout: Duration) -> Vec<MemoryTransport> {
        let hub = Arc::new(Hub::default());
        PartyId::all(n)
            .map(|id| MemoryTransport {
                id,
                n,
                hub: hub.clone(),
                recv_timeout,
                bytes_sent: AtomicU64::new(0),
                bytes_received: AtomicU64::new(0),
                messages_sent: AtomicU64::new(0),
            })
            .collect()
    }

    fn check_peer(&self, peer: PartyId) -> Result<(), TransportError> {
        if peer == self.id || peer.index() >= self.n {
            return Err(TransportError::UnknownPeer(peer));
        }
        Ok(())
    }
}

impl Transport for MemoryTransport {
    fn id(&self) -> PartyId {
        self.id
    }

    fn n_parties(&self) -> usize {
        self.n
    }

    async fn send(&self, session: SessionId, to: PartyId, payload: Bytes) -> Result<(), TransportError> {
        self.check_peer(to)?;
        if payload.len() > DEFAULT_MAX_FRAME {
            return Err(TransportError::PayloadTooLarge { len: payload.len(), cap: DEFAULT_MAX_FRAME });
        }
        let len = payload.len() as u64;
        self.hub
            .channel((session, self.id, to))
            .tx
            .send(payload)
            .map_err(|_| TransportError::Closed { peer: to, reason: "receiver dropped".into() })?;
        self.bytes_sent.fetch_add(len, Ordering::Relaxed);
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self, session: SessionId, from: PartyId) -> Result<Bytes, TransportError> {
        self.check_peer(from)?;
        let channel = self.hub.channel((session, from, self.id));
        let mut rx = channel.rx.lock().await;
        match tokio::time::timeout(self.recv_timeout, rx.recv()).await {
            Ok(Some(bytes)) => {
                self.bytes_received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Ok(bytes)
            }
            Ok(None) => Err(TransportError::Closed { peer: from, reason: "sender dropped".into() }),
            Err(_) => Err(TransportError::Timeout { peer: from, after: self.recv_timeout }),
        }
    }

    fn close_session(&self, session: SessionId) {
        self.hub.drop_session(session, self.id);
    }

    fn stats(&self) -> TransportStats {
        TransportStats {
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            messages_sent: self.messages_sent.load(Ordering::Relaxed),
        }
    }
}
