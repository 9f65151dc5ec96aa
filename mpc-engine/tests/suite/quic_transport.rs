//! QUIC transport over real sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tacit_mpc_engine::transport::quic::{
    raw_dial, PartyIdentity, PeerInfo, QuicConfig, QuicOptions, QuicTransport, STREAM_MAGIC,
};
use tacit_mpc_engine::{PartyId, SessionId, Transport, TransportError};

fn pid(i: u16) -> PartyId {
    PartyId::new(i).unwrap()
}

/// Fails the test instead of hanging.
async fn bounded<T>(secs: u64, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f).await.expect("test step timed out")
}

struct Member {
    id: PartyId,
    identity: PartyIdentity,
    socket: UdpSocket,
    addr: SocketAddr,
}

fn members(n: u16) -> Vec<Member> {
    (1..=n)
        .map(|i| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = socket.local_addr().unwrap();
            Member { id: pid(i), identity: PartyIdentity::generate(pid(i)).unwrap(), socket, addr }
        })
        .collect()
}

fn peer_info(m: &Member) -> PeerInfo {
    PeerInfo { id: m.id, addr: m.addr, cert_fingerprint: m.identity.fingerprint() }
}

fn config_for(all: &[Member], me: usize, options: &QuicOptions) -> QuicConfig {
    let m = &all[me];
    let peers = all.iter().filter(|p| p.id != m.id).map(peer_info).collect();
    let mut c = QuicConfig::new(m.id, m.addr, m.identity.clone(), peers);
    c.options = options.clone();
    c
}

fn opts() -> QuicOptions {
    QuicOptions {
        connect_timeout: Duration::from_secs(10),
        recv_timeout: Duration::from_secs(20),
        ..QuicOptions::default()
    }
}

/// Connects all members concurrently; member `late` (if any) starts 600 ms after the others.
async fn connect_all(all: Vec<Member>, options: QuicOptions, late: Option<usize>) -> Vec<QuicTransport> {
    let configs: Vec<QuicConfig> = (0..all.len()).map(|i| config_for(&all, i, &options)).collect();
    let mut handles = Vec::new();
    for (i, (m, c)) in all.into_iter().zip(configs).enumerate() {
        let delay = if late == Some(i) { 600 } else { 0 };
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            QuicTransport::connect_on(m.socket, c).await
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

fn payload(session: SessionId, from: PartyId, to: PartyId, k: usize, len: usize) -> Bytes {
    let mut h = blake3::Hasher::new();
    h.update(&session.0);
    h.update(&from.get().to_le_bytes());
    h.update(&to.get().to_le_bytes());
    h.update(&(k as u64).to_le_bytes());
    let mut v = vec![0u8; len];
    h.finalize_xof().fill(&mut v);
    Bytes::from(v)
}

/// Message sizes of one (session, from, to) conversation; `big` adds one 8 MiB message.
fn sizes(big: bool) -> Vec<usize> {
    let mut s = vec![0, 1, 32, 1000, 70_000, 1 << 20, 5];
    if big {
        s.insert(3, 8 << 20);
    }
    s
}

async fn all_to_all(n: u16, late: Option<usize>) {
    let all = members(n);
    let ts = bounded(20, connect_all(all, opts(), late)).await;
    let ts: Vec<std::sync::Arc<QuicTransport>> = ts.into_iter().map(std::sync::Arc::new).collect();
    let sessions = [SessionId::derive("quic test", 1), SessionId::derive("quic test", 2)];
    // Party i sends its one big message to party i+1 (mod n), in the first session.
    let big = move |s: usize, from: PartyId, to: PartyId| s == 0 && to.get() == from.get() % n + 1;

    let mut tasks = Vec::new();
    for t in &ts {
        for (si, &session) in sessions.iter().enumerate() {
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                let me = t.id();
                let peers: Vec<PartyId> = PartyId::all(t.n_parties()).filter(|p| *p != me).collect();
                let sender = {
                    let t = t.clone();
                    let peers = peers.clone();
                    async move {
                        for to in peers {
                            for (k, len) in sizes(big(si, me, to)).into_iter().enumerate() {
                                t.send(session, to, payload(session, me, to, k, len)).await.unwrap();
                            }
                        }
                    }
                };
                let receiver = async {
                    for &from in &peers {
                        for (k, len) in sizes(big(si, from, me)).into_iter().enumerate() {
                            let got = t.recv(session, from).await.unwrap();
                            assert_eq!(got.len(), len, "{me} from {from} message {k}");
                            assert!(got == payload(session, from, me, k, len), "{me} from {from} message {k} differs");
                        }
                    }
                };
                tokio::join!(sender, receiver);
            }));
        }
    }
    bounded(60, async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;

    // Stats: payload + 4-byte frame header per message + 20-byte header per session stream.
    for t in &ts {
        let me = t.id();
        let mut sent = 0u64;
        let mut received = 0u64;
        let mut messages = 0u64;
        for (si, _) in sessions.iter().enumerate() {
            for other in PartyId::all(n as usize).filter(|p| *p != me) {
                let out = sizes(big(si, me, other));
                let inc = sizes(big(si, other, me));
                messages += out.len() as u64;
                sent += 20 + out.iter().map(|l| *l as u64 + 4).sum::<u64>();
                received += 20 + inc.iter().map(|l| *l as u64 + 4).sum::<u64>();
            }
        }
        let s = t.stats();
        assert_eq!(s.messages_sent, messages, "{me}");
        assert_eq!(s.bytes_sent, sent, "{me}");
        assert_eq!(s.bytes_received, received, "{me}");
        assert!(s.bytes_sent > 8 << 20);
        assert!(t.take_faults().is_empty());
    }
    for t in &ts {
        for s in sessions {
            t.close_session(s);
        }
    }
    bounded(20, async {
        for t in &ts {
            t.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parties_all_to_all_two_sessions() {
    all_to_all(3, Some(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_parties_all_to_all_two_sessions() {
    all_to_all(5, Some(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpinned_server_certificate_is_refused_by_the_dialer() {
    // P2's address is taken by an imposter with a certificate that P1 does not pin.
    let all = members(2);
    let imposter = PartyIdentity::generate(pid(2)).unwrap();
    let mut honest = config_for(&all, 0, &opts());
    honest.options.connect_timeout = Duration::from_secs(5);
    let mut fake = config_for(&all, 1, &opts());
    fake.identity = imposter;
    fake.options.connect_timeout = Duration::from_secs(2);
    let mut it = all.into_iter();
    let (m1, m2) = (it.next().unwrap(), it.next().unwrap());
    let fake_task = tokio::spawn(QuicTransport::connect_on(m2.socket, fake));
    let started = Instant::now();
    let err = bounded(10, QuicTransport::connect_on(m1.socket, honest)).await.unwrap_err();
    // Refused at the handshake: no retrying until the connect timeout.
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    match &err {
        TransportError::Connect { peer, reason } => {
            assert_eq!(*peer, pid(2));
            assert!(reason.contains("not the pinned"), "{reason}");
        }
        e => panic!("unexpected {e:?}"),
    }
    // The imposter never gets a connection either.
    let fake_err = bounded(10, fake_task).await.unwrap().unwrap_err();
    assert_eq!(fake_err.peer(), Some(pid(1)), "{fake_err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpinned_client_certificate_is_refused_by_the_acceptor() {
    // Someone dials P2 claiming to be P1, with a certificate P2 does not pin.
    let all = members(2);
    let mut cfg = config_for(&all, 1, &opts());
    cfg.options.connect_timeout = Duration::from_secs(2);
    let target = peer_info(&all[1]);
    let m2 = all.into_iter().nth(1).unwrap();
    let honest = tokio::spawn(QuicTransport::connect_on(m2.socket, cfg));
    let imposter = PartyIdentity::generate(pid(1)).unwrap();
    let err = bounded(10, raw_dial(imposter, target, Duration::from_secs(5))).await.unwrap_err();
    match &err {
        TransportError::Connect { peer, reason } => {
            assert_eq!(*peer, pid(2));
            assert!(reason.contains("refused our certificate"), "{reason}");
        }
        e => panic!("unexpected {e:?}"),
    }
    // The honest side saw the refused handshake and never got a P1.
    let err = bounded(10, honest).await.unwrap().unwrap_err();
    match &err {
        TransportError::Connect { peer, reason } => {
            assert_eq!(*peer, pid(1));
            assert!(reason.contains("unpinned certificate"), "{reason}");
        }
        e => panic!("unexpected {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_peer_dialling_in_the_wrong_direction_is_refused() {
    let all = members(2);
    let p1_info = peer_info(&all[0]);
    let p2_identity = all[1].identity.clone();
    let ts = bounded(20, connect_all(all, opts(), None)).await;
    // P2 (pinned) dials P1, but P1 is the one that dials P2.
    let err = bounded(10, raw_dial(p2_identity, p1_info, Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(err.peer(), Some(pid(1)), "{err}");
    let refused = ts[0].refused_handshakes().unwrap();
    assert!(refused.contains("P2 dialled P1"), "{refused}");
    // The legitimate connection is unaffected.
    let s = SessionId::random();
    ts[1].send(s, pid(1), Bytes::from_static(b"still here")).await.unwrap();
    assert_eq!(&ts[0].recv(s, pid(2)).await.unwrap()[..], b"still here");
}

/// A real P2 (with `options`) and a raw connection from P1's identity.
async fn raw_pair(options: QuicOptions) -> (QuicTransport, quinn::Endpoint, quinn::Connection) {
    let all = members(2);
    let cfg = config_for(&all, 1, &options);
    let target = peer_info(&all[1]);
    let p1 = all[0].identity.clone();
    let m2 = all.into_iter().nth(1).unwrap();
    let t2 = tokio::spawn(QuicTransport::connect_on(m2.socket, cfg));
    let (endpoint, conn) = bounded(10, raw_dial(p1, target, Duration::from_secs(5))).await.unwrap();
    let t2 = bounded(10, t2).await.unwrap().unwrap();
    (t2, endpoint, conn)
}

fn stream_header(session: SessionId) -> Vec<u8> {
    let mut h = STREAM_MAGIC.to_vec();
    h.extend_from_slice(&session.0);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_frame_is_refused_before_allocation() {
    let options = QuicOptions { max_frame: 1 << 20, recv_timeout: Duration::from_secs(10), ..opts() };
    let (t2, _endpoint, conn) = raw_pair(options).await;
    assert_eq!(t2.max_frame(), 1 << 20);

    // Announce 4 GiB - 1 against a 1 MiB cap, and send nothing more.
    let s = SessionId::derive("too large", 0);
    let mut out = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(s);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    out.write_all(&bytes).await.unwrap();
    match bounded(10, t2.recv(s, pid(1))).await {
        Err(TransportError::FrameTooLarge { peer, len, cap }) => {
            assert_eq!(peer, pid(1));
            assert_eq!(len, u64::from(u32::MAX));
            assert_eq!(cap, 1 << 20);
        }
        other => panic!("unexpected {other:?}"),
    }
    // The stream is stopped with the "frame too large" code.
    let stopped = bounded(10, out.stopped()).await.unwrap();
    assert_eq!(stopped, Some(quinn::VarInt::from_u32(2)));

    // One byte over the cap, after a valid frame: the valid one is delivered first.
    let s = SessionId::derive("too large", 1);
    let mut out = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(s);
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(b"abc");
    bytes.extend_from_slice(&((1u32 << 20) + 1).to_le_bytes());
    out.write_all(&bytes).await.unwrap();
    assert_eq!(&bounded(10, t2.recv(s, pid(1))).await.unwrap()[..], b"abc");
    let err = bounded(10, t2.recv(s, pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { len, .. } if len == (1 << 20) + 1), "{err}");
    assert_eq!(err.peer(), Some(pid(1)));

    // Exactly the cap is fine.
    let s = SessionId::derive("too large", 2);
    let mut out = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(s);
    bytes.extend_from_slice(&(1u32 << 20).to_le_bytes());
    bytes.extend(std::iter::repeat_n(7u8, 1 << 20));
    out.write_all(&bytes).await.unwrap();
    let got = bounded(10, t2.recv(s, pid(1))).await.unwrap();
    assert_eq!(got.len(), 1 << 20);

    // Our own sends over the cap are refused locally.
    let err = t2.send(s, pid(1), Bytes::from(vec![0u8; (1 << 20) + 1])).await.unwrap_err();
    assert!(matches!(err, TransportError::PayloadTooLarge { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_times_out_naming_it() {
    let options = QuicOptions { recv_timeout: Duration::from_millis(300), ..opts() };
    let ts = bounded(20, connect_all(members(3), options, None)).await;
    let s = SessionId::random();
    let started = Instant::now();
    match bounded(10, ts[0].recv(s, pid(3))).await {
        Err(TransportError::Timeout { peer, after }) => {
            assert_eq!(peer, pid(3));
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Still usable afterwards, on the same session.
    ts[2].send(s, pid(1), Bytes::from_static(b"late")).await.unwrap();
    assert_eq!(&ts[0].recv(s, pid(3)).await.unwrap()[..], b"late");
    // Addressing ourselves or a party outside the cluster.
    assert!(matches!(ts[0].recv(s, pid(1)).await, Err(TransportError::UnknownPeer(p)) if p == pid(1)));
    assert!(matches!(
        ts[0].send(s, pid(4), Bytes::new()).await,
        Err(TransportError::UnknownPeer(p)) if p == pid(4)
    ));
}

async fn wait_for_faults(t: &QuicTransport, n: usize) -> Vec<TransportError> {
    let mut faults = Vec::new();
    bounded(10, async {
        while faults.len() < n {
            faults.extend(t.take_faults());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_streams_are_reported_and_other_sessions_keep_working() {
    let options = QuicOptions { recv_timeout: Duration::from_secs(10), ..opts() };
    let (t2, _endpoint, conn) = raw_pair(options).await;
    let good = SessionId::derive("garbage", 0);

    // A well-formed session, interleaved with the garbage below.
    let mut ok = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(good);
    bytes.extend_from_slice(&5u32.to_le_bytes());
    bytes.extend_from_slice(b"hello");
    ok.write_all(&bytes).await.unwrap();
    assert_eq!(&bounded(10, t2.recv(good, pid(1))).await.unwrap()[..], b"hello");

    // 1. Bad magic.
    let mut bad = conn.open_uni().await.unwrap();
    bad.write_all(b"GARBAGE GARBAGE GARBAGE GARBAGE").await.unwrap();
    bad.finish().unwrap();
    // 2. Truncated header.
    let mut short = conn.open_uni().await.unwrap();
    short.write_all(&STREAM_MAGIC).await.unwrap();
    short.finish().unwrap();
    // 3. A second stream for a session that already has one.
    let mut dup = conn.open_uni().await.unwrap();
    dup.write_all(&stream_header(good)).await.unwrap();
    dup.finish().unwrap();
    let faults = wait_for_faults(&t2, 3).await;
    for f in &faults {
        assert!(matches!(f, TransportError::Malformed { .. }), "{f}");
        assert_eq!(f.peer(), Some(pid(1)), "{f}");
    }

    // 4. Truncated payload: the session's reader gets Malformed naming P1.
    let truncated = SessionId::derive("garbage", 1);
    let mut t = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(truncated);
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[1u8; 10]);
    t.write_all(&bytes).await.unwrap();
    t.finish().unwrap();
    let err = bounded(10, t2.recv(truncated, pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::Malformed { .. }), "{err}");
    assert_eq!(err.peer(), Some(pid(1)));

    // 5. Truncated length prefix.
    let truncated_len = SessionId::derive("garbage", 2);
    let mut t = conn.open_uni().await.unwrap();
    let mut bytes = stream_header(truncated_len);
    bytes.extend_from_slice(&[9, 0]);
    t.write_all(&bytes).await.unwrap();
    t.finish().unwrap();
    let err = bounded(10, t2.recv(truncated_len, pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::Malformed { .. }), "{err}");
    assert_eq!(err.peer(), Some(pid(1)));

    // 6. A reset stream.
    let reset = SessionId::derive("garbage", 3);
    let mut r = conn.open_uni().await.unwrap();
    r.write_all(&stream_header(reset)).await.unwrap();
    r.write_all(&[1, 0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    r.reset(quinn::VarInt::from_u32(77)).unwrap();
    let err = bounded(10, t2.recv(reset, pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { .. }), "{err}");
    assert_eq!(err.peer(), Some(pid(1)));

    // The good session still works after the garbage.
    let mut bytes = 5u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"world");
    ok.write_all(&bytes).await.unwrap();
    assert_eq!(&bounded(10, t2.recv(good, pid(1))).await.unwrap()[..], b"world");
    // The peer finishing the stream ends the session cleanly for the reader.
    ok.finish().unwrap();
    let err = bounded(10, t2.recv(good, pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { .. }), "{err}");

    // And P2 can still send to P1, in the documented wire format.
    let answer = SessionId::derive("garbage", 4);
    t2.send(answer, pid(1), Bytes::from_static(b"reply")).await.unwrap();
    t2.close_session(answer);
    let mut inc = bounded(10, conn.accept_uni()).await.unwrap();
    let all = bounded(10, inc.read_to_end(1 << 10)).await.unwrap();
    let mut expect = stream_header(answer);
    expect.extend_from_slice(&5u32.to_le_bytes());
    expect.extend_from_slice(b"reply");
    assert_eq!(all, expect);
    // Sending on a session closed here is refused.
    let err = t2.send(answer, pid(1), Bytes::new()).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_sent_data_then_peers_see_closed() {
    let ts = bounded(20, connect_all(members(3), opts(), None)).await;
    let s = SessionId::random();
    let big = payload(s, pid(1), pid(2), 0, 4 << 20);
    ts[0].send(s, pid(2), big.clone()).await.unwrap();
    ts[0].send(s, pid(3), Bytes::from_static(b"bye")).await.unwrap();
    bounded(20, ts[0].shutdown()).await;
    assert!(bounded(10, ts[1].recv(s, pid(1))).await.unwrap() == big);
    assert_eq!(&bounded(10, ts[2].recv(s, pid(1))).await.unwrap()[..], b"bye");
    let err = bounded(10, ts[1].recv(SessionId::random(), pid(1))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { peer, .. } if peer == pid(1)), "{err}");
    // P2 and P3 are still connected to each other.
    ts[1].send(s, pid(3), Bytes::from_static(b"ok")).await.unwrap();
    assert_eq!(&bounded(10, ts[2].recv(s, pid(2))).await.unwrap()[..], b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused() {
    let all = members(3);
    let base = config_for(&all, 0, &opts());
    let mut c = base.clone();
    c.peers[0].id = pid(1);
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
    let mut c = base.clone();
    c.peers[1].id = pid(2);
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
    let mut c = base.clone();
    c.peers[1].id = pid(5);
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
    let mut c = base.clone();
    c.peers[1].cert_fingerprint = c.peers[0].cert_fingerprint;
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
    let mut c = base.clone();
    c.options.max_frame = 0;
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
    let mut c = base;
    c.options.keep_alive = c.options.idle_timeout;
    assert!(matches!(QuicTransport::connect(c).await, Err(TransportError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_sanity() {
    // 3 parties all-to-all, 16 x 1 MiB per ordered pair (96 MiB in total). Prints the rate;
    // asserts only that everything arrives.
    let ts = bounded(20, connect_all(members(3), opts(), None)).await;
    let ts: Vec<std::sync::Arc<QuicTransport>> = ts.into_iter().map(std::sync::Arc::new).collect();
    let s = SessionId::random();
    let msg = Bytes::from(vec![0x5au8; 1 << 20]);
    let rounds = 16;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in &ts {
        let me = t.id();
        for other in PartyId::all(3).filter(|p| *p != me) {
            let (t1, m) = (t.clone(), msg.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..rounds {
                    t1.send(s, other, m.clone()).await.unwrap();
                }
            }));
            let t2 = t.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..rounds {
                    assert_eq!(t2.recv(s, other).await.unwrap().len(), 1 << 20);
                }
            }));
        }
    }
    bounded(60, async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    let total = (6 * rounds) as f64 * (1 << 20) as f64;
    eprintln!(
        "QUIC 3-party all-to-all: {:.0} MiB in {secs:.3} s = {:.0} MB/s aggregate",
        total / (1 << 20) as f64,
        total / secs / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_session_applies_backpressure_and_cancelled_send_is_reported() {
    // P1 buffers one message per (session, peer) and reads streams with a 1 MiB window, so a
    // session it never reads stalls P2's sends instead of filling P1's memory.
    let all = members(2);
    let mut o1 = opts();
    o1.inbox_messages = 1;
    o1.stream_window = 1 << 20;
    let c1 = config_for(&all, 0, &o1);
    let c2 = config_for(&all, 1, &opts());
    let mut it = all.into_iter();
    let (m1, m2) = (it.next().unwrap(), it.next().unwrap());
    let (t1, t2) = tokio::join!(QuicTransport::connect_on(m1.socket, c1), QuicTransport::connect_on(m2.socket, c2));
    let (t1, t2) = (t1.unwrap(), t2.unwrap());
    let s = SessionId::derive("stall", 0);
    let msg = Bytes::from(vec![1u8; 4 << 20]);
    // Message 1 fills the inbox, message 2 is read and held by the reader, message 3 stalls.
    bounded(10, t2.send(s, pid(1), msg.clone())).await.unwrap();
    bounded(10, t2.send(s, pid(1), msg.clone())).await.unwrap();
    let stalled = tokio::time::timeout(Duration::from_millis(700), t2.send(s, pid(1), msg.clone())).await;
    assert!(stalled.is_err(), "an unread session must push back");
    // That send was cancelled part-way through a frame: the session's stream is unusable.
    let err = t2.send(s, pid(1), Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { peer, .. } if peer == pid(1)), "{err}");
    // Other sessions are not blocked by the stalled one.
    let other = SessionId::derive("stall", 1);
    bounded(10, t2.send(other, pid(1), Bytes::from_static(b"free"))).await.unwrap();
    assert_eq!(&bounded(10, t1.recv(other, pid(2))).await.unwrap()[..], b"free");
    // The stalled session's first messages are intact.
    assert!(bounded(10, t1.recv(s, pid(2))).await.unwrap() == msg);
    assert!(bounded(10, t1.recv(s, pid(2))).await.unwrap() == msg);
    // P2 reset the torn stream, so P1 does not wait for the rest of message 3.
    let err = bounded(10, t1.recv(s, pid(2))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed { peer, .. } if peer == pid(2)), "{err}");
    t1.close_session(s);
}

/// Forwards UDP between party 1 and whichever address `target` names, so a test can swap the
/// process behind party 2's address. Only the current target's packets reach party 1.
async fn relay(socket: tokio::net::UdpSocket, p1: SocketAddr, target: tokio::sync::watch::Receiver<SocketAddr>) {
    let mut buf = vec![0u8; 65_536];
    while let Ok((len, from)) = socket.recv_from(&mut buf).await {
        let to = *target.borrow();
        let Some(packet) = buf.get(..len) else { continue };
        if from == p1 {
            let _ = socket.send_to(packet, to).await;
        } else if from == to {
            let _ = socket.send_to(packet, p1).await;
        }
    }
}

/// Party 2 "crashes" (its process gone without a word: its packets no longer arrive) and
/// restarts on the same address with its identity. Party 1's next packet on the old connection
/// draws a stateless reset from the new process (same reset key, derived from the identity),
/// so party 1 sees the connection closed at once instead of after its idle timeout (a minute
/// here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_resets_the_old_connection() {
    let options = QuicOptions {
        keep_alive: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(60),
        recv_timeout: Duration::from_secs(60),
        ..opts()
    };
    let mut all = members(2);
    let relay_socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_socket.local_addr().unwrap();
    let (retarget, target) = tokio::sync::watch::channel(all[1].addr);
    tokio::spawn(relay(relay_socket, all[0].addr, target));
    // Party 1 reaches party 2 through the relay.
    let p2_direct = all[1].addr;
    all[1].addr = relay_addr;
    let p1_config = config_for(&all, 0, &options);
    all[1].addr = p2_direct;
    let p2_config = config_for(&all, 1, &options);
    let p2_identity = all[1].identity.clone();
    let (p1_addr, p1_fingerprint) = (all[0].addr, all[0].identity.fingerprint());
    let mut sockets = all.into_iter().map(|m| m.socket);
    let (s1, s2) = (sockets.next().unwrap(), sockets.next().unwrap());
    let (p1, p2) = bounded(20, async {
        tokio::join!(QuicTransport::connect_on(s1, p1_config), QuicTransport::connect_on(s2, p2_config))
    })
    .await;
    let (p1, p2) = (p1.unwrap(), p2.unwrap());
    let s = SessionId::random();
    p2.send(s, pid(1), Bytes::from_static(b"before")).await.unwrap();
    assert_eq!(&bounded(10, p1.recv(s, pid(2))).await.unwrap()[..], b"before");

    // The crash: nothing of the old process reaches party 1 any more.
    let restarted = UdpSocket::bind("127.0.0.1:0").unwrap();
    retarget.send(restarted.local_addr().unwrap()).unwrap();
    drop(p2);
    // The restart, with the same identity; it waits for party 1 to dial it again.
    let peers = vec![PeerInfo { id: pid(1), addr: p1_addr, cert_fingerprint: p1_fingerprint }];
    let mut config = QuicConfig::new(pid(2), restarted.local_addr().unwrap(), p2_identity, peers);
    config.options = options.clone();
    let again = tokio::spawn(QuicTransport::connect_on(restarted, config));
    match bounded(15, p1.recv(s, pid(2))).await {
        Err(TransportError::Closed { peer, .. }) => assert_eq!(peer, pid(2)),
        other => panic!("expected the old connection reset, got {other:?}"),
    }
    again.abort();
}
