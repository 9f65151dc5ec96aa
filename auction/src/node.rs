//! The nodes' side: the share store, the submission check, and the protocol run after the
//! deadline (validity and outcome inside the MPC, the collaborative proof).
//!
//! # What opens
//! - per bidder, whether all nodes hold a packet (a bitmap each node broadcasts);
//! - per bidder, one random combination of its dealt values plus a fresh random mask (the
//!   consistency check of the dealing: reveals nothing about the values);
//! - per bidder, one value that is zero if and only if its 64 bid bits are bits and recompose
//!   the bid, multiplied by a fresh random mask so that a malformed dealing reveals nothing
//!   either; the bidders that pass are the circuit's candidates;
//! - inside the circuit, per candidate, whether `Poseidon(bid, salt)` is its commitment (the
//!   difference times a fresh random mask): the candidates that pass are the valid bidders,
//!   and the hash is computed once for this check and the proof;
//! - the accumulator (public anyway) and the packed outcome (winners and price).
//!
//! No bid, salt or bit opens otherwise. A node that lies about its share in the dealing check
//! can get an honest bidder excluded (with `n = 2t + 1` the nodes cannot tell a bad dealing
//! from a bad node); the exclusion is public, bound by the proof, and the run never yields a
//! wrong outcome over the bidders it kept.

use std::path::Path;
use std::time::Instant;

use ark_bn254::{Bn254, Fr};
use ark_ff::{AdditiveGroup, BigInteger, One, PrimeField, Zero};
use ark_groth16::{PreparedVerifyingKey, Proof, ProvingKey};
use rand::{CryptoRng, RngCore};
use revm::primitives::Address;
use tacit_circuits::mpc::Mpc;
use tacit_circuits::R1cs;
use tacit_mpc_engine::{Engine, PartyId, Shares, Transport};
use tacit_prover::qap::R1csMatrices;

use crate::bidder::{Submission, VALUES_PER_BID};
use crate::chain::OnChainBids;
use crate::circuit::{accumulator, auction_outcome, unpack, PublicData, Secrets, Shape};
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
        let value = encode_shares(&s.shares);
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
        decode_shares(value.value()).map(Some)
    }

    /// This node's shares of every bidder on chain (`None` where it has no packet).
    pub fn shares_for(&self, bids: &OnChainBids) -> Result<Vec<Option<Vec<Fr>>>, AuctionError> {
        (0..bids.commitments.len())
            .map(|i| self.get(bids.address, u32::try_from(i).map_err(|_| AuctionError::Params("index".into()))?))
            .collect()
    }
}

/// A bidder's shares as stored: [`VALUES_PER_BID`] big-endian words.
pub fn encode_shares(shares: &[Fr]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut value = zeroize::Zeroizing::new(Vec::with_capacity(32 * shares.len()));
    for x in shares {
        value.extend_from_slice(&x.into_bigint().to_bytes_be());
    }
    value
}

/// Reads shares written by [`encode_shares`].
pub fn decode_shares(bytes: &[u8]) -> Result<Vec<Fr>, AuctionError> {
    if bytes.len() != 32 * VALUES_PER_BID {
        return Err(AuctionError::Store("stored shares have the wrong length".into()));
    }
    Ok(bytes.chunks_exact(32).map(Fr::from_be_bytes_mod_order).collect())
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
    check_opened(s, signer, me, auction, bidding_open, owner_of)
}

/// [`check_submission`] for a packet already opened by [`Submission::open`] (a node that
/// must read the packet's auction before it can tell whether bidding is open), so its
/// signature is recovered once.
pub fn check_opened(
    s: Submission,
    signer: Address,
    me: PartyId,
    auction: Address,
    bidding_open: bool,
    owner_of: impl FnOnce(u32) -> Result<Option<Address>, AuctionError>,
) -> Result<Submission, AuctionError> {
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

/// How the nodes run the MPC (every node must use the same options).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// The Poseidon S-box in one round instead of three ([`Mpc::one_round_sbox`]): fewer
    /// rounds for more computation, for nodes far apart.
    pub one_round_sbox: bool,
}

/// Runs the auction at one node; every node calls it in the same session with the same
/// chain data and its own stored shares.
pub async fn run_node<T: Transport>(
    engine: Engine<Fr, T>,
    keys: &AuctionKeys,
    bids: &OnChainBids,
    my_shares: Vec<Option<Vec<Fr>>>,
) -> Result<NodeRun, AuctionError> {
    run_node_with(engine, keys, bids, my_shares, RunOptions::default()).await
}

/// [`run_node`] with options.
pub async fn run_node_with<T: Transport>(
    mut engine: Engine<Fr, T>,
    keys: &AuctionKeys,
    bids: &OnChainBids,
    my_shares: Vec<Option<Vec<Fr>>>,
    options: RunOptions,
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

    // 3. Well-formed bid bits, one masked value per bidder: zero if and only if its 64 bits
    //    are bits (a random combination of b(b - 1), one inner product per bidder) and
    //    recompose its bid. The commitment is checked inside the circuit.
    let gamma = engine.coin().await?;
    let delta = engine.coin().await?;
    let per = BID_BITS as usize;
    let mut weighted_bits = Vec::with_capacity(consistent.len());
    let mut shifted_bits = Vec::with_capacity(consistent.len());
    let mut recomposition = Vec::with_capacity(consistent.len());
    for i in &consistent {
        let vals = values_of(*i);
        let bits = vals.get(2..2 + per).unwrap_or_default();
        let mut weighted = Vec::with_capacity(per);
        let mut recomposed = Fr::zero();
        let (mut power, mut weight) = (gamma, Fr::one());
        for bit in bits {
            weighted.push(power * bit);
            recomposed += weight * bit;
            power *= gamma;
            weight.double_in_place();
        }
        weighted_bits.push(Shares::from_raw(weighted));
        shifted_bits.push(Shares::from_raw(bits.iter().map(|b| *b - Fr::one()).collect()));
        recomposition.push(vals.first().copied().unwrap_or_default() - recomposed);
    }
    let pairs: Vec<(&Shares<Fr>, &Shares<Fr>)> = weighted_bits.iter().zip(&shifted_bits).collect();
    let not_bits = engine.inner_products(&pairs).await?;
    let combined: Vec<Fr> =
        recomposition.iter().zip(not_bits.expose_shares()).map(|(z1, z2)| *z1 + delta * z2).collect();
    let mask = engine.take_randoms(combined.len()).await?.into_shares();
    let masked = engine.mul(&Shares::from_raw(combined), &mask).await?;
    let opened = engine.open(&masked).await?;
    let mut candidates = vec![false; m];
    for (i, v) in consistent.iter().zip(&opened) {
        if v.is_zero() {
            if let Some(slot) = candidates.get_mut(*i) {
                *slot = true;
            }
        }
    }

    // 4. The circuit on shares: commitments checked (valid bidders decided), then the outcome.
    let checks_s = started.elapsed().as_secs_f64();
    let chosen: Vec<usize> = (0..m).filter(|i| candidates.get(*i) == Some(&true)).collect();
    let values_at = |range: std::ops::Range<usize>| -> Vec<Fr> {
        chosen.iter().flat_map(|i| values_of(*i).get(range.clone()).unwrap_or_default().to_vec()).collect()
    };
    let (cbids, csalts, cbits) = (values_at(0..1), values_at(1..2), values_at(2..2 + per));
    let public = PublicData { seed: bids.seed(), commitments: bids.commitments.clone(), candidates };
    let mut mpc = Mpc::new(engine).one_round_sbox(options.one_round_sbox);
    let secrets = Secrets { bids: &cbids, salts: &csalts, bits: Some(&cbits) };
    let circuit_started = Instant::now();
    let revealed = auction_outcome(&mut mpc, keys.shape, &public, Some(secrets)).await?;
    let circuit_s = circuit_started.elapsed().as_secs_f64();
    let (assignment, mut engine) = mpc.finish().await?;
    let valid = revealed.valid;
    // Where the MPC's time goes: the checks before the circuit, the circuit on shares, and the
    // final verification of its products (`finish`).
    tracing::info!(
        node = %engine.id(),
        bidders = m,
        valid = valid.iter().filter(|v| **v).count(),
        checks_s,
        circuit_s,
        verify_s = circuit_started.elapsed().as_secs_f64() - circuit_s,
        "submissions checked inside the MPC"
    );
    let expected_acc = accumulator(public.seed, &public.commitments, &valid)?;
    let (Some(acc), Some(packed)) = (revealed.public_inputs.first(), revealed.public_inputs.get(1)) else {
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
    .await?;
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
