//! Threshold ECDSA for EVM accounts on Tacit.
//! `tacit signer ...`, `tacit audit ...`, `tacit demo sign`, `tacit bench sign`.
//!
//! The `signer` subcommands keep every node of a cluster in one directory (one encrypted redb
//! store and one audit log per node) and run the protocols between them over loopback QUIC in
//! this process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tacit_contracts::{LocalChain, Outcome};
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{PartyId, SessionId};
use tacit_signer::cluster::{self, first_ok, honest, KeyOp};
use tacit_signer::curve::{address_of_key, checksum_address, keccak, parse_hex, EcdsaSignature};
use tacit_signer::eth::{hash_struct, typed_data_digest, word_address, word_u128, Eip712Domain, Intent, IntentKind};
use tacit_signer::k256::ecdsa::SigningKey;
use tacit_signer::policy::{approve, Approval, Policy};
use tacit_signer::store::{StoreKey, KEY_ENV};
use tacit_signer::{Node, SignRequest};

/// `tacit signer ...`
#[derive(Subcommand, Debug)]
pub enum SignerCommand {
    /// Creates the nodes of a cluster in DIR and runs a DKG between them; prints the address.
    Dkg {
        #[command(flatten)]
        dir: DirArgs,
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Threshold t (any t+1 nodes sign).
        #[arg(long, default_value_t = 1)]
        threshold: usize,
        /// Initial policy (JSON, see `tacit signer policy template`).
        #[arg(long)]
        policy: PathBuf,
    },
    /// New shares of the same key on every node (epoch + 1; old shares and presignatures dead).
    Refresh {
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Replaces node ID by a new empty node and reshares the key to it (same address).
    Reshare {
        #[command(flatten)]
        dir: DirArgs,
        /// The node to replace.
        #[arg(long)]
        replace: u16,
    },
    /// Makes COUNT presignatures bound to one signer set.
    Presign {
        #[command(flatten)]
        dir: DirArgs,
        /// Presignatures.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Signer set, e.g. 1,2 (t+1 node ids).
        #[arg(long, value_delimiter = ',')]
        signers: Vec<u16>,
    },
    /// Adds an approver's signature to a request file (approvers run this on their side).
    Approve {
        /// The request (JSON: intent, approvals, presig_id, signers).
        #[arg(long)]
        request: PathBuf,
        /// File with the approver's secp256k1 key (64 hex characters).
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Writes a request file for an intent (JSON), picking an unused presignature of SIGNERS.
    Request {
        #[command(flatten)]
        dir: DirArgs,
        /// The intent (JSON).
        #[arg(long)]
        intent: PathBuf,
        /// Signer set.
        #[arg(long, value_delimiter = ',')]
        signers: Vec<u16>,
        /// Where to write the request.
        #[arg(long)]
        out: PathBuf,
    },
    /// Signs a request on its signer set; prints the signature (and raw transaction).
    Sign {
        #[command(flatten)]
        dir: DirArgs,
        /// The request (JSON).
        #[arg(long)]
        request: PathBuf,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Policy: show, template, propose a change.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Key, epoch, address and presignature counts of every node.
    Info {
        #[command(flatten)]
        dir: DirArgs,
    },
}

/// `tacit signer policy ...`
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Prints a policy template.
    Template,
    /// Prints the policy in force on a node.
    Show {
        #[command(flatten)]
        dir: DirArgs,
        /// Node id.
        #[arg(long, default_value_t = 1)]
        node: u16,
    },
    /// Prints the digest approvers sign to change the policy to NEW.
    Digest {
        #[command(flatten)]
        dir: DirArgs,
        /// The new policy (JSON).
        #[arg(long)]
        new: PathBuf,
    },
    /// Queues NEW on every node, given approvals over its digest (JSON list); it takes effect
    /// after the current policy's delay.
    Propose {
        #[command(flatten)]
        dir: DirArgs,
        /// The new policy (JSON).
        #[arg(long)]
        new: PathBuf,
        /// Approvals (JSON list of {approver, signature}).
        #[arg(long)]
        approvals: PathBuf,
    },
}

/// Where the nodes live and how their stores are unlocked.
#[derive(Args, Debug, Clone)]
pub struct DirArgs {
    /// Directory holding the nodes' stores and audit logs.
    #[arg(long)]
    pub dir: PathBuf,
    /// File with the store key (64 hex characters); else $TACIT_SIGNER_KEY, else
    /// $TACIT_SIGNER_PASSPHRASE (Argon2id).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// `tacit audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verifies a node's audit log: hash chain, order and the node's signatures; reports the
    /// first entry that was edited, reordered or removed.
    Verify {
        /// The log (JSON lines).
        file: PathBuf,
        /// Pin the node key (hex SEC1 compressed); default: the key of the first entry.
        #[arg(long)]
        node_key: Option<String>,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
    },
}

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
    /// Nodes.
    #[arg(long, default_value_t = 3)]
    pub parties: usize,
    /// Threshold t (t+1 sign).
    #[arg(long, default_value_t = 1)]
    pub threshold: usize,
    /// Presignatures made, and signatures timed.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Presignatures per batch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Where the nodes' stores go (default: a fresh temporary directory). Each signing
    /// fsyncs a burn and an audit entry on every signer, so the device shows in the latency.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Full cggmp24 signings timed beside ours by the `tacit-baseline-cggmp24` binary (built
    /// with `cargo build --release -p tacit-benches --bin tacit-baseline-cggmp24`, found next
    /// to this executable or at $TACIT_BASELINE_CGGMP24); 0 skips the baseline.
    #[arg(long, default_value_t = 3)]
    pub baseline_runs: usize,
    /// Print exactly one JSON object.
    #[arg(long)]
    pub json: bool,
}

// ----- shared helpers -------------------------------------------------------------------------

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

fn store_key(args: &DirArgs) -> anyhow::Result<StoreKey> {
    if let Some(f) = &args.key_file {
        return Ok(StoreKey::from_file(f)?);
    }
    if std::env::var(KEY_ENV).is_ok() {
        return Ok(StoreKey::from_env()?);
    }
    if let Ok(p) = std::env::var("TACIT_SIGNER_PASSPHRASE") {
        return Ok(StoreKey::Passphrase(tacit_signer::zeroize::Zeroizing::new(p)));
    }
    bail!("no store key: pass --key-file, or set {KEY_ENV} or TACIT_SIGNER_PASSPHRASE")
}

#[derive(Serialize, Deserialize)]
struct ClusterMeta {
    parties: usize,
    threshold: usize,
}

fn meta_path(dir: &Path) -> PathBuf {
    dir.join("signer-cluster.json")
}

fn read_meta(dir: &Path) -> anyhow::Result<ClusterMeta> {
    let b = std::fs::read(meta_path(dir)).with_context(|| format!("no signer cluster in {}", dir.display()))?;
    Ok(serde_json::from_slice(&b)?)
}

fn open_nodes(args: &DirArgs, parties: usize) -> anyhow::Result<Vec<Arc<Node>>> {
    let mut nodes = Vec::with_capacity(parties);
    for id in PartyId::all(parties) {
        nodes
            .push(Arc::new(Node::open(&args.dir, id, store_key(args)?).with_context(|| format!("opening node {id}"))?));
    }
    Ok(nodes)
}

async fn shutdown(transports: &[Arc<QuicTransport>]) {
    for t in transports {
        t.shutdown().await;
    }
}

fn parties(ids: &[u16]) -> anyhow::Result<Vec<PartyId>> {
    ids.iter().map(|i| PartyId::new(*i).with_context(|| format!("no party {i}"))).collect()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&b).with_context(|| format!("parsing {}", path.display()))
}

/// Recovers the signer of `hash` with the ecrecover precompile on revm.
fn ecrecover(hash: &[u8; 32], sig: &EcdsaSignature) -> anyhow::Result<[u8; 20]> {
    let mut chain = LocalChain::new();
    let mut input = hash.to_vec();
    input.extend(word_u128(27 + u128::from(sig.v)));
    input.extend(sig.r);
    input.extend(sig.s);
    let mut precompile = [0u8; 20];
    precompile[19] = 1;
    match chain.call(precompile.into(), input)?.outcome {
        Outcome::Success(out) if out.len() == 32 => {
            let mut a = [0u8; 20];
            a.copy_from_slice(out.get(12..).unwrap_or_default());
            Ok(a)
        }
        other => bail!("ecrecover failed: {other:?}"),
    }
}

// ----- tacit signer ---------------------------------------------------------------------------

pub fn run(command: SignerCommand) -> anyhow::Result<()> {
    let rt = crate::bench::runtime()?;
    match command {
        SignerCommand::Dkg { dir, parties: n, threshold, policy } => {
            let policy: Policy = read_json(&policy)?;
            if meta_path(&dir.dir).exists() {
                bail!("{} already holds a cluster", dir.dir.display());
            }
            std::fs::create_dir_all(&dir.dir)?;
            let nodes = open_nodes(&dir, n)?;
            let public = rt.block_on(async {
                let ts = crate::cluster::local_quic_cluster(n).await?;
                let r = cluster::key_op(KeyOp::Dkg, &ts, &nodes, threshold, SessionId::random(), now(), &honest).await;
                shutdown(&ts).await;
                anyhow::Ok(first_ok(r)?)
            })?;
            for node in &nodes {
                node.init_policy(&policy)?;
            }
            std::fs::write(meta_path(&dir.dir), serde_json::to_vec(&ClusterMeta { parties: n, threshold })?)?;
            let p = public.first().context("no node")?;
            println!(
                "key {} ({}-of-{n}) address {}",
                hex::encode(p.key_id),
                threshold + 1,
                checksum_address(&p.address()?)
            );
            Ok(())
        }
        SignerCommand::Refresh { dir } => key_op(&rt, &dir, KeyOp::Refresh),
        SignerCommand::Reshare { dir, replace } => {
            let meta = read_meta(&dir.dir)?;
            let id = PartyId::new(replace).filter(|p| p.index() < meta.parties).context("no such node")?;
            let public = Node::open(&dir.dir, PartyId::new(1).context("party 1")?, store_key(&dir)?)?.key_public()?;
            let policy = Node::open(&dir.dir, PartyId::new(1).context("party 1")?, store_key(&dir)?)?.policy(now())?;
            // The replaced node's files are set aside; a new node starts with public data only.
            for path in [tacit_signer::node::store_path(&dir.dir, id), tacit_signer::node::audit_path(&dir.dir, id)] {
                if path.exists() {
                    std::fs::rename(&path, path.with_extension(format!("replaced-{}", now())))?;
                }
            }
            let fresh = Node::open(&dir.dir, id, store_key(&dir)?)?;
            fresh.set_public(&public)?;
            fresh.init_policy(&policy)?;
            drop(fresh);
            key_op(&rt, &dir, KeyOp::Reshare(id))
        }
        SignerCommand::Presign { dir, count, signers } => {
            let meta = read_meta(&dir.dir)?;
            let signers = parties(&signers)?;
            let nodes = open_nodes(&dir, meta.parties)?;
            let start = Instant::now();
            let ids = rt.block_on(async {
                let ts = crate::cluster::local_quic_cluster(meta.parties).await?;
                let r =
                    cluster::presign(&ts, &nodes, meta.threshold, SessionId::random(), count, &signers, now(), &honest)
                        .await;
                shutdown(&ts).await;
                anyhow::Ok(first_ok(r)?)
            })?;
            let made = ids.iter().map(Vec::len).max().unwrap_or_default();
            println!("{made} presignatures for signers {signers:?} in {:.2} s", start.elapsed().as_secs_f64());
            Ok(())
        }
        SignerCommand::Approve { request, key_file } => {
            let mut req: SignRequest = read_json(&request)?;
            let key_hex = tacit_signer::zeroize::Zeroizing::new(std::fs::read_to_string(&key_file)?);
            let key = SigningKey::from_slice(&parse_hex::<32>(key_hex.trim())?)?;
            let approval = approve(&key, &req.intent.digest()).context("signing failed")?;
            req.approvals.retain(|a| a.approver != approval.approver);
            req.approvals.push(approval);
            std::fs::write(&request, serde_json::to_vec_pretty(&req)?)?;
            println!(
                "approved by {} ({} approvals)",
                checksum_address(&address_of_key(key.verifying_key())),
                req.approvals.len()
            );
            Ok(())
        }
        SignerCommand::Request { dir, intent, signers, out } => {
            let mut intent: Intent = read_json(&intent)?;
            let set = parties(&signers)?;
            let first = set.first().context("empty signer set")?;
            let node = Node::open(&dir.dir, *first, store_key(&dir)?)?;
            if intent.key_id == [0u8; 16] {
                // Filled in here, before anyone approves the intent.
                intent.key_id = node.key_public()?.key_id;
            }
            let presig = *node.presigs_for(&set)?.first().context("no unused presignature for this signer set")?;
            let req = SignRequest { intent, approvals: Vec::new(), presig_id: presig, signers };
            std::fs::write(&out, serde_json::to_vec_pretty(&req)?)?;
            println!("request written to {} (digest 0x{})", out.display(), hex::encode(req.intent.digest()));
            Ok(())
        }
        SignerCommand::Sign { dir, request, json } => {
            let meta = read_meta(&dir.dir)?;
            let req: SignRequest = read_json(&request)?;
            let nodes = open_nodes(&dir, meta.parties)?;
            let out = rt.block_on(async {
                let ts = crate::cluster::local_quic_cluster(meta.parties).await?;
                let r = cluster::sign(&ts, &nodes, &req, now(), &honest).await;
                shutdown(&ts).await;
                anyhow::Ok(first_ok(r)?)
            })?;
            let o = out.first().context("no signer")?;
            let address = nodes.first().context("no node")?.key_public()?.address()?;
            if ecrecover(&o.prehash, &o.signature)? != address {
                bail!("the signature does not recover to the key's address");
            }
            let v = serde_json::json!({
                "address": checksum_address(&address),
                "signature": format!("0x{}", hex::encode(o.signature.to_rsv_bytes())),
                "tx_raw": o.raw_tx.as_ref().map(|r| format!("0x{}", hex::encode(r))),
                "tx_hash": o.tx_hash.map(|h| format!("0x{}", hex::encode(h))),
            });
            if json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(())
        }
        SignerCommand::Policy { command } => match command {
            PolicyCommand::Template => {
                let p = Policy {
                    approvers: vec![[0x11; 20], [0x22; 20], [0x33; 20]],
                    threshold: 2,
                    chains: vec![1],
                    destinations: vec![[0x35; 20]],
                    daily_limit: 10_000_000_000_000_000_000,
                    change_threshold: 2,
                    change_delay_s: 86_400,
                };
                println!("{}", serde_json::to_string_pretty(&p)?);
                Ok(())
            }
            PolicyCommand::Show { dir, node } => {
                let n = Node::open(&dir.dir, PartyId::new(node).context("no such node")?, store_key(&dir)?)?;
                println!("{}", serde_json::to_string_pretty(&n.policy(now())?)?);
                Ok(())
            }
            PolicyCommand::Digest { dir, new } => {
                let next: Policy = read_json(&new)?;
                let n = Node::open(&dir.dir, PartyId::new(1).context("party 1")?, store_key(&dir)?)?;
                println!("0x{}", hex::encode(n.policy(now())?.change_digest(&next)));
                Ok(())
            }
            PolicyCommand::Propose { dir, new, approvals } => {
                let meta = read_meta(&dir.dir)?;
                let next: Policy = read_json(&new)?;
                let approvals: Vec<Approval> = read_json(&approvals)?;
                for node in open_nodes(&dir, meta.parties)? {
                    let pending = node.propose_policy(&next, &approvals, now())?;
                    println!("{}: queued, effective at {}", node.id(), pending.effective_at);
                }
                Ok(())
            }
        },
        SignerCommand::Info { dir } => {
            let meta = read_meta(&dir.dir)?;
            for node in open_nodes(&dir, meta.parties)? {
                let p = node.key_public()?;
                println!(
                    "{}: key {} epoch {} address {} presignatures {}",
                    node.id(),
                    hex::encode(p.key_id),
                    p.epoch,
                    checksum_address(&p.address()?),
                    node.presig_ids()?.len()
                );
            }
            Ok(())
        }
    }
}

fn key_op(rt: &tokio::runtime::Runtime, dir: &DirArgs, op: KeyOp) -> anyhow::Result<()> {
    let meta = read_meta(&dir.dir)?;
    let nodes = open_nodes(dir, meta.parties)?;
    let public = rt.block_on(async {
        let ts = crate::cluster::local_quic_cluster(meta.parties).await?;
        let r = cluster::key_op(op, &ts, &nodes, meta.threshold, SessionId::random(), now(), &honest).await;
        shutdown(&ts).await;
        anyhow::Ok(first_ok(r)?)
    })?;
    let p = public.first().context("no node")?;
    println!("key {} epoch {} address {}", hex::encode(p.key_id), p.epoch, checksum_address(&p.address()?));
    Ok(())
}

// ----- tacit audit ----------------------------------------------------------------------------

pub fn audit(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { file, node_key, json } => {
            let result = tacit_signer::audit::verify_file(&file, node_key.as_deref())?;
            match (&result, json) {
                (Ok(r), true) => println!(
                    "{}",
                    serde_json::json!({"ok": true, "entries": r.entries, "head": r.head, "node_key": r.node_key})
                ),
                (Err(f), true) => {
                    println!("{}", serde_json::json!({"ok": false, "failure": f, "message": f.to_string()}))
                }
                (Ok(r), false) => println!("ok: {} entries, head {}, node key {}", r.entries, r.head, r.node_key),
                (Err(f), false) => println!("FAILED: {f}"),
            }
            match result {
                Ok(_) => Ok(()),
                Err(f) => bail!("audit log {} is not intact: {f}", file.display()),
            }
        }
    }
}

// ----- tacit demo sign ------------------------------------------------------------------------

struct Demo {
    nodes: Vec<Arc<Node>>,
    transports: Vec<Arc<QuicTransport>>,
    approvers: Vec<SigningKey>,
    key_id: [u8; 16],
}

impl Demo {
    fn request(&self, intent: Intent, presig: [u8; 32], signers: &[PartyId]) -> anyhow::Result<SignRequest> {
        let digest = intent.digest();
        let approvals = self
            .approvers
            .iter()
            .take(2)
            .map(|k| approve(k, &digest).context("approval"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SignRequest { intent, approvals, presig_id: presig, signers: signers.iter().map(|p| p.get()).collect() })
    }

    fn transfer(&self, to: [u8; 20], value: u128, nonce: u64) -> Intent {
        Intent::simple_transfer(self.key_id, to, value, nonce, now() + 600)
    }

    async fn presign(&self, t: usize, count: usize, signers: &[PartyId]) -> anyhow::Result<Vec<[u8; 32]>> {
        let r = cluster::presign(&self.transports, &self.nodes, t, SessionId::random(), count, signers, now(), &honest)
            .await;
        first_ok(r)?.into_iter().find(|v| !v.is_empty()).context("no presignatures")
    }

    async fn sign(&self, req: &SignRequest) -> anyhow::Result<tacit_signer::sign::SignOutput> {
        let r = cluster::sign(&self.transports, &self.nodes, req, now(), &honest).await;
        first_ok(r)?.into_iter().next().context("no signer")
    }
}

/// The EIP-712 "Mail" example message (its digest).
fn mail_digest() -> anyhow::Result<([u8; 20], [u8; 32])> {
    let contract: [u8; 20] = parse_hex("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC")?;
    let domain = Eip712Domain {
        name: "Ether Mail".into(),
        version: "1".into(),
        chain_id: 1,
        verifying_contract: Some(contract),
    };
    const PERSON: &str = "Person(string name,address wallet)";
    const MAIL: &str = "Mail(Person from,Person to,string contents)Person(string name,address wallet)";
    let from =
        hash_struct(PERSON, &[keccak(b"Cow"), word_address(&parse_hex("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")?)]);
    let to =
        hash_struct(PERSON, &[keccak(b"Bob"), word_address(&parse_hex("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")?)]);
    let mail = hash_struct(MAIL, &[from, to, keccak(b"Hello, Bob!")]);
    Ok((contract, typed_data_digest(&domain.separator(), &mail)))
}

#[derive(Serialize)]
struct DemoReport {
    address: String,
    tx_raw: String,
    tx_hash: String,
    typed_data_signature: String,
    refresh_kept_address: bool,
}

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let rt = crate::bench::runtime()?;
    let dir = tempdir()?;
    let spinner = crate::bench::spinner("2-of-3 threshold ECDSA over loopback QUIC", args.json);
    let say = |s: String| {
        if !args.json {
            println!("{s}");
        }
    };
    let report = rt.block_on(async {
        let n = 3;
        let t = 1;
        let transports = crate::cluster::local_quic_cluster(n).await?;
        let mut nodes = Vec::new();
        for id in PartyId::all(n) {
            nodes.push(Arc::new(Node::open(&dir, id, StoreKey::random())?));
        }
        let approvers: Vec<SigningKey> = (0..3).map(|_| SigningKey::random(&mut rand::thread_rng())).collect();
        let r = cluster::key_op(KeyOp::Dkg, &transports, &nodes, t, SessionId::random(), now(), &honest).await;
        let public = first_ok(r)?.into_iter().next().context("no node")?;
        let address = public.address()?;
        say(format!("DKG (2-of-3): key {} address {}", hex::encode(public.key_id), checksum_address(&address)));
        let recipient = [0x35u8; 20];
        let (mail_contract, mail) = mail_digest()?;
        let policy = Policy {
            approvers: approvers.iter().map(|k| address_of_key(k.verifying_key())).collect(),
            threshold: 2,
            chains: vec![1],
            destinations: vec![recipient, mail_contract],
            daily_limit: 10_000_000_000_000_000_000,
            change_threshold: 2,
            change_delay_s: 86_400,
        };
        for node in &nodes {
            node.init_policy(&policy)?;
        }
        say("policy: 2-of-3 approvers, chain 1, two allowed destinations, 10 ETH per 24 h".into());
        let demo = Demo { nodes, transports, approvers, key_id: public.key_id };
        let s12 = [PartyId::new(1).context("p1")?, PartyId::new(2).context("p2")?];
        let presigs = demo.presign(t, 4, &s12).await?;
        say(format!("presigned {} for signer set {{P1, P2}}", presigs.len()));

        let tx =
            demo.sign(&demo.request(demo.transfer(recipient, 500_000_000_000_000_000, 0), presigs[0], &s12)?).await?;
        let tx_raw = tx.raw_tx.clone().context("no transaction")?;
        let tx_hash = tx.tx_hash.context("no hash")?;
        if tx.signature.recover(&tx.prehash)? != address || ecrecover(&tx.prehash, &tx.signature)? != address {
            bail!("the transaction signature does not recover to the DKG address");
        }
        say(format!(
            "EIP-1559 transfer of 0.5 ETH signed: tx hash 0x{} (recovers to the address with k256 and ecrecover)",
            hex::encode(tx_hash)
        ));

        let mut typed = demo.transfer(mail_contract, 0, 0);
        typed.kind = IntentKind::TypedData;
        typed.data_hash = mail;
        let td = demo.sign(&demo.request(typed, presigs[1], &s12)?).await?;
        if ecrecover(&mail, &td.signature)? != address {
            bail!("the typed-data signature does not recover to the DKG address");
        }
        say(format!("EIP-712 Mail (digest 0x{}) signed", hex::encode(mail)));

        let r = cluster::key_op(KeyOp::Refresh, &demo.transports, &demo.nodes, t, SessionId::random(), now(), &honest)
            .await;
        let refreshed = first_ok(r)?.into_iter().next().context("no node")?;
        let s23 = [PartyId::new(2).context("p2")?, PartyId::new(3).context("p3")?];
        let presigs = demo.presign(t, 1, &s23).await?;
        let again =
            demo.sign(&demo.request(demo.transfer(recipient, 1_000_000_000_000_000, 1), presigs[0], &s23)?).await?;
        let kept = refreshed.address()? == address
            && again.signature.recover(&again.prehash)? == address
            && ecrecover(&again.prehash, &again.signature)? == address;
        say(format!(
            "refresh to epoch {}: signers {{P2, P3}} signed again with the same address: {kept}",
            refreshed.epoch
        ));
        shutdown(&demo.transports).await;
        anyhow::Ok(DemoReport {
            address: checksum_address(&address),
            tx_raw: format!("0x{}", hex::encode(tx_raw)),
            tx_hash: format!("0x{}", hex::encode(tx_hash)),
            typed_data_signature: format!("0x{}", hex::encode(td.signature.to_rsv_bytes())),
            refresh_kept_address: kept,
        })
    });
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "address {}\ntx_raw {}\ntyped_data_signature {}",
            report.address, report.tx_raw, report.typed_data_signature
        );
    }
    Ok(())
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tacit-signer-{}", hex::encode(rand::random::<[u8; 8]>())));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

// ----- tacit bench sign -----------------------------------------------------------------------

#[derive(Serialize)]
struct BenchReport {
    parties: usize,
    threshold: usize,
    count: usize,
    batch: usize,
    presign_per_s: f64,
    sign_p50_ms: f64,
    sign_p95_ms: f64,
    sign_mean_ms: f64,
    transport: &'static str,
    store_dir: String,
    /// p50 of a full cggmp24 signing (2 of 3), measured in this run; null when the baseline
    /// binary is missing or skipped.
    cggmp24_sign_ms: Option<f64>,
    /// cggmp24_sign_ms / sign_p50_ms.
    ratio: Option<f64>,
    /// The baseline's own report, or why it is missing.
    cggmp24: serde_json::Value,
    note: &'static str,
}

/// The baseline binary's name (a target of `benches/`, so cggmp24 stays out of this crate).
const BASELINE_BIN: &str = "tacit-baseline-cggmp24";
/// Environment variable naming the baseline binary explicitly.
const BASELINE_ENV: &str = "TACIT_BASELINE_CGGMP24";

/// Where the baseline binary is: $TACIT_BASELINE_CGGMP24, else next to this executable.
fn baseline_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(BASELINE_ENV) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(format!("{BASELINE_BIN}{}", std::env::consts::EXE_SUFFIX)))
}

/// The p50 (ms) in a report of the baseline binary.
fn baseline_ms(report: &serde_json::Value) -> Option<f64> {
    report.get("cggmp24_sign_ms").and_then(serde_json::Value::as_f64).filter(|v| v.is_finite() && *v > 0.0)
}

/// Runs the cggmp24 baseline binary: its report, or why there is none.
fn run_baseline(runs: usize) -> Result<serde_json::Value, String> {
    let path = baseline_path().ok_or_else(|| format!("cannot locate {BASELINE_BIN}; {}", build_hint()))?;
    run_baseline_at(&path, runs)
}

fn build_hint() -> String {
    format!("build it with `cargo build --release -p tacit-benches --bin {BASELINE_BIN}`")
}

fn run_baseline_at(path: &Path, runs: usize) -> Result<serde_json::Value, String> {
    let build = build_hint();
    if !path.is_file() {
        return Err(format!("{BASELINE_BIN} not found at {}; {build} (or set {BASELINE_ENV})", path.display()));
    }
    let out = std::process::Command::new(path)
        .args(["--runs", &runs.to_string()])
        .output()
        .map_err(|e| format!("running {}: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{} printed no JSON report: {e}", path.display()))?;
    if baseline_ms(&report).is_none() {
        return Err(format!("{} reported no cggmp24_sign_ms", path.display()));
    }
    Ok(report)
}

fn baseline_version(report: &serde_json::Value) -> String {
    report
        .get("baseline")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("cggmp24")
        .trim_start_matches("cggmp24 ")
        .to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.count == 0 || args.batch == 0 {
        bail!("--count and --batch must be positive");
    }
    let rt = crate::bench::runtime()?;
    let dir = match &args.dir {
        Some(d) => {
            let d = d.join(format!("tacit-signer-bench-{}", hex::encode(rand::random::<[u8; 8]>())));
            std::fs::create_dir_all(&d)?;
            d
        }
        None => tempdir()?,
    };
    let spinner = crate::bench::spinner("benchmarking threshold ECDSA over loopback QUIC", args.json);
    let (n, t) = (args.parties, args.threshold);
    let result = rt.block_on(async {
        let transports = crate::cluster::local_quic_cluster(n).await?;
        let mut nodes = Vec::new();
        for id in PartyId::all(n) {
            nodes.push(Arc::new(Node::open(&dir, id, StoreKey::random())?));
        }
        let approvers: Vec<SigningKey> = (0..3).map(|_| SigningKey::random(&mut rand::thread_rng())).collect();
        let r = cluster::key_op(KeyOp::Dkg, &transports, &nodes, t, SessionId::random(), now(), &honest).await;
        let public = first_ok(r)?.into_iter().next().context("no node")?;
        let recipient = [0x35u8; 20];
        let policy = Policy {
            approvers: approvers.iter().map(|k| address_of_key(k.verifying_key())).collect(),
            threshold: 2,
            chains: vec![1],
            destinations: vec![recipient],
            daily_limit: u128::MAX,
            change_threshold: 2,
            change_delay_s: 86_400,
        };
        for node in &nodes {
            node.init_policy(&policy)?;
        }
        let demo = Demo { nodes, transports, approvers, key_id: public.key_id };
        let signers: Vec<PartyId> = PartyId::all(t + 1).collect();
        let start = Instant::now();
        let mut ids = Vec::with_capacity(args.count);
        while ids.len() < args.count {
            let k = args.batch.min(args.count - ids.len());
            ids.extend(demo.presign(t, k, &signers).await?);
        }
        let presign_s = start.elapsed().as_secs_f64();
        // Requests (with approvals) are prepared by clients beforehand; the timed part is the
        // online signing: every signer's policy gate, durable burn, both rounds, combination
        // and verification.
        let mut requests = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            requests.push(demo.request(demo.transfer(recipient, 1, i as u64), *id, &signers)?);
        }
        let mut times = Vec::with_capacity(requests.len());
        for req in &requests {
            let s = Instant::now();
            demo.sign(req).await?;
            times.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        shutdown(&demo.transports).await;
        anyhow::Ok((presign_s, times))
    });
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (presign_s, mut times) = result?;
    times.sort_by(f64::total_cmp);
    let sign_p50_ms = percentile(&times, 0.5);
    // The baseline runs after our figures are taken, so the two never share the cores.
    let baseline = if args.baseline_runs == 0 {
        Err("skipped (--baseline-runs 0)".to_string())
    } else {
        let spinner = crate::bench::spinner("timing full cggmp24 signings (baseline)", args.json);
        let r = run_baseline(args.baseline_runs);
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        r
    };
    let (cggmp24_sign_ms, cggmp24) = match baseline {
        Ok(report) => (baseline_ms(&report), report),
        Err(why) => {
            if args.baseline_runs > 0 {
                eprintln!("cggmp24 baseline: {why}");
            }
            (None, serde_json::json!({ "missing": why }))
        }
    };
    let ratio = cggmp24_sign_ms.filter(|_| sign_p50_ms > 0.0).map(|c| c / sign_p50_ms);
    let report = BenchReport {
        parties: n,
        threshold: t,
        count: args.count,
        batch: args.batch,
        presign_per_s: args.count as f64 / presign_s.max(f64::MIN_POSITIVE),
        sign_p50_ms,
        sign_p95_ms: percentile(&times, 0.95),
        sign_mean_ms: times.iter().sum::<f64>() / times.len().max(1) as f64,
        transport: "quic-loopback",
        store_dir: dir.parent().map(|p| p.display().to_string()).unwrap_or_default(),
        cggmp24_sign_ms,
        ratio,
        cggmp24,
        note: "all nodes in one process; signing includes each signer's policy gate and fsynced burn and audit entry; the cggmp24 baseline is a full 2-of-3 signing by the tacit-baseline-cggmp24 binary (benches/), run after our figures",
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{n} nodes, t = {t}: presign {:.0}/s (batches of {}), online sign p50 {:.2} ms, p95 {:.2} ms, mean {:.2} ms over {} signatures",
            report.presign_per_s, args.batch, report.sign_p50_ms, report.sign_p95_ms, report.sign_mean_ms, args.count
        );
        match (report.cggmp24_sign_ms, report.ratio) {
            (Some(c), Some(r)) => println!(
                "cggmp24 {} full signing (2 of 3, same run): {c:.1} ms, {r:.0}x our online sign p50",
                baseline_version(&report.cggmp24)
            ),
            _ => println!("cggmp24 baseline: not run (see above)"),
        }
    }
    Ok(())
}
