//! `tacit psi ...` and `tacit demo psi`.

use clap::{Args, Subcommand};

/// `tacit psi ...`
#[derive(Subcommand, Debug)]
pub enum PsiCommand {}

/// `tacit demo psi`
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: PsiCommand) -> anyhow::Result<()> {
    match command {}
}

pub fn demo(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("the psi demo is not built yet")
}
