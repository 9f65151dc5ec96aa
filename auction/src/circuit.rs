//! The auction outcome as one circuit, run by the `Plain` (oracle), `R1cs` (setup and single
//! prover) and `Mpc` (nodes, on shares) backends.
//!
//! # Public inputs
//! Two, whatever the number of bidders:
//! 1. the **accumulator**: the contract's Poseidon chain `acc_0 = address`, `acc_i =
//!    Poseidon(acc_(i-1), c_i)` over the bidders' commitments in order, continued over the
//!    exclusions: the excluded bidders as a bitmap cut into words of [`WORD_BITS`] bits, each
//!    nonzero word `j` folded as `acc = Poseidon(acc, word_j + (j + 1) 2^240)`. The contract
//!    folds each commitment as it arrives (one Poseidon per bid, paid by the bidder) and, at
//!    settlement, only the nonzero exclusion words (none in the usual case, one per 240
//!    bidders at most);
//! 2. the **packed outcome** `price + sum_j (winner_j + 1) 2^(64 + 17 j)` (see
//!    [`crate::outcome::pack`]), which the contract recomputes from `settle`'s arguments.
//!
//! # Validity is decided inside
//! The nodes' checks before the circuit make a bidder a *candidate* (its dealing reached every
//! node, consistently, with 64 bid bits that are bits and recompose the bid). The circuit
//! deals every candidate's bid, salt and bits, hashes each `(bid, salt)` once, and reveals
//! per candidate only whether the hash equals its on-chain commitment
//! ([`Backend::reveal_is_zero`]); the candidates that pass are the **valid** bidders, whose
//! flags then enter as known inputs. So the commitments are hashed once for both the
//! decision and the proof.
//!
//! # What the proof states
//! Every dealt bid is below `2^64` (its bits are bits and recompose it); for the bidders
//! marked valid, their dealt `(bid, salt)` open their on-chain commitments; the outcome is
//! the reference rule of [`crate::outcome`] over exactly those bids; the excluded set is
//! exactly the one folded into the accumulator. That a bidder marked invalid really was
//! invalid rests on the honest-majority MPC that computed the mark (the proof binds the
//! excluded set, so it is public and contestable, but does not re-check it).
//!
//! # Shape
//! Fixed by [`Shape`] (kind and capacity), so one verifying key serves the whole auction:
//! slots past the number of bidders are inactive and take no part. Per slot about 490
//! constraints for two Poseidon hashes (commitment, accumulator), 64 for the bid bits,
//! and per winner about 70 for its tournament and 2 to find and remove it; the second or
//! `(k+1)`-th price is the last tournament's second maximum (1 more per slot).

use ark_bn254::Fr;
use ark_ff::{AdditiveGroup, One, Zero};
use tacit_circuits::backend::{Backend, CircuitError, Result};
use tacit_circuits::gadgets::{argmax_one_hot, commit, less_than, not, poseidon_hash, select, top_two_one_hot};

use crate::outcome::{AuctionKind, BID_BITS, MAX_BIDDERS, WINNER_BITS};

/// Slots per exclusion word.
pub const WORD_BITS: usize = 240;

/// What is folded for exclusion word `j` holding bitmap `word`: `word + (j + 1) 2^240`, which
/// neither another word nor (but with negligible probability) a commitment can equal.
pub fn exclusion_word_tag(j: usize) -> Fr {
    let two_120 = Fr::from(1u128 << 120);
    Fr::from(j as u64 + 1) * two_120 * two_120
}

/// The exclusion words of a validity list: `(j, word_j)` for each nonzero word.
pub fn exclusion_words(valid: &[bool]) -> Vec<(usize, Fr)> {
    valid
        .chunks(WORD_BITS)
        .enumerate()
        .filter_map(|(j, chunk)| {
            let mut word = Fr::zero();
            let mut weight = Fr::one();
            let mut any = false;
            for v in chunk {
                if !v {
                    word += weight;
                    any = true;
                }
                weight += weight;
            }
            any.then_some((j, word))
        })
        .collect()
}

/// Bits of the effective bids compared in tournaments (`valid * (bid + 1)` is at most `2^64`).
const RANK_BITS: u32 = BID_BITS + 1;
/// Bits of the count of valid bidders compared with winner ranks.
const INDEX_BITS: u32 = 16;

/// What fixes the circuit: one verifying key per shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The auction kind.
    pub kind: AuctionKind,
    /// Bidder slots.
    pub capacity: usize,
}

impl Shape {
    /// Checks the shape.
    pub fn validate(&self) -> std::result::Result<(), crate::AuctionError> {
        self.kind.validate()?;
        if self.capacity == 0 || self.capacity > MAX_BIDDERS {
            return Err(crate::AuctionError::Params(format!("capacity must be in 1..={MAX_BIDDERS}")));
        }
        Ok(())
    }
}

/// What every node knows before the circuit: the chain's data and the candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicData {
    /// The accumulator's start (the contract's address as a field element).
    pub seed: Fr,
    /// The bidders' commitments, in on-chain order (at most the capacity).
    pub commitments: Vec<Fr>,
    /// Per bidder, whether it is a candidate: its dealing passed the nodes' checks before the
    /// circuit (present everywhere, consistent, well-formed bid bits). The circuit keeps the
    /// candidates whose bid and salt open their commitment.
    pub candidates: Vec<bool>,
}

impl PublicData {
    /// Empty public data: setup depends only on the shape.
    pub fn for_setup() -> Self {
        Self { seed: Fr::zero(), commitments: Vec::new(), candidates: Vec::new() }
    }
}

/// The accumulator the contract computes: the commitment chain from `seed`, then the words of
/// the bidders not in `valid`.
pub fn accumulator(seed: Fr, commitments: &[Fr], valid: &[bool]) -> Result<Fr> {
    let mut acc = seed;
    for c in commitments {
        acc = tacit_circuits::gadgets::poseidon_reference(&[acc, *c])?;
    }
    for (j, word) in exclusion_words(valid) {
        acc = tacit_circuits::gadgets::poseidon_reference(&[acc, word + exclusion_word_tag(j)])?;
    }
    Ok(acc)
}

/// The secret inputs of the candidates, in bidder order: values (`Plain`, `R1cs` prove mode)
/// or this node's shares (`Mpc`); `None` in `R1cs` setup mode.
#[derive(Clone, Copy, Debug)]
pub struct Secrets<'a> {
    /// Bids of the candidates.
    pub bids: &'a [Fr],
    /// Salts of the candidates.
    pub salts: &'a [Fr],
    /// Bid bits, [`BID_BITS`] per candidate, least significant first: this node's shares of
    /// the dealt bits in `Mpc`; `None` where the values are known, and the circuit
    /// decomposes the bids itself.
    pub bits: Option<&'a [Fr]>,
}

/// What the circuit reveals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revealed {
    /// The proof's public inputs: `[accumulator, packed outcome]`.
    pub public_inputs: Vec<Fr>,
    /// Per bidder, whether it was valid (a candidate whose dealing opens its commitment).
    pub valid: Vec<bool>,
}

fn bool_fr(b: bool) -> Fr {
    if b {
        Fr::one()
    } else {
        Fr::zero()
    }
}

/// The one element of a batch of one.
fn only<V>(v: Vec<V>) -> Result<V> {
    v.into_iter().next().ok_or_else(|| CircuitError::Synthesis("empty batch result".into()))
}

/// Runs the auction circuit: decides which candidates are valid and computes the outcome
/// over them.
pub async fn auction_outcome<B: Backend<F = Fr>>(
    b: &mut B,
    shape: Shape,
    public: &PublicData,
    secrets: Option<Secrets<'_>>,
) -> Result<Revealed> {
    shape.validate().map_err(|e| CircuitError::Usage(e.to_string()))?;
    let cap = shape.capacity;
    let bidders = public.commitments.len();
    if bidders > cap || public.candidates.len() != bidders {
        return Err(CircuitError::Usage(format!(
            "{bidders} commitments and {} candidate marks for {cap} slots",
            public.candidates.len()
        )));
    }
    let per = BID_BITS as usize;
    let candidate_count = public.candidates.iter().filter(|v| **v).count();
    let decomposed;
    let secrets = match secrets {
        Some(s) => {
            if s.bids.len() != candidate_count || s.salts.len() != candidate_count {
                return Err(CircuitError::Usage("secrets must cover exactly the candidates".into()));
            }
            let bits = match s.bits {
                Some(bits) if bits.len() == per * candidate_count => bits,
                Some(_) => return Err(CircuitError::Usage(format!("{per} bid bits per candidate"))),
                None => {
                    decomposed = bid_bits(s.bids)?;
                    &decomposed
                }
            };
            Some((s.bids, s.salts, bits))
        }
        None => None,
    };

    // Known per-slot data: seed, active flags, commitments.
    let is_candidate = |i: usize| public.candidates.get(i).copied().unwrap_or(false);
    let active: Vec<Fr> = (0..cap).map(|i| bool_fr(i < bidders)).collect();
    let commitments: Vec<Fr> = (0..cap).map(|i| public.commitments.get(i).copied().unwrap_or_default()).collect();
    let seed = b.known_inputs(&[public.seed])?;
    let active = b.known_inputs(&active)?;
    let commitments = b.known_inputs(&commitments)?;

    // Bids, salts and bid bits: dealt for candidates, zero elsewhere (one witness variable
    // each).
    let mut next = 0usize;
    let mut bids = Vec::with_capacity(cap);
    let mut salts = Vec::with_capacity(cap);
    let mut bits = Vec::with_capacity(cap * per);
    for i in 0..cap {
        if is_candidate(i) {
            let j = next;
            next += 1;
            let bid = secrets.and_then(|(v, _, _)| v.get(j));
            let salt = secrets.and_then(|(_, v, _)| v.get(j));
            let bid_bits = secrets.and_then(|(_, _, v)| v.get(j * per..(j + 1) * per));
            bids.extend(b.dealt_inputs(bid.map(std::slice::from_ref), 1)?);
            salts.extend(b.dealt_inputs(salt.map(std::slice::from_ref), 1)?);
            bits.extend(b.dealt_inputs(bid_bits, per)?);
        } else {
            bids.extend(b.known_inputs(&[Fr::zero()])?);
            salts.extend(b.known_inputs(&[Fr::zero()])?);
            bits.extend(b.known_inputs(&vec![Fr::zero(); per])?);
        }
    }

    // Every bid is below 2^64: its bits are bits and recompose it.
    b.assert_bits(&bits).await?;
    let recomposition: Vec<B::Value> = bids
        .iter()
        .zip(bits.chunks(per))
        .map(|(bid, bits)| {
            let mut sum = b.constant(Fr::zero());
            let mut weight = Fr::one();
            for bit in bits {
                sum = b.add(&sum, &b.scale(bit, weight));
                weight.double_in_place();
            }
            b.sub(bid, &sum)
        })
        .collect();
    b.assert_zero(&recomposition)?;

    // Each commitment hashed once: the candidates whose hash matches are the valid bidders
    // (only that opens), and valid slots are then constrained to match.
    let hashes = commit(b, &bids, &salts).await?;
    let mismatch: Vec<B::Value> = hashes.iter().zip(&commitments).map(|(h, c)| b.sub(h, c)).collect();
    let candidate_mismatch: Vec<B::Value> =
        mismatch.iter().enumerate().filter(|(i, _)| is_candidate(*i)).map(|(_, m)| m.clone()).collect();
    let mut matched = b.reveal_is_zero(&candidate_mismatch).await?.into_iter();
    let valid_flags: Vec<bool> = (0..bidders).map(|i| is_candidate(i) && matched.next().unwrap_or(false)).collect();
    let valid: Vec<Fr> = (0..cap).map(|i| bool_fr(valid_flags.get(i).copied().unwrap_or(false))).collect();
    let valid = b.known_inputs(&valid)?;

    // Flags are bits, and only active slots can be valid.
    let one = b.constant(Fr::one());
    let flags: Vec<B::Value> = active.iter().chain(&valid).cloned().collect();
    let squares = b.mul(&flags, &flags).await?;
    let diffs: Vec<B::Value> = squares.iter().zip(&flags).map(|(s, f)| b.sub(s, f)).collect();
    b.assert_zero(&diffs)?;
    let inactive: Vec<B::Value> = active.iter().map(|a| b.sub(&one, a)).collect();
    let valid_but_inactive = b.mul(&valid, &inactive).await?;
    b.assert_zero(&valid_but_inactive)?;

    let masked_mismatch = b.mul(&valid, &mismatch).await?;
    b.assert_zero(&masked_mismatch)?;
    let valid_bids = b.mul(&valid, &bids).await?;
    // Effective bid: bid + 1 for valid slots, 0 otherwise, so any valid bid beats an empty slot.
    let mut effective: Vec<B::Value> = valid_bids.iter().zip(&valid).map(|(vb, v)| b.add(vb, v)).collect();

    // The accumulator: commitments of active slots, then excluded slots' indices.
    let mut acc = seed.into_iter().next().ok_or_else(|| CircuitError::Synthesis("no seed".into()))?;
    for (c, a) in commitments.iter().zip(&active) {
        let next = poseidon_hash(b, &[vec![acc.clone(), c.clone()]]).await?;
        acc = select(b, std::slice::from_ref(a), &next, std::slice::from_ref(&acc)).await.and_then(only)?;
    }
    // Exclusion words: linear in the (known) flags; folded when nonzero.
    let excluded: Vec<B::Value> = active.iter().zip(&valid).map(|(a, v)| b.sub(a, v)).collect();
    for (j, chunk) in excluded.chunks(WORD_BITS).enumerate() {
        let mut word = b.constant(Fr::zero());
        let mut weight = Fr::one();
        for x in chunk {
            word = b.add(&word, &b.scale(x, weight));
            weight += weight;
        }
        let empty = b.is_zero(std::slice::from_ref(&word)).await.and_then(only)?;
        let tagged = b.add_constant(&word, exclusion_word_tag(j));
        let next = poseidon_hash(b, &[vec![acc.clone(), tagged]]).await?;
        acc = select(b, &[empty], std::slice::from_ref(&acc), &next).await.and_then(only)?;
    }
    let acc_out = b.reveal(&[acc]).await?;

    // Winners by repeated argmax, each removed before the next.
    let units = shape.kind.units();
    let mut winner_codes = Vec::with_capacity(units);
    // Whether a j-th ranked valid bidder exists is public (the valid flags are): [j < count],
    // computed on known values, so no round in Mpc.
    let count = b.sum(&valid);
    let ranks: Vec<B::Value> = (0..=units).map(|j| b.constant(Fr::from(j as u64))).collect();
    let present = less_than(b, &ranks, &vec![count; units + 1], INDEX_BITS + 1).await?;
    // The price is the largest effective bid left after the winners: the second maximum of
    // the last winner's tournament, except in first price (the winner's own bid).
    let mut price_top = None;
    for (j, present_j) in present.iter().take(units).enumerate() {
        let last = j + 1 == units;
        let top = if last && shape.kind != AuctionKind::FirstPrice {
            top_two_one_hot(b, std::slice::from_ref(&effective), RANK_BITS).await.and_then(only)?
        } else {
            argmax_one_hot(b, std::slice::from_ref(&effective), RANK_BITS).await.and_then(only)?
        };
        let index = top
            .one_hot
            .iter()
            .enumerate()
            .fold(b.constant(Fr::zero()), |acc, (i, h)| b.add(&acc, &b.scale(h, Fr::from(i as u64))));
        // With no valid bidder left the maximum is an empty slot: no winner here.
        let code = b.mul(std::slice::from_ref(present_j), &[b.add_constant(&index, Fr::one())]).await?;
        winner_codes.extend(code);
        if last {
            price_top = match shape.kind {
                AuctionKind::FirstPrice => Some(top.max),
                AuctionKind::Vickrey | AuctionKind::Uniform { .. } => top.second,
            };
            break;
        }
        // Remove the winner.
        let keep = not(b, &top.one_hot);
        effective = b.mul(&keep, &effective).await?;
    }
    let missing = || CircuitError::Synthesis("no price".into());
    let price_top = price_top.ok_or_else(missing)?;
    let price_rank = if shape.kind == AuctionKind::FirstPrice { 0 } else { units };
    let price_present = present.get(price_rank).cloned().ok_or_else(missing)?;
    let price = b.sub(&price_top, &price_present);

    let mut packed = price;
    let mut weight = Fr::from(1u128 << BID_BITS);
    for code in &winner_codes {
        packed = b.add(&packed, &b.scale(code, weight));
        weight *= Fr::from(1u64 << WINNER_BITS);
    }
    let packed_out = b.reveal(&[packed]).await?;
    Ok(Revealed { public_inputs: acc_out.into_iter().chain(packed_out).collect(), valid: valid_flags })
}

/// The [`BID_BITS`] bits of each bid, least significant first (fails for a bid not below
/// `2^64`).
pub fn bid_bits(bids: &[Fr]) -> Result<Vec<Fr>> {
    let mut out = Vec::with_capacity(bids.len() * BID_BITS as usize);
    for bid in bids {
        out.extend(tacit_circuits::plain::small_bits(*bid, BID_BITS)?.into_iter().map(bool_fr));
    }
    Ok(out)
}

/// Decodes the packed outcome into `(price, winners)` (winner slots holding 0 are empty).
pub fn unpack(packed: Fr, units: usize) -> std::result::Result<(u64, Vec<usize>), crate::AuctionError> {
    use ark_ff::{BigInteger, PrimeField};
    let bits = packed.into_bigint().to_bits_le();
    let read = |from: usize, len: usize| -> u64 {
        bits.iter().skip(from).take(len).enumerate().fold(0u64, |acc, (i, b)| acc | (u64::from(*b) << i))
    };
    let used = BID_BITS as usize + units * WINNER_BITS as usize;
    if bits.iter().skip(used).any(|b| *b) {
        return Err(crate::AuctionError::Params("packed outcome has bits past the last winner".into()));
    }
    let price = read(0, BID_BITS as usize);
    let mut winners = Vec::new();
    for j in 0..units {
        let code = read(BID_BITS as usize + j * WINNER_BITS as usize, WINNER_BITS as usize);
        if code > 0 {
            winners.push((code - 1) as usize);
        }
    }
    Ok((price, winners))
}
