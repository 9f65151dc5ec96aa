//! The PSI query: node side, institution side, and an in-process runner.
//!
//! Steps (see psi/README.md for what each party learns):
//! 1. **Key.** The nodes generate a fresh OPRF key `k`, Shamir-shared over secp256k1's scalar
//!    field, by a Feldman-verifiable DKG (the signer's [`tacit_signer::dkg::dkg`]), so every
//!    node's public key share `K_i = k_i·G` follows from the dealers' commitments and a
//!    cheating dealer is named.
//! 2. **Tags.** Each institution runs the threshold DH-OPRF (`oprf`) on its distinct items
//!    and gets `tag(x) = blake3(k·H(x))`; the nodes see only blinded points. Each node sends
//!    the table of all `K_i`, its own `K_i` and a batched DLEQ proof with its answers: the
//!    institution takes the table most nodes sent, so a wrong table, `K_i` or answer names
//!    the node.
//! 3. **Input.** Each institution secret-shares its tags (and in `sum` mode its values) to
//!    the nodes: the nodes open a random sharing `[r]` to it, it sends `x - r` to every node,
//!    and the nodes check by a broadcast digest that they all got the same vector.
//! 4. **Shuffle.** The rows `(tag, code, value)` of all institutions (`code` = `(m+1)^c` for
//!    institution `c`, set by the nodes) are shuffled obliviously: for every `t+1`-subset `S`
//!    of the first `2t+1` nodes, the members of `S` agree on a permutation (a seed one of them
//!    inputs and opens to the others), convert their shares to additive shares of `S`, permute
//!    them and re-share them with `input`. Every coalition of `t` nodes misses some subset, so
//!    the composed permutation is unknown to it. A multiset check with random challenges
//!    (`∏(γ - w_in) = ∏(γ - w_out)`, `w = tag + δ1·code + δ2·value`, verified multiplication
//!    trees, the difference opened times a random mask) catches any deviation.
//! 5. **Match.** The shuffled tags are opened. A tag seen `s` times is in `s` sets; more than
//!    `m` means an institution sent a tag twice (abort). The groups with `s >= q` are selected
//!    (`q = m` except in [`Mode::SetAtLeast`]). For the `m`-groups, the codes must add up to
//!    `Σ_c (m+1)^c` (one opened random linear combination); in a smaller selected group the
//!    codes must be pairwise distinct (the product of their differences, times a random mask,
//!    opened after verification, is nonzero). So each selected group has one row from each
//!    of `s` different institutions.
//! 6. **Output.** `set`: the list of the selected tags goes to every institution, which maps
//!    it to its own items. `cardinality`: the count. `sum`: the sum of the values of all
//!    rows in `m`-groups, opened only when the count is at least the minimum.

use std::sync::Arc;

use ark_bn254::Fr;
use ark_ff::{Field, One, PrimeField, UniformRand, Zero};
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;
use tacit_mpc_engine::engine::add_assign;
use tacit_mpc_engine::field::low_u128;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{
    Check, Culprit, Engine, MpcError, PartyId, Security, SessionId, Shamir, Shares, Transport, WireField,
};
use tacit_signer::dkg::DkgFaults;
use tacit_signer::keys::KeyShare;
use tacit_signer::SignerError;
use zeroize::{Zeroize, Zeroizing};

use crate::committed::CommittedInput;
use crate::input::{InputSet, Item};
use crate::link::{Link, LinkError};
use crate::oprf::{self, OprfError, Tag};

/// Largest number of items one institution may submit (a node refuses more).
pub const MAX_ITEMS: usize = 1 << 22;

/// Values are below `2^VALUE_BITS`: in `sum` mode the values that enter the sum are
/// range-checked before it is released.
pub const VALUE_BITS: u32 = 64;

/// Shared field elements per value in an institution's input: one in `sum` mode and in a
/// committed `cardinality` query (where the value only enters its commitment), none otherwise.
fn value_width(mode: Mode, committed: bool) -> usize {
    usize::from(mode.with_values() || committed)
}

const BLINDED: u8 = 1;
const EVALUATED: u8 = 2;
const MASK_SHARES: u8 = 3;
const MASKED: u8 = 4;
const OUTPUT: u8 = 5;
const SIZE: u8 = 6;
const KEY_SHARES: u8 = 7;
/// A proven query: an institution's published commitment to its list (`D`, `P`).
const COMMITMENT: u8 = 8;
/// A proven query: the proof of the result.
const PROOF: u8 = 9;

/// What a query computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Each institution learns which of its own items are in every set.
    Set,
    /// Each institution learns which of its own items are in at least `min_sets` of the `m`
    /// sets (`2 <= min_sets <= m`; `min_sets = m` is [`Mode::Set`]).
    SetAtLeast {
        /// `q`: how many institutions' sets an item must be in.
        min_sets: usize,
    },
    /// Only the size of the intersection.
    Cardinality,
    /// The sum of the values attached to intersecting items (over all institutions), only if
    /// the intersection has at least `min_size` items.
    Sum {
        /// Release threshold on the intersection size.
        min_size: u64,
    },
}

impl Mode {
    fn with_values(self) -> bool {
        matches!(self, Mode::Sum { .. })
    }

    /// Whether institutions learn which of their items are selected (`set` modes).
    pub fn is_set(self) -> bool {
        matches!(self, Mode::Set | Mode::SetAtLeast { .. })
    }

    /// `q`: the number of sets an item must be in to count, for `m` institutions; an error
    /// unless `2 <= q <= m`.
    pub fn min_sets(self, m: usize) -> Result<usize, PsiError> {
        match self {
            Mode::SetAtLeast { min_sets } if !(2..=m).contains(&min_sets) => {
                Err(PsiError::Usage(format!("an item must be in at least 2 and at most {m} sets, not {min_sets}")))
            }
            Mode::SetAtLeast { min_sets } => Ok(min_sets),
            _ => Ok(m),
        }
    }

    /// Short name (`set`, `cardinality`, `sum`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Set | Mode::SetAtLeast { .. } => "set",
            Mode::Cardinality => "cardinality",
            Mode::Sum { .. } => "sum",
        }
    }
}

/// What one institution learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PsiOutput {
    /// Its own items that are in every set (in at least `q` sets for [`Mode::SetAtLeast`]).
    Set(Vec<Item>),
    /// The intersection size.
    Cardinality(u64),
    /// The intersection sum, or `None` when the intersection is below the minimum size.
    Sum(Option<u128>),
}

/// PSI failures.
#[derive(Debug, thiserror::Error)]
pub enum PsiError {
    /// The MPC engine aborted (network failure, or a detected cheat naming its culprit).
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// The OPRF failed (a node's response is inconsistent, or a point is invalid).
    #[error(transparent)]
    Oprf(#[from] OprfError),
    /// A client–node link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The OPRF key generation named a node that cheated as a dealer (dealt a share off its
    /// committed polynomial and could not publish a valid one, revealed commitments other
    /// than those it committed to, sent a malformed or replayed deal).
    #[error("key generation: {dealer} cheated: {reason}")]
    Dealer {
        /// The dealer.
        dealer: PartyId,
        /// What it did.
        reason: String,
    },
    /// The OPRF key generation failed without naming a node (e.g. a degenerate key).
    #[error("key generation: {0}")]
    KeyGeneration(String),
    /// An institution misbehaved or sent something invalid.
    #[error("institution {institution}: {reason}")]
    Institution {
        /// 0-based index.
        institution: usize,
        /// What it did.
        reason: String,
    },
    /// An institution's shared input does not open its published commitment; the query
    /// aborts before anything else is opened.
    #[error("institution {institution}: input does not match its published commitment")]
    Commitment {
        /// 0-based index.
        institution: usize,
    },
    /// Some institution sent one tag twice (which one stays hidden behind the shuffle); the
    /// query aborts.
    #[error("an institution sent a duplicate tag: {0}")]
    DuplicateTag(String),
    /// Nodes gave an institution different results or inconsistent shares.
    #[error("nodes disagree: {reason}; culprit: {culprit}")]
    Nodes {
        /// What was seen.
        reason: String,
        /// Who.
        culprit: Culprit,
    },
    /// An institution's `sum`-mode input holds a value, of an item in the intersection, that
    /// is not below 2^64; the query aborts before the sum is released.
    #[error("institution {institution}: a value is not below 2^64")]
    ValueOutOfRange {
        /// 0-based index.
        institution: usize,
    },
    /// Bad parameters.
    #[error("invalid request: {0}")]
    Usage(String),
}

/// Deviations a test can make one node commit.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cheat {
    /// Deals the next node a share off its committed polynomial in the key generation.
    KeyDeal,
    /// Sends institutions a table of public key shares with the next node's entry changed.
    KeyTable,
    /// Publishes `K_i + G` and answers the OPRF consistently with it (its proof verifies).
    KeyShare,
    /// Answers the OPRF with a wrong key share (publishing its true `K_i`).
    OprfResponse,
    /// Sends an institution a wrong share of its input mask.
    MaskShare,
    /// Re-shares a modified vector during the shuffle.
    ShuffleInput,
    /// Sends another member of every shuffle subset it is in a wrong re-sharing message
    /// (that member's new share is off).
    ShuffleMessage,
    /// Adds an error to a multiplication of the multiset check.
    Multiplication,
    /// Reports a wrong result to the institutions.
    Output,
}

/// One node's parameters for a query.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Threshold.
    pub t: usize,
    /// Engine security.
    pub security: Security,
    /// Query session (every node must use the same).
    pub session: SessionId,
    /// Mode.
    pub mode: Mode,
    /// The institutions' published commitments, for a committed query (`cardinality` or
    /// `sum`, up to 2^12 items each; see [`crate::committed`]); `None` for the OPRF path.
    pub commitments: Option<Vec<Fr>>,
    /// A proven query (`cardinality` or `sum`, see [`crate::proven`]): the statement's keys.
    pub proof: Option<crate::proven::ProofKeys>,
    #[doc(hidden)]
    pub cheat: Option<Cheat>,
}

/// What a node learned and spent.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NodeReport {
    /// Items per institution (public to the nodes).
    pub sizes: Vec<usize>,
    /// `histogram[k]`: distinct tags seen in exactly `k + 1` sets (public to the nodes).
    pub histogram: Vec<usize>,
    /// Intersection size (known to the nodes from the histogram).
    pub intersection_size: u64,
    /// Distinct items in at least `q` sets (the length of the `set` modes' list; the
    /// intersection size when `q = m`).
    pub selected_size: u64,
    /// Bytes this node sent (to other nodes and to institutions).
    pub bytes_sent: u64,
    /// Wall time of each step at this node, seconds.
    pub phases: Vec<(&'static str, f64)>,
}

fn fr_bytes(values: &[Fr]) -> Vec<u8> {
    let w = Fr::WIRE_BYTES;
    let mut out = vec![0u8; values.len() * w];
    for (v, chunk) in values.iter().zip(out.chunks_exact_mut(w)) {
        v.write_wire(chunk);
    }
    out
}

fn fr_from_bytes(bytes: &[u8], peer: &str) -> Result<Vec<Fr>, LinkError> {
    let w = Fr::WIRE_BYTES;
    if !bytes.len().is_multiple_of(w) {
        return Err(LinkError::Malformed { peer: peer.into(), reason: "not a whole number of field elements".into() });
    }
    bytes
        .chunks_exact(w)
        .map(|c| {
            Fr::read_wire(c)
                .ok_or_else(|| LinkError::Malformed { peer: peer.into(), reason: "element out of range".into() })
        })
        .collect()
}

/// The field element a tag is shared as (its first 31 bytes, little endian).
pub fn tag_to_field(tag: &Tag) -> Fr {
    Fr::from_le_bytes_mod_order(tag.get(..31).unwrap_or(tag))
}

fn code(c: usize, m: usize) -> Fr {
    Fr::from((m + 1) as u64).pow([c as u64])
}

fn usage(e: impl std::fmt::Display) -> PsiError {
    PsiError::Usage(e.to_string())
}

/// Runs CPU-heavy work off the async workers.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, PsiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| PsiError::Usage(format!("worker failed: {e}")))
}

// ----- node ---------------------------------------------------------------------------------

/// One node's side of a query; `links[c]` connects it to institution `c`.
pub async fn run_node<T: Transport>(
    transport: Arc<T>,
    config: NodeConfig,
    mut links: Vec<Link>,
) -> Result<NodeReport, PsiError> {
    let NodeConfig { t, security, session, mode, ref commitments, ref proof, cheat } = config;
    let m = links.len();
    if m < 2 {
        return Err(usage("a query needs at least two institutions"));
    }
    mode.min_sets(m)?;
    let start_bytes = transport.stats().bytes_sent;
    let mut clock = Clock::new();

    if commitments.as_ref().is_some_and(|c| c.len() != m) {
        return Err(usage("one commitment per institution"));
    }
    if (commitments.is_some() || proof.is_some()) && mode.is_set() {
        return Err(usage("committed and proven queries are cardinality or sum queries"));
    }
    if commitments.is_some() && proof.is_some() {
        return Err(usage("a query is either committed (items) or proven (tag lists)"));
    }
    if let Some(keys) = proof {
        check_proof_shape(keys, mode, m)?;
    }
    // The BN254 session exists from the start, so that a failure in the OPRF phase (e.g. an
    // institution's invalid point at one node) aborts the peers at once instead of leaving
    // them waiting for this node.
    let mut e = Engine::<Fr, T>::new(transport.clone(), t, security, session.child("psi mpc", 0))?;
    let phase = if commitments.is_some() {
        committed_sizes(&mut links).await
    } else {
        oprf_phase(&transport, &config, &mut links, &mut clock).await
    };
    let sizes = match phase {
        Ok(s) => s,
        Err(err) => {
            if !matches!(err, PsiError::Mpc(_)) {
                e.abort_with(MpcError::Usage(format!("psi: {err}"))).await;
            }
            return Err(err);
        }
    };
    if let Some(sizes_over) = proof.as_ref().and_then(|k| sizes.iter().position(|s| *s > k.shape.rows)) {
        let err = PsiError::Institution { institution: sizes_over, reason: "more items than the proof's rows".into() };
        e.abort_with(MpcError::Usage(format!("psi: {err}"))).await;
        return Err(err);
    }
    let inputs = Inputs { sizes: &sizes, commitments: commitments.as_deref(), proof: proof.as_ref() };
    let result = node_mpc(&mut e, &mut links, &inputs, mode, cheat, &mut clock).await;
    if let Err(err) = &result {
        if !matches!(err, PsiError::Mpc(_)) {
            e.abort_with(MpcError::Usage(format!("psi: {err}"))).await;
        }
    }
    let (histogram, count, selected_size, material) = result?;
    if let (Some(keys), Some(material)) = (proof, material) {
        prove_and_send(e, keys, material, mode, cheat, &mut links, &mut clock).await?;
    }
    let link_bytes: u64 = links.iter().map(Link::bytes_sent).sum();
    Ok(NodeReport {
        sizes,
        histogram,
        intersection_size: count,
        selected_size,
        bytes_sent: transport.stats().bytes_sent - start_bytes + link_bytes,
        phases: clock.phases,
    })
}

/// The set sizes of a committed query (no OPRF).
async fn committed_sizes(links: &mut [Link]) -> Result<Vec<usize>, PsiError> {
    let mut sizes = Vec::with_capacity(links.len());
    for (c, link) in links.iter_mut().enumerate() {
        let len = recv_size(link, c).await?;
        if len > crate::committed::MAX_COMMITTED_ITEMS {
            return Err(PsiError::Institution {
                institution: c,
                reason: format!("committed queries take at most {} items", crate::committed::MAX_COMMITTED_ITEMS),
            });
        }
        sizes.push(len);
    }
    Ok(sizes)
}

/// Institution `c`'s announced set size (a committed query, or an OPRF this node does not
/// answer), at most [`MAX_ITEMS`]. The nodes compare the sizes before using them.
async fn recv_size(link: &mut Link, c: usize) -> Result<usize, PsiError> {
    let body = link.recv(SIZE).await?;
    let len = <[u8; 8]>::try_from(body.as_ref()).map(u64::from_le_bytes).unwrap_or(u64::MAX);
    if len > MAX_ITEMS as u64 {
        return Err(PsiError::Institution { institution: c, reason: format!("more than {MAX_ITEMS} items") });
    }
    Ok(len as usize)
}

/// Step 1: the query's OPRF key, by a Feldman-verifiable DKG among the nodes in a child
/// session of the query (the signer's [`tacit_signer::dkg::dkg`]): every node deals a random
/// degree-`t` polynomial, broadcasts a hash of its coefficient commitments, deals the shares
/// privately and then reveals the commitments (a reveal that differs from its hash names the
/// dealer, so no dealer can bias `K` after seeing the others). Broadcasts are checked for
/// agreement by the engine (digests of everything received, compared by all), which names a
/// dealer that sent different nodes different commitments where the reports allow. A node
/// whose share fails the Feldman check complains; the dealer must publish that share, and a
/// published share that fails too names the dealer. A false complaint only makes the dealer
/// publish a share its accuser already holds: the run goes on with the same key, never a
/// wrong one. Returns this node's share `k_i`, `K = Σ_j F_{j,0}` and every `K_i`.
pub async fn oprf_key<T: Transport>(transport: &Arc<T>, config: &NodeConfig) -> Result<KeyShare, PsiError> {
    let NodeConfig { t, security, session, cheat, .. } = *config;
    let key_session = session.child("psi key", 0);
    let mut engine = Engine::<ark_secp256k1::Fr, T>::new(transport.clone(), t, security, key_session)?;
    let next = PartyId::from_index((engine.id().index() + 1) % engine.n());
    let faults = DkgFaults { bad_share_to: next.filter(|_| cheat == Some(Cheat::KeyDeal)), ..Default::default() };
    let result = tacit_signer::dkg::dkg(&mut engine, transport, key_session, &faults).await;
    match result.map_err(key_error) {
        Ok(share) => Ok(share),
        Err(err) => {
            // Peers still in the key generation stop at once instead of timing out.
            if !matches!(err, PsiError::Mpc(_)) {
                engine.abort_with(MpcError::Usage(format!("psi: {err}"))).await;
            }
            Err(err)
        }
    }
}

fn key_error(err: SignerError) -> PsiError {
    match err {
        SignerError::Mpc(e) => PsiError::Mpc(e),
        SignerError::Cheater { party, reason } => PsiError::Dealer { dealer: party, reason },
        other => PsiError::KeyGeneration(other.to_string()),
    }
}

/// Steps 1 and 2: the key and the OPRF for every institution; returns the set sizes.
async fn oprf_phase<T: Transport>(
    transport: &Arc<T>,
    config: &NodeConfig,
    links: &mut [Link],
    clock: &mut Clock,
) -> Result<Vec<usize>, PsiError> {
    let max_items = MAX_ITEMS;
    let cheat = config.cheat;
    // 1. Key.
    let key_share = oprf_key(transport, config).await?;
    let mut exposed = key_share.expose_share();
    let mut key = oprf::scalar_from_ark(&exposed);
    exposed.zeroize();
    let mut key_table = oprf::encode_key_table(&key_share.public.public_shares);
    drop(key_share);
    // Cheating nodes: `KeyShare` publishes another key share (and proves its answers against
    // it), `OprfResponse` publishes its true one but answers with another, `KeyTable` frames
    // the next node in the table it sends.
    if let Some(Cheat::KeyTable) = cheat {
        key_table = framing_table(&key_table, transport.id())?;
    }
    clock.lap("key");

    // 2. OPRF for every institution, answered by t + 1 nodes each.
    let (me, n, t) = (transport.id(), transport.n_parties(), config.t);
    let mut sizes = Vec::with_capacity(links.len());
    for (c, link) in links.iter_mut().enumerate() {
        let answering = oprf::answering_nodes(c, n, t);
        let Some(position) = answering.iter().position(|p| *p == me) else {
            link.send(KEY_SHARES, &key_table)?;
            sizes.push(recv_size(link, c).await?);
            continue;
        };
        let blinded = link.recv(BLINDED).await?;
        if blinded.len() > max_items * oprf::POINT_BYTES {
            return Err(PsiError::Institution { institution: c, reason: format!("more than {max_items} items") });
        }
        let lambda = oprf::lagrange_at_zero(&answering).get(position).copied().unwrap_or(k256::Scalar::ZERO);
        // Wiped on drop: the scaled share, and the keys moved into the evaluation.
        let scaled = Zeroizing::new(key * lambda);
        let (proof_key, answer_key) = match cheat {
            Some(Cheat::KeyShare) => (*scaled + k256::Scalar::ONE, *scaled + k256::Scalar::ONE),
            Some(Cheat::OprfResponse) => (*scaled, *scaled + k256::Scalar::ONE),
            _ => (*scaled, *scaled),
        };
        let (proof_key, answer_key) = (Zeroizing::new(proof_key), Zeroizing::new(answer_key));
        let from = format!("institution {c}");
        let evaluated = blocking(move || oprf::evaluate_with(&proof_key, &answer_key, &blinded, &from)).await??;
        sizes.push(evaluated.len().saturating_sub(oprf::PROOF_BYTES) / oprf::POINT_BYTES);
        link.send(KEY_SHARES, &key_table)?;
        link.send(EVALUATED, &evaluated)?;
    }
    key = k256::Scalar::ZERO;
    let _ = key;
    clock.lap("oprf");
    Ok(sizes)
}

/// A cheating node's table: the next node's `K_j` replaced by `K_j + G` (tests).
fn framing_table(table: &[u8], me: PartyId) -> Result<Vec<u8>, PsiError> {
    let mut shares = oprf::decode_points(table, "the key generation")?;
    let next = (me.index() + 1) % shares.len().max(1);
    if let Some(k) = shares.get_mut(next) {
        *k += k256::ProjectivePoint::GENERATOR;
    }
    Ok(oprf::encode_points(&shares))
}

/// Checks that the values of `rows` (shuffled rows in the intersection) are below 2^64: the
/// engine decomposes them into 64 bits (opening each value plus a random mask 40 bits wider
/// than it, which hides a value that is in range), and each recomposes its value or the
/// difference, times a fresh random mask, opens nonzero. Such a row's code is then opened to
/// name its institution: every institution holds every intersection item, so that says
/// nothing new.
async fn check_value_range<T: Transport>(
    e: &mut Engine<Fr, T>,
    rows: &[usize],
    values: &[Fr],
    codes: &[Fr],
    m: usize,
) -> Result<(), PsiError> {
    if rows.is_empty() {
        return Ok(());
    }
    let value_shares = Shares::from_raw(rows.iter().map(|r| values.get(*r).copied().unwrap_or_default()).collect());
    let bits = e.bit_decompose(&value_shares, VALUE_BITS).await?;
    let mut weights = Vec::with_capacity(bits.len());
    let mut weight = Fr::one();
    for _ in &bits {
        weights.push(weight);
        weight += weight;
    }
    let parts: Vec<(&Shares<Fr>, Fr)> = bits.iter().zip(weights).collect();
    let recomposed = Shares::linear_combination(&parts);
    drop(parts);
    drop(bits);
    let masks = e.take_randoms(rows.len()).await?.into_shares();
    let masked = e.mul(&recomposed.sub(&value_shares), &masks).await?;
    let opened = e.open(&masked).await?;
    let Some(bad) = opened.iter().position(|v| !v.is_zero()) else { return Ok(()) };
    let code_share = rows.get(bad).and_then(|r| codes.get(*r)).copied().unwrap_or_default();
    let code_value = e.open(&Shares::from_raw(vec![code_share])).await?;
    let institution = (0..m).find(|c| code_value.first() == Some(&code(*c, m)));
    let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
    e.abort_with(err).await;
    Err(match institution {
        Some(institution) => PsiError::ValueOutOfRange { institution },
        None => PsiError::Nodes { reason: "a row of no institution".into(), culprit: Culprit::Unknown },
    })
}

/// Recomputes every institution's commitment on shares, opens and compares them with the
/// published ones (rejecting a mismatch before anything else opens), and returns the shared
/// tags `Poseidon(k, e)` of all rows under a fresh shared key `k`.
async fn committed_tags<T: Transport>(
    e: &mut Engine<Fr, T>,
    sizes: &[usize],
    items: &[Fr],
    values: &[Fr],
    salts: &[Fr],
    published: &[Fr],
) -> Result<Vec<Fr>, PsiError> {
    let key = e.take_randoms(1).await?.into_shares().into_exposed();
    let key = key.first().copied().unwrap_or_default();
    let mut inputs = Vec::with_capacity(sizes.len());
    let mut offset = 0;
    for (c, len) in sizes.iter().enumerate() {
        inputs.push((
            items.get(offset..offset + len).unwrap_or_default().to_vec(),
            values.get(offset..offset + len).unwrap_or_default().to_vec(),
            salts.get(c).copied().unwrap_or_default(),
        ));
        offset += len;
    }
    let mut ops = crate::committed::EngineOps { engine: e };
    let (tags, commits) =
        crate::committed::tags_and_commitments(&mut ops, &key, &inputs).await.map_err(|err| match err {
            tacit_circuits::CircuitError::Mpc(m) => PsiError::Mpc(m),
            other => PsiError::Usage(other.to_string()),
        })?;
    let opened = e.open(&Shares::from_raw(commits)).await?;
    for (c, (got, want)) in opened.iter().zip(published).enumerate() {
        if got != want {
            return Err(PsiError::Commitment { institution: c });
        }
    }
    Ok(tags)
}

/// Steps 3 to 6 of one node; returns the histogram, the intersection size and the number of
/// items in at least `q` sets.
/// What the MPC steps take: the set sizes, and the published commitments of a committed or
/// the keys of a proven query.
struct Inputs<'a> {
    sizes: &'a [usize],
    commitments: Option<&'a [Fr]>,
    proof: Option<&'a crate::proven::ProofKeys>,
}

/// What a proven query hands from the match to the proof: this node's shares of every
/// institution's group and limbs, the merged list with multiplicities (known) and the
/// shares of each merged tag's summed values (`sum`).
struct ProvenMaterial {
    groups: Vec<Vec<Fr>>,
    limbs: Vec<crate::statement::InstitutionLimbs<Fr>>,
    merged: Vec<(u64, u64)>,
    sums: Vec<Fr>,
    count: u64,
}

impl Drop for ProvenMaterial {
    fn drop(&mut self) {
        // Shares: wiped like every other share this node holds.
        let groups = self.groups.iter_mut().flat_map(|g| g.iter_mut());
        let limbs = self.limbs.iter_mut().flat_map(|l| l.iter_mut());
        for v in groups.chain(limbs).chain(self.sums.iter_mut()) {
            v.zeroize();
        }
    }
}

/// The proof's shape must fit the query.
fn check_proof_shape(keys: &crate::proven::ProofKeys, mode: Mode, m: usize) -> Result<(), PsiError> {
    let expected =
        crate::proven::statement_mode(mode).ok_or_else(|| usage("proven queries are cardinality or sum queries"))?;
    if keys.shape.mode != expected || keys.shape.institutions != m {
        return Err(usage(format!("the proof keys are for {:?}, not {m} institutions in {}", keys.shape, mode.name())));
    }
    Ok(())
}

fn proven_error(e: crate::proven::ProvenError) -> PsiError {
    use crate::proven::ProvenError;
    match e {
        ProvenError::Mpc(e) => PsiError::Mpc(e),
        ProvenError::Commitment { institution } => PsiError::Commitment { institution },
        ProvenError::Limbs { institution } => {
            PsiError::Institution { institution, reason: "dealt limbs that do not fit its list".into() }
        }
        other => usage(other),
    }
}

/// A proven query's last step at a node: the statement on shares, the collaborative proof,
/// and the result with its proof to every institution.
async fn prove_and_send<T: Transport>(
    mut e: Engine<Fr, T>,
    keys: &crate::proven::ProofKeys,
    material: ProvenMaterial,
    mode: Mode,
    cheat: Option<Cheat>,
    links: &mut [Link],
    clock: &mut Clock,
) -> Result<(), PsiError> {
    use crate::statement::StatementOutput;
    let min_size = match mode {
        Mode::Sum { min_size } => Some(min_size),
        _ => None,
    };
    let known_blinder = e.coin().await?;
    let secret_blinder = e.take_randoms(1).await?.into_shares().into_exposed().first().copied().unwrap_or_default();
    let hints = crate::statement::hints_from_parts(
        &keys.shape,
        &material.merged,
        &material.sums,
        &material.limbs,
        [known_blinder, secret_blinder],
    )
    .map_err(|e| proven_error(e.into()))?;
    let (groups, count) = (&material.groups, material.count);
    let (output, proof, _engine) = crate::proven::prove_statement(e, keys, groups, &material.limbs, &hints, min_size)
        .await
        .map_err(proven_error)?;
    clock.lap("statement and proof");
    let reported = count + u64::from(cheat == Some(Cheat::Output));
    let body = match output {
        StatementOutput::Cardinality(c) if c == Fr::from(count) => reported.to_le_bytes().to_vec(),
        StatementOutput::Cardinality(_) => return Err(usage("the statement's count differs from the match")),
        StatementOutput::Sum { released, sum } if released.is_one() => {
            // Public now (it is the proof's input): every node sends the value itself, a
            // valid (constant) sharing of it.
            let mut out = vec![1u8];
            out.extend_from_slice(&fr_bytes(&[sum]));
            out
        }
        StatementOutput::Sum { .. } => vec![0u8],
    };
    let proof_bytes = tacit_prover::committed::to_bytes(&proof).map_err(usage)?;
    for link in links.iter_mut() {
        link.send(OUTPUT, &body)?;
        link.send(PROOF, &proof_bytes)?;
    }
    clock.lap("output");
    Ok(())
}

async fn node_mpc<T: Transport>(
    e: &mut Engine<Fr, T>,
    links: &mut [Link],
    inputs: &Inputs<'_>,
    mode: Mode,
    cheat: Option<Cheat>,
    clock: &mut Clock,
) -> Result<(Vec<usize>, u64, u64, Option<ProvenMaterial>), PsiError> {
    let Inputs { sizes, commitments, proof } = *inputs;
    let m = links.len();
    let q = mode.min_sets(m)?;
    // 3. Inputs. The nodes first agree on the sizes.
    let size_bytes: Vec<u8> = sizes.iter().flat_map(|s| (*s as u64).to_le_bytes()).collect();
    let all_sizes = e.broadcast_bytes(&size_bytes, size_bytes.len()).await?;
    if all_sizes.iter().any(|s| *s != size_bytes) {
        let err = PsiError::Nodes {
            reason: "nodes saw different input sizes (an institution sent different sizes, or a node lies)".into(),
            culprit: Culprit::Unknown,
        };
        e.abort_with(MpcError::Cheating { check: Check::BroadcastAgreement, culprit: Culprit::Unknown }).await;
        return Err(err);
    }
    // Per institution: tags (and values), or for a committed query items, values and salt.
    let width = value_width(mode, commitments.is_some());
    let extra = usize::from(commitments.is_some());
    let input_len = |c: usize| match proof {
        Some(keys) => crate::proven::dealt_len(&keys.shape),
        None => sizes.get(c).copied().unwrap_or(0) * (1 + width) + extra,
    };
    let total: usize = (0..m).map(input_len).sum();
    let masks = e.take_randoms(total).await?.into_shares();
    let mut offset = 0;
    for (c, link) in links.iter_mut().enumerate() {
        let len = input_len(c);
        let mut mine = masks.slice(offset..offset + len).into_exposed();
        if cheat == Some(Cheat::MaskShare) && c == 0 {
            if let Some(x) = mine.first_mut() {
                *x += Fr::one();
            }
        }
        link.send(MASK_SHARES, &fr_bytes(&mine))?;
        mine.zeroize();
        offset += len;
    }
    let mut masked_all: Vec<Vec<Fr>> = Vec::with_capacity(m);
    let mut published = Vec::new();
    let mut digest = blake3::Hasher::new_derive_key("tacit-psi v1 masked inputs");
    for (c, link) in links.iter_mut().enumerate() {
        if proof.is_some() {
            // The institution's published commitment, agreed on with the inputs.
            let body = link.recv(COMMITMENT).await?;
            let commitment = tacit_prover::committed::GroupCommitment::from_bytes(&body)
                .map_err(|_| PsiError::Institution { institution: c, reason: "invalid commitment".into() })?;
            digest.update(&body);
            published.push(commitment);
        }
        let body = link.recv(MASKED).await?;
        let peer = link.peer().to_string();
        let v = fr_from_bytes(&body, &peer)?;
        if v.len() != input_len(c) {
            return Err(PsiError::Institution { institution: c, reason: "masked input of the wrong length".into() });
        }
        digest.update(&(v.len() as u64).to_le_bytes());
        digest.update(&body);
        masked_all.push(v);
    }
    let digest = *digest.finalize().as_bytes();
    let digests = e.broadcast_bytes(&digest, 32).await?;
    if digests.iter().any(|d| d.as_slice() != digest) {
        e.abort_with(MpcError::Cheating { check: Check::BroadcastAgreement, culprit: Culprit::Unknown }).await;
        return Err(PsiError::Nodes {
            reason: "nodes received different masked inputs (an institution equivocated, or a node lies)".into(),
            culprit: Culprit::Unknown,
        });
    }
    // Columns in row order: institution by institution.
    let rows_total: usize = sizes.iter().sum();
    let mut tag_col = Vec::with_capacity(rows_total);
    let mut code_col = Vec::with_capacity(rows_total);
    let mut value_col = Vec::new();
    let mut salts = Vec::new();
    let mut proven_groups = Vec::new();
    let mut proven_limbs = Vec::new();
    let mut offset = 0;
    for (c, masked) in masked_all.into_iter().enumerate() {
        let shares = masks.slice(offset..offset + input_len(c)).add_public(&masked);
        drop(masked);
        if let Some(keys) = proof {
            // A proven query: the institution's padded list, values, blinder, then its limbs.
            let rows = keys.shape.rows;
            let (group, limbs) = crate::proven::split_dealt(&keys.shape, shares.expose_shares())
                .ok_or_else(|| usage("dealt input of the wrong length"))?;
            tag_col.extend_from_slice(group.get(..rows).unwrap_or_default());
            if mode.with_values() {
                value_col.extend_from_slice(group.get(rows..2 * rows).unwrap_or_default());
            }
            code_col.extend(std::iter::repeat_n(code(c, m), rows));
            proven_groups.push(group);
            proven_limbs.push(limbs);
            offset += input_len(c);
            continue;
        }
        let len = sizes.get(c).copied().unwrap_or(0);
        let s = shares.expose_shares();
        tag_col.extend_from_slice(s.get(..len).unwrap_or_default());
        value_col.extend_from_slice(s.get(len..len + len * width).unwrap_or_default());
        if extra == 1 {
            salts.push(s.get(len + len * width).copied().unwrap_or_default());
        }
        code_col.extend(std::iter::repeat_n(code(c, m), len));
        offset += input_len(c);
    }
    drop(masks);
    clock.lap("input");
    if let Some(keys) = proof {
        crate::proven::check_commitments(e, keys, &proven_groups, &published).await.map_err(proven_error)?;
        clock.lap("commitments");
    }
    if let Some(published) = commitments {
        // The first column holds items: check the commitments, then derive the tags.
        tag_col = committed_tags(e, sizes, &tag_col, &value_col, &salts, published).await?;
        clock.lap("commitments and tags");
        if !mode.with_values() {
            value_col.clear();
        }
    }
    let rows = tag_col.len();
    let mut columns = vec![Shares::from_raw(tag_col), Shares::from_raw(code_col)];
    if mode.with_values() {
        columns.push(Shares::from_raw(value_col));
    }

    // 4. Shuffle, and the multiset check.
    let before: Vec<Shares<Fr>> = columns.clone();
    if rows > 0 {
        columns = shuffle(e, columns, cheat).await?;
        clock.lap("shuffle");
        let gamma = e.coin().await?;
        let d1 = e.coin().await?;
        let d2 = e.coin().await?;
        let w = |cs: &[Shares<Fr>]| -> Shares<Fr> {
            let parts: Vec<(&Shares<Fr>, Fr)> = cs.iter().zip([Fr::one(), d1, d2]).collect();
            Shares::linear_combination(&parts).rsub_scalar(gamma)
        };
        if cheat == Some(Cheat::Multiplication) {
            e.inject_product_error_for_tests(Fr::one());
        }
        let products = product_trees(e, vec![w(&before), w(&columns)]).await?;
        let (p_in, p_out) = match products.as_slice() {
            [a, b] => (a.clone(), b.clone()),
            _ => return Err(usage("product trees")),
        };
        let mask = e.take_randoms(1).await?.into_shares();
        let z = e.mul(&p_in.sub(&p_out), &mask).await?;
        let opened = e.open(&z).await?;
        if opened.first().is_none_or(|v| !v.is_zero()) {
            let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
            return Err(PsiError::Mpc(e.abort_with(err).await));
        }
    }
    drop(before);
    clock.lap("multiset check");

    // 5. Match.
    let tags_share = columns.first().cloned().unwrap_or_else(|| Shares::zeros(0));
    let tags = e.open(&tags_share).await?;
    let mut order: Vec<u32> = (0..rows as u32).collect();
    order.sort_unstable_by_key(|i| tags.get(*i as usize).copied().unwrap_or_default());
    // Groups of rows with one tag, in at least `q` sets (for `cardinality` and `sum`, q = m).
    let mut selected: Vec<std::ops::Range<usize>> = Vec::new();
    let mut histogram = vec![0usize; m];
    let mut i = 0;
    while i < rows {
        let tag = order.get(i).and_then(|r| tags.get(*r as usize)).copied();
        let mut j = i + 1;
        while j < rows && order.get(j).and_then(|r| tags.get(*r as usize)).copied() == tag {
            j += 1;
        }
        let size = j - i;
        match histogram.get_mut(size - 1) {
            Some(h) => *h += 1,
            None => {
                let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
                e.abort_with(err).await;
                return Err(PsiError::DuplicateTag(format!("a tag occurs {size} times among {m} institutions")));
            }
        }
        if size >= q {
            selected.push(i..j);
        }
        i = j;
    }
    let count = histogram.last().copied().unwrap_or(0) as u64;
    let codes = columns.get(1).map(|c| c.expose_shares().to_vec()).unwrap_or_default();
    let group_codes = |g: &std::ops::Range<usize>| -> Vec<Fr> {
        g.clone().filter_map(|k| order.get(k).and_then(|r| codes.get(*r as usize))).copied().collect()
    };
    // Each m-group holds one row of every institution: its codes add up to Σ (m+1)^c.
    if count > 0 {
        let all: Fr = (0..m).map(|c| code(c, m)).sum();
        let rho = e.coin().await?;
        let mut acc = Fr::zero();
        let mut expected = Fr::zero();
        let mut power = Fr::one();
        for g in selected.iter().filter(|g| g.len() == m) {
            acc += power * group_codes(g).iter().sum::<Fr>();
            expected += power * all;
            power *= rho;
        }
        let check = Shares::from_raw(vec![acc]).add_scalar(-expected);
        let opened = e.open(&check).await?;
        if opened.first().is_none_or(|v| !v.is_zero()) {
            let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
            e.abort_with(err).await;
            return Err(PsiError::DuplicateTag("an intersection group lacks some institution".into()));
        }
    }
    // A selected group of fewer than m rows must come from distinct institutions: the product
    // of its pairwise code differences is nonzero. Opened times a fresh random mask, it shows
    // only whether it is zero; `open` verifies the products first, so no node can fake it.
    let partial: Vec<&std::ops::Range<usize>> = selected.iter().filter(|g| g.len() < m).collect();
    if !partial.is_empty() {
        let masks = e.take_randoms(partial.len()).await?.into_shares();
        let factors: Vec<Shares<Fr>> = partial
            .iter()
            .zip(masks.expose_shares())
            .map(|(g, mask)| {
                let c = group_codes(g);
                let mut f = vec![*mask];
                for (a, x) in c.iter().enumerate() {
                    f.extend(c.iter().skip(a + 1).map(|y| *x - y));
                }
                Shares::from_raw(f)
            })
            .collect();
        let products = product_trees(e, factors).await?;
        let opened = e.open(&Shares::concat(&products.iter().collect::<Vec<_>>())).await?;
        if opened.len() != partial.len() || opened.iter().any(Zero::is_zero) {
            let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
            e.abort_with(err).await;
            return Err(PsiError::DuplicateTag("a group holds two rows of one institution".into()));
        }
    }

    clock.lap("match");
    if let Some(keys) = proof {
        // Padding rows are singletons; the histogram counts items.
        let pads: usize = sizes.iter().map(|s| keys.shape.rows.saturating_sub(*s)).sum();
        if let Some(h) = histogram.first_mut() {
            *h = h.saturating_sub(pads);
        }
        let values = columns.get(2).map(|c| c.expose_shares().to_vec()).unwrap_or_default();
        let (mut merged, mut sums) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < rows {
            let row = |k: usize| order.get(k).map(|r| *r as usize);
            let tag = row(i).and_then(|r| tags.get(r)).copied().unwrap_or_default();
            let mut j = i + 1;
            while j < rows && row(j).and_then(|r| tags.get(r)) == Some(&tag) {
                j += 1;
            }
            let limbs = tag.into_bigint().0;
            if limbs.iter().skip(1).any(|l| *l != 0) {
                // Honest lists hold 63-bit tags and padding below 2^64; the statement
                // could not be proven.
                let err = MpcError::Cheating { check: Check::OutputVerification, culprit: Culprit::Unknown };
                e.abort_with(err).await;
                return Err(PsiError::Nodes {
                    reason: "a dealt tag is not below 2^64".into(),
                    culprit: Culprit::Unknown,
                });
            }
            merged.push((limbs.first().copied().unwrap_or_default(), (j - i) as u64));
            if mode.with_values() {
                sums.push((i..j).filter_map(|k| row(k).and_then(|r| values.get(r))).sum());
            }
            i = j;
        }
        let material = ProvenMaterial { groups: proven_groups, limbs: proven_limbs, merged, sums, count };
        return Ok((histogram, count, selected.len() as u64, Some(material)));
    }
    // 6. Output.
    let mut reported = count;
    if cheat == Some(Cheat::Output) {
        reported += 1;
    }
    let body: Vec<u8> = match mode {
        Mode::Cardinality => reported.to_le_bytes().to_vec(),
        Mode::Set | Mode::SetAtLeast { .. } => {
            let mut list: Vec<Fr> = selected
                .iter()
                .filter_map(|g| order.get(g.start).and_then(|r| tags.get(*r as usize)).copied())
                .collect();
            list.sort_unstable();
            if cheat == Some(Cheat::Output) {
                list.push(Fr::one());
            }
            fr_bytes(&list)
        }
        Mode::Sum { min_size } => {
            let values = columns.get(2).map(|c| c.expose_shares().to_vec()).unwrap_or_default();
            let sum: Fr = selected
                .iter()
                .flat_map(|g| g.clone())
                .filter_map(|k| order.get(k).and_then(|r| values.get(*r as usize)))
                .sum();
            if count >= min_size {
                // Only the values that enter the sum need to be below 2^64.
                let rows: Vec<usize> =
                    selected.iter().flat_map(|g| g.clone()).filter_map(|k| order.get(k).map(|r| *r as usize)).collect();
                check_value_range(e, &rows, &values, &codes, m).await?;
                clock.lap("range check");
                // The sum goes to the institutions only, as shares, once every product
                // it depends on is verified; the nodes never see it.
                e.verify().await?;
                let mut out = vec![1u8];
                out.extend_from_slice(&fr_bytes(&[sum + Fr::from(u64::from(cheat == Some(Cheat::Output)))]));
                out
            } else {
                vec![0u8]
            }
        }
    };
    for link in links.iter_mut() {
        link.send(OUTPUT, &body)?;
    }
    clock.lap("output");
    Ok((histogram, count, selected.len() as u64, None))
}

/// Wall time per step.
#[derive(Debug)]
struct Clock {
    last: std::time::Instant,
    phases: Vec<(&'static str, f64)>,
}

impl Clock {
    fn new() -> Self {
        Self { last: std::time::Instant::now(), phases: Vec::new() }
    }

    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push((name, (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

/// The subsets whose permutations compose the shuffle: every `(t+1)`-subset of the first
/// `2t+1` parties (every `t`-coalition misses at least one of them).
fn shuffle_subsets(t: usize) -> Vec<Vec<PartyId>> {
    tacit_mpc_engine::shamir::subsets(2 * t + 1, t + 1)
        .into_iter()
        .map(|s| s.into_iter().filter_map(PartyId::from_index).collect())
        .collect()
}

fn permutation(seed: &Fr, len: usize) -> Vec<u32> {
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 shuffle permutation");
    h.update(&fr_bytes(&[*seed]));
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*h.finalize().as_bytes());
    let mut p: Vec<u32> = (0..len as u32).collect();
    for i in (1..len).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Oblivious shuffle of equal-length columns (see the module documentation, step 4).
///
/// Per subset `S` of `t + 1` members: the members agree on a permutation (a seed one member
/// inputs and opens to the others), turn their shares into additive shares of `S` and permute
/// them. The new degree-`t` sharing `f` of the permuted values is fixed by `f(0)` and by its
/// values at `t` parties `j` outside `S`, which are pseudorandom: `f(j) = Σ_{k∈S} PRG(s_kj)`
/// for a seed `s_kj` that member `k` inputs and opens to `j` alone. Every other party's new
/// share (the members', and with `n > 2t + 1` the remaining parties') is a linear combination
/// of every member's additive part and those masks, so member `k` sends party `i` its term
/// `L_0(i)·y_k + Σ_j L_j(i)·PRG(s_kj)` (Lagrange basis over `{0} ∪ {j}`), masked by seeds `i`
/// does not hold. That is one field element per value for each such party, where masked inputs
/// cost about seven (a random sharing, an opening to the owner, a broadcast). A member that
/// sends a wrong term, or permutes a wrong part, changes values of the new sharing: the
/// multiset check after the shuffle catches it.
async fn shuffle<T: Transport>(
    e: &mut Engine<Fr, T>,
    mut columns: Vec<Shares<Fr>>,
    cheat: Option<Cheat>,
) -> Result<Vec<Shares<Fr>>, PsiError> {
    let rows = columns.first().map_or(0, Shares::len);
    let width = rows * columns.len();
    let me = e.id();
    let mut cheated = false;
    for subset in shuffle_subsets(e.t()) {
        let (Some(&leader), true) = (subset.first(), subset.len() == e.t() + 1) else {
            return Err(usage("shuffle subsets"));
        };
        let outside: Vec<PartyId> = PartyId::all(e.n()).filter(|p| !subset.contains(p)).collect();
        // `t` parties outside get pseudorandom shares; the others are sent terms.
        let (seeded, sent_to) = outside.split_at(e.t().min(outside.len()));
        // The leader's seed, opened to the other members only.
        let seed_value = (me == leader).then(|| Fr::rand(&mut rand::thread_rng()));
        let seed_share = e.input(leader, seed_value.as_ref().map(std::slice::from_ref), 1).await?;
        let mut seed = seed_value;
        for &member in subset.iter().skip(1) {
            if let Some(v) = e.open_to(member, &seed_share).await? {
                seed = v.first().copied();
            }
        }
        // Mask seeds: member k's seed for seeded party j, known to k and j only.
        let mut mask_seeds: Vec<(PartyId, PartyId, Fr)> = Vec::new();
        for &k in &subset {
            let mine: Option<Vec<Fr>> =
                (me == k).then(|| seeded.iter().map(|_| Fr::rand(&mut rand::thread_rng())).collect());
            let shared = e.input(k, mine.as_deref(), seeded.len()).await?;
            for (index, &j) in seeded.iter().enumerate() {
                let opened = e.open_to(j, &shared.slice(index..index + 1)).await?;
                let value = mine.as_ref().and_then(|v| v.get(index)).or(opened.as_ref().and_then(|v| v.first()));
                if let Some(v) = value {
                    mask_seeds.push((k, j, *v));
                }
            }
        }
        let seed_of = |k: PartyId, j: PartyId| mask_seeds.iter().find(|(a, b, _)| *a == k && *b == j).map(|x| x.2);
        // Lagrange basis over {0} ∪ seeded, at another party's point.
        let basis_points: Vec<Fr> =
            std::iter::once(Fr::zero()).chain(seeded.iter().map(|p| Fr::from(u64::from(p.get())))).collect();
        let basis_at = |p: PartyId| lagrange_coefficients(&basis_points, Fr::from(u64::from(p.get())));
        let members_but = |p: PartyId| -> Vec<PartyId> { subset.iter().copied().filter(|q| *q != p).collect() };

        let new_shares: Vec<Fr> = if let Some(pos) = subset.iter().position(|p| *p == me) {
            let Some(seed) = seed else { return Err(usage("a member without the permutation seed")) };
            let l = e.shamir().lagrange_at_zero(&subset).get(pos).copied().unwrap_or_default();
            let perm = permutation(&seed, rows);
            let mut part = Vec::with_capacity(width);
            for col in &columns {
                let s = col.expose_shares();
                part.extend(perm.iter().map(|&k| s.get(k as usize).copied().unwrap_or_default() * l));
            }
            if cheat == Some(Cheat::ShuffleInput) && !cheated {
                if let Some(x) = part.first_mut() {
                    *x += Fr::one();
                }
                cheated = true;
            }
            let mut masks: Vec<Vec<Fr>> = seeded
                .iter()
                .map(|&j| seed_of(me, j).map(|s| reshare_masks(&s, width)).ok_or_else(|| usage("a missing mask seed")))
                .collect::<Result<_, _>>()?;
            // This member's term of party p's new share.
            let term = |p: PartyId| -> Vec<Fr> {
                let basis = basis_at(p);
                let l0 = basis.first().copied().unwrap_or_default();
                let mut out: Vec<Fr> = part.iter().map(|y| *y * l0).collect();
                for (mask, lj) in masks.iter().zip(basis.iter().skip(1)) {
                    for (o, m) in out.iter_mut().zip(mask) {
                        *o += *m * lj;
                    }
                }
                out
            };
            let peers = members_but(me);
            let mut messages: Vec<(PartyId, Vec<Fr>)> = peers.iter().chain(sent_to).map(|&p| (p, term(p))).collect();
            if cheat == Some(Cheat::ShuffleMessage) {
                if let Some(x) = messages.first_mut().and_then(|(_, m)| m.first_mut()) {
                    *x += Fr::one();
                }
            }
            let outgoing: Vec<(PartyId, &[Fr])> = messages.iter().map(|(p, m)| (*p, m.as_slice())).collect();
            let incoming: Vec<(PartyId, usize)> = peers.iter().map(|&p| (p, width)).collect();
            let received = e.exchange(&outgoing, &incoming).await?;
            let mut share = term(me);
            for (_, v) in &received {
                add_assign(&mut share, v);
            }
            part.zeroize();
            masks.zeroize();
            messages.iter_mut().for_each(|(_, m)| m.zeroize());
            share
        } else if seeded.contains(&me) {
            // A seeded party: its new share is the masks the members seeded for it.
            e.exchange(&[], &[]).await?;
            let mut share = vec![Fr::zero(); width];
            for &k in &subset {
                let s = seed_of(k, me).ok_or_else(|| usage("a missing mask seed"))?;
                add_assign(&mut share, &reshare_masks(&s, width));
            }
            share
        } else {
            // Any other party: the sum of the members' terms.
            let incoming: Vec<(PartyId, usize)> = subset.iter().map(|&p| (p, width)).collect();
            let received = e.exchange(&[], &incoming).await?;
            let mut share = vec![Fr::zero(); width];
            for (_, v) in &received {
                add_assign(&mut share, v);
            }
            share
        };
        mask_seeds.iter_mut().for_each(|(_, _, s)| s.zeroize());
        let all = Shares::from_raw(new_shares);
        columns = (0..columns.len()).map(|c| all.slice(c * rows..(c + 1) * rows)).collect();
    }
    Ok(columns)
}

/// `len` pseudorandom field elements from a re-sharing mask seed (ChaCha20 keyed by a hash of
/// the seed, one stream per chunk, in parallel).
fn reshare_masks(seed: &Fr, len: usize) -> Vec<Fr> {
    const CHUNK: usize = 4096;
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 shuffle re-sharing masks");
    h.update(&fr_bytes(&[*seed]));
    let key = *h.finalize().as_bytes();
    let mut out = vec![Fr::zero(); len];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, chunk)| {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(key);
        rng.set_stream(c as u64);
        chunk.iter_mut().for_each(|x| *x = Fr::rand(&mut rng));
    });
    out
}

/// Products of all values of each vector, by multiplication trees run in lockstep (one round
/// per level for all of them).
async fn product_trees<T: Transport>(
    e: &mut Engine<Fr, T>,
    mut vectors: Vec<Shares<Fr>>,
) -> Result<Vec<Shares<Fr>>, PsiError> {
    loop {
        if vectors.iter().all(|v| v.len() <= 1) {
            return Ok(vectors
                .into_iter()
                .map(|v| if v.is_empty() { Shares::constant(&[Fr::one()]) } else { v })
                .collect());
        }
        let mut left = Vec::new();
        let mut right = Vec::new();
        let mut halves = Vec::with_capacity(vectors.len());
        for v in &vectors {
            let half = v.len() / 2;
            left.push(v.slice(0..half));
            right.push(v.slice(half..2 * half));
            halves.push(half);
        }
        let l = Shares::concat(&left.iter().collect::<Vec<_>>());
        let r = Shares::concat(&right.iter().collect::<Vec<_>>());
        let prod = e.mul(&l, &r).await?;
        let mut offset = 0;
        let mut next = Vec::with_capacity(vectors.len());
        for (v, half) in vectors.iter().zip(halves) {
            let mut parts = vec![prod.slice(offset..offset + half)];
            if v.len() % 2 == 1 {
                parts.push(v.slice(v.len() - 1..v.len()));
            }
            next.push(Shares::concat(&parts.iter().collect::<Vec<_>>()));
            offset += half;
        }
        vectors = next;
    }
}

// ----- institution --------------------------------------------------------------------------

/// An institution's input to a query.
#[derive(Clone, Debug)]
pub enum Input {
    /// A set for the OPRF path (any mode, up to [`MAX_ITEMS`] items).
    Plain(InputSet),
    /// A set with the opening of its published commitment (`cardinality` and `sum`).
    Committed(CommittedInput),
}

impl Input {
    /// The set.
    pub fn set(&self) -> &InputSet {
        match self {
            Input::Plain(s) => s,
            Input::Committed(c) => &c.set,
        }
    }
}

/// One institution's side of a query; `links[i]` connects it to node `i + 1`.
pub async fn run_institution(
    index: usize,
    input: &Input,
    t: usize,
    mode: Mode,
    links: Vec<Link>,
) -> Result<PsiOutput, PsiError> {
    Ok(institution(index, input, t, mode, links, Misbehaviour::default(), None).await?.0)
}

/// An institution's side of a proven query (`cardinality` or `sum`): the result and the
/// proof it checked (it verifies, and holds exactly the commitment this institution
/// published for its slot `index`).
pub async fn run_institution_proven(
    index: usize,
    input: &InputSet,
    t: usize,
    mode: Mode,
    links: Vec<Link>,
    keys: &crate::proven::InstitutionKeys,
) -> Result<(PsiOutput, tacit_prover::committed::CommittedProof), PsiError> {
    let input = Input::Plain(input.clone());
    let (output, proof) = institution(index, &input, t, mode, links, Misbehaviour::default(), Some(keys)).await?;
    Ok((output, proof.ok_or_else(|| usage("no proof"))?))
}

/// Deviations a test can make one institution commit.
#[derive(Clone, Copy, Debug, Default)]
struct Misbehaviour {
    /// Sends its first item's tag in place of its second's.
    duplicate_first_tag: bool,
    /// Deals this field element as every value.
    every_value: Option<Fr>,
    /// Publishes a commitment to its list with the first tag changed (a proven query).
    mismatched_commitment: bool,
    /// Deals limbs of its first difference outside the table that still recompose it (a
    /// proven query).
    wrong_limbs: bool,
}

async fn institution(
    index: usize,
    full_input: &Input,
    t: usize,
    mode: Mode,
    mut links: Vec<Link>,
    misbehaviour: Misbehaviour,
    proof: Option<&crate::proven::InstitutionKeys>,
) -> Result<(PsiOutput, Option<tacit_prover::committed::CommittedProof>), PsiError> {
    let n = links.len();
    let shamir = Shamir::<Fr>::new(n, t).map_err(usage)?;

    let input = full_input.set();
    if let Input::Committed(opening) = full_input {
        // Committed query: items, values and the salt go in; the nodes derive the tags.
        for link in &mut links {
            link.send(SIZE, &(input.len() as u64).to_le_bytes())?;
        }
        let mut x: Vec<Fr> = input.items().iter().map(crate::committed::item_field).collect();
        push_values(&mut x, input.values(), mode, true, misbehaviour.every_value);
        x.push(opening.expose_salt());
        send_input(&mut links, &shamir, t, &mut x).await?;
        return Ok((receive_output(&mut links, &shamir, t, mode, input, &[]).await?, None));
    }
    // OPRF.
    let items: Vec<Vec<u8>> = input.items().iter().map(|i| i.canonical().to_vec()).collect();
    let (blinded, blinding) = blocking(move || {
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        oprf::blind(&refs)
    })
    .await??;
    // The t + 1 answering nodes get the blinded points, the others only the size.
    let answering = oprf::answering_nodes(index, n, t);
    let answers_from = |i: usize| answering.iter().any(|p| p.index() == i);
    for (i, link) in links.iter_mut().enumerate() {
        if answers_from(i) {
            link.send(BLINDED, &blinded)?;
        } else {
            link.send(SIZE, &(input.len() as u64).to_le_bytes())?;
        }
    }
    let mut tables = Vec::with_capacity(n);
    let mut responses = Vec::with_capacity(answering.len());
    for (i, link) in links.iter_mut().enumerate() {
        tables.push(link.recv(KEY_SHARES).await?.to_vec());
        if answers_from(i) {
            responses.push(link.recv(EVALUATED).await?.to_vec());
        }
    }
    let tags = blocking(move || {
        let key_shares = oprf::agreed_key_shares(&tables)?;
        oprf::finalize(&key_shares, &answering, &responses, &blinding, &blinded)
    })
    .await??;
    if let Some(keys) = proof {
        return proven_institution(index, input, t, mode, links, &shamir, keys, &tags, misbehaviour).await;
    }
    let tag_fields: Vec<Fr> = tags.iter().map(tag_to_field).collect();

    // Input.
    let mut x = tag_fields.clone();
    if misbehaviour.duplicate_first_tag {
        if let (Some(first), Some(second)) = (x.first().copied(), x.get_mut(1)) {
            *second = first;
        }
    }
    push_values(&mut x, input.values(), mode, false, misbehaviour.every_value);
    send_input(&mut links, &shamir, t, &mut x).await?;
    let _ = index;
    Ok((receive_output(&mut links, &shamir, t, mode, input, &tag_fields).await?, None))
}

/// A proven query after the OPRF: publish the commitment to the 63-bit tag list for this
/// slot, deal the list and its limbs, then take the result and check its proof.
#[allow(clippy::too_many_arguments)]
async fn proven_institution(
    index: usize,
    input: &InputSet,
    t: usize,
    mode: Mode,
    mut links: Vec<Link>,
    shamir: &Shamir<Fr>,
    keys: &crate::proven::InstitutionKeys,
    tags: &[Tag],
    misbehaviour: Misbehaviour,
) -> Result<(PsiOutput, Option<tacit_prover::committed::CommittedProof>), PsiError> {
    use crate::proven::{tag63, CommittedList};
    let n = links.len();
    let all_nodes = || Culprit::OneOf(PartyId::all(n).collect());
    let values = input.values();
    let items: Vec<(u64, u64)> =
        tags.iter().enumerate().map(|(j, tag)| (tag63(tag), values.get(j).copied().unwrap_or(0))).collect();
    let mut rng = rand::rngs::OsRng;
    let list = CommittedList::new(keys, index, &items, &mut rng).map_err(usage)?;
    let published = if misbehaviour.mismatched_commitment {
        let mut other = items.clone();
        if let Some(first) = other.first_mut() {
            first.0 ^= 1;
        }
        CommittedList::new(keys, index, &other, &mut rng).map_err(usage)?.commitment
    } else {
        list.commitment
    };
    let published_bytes = tacit_prover::committed::to_bytes(&published).map_err(usage)?;
    for link in &mut links {
        link.send(COMMITMENT, &published_bytes)?;
    }
    let mut x = list.dealt();
    drop(list);
    if misbehaviour.wrong_limbs {
        // `l0 + 2^b` and `l1 - 1`: the same difference, limbs off the table.
        let first = keys.shape.list_len();
        let shift = Fr::from(keys.shape.table() as u64);
        if let Some(l0) = x.get_mut(first) {
            *l0 += shift;
        }
        if let Some(l1) = x.get_mut(first + 1) {
            *l1 -= Fr::one();
        }
    }
    send_input(&mut links, shamir, t, &mut x).await?;
    let output = receive_output(&mut links, shamir, t, mode, input, &[]).await?;
    let mut proof_bytes: Option<bytes::Bytes> = None;
    for link in links.iter_mut() {
        let body = link.recv(PROOF).await?;
        if proof_bytes.as_ref().is_some_and(|p| *p != body) {
            return Err(PsiError::Nodes {
                reason: format!("{} sent a different proof", link.peer()),
                culprit: all_nodes(),
            });
        }
        proof_bytes = Some(body);
    }
    let proof = tacit_prover::committed::proof_from_bytes(&proof_bytes.unwrap_or_default())
        .map_err(|e| PsiError::Nodes { reason: format!("invalid proof: {e}"), culprit: all_nodes() })?;
    let (statement, min_size) = crate::proven::statement_output(&output, mode)
        .ok_or_else(|| usage("proven queries are cardinality or sum queries"))?;
    let valid = crate::proven::check_proof(keys, &statement, min_size, &proof, index, &published).map_err(usage)?;
    if !valid {
        return Err(PsiError::Nodes {
            reason: "the proof does not verify for this result and this institution's commitment".into(),
            culprit: all_nodes(),
        });
    }
    Ok((output, Some(proof)))
}

/// Appends the values as the nodes expect them ([`value_width`] elements each); `every`
/// replaces each of them (tests of the range check).
fn push_values(x: &mut Vec<Fr>, values: &[u64], mode: Mode, committed: bool, every: Option<Fr>) {
    if value_width(mode, committed) == 1 {
        x.extend(values.iter().map(|v| every.unwrap_or_else(|| Fr::from(*v))));
    }
}

/// Shares `x` with the nodes (they open a mask to us; we send `x - r`).
async fn send_input(links: &mut [Link], shamir: &Shamir<Fr>, t: usize, x: &mut Vec<Fr>) -> Result<(), PsiError> {
    let n = links.len();
    let all_nodes = || Culprit::OneOf(PartyId::all(n).collect());
    let mut by_party = Vec::with_capacity(n);
    for link in links.iter_mut() {
        let body = link.recv(MASK_SHARES).await?;
        let peer = link.peer().to_string();
        let v = fr_from_bytes(&body, &peer)?;
        if v.len() != x.len() {
            return Err(PsiError::Nodes {
                reason: format!("{peer} sent {} mask shares", v.len()),
                culprit: all_nodes(),
            });
        }
        by_party.push(v);
    }
    let r = shamir
        .reconstruct_batch(&by_party, t, true)
        .map_err(|_| PsiError::Nodes { reason: "inconsistent input-mask shares".into(), culprit: all_nodes() })?;
    for v in &mut by_party {
        v.zeroize();
    }
    let masked: Vec<Fr> = x.iter().zip(&r).map(|(a, b)| *a - b).collect();
    x.zeroize();
    let masked_bytes = fr_bytes(&masked);
    for link in links.iter_mut() {
        link.send(MASKED, &masked_bytes)?;
    }

    Ok(())
}

/// Every node's report, checked for agreement, as this institution's output.
async fn receive_output(
    links: &mut [Link],
    shamir: &Shamir<Fr>,
    t: usize,
    mode: Mode,
    input: &InputSet,
    tag_fields: &[Fr],
) -> Result<PsiOutput, PsiError> {
    let n = links.len();
    let all_nodes = || Culprit::OneOf(PartyId::all(n).collect());
    // Output: every node must report the same (in sum mode: consistent shares).
    let mut first: Option<bytes::Bytes> = None;
    let mut bodies = Vec::with_capacity(n);
    for link in links.iter_mut() {
        bodies.push((link.peer().to_string(), link.recv(OUTPUT).await?));
    }
    if let Mode::Sum { .. } = mode {
        let malformed = |reason: &str| PsiError::Nodes { reason: reason.into(), culprit: all_nodes() };
        if bodies.iter().all(|(_, b)| b.as_ref() == [0u8]) {
            return Ok(PsiOutput::Sum(None));
        }
        let mut by_party = Vec::with_capacity(n);
        for (peer, body) in &bodies {
            match body.split_first() {
                Some((1, rest)) => by_party.push(fr_from_bytes(rest, peer)?),
                _ => return Err(malformed("nodes disagree on whether the sum is released")),
            }
        }
        let v =
            shamir.reconstruct_batch(&by_party, t, true).map_err(|_| malformed("inconsistent shares of the sum"))?;
        let v = v.first().copied().ok_or_else(|| malformed("no sum"))?;
        if ark_ff::BigInteger::num_bits(&v.into_bigint()) > 128 {
            return Err(malformed("sum above 2^128"));
        }
        return Ok(PsiOutput::Sum(Some(low_u128(&v))));
    }
    for (peer, body) in bodies {
        match &first {
            None => first = Some(body),
            Some(f) if *f != body => {
                return Err(PsiError::Nodes {
                    reason: format!("{peer} reported a different result"),
                    culprit: all_nodes(),
                })
            }
            Some(_) => {}
        }
    }
    let body = first.unwrap_or_default();
    let malformed = |reason: &str| PsiError::Nodes { reason: reason.into(), culprit: all_nodes() };
    match mode {
        Mode::Cardinality => {
            let arr: [u8; 8] = body.as_ref().try_into().map_err(|_| malformed("bad count"))?;
            Ok(PsiOutput::Cardinality(u64::from_le_bytes(arr)))
        }
        Mode::Set | Mode::SetAtLeast { .. } => {
            let list = fr_from_bytes(&body, "nodes")?;
            let set: std::collections::HashSet<Fr> = list.into_iter().collect();
            let mine: Vec<Item> = input
                .items()
                .iter()
                .zip(tag_fields)
                .filter(|(_, tag)| set.contains(*tag))
                .map(|(item, _)| item.clone())
                .collect();
            Ok(PsiOutput::Set(mine))
        }
        Mode::Sum { .. } => Err(malformed("unreachable: sum handled above")),
    }
}

// ----- oracle -------------------------------------------------------------------------------

/// The plaintext result every institution should get.
pub fn oracle(inputs: &[InputSet], mode: Mode) -> Vec<PsiOutput> {
    use std::collections::HashMap;
    let mut counts: HashMap<&Item, (usize, u128)> = HashMap::new();
    for set in inputs {
        for (item, value) in set.items().iter().zip(set.values()) {
            let e = counts.entry(item).or_insert((0, 0));
            e.0 += 1;
            e.1 += u128::from(*value);
        }
    }
    let m = inputs.len();
    let q = mode.min_sets(m).unwrap_or(m);
    let selected = |item: &Item| counts.get(item).is_some_and(|(c, _)| *c >= q);
    let size = counts.values().filter(|(c, _)| *c == m).count() as u64;
    let sum: u128 = counts.values().filter(|(c, _)| *c == m).map(|(_, v)| *v).sum();
    inputs
        .iter()
        .map(|set| match mode {
            Mode::Set | Mode::SetAtLeast { .. } => {
                PsiOutput::Set(set.items().iter().filter(|i| selected(i)).cloned().collect())
            }
            Mode::Cardinality => PsiOutput::Cardinality(size),
            Mode::Sum { min_size } => PsiOutput::Sum((size >= min_size).then_some(sum)),
        })
        .collect()
}

// ----- in-process runner --------------------------------------------------------------------

/// Options of an in-process run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Threshold.
    pub t: usize,
    /// Engine security.
    pub security: Security,
    /// Mode.
    pub mode: Mode,
    /// Record what every party receives.
    pub record: bool,
    #[doc(hidden)]
    pub cheat: Option<(PartyId, Cheat)>,
    /// Makes this institution send its first item's tag in place of its second's (tests).
    #[doc(hidden)]
    pub duplicating_institution: Option<usize>,
    /// Makes this institution deal this field element as every value (tests).
    #[doc(hidden)]
    pub out_of_range_value: Option<(usize, Fr)>,
    /// A proven query: the statement's keys (see [`crate::proven`]).
    pub proof: Option<crate::proven::ProofKeys>,
    /// Makes this institution publish a commitment to another list than it deals (tests).
    #[doc(hidden)]
    pub mismatched_commitment: Option<usize>,
    /// Makes this institution deal limbs that do not fit its list (tests).
    #[doc(hidden)]
    pub wrong_limbs: Option<usize>,
}

impl RunOptions {
    /// Malicious security, threshold `t`, no recording.
    pub fn new(t: usize, mode: Mode) -> Self {
        Self {
            t,
            security: Security::Malicious,
            mode,
            record: false,
            cheat: None,
            duplicating_institution: None,
            out_of_range_value: None,
            proof: None,
            mismatched_commitment: None,
            wrong_limbs: None,
        }
    }
}

/// Results of an in-process run, party by party.
#[derive(Debug)]
pub struct LocalRun {
    /// Each institution's result.
    pub institutions: Vec<Result<PsiOutput, PsiError>>,
    /// In a proven query, the proof each institution received and checked.
    pub proofs: Vec<Option<tacit_prover::committed::CommittedProof>>,
    /// Each node's result.
    pub nodes: Vec<Result<NodeReport, PsiError>>,
    /// What each institution received (when recorded).
    pub institution_transcripts: Vec<crate::link::Transcript>,
    /// What each node received, from nodes and institutions (when recorded).
    pub node_transcripts: Vec<crate::link::Transcript>,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl LocalRun {
    /// The institutions' outputs and the first node's report, or the first error.
    /// Node errors come first: an institution usually fails only because a node did.
    pub fn into_result(self) -> Result<(Vec<PsiOutput>, NodeReport), PsiError> {
        let mut report = None;
        for r in self.nodes {
            let r = r?;
            report.get_or_insert(r);
        }
        let mut outs = Vec::new();
        for r in self.institutions {
            outs.push(r?);
        }
        Ok((outs, report.ok_or_else(|| usage("no nodes"))?))
    }
}

/// Runs a query with the nodes on `transports` (one per node) and the institutions as tasks
/// of this process, linked to every node.
pub async fn run_local<T: Transport>(transports: Vec<Arc<T>>, inputs: &[InputSet], options: &RunOptions) -> LocalRun {
    let inputs = inputs.iter().cloned().map(Input::Plain).collect();
    run_local_inputs(transports, inputs, None, options).await
}

/// A committed query (`cardinality` or `sum`): the institutions' openings and their
/// published commitments, which the nodes check on shares.
pub async fn run_local_committed<T: Transport>(
    transports: Vec<Arc<T>>,
    inputs: &[CommittedInput],
    commitments: &[Fr],
    options: &RunOptions,
) -> LocalRun {
    let inputs = inputs.iter().cloned().map(Input::Committed).collect();
    run_local_inputs(transports, inputs, Some(commitments.to_vec()), options).await
}

async fn run_local_inputs<T: Transport>(
    transports: Vec<Arc<T>>,
    inputs: Vec<Input>,
    commitments: Option<Vec<Fr>>,
    options: &RunOptions,
) -> LocalRun {
    let n = transports.len();
    let m = inputs.len();
    let start = std::time::Instant::now();
    let session = SessionId::random();
    let record = options.record;
    let inst_logs: Vec<crate::link::Transcript> = (0..m).map(|_| Default::default()).collect();
    let node_logs: Vec<crate::link::Transcript> = (0..n).map(|_| Default::default()).collect();
    let mut inst_links: Vec<Vec<Link>> = (0..m).map(|_| Vec::with_capacity(n)).collect();
    let mut node_links: Vec<Vec<Link>> = (0..n).map(|_| Vec::with_capacity(m)).collect();
    for (c, il) in inst_links.iter_mut().enumerate() {
        for (i, nl) in node_links.iter_mut().enumerate() {
            let (a, b) = Link::pair(
                &format!("institution {c}"),
                &format!("node {}", i + 1),
                record.then(|| inst_logs.get(c).cloned().unwrap_or_default()),
                record.then(|| node_logs.get(i).cloned().unwrap_or_default()),
            );
            il.push(a);
            nl.push(b);
        }
    }
    let mut node_tasks = Vec::with_capacity(n);
    for ((transport, links), log) in transports.into_iter().zip(node_links).zip(&node_logs) {
        let id = transport.id();
        let config = NodeConfig {
            t: options.t,
            security: options.security,
            session,
            mode: options.mode,
            commitments: commitments.clone(),
            proof: options.proof.clone(),
            cheat: options.cheat.and_then(|(p, c)| (p == id).then_some(c)),
        };
        if record {
            let rec = Arc::new(crate::link::Recording::new(transport, log.clone()));
            node_tasks.push(tokio::spawn(run_node(rec, config, links)));
        } else {
            node_tasks.push(tokio::spawn(run_node(transport, config, links)));
        }
    }
    let mut inst_tasks = Vec::with_capacity(m);
    let institution_keys = options.proof.as_ref().map(crate::proven::ProofKeys::institution_keys);
    for (c, links) in inst_links.into_iter().enumerate() {
        let input = inputs.get(c).cloned().unwrap_or(Input::Plain(InputSet::default()));
        let (t, mode) = (options.t, options.mode);
        let misbehaviour = Misbehaviour {
            duplicate_first_tag: options.duplicating_institution == Some(c),
            every_value: options.out_of_range_value.and_then(|(who, v)| (who == c).then_some(v)),
            mismatched_commitment: options.mismatched_commitment == Some(c),
            wrong_limbs: options.wrong_limbs == Some(c),
        };
        let proof = institution_keys.clone();
        inst_tasks.push(tokio::spawn(async move {
            institution(c, &input, t, mode, links, misbehaviour, proof.as_ref()).await
        }));
    }
    let mut institutions = Vec::with_capacity(m);
    let mut proofs = Vec::with_capacity(m);
    for task in inst_tasks {
        match join(task.await) {
            Ok((output, proof)) => {
                institutions.push(Ok(output));
                proofs.push(proof);
            }
            Err(e) => {
                institutions.push(Err(e));
                proofs.push(None);
            }
        }
    }
    let mut nodes = Vec::with_capacity(n);
    for task in node_tasks {
        nodes.push(join(task.await));
    }
    LocalRun {
        institutions,
        proofs,
        nodes,
        institution_transcripts: inst_logs,
        node_transcripts: node_logs,
        seconds: start.elapsed().as_secs_f64(),
    }
}

fn join<R>(r: Result<Result<R, PsiError>, tokio::task::JoinError>) -> Result<R, PsiError> {
    match r {
        Ok(r) => r,
        Err(e) => Err(PsiError::Usage(format!("task failed: {e}"))),
    }
}

/// QUIC options for a PSI cluster: a node may wait for others for as long as the slowest
/// institution's OPRF takes (minutes for 2^20 items on a small machine), so the receive
/// timeout is 10 minutes.
pub fn quic_options() -> tacit_mpc_engine::transport::quic::QuicOptions {
    tacit_mpc_engine::transport::quic::QuicOptions {
        recv_timeout: std::time::Duration::from_secs(600),
        idle_timeout: std::time::Duration::from_secs(600),
        ..Default::default()
    }
}

/// As [`run_local`] over a fresh in-memory network of `n` nodes.
pub async fn run_in_memory(n: usize, inputs: &[InputSet], options: &RunOptions) -> LocalRun {
    let transports = tacit_mpc_engine::transport::memory::MemoryTransport::network_with_timeout(
        n,
        std::time::Duration::from_secs(600),
    )
    .into_iter()
    .map(Arc::new)
    .collect();
    run_local(transports, inputs, options).await
}
