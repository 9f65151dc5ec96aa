//! QUIC transport: quinn + rustls (ring), mutual TLS with pinned certificates.
//!
//! # Connections
//! Exactly one QUIC connection per pair of parties: the lower id dials the higher id, which
//! accepts. Dialling is retried until [`QuicOptions::connect_timeout`], so parties may start in
//! any order. Both sides present certificates; each side accepts only certificates whose
//! SHA-256 fingerprint is pinned in [`QuicConfig::peers`] (see [`super::tls`]), and a peer's
//! [`PartyId`] is the id its *pinned fingerprint* is listed under, never anything it sends. An
//! acceptor refuses, during the handshake, a pinned peer that should be dialled rather than
//! dial (a higher id), so a pair can never hold two connections. A party that crashed and
//! restarted resets the connections its previous process held: its stateless-reset key is
//! derived from its private key (the same across restarts), so our next packet on such a
//! connection (a keep-alive at the latest) draws a reset we accept, and the connection closes
//! at once rather than after the idle timeout (RFC 9000, 10.3).
//!
//! # Wire format
//! When the acceptor has checked the dialer's certificate it opens a first unidirectional
//! stream carrying [`CONFIRM_MAGIC`]; the dialer's `connect` completes only on reading it.
//! Then one unidirectional QUIC stream per (session, direction, pair of parties), opened
//! lazily by the first `send`: every session has its own flow control and there is no
//! head-of-line blocking between sessions. A stream starts with a 20-byte header, [`STREAM_MAGIC`] followed
//! by the 16-byte [`SessionId`], then carries frames `[u32 little-endian length][payload]`.
//! `close_session` finishes the session's streams. The receiver checks every announced length
//! against `max_frame` *before* allocating anything for it.
//!
//! # Receiving
//! A background task per incoming stream reads frames into a bounded per-(session, peer) inbox
//! ([`QuicOptions::inbox_messages`] messages). A session nobody reads stops being read once its
//! inbox is full, so QUIC flow control pushes back on the sender instead of memory growing.
//! Faults in a stream (over-long frame, truncated frame, reset) are delivered, naming the peer,
//! to the `recv` waiting on that session; faults that cannot be attributed to a session (a bad
//! stream header) are logged and kept for [`QuicTransport::take_faults`]. Either way only the
//! offending stream is dropped: other sessions keep working. A `send` cancelled part-way
//! through a frame leaves its session's stream unusable: the next `send` on that session resets
//! the stream (the peer's `recv` then fails) and reports `Closed`.
//!
//! Memory per (session, peer) is bounded by the stream window (unread data held by quinn) plus
//! `inbox_messages` received messages of at most `max_frame` bytes each.
//!
//! Session ids are single-use per pair of parties: after a party calls `close_session`, it
//! refuses to send or receive on that session again (the last 65 536 closed ids are
//! remembered, so late streams for them are stopped rather than buffered).
//!
//! # Windows and buffers
//! UDP socket send/receive buffers are set to 4 MiB (the kernel default of ~208 KiB dropped
//! about 1% of datagrams at full rate). The per-stream receive window defaults to 16 MiB:
//! enough for ~320 MB/s per stream at a 50 ms round trip, where quinn's 1.25 MB default caps a
//! stream at ~25 MB/s; use [`QuicOptions::size_windows_for`] to size it from the RTT and
//! bandwidth. The connection-level receive window is left unlimited (the bound is per stream
//! and per inbox) so one stalled session cannot block the others; the send window is quinn's
//! default, as larger ones measured slower on loopback. On loopback (3 parties in one process,
//! 2 cores, 1 MiB messages) the stream window made no measurable difference between 1.25 MB
//! and 16 MiB (about 1.45 GB/s aggregate; `examples/quic_throughput.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, ConnectionError, Endpoint, RecvStream, SendStream, VarInt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::tls::{self, dials, peer_fingerprint, RefusalLog};
pub use super::tls::{party_name, Fingerprint, PartyIdentity, ALPN};
use super::{Transport, TransportError, TransportStats, DEFAULT_MAX_FRAME, DEFAULT_RECV_TIMEOUT};
use crate::party::{PartyId, SessionId};

/// First four bytes of every session stream (wire format version 1).
pub const STREAM_MAGIC: [u8; 4] = *b"TQS1";

/// The acceptor's first stream on a new connection carries exactly these bytes: it tells the
/// dialer that its certificate was accepted (in TLS 1.3 the client's handshake completes before
/// the server has checked the client certificate).
pub const CONFIRM_MAGIC: [u8; 4] = *b"TQA1";

/// Length of a session stream's header: magic + session id.
pub const STREAM_HEADER_LEN: usize = 4 + 16;

/// Length of a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Connection close codes.
const CLOSE_SHUTDOWN: u32 = 0;
const CLOSE_REFUSED: u32 = 1;
const CLOSE_DUPLICATE: u32 = 2;

/// Stream stop codes (sent to a sender whose stream we stop reading).
const STOP_SESSION_CLOSED: u32 = 1;
const STOP_FRAME_TOO_LARGE: u32 = 2;
const STOP_MALFORMED: u32 = 3;

/// Stream reset code: a send was cancelled part-way through a frame.
const RESET_TORN: u32 = 4;

/// How many closed session ids are remembered.
const CLOSED_MEMORY: usize = 1 << 16;
/// How many unattributable faults are kept.
const FAULT_MEMORY: usize = 256;
/// Longest wait for one dial attempt before dialling again.
const DIAL_ATTEMPT: Duration = Duration::from_secs(2);
/// Pause between dial attempts.
const DIAL_RETRY: Duration = Duration::from_millis(100);
/// Longest wait in `shutdown` for sent data to be acknowledged.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// One peer of the cluster, as the cluster configuration pins it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerInfo {
    /// The peer's party id.
    #[serde(with = "party_id_serde")]
    pub id: PartyId,
    /// Where the peer listens (dialled only if the peer's id is higher than ours).
    pub addr: SocketAddr,
    /// SHA-256 of the peer's certificate DER (hex in config files).
    pub cert_fingerprint: Fingerprint,
}

/// Tunables of the QUIC transport; every field has a default, durations are milliseconds in
/// config files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuicOptions {
    /// How long `connect` waits for all peers (dialling is retried until then).
    #[serde(rename = "connect_timeout_ms", with = "millis")]
    pub connect_timeout: Duration,
    /// How long `recv` waits for a peer's message.
    #[serde(rename = "recv_timeout_ms", with = "millis")]
    pub recv_timeout: Duration,
    /// Largest accepted payload, in bytes (at most `u32::MAX`).
    pub max_frame: usize,
    /// Per-stream (i.e. per session and direction) receive window, in bytes.
    pub stream_window: u64,
    /// Messages buffered per (session, peer) before the stream stops being read.
    pub inbox_messages: usize,
    /// Sessions a peer may have open towards us at once (concurrent streams).
    pub max_open_sessions: u32,
    /// Keep-alive interval, so idle connections survive.
    #[serde(rename = "keep_alive_ms", with = "millis")]
    pub keep_alive: Duration,
    /// A connection with no traffic (keep-alives included) for this long is dead.
    #[serde(rename = "idle_timeout_ms", with = "millis")]
    pub idle_timeout: Duration,
    /// UDP socket send and receive buffer size, in bytes.
    pub udp_buffer: usize,
}

impl Default for QuicOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(30),
            recv_timeout: DEFAULT_RECV_TIMEOUT,
            max_frame: DEFAULT_MAX_FRAME,
            stream_window: 16 << 20,
            inbox_messages: 64,
            max_open_sessions: 4096,
            keep_alive: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            udp_buffer: 4 << 20,
        }
    }
}

impl QuicOptions {
    /// Sizes the stream receive window to the bandwidth-delay product of a link with round
    /// trip `rtt` and `bytes_per_second` per session (at least 1 MiB).
    pub fn size_windows_for(&mut self, rtt: Duration, bytes_per_second: u64) -> &mut Self {
        let bdp = (rtt.as_secs_f64() * bytes_per_second as f64).ceil();
        let bdp = if bdp.is_finite() && bdp < (1u64 << 60) as f64 { bdp as u64 } else { 1 << 60 };
        self.stream_window = bdp.max(1 << 20);
        self
    }
}

/// Everything a party needs to join the cluster over QUIC.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// This party's id.
    pub id: PartyId,
    /// UDP address to listen on (port 0 picks one; see [`QuicTransport::connect_on`]).
    pub listen: SocketAddr,
    /// This party's certificate and key.
    pub identity: PartyIdentity,
    /// Every other party: ids must be exactly `1..=n` without ours, `n = peers.len() + 1`.
    pub peers: Vec<PeerInfo>,
    /// Tunables.
    pub options: QuicOptions,
}

impl QuicConfig {
    /// A configuration with default options.
    pub fn new(id: PartyId, listen: SocketAddr, identity: PartyIdentity, peers: Vec<PeerInfo>) -> Self {
        Self { id, listen, identity, peers, options: QuicOptions::default() }
    }
}

type Delivery = Result<Bytes, TransportError>;

/// Inbound messages of one session from one peer.
struct Inbox {
    /// Taken by the (single) reader of the peer's stream for this session.
    feed: Mutex<Option<mpsc::Sender<Delivery>>>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Delivery>>,
}

/// Our stream for one session to one peer.
#[derive(Default)]
struct OutStream {
    stream: Option<SendStream>,
    /// A send was cancelled part-way through a frame: the stream cannot be used again.
    torn: bool,
}

type Outbox = tokio::sync::Mutex<OutStream>;

#[derive(Default)]
struct SessionState {
    inbound: HashMap<PartyId, Arc<Inbox>>,
    outbound: HashMap<PartyId, Arc<Outbox>>,
}

#[derive(Default)]
struct SessionTable {
    open: HashMap<SessionId, SessionState>,
    closed: HashSet<SessionId>,
    closed_order: VecDeque<SessionId>,
}

enum Attach {
    Feed(mpsc::Sender<Delivery>),
    Closed,
    Duplicate,
}

/// State shared by the transport handle and its background tasks.
struct Shared {
    me: PartyId,
    max_frame: usize,
    inbox_messages: usize,
    sessions: Mutex<SessionTable>,
    conns: RwLock<HashMap<PartyId, Connection>>,
    conn_events: watch::Sender<u64>,
    pins: HashMap<Fingerprint, PartyId>,
    refusals: Arc<RefusalLog>,
    faults: Mutex<VecDeque<TransportError>>,
    drains: Mutex<JoinSet<()>>,
    runtime: tokio::runtime::Handle,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    messages_sent: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn conn(&self, peer: PartyId) -> Option<Connection> {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).get(&peer).cloned()
    }

    fn has_conn(&self, peer: PartyId) -> bool {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).contains_key(&peer)
    }

    fn new_inbox(&self) -> Arc<Inbox> {
        let (tx, rx) = mpsc::channel(self.inbox_messages.max(1));
        Arc::new(Inbox { feed: Mutex::new(Some(tx)), rx: tokio::sync::Mutex::new(rx) })
    }

    /// The inbox for `(session, peer)`, or `None` if the session was closed here.
    fn inbox(&self, session: SessionId, peer: PartyId) -> Option<Arc<Inbox>> {
        let mut t = lock(&self.sessions);
        if t.closed.contains(&session) {
            return None;
        }
        let state = t.open.entry(session).or_default();
        Some(state.inbound.entry(peer).or_insert_with(|| self.new_inbox()).clone())
    }

    fn outbox(&self, session: SessionId, peer: PartyId) -> Option<Arc<Outbox>> {
        let mut t = lock(&self.sessions);
        if t.closed.contains(&session) {
            return None;
        }
        let state = t.open.entry(session).or_default();
        Some(state.outbound.entry(peer).or_default().clone())
    }

    /// Hands the feed of `(session, peer)`'s inbox to a new incoming stream.
    fn attach(&self, session: SessionId, peer: PartyId) -> Attach {
        let inbox = match self.inbox(session, peer) {
            Some(inbox) => inbox,
            None => return Attach::Closed,
        };
        let feed = lock(&inbox.feed).take();
        match feed {
            Some(tx) => Attach::Feed(tx),
            None => Attach::Duplicate,
        }
    }

    fn close_session(&self, session: SessionId) {
        let state = {
            let mut t = lock(&self.sessions);
            if t.closed.insert(session) {
                t.closed_order.push_back(session);
                if t.closed_order.len() > CLOSED_MEMORY {
                    if let Some(old) = t.closed_order.pop_front() {
                        t.closed.remove(&old);
                    }
                }
            }
            t.open.remove(&session)
        };
        let Some(state) = state else { return };
        // Dropping the inboxes stops their readers (which then stop the peer's streams).
        drop(state.inbound);
        let mut drains = lock(&self.drains);
        while drains.try_join_next().is_some() {}
        for out in state.outbound.into_values() {
            // A send in flight holds the lock; its stream is finished when it drops.
            if let Ok(mut out) = out.try_lock() {
                if let Some(mut stream) = out.stream.take() {
                    let _ = stream.finish();
                    let acked = stream.stopped();
                    drains.spawn_on(
                        async move {
                            let _ = acked.await;
                        },
                        &self.runtime,
                    );
                }
            }
        }
    }

    fn fault(&self, e: TransportError) {
        tracing::warn!(target: "tacit::quic", "{e}");
        let mut f = lock(&self.faults);
        if f.len() >= FAULT_MEMORY {
            f.pop_front();
        }
        f.push_back(e);
    }

    /// Registers an established connection to `peer` and starts reading its streams.
    fn adopt(self: &Arc<Self>, peer: PartyId, conn: Connection) -> Result<(), Connection> {
        {
            let mut conns = self.conns.write().unwrap_or_else(|e| e.into_inner());
            if let Some(old) = conns.get(&peer) {
                if old.close_reason().is_none() {
                    return Err(conn);
                }
            }
            conns.insert(peer, conn.clone());
        }
        tracing::debug!(target: "tacit::quic", "{} connected to {peer}", self.me);
        self.runtime.spawn(accept_streams(self.clone(), peer, conn));
        self.conn_events.send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Identifies and registers a connection a peer dialled, confirming it to the dialer.
    async fn adopt_incoming(self: &Arc<Self>, conn: Connection) {
        let remote = conn.remote_address();
        let peer = peer_fingerprint(&conn).and_then(|fp| self.pins.get(&fp).copied());
        let Some(peer) = peer else {
            // The verifier already refused unpinned certificates; belt and braces.
            self.refusals.push(format!("connection from {remote} without a pinned certificate"));
            conn.close(VarInt::from_u32(CLOSE_REFUSED), b"certificate not pinned");
            return;
        };
        if !dials(peer, self.me) {
            self.refusals.push(format!("{peer} dialled {} from {remote}, but {} dials {peer}", self.me, self.me));
            conn.close(VarInt::from_u32(CLOSE_REFUSED), b"wrong direction");
            return;
        }
        if self.has_live_conn(peer) {
            self.refusals.push(format!("second connection from {peer} ({remote}) while the first is open"));
            conn.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate connection");
            return;
        }
        // The confirmation stream is opened before anything else, so it is the dialer's first
        // incoming stream (streams are accepted in id order).
        let mut confirm = match conn.open_uni().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(target: "tacit::quic", "connection from {peer} lost: {e}");
                return;
            }
        };
        if let Err(conn) = self.adopt(peer, conn) {
            self.refusals.push(format!("second connection from {peer} ({remote}) while the first is open"));
            conn.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate connection");
            return;
        }
        if confirm.write_all(&CONFIRM_MAGIC).await.is_ok() {
            let _ = confirm.finish();
        }
    }

    fn has_live_conn(&self, peer: PartyId) -> bool {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).get(&peer).is_some_and(|c| c.close_reason().is_none())
    }
}

/// A party endpoint's configuration. A peer that crashed and restarted holds no state of the
/// connection its previous process had with us, and we would wait up to the idle timeout to
/// notice. With a stateless-reset key that survives restarts (derived from the party's private
/// key) and connection ids it does not try to recognise, the restarted endpoint answers our
/// next packet on the old connection (a keep-alive at the latest) with a stateless reset that
/// we accept, so the old connection closes at once and the peers connect afresh.
fn endpoint_config(identity: &tls::PartyIdentity) -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::new(Arc::new(ResetKey(identity.stateless_reset_key())));
    config.cid_generator(|| Box::new(RandomCids));
    config
}

/// Keyed BLAKE3 as the HMAC of stateless-reset tokens.
struct ResetKey(zeroize::Zeroizing<[u8; 32]>);

impl quinn::crypto::HmacKey for ResetKey {
    fn sign(&self, data: &[u8], out: &mut [u8]) {
        let tag = blake3::keyed_hash(&self.0, data);
        let n = out.len().min(32);
        if let (Some(dst), Some(src)) = (out.get_mut(..n), tag.as_bytes().get(..n)) {
            dst.copy_from_slice(src);
        }
    }

    fn signature_len(&self) -> usize {
        32
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> Result<(), quinn::crypto::CryptoError> {
        // blake3::Hash compares in constant time.
        let expected = blake3::keyed_hash(&self.0, data);
        let given: [u8; 32] = signature.try_into().map_err(|_| quinn::crypto::CryptoError)?;
        if expected == blake3::Hash::from(given) {
            Ok(())
        } else {
            Err(quinn::crypto::CryptoError)
        }
    }
}

/// 8 random bytes per connection id, none rejected on sight: a restarted endpoint must answer
/// packets for ids its previous process issued (with a stateless reset) rather than drop them.
struct RandomCids;

impl quinn::ConnectionIdGenerator for RandomCids {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&rand::random::<[u8; 8]>())
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

async fn accept_loop(endpoint: Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => shared.adopt_incoming(conn).await,
                Err(e) => {
                    tracing::debug!(target: "tacit::quic", "handshake from {remote} failed: {e}")
                }
            }
        });
    }
}

async fn accept_streams(shared: Arc<Shared>, peer: PartyId, conn: Connection) {
    loop {
        match conn.accept_uni().await {
            Ok(stream) => {
                tokio::spawn(read_stream(shared.clone(), peer, stream));
            }
            Err(e) => {
                tracing::debug!(target: "tacit::quic", "connection to {peer} ended: {e}");
                return;
            }
        }
    }
}

fn read_error(peer: PartyId, e: quinn::ReadExactError, what: &str) -> TransportError {
    match e {
        quinn::ReadExactError::FinishedEarly(got) => {
            TransportError::Malformed { peer, reason: format!("stream ended inside {what} after {got} bytes") }
        }
        quinn::ReadExactError::ReadError(quinn::ReadError::Reset(code)) => {
            TransportError::Closed { peer, reason: format!("peer reset the session stream (code {code})") }
        }
        quinn::ReadExactError::ReadError(e) => TransportError::Closed { peer, reason: e.to_string() },
    }
}

fn write_error(peer: PartyId, e: quinn::WriteError) -> TransportError {
    let reason = match e {
        quinn::WriteError::Stopped(code) => {
            let why = match code.into_inner() {
                c if c == u64::from(STOP_SESSION_CLOSED) => "the peer closed the session",
                c if c == u64::from(STOP_FRAME_TOO_LARGE) => "the peer refused an over-long frame",
                c if c == u64::from(STOP_MALFORMED) => "the peer refused a malformed stream",
                _ => "unknown code",
            };
            format!("peer stopped the session stream (code {code}: {why})")
        }
        e => e.to_string(),
    };
    TransportError::Closed { peer, reason }
}

async fn read_stream(shared: Arc<Shared>, peer: PartyId, mut stream: RecvStream) {
    let mut header = [0u8; STREAM_HEADER_LEN];
    match stream.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return,
        Err(e) => {
            shared.fault(read_error(peer, e, "the stream header"));
            let _ = stream.stop(VarInt::from_u32(STOP_MALFORMED));
            return;
        }
    }
    let session = match header.split_first_chunk::<4>() {
        Some((magic, rest)) if *magic == STREAM_MAGIC => match <[u8; 16]>::try_from(rest) {
            Ok(id) => SessionId(id),
            Err(_) => return,
        },
        _ => {
            shared.fault(TransportError::Malformed {
                peer,
                reason: format!("stream header does not start with {:?}", String::from_utf8_lossy(&STREAM_MAGIC)),
            });
            let _ = stream.stop(VarInt::from_u32(STOP_MALFORMED));
            return;
        }
    };
    let feed = match shared.attach(session, peer) {
        Attach::Feed(tx) => tx,
        Attach::Closed => {
            let _ = stream.stop(VarInt::from_u32(STOP_SESSION_CLOSED));
            return;
        }
        Attach::Duplicate => {
            shared.fault(TransportError::Malformed { peer, reason: format!("a second stream for {session}") });
            let _ = stream.stop(VarInt::from_u32(STOP_MALFORMED));
            return;
        }
    };
    shared.bytes_received.fetch_add(STREAM_HEADER_LEN as u64, Ordering::Relaxed);
    loop {
        match read_frame(&shared, peer, &mut stream).await {
            Ok(Some(payload)) => {
                if feed.send(Ok(payload)).await.is_err() {
                    // Session closed here: tell the peer to stop sending.
                    let _ = stream.stop(VarInt::from_u32(STOP_SESSION_CLOSED));
                    return;
                }
            }
            Ok(None) => return,
            Err((e, stop)) => {
                if let Some(code) = stop {
                    let _ = stream.stop(VarInt::from_u32(code));
                }
                let _ = feed.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Reads one frame; `Ok(None)` when the peer finished the stream at a frame boundary.
async fn read_frame(
    shared: &Shared,
    peer: PartyId,
    stream: &mut RecvStream,
) -> Result<Option<Bytes>, (TransportError, Option<u32>)> {
    let mut len = [0u8; FRAME_HEADER_LEN];
    match stream.read_exact(&mut len).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err((read_error(peer, e, "a frame length"), Some(STOP_MALFORMED))),
    }
    let len = u32::from_le_bytes(len);
    let cap = shared.max_frame;
    let size = match usize::try_from(len) {
        Ok(size) if size <= cap => size,
        _ => {
            return Err((
                TransportError::FrameTooLarge { peer, len: u64::from(len), cap: cap as u64 },
                Some(STOP_FRAME_TOO_LARGE),
            ))
        }
    };
    let mut payload = BytesMut::zeroed(size);
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| (read_error(peer, e, "a frame payload"), Some(STOP_MALFORMED)))?;
    shared.bytes_received.fetch_add((FRAME_HEADER_LEN + size) as u64, Ordering::Relaxed);
    Ok(Some(payload.freeze()))
}

/// Whether a failed dial should not be retried, and why.
fn definitive_refusal(peer: PartyId, e: &ConnectionError) -> Option<String> {
    match e {
        ConnectionError::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            // 0x100..=0x1ff: TLS alerts, i.e. the peer refused the handshake.
            (code & !0xff == 0x100).then(|| format!("{peer} refused our certificate during the handshake ({close})"))
        }
        ConnectionError::ApplicationClosed(close) if close.error_code == VarInt::from_u32(CLOSE_REFUSED) => {
            Some(format!("{peer} refused the connection ({close})"))
        }
        _ => None,
    }
}

async fn dial(
    endpoint: Endpoint,
    identity: Arc<PartyIdentity>,
    peer: PeerInfo,
    transport: Arc<quinn::TransportConfig>,
    deadline: Instant,
) -> Result<(PartyId, Connection), TransportError> {
    let name = party_name(peer.id);
    let connect_err = |reason: String| TransportError::Connect { peer: peer.id, reason };
    let mut last = String::from("no attempt made");
    let started = Instant::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(connect_err(format!(
                "no connection to {} after {:?}: {last}",
                peer.addr,
                now.duration_since(started)
            )));
        }
        let (tls_cfg, verifier) = tls::client_config(&identity, peer.id, peer.cert_fingerprint)?;
        let crypto =
            QuicClientConfig::try_from(tls_cfg).map_err(|e| TransportError::Config(format!("QUIC client TLS: {e}")))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(transport.clone());
        let connecting = endpoint
            .connect_with(cfg, peer.addr, &name)
            .map_err(|e| connect_err(format!("cannot dial {}: {e}", peer.addr)))?;
        let attempt = DIAL_ATTEMPT.min(deadline.duration_since(now));
        match tokio::time::timeout(attempt, connecting).await {
            Ok(Ok(conn)) => {
                if peer_fingerprint(&conn) != Some(peer.cert_fingerprint) {
                    conn.close(VarInt::from_u32(CLOSE_REFUSED), b"certificate not pinned");
                    return Err(connect_err("certificate does not match the pin".into()));
                }
                // In TLS 1.3 the client finishes before the server has checked the client's
                // certificate: wait for the acceptor's confirmation.
                let wait = DIAL_ATTEMPT.min(deadline.saturating_duration_since(Instant::now()));
                match tokio::time::timeout(wait, await_confirmation(&conn)).await {
                    Ok(Ok(())) => return Ok((peer.id, conn)),
                    Ok(Err(Confirmation::Lost(e))) => {
                        if let Some(reason) = definitive_refusal(peer.id, &e) {
                            return Err(connect_err(reason));
                        }
                        last = format!("last attempt: {e}");
                    }
                    Ok(Err(Confirmation::Bad)) => {
                        conn.close(VarInt::from_u32(CLOSE_REFUSED), b"bad confirmation");
                        return Err(connect_err("the acceptor's confirmation stream is malformed".into()));
                    }
                    Err(_) => {
                        conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"not confirmed");
                        last = "last attempt: the acceptor did not confirm the connection".into();
                    }
                }
            }
            Ok(Err(e)) => {
                if let Some(reason) = lock(&verifier.refused).take() {
                    return Err(connect_err(reason));
                }
                if let Some(reason) = definitive_refusal(peer.id, &e) {
                    return Err(connect_err(reason));
                }
                last = format!("last attempt: {e}");
            }
            Err(_) => last = "last attempt: handshake timed out".into(),
        }
        tokio::time::sleep(DIAL_RETRY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

enum Confirmation {
    Lost(ConnectionError),
    Bad,
}

/// Reads the acceptor's confirmation: the first incoming stream, carrying [`CONFIRM_MAGIC`].
async fn await_confirmation(conn: &Connection) -> Result<(), Confirmation> {
    let mut stream = conn.accept_uni().await.map_err(Confirmation::Lost)?;
    let mut magic = [0u8; 4];
    match stream.read_exact(&mut magic).await {
        Ok(()) if magic == CONFIRM_MAGIC => Ok(()),
        Ok(()) => Err(Confirmation::Bad),
        Err(quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e))) => Err(Confirmation::Lost(e)),
        Err(_) => Err(Confirmation::Bad),
    }
}

fn transport_config(o: &QuicOptions) -> Result<quinn::TransportConfig, TransportError> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(o.max_open_sessions));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.stream_receive_window(
        VarInt::from_u64(o.stream_window).map_err(|_| TransportError::Config("stream_window is too large".into()))?,
    );
    t.keep_alive_interval(Some(o.keep_alive));
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(o.idle_timeout)
            .map_err(|_| TransportError::Config("idle_timeout is too large".into()))?,
    ));
    Ok(t)
}

fn validate(config: &QuicConfig) -> Result<usize, TransportError> {
    let bad = |m: String| Err(TransportError::Config(m));
    let n = config.peers.len() + 1;
    let mut ids = HashSet::new();
    let mut fps = HashSet::new();
    fps.insert(config.identity.fingerprint());
    for p in &config.peers {
        if p.id == config.id {
            return bad(format!("{} lists itself as a peer", config.id));
        }
        if p.id.index() >= n {
            return bad(format!("peer {} is outside 1..={n}", p.id));
        }
        if !ids.insert(p.id) {
            return bad(format!("peer {} is listed twice", p.id));
        }
        if !fps.insert(p.cert_fingerprint) {
            return bad(format!("peer {}'s fingerprint is not unique", p.id));
        }
    }
    if config.id.index() >= n {
        return bad(format!("{} is outside 1..={n}", config.id));
    }
    let o = &config.options;
    if o.max_frame == 0 || u32::try_from(o.max_frame).is_err() {
        return bad("max_frame must be in 1..=u32::MAX".into());
    }
    if o.inbox_messages == 0 {
        return bad("inbox_messages must be at least 1".into());
    }
    if o.keep_alive.is_zero() || o.keep_alive >= o.idle_timeout {
        return bad("keep_alive must be non-zero and shorter than idle_timeout".into());
    }
    Ok(n)
}

fn prepare_socket(socket: &socket2::Socket, buffer: usize) {
    for (what, res) in [("receive", socket.set_recv_buffer_size(buffer)), ("send", socket.set_send_buffer_size(buffer))]
    {
        if let Err(e) = res {
            tracing::warn!(target: "tacit::quic", "cannot set the UDP {what} buffer to {buffer}: {e}");
        }
    }
    if let Ok(got) = socket.recv_buffer_size() {
        if got < buffer {
            tracing::warn!(
                target: "tacit::quic",
                "UDP receive buffer is {got} bytes, not {buffer} (raise net.core.rmem_max)"
            );
        }
    }
}

fn bind_udp(addr: SocketAddr, buffer: usize) -> Result<std::net::UdpSocket, TransportError> {
    let err = |e: std::io::Error| TransportError::Config(format!("UDP socket on {addr}: {e}"));
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
            .map_err(err)?;
    prepare_socket(&socket, buffer);
    socket.bind(&addr.into()).map_err(err)?;
    Ok(socket.into())
}

/// Closes the endpoint unless disarmed (so a failed or cancelled `connect` leaves nothing).
struct CloseOnDrop(Option<Endpoint>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(e) = self.0.take() {
            e.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"connect failed");
        }
    }
}

/// One party's QUIC endpoint, connected to every other party of the cluster.
pub struct QuicTransport {
    id: PartyId,
    n: usize,
    endpoint: Endpoint,
    shared: Arc<Shared>,
    recv_timeout: Duration,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("id", &self.id)
            .field("n", &self.n)
            .field("local_addr", &self.endpoint.local_addr().ok())
            .finish()
    }
}

impl QuicTransport {
    /// Binds `config.listen` and connects to every peer (see the module docs); waits at most
    /// `connect_timeout`. Must run inside a tokio runtime.
    pub async fn connect(config: QuicConfig) -> Result<Self, TransportError> {
        let socket = bind_udp(config.listen, config.options.udp_buffer)?;
        Self::connect_with_socket(config, socket).await
    }

    /// As [`QuicTransport::connect`] on an already bound UDP socket (`config.listen` is then
    /// ignored), e.g. one bound to port 0 whose address was handed to the peers.
    pub async fn connect_on(socket: std::net::UdpSocket, config: QuicConfig) -> Result<Self, TransportError> {
        prepare_socket(&socket2::SockRef::from(&socket), config.options.udp_buffer);
        Self::connect_with_socket(config, socket).await
    }

    async fn connect_with_socket(config: QuicConfig, socket: std::net::UdpSocket) -> Result<Self, TransportError> {
        let n = validate(&config)?;
        let QuicConfig { id, identity, peers, options, .. } = config;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| TransportError::Config("QUIC transport needs a tokio runtime".into()))?;
        let pins: HashMap<Fingerprint, PartyId> = peers.iter().map(|p| (p.cert_fingerprint, p.id)).collect();
        let refusals = Arc::new(RefusalLog::default());
        let transport = Arc::new(transport_config(&options)?);
        let server_tls = tls::server_config(id, &identity, pins.clone(), refusals.clone())?;
        let server_crypto = QuicServerConfig::try_from(server_tls)
            .map_err(|e| TransportError::Config(format!("QUIC server TLS: {e}")))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport.clone());
        let endpoint = Endpoint::new(endpoint_config(&identity), Some(server), socket, Arc::new(quinn::TokioRuntime))
            .map_err(|e| TransportError::Config(format!("QUIC endpoint: {e}")))?;
        let mut guard = CloseOnDrop(Some(endpoint.clone()));

        let shared = Arc::new(Shared {
            me: id,
            max_frame: options.max_frame,
            inbox_messages: options.inbox_messages,
            sessions: Mutex::new(SessionTable::default()),
            conns: RwLock::new(HashMap::new()),
            conn_events: watch::Sender::new(0),
            pins,
            refusals,
            faults: Mutex::new(VecDeque::new()),
            drains: Mutex::new(JoinSet::new()),
            runtime: runtime.clone(),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
        });
        let mut events = shared.conn_events.subscribe();
        runtime.spawn(accept_loop(endpoint.clone(), shared.clone()));

        let deadline = Instant::now() + options.connect_timeout;
        let identity = Arc::new(identity);
        let mut dialling = JoinSet::new();
        for p in peers.iter().filter(|p| dials(id, p.id)) {
            dialling
                .spawn_on(dial(endpoint.clone(), identity.clone(), p.clone(), transport.clone(), deadline), &runtime);
        }
        while let Some(res) = dialling.join_next().await {
            let (peer, conn) = res.map_err(|e| TransportError::Config(format!("dial task failed: {e}")))??;
            if let Err(conn) = shared.adopt(peer, conn) {
                conn.close(VarInt::from_u32(CLOSE_DUPLICATE), b"duplicate connection");
            }
        }
        let started = Instant::now();
        loop {
            let missing = peers.iter().find(|p| dials(p.id, id) && !shared.has_conn(p.id));
            let Some(missing) = missing else { break };
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, events.changed()).await {
                continue;
            }
            let mut reason = format!("{} did not connect within {:?}", missing.id, started.elapsed());
            if let Some(refused) = shared.refusals.summary() {
                reason.push_str(&format!("; refused handshakes: {refused}"));
            }
            return Err(TransportError::Connect { peer: missing.id, reason });
        }
        guard.0 = None;
        Ok(Self { id, n, endpoint, shared, recv_timeout: options.recv_timeout })
    }

    /// The UDP address this party listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint.local_addr().map_err(|e| TransportError::Config(format!("local address: {e}")))
    }

    /// Faults that could not be delivered to a session (e.g. a stream with a bad header),
    /// oldest first; each names the peer. Clears the list.
    pub fn take_faults(&self) -> Vec<TransportError> {
        lock(&self.shared.faults).drain(..).collect()
    }

    /// Handshakes this party refused (unpinned certificates, wrong direction, duplicates).
    pub fn refused_handshakes(&self) -> Option<String> {
        self.shared.refusals.summary()
    }

    /// Graceful shutdown: finishes every open session stream, waits (at most 10 s) until the
    /// peers have acknowledged all data sent, then closes every connection and the endpoint.
    /// Call it once the protocol is over at every party; sends and receives fail afterwards.
    pub async fn shutdown(&self) {
        let outs: Vec<Arc<Outbox>> = {
            let mut t = lock(&self.shared.sessions);
            t.open.values_mut().flat_map(|s| s.outbound.drain().map(|(_, o)| o)).collect()
        };
        let mut acks = Vec::with_capacity(outs.len());
        for out in outs {
            let mut out = out.lock().await;
            if let Some(mut stream) = out.stream.take() {
                let _ = stream.finish();
                acks.push(stream.stopped());
            }
        }
        let mut drains = std::mem::take(&mut *lock(&self.shared.drains));
        for ack in acks {
            drains.spawn_on(
                async move {
                    let _ = ack.await;
                },
                &self.shared.runtime,
            );
        }
        let limit = DRAIN_LIMIT.min(self.recv_timeout);
        let _ = tokio::time::timeout(limit, async { while drains.join_next().await.is_some() {} }).await;
        self.endpoint.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    fn check_peer(&self, peer: PartyId) -> Result<(), TransportError> {
        if peer == self.id || peer.index() >= self.n {
            return Err(TransportError::UnknownPeer(peer));
        }
        Ok(())
    }
}

impl Drop for QuicTransport {
    fn drop(&mut self) {
        // Ends every connection and, with them, the background tasks.
        self.endpoint.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"dropped");
    }
}

impl Transport for QuicTransport {
    fn id(&self) -> PartyId {
        self.id
    }

    fn n_parties(&self) -> usize {
        self.n
    }

    async fn send(&self, session: SessionId, to: PartyId, payload: Bytes) -> Result<(), TransportError> {
        self.check_peer(to)?;
        let cap = self.shared.max_frame;
        let too_large = || TransportError::PayloadTooLarge { len: payload.len(), cap };
        if payload.len() > cap {
            return Err(too_large());
        }
        let len = u32::try_from(payload.len()).map_err(|_| too_large())?;
        let outbox = self
            .shared
            .outbox(session, to)
            .ok_or_else(|| TransportError::Closed { peer: to, reason: format!("{session} was closed here") })?;
        let mut out = outbox.lock().await;
        if out.torn {
            // Tell the peer too, so its reader fails instead of waiting for the frame's rest.
            if let Some(mut stream) = out.stream.take() {
                let _ = stream.reset(VarInt::from_u32(RESET_TORN));
            }
            return Err(TransportError::Closed {
                peer: to,
                reason: format!("an earlier send on {session} was cancelled mid-frame"),
            });
        }
        let mut header = BytesMut::with_capacity(STREAM_HEADER_LEN + FRAME_HEADER_LEN);
        if out.stream.is_none() {
            let conn = self
                .shared
                .conn(to)
                .ok_or_else(|| TransportError::Closed { peer: to, reason: "not connected".into() })?;
            let stream =
                conn.open_uni().await.map_err(|e| TransportError::Closed { peer: to, reason: e.to_string() })?;
            header.extend_from_slice(&STREAM_MAGIC);
            header.extend_from_slice(&session.0);
            out.stream = Some(stream);
        }
        header.extend_from_slice(&len.to_le_bytes());
        let wire = (header.len() + payload.len()) as u64;
        out.torn = true;
        let stream =
            out.stream.as_mut().ok_or_else(|| TransportError::Closed { peer: to, reason: "no stream".into() })?;
        let written = stream.write_all_chunks(&mut [header.freeze(), payload]).await;
        // Only a cancelled write leaves `torn` set; a failed one leaves a dead stream whose
        // next write reports the real cause again.
        out.torn = false;
        written.map_err(|e| write_error(to, e))?;
        self.shared.bytes_sent.fetch_add(wire, Ordering::Relaxed);
        self.shared.messages_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn recv(&self, session: SessionId, from: PartyId) -> Result<Bytes, TransportError> {
        self.check_peer(from)?;
        let inbox = self
            .shared
            .inbox(session, from)
            .ok_or_else(|| TransportError::Closed { peer: from, reason: format!("{session} was closed here") })?;
        let conn = self.shared.conn(from);
        let wait = async {
            let mut rx = inbox.rx.lock().await;
            let lost = async {
                match &conn {
                    Some(c) => c.closed().await.to_string(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                m = rx.recv() => match m {
                    Some(delivery) => delivery,
                    None => Err(TransportError::Closed {
                        peer: from,
                        reason: format!("{from} ended its stream for {session}"),
                    }),
                },
                reason = lost => Err(TransportError::Closed { peer: from, reason }),
            }
        };
        match tokio::time::timeout(self.recv_timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout { peer: from, after: self.recv_timeout }),
        }
    }

    fn close_session(&self, session: SessionId) {
        self.shared.close_session(session);
    }

    fn max_frame(&self) -> usize {
        self.shared.max_frame
    }

    fn stats(&self) -> TransportStats {
        TransportStats {
            bytes_sent: self.shared.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.shared.bytes_received.load(Ordering::Relaxed),
            messages_sent: self.shared.messages_sent.load(Ordering::Relaxed),
        }
    }
}

/// Test support: dials `peer` as the holder of `identity`, with the transport's pinned TLS,
/// from a fresh client endpoint, and returns the raw connection (to send crafted bytes).
#[doc(hidden)]
pub async fn raw_dial(
    identity: PartyIdentity,
    peer: PeerInfo,
    timeout: Duration,
) -> Result<(Endpoint, Connection), TransportError> {
    let local: SocketAddr = if peer.addr.is_ipv4() {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
    };
    let endpoint = Endpoint::client(local).map_err(|e| TransportError::Config(format!("client endpoint: {e}")))?;
    let transport = Arc::new(transport_config(&QuicOptions::default())?);
    let deadline = Instant::now() + timeout;
    let (_, conn) = dial(endpoint.clone(), Arc::new(identity), peer, transport, deadline).await?;
    Ok((endpoint, conn))
}

mod party_id_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::party::PartyId;

    pub fn serialize<S: Serializer>(id: &PartyId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(id.get())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PartyId, D::Error> {
        let raw = u16::deserialize(d)?;
        PartyId::new(raw).ok_or_else(|| {
            serde::de::Error::custom(format!("party id {raw} is outside 1..={}", crate::party::MAX_PARTIES))
        })
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
