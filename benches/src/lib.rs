//! Shared set-up of Tacit's criterion benches (see `benches/`).

pub mod cggmp24_baseline;

use std::sync::Arc;
use std::time::Duration;

use tacit_mpc_engine::simulate::{bench_less_than, bench_mul, local_quic_cluster, MulBenchReport};
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::transport::quic::{QuicOptions, QuicTransport};
use tacit_mpc_engine::{MpcError, Security, Transport};

/// BN254 scalar field.
pub type Fr = ark_bn254::Fr;

/// A two-worker runtime, like the nodes use on this two-core class of machine.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => std::process::exit({
            eprintln!("tokio runtime: {e}");
            1
        }),
    }
}

/// Transports of an in-memory 3-party network.
pub fn memory_network(n: usize) -> Vec<Arc<MemoryTransport>> {
    MemoryTransport::network(n).into_iter().map(Arc::new).collect()
}

/// A loopback QUIC cluster.
pub fn quic_network(rt: &tokio::runtime::Runtime, n: usize) -> Result<Vec<Arc<QuicTransport>>, MpcError> {
    Ok(rt.block_on(local_quic_cluster(n, QuicOptions::default()))?)
}

/// One multiplication benchmark run.
pub fn mul_run<T: Transport>(
    rt: &tokio::runtime::Runtime,
    transports: &[Arc<T>],
    security: Security,
    count: usize,
) -> Result<MulBenchReport, MpcError> {
    rt.block_on(bench_mul::<Fr, T>(transports.to_vec(), 1, security, count))
}

/// Preprocessing and online time of `count` 64-bit comparisons.
pub fn compare_run<T: Transport>(
    rt: &tokio::runtime::Runtime,
    transports: &[Arc<T>],
    security: Security,
    count: usize,
) -> Result<(Duration, Duration), MpcError> {
    let r = rt.block_on(bench_less_than::<Fr, T>(transports.to_vec(), 1, security, count))?;
    Ok((Duration::from_secs_f64(r.prep_s), Duration::from_secs_f64(r.online_s)))
}
