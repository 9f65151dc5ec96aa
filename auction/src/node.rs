//! The nodes' side: the share store, the submission check, and the protocol run after the
//! deadline (validity inside the MPC, the outcome circuit on shares, the collaborative proof).
//!
//! # What opens
//! - per bidder, whether all nodes hold a packet (a bitmap each node broadcasts);
//! - per bidder, one random combination of its dealt values plus a fresh random mask (the
//!   consistency check of the dealing: reveals nothing about the values);
//! - per bidder, one value that is zero if and only if its dealing is valid (bits are bits,
//!   they recompose the bid, `Poseidon(bid, salt)` is its commitment), multiplied by a fresh
//!   random mask so that an invalid bidder's value reveals nothing either;
//! - the accumulator (public anyway) and the packed outcome (winners and price).
//!
//! No bid, salt or bit opens otherwise. A node that lies about its share in the dealing check
//! can get an honest bidder excluded (with `n = 2t + 1` the nodes cannot tell a bad dealing
//! from a bad node); the exclusion is public, bound by the proof, and the run never yields a
//! wrong outcome over the bidders it kept.

use std::path::Path;
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ff::{AdditiveGroup, BigInteger, Field, One, PrimeField, Zero};
use ark_groth16::{PreparedVerifyingKey, Proof, ProvingKey};
use rand::{CryptoRng, RngCore};
use revm::primitives::Address;
use tacit_circuits::mpc::Mpc;
use tacit_circuits::{Backend, R1cs};
use tacit_mpc_engine::{Engine, PartyId, Shares, Transport};
use tacit_prover::qap::R1csMatrices;

use crate::bidder::{Submission, VALUES_PER_BID};
use crate::chain::OnChainBids;
use crate::circuit::{auction_outcome, unpack, PublicData, Secrets, Shape};
use crate::outcome::BID_BITS;
use crate::{AuctionError, Outcome};

const SHARES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("auction_shares");

fn store_err(e: impl std::fmt::Display) -> AuctionError {
    AuctionError::Store(e.to_string())
}

/// A node's durable store of accepted share packets (an embedded ACID database): a packet
/// accepted before a crash or restart is there after it.
#[derive(Debug)]
pub struct ShareStore {
    db: redb::Database,
}

fn key(auction: Address, index: u32) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..20].copy_from_slice(auction.as_slice());
    k[20..].copy_from_slice(&index.to_be_bytes());
    k
}

impl ShareStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, AuctionError> {
        Ok(Self { db: redb::Database::create(path).map_err(store_err)? })
    }

    /// Stores a packet's shares, replacing an earlier packet of the same bidder.
    pub fn put(&self, s: &Submission) -> Result<(), AuctionError> {
        let mut value = Vec::with_capacity(32 * s.shares.len());
        for x in &s.shares {
            value.extend_from_slice(&x.into_bigint().to_bytes_be());
        }
        let tx = self.db.begin_write().map_err(store_err)?;
        {
            let mut table = tx.open_table(SHARES).map_err(store_err)?;
            table.insert(key(s.auction, s.index).as_slice(), value.as_slice()).map_err(store_err)?;
        }
        tx.commit().map_err(store_err)?;
        Ok(())
    }

    /// This node's shares of bidder `index`, if it has accepted a packet.
    pub fn get(&self, auction: Address, index: u32) -> Result<Option<Vec<Fr>>, AuctionError> {
        let tx = self.db.begin_read().map_err(store_err)?;
        let table = match tx.open_table(SHARES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(store_err(e)),
        };
        let Some(value) = table.get(key(auction, index).as_slice()).map_err(store_err)? else { return Ok(None) };
        let bytes = value.value();
        if bytes.len() != 32 * VALUES_PER_BID {
            return Err(AuctionError::Store("stored shares have the wrong length".into()));
        }
        Ok(Some(bytes.chunks_exact(32).map(Fr::from_be_bytes_mod_order).collect()))
    }

    /// This node's shares of every bidder on chain (`None` where it has no packet).
    pub fn shares_for(&self, bids: &OnChainBids) -> Result<Vec<Option<Vec<Fr>>>, AuctionError> {
        (0..bids.commitments.len())
            .map(|i| self.get(bids.address, u32::try_from(i).map_err(|_| AuctionError::Params("index".into()))?))
            .collect()
    }
}

/// Checks a packet for this node against the chain: decodes and authenticates it (see
/// [`Submission::open`]), and requires it to be for `auction`, for this node, while bidding
/// is open, and signed by the address that posted commitment `index` (`owner_of(index)`).
pub fn check_submission(
    packet: &[u8],
    me: PartyId,
    auction: Address,
    bidding_open: bool,
    owner_of: impl FnOnce(u32) -> Result<Option<Address>, AuctionError>,
) -> Result<Submission, AuctionError> {
    let (s, signer) = Submission::open(packet)?;
    let refuse = |m: String| Err(AuctionError::Submission(m));
    if !bidding_open {
        return refuse("bidding is closed".into());
    }
    if s.auction != auction {
        return refuse(format!("packet for auction {}, not {auction}", s.auction));
    }
    if s.node != me {
        return refuse(format!("packet for {}, not {me}", s.node));
    }
    match owner_of(s.index)? {
        Some(owner) if owner == signer => Ok(s),
        Some(_) => refuse(format!("packet for bidder {} not signed by its address", s.index)),
        None => refuse(format!("no commitment {} on chain", s.index)),
    }
}

/// Proving material for one auction shape (made by the operator at creation).
#[derive(Debug)]
pub struct AuctionKeys {
    /// The circuit's shape.
    pub shape: Shape,
    /// Groth16 proving key.
    pub pk: ProvingKey<Bn254>,
    /// Prepared verifying key.
    pub pvk: PreparedVerifyingKey<Bn254>,
    /// The constraint matrices.
    pub matrices: R1csMatrices,
}

/// Generates the keys of `shape` (a trusted setup by whoever runs it: in production, a
/// ceremony; the demo lets the operator run it).
pub fn setup_keys<R: RngCore + CryptoRng>(shape: Shape, rng: &mut R) -> Result<AuctionKeys, AuctionError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| AuctionError::Prover(e.to_string()))?;
    let mut r1cs = R1cs::<Fr>::new_setup();
    rt.block_on(auction_outcome(&mut r1cs, shape, &PublicData::for_setup(), None))?;
    let cs = r1cs.constraint_system()?;
    let (pk, matrices) =
        tacit_prover::keys::setup_from_cs(&cs, rng).map_err(|e| AuctionError::Prover(e.to_string()))?;
    let pvk = ark_groth16::prepare_verifying_key(&pk.vk);
    Ok(AuctionKeys { shape, pk, pvk, matrices })
}

/// Keys of `shape` from a proving key made earlier (e.g. read from a file): the constraint
/// matrices are rebuilt and checked against the key.
pub fn keys_from_proving_key(shape: Shape, pk: ProvingKey<Bn254>) -> Result<AuctionKeys, AuctionError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| AuctionError::Prover(e.to_string()))?;
    let mut r1cs = R1cs::<Fr>::new_setup();
    rt.block_on(auction_outcome(&mut r1cs, shape, &PublicData::for_setup(), None))?;
    let cs = r1cs.constraint_system()?;
    let matrices = R1csMatrices::from_cs(&cs).map_err(|e| AuctionError::Prover(e.to_string()))?;
    matrices
        .check_proving_key(&pk)
        .map_err(|e| AuctionError::Prover(format!("the key is not for this auction: {e}")))?;
    let pvk = ark_groth16::prepare_verifying_key(&pk.vk);
    Ok(AuctionKeys { shape, pk, pvk, matrices })
}

/// One node's result of a run.
#[derive(Clone, Debug)]
pub struct NodeRun {
    /// The outcome (the same at every node).
    pub outcome: Outcome,
    /// The proof's public inputs: accumulator, packed outcome.
    pub public_inputs: Vec<Fr>,
    /// The collaborative proof (verified before it is returned).
    pub proof: Proof<Bn254>,
    /// Seconds of MPC (validity and outcome).
    pub mpc_s: f64,
    /// Seconds of collaborative proving.
    pub prove_s: f64,
    /// Rounds of MPC.
    pub mpc_rounds: u64,
    /// Bytes this node sent during the MPC.
    pub mpc_bytes: u64,
}

fn to_bytes(values: &[Fr]) -> Vec<u8> {
    values.iter().flat_map(|v| v.into_bigint().to_bytes_be()).collect()
}

/// Runs the auction at one node; every node calls it in the same session with the same
/// chain data and its own stored shares.
pub async fn run_node<T: Transport>(
    mut engine: Engine<Fr, T>,
    keys: &AuctionKeys,
    bids: &OnChainBids,
    my_shares: Vec<Option<Vec<Fr>>>,
) -> Result<NodeRun, AuctionError> {
    let started = Instant::now();
    let (rounds0, bytes0) = (engine.stats().rounds, engine.stats().transport.bytes_sent);
    let m = bids.commitments.len();
    if m > keys.shape.capacity || my_shares.len() != m {
        return Err(AuctionError::Params(format!("{m} bidders for {} slots", keys.shape.capacity)));
    }
    let n = engine.n();
    let t = engine.t();

    // 1. Who has shares everywhere.
    let bitmap: Vec<u8> =
        my_shares.iter().map(|s| u8::from(s.as_ref().is_some_and(|v| v.len() == VALUES_PER_BID))).collect();
    let maps = engine.broadcast_bytes(&bitmap, m).await?;
    let present: Vec<bool> = (0..m).map(|i| maps.iter().all(|map| map.get(i) == Some(&1))).collect();
    let held: Vec<usize> = (0..m).filter(|i| present[*i]).collect();
    let values_of = |i: usize| -> &[Fr] { my_shares.get(i).and_then(|s| s.as_deref()).unwrap_or_default() };

    // 2. Consistency of each dealing: open sum_j rho^j x_ij + r_i.
    let rho = engine.coin().await?;
    let masks = engine.take_randoms(held.len()).await?.into_shares();
    let combos: Vec<Fr> = held
        .iter()
        .zip(masks.expose_shares())
        .map(|(i, r)| {
            let mut power = Fr::one();
            let mut acc = *r;
            for x in values_of(*i) {
                acc += power * x;
                power *= rho;
            }
            acc
        })
        .collect();
    let all = engine.broadcast_bytes(&to_bytes(&combos), 32 * held.len()).await?;
    let shamir = engine.shamir().clone();
    let mut consistent = Vec::with_capacity(held.len());
    for (k, i) in held.iter().enumerate() {
        let points: Option<Vec<Fr>> =
            all.iter().map(|payload| payload.get(32 * k..32 * k + 32).map(Fr::from_be_bytes_mod_order)).collect();
        let ok = points.is_some_and(|p| p.len() == n && shamir.reconstruct_checked(&p, t).is_some());
        if ok {
            consistent.push(*i);
        }
    }

    // 3. Validity of each consistent dealing, one masked value per bidder.
    let bid_shares: Vec<Fr> = consistent.iter().map(|i| values_of(*i).first().copied().unwrap_or_default()).collect();
    let salt_shares: Vec<Fr> = consistent.iter().map(|i| values_of(*i).get(1).copied().unwrap_or_default()).collect();
    let mut mpc = Mpc::new(engine);
    let b = mpc.dealt_inputs(Some(&bid_shares), bid_shares.len())?;
    let s = mpc.dealt_inputs(Some(&salt_shares), salt_shares.len())?;
    let hashes = tacit_circuits::gadgets::commit(&mut mpc, &b, &s).await?;
    let (_, mut engine) = mpc.finish().await?;
    let bits: Vec<Fr> = consistent.iter().flat_map(|i| values_of(*i).iter().skip(2).copied()).collect();
    let bits = Shares::from_raw(bits);
    let bit_products = engine.mul(&bits, &bits.add_scalar(-Fr::one())).await?;
    let gamma = engine.coin().await?;
    let delta = engine.coin().await?;
    let per = BID_BITS as usize;
    let mut combined = Vec::with_capacity(consistent.len());
    for (k, i) in consistent.iter().enumerate() {
        let vals = values_of(*i);
        let mut recomposed = Fr::zero();
        let mut weight = Fr::one();
        for bit in vals.iter().skip(2) {
            recomposed += weight * bit;
            weight.double_in_place();
        }
        let z1 = vals.first().copied().unwrap_or_default() - recomposed;
        let mut z2 = Fr::zero();
        let mut power = Fr::one();
        for p in bit_products.expose_shares().get(k * per..(k + 1) * per).unwrap_or_default() {
            z2 += power * p;
            power *= gamma;
        }
        let commitment = bids.commitments.get(*i).copied().unwrap_or_default();
        let z3 = hashes.get(k).map(|h| h.expose()).unwrap_or_default() - commitment;
        combined.push(z1 + delta * z2 + delta.square() * z3);
    }
    let mask = engine.take_randoms(combined.len()).await?.into_shares();
    let masked = engine.mul(&Shares::from_raw(combined), &mask).await?;
    let opened = engine.open(&masked).await?;
    let mut valid = vec![false; m];
    for (i, v) in consistent.iter().zip(&opened) {
        if v.is_zero() {
            if let Some(slot) = valid.get_mut(*i) {
                *slot = true;
            }
        }
    }

    tracing::info!(
        node = %engine.id(),
        bidders = m,
        valid = valid.iter().filter(|v| **v).count(),
        "submissions checked inside the MPC"
    );

    // 4. The outcome on shares.
    let (vbids, vsalts): (Vec<Fr>, Vec<Fr>) = (0..m)
        .filter(|i| valid[*i])
        .map(|i| (values_of(i).first().copied().unwrap_or_default(), values_of(i).get(1).copied().unwrap_or_default()))
        .unzip();
    let public = PublicData { seed: bids.seed(), commitments: bids.commitments.clone(), valid: valid.clone() };
    let mut mpc = Mpc::new(engine);
    let revealed =
        auction_outcome(&mut mpc, keys.shape, &public, Some(Secrets { bids: &vbids, salts: &vsalts })).await?;
    let (assignment, mut engine) = mpc.finish().await?;
    let expected_acc = public.accumulator()?;
    let (Some(acc), Some(packed)) = (revealed.first(), revealed.get(1)) else {
        return Err(AuctionError::Prover("the circuit revealed too little".into()));
    };
    if *acc != expected_acc {
        return Err(AuctionError::Chain("the accumulator differs from the chain's commitments".into()));
    }
    let (price, winners) = unpack(*packed, keys.shape.kind.units())?;
    let excluded = (0..m).filter(|i| !valid[*i]).collect();
    let outcome = Outcome { winners, price, excluded };
    let mpc_s = started.elapsed().as_secs_f64();
    tracing::info!(node = %engine.id(), winners = ?outcome.winners, price = outcome.price, excluded = ?outcome.excluded, mpc_s, "outcome computed");
    let (mpc_rounds, mpc_bytes) = (engine.stats().rounds - rounds0, engine.stats().transport.bytes_sent - bytes0);

    // 5. The collaborative proof.
    let prove_start = Instant::now();
    let proof = tacit_prover::collaborative::prove(
        &mut engine,
        &keys.pk,
        &keys.pvk,
        &keys.matrices,
        &assignment.instance,
        &assignment.witness,
    )
    .await
    .map_err(|e| match e {
        tacit_prover::collaborative::CollaborativeError::Mpc(e) => AuctionError::Mpc(e),
        other => AuctionError::Prover(other.to_string()),
    })?;
    Ok(NodeRun {
        outcome,
        public_inputs: assignment.instance.clone(),
        proof,
        mpc_s,
        prove_s: prove_start.elapsed().as_secs_f64(),
        mpc_rounds,
        mpc_bytes,
    })
}

/// The single prover on the same circuit, for the baseline the collaborative proof is
/// measured against: one machine that knows every valid bid and salt. Returns the proof and
/// its proving time in seconds (witness generation excluded, like the nodes' `prove_s`).
pub fn prove_single(
    keys: &AuctionKeys,
    public: &PublicData,
    secrets: Secrets<'_>,
) -> Result<(Proof<Bn254>, f64), AuctionError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| AuctionError::Prover(e.to_string()))?;
    let mut r1cs = R1cs::<Fr>::new_prove();
    rt.block_on(auction_outcome(&mut r1cs, keys.shape, public, Some(secrets)))?;
    let z = r1cs.full_assignment()?;
    let start = Instant::now();
    let proof = tacit_prover::qap::prove_single_random(&keys.pk, &keys.matrices, &z, &mut rand::thread_rng())
        .map_err(|e| AuctionError::Prover(e.to_string()))?;
    Ok((proof, start.elapsed().as_secs_f64()))
}
