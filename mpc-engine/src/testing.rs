//! Test support shared by the engine's tests and by the applications' tests (feature
//! `test-support`; never enabled by a production build): a memory transport whose party
//! tampers with its own outgoing messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use crate::transport::memory::MemoryTransport;
use crate::{PartyId, SessionId, Transport, TransportError, TransportStats, WireField};

/// Message kinds as the engine writes them in byte 0 of every message.
pub const KIND_DEAL: u8 = 1;
/// Values broadcast by the engine (digested for agreement).
pub const KIND_BROADCAST: u8 = 2;
/// Digests exchanged for the agreement check.
pub const KIND_DIGEST: u8 = 4;
/// Opaque bytes broadcast by a protocol on the engine (digested for agreement).
pub const KIND_BYTES: u8 = 6;
/// Bytes before the payload of an engine message (kind, step).
pub const HEADER: usize = 9;

/// What a cheating party does to one outgoing message (recipient, kind, bytes); returns
/// whether it changed the message.
pub type Rule = dyn Fn(PartyId, u8, &mut [u8]) -> bool + Send + Sync;

/// A memory transport whose party tampers with its own outgoing messages while armed.
///
/// It keeps its digest reports consistent with what it actually sent to the lowest-numbered
/// peer, as a careful cheater would, so only the check aimed at the cheat can catch it.
/// Digests are kept per session, as the engine keeps them: a protocol's messages outside
/// the engine (another session, no engine header) never enter a session's reports.
pub struct Cheater {
    inner: MemoryTransport,
    armed: AtomicBool,
    rule: Box<Rule>,
    sent_to_first_peer: Digests,
    sent_original: Digests,
}

/// Per-session digests of the messages one party sent.
#[derive(Default)]
struct Digests(Mutex<HashMap<SessionId, blake3::Hasher>>);

impl Digests {
    fn update(&self, session: SessionId, msg: &[u8]) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(session).or_default().update(msg);
    }

    fn finalize(&self, session: SessionId) -> [u8; 32] {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *all.get(&session).cloned().unwrap_or_default().finalize().as_bytes()
    }
}

impl std::fmt::Debug for Cheater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cheater({:?})", self.inner.id())
    }
}

/// Whether the engine digests `msg` for agreement. A protocol's own messages (on a session
/// of its own, no engine header) may start with these bytes too: that is why the digests are
/// kept per session.
fn digested(msg: &[u8]) -> bool {
    matches!(msg.first(), Some(&KIND_BROADCAST) | Some(&KIND_BYTES))
}

/// Whether `msg` is the engine's digest report among `n` parties: the kind, and a header
/// that declares exactly the `n` digests that follow (a protocol's own message that happens
/// to start with the kind byte must be left as it is).
fn is_digest_report(msg: &[u8], n: usize) -> bool {
    let declared = msg.get(5..HEADER).and_then(|c| <[u8; 4]>::try_from(c).ok()).map(u32::from_le_bytes);
    msg.first() == Some(&KIND_DIGEST)
        && declared.is_some_and(|len| len as usize == 32 * n)
        && msg.len() == HEADER + 32 * n
}

impl Cheater {
    /// Wraps `inner`; the rule applies once [`Cheater::arm`] is called.
    pub fn new(inner: MemoryTransport, rule: Box<Rule>) -> Self {
        Self {
            inner,
            armed: AtomicBool::new(false),
            rule,
            sent_to_first_peer: Digests::default(),
            sent_original: Digests::default(),
        }
    }

    /// Starts cheating.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Stops cheating.
    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }
}

/// Adds `delta` to field element `index` of an engine message carrying field elements.
pub fn add_to_element<F: WireField>(msg: &mut [u8], index: usize, delta: F) {
    let w = F::WIRE_BYTES;
    let at = HEADER + index * w;
    let Some(bytes) = msg.get_mut(at..at + w) else {
        return;
    };
    if let Some(v) = F::read_wire(bytes) {
        (v + delta).write_wire(bytes);
    }
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
        let first_peer = PartyId::all(self.inner.n_parties()).find(|p| *p != me);
        let to_first = first_peer == Some(to);
        if digested(&payload) && to_first {
            self.sent_original.update(session, &payload);
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
            _ if digested(&payload) && to_first => {
                self.sent_to_first_peer.update(session, &payload);
                payload
            }
            _ if is_digest_report(&payload, self.inner.n_parties()) => {
                let mut m = payload.to_vec();
                let at = HEADER + me.index() * 32;
                let ours = self.sent_to_first_peer.finalize(session);
                if let Some(slot) = m.get_mut(at..at + 32) {
                    slot.copy_from_slice(&ours);
                }
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
        if !is_digest_report(&msg, self.inner.n_parties()) {
            return Ok(msg);
        }
        let mut m = msg.to_vec();
        let at = HEADER + self.inner.id().index() * 32;
        let ours = self.sent_original.finalize(session);
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

/// A network of `n` parties over memory where party `cheater` (1-based) applies `rule` once
/// armed; short timeouts so honest parties that abort do not keep the cheater waiting long.
/// Returns every party's transport and the cheater's (disarmed).
pub fn network_with_cheater(n: usize, cheater: usize, rule: Box<Rule>) -> (Vec<Arc<Cheater>>, Option<Arc<Cheater>>) {
    let mut rule = Some(rule);
    let all: Vec<Arc<Cheater>> = MemoryTransport::network_with_timeout(n, Duration::from_secs(3))
        .into_iter()
        .map(|t| {
            let r: Box<Rule> = match rule.take() {
                Some(r) if usize::from(t.id().get()) == cheater => r,
                other => {
                    rule = other;
                    Box::new(|_, _, _| false)
                }
            };
            Arc::new(Cheater::new(t, r))
        })
        .collect();
    let c = cheater.checked_sub(1).and_then(|i| all.get(i)).cloned();
    (all, c)
}
