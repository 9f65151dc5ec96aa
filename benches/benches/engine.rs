//! Engine benches: plain field multiplication (the baseline, same run), batched
//! multiplication online and total over memory and QUIC, and 64-bit comparisons.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tacit_benches::{compare_run, memory_network, mul_run, quic_network, runtime, Fr};
use tacit_mpc_engine::Security;

const MUL_BATCH: usize = 1 << 18;
const COMPARE_BATCH: usize = 1 << 16;

fn plain(c: &mut Criterion) {
    let mut g = c.benchmark_group("baseline");
    let n = 1u64 << 20;
    g.throughput(Throughput::Elements(n));
    g.bench_function("bn254_fr_mul", |b| {
        b.iter(|| {
            let mut acc = Fr::from(3u64);
            let step = Fr::from(7u64);
            for _ in 0..n {
                acc *= step;
            }
            std::hint::black_box(acc)
        })
    });
    g.finish();
}

fn multiplication(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("mul");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(MUL_BATCH as u64));
    let memory = memory_network(3);
    let quic = match quic_network(&rt, 3) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("QUIC cluster: {e}");
            return;
        }
    };
    for (name, security) in [("semi_honest", Security::SemiHonest), ("malicious", Security::Malicious)] {
        for online_only in [true, false] {
            let phase = if online_only { "online" } else { "total" };
            g.bench_function(format!("memory/{name}/{phase}"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| match mul_run(&rt, &memory, security, MUL_BATCH) {
                            Ok(r) => {
                                Duration::from_secs_f64(if online_only { r.online_s } else { r.online_s + r.prep_s })
                            }
                            Err(e) => panic_free_abort(&e.to_string()),
                        })
                        .sum()
                })
            });
            g.bench_function(format!("quic/{name}/{phase}"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| match mul_run(&rt, &quic, security, MUL_BATCH) {
                            Ok(r) => {
                                Duration::from_secs_f64(if online_only { r.online_s } else { r.online_s + r.prep_s })
                            }
                            Err(e) => panic_free_abort(&e.to_string()),
                        })
                        .sum()
                })
            });
        }
    }
    g.finish();
}

fn comparison(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("less_than_64bit");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(COMPARE_BATCH as u64));
    let memory = memory_network(3);
    g.bench_function("memory/malicious/online", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| match compare_run(&rt, &memory, Security::Malicious, COMPARE_BATCH) {
                    Ok((_, online)) => online,
                    Err(e) => panic_free_abort(&e.to_string()),
                })
                .sum()
        })
    });
    g.finish();
}

fn panic_free_abort(msg: &str) -> Duration {
    eprintln!("bench run failed: {msg}");
    std::process::exit(1)
}

criterion_group!(benches, plain, multiplication, comparison);
criterion_main!(benches);
