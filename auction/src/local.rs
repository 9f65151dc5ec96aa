//! A whole auction in one process: nodes on loopback QUIC (mutual TLS between nodes, pinned
//! intake endpoints for bidders), each with its own durable share store, and an embedded EVM.
//! This is what `tacit demo` runs, and the operator API in its simplest deployment.
//!
//! ```no_run
//! # async fn example() -> Result<(), tacit_auction::AuctionError> {
//! use tacit_auction::local::{LocalAuction, LocalAuctionConfig};
//! use tacit_auction::bidder::{BidderKey, BidSecret};
//! let dir = std::env::temp_dir().join("tacit-auction-example");
//! let config = LocalAuctionConfig::new("vickrey".parse()?, 8, &dir);
//! let auction = LocalAuction::create(config).await?;
//! let mut rng = rand::thread_rng();
//! for bid in [120, 300, 250] {
//!     let key = BidderKey::random(&mut rng);
//!     auction.bid(&key, &BidSecret::new(bid, &mut rng)).await?;
//! }
//! auction.close()?;
//! let run = auction.run().await?;
//! let gas = auction.settle(&run)?;
//! assert_eq!(run.outcome.price, 250);
//! # let _ = gas; Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ark_bn254::Fr;
use rand::SeedableRng;
use revm::primitives::Address;
use tacit_contracts::{LocalChain, SharedChain};
use tacit_mpc_engine::simulate::{local_quic_cluster, run_engines};
use tacit_mpc_engine::transport::intake::{submit, IntakeServer};
use tacit_mpc_engine::transport::quic::{QuicOptions, QuicTransport};
use tacit_mpc_engine::transport::tls::{Fingerprint, PartyIdentity};
use tacit_mpc_engine::{MpcError, PartyId, Security, SessionId};
use tacit_prover::snarkjs::EvmProof;

use crate::bidder::{packets, BidSecret, BidderKey, PACKET_LEN};
use crate::chain::{self, AuctionParams, OnChainBids};
use crate::circuit::Shape;
use crate::node::{check_submission, run_node, setup_keys, AuctionKeys, NodeRun, ShareStore};
use crate::outcome::AuctionKind;
use crate::AuctionError;

/// How long a bidder waits for a node's answer.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(20);

/// What to create.
#[derive(Clone, Debug)]
pub struct LocalAuctionConfig {
    /// Kind.
    pub kind: AuctionKind,
    /// Most bidders (the circuit's slots).
    pub capacity: usize,
    /// Nodes.
    pub nodes: usize,
    /// Threshold.
    pub threshold: usize,
    /// Where the nodes keep their stores.
    pub dir: PathBuf,
    /// QUIC tunables of the nodes (e.g. a short receive timeout in tests).
    pub quic: QuicOptions,
    /// Seed of the trusted setup (`None`: from the OS).
    pub setup_seed: Option<u64>,
}

impl LocalAuctionConfig {
    /// Three nodes, threshold one, default QUIC options.
    pub fn new(kind: AuctionKind, capacity: usize, dir: &Path) -> Self {
        Self {
            kind,
            capacity,
            nodes: 3,
            threshold: 1,
            dir: dir.to_path_buf(),
            quic: QuicOptions::default(),
            setup_seed: None,
        }
    }
}

/// A node's intake endpoint as bidders see it (the cluster file's entry).
#[derive(Clone, Debug)]
pub struct NodeEndpoint {
    /// The node.
    pub id: PartyId,
    /// Where it accepts share packets.
    pub addr: SocketAddr,
    /// The fingerprint bidders pin.
    pub pin: Fingerprint,
}

struct Node {
    endpoint: NodeEndpoint,
    store: Arc<ShareStore>,
    intake: tokio::task::JoinHandle<()>,
}

/// One auction with its nodes and chain.
pub struct LocalAuction {
    /// The embedded chain.
    pub chain: SharedChain,
    /// The auction contract.
    pub address: Address,
    /// The verifier contract.
    pub verifier: Address,
    /// Proving material.
    pub keys: Arc<AuctionKeys>,
    config: LocalAuctionConfig,
    nodes: Vec<Node>,
    transports: Vec<Arc<QuicTransport>>,
    deadline: u64,
    hasher: Address,
    params: AuctionParams,
    /// Runs so far: each gets a fresh session.
    attempts: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for LocalAuction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAuction").field("address", &self.address).field("config", &self.config).finish()
    }
}

impl LocalAuction {
    /// Runs the trusted setup for the auction's shape, deploys Poseidon, the verifier and the
    /// auction (bidding open for an hour of chain time), and starts the nodes.
    pub async fn create(config: LocalAuctionConfig) -> Result<Self, AuctionError> {
        let shape = Shape { kind: config.kind, capacity: config.capacity };
        shape.validate()?;
        let mut rng = match config.setup_seed {
            Some(seed) => rand_chacha::ChaCha20Rng::seed_from_u64(seed),
            None => rand_chacha::ChaCha20Rng::from_entropy(),
        };
        let keys = Arc::new(tokio::task::block_in_place(|| setup_keys(shape, &mut rng))?);
        let chain = SharedChain::spawn(|| {
            let mut chain = LocalChain::new();
            // A fresh in-memory chain has no journal: setting its clock cannot fail.
            let _ = chain.set_timestamp(1_700_000_000);
            chain
        })?;
        let deadline = 1_700_000_000 + 3600;
        let vk = keys.pk.vk.clone();
        let (hasher, verifier) =
            chain.with(move |c| Ok::<_, AuctionError>((c.deploy_poseidon()?, c.deploy_verifier(&vk)?)))??;
        std::fs::create_dir_all(&config.dir).map_err(|e| AuctionError::Store(e.to_string()))?;
        let transports = local_quic_cluster(config.nodes, config.quic.clone()).await?;
        // The node set the contract records: a hash of the nodes' certificate pins.
        let mut identities = Vec::new();
        for id in PartyId::all(config.nodes) {
            identities.push((id, PartyIdentity::generate(id)?));
        }
        let pins: Vec<Fingerprint> = identities.iter().map(|(_, identity)| identity.fingerprint()).collect();
        let params = AuctionParams {
            kind: config.kind,
            capacity: config.capacity,
            deadline,
            node_set: chain::node_set_hash(pins.iter().map(Fingerprint::as_bytes)),
        };
        let deploy_params = params.clone();
        let address = chain.with(move |c| chain::deploy(c, verifier, hasher, &deploy_params))??;
        let mut nodes = Vec::new();
        for (id, identity) in identities {
            let store_path = config.dir.join(format!("node-{}.redb", id.get()));
            let store = Arc::new(ShareStore::open(&store_path)?);
            let server = IntakeServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &identity, PACKET_LEN)?;
            let endpoint = NodeEndpoint { id, addr: server.local_addr()?, pin: identity.fingerprint() };
            let intake = tokio::spawn(serve_intake(server, id, address, deadline, chain.clone(), store.clone()));
            nodes.push(Node { endpoint, store, intake });
        }
        Ok(Self {
            chain,
            address,
            verifier,
            keys,
            config,
            nodes,
            transports,
            deadline,
            hasher,
            params,
            attempts: 0.into(),
        })
    }

    /// The nodes' intake endpoints.
    pub fn endpoints(&self) -> Vec<NodeEndpoint> {
        self.nodes.iter().map(|n| n.endpoint.clone()).collect()
    }

    /// Bids: posts the commitment from the bidder's address, then sends each node its signed
    /// share packet. Returns the bidder's index.
    pub async fn bid(&self, key: &BidderKey, secret: &BidSecret) -> Result<usize, AuctionError> {
        let commitment = secret.commitment()?;
        let (auction, bidder) = (self.address, key.address());
        let (index, _gas) = self.chain.with(move |c| chain::commit(c, auction, bidder, commitment))??;
        let packets = packets(
            key,
            self.address,
            index,
            secret,
            self.config.nodes,
            self.config.threshold,
            &mut rand::thread_rng(),
        )?;
        self.send_packets(&packets).await?;
        Ok(index)
    }

    /// Sends packet `i` to node `i + 1` (what a bidder's client does).
    pub async fn send_packets(&self, packets: &[Vec<u8>]) -> Result<(), AuctionError> {
        for (node, packet) in self.nodes.iter().zip(packets) {
            let e = &node.endpoint;
            submit(e.id, e.addr, e.pin, packet, 1024, SUBMIT_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Moves chain time past the deadline.
    pub fn close(&self) -> Result<(), AuctionError> {
        let deadline = self.deadline;
        self.chain.with(move |c| c.set_timestamp(deadline))??;
        Ok(())
    }

    /// The bids on chain.
    pub fn bids(&self) -> Result<OnChainBids, AuctionError> {
        let auction = self.address;
        self.chain.with(move |c| chain::read_bids(c, auction))?
    }

    /// Runs the MPC and the collaborative proof at every node; returns node 1's result after
    /// checking all nodes agree.
    pub async fn run(&self) -> Result<NodeRun, AuctionError> {
        let active: Vec<PartyId> = PartyId::all(self.config.nodes).collect();
        self.run_with(&active).await
    }

    /// [`LocalAuction::run`] with only the listed nodes taking part (the others are offline).
    pub async fn run_with(&self, online: &[PartyId]) -> Result<NodeRun, AuctionError> {
        if self.chain.with(|c| c.timestamp())? < self.deadline {
            return Err(AuctionError::Params("bidding is still open".into()));
        }
        let bids = self.bids()?;
        let mut shares = Vec::new();
        for node in &self.nodes {
            shares.push(node.store.shares_for(&bids)?);
        }
        let transports: Vec<Arc<QuicTransport>> = self
            .transports
            .iter()
            .filter(|t| online.contains(&tacit_mpc_engine::Transport::id(&***t)))
            .cloned()
            .collect();
        let session = SessionId::derive(
            &format!("auction {}", self.address),
            self.attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        run_cluster(transports, self.config.threshold, self.keys.clone(), bids, shares, session).await
    }

    /// Settles on chain with the nodes' result.
    pub fn settle(&self, run: &NodeRun) -> Result<chain::SettleReceipt, AuctionError> {
        let proof = EvmProof::new(&run.proof, &run.public_inputs);
        let (auction, outcome) = (self.address, run.outcome.clone());
        self.chain.with(move |c| {
            let from = c.caller();
            chain::settle(c, from, auction, &outcome, &proof)
        })?
    }

    /// Deploys another auction with the same verifier, parameters and node set (to show a
    /// proof is bound to one auction); returns its address.
    pub fn deploy_twin(&self) -> Result<Address, AuctionError> {
        let mut params = self.params.clone();
        params.deadline = self.chain.with(|c| c.timestamp())? + 3600;
        let (verifier, hasher) = (self.verifier, self.hasher);
        self.chain.with(move |c| chain::deploy(c, verifier, hasher, &params))?
    }

    /// Stops the nodes' endpoints and connections.
    pub async fn shutdown(self) {
        for node in &self.nodes {
            node.intake.abort();
        }
        for t in &self.transports {
            t.shutdown().await;
        }
    }
}

/// Runs the auction at every node of `transports` (nodes in this process), each with its own
/// shares (`shares[i]` for node `i + 1`); checks that all nodes agree and returns node 1's
/// result.
pub async fn run_cluster(
    transports: Vec<Arc<QuicTransport>>,
    threshold: usize,
    keys: Arc<AuctionKeys>,
    bids: OnChainBids,
    shares: Vec<Vec<Option<Vec<Fr>>>>,
    session: SessionId,
) -> Result<NodeRun, AuctionError> {
    let bids = Arc::new(bids);
    let shares = Arc::new(shares);
    let results = run_engines::<Fr, _, _, _, _>(transports, threshold, Security::Malicious, session, move |engine| {
        let keys = keys.clone();
        let bids = bids.clone();
        let mine = shares.get(engine.id().index()).cloned().unwrap_or_default();
        async move {
            run_node(engine, &keys, &bids, mine).await.map_err(|e| match e {
                AuctionError::Mpc(e) => e,
                other => MpcError::Usage(other.to_string()),
            })
        }
    })
    .await;
    let mut first: Option<NodeRun> = None;
    for r in results {
        let run = r?;
        match &first {
            None => first = Some(run),
            Some(f) if f.outcome == run.outcome && f.public_inputs == run.public_inputs => {}
            Some(_) => return Err(AuctionError::Prover("nodes disagree on the outcome".into())),
        }
    }
    first.ok_or_else(|| AuctionError::Params("no node ran".into()))
}

async fn serve_intake(
    mut server: IntakeServer,
    me: PartyId,
    auction: Address,
    deadline: u64,
    chain: SharedChain,
    store: Arc<ShareStore>,
) {
    while let Some(request) = server.next().await {
        let answer = (|| {
            let open = chain.with(move |c| c.timestamp() < deadline)?;
            let submission = check_submission(&request.payload, me, auction, open, |index| {
                chain.with(move |c| chain::read_bidder(c, auction, index))?
            })?;
            store.put(&submission)?;
            Ok::<_, AuctionError>(b"stored".to_vec())
        })();
        if let Err(e) = &answer {
            tracing::info!(node = %me, from = %request.from, "refused a share packet: {e}");
        }
        request.respond(answer.map_err(|e| e.to_string()));
    }
}
