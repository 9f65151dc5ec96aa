//! `tacit node ...`: the party node daemon (the same commands as the `tacit-node` binary).

pub use tacit_node::cli::NodeArgs;

/// Runs `tacit node`.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    tacit_node::cli::main_with(args).map_err(|e| anyhow::anyhow!("{e}"))
}
