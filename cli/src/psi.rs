//! Multi-party private set intersection on Tacit.
//! `tacit psi ...` and `tacit demo psi`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tacit_psi::proven::ProofKeys;
use tacit_psi::tacit_mpc_engine::Security;
use tacit_psi::{oracle, Input, InputSet, Item, LocalRun, Mode, PsiOutput, RunOptions};

/// Largest set size per institution for which committed-input proofs are specified.
const PROOF_LIMIT: usize = 1 << 12;

/// `tacit psi ...`
#[derive(Subcommand, Debug)]
pub enum PsiCommand {
    /// Runs one query over institutions' CSV files (one item per line, optional `,value`) on
    /// every node of the cluster, the nodes as tasks of this process over loopback QUIC and
    /// the institutions as their clients (one host; the node daemon will run them apart).
    Run {
        /// Cluster file (`cluster.toml`) or its directory: gives the nodes and threshold.
        #[arg(long)]
        cluster: PathBuf,
        /// One CSV per institution (repeat; at least two).
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// What the query reveals.
        #[arg(long, value_enum, default_value_t = ModeArg::Set)]
        mode: ModeArg,
        /// `sum` mode: the sum is released only if the intersection has at least this many
        /// items.
        #[arg(long, default_value_t = 1)]
        min_size: u64,
        /// `set` mode: report the items in at least this many of the institutions' sets
        /// (2 to the number of inputs; default: all of them, the intersection).
        #[arg(long)]
        min_sets: Option<usize>,
        /// Engine security.
        #[arg(long, value_enum, default_value_t = SecurityArg::Malicious)]
        security: SecurityArg,
        /// Committed query (`cardinality`/`sum`, up to 2^12 items): one opening file per
        /// input, in the same order (`tacit psi commit`); the nodes check each input against
        /// the commitment in its opening file on shares.
        #[arg(long, num_args = 1..)]
        opening: Vec<PathBuf>,
        /// Proven query (`cardinality`/`sum`, up to 2^12 items): each institution commits to
        /// its tag list after the OPRF, and the nodes prove the result from exactly the
        /// committed lists (collaborative Groth16), verified by every institution and by the
        /// verifier contract on an embedded EVM. Generates the keys first (a one-off,
        /// trusted setup; about 40 s at 3 x 2^12).
        #[arg(long, conflicts_with = "opening")]
        prove: bool,
        /// With `--prove`: a folder for the keys, reused when it holds keys for this query's
        /// shape (institutions, largest set, mode), else filled.
        #[arg(long, requires = "prove")]
        keys: Option<PathBuf>,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Writes a query file for institutions that run as clients of a node cluster (every
    /// institution joins the same file with `tacit psi join`).
    Query {
        /// What the query reveals.
        #[arg(long, value_enum, default_value_t = ModeArg::Set)]
        mode: ModeArg,
        /// `sum` mode release threshold.
        #[arg(long, default_value_t = 1)]
        min_size: u64,
        /// `set` mode: items in at least this many sets.
        #[arg(long)]
        min_sets: Option<usize>,
        /// Each institution, in order: its certificate (DER file) or its fingerprint (hex).
        #[arg(long, required = true, num_args = 1..)]
        institution: Vec<String>,
        /// For a committed query: each institution's published commitment, in the same order.
        #[arg(long, num_args = 1..)]
        commitment: Vec<String>,
        /// For a proven query (`cardinality`/`sum`): the keys' folder or id (`tacit psi
        /// setup`); every node holds them as `<data_dir>/psi-keys/<id>/`.
        #[arg(long, conflicts_with = "commitment")]
        keys: Option<String>,
        /// For a proven query: a chain (journal file, created if missing) on which to deploy
        /// the keys' verifier and a result registry and open the query there, one account
        /// per institution; the query file names the registry (`--keys` must be the folder).
        #[arg(long, requires = "keys")]
        chain: Option<PathBuf>,
        /// The query file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Joins a query on the nodes as one of its institutions (`client.toml` from
    /// `tacit node init --institutions K`, or your own) and prints what this institution
    /// learns.
    Join(PsiJoinArgs),
    /// Posts this institution's commitment to its list, from its account, to the registry
    /// its proven query names (`psi query --chain`), after it joined the query.
    Post {
        /// The chain (journal file) the query names its registry on.
        #[arg(long)]
        chain: PathBuf,
        /// The query file.
        #[arg(long)]
        query: PathBuf,
        /// This institution's client file.
        #[arg(long)]
        client: PathBuf,
        /// What `tacit psi join --json` printed for this institution.
        #[arg(long)]
        joined: PathBuf,
    },
    /// Publishes a proven query's result and proof to the registry the query names, once
    /// every institution has posted its commitment (anyone holding a joined output may).
    Publish {
        /// The chain (journal file).
        #[arg(long)]
        chain: PathBuf,
        /// The query file.
        #[arg(long)]
        query: PathBuf,
        /// What `tacit psi join --json` printed for one institution.
        #[arg(long)]
        joined: PathBuf,
    },
    /// Makes the keys of proven queries for a shape (a local trusted setup: whoever runs it
    /// could forge proofs, so a deployment runs a ceremony) and writes them to `--out/<id>/`.
    Setup {
        /// Institutions in the query.
        #[arg(long)]
        institutions: usize,
        /// The most items any institution may bring (at most 2^12).
        #[arg(long)]
        items: usize,
        /// `cardinality` or `sum`.
        #[arg(long, value_enum)]
        mode: ModeArg,
        /// Folder to write the keys' folder in.
        #[arg(long)]
        out: PathBuf,
    },
    /// Commits to a CSV input before a committed query: prints the commitment to publish
    /// and writes the opening (commitment and secret salt) to `--out` (mode 0600).
    Commit {
        /// The institution's CSV.
        #[arg(long)]
        input: PathBuf,
        /// Opening file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `tacit psi join`
#[derive(Args, Debug)]
pub struct PsiJoinArgs {
    #[command(flatten)]
    common: crate::node::JoinArgs,
    /// For a proven query: the folder of the keys the query names (`tacit psi setup`).
    #[arg(long, conflicts_with = "opening")]
    keys: Option<PathBuf>,
}

/// A commitment opening file (`tacit psi commit`): secret, because of the salt.
#[derive(Serialize, serde::Deserialize)]
struct OpeningFile {
    /// The published commitment, hex.
    commitment: String,
    /// The salt, hex (secret).
    salt: String,
    /// Distinct items committed.
    items: usize,
}

/// Query modes on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Each institution learns which of its own items are in every set.
    Set,
    /// Only the intersection size.
    Cardinality,
    /// The sum of the values of intersecting items, if the intersection is large enough.
    Sum,
}

/// Security on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SecurityArg {
    /// Malicious security with abort.
    Malicious,
    /// Semi-honest (faster).
    SemiHonest,
}

impl SecurityArg {
    fn security(self) -> Security {
        match self {
            Self::Malicious => Security::Malicious,
            Self::SemiHonest => Security::SemiHonest,
        }
    }
}

fn mode_of(arg: ModeArg, min_size: u64, min_sets: Option<usize>, institutions: usize) -> anyhow::Result<Mode> {
    let mode = match (arg, min_sets) {
        (ModeArg::Set, None) => Mode::Set,
        (ModeArg::Set, Some(q)) => Mode::SetAtLeast { min_sets: q },
        (_, Some(_)) => anyhow::bail!("--min-sets applies to --mode set only"),
        (ModeArg::Cardinality, None) => Mode::Cardinality,
        (ModeArg::Sum, None) => Mode::Sum { min_size },
    };
    mode.min_sets(institutions)?;
    Ok(mode)
}

/// `tacit demo psi`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Institutions.
    #[arg(long, default_value_t = 3)]
    pub institutions: usize,
    /// Items per institution.
    #[arg(long, default_value_t = 4096)]
    pub items: usize,
    /// Items planted in every set (default: an eighth of the items).
    #[arg(long)]
    pub overlap: Option<usize>,
    /// What the query reveals.
    #[arg(long, value_enum, default_value_t = ModeArg::Cardinality)]
    pub mode: ModeArg,
    /// `sum` mode release threshold.
    #[arg(long, default_value_t = 1)]
    pub min_size: u64,
    /// `set` mode: report the items in at least this many sets (2 to `--institutions`;
    /// default: all, the intersection). The demo then also plants `--overlap` items in the
    /// first `min_sets` sets only.
    #[arg(long)]
    pub min_sets: Option<usize>,
    /// Nodes (threshold `(nodes - 1) / 2`).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Engine security.
    #[arg(long, value_enum, default_value_t = SecurityArg::Malicious)]
    pub security: SecurityArg,
    /// Committed inputs (`cardinality`/`sum`, up to 2^12 items): each institution publishes a
    /// Poseidon commitment first (not timed) and the nodes check it on shares.
    #[arg(long)]
    pub committed: bool,
    /// Proven query (`cardinality`/`sum`, up to 2^12 items): tag lists committed after the
    /// OPRF, the result proven by the nodes together and verified by the institutions and
    /// on an embedded EVM; the keys are generated first (not timed).
    #[arg(long, conflicts_with = "committed")]
    pub prove: bool,
    /// With `--prove`: a folder for the keys, reused when it holds keys for this shape.
    #[arg(long, requires = "prove")]
    pub keys: Option<PathBuf>,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct DemoReport {
    institutions: usize,
    items_per_institution: usize,
    mode: &'static str,
    intersection_size: u64,
    /// `q` of the `set` mode (the number of institutions for the intersection).
    min_sets: usize,
    /// Distinct items in at least `min_sets` sets.
    selected_size: u64,
    seconds: f64,
    bytes_sent_per_node: u64,
    nodes: usize,
    threshold: usize,
    matches_oracle: bool,
    committed_inputs: bool,
    proof: String,
    /// Key generation for a proven query (not in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_generation_seconds: Option<f64>,
    /// Execution gas of the on-chain verification of the proof.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_gas: Option<u64>,
    /// Execution gas of publishing the result to the registry (over the commitments the
    /// institutions posted; the verification included).
    #[serde(skip_serializing_if = "Option::is_none")]
    publication_gas: Option<u64>,
    /// A proven query's time over issue 7's target for 3 x 2^12 items (60 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_target: Option<f64>,
}

/// Issue 7's target for a proven `cardinality` query at 3 x 2^12 items, seconds.
const PROVEN_TARGET_SECONDS: f64 = 60.0;

pub fn run(command: PsiCommand) -> anyhow::Result<()> {
    match command {
        PsiCommand::Run { cluster, input, mode, min_size, min_sets, security, opening, prove, keys, json } => {
            let mode = mode_of(mode, min_size, min_sets, input.len())?;
            let prove = prove.then_some(keys);
            run_query(&cluster, &input, &opening, prove.as_ref().map(Option::as_deref), mode, security.security(), json)
        }
        PsiCommand::Commit { input, out } => commit(&input, &out),
        PsiCommand::Query { mode, min_size, min_sets, institution, commitment, keys, chain, out } => {
            let mode = mode_of(mode, min_size, min_sets, institution.len())?;
            write_query(mode, &institution, commitment, keys.as_deref(), chain.as_deref(), &out)
        }
        PsiCommand::Post { chain, query, client, joined } => {
            crate::psi_registry::post(&chain, &query, &client, &joined)
        }
        PsiCommand::Publish { chain, query, joined } => crate::psi_registry::publish(&chain, &query, &joined),
        PsiCommand::Join(PsiJoinArgs { common: a, keys }) => {
            join(&a.client, &a.query, &a.input, a.opening, keys.as_deref(), a.json)
        }
        PsiCommand::Setup { institutions, items, mode, out } => setup(institutions, items, mode, &out),
    }
}

/// A query file: the job id and spec every institution joins.
#[derive(Serialize, serde::Deserialize)]
pub(crate) struct QueryFile {
    pub(crate) job_id: String,
    pub(crate) spec: tacit_node::api::JobSpec,
    /// A proven query's result registry (address), on the chain given to `psi query --chain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) registry: Option<String>,
}

/// Fingerprints from certificate files (DER) or hex.
pub(crate) fn fingerprints(
    institutions: &[String],
) -> anyhow::Result<Vec<tacit_psi::tacit_mpc_engine::transport::quic::Fingerprint>> {
    use tacit_psi::tacit_mpc_engine::transport::quic::Fingerprint;
    institutions
        .iter()
        .map(|i| match std::fs::read(i) {
            Ok(der) => Fingerprint::of_cert_der(&der).map_err(|e| anyhow::anyhow!("{i}: {e}")),
            Err(_) => Fingerprint::from_hex(i).map_err(|e| anyhow::anyhow!("{i}: neither a certificate file nor {e}")),
        })
        .collect()
}

/// Writes a query file for `spec` under a fresh job id.
pub(crate) fn write_query_file(spec: tacit_node::api::JobSpec, out: &Path) -> anyhow::Result<()> {
    write_query_as(&QueryFile { job_id: tacit_node::api::new_job_id(), spec, registry: None }, out)
}

fn write_query_as(file: &QueryFile, out: &Path) -> anyhow::Result<()> {
    std::fs::write(out, serde_json::to_string_pretty(file)?).with_context(|| format!("writing {}", out.display()))?;
    println!("query {} written to {}", file.job_id, out.display());
    Ok(())
}

/// Reads a query file.
pub(crate) fn read_query(path: &Path) -> anyhow::Result<QueryFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Reads a query file: its job id and spec.
pub(crate) fn read_query_file(path: &Path) -> anyhow::Result<(String, tacit_node::api::JobSpec)> {
    let file = read_query(path)?;
    Ok((file.job_id, file.spec))
}

fn write_query(
    mode: Mode,
    institutions: &[String],
    commitments: Vec<String>,
    keys: Option<&str>,
    chain: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    let commitments = (!commitments.is_empty()).then_some(commitments);
    let proof_keys = match keys {
        // A folder: its id, once its shape is checked to fit the query.
        Some(dir) if Path::new(dir).is_dir() => {
            let (id, shape) = ProofKeys::peek(Path::new(dir))?;
            let wanted = tacit_psi::proven::statement_mode(mode).context("proven queries are cardinality or sum")?;
            anyhow::ensure!(
                shape.institutions == institutions.len() && shape.mode == wanted,
                "{dir} holds keys for {shape:?}, not {} institutions in {}",
                institutions.len(),
                mode.name()
            );
            Some(id)
        }
        Some(id) => Some(id.to_ascii_lowercase()),
        None => None,
    };
    let spec =
        tacit_node::api::JobSpec::PsiQuery { mode, institutions: fingerprints(institutions)?, commitments, proof_keys };
    // The query's own checks do not depend on the cluster's shape.
    spec.validate(3, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut file = QueryFile { job_id: tacit_node::api::new_job_id(), spec, registry: None };
    if let Some(chain) = chain {
        let dir = keys.map(Path::new).filter(|d| d.is_dir()).context("--chain needs --keys as the keys' folder")?;
        file.registry = Some(crate::psi_registry::open_query(chain, dir, &file)?);
    }
    write_query_as(&file, out)
}

fn join(
    client: &Path,
    query: &Path,
    input: &Path,
    opening: Option<PathBuf>,
    keys: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let client = tacit_node::client::Client::load(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (job_id, spec) = read_query_file(query)?;
    let tacit_node::api::JobSpec::PsiQuery { mode, commitments, proof_keys, .. } = &spec else {
        anyhow::bail!("{} is not a PSI query", query.display());
    };
    let mode = *mode;
    let keys = match (keys, proof_keys) {
        // Read with validation (the folder came from whoever ran the setup), without the
        // proving key, which only the nodes use.
        (Some(dir), Some(id)) => Some(tacit_psi::proven::InstitutionKeys::read(dir, id)?),
        (None, Some(id)) => anyhow::bail!("a proven query: give --keys, the folder of keys {id}"),
        (Some(_), None) => anyhow::bail!("--keys is for proven queries"),
        (None, None) => None,
    };
    let index = spec
        .institution_index(&client.fingerprint())
        .context("this client's certificate is not listed in the query")?;
    let set = InputSet::read_csv(input).with_context(|| format!("{}", input.display()))?;
    let input = match (opening, commitments) {
        (Some(path), Some(published)) => {
            let (opening, commitment) = read_opening(&path, set)?;
            let listed = published.get(index).and_then(|h| tacit_psi::committed::from_hex(h));
            anyhow::ensure!(listed == Some(commitment), "the query lists another commitment for this institution");
            Input::Committed(opening)
        }
        (None, None) => Input::Plain(set),
        (None, Some(_)) => anyhow::bail!("a committed query: give --opening"),
        (Some(_), None) => anyhow::bail!("--opening is for committed queries"),
    };
    let n = client.nodes().len();
    let t = (n - 1) / 2;
    let rt = crate::bench::runtime()?;
    let bar = crate::bench::spinner("waiting for the other institutions, then running the query", json);
    let started = std::time::Instant::now();
    let (output, proof) = rt.block_on(async {
        let links = client
            .join_psi(&job_id, &spec, std::time::Duration::from_secs(30))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(match &keys {
            Some(keys) => {
                let (output, proof) =
                    tacit_psi::run_institution_proven(index, input.set(), t, mode, links, keys).await?;
                (output, Some(proof))
            }
            None => (tacit_psi::run_institution(index, &input, t, mode, links).await?, None),
        })
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // The proof this institution checked (its commitment, this result), for publication.
    let proof = proof.map(|p| tacit_prover::committed::to_bytes(&p)).transpose()?.map(hex::encode);
    if json {
        let mut v = serde_json::json!({
            "query": job_id,
            "mode": mode.name(),
            "institution": index,
            "output": output_json(&output),
            "seconds": started.elapsed().as_secs_f64(),
        });
        if let Some(p) = &proof {
            v["proof"] = p.as_str().into();
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let who = format!("institution {index} ({} items)", input.set().len());
        print_output(&who, &output, mode, spec_institutions(&spec))?;
        if let Some(p) = &proof {
            println!("proof verified for this result and this institution's commitment: {p}");
        }
    }
    Ok(())
}

/// `tacit psi setup`: keys for proven queries of one shape, in `out/<id>/`.
fn setup(institutions: usize, items: usize, mode: ModeArg, out: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(institutions >= 2, "a query takes at least two institutions");
    anyhow::ensure!(items >= 1, "give the most items an institution may bring");
    let mode = mode_of(mode, 1, None, institutions)?;
    let (keys, seconds) = proof_keys(institutions, items, mode, None, false)?;
    let id = keys.id()?;
    let dir = out.join(&id);
    keys.write(&dir)?;
    println!("keys {id} ({:?}) made in {seconds:.1} s, written to {}", keys.shape, dir.display());
    println!(
        "copy {} to every node's <data_dir>/{}/; institutions join with --keys",
        dir.display(),
        tacit_node::psi::KEYS_FOLDER
    );
    Ok(())
}

/// One institution's output, for people (`who` names the input).
fn print_output(who: &str, output: &PsiOutput, mode: Mode, institutions: usize) -> anyhow::Result<()> {
    match output {
        PsiOutput::Set(items) if mode == Mode::Set => {
            println!("{who}: {} of its items are in every set", items.len());
            for i in items {
                println!("  {}", i.display());
            }
        }
        PsiOutput::Set(items) => {
            let q = mode.min_sets(institutions)?;
            println!("{who}: {} of its items are in at least {q} sets", items.len());
            for i in items {
                println!("  {}", i.display());
            }
        }
        PsiOutput::Cardinality(k) => println!("{who}: intersection size {k}"),
        PsiOutput::Sum(Some(s)) => println!("{who}: intersection sum {s}"),
        PsiOutput::Sum(None) => println!("{who}: sum withheld (intersection below the minimum)"),
    }
    Ok(())
}

fn spec_institutions(spec: &tacit_node::api::JobSpec) -> usize {
    match spec {
        tacit_node::api::JobSpec::PsiQuery { institutions, .. } => institutions.len(),
        _ => 0,
    }
}

fn commit(input: &Path, out: &Path) -> anyhow::Result<()> {
    let set = InputSet::read_csv(input).with_context(|| format!("{}", input.display()))?;
    anyhow::ensure!(set.len() <= tacit_psi::MAX_COMMITTED_ITEMS, "committed queries take at most 2^12 items");
    let items = set.len();
    let (opening, c) = tacit_psi::CommittedInput::commit(set)?;
    let file = OpeningFile {
        commitment: tacit_psi::committed::to_hex(&c),
        salt: tacit_psi::committed::to_hex(&opening.expose_salt()),
        items,
    };
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(out).with_context(|| format!("writing {}", out.display()))?;
    f.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
    println!("commitment {} ({items} items); opening written to {}", file.commitment, out.display());
    Ok(())
}

/// Reads an opening file and checks it opens to its commitment with `set`.
fn read_opening(path: &Path, set: InputSet) -> anyhow::Result<(tacit_psi::CommittedInput, tacit_psi::committed::Fr)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: OpeningFile = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let salt = tacit_psi::committed::from_hex(&file.salt).context("salt")?;
    let published = tacit_psi::committed::from_hex(&file.commitment).context("commitment")?;
    let (opening, _) = tacit_psi::CommittedInput::with_salt(set, salt)?;
    Ok((opening, published))
}

fn proof_note(max_items: usize) -> &'static str {
    if max_items > PROOF_LIMIT {
        "none: sets above 2^12 items run without proof"
    } else {
        "none: run with --prove for a proof (committed tag lists, collaborative Groth16)"
    }
}

/// Keys for a proven query over sets of at most `rows` items (a one-off setup, timed
/// apart): read from `keys` if it holds keys for this shape (written by an earlier run; read
/// without the subgroup checks, like any key file this machine wrote), else generated and,
/// with `keys`, written there.
fn proof_keys(
    institutions: usize,
    rows: usize,
    mode: Mode,
    keys: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<(ProofKeys, f64)> {
    anyhow::ensure!(rows <= PROOF_LIMIT, "proven queries take at most 2^12 items per institution");
    let shape = tacit_psi::proven::shape_for(institutions, rows, mode)
        .context("proven queries are cardinality or sum queries")?;
    if let Some(dir) = keys.filter(|d| d.join("shape.json").exists()) {
        let start = Instant::now();
        let read = ProofKeys::read(dir, true)?;
        anyhow::ensure!(
            read.shape == shape,
            "{} holds keys for {:?}, this query needs {shape:?}",
            dir.display(),
            read.shape
        );
        return Ok((read, start.elapsed().as_secs_f64()));
    }
    let bar = crate::bench::spinner(&format!("Groth16 keys for {institutions} x {rows} rows"), quiet);
    let start = Instant::now();
    let generated = ProofKeys::generate(shape, &mut rand::rngs::OsRng)?;
    if let Some(dir) = keys {
        generated.write(dir)?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((generated, start.elapsed().as_secs_f64()))
}

/// Checks the proof the institutions accepted on an embedded EVM: deploys the committed
/// verifier for the keys and verifies; returns the execution gas.
/// A proven result on an embedded EVM: verified by the committed verifier, and published to
/// a `CommittedResultRegistry` after every institution posted its commitment from its own
/// account.
struct OnChain {
    /// Execution gas of the verification alone.
    verification_gas: u64,
    /// Execution gas of the publication (checks of the posted commitments, verification,
    /// storage, event).
    publication_gas: u64,
    /// Execution gas of one institution's posting.
    posting_gas: u64,
    /// The proof's size, bytes.
    proof_bytes: usize,
}

fn publish_on_chain(keys: &ProofKeys, run: &LocalRun, mode: Mode) -> anyhow::Result<OnChain> {
    use tacit_contracts::committed::CommittedEvmProof;
    let proof = run.proofs.first().cloned().flatten().context("no proof")?;
    anyhow::ensure!(run.proofs.iter().all(|p| p.as_ref() == Some(&proof)), "institutions hold different proofs");
    let output = run.institutions.first().and_then(|r| r.as_ref().ok()).context("no result")?;
    let (statement, min_size) = tacit_psi::proven::statement_output(output, mode).context("not a proven mode")?;
    let evm = CommittedEvmProof::new(&proof, &keys.public_inputs(&statement, min_size));
    let mut chain = tacit_contracts::LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&keys.keys.vk)?;
    let call = chain.verify_committed(verifier, &evm)?;
    anyhow::ensure!(call.returned_true(), "the verifier contract rejected the proof");
    // The institutions' groups come first in the statement's proofs.
    let m = keys.shape.institutions;
    let registry = chain.deploy_committed_registry(verifier, m)?;
    let query: tacit_contracts::Word = rand::random();
    let accounts: Vec<_> = (0..m).map(|c| revm_address(c as u8 + 1)).collect();
    let failed = |what: &str, r: &tacit_contracts::CallResult| {
        anyhow::anyhow!("{what}: {}", tacit_contracts::registry::registry_error(r).unwrap_or("reverted"))
    };
    let opened = chain.open_query(registry, &query, &accounts)?;
    anyhow::ensure!(matches!(opened.outcome, tacit_contracts::Outcome::Success(_)), failed("open", &opened));
    let mut posting_gas = 0;
    for (slot, (account, commitment)) in accounts.iter().zip(&evm.commitments).enumerate() {
        let posted = chain.post_commitment(registry, *account, &query, slot, commitment)?;
        anyhow::ensure!(matches!(posted.outcome, tacit_contracts::Outcome::Success(_)), failed("post", &posted));
        posting_gas = posting_gas.max(posted.execution_gas);
    }
    let published = chain.publish_committed(registry, &query, &evm)?;
    anyhow::ensure!(matches!(published.outcome, tacit_contracts::Outcome::Success(_)), failed("publish", &published));
    anyhow::ensure!(
        chain.committed_result(registry, &query)? == Some(tacit_contracts::registry::result_hash(&evm)),
        "the registry holds another result"
    );
    Ok(OnChain {
        verification_gas: call.execution_gas,
        publication_gas: published.execution_gas,
        posting_gas,
        proof_bytes: tacit_prover::committed::to_bytes(&proof)?.len(),
    })
}

/// A distinct account per institution on the embedded chain (none is a precompile).
fn revm_address(k: u8) -> revm::primitives::Address {
    revm::primitives::Address::repeat_byte(k)
}

fn proof_verified(on_chain: &OnChain) -> String {
    format!(
        "verified by every institution and on chain ({} bytes, {} gas); published to a registry over the \
         commitments each institution posted ({} gas each), {} gas",
        on_chain.proof_bytes, on_chain.verification_gas, on_chain.posting_gas, on_chain.publication_gas
    )
}

fn output_json(out: &PsiOutput) -> serde_json::Value {
    match out {
        PsiOutput::Set(items) => {
            serde_json::json!({ "items": items.iter().map(Item::display).collect::<Vec<_>>() })
        }
        PsiOutput::Cardinality(k) => serde_json::json!({ "intersection_size": k }),
        PsiOutput::Sum(Some(s)) => serde_json::json!({ "sum": s.to_string() }),
        PsiOutput::Sum(None) => serde_json::json!({ "sum": null, "withheld": "intersection below the minimum size" }),
    }
}

fn run_query(
    cluster: &Path,
    inputs: &[PathBuf],
    openings: &[PathBuf],
    prove: Option<Option<&Path>>,
    mode: Mode,
    security: Security,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(inputs.len() >= 2, "a query needs at least two institutions (--input twice)");
    let dir = if cluster.is_dir() { cluster.to_path_buf() } else { cluster.parent().unwrap_or(Path::new(".")).into() };
    let file = crate::cluster::load_cluster(&dir)?;
    let n = file.parties.len();
    let mut sets = Vec::with_capacity(inputs.len());
    for path in inputs {
        let set = InputSet::read_csv(path).with_context(|| format!("{}", path.display()))?;
        if !json && set.duplicates() > 0 {
            eprintln!("{}: {} duplicate lines merged (values added)", path.display(), set.duplicates());
        }
        sets.push(set);
    }
    let committed = if openings.is_empty() {
        None
    } else {
        anyhow::ensure!(openings.len() == sets.len(), "one --opening per --input");
        anyhow::ensure!(!mode.is_set(), "committed queries are cardinality or sum queries");
        let mut o = Vec::with_capacity(sets.len());
        let mut c = Vec::with_capacity(sets.len());
        for (path, set) in openings.iter().zip(&sets) {
            let (opening, published) = read_opening(path, set.clone())?;
            o.push(opening);
            c.push(published);
        }
        Some((o, c))
    };
    let max_items = sets.iter().map(InputSet::len).max().unwrap_or(0);
    let mut options = RunOptions::new(file.threshold, mode);
    options.security = security;
    if prove.is_some() && max_items > PROOF_LIMIT {
        // Proofs are specified up to 2^12 items; larger sets run, and say they have none.
        eprintln!("sets above 2^12 items run without proof");
    } else if let Some(keys) = prove {
        options.proof = Some(proof_keys(sets.len(), max_items, mode, keys, json)?.0);
    }
    let rt = crate::bench::runtime()?;
    let bar = crate::bench::spinner("PSI query on the local cluster", json);
    let run = rt.block_on(async {
        let transports =
            tacit_psi::tacit_mpc_engine::simulate::local_quic_cluster(n, tacit_psi::protocol::quic_options()).await?;
        let run = match &committed {
            Some((o, c)) => tacit_psi::run_local_committed(transports.clone(), o, c, &options).await,
            None => tacit_psi::run_local(transports.clone(), &sets, &options).await,
        };
        for t in &transports {
            t.shutdown().await;
        }
        anyhow::Ok(run)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = run.seconds;
    let proof = match &options.proof {
        Some(keys) if run.institutions.iter().all(Result::is_ok) => {
            proof_verified(&publish_on_chain(keys, &run, mode)?)
        }
        _ => proof_note(max_items).to_string(),
    };
    let (outputs, report) = run.into_result().context("the query aborted")?;
    if json {
        let per: Vec<serde_json::Value> = inputs
            .iter()
            .zip(&outputs)
            .map(|(p, o)| serde_json::json!({ "input": p.display().to_string(), "output": output_json(o) }))
            .collect();
        let v = serde_json::json!({
            "mode": mode.name(),
            "min_sets": mode.min_sets(outputs.len())?,
            "nodes": n,
            "threshold": file.threshold,
            "institutions": per,
            "seconds": seconds,
            "bytes_sent_per_node": report.bytes_sent,
            "proof": proof,
        });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        for (p, o) in inputs.iter().zip(&outputs) {
            print_output(&p.display().to_string(), o, mode, outputs.len())?;
        }
        println!("{n} nodes (threshold {}), {seconds:.2} s, {} bytes sent per node", file.threshold, report.bytes_sent);
        println!("proof: {proof}");
    }
    Ok(())
}

/// Random sets of `items` addresses each with `overlap` planted in all of them, and, when
/// `partial` is `Some(q)` with `q` below the number of institutions, `overlap` more planted
/// in the first `q` sets only.
fn demo_sets(
    institutions: usize,
    items: usize,
    overlap: usize,
    partial: Option<usize>,
) -> anyhow::Result<Vec<InputSet>> {
    let mut rng = rand_chacha_rng();
    let common: Vec<[u8; 20]> = (0..overlap).map(|_| rng.gen()).collect();
    let q = partial.filter(|q| *q < institutions).unwrap_or(0);
    let in_first_q: Vec<[u8; 20]> = (0..if q > 0 { overlap } else { 0 }).map(|_| rng.gen()).collect();
    (0..institutions)
        .map(|c| {
            let mut pairs = Vec::with_capacity(items);
            for addr in &common {
                pairs.push((Item::from_address(addr), rng.gen_range(0..1_000_000u64)));
            }
            for addr in in_first_q.iter().filter(|_| c < q) {
                if pairs.len() < items {
                    pairs.push((Item::from_address(addr), rng.gen_range(0..1_000_000u64)));
                }
            }
            while pairs.len() < items {
                pairs.push((Item::from_address(&rng.gen()), rng.gen_range(0..1_000_000u64)));
            }
            Ok(InputSet::from_pairs(pairs)?)
        })
        .collect()
}

fn rand_chacha_rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(42)
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.institutions >= 2, "a query needs at least two institutions");
    anyhow::ensure!(args.nodes >= 3, "at least three nodes");
    let overlap = args.overlap.unwrap_or(args.items / 8).min(args.items);
    let mode = mode_of(args.mode, args.min_size, args.min_sets, args.institutions)?;
    let sets = demo_sets(args.institutions, args.items, overlap, args.min_sets)?;
    if args.committed {
        anyhow::ensure!(!mode.is_set(), "committed queries are cardinality or sum queries");
        anyhow::ensure!(args.items <= tacit_psi::MAX_COMMITTED_ITEMS, "committed queries take at most 2^12 items");
    }
    let published = if args.committed {
        let (o, c): (Vec<_>, Vec<_>) = sets
            .iter()
            .map(|s| tacit_psi::CommittedInput::commit(s.clone()))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        Some((o, c))
    } else {
        None
    };
    let t = (args.nodes - 1) / 2;
    let mut options = RunOptions::new(t, mode);
    options.security = args.security.security();
    let mut key_generation_seconds = None;
    if args.prove && args.items > PROOF_LIMIT {
        // Proofs are specified up to 2^12 items; larger sets run, and say they have none.
        eprintln!("sets above 2^12 items run without proof");
    } else if args.prove {
        let (keys, seconds) = proof_keys(args.institutions, args.items, mode, args.keys.as_deref(), args.json)?;
        options.proof = Some(keys);
        key_generation_seconds = Some(seconds);
    }
    let rt = crate::bench::runtime()?;
    let what = format!("PSI ({}) over {} nodes on loopback QUIC", mode.name(), args.nodes);
    let bar = crate::bench::spinner(&what, args.json);
    let run: LocalRun = rt.block_on(async {
        let transports =
            tacit_psi::tacit_mpc_engine::simulate::local_quic_cluster(args.nodes, tacit_psi::protocol::quic_options())
                .await?;
        let start = Instant::now();
        let mut run = match &published {
            Some((openings, commitments)) => {
                tacit_psi::run_local_committed(transports.clone(), openings, commitments, &options).await
            }
            None => tacit_psi::run_local(transports.clone(), &sets, &options).await,
        };
        run.seconds = start.elapsed().as_secs_f64();
        for t in &transports {
            t.shutdown().await;
        }
        anyhow::Ok(run)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = run.seconds;
    let bytes: Vec<u64> = run.nodes.iter().filter_map(|r| r.as_ref().ok().map(|r| r.bytes_sent)).collect();
    let (proof, on_chain) = match &options.proof {
        Some(keys) if run.institutions.iter().all(Result::is_ok) => {
            let on_chain = publish_on_chain(keys, &run, mode)?;
            (proof_verified(&on_chain), Some(on_chain))
        }
        _ => (proof_note(args.items).to_string(), None),
    };
    let verification_gas = on_chain.as_ref().map(|c| c.verification_gas);
    let (outputs, report) = run.into_result().context("the query aborted")?;
    let matches_oracle = sorted(outputs) == sorted(oracle(&sets, mode));
    let report = DemoReport {
        institutions: args.institutions,
        items_per_institution: args.items,
        mode: mode.name(),
        intersection_size: report.intersection_size,
        min_sets: mode.min_sets(args.institutions)?,
        selected_size: report.selected_size,
        seconds,
        bytes_sent_per_node: bytes.iter().sum::<u64>() / bytes.len().max(1) as u64,
        nodes: args.nodes,
        threshold: t,
        matches_oracle,
        committed_inputs: args.committed,
        proof,
        key_generation_seconds,
        verification_gas,
        publication_gas: on_chain.as_ref().map(|c| c.publication_gas),
        ratio_to_target: verification_gas.map(|_| seconds / PROVEN_TARGET_SECONDS),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        if report.min_sets < report.institutions {
            println!("{} items in at least {} of the sets", report.selected_size, report.min_sets);
        }
        println!(
            "{} institutions x {} items, mode {}, {} nodes (t = {}) over loopback QUIC: intersection size {}, \
             {:.2} s, {} bytes sent per node, matches the plaintext oracle: {}; proof: {}",
            report.institutions,
            report.items_per_institution,
            report.mode,
            report.nodes,
            report.threshold,
            report.intersection_size,
            report.seconds,
            report.bytes_sent_per_node,
            report.matches_oracle,
            report.proof
        );
        if let (Some(ratio), Some(keys)) = (report.ratio_to_target, report.key_generation_seconds) {
            println!(
                "proven query: {:.2} s, ratio {ratio:.2} to the {PROVEN_TARGET_SECONDS:.0} s target for 3 x 2^12 \
                 items; keys {keys:.1} s apart",
                report.seconds
            );
        }
    }
    anyhow::ensure!(matches_oracle, "the result does not match the plaintext oracle");
    Ok(())
}

fn sorted(out: Vec<PsiOutput>) -> Vec<PsiOutput> {
    out.into_iter()
        .map(|o| match o {
            PsiOutput::Set(mut v) => {
                v.sort();
                PsiOutput::Set(v)
            }
            other => other,
        })
        .collect()
}
