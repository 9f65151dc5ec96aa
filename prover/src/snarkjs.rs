//! snarkjs-compatible JSON (`verification_key.json`, `proof.json`, `public.json`) and EVM
//! calldata.
//!
//! Conventions (those of snarkjs/ffjavascript for BN254, which snarkjs calls `bn128`):
//! * Field elements are canonical decimal strings (no sign, no leading zeros, below the modulus).
//! * G1 points are projective triples `[x, y, "1"]`; the identity is `["0", "1", "0"]`.
//! * G2 points are `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]` (`c0` the real part); the identity
//!   is `[["0", "0"], ["1", "0"], ["0", "0"]]`.
//! * `vk_alphabeta_12 = e(alpha, beta)` in the tower `Fq12 = Fq6[w]`, `Fq6 = Fq2[v]`:
//!   `[[c0.c0, c0.c1, c0.c2], [c1.c0, c1.c1, c1.c2]]`, each an `Fq2` `[c0, c1]`.
//! * `IC` is the verifying key's `gamma_abc_g1`, `nPublic = IC.len() - 1`.
//! * Files are written as `JSON.stringify(value, null, 1)` writes them (one-space indent).
//!
//! EVM calldata follows EIP-197: a G2 point is `[[x.c1, x.c0], [y.c1, y.c0]]` (imaginary part
//! first). [`solidity_calldata`] prints what `snarkjs zkey export soliditycalldata` prints;
//! [`EvmProof`] holds the same numbers as `[U256; 8]` big-endian words plus the public inputs,
//! ready for ABI encoding of `verifyProof(uint[2], uint[2][2], uint[2], uint[N])`. The identity
//! (which a proof contains with negligible probability) is encoded as `(0, 0)` per EIP-196.
//!
//! Parsing is strict: strings must be canonical decimals, coordinates below the modulus, points
//! on the curve and in the prime-order subgroup, `IC` must have `nPublic + 1` points, and
//! `vk_alphabeta_12` must equal `e(alpha, beta)`. Malformed input is an error, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use ark_bn254::{Bn254, Fq, Fq12, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::{pairing::Pairing, AffineRepr};
use ark_ff::{BigInt, PrimeField, Zero};
use ark_groth16::{Proof, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::keys::{check_verifying_key, KeyError};

/// snarkjs's protocol name.
pub const PROTOCOL: &str = "groth16";
/// snarkjs's name for BN254.
pub const CURVE: &str = "bn128";

/// Failures of the snarkjs/EVM formats.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON of the expected shape.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// A value is out of range, off the curve, inconsistent, or of the wrong protocol.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which value.
        what: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The key decodes but is degenerate.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Result of this module.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> FormatError {
    FormatError::Invalid { what: what.into(), reason: reason.into() }
}

/// A G1 point as snarkjs writes it.
pub type G1Json = [String; 3];
/// A G2 point as snarkjs writes it.
pub type G2Json = [[String; 2]; 3];
/// An `Fq12` element as snarkjs writes it.
pub type Fq12Json = [[[String; 2]; 3]; 2];

/// `verification_key.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsVerificationKey {
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
    /// Number of public inputs.
    #[serde(rename = "nPublic")]
    pub n_public: usize,
    /// `alpha` in G1.
    pub vk_alpha_1: G1Json,
    /// `beta` in G2.
    pub vk_beta_2: G2Json,
    /// `gamma` in G2.
    pub vk_gamma_2: G2Json,
    /// `delta` in G2.
    pub vk_delta_2: G2Json,
    /// `e(alpha, beta)`.
    pub vk_alphabeta_12: Fq12Json,
    /// `gamma_abc_g1`: `nPublic + 1` points.
    #[serde(rename = "IC")]
    pub ic: Vec<G1Json>,
}

/// `proof.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsProof {
    /// `A` in G1.
    pub pi_a: G1Json,
    /// `B` in G2.
    pub pi_b: G2Json,
    /// `C` in G1.
    pub pi_c: G1Json,
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// Strict decimal parse into 256 bits: ASCII digits only, no sign, no leading zeros (except
/// `"0"` itself), at most 78 digits, no overflow.
fn parse_u256(s: &str) -> Option<BigInt<4>> {
    if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    let mut limbs = [0u64; 4];
    for d in s.bytes() {
        let mut carry = u128::from(d - b'0');
        for limb in limbs.iter_mut() {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(BigInt::new(limbs))
}

fn parse_field<F: PrimeField<BigInt = BigInt<4>>>(s: &str, what: &str) -> Result<F> {
    let n = parse_u256(s).ok_or_else(|| invalid(what, format!("{s:?} is not a canonical decimal")))?;
    F::from_bigint(n).ok_or_else(|| invalid(what, "not below the field modulus"))
}

fn parse_fq2(c: &[String; 2], what: &str) -> Result<Fq2> {
    let [c0, c1] = c;
    Ok(Fq2::new(parse_field(c0, &format!("{what}.c0"))?, parse_field(c1, &format!("{what}.c1"))?))
}

fn dec<F: PrimeField>(x: &F) -> String {
    x.to_string()
}

fn fq2_json(x: &Fq2) -> [String; 2] {
    [dec(&x.c0), dec(&x.c1)]
}

// ---------------------------------------------------------------------------------------------
// Points

/// A G1 point in snarkjs form.
pub fn g1_to_json(p: &G1Affine) -> G1Json {
    match p.xy() {
        Some((x, y)) => [dec(&x), dec(&y), "1".into()],
        None => ["0".into(), "1".into(), "0".into()],
    }
}

/// A G2 point in snarkjs form.
pub fn g2_to_json(p: &G2Affine) -> G2Json {
    match p.xy() {
        Some((x, y)) => [fq2_json(&x), fq2_json(&y), ["1".into(), "0".into()]],
        None => [["0".into(), "0".into()], ["1".into(), "0".into()], ["0".into(), "0".into()]],
    }
}

/// Parses a G1 point in snarkjs form; checks range, curve and subgroup.
pub fn g1_from_json(p: &G1Json, what: &str) -> Result<G1Affine> {
    let [x, y, z] = p;
    let (x, y, z): (Fq, Fq, Fq) = (
        parse_field(x, &format!("{what}.x"))?,
        parse_field(y, &format!("{what}.y"))?,
        parse_field(z, &format!("{what}.z"))?,
    );
    if z.is_zero() {
        return if x.is_zero() && y == Fq::from(1u64) {
            Ok(G1Affine::identity())
        } else {
            Err(invalid(what, "identity must be written [\"0\", \"1\", \"0\"]"))
        };
    }
    if z != Fq::from(1u64) {
        return Err(invalid(what, "z coordinate must be \"1\" (affine) or \"0\" (identity)"));
    }
    let point = G1Affine::new_unchecked(x, y);
    if !point.is_on_curve() {
        return Err(invalid(what, "not on the curve"));
    }
    if !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err(invalid(what, "not in the prime-order subgroup"));
    }
    Ok(point)
}

/// Parses a G2 point in snarkjs form; checks range, curve and subgroup.
pub fn g2_from_json(p: &G2Json, what: &str) -> Result<G2Affine> {
    let [x, y, z] = p;
    let (x, y, z) =
        (parse_fq2(x, &format!("{what}.x"))?, parse_fq2(y, &format!("{what}.y"))?, parse_fq2(z, &format!("{what}.z"))?);
    let one = Fq2::new(Fq::from(1u64), Fq::zero());
    if z.is_zero() {
        return if x.is_zero() && y == one {
            Ok(G2Affine::identity())
        } else {
            Err(invalid(what, "identity must be written [[\"0\",\"0\"],[\"1\",\"0\"],[\"0\",\"0\"]]"))
        };
    }
    if z != one {
        return Err(invalid(what, "z coordinate must be [\"1\",\"0\"] (affine) or zero (identity)"));
    }
    let point = G2Affine::new_unchecked(x, y);
    if !point.is_on_curve() {
        return Err(invalid(what, "not on the curve"));
    }
    if !point.is_in_correct_subgroup_assuming_on_curve() {
        return Err(invalid(what, "not in the prime-order subgroup"));
    }
    Ok(point)
}

/// An `Fq12` element in snarkjs form.
pub fn fq12_to_json(f: &Fq12) -> Fq12Json {
    [
        [fq2_json(&f.c0.c0), fq2_json(&f.c0.c1), fq2_json(&f.c0.c2)],
        [fq2_json(&f.c1.c0), fq2_json(&f.c1.c1), fq2_json(&f.c1.c2)],
    ]
}

// ---------------------------------------------------------------------------------------------
// Documents

/// The verifying key as `verification_key.json`.
pub fn verification_key_to_snarkjs(vk: &VerifyingKey<Bn254>) -> SnarkjsVerificationKey {
    let alphabeta = Bn254::pairing(vk.alpha_g1, vk.beta_g2).0;
    SnarkjsVerificationKey {
        protocol: PROTOCOL.into(),
        curve: CURVE.into(),
        n_public: vk.gamma_abc_g1.len().saturating_sub(1),
        vk_alpha_1: g1_to_json(&vk.alpha_g1),
        vk_beta_2: g2_to_json(&vk.beta_g2),
        vk_gamma_2: g2_to_json(&vk.gamma_g2),
        vk_delta_2: g2_to_json(&vk.delta_g2),
        vk_alphabeta_12: fq12_to_json(&alphabeta),
        ic: vk.gamma_abc_g1.iter().map(g1_to_json).collect(),
    }
}

fn check_header(protocol: &str, curve: &str) -> Result<()> {
    if protocol != PROTOCOL {
        return Err(invalid("protocol", format!("{protocol:?} is not {PROTOCOL:?}")));
    }
    if curve != CURVE {
        return Err(invalid("curve", format!("{curve:?} is not {CURVE:?}")));
    }
    Ok(())
}

/// Parses `verification_key.json` (see the module docs for the checks).
pub fn verification_key_from_snarkjs(v: &SnarkjsVerificationKey) -> Result<VerifyingKey<Bn254>> {
    check_header(&v.protocol, &v.curve)?;
    if Some(v.ic.len()) != v.n_public.checked_add(1) {
        return Err(invalid("IC", format!("{} points for nPublic = {}", v.ic.len(), v.n_public)));
    }
    let vk = VerifyingKey {
        alpha_g1: g1_from_json(&v.vk_alpha_1, "vk_alpha_1")?,
        beta_g2: g2_from_json(&v.vk_beta_2, "vk_beta_2")?,
        gamma_g2: g2_from_json(&v.vk_gamma_2, "vk_gamma_2")?,
        delta_g2: g2_from_json(&v.vk_delta_2, "vk_delta_2")?,
        gamma_abc_g1: v
            .ic
            .iter()
            .enumerate()
            .map(|(i, p)| g1_from_json(p, &format!("IC[{i}]")))
            .collect::<Result<Vec<_>>>()?,
    };
    check_verifying_key(&vk)?;
    if fq12_to_json(&Bn254::pairing(vk.alpha_g1, vk.beta_g2).0) != v.vk_alphabeta_12 {
        return Err(invalid("vk_alphabeta_12", "is not e(vk_alpha_1, vk_beta_2)"));
    }
    Ok(vk)
}

/// The proof as `proof.json`.
pub fn proof_to_snarkjs(proof: &Proof<Bn254>) -> SnarkjsProof {
    SnarkjsProof {
        pi_a: g1_to_json(&proof.a),
        pi_b: g2_to_json(&proof.b),
        pi_c: g1_to_json(&proof.c),
        protocol: PROTOCOL.into(),
        curve: CURVE.into(),
    }
}

/// Parses `proof.json`.
pub fn proof_from_snarkjs(p: &SnarkjsProof) -> Result<Proof<Bn254>> {
    check_header(&p.protocol, &p.curve)?;
    Ok(Proof {
        a: g1_from_json(&p.pi_a, "pi_a")?,
        b: g2_from_json(&p.pi_b, "pi_b")?,
        c: g1_from_json(&p.pi_c, "pi_c")?,
    })
}

/// The public inputs as `public.json` (decimal strings).
pub fn public_to_snarkjs(inputs: &[Fr]) -> Vec<String> {
    inputs.iter().map(dec).collect()
}

/// Parses `public.json`: canonical decimals below the scalar field modulus.
pub fn public_from_snarkjs(inputs: &[String]) -> Result<Vec<Fr>> {
    inputs.iter().enumerate().map(|(i, s)| parse_field(s, &format!("public[{i}]"))).collect()
}

/// `value` as snarkjs writes its files (`JSON.stringify(value, null, 1)`).
pub fn to_snarkjs_string<T: Serialize>(value: &T) -> Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser)?;
    String::from_utf8(out).map_err(|e| invalid("json", e.to_string()))
}

fn write_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    fs::write(path, to_snarkjs_string(value)?).map_err(|source| FormatError::Io { path: path.to_path_buf(), source })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).map_err(|source| FormatError::Io { path: path.to_path_buf(), source })?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Writes `verification_key.json`.
pub fn write_verification_key_json(vk: &VerifyingKey<Bn254>, path: impl AsRef<Path>) -> Result<()> {
    write_json(&verification_key_to_snarkjs(vk), path.as_ref())
}

/// Writes `proof.json`.
pub fn write_proof_json(proof: &Proof<Bn254>, path: impl AsRef<Path>) -> Result<()> {
    write_json(&proof_to_snarkjs(proof), path.as_ref())
}

/// Writes `public.json`.
pub fn write_public_json(inputs: &[Fr], path: impl AsRef<Path>) -> Result<()> {
    write_json(&public_to_snarkjs(inputs), path.as_ref())
}

/// Reads and checks `verification_key.json`.
pub fn read_verification_key_json(path: impl AsRef<Path>) -> Result<VerifyingKey<Bn254>> {
    verification_key_from_snarkjs(&read_json(path.as_ref())?)
}

/// Reads and checks `proof.json`.
pub fn read_proof_json(path: impl AsRef<Path>) -> Result<Proof<Bn254>> {
    proof_from_snarkjs(&read_json(path.as_ref())?)
}

/// Reads and checks `public.json`.
pub fn read_public_json(path: impl AsRef<Path>) -> Result<Vec<Fr>> {
    public_from_snarkjs(&read_json::<Vec<String>>(path.as_ref())?)
}

// ---------------------------------------------------------------------------------------------
// EVM

/// A 256-bit big-endian word, as the EVM ABI encodes `uint256`.
pub type Word = [u8; 32];

fn word<F: PrimeField<BigInt = BigInt<4>>>(x: &F) -> Word {
    let mut out = [0u8; 32];
    out.chunks_exact_mut(8).zip(x.into_bigint().0.iter().rev()).for_each(|(chunk, limb)| {
        chunk.copy_from_slice(&limb.to_be_bytes());
    });
    out
}

fn g1_words(p: &G1Affine) -> [Word; 2] {
    match p.xy() {
        Some((x, y)) => [word(&x), word(&y)],
        None => [[0; 32]; 2],
    }
}

/// `[x.c1, x.c0, y.c1, y.c0]` (EIP-197 order).
fn g2_words(p: &G2Affine) -> [Word; 4] {
    match p.xy() {
        Some((x, y)) => [word(&x.c1), word(&x.c0), word(&y.c1), word(&y.c0)],
        None => [[0; 32]; 4],
    }
}

/// A proof and its public inputs as EVM words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvmProof {
    /// `[a.x, a.y, b.x.c1, b.x.c0, b.y.c1, b.y.c0, c.x, c.y]`: the `uint[2] a, uint[2][2] b,
    /// uint[2] c` arguments of snarkjs's `verifyProof`, flattened.
    pub proof: [Word; 8],
    /// The public inputs (`uint[N]`).
    pub public_inputs: Vec<Word>,
}

impl EvmProof {
    /// From an ark proof and its public inputs.
    pub fn new(proof: &Proof<Bn254>, public_inputs: &[Fr]) -> Self {
        let [ax, ay] = g1_words(&proof.a);
        let [bx1, bx0, by1, by0] = g2_words(&proof.b);
        let [cx, cy] = g1_words(&proof.c);
        Self { proof: [ax, ay, bx1, bx0, by1, by0, cx, cy], public_inputs: public_inputs.iter().map(word).collect() }
    }

    /// ABI encoding of the arguments `(uint[2], uint[2][2], uint[2], uint[N])` (static arrays
    /// are encoded in place: the 8 proof words, then the inputs). Prepend the 4-byte selector
    /// of the verifier's function to get full calldata.
    pub fn abi_encode_args(&self) -> Vec<u8> {
        self.proof.iter().chain(&self.public_inputs).flat_map(|w| w.iter().copied()).collect()
    }

    /// The string `snarkjs zkey export soliditycalldata` prints.
    pub fn solidity_calldata(&self) -> String {
        let h = |w: &Word| {
            let mut s = String::with_capacity(68);
            s.push_str("\"0x");
            for b in w {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('"');
            s
        };
        let [ax, ay, bx1, bx0, by1, by0, cx, cy] = &self.proof;
        let inputs: Vec<String> = self.public_inputs.iter().map(h).collect();
        format!(
            "[{}, {}],[[{}, {}],[{}, {}]],[{}, {}],[{}]",
            h(ax),
            h(ay),
            h(bx1),
            h(bx0),
            h(by1),
            h(by0),
            h(cx),
            h(cy),
            inputs.join(",")
        )
    }
}

/// What `snarkjs zkey export soliditycalldata public.json proof.json` prints for this proof.
pub fn solidity_calldata(proof: &Proof<Bn254>, public_inputs: &[Fr]) -> String {
    EvmProof::new(proof, public_inputs).solidity_calldata()
}
