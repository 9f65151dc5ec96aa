//! The at-rest key: from a file, an environment variable, or a passphrase stretched with
//! Argon2id. Raw keys are parsed by the signer's [`StoreKey`] (the same formats); the key is
//! zeroized on drop and never printed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tacit_signer::store::StoreKey;
use zeroize::Zeroizing;

use crate::config::KeySource;
use crate::error::{NodeError, Result};

/// A 256-bit at-rest key.
pub struct NodeKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}

/// Argon2id parameters and salt, kept in plain in the store so the same passphrase gives the
/// same key after a restart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Algorithm name (always `argon2id`).
    pub alg: String,
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
    /// Salt (hex, 16 bytes).
    pub salt: String,
}

impl KdfParams {
    /// Fresh parameters with a random salt.
    pub fn fresh(m_kib: u32, t_cost: u32) -> Self {
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        Self { alg: "argon2id".into(), m_kib, t_cost, p_cost: 1, salt: hex::encode(salt) }
    }
}

impl NodeKey {
    /// The raw bytes (only for the cipher).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The same key for the signer's store.
    pub fn to_store_key(&self) -> StoreKey {
        StoreKey::Raw(Zeroizing::new(*self.0))
    }

    fn from_store_key(k: StoreKey) -> Result<Self> {
        match k {
            StoreKey::Raw(raw) => Ok(Self(raw)),
            StoreKey::Passphrase(_) => Err(NodeError::Config("expected a raw key".into())),
        }
    }

    /// Loads a raw key (file or environment variable). `None` for a passphrase source: that
    /// needs the store's KDF parameters ([`NodeKey::from_passphrase`]).
    pub fn load_raw(source: &KeySource, base: &Path) -> Result<Option<Self>> {
        match source {
            KeySource::File { path } => {
                let p = if path.is_absolute() { path.clone() } else { base.join(path) };
                let k = StoreKey::from_file(&p).map_err(|e| NodeError::Config(format!("key file: {e}")))?;
                Self::from_store_key(k).map(Some)
            }
            KeySource::Env { var } => {
                let s = Zeroizing::new(std::env::var(var).map_err(|_| NodeError::Config(format!("{var} is not set")))?);
                let k = StoreKey::from_hex(&s).map_err(|e| NodeError::Config(format!("{var}: {e}")))?;
                Self::from_store_key(k).map(Some)
            }
            KeySource::Passphrase { .. } => Ok(None),
        }
    }

    /// Reads the passphrase named by `source`.
    pub fn passphrase(source: &KeySource, base: &Path) -> Result<Zeroizing<String>> {
        match source {
            KeySource::Passphrase { var: Some(var), passphrase_file: None, .. } => {
                Ok(Zeroizing::new(std::env::var(var).map_err(|_| NodeError::Config(format!("{var} is not set")))?))
            }
            KeySource::Passphrase { var: None, passphrase_file: Some(f), .. } => {
                let p = if f.is_absolute() { f.clone() } else { base.join(f) };
                let text = Zeroizing::new(
                    std::fs::read_to_string(&p)
                        .map_err(|e| NodeError::Config(format!("passphrase file {}: {e}", p.display())))?,
                );
                Ok(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()))
            }
            _ => Err(NodeError::Config("passphrase: give exactly one of var and passphrase_file".into())),
        }
    }

    /// Argon2id over `passphrase` with `params`.
    pub fn from_passphrase(passphrase: &str, params: &KdfParams) -> Result<Self> {
        if params.alg != "argon2id" {
            return Err(NodeError::Config(format!("unknown KDF {}", params.alg)));
        }
        if passphrase.len() < 8 {
            return Err(NodeError::Config("the passphrase must have at least 8 characters".into()));
        }
        let salt = hex::decode(&params.salt).map_err(|_| NodeError::Store("KDF salt is not hex".into()))?;
        let p = argon2::Params::new(params.m_kib, params.t_cost, params.p_cost, Some(32))
            .map_err(|e| NodeError::Config(format!("argon2 parameters: {e}")))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
            .map_err(|e| NodeError::Config(format!("argon2: {e}")))?;
        Ok(Self(out))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }
}
