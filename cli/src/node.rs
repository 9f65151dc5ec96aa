//! `tacit node ...`: the party node daemon (the same commands as the `tacit-node` binary).

pub use tacit_node::cli::NodeArgs;

/// Runs `tacit node`.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    tacit_node::cli::main_with(args).map_err(|e| anyhow::anyhow!("{e}"))
}

/// How an institution joins a query on `tacit-node` daemons (`tacit psi join`, `tacit risk
/// join`).
#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// This institution's client file (certificate, key, nodes; `tacit node init
    /// --institutions K` writes some).
    #[arg(long)]
    pub client: std::path::PathBuf,
    /// The query file (`tacit psi query`, `tacit risk query`).
    #[arg(long)]
    pub query: std::path::PathBuf,
    /// This institution's CSV.
    #[arg(long)]
    pub input: std::path::PathBuf,
    /// For a committed (psi) or proved (risk) query: this institution's opening file
    /// (`tacit psi commit`, `tacit risk commit`).
    #[arg(long)]
    pub opening: Option<std::path::PathBuf>,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}
