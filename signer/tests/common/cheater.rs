//! A memory transport whose party tampers with its own outgoing messages (equivocation), and
//! keeps its digest reports consistent with what it sent to the lowest-numbered peer, so only
//! the agreement check can catch it. Adapted from the engine's test harness.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{PartyId, SessionId, Transport, TransportError, TransportStats};

pub const KIND_BROADCAST: u8 = 2;
pub const KIND_DIGEST: u8 = 4;
pub const KIND_BYTES: u8 = 6;
const HEADER: usize = 9;

pub type Rule = dyn Fn(PartyId, u8, &mut [u8]) -> bool + Send + Sync;

pub struct Cheater {
    inner: MemoryTransport,
    rule: Box<Rule>,
    sent_to_first_peer: std::sync::Mutex<blake3::Hasher>,
    sent_original: std::sync::Mutex<blake3::Hasher>,
}

impl std::fmt::Debug for Cheater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cheater({:?})", self.inner.id())
    }
}

fn digested(kind: Option<&u8>) -> bool {
    matches!(kind, Some(&KIND_BROADCAST) | Some(&KIND_BYTES))
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
        if digested(payload.first()) && to == first_peer {
            self.sent_original.lock().unwrap().update(&payload);
        }
        let mut m = payload.to_vec();
        let kind = m.first().copied().unwrap_or(0);
        let payload = if (self.rule)(to, kind, &mut m) { Bytes::from(m) } else { payload };
        let payload = match payload.first().copied() {
            k if digested(k.as_ref()) && to == first_peer => {
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

/// `n` parties over memory where party `cheater` applies `rule` to its outgoing messages.
pub fn network_with_cheater(n: usize, cheater: usize, rule: Box<Rule>) -> Vec<Arc<Cheater>> {
    let mut rule = Some(rule);
    MemoryTransport::network_with_timeout(n, Duration::from_secs(3))
        .into_iter()
        .map(|t| {
            let r: Box<Rule> =
                if t.id().get() as usize == cheater { rule.take().unwrap() } else { Box::new(|_, _, _| false) };
            Arc::new(Cheater {
                inner: t,
                rule: r,
                sent_to_first_peer: std::sync::Mutex::new(blake3::Hasher::new()),
                sent_original: std::sync::Mutex::new(blake3::Hasher::new()),
            })
        })
        .collect()
}
