//! `tacit auction ...` and `tacit demo auction`.

use clap::{Args, Subcommand};

/// `tacit auction ...`
#[derive(Subcommand, Debug)]
pub enum AuctionCommand {}

/// `tacit demo auction`
#[derive(Args, Debug, Default)]
pub struct DemoArgs {
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: AuctionCommand) -> anyhow::Result<()> {
    match command {}
}

pub fn demo(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the auction demo is not built yet")
}
