//! Committed inputs for `cardinality` and `sum` (up to [`MAX_COMMITTED_ITEMS`] items per
//! institution).
//!
//! Before the query each institution publishes
//! `C = Poseidon(root, len, salt)`, where `root` is the root of a binary Poseidon(2) Merkle
//! tree over the leaves `Poseidon(e_j, v_j)` (item field element `e_j` = [`item_field`],
//! value `v_j`), padded with zero leaves to a power of two, and `salt` is random (all
//! circomlib Poseidon, so anyone can recompute it from the opening).
//!
//! In a committed query the institution secret-shares `(e_j, v_j)` and `salt`; the nodes
//! recompute `C` on shares, open it and compare with the published value, rejecting the
//! institution on a mismatch, **before** anything else is opened. Tags are then computed on
//! shares as `Poseidon(k, e_j)` with a fresh shared BN254 key `k` (so a tag is bound to the
//! committed item; a DH-OPRF tag could not be), and the query continues with the shuffle and
//! match of the OPRF path.

pub use ark_bn254::Fr;
use ark_ff::{PrimeField, Zero};
use tacit_circuits::gadgets::poseidon::{poseidon_hash, poseidon_reference};
use tacit_circuits::{Backend, CircuitError};
use tacit_mpc_engine::{Engine, PartyId, Shares, Transport};
use zeroize::Zeroize;

use crate::input::{InputSet, Item};

/// Largest committed set.
pub const MAX_COMMITTED_ITEMS: usize = 1 << 12;

/// The field element of an item (the first 31 bytes of a domain-separated blake3, little
/// endian).
pub fn item_field(item: &Item) -> Fr {
    let mut h = blake3::Hasher::new_derive_key("tacit-psi v1 item field element");
    h.update(item.canonical());
    Fr::from_le_bytes_mod_order(h.finalize().as_bytes().get(..31).unwrap_or_default())
}

/// An institution's input with the salt of its published commitment.
#[derive(Clone)]
pub struct CommittedInput {
    /// The set.
    pub set: InputSet,
    salt: Fr,
}

impl std::fmt::Debug for CommittedInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommittedInput({:?}, salt <redacted>)", self.set)
    }
}

impl Drop for CommittedInput {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl CommittedInput {
    /// Commits to `set` with a fresh random salt; returns the opening and the commitment.
    pub fn commit(set: InputSet) -> Result<(Self, Fr), CircuitError> {
        let salt = <Fr as ark_ff::UniformRand>::rand(&mut rand::thread_rng());
        let input = Self { set, salt };
        let c = commitment(&input.set, salt)?;
        Ok((input, c))
    }

    /// The opening of an earlier commitment: `set` with its `salt`; returns the commitment
    /// they give (the caller compares it with the published one).
    pub fn with_salt(set: InputSet, salt: Fr) -> Result<(Self, Fr), CircuitError> {
        let c = commitment(&set, salt)?;
        Ok((Self { set, salt }, c))
    }

    /// The salt (secret).
    pub fn expose_salt(&self) -> Fr {
        self.salt
    }
}

/// A field element as 64 hex digits (canonical, big endian), as commitments are published.
pub fn to_hex(x: &Fr) -> String {
    use ark_ff::BigInteger;
    hex::encode(x.into_bigint().to_bytes_be())
}

/// Parses [`to_hex`]'s format (with or without `0x`); `None` unless below the modulus.
pub fn from_hex(s: &str) -> Option<Fr> {
    let s = s.trim();
    let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    let x = Fr::from_be_bytes_mod_order(&bytes);
    (to_hex(&x) == hex::encode(&bytes)).then_some(x)
}

/// `C = Poseidon(root, len, salt)` in the clear.
pub fn commitment(set: &InputSet, salt: Fr) -> Result<Fr, CircuitError> {
    let items: Vec<Fr> = set.items().iter().map(item_field).collect();
    let values: Vec<Fr> = set.values().iter().map(|v| Fr::from(*v)).collect();
    commitment_of_fields(&items, &values, salt)
}

/// [`commitment`] over the field elements of the items and values (any field elements, as
/// a dishonest institution could commit to; the nodes check what they compute on shares).
pub fn commitment_of_fields(items: &[Fr], values: &[Fr], salt: Fr) -> Result<Fr, CircuitError> {
    if items.len() != values.len() {
        return Err(CircuitError::Usage("one value per item".into()));
    }
    let mut level: Vec<Fr> =
        items.iter().zip(values).map(|(i, v)| poseidon_reference(&[*i, *v])).collect::<Result<_, _>>()?;
    level.resize(level.len().max(1).next_power_of_two(), Fr::zero());
    while level.len() > 1 {
        level = level.chunks(2).map(poseidon_reference).collect::<Result<_, _>>()?;
    }
    let root = level.first().copied().unwrap_or_default();
    poseidon_reference(&[root, Fr::from(items.len() as u64), salt])
}

/// One institution's shared items, values and salt.
pub(crate) type SharedInput<V> = (Vec<V>, Vec<V>, V);

/// Tags `Poseidon(key, e_j)` of every row (institution by institution) and every
/// institution's commitment, on shares. Poseidon batches run level by level across all
/// institutions (one batch for leaves and tags, one per tree level, one for the roots).
pub(crate) async fn tags_and_commitments<B: Backend<F = Fr>>(
    b: &mut B,
    key: &B::Value,
    inputs: &[SharedInput<B::Value>],
) -> Result<(Vec<B::Value>, Vec<B::Value>), CircuitError> {
    let rows: usize = inputs.iter().map(|(e, _, _)| e.len()).sum();
    let mut batch: Vec<Vec<B::Value>> = Vec::with_capacity(2 * rows);
    for (e, v, _) in inputs {
        batch.extend(e.iter().zip(v).map(|(e, v)| vec![e.clone(), v.clone()]));
    }
    for (e, _, _) in inputs {
        batch.extend(e.iter().map(|e| vec![key.clone(), e.clone()]));
    }
    let hashed = poseidon_hash(b, &batch).await?;
    let (leaves, tags) = hashed.split_at(rows);
    let zero = b.constant(Fr::zero());
    let mut levels: Vec<Vec<B::Value>> = Vec::with_capacity(inputs.len());
    let mut offset = 0;
    for (e, _, _) in inputs {
        let mut level: Vec<B::Value> = leaves.get(offset..offset + e.len()).unwrap_or_default().to_vec();
        level.resize(level.len().max(1).next_power_of_two(), zero.clone());
        levels.push(level);
        offset += e.len();
    }
    while levels.iter().any(|l| l.len() > 1) {
        let mut pairs = Vec::new();
        for l in &levels {
            if l.len() > 1 {
                pairs.extend(l.chunks(2).map(<[B::Value]>::to_vec));
            }
        }
        let parents = poseidon_hash(b, &pairs).await?;
        let mut it = parents.into_iter();
        for l in &mut levels {
            if l.len() > 1 {
                *l = it.by_ref().take(l.len() / 2).collect();
            }
        }
    }
    let finals: Vec<Vec<B::Value>> = levels
        .iter()
        .zip(inputs)
        .map(|(l, (e, _, salt))| {
            let root = l.first().cloned().unwrap_or_else(|| zero.clone());
            vec![root, b.constant(Fr::from(e.len() as u64)), salt.clone()]
        })
        .collect();
    let commitments = poseidon_hash(b, &finals).await?;
    Ok((tags.to_vec(), commitments))
}

/// The [`Backend`] operations Poseidon needs, straight on an engine (no witness recorded):
/// values are this party's shares; a public constant is its own share.
pub(crate) struct EngineOps<'a, T: Transport> {
    pub(crate) engine: &'a mut Engine<Fr, T>,
}

impl<T: Transport> std::fmt::Debug for EngineOps<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineOps")
    }
}

fn unsupported<R>(what: &str) -> Result<R, CircuitError> {
    Err(CircuitError::Usage(format!("{what} is not available on EngineOps")))
}

impl<T: Transport> Backend for EngineOps<'_, T> {
    type F = Fr;
    type Value = Fr;

    fn constant(&self, c: Fr) -> Fr {
        c
    }
    fn add(&self, a: &Fr, b: &Fr) -> Fr {
        *a + b
    }
    fn sub(&self, a: &Fr, b: &Fr) -> Fr {
        *a - b
    }
    fn scale(&self, a: &Fr, c: Fr) -> Fr {
        *a * c
    }
    fn add_constant(&self, a: &Fr, c: Fr) -> Fr {
        *a + c
    }
    async fn private_inputs(&mut self, _: PartyId, _: Option<&[Fr]>, _: usize) -> Result<Vec<Fr>, CircuitError> {
        unsupported("private_inputs")
    }
    fn public_inputs(&mut self, values: &[Fr]) -> Result<Vec<Fr>, CircuitError> {
        Ok(values.to_vec())
    }
    fn known_inputs(&mut self, values: &[Fr]) -> Result<Vec<Fr>, CircuitError> {
        Ok(values.to_vec())
    }
    fn dealt_inputs(&mut self, values: Option<&[Fr]>, len: usize) -> Result<Vec<Fr>, CircuitError> {
        match values {
            Some(v) if v.len() == len => Ok(v.to_vec()),
            _ => unsupported("dealt_inputs without shares"),
        }
    }
    async fn mul(&mut self, a: &[Fr], b: &[Fr]) -> Result<Vec<Fr>, CircuitError> {
        let z = self.engine.mul(&Shares::from_raw(a.to_vec()), &Shares::from_raw(b.to_vec())).await?;
        Ok(z.into_exposed())
    }
    async fn to_bits(&mut self, _: &[Fr], _: u32) -> Result<Vec<Vec<Fr>>, CircuitError> {
        unsupported("to_bits")
    }
    async fn is_zero(&mut self, _: &[Fr]) -> Result<Vec<Fr>, CircuitError> {
        unsupported("is_zero")
    }
    fn assert_zero(&mut self, _: &[Fr]) -> Result<(), CircuitError> {
        unsupported("assert_zero")
    }
    async fn assert_bits(&mut self, _: &[Fr]) -> Result<(), CircuitError> {
        unsupported("assert_bits")
    }
    async fn reveal_is_zero(&mut self, _: &[Fr]) -> Result<Vec<bool>, CircuitError> {
        unsupported("reveal_is_zero")
    }
    async fn reveal(&mut self, a: &[Fr]) -> Result<Vec<Fr>, CircuitError> {
        Ok(self.engine.open(&Shares::from_raw(a.to_vec())).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_backend_matches_the_clear_commitment() {
        let set = InputSet::from_pairs((0..5).map(|i| (Item::from_address(&[i as u8; 20]), i * 10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let (input, c) = CommittedInput::commit(set.clone()).unwrap_or_else(|e| panic!("{e}"));
        let mut b = tacit_circuits::Plain::<Fr>::default();
        let e: Vec<Fr> = set.items().iter().map(item_field).collect();
        let v: Vec<Fr> = set.values().iter().map(|v| Fr::from(*v)).collect();
        let (tags, cs) = tags_and_commitments(&mut b, &Fr::from(7u64), &[(e.clone(), v, input.expose_salt())])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cs, vec![c]);
        let first = e.first().copied().unwrap_or_default();
        assert_eq!(tags.first().copied(), poseidon_reference(&[Fr::from(7u64), first]).ok());
        let empty = commitment(&InputSet::default(), Fr::from(1u64)).unwrap_or_default();
        assert!(!empty.is_zero());
    }
}
