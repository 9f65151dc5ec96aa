//! No node's transcript, and no log line, holds a losing bid or any salt in the clear.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField};
use bytes::Bytes;
use rand::SeedableRng;
use revm::primitives::Address;
use tacit_auction::bidder::{deal, BidSecret};
use tacit_auction::chain::OnChainBids;
use tacit_auction::circuit::Shape;
use tacit_auction::node::{run_node, setup_keys};
use tacit_auction::outcome::AuctionKind;
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{PartyId, Security, SessionId, Transport, TransportError, TransportStats, WireField};

/// An in-memory transport that keeps a copy of every byte it sends and receives.
struct Recording {
    inner: MemoryTransport,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Transport for Recording {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    fn n_parties(&self) -> usize {
        self.inner.n_parties()
    }
    async fn send(&self, session: SessionId, to: PartyId, payload: Bytes) -> Result<(), TransportError> {
        self.seen.lock().unwrap().extend_from_slice(&payload);
        self.inner.send(session, to, payload).await
    }
    async fn recv(&self, session: SessionId, from: PartyId) -> Result<Bytes, TransportError> {
        let payload = self.inner.recv(session, from).await?;
        self.seen.lock().unwrap().extend_from_slice(&payload);
        Ok(payload)
    }
    fn close_session(&self, session: SessionId) {
        self.inner.close_session(session)
    }
    fn stats(&self) -> TransportStats {
        self.inner.stats()
    }
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every way a value could appear in bytes: canonical big- and little-endian, raw Montgomery
/// limbs as on the wire, and (for bids) the 8-byte integer.
fn encodings(x: Fr, small: Option<u64>) -> Vec<Vec<u8>> {
    let mut out = vec![x.into_bigint().to_bytes_be(), x.into_bigint().to_bytes_le()];
    let mut wire = vec![0u8; 32];
    x.write_wire(&mut wire);
    out.push(wire);
    if let Some(v) = small {
        out.push(v.to_le_bytes().to_vec());
        out.push(v.to_be_bytes().to_vec());
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn transcripts_and_logs_hold_no_losing_bid_and_no_salt() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish(),
    )
    .unwrap();

    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let amounts = [712_345_678u64, 9_876_543_210, 5_555_555_555, 1_234_567_891];
    let secrets: Vec<BidSecret> = amounts.iter().map(|a| BidSecret::new(*a, &mut rng)).collect();
    let commitments = secrets.iter().map(|s| s.commitment().unwrap()).collect();
    let bids = OnChainBids {
        address: Address::repeat_byte(0x42),
        commitments,
        bidders: (0..amounts.len()).map(|i| Address::repeat_byte(i as u8)).collect(),
        accumulator: Fr::from(0u64),
    };
    let mut per_node: Vec<Vec<Option<Vec<Fr>>>> = vec![Vec::new(); 3];
    for s in &secrets {
        for (node, shares) in deal(&s.dealt_values(), 3, 1, &mut rng).unwrap().into_iter().enumerate() {
            per_node[node].push(Some(shares));
        }
    }
    let shape = Shape { kind: AuctionKind::Vickrey, capacity: 4 };
    let keys = Arc::new(setup_keys(shape, &mut rng).unwrap());
    let seen: Vec<Arc<Mutex<Vec<u8>>>> = (0..3).map(|_| Arc::default()).collect();
    let transports: Vec<Arc<Recording>> = MemoryTransport::network(3)
        .into_iter()
        .zip(&seen)
        .map(|(inner, seen)| Arc::new(Recording { inner, seen: seen.clone() }))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bids = Arc::new(bids);
    let per_node = Arc::new(per_node);
    let results =
        rt.block_on(run_engines::<Fr, _, _, _, _>(transports, 1, Security::Malicious, SessionId::random(), move |e| {
            let (keys, bids) = (keys.clone(), bids.clone());
            let mine = per_node[e.id().index()].clone();
            async move {
                run_node(e, &keys, &bids, mine).await.map_err(|e| tacit_mpc_engine::MpcError::Usage(e.to_string()))
            }
        }));
    let run = results.into_iter().next().unwrap().unwrap();
    // Winner bidder 1 (9,876,543,210) pays the second bid, which is therefore public.
    assert_eq!((run.outcome.winners.clone(), run.outcome.price), (vec![1], 5_555_555_555));

    let logs = logs.0.lock().unwrap().clone();
    assert!(contains(&logs, b"outcome computed"), "the logs were captured");
    let losing = [0usize, 3];
    for (node, transcript) in seen.iter().enumerate() {
        let transcript = transcript.lock().unwrap();
        assert!(transcript.len() > 10_000, "node {node} sent and received its messages");
        for (i, s) in secrets.iter().enumerate() {
            let mut needles = encodings(s.expose_salt(), None);
            if losing.contains(&i) {
                needles.extend(encodings(Fr::from(s.expose_bid()), Some(s.expose_bid())));
            }
            for needle in &needles {
                assert!(!contains(&transcript, needle), "node {node}'s transcript holds a secret of bidder {i}");
                assert!(!contains(&logs, needle), "the logs hold a secret of bidder {i}");
            }
            let text = String::from_utf8_lossy(&logs);
            if losing.contains(&i) {
                assert!(!text.contains(&s.expose_bid().to_string()), "a log line holds bidder {i}'s bid");
            }
            assert!(!text.contains(&s.expose_salt().to_string()));
        }
    }
}
