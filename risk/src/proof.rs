//! The collaborative Groth16 proof of a weighted-score release.
//!
//! Statement (public inputs: one commitment per institution, then the released raw noisy
//! score of each released key, in key order):
//! - each institution's committed vector `[counts ‖ aggregate_0 ‖ … ]` with its salt opens
//!   its commitment (Poseidon tree, see [`commit_values`]);
//! - for each released key `k`, a score `s_k` with `|sum_j w_j * sum_i agg_ijk - 2^f s_k| < 2^f`
//!   (the probabilistic truncation of the exact weighted sum);
//! - a noise `e_k` with `|e_k| < 2^L` for the declared digit count `L`;
//! - `released_k = s_k + e_k`.
//!
//! Inputs are committed by the institutions before the query (the commitment is published,
//! e.g. posted on chain; the salt is secret-shared with the values). The circuit is written
//! once over [`Backend`]: `R1cs` in setup mode gives the keys, `Mpc` computes the shared
//! witness from the nodes' shares, and the nodes prove collaboratively.
//! The proof covers the score; the flag (`released >= threshold`) is then a public check.
//! Cohort membership of the released keys is not in the circuit.

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_snark::SNARK;
use tacit_circuits::gadgets::poseidon::{poseidon_hash, poseidon_reference};
use tacit_circuits::{Backend, CircuitError, R1cs};
use tacit_mpc_engine::field::{from_i128, pow2};
use tacit_prover::qap::R1csMatrices;

use crate::table::InstitutionInput;
use crate::RiskError;

/// Values per leaf hash of a commitment.
pub const LEAF: usize = 12;

/// Largest committed vector.
pub const MAX_COMMITTED: usize = 1 << 20;

fn circuit(e: CircuitError) -> RiskError {
    match e {
        CircuitError::Mpc(e) => RiskError::Mpc(e),
        other => RiskError::Proof(other.to_string()),
    }
}

/// The commitment to `values` with `salt`: a Poseidon tree of arity [`LEAF`] over the
/// values (each node hashes [`LEAF`] children, the last node of a level padded with zeros)
/// until at most [`LEAF`] - 1 hashes remain, then the root `Poseidon(salt, those…)`.
pub fn commit_values(salt: Fr, values: &[Fr]) -> Result<Fr, RiskError> {
    if values.is_empty() || values.len() > MAX_COMMITTED {
        return Err(RiskError::Proof(format!("cannot commit to {} values (at most {MAX_COMMITTED})", values.len())));
    }
    let mut level = values.to_vec();
    loop {
        let mut next = Vec::with_capacity(level.len().div_ceil(LEAF));
        for chunk in level.chunks(LEAF) {
            let mut node = chunk.to_vec();
            node.resize(LEAF, Fr::from(0u64));
            next.push(poseidon_reference(&node).map_err(circuit)?);
        }
        level = next;
        if level.len() < LEAF {
            break;
        }
    }
    let mut root = vec![salt];
    root.extend(level);
    poseidon_reference(&root).map_err(circuit)
}

/// An institution's committed vector: counts, then each aggregate, as field elements.
pub fn committed_values(input: &InstitutionInput) -> Vec<Fr> {
    input
        .counts
        .iter()
        .map(|c| Fr::from(*c))
        .chain(input.aggregates.iter().flatten().map(|v| from_i128::<Fr>(*v)))
        .collect()
}

/// The public statement of a weighted-score release.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreStatement {
    /// Institutions' commitments, in template order.
    pub commitments: Vec<Fr>,
    /// Released keys (indices into the template's keys).
    pub released_keys: Vec<usize>,
    /// Released raw noisy scores (field encoding of the signed fixed-point integers).
    pub released: Vec<Fr>,
    /// Raw fixed-point weight of each aggregate.
    pub weights: Vec<i128>,
    /// Fractional bits.
    pub f: u32,
    /// Noise digits `L`: `|noise| < 2^L`.
    pub noise_bits: u32,
    /// Keys in the universe.
    pub keys: usize,
}

impl ScoreStatement {
    /// The public inputs, in circuit order.
    pub fn public_inputs(&self) -> Vec<Fr> {
        self.commitments.iter().chain(&self.released).copied().collect()
    }

    fn per_institution(&self) -> usize {
        self.keys * (1 + self.weights.len())
    }

    /// Length of the witness values the circuit takes: per institution its salt and vector,
    /// then the scores, then the noise.
    pub fn witness_len(&self) -> usize {
        self.commitments.len() * (1 + self.per_institution()) + 2 * self.released.len()
    }
}

/// The circuit. `values` (length [`ScoreStatement::witness_len`]) are the clear values in
/// `Plain`/`R1cs` prove mode, `None` in setup mode, this party's shares in `Mpc`.
pub async fn score_circuit<B: Backend<F = Fr>>(
    b: &mut B,
    stmt: &ScoreStatement,
    values: Option<&[Fr]>,
) -> Result<(), RiskError> {
    let inst = stmt.commitments.len();
    let m = stmt.per_institution();
    let p = stmt.released.len();
    if stmt.released_keys.len() != p || m > MAX_COMMITTED || m == 0 {
        return Err(RiskError::Proof("statement shape".into()));
    }
    let public = b.public_inputs(&stmt.public_inputs()).map_err(circuit)?;
    let w = b.dealt_inputs(values, stmt.witness_len()).map_err(circuit)?;
    let get = |i: usize| -> Result<B::Value, RiskError> {
        w.get(i).cloned().ok_or_else(|| RiskError::Proof("witness too short".into()))
    };
    let zero = b.constant(Fr::from(0u64));
    // Commitments: the same tree as `commit_values`, one batch per level for everyone.
    let mut levels: Vec<Vec<B::Value>> = Vec::with_capacity(inst);
    for i in 0..inst {
        let base = i * (1 + m) + 1;
        levels.push((0..m).map(|j| get(base + j)).collect::<Result<_, _>>()?);
    }
    loop {
        let per = levels.first().map_or(0, |l| l.len().div_ceil(LEAF));
        let mut nodes = Vec::with_capacity(inst * per);
        for level in &levels {
            for chunk in level.chunks(LEAF) {
                let mut node = chunk.to_vec();
                node.resize(LEAF, zero.clone());
                nodes.push(node);
            }
        }
        let hashes = poseidon_hash(b, &nodes).await.map_err(circuit)?;
        levels = hashes.chunks(per.max(1)).map(<[B::Value]>::to_vec).collect();
        if per < LEAF {
            break;
        }
    }
    let mut roots = Vec::with_capacity(inst);
    for (i, level) in levels.iter().enumerate() {
        let mut root = vec![get(i * (1 + m))?];
        root.extend(level.iter().cloned());
        roots.push(root);
    }
    let root_hashes = poseidon_hash(b, &roots).await.map_err(circuit)?;
    let mut zeros = Vec::new();
    for (r, c) in root_hashes.iter().zip(&public) {
        zeros.push(b.sub(r, c));
    }
    // Scores, noise, released.
    let scores_at = inst * (1 + m);
    let two_f = pow2::<Fr>(stmt.f);
    let mut rems = Vec::with_capacity(p);
    let mut noises = Vec::with_capacity(p);
    for (slot, key) in stmt.released_keys.iter().enumerate() {
        if *key >= stmt.keys {
            return Err(RiskError::Proof("released key out of range".into()));
        }
        let mut terms = Vec::new();
        for i in 0..inst {
            let base = i * (1 + m) + 1;
            for (a, wt) in stmt.weights.iter().enumerate() {
                let v = get(base + stmt.keys * (1 + a) + key)?;
                terms.push(b.scale(&v, from_i128(*wt)));
            }
        }
        let exact = b.sum(&terms);
        let score = get(scores_at + slot)?;
        let noise = get(scores_at + p + slot)?;
        let rem = b.sub(&exact, &b.scale(&score, two_f));
        rems.push(b.add_constant(&rem, two_f));
        noises.push(b.add_constant(&noise, pow2::<Fr>(stmt.noise_bits)));
        let released = public.get(inst + slot).cloned().ok_or_else(|| RiskError::Proof("public inputs".into()))?;
        zeros.push(b.sub(&released, &b.add(&score, &noise)));
    }
    b.assert_zero(&zeros).map_err(circuit)?;
    if stmt.f > 0 {
        b.to_bits(&rems, stmt.f + 1).await.map_err(circuit)?;
    }
    b.to_bits(&noises, stmt.noise_bits + 1).await.map_err(circuit)?;
    Ok(())
}

/// Groth16 keys of a statement's circuit (a local trusted setup; a deployment runs a
/// ceremony per template shape).
#[derive(Debug)]
pub struct Keys {
    /// Proving key.
    pub pk: ProvingKey<Bn254>,
    /// Prepared verifying key.
    pub pvk: PreparedVerifyingKey<Bn254>,
    /// Constraint matrices.
    pub matrices: R1csMatrices,
}

/// Generates keys for the statement's shape.
pub async fn setup(stmt: &ScoreStatement) -> Result<Keys, RiskError> {
    let mut r1cs = R1cs::<Fr>::new_setup();
    score_circuit(&mut r1cs, stmt, None).await?;
    let cs = r1cs.constraint_system().map_err(circuit)?;
    let (pk, matrices) =
        tacit_prover::keys::setup_from_cs(&cs, &mut rand::thread_rng()).map_err(|e| RiskError::Proof(e.to_string()))?;
    let pvk = Groth16::<Bn254>::process_vk(&pk.vk).map_err(|e| RiskError::Proof(e.to_string()))?;
    Ok(Keys { pk, pvk, matrices })
}

/// Checks a proof against the statement.
pub fn verify(stmt: &ScoreStatement, pvk: &PreparedVerifyingKey<Bn254>, proof: &Proof<Bn254>) -> bool {
    Groth16::<Bn254>::verify_proof(pvk, proof, &stmt.public_inputs()).unwrap_or(false)
}
