//! `tacit signer ...`, `tacit audit ...`, `tacit demo sign`, `tacit bench sign`.

use clap::{Args, Subcommand};

/// `tacit signer ...`
#[derive(Subcommand, Debug)]
pub enum SignerCommand {}

/// `tacit audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {}

/// `tacit demo sign`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `tacit bench sign`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: SignerCommand) -> anyhow::Result<()> {
    match command {}
}

pub fn audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {}
}

pub fn demo(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the signing demo is not built yet")
}

pub fn bench(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("the signing benchmark is not built yet")
}
