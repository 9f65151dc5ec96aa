//! Quick multiplication throughput over the in-memory transport.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use tacit_mpc_engine::simulate::{bench_mul, plain_mults_per_s};
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::Security;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1 << 20);
    println!("plain: {:.1} M/s", plain_mults_per_s::<ark_bn254::Fr>(1 << 24) / 1e6);
    for sec in [Security::SemiHonest, Security::Malicious] {
        let transports = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
        let r = bench_mul::<ark_bn254::Fr, _>(transports, 1, sec, count).await.unwrap();
        println!("{r:?}");
    }
}
