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
            Err(join) => Err(crate::error::MpcError::Usage(format!(
                "party task failed: {join}"
            ))),
        });
    }
    out
}

/// As [`run_engines`] over a fresh in-memory network of `n` parties.
pub async fn run_in_memory<F, R, Fut, P>(
    n: usize,
    t: usize,
    security: Security,
    protocol: P,
) -> Vec<Result<R>>
where
    F: WireField,
    R: Send + 'static,
    Fut: Future<Output = Result<R>> + Send + 'static,
    P: Fn(Engine<F, MemoryTransport>) -> Fut,
{
    let transports = MemoryTransport::network(n)
        .into_iter()
        .map(Arc::new)
        .collect();
    run_engines(transports, t, security, SessionId::random(), protocol).await
}
