//! Party identities and the pinned mutual-TLS configuration of the QUIC transport.
//!
//! Every party has a self-signed certificate ([`PartyIdentity`]); the cluster configuration pins
//! each peer by the SHA-256 [`Fingerprint`] of its certificate's DER encoding (the same value as
//! `openssl x509 -noout -fingerprint -sha256`). Trust comes only from the pin: there is no CA,
//! no name check and no validity-period check, but every handshake signature is verified
//! against the pinned certificate's public key (rustls' `verify_tls13_signature` with the ring
//! provider's algorithms), so a peer must hold the private key of the pinned certificate.
//!
//! TLS 1.3 only, session resumption disabled (every connection presents and proves its
//! certificate).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DistinguishedName};
use zeroize::Zeroizing;

use super::TransportError;
use crate::party::PartyId;

/// ALPN protocol id of the Tacit party-to-party protocol.
pub const ALPN: &[u8] = b"tacit-mpc/1";

/// The name a party's certificate carries (subject CN and DNS SAN), e.g. `tacit-party-3`.
pub fn party_name(id: PartyId) -> String {
    format!("tacit-party-{}", id.get())
}

/// SHA-256 of a certificate's DER encoding: how peers are pinned.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate (SHA-256 of the DER bytes).
    pub fn of_cert_der(cert_der: &[u8]) -> Result<Self, TransportError> {
        sha256(cert_der).map(Self)
    }

    /// The fingerprint as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case; `:` separators as printed by openssl are accepted).
    pub fn from_hex(s: &str) -> Result<Self, TransportError> {
        let cleaned: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&cleaned, &mut out)
            .map_err(|e| TransportError::Config(format!("certificate fingerprint must be 64 hex digits: {e}")))?;
        Ok(Self(out))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl FromStr for Fingerprint {
    type Err = TransportError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

fn sha256(data: &[u8]) -> Result<[u8; 32], TransportError> {
    // The ring provider's SHA-256, reached through the TLS 1.3 suite that uses it (rustls does
    // not export the hash directly); avoids a second SHA-256 implementation in the build.
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .ok_or_else(|| TransportError::Config("SHA-256 provider unavailable".into()))?;
    let hash = suite.common.hash_provider;
    if hash.algorithm() != rustls::crypto::hash::HashAlgorithm::SHA256 {
        return Err(TransportError::Config("SHA-256 provider unavailable".into()));
    }
    let digest = hash.hash(data);
    <[u8; 32]>::try_from(digest.as_ref()).map_err(|_| TransportError::Config("SHA-256 output is not 32 bytes".into()))
}

/// A party's certificate and private key.
///
/// The key is zeroized on drop, `Debug` prints `<redacted>`, and there is deliberately no
/// `Serialize`: read the key only through [`PartyIdentity::expose_key_der`]. (The key is also
/// held, parsed once, by the ring signing key that every handshake shares; ring does not
/// zeroize it.)
pub struct PartyIdentity {
    cert_der: Vec<u8>,
    key_der: Zeroizing<Vec<u8>>,
    fingerprint: Fingerprint,
    /// The key loaded once into the TLS signer (shared by every connection, so the DER is not
    /// copied per handshake).
    certified: Arc<rustls::sign::CertifiedKey>,
}

impl fmt::Debug for PartyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyIdentity").field("fingerprint", &self.fingerprint).field("key", &"<redacted>").finish()
    }
}

impl Clone for PartyIdentity {
    fn clone(&self) -> Self {
        Self {
            cert_der: self.cert_der.clone(),
            key_der: Zeroizing::new(self.key_der.to_vec()),
            fingerprint: self.fingerprint,
            certified: self.certified.clone(),
        }
    }
}

impl PartyIdentity {
    /// The key of this party's QUIC stateless resets, derived from its private key: the same
    /// after a restart, so the restarted endpoint can reset the connections its previous
    /// process held (RFC 9000, 10.3), and secret like the key itself.
    pub(crate) fn stateless_reset_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(blake3::derive_key("tacit quic stateless reset key v1", &self.key_der))
    }

    /// A fresh self-signed ECDSA P-256 certificate for party `id` (subject CN and DNS SAN
    /// `tacit-party-<id>`) and its PKCS#8 key.
    pub fn generate(id: PartyId) -> Result<Self, TransportError> {
        let name = party_name(id);
        let mut params = rcgen::CertificateParams::new(vec![name.clone()])
            .map_err(|e| TransportError::Config(format!("certificate parameters: {e}")))?;
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Tacit MPC cluster");
        let key = rcgen::KeyPair::generate().map_err(|e| TransportError::Config(format!("key generation: {e}")))?;
        let cert = params.self_signed(&key).map_err(|e| TransportError::Config(format!("self-signing: {e}")))?;
        Self::from_der(cert.der().to_vec(), key.serialize_der())
    }

    /// An identity from a DER certificate and its DER PKCS#8 private key. Checks that the key
    /// parses and matches the certificate's public key.
    pub fn from_der(cert_der: Vec<u8>, key_der: Vec<u8>) -> Result<Self, TransportError> {
        let key_der = Zeroizing::new(key_der);
        let provider = provider();
        let certified = rustls::sign::CertifiedKey::from_der(
            vec![CertificateDer::from(cert_der.clone())],
            private_key(&key_der),
            &provider,
        )
        .map_err(|e| TransportError::Config(format!("party certificate/key: {e}")))?;
        let fingerprint = Fingerprint::of_cert_der(&cert_der)?;
        Ok(Self { cert_der, key_der, fingerprint, certified: Arc::new(certified) })
    }

    /// The certificate, DER-encoded (public; give it or its fingerprint to the other parties).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key, DER PKCS#8. Secret: only for writing it to protected storage.
    pub fn expose_key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// SHA-256 of the certificate DER, the value peers pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    fn resolver(&self) -> Arc<rustls::sign::SingleCertAndKey> {
        Arc::new(rustls::sign::SingleCertAndKey::from(self.certified.clone()))
    }
}

fn private_key(key_der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()))
}

/// The crypto provider: ring, TLS 1.3 suites with AES-128-GCM preferred (the fastest with
/// AES-NI; the peers authenticate with ECDSA P-256 either way).
pub(crate) fn provider() -> CryptoProvider {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites =
        vec![cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384, cs::TLS13_CHACHA20_POLY1305_SHA256];
    p
}

/// Handshakes this party refused, most recent last (kept for error messages).
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    entries: Mutex<VecDeque<String>>,
}

impl RefusalLog {
    const KEEP: usize = 16;

    pub(crate) fn push(&self, what: String) {
        tracing::warn!(target: "tacit::quic", "refused handshake: {what}");
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.len() >= Self::KEEP {
            e.pop_front();
        }
        e.push_back(what);
    }

    pub(crate) fn summary(&self) -> Option<String> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if e.is_empty() {
            None
        } else {
            Some(e.iter().cloned().collect::<Vec<_>>().join("; "))
        }
    }
}

fn refuse(reason: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(PinError(reason)))))
}

#[derive(Debug)]
struct PinError(String);

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PinError {}

/// The handshake-signature methods of every certificate verifier here (the type needs a
/// `provider: Arc<CryptoProvider>` field): TLS 1.3 only, the provider's algorithms, so the
/// peer proves it holds the certificate's key.
macro_rules! tls13_signature_methods {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &rustls::pki_types::CertificateDer<'_>,
            _dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not accepted".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.provider.signature_verification_algorithms.supported_schemes()
        }
    };
}
pub(crate) use tls13_signature_methods;

/// Dialer side: accepts exactly the pinned certificate of the peer being dialled.
#[derive(Debug)]
pub(crate) struct PinnedServerVerifier {
    peer: PartyId,
    expected: Fingerprint,
    provider: Arc<CryptoProvider>,
    /// Set when this verifier refused the server, so the dialer stops retrying.
    pub(crate) refused: Mutex<Option<String>>,
}

impl PinnedServerVerifier {
    pub(crate) fn new(peer: PartyId, expected: Fingerprint, provider: Arc<CryptoProvider>) -> Self {
        Self { peer, expected, provider, refused: Mutex::new(None) }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of_cert_der(end_entity).map_err(|e| refuse(e.to_string()))?;
        if got == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            let reason = format!(
                "{} presented a certificate with fingerprint {got}, not the pinned {}",
                self.peer, self.expected
            );
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
            Err(refuse(reason))
        }
    }

    tls13_signature_methods!();
}

/// Acceptor side: accepts the pinned certificates of the peers expected to dial us (lower ids).
#[derive(Debug)]
pub(crate) struct PinnedClientVerifier {
    me: PartyId,
    /// Every pinned peer (to tell "unknown" from "known but must not dial us").
    pins: HashMap<Fingerprint, PartyId>,
    provider: Arc<CryptoProvider>,
    refusals: Arc<RefusalLog>,
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let got = Fingerprint::of_cert_der(end_entity).map_err(|e| refuse(e.to_string()))?;
        match self.pins.get(&got) {
            Some(peer) if dials(*peer, self.me) => Ok(ClientCertVerified::assertion()),
            Some(peer) => {
                let reason = format!("{peer} dialled {} but {} dials {peer}", self.me, self.me);
                self.refusals.push(reason.clone());
                Err(refuse(reason))
            }
            None => {
                let reason = format!("a client presented an unpinned certificate {got}");
                self.refusals.push(reason.clone());
                Err(refuse(reason))
            }
        }
    }

    tls13_signature_methods!();
}

/// Whether `a` is the side that dials `b` (the lower id dials the higher).
pub(crate) fn dials(a: PartyId, b: PartyId) -> bool {
    a < b
}

fn tls_err(e: rustls::Error) -> TransportError {
    TransportError::Config(format!("TLS configuration: {e}"))
}

/// rustls server configuration for the acceptor side.
pub(crate) fn server_config(
    me: PartyId,
    identity: &PartyIdentity,
    pins: HashMap<Fingerprint, PartyId>,
    refusals: Arc<RefusalLog>,
) -> Result<rustls::ServerConfig, TransportError> {
    let provider = Arc::new(provider());
    let verifier = Arc::new(PinnedClientVerifier { me, pins, provider: provider.clone(), refusals });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity.resolver());
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(cfg)
}

/// rustls client configuration for dialling `peer`, pinned to `expected`; the returned
/// verifier records whether it refused the server.
pub(crate) fn client_config(
    identity: &PartyIdentity,
    peer: PartyId,
    expected: Fingerprint,
) -> Result<(rustls::ClientConfig, Arc<PinnedServerVerifier>), TransportError> {
    let provider = Arc::new(provider());
    let verifier =
        Arc::new(PinnedServerVerifier { peer, expected, provider: provider.clone(), refused: Mutex::new(None) });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(identity.resolver());
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok((cfg, verifier))
}

/// The fingerprint of the certificate a connected peer presented.
pub(crate) fn peer_fingerprint(conn: &quinn::Connection) -> Option<Fingerprint> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    let first = certs.first()?;
    Fingerprint::of_cert_der(first).ok()
}
