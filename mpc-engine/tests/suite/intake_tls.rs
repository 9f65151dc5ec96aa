//! The client intake (QUIC, mutual TLS) and the TLS identities: certificate pins, channels,
//! frame caps, redaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use tacit_mpc_engine::transport::intake::{open_channel, submit, submit_as, IntakeServer};
use tacit_mpc_engine::transport::quic::PartyIdentity;
use tacit_mpc_engine::transport::tls::Fingerprint;
use tacit_mpc_engine::PartyId;

#[test]
fn fingerprints_are_sha256_of_the_certificate() {
    // The fingerprint of any DER bytes is their SHA-256: FIPS 180-2 appendix B.1.
    assert_eq!(
        Fingerprint::of_cert_der(b"abc").unwrap().to_hex(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn identity_roundtrip_and_redaction() {
    let id = PartyIdentity::generate(PartyId::new(3).unwrap()).unwrap();
    let again = PartyIdentity::from_der(id.cert_der().to_vec(), id.expose_key_der().to_vec()).unwrap();
    assert_eq!(id.fingerprint(), again.fingerprint());
    assert_eq!(id.fingerprint(), Fingerprint::of_cert_der(id.cert_der()).unwrap());
    let dbg = format!("{id:?}");
    assert!(dbg.contains("<redacted>"));
    assert!(!dbg.contains(&hex::encode(id.expose_key_der())));
    // A key that does not match the certificate is refused.
    let other = PartyIdentity::generate(PartyId::new(3).unwrap()).unwrap();
    assert!(PartyIdentity::from_der(id.cert_der().to_vec(), other.expose_key_der().to_vec()).is_err());
}

#[test]
fn fingerprint_hex() {
    let f = Fingerprint([0xab; 32]);
    assert_eq!(Fingerprint::from_hex(&f.to_hex()).unwrap(), f);
    let colons = f.0.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
    assert_eq!(colons.parse::<Fingerprint>().unwrap(), f);
    assert!(Fingerprint::from_hex("abcd").is_err());
    assert_eq!(f.to_string(), f.to_hex());
}

async fn echo(mut server: IntakeServer) {
    while let Some(r) = server.next().await {
        let who = r.client.map(|f| f.to_hex()).unwrap_or_else(|| "anonymous".into());
        r.respond(Ok(who.into_bytes()));
    }
}

#[tokio::test]
async fn client_certificates() {
    let node_id = PartyId::new(1).unwrap();
    let node = PartyIdentity::generate(node_id).unwrap();
    let client = PartyIdentity::generate(node_id).unwrap();
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let t = Duration::from_secs(10);

    let auth = IntakeServer::bind_authenticated(local, &node, 1024).unwrap();
    let addr = auth.local_addr().unwrap();
    tokio::spawn(echo(auth));
    let got = submit_as(&client, node_id, addr, node.fingerprint(), b"hi", 1024, t).await.unwrap();
    assert_eq!(got, client.fingerprint().to_hex().into_bytes());
    // Without a certificate the handshake is refused.
    assert!(submit(node_id, addr, node.fingerprint(), b"hi", 1024, t).await.is_err());

    // The anonymous intake is unchanged.
    let anon = IntakeServer::bind(local, &node, 1024).unwrap();
    let addr = anon.local_addr().unwrap();
    tokio::spawn(echo(anon));
    assert_eq!(submit(node_id, addr, node.fingerprint(), b"hi", 1024, t).await.unwrap(), b"anonymous");
    // A wrong pin is refused by the client.
    assert!(submit_as(&client, node_id, addr, client.fingerprint(), b"hi", 1024, t).await.is_err());
}

#[tokio::test]
async fn channels_carry_frames_both_ways_and_cap_them() {
    let node_id = PartyId::new(1).unwrap();
    let node = PartyIdentity::generate(node_id).unwrap();
    let client = PartyIdentity::generate(node_id).unwrap();
    let t = Duration::from_secs(10);
    let mut server = IntakeServer::bind_authenticated(([127, 0, 0, 1], 0).into(), &node, 1024).unwrap();
    let addr = server.local_addr().unwrap();
    // The node answers each channel request with its payload reversed, then echoes every
    // frame with a one-byte prefix; a plain request to it is refused as a channel.
    tokio::spawn(async move {
        while let Some(r) = server.next().await {
            let answer: Vec<u8> = r.payload.iter().rev().copied().collect();
            if !r.wants_channel {
                assert!(r.accept_channel(answer, 64).is_none());
                continue;
            }
            let Some(mut ch) = r.accept_channel(answer, 64) else { continue };
            tokio::spawn(async move {
                while let Some(frame) = ch.incoming.recv().await {
                    let mut out = vec![b'>'];
                    out.extend_from_slice(&frame);
                    if ch.outgoing.send(out.into()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let (answer, mut ch) = open_channel(&client, node_id, addr, node.fingerprint(), b"abc", 128, t).await.unwrap();
    assert_eq!(answer, b"cba");
    for msg in [&b"one"[..], b"", &[7u8; 64][..]] {
        ch.outgoing.send(bytes::Bytes::copy_from_slice(msg)).await.unwrap();
        let back = ch.incoming.recv().await.unwrap();
        assert_eq!(back.first(), Some(&b'>'));
        assert_eq!(back.get(1..), Some(msg));
    }
    // A frame over the node's cap closes the channel instead of being read.
    ch.outgoing.send(vec![0u8; 65].into()).await.unwrap();
    assert!(tokio::time::timeout(t, ch.incoming.recv()).await.unwrap().is_none());

    let refused = submit_as(&client, node_id, addr, node.fingerprint(), b"x", 1024, t).await;
    assert!(format!("{:?}", refused.unwrap_err()).contains("not a channel request"));
    // A client without a certificate cannot open a channel either.
    let anonymous = submit(node_id, addr, node.fingerprint(), b"x", 1024, t).await;
    assert!(anonymous.is_err());
}
