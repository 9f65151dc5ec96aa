//! `tacit bench ...`

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tacit_mpc_engine::simulate::{bench_less_than, bench_mul, bench_mul_party, plain_mults_per_s, MulBenchReport};
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::Security;
use tacit_mpc_engine::{Engine, PartyId, SessionId};

use crate::{SecurityArg, TransportKind};

type Fr = ark_bn254::Fr;

/// Runs a benchmark over the chosen transport: an in-memory network, or a loopback QUIC
/// cluster that is shut down afterwards. (A macro because the two transport types differ.)
macro_rules! on_transport {
    ($runtime:expr, $kind:expr, $parties:expr, |$ts:ident| $bench:expr) => {
        $runtime.block_on(async {
            match $kind {
                TransportKind::Memory => {
                    let $ts = MemoryTransport::network($parties).into_iter().map(Arc::new).collect();
                    $bench.await.context("benchmark failed")
                }
                TransportKind::Quic => {
                    let $ts = crate::cluster::local_quic_cluster($parties).await?;
                    let quic = $ts.clone();
                    let report = $bench.await.context("benchmark failed");
                    for t in quic {
                        t.shutdown().await;
                    }
                    report
                }
            }
        })?
    };
}

/// The runtime the commands use: two workers, like a node on this class of machine.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()
}

/// A spinner (drawn on stderr) while `what` runs, only when stdout is a terminal.
pub fn spinner(what: &str, quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    Some(bar)
}

fn security_of(arg: SecurityArg) -> Security {
    match arg {
        SecurityArg::Malicious => Security::Malicious,
        SecurityArg::SemiHonest => Security::SemiHonest,
    }
}

pub fn party(dir: &std::path::Path, id: u16, count: usize, security: SecurityArg, session: &str) -> anyhow::Result<()> {
    let id = PartyId::new(id).context("party ids are 1..=16")?;
    let config = crate::cluster::party_config(dir, id)?;
    let threshold = crate::cluster::load_cluster(dir)?.threshold;
    let runtime = runtime()?;
    runtime.block_on(async {
        let transport = Arc::new(QuicTransport::connect(config).await.context("joining the cluster")?);
        let engine =
            Engine::<Fr, _>::new(transport.clone(), threshold, security_of(security), SessionId::derive(session, 0))?;
        let figures = bench_mul_party(engine, count).await.context("benchmark failed");
        transport.shutdown().await;
        let figures = figures?;
        println!("{}", serde_json::to_string(&figures)?);
        Ok(())
    })
}

pub fn mul(
    parties: usize,
    threshold: usize,
    count: usize,
    transport: TransportKind,
    security: SecurityArg,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0, "--count must be positive");
    let security = security_of(security);
    let runtime = runtime()?;
    let bar = spinner(&format!("{count} multiplications, {parties} parties over {transport:?}"), json);
    let plain = plain_mults_per_s::<Fr>(1 << 22);
    let report: MulBenchReport =
        on_transport!(runtime, transport, parties, |ts| bench_mul::<Fr, _>(ts, threshold, security, count));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        let value = serde_json::json!({
            "protocol": report.protocol,
            "parties": report.parties,
            "count": report.count,
            "prep_s": report.prep_s,
            "online_s": report.online_s,
            "online_mults_per_s": report.online_mults_per_s,
            "total_mults_per_s": report.total_mults_per_s,
            "bytes_sent_per_party": report.bytes_sent_per_party,
            "rounds": report.rounds,
        });
        println!("{value}");
        return Ok(());
    }
    println!("protocol                {}", report.protocol);
    println!("transport               {transport:?}");
    println!("parties                 {} (threshold {})", report.parties, report.threshold);
    println!("count                   {}", report.count);
    println!("preprocessing           {:.3} s", report.prep_s);
    println!("online                  {:.3} s (verification {:.3} s)", report.online_s, report.verify_s);
    println!("online mults/s          {:.0}", report.online_mults_per_s);
    println!("total mults/s           {:.0}", report.total_mults_per_s);
    println!("bytes sent per party    {}", report.bytes_sent_per_party);
    println!("online bytes/party/mult {:.1}", report.online_bytes_per_mult);
    println!("online rounds           {}", report.rounds);
    println!("plain field mults/s     {plain:.0} (one thread)");
    println!("online / plain          {:.4}", report.online_mults_per_s / plain);
    let (anchor_online, anchor_total) = match security {
        Security::SemiHonest => (2_260_000.0, None),
        Security::Malicious => (880_000.0, Some(8.8)),
    };
    println!("vs MP-SPDZ anchor       online {:.2}x", report.online_mults_per_s / anchor_online);
    if let Some(total) = anchor_total {
        if report.count == 1 << 20 {
            println!(
                "                        total {:.2}x (anchor {total} s for 2^20)",
                total / (report.prep_s + report.online_s)
            );
        }
    }
    Ok(())
}

pub fn compare(
    parties: usize,
    threshold: usize,
    count: usize,
    transport: TransportKind,
    security: SecurityArg,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(count > 0, "--count must be positive");
    let security = security_of(security);
    let runtime = runtime()?;
    let bar = spinner(&format!("{count} 64-bit comparisons, {parties} parties over {transport:?}"), json);
    let report =
        on_transport!(runtime, transport, parties, |ts| bench_less_than::<Fr, _>(ts, threshold, security, count));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "comparisons             {} of {}-bit values ({parties} parties, {transport:?}, {security:?})",
        report.count, report.bits
    );
    println!("preprocessing           {:.3} s (random bits)", report.prep_s);
    println!("online                  {:.3} s, {} rounds", report.online_s, report.rounds);
    println!("online comparisons/s    {:.0}", report.online_per_s);
    Ok(())
}

pub fn gas(json: bool) -> anyhow::Result<()> {
    let rows = tacit_contracts::bench::gas_report()?;
    if json {
        let value = serde_json::json!({
            "inputs": rows.iter().map(|r| r.n).collect::<Vec<_>>(),
            "exec_gas": rows.iter().map(|r| r.execution_gas).collect::<Vec<_>>(),
            "floor_gas": rows.iter().map(|r| r.floor).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(());
    }
    println!("public inputs  execution gas  EIP-1108 floor  over floor");
    for r in &rows {
        println!("{:>13}  {:>13}  {:>14}  {:>10}", r.n, r.execution_gas, r.floor, r.over_floor);
    }
    Ok(())
}
