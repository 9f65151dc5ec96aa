//! Phase timings of one party set (profiling aid).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::Security;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = 1 << 20;
    let security = if std::env::args().any(|a| a == "semi") { Security::SemiHonest } else { Security::Malicious };
    let r = run_in_memory::<ark_bn254::Fr, _, _, _>(3, 1, security, move |mut e| async move {
        let mut times = Vec::new();
        let t = Instant::now();
        e.preprocess(0, 2 * count, 0).await?;
        times.push(("randoms 2M", t.elapsed()));
        let t = Instant::now();
        e.preprocess(count + 64, 0, 0).await?;
        times.push(("doubles 1M", t.elapsed()));
        let x = e.take_randoms(count).await?.into_shares();
        let y = e.take_randoms(count).await?.into_shares();
        let t = Instant::now();
        let _z = e.mul(&x, &y).await?;
        times.push(("mul", t.elapsed()));
        let t = Instant::now();
        e.verify().await?;
        times.push(("verify", t.elapsed()));
        Ok(times)
    })
    .await;
    println!("{:?}", r[0].as_ref().unwrap());
}
