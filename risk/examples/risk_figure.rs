//! The figure without the CLI: 5 institutions x 100,000 rows, weighted score with
//! noise, 3 nodes over loopback QUIC. `cargo run --release -p tacit-risk --example
//! risk_figure [-- INSTITUTIONS ROWS KEYS]`.

use std::time::Instant;

use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes, synthetic_csv};
use tacit_risk::{aggregate_csv, Ledger, Outcome, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let institutions = args.first().copied().unwrap_or(5);
    let rows = args.get(1).copied().unwrap_or(100_000);
    let keys = args.get(2).copied().unwrap_or(100);
    let signed = approve_all(demo_template(institutions, keys, demo_weighted_score(1.0e8))?)?;
    let tables: Vec<String> = (0..institutions).map(|i| synthetic_csv(i, rows, &signed.template, 42)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for _ in 0..3 {
        let transports = rt.block_on(tacit_mpc_engine::simulate::local_quic_cluster(3, Default::default()))?;
        let start = Instant::now();
        let mut inputs = Vec::with_capacity(tables.len());
        for (csv, inst) in tables.iter().zip(&signed.template.institutions) {
            inputs.push(aggregate_csv(&inst.name, csv, &signed.template)?);
        }
        let parse_s = start.elapsed().as_secs_f64();
        let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
        let results =
            rt.block_on(run_nodes(transports.clone(), 1, &signed, &inputs, ledgers, RunOptions::default(), None))?;
        let seconds = start.elapsed().as_secs_f64();
        rt.block_on(async {
            for t in &transports {
                t.shutdown().await;
            }
        });
        let mut released = 0;
        for r in results {
            if let (Outcome::Released(rel), _) = r? {
                released = rel.released();
            }
        }
        println!("{{\"institutions\":{institutions},\"rows\":{rows},\"keys\":{keys},\"seconds\":{seconds:.3},\"parse_seconds\":{parse_s:.3},\"released\":{released}}}");
    }
    Ok(())
}
