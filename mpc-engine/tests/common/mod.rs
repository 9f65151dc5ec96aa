//! Test harness: n parties in one process, and a transport that lets one party cheat.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{PartyId, SessionId, Transport, TransportError, TransportStats, WireField};

/// Message kinds as the engine writes them in byte 0 of every message.
pub const KIND_DEAL: u8 = 1;
pub const KIND_BROADCAST: u8 = 2;
pub const KIND_DIGEST: u8 = 4;
const HEADER: usize = 9;

/// What a cheating party does to one outgoing message.
pub type Rule = dyn Fn(PartyId, u8, &mut [u8]) -> bool + Send + Sync;

/// A memory transport whose party tampers with its own outgoing messages while armed.
///
/// It keeps its digest reports consistent with what it actually sent to the lowest-numbered
/// peer, as a careful cheater would, so only the check aimed at the cheat can catch it.
pub struct Cheater {
    inner: MemoryTransport,
    pub armed: AtomicBool,
    rule: Box<Rule>,
    sent_to_first_peer: std::sync::Mutex<blake3::Hasher>,
    sent_original: std::sync::Mutex<blake3::Hasher>,
}

impl std::fmt::Debug for Cheater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cheater({:?})", self.inner.id())
    }
}

impl Cheater {
    pub fn new(inner: MemoryTransport, rule: Box<Rule>) -> Self {
        Self {
            inner,
            armed: AtomicBool::new(false),
            rule,
            sent_to_first_peer: std::sync::Mutex::new(blake3::Hasher::new()),
            sent_original: std::sync::Mutex::new(blake3::Hasher::new()),
        }
    }
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

/// Adds `delta` to element `index` of a message carrying field elements.
pub fn add_to_element<F: WireField>(msg: &mut [u8], index: usize, delta: F) {
    let w = F::WIRE_BYTES;
    let at = HEADER + index * w;
    let Some(bytes) = msg.get_mut(at..at + w) else {
        return;
    };
    let v = F::read_wire(bytes).unwrap();
    (v + delta).write_wire(bytes);
}

impl Transport for Cheater {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    fn n_parties(&self) -> usize {
        self.inner.n_parties()
    }
    async fn send(&self, session: SessionId, to: PartyId, payload: Bytes) -> Result<(), TransportError> {
        let me = self.inner.id();
        let first_peer = PartyId::all(self.inner.n_parties()).find(|p| *p != me).unwrap();
        if payload.first() == Some(&KIND_BROADCAST) && to == first_peer {
            self.sent_original.lock().unwrap().update(&payload);
        }
        let payload = if self.armed.load(Ordering::SeqCst) {
            let mut m = payload.to_vec();
            let kind = m.first().copied().unwrap_or(0);
            if (self.rule)(to, kind, &mut m) {
                Bytes::from(m)
            } else {
                payload
            }
        } else {
            payload
        };
        let payload = match payload.first().copied() {
            Some(KIND_BROADCAST) if to == first_peer => {
                self.sent_to_first_peer.lock().unwrap().update(&payload);
                payload
            }
            Some(KIND_DIGEST) => {
                let mut m = payload.to_vec();
                let at = HEADER + me.index() * 32;
                let ours = *self.sent_to_first_peer.lock().unwrap().finalize().as_bytes();
                m[at..at + 32].copy_from_slice(&ours);
                Bytes::from(m)
            }
            _ => payload,
        };
        self.inner.send(session, to, payload).await
    }
    async fn recv(&self, session: SessionId, from: PartyId) -> Result<Bytes, TransportError> {
        // Peers report the digest of what we really sent; show our own engine the digest of
        // what it meant to send, so it carries on cheating instead of aborting.
        let msg = self.inner.recv(session, from).await?;
        if msg.first() != Some(&KIND_DIGEST) {
            return Ok(msg);
        }
        let mut m = msg.to_vec();
        let at = HEADER + self.inner.id().index() * 32;
        let ours = *self.sent_original.lock().unwrap().finalize().as_bytes();
        if let Some(slot) = m.get_mut(at..at + 32) {
            slot.copy_from_slice(&ours);
        }
        Ok(Bytes::from(m))
    }
    fn close_session(&self, session: SessionId) {
        self.inner.close_session(session)
    }
    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }
}

/// A network of `n` parties over memory where party `cheater` uses `rule`; short timeouts so
/// honest parties that abort do not keep the cheater waiting long.
pub fn network_with_cheater(n: usize, cheater: usize, rule: Box<Rule>) -> (Vec<Arc<Cheater>>, Arc<Cheater>) {
    let mut rule = Some(rule);
    let all: Vec<Arc<Cheater>> = MemoryTransport::network_with_timeout(n, Duration::from_secs(3))
        .into_iter()
        .map(|t| {
            let r: Box<Rule> =
                if t.id().get() as usize == cheater { rule.take().unwrap() } else { Box::new(|_, _, _| false) };
            Arc::new(Cheater::new(t, r))
        })
        .collect();
    let c = all[cheater - 1].clone();
    (all, c)
}
