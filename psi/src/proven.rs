//! Proven queries (`cardinality`, `sum` with `--prove`): the result comes with a
//! collaborative Groth16 proof ([`crate::statement`]) that it is the intersection of the
//! tag lists the institutions committed to.
//!
//! The query runs the OPRF as in `set` mode (fresh key per query). Each institution then
//! truncates its tags to 63 bits ([`tag63`]), sorts and pads them to the statement's rows,
//! and publishes a commitment to its list for its slot ([`CommittedList`]); only then does it
//! deal the list (and the limbs of its differences and values, and their counts) to the
//! nodes. The nodes check every dealt list against its published commitment on shares
//! ([`check_commitments`]; a mismatch names the institution), shuffle and open the tags as
//! in the other modes, build the statement's hints from what they opened and what was dealt
//! ([`crate::statement::hints_from_parts`]), and prove ([`prove_statement`]).

use std::future::Future;
use std::sync::Arc;

use ark_bn254::Fr;
use ark_ff::UniformRand;
use rand::{CryptoRng, RngCore};
use tacit_circuits::mpc::Mpc;
use tacit_circuits::{CircuitError, R1cs};
use tacit_mpc_engine::{Engine, MpcError, Transport};
use tacit_prover::collaborative::{
    open_group_commitments, prove_committed, prove_committed_with, CollaborativeError, ProductMode,
};
use tacit_prover::committed::{self, CommitLayout, CommittedKeys, CommittedProof, GroupCommitment};
use tacit_prover::qap::R1csMatrices;

use crate::oprf::Tag;
use crate::statement::{
    institution_limbs, intersection_statement, limbs_fit, list_group, mpc_challenge, pad_list, Hints, InstitutionLimbs,
    Shape, StatementMode, StatementOutput,
};

/// Failures of proof setup and of the proven steps (the protocol maps them to `PsiError`).
#[derive(Debug, thiserror::Error)]
pub enum ProvenError {
    /// The statement could not be built or run (bad shape, unsatisfied on these inputs).
    #[error("statement: {0}")]
    Circuit(#[from] CircuitError),
    /// Setup, commitments or proving failed.
    #[error("proof: {0}")]
    Proof(String),
    /// The engine failed or detected a cheat.
    #[error(transparent)]
    Mpc(#[from] MpcError),
    /// Institution `institution`'s dealt list does not open its published commitment.
    #[error("institution {institution}: dealt list does not match its published commitment")]
    Commitment {
        /// 0-based slot.
        institution: usize,
    },
    /// Institution `institution` dealt limbs or counts that do not fit its list (the
    /// statement failed, and this was found on shares afterwards).
    #[error("institution {institution}: dealt limbs that do not fit its list")]
    Limbs {
        /// 0-based slot.
        institution: usize,
    },
}

fn from_circuit(e: CircuitError) -> ProvenError {
    match e {
        CircuitError::Mpc(e) => ProvenError::Mpc(e),
        other => ProvenError::Circuit(other),
    }
}

impl From<CollaborativeError> for ProvenError {
    fn from(e: CollaborativeError) -> Self {
        match e {
            CollaborativeError::Mpc(e) => Self::Mpc(e),
            other => Self::Proof(other.to_string()),
        }
    }
}

impl From<committed::CommitError> for ProvenError {
    fn from(e: committed::CommitError) -> Self {
        Self::Proof(e.to_string())
    }
}

/// The keys of one statement shape, shared by the nodes (proving) and the institutions
/// (committing, verifying).
#[derive(Clone, Debug)]
pub struct ProofKeys {
    /// The statement's shape.
    pub shape: Shape,
    /// Committed-group Groth16 keys.
    pub keys: Arc<CommittedKeys>,
    /// The statement's constraint matrices.
    pub matrices: Arc<R1csMatrices>,
}

/// Files of [`ProofKeys::write`] in its folder.
const SHAPE_FILE: &str = "shape.json";
const PROVING_KEY_FILE: &str = "proving_key.bin";
const COMMITMENT_KEYS_FILE: &str = "commitment_keys.bin";
const VERIFYING_KEY_FILE: &str = "verifying_key.bin";

impl ProofKeys {
    /// Writes the keys to `dir` (created if missing): the shape, the proving key, the
    /// groups' commitment keys and the verifying key.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), ProvenError> {
        let io = |e: std::io::Error| ProvenError::Proof(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let shape = serde_json::to_vec(&self.shape).map_err(|e| ProvenError::Proof(e.to_string()))?;
        std::fs::write(dir.join(SHAPE_FILE), shape).map_err(io)?;
        tacit_prover::keys::write_proving_key(&self.keys.pk, dir.join(PROVING_KEY_FILE))
            .map_err(|e| ProvenError::Proof(e.to_string()))?;
        std::fs::write(dir.join(COMMITMENT_KEYS_FILE), committed::to_bytes(&self.keys.commitment_keys)?).map_err(io)?;
        std::fs::write(dir.join(VERIFYING_KEY_FILE), committed::to_bytes(&self.keys.vk)?).map_err(io)?;
        Ok(())
    }

    /// Reads keys [`Self::write`] wrote, for the shape stored with them, and checks that
    /// they fit together: the proving key fits the statement's constraints (recomputed from
    /// the shape), each commitment key holds that key's points for its group and multiples
    /// of them by one `σ` (checked at a random combination with `[σ]₂`), and the verifying
    /// key is the proving key's reduced to the public inputs and the challenge. With
    /// `trusted` the proving key's points skip the subgroup checks
    /// (`tacit_prover::keys::read_proving_key_trusted`: only for files this party wrote and
    /// keeps where no one else can write).
    pub fn read(dir: &std::path::Path, trusted: bool) -> Result<Self, ProvenError> {
        Self::read_with(dir, |path| {
            if trusted {
                tacit_prover::keys::read_proving_key_trusted(path)
            } else {
                tacit_prover::keys::read_proving_key(path)
            }
            .map_err(|e| e.to_string())
        })
    }

    /// [`Self::read`] with the proving key read by `read_proving_key` from its file's path
    /// (a node passes one that uses its checked copy of a key it validated before).
    pub fn read_with(
        dir: &std::path::Path,
        read_proving_key: impl FnOnce(&std::path::Path) -> Result<ark_groth16::ProvingKey<ark_bn254::Bn254>, String>,
    ) -> Result<Self, ProvenError> {
        let io = |e: std::io::Error| ProvenError::Proof(format!("{}: {e}", dir.display()));
        let proof = |e: String| ProvenError::Proof(format!("{}: {e}", dir.display()));
        let shape: Shape = serde_json::from_slice(&std::fs::read(dir.join(SHAPE_FILE)).map_err(io)?)
            .map_err(|e| proof(e.to_string()))?;
        let (matrices, layout) = statement_matrices(shape)?;
        let pk = read_proving_key(&dir.join(PROVING_KEY_FILE)).map_err(proof)?;
        matrices.check_proving_key(&pk).map_err(|e| proof(e.to_string()))?;
        let bytes = std::fs::read(dir.join(COMMITMENT_KEYS_FILE)).map_err(io)?;
        let commitment_keys =
            committed::CommitmentKey::list_from_bytes(&bytes).map_err(|e| proof(format!("commitment keys: {e}")))?;
        let vk =
            committed::CommittedVerifyingKey::from_bytes(&std::fs::read(dir.join(VERIFYING_KEY_FILE)).map_err(io)?)?;
        if commitment_keys.len() != layout.groups().len() || vk.sigma_g2.len() != layout.groups().len() {
            return Err(proof("one commitment key and one sigma per group".into()));
        }
        let ic = &pk.vk.gamma_abc_g1;
        let mut rng = rand::rngs::OsRng;
        for ((range, key), sigma) in layout.groups().iter().zip(&commitment_keys).zip(&vk.sigma_g2) {
            if ic.get(range.clone()) != Some(key.basis.as_slice()) || key.knowledge.len() != key.basis.len() {
                return Err(proof(format!("the commitment key of {range:?} is not the proving key's")));
            }
            if !key.fits_sigma(sigma, &mut rng) {
                return Err(proof(format!("the knowledge key of {range:?} does not match its sigma")));
            }
        }
        let mut reduced = vec![ic.first().copied().unwrap_or_default()];
        for i in layout.public_indices().into_iter().chain([layout.challenge()]) {
            reduced.push(ic.get(i).copied().ok_or_else(|| proof("instance beyond the key".into()))?);
        }
        let expected = ark_groth16::VerifyingKey { gamma_abc_g1: reduced, ..pk.vk.clone() };
        if vk.vk != expected {
            return Err(proof("the verifying key is not the proving key's".into()));
        }
        let keys = CommittedKeys { pk, layout, commitment_keys, vk };
        Ok(Self { shape, keys: Arc::new(keys), matrices: Arc::new(matrices) })
    }

    /// The name these keys go by in a query (`tacit psi setup` prints it, a node keeps them
    /// as `<data_dir>/psi-keys/<id>/`): the hex BLAKE3 hash of the verifying key's file.
    /// [`Self::read`] checks that the other files fit the verifying key, so the id names
    /// what a proof must verify against.
    pub fn id(&self) -> Result<String, ProvenError> {
        Ok(blake3::hash(&committed::to_bytes(&self.keys.vk)?).to_hex().to_string())
    }

    /// The id and shape of the keys in `dir`, from the verifying key's file and the shape
    /// alone (without reading or checking the proving key: see [`Self::read_named`]).
    pub fn peek(dir: &std::path::Path) -> Result<(String, Shape), ProvenError> {
        let io = |e: std::io::Error| ProvenError::Proof(format!("{}: {e}", dir.display()));
        let shape: Shape = serde_json::from_slice(&std::fs::read(dir.join(SHAPE_FILE)).map_err(io)?)
            .map_err(|e| ProvenError::Proof(format!("{}: {e}", dir.display())))?;
        let vk = std::fs::read(dir.join(VERIFYING_KEY_FILE)).map_err(io)?;
        Ok((blake3::hash(&vk).to_hex().to_string(), shape))
    }

    /// [`Self::read`], and checks that the keys are the ones named `id`.
    pub fn read_named(dir: &std::path::Path, id: &str, trusted: bool) -> Result<Self, ProvenError> {
        Self::named(Self::read(dir, trusted)?, dir, id)
    }

    /// [`Self::read_with`], and checks that the keys are the ones named `id`.
    pub fn read_named_with(
        dir: &std::path::Path,
        id: &str,
        read_proving_key: impl FnOnce(&std::path::Path) -> Result<ark_groth16::ProvingKey<ark_bn254::Bn254>, String>,
    ) -> Result<Self, ProvenError> {
        Self::named(Self::read_with(dir, read_proving_key)?, dir, id)
    }

    fn named(keys: Self, dir: &std::path::Path, id: &str) -> Result<Self, ProvenError> {
        let found = keys.id()?;
        if !found.eq_ignore_ascii_case(id) {
            return Err(ProvenError::Proof(format!("{} holds keys {found}, not {id}", dir.display())));
        }
        Ok(keys)
    }

    /// Circuit-specific setup for `shape` (about 37 s at 3 x 2^12 rows on two cores; a
    /// trusted setup: whoever runs it could forge proofs).
    pub fn generate<R: RngCore + CryptoRng>(shape: Shape, rng: &mut R) -> Result<Self, ProvenError> {
        let (matrices, layout) = statement_matrices(shape)?;
        let keys = committed::setup(&matrices, layout, rng)?;
        Ok(Self { shape, keys: Arc::new(keys), matrices: Arc::new(matrices) })
    }

    /// The public inputs a proof of `output` has (`min_size` first in `sum` mode).
    pub fn public_inputs(&self, output: &StatementOutput<Fr>, min_size: Option<u64>) -> Vec<Fr> {
        public_inputs(output, min_size)
    }

    /// What an institution needs of these keys.
    pub fn institution_keys(&self) -> InstitutionKeys {
        InstitutionKeys {
            shape: self.shape,
            commitment_keys: Arc::new(self.keys.commitment_keys.clone()),
            vk: Arc::new(self.keys.vk.clone()),
        }
    }
}

/// The public inputs of a proof of `output` (`min_size` first in `sum` mode), without the
/// challenge.
pub fn public_inputs(output: &StatementOutput<Fr>, min_size: Option<u64>) -> Vec<Fr> {
    match output {
        StatementOutput::Cardinality(count) => vec![*count],
        StatementOutput::Sum { released, sum } => vec![Fr::from(min_size.unwrap_or(0)), *released, *sum],
    }
}

/// What an institution needs of a statement's keys: the shape, the groups' commitment keys
/// (to commit to its list) and the verifying key (to check the proof); not the proving key,
/// which is most of the keys' size and of the time to read and check them.
#[derive(Clone, Debug)]
pub struct InstitutionKeys {
    /// The statement's shape.
    pub shape: Shape,
    /// One commitment key per group, the institutions' first.
    pub commitment_keys: Arc<Vec<committed::CommitmentKey>>,
    /// The verifying key.
    pub vk: Arc<committed::CommittedVerifyingKey>,
}

impl InstitutionKeys {
    /// Reads the shape, commitment keys and verifying key of the keys in `dir` (written by
    /// [`ProofKeys::write`]), decoded with validation, and checks that they are the keys named
    /// `id` (the verifying key's hash), that the verifying key has the shape's public inputs,
    /// and that every group's commitment key has the shape's size and fits its `[σ]₂` (at a
    /// random combination). Whether the bases are the proving key's is the nodes' check: an
    /// institution holding others would publish a commitment that its dealt list does not
    /// open at the nodes, and be named.
    pub fn read(dir: &std::path::Path, id: &str) -> Result<Self, ProvenError> {
        let io = |e: std::io::Error| ProvenError::Proof(format!("{}: {e}", dir.display()));
        let fail = |e: String| ProvenError::Proof(format!("{}: {e}", dir.display()));
        let (shape, vk) = read_verifier(dir, id)?;
        let commitment_keys =
            committed::CommitmentKey::list_from_bytes(&std::fs::read(dir.join(COMMITMENT_KEYS_FILE)).map_err(io)?)?;
        let mut sizes = vec![shape.list_len(); shape.institutions];
        sizes.extend([shape.known_hints_len(), shape.secret_hints_len()]);
        if commitment_keys.len() != sizes.len() || vk.sigma_g2.len() != sizes.len() {
            return Err(fail("one commitment key and one sigma per group".into()));
        }
        let mut rng = rand::rngs::OsRng;
        for (g, ((key, sigma), size)) in commitment_keys.iter().zip(&vk.sigma_g2).zip(sizes).enumerate() {
            if key.basis.len() != size || key.knowledge.len() != size {
                return Err(fail(format!("the commitment key of group {g} does not fit the shape")));
            }
            if !key.fits_sigma(sigma, &mut rng) {
                return Err(fail(format!("the knowledge key of group {g} does not match its sigma")));
            }
        }
        Ok(Self { shape, commitment_keys: Arc::new(commitment_keys), vk: Arc::new(vk) })
    }

    /// The public inputs a proof of `output` has (`min_size` first in `sum` mode).
    pub fn public_inputs(&self, output: &StatementOutput<Fr>, min_size: Option<u64>) -> Vec<Fr> {
        public_inputs(output, min_size)
    }
}

/// The shape and verifying key of the keys in `dir`, checked to be the keys named `id` (the
/// verifying key's hash), decoded with validation, with the shape's public inputs: what
/// deploying their verifier needs, without reading the other keys.
pub fn read_verifier(
    dir: &std::path::Path,
    id: &str,
) -> Result<(Shape, committed::CommittedVerifyingKey), ProvenError> {
    let io = |e: std::io::Error| ProvenError::Proof(format!("{}: {e}", dir.display()));
    let fail = |e: String| ProvenError::Proof(format!("{}: {e}", dir.display()));
    let shape: Shape =
        serde_json::from_slice(&std::fs::read(dir.join(SHAPE_FILE)).map_err(io)?).map_err(|e| fail(e.to_string()))?;
    shape.check()?;
    let bytes = std::fs::read(dir.join(VERIFYING_KEY_FILE)).map_err(io)?;
    let found = blake3::hash(&bytes).to_hex().to_string();
    if !found.eq_ignore_ascii_case(id) {
        return Err(fail(format!("keys {found}, not {id}")));
    }
    let vk = committed::CommittedVerifyingKey::from_bytes(&bytes)?;
    let publics = public_inputs(&statement_output_of(shape.mode), Some(0)).len();
    if vk.vk.gamma_abc_g1.len() != publics + 2 {
        return Err(fail("the verifying key does not have the shape's public inputs".into()));
    }
    Ok((shape, vk))
}

/// An output of the statement's mode (for counting its public inputs).
fn statement_output_of(mode: StatementMode) -> StatementOutput<Fr> {
    match mode {
        StatementMode::Cardinality => StatementOutput::Cardinality(Fr::from(0u64)),
        StatementMode::Sum => StatementOutput::Sum { released: Fr::from(0u64), sum: Fr::from(0u64) },
    }
}

/// The statement's output and `min_size` behind an institution's result of a proven query
/// (`None` for `set` results or a result that does not fit the mode).
pub fn statement_output(output: &crate::PsiOutput, mode: crate::Mode) -> Option<(StatementOutput<Fr>, Option<u64>)> {
    use crate::{Mode, PsiOutput};
    use ark_ff::{One, Zero};
    match (output, mode) {
        (PsiOutput::Cardinality(c), Mode::Cardinality) => Some((StatementOutput::Cardinality(Fr::from(*c)), None)),
        (PsiOutput::Sum(Some(s)), Mode::Sum { min_size }) => {
            Some((StatementOutput::Sum { released: Fr::one(), sum: Fr::from(*s) }, Some(min_size)))
        }
        (PsiOutput::Sum(None), Mode::Sum { min_size }) => {
            Some((StatementOutput::Sum { released: Fr::zero(), sum: Fr::zero() }, Some(min_size)))
        }
        _ => None,
    }
}

/// The statement mode of a query mode (`None` for `set` modes, which are not proven).
pub fn statement_mode(mode: crate::Mode) -> Option<StatementMode> {
    match mode {
        crate::Mode::Cardinality => Some(StatementMode::Cardinality),
        crate::Mode::Sum { .. } => Some(StatementMode::Sum),
        _ => None,
    }
}

/// A shape for a proven query over sets of at most `rows` items: 16-bit limbs from 2^11
/// rows in all (where their 2^16-entry table pays off), 8-bit below.
pub fn shape_for(institutions: usize, rows: usize, mode: crate::Mode) -> Option<Shape> {
    let mode = statement_mode(mode)?;
    let limb_bits = if institutions * rows >= 1 << 11 { 16 } else { 8 };
    Some(Shape { institutions, rows: rows.max(1), mode, limb_bits })
}

/// The statement's constraint matrices and committed layout for `shape` (setup mode).
fn statement_matrices(shape: Shape) -> Result<(R1csMatrices, CommitLayout), ProvenError> {
    let mut b = R1cs::<Fr>::new_setup();
    let min_size = (shape.mode == StatementMode::Sum).then_some(0);
    // `R1cs` never waits, so one poll finishes the statement (and this works inside or
    // outside an async runtime).
    let lists = vec![None; shape.institutions];
    {
        let mut statement = std::pin::pin!(intersection_statement(&mut b, &shape, &lists, None, min_size));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match statement.as_mut().poll(&mut context) {
            std::task::Poll::Ready(result) => result?,
            std::task::Poll::Pending => return Err(ProvenError::Proof("the setup-mode statement waited".into())),
        };
    }
    let matrices = R1csMatrices::from_cs(&b.constraint_system()?).map_err(|e| ProvenError::Proof(e.to_string()))?;
    let challenge = b.challenge_index().ok_or_else(|| ProvenError::Proof("no challenge".into()))?;
    let layout = CommitLayout::new(matrices.num_instance_variables(), b.committed_groups().to_vec(), challenge)?;
    Ok((matrices, layout))
}

/// The 63-bit integer a tag enters the statement as: its first eight bytes, little-endian,
/// top bit cleared. Two items of one list collide with probability about `n² / 2^64`.
pub fn tag63(tag: &Tag) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(tag.get(..8).unwrap_or(&[0u8; 8]));
    u64::from_le_bytes(first) >> 1
}

/// An institution's committed list: what it publishes and what it deals.
#[derive(Clone)]
pub struct CommittedList {
    /// Its slot (0-based position among the query's institutions).
    pub slot: usize,
    /// The statement group: padded sorted tags, values (`sum`), blinder.
    group: Vec<Fr>,
    /// Limbs of its differences and values, and their counts.
    limbs: InstitutionLimbs<Fr>,
    /// The published commitment.
    pub commitment: GroupCommitment,
}

impl std::fmt::Debug for CommittedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedList").field("slot", &self.slot).field("commitment", &self.commitment).finish()
    }
}

impl CommittedList {
    /// The list of `(tag63, value)` pairs (distinct tags) for `slot`, with a fresh blinder.
    pub fn new<R: RngCore + CryptoRng>(
        keys: &InstitutionKeys,
        slot: usize,
        items: &[(u64, u64)],
        rng: &mut R,
    ) -> Result<Self, ProvenError> {
        let shape = &keys.shape;
        let key = keys
            .commitment_keys
            .get(slot)
            .filter(|_| slot < shape.institutions)
            .ok_or_else(|| ProvenError::Proof(format!("no slot {slot}")))?;
        let (tags, values) = pad_list(shape.rows, items, rng)?;
        let group = list_group(shape, &tags, &values, Fr::rand(rng));
        let limbs = institution_limbs::<Fr>(shape, &tags, &values)?;
        let commitment = key.commit(&group)?;
        Ok(Self { slot, group, limbs, commitment })
    }

    /// What it deals to the nodes: the group, then its limbs and counts
    /// ([`InstitutionLimbs::to_vec`]).
    pub fn dealt(&self) -> Vec<Fr> {
        let mut out = self.group.clone();
        out.extend(self.limbs.to_vec());
        out
    }
}

impl Drop for CommittedList {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for v in self.group.iter_mut().chain(self.limbs.iter_mut()) {
            v.zeroize();
        }
    }
}

/// Length of what one institution deals for `shape`.
pub fn dealt_len(shape: &Shape) -> usize {
    shape.list_len() + InstitutionLimbs::<Fr>::len(shape)
}

/// Splits this node's shares of one institution's dealt vector into its group and limbs.
pub fn split_dealt(shape: &Shape, dealt: &[Fr]) -> Option<(Vec<Fr>, InstitutionLimbs<Fr>)> {
    if dealt.len() != dealt_len(shape) {
        return None;
    }
    let (group, rest) = dealt.split_at(shape.list_len());
    Some((group.to_vec(), InstitutionLimbs::from_slice(shape, rest)?))
}

/// Opens every institution's commitment computed on the dealt shares and compares it with
/// the published one; the first mismatch names its institution.
pub async fn check_commitments<T: Transport>(
    engine: &mut Engine<Fr, T>,
    keys: &ProofKeys,
    groups: &[Vec<Fr>],
    published: &[GroupCommitment],
) -> Result<(), ProvenError> {
    let pairs: Vec<_> = keys.keys.commitment_keys.iter().zip(groups).map(|(k, g)| (k, g.as_slice())).collect();
    if pairs.len() != published.len() || pairs.len() != keys.shape.institutions {
        return Err(ProvenError::Proof("one list and one commitment per institution".into()));
    }
    let opened = open_group_commitments(engine, &pairs).await?;
    if let Some(institution) = opened.iter().zip(published).position(|(o, p)| o != p) {
        return Err(ProvenError::Commitment { institution });
    }
    Ok(())
}

/// Runs the statement on shares and proves it; returns the output, the proof and the
/// engine. `limbs[c]`: this node's shares of institution `c`'s dealt limbs (also inside
/// `hints`), for blame: if the statement does not hold, the nodes check every
/// institution's limbs against its list ([`limbs_fit`]) and name the first that does not
/// fit. On a failure that is not the engine's, the peers are told to abort.
pub async fn prove_statement<T: Transport>(
    engine: Engine<Fr, T>,
    keys: &ProofKeys,
    groups: &[Vec<Fr>],
    limbs: &[InstitutionLimbs<Fr>],
    hints: &Hints<Fr>,
    min_size: Option<u64>,
) -> Result<(StatementOutput<Fr>, CommittedProof, Engine<Fr, T>), ProvenError> {
    let (deriver, opened) = mpc_challenge(keys.keys.clone());
    let mut b = Mpc::new(engine).with_challenge(deriver);
    let lists: Vec<Option<Vec<Fr>>> = groups.iter().cloned().map(Some).collect();
    let run = intersection_statement(&mut b, &keys.shape, &lists, Some(hints), min_size).await;
    // Every honest node sees the same opened values, so all take the same branch here.
    let settled = match run {
        Ok(output) => b.settle_zero_claims().await.map(|()| output),
        Err(e) => Err(e),
    };
    let output = match settled {
        Ok(o) => o,
        Err(CircuitError::Mpc(e)) => return Err(e.into()),
        Err(CircuitError::Unsatisfied(reason)) => return Err(blame(b.into_engine(), keys, groups, limbs, reason).await),
        Err(other) => {
            b.engine().abort_with(MpcError::Usage(format!("psi statement: {other}"))).await;
            return Err(other.into());
        }
    };
    let (assignment, mut engine) = b.finish().await?;
    let groups = opened.lock().ok().and_then(|mut g| g.take());
    let (instance, witness) = (&assignment.instance, &assignment.witness);
    let proof = match groups {
        // The commitments the challenge came from (same shares): not computed again.
        Some(groups) => {
            prove_committed_with(
                &mut engine,
                &keys.keys,
                &keys.matrices,
                instance,
                witness,
                ProductMode::default(),
                groups,
            )
            .await?
        }
        None => {
            prove_committed(&mut engine, &keys.keys, &keys.matrices, instance, witness, ProductMode::default()).await?
        }
    };
    Ok((output, proof, engine))
}

/// After an unsatisfied statement: the first institution whose limbs do not fit its list,
/// checked at a fresh public coin; if every institution's fit, the statement failed on the
/// nodes' side and `reason` is returned. The engine's multiplications are verified before
/// anyone is named, so a node cheating in the check is caught as such.
async fn blame<T: Transport>(
    mut engine: Engine<Fr, T>,
    keys: &ProofKeys,
    groups: &[Vec<Fr>],
    limbs: &[InstitutionLimbs<Fr>],
    reason: String,
) -> ProvenError {
    let check = async {
        let alpha = engine.coin().await?;
        let mut b = Mpc::new(engine);
        let fits = limbs_fit(&mut b, &keys.shape, groups, limbs, alpha).await.map_err(from_circuit)?;
        b.finish().await.map_err(from_circuit)?;
        Ok::<_, ProvenError>(fits)
    };
    match check.await {
        Ok(fits) => match fits.iter().position(|fit| !fit) {
            Some(institution) => ProvenError::Limbs { institution },
            None => ProvenError::Circuit(CircuitError::Unsatisfied(reason)),
        },
        Err(e) => e,
    }
}

/// An institution's check of the proof it received: it verifies for `output` and holds, for
/// the institution's slot, exactly the commitment it published.
pub fn check_proof(
    keys: &InstitutionKeys,
    output: &StatementOutput<Fr>,
    min_size: Option<u64>,
    proof: &CommittedProof,
    slot: usize,
    published: &GroupCommitment,
) -> Result<bool, ProvenError> {
    if proof.groups.get(slot) != Some(published) {
        return Ok(false);
    }
    Ok(keys.vk.verify(&keys.public_inputs(output, min_size), proof)?)
}
