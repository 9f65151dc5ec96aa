//! `cargo run --release -p tacit-psi --example psi_bench -- [ITEMS] [MODE] [INSTITUTIONS] [committed]`:
//! one query on 3 nodes over loopback QUIC (malicious security), random address sets with an
//! eighth of the items in every set (and, for `setQ`, another eighth in the first Q sets only;
//! MODE: `set`, `setQ` for "in at least Q sets", `cardinality`, `sum`); prints one JSON object
//! with the per-step times of node 1.

use rand::{Rng, SeedableRng};
use tacit_psi::{oracle, InputSet, Item, Mode, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let items: usize = args.get(1).map_or(Ok(1 << 12), |s| s.parse())?;
    let mode = match args.get(2).map(String::as_str) {
        Some("set") => Mode::Set,
        Some(q) if q.starts_with("set") => Mode::SetAtLeast { min_sets: q.trim_start_matches("set").parse()? },
        Some("sum") => Mode::Sum { min_size: 1 },
        _ => Mode::Cardinality,
    };
    let institutions: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let committed = args.get(4).is_some_and(|s| s == "committed");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let common: Vec<[u8; 20]> = (0..items / 8).map(|_| rng.gen()).collect();
    // With q < m, another eighth is in the first q sets only (exercising the smaller groups).
    let q = match mode {
        Mode::SetAtLeast { min_sets } if min_sets < institutions => min_sets,
        _ => 0,
    };
    let in_first_q: Vec<[u8; 20]> = (0..if q > 0 { items / 8 } else { 0 }).map(|_| rng.gen()).collect();
    let sets: Vec<InputSet> = (0..institutions)
        .map(|c| {
            let mut pairs: Vec<(Item, u64)> =
                common.iter().map(|a| (Item::from_address(a), rng.gen_range(0..1000))).collect();
            if c < q {
                pairs.extend(in_first_q.iter().map(|a| (Item::from_address(a), rng.gen_range(0..1000))));
            }
            while pairs.len() < items {
                pairs.push((Item::from_address(&rng.gen()), rng.gen_range(0..1000)));
            }
            InputSet::from_pairs(pairs)
        })
        .collect::<Result<_, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let run = rt.block_on(async {
        let transports = tacit_mpc_engine::simulate::local_quic_cluster(3, tacit_psi::protocol::quic_options()).await?;
        let run = if committed {
            // Commitments are published before the query (not timed).
            let (openings, commitments): (Vec<_>, Vec<_>) = sets
                .iter()
                .map(|s| tacit_psi::CommittedInput::commit(s.clone()))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .unzip();
            tacit_psi::run_local_committed(transports.clone(), &openings, &commitments, &RunOptions::new(1, mode)).await
        } else {
            tacit_psi::run_local(transports.clone(), &sets, &RunOptions::new(1, mode)).await
        };
        for t in transports {
            t.shutdown().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(run)
    })?;
    let seconds = run.seconds;
    let (outs, report) = run.into_result()?;
    let ok = match mode {
        Mode::Set | Mode::SetAtLeast { .. } => outs.iter().zip(oracle(&sets, mode)).all(|(a, b)| match (a, b) {
            (tacit_psi::PsiOutput::Set(x), tacit_psi::PsiOutput::Set(y)) => {
                let mut x = x.clone();
                let mut y = y.clone();
                x.sort();
                y.sort();
                x == y
            }
            _ => false,
        }),
        _ => outs == oracle(&sets, mode),
    };
    let phases: Vec<String> = report.phases.iter().map(|(k, v)| format!("\"{k}\":{v:.3}")).collect();
    println!(
        "{{\"institutions\":{institutions},\"items_per_institution\":{items},\"mode\":\"{}\",\"committed\":{committed},\"intersection_size\":{},\"seconds\":{seconds:.3},\"bytes_sent_per_node\":{},\"matches_oracle\":{ok},\"phases\":{{{}}}}}",
        mode.name(),
        report.intersection_size,
        report.bytes_sent,
        phases.join(",")
    );
    Ok(())
}
