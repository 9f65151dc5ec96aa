//! Runs the n parties of a protocol in one process over the in-memory transport (tests,
//! benches, single-machine demos).

use std::future::Future;
use std::sync::Arc;

use crate::engine::{Engine, Security};
use crate::error::Result;
use crate::field::WireField;
use crate::party::SessionId;
use crate::transport::memory::MemoryTransport;
use crate::transport::Transport;

/// Runs `protocol` once per party, each with its own engine over `transports`, concurrently;
/// returns each party's result in party order.
pub async fn run_engines<F, T, R, Fut, P>(
    transports: Vec<Arc<T>>,
    t: usize,
    security: Security,
    session: SessionId,
    protocol: P,
) -> Vec<Result<R>>
where
    F: WireField,
    T: Transport,
    R: Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    P: Fn(Engine<F, T>) -> Fut,
{
    let mut handles = Vec::with_capacity(transports.len());
    for transport in transports {
        let engine = Engine::new(transport, t, security, session);
        handles.push(match engine {
            Ok(engine) => tokio::spawn(protocol(engine)),
            Err(e) => tokio::spawn(async move { Err(e) }),
        });
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(match h.await {
            Ok(r) => r,
            Err(join) => Err(crate::error::MpcError::Usage(format!("party task failed: {join}"))),
        });
    }
    out
}

/// As [`run_engines`] over a fresh in-memory network of `n` parties.
pub async fn run_in_memory<F, R, Fut, P>(n: usize, t: usize, security: Security, protocol: P) -> Vec<Result<R>>
where
    F: WireField,
    R: Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    P: Fn(Engine<F, MemoryTransport>) -> Fut,
{
    let transports = MemoryTransport::network(n).into_iter().map(Arc::new).collect();
    run_engines(transports, t, security, SessionId::random(), protocol).await
}

/// Figures of one multiplication benchmark run (all parties).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MulBenchReport {
    /// Protocol name, e.g. `shamir-dn07-malicious`.
    pub protocol: String,
    /// Parties.
    pub parties: usize,
    /// Threshold.
    pub threshold: usize,
    /// Multiplications.
    pub count: usize,
    /// Preprocessing wall time (slowest party), seconds.
    pub prep_s: f64,
    /// Online wall time including verification (slowest party), seconds.
    pub online_s: f64,
    /// Of which verification (slowest party), seconds.
    pub verify_s: f64,
    /// `count / online_s`.
    pub online_mults_per_s: f64,
    /// `count / (prep_s + online_s)`.
    pub total_mults_per_s: f64,
    /// Bytes each party sent, preprocessing and online (mean over parties).
    pub bytes_sent_per_party: u64,
    /// Online bytes per party per multiplication.
    pub online_bytes_per_mult: f64,
    /// Communication rounds of the online phase (verification included).
    pub rounds: u64,
}

/// One party's figures of a multiplication benchmark.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PartyFigures {
    /// Preprocessing seconds.
    pub prep_s: f64,
    /// Online seconds (verification included).
    pub online_s: f64,
    /// Of which verification.
    pub verify_s: f64,
    /// Bytes sent during preprocessing.
    pub prep_bytes: u64,
    /// Bytes sent online.
    pub online_bytes: u64,
    /// Online rounds.
    pub rounds: u64,
}

/// One party's side of the multiplication benchmark: `count` products of random shared
/// values (preprocessing, then the batch and its verification), then a sample of the
/// products is opened and checked.
pub async fn bench_mul_party<F: WireField, T: Transport>(mut e: Engine<F, T>, count: usize) -> Result<PartyFigures> {
    let start_bytes = e.stats().transport.bytes_sent;
    let start = std::time::Instant::now();
    // Operands (random sharings), the double sharings, and what verification consumes.
    let x = e.take_randoms(count).await?.into_shares();
    let y = e.take_randoms(count).await?.into_shares();
    e.preprocess(count + 64, 256, 0).await?;
    let prep_s = start.elapsed().as_secs_f64();
    let prep_bytes = e.stats().transport.bytes_sent - start_bytes;
    let rounds_before = e.stats().rounds;
    let online = std::time::Instant::now();
    let z = e.mul(&x, &y).await?;
    let mul_s = online.elapsed().as_secs_f64();
    e.verify().await?;
    let online_s = online.elapsed().as_secs_f64();
    let verify_s = online_s - mul_s;
    let online_bytes = e.stats().transport.bytes_sent - start_bytes - prep_bytes;
    let rounds = e.stats().rounds - rounds_before;
    let sample = 16.min(count);
    let opened = e
        .open(&crate::shares::Shares::concat(&[&x.slice(0..sample), &y.slice(0..sample), &z.slice(0..sample)]))
        .await?;
    let ok = (0..sample).all(|i| {
        matches!((opened.get(i), opened.get(sample + i), opened.get(2 * sample + i)), (Some(a), Some(b), Some(c)) if *a * b == *c)
    });
    if !ok {
        return Err(crate::error::MpcError::Usage("benchmark products are wrong".into()));
    }
    Ok(PartyFigures { prep_s, online_s, verify_s, prep_bytes, online_bytes, rounds })
}

/// Runs `count` multiplications of random shared values between the parties of
/// `transports`: preprocessing (double sharings, the operands, verification material), then
/// one batched multiplication and, in malicious mode, its verification. Checks a sample of
/// products by opening it afterwards.
pub async fn bench_mul<F: WireField, T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    security: Security,
    count: usize,
) -> Result<MulBenchReport> {
    let parties = transports.len();
    let session = SessionId::random();
    let results =
        run_engines::<F, T, _, _, _>(transports, t, security, session, move |e| bench_mul_party(e, count)).await;
    let figures: Vec<PartyFigures> = results.into_iter().collect::<Result<_>>()?;
    let max = |f: fn(&PartyFigures) -> f64| figures.iter().map(f).fold(0.0, f64::max);
    let prep_s = max(|p| p.prep_s);
    let online_s = max(|p| p.online_s);
    let verify_s = max(|p| p.verify_s);
    let n = figures.len().max(1) as u64;
    let online_bytes: u64 = figures.iter().map(|p| p.online_bytes).sum::<u64>() / n;
    let bytes_sent_per_party = figures.iter().map(|p| p.prep_bytes + p.online_bytes).sum::<u64>() / n;
    let rounds = figures.iter().map(|p| p.rounds).max().unwrap_or(0);
    Ok(MulBenchReport {
        protocol: match security {
            Security::Malicious => "shamir-dn07-malicious-dzk".into(),
            Security::SemiHonest => "shamir-dn07-semi-honest".into(),
        },
        parties,
        threshold: t,
        count,
        prep_s,
        online_s,
        verify_s,
        online_mults_per_s: count as f64 / online_s.max(f64::MIN_POSITIVE),
        total_mults_per_s: count as f64 / (prep_s + online_s).max(f64::MIN_POSITIVE),
        bytes_sent_per_party,
        online_bytes_per_mult: online_bytes as f64 / count.max(1) as f64,
        rounds,
    })
}

/// Plain field multiplications per second on one thread (the baseline every engine figure is
/// compared with).
pub fn plain_mults_per_s<F: WireField>(count: usize) -> f64 {
    let mut acc = F::from(3u64);
    let step = F::from(7u64);
    let start = std::time::Instant::now();
    for _ in 0..count {
        acc *= step;
        acc = std::hint::black_box(acc);
    }
    let s = start.elapsed().as_secs_f64();
    std::hint::black_box(acc);
    count as f64 / s.max(f64::MIN_POSITIVE)
}

/// `n` QUIC endpoints on loopback (ephemeral ports and identities), connected all-to-all with
/// mutual TLS and pinned certificates, in this process.
pub async fn local_quic_cluster(
    n: usize,
    options: crate::transport::quic::QuicOptions,
) -> std::result::Result<Vec<Arc<crate::transport::quic::QuicTransport>>, crate::transport::TransportError> {
    use crate::party::PartyId;
    use crate::transport::quic::{PartyIdentity, PeerInfo, QuicConfig, QuicTransport};
    use crate::transport::TransportError;
    let mut identities = Vec::with_capacity(n);
    let mut sockets = Vec::with_capacity(n);
    for id in PartyId::all(n) {
        identities.push((id, PartyIdentity::generate(id)?));
        let socket =
            std::net::UdpSocket::bind(("127.0.0.1", 0)).map_err(|e| TransportError::Config(format!("bind: {e}")))?;
        sockets.push(socket);
    }
    let mut infos = Vec::with_capacity(n);
    for ((id, identity), socket) in identities.iter().zip(&sockets) {
        let addr = socket.local_addr().map_err(|e| TransportError::Config(format!("local address: {e}")))?;
        infos.push(PeerInfo { id: *id, addr, cert_fingerprint: identity.fingerprint() });
    }
    let mut tasks = Vec::with_capacity(n);
    for ((id, identity), socket) in identities.into_iter().zip(sockets) {
        let peers: Vec<PeerInfo> = infos.iter().filter(|p| p.id != id).cloned().collect();
        let listen = socket.local_addr().map_err(|e| TransportError::Config(format!("local address: {e}")))?;
        let mut config = QuicConfig::new(id, listen, identity, peers);
        config.options = options.clone();
        tasks.push(tokio::spawn(QuicTransport::connect_on(socket, config)));
    }
    let mut out = Vec::with_capacity(n);
    for task in tasks {
        let transport = task.await.map_err(|e| TransportError::Config(format!("connect task: {e}")))??;
        out.push(Arc::new(transport));
    }
    Ok(out)
}

/// Figures of a comparison benchmark.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CompareBenchReport {
    /// Comparisons.
    pub count: usize,
    /// Bit width.
    pub bits: u32,
    /// Preprocessing (operand inputs and random bits, verified), slowest party, seconds.
    pub prep_s: f64,
    /// Online comparison and verification, slowest party, seconds.
    pub online_s: f64,
    /// `count / online_s`.
    pub online_per_s: f64,
    /// Online rounds.
    pub rounds: u64,
    /// Whether a sample of results matched the plaintext comparison.
    pub checked: bool,
}

/// `count` comparisons `[x < y]` of random 64-bit inputs (operands and random bits
/// preprocessed); a sample is opened and checked afterwards.
pub async fn bench_less_than<F: WireField, T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    security: Security,
    count: usize,
) -> Result<CompareBenchReport> {
    const K: u32 = 64;
    let results = run_engines::<F, T, _, _, _>(transports, t, security, SessionId::random(), move |mut e| async move {
        let start = std::time::Instant::now();
        // Operands: random 64-bit inputs of parties 1 and 2.
        let (p1, p2) = (crate::party::PartyId::new(1), crate::party::PartyId::new(2));
        let (Some(p1), Some(p2)) = (p1, p2) else {
            return Err(crate::error::MpcError::Usage("needs at least two parties".into()));
        };
        let mine: Vec<F> = {
            let mut rng = rand::thread_rng();
            (0..count).map(|_| F::from(rand::Rng::gen::<u64>(&mut rng))).collect()
        };
        let me = e.id();
        let x = e.input(p1, (me == p1).then_some(&mine[..]), count).await?;
        let y = e.input(p2, (me == p2).then_some(&mine[..]), count).await?;
        e.preprocess(64, 256, (K as usize + 1 + crate::compare::STATISTICAL_SECURITY as usize) * count).await?;
        let prep_s = start.elapsed().as_secs_f64();
        let rounds_before = e.stats().rounds;
        let online = std::time::Instant::now();
        let lt = e.less_than(&x, &y, K).await?;
        e.verify().await?;
        let online_s = online.elapsed().as_secs_f64();
        let rounds = e.stats().rounds - rounds_before;
        let sample = 8.min(count);
        let opened = e
            .open(&crate::shares::Shares::concat(&[&x.slice(0..sample), &y.slice(0..sample), &lt.slice(0..sample)]))
            .await?;
        let checked = (0..sample).all(|i| match (opened.get(i), opened.get(sample + i), opened.get(2 * sample + i)) {
            (Some(a), Some(b), Some(c)) => {
                let expect = crate::field::low_u128(a) < crate::field::low_u128(b);
                *c == F::from(u64::from(expect))
            }
            _ => false,
        });
        Ok((prep_s, online_s, rounds, checked))
    })
    .await;
    let mut report =
        CompareBenchReport { count, bits: K, prep_s: 0.0, online_s: 0.0, online_per_s: 0.0, rounds: 0, checked: true };
    for r in results {
        let (p, o, rounds, checked) = r?;
        report.prep_s = report.prep_s.max(p);
        report.online_s = report.online_s.max(o);
        report.rounds = report.rounds.max(rounds);
        report.checked &= checked;
    }
    report.online_per_s = count as f64 / report.online_s.max(f64::MIN_POSITIVE);
    if !report.checked {
        return Err(crate::error::MpcError::Usage("benchmark comparisons are wrong".into()));
    }
    Ok(report)
}
