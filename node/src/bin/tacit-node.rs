//! `tacit-node --config party.toml`: the party node daemon (also `tacit node`).

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "tacit-node", version, about = "Tacit party node: peer mesh, job API, store, metrics")]
struct Cli {
    #[command(flatten)]
    args: tacit_node::cli::NodeArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match tacit_node::cli::main_with(cli.args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tacit-node: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
