//! The command line shared by `tacit-node` and `tacit node`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::api::{new_job_id, JobSpec};
use crate::client::Client;
use crate::config::{NodeConfig, Timeouts};
use crate::error::{NodeError, Result};
use crate::init::InitOptions;
use crate::store::NodeStore;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `tacit-node [--config FILE] [COMMAND]`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    /// Run the node with this `party.toml` (until SIGTERM or ctrl-c).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// A command other than running the node.
    #[command(subcommand)]
    pub command: Option<NodeCommand>,
}

/// Node commands.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Write a local N-party configuration set (certificates, keys, party-<i>.toml, client.toml).
    Init {
        /// Output folder.
        #[arg(long)]
        dir: PathBuf,
        /// Parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Mesh port of party 1 (job API +100, metrics +200, bids +300).
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Comma-separated host IPs, one for all or one per party.
        #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
        hosts: Vec<std::net::IpAddr>,
        /// Presignature pool target per signer set (0: none).
        #[arg(long, default_value_t = 0)]
        pool: usize,
        /// Receive timeout within a job, ms.
        #[arg(long, default_value_t = 10_000)]
        recv_timeout_ms: u64,
        /// PSI institution identities to create (`institution-<k>.toml`).
        #[arg(long, default_value_t = 0)]
        institutions: usize,
        /// The chain journal the nodes follow to host auctions (e.g. an auction folder's
        /// `chain.jsonl`, absolute or relative to the current folder); gives each node a bid
        /// endpoint.
        #[arg(long)]
        chain: Option<PathBuf>,
    },
    /// Send a job to every node and print each node's answer (JSON lines).
    Submit {
        /// `client.toml`.
        #[arg(long)]
        client: PathBuf,
        /// The job, JSON (e.g. '"signer_dkg"' or '{"signer_presign":{"count":8,"signers":[1,2]}}').
        #[arg(long)]
        job: String,
        /// Job id (32 hex digits; default random). Resubmit a failed job's id to retry it.
        #[arg(long)]
        job_id: Option<String>,
        /// Seconds to wait.
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
    /// A job's state at every node (or one).
    Status {
        /// `client.toml`.
        #[arg(long)]
        client: PathBuf,
        /// Job id.
        #[arg(long)]
        job_id: String,
        /// Only this node.
        #[arg(long)]
        node: Option<u16>,
    },
    /// Drills and figures against a running cluster, with a built-in DEMO approver key (the
    /// private key is public: for test clusters only). `policy` sets a policy that trusts it
    /// (chain 1, destination 0xdd..dd); `sign` signs `count` transfers with presignatures in
    /// hand and prints, per signature, the client's wall time and each node's protocol time
    /// and messages; `info` prints every node's key and pool levels.
    Drill {
        /// `client.toml`.
        #[arg(long)]
        client: PathBuf,
        /// policy | sign | info.
        action: String,
        /// Signatures to make.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Signer set.
        #[arg(long, default_value = "1,2", value_delimiter = ',')]
        signers: Vec<u16>,
        /// Seconds to wait per job.
        #[arg(long, default_value_t = 60)]
        timeout_s: u64,
    },
    /// A UDP relay adding a one-way delay (and loss) in both directions: a stand-in for tc
    /// netem (used by scripts/netns.sh where the kernel has no netem).
    Relay {
        /// Where the dialling peer sends.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The peer dialled.
        #[arg(long)]
        to: std::net::SocketAddr,
        /// One-way delay, ms.
        #[arg(long, default_value_t = 10)]
        delay_ms: u64,
        /// Loss per direction, percent.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
    },
    /// Check a stopped node's stores (job records, audit chain, presignatures never both burned
    /// and available).
    Check {
        /// `party.toml`.
        #[arg(long)]
        config: PathBuf,
    },
}

fn init_logs(format: LogFormat, level: &str) -> Result<()> {
    let level: tracing::Level = level.parse().map_err(|_| NodeError::Config(format!("log level {level:?}")))?;
    let builder = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(true);
    let res = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    res.map_err(|e| NodeError::Config(format!("logging: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| NodeError::Other(format!("runtime: {e}")))
}

/// A node's two stores: the node store and the signer's, opened with the key the node store
/// yields.
pub fn open_stores(cfg: &NodeConfig) -> Result<(NodeStore, tacit_signer::Node)> {
    let data = cfg.data_dir();
    let (store, key) = NodeStore::open(&data.join("node.redb"), &cfg.file.secret_key, &cfg.base)?;
    let signer = tacit_signer::Node::open(&data.join("signer"), cfg.me, key.to_store_key())?;
    Ok((store, signer))
}

/// Offline checks of a stopped node's stores; returns a JSON report.
pub fn check_stores(cfg: &NodeConfig) -> Result<serde_json::Value> {
    let (store, signer) = open_stores(cfg)?;
    let report = store.check()?;
    drop(store);
    let available = signer.presig_ids()?;
    let mut both = 0usize;
    for id in &available {
        if signer.store().is_burned(id)? {
            both += 1;
        }
    }
    if both > 0 {
        return Err(NodeError::Store(format!("{both} presignatures are both burned and available")));
    }
    Ok(serde_json::json!({
        "jobs": report.jobs,
        "queued": report.states[0],
        "running": report.states[1],
        "done": report.states[2],
        "failed": report.states[3],
        "audit_entries": report.audit_entries,
        "presignatures_available": available.len(),
        "presignatures_retained": signer.store().retained_count()?,
        "presignatures_unconfirmed": signer.store().unconfirmed_ids()?.len(),
        "prep_batches_available": report.prep_available,
        "prep_batches_burned": report.prep_burned,
    }))
}

/// Runs the command line.
pub fn main_with(args: NodeArgs) -> Result<()> {
    match args.command {
        None => {
            let path = args.config.ok_or_else(|| NodeError::Config("give --config party.toml".into()))?;
            init_logs(args.log_format, &args.log_level)?;
            let cfg = NodeConfig::load(&path)?;
            runtime()?.block_on(crate::daemon::run(cfg, crate::daemon::termination()))
        }
        Some(NodeCommand::Init {
            dir,
            parties,
            threshold,
            base_port,
            hosts,
            pool,
            recv_timeout_ms,
            institutions,
            chain,
        }) => {
            let timeouts = Timeouts { recv_ms: recv_timeout_ms, ..Timeouts::default() };
            // The party files are read from `dir`: a relative journal path would change meaning.
            let chain =
                chain.map(|c| std::path::absolute(&c)).transpose().map_err(|e| NodeError::Config(e.to_string()))?;
            let options = InitOptions { parties, threshold, base_port, hosts, pool, timeouts, institutions, chain };
            let (configs, client) = crate::init::init(&dir, &options)?;
            for c in configs {
                print_line(c.display())?;
            }
            print_line(client.display())?;
            Ok(())
        }
        Some(NodeCommand::Submit { client, job, job_id, timeout_s }) => {
            let spec: JobSpec = serde_json::from_str(&job).map_err(|e| NodeError::BadRequest(format!("job: {e}")))?;
            let client = Client::load(&client)?;
            let id = job_id.unwrap_or_else(new_job_id);
            let answers = runtime()?.block_on(client.submit(&id, &spec, Duration::from_secs(timeout_s)));
            let mut failed = false;
            for (p, a) in answers {
                let line = match a {
                    Ok(v) => {
                        failed |= v.state != crate::store::JobState::Done;
                        serde_json::json!({ "node": p.get(), "job": v })
                    }
                    Err(e) => {
                        failed = true;
                        serde_json::json!({ "node": p.get(), "job_id": id, "error": e.to_string() })
                    }
                };
                print_line(line)?;
            }
            if failed {
                return Err(NodeError::Other(format!("job {id} did not finish at every node")));
            }
            Ok(())
        }
        Some(NodeCommand::Status { client, job_id, node }) => {
            let client = Client::load(&client)?;
            let rt = runtime()?;
            for p in client.nodes().into_iter().filter(|p| node.is_none_or(|n| n == p.get())) {
                let line = match rt.block_on(client.status(p, &job_id, Duration::from_secs(10))) {
                    Ok(v) => serde_json::json!({ "node": p.get(), "job": v }),
                    Err(e) => serde_json::json!({ "node": p.get(), "error": e.to_string() }),
                };
                print_line(line)?;
            }
            Ok(())
        }
        Some(NodeCommand::Drill { client, action, count, signers, timeout_s }) => {
            let client = Client::load(&client)?;
            runtime()?.block_on(crate::drill::run(&client, &action, count, &signers, Duration::from_secs(timeout_s)))
        }
        Some(NodeCommand::Relay { listen, to, delay_ms, loss }) => {
            runtime()?.block_on(crate::relay::run(listen, to, Duration::from_millis(delay_ms), loss))
        }
        Some(NodeCommand::Check { config }) => {
            let cfg = NodeConfig::load(&config)?;
            print_line(check_stores(&cfg)?)?;
            Ok(())
        }
    }
}

/// Prints one line of output; a closed stdout (e.g. piped into `head`) ends the output
/// quietly instead of panicking like `println!`.
fn print_line(line: impl std::fmt::Display) -> Result<(), NodeError> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(NodeError::Other(format!("stdout: {e}"))),
        _ => Ok(()),
    }
}
