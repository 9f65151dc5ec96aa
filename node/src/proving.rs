//! Proving keys a node holds as files named by their hash (`<data_dir>/<folder>/<hash>.pk`):
//! a job names its key by hash, so every node proves with the same key or refuses.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::ProvingKey;

use crate::error::{NodeError, Result};
use crate::store::NodeStore;

/// The name a proving key goes by in a job and in its folder: the BLAKE3 hash of its file.
pub fn proving_key_hash(file: &[u8]) -> String {
    blake3::hash(file).to_hex().to_string()
}

/// Whether `hash` looks like a key's name (64 hex digits).
pub fn is_key_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `<data_dir>/<folder>/<hash>.pk`, checks its hash and decodes it with validation, or,
/// when this node validated that file before, reads its checked copy ([`CheckedKey`]).
pub async fn read_proving_key(
    store: &NodeStore,
    data_dir: &Path,
    folder: &str,
    hash: &str,
) -> Result<ProvingKey<Bn254>> {
    if !is_key_hash(hash) {
        return Err(NodeError::BadRequest("a proving key is named by its hex BLAKE3 hash".into()));
    }
    let path = data_dir.join(folder).join(format!("{hash}.pk"));
    if !path.is_file() {
        return Err(NodeError::Config(format!("{}: no such key file", path.display())));
    }
    let mut checked = CheckedKey::lookup(store, data_dir, hash)?;
    let expected = hash.to_string();
    let (pk, checked) = tokio::task::spawn_blocking(move || {
        let pk = checked.load(|| {
            let bytes = std::fs::read(&path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
            if proving_key_hash(&bytes) != expected {
                return Err(NodeError::Config(format!("{}: its BLAKE3 hash is not {expected}", path.display())));
            }
            tacit_prover::keys::proving_key_from_bytes(&bytes)
                .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
        });
        (pk, checked)
    })
    .await
    .map_err(|e| NodeError::Other(e.to_string()))?;
    let pk = pk?;
    checked.record(store)?;
    Ok(pk)
}

/// The BLAKE3 hash of a checked copy (hashed on all cores: copies are hundreds of MB).
fn copy_hash(bytes: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(bytes);
    hasher.finalize()
}

/// Folder of a node's checked copies of the proving keys it validated.
pub const CHECKED_FOLDER: &str = "checked-keys";

/// A proving key this node validates once. Validating a large key (every point decompressed
/// and subgroup-checked) takes tens of seconds of CPU; afterwards the node keeps a checked
/// copy (`<data_dir>/checked-keys/<name>.pk`, uncompressed, about twice the key file) and
/// the copy's BLAKE3 hash in its encrypted store. A later load whose copy has that hash reads
/// it without checks, in about a second; a missing, altered or unrecorded copy means a full
/// validation again (and a new copy). The store's record is written only once the copy is in
/// place and the whole key was accepted ([`Self::record`]).
#[derive(Debug)]
pub struct CheckedKey {
    record: String,
    path: std::path::PathBuf,
    expected: Option<[u8; 32]>,
    written: Option<[u8; 32]>,
}

impl CheckedKey {
    /// The record of the key `name` (a content hash, or a name that fixes the key) in `store`.
    pub fn lookup(store: &NodeStore, data_dir: &Path, name: &str) -> Result<Self> {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(NodeError::BadRequest(format!("unusable key name {name:?}")));
        }
        let record = format!("checked-key:{name}");
        let expected = store.get_secret(&record)?.and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok());
        let path = data_dir.join(CHECKED_FOLDER).join(format!("{name}.pk"));
        Ok(Self { record, path, expected, written: None })
    }

    /// The key from the checked copy if it matches the record, else from `validate` (which
    /// must read it with every check), writing a new copy. Blocking.
    pub fn load<E>(
        &mut self,
        validate: impl FnOnce() -> std::result::Result<ProvingKey<Bn254>, E>,
    ) -> std::result::Result<ProvingKey<Bn254>, E> {
        if let Some(expected) = self.expected {
            match self.read_copy(&expected) {
                Ok(pk) => return Ok(pk),
                Err(reason) => tracing::warn!(target: "tacit::node", copy = %self.path.display(), %reason,
                    "checked key copy unusable; validating the key again"),
            }
        }
        let pk = validate()?;
        match self.write_copy(&pk) {
            Ok(hash) => self.written = Some(hash),
            Err(reason) => tracing::warn!(target: "tacit::node", copy = %self.path.display(), %reason,
                "could not keep a checked key copy; the next start validates the key again"),
        }
        Ok(pk)
    }

    fn read_copy(&self, expected: &[u8; 32]) -> std::result::Result<ProvingKey<Bn254>, String> {
        let bytes = std::fs::read(&self.path).map_err(|e| e.to_string())?;
        // `blake3::Hash` compares in constant time.
        if copy_hash(&bytes) != blake3::Hash::from_bytes(*expected) {
            return Err("its hash is not the recorded one".into());
        }
        tacit_prover::keys::proving_key_from_checked_bytes(&bytes).map_err(|e| e.to_string())
    }

    fn write_copy(&self, pk: &ProvingKey<Bn254>) -> std::result::Result<[u8; 32], String> {
        let bytes = tacit_prover::keys::proving_key_to_checked_bytes(pk).map_err(|e| e.to_string())?;
        let folder = self.path.parent().ok_or("no folder")?;
        std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
        let tmp = self.path.with_extension("pk.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
            file.write_all(&bytes).map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| e.to_string())?;
        Ok(*copy_hash(&bytes).as_bytes())
    }

    /// Records the copy written by [`Self::load`], if any (call once the whole key, not only
    /// its proving key, was accepted).
    pub fn record(self, store: &NodeStore) -> Result<()> {
        match self.written {
            Some(hash) => store.put_secret(&self.record, &hash),
            None => Ok(()),
        }
    }
}

/// Keys a node loaded, by hash, kept for the life of the process (loading and checking a
/// large key takes seconds; the hash names the file's content, so every node's copy is the
/// same key).
pub struct KeyCache<T>(Mutex<Option<HashMap<String, Arc<T>>>>);

impl<T> std::fmt::Debug for KeyCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

impl<T> Default for KeyCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> KeyCache<T> {
    /// An empty cache (for a `static`).
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The keys named `hash`, if loaded.
    pub fn get(&self, hash: &str) -> Option<Arc<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|m| m.get(hash).cloned())
    }

    /// Keeps `keys` under `hash`.
    pub fn insert(&self, hash: &str, keys: Arc<T>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(hash.into(), keys);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::config::KeySource;

    fn store(dir: &Path) -> NodeStore {
        let key = dir.join("k");
        std::fs::write(&key, hex::encode([7u8; 32])).unwrap();
        NodeStore::open(&dir.join("n.redb"), &KeySource::File { path: key }, dir).unwrap().0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_validated_key_is_read_back_from_its_checked_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(3);
        let shape = tacit_auction::circuit::Shape { kind: tacit_auction::AuctionKind::FirstPrice, capacity: 2 };
        let pk = tokio::task::block_in_place(|| tacit_auction::node::setup_keys(shape, &mut rng)).unwrap().pk;
        let bytes = tacit_prover::keys::proving_key_to_bytes(&pk).unwrap();
        let hash = proving_key_hash(&bytes);
        let folder = dir.path().join("keys");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{hash}.pk")), &bytes).unwrap();
        let copy = dir.path().join(CHECKED_FOLDER).join(format!("{hash}.pk"));

        // First load: validated, then a copy kept and recorded.
        assert_eq!(read_proving_key(&store, dir.path(), "keys", &hash).await.unwrap(), pk);
        assert!(copy.is_file());
        let recorded = store.get_secret(&format!("checked-key:{hash}")).unwrap().unwrap();
        assert_eq!(recorded.as_slice(), blake3::hash(&std::fs::read(&copy).unwrap()).as_bytes());

        // Second load: from the copy, which is what is read (a corrupt key file is not looked at).
        let mut garbage = bytes.clone();
        garbage[100] ^= 1;
        std::fs::write(folder.join(format!("{hash}.pk")), &garbage).unwrap();
        assert_eq!(read_proving_key(&store, dir.path(), "keys", &hash).await.unwrap(), pk);
        let mut checked = CheckedKey::lookup(&store, dir.path(), &hash).unwrap();
        let from_copy = checked.load(|| Err::<ProvingKey<Bn254>, _>("validated instead of the copy")).unwrap();
        assert_eq!(from_copy, pk);

        // An altered copy is not used: the key file is validated again (and refused here,
        // since it is now corrupt), and with a sound file a new copy is kept.
        let mut altered = std::fs::read(&copy).unwrap();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        std::fs::write(&copy, &altered).unwrap();
        assert!(read_proving_key(&store, dir.path(), "keys", &hash).await.is_err());
        std::fs::write(folder.join(format!("{hash}.pk")), &bytes).unwrap();
        assert_eq!(read_proving_key(&store, dir.path(), "keys", &hash).await.unwrap(), pk);
        let mut checked = CheckedKey::lookup(&store, dir.path(), &hash).unwrap();
        assert_eq!(checked.load(|| Err::<ProvingKey<Bn254>, _>("validated instead of the copy")).unwrap(), pk);

        // A key the node does not hold is refused even with a copy.
        std::fs::remove_file(folder.join(format!("{hash}.pk"))).unwrap();
        assert!(read_proving_key(&store, dir.path(), "keys", &hash).await.is_err());
        // Names are content hashes or fixed names only.
        assert!(CheckedKey::lookup(&store, dir.path(), "../x").is_err());
    }
}
