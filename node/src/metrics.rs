//! Metrics in the Prometheus text format, served by a minimal HTTP handler (`GET /metrics`).
//!
//! Names: `tacit_node_up`, `tacit_node_jobs_total{type,status}`,
//! `tacit_node_job_duration_seconds{type,quantile}` (p50/p95 over the last 1024 jobs of the
//! type, with `_count` and `_sum`), `tacit_node_queue_depth`,
//! `tacit_node_job_failures_total{type,reason}`, `tacit_node_pool_level{pool,signers}`,
//! `tacit_node_pool_target{pool,signers}` (pools `presignatures` per signer set, and
//! `mpc_batches` with signers `all`), `tacit_node_sign_approval_latency_seconds{quantile}`
//! (client submission to released signature), `tacit_node_mesh_connected`,
//! `tacit_node_mesh_connects_total`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Samples kept per summary.
const WINDOW: usize = 1024;

#[derive(Debug, Default)]
struct Summary {
    recent: VecDeque<f64>,
    count: u64,
    sum: f64,
}

impl Summary {
    fn observe(&mut self, v: f64) {
        if self.recent.len() >= WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(v);
        self.count += 1;
        self.sum += v;
    }

    fn quantile(&self, q: f64) -> f64 {
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let idx = ((v.len() - 1) as f64 * q).round() as usize;
        v.get(idx.min(v.len() - 1)).copied().unwrap_or(f64::NAN)
    }
}

#[derive(Debug, Default)]
struct Inner {
    jobs: BTreeMap<(String, String), u64>,
    durations: BTreeMap<String, Summary>,
    failures: BTreeMap<(String, String), u64>,
    pools: BTreeMap<(String, String), (u64, u64)>,
    approval: Summary,
    queue_depth: u64,
    mesh_connected: bool,
    mesh_connects: u64,
}

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A job finished with `status` (`done`, `failed`, `refused`) after `seconds`.
    pub fn job_finished(&self, kind: &str, status: &str, seconds: f64, reason: Option<&str>) {
        let mut m = self.lock();
        *m.jobs.entry((kind.into(), status.into())).or_default() += 1;
        m.durations.entry(kind.into()).or_default().observe(seconds);
        if let Some(r) = reason {
            *m.failures.entry((kind.into(), r.into())).or_default() += 1;
        }
    }

    /// A job was refused before it ran (policy, malformed).
    pub fn job_refused(&self, kind: &str, reason: &str) {
        let mut m = self.lock();
        *m.jobs.entry((kind.into(), "refused".into())).or_default() += 1;
        *m.failures.entry((kind.into(), reason.into())).or_default() += 1;
    }

    /// Submission-to-signature latency of a signing job.
    pub fn sign_approval_latency(&self, seconds: f64) {
        self.lock().approval.observe(seconds);
    }

    /// Jobs waiting.
    pub fn set_queue_depth(&self, depth: usize) {
        self.lock().queue_depth = depth as u64;
    }

    /// A pool's level and target.
    pub fn set_pool(&self, pool: &str, signers: &str, level: usize, target: usize) {
        self.lock().pools.insert((pool.into(), signers.into()), (level as u64, target as u64));
    }

    /// The mesh connected (or was dropped).
    pub fn set_mesh(&self, connected: bool) {
        let mut m = self.lock();
        if connected && !m.mesh_connected {
            m.mesh_connects += 1;
        }
        m.mesh_connected = connected;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::new();
        let _ =
            writeln!(out, "# HELP tacit_node_up 1 while the node runs.\n# TYPE tacit_node_up gauge\ntacit_node_up 1");
        let _ = writeln!(out, "# HELP tacit_node_jobs_total Jobs by type and final status.");
        let _ = writeln!(out, "# TYPE tacit_node_jobs_total counter");
        for ((k, s), v) in &m.jobs {
            let _ = writeln!(out, "tacit_node_jobs_total{{type=\"{k}\",status=\"{s}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP tacit_node_job_duration_seconds Job wall time at this node.");
        let _ = writeln!(out, "# TYPE tacit_node_job_duration_seconds summary");
        for (k, s) in &m.durations {
            for q in [0.5, 0.95] {
                let _ = writeln!(
                    out,
                    "tacit_node_job_duration_seconds{{type=\"{k}\",quantile=\"{q}\"}} {}",
                    fmt_f(s.quantile(q))
                );
            }
            let _ = writeln!(out, "tacit_node_job_duration_seconds_sum{{type=\"{k}\"}} {}", fmt_f(s.sum));
            let _ = writeln!(out, "tacit_node_job_duration_seconds_count{{type=\"{k}\"}} {}", s.count);
        }
        let _ = writeln!(out, "# HELP tacit_node_queue_depth Jobs accepted and not yet started.");
        let _ = writeln!(out, "# TYPE tacit_node_queue_depth gauge\ntacit_node_queue_depth {}", m.queue_depth);
        let _ = writeln!(out, "# HELP tacit_node_job_failures_total Failed or refused jobs by reason.");
        let _ = writeln!(out, "# TYPE tacit_node_job_failures_total counter");
        for ((k, r), v) in &m.failures {
            let _ = writeln!(out, "tacit_node_job_failures_total{{type=\"{k}\",reason=\"{r}\"}} {v}");
        }
        let _ = writeln!(out, "# HELP tacit_node_pool_level Preprocessing items held, by pool.");
        let _ = writeln!(out, "# TYPE tacit_node_pool_level gauge");
        for ((p, s), (level, _)) in &m.pools {
            let _ = writeln!(out, "tacit_node_pool_level{{pool=\"{p}\",signers=\"{s}\"}} {level}");
        }
        let _ = writeln!(out, "# HELP tacit_node_pool_target Configured pool size.");
        let _ = writeln!(out, "# TYPE tacit_node_pool_target gauge");
        for ((p, s), (_, target)) in &m.pools {
            let _ = writeln!(out, "tacit_node_pool_target{{pool=\"{p}\",signers=\"{s}\"}} {target}");
        }
        let _ = writeln!(out, "# HELP tacit_node_sign_approval_latency_seconds Signing request to released signature.");
        let _ = writeln!(out, "# TYPE tacit_node_sign_approval_latency_seconds summary");
        for q in [0.5, 0.95] {
            let _ = writeln!(
                out,
                "tacit_node_sign_approval_latency_seconds{{quantile=\"{q}\"}} {}",
                fmt_f(m.approval.quantile(q))
            );
        }
        let _ = writeln!(out, "tacit_node_sign_approval_latency_seconds_sum {}", fmt_f(m.approval.sum));
        let _ = writeln!(out, "tacit_node_sign_approval_latency_seconds_count {}", m.approval.count);
        let _ = writeln!(out, "# HELP tacit_node_mesh_connected 1 while connected to every peer.");
        let _ = writeln!(out, "# TYPE tacit_node_mesh_connected gauge");
        let _ = writeln!(out, "tacit_node_mesh_connected {}", u8::from(m.mesh_connected));
        let _ = writeln!(out, "# HELP tacit_node_mesh_connects_total Mesh (re)connections.");
        let _ = writeln!(out, "# TYPE tacit_node_mesh_connects_total counter");
        let _ = writeln!(out, "tacit_node_mesh_connects_total {}", m.mesh_connects);
        out
    }
}

fn fmt_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:.6}")
    }
}

/// Serves `GET /metrics` on `listen` until the listener task is dropped. Requests are read up
/// to 8 KiB; anything else gets 404.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(64));
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let mut buf = vec![0u8; 8192];
                let mut got = 0usize;
                let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while got < buf.len() {
                        let Some(rest) = buf.get_mut(got..) else { break };
                        match sock.read(rest).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => got += k,
                        }
                        if buf.get(..got).is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n")) {
                            break;
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = buf.get(..got).unwrap_or_default();
                let (status, body) = if head.starts_with(b"GET /metrics ") || head.starts_with(b"GET /metrics?") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "not found\n".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Ok((addr, task))
}

/// Fetches `http://addr/metrics` (tests and scripts).
pub async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let text = String::from_utf8_lossy(&out).into_owned();
    Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or(text))
}
