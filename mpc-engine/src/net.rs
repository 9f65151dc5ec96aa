//! Message layer of one session: chunked field-element vectors with a checked header, rounds
//! counted, and per-sender digests of everything that every party must have seen alike.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{MpcError, Result};
use crate::field::{decode_into, encode_into, WireField};
use crate::party::{PartyId, SessionId};
use crate::transport::Transport;

/// Elements per message: 1 MiB of BN254 elements, small enough to pipeline.
pub(crate) const CHUNK_ELEMS: usize = 1 << 15;
const HEADER: usize = 9;

/// What a message carries; part of the header so a misrouted message is caught.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Shares dealt privately to one party.
    Deal = 1,
    /// The same values sent to every party (digested for agreement).
    Broadcast = 2,
    /// Shares sent to one party for a private opening.
    ToOne = 3,
    /// Digests exchanged to check agreement.
    Digest = 4,
    /// The sender aborted the session; the payload says why.
    Abort = 5,
    /// Opaque bytes broadcast by a protocol built on the engine (digested).
    Bytes = 6,
}

/// Longest abort reason forwarded to peers.
const MAX_ABORT_REASON: usize = 512;

/// A session's view of the network.
pub(crate) struct Net<T: Transport> {
    pub(crate) transport: Arc<T>,
    pub(crate) session: SessionId,
    pub(crate) me: PartyId,
    pub(crate) n: usize,
    seq: u32,
    pub(crate) rounds: u64,
    /// Per sender: a hash of every broadcast message (ours: what we sent).
    digests: Option<Vec<blake3::Hasher>>,
    /// Whether anything was digested since the last agreement check. Every party digests
    /// at the same protocol steps, so all parties agree on whether a check is due.
    unchecked: bool,
}

impl<T: Transport> Net<T> {
    pub(crate) fn new(transport: Arc<T>, session: SessionId, track_digests: bool) -> Self {
        let me = transport.id();
        let n = transport.n_parties();
        Self {
            transport,
            session,
            me,
            n,
            seq: 0,
            rounds: 0,
            digests: track_digests.then(|| (0..n).map(|_| blake3::Hasher::new()).collect()),
            unchecked: false,
        }
    }

    pub(crate) fn peers(&self) -> impl Iterator<Item = PartyId> + '_ {
        PartyId::all(self.n).filter(move |p| *p != self.me)
    }

    fn encode<F: WireField>(&self, kind: Kind, values: &[F]) -> Vec<Bytes> {
        let w = F::WIRE_BYTES;
        let chunks: Vec<&[F]> = if values.is_empty() { vec![values] } else { values.chunks(CHUNK_ELEMS).collect() };
        chunks
            .into_iter()
            .map(|chunk| {
                let mut buf = BytesMut::with_capacity(HEADER + chunk.len() * w);
                buf.put_u8(kind as u8);
                buf.put_u32_le(self.seq);
                buf.put_u32_le(chunk.len() as u32);
                buf.resize(HEADER + chunk.len() * w, 0);
                if let Some(body) = buf.get_mut(HEADER..) {
                    encode_into(chunk, body);
                }
                buf.freeze()
            })
            .collect()
    }

    fn encode_raw(&self, kind: Kind, payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::with_capacity(HEADER + payload.len());
        buf.put_u8(kind as u8);
        buf.put_u32_le(self.seq);
        buf.put_u32_le(payload.len() as u32);
        buf.put_slice(payload);
        buf.freeze()
    }

    fn check_header(&self, from: PartyId, kind: Kind, msg: &[u8], count: usize) -> Result<()> {
        let violation = |reason: String| MpcError::Protocol { peer: from, reason };
        let header = msg.get(..HEADER).ok_or_else(|| violation("message shorter than its header".into()))?;
        let (k, rest) = header.split_at(1);
        let (seq, cnt) = rest.split_at(4);
        let seq = u32::from_le_bytes(seq.try_into().map_err(|_| violation("bad header".into()))?);
        let cnt = u32::from_le_bytes(cnt.try_into().map_err(|_| violation("bad header".into()))?);
        if k.first() == Some(&(Kind::Abort as u8)) {
            let body = msg.get(HEADER..).unwrap_or_default();
            let reason =
                String::from_utf8_lossy(body.get(..MAX_ABORT_REASON.min(body.len())).unwrap_or_default()).into_owned();
            return Err(MpcError::PeerAborted { peer: from, reason });
        }
        if k.first() != Some(&(kind as u8)) {
            return Err(violation(format!("expected a {kind:?} message")));
        }
        if seq != self.seq {
            return Err(violation(format!("message for step {seq}, expected step {}", self.seq)));
        }
        if cnt as usize != count {
            return Err(violation(format!("{cnt} elements where {count} were expected")));
        }
        Ok(())
    }

    async fn recv_elems<F: WireField>(&self, from: PartyId, kind: Kind, len: usize) -> Result<(Vec<F>, Vec<Bytes>)> {
        let w = F::WIRE_BYTES;
        let mut out = Vec::with_capacity(len);
        let mut raw = Vec::new();
        let messages = len.div_ceil(CHUNK_ELEMS).max(1);
        for m in 0..messages {
            let count = (len - m * CHUNK_ELEMS).min(CHUNK_ELEMS);
            let msg = self.transport.recv(self.session, from).await?;
            self.check_header(from, kind, &msg, count)?;
            let body = msg.get(HEADER..).unwrap_or_default();
            if body.len() != count * w {
                return Err(MpcError::Protocol {
                    peer: from,
                    reason: "message length does not match its header".into(),
                });
            }
            decode_into(body, &mut out).map_err(|i| MpcError::Protocol {
                peer: from,
                reason: format!("element {} is not a field element", m * CHUNK_ELEMS + i),
            })?;
            raw.push(msg);
        }
        Ok((out, raw))
    }

    async fn send_all(&self, outgoing: &[(PartyId, Vec<Bytes>)]) -> Result<()> {
        for (to, msgs) in outgoing {
            for msg in msgs {
                self.transport.send(self.session, *to, msg.clone()).await?;
            }
        }
        Ok(())
    }

    /// Sends `outgoing` while receiving one item from each of `incoming` with `recv_one`, in
    /// peer order. Sending and receiving run together: with flow control, a party that only
    /// sent would wait on peers that only send too.
    async fn exchange<R, Fut>(
        &self,
        outgoing: &[(PartyId, Vec<Bytes>)],
        incoming: &[PartyId],
        recv_one: impl Fn(PartyId) -> Fut,
    ) -> Result<Vec<(PartyId, R)>>
    where
        Fut: std::future::Future<Output = Result<R>>,
    {
        let recv = async {
            let mut got = Vec::with_capacity(incoming.len());
            for from in incoming {
                got.push((*from, recv_one(*from).await?));
            }
            Ok::<_, MpcError>(got)
        };
        let (sent, received) = tokio::join!(self.send_all(outgoing), recv);
        sent?;
        received
    }

    /// Receives one opaque message (`kind`, at most `max_len` payload bytes) from `from`.
    async fn recv_raw(&self, from: PartyId, kind: Kind, max_len: usize) -> Result<Bytes> {
        let msg = self.transport.recv(self.session, from).await?;
        let declared = msg.get(5..HEADER).and_then(|c| <[u8; 4]>::try_from(c).ok()).map(u32::from_le_bytes);
        let len = declared.map_or(usize::MAX, |l| l as usize);
        if len > max_len && msg.first() != Some(&(Kind::Abort as u8)) {
            return Err(MpcError::Protocol { peer: from, reason: format!("payload over {max_len} bytes") });
        }
        self.check_header(from, kind, &msg, len)?;
        if msg.len() != HEADER + len {
            return Err(MpcError::Protocol { peer: from, reason: "payload length does not match its header".into() });
        }
        Ok(msg)
    }

    /// Ends a round: the next messages belong to the next step.
    fn next_step(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.rounds += 1;
    }

    /// One round: sends each `(peer, values)` and receives `len` elements from each `(peer, len)`.
    pub(crate) async fn round<F: WireField>(
        &mut self,
        kind: Kind,
        outgoing: &[(PartyId, &[F])],
        incoming: &[(PartyId, usize)],
    ) -> Result<Vec<(PartyId, Vec<F>)>> {
        let encoded: Vec<(PartyId, Vec<Bytes>)> = outgoing.iter().map(|(p, v)| (*p, self.encode(kind, v))).collect();
        let peers: Vec<PartyId> = incoming.iter().map(|(p, _)| *p).collect();
        let len_of = |from: PartyId| incoming.iter().find(|(p, _)| *p == from).map_or(0, |(_, l)| *l);
        let received = self.exchange(&encoded, &peers, |from| self.recv_elems::<F>(from, kind, len_of(from))).await?;
        self.next_step();
        Ok(received.into_iter().map(|(p, (v, _))| (p, v)).collect())
    }

    /// Sends `values` to every peer and returns every party's vector by index (ours included).
    /// Each peer must send exactly `values.len()` elements.
    pub(crate) async fn broadcast<F: WireField>(&mut self, values: &[F]) -> Result<Vec<Vec<F>>> {
        let len = values.len();
        let lens = vec![len; self.n];
        self.broadcast_lens(values, &lens).await
    }

    /// Sends `values` to every peer; party `j` (index) must send `lens[j]` elements. Returns
    /// every party's vector by index (ours included). Digested for agreement.
    pub(crate) async fn broadcast_lens<F: WireField>(&mut self, values: &[F], lens: &[usize]) -> Result<Vec<Vec<F>>> {
        let mine = self.encode(Kind::Broadcast, values);
        let outgoing: Vec<(PartyId, Vec<Bytes>)> = self.peers().map(|p| (p, mine.clone())).collect();
        let incoming: Vec<PartyId> = self.peers().collect();
        let len_of = |from: PartyId| lens.get(from.index()).copied().unwrap_or(0);
        let received = self
            .exchange(&outgoing, &incoming, |from| self.recv_elems::<F>(from, Kind::Broadcast, len_of(from)))
            .await?;
        let me = self.me;
        self.digest(me, &mine);
        for (from, (_, raw)) in &received {
            self.digest(*from, raw);
        }
        let mut by_party: Vec<Vec<F>> = vec![Vec::new(); self.n];
        if let Some(slot) = by_party.get_mut(me.index()) {
            *slot = values.to_vec();
        }
        for (from, (v, _)) in received {
            if let Some(slot) = by_party.get_mut(from.index()) {
                *slot = v;
            }
        }
        self.next_step();
        Ok(by_party)
    }

    /// `owner` sends `values` to everyone else (digested for agreement); returns the owner's
    /// vector of `len` elements at every party.
    pub(crate) async fn broadcast_from<F: WireField>(
        &mut self,
        owner: PartyId,
        values: &[F],
        len: usize,
    ) -> Result<Vec<F>> {
        let out = if owner == self.me {
            let mine = self.encode(Kind::Broadcast, values);
            let outgoing: Vec<(PartyId, Vec<Bytes>)> = self.peers().map(|p| (p, mine.clone())).collect();
            self.send_all(&outgoing).await?;
            self.digest(self.me, &mine);
            values.to_vec()
        } else {
            let (v, raw) = self.recv_elems::<F>(owner, Kind::Broadcast, len).await?;
            self.digest(owner, &raw);
            v
        };
        self.next_step();
        Ok(out)
    }

    fn digest(&mut self, sender: PartyId, msgs: &[Bytes]) {
        self.unchecked = true;
        if let Some(h) = self.digests.as_mut().and_then(|d| d.get_mut(sender.index())) {
            msgs.iter().for_each(|m| {
                h.update_rayon(m);
            });
        }
    }

    /// Sends `payload` to every peer and receives each peer's payload (at most `max_len`
    /// bytes); digested for agreement like every broadcast. Returns payloads by party index.
    pub(crate) async fn broadcast_bytes(&mut self, payload: &[u8], max_len: usize) -> Result<Vec<Vec<u8>>> {
        let everyone: Vec<PartyId> = PartyId::all(self.n).collect();
        self.broadcast_bytes_from(&everyone, payload, max_len).await
    }

    /// Like [`Self::broadcast_bytes`], but only the parties in `senders` send (ours is sent
    /// only if we are one of them), and only they are waited on: the others' slots stay empty.
    pub(crate) async fn broadcast_bytes_from(
        &mut self,
        senders: &[PartyId],
        payload: &[u8],
        max_len: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let me = self.me;
        let sending = senders.contains(&me);
        let msg = self.encode_raw(Kind::Bytes, payload);
        let outgoing: Vec<(PartyId, Vec<Bytes>)> =
            if sending { self.peers().map(|p| (p, vec![msg.clone()])).collect() } else { Vec::new() };
        let incoming: Vec<PartyId> = self.peers().filter(|p| senders.contains(p)).collect();
        let received = self.exchange(&outgoing, &incoming, |from| self.recv_raw(from, Kind::Bytes, max_len)).await?;
        let mut by_party: Vec<Vec<u8>> = vec![Vec::new(); self.n];
        if sending {
            self.digest(me, std::slice::from_ref(&msg));
            if let Some(slot) = by_party.get_mut(me.index()) {
                *slot = payload.to_vec();
            }
        }
        for (from, raw) in received {
            self.digest(from, std::slice::from_ref(&raw));
            if let Some(slot) = by_party.get_mut(from.index()) {
                *slot = raw.get(HEADER..).unwrap_or_default().to_vec();
            }
        }
        self.next_step();
        Ok(by_party)
    }

    /// Tells every peer this session aborted (best effort), so they stop at once instead of
    /// timing out on us.
    pub(crate) async fn send_abort(&self, reason: &str) {
        let reason = reason.as_bytes();
        let msg = self.encode_raw(Kind::Abort, reason.get(..MAX_ABORT_REASON.min(reason.len())).unwrap_or_default());
        for p in self.peers() {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                self.transport.send(self.session, p, msg.clone()),
            )
            .await;
        }
    }

    /// Exchanges digests of all broadcasts so far and checks that everyone saw the same.
    /// Returns, on disagreement, the pairs `(sender, reporter)` whose views differ from ours.
    pub(crate) async fn digest_round(&mut self) -> Result<Vec<(PartyId, PartyId)>> {
        // Nothing digested since the last check: every party skips this round alike.
        let Some(digests) = self.digests.as_ref().filter(|_| self.unchecked) else {
            return Ok(Vec::new());
        };
        let mine: Vec<[u8; 32]> = digests.iter().map(|h| *h.finalize().as_bytes()).collect();
        let payload: Vec<u8> = mine.iter().flatten().copied().collect();
        let msg = self.encode_raw(Kind::Digest, &payload);
        let outgoing: Vec<(PartyId, Vec<Bytes>)> = self.peers().map(|p| (p, vec![msg.clone()])).collect();
        let incoming: Vec<PartyId> = self.peers().collect();
        let expected = payload.len();
        let this = &*self;
        let reports = this
            .exchange(&outgoing, &incoming, |from| async move {
                let msg = this.recv_raw(from, Kind::Digest, expected).await?;
                if msg.len() != HEADER + expected {
                    return Err(MpcError::Protocol { peer: from, reason: "digest report of the wrong size".into() });
                }
                Ok(msg.get(HEADER..).unwrap_or_default().to_vec())
            })
            .await?;
        self.next_step();
        self.unchecked = false;
        let mut mismatches = Vec::new();
        for (reporter, body) in reports {
            for (sender, (ours, theirs)) in mine.iter().zip(body.chunks_exact(32)).enumerate() {
                if ours.as_slice() != theirs {
                    if let Some(sender) = PartyId::from_index(sender) {
                        mismatches.push((sender, reporter));
                    }
                }
            }
        }
        Ok(mismatches)
    }
}
