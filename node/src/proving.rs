//! Proving keys a node holds as files named by their hash (`<data_dir>/<folder>/<hash>.pk`):
//! a job names its key by hash, so every node proves with the same key or refuses.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ark_bn254::Bn254;
use ark_groth16::ProvingKey;

use crate::error::{NodeError, Result};

/// The name a proving key goes by in a job and in its folder: the BLAKE3 hash of its file.
pub fn proving_key_hash(file: &[u8]) -> String {
    blake3::hash(file).to_hex().to_string()
}

/// Whether `hash` looks like a key's name (64 hex digits).
pub fn is_key_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads `<data_dir>/<folder>/<hash>.pk`, checks its hash and decodes it with validation.
pub async fn read_proving_key(data_dir: &Path, folder: &str, hash: &str) -> Result<ProvingKey<Bn254>> {
    if !is_key_hash(hash) {
        return Err(NodeError::BadRequest("a proving key is named by its hex BLAKE3 hash".into()));
    }
    let path = data_dir.join(folder).join(format!("{hash}.pk"));
    let bytes = std::fs::read(&path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
    if proving_key_hash(&bytes) != hash {
        return Err(NodeError::Config(format!("{}: its BLAKE3 hash is not {hash}", path.display())));
    }
    tokio::task::spawn_blocking(move || tacit_prover::keys::proving_key_from_bytes(&bytes))
        .await
        .map_err(|e| NodeError::Other(e.to_string()))?
        .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
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
