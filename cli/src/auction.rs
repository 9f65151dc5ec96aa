//! `tacit demo` / `tacit demo auction`, `tacit bench auction`, and `tacit auction ...`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use ark_bn254::Fr;
use clap::{Args, Subcommand};
use rand::Rng;
use tacit_auction::bidder::{deal, BidSecret, BidderKey, Submission};
use tacit_auction::chain;
use tacit_auction::circuit::{PublicData, Secrets};
use tacit_auction::local::{LocalAuction, LocalAuctionConfig};
use tacit_auction::node::prove_single;
use tacit_auction::outcome::{reference_outcome, AuctionKind};
use tacit_mpc_engine::PartyId;

/// `tacit auction ...`: one auction kept in a directory (its chain as a replayable journal,
/// its keys). Either the nodes run in this process when the auction is settled (bidders'
/// packets are checked by each node's intake code and stored in its store in the directory),
/// or, with `create --nodes client.toml`, `tacit-node` daemons following the journal host it:
/// `host` asks them to, bids go to their bid endpoints, `settle --client` has them run it.
#[derive(Subcommand, Debug)]
pub enum AuctionCommand {
    /// Runs the trusted setup, deploys Poseidon, the verifier and the auction on a new chain.
    Create {
        /// Directory for the auction (created; must not hold one already).
        #[arg(long)]
        dir: PathBuf,
        /// `first`, `vickrey` or `uniform:K`.
        #[arg(long, default_value = "vickrey")]
        kind: String,
        /// Most bidders.
        #[arg(long, default_value_t = 16)]
        capacity: usize,
        /// Seconds of chain time bidding stays open.
        #[arg(long, default_value_t = 3600)]
        bidding_seconds: u64,
        /// Hosted by `tacit-node` daemons: a `client.toml` listing them (their bid endpoints
        /// and certificate fingerprints; the contract records their node set).
        #[arg(long)]
        nodes: Option<PathBuf>,
        /// The daemons' threshold (with `--nodes`).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
    },
    /// Asks the `tacit-node` daemons to host the auction (each checks the contract against
    /// the proving key and its cluster); each must hold the proving key as
    /// `<data_dir>/auction-keys/<hash>.pk` (`create` prints the hash).
    Host {
        /// The auction directory.
        #[arg(long)]
        dir: PathBuf,
        /// A `client.toml` authorised for `auction.host`.
        #[arg(long)]
        client: PathBuf,
    },
    /// Bids: a fresh bidder key commits Poseidon(amount, salt) on chain and deals its shares
    /// to the nodes; the bidder's secrets go to `bidder-<index>.json` (owner-only).
    Bid {
        /// The auction directory.
        #[arg(long)]
        dir: PathBuf,
        /// The bid.
        #[arg(long, required_unless_present = "resend", conflicts_with = "resend")]
        amount: Option<u64>,
        /// Deal the shares of bidder INDEX again from its `bidder-<INDEX>.json` (when a node
        /// missed its packet): fresh shares of the same bid and salt, signed by the same key.
        #[arg(long)]
        resend: Option<usize>,
    },
    /// Moves chain time to the deadline: no more bids.
    Close {
        /// The auction directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Runs the nodes (MPC and collaborative proof over loopback QUIC; or, for a hosted
    /// auction, the daemons' `auction.run` job) and settles on chain.
    Settle {
        /// The auction directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
        /// A hosted auction: a `client.toml` authorised for `auction.run`.
        #[arg(long)]
        client: Option<PathBuf>,
        /// The run's job id (to retry a failed run; default: a fresh one).
        #[arg(long)]
        job_id: Option<String>,
    },
}

/// What `tacit auction create` records.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct AuctionFile {
    kind: String,
    capacity: usize,
    nodes: usize,
    threshold: usize,
    address: String,
    deadline: u64,
    /// A hosted auction: the nodes' `client.toml` (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster: Option<PathBuf>,
    /// The proving key's BLAKE3 hash (what `auction.host` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proving_key: Option<String>,
}

const NODES: usize = 3;
const THRESHOLD: usize = 1;

fn load(dir: &Path) -> anyhow::Result<(AuctionFile, revm::primitives::Address, tacit_contracts::LocalChain)> {
    let file: AuctionFile = serde_json::from_str(
        &std::fs::read_to_string(dir.join("auction.json"))
            .with_context(|| format!("no auction in {}", dir.display()))?,
    )?;
    let address = file.address.parse().context("auction address")?;
    let chain = tacit_contracts::LocalChain::open_journal(&dir.join("chain.jsonl"))?;
    Ok((file, address, chain))
}

fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).with_context(|| format!("writing {}", path.display()))?.write_all(bytes)?;
    Ok(())
}

fn store_path(dir: &Path, node: PartyId) -> PathBuf {
    dir.join(format!("node-{}.redb", node.get()))
}

/// `tacit demo auction` (and `tacit demo` with the defaults).
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Bidders.
    #[arg(long, default_value_t = 8)]
    pub bidders: usize,
    /// `first`, `vickrey` or `uniform:K`.
    #[arg(long, default_value = "vickrey")]
    pub kind: String,
    /// How many of the bidders misbehave (their shares do not open their commitments); they
    /// are excluded and listed in the result.
    #[arg(long, default_value_t = 0)]
    pub invalid: usize,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Write snarkjs `verification_key.json`, `proof.json` and `public.json` of the
    /// settlement proof to this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also time the single prover on the same circuit (the baseline of the collaborative
    /// proof).
    #[arg(long)]
    pub baseline: bool,
}

/// `tacit bench auction`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Bidders.
    #[arg(long, default_value_t = 1000)]
    pub bidders: usize,
    /// `first`, `vickrey` or `uniform:K`.
    #[arg(long, default_value = "vickrey")]
    pub kind: String,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the demo flow quietly with the single-prover baseline and prints the figures beside
/// the targets (MPC <= 2 s, proof <= 3.5x single, settlement <= 300,000 gas).
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let demo_args =
        DemoArgs { bidders: args.bidders, kind: args.kind, invalid: 0, json: true, out: None, baseline: true };
    if !args.json {
        println!("sealed-bid auction, {} bidders, 3 nodes on loopback QUIC (this prints one JSON line):", args.bidders);
        println!("targets at 1,000 bidders: mpc_s <= 2, prove_ratio <= 3.5, settle_gas <= 300000");
    }
    demo(demo_args)
}

impl Default for DemoArgs {
    /// What `tacit demo` runs: 8 bidders, Vickrey, one misbehaving bidder, with the baseline.
    fn default() -> Self {
        Self { bidders: 8, kind: "vickrey".into(), invalid: 1, json: false, out: None, baseline: true }
    }
}

pub fn run(command: AuctionCommand) -> anyhow::Result<()> {
    match command {
        AuctionCommand::Create { dir, kind, capacity, bidding_seconds, nodes, threshold } => {
            let cluster = nodes.map(|n| (n, threshold));
            create(&dir, &kind, capacity, bidding_seconds, cluster)
        }
        AuctionCommand::Host { dir, client } => host(&dir, &client),
        AuctionCommand::Bid { dir, amount, resend } => bid(&dir, amount, resend),
        AuctionCommand::Close { dir } => {
            let (file, _, mut chain) = load(&dir)?;
            chain.set_timestamp(file.deadline.max(chain.timestamp()))?;
            println!("bidding closed at chain time {}", chain.timestamp());
            Ok(())
        }
        AuctionCommand::Settle { dir, json, client, job_id } => settle(&dir, json, client.as_deref(), job_id),
    }
}

/// The nodes of a `client.toml`.
fn cluster_nodes(path: &Path) -> anyhow::Result<Vec<tacit_node::client::NodeAddr>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: tacit_node::client::ClientFile = toml::from_str(&text).with_context(|| path.display().to_string())?;
    Ok(file.nodes)
}

fn create(
    dir: &Path,
    kind: &str,
    capacity: usize,
    bidding_seconds: u64,
    cluster: Option<(PathBuf, usize)>,
) -> anyhow::Result<()> {
    let kind: AuctionKind = kind.parse()?;
    let (nodes, threshold, node_set, cluster) = match cluster {
        Some((path, t)) => {
            let nodes = cluster_nodes(&path)?;
            tacit_mpc_engine::Shamir::<Fr>::new(nodes.len(), t)
                .map_err(|e| anyhow::anyhow!("{} nodes with threshold {t}: {e}", nodes.len()))?;
            let set = chain::node_set_hash(nodes.iter().map(|n| n.fingerprint.as_bytes()));
            (nodes.len(), t, set, Some(std::path::absolute(&path)?))
        }
        None => (NODES, THRESHOLD, [0u8; 32], None),
    };
    anyhow::ensure!(!dir.join("auction.json").exists(), "{} already holds an auction", dir.display());
    std::fs::create_dir_all(dir)?;
    let shape = tacit_auction::circuit::Shape { kind, capacity };
    let keys = tacit_auction::node::setup_keys(shape, &mut rand::thread_rng())?;
    tacit_prover::keys::write_proving_key(&keys.pk, dir.join("proving_key.bin"))?;
    let proving_key = tacit_node::proving::proving_key_hash(&std::fs::read(dir.join("proving_key.bin"))?);
    tacit_prover::snarkjs::write_verification_key_json(&keys.pk.vk, dir.join("verification_key.json"))?;
    let mut chain = tacit_contracts::LocalChain::open_journal(&dir.join("chain.jsonl"))?;
    chain.set_timestamp(1_700_000_000)?;
    let hasher = chain.deploy_poseidon()?;
    let verifier = chain.deploy_verifier(&keys.pk.vk)?;
    let deadline = chain.timestamp() + bidding_seconds;
    let params = chain::AuctionParams { kind, capacity, deadline, node_set };
    let address = chain::deploy(&mut chain, verifier, hasher, &params)?;
    let file = AuctionFile {
        kind: kind.to_string(),
        capacity,
        nodes,
        threshold,
        address: address.to_string(),
        deadline,
        proving_key: cluster.is_some().then(|| proving_key.clone()),
        cluster,
    };
    std::fs::write(dir.join("auction.json"), serde_json::to_string_pretty(&file)?)?;
    println!(
        "created a {kind} auction for {capacity} bidders at {address} ({} constraints)",
        keys.matrices.num_constraints()
    );
    println!("bidding open until chain time {deadline}; verifier at {verifier}");
    if file.cluster.is_some() {
        println!(
            "hosted by {nodes} nodes: give each the proving key as <data_dir>/{}/{proving_key}.pk, follow {} ([chain] journal), then `tacit auction host`",
            tacit_node::auction::KEYS_FOLDER,
            std::path::absolute(dir.join("chain.jsonl"))?.display()
        );
    }
    Ok(())
}

fn host(dir: &Path, client: &Path) -> anyhow::Result<()> {
    let (file, address, _) = load(dir)?;
    let proving_key = file.proving_key.context("this auction is not hosted by nodes (create --nodes)")?;
    let client = tacit_node::client::Client::load(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let spec = tacit_node::api::JobSpec::AuctionHost { auction: address.to_string(), proving_key };
    let rt = crate::bench::runtime()?;
    let answers =
        rt.block_on(client.submit(&tacit_node::api::new_job_id(), &spec, std::time::Duration::from_secs(600)));
    let mut refused = Vec::new();
    for (node, answer) in answers {
        match answer {
            Ok(v) if v.state == tacit_node::store::JobState::Done => println!("{node}: hosting {address}"),
            Ok(v) => refused.push(format!("{node}: {}", v.error.unwrap_or_default())),
            Err(e) => refused.push(format!("{node}: {e}")),
        }
    }
    anyhow::ensure!(refused.is_empty(), "not hosted everywhere: {}", refused.join("; "));
    Ok(())
}

fn bid(dir: &Path, amount: Option<u64>, resend: Option<usize>) -> anyhow::Result<()> {
    let (file, address, mut chain) = load(dir)?;
    let mut rng = rand::thread_rng();
    let (index, key, secret) = match (amount, resend) {
        (Some(amount), None) => {
            let key = BidderKey::random(&mut rng);
            let secret = BidSecret::new(amount, &mut rng);
            let (index, gas) = chain::commit(&mut chain, address, key.address(), secret.commitment()?)?;
            // Kept before any share leaves, so a bidder whose packets do not all arrive can deal
            // them again (`--resend`).
            let secret_file = zeroize::Zeroizing::new(serde_json::to_string_pretty(&serde_json::json!({
                "index": index,
                "address": key.address().to_string(),
                "amount": amount,
                "salt": secret.expose_salt().to_string(),
                "key": hex::encode(key.expose_bytes()),
            }))?);
            write_owner_only(&dir.join(format!("bidder-{index}.json")), secret_file.as_bytes())?;
            println!("bidder {index} ({}) committed {} ({gas} gas)", key.address(), secret.commitment()?);
            (index, key, secret)
        }
        (None, Some(index)) => {
            let path = dir.join(format!("bidder-{index}.json"));
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            let saved: serde_json::Value = serde_json::from_str(&text)?;
            let field = |k: &str| {
                saved.get(k).and_then(serde_json::Value::as_str).context(format!("{k} in {}", path.display()))
            };
            let key = BidderKey::from_bytes(&zeroize::Zeroizing::new(hex::decode(field("key")?)?))?;
            let salt: Fr = field("salt")?.parse().map_err(|_| anyhow::anyhow!("salt in {}", path.display()))?;
            let amount = saved.get("amount").and_then(serde_json::Value::as_u64).context("amount")?;
            let secret = BidSecret::from_parts(amount, salt);
            let (commitment, owner) = chain::read_bid(&mut chain, address, u32::try_from(index)?)?
                .with_context(|| format!("no commitment {index} on chain"))?;
            anyhow::ensure!(owner == key.address(), "commitment {index} was not posted by this bidder's key");
            anyhow::ensure!(
                commitment == secret.commitment()?,
                "commitment {index} is not Poseidon(amount, salt) of {}",
                path.display()
            );
            (index, key, secret)
        }
        _ => anyhow::bail!("give --amount, or --resend INDEX"),
    };
    let packets = tacit_auction::bidder::packets(&key, address, index, &secret, file.nodes, file.threshold, &mut rng)?;
    if let Some(cluster) = &file.cluster {
        let nodes = cluster_nodes(cluster)?;
        let timeout = std::time::Duration::from_secs(20);
        crate::bench::runtime()?
            .block_on(tacit_node::auction::submit_bid(&nodes, &packets, timeout))
            .map_err(|e| anyhow::anyhow!("{e} (the bid is committed: deal again with --resend {index})"))?;
    } else {
        let open = chain.timestamp() < file.deadline;
        let owner = chain::read_bidder(&mut chain, address, u32::try_from(index)?)?;
        for (node, packet) in PartyId::all(file.nodes).zip(&packets) {
            let store = tacit_auction::node::ShareStore::open(&store_path(dir, node))?;
            let submission = tacit_auction::node::check_submission(packet, node, address, open, |_| Ok(owner))?;
            store.put(&submission)?;
        }
    }
    println!("bidder {index}: shares sent to {} nodes", file.nodes);
    Ok(())
}

/// A run's outcome and settlement proof, with its figures and how it was obtained.
struct Settlement {
    outcome: tacit_auction::Outcome,
    proof: tacit_prover::snarkjs::EvmProof,
    mpc_s: serde_json::Value,
    prove_s: serde_json::Value,
    /// The hosted run's job id.
    job_id: Option<String>,
}

/// Runs the auction (nodes in this process, or the hosting daemons with `client`) and
/// settles it on chain.
fn settle(dir: &Path, json: bool, client: Option<&Path>, job_id: Option<String>) -> anyhow::Result<()> {
    let (file, address, mut chain) = load(dir)?;
    anyhow::ensure!(chain.timestamp() >= file.deadline, "bidding is still open: run `tacit auction close` first");
    let kind: AuctionKind = file.kind.parse()?;
    let run = match (client, &file.cluster) {
        (None, None) => run_in_process(dir, &file, kind, address, &mut chain)?,
        (Some(client), Some(_)) => run_hosted(client, address, job_id)?,
        (None, Some(_)) => anyhow::bail!("the auction is hosted by nodes: give --client"),
        (Some(_), None) => anyhow::bail!("the auction is not hosted by nodes"),
    };
    let from = chain.caller();
    let receipt = chain::settle(&mut chain, from, address, &run.outcome, &run.proof)?;
    let o = &run.outcome;
    if json {
        let mut report = serde_json::json!({
            "kind": kind.to_string(),
            "winners": o.winners,
            "price": o.price,
            "excluded": o.excluded,
            "mpc_s": run.mpc_s,
            "prove_s": run.prove_s,
            "settle_gas": receipt.execution_gas,
        });
        if let (Some(map), Some(id)) = (report.as_object_mut(), &run.job_id) {
            map.insert("job_id".into(), serde_json::json!(id));
        }
        println!("{report}");
    } else {
        let via = run.job_id.map(|id| format!("; nodes' job {id}")).unwrap_or_default();
        println!(
            "settled: winners {:?}, price {}, excluded {:?} ({} gas{via})",
            o.winners, o.price, o.excluded, receipt.execution_gas
        );
    }
    Ok(())
}

/// The nodes as tasks of this process over loopback QUIC, with the shares in the directory.
fn run_in_process(
    dir: &Path,
    file: &AuctionFile,
    kind: AuctionKind,
    address: revm::primitives::Address,
    chain: &mut tacit_contracts::LocalChain,
) -> anyhow::Result<Settlement> {
    let pk = tacit_prover::keys::read_proving_key(dir.join("proving_key.bin"))?;
    let keys = std::sync::Arc::new(tacit_auction::node::keys_from_proving_key(
        tacit_auction::circuit::Shape { kind, capacity: file.capacity },
        pk,
    )?);
    let bids = chain::read_bids(chain, address)?;
    let mut shares = Vec::new();
    for node in PartyId::all(file.nodes) {
        shares.push(tacit_auction::node::ShareStore::open(&store_path(dir, node))?.shares_for(&bids)?);
    }
    let rt = crate::bench::runtime()?;
    let run = rt.block_on(async {
        let transports = crate::cluster::local_quic_cluster(file.nodes).await?;
        let session = tacit_mpc_engine::SessionId::random();
        let run =
            tacit_auction::local::run_cluster(transports.clone(), file.threshold, keys, bids, shares, session).await;
        for t in transports {
            t.shutdown().await;
        }
        anyhow::Ok(run?)
    })?;
    Ok(Settlement {
        proof: tacit_prover::snarkjs::EvmProof::new(&run.proof, &run.public_inputs),
        outcome: run.outcome,
        mpc_s: serde_json::json!(run.mpc_s),
        prove_s: serde_json::json!(run.prove_s),
        job_id: None,
    })
}

/// The hosting daemons' `auction.run` job; every node must report the same result.
fn run_hosted(client: &Path, address: revm::primitives::Address, job_id: Option<String>) -> anyhow::Result<Settlement> {
    let client = tacit_node::client::Client::load(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let job_id = job_id.unwrap_or_else(tacit_node::api::new_job_id);
    let spec = tacit_node::api::JobSpec::AuctionRun { auction: address.to_string(), one_round_sbox: false };
    let answers =
        crate::bench::runtime()?.block_on(client.submit(&job_id, &spec, std::time::Duration::from_secs(1800)));
    let mut results = Vec::new();
    let mut failures = Vec::new();
    for (node, answer) in answers {
        match answer {
            Ok(v) if v.state == tacit_node::store::JobState::Done => results.push(v.result.unwrap_or_default()),
            Ok(v) => failures.push(format!("{node}: {}", v.error.unwrap_or_default())),
            Err(e) => failures.push(format!("{node}: {e}")),
        }
    }
    anyhow::ensure!(failures.is_empty(), "run {job_id} failed (retry with --job-id {job_id}): {}", failures.join("; "));
    let first = results.first().context("no node answered")?;
    for r in &results {
        for key in ["winners", "price", "excluded", "public"] {
            anyhow::ensure!(r.get(key) == first.get(key), "the nodes disagree on {key}");
        }
    }
    let (outcome, proof) = tacit_node::auction::settlement(first).map_err(|e| anyhow::anyhow!("{e}"))?;
    let figure = |key: &str| first.get(key).cloned().unwrap_or_default();
    Ok(Settlement { outcome, proof, mpc_s: figure("mpc_s"), prove_s: figure("prove_s"), job_id: Some(job_id) })
}

/// Prints progress unless in JSON mode.
struct Progress {
    quiet: bool,
    started: Instant,
}

impl Progress {
    fn step(&self, what: &str) {
        if !self.quiet {
            println!("[{:>6.2} s] {what}", self.started.elapsed().as_secs_f64());
        }
    }

    fn detail(&self, what: &str) {
        if !self.quiet {
            println!("           {what}");
        }
    }
}

fn short(x: impl std::fmt::Display) -> String {
    let s = x.to_string();
    if s.len() > 14 {
        format!("{}…{}", &s[..8], &s[s.len() - 4..])
    } else {
        s
    }
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let kind: AuctionKind = args.kind.parse()?;
    anyhow::ensure!(args.bidders >= 1, "--bidders must be at least 1");
    anyhow::ensure!(args.invalid <= args.bidders, "--invalid cannot exceed --bidders");
    let rt = crate::bench::runtime()?;
    let dir = std::env::temp_dir().join(format!("tacit-demo-{}-{}", std::process::id(), rand::random::<u32>()));
    let result = rt.block_on(demo_run(&args, kind, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo_run(args: &DemoArgs, kind: AuctionKind, dir: &Path) -> anyhow::Result<()> {
    let p = Progress { quiet: args.json, started: Instant::now() };
    if !args.json {
        println!(
            "Tacit demo: a sealed-bid {kind} auction, {} bidders, 3 nodes on loopback QUIC, an embedded EVM",
            args.bidders
        );
    }
    p.step(&format!("trusted setup of the auction circuit for {} slots (the operator's one-time step)", args.bidders));
    let config = LocalAuctionConfig::new(kind, args.bidders, dir);
    let auction = LocalAuction::create(config).await.context("creating the auction")?;
    p.detail(&format!(
        "{} constraints; verifying key deployed as Groth16Verifier",
        auction.keys.matrices.num_constraints()
    ));
    p.step(&format!(
        "3 nodes up (mutual TLS between nodes, pinned intake endpoints); SealedBidAuction at {}",
        auction.address
    ));

    let mut rng = rand::thread_rng();
    let mut bids: Vec<Option<u64>> = Vec::with_capacity(args.bidders);
    let mut secrets = Vec::with_capacity(args.bidders);
    p.step(&format!(
        "{} bidders commit Poseidon(bid, salt) on chain and send each node its share packet",
        args.bidders
    ));
    let honest = args.bidders - args.invalid;
    let auction = std::sync::Arc::new(auction);
    // Bidders act independently: up to 32 at a time.
    let mut bidders = Vec::with_capacity(args.bidders);
    for i in 0..args.bidders {
        let key = BidderKey::random(&mut rng);
        let amount = rng.gen_range(1_000u64..100_000);
        bidders.push((i, key, BidSecret::new(amount, &mut rng)));
    }
    let mut lines = Vec::new();
    let mut pending = bidders.into_iter().peekable();
    while pending.peek().is_some() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, key, secret) in pending.by_ref().take(32) {
            let auction = auction.clone();
            tasks.spawn(async move {
                let r = if i < honest {
                    auction.bid(&key, &secret).await.map_err(anyhow::Error::from)
                } else {
                    // Commits to one bid and deals another: the nodes must exclude it.
                    bid_mismatched(&auction, &key, &secret).await
                };
                (i, key, secret, r)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, key, secret, index) = done?;
            let index = index.with_context(|| format!("bidder {i}"))?;
            let line = if i < honest {
                format!("bidder {index} ({}) committed {}", short(key.address()), short(secret.commitment()?))
            } else {
                format!("bidder {index} ({}) deals shares that do not open its commitment", short(key.address()))
            };
            lines.push((index, line, i < honest, secret));
        }
    }
    lines.sort_by_key(|(index, ..)| *index);
    for (k, (_, line, _, _)) in lines.iter().enumerate() {
        if k < 3 || k + 1 >= lines.len().saturating_sub(args.invalid) {
            p.detail(line);
        } else if k == 3 {
            p.detail("...");
        }
    }
    for (_, _, honest, secret) in lines {
        bids.push(honest.then(|| secret.expose_bid()));
        secrets.push(secret);
    }
    auction.close()?;
    p.step("bidding closed; the nodes check every submission and compute the outcome inside the MPC");
    let run = auction.run().await.context("the MPC run failed")?;
    p.detail(&format!(
        "MPC {:.2} s, {} rounds, {} bytes sent per node; opened: validity bits, winners, price",
        run.mpc_s, run.mpc_rounds, run.mpc_bytes
    ));
    p.step(&format!(
        "collaborative Groth16 proof over the shared witness: {:.2} s (verified by the nodes)",
        run.prove_s
    ));

    let single_prove_s = if args.baseline {
        let candidates: Vec<bool> = bids.iter().map(Option::is_some).collect();
        let onchain = auction.bids()?;
        let public = PublicData { seed: onchain.seed(), commitments: onchain.commitments.clone(), candidates };
        let (vb, vs): (Vec<Fr>, Vec<Fr>) = bids
            .iter()
            .zip(&secrets)
            .filter(|(b, _)| b.is_some())
            .map(|(_, s)| (Fr::from(s.expose_bid()), s.expose_salt()))
            .unzip();
        let keys = auction.keys.clone();
        let (_, s) = tokio::task::block_in_place(|| {
            prove_single(&keys, &public, Secrets { bids: &vb, salts: &vs, bits: None })
        })?;
        p.detail(&format!("single prover on the same circuit: {s:.2} s (ratio {:.2})", run.prove_s / s));
        Some(s)
    } else {
        None
    };

    let receipt = auction.settle(&run).context("settling")?;
    let address = auction.address;
    let settled = auction.chain.with(move |c| chain::read_settlement(c, address))??.context("not settled")?;
    let verified_on_chain = settled.price == run.outcome.price && settled.winners == run.outcome.winners;
    p.step(&format!(
        "settled on chain: the contract verified the proof against its commitment accumulator ({} gas)",
        receipt.execution_gas
    ));
    let reference = reference_outcome(kind, &bids);
    anyhow::ensure!(reference == run.outcome, "the outcome differs from the plaintext rule");

    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        tacit_prover::snarkjs::write_verification_key_json(&auction.keys.pk.vk, out.join("verification_key.json"))?;
        tacit_prover::snarkjs::write_proof_json(&run.proof, out.join("proof.json"))?;
        tacit_prover::snarkjs::write_public_json(&run.public_inputs, out.join("public.json"))?;
        p.detail(&format!("wrote verification_key.json, proof.json, public.json to {}", out.display()));
    }

    if args.json {
        let mut value = serde_json::json!({
            "kind": kind.to_string(),
            "bidders": args.bidders,
            "winners": run.outcome.winners,
            "price": run.outcome.price,
            "mpc_s": run.mpc_s,
            "prove_s": run.prove_s,
            "settle_gas": receipt.execution_gas,
            "verified_on_chain": verified_on_chain,
            "excluded": run.outcome.excluded,
            "mpc_rounds": run.mpc_rounds,
            "constraints": auction.keys.matrices.num_constraints(),
        });
        if let (Some(s), Some(obj)) = (single_prove_s, value.as_object_mut()) {
            obj.insert("single_prove_s".into(), serde_json::json!(s));
            obj.insert("prove_ratio".into(), serde_json::json!(run.prove_s / s));
        }
        println!("{value}");
    } else {
        println!();
        println!("Summary");
        println!("  kind               {kind} (ties go to the lowest bidder index)");
        println!(
            "  bidders            {} ({} excluded: {:?})",
            args.bidders,
            run.outcome.excluded.len(),
            run.outcome.excluded
        );
        println!("  winners            {:?}", run.outcome.winners);
        println!("  price              {}", run.outcome.price);
        println!("  verified on chain  {verified_on_chain} (settle: {} gas)", receipt.execution_gas);
        println!("  MPC                {:.2} s; collaborative proof {:.2} s", run.mpc_s, run.prove_s);
        println!("  losing bids        never opened, not even to the nodes");
        println!("  plaintext check    the demo (which made every bid) finds the same outcome");
    }
    if let Ok(auction) = std::sync::Arc::try_unwrap(auction) {
        auction.shutdown().await;
    }
    Ok(())
}

/// A bidder that commits to `secret` but deals a different bid.
async fn bid_mismatched(auction: &LocalAuction, key: &BidderKey, secret: &BidSecret) -> anyhow::Result<usize> {
    let (address, bidder, commitment) = (auction.address, key.address(), secret.commitment()?);
    let (index, _) = auction.chain.with(move |c| chain::commit(c, address, bidder, commitment))??;
    let mut values = secret.dealt_values();
    values[0] += Fr::from(1u64);
    let dealt = deal(&values, 3, 1, &mut rand::thread_rng())?;
    let mut packets = Vec::new();
    for (i, shares) in dealt.into_iter().enumerate() {
        let node = PartyId::from_index(i).context("node id")?;
        let index32 = u32::try_from(index)?;
        packets.push(Submission { auction: address, index: index32, node, shares }.sign(key)?);
    }
    auction.send_packets(&packets).await?;
    Ok(index)
}
