//! Groth16 (BN254) circuit-specific setup and key files.
//!
//! Keys are stored in arkworks' canonical compressed encoding (`Compress::Yes`), exactly what
//! `ProvingKey::serialize_compressed` writes. Reading always validates (`Validate::Yes`): every
//! point is decompressed, checked to be on the curve and in the prime-order subgroup, the
//! whole input must be consumed, and the key's internal shape and non-degeneracy (no identity
//! `alpha`, `beta`, `gamma`, `delta`) are checked.
//!
//! Validation is slow for proving keys: the subgroup check of every G2 point dominates.
//! Measured (release, this 2-core machine, `examples/prove_timing.rs`): a 2^14-constraint key
//! (3.0 MiB) reads in 1.2 s validated versus 0.35 s without the subgroup checks (a proof of
//! that circuit takes 0.35 s), i.e. validation costs ~3.5x a proof; the point
//! vectors are decoded in parallel, so both scale with cores. [`read_proving_key_trusted`]
//! skips the subgroup checks (points are still decompressed, hence on the curve, and the
//! shape is still checked); use it only for a key file this node generated or validated itself
//! and keeps where no one else can write. Verifying keys are small: always validated.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_groth16::{Groth16, ProvingKey, VerifyingKey};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, SerializationError, Validate};
use ark_snark::SNARK;
use ark_std::rand::{CryptoRng, RngCore};
use rayon::prelude::*;

use crate::qap::{matrices_for_setup, MatrixCircuit, QapError, R1csMatrices};

/// Failures of setup and key I/O.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid encoding (bad point, wrong length, not in the subgroup, ...).
    #[error("key decoding: {0}")]
    Decode(#[from] SerializationError),
    /// Bytes left over after a complete key.
    #[error("{0} trailing bytes after the key")]
    TrailingBytes(usize),
    /// The key decodes but cannot be a Groth16 key (degenerate points, inconsistent lengths).
    #[error("malformed key: {0}")]
    Malformed(String),
    /// Constraint synthesis failed.
    #[error("constraint synthesis: {0}")]
    Synthesis(#[from] SynthesisError),
    /// The circuit could not be reduced (unsupported predicate, bad matrices).
    #[error(transparent)]
    Qap(#[from] QapError),
}

/// Result of this module.
pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// Circuit-specific setup: synthesizes `circuit` (setup mode, the same settings as
/// ark-groth16), checks that it is pure R1CS, and runs ark-groth16's generator on its matrices.
/// Returns the proving key (which contains the verifying key as `pk.vk`) and the matrices the
/// prover needs.
pub fn setup<C, R>(circuit: C, rng: &mut R) -> Result<(ProvingKey<Bn254>, R1csMatrices)>
where
    C: ConstraintSynthesizer<Fr>,
    R: RngCore + CryptoRng,
{
    let matrices = matrices_for_setup(circuit)?;
    let pk = setup_from_matrices(&matrices, rng)?;
    Ok((pk, matrices))
}

/// Setup from a constraint system already synthesized (with matrices). Finalizes `cs`.
pub fn setup_from_cs<R: RngCore + CryptoRng>(
    cs: &ConstraintSystemRef<Fr>,
    rng: &mut R,
) -> Result<(ProvingKey<Bn254>, R1csMatrices)> {
    let matrices = R1csMatrices::from_cs(cs)?;
    let pk = setup_from_matrices(&matrices, rng)?;
    Ok((pk, matrices))
}

/// Setup from matrices: ark-groth16's generator run on a [`MatrixCircuit`] replaying them.
pub fn setup_from_matrices<R: RngCore + CryptoRng>(matrices: &R1csMatrices, rng: &mut R) -> Result<ProvingKey<Bn254>> {
    let (pk, _vk) = Groth16::<Bn254>::circuit_specific_setup(MatrixCircuit { matrices, assignment: None }, rng)?;
    matrices.check_proving_key(&pk)?;
    Ok(pk)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// Writes `value` compressed to `path`, through a temporary file renamed into place, so a
/// crash never leaves a truncated key under the final name.
fn write_compressed<T: CanonicalSerialize>(value: &T, path: &Path) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = BufWriter::new(file);
    value.serialize_compressed(&mut w)?;
    w.flush().map_err(io_err(&tmp))?;
    let file = w.into_inner().map_err(|e| KeyError::Io { path: tmp.clone(), source: e.into_error() })?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn decode_exact<T: CanonicalDeserialize>(bytes: &[u8], validate: Validate) -> Result<T> {
    let mut reader = bytes;
    let value = T::deserialize_with_mode(&mut reader, Compress::Yes, validate)?;
    if !reader.is_empty() {
        return Err(KeyError::TrailingBytes(reader.len()));
    }
    Ok(value)
}

/// Rejects verifying keys that decode but are degenerate: no `gamma_abc_g1`, or identity
/// `alpha`, `beta`, `gamma`, `delta` (an identity `delta` or `gamma` lets anyone forge proofs).
pub fn check_verifying_key(vk: &VerifyingKey<Bn254>) -> Result<()> {
    if vk.gamma_abc_g1.is_empty() {
        return Err(KeyError::Malformed("gamma_abc_g1 is empty".into()));
    }
    if vk.alpha_g1.is_zero() || vk.beta_g2.is_zero() || vk.gamma_g2.is_zero() || vk.delta_g2.is_zero() {
        return Err(KeyError::Malformed("alpha, beta, gamma or delta is the identity".into()));
    }
    Ok(())
}

/// [`check_verifying_key`] plus the proving key's own consistency: the three assignment
/// queries have one point per variable, `l_query` one per witness variable, and
/// `beta_g1`, `delta_g1` are not the identity. (Whether the key fits a particular circuit is
/// [`R1csMatrices::check_proving_key`].)
pub fn check_proving_key(pk: &ProvingKey<Bn254>) -> Result<()> {
    check_verifying_key(&pk.vk)?;
    let n = pk.a_query.len();
    if pk.b_g1_query.len() != n || pk.b_g2_query.len() != n {
        return Err(KeyError::Malformed("a_query, b_g1_query, b_g2_query differ in length".into()));
    }
    if pk.vk.gamma_abc_g1.len().checked_add(pk.l_query.len()) != Some(n) {
        return Err(KeyError::Malformed("gamma_abc_g1 + l_query do not cover the variables".into()));
    }
    if pk.beta_g1.is_zero() || pk.delta_g1.is_zero() {
        return Err(KeyError::Malformed("beta_g1 or delta_g1 is the identity".into()));
    }
    Ok(())
}

/// The proving key's compressed encoding.
pub fn proving_key_to_bytes(pk: &ProvingKey<Bn254>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(pk.compressed_size());
    pk.serialize_compressed(&mut out)?;
    Ok(out)
}

/// Decodes and validates a proving key (see the module docs). The encoding is exactly
/// ark-groth16's `serialize_compressed`; the point vectors are decoded and checked in parallel.
pub fn proving_key_from_bytes(bytes: &[u8]) -> Result<ProvingKey<Bn254>> {
    decode_proving_key(bytes, Validate::Yes)
}

/// A length-prefixed vector of points (ark's `Vec<T>` encoding), decoded in parallel: the
/// fixed-size elements are split up front and decoded (decompressed, checked) on all cores.
/// Advances `reader` past the vector.
fn decode_points<T>(reader: &mut &[u8], compress: Compress, validate: Validate) -> Result<Vec<T>>
where
    T: CanonicalDeserialize + CanonicalSerialize + Default + Send,
{
    let len = u64::deserialize_compressed(&mut *reader)?;
    let size = T::default().serialized_size(compress);
    let total =
        usize::try_from(len).ok().and_then(|n| n.checked_mul(size)).ok_or(SerializationError::NotEnoughSpace)?;
    let (body, rest) = reader.split_at_checked(total).ok_or(SerializationError::NotEnoughSpace)?;
    let points = body
        .par_chunks_exact(size)
        .map(|mut chunk| T::deserialize_with_mode(&mut chunk, compress, validate))
        .collect::<Result<Vec<T>, SerializationError>>()?;
    *reader = rest;
    Ok(points)
}

fn decode_proving_key(bytes: &[u8], validate: Validate) -> Result<ProvingKey<Bn254>> {
    decode_proving_key_with(bytes, Compress::Yes, validate)
}

fn decode_proving_key_with(bytes: &[u8], compress: Compress, validate: Validate) -> Result<ProvingKey<Bn254>> {
    let mut r = bytes;
    // Field order of ark-groth16's derived encoding.
    let vk = VerifyingKey::<Bn254>::deserialize_with_mode(&mut r, compress, validate)?;
    let beta_g1 = G1Affine::deserialize_with_mode(&mut r, compress, validate)?;
    let delta_g1 = G1Affine::deserialize_with_mode(&mut r, compress, validate)?;
    let a_query = decode_points(&mut r, compress, validate)?;
    let b_g1_query = decode_points(&mut r, compress, validate)?;
    let b_g2_query = decode_points::<G2Affine>(&mut r, compress, validate)?;
    let h_query = decode_points(&mut r, compress, validate)?;
    let l_query = decode_points(&mut r, compress, validate)?;
    if !r.is_empty() {
        return Err(KeyError::TrailingBytes(r.len()));
    }
    let pk = ProvingKey { vk, beta_g1, delta_g1, a_query, b_g1_query, b_g2_query, h_query, l_query };
    check_proving_key(&pk)?;
    Ok(pk)
}

/// A proving key already validated, in the form that reads back fastest: uncompressed (no
/// square roots to take) and read back without checks by [`proving_key_from_checked_bytes`].
/// For a node's own copy of a key it validated; about twice the compressed size.
pub fn proving_key_to_checked_bytes(pk: &ProvingKey<Bn254>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(pk.uncompressed_size());
    pk.serialize_uncompressed(&mut out)?;
    Ok(out)
}

/// Reads back [`proving_key_to_checked_bytes`] without any point check (`Validate::No`; the
/// key's shape is still checked and the input must be consumed exactly). Only for bytes the
/// caller wrote itself from a validated key and has since checked against an integrity
/// record it keeps (a node: the hash in its encrypted store), never for bytes from anyone
/// else.
pub fn proving_key_from_checked_bytes(bytes: &[u8]) -> Result<ProvingKey<Bn254>> {
    decode_proving_key_with(bytes, Compress::No, Validate::No)
}

/// The verifying key's compressed encoding.
pub fn verifying_key_to_bytes(vk: &VerifyingKey<Bn254>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(vk.compressed_size());
    vk.serialize_compressed(&mut out)?;
    Ok(out)
}

/// Decodes and validates a verifying key.
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey<Bn254>> {
    let vk = decode_exact(bytes, Validate::Yes)?;
    check_verifying_key(&vk)?;
    Ok(vk)
}

/// Writes the proving key to `path` (compressed).
pub fn write_proving_key(pk: &ProvingKey<Bn254>, path: impl AsRef<Path>) -> Result<()> {
    write_compressed(pk, path.as_ref())
}

/// Reads and validates a proving key file. Slow for large keys (every point decompressed and
/// subgroup-checked); see [`read_proving_key_trusted`].
pub fn read_proving_key(path: impl AsRef<Path>) -> Result<ProvingKey<Bn254>> {
    let path = path.as_ref();
    proving_key_from_bytes(&fs::read(path).map_err(io_err(path))?)
}

/// Reads a proving key file without the subgroup checks (`Validate::No`); points are still
/// decompressed (so on the curve), the input must be consumed exactly, and the key's shape is
/// checked. Safe only for a key file this node generated or validated itself and keeps where
/// no one else can write: a proving key from anyone else must go through
/// [`read_proving_key`]. (A key with points outside the subgroup cannot make a false statement
/// verify, since verifiers use only the verifying key, but the proofs computed with it carry
/// witness-dependent small-order components: they fail to verify and can leak the witness.)
pub fn read_proving_key_trusted(path: impl AsRef<Path>) -> Result<ProvingKey<Bn254>> {
    let path = path.as_ref();
    decode_proving_key(&fs::read(path).map_err(io_err(path))?, Validate::No)
}

/// Writes the verifying key to `path` (compressed).
pub fn write_verifying_key(vk: &VerifyingKey<Bn254>, path: impl AsRef<Path>) -> Result<()> {
    write_compressed(vk, path.as_ref())
}

/// Reads and validates a verifying key file.
pub fn read_verifying_key(path: impl AsRef<Path>) -> Result<VerifyingKey<Bn254>> {
    let path = path.as_ref();
    verifying_key_from_bytes(&fs::read(path).map_err(io_err(path))?)
}
