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
const HEADER: usize = 9;

/// What a cheating party does to one outgoing message.
pub type Rule = dyn Fn(PartyId, u8, &mut Vec<u8>) -> bool + Send + Sync;

/// A memory transport whose party tampers with its own outgoing messages while armed.
pub struct Cheater {
    inner: MemoryTransport,
    pub armed: AtomicBool,
    rule: Box<Rule>,
}

impl std::fmt::Debug for Cheater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cheater({:?})", self.inner.id())
    }
}

impl Cheater {
    pub fn new(inner: MemoryTransport, rule: Box<Rule>) -> Self {
        Self { inner, armed: AtomicBool::new(false), rule }
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
    let Some(bytes) = msg.get_mut(at..at + w) else { return };
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
        self.inner.send(session, to, payload).await
    }
    async fn recv(&self, session: SessionId, from: PartyId) -> Result<Bytes, TransportError> {
        self.inner.recv(session, from).await
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
            let r: Box<Rule> = if t.id().get() as usize == cheater {
                rule.take().unwrap()
            } else {
                Box::new(|_, _, _| false)
            };
            Arc::new(Cheater::new(t, r))
        })
        .collect();
    let c = all[cheater - 1].clone();
    (all, c)
}
