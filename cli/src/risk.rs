//! Aggregate risk scoring on Tacit.
//! `tacit risk ...` and `tacit demo risk`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes, synthetic_csv};
use tacit_risk::{aggregate_csv, InstitutionInput, Ledger, Outcome, Release, RunOptions, SignedTemplate};

/// `tacit risk ...`
#[derive(Subcommand, Debug)]
pub enum RiskCommand {
    /// Runs an approved template over institutions' CSV tables on every node of the cluster,
    /// the nodes as tasks of this process over loopback QUIC (one host; the node daemon
    /// will run them as separate processes).
    Run {
        /// Cluster file (`cluster.toml`) or its directory: gives the parties and threshold.
        #[arg(long)]
        cluster: PathBuf,
        /// Signed template (TOML: `[template]` and `[[approvals]]`).
        #[arg(long)]
        template: PathBuf,
        /// One CSV table per institution, in the template's institution order; with one
        /// institution per file given as `NAME=FILE.csv` or plain `FILE.csv`.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<String>,
        /// Directory of the nodes' privacy-budget ledgers (`node-<i>.json`).
        #[arg(long, default_value = "risk-ledgers")]
        ledgers: PathBuf,
        /// Budget of a querier the ledger does not list, when a ledger is created.
        #[arg(long, default_value_t = 10.0)]
        budget: f64,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Writes a demo template signed with the demo institutions' keys, and their tables.
    Example {
        /// Output directory.
        #[arg(long, default_value = "risk-example")]
        out: PathBuf,
        /// Institutions.
        #[arg(long, default_value_t = 3)]
        institutions: usize,
        /// Rows per institution.
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Keys (counterparties).
        #[arg(long, default_value_t = 20)]
        keys: usize,
    },
}

/// `tacit demo risk`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Institutions.
    #[arg(long, default_value_t = 5)]
    pub institutions: usize,
    /// Rows per institution.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Keys (counterparties) in the template's universe.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Also prove the release collaboratively (Groth16) and verify the proof; the proof is
    /// timed separately.
    #[arg(long)]
    pub prove: bool,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ProofReport {
    seconds: f64,
    constraints: usize,
    public_inputs: usize,
    verified: bool,
}

#[derive(Serialize)]
struct DemoReport {
    institutions: usize,
    rows: usize,
    keys: usize,
    nodes: usize,
    seconds: f64,
    released: usize,
    suppressed: usize,
    epsilon_spent: f64,
    flagged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    proof: Option<ProofReport>,
}

pub fn run(command: RiskCommand) -> anyhow::Result<()> {
    match command {
        RiskCommand::Run { cluster, template, input, ledgers, budget, json } => {
            run_template(&cluster, &template, &input, &ledgers, budget, json)
        }
        RiskCommand::Example { out, institutions, rows, keys } => example(&out, institutions, rows, keys),
    }
}

fn example(out: &Path, institutions: usize, rows: usize, keys: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let signed = approve_all(demo_template(institutions, keys, demo_weighted_score(5.0e6))?)?;
    let path = out.join("template.toml");
    std::fs::write(&path, toml::to_string_pretty(&signed)?)?;
    println!("signed template: {}", path.display());
    for (i, inst) in signed.template.institutions.iter().enumerate() {
        let csv = out.join(format!("{}.csv", inst.name));
        std::fs::write(&csv, synthetic_csv(i, rows, &signed.template, 42))?;
        println!("table of {}: {}", inst.name, csv.display());
    }
    Ok(())
}

fn run_template(
    cluster: &Path,
    template: &Path,
    inputs: &[String],
    ledger_dir: &Path,
    budget: f64,
    json: bool,
) -> anyhow::Result<()> {
    let dir = if cluster.is_dir() { cluster.to_path_buf() } else { cluster.parent().unwrap_or(Path::new(".")).into() };
    let cluster = crate::cluster::load_cluster(&dir)?;
    let n = cluster.parties.len();
    let text = std::fs::read_to_string(template).with_context(|| format!("reading {}", template.display()))?;
    let signed: SignedTemplate = toml::from_str(&text).with_context(|| format!("parsing {}", template.display()))?;
    signed.verify().context("template approvals")?;
    let names: Vec<String> = signed.template.institutions.iter().map(|i| i.name.clone()).collect();
    anyhow::ensure!(inputs.len() == names.len(), "{} inputs for {} institutions", inputs.len(), names.len());
    let mut tables: Vec<InstitutionInput> = Vec::with_capacity(inputs.len());
    for (arg, name) in inputs.iter().zip(&names) {
        let (label, file) = match arg.split_once('=') {
            Some((l, f)) => (l.to_string(), f),
            None => (name.clone(), arg.as_str()),
        };
        anyhow::ensure!(label == *name, "input {label:?} given where {name:?} is expected");
        let csv = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        tables.push(aggregate_csv(name, &csv, &signed.template).with_context(|| file.to_string())?);
    }
    std::fs::create_dir_all(ledger_dir)?;
    let mut ledgers = Vec::with_capacity(n);
    for i in 1..=n {
        ledgers.push(Ledger::open(ledger_dir.join(format!("node-{i}.json")), budget)?);
    }
    let rt = crate::bench::runtime()?;
    let bar = crate::bench::spinner("risk query on the local cluster", json);
    let start = Instant::now();
    let results = rt.block_on(async {
        let transports = crate::cluster::local_quic_cluster(n).await?;
        let r =
            run_nodes(transports.clone(), cluster.threshold, &signed, &tables, ledgers, RunOptions::default(), None)
                .await;
        for t in &transports {
            t.shutdown().await;
        }
        anyhow::Ok(r?)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = agreed(results)?;
    if json {
        println!("{}", serde_json::to_string(&serde_json::json!({"seconds": seconds, "outcome": outcome}))?);
    } else {
        print_outcome(&outcome);
        println!("{seconds:.2} s");
    }
    Ok(())
}

/// The outcome all nodes agree on (an error if any node failed or they differ).
fn agreed(results: Vec<tacit_risk::sim::NodeResult>) -> anyhow::Result<Outcome> {
    let mut first: Option<Outcome> = None;
    for (i, r) in results.into_iter().enumerate() {
        let (outcome, _) = r.with_context(|| format!("node {}", i + 1))?;
        if let Some(f) = &first {
            anyhow::ensure!(*f == outcome, "nodes disagree on the outcome");
        }
        first = Some(outcome);
    }
    first.context("no nodes")
}

fn print_outcome(outcome: &Outcome) {
    match outcome {
        Outcome::Refused { reason } => println!("refused: {reason}"),
        Outcome::Released(r) => print_release(r),
    }
}

fn print_release(r: &Release) {
    println!("template {}  epsilon spent {}", r.template, r.epsilon_spent);
    for cell in &r.cells {
        match &cell.status {
            tacit_risk::CellStatus::Released => {
                let figs: Vec<String> = cell.figures.iter().map(|(k, v)| format!("{k}={v:.3}")).collect();
                println!("  {:<12} {}", cell.key, figs.join("  "));
            }
            tacit_risk::CellStatus::Suppressed { reason } => println!("  {:<12} suppressed: {reason}", cell.key),
        }
    }
    for (k, v) in &r.summary {
        println!("  {k}: {v}");
    }
    for (k, v) in &r.noise_bounds {
        println!("  noise bound of {k}: ±{v}");
    }
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.institutions >= 1 && args.keys >= 1, "need institutions and keys");
    // Threshold at the expected score of a common key of the synthetic data (about 15,018 per
    // row), so that some keys are flagged.
    let rows_per_key = (args.institutions * args.rows) as f64 / (args.keys - args.keys / 10).max(1) as f64;
    let threshold = 15_018.0 * rows_per_key;
    let signed = approve_all(demo_template(args.institutions, args.keys, demo_weighted_score(threshold))?)?;
    // The institutions' tables (generated; not timed).
    let tables: Vec<String> =
        (0..args.institutions).map(|i| synthetic_csv(i, args.rows, &signed.template, 42)).collect();
    let rt = crate::bench::runtime()?;
    let bar = crate::bench::spinner("risk query on 3 nodes over loopback QUIC", args.json);
    let transports = rt.block_on(crate::cluster::local_quic_cluster(3))?;
    // Timed: parsing and aggregation by every institution, dealing, the nodes' run.
    let start = Instant::now();
    let mut inputs = Vec::with_capacity(tables.len());
    for (csv, inst) in tables.iter().zip(&signed.template.institutions) {
        inputs.push(aggregate_csv(&inst.name, csv, &signed.template)?);
    }
    let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
    let mut proof = None;
    let (results, seconds) = if args.prove {
        let (results, proved) =
            rt.block_on(tacit_risk::sim::run_nodes_proved(transports.clone(), 1, &signed, &inputs, ledgers))?;
        let seconds = start.elapsed().as_secs_f64();
        if let Some((stmt, keys, proofs)) = proved {
            let verified = proofs.iter().all(|p| tacit_risk::proof::verify(&stmt, &keys.pvk, p));
            proof = Some(ProofReport {
                seconds,
                constraints: keys.matrices.num_constraints(),
                public_inputs: stmt.public_inputs().len(),
                verified,
            });
        }
        (results, seconds)
    } else {
        let results =
            rt.block_on(run_nodes(transports.clone(), 1, &signed, &inputs, ledgers, RunOptions::default(), None))?;
        (results, start.elapsed().as_secs_f64())
    };
    rt.block_on(async {
        for t in &transports {
            t.shutdown().await;
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = agreed(results)?;
    let Outcome::Released(release) = &outcome else {
        anyhow::bail!("the query was refused");
    };
    let flagged = release.cells.iter().filter(|c| c.figures.get("flag") == Some(&1.0)).count();
    let report = DemoReport {
        institutions: args.institutions,
        rows: args.rows,
        keys: args.keys,
        nodes: 3,
        seconds,
        released: release.released(),
        suppressed: release.suppressed(),
        epsilon_spent: release.epsilon_spent,
        flagged,
        proof,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_release(release);
        println!(
            "{} institutions x {} rows, {} keys, 3 nodes over loopback QUIC: {:.2} s; {} released, {} suppressed, \
             {} flagged, epsilon spent {}",
            report.institutions,
            report.rows,
            report.keys,
            report.seconds,
            report.released,
            report.suppressed,
            report.flagged,
            report.epsilon_spent
        );
        if let Some(p) = &report.proof {
            println!(
                "with the collaborative Groth16 proof ({} constraints, {} public inputs): {:.2} s in all; verified: {}",
                p.constraints, p.public_inputs, p.seconds, p.verified
            );
        }
    }
    Ok(())
}
