//! Sealed-bid auctions hosted by the node.
//!
//! - `auction.host` (each node alone): the operator names an auction contract and the proving
//!   key (by the BLAKE3 hash of its file, `<data_dir>/auction-keys/<hash>.pk`). The node reads
//!   the contract from its own view of the chain and hosts it only if the contract is an
//!   auction of the key's shape, for exactly this cluster's node set, whose verifier holds the
//!   key's verifying key; the key itself is checked against the auction circuit.
//! - Bids: bidders send their signed share packets to the node's bid endpoint (`bid_listen`,
//!   QUIC, the node's certificate pinned, bidders anonymous: a packet is authenticated by the
//!   signature of the address that posted its commitment). The node checks each packet against
//!   the chain (hosted auction, bidding open, signer owns the index) and keeps the shares sealed
//!   in `node.redb`.
//! - `auction.run` (all nodes, after the deadline): the bids from the chain, this node's
//!   stored shares, the MPC and the collaborative proof ([`tacit_auction::node::run_node_with`]).
//!   The result holds the outcome and the proof (snarkjs JSON), public by design; anyone
//!   settles with it ([`settlement`]).
//!
//! The chain is followed through its journal (`[chain] journal`, the embedded EVM's
//! append-only log of transactions, see [`LocalChain::follow_journal`]): each node replays
//! it into its own EVM and reads the contract itself, so no node takes chain data from the
//! operator or another node.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ark_bn254::Fr;
use revm::primitives::Address;
use serde::{Deserialize, Serialize};
use tacit_auction::bidder::Submission;
use tacit_auction::chain;
use tacit_auction::circuit::Shape;
use tacit_auction::node::{check_opened, decode_shares, encode_shares, AuctionKeys, RunOptions};
use tacit_auction::{AuctionError, AuctionKind, Outcome};
use tacit_contracts::{LocalChain, SharedChain};
use tacit_mpc_engine::transport::intake::IntakeRequest;
use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{Engine, Security, SessionId};
use tacit_prover::snarkjs::EvmProof;

use crate::api::JobSpec;
use crate::daemon::Shared;
use crate::error::{NodeError, Result};

/// Where proving keys of hosted auctions are kept, under the data folder.
pub const KEYS_FOLDER: &str = "auction-keys";
/// How long a node waits for a peer's message during a run (proving keeps a node busy).
const RUN_WAIT: Duration = Duration::from_secs(120);

fn auction_err(e: AuctionError) -> NodeError {
    match e {
        AuctionError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) | AuctionError::Transport(t) => {
            NodeError::Transport(t)
        }
        other => NodeError::Other(format!("auction: {other}")),
    }
}

/// This node's view of the chain: an EVM that replays the chain's journal.
#[derive(Debug, Clone)]
pub struct ChainView {
    chain: SharedChain,
    journal: PathBuf,
}

impl ChainView {
    /// A view following the journal at `journal` (which may not exist yet).
    pub fn open(journal: PathBuf) -> Result<Self> {
        let chain = SharedChain::spawn(LocalChain::new).map_err(|e| NodeError::Config(format!("chain: {e}")))?;
        Ok(Self { chain, journal })
    }

    /// Runs `f` on the chain once it has caught up with the journal.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LocalChain) -> std::result::Result<R, AuctionError> + Send + 'static,
    ) -> Result<R> {
        let (chain, journal) = (self.chain.clone(), self.journal.clone());
        tokio::task::spawn_blocking(move || {
            chain.with(move |c| {
                c.follow_journal(&journal)?;
                f(c)
            })
        })
        .await
        .map_err(|e| NodeError::Other(format!("chain: {e}")))?
        .map_err(|e| NodeError::Other(format!("chain: {e}")))?
        .map_err(auction_err)
    }
}

/// An auction this node hosts, as recorded in its store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Hosted {
    kind: String,
    capacity: usize,
    deadline: u64,
    proving_key: String,
}

fn hosted_key(auction: Address) -> String {
    format!("auction.hosted.{auction}")
}

fn share_name(auction: Address, index: u32) -> String {
    format!("auction/{auction}/{index}")
}

fn hosted(shared: &Shared, auction: Address) -> Result<Option<Hosted>> {
    match shared.store.meta(&hosted_key(auction))? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NodeError::Store(format!("hosted auction {auction}: {e}"))),
        None => Ok(None),
    }
}

/// Parses an auction address.
pub fn parse_address(s: &str) -> Result<Address> {
    s.parse().map_err(|_| NodeError::BadRequest(format!("{s}: not an address")))
}

fn view(shared: &Shared) -> Result<&ChainView> {
    shared.chain.as_ref().ok_or_else(|| NodeError::Config("this node follows no chain ([chain] journal)".into()))
}

/// The node set this cluster's auctions name: every party's certificate fingerprint, in
/// party order.
pub fn node_set(shared: &Shared) -> Result<[u8; 32]> {
    let pins = shared.cfg.party_fingerprints()?;
    Ok(chain::node_set_hash(pins.iter().map(|f| f.as_bytes())))
}

/// Keys loaded so far, by proving-key hash.
static KEYS: crate::proving::KeyCache<AuctionKeys> = crate::proving::KeyCache::new();

async fn keys(shared: &Shared, shape: Shape, hash: &str) -> Result<Arc<AuctionKeys>> {
    let cached = KEYS.get(hash);
    if let Some(k) = cached.filter(|k| k.shape == shape) {
        return Ok(k);
    }
    let pk = crate::proving::read_proving_key(&shared.store, &shared.cfg.data_dir(), KEYS_FOLDER, hash).await?;
    let keys = tokio::task::spawn_blocking(move || tacit_auction::node::keys_from_proving_key(shape, pk))
        .await
        .map_err(|e| NodeError::Other(e.to_string()))?
        .map_err(|e| NodeError::Config(format!("auction key {hash}: {e}")))?;
    let keys = Arc::new(keys);
    KEYS.insert(hash, keys.clone());
    Ok(keys)
}

/// `auction.host`: checks the contract and the key, then accepts bids for the auction.
pub async fn host(shared: &Shared, auction: &str, proving_key: &str) -> Result<serde_json::Value> {
    let address = parse_address(auction)?;
    let chain_view = view(shared)?;
    let deployed = chain_view.read(move |c| chain::read_deployed(c, address)).await?;
    let shape = Shape { kind: deployed.params.kind, capacity: deployed.params.capacity };
    shape.validate().map_err(|e| NodeError::BadRequest(e.to_string()))?;
    let keys = keys(shared, shape, proving_key).await?;
    let node_set = node_set(shared)?;
    let vk = keys.pk.vk.clone();
    let checked = deployed.clone();
    chain_view.read(move |c| chain::check_deployed(c, &checked, &vk, node_set)).await?;
    let record = Hosted {
        kind: shape.kind.to_string(),
        capacity: shape.capacity,
        deadline: deployed.params.deadline,
        proving_key: proving_key.to_string(),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| NodeError::Other(e.to_string()))?;
    shared.store.set_meta(&hosted_key(address), &bytes)?;
    shared.store.audit("auction.host", &format!("{address} {} for {} bidders", record.kind, record.capacity))?;
    tracing::info!(target: "tacit::node", auction = %address, kind = %record.kind, capacity = record.capacity, "hosting an auction");
    Ok(serde_json::json!({
        "auction": address.to_string(),
        "kind": record.kind,
        "capacity": record.capacity,
        "deadline": record.deadline,
        "verifier": deployed.verifier.to_string(),
        "bid_endpoint": shared.cfg.file.bid_listen.map(|a| a.to_string()),
    }))
}

/// Answers one bidder's share packet on the bid endpoint.
pub async fn accept_bid(shared: Arc<Shared>, req: IntakeRequest) {
    let (from, started) = (req.from, std::time::Instant::now());
    let answer = store_bid(&shared, &req.payload).await;
    match &answer {
        Ok(()) => shared.metrics.job_finished("auction.bid", "done", started.elapsed().as_secs_f64(), None),
        Err(e) => {
            shared.metrics.job_refused("auction.bid", e.reason_label());
            tracing::info!(target: "tacit::node", %from, "refused a share packet: {e}");
        }
    }
    req.respond(answer.map(|()| b"stored".to_vec()).map_err(|e| e.to_string()));
}

async fn store_bid(shared: &Shared, packet: &[u8]) -> Result<()> {
    // Authenticated and decoded first, so garbage costs no chain read.
    let (opened, signer) = Submission::open(packet).map_err(|e| NodeError::BadRequest(e.to_string()))?;
    let (auction, index) = (opened.auction, opened.index);
    let record = hosted(shared, auction)?
        .ok_or_else(|| NodeError::BadRequest(format!("auction {auction} is not hosted here")))?;
    let deadline = record.deadline;
    let (open, owner) =
        view(shared)?.read(move |c| Ok((c.timestamp() < deadline, chain::read_bidder(c, auction, index)?))).await?;
    let submission = check_opened(opened, signer, shared.cfg.me, auction, open, |_| Ok(owner))
        .map_err(|e| NodeError::BadRequest(e.to_string()))?;
    shared.store.put_secret(&share_name(auction, index), &encode_shares(&submission.shares))?;
    tracing::info!(target: "tacit::node", %auction, bidder = index, "share packet stored");
    Ok(())
}

/// `auction.run`: the MPC and the collaborative proof over the bids on chain and the shares
/// this node holds.
pub async fn run(
    shared: &Shared,
    spec: &JobSpec,
    transport: Arc<QuicTransport>,
    session: SessionId,
) -> Result<serde_json::Value> {
    let JobSpec::AuctionRun { auction, one_round_sbox } = spec else {
        return Err(NodeError::Other("not an auction run".into()));
    };
    let address = parse_address(auction)?;
    let patient = Arc::new(crate::jobs::Patient::new(transport, RUN_WAIT));
    let mut engine = Engine::<Fr, _>::new(patient, shared.cfg.t(), Security::Malicious, session)
        .map_err(|e| NodeError::Other(format!("auction: {e}")))?;
    // A node that cannot take part (auction not hosted, key missing, bidding open) tells the
    // others at once, so they fail naming it instead of waiting for its messages.
    let (keys, bids, mine) = match prepare_run(shared, address).await {
        Ok(v) => v,
        Err(e) => {
            engine.abort_with(tacit_mpc_engine::MpcError::Usage(e.to_string())).await;
            return Err(e);
        }
    };
    let options = RunOptions { one_round_sbox: *one_round_sbox };
    let run = tacit_auction::node::run_node_with(engine, &keys, &bids, mine, options).await.map_err(auction_err)?;
    let proof = serde_json::to_value(tacit_prover::snarkjs::proof_to_snarkjs(&run.proof))
        .map_err(|e| NodeError::Other(e.to_string()))?;
    shared.store.audit(
        "auction.run",
        &format!(
            "{address}: winners {:?}, price {}, excluded {:?}",
            run.outcome.winners, run.outcome.price, run.outcome.excluded
        ),
    )?;
    Ok(serde_json::json!({
        "auction": address.to_string(),
        "bidders": bids.commitments.len(),
        "winners": run.outcome.winners,
        "price": run.outcome.price,
        "excluded": run.outcome.excluded,
        "public": tacit_prover::snarkjs::public_to_snarkjs(&run.public_inputs),
        "proof": proof,
        "mpc_s": run.mpc_s,
        "mpc_rounds": run.mpc_rounds,
        "prove_s": run.prove_s,
    }))
}

/// What a run needs at this node: the keys, the bids on chain (bidding closed) and this
/// node's stored shares of them.
async fn prepare_run(
    shared: &Shared,
    address: Address,
) -> Result<(Arc<AuctionKeys>, chain::OnChainBids, Vec<Option<Vec<Fr>>>)> {
    let record = hosted(shared, address)?
        .ok_or_else(|| NodeError::BadRequest(format!("auction {address} is not hosted here")))?;
    let kind: AuctionKind = record.kind.parse().map_err(|e: AuctionError| NodeError::Store(e.to_string()))?;
    let keys = keys(shared, Shape { kind, capacity: record.capacity }, &record.proving_key).await?;
    let deadline = record.deadline;
    let bids = view(shared)?
        .read(move |c| {
            if c.timestamp() < deadline {
                return Err(AuctionError::Params(format!("bidding is open until chain time {deadline}")));
            }
            chain::read_bids(c, address)
        })
        .await?;
    let mut mine = Vec::with_capacity(bids.commitments.len());
    for index in 0..bids.commitments.len() {
        let index = u32::try_from(index).map_err(|_| NodeError::Other("bidder index overflows".into()))?;
        let shares = match shared.store.get_secret(&share_name(address, index))? {
            Some(bytes) => Some(decode_shares(&bytes).map_err(auction_err)?),
            None => None,
        };
        mine.push(shares);
    }
    let held = mine.iter().filter(|s| s.is_some()).count();
    tracing::info!(target: "tacit::node", auction = %address, bidders = bids.commitments.len(), held, "auction run starts");
    Ok((keys, bids, mine))
}

/// The outcome and the settlement proof in an `auction.run` result (decoded with validation).
pub fn settlement(result: &serde_json::Value) -> Result<(Outcome, EvmProof)> {
    let bad = |what: &str| NodeError::BadRequest(format!("auction result: {what}"));
    let indices = |key: &str| -> Result<Vec<usize>> {
        serde_json::from_value(result.get(key).cloned().unwrap_or_default()).map_err(|_| bad(key))
    };
    let price = result.get("price").and_then(serde_json::Value::as_u64).ok_or_else(|| bad("price"))?;
    let outcome = Outcome { winners: indices("winners")?, price, excluded: indices("excluded")? };
    let proof: tacit_prover::snarkjs::SnarkjsProof =
        serde_json::from_value(result.get("proof").cloned().unwrap_or_default()).map_err(|_| bad("proof"))?;
    let proof = tacit_prover::snarkjs::proof_from_snarkjs(&proof).map_err(|e| bad(&e.to_string()))?;
    let public: Vec<String> =
        serde_json::from_value(result.get("public").cloned().unwrap_or_default()).map_err(|_| bad("public"))?;
    let public = tacit_prover::snarkjs::public_from_snarkjs(&public).map_err(|e| bad(&e.to_string()))?;
    Ok((outcome, EvmProof::new(&proof, &public)))
}

/// A bidder's side: sends packet `i` to node `i + 1`'s bid endpoint (its certificate pinned).
pub async fn submit_bid(nodes: &[crate::client::NodeAddr], packets: &[Vec<u8>], timeout: Duration) -> Result<()> {
    if nodes.len() != packets.len() {
        return Err(NodeError::BadRequest(format!("{} packets for {} nodes", packets.len(), nodes.len())));
    }
    for (node, packet) in nodes.iter().zip(packets) {
        let id = tacit_mpc_engine::PartyId::new(node.id).ok_or_else(|| NodeError::Config("bad node id".into()))?;
        let addr = node.bids.ok_or_else(|| NodeError::Config(format!("node {id} has no bid endpoint")))?;
        tacit_mpc_engine::transport::intake::submit(id, addr, node.fingerprint, packet, 1024, timeout)
            .await
            .map_err(|e| NodeError::Other(format!("node {id}: {e}")))?;
    }
    Ok(())
}
