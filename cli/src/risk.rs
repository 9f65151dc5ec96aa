//! `tacit risk ...` and `tacit demo risk`.

use clap::{Args, Subcommand};

/// `tacit risk ...`
#[derive(Subcommand, Debug)]
pub enum RiskCommand {}

/// `tacit demo risk`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: RiskCommand) -> anyhow::Result<()> {
    match command {}
}

pub fn demo(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the risk demo is not built yet")
}
