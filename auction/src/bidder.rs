//! The bidder's side: a secret bid, its on-chain commitment, and one signed share packet per
//! node.
//!
//! A bidder deals, with Shamir's scheme of the cluster's threshold, its bid, its salt and the
//! bid's 64 bits (the bits let the nodes check `bid < 2^64` with one batched multiplication).
//! Each node's packet is signed with the key of the address that posted the commitment, so a
//! node accepts shares for bidder `i` only from bidder `i`; a later packet replaces an earlier
//! one.

use ark_bn254::Fr;
use ark_ff::{BigInteger, PrimeField, UniformRand};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use revm::primitives::{keccak256, Address};
use tacit_mpc_engine::{PartyId, Shamir};
use zeroize::Zeroize;

use crate::outcome::BID_BITS;
use crate::AuctionError;

/// Field elements per packet: bid, salt, and the bid's bits.
pub const VALUES_PER_BID: usize = 2 + BID_BITS as usize;
const MAGIC: &[u8; 4] = b"TBID";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 20 + 4 + 2;
/// Exact size of a share packet.
pub const PACKET_LEN: usize = HEADER + 32 * VALUES_PER_BID + 65;

/// A bid and its salt. Zeroized on drop; `Debug` prints `<redacted>`.
pub struct BidSecret {
    bid: u64,
    salt: Fr,
}

impl std::fmt::Debug for BidSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BidSecret(<redacted>)")
    }
}

impl Drop for BidSecret {
    fn drop(&mut self) {
        self.bid.zeroize();
        self.salt.zeroize();
    }
}

impl BidSecret {
    /// A bid with a fresh random salt.
    pub fn new<R: RngCore + CryptoRng>(bid: u64, rng: &mut R) -> Self {
        Self { bid, salt: Fr::rand(rng) }
    }

    /// A bid with a salt drawn earlier (a bidder dealing its shares again).
    pub fn from_parts(bid: u64, salt: Fr) -> Self {
        Self { bid, salt }
    }

    /// The bid (secret).
    pub fn expose_bid(&self) -> u64 {
        self.bid
    }

    /// The salt (secret).
    pub fn expose_salt(&self) -> Fr {
        self.salt
    }

    /// `Poseidon(bid, salt)`, what the bidder posts on chain.
    pub fn commitment(&self) -> Result<Fr, AuctionError> {
        Ok(tacit_circuits::gadgets::commitment(Fr::from(self.bid), self.salt)?)
    }

    /// The values dealt: bid, salt, then the bid's bits, least significant first.
    pub fn dealt_values(&self) -> Vec<Fr> {
        let mut v = Vec::with_capacity(VALUES_PER_BID);
        v.push(Fr::from(self.bid));
        v.push(self.salt);
        v.extend((0..BID_BITS).map(|i| Fr::from((self.bid >> i) & 1)));
        v
    }
}

/// Shamir shares of `values` for `n` parties at threshold `t`: one vector per party.
pub fn deal<R: RngCore + CryptoRng>(
    values: &[Fr],
    n: usize,
    t: usize,
    rng: &mut R,
) -> Result<Vec<Vec<Fr>>, AuctionError> {
    let shamir = Shamir::<Fr>::new(n, t).map_err(|e| AuctionError::Params(e.to_string()))?;
    let mut per_party = vec![Vec::with_capacity(values.len()); n];
    for v in values {
        for (party, share) in per_party.iter_mut().zip(shamir.share(*v, t, rng)) {
            party.push(share);
        }
    }
    Ok(per_party)
}

/// A bidder's signing key (secp256k1), whose address posts the commitment.
pub struct BidderKey(SigningKey);

impl std::fmt::Debug for BidderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BidderKey({})", self.address())
    }
}

impl BidderKey {
    /// A fresh key.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Self(SigningKey::random(rng))
    }

    /// The key from its 32-byte secret scalar (as [`BidderKey::expose_bytes`] gives it).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuctionError> {
        SigningKey::from_slice(bytes).map(Self).map_err(|_| AuctionError::Params("not a secp256k1 secret key".into()))
    }

    /// The secret scalar, to keep the key (secret).
    pub fn expose_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.0.to_bytes().to_vec())
    }

    /// The EVM address of the key.
    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }
}

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = keccak256(point.as_bytes().get(1..).unwrap_or_default());
    Address::from_slice(hash.get(12..).unwrap_or(&[0u8; 20]))
}

/// One node's share packet of one bid.
#[derive(Clone, PartialEq, Eq)]
pub struct Submission {
    /// The auction contract.
    pub auction: Address,
    /// The bidder's index on chain.
    pub index: u32,
    /// The node this packet is for.
    pub node: PartyId,
    /// This node's shares of the dealt values ([`VALUES_PER_BID`]).
    pub shares: Vec<Fr>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("auction", &self.auction)
            .field("index", &self.index)
            .field("node", &self.node)
            .field("shares", &"<redacted>")
            .finish()
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        self.shares.zeroize();
    }
}

impl Submission {
    fn body(&self) -> Result<Vec<u8>, AuctionError> {
        if self.shares.len() != VALUES_PER_BID {
            return Err(AuctionError::Submission(format!("{} shares, not {VALUES_PER_BID}", self.shares.len())));
        }
        let mut out = Vec::with_capacity(PACKET_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(self.auction.as_slice());
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.node.get().to_be_bytes());
        for s in &self.shares {
            out.extend_from_slice(&s.into_bigint().to_bytes_be());
        }
        Ok(out)
    }

    /// The signed packet.
    pub fn sign(&self, key: &BidderKey) -> Result<Vec<u8>, AuctionError> {
        let mut body = self.body()?;
        let digest = keccak256(&body);
        let (sig, recovery): (Signature, RecoveryId) =
            key.0.sign_prehash_recoverable(digest.as_slice()).map_err(|e| AuctionError::Submission(e.to_string()))?;
        body.extend_from_slice(&sig.to_bytes());
        body.push(recovery.to_byte());
        Ok(body)
    }

    /// Decodes and authenticates a packet: exact length, known version, every share a
    /// canonical field element, signed by the key of the address that holds the index.
    /// Returns the submission and the signer's address.
    pub fn open(packet: &[u8]) -> Result<(Self, Address), AuctionError> {
        let bad = |m: &str| AuctionError::Submission(m.to_string());
        if packet.len() != PACKET_LEN {
            return Err(bad("wrong packet length"));
        }
        let (body, sig) = packet.split_at(PACKET_LEN - 65);
        if body.get(..4) != Some(MAGIC.as_slice()) || body.get(4) != Some(&VERSION) {
            return Err(bad("not a share packet of this version"));
        }
        let auction = Address::from_slice(body.get(5..25).ok_or_else(|| bad("short"))?);
        let index = u32::from_be_bytes(body.get(25..29).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("short"))?);
        let node = u16::from_be_bytes(body.get(29..31).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("short"))?);
        let node = PartyId::new(node).ok_or_else(|| bad("bad node id"))?;
        let mut shares = Vec::with_capacity(VALUES_PER_BID);
        for chunk in body.get(HEADER..).unwrap_or_default().chunks_exact(32) {
            shares.push(canonical_fr(chunk).ok_or_else(|| bad("a share is not a canonical field element"))?);
        }
        let (rs, v) = sig.split_at(64);
        let signature = Signature::from_slice(rs).map_err(|_| bad("malformed signature"))?;
        if signature.normalize_s().is_some() {
            return Err(bad("high-s signature"));
        }
        let recovery =
            RecoveryId::from_byte(v.first().copied().unwrap_or(0xff)).ok_or_else(|| bad("bad recovery id"))?;
        let digest = keccak256(body);
        let key = VerifyingKey::recover_from_prehash(digest.as_slice(), &signature, recovery)
            .map_err(|_| bad("signature does not verify"))?;
        Ok((Self { auction, index, node, shares }, address_of(&key)))
    }
}

/// A 32-byte big-endian word as a field element, if below r.
fn canonical_fr(be: &[u8]) -> Option<Fr> {
    let x = Fr::from_be_bytes_mod_order(be);
    let back = x.into_bigint().to_bytes_be();
    (back.as_slice() == be).then_some(x)
}

/// The signed packets of one bid, one per node (node `i` at position `i - 1`).
pub fn packets<R: RngCore + CryptoRng>(
    key: &BidderKey,
    auction: Address,
    index: usize,
    secret: &BidSecret,
    n: usize,
    t: usize,
    rng: &mut R,
) -> Result<Vec<Vec<u8>>, AuctionError> {
    let index = u32::try_from(index).map_err(|_| AuctionError::Params("bidder index overflows".into()))?;
    let dealt = deal(&secret.dealt_values(), n, t, rng)?;
    PartyId::all(n).zip(dealt).map(|(node, shares)| Submission { auction, index, node, shares }.sign(key)).collect()
}
