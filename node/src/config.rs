//! `party.toml`: everything one node needs. Relative paths are relative to the file's folder.
//!
//! ```toml
//! party = 1
//! threshold = 1
//! data_dir = "data-1"
//! cert = "party-1.cert.der"
//! key = "party-1.key.der"
//! mesh_listen = "127.0.0.1:7101"
//! api_listen = "127.0.0.1:7201"
//! metrics_listen = "127.0.0.1:7301"
//! bid_listen = "127.0.0.1:7401"       # bidders' share packets of hosted auctions (optional)
//!
//! [chain]                              # the chain hosted auctions live on (optional)
//! journal = "/srv/chain/chain.jsonl"   # the embedded EVM's journal, followed read-only
//!
//! [[peers]]
//! id = 2
//! addr = "127.0.0.1:7102"
//! cert_fingerprint = "3f0c…"          # or: cert_file = "party-2.cert.der"
//!
//! [secret_key]
//! source = "file"                      # "file" | "env" | "passphrase"
//! path = "party-1.store.key"           # file: 64 hex digits or 32 raw bytes
//! # var = "TACIT_NODE_KEY"             # env: 64 hex digits; passphrase: the passphrase
//! # passphrase_file = "pass.txt"       # passphrase from a file instead of `var`
//!
//! [[clients]]
//! name = "ops"
//! fingerprint = "9a1b…"
//! jobs = ["signer.dkg", "signer.presign", "signer.sign", "job.status"]
//!
//! [pools]
//! presignatures = 8                    # target level per signer set (0: no pool)
//! low_water = 2                        # refill below this
//! batch = 8                            # presignatures per refill session
//! signer_sets = [[1, 2]]               # default: the first t+1 parties
//!
//! [pools.mpc]                          # MPC preprocessing (BN254) for MPC jobs
//! batches = 4                          # target batches held (0: no pool)
//! low_water = 1                        # refill below this
//! per_refill = 2                       # batches per refill session (at most 16)
//! doubles = 65536                      # double sharings per batch
//! randoms = 4096                       # random sharings per batch
//! bits = 16384                         # random bits per batch
//!
//! [timeouts]
//! connect_ms = 10000
//! recv_ms = 10000
//! job_ms = 120000
//! proposal_wait_ms = 5000
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tacit_mpc_engine::transport::quic::{Fingerprint, PartyIdentity, PeerInfo, QuicConfig, QuicOptions};
use tacit_mpc_engine::{PartyId, Shamir};

use crate::api::JobType;
use crate::error::{NodeError, Result};

/// Environment variable the `env` key source reads by default.
pub const DEFAULT_KEY_ENV: &str = "TACIT_NODE_KEY";

/// One peer: its address and its pinned certificate (fingerprint or certificate file).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// Party id.
    pub id: u16,
    /// Mesh address.
    pub addr: SocketAddr,
    /// SHA-256 of its certificate (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<Fingerprint>,
    /// Or its certificate file (DER).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Its job API address (for clients and scripts; the node does not dial it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_addr: Option<SocketAddr>,
}

/// Where the at-rest key comes from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeySource {
    /// A key file: 64 hex digits or 32 raw bytes (keep it mode 0600).
    File {
        /// The file.
        path: PathBuf,
    },
    /// An environment variable holding 64 hex digits.
    Env {
        /// The variable (default `TACIT_NODE_KEY`).
        #[serde(default = "default_key_env")]
        var: String,
    },
    /// A passphrase stretched with Argon2id (salt and parameters kept in the store).
    Passphrase {
        /// Environment variable holding the passphrase.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        var: Option<String>,
        /// Or a file holding it (first line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passphrase_file: Option<PathBuf>,
        /// Argon2id memory in KiB for a new store (default 65536).
        #[serde(default = "default_m_kib")]
        m_kib: u32,
        /// Argon2id passes for a new store (default 3).
        #[serde(default = "default_t_cost")]
        t_cost: u32,
    },
}

fn default_key_env() -> String {
    DEFAULT_KEY_ENV.into()
}
fn default_m_kib() -> u32 {
    64 * 1024
}
fn default_t_cost() -> u32 {
    3
}

/// A client and the job types it may run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    /// A name for logs and metrics.
    pub name: String,
    /// SHA-256 of the client's certificate (hex).
    pub fingerprint: Fingerprint,
    /// Allowed job types (`"*"` for all).
    pub jobs: Vec<String>,
}

/// Preprocessing pools kept topped up in the background.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pools {
    /// Target presignatures per signer set (0: no background presigning).
    pub presignatures: usize,
    /// Refill when the level falls below this.
    pub low_water: usize,
    /// Presignatures made per refill session (at most 256).
    pub batch: usize,
    /// Signer sets to keep pools for; empty: the first t+1 parties.
    pub signer_sets: Vec<Vec<u16>>,
    /// The MPC engine's preprocessing.
    pub mpc: MpcPool,
}

impl Default for Pools {
    fn default() -> Self {
        Self { presignatures: 0, low_water: 2, batch: 8, signer_sets: Vec::new(), mpc: MpcPool::default() }
    }
}

/// Most batches one refill session makes.
pub const MAX_PER_REFILL: usize = 16;

/// The pool of MPC preprocessing batches (BN254, malicious security) that MPC jobs load
/// instead of generating their own; every node must configure the same batch composition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MpcPool {
    /// Target batches held (0: no pool; jobs generate their own preprocessing).
    pub batches: usize,
    /// Refill when fewer are held.
    pub low_water: usize,
    /// Batches made per refill session (1..=16).
    pub per_refill: usize,
    /// Double sharings per batch (one per multiplication).
    pub doubles: usize,
    /// Random sharings per batch (input masks, coins, verification masks).
    pub randoms: usize,
    /// Random bits per batch (comparison masks).
    pub bits: usize,
}

impl Default for MpcPool {
    fn default() -> Self {
        Self { batches: 0, low_water: 1, per_refill: 2, doubles: 65_536, randoms: 4_096, bits: 16_384 }
    }
}

impl MpcPool {
    /// Items per batch.
    pub fn counts(&self) -> tacit_mpc_engine::PrepCounts {
        tacit_mpc_engine::PrepCounts { doubles: self.doubles, randoms: self.randoms, bits: self.bits }
    }
}

/// Timeouts, milliseconds in the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// How long the mesh waits for all peers per connection attempt.
    pub connect_ms: u64,
    /// How long a node waits for a peer's message within a job.
    pub recv_ms: u64,
    /// Longest a job may run (and a client waits).
    pub job_ms: u64,
    /// How long a node waits for a client's copy of a job the leader proposed.
    pub proposal_wait_ms: u64,
    /// How long shutdown waits for the job in flight.
    pub shutdown_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect_ms: 10_000, recv_ms: 10_000, job_ms: 120_000, proposal_wait_ms: 5_000, shutdown_ms: 15_000 }
    }
}

/// The `party.toml` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyToml {
    /// This party's id (1..=n).
    pub party: u16,
    /// Corruption threshold t (n >= 2t+1).
    pub threshold: usize,
    /// Where the node keeps its state.
    pub data_dir: PathBuf,
    /// This party's certificate (DER).
    pub cert: PathBuf,
    /// Its private key (DER PKCS#8).
    pub key: PathBuf,
    /// Peer mesh address (UDP).
    pub mesh_listen: SocketAddr,
    /// Job API address (UDP, QUIC with mutual TLS).
    pub api_listen: SocketAddr,
    /// Prometheus endpoint (TCP); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// Every other party.
    pub peers: Vec<PeerEntry>,
    /// The at-rest key.
    pub secret_key: KeySource,
    /// Clients and what they may run.
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// Preprocessing pools.
    #[serde(default)]
    pub pools: Pools,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Largest job request in bytes (default 1 MiB).
    #[serde(default = "default_max_request")]
    pub max_request: usize,
    /// Transport tunables of the mesh (`recv_timeout_ms` and `connect_timeout_ms` are taken
    /// from `[timeouts]`).
    #[serde(default)]
    pub quic: QuicOptions,
    /// Risk queries' privacy budgets.
    #[serde(default)]
    pub risk: RiskSettings,
    /// Where bidders send share packets of hosted auctions (UDP, QUIC; bidders anonymous,
    /// packets signed); absent: no bid endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bid_listen: Option<SocketAddr>,
    /// The chain this node reads auctions from; absent: it hosts none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainSettings>,
}

/// `[chain]`: the chain as this node follows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSettings {
    /// The chain's journal (the embedded EVM's transaction log, written by `tacit auction`),
    /// replayed read-only into the node's own EVM.
    pub journal: PathBuf,
}

/// `[risk]`: each querier's total privacy budget (epsilon) over all its risk queries; every
/// node keeps its own ledger of charges (in `node.redb`) and the nodes refuse a query
/// together if any of them would exceed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSettings {
    /// Budget of a querier not listed in `budgets`.
    pub default_budget: f64,
    /// Budget per querier.
    #[serde(default)]
    pub budgets: std::collections::BTreeMap<String, f64>,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self { default_budget: 1.0, budgets: Default::default() }
    }
}

fn default_max_request() -> usize {
    1 << 20
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The file as read.
    pub file: PartyToml,
    /// Folder relative paths are resolved against.
    pub base: PathBuf,
    /// This party.
    pub me: PartyId,
    /// Number of parties.
    pub n: usize,
    /// Mesh configuration (identity and pinned peers).
    pub quic: QuicConfig,
    /// Signer sets whose pools are kept.
    pub pool_sets: Vec<Vec<u16>>,
}

impl NodeConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("reading {}: {e}", path.display())))?;
        let file: PartyToml =
            toml::from_str(&text).map_err(|e| NodeError::Config(format!("parsing {}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_file(file, &base)
    }

    /// Validates a parsed file; relative paths are resolved against `base`.
    pub fn from_file(file: PartyToml, base: &Path) -> Result<Self> {
        let bad = |m: String| Err(NodeError::Config(m));
        let me = match PartyId::new(file.party) {
            Some(p) => p,
            None => return bad(format!("party {} is outside 1..=16", file.party)),
        };
        let n = file.peers.len() + 1;
        Shamir::<tacit_signer::curve::Scalar>::new(n, file.threshold)
            .map_err(|e| NodeError::Config(format!("{n} parties with threshold {}: {e}", file.threshold)))?;
        let cert = std::fs::read(resolve(base, &file.cert))
            .map_err(|e| NodeError::Config(format!("certificate {}: {e}", file.cert.display())))?;
        let key = zeroize::Zeroizing::new(
            std::fs::read(resolve(base, &file.key))
                .map_err(|e| NodeError::Config(format!("key {}: {e}", file.key.display())))?,
        );
        let identity = PartyIdentity::from_der(cert, key.to_vec())?;
        let mut peers = Vec::with_capacity(file.peers.len());
        let mut seen = HashSet::new();
        for p in &file.peers {
            let id = PartyId::new(p.id).ok_or_else(|| NodeError::Config(format!("peer id {} is invalid", p.id)))?;
            if id == me || id.index() >= n || !seen.insert(id) {
                return bad(format!("peer {} is ours, outside 1..={n} or listed twice", p.id));
            }
            let fp = match (&p.cert_fingerprint, &p.cert_file) {
                (Some(fp), None) => *fp,
                (None, Some(f)) => {
                    let der = std::fs::read(resolve(base, f))
                        .map_err(|e| NodeError::Config(format!("peer {} certificate {}: {e}", p.id, f.display())))?;
                    Fingerprint::of_cert_der(&der)?
                }
                _ => return bad(format!("peer {}: give exactly one of cert_fingerprint and cert_file", p.id)),
            };
            peers.push(PeerInfo { id, addr: p.addr, cert_fingerprint: fp });
        }
        let t = &file.timeouts;
        if t.recv_ms == 0 || t.job_ms == 0 || t.connect_ms == 0 {
            return bad("timeouts must be non-zero".into());
        }
        let mut options = file.quic.clone();
        options.connect_timeout = Duration::from_millis(t.connect_ms);
        options.recv_timeout = Duration::from_millis(t.recv_ms);
        let mut quic = QuicConfig::new(me, file.mesh_listen, identity, peers);
        quic.options = options;
        for c in &file.clients {
            for j in &c.jobs {
                if j != "*" && JobType::parse(j).is_none() {
                    return bad(format!("client {}: unknown job type {j:?}", c.name));
                }
            }
        }
        if file.pools.batch == 0 || file.pools.batch > 256 {
            return bad("pools.batch must be in 1..=256".into());
        }
        let pool_sets = if file.pools.signer_sets.is_empty() {
            vec![(1..=u16::try_from(file.threshold + 1).unwrap_or(u16::MAX)).collect()]
        } else {
            file.pools.signer_sets.clone()
        };
        for set in &pool_sets {
            let ids: Vec<PartyId> = set.iter().filter_map(|s| PartyId::new(*s)).collect();
            if ids.len() != set.len() {
                return bad(format!("pool signer set {set:?} has an invalid id"));
            }
            tacit_signer::presign::validate_signers(&ids, n, file.threshold)
                .map_err(|e| NodeError::Config(format!("pool signer set {set:?}: {e}")))?;
        }
        let mpc = &file.pools.mpc;
        if mpc.per_refill == 0 || mpc.per_refill > MAX_PER_REFILL {
            return bad(format!("pools.mpc.per_refill must be in 1..={MAX_PER_REFILL}"));
        }
        let max = tacit_mpc_engine::pooled::MAX_BATCH_ITEMS;
        if [mpc.doubles, mpc.randoms, mpc.bits].iter().any(|c| *c > max) {
            return bad(format!("pools.mpc item counts must be at most {max}"));
        }
        if mpc.batches > 0 && mpc.doubles + mpc.randoms + mpc.bits == 0 {
            return bad("pools.mpc batches would be empty".into());
        }
        if file.bid_listen.is_some() && file.chain.is_none() {
            return bad("bid_listen needs [chain]: bids are checked against the chain".into());
        }
        if file.max_request < 1024 || file.max_request > (64 << 20) {
            return bad("max_request must be in 1 KiB..=64 MiB".into());
        }
        Ok(Self { base: base.to_path_buf(), me, n, quic, pool_sets, file })
    }

    /// Every party's certificate fingerprint, in party order (this node's own included).
    pub fn party_fingerprints(&self) -> Result<Vec<Fingerprint>> {
        PartyId::all(self.n)
            .map(|p| {
                if p == self.me {
                    return Ok(self.quic.identity.fingerprint());
                }
                self.quic
                    .peers
                    .iter()
                    .find(|peer| peer.id == p)
                    .map(|peer| peer.cert_fingerprint)
                    .ok_or_else(|| NodeError::Config(format!("no peer {p}")))
            })
            .collect()
    }

    /// The chain journal, if the node follows a chain.
    pub fn chain_journal(&self) -> Option<PathBuf> {
        self.file.chain.as_ref().map(|c| resolve(&self.base, &c.journal))
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        resolve(&self.base, &self.file.data_dir)
    }

    /// Resolves a path from the file.
    pub fn path(&self, p: &Path) -> PathBuf {
        resolve(&self.base, p)
    }

    /// Threshold.
    pub fn t(&self) -> usize {
        self.file.threshold
    }

    /// The job types `client` may run, or `None` if it is unknown.
    pub fn client_policy(&self, client: &Fingerprint) -> Option<&ClientEntry> {
        self.file.clients.iter().find(|c| c.fingerprint == *client)
    }

    /// Timeout helpers.
    pub fn job_timeout(&self) -> Duration {
        Duration::from_millis(self.file.timeouts.job_ms)
    }

    /// How long a follower waits for the client's copy of a proposed job.
    pub fn proposal_wait(&self) -> Duration {
        Duration::from_millis(self.file.timeouts.proposal_wait_ms)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
