//! Groth16 with committed wires: the proof carries Pedersen commitments to chosen groups of
//! witness values, and a challenge hashed from them is a public input of the circuit (the
//! construction of LegoGroth16 and of gnark's commitment extension).
//!
//! Why: a circuit that checks a permutation, a lookup or a polynomial identity at a random
//! point needs that point drawn *after* the values it is checked on are fixed. Hashing those
//! values inside the circuit costs tens of constraints per value; here they are bound by a
//! commitment outside the circuit instead, and the verifier derives the challenge itself.
//! A group can also be committed by someone else before the proof exists (an institution
//! publishing the commitment to its input): the proof is then about exactly those values.
//!
//! How, on top of plain Groth16 (ark-groth16's keys, unchanged):
//!
//! * The circuit allocates every committed value as an **instance** variable, so the setup
//!   gives it the verifier's point `K_i = [(β·u_i(τ) + α·v_i(τ) + w_i(τ)) / γ]₁`. The
//!   reduction's instance copy rows give each instance variable its own Lagrange term, so the
//!   `K_i` are independent and none is the identity: `D = Σ z_i·K_i` is a binding Pedersen
//!   commitment to the group's values.
//! * The prover computes the ordinary proof `(A, B, C)` over the full assignment, and for each
//!   group `D_g = Σ_{i∈g} z_i·K_i`. The verifier adds `Σ_g D_g` to its input point in place
//!   of the values, which it never sees.
//! * A **knowledge proof** per group stops a prover from putting anything else into `D_g`
//!   (say a multiple of another group's points, or of the public inputs'): the setup draws a
//!   secret `σ_g` per group and publishes `σ_g·K_i` for the group's points and `[σ_g]₂`; the
//!   prover sends `P_g = Σ z_i·σ_g·K_i`, and the verifier checks `e(D_g, [σ_g]₂) = e(P_g, G₂)`.
//!   One `σ` per group, not one for all: with a shared `σ` a value could move between groups.
//! * **Hiding**: `D_g` reveals nothing when the group contains one value drawn uniformly at
//!   random and used nowhere else (its `K_i` is not the identity, so it masks `D_g`
//!   perfectly). The circuit must allocate that blinding value; this module cannot tell.
//! * The **challenge** is `keccak256(x_1 ‖ … ‖ x_N ‖ D_1.x ‖ D_1.y ‖ … ‖ D_s.x ‖ D_s.y) mod r`,
//!   every word 32 bytes big-endian (the identity as `(0, 0)`), over the public inputs `x` in
//!   order (all fixed before the challenge) and the commitments. The on-chain verifier
//!   computes the same.
//!
//! The reduced verifying key ([`CommittedVerifyingKey`]) keeps only the input points the
//! verifier uses: the constant's, the public inputs' in order, then the challenge's.

use std::ops::Range;

use ark_bn254::{Bn254, Fq, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup, VariableBaseMSM};
use ark_ff::{BigInteger, PrimeField, UniformRand, Zero};
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, SerializationError, Validate};
use ark_std::rand::{CryptoRng, RngCore};
use sha3::{Digest, Keccak256};

use crate::keys::{check_verifying_key, setup_from_matrices, KeyError};
use crate::qap::{check_satisfied, prove_single, QapError, R1csMatrices};

/// Failures of committed-wire setup, proving and verification.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The layout does not fit the circuit (overlapping or empty groups, out of range).
    #[error("commit layout: {0}")]
    Layout(String),
    /// Setup or key decoding failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The prover's steps failed (shapes, an unsatisfied assignment).
    #[error(transparent)]
    Qap(#[from] QapError),
    /// The assignment's challenge is not the hash of its public inputs and commitments.
    #[error("the assignment's challenge is not the one its commitments give")]
    WrongChallenge,
    /// Lengths disagree (values per group, number of commitments, public inputs).
    #[error("{what}: expected {expected}, got {got}")]
    Length {
        /// What was counted.
        what: &'static str,
        /// What the key needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// Bytes do not decode to a valid key or proof.
    #[error("decoding: {0}")]
    Decode(#[from] SerializationError),
    /// Bytes left over after a complete encoding.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// Result of this module.
pub type Result<T, E = CommitError> = std::result::Result<T, E>;

/// Which instance variables of a circuit are committed, and which one is the challenge.
/// Indices are positions in the full assignment `z = [1, instance..., witness...]`; every
/// other instance variable (index `>= 1`) is an ordinary public input, in index order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitLayout {
    num_instance_variables: usize,
    groups: Vec<Range<usize>>,
    challenge: usize,
}

impl CommitLayout {
    /// Checks the layout: groups non-empty, disjoint, within `1..num_instance_variables`;
    /// the challenge an instance variable outside every group; at least one group.
    pub fn new(num_instance_variables: usize, groups: Vec<Range<usize>>, challenge: usize) -> Result<Self> {
        let instance = 1..num_instance_variables;
        if groups.is_empty() {
            return Err(CommitError::Layout("no committed group".into()));
        }
        for (g, range) in groups.iter().enumerate() {
            if range.is_empty() || range.start < instance.start || range.end > instance.end {
                return Err(CommitError::Layout(format!("group {g} ({range:?}) is empty or not within {instance:?}")));
            }
            if let Some(other) = groups.iter().skip(g + 1).find(|o| o.start < range.end && range.start < o.end) {
                return Err(CommitError::Layout(format!("groups {range:?} and {other:?} overlap")));
            }
        }
        if !instance.contains(&challenge) || groups.iter().any(|r| r.contains(&challenge)) {
            return Err(CommitError::Layout(format!("challenge index {challenge} is not a free instance variable")));
        }
        Ok(Self { num_instance_variables, groups, challenge })
    }

    /// The committed groups, as index ranges of the full assignment.
    pub fn groups(&self) -> &[Range<usize>] {
        &self.groups
    }

    /// The challenge's index in the full assignment.
    pub fn challenge(&self) -> usize {
        self.challenge
    }

    /// Indices of the ordinary public inputs, in order.
    pub fn public_indices(&self) -> Vec<usize> {
        (1..self.num_instance_variables)
            .filter(|i| *i != self.challenge && !self.groups.iter().any(|r| r.contains(i)))
            .collect()
    }

    /// The ordinary public inputs inside a full assignment.
    pub fn public_inputs(&self, z: &[Fr]) -> Result<Vec<Fr>> {
        self.public_indices()
            .into_iter()
            .map(|i| z.get(i).copied().ok_or(CommitError::Length { what: "assignment", expected: i + 1, got: z.len() }))
            .collect()
    }

    /// The values of group `g` inside a full assignment.
    pub fn group_values<'z>(&self, g: usize, z: &'z [Fr]) -> Result<&'z [Fr]> {
        let range = self.groups.get(g).ok_or(CommitError::Length {
            what: "group index",
            expected: self.groups.len(),
            got: g,
        })?;
        z.get(range.clone()).ok_or(CommitError::Length { what: "assignment", expected: range.end, got: z.len() })
    }
}

/// What the prover (or an institution committing ahead of the proof) needs for one group:
/// the group's points `K_i` and their multiples `σ·K_i`.
#[derive(Clone, Debug, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct CommitmentKey {
    /// `K_i`, one per value of the group.
    pub basis: Vec<G1Affine>,
    /// `σ·K_i`.
    pub knowledge: Vec<G1Affine>,
}

/// One group's commitment as it travels in a proof: `D = Σ z_i·K_i` and `P = Σ z_i·σ·K_i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, CanonicalSerialize, CanonicalDeserialize)]
pub struct GroupCommitment {
    /// `D`.
    pub commitment: G1Affine,
    /// `P`, the proof of knowledge.
    pub knowledge: G1Affine,
}

/// The verifier's key: Groth16's with `gamma_abc_g1 = [IC_0, IC_public..., IC_challenge]`,
/// and `[σ_g]₂` per group.
#[derive(Clone, Debug, PartialEq, CanonicalSerialize, CanonicalDeserialize)]
pub struct CommittedVerifyingKey {
    /// Groth16's key, reduced to the points the verifier uses (the challenge's last).
    pub vk: VerifyingKey<Bn254>,
    /// `[σ_g]₂`, one per group.
    pub sigma_g2: Vec<G2Affine>,
}

/// A proof with its group commitments, in the groups' order.
#[derive(Clone, Debug, PartialEq, CanonicalSerialize, CanonicalDeserialize)]
pub struct CommittedProof {
    /// The Groth16 proof over the full assignment.
    pub proof: Proof<Bn254>,
    /// One commitment per group.
    pub groups: Vec<GroupCommitment>,
}

/// Everything setup produces.
#[derive(Clone, Debug)]
pub struct CommittedKeys {
    /// The ordinary proving key (committed values are its instance variables).
    pub pk: ProvingKey<Bn254>,
    /// The circuit's layout.
    pub layout: CommitLayout,
    /// One commitment key per group.
    pub commitment_keys: Vec<CommitmentKey>,
    /// The verifier's key.
    pub vk: CommittedVerifyingKey,
}

/// Circuit-specific setup with committed groups: ark-groth16's setup on `matrices`, then a
/// fresh `σ_g` per group (dropped once its multiples exist).
pub fn setup<R: RngCore + CryptoRng>(
    matrices: &R1csMatrices,
    layout: CommitLayout,
    rng: &mut R,
) -> Result<CommittedKeys> {
    if layout.num_instance_variables != matrices.num_instance_variables() {
        return Err(CommitError::Length {
            what: "instance variables of the layout",
            expected: matrices.num_instance_variables(),
            got: layout.num_instance_variables,
        });
    }
    let pk = setup_from_matrices(matrices, rng)?;
    let ic = &pk.vk.gamma_abc_g1;
    let mut commitment_keys = Vec::with_capacity(layout.groups.len());
    let mut sigma_g2 = Vec::with_capacity(layout.groups.len());
    for range in &layout.groups {
        let basis = ic.get(range.clone()).ok_or(CommitError::Layout(format!("{range:?} beyond the key")))?.to_vec();
        if basis.iter().any(|p| p.is_zero()) {
            // Cannot happen with the instance copy rows; a zero point would commit to nothing.
            return Err(CommitError::Layout(format!("a point of group {range:?} is the identity")));
        }
        let sigma = loop {
            let s = Fr::rand(rng);
            if !s.is_zero() {
                break s;
            }
        };
        let knowledge = G1Projective::normalize_batch(&basis.iter().map(|p| *p * sigma).collect::<Vec<_>>());
        commitment_keys.push(CommitmentKey { basis, knowledge });
        sigma_g2.push((G2Projective::generator() * sigma).into_affine());
    }
    let mut reduced = vec![ic.first().copied().ok_or(CommitError::Layout("empty key".into()))?];
    for i in layout.public_indices().into_iter().chain([layout.challenge]) {
        reduced.push(*ic.get(i).ok_or(CommitError::Layout(format!("instance {i} beyond the key")))?);
    }
    let vk = CommittedVerifyingKey { vk: VerifyingKey { gamma_abc_g1: reduced, ..pk.vk.clone() }, sigma_g2 };
    Ok(CommittedKeys { pk, layout, commitment_keys, vk })
}

fn msm(bases: &[G1Affine], scalars: &[Fr]) -> G1Projective {
    let bigints: Vec<_> = scalars.iter().map(|s| s.into_bigint()).collect();
    G1Projective::msm_bigint(bases, &bigints)
}

impl GroupCommitment {
    /// Decodes and validates a commitment (both points in the subgroup, nothing left over).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        decode_exact(bytes)
    }
}

impl CommitmentKey {
    /// Commits to a group's values (blinding value included): `D` and `P`.
    pub fn commit(&self, values: &[Fr]) -> Result<GroupCommitment> {
        if values.len() != self.basis.len() || self.knowledge.len() != self.basis.len() {
            return Err(CommitError::Length {
                what: "values of the group",
                expected: self.basis.len(),
                got: values.len(),
            });
        }
        Ok(GroupCommitment {
            commitment: msm(&self.basis, values).into_affine(),
            knowledge: msm(&self.knowledge, values).into_affine(),
        })
    }

    /// Decodes a key and validates it (points in the subgroup, equal lengths, no identity).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key: Self = decode_exact(bytes)?;
        key.check_points()?;
        Ok(key)
    }

    /// Decodes one key per group, as [`to_bytes`] writes a `Vec` of them, each validated as
    /// by [`Self::from_bytes`].
    pub fn list_from_bytes(bytes: &[u8]) -> Result<Vec<Self>> {
        let keys: Vec<Self> = decode_exact(bytes)?;
        for key in &keys {
            key.check_points()?;
        }
        Ok(keys)
    }

    fn check_points(&self) -> Result<()> {
        if self.basis.len() != self.knowledge.len() || self.basis.iter().chain(&self.knowledge).any(|p| p.is_zero()) {
            return Err(CommitError::Decode(SerializationError::InvalidData));
        }
        Ok(())
    }

    /// Whether the knowledge points are the basis times the `σ` of `sigma_g2 = [σ]₂`,
    /// checked at a random combination: `e(Σ w_i K_i, [σ]₂) = e(Σ w_i σK_i, G₂)` (a key that
    /// does not fit passes with probability `1/r`).
    pub fn fits_sigma<R: RngCore + ?Sized>(&self, sigma_g2: &G2Affine, rng: &mut R) -> bool {
        if self.basis.len() != self.knowledge.len() {
            return false;
        }
        let weights: Vec<Fr> = (0..self.basis.len()).map(|_| Fr::rand(rng)).collect();
        Bn254::pairing(msm(&self.basis, &weights), *sigma_g2)
            == Bn254::pairing(msm(&self.knowledge, &weights), G2Affine::generator())
    }
}

fn decode_exact<T: CanonicalDeserialize>(bytes: &[u8]) -> Result<T> {
    let mut reader = bytes;
    let value = T::deserialize_with_mode(&mut reader, Compress::Yes, Validate::Yes)?;
    if !reader.is_empty() {
        return Err(CommitError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

/// Compressed encoding of any of this module's keys or proofs.
pub fn to_bytes<T: CanonicalSerialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(value.compressed_size());
    value.serialize_compressed(&mut out)?;
    Ok(out)
}

fn word<F: PrimeField>(x: &F) -> [u8; 32] {
    let bytes = x.into_bigint().to_bytes_be();
    let mut word = [0u8; 32];
    word[32 - bytes.len()..].copy_from_slice(&bytes);
    word
}

/// The challenge for these public inputs and commitments (see the module docs).
pub fn challenge(public_inputs: &[Fr], commitments: &[G1Affine]) -> Fr {
    let mut hash = Keccak256::new();
    for x in public_inputs {
        hash.update(word(x));
    }
    for d in commitments {
        let (x, y) = d.xy().unwrap_or((Fq::zero(), Fq::zero()));
        hash.update(word(&x));
        hash.update(word(&y));
    }
    Fr::from_be_bytes_mod_order(&hash.finalize())
}

impl CommittedKeys {
    /// Commits to every group of a (partial) assignment: only the groups' entries of `z`
    /// are read, so a prover calls this before the challenge-dependent part of `z` exists.
    pub fn commit_groups(&self, z: &[Fr]) -> Result<Vec<GroupCommitment>> {
        (0..self.layout.groups.len())
            .map(|g| {
                self.commitment_keys.get(g).map_or(Err(CommitError::Layout("missing key".into())), |key| {
                    key.commit(self.layout.group_values(g, z)?)
                })
            })
            .collect()
    }

    /// The challenge a (partial) assignment's public inputs and groups give.
    pub fn challenge_for(&self, z: &[Fr]) -> Result<Fr> {
        let commitments = self.commit_groups(z)?;
        let ds: Vec<G1Affine> = commitments.iter().map(|c| c.commitment).collect();
        Ok(challenge(&self.layout.public_inputs(z)?, &ds))
    }

    /// Proves: checks `z` satisfies the circuit and holds the right challenge, then returns
    /// the Groth16 proof with fresh blinders and the groups' commitments.
    pub fn prove<R: RngCore + CryptoRng>(
        &self,
        matrices: &R1csMatrices,
        z: &[Fr],
        rng: &mut R,
    ) -> Result<CommittedProof> {
        check_satisfied(matrices, z)?;
        let groups = self.commit_groups(z)?;
        let ds: Vec<G1Affine> = groups.iter().map(|c| c.commitment).collect();
        if z.get(self.layout.challenge) != Some(&challenge(&self.layout.public_inputs(z)?, &ds)) {
            return Err(CommitError::WrongChallenge);
        }
        let proof = prove_single(&self.pk, matrices, z, Fr::rand(rng), Fr::rand(rng))?;
        Ok(CommittedProof { proof, groups })
    }
}

impl CommittedVerifyingKey {
    /// Number of ordinary public inputs (without the challenge).
    pub fn num_public_inputs(&self) -> usize {
        self.vk.gamma_abc_g1.len().saturating_sub(2)
    }

    /// Number of committed groups.
    pub fn num_groups(&self) -> usize {
        self.sigma_g2.len()
    }

    /// Checks the key is not degenerate: Groth16's checks, room for the challenge, and no
    /// identity `[σ_g]₂` (which would accept any `D_g` with `P_g = 0`).
    pub fn check(&self) -> Result<()> {
        check_verifying_key(&self.vk)?;
        if self.vk.gamma_abc_g1.len() < 2 {
            return Err(KeyError::Malformed("no input point for the challenge".into()).into());
        }
        if self.sigma_g2.is_empty() || self.sigma_g2.iter().any(|s| s.is_zero()) {
            return Err(KeyError::Malformed("no group, or an identity sigma".into()).into());
        }
        Ok(())
    }

    /// Decodes and validates a key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let key: Self = decode_exact(bytes)?;
        key.check()?;
        Ok(key)
    }

    /// Verifies `proof` for `public_inputs` (without the challenge, which is derived here).
    /// `Ok(false)` for a proof that does not verify; `Err` only for mismatched lengths.
    pub fn verify(&self, public_inputs: &[Fr], proof: &CommittedProof) -> Result<bool> {
        if public_inputs.len() != self.num_public_inputs() {
            return Err(CommitError::Length {
                what: "public inputs",
                expected: self.num_public_inputs(),
                got: public_inputs.len(),
            });
        }
        if proof.groups.len() != self.num_groups() {
            return Err(CommitError::Length {
                what: "group commitments",
                expected: self.num_groups(),
                got: proof.groups.len(),
            });
        }
        let g2 = G2Affine::generator();
        for (group, sigma) in proof.groups.iter().zip(&self.sigma_g2) {
            let lhs = Bn254::pairing(group.commitment, *sigma);
            let rhs = Bn254::pairing(group.knowledge, g2);
            if lhs != rhs {
                return Ok(false);
            }
        }
        let ds: Vec<G1Affine> = proof.groups.iter().map(|c| c.commitment).collect();
        let mut inputs = public_inputs.to_vec();
        inputs.push(challenge(public_inputs, &ds));
        let pvk = ark_groth16::prepare_verifying_key(&self.vk);
        let prepared = Groth16::<Bn254>::prepare_inputs(&pvk, &inputs).map_err(QapError::from)?;
        let prepared = ds.iter().fold(prepared, |acc, d| acc + d);
        Ok(Groth16::<Bn254>::verify_proof_with_prepared_inputs(&pvk, &proof.proof, &prepared)
            .map_err(QapError::from)?)
    }
}

/// Decodes and validates a proof (points in the subgroup, nothing left over). Whether it
/// verifies is [`CommittedVerifyingKey::verify`].
pub fn proof_from_bytes(bytes: &[u8]) -> Result<CommittedProof> {
    decode_exact(bytes)
}
