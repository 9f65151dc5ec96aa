//! A node's intake for clients (bidders, institutions): one request, one response, over QUIC;
//! or, for protocols where a client takes part in rounds (PSI institutions), a request that
//! the node may turn into a duplex channel of framed messages ([`open_channel`],
//! [`IntakeRequest::accept_channel`]).
//!
//! The node authenticates with its cluster certificate, which the client pins (the
//! fingerprint from the cluster file). With [`IntakeServer::bind`] clients are anonymous at
//! this layer (applications authenticate what they accept, e.g. against on-chain
//! commitments). With [`IntakeServer::bind_authenticated`] every client must present a
//! certificate and prove its key in the TLS handshake (mutual TLS, [`submit_as`]); the request
//! then carries the certificate's SHA-256 fingerprint ([`IntakeRequest::client`]) for the
//! application's policy to decide on (the transport accepts any well-signed certificate: there
//! is no CA, the fingerprint is the identity). Requests are capped
//! before allocation; each is handed to the application through [`IntakeServer::next`] with a
//! responder, so protocol logic stays apart from I/O.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, VarInt};
use tokio::sync::{mpsc, oneshot};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;

use super::tls::{
    peer_fingerprint, provider, tls13_signature_methods, Fingerprint, PartyIdentity, PinnedServerVerifier,
};
use super::TransportError;
use crate::party::PartyId;

/// ALPN of the client intake (distinct from the parties' protocol).
pub const INTAKE_ALPN: &[u8] = b"tacit-intake/1";

/// Requests queued for the application at most; further streams wait.
const QUEUE: usize = 256;

/// Client connections open at once at most; further ones are refused at once, so a flood of
/// connections cannot grow the node's memory without bound (each carries at most 16 streams).
pub const MAX_CONNECTIONS: usize = 1024;

fn config_err(what: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError::Config(format!("{what}: {e}"))
}

fn intake_transport() -> Result<quinn::TransportConfig, TransportError> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_concurrent_bidi_streams(VarInt::from_u32(16));
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(Duration::from_secs(30)).map_err(|e| config_err("idle timeout", e))?,
    ));
    // A client waiting for a long job keeps its connection alive.
    t.keep_alive_interval(Some(Duration::from_secs(10)));
    Ok(t)
}

/// First byte of a stream: one request (the rest of the stream), then one response.
const MODE_REQUEST: u8 = 0;
/// First byte of a stream: a length-prefixed request that may become a channel.
const MODE_CHANNEL: u8 = 1;
/// Frames queued to send on a channel at most.
const CHANNEL_QUEUE: usize = 4;
/// Frames read ahead of the application at most: a peer that sends faster waits (QUIC flow
/// control), so what a channel holds unread is one queued frame and one being read.
const CHANNEL_READ_AHEAD: usize = 1;

/// A duplex channel of framed messages between a client and a node, over one QUIC stream.
/// Frames are at most the cap given when it was opened; a longer one closes the channel.
#[derive(Debug)]
pub struct IntakeChannel {
    /// Frames to send.
    pub outgoing: mpsc::Sender<bytes::Bytes>,
    /// Frames received; `None` once the other end closed or broke the channel.
    pub incoming: mpsc::Receiver<bytes::Bytes>,
}

/// What the application answered, and the channel it opened, if any.
type Answer = (Result<Vec<u8>, String>, Option<ChannelEnds>);

/// The pump's ends of a channel the application accepted.
#[derive(Debug)]
struct ChannelEnds {
    to_app: mpsc::Sender<bytes::Bytes>,
    from_app: mpsc::Receiver<bytes::Bytes>,
    max_frame: usize,
}

impl IntakeChannel {
    fn new(max_frame: usize) -> (Self, ChannelEnds) {
        let (outgoing, from_app) = mpsc::channel(CHANNEL_QUEUE);
        let (to_app, incoming) = mpsc::channel(CHANNEL_READ_AHEAD);
        (Self { outgoing, incoming }, ChannelEnds { to_app, from_app, max_frame })
    }
}

/// One length-prefixed frame; `None` at the end of the stream, on an error or over the cap.
async fn read_frame(recv: &mut quinn::RecvStream, max_frame: usize) -> Option<bytes::Bytes> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.ok()?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_frame {
        return None;
    }
    let mut frame = vec![0u8; len];
    recv.read_exact(&mut frame).await.ok()?;
    Some(frame.into())
}

/// Moves frames between a QUIC stream and a channel's queues until either side stops.
async fn pump(mut send: quinn::SendStream, mut recv: quinn::RecvStream, ends: ChannelEnds) {
    let ChannelEnds { to_app, mut from_app, max_frame } = ends;
    let reader = async move {
        loop {
            let frame = tokio::select! {
                f = read_frame(&mut recv, max_frame) => f,
                // The application hung up: stop reading at once.
                _ = to_app.closed() => None,
            };
            let delivered = match frame {
                Some(frame) => to_app.send(frame).await.is_ok(),
                None => false,
            };
            if !delivered {
                let _ = recv.stop(VarInt::from_u32(0));
                return;
            }
        }
    };
    let writer = async move {
        while let Some(frame) = from_app.recv().await {
            let Ok(len) = u32::try_from(frame.len()) else { break };
            if send.write_all(&len.to_be_bytes()).await.is_err() || send.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
        let _ = send.stopped().await;
    };
    // The reader ends when the peer finishes or breaks the stream; the writer when the
    // application drops its sender. Each side's end is the other's signal.
    tokio::join!(reader, writer);
}

fn status_frame(answer: Result<Vec<u8>, String>) -> Vec<u8> {
    let mut frame = Vec::new();
    match answer {
        Ok(bytes) => {
            frame.push(0u8);
            frame.extend(bytes);
        }
        Err(reason) => {
            frame.push(1u8);
            frame.extend(reason.into_bytes());
        }
    }
    frame
}

fn parse_status(node: PartyId, frame: &[u8]) -> Result<Vec<u8>, TransportError> {
    match frame.split_first() {
        Some((0, body)) => Ok(body.to_vec()),
        Some((1, reason)) => Err(TransportError::Malformed {
            peer: node,
            reason: format!("refused: {}", String::from_utf8_lossy(reason)),
        }),
        _ => Err(TransportError::Malformed { peer: node, reason: "empty or unknown response".into() }),
    }
}

/// One client request, and the way to answer it.
#[derive(Debug)]
pub struct IntakeRequest {
    /// The request bytes (at most the server's cap).
    pub payload: Vec<u8>,
    /// The client's address (for logs; not an identity).
    pub from: SocketAddr,
    /// The fingerprint of the certificate the client proved it holds (only on an endpoint
    /// bound with [`IntakeServer::bind_authenticated`]; `None` otherwise).
    pub client: Option<Fingerprint>,
    /// Whether the client asked for a channel ([`open_channel`]); only such a request can
    /// be accepted as one.
    pub wants_channel: bool,
    respond: oneshot::Sender<Answer>,
}

impl IntakeRequest {
    /// Answers the request: `Ok` bytes, or a refusal the client sees as its reason. A
    /// channel request answered this way is closed after the answer.
    pub fn respond(self, answer: Result<Vec<u8>, String>) {
        // The client may be gone; nothing to do then.
        let _ = self.respond.send((answer, None));
    }

    /// Answers a channel request with `answer` and keeps its stream open as a channel whose
    /// frames are at most `max_frame` bytes. `None` (and the request refused) if the client
    /// did not ask for a channel.
    pub fn accept_channel(self, answer: Vec<u8>, max_frame: usize) -> Option<IntakeChannel> {
        if !self.wants_channel {
            let _ = self.respond.send((Err("not a channel request".into()), None));
            return None;
        }
        let (channel, ends) = IntakeChannel::new(max_frame);
        self.respond.send((Ok(answer), Some(ends))).ok()?;
        Some(channel)
    }
}

/// A listening intake endpoint.
#[derive(Debug)]
pub struct IntakeServer {
    endpoint: Endpoint,
    requests: mpsc::Receiver<IntakeRequest>,
}

impl IntakeServer {
    /// Listens on `listen` with the node's `identity`; requests over `max_request` bytes are
    /// refused unread.
    pub fn bind(listen: SocketAddr, identity: &PartyIdentity, max_request: usize) -> Result<Self, TransportError> {
        Self::bind_with(listen, identity, max_request, false)
    }

    /// As [`IntakeServer::bind`], but every client must present a certificate and prove its
    /// private key in the handshake; each request carries the certificate's fingerprint in
    /// [`IntakeRequest::client`]. Clients connect with [`submit_as`].
    pub fn bind_authenticated(
        listen: SocketAddr,
        identity: &PartyIdentity,
        max_request: usize,
    ) -> Result<Self, TransportError> {
        Self::bind_with(listen, identity, max_request, true)
    }

    fn bind_with(
        listen: SocketAddr,
        identity: &PartyIdentity,
        max_request: usize,
        authenticated: bool,
    ) -> Result<Self, TransportError> {
        let provider = Arc::new(provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| config_err("TLS", e))?;
        let builder = if authenticated {
            builder.with_client_cert_verifier(Arc::new(AnyClientCert { provider }))
        } else {
            builder.with_no_client_auth()
        };
        let mut tls = builder
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(identity.cert_der().to_vec())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(identity.expose_key_der().to_vec().into()),
            )
            .map_err(|e| config_err("TLS certificate", e))?;
        tls.alpn_protocols = vec![INTAKE_ALPN.to_vec()];
        let crypto = QuicServerConfig::try_from(tls).map_err(|e| config_err("QUIC server TLS", e))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(Arc::new(intake_transport()?));
        let endpoint = Endpoint::server(server, listen).map_err(|e| config_err("intake endpoint", e))?;
        let (tx, requests) = mpsc::channel(QUEUE);
        tokio::spawn(accept_loop(endpoint.clone(), tx, max_request, authenticated));
        Ok(Self { endpoint, requests })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint.local_addr().map_err(|e| config_err("intake address", e))
    }

    /// The next request; `None` once the endpoint is closed.
    pub async fn next(&mut self) -> Option<IntakeRequest> {
        self.requests.recv().await
    }

    /// Stops accepting and closes every connection.
    pub fn close(&self) {
        self.endpoint.close(VarInt::from_u32(0), b"intake closed");
    }
}

impl Drop for IntakeServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Accepts any client certificate whose handshake signature verifies (the client holds its
/// key); which fingerprints may do what is the application's policy.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    tls13_signature_methods!();
}

async fn accept_loop(endpoint: Endpoint, tx: mpsc::Sender<IntakeRequest>, max_request: usize, authenticated: bool) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            incoming.refuse();
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(conn) = incoming.await else { return };
            let from = conn.remote_address();
            let client = if authenticated {
                match peer_fingerprint(&conn) {
                    Some(fp) => Some(fp),
                    None => {
                        conn.close(VarInt::from_u32(1), b"client certificate required");
                        return;
                    }
                }
            } else {
                None
            };
            while let Ok((send, recv)) = conn.accept_bi().await {
                tokio::spawn(serve_stream(send, recv, tx.clone(), from, client, max_request));
            }
        });
    }
}

async fn serve_stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    tx: mpsc::Sender<IntakeRequest>,
    from: SocketAddr,
    client: Option<Fingerprint>,
    max_request: usize,
) {
    let mut mode = [0u8; 1];
    if recv.read_exact(&mut mode).await.is_err() {
        return;
    }
    let wants_channel = mode[0] == MODE_CHANNEL;
    let payload = match mode[0] {
        MODE_REQUEST => match recv.read_to_end(max_request).await {
            Ok(payload) => Ok(payload),
            Err(quinn::ReadToEndError::TooLong) => Err(format!("request over {max_request} bytes")),
            Err(_) => return,
        },
        MODE_CHANNEL => {
            let mut len = [0u8; 4];
            if recv.read_exact(&mut len).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes(len) as usize;
            if len > max_request {
                Err(format!("request over {max_request} bytes"))
            } else {
                let mut payload = vec![0u8; len];
                if recv.read_exact(&mut payload).await.is_err() {
                    return;
                }
                Ok(payload)
            }
        }
        other => Err(format!("unknown stream mode {other}")),
    };
    let (answer, channel) = match payload {
        Ok(payload) => {
            let (respond, answer) = oneshot::channel();
            if tx.send(IntakeRequest { payload, from, client, wants_channel, respond }).await.is_err() {
                return;
            }
            answer.await.unwrap_or_else(|_| (Err("the node dropped the request".into()), None))
        }
        Err(reason) => (Err(reason), None),
    };
    let frame = status_frame(answer);
    if wants_channel {
        let Ok(len) = u32::try_from(frame.len()) else { return };
        if send.write_all(&len.to_be_bytes()).await.is_err() || send.write_all(&frame).await.is_err() {
            return;
        }
        if let Some(ends) = channel {
            pump(send, recv, ends).await;
            return;
        }
    } else {
        let _ = send.write_all(&frame).await;
    }
    let _ = send.finish();
    // Let the response drain before the stream is dropped.
    let _ = send.stopped().await;
}

/// Sends `request` to the node at `addr` whose certificate has fingerprint `pin`, and returns
/// its response (at most `max_response` bytes). A refusal by the node comes back as
/// [`TransportError::Malformed`] carrying the node's reason.
pub async fn submit(
    node: PartyId,
    addr: SocketAddr,
    pin: Fingerprint,
    request: &[u8],
    max_response: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    submit_inner(None, node, addr, pin, request, max_response, timeout).await
}

/// As [`submit`], presenting `client`'s certificate (mutual TLS) to a node whose intake was
/// bound with [`IntakeServer::bind_authenticated`].
pub async fn submit_as(
    client: &PartyIdentity,
    node: PartyId,
    addr: SocketAddr,
    pin: Fingerprint,
    request: &[u8],
    max_response: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    submit_inner(Some(client), node, addr, pin, request, max_response, timeout).await
}

async fn connect(
    client: Option<&PartyIdentity>,
    node: PartyId,
    addr: SocketAddr,
    pin: Fingerprint,
) -> Result<(Endpoint, quinn::Connection), TransportError> {
    let connect_err = |reason: String| TransportError::Connect { peer: node, reason };
    let provider = Arc::new(provider());
    let verifier = Arc::new(PinnedServerVerifier::new(node, pin, provider.clone()));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| config_err("TLS", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = match client {
        Some(id) => builder
            .with_client_auth_cert(
                vec![rustls::pki_types::CertificateDer::from(id.cert_der().to_vec())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(id.expose_key_der().to_vec().into()),
            )
            .map_err(|e| config_err("client certificate", e))?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![INTAKE_ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| config_err("QUIC client TLS", e))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(intake_transport()?));
    let local: SocketAddr =
        if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let endpoint = Endpoint::client(local).map_err(|e| config_err("client endpoint", e))?;
    let conn = endpoint
        .connect_with(cfg, addr, &super::tls::party_name(node))
        .map_err(|e| connect_err(e.to_string()))?
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    Ok((endpoint, conn))
}

async fn submit_inner(
    client: Option<&PartyIdentity>,
    node: PartyId,
    addr: SocketAddr,
    pin: Fingerprint,
    request: &[u8],
    max_response: usize,
    timeout: Duration,
) -> Result<Vec<u8>, TransportError> {
    let connect_err = |reason: String| TransportError::Connect { peer: node, reason };
    let exchange = async {
        let (endpoint, conn) = connect(client, node, addr, pin).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect_err(e.to_string()))?;
        send.write_all(&[MODE_REQUEST]).await.map_err(|e| connect_err(e.to_string()))?;
        send.write_all(request).await.map_err(|e| connect_err(e.to_string()))?;
        send.finish().map_err(|e| connect_err(e.to_string()))?;
        let frame = recv
            .read_to_end(max_response.saturating_add(1))
            .await
            .map_err(|e| TransportError::Malformed { peer: node, reason: format!("response: {e}") })?;
        conn.close(VarInt::from_u32(0), b"done");
        // The close is sent by the endpoint's driver; letting it drain in the background saves
        // the caller the draining period (about three probe timeouts).
        tokio::spawn(async move { endpoint.wait_idle().await });
        parse_status(node, &frame)
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| TransportError::Timeout { peer: node, after: timeout })?
}

/// Sends `request` to the node as a channel request, presenting `client`'s certificate:
/// returns the node's answer and the open channel (frames at most `max_frame` bytes each
/// way). The answer must come within `timeout`; the channel then lives until either end
/// drops it (the connection stays alive meanwhile).
pub async fn open_channel(
    client: &PartyIdentity,
    node: PartyId,
    addr: SocketAddr,
    pin: Fingerprint,
    request: &[u8],
    max_frame: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, IntakeChannel), TransportError> {
    let connect_err = |reason: String| TransportError::Connect { peer: node, reason };
    let malformed = |reason: String| TransportError::Malformed { peer: node, reason };
    let len = u32::try_from(request.len()).map_err(|_| malformed("request too long".into()))?;
    let opening = async {
        let (endpoint, conn) = connect(Some(client), node, addr, pin).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| connect_err(e.to_string()))?;
        send.write_all(&[MODE_CHANNEL]).await.map_err(|e| connect_err(e.to_string()))?;
        send.write_all(&len.to_be_bytes()).await.map_err(|e| connect_err(e.to_string()))?;
        send.write_all(request).await.map_err(|e| connect_err(e.to_string()))?;
        let frame = read_frame(&mut recv, max_frame.saturating_add(1))
            .await
            .ok_or_else(|| malformed(format!("no answer of at most {max_frame} bytes")))?;
        let answer = parse_status(node, &frame)?;
        let (channel, ends) = IntakeChannel::new(max_frame);
        tokio::spawn(async move {
            pump(send, recv, ends).await;
            conn.close(VarInt::from_u32(0), b"done");
            endpoint.wait_idle().await;
        });
        Ok((answer, channel))
    };
    tokio::time::timeout(timeout, opening).await.map_err(|_| TransportError::Timeout { peer: node, after: timeout })?
}
