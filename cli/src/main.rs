//! `tacit`: cluster setup, benchmarks and demos.

mod auction;
mod bench;
mod cluster;
mod node;
mod prove;
mod psi;
mod psi_registry;
mod risk;
mod signer;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "tacit", version, about = "Tacit private compute: MPC between party nodes, proofs on chain")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Cluster configuration.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Benchmarks of the engine.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Collaborative Groth16 proving.
    Prove {
        #[command(subcommand)]
        command: ProveCommand,
    },
    /// On-chain Groth16 verifiers.
    Verifier {
        #[command(subcommand)]
        command: VerifierCommand,
    },
    /// Sealed-bid auctions: create, bid, close, settle.
    Auction {
        #[command(subcommand)]
        command: auction::AuctionCommand,
    },
    /// Threshold ECDSA wallets: DKG, refresh, reshare, presign, sign, policy.
    Signer {
        #[command(subcommand)]
        command: signer::SignerCommand,
    },
    /// Signer audit logs.
    Audit {
        #[command(subcommand)]
        command: signer::AuditCommand,
    },
    /// Private set intersection between institutions.
    Psi {
        #[command(subcommand)]
        command: psi::PsiCommand,
    },
    /// Aggregate risk scoring with a release policy.
    Risk {
        #[command(subcommand)]
        command: risk::RiskCommand,
    },
    /// The party node daemon: `tacit node --config party.toml`, `tacit node init|submit|status|check`.
    Node(node::NodeArgs),
    /// End-to-end demonstrations on a local 3-node cluster over loopback QUIC and an embedded
    /// EVM; without a subcommand, the sealed-bid auction.
    Demo {
        #[command(subcommand)]
        command: Option<DemoCommand>,
    },
}

#[derive(Subcommand, Debug)]
enum DemoCommand {
    /// A sealed-bid auction from commitments to on-chain settlement.
    Auction(auction::DemoArgs),
    /// A 2-of-3 threshold ECDSA wallet: DKG, approvals, presign, sign, refresh.
    Sign(signer::DemoArgs),
    /// A private set intersection between institutions.
    Psi(psi::DemoArgs),
    /// An aggregate risk query with a release policy.
    Risk(risk::DemoArgs),
}

#[derive(Subcommand, Debug)]
enum VerifierCommand {
    /// Writes a Solidity verifier specialised to a verifying key (ark-serialize compressed file,
    /// as `tacit_prover::keys::write_verifying_key` writes it, or snarkjs's
    /// verification_key.json).
    Export {
        /// Verifying key file (`.json` is read as snarkjs JSON).
        #[arg(long)]
        vk: PathBuf,
        /// Output Solidity file.
        #[arg(long)]
        out: PathBuf,
        /// Contract name.
        #[arg(long, default_value = "TacitVerifier")]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum ProveCommand {
    /// Proves a circuit of about N constraints (a batch of Poseidon hashes over the parties'
    /// secret inputs) with the single prover and collaboratively over loopback QUIC
    /// (malicious security), and prints times, CPU per party, their ratio, bytes and rounds.
    Bench {
        /// Approximate number of constraints.
        #[arg(long, default_value_t = 1 << 16)]
        constraints: usize,
        /// Parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// How the one product step runs: `batched` (verified multiplication; cheaters named
        /// with n >= t + 2) or `local` (no communication; naming needs more redundancy).
        #[arg(long, value_enum, default_value_t = ProductArg::Batched)]
        product: ProductArg,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Makes a collaborative proof and writes snarkjs's verification_key.json, proof.json and
    /// public.json (and EVM calldata) to a directory.
    Export {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Poseidon hashes in the sample circuit.
        #[arg(long, default_value_t = 4)]
        hashes: usize,
    },
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Creates a key and self-signed certificate per party and a cluster file naming every
    /// party's address and certificate fingerprint.
    Init {
        /// Number of parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Corruption threshold (n >= 2t + 1).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Output directory.
        #[arg(long)]
        dir: PathBuf,
        /// Party i listens on base-port + i - 1.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Host every party listens on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Which transport a benchmark runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// QUIC with mutual TLS on loopback.
    Quic,
    /// In-process channels.
    Memory,
}

/// The collaborative prover's product step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProductArg {
    /// One verified batched multiplication.
    Batched,
    /// Local degree-2t products.
    Local,
}

/// Security mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SecurityArg {
    /// Malicious security with abort.
    Malicious,
    /// Semi-honest.
    SemiHonest,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Threshold ECDSA: presignatures per second and online signing latency over loopback
    /// QUIC, beside a full cggmp24 signing.
    Sign(signer::BenchArgs),
    /// A sealed-bid auction end to end (default 1,000 bidders) with the single prover on the
    /// same circuit: MPC time, proof time and ratio, settlement gas, against the targets.
    Auction(auction::BenchArgs),
    /// Batched multiplications between parties on loopback: preprocessing, online and total
    /// throughput, bytes and rounds, beside the plain field-multiplication rate.
    Mul {
        /// Parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Multiplications.
        #[arg(long, default_value_t = 1 << 20)]
        count: usize,
        /// Transport.
        #[arg(long, value_enum, default_value_t = TransportKind::Quic)]
        transport: TransportKind,
        /// Security mode.
        #[arg(long, value_enum, default_value_t = SecurityArg::Malicious)]
        security: SecurityArg,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Batched 64-bit comparisons `[x < y]` between parties on loopback (random bits
    /// preprocessed): comparisons per second online.
    Compare {
        /// Parties.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold.
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Comparisons.
        #[arg(long, default_value_t = 1 << 16)]
        count: usize,
        /// Transport.
        #[arg(long, value_enum, default_value_t = TransportKind::Quic)]
        transport: TransportKind,
        /// Security mode.
        #[arg(long, value_enum, default_value_t = SecurityArg::Malicious)]
        security: SecurityArg,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Execution gas of one Groth16 verification on the embedded EVM for 1, 2 and 4 public
    /// inputs, beside the EIP-1108 floor 181,000 + 6,150n.
    Gas {
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// One party of the multiplication benchmark, for running each party in its own process
    /// from a cluster directory made by `tacit cluster init`; prints this party's figures as
    /// JSON.
    Party {
        /// Cluster directory.
        #[arg(long)]
        dir: PathBuf,
        /// This party's id.
        #[arg(long)]
        id: u16,
        /// Multiplications.
        #[arg(long, default_value_t = 1 << 16)]
        count: usize,
        /// Security mode.
        #[arg(long, value_enum, default_value_t = SecurityArg::Malicious)]
        security: SecurityArg,
        /// Session label; every party must use the same.
        #[arg(long, default_value = "bench-mul")]
        session: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Cluster { command: ClusterCommand::Init { parties, threshold, dir, base_port, host, force } } => {
            cluster::init(parties, threshold, &dir, base_port, &host, force)
        }
        Command::Prove { command: ProveCommand::Bench { constraints, parties, threshold, product, json } } => {
            let mode = match product {
                ProductArg::Batched => tacit_prover::collaborative::ProductMode::Batched,
                ProductArg::Local => tacit_prover::collaborative::ProductMode::Local,
            };
            prove::bench(constraints, parties, threshold, mode, json)
        }
        Command::Prove { command: ProveCommand::Export { out, parties, threshold, hashes } } => {
            prove::export(&out, parties, threshold, hashes)
        }
        Command::Bench { command: BenchCommand::Gas { json } } => bench::gas(json),
        Command::Verifier { command: VerifierCommand::Export { vk, out, name } } => {
            prove::export_verifier(&vk, &out, &name)
        }
        Command::Bench { command: BenchCommand::Compare { parties, threshold, count, transport, security, json } } => {
            bench::compare(parties, threshold, count, transport, security, json)
        }
        Command::Bench { command: BenchCommand::Mul { parties, threshold, count, transport, security, json } } => {
            bench::mul(parties, threshold, count, transport, security, json)
        }
        Command::Bench { command: BenchCommand::Sign(args) } => signer::bench(args),
        Command::Bench { command: BenchCommand::Auction(args) } => auction::bench(args),
        Command::Auction { command } => auction::run(command),
        Command::Signer { command } => signer::run(command),
        Command::Audit { command } => signer::audit(command),
        Command::Psi { command } => psi::run(command),
        Command::Risk { command } => risk::run(command),
        Command::Node(args) => node::run(args),
        Command::Demo { command: None } => auction::demo(auction::DemoArgs::default()),
        Command::Demo { command: Some(DemoCommand::Auction(args)) } => auction::demo(args),
        Command::Demo { command: Some(DemoCommand::Sign(args)) } => signer::demo(args),
        Command::Demo { command: Some(DemoCommand::Psi(args)) } => psi::demo(args),
        Command::Demo { command: Some(DemoCommand::Risk(args)) } => risk::demo(args),
        Command::Bench { command: BenchCommand::Party { dir, id, count, security, session } } => {
            bench::party(&dir, id, count, security, &session)
        }
    }
}
