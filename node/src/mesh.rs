//! The peer mesh: one [`QuicTransport`] to every peer (mutual TLS, pinned certificates), made
//! again after a failure. The engine's transport connects once; when a peer restarts, every
//! node drops its transport (closing its connections, which the others notice) and connects
//! afresh, so the mesh heals without any node keeping per-peer reconnection state.

use std::sync::Arc;
use std::time::Duration;

use tacit_mpc_engine::transport::quic::{QuicConfig, QuicTransport};
use tokio::sync::{watch, Mutex};

use crate::error::{NodeError, Result};
use crate::metrics::Metrics;

/// Pause between connection attempts.
const RETRY: Duration = Duration::from_millis(200);

/// The mesh manager.
#[derive(Debug)]
pub struct Mesh {
    config: QuicConfig,
    current: Mutex<Option<Arc<QuicTransport>>>,
    metrics: Arc<Metrics>,
}

impl Mesh {
    /// A manager for `config` (nothing is bound until [`Mesh::get`]).
    pub fn new(config: QuicConfig, metrics: Arc<Metrics>) -> Self {
        Self { config, current: Mutex::new(None), metrics }
    }

    /// The connected transport, connecting (and retrying) until every peer is connected or
    /// `stop` turns true.
    pub async fn get(&self, stop: &mut watch::Receiver<bool>) -> Result<Arc<QuicTransport>> {
        self.get_within(stop, None).await
    }

    /// As [`Mesh::get`], giving up after `limit` with the last connection error (which names
    /// the peer that did not connect).
    pub async fn get_within(
        &self,
        stop: &mut watch::Receiver<bool>,
        limit: Option<Duration>,
    ) -> Result<Arc<QuicTransport>> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref() {
            return Ok(t.clone());
        }
        let started = std::time::Instant::now();
        let mut last_log = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if *stop.borrow() {
                return Err(NodeError::ShuttingDown);
            }
            let attempt = tokio::select! {
                r = QuicTransport::connect(self.config.clone()) => r,
                _ = stop.changed() => return Err(NodeError::ShuttingDown),
            };
            match attempt {
                Ok(t) => {
                    let t = Arc::new(t);
                    tracing::info!(target: "tacit::node", party = self.config.id.get(), "mesh connected to every peer");
                    self.metrics.set_mesh(true);
                    *current = Some(t.clone());
                    return Ok(t);
                }
                Err(e) => {
                    if limit.is_some_and(|l| started.elapsed() >= l) {
                        return Err(e.into());
                    }
                    if last_log.elapsed() > Duration::from_secs(10) {
                        tracing::warn!(target: "tacit::node", party = self.config.id.get(), "mesh not connected: {e}");
                        last_log = std::time::Instant::now();
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => {}
                        _ = stop.changed() => return Err(NodeError::ShuttingDown),
                    }
                }
            }
        }
    }

    /// Drops the current transport (its connections close once the last job holding it ends);
    /// the next [`Mesh::get`] connects afresh.
    pub async fn reset(&self, why: &str) {
        let old = self.current.lock().await.take();
        if old.is_some() {
            tracing::info!(target: "tacit::node", party = self.config.id.get(), "mesh dropped: {why}");
            self.metrics.set_mesh(false);
        }
        drop(old);
    }

    /// Graceful close at shutdown.
    pub async fn shutdown(&self) {
        let old = self.current.lock().await.take();
        if let Some(t) = old {
            let _ = tokio::time::timeout(Duration::from_secs(3), t.shutdown()).await;
        }
        self.metrics.set_mesh(false);
    }
}
