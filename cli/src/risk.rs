//! Aggregate risk scoring on Tacit.
//! `tacit risk ...` and `tacit demo risk`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::sync::Arc;

use tacit_risk::proof::{setup, verify_release, Keys, Shape};
use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes, run_nodes_proved, synthetic_csv};
use tacit_risk::sim::{ProveOptions, ProvedNodeResult};
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
        /// Skip the collaborative proof of the release.
        #[arg(long)]
        no_proof: bool,
        /// Also write the proof, its public inputs and the verifying key here (snarkjs JSON:
        /// `proof.json`, `public.json`, `verification_key.json`).
        #[arg(long)]
        proof_dir: Option<PathBuf>,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Writes a query file for institutions that run as clients of `tacit-node` daemons: the
    /// approved template and the institutions' certificates, in the template's order.
    Query {
        /// Signed template (TOML: `[template]` and `[[approvals]]`).
        #[arg(long)]
        template: PathBuf,
        /// Each institution's certificate (DER file) or fingerprint (hex), in the template's
        /// institution order.
        #[arg(long, required = true, num_args = 1..)]
        institution: Vec<String>,
        /// For a proved query: each institution's published commitment (`tacit risk commit`),
        /// in the same order.
        #[arg(long, num_args = 1..)]
        commitment: Vec<String>,
        /// For a proved query: the proving key's hash (`tacit risk setup`); every node holds
        /// the key as `<data_dir>/risk-keys/<hash>.pk`.
        #[arg(long)]
        proving_key: Option<String>,
        /// The query file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Makes the proving key for a template's shape (a local trusted setup: a deployment
    /// runs a ceremony) and writes `<hash>.pk` and `verification_key.json` (snarkjs) to `--out`.
    Setup {
        /// Signed template.
        #[arg(long)]
        template: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Commits to an institution's table before a proved query: prints the commitment to
    /// publish and writes the opening (commitment and secret salt) to `--out` (mode 0600).
    Commit {
        /// Signed template.
        #[arg(long)]
        template: PathBuf,
        /// This institution's name in the template.
        #[arg(long)]
        institution: String,
        /// Its CSV table.
        #[arg(long)]
        input: PathBuf,
        /// Opening file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Joins a query on the nodes as one of its institutions with this institution's table:
    /// deals its shares to the nodes (each receives only its own) and prints the outcome.
    Join(crate::node::JoinArgs),
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
    /// Prove the release collaboratively (Groth16) and verify the proof (the default; the
    /// proof is timed separately). Kept for older command lines.
    #[arg(long, hide = true)]
    pub prove: bool,
    /// Skip the collaborative proof.
    #[arg(long, conflicts_with = "prove")]
    pub no_prove: bool,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The proof part of a report.
#[derive(Serialize, Default)]
struct ProofReport {
    /// Seconds of the collaborative proof (witness on shares and Groth16), slowest node.
    proof_seconds: Option<f64>,
    /// Seconds of the local key setup for the template's shape (not part of a run).
    setup_seconds: Option<f64>,
    constraints: Option<usize>,
    public_inputs: Option<usize>,
    /// Whether a proof was produced.
    proved: bool,
    /// Whether every node's proof verified against the statement built from the release;
    /// `null` when nothing was proved.
    verified: Option<bool>,
}

#[derive(Serialize)]
struct DemoReport {
    institutions: usize,
    rows: usize,
    keys: usize,
    nodes: usize,
    /// Seconds of parsing, dealing and the MPC query (the proof is not included).
    seconds: f64,
    released: usize,
    suppressed: usize,
    epsilon_spent: f64,
    flagged: usize,
    #[serde(flatten)]
    proof: ProofReport,
}

pub fn run(command: RiskCommand) -> anyhow::Result<()> {
    match command {
        RiskCommand::Run { cluster, template, input, ledgers, budget, no_proof, proof_dir, json } => {
            let prove = Proving { prove: !no_proof, proof_dir };
            run_template(&cluster, &template, &input, &ledgers, budget, &prove, json)
        }
        RiskCommand::Example { out, institutions, rows, keys } => example(&out, institutions, rows, keys),
        RiskCommand::Query { template, institution, commitment, proving_key, out } => {
            write_query(&template, &institution, commitment, proving_key, &out)
        }
        RiskCommand::Setup { template, out } => write_setup(&template, &out),
        RiskCommand::Commit { template, institution, input, out } => commit(&template, &institution, &input, &out),
        RiskCommand::Join(a) => join(&a.client, &a.query, &a.input, a.opening, a.json),
    }
}

fn read_template(path: &Path) -> anyhow::Result<SignedTemplate> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn write_setup(template: &Path, out: &Path) -> anyhow::Result<()> {
    let signed = read_template(template)?;
    let shape = Shape::from_template(&signed.template)?;
    let keys = crate::bench::runtime()?.block_on(setup(&shape))?;
    let pk = tacit_prover::keys::proving_key_to_bytes(&keys.pk)?;
    let hash = tacit_node::risk::proving_key_hash(&pk);
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(format!("{hash}.pk")), &pk)?;
    let vk = tacit_prover::snarkjs::verification_key_to_snarkjs(&keys.pk.vk);
    std::fs::write(out.join("verification_key.json"), serde_json::to_string_pretty(&vk)?)?;
    println!("proving key {hash}: copy {hash}.pk to every node's <data_dir>/risk-keys/");
    Ok(())
}

/// A risk opening file (`tacit risk commit`): secret, because of the salt.
#[derive(Serialize, serde::Deserialize)]
struct RiskOpening {
    institution: String,
    commitment: String,
    salt: String,
}

fn commit(template: &Path, institution: &str, input: &Path, out: &Path) -> anyhow::Result<()> {
    let signed = read_template(template)?;
    let csv = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let table = aggregate_csv(institution, &csv, &signed.template).with_context(|| input.display().to_string())?;
    let to_hex = tacit_psi::committed::to_hex;
    let opening = RiskOpening {
        institution: institution.into(),
        commitment: to_hex(&table.commitment()?),
        salt: to_hex(&table.salt),
    };
    tacit_node::init::write_secret(out, serde_json::to_string_pretty(&opening)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("commitment {}; opening written to {}", opening.commitment, out.display());
    Ok(())
}

fn write_query(
    template: &Path,
    institutions: &[String],
    commitments: Vec<String>,
    proving_key: Option<String>,
    out: &Path,
) -> anyhow::Result<()> {
    let signed = read_template(template)?;
    let institutions = crate::psi::fingerprints(institutions)?;
    let commitments = (!commitments.is_empty()).then_some(commitments);
    let spec =
        tacit_node::api::JobSpec::RiskQuery { template: Box::new(signed), institutions, commitments, proving_key };
    // The query's own checks (approvals, sizes) do not depend on the cluster's shape.
    spec.validate(3, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::psi::write_query_file(spec, out)
}

fn join(client: &Path, query: &Path, input: &Path, opening: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let client = tacit_node::client::Client::load(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (job_id, spec) = crate::psi::read_query_file(query)?;
    let tacit_node::api::JobSpec::RiskQuery { template, commitments, .. } = &spec else {
        anyhow::bail!("{} is not a risk query", query.display());
    };
    let index = spec
        .institution_index(&client.fingerprint())
        .context("this client's certificate is not listed in the query")?;
    let name = template.template.institutions.get(index).map(|i| i.name.clone()).unwrap_or_default();
    let csv = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let mut table = aggregate_csv(&name, &csv, &template.template).with_context(|| input.display().to_string())?;
    match (opening, commitments) {
        (Some(path), Some(published)) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let opening: RiskOpening =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            table.salt = tacit_psi::committed::from_hex(&opening.salt).context("salt")?;
            let mine = tacit_psi::committed::to_hex(&table.commitment()?);
            anyhow::ensure!(mine == opening.commitment, "the table does not open the commitment in {}", path.display());
            anyhow::ensure!(published.get(index) == Some(&mine), "the query lists another commitment for {name}");
        }
        (None, Some(_)) => anyhow::bail!("a proved query: give --opening"),
        (Some(_), None) => anyhow::bail!("--opening is for proved queries"),
        (None, None) => {}
    }
    let rt = crate::bench::runtime()?;
    let bar = crate::bench::spinner("waiting for the other institutions, then running the query", json);
    let timeout = std::time::Duration::from_secs(600);
    let outcome = rt.block_on(client.join_risk(&job_id, &spec, &table, timeout)).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "query": job_id, "institution": name, "outcome": outcome }))?
        );
    } else {
        print_outcome(&outcome);
    }
    Ok(())
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

/// Whether and where to prove.
struct Proving {
    prove: bool,
    proof_dir: Option<PathBuf>,
}

/// Keys for a template's shape (a local trusted setup), and its seconds; `None` (with a
/// note on stderr) for a template the proof does not cover.
fn keys_for(rt: &tokio::runtime::Runtime, signed: &SignedTemplate) -> anyhow::Result<Option<(Arc<Keys>, f64)>> {
    let start = Instant::now();
    let shape = match Shape::from_template(&signed.template) {
        Ok(shape) => shape,
        Err(e) => {
            eprintln!("the release will not be proved: {e}");
            return Ok(None);
        }
    };
    let keys = rt.block_on(setup(&shape))?;
    Ok(Some((Arc::new(keys), start.elapsed().as_secs_f64())))
}

/// The outcome all nodes agree on, and the proof report: every node's proof is checked as
/// a verifier would, against the statement built from the agreed release and the
/// commitments.
fn agreed_proved(
    results: Vec<ProvedNodeResult>,
    signed: &SignedTemplate,
    commitments: &[ark_bn254::Fr],
    keys: &Keys,
    setup_seconds: f64,
) -> anyhow::Result<(Outcome, ProofReport, f64, Option<ark_groth16::Proof<ark_bn254::Bn254>>)> {
    let mut first: Option<Outcome> = None;
    let mut proofs = Vec::new();
    let (mut query_s, mut proof_s) = (0f64, 0f64);
    for (i, r) in results.into_iter().enumerate() {
        let (node, _) = r.with_context(|| format!("node {}", i + 1))?;
        if let Some(f) = &first {
            anyhow::ensure!(*f == node.outcome, "nodes disagree on the outcome");
        }
        query_s = query_s.max(node.query_seconds);
        proof_s = proof_s.max(node.proof_seconds);
        proofs.extend(node.proof);
        first = Some(node.outcome);
    }
    let outcome = first.context("no nodes")?;
    let mut report = ProofReport { setup_seconds: Some(setup_seconds), ..ProofReport::default() };
    let mut proof = None;
    if let Outcome::Released(release) = &outcome {
        report.proved = !proofs.is_empty();
        report.proof_seconds = Some(proof_s);
        report.constraints = Some(keys.matrices.num_constraints());
        report.public_inputs = Some(keys.pk.vk.gamma_abc_g1.len().saturating_sub(1));
        let mut verified = report.proved;
        for p in &proofs {
            verified &= verify_release(&signed.template, commitments, release, &keys.pvk, p)?;
        }
        report.verified = Some(verified);
        proof = proofs.into_iter().next();
    }
    Ok((outcome, report, query_s, proof))
}

/// Writes the proof, its public inputs and the verifying key in snarkjs JSON.
fn write_proof(
    dir: &Path,
    signed: &SignedTemplate,
    commitments: &[ark_bn254::Fr],
    release: &Release,
    keys: &Keys,
    proof: &ark_groth16::Proof<ark_bn254::Bn254>,
) -> anyhow::Result<()> {
    use tacit_prover::snarkjs::{proof_to_snarkjs, public_to_snarkjs, verification_key_to_snarkjs};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let statement = tacit_risk::proof::Statement::from_release(&signed.template, commitments, release)?;
    let write = |name: &str, value: serde_json::Value| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&value)?)
            .with_context(|| format!("writing {}", path.display()))
    };
    write("proof.json", serde_json::to_value(proof_to_snarkjs(proof))?)?;
    write("public.json", serde_json::to_value(public_to_snarkjs(&statement.public_inputs()))?)?;
    write("verification_key.json", serde_json::to_value(verification_key_to_snarkjs(&keys.pk.vk))?)?;
    Ok(())
}

fn run_template(
    cluster: &Path,
    template: &Path,
    inputs: &[String],
    ledger_dir: &Path,
    budget: f64,
    proving: &Proving,
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
    let keys = if proving.prove { keys_for(&rt, &signed)? } else { None };
    let (outcome, report, seconds) = if let Some((keys, setup_seconds)) = keys {
        let (results, commitments) = rt.block_on(async {
            let transports = crate::cluster::local_quic_cluster(n).await?;
            let r = run_nodes_proved(
                transports.clone(),
                cluster.threshold,
                &signed,
                &tables,
                ledgers,
                keys.clone(),
                ProveOptions::default(),
            )
            .await;
            for t in &transports {
                t.shutdown().await;
            }
            anyhow::Ok(r?)
        })?;
        let (outcome, report, seconds, proof) = agreed_proved(results, &signed, &commitments, &keys, setup_seconds)?;
        if let (Some(dir), Outcome::Released(release), Some(proof)) = (&proving.proof_dir, &outcome, &proof) {
            write_proof(dir, &signed, &commitments, release, &keys, proof)?;
        }
        (outcome, report, seconds)
    } else {
        let start = Instant::now();
        let results = rt.block_on(async {
            let transports = crate::cluster::local_quic_cluster(n).await?;
            let r = run_nodes(
                transports.clone(),
                cluster.threshold,
                &signed,
                &tables,
                ledgers,
                RunOptions::default(),
                None,
            )
            .await;
            for t in &transports {
                t.shutdown().await;
            }
            anyhow::Ok(r?)
        })?;
        (agreed(results)?, ProofReport::default(), start.elapsed().as_secs_f64())
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        let mut value = serde_json::json!({"seconds": seconds, "outcome": outcome});
        if let (Some(map), serde_json::Value::Object(extra)) = (value.as_object_mut(), serde_json::to_value(&report)?) {
            map.extend(extra);
        }
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print_outcome(&outcome);
        println!("{seconds:.2} s");
        print_proof(&report);
    }
    Ok(())
}

fn print_proof(p: &ProofReport) {
    match p.verified {
        Some(verified) => println!(
            "collaborative Groth16 proof ({} constraints, {} public inputs; setup {:.2} s): {:.2} s; verified: {verified}",
            p.constraints.unwrap_or(0),
            p.public_inputs.unwrap_or(0),
            p.setup_seconds.unwrap_or(0.0),
            p.proof_seconds.unwrap_or(0.0),
        ),
        None => println!("not proved"),
    }
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
            tacit_risk::CellStatus::Suppressed { reason, .. } => println!("  {:<12} suppressed: {reason}", cell.key),
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
    // Keys for the template's shape: a local setup, once per template (not timed with the run).
    let keys = if args.no_prove { None } else { keys_for(&rt, &signed)? };
    let bar = crate::bench::spinner("risk query on 3 nodes over loopback QUIC", args.json);
    let transports = rt.block_on(crate::cluster::local_quic_cluster(3))?;
    // Timed: parsing and aggregation by every institution, dealing, the nodes' run.
    let start = Instant::now();
    let mut inputs = Vec::with_capacity(tables.len());
    for (csv, inst) in tables.iter().zip(&signed.template.institutions) {
        inputs.push(aggregate_csv(&inst.name, csv, &signed.template)?);
    }
    let ledgers = (0..3).map(|_| Ledger::in_memory(10.0)).collect();
    let (outcome, proof, seconds) = if let Some((keys, setup_seconds)) = &keys {
        let parse_seconds = start.elapsed().as_secs_f64();
        let (results, commitments) = rt.block_on(run_nodes_proved(
            transports.clone(),
            1,
            &signed,
            &inputs,
            ledgers,
            keys.clone(),
            ProveOptions::default(),
        ))?;
        let total = start.elapsed().as_secs_f64();
        let (outcome, report, query_seconds, _) = agreed_proved(results, &signed, &commitments, keys, *setup_seconds)?;
        // The query's seconds: everything before the proof (parsing, commitments, dealing,
        // the MPC run).
        let seconds = (total - report.proof_seconds.unwrap_or(0.0)).max(parse_seconds + query_seconds);
        (outcome, report, seconds)
    } else {
        let results =
            rt.block_on(run_nodes(transports.clone(), 1, &signed, &inputs, ledgers, RunOptions::default(), None))?;
        (agreed(results)?, ProofReport::default(), start.elapsed().as_secs_f64())
    };
    rt.block_on(async {
        for t in &transports {
            t.shutdown().await;
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
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
        print_proof(&report.proof);
    }
    Ok(())
}
