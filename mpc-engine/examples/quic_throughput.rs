//! QUIC transport throughput: n parties in this process, all-to-all, one session, fixed-size
//! messages. Prints aggregate payload MB/s (all directions together), median of the runs.
//!
//! ```text
//! cargo run --release -p tacit-mpc-engine --example quic_throughput -- \
//!     [--parties 3] [--msg-kib 1024] [--mib-per-pair 256] [--window-kib 16384] [--runs 3] \
//!     [--sessions 1] [--workers 2] [--pingpong 0]
//! ```
//! `--pingpong N` also times N round trips of a 64-byte message between P1 and P2 (p50, p99).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tacit_mpc_engine::transport::quic::{PartyIdentity, PeerInfo, QuicConfig, QuicOptions, QuicTransport};
use tacit_mpc_engine::{PartyId, SessionId, Transport};

#[derive(Clone, Copy)]
struct Args {
    parties: usize,
    msg: usize,
    per_pair: usize,
    window: Option<u64>,
    runs: usize,
    sessions: usize,
    workers: usize,
    pingpong: usize,
}

fn args() -> Args {
    let mut a = Args {
        parties: 3,
        msg: 1 << 20,
        per_pair: 256 << 20,
        window: None,
        runs: 3,
        sessions: 1,
        workers: 2,
        pingpong: 0,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let n: u64 = pair[1].parse().expect("numeric argument");
        match pair[0].as_str() {
            "--parties" => a.parties = n as usize,
            "--msg-kib" => a.msg = (n as usize) << 10,
            "--mib-per-pair" => a.per_pair = (n as usize) << 20,
            "--window-kib" => a.window = Some(n << 10),
            "--runs" => a.runs = n as usize,
            "--sessions" => a.sessions = n as usize,
            "--workers" => a.workers = n as usize,
            "--pingpong" => a.pingpong = n as usize,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

async fn cluster(n: usize, options: &QuicOptions) -> Vec<Arc<QuicTransport>> {
    let mut members = Vec::new();
    for id in PartyId::all(n) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let identity = PartyIdentity::generate(id).unwrap();
        members.push((id, identity, socket));
    }
    let infos: Vec<PeerInfo> = members
        .iter()
        .map(|(id, identity, socket)| PeerInfo {
            id: *id,
            addr: socket.local_addr().unwrap(),
            cert_fingerprint: identity.fingerprint(),
        })
        .collect();
    let mut tasks = Vec::new();
    for (id, identity, socket) in members {
        let peers = infos.iter().filter(|p| p.id != id).cloned().collect();
        let mut config = QuicConfig::new(id, socket.local_addr().unwrap(), identity, peers);
        config.options = options.clone();
        tasks.push(tokio::spawn(QuicTransport::connect_on(socket, config)));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(Arc::new(t.await.unwrap().unwrap()));
    }
    out
}

async fn run(ts: &[Arc<QuicTransport>], a: &Args, round: usize) -> f64 {
    let n = ts.len();
    let count = (a.per_pair / a.msg / a.sessions).max(1);
    let msg = Bytes::from(vec![0xa5u8; a.msg]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in ts {
        let me = t.id();
        for s in 0..a.sessions {
            let session = SessionId::derive("throughput", (round * a.sessions + s) as u64);
            for other in PartyId::all(n).filter(|p| *p != me) {
                let (t1, m) = (t.clone(), msg.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..count {
                        t1.send(session, other, m.clone()).await.unwrap();
                    }
                }));
                let t2 = t.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..count {
                        t2.recv(session, other).await.unwrap();
                    }
                }));
            }
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    for t in ts {
        for s in 0..a.sessions {
            t.close_session(SessionId::derive("throughput", (round * a.sessions + s) as u64));
        }
    }
    let bytes = (n * (n - 1) * a.sessions * count * a.msg) as f64;
    bytes / secs / 1e6
}

async fn pingpong(ts: &[Arc<QuicTransport>], rounds: usize) {
    let (p1, p2) = (PartyId::new(1).unwrap(), PartyId::new(2).unwrap());
    let session = SessionId::derive("pingpong", 0);
    let echo = {
        let t2 = ts[1].clone();
        tokio::spawn(async move {
            for _ in 0..rounds {
                let m = t2.recv(session, p1).await.unwrap();
                t2.send(session, p1, m).await.unwrap();
            }
        })
    };
    let msg = Bytes::from(vec![7u8; 64]);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        ts[0].send(session, p2, msg.clone()).await.unwrap();
        ts[0].recv(session, p2).await.unwrap();
        times.push(start.elapsed());
    }
    echo.await.unwrap();
    times.sort();
    println!(
        "64 B ping-pong P1<->P2, {rounds} rounds: p50 {:?}, p99 {:?}",
        times[rounds / 2],
        times[rounds * 99 / 100]
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(a.workers).enable_all().build().unwrap();
    rt.block_on(async {
        let mut options = QuicOptions::default();
        if let Some(w) = a.window {
            options.stream_window = w;
        }
        let ts = cluster(a.parties, &options).await;
        // Warm-up (congestion windows, allocator).
        run(&ts, &Args { per_pair: 16 << 20, ..a }, usize::MAX / 4).await;
        let mut rates = Vec::new();
        for r in 0..a.runs {
            let rate = run(&ts, &a, r).await;
            eprintln!("run {r}: {rate:.0} MB/s");
            rates.push(rate);
        }
        rates.sort_by(|x, y| x.total_cmp(y));
        println!(
            "parties={} msg={} KiB window={} KiB sessions={} workers={}: median {:.0} MB/s aggregate",
            a.parties,
            a.msg >> 10,
            options.stream_window >> 10,
            a.sessions,
            a.workers,
            rates[rates.len() / 2]
        );
        if a.pingpong > 0 {
            pingpong(&ts, a.pingpong).await;
        }
        for t in &ts {
            t.shutdown().await;
        }
    });
}
