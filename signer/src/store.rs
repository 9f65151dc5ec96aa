//! The node's embedded ACID store (redb): key share, presignatures and the audit key encrypted
//! at rest with ChaCha20-Poly1305 (each record bound to its table and key as associated data),
//! burn records, used request ids, the spend window and the policy.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use redb::{Database, ReadableTable, TableDefinition};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PolicyViolation, Result, SignerError};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PRESIG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("presig");
const BURNED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("burned");
const REQUESTS: TableDefinition<&[u8], u64> = TableDefinition::new("requests");
/// Spends keyed by (time << 64 | sequence), so the window is a range scan.
const SPEND: TableDefinition<u128, u128> = TableDefinition::new("spend-v2");

/// Seconds in the rolling spending window.
pub const SPEND_WINDOW_S: u64 = 24 * 3600;

/// Environment variable holding the store key (64 hex characters).
pub const KEY_ENV: &str = "TACIT_SIGNER_KEY";

/// Where the at-rest encryption key comes from.
pub enum StoreKey {
    /// A raw 256-bit key.
    Raw(Zeroizing<[u8; 32]>),
    /// A passphrase stretched with Argon2id (salt kept in the store).
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

impl StoreKey {
    /// A fresh random key.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::thread_rng().fill_bytes(k.as_mut());
        Self::Raw(k)
    }

    /// From 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self> {
        let v = Zeroizing::new(
            hex::decode(s.trim().strip_prefix("0x").unwrap_or(s.trim()))
                .map_err(|_| SignerError::Invalid("store key: not hex".into()))?,
        );
        let arr: [u8; 32] =
            v.as_slice().try_into().map_err(|_| SignerError::Invalid("store key: need 32 bytes".into()))?;
        Ok(Self::Raw(Zeroizing::new(arr)))
    }

    /// From a key file (64 hex characters, or 32 raw bytes).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| SignerError::Store(format!("key file: {e}")))?);
        if let Ok(arr) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(Self::Raw(Zeroizing::new(arr)));
        }
        let s = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
        Self::from_hex(&s)
    }

    /// From the [`KEY_ENV`] environment variable.
    pub fn from_env() -> Result<Self> {
        let s = Zeroizing::new(std::env::var(KEY_ENV).map_err(|_| SignerError::Invalid(format!("{KEY_ENV} not set")))?);
        Self::from_hex(&s)
    }
}

/// Records sealed with ChaCha20-Poly1305 under a store key: a fresh random nonce per record,
/// the record's name as associated data (a record moved to another name does not open).
pub struct Sealer(ChaCha20Poly1305);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// A sealer under a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self(ChaCha20Poly1305::new(Key::from_slice(key)))
    }

    /// `nonce ‖ ciphertext` of `plain` bound to `aad`; `None` only if encryption fails.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self.0.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad }).ok()?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Some(out)
    }

    /// The plaintext of a sealed record, or `None` if it is short, altered, sealed under
    /// another key or bound to another name.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (nonce, ct) = sealed.split_at_checked(12)?;
        self.0.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).ok().map(Zeroizing::new)
    }
}

/// The encrypted store of one node.
pub struct Store {
    db: Database,
    cipher: Sealer,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

fn db_err(e: impl std::fmt::Display) -> SignerError {
    SignerError::Store(e.to_string())
}

/// What a burn committed.
#[derive(Debug, Clone, Copy)]
pub struct Spend {
    /// The request id.
    pub request_id: [u8; 32],
    /// Value spent (wei).
    pub value: u128,
    /// Rolling 24-hour limit (wei).
    pub limit: u128,
    /// Node time.
    pub now: u64,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, key: StoreKey) -> Result<Self> {
        let db = Database::create(path).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        {
            w.open_table(META).map_err(db_err)?;
            w.open_table(PRESIG).map_err(db_err)?;
            w.open_table(BURNED).map_err(db_err)?;
            w.open_table(REQUESTS).map_err(db_err)?;
            w.open_table(SPEND).map_err(db_err)?;
        }
        w.commit().map_err(db_err)?;
        let raw = match key {
            StoreKey::Raw(k) => k,
            StoreKey::Passphrase(p) => {
                let salt = match Self::meta_get(&db, "argon2-salt")? {
                    Some(s) => s,
                    None => {
                        let mut s = vec![0u8; 16];
                        rand::thread_rng().fill_bytes(&mut s);
                        Self::meta_put(&db, "argon2-salt", &s)?;
                        s
                    }
                };
                let mut out = Zeroizing::new([0u8; 32]);
                argon2::Argon2::default()
                    .hash_password_into(p.as_bytes(), &salt, out.as_mut())
                    .map_err(|e| SignerError::Store(format!("argon2: {e}")))?;
                out
            }
        };
        let cipher = Sealer::new(&raw);
        let store = Self { db, cipher, path: path.to_path_buf() };
        // A known record detects a wrong key at open rather than at first use.
        match store.get_secret_meta("key-check")? {
            Some(v) if v.as_slice() == b"tacit" => {}
            Some(_) => return Err(SignerError::Decrypt("key-check".into())),
            None => store.put_secret_meta("key-check", b"tacit")?,
        }
        Ok(store)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta_get(db: &Database, key: &str) -> Result<Option<Vec<u8>>> {
        let r = db.begin_read().map_err(db_err)?;
        let t = r.open_table(META).map_err(db_err)?;
        Ok(t.get(key).map_err(db_err)?.map(|g| g.value().to_vec()))
    }

    fn meta_put(db: &Database, key: &str, value: &[u8]) -> Result<()> {
        let w = db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(META).map_err(db_err)?;
            t.insert(key, value).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        self.cipher.seal(aad, plain).ok_or_else(|| SignerError::Store("encryption failed".into()))
    }

    fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.cipher.open(aad, sealed).ok_or_else(|| SignerError::Decrypt(String::from_utf8_lossy(aad).into_owned()))
    }

    /// Plain (non-secret) metadata.
    pub fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Self::meta_get(&self.db, key)
    }

    /// Stores plain metadata.
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        Self::meta_put(&self.db, key, value)
    }

    /// A secret metadata record, decrypted.
    pub fn get_secret_meta(&self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match Self::meta_get(&self.db, key)? {
            Some(sealed) => Ok(Some(self.open_sealed(format!("meta/{key}").as_bytes(), &sealed)?)),
            None => Ok(None),
        }
    }

    /// Stores a secret metadata record, encrypted.
    pub fn put_secret_meta(&self, key: &str, plain: &[u8]) -> Result<()> {
        let sealed = self.seal(format!("meta/{key}").as_bytes(), plain)?;
        Self::meta_put(&self.db, key, &sealed)
    }

    /// Replaces the key share and drops every stored presignature (they belong to the old
    /// epoch), in one transaction.
    pub fn replace_share(&self, plain: &[u8]) -> Result<()> {
        let sealed = self.seal(b"meta/share", plain)?;
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(META).map_err(db_err)?;
            t.insert("share", sealed.as_slice()).map_err(db_err)?;
            let mut p = w.open_table(PRESIG).map_err(db_err)?;
            p.retain(|_, _| false).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// Stores presignature records (id, plaintext) in one transaction.
    pub fn put_presigs(&self, records: &[([u8; 32], Zeroizing<Vec<u8>>)]) -> Result<()> {
        let mut sealed = Vec::with_capacity(records.len());
        for (id, plain) in records {
            sealed.push((id, self.seal(&presig_aad(id), plain)?));
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(PRESIG).map_err(db_err)?;
            for (id, s) in &sealed {
                t.insert(id.as_slice(), s.as_slice()).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Ids of stored (unused) presignatures.
    pub fn presig_ids(&self) -> Result<Vec<[u8; 32]>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(PRESIG).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            if let Ok(id) = <[u8; 32]>::try_from(k.value()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Reads a presignature without burning it.
    pub fn get_presig(&self, id: &[u8; 32]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(PRESIG).map_err(db_err)?;
        match t.get(id.as_slice()).map_err(db_err)? {
            Some(g) => Ok(Some(self.open_sealed(&presig_aad(id), g.value())?)),
            None => Ok(None),
        }
    }

    /// Whether `id` was burned.
    pub fn is_burned(&self, id: &[u8; 32]) -> Result<bool> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(BURNED).map_err(db_err)?;
        Ok(t.get(id.as_slice()).map_err(db_err)?.is_some())
    }

    /// Whether a request id was used.
    pub fn request_used(&self, request_id: &[u8; 32]) -> Result<bool> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(REQUESTS).map_err(db_err)?;
        Ok(t.get(request_id.as_slice()).map_err(db_err)?.is_some())
    }

    /// Value spent in the 24 hours before `now`.
    pub fn spent_since(&self, now: u64) -> Result<u128> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(SPEND).map_err(db_err)?;
        window_sum(&t, now)
    }

    /// Atomically: checks the request id is unused and the spend fits the rolling limit, takes
    /// the presignature out, records the burn, the request id and the spend, and commits (the
    /// commit is durable when this returns). Only then may a signature share leave the node.
    pub fn burn(
        &self,
        me: tacit_mpc_engine::PartyId,
        presig_id: &[u8; 32],
        spend: &Spend,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let w = self.db.begin_write().map_err(db_err)?;
        let plain = {
            let burned = w.open_table(BURNED).map_err(db_err)?;
            if burned.get(presig_id.as_slice()).map_err(db_err)?.is_some() {
                return Err(SignerError::PresignatureBurned { presig: hex::encode(presig_id), refused_by: me });
            }
            drop(burned);
            let mut requests = w.open_table(REQUESTS).map_err(db_err)?;
            if requests.get(spend.request_id.as_slice()).map_err(db_err)?.is_some() {
                return Err(PolicyViolation::RequestReused { request_id: spend.request_id }.into());
            }
            let mut spends = w.open_table(SPEND).map_err(db_err)?;
            let spent = window_sum(&spends, spend.now)?;
            if spent.saturating_add(spend.value) > spend.limit {
                return Err(PolicyViolation::SpendLimit { spent, value: spend.value, limit: spend.limit }.into());
            }
            let mut presigs = w.open_table(PRESIG).map_err(db_err)?;
            let sealed = presigs
                .remove(presig_id.as_slice())
                .map_err(db_err)?
                .map(|g| g.value().to_vec())
                .ok_or_else(|| SignerError::Invalid(format!("no presignature {}", hex::encode(presig_id))))?;
            let plain = self.open_sealed(&presig_aad(presig_id), &sealed)?;
            let mut burned = w.open_table(BURNED).map_err(db_err)?;
            burned.insert(presig_id.as_slice(), spend.request_id.as_slice()).map_err(db_err)?;
            requests.insert(spend.request_id.as_slice(), spend.now).map_err(db_err)?;
            let floor = u128::from(spend.now) << 64;
            let key = spends.last().map_err(db_err)?.map_or(floor, |(k, _)| k.value().saturating_add(1).max(floor));
            spends.insert(key, spend.value).map_err(db_err)?;
            plain
        };
        w.commit().map_err(db_err)?;
        Ok(plain)
    }
}

fn presig_aad(id: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"presig/".to_vec();
    aad.extend_from_slice(id);
    aad
}

fn window_sum<T: ReadableTable<u128, u128>>(t: &T, now: u64) -> Result<u128> {
    let from = u128::from(now.saturating_sub(SPEND_WINDOW_S).saturating_add(1)) << 64;
    let mut sum = 0u128;
    for item in t.range(from..).map_err(db_err)? {
        let (_, v) = item.map_err(db_err)?;
        sum = sum.saturating_add(v.value());
    }
    Ok(sum)
}

/// Zeroizes a buffer (helper for callers that serialise secrets).
pub fn wipe(mut v: Vec<u8>) {
    v.zeroize();
}
