//! The node's embedded ACID store (redb): key share, presignatures and the audit key encrypted
//! at rest with ChaCha20-Poly1305 (each record bound to its table and key as associated data),
//! burn records, used request ids, the spend window and the policy.
//!
//! A request id is bound to one presignature and one intent digest. When a signing fails after
//! the burn (a peer died mid-round), the burned presignature is retained, sealed to that digest,
//! so a retry of the same request sends the same share again: a share for the same message
//! reveals nothing new, and the retry yields the same signature. It is dropped once this node
//! has the signature; it never signs another message.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PolicyViolation, Result, SignerError};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PRESIG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("presig");
const BURNED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("burned");
const REQUESTS: TableDefinition<&[u8], u64> = TableDefinition::new("requests");
/// Request id → presignature id ‖ intent digest: the presignature a request is bound to (chosen
/// by the proposer, or burned for it).
const CHOSEN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("request-presig");
/// Presignature id → request id ‖ the intent's expiry (u64, big-endian): chosen by the
/// proposer for a request and not yet burned. The reservation lapses with the intent.
const RESERVED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("reserved");
/// Presignature id → sealed presignature: burned for a request whose signature this node does
/// not hold yet (sealed to the request's intent digest).
const RETAINED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("retained");
/// Presignature id → its batch (16 bytes): stored here, but not yet known to be stored by every
/// node. A proposer chooses only confirmed presignatures; a member signs with either.
const UNCONFIRMED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("presig-unconfirmed");
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
            w.open_table(CHOSEN).map_err(db_err)?;
            w.open_table(RESERVED).map_err(db_err)?;
            w.open_table(RETAINED).map_err(db_err)?;
            w.open_table(UNCONFIRMED).map_err(db_err)?;
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

    /// Replaces the key share and drops every stored, unconfirmed, reserved and retained
    /// presignature (they belong to the old epoch), in one transaction.
    pub fn replace_share(&self, plain: &[u8]) -> Result<()> {
        let sealed = self.seal(b"meta/share", plain)?;
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(META).map_err(db_err)?;
            t.insert("share", sealed.as_slice()).map_err(db_err)?;
            for table in [PRESIG, RESERVED, RETAINED, UNCONFIRMED] {
                w.open_table(table).map_err(db_err)?.retain(|_, _| false).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Stores presignature records (id, plaintext) in one transaction; with `unconfirmed_batch`,
    /// marked unconfirmed until [`Store::confirm_batch`] (the nodes have not all stored them yet).
    pub fn put_presigs(
        &self,
        records: &[([u8; 32], Zeroizing<Vec<u8>>)],
        unconfirmed_batch: Option<&[u8; 16]>,
    ) -> Result<()> {
        let mut sealed = Vec::with_capacity(records.len());
        for (id, plain) in records {
            sealed.push((id, self.seal(&presig_aad(id), plain)?));
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(PRESIG).map_err(db_err)?;
            let mut unconfirmed = w.open_table(UNCONFIRMED).map_err(db_err)?;
            for (id, s) in &sealed {
                t.insert(id.as_slice(), s.as_slice()).map_err(db_err)?;
                if let Some(batch) = unconfirmed_batch {
                    unconfirmed.insert(id.as_slice(), batch.as_slice()).map_err(db_err)?;
                }
            }
        }
        w.commit().map_err(db_err)
    }

    /// Confirms the presignatures of `batch` (every node stored them); returns how many were
    /// unconfirmed.
    pub fn confirm_batch(&self, batch: &[u8; 16]) -> Result<u64> {
        let w = self.db.begin_write().map_err(db_err)?;
        let confirmed = {
            let mut t = w.open_table(UNCONFIRMED).map_err(db_err)?;
            let before = ReadableTableMetadata::len(&t).map_err(db_err)?;
            t.retain(|_, v| v != batch.as_slice()).map_err(db_err)?;
            before - ReadableTableMetadata::len(&t).map_err(db_err)?
        };
        if confirmed == 0 {
            w.abort().map_err(db_err)?;
        } else {
            w.commit().map_err(db_err)?;
        }
        Ok(confirmed)
    }

    /// Ids of stored presignatures not yet confirmed as stored by every node.
    pub fn unconfirmed_ids(&self) -> Result<std::collections::BTreeSet<[u8; 32]>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(UNCONFIRMED).map_err(db_err)?;
        let mut out = std::collections::BTreeSet::new();
        for item in t.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            if let Ok(id) = <[u8; 32]>::try_from(k.value()) {
                out.insert(id);
            }
        }
        Ok(out)
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

    /// The presignature and intent digest request `request_id` is bound to here, if any.
    pub fn binding(&self, request_id: &[u8; 32]) -> Result<Option<([u8; 32], [u8; 32])>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(CHOSEN).map_err(db_err)?;
        t.get(request_id.as_slice()).map_err(db_err)?.map(|g| parse_binding(g.value())).transpose()
    }

    /// Unused presignatures the proposer chose for a request that has not burned them yet and
    /// whose intent has not expired at `now` (an expired intent can no longer be signed).
    pub fn reserved_presigs(&self, now: u64) -> Result<std::collections::BTreeSet<[u8; 32]>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(RESERVED).map_err(db_err)?;
        let mut out = std::collections::BTreeSet::new();
        for item in t.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let expiry = v.value().get(32..40).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes);
            if let (Ok(id), Some(expiry)) = (<[u8; 32]>::try_from(k.value()), expiry) {
                if expiry >= now {
                    out.insert(id);
                }
            }
        }
        Ok(out)
    }

    /// Durably binds an unused request id to presignature `presig_id` and its intent digest
    /// (the proposer's choice, kept so every retry proposes the same presignature).
    pub fn reserve(
        &self,
        request_id: &[u8; 32],
        presig_id: &[u8; 32],
        intent_digest: &[u8; 32],
        expiry: u64,
    ) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            if w.open_table(REQUESTS).map_err(db_err)?.get(request_id.as_slice()).map_err(db_err)?.is_some() {
                return Err(PolicyViolation::RequestReused { request_id: *request_id }.into());
            }
            let mut chosen = w.open_table(CHOSEN).map_err(db_err)?;
            let binding = chosen_value(presig_id, intent_digest);
            chosen.insert(request_id.as_slice(), binding.as_slice()).map_err(db_err)?;
            let mut reserved = w.open_table(RESERVED).map_err(db_err)?;
            let mut value = request_id.to_vec();
            value.extend_from_slice(&expiry.to_be_bytes());
            reserved.insert(presig_id.as_slice(), value.as_slice()).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// Forgets the proposer's choice for a request that was not burned here.
    pub fn drop_reservation(&self, request_id: &[u8; 32]) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        {
            if w.open_table(REQUESTS).map_err(db_err)?.get(request_id.as_slice()).map_err(db_err)?.is_some() {
                return Ok(());
            }
            let mut chosen = w.open_table(CHOSEN).map_err(db_err)?;
            let bound = chosen.remove(request_id.as_slice()).map_err(db_err)?.map(|g| g.value().to_vec());
            // Nothing reserved (every refusal at every member comes here): no commit, no fsync.
            let Some((presig, _)) = bound.as_deref().map(parse_binding).transpose()? else { return Ok(()) };
            let mut reserved = w.open_table(RESERVED).map_err(db_err)?;
            let for_this = reserved
                .get(presig.as_slice())
                .map_err(db_err)?
                .is_some_and(|g| g.value().get(..32) == Some(request_id.as_slice()));
            if for_this {
                reserved.remove(presig.as_slice()).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// The presignature burned here for exactly this request, presignature and intent, while
    /// this node does not hold the signature yet (a retry of the same signing).
    pub fn retained_for(
        &self,
        request_id: &[u8; 32],
        presig_id: &[u8; 32],
        intent_digest: &[u8; 32],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        if r.open_table(REQUESTS).map_err(db_err)?.get(request_id.as_slice()).map_err(db_err)?.is_none() {
            return Ok(None);
        }
        let chosen = r.open_table(CHOSEN).map_err(db_err)?;
        let bound = chosen.get(request_id.as_slice()).map_err(db_err)?.map(|g| parse_binding(g.value())).transpose()?;
        if bound != Some((*presig_id, *intent_digest)) {
            return Ok(None);
        }
        let burned_for = r
            .open_table(BURNED)
            .map_err(db_err)?
            .get(presig_id.as_slice())
            .map_err(db_err)?
            .map(|g| g.value().to_vec());
        if burned_for.as_deref() != Some(request_id.as_slice()) {
            return Ok(None);
        }
        let t = r.open_table(RETAINED).map_err(db_err)?;
        match t.get(presig_id.as_slice()).map_err(db_err)? {
            Some(g) => Ok(Some(self.open_sealed(&retained_aad(presig_id, intent_digest), g.value())?)),
            None => Ok(None),
        }
    }

    /// Drops a retained presignature once this node holds the signature it was burned for.
    pub fn release(&self, presig_id: &[u8; 32]) -> Result<()> {
        let mut w = self.db.begin_write().map_err(db_err)?;
        // Not fsynced (the next burn persists it): a release lost in a crash only leaves a
        // presignature that can sign the same message again, to the same signature.
        w.set_durability(Durability::None);
        w.open_table(RETAINED).map_err(db_err)?.remove(presig_id.as_slice()).map_err(db_err)?;
        w.commit().map_err(db_err)
    }

    /// How many burned presignatures are retained for a retry of their request.
    pub fn retained_count(&self) -> Result<u64> {
        let r = self.db.begin_read().map_err(db_err)?;
        ReadableTableMetadata::len(&r.open_table(RETAINED).map_err(db_err)?).map_err(db_err)
    }

    /// Atomically: checks the request id is unused (and not bound here to another presignature
    /// or intent) and the spend fits the rolling limit, moves the presignature to the retained
    /// table sealed to `intent_digest`, records the burn, the binding, the request id and the
    /// spend, and commits (the commit is durable when this returns). Only then may a signature
    /// share leave the node.
    pub fn burn(
        &self,
        me: tacit_mpc_engine::PartyId,
        presig_id: &[u8; 32],
        intent_digest: &[u8; 32],
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
            let mut chosen = w.open_table(CHOSEN).map_err(db_err)?;
            let binding = chosen_value(presig_id, intent_digest);
            if let Some(bound) = chosen.get(spend.request_id.as_slice()).map_err(db_err)? {
                if bound.value() != binding.as_slice() {
                    return Err(bound_elsewhere(spend.request_id, bound.value(), intent_digest, me));
                }
            }
            chosen.insert(spend.request_id.as_slice(), binding.as_slice()).map_err(db_err)?;
            w.open_table(RESERVED).map_err(db_err)?.remove(presig_id.as_slice()).map_err(db_err)?;
            w.open_table(UNCONFIRMED).map_err(db_err)?.remove(presig_id.as_slice()).map_err(db_err)?;
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
            let retained = self.seal(&retained_aad(presig_id, intent_digest), &plain)?;
            w.open_table(RETAINED)
                .map_err(db_err)?
                .insert(presig_id.as_slice(), retained.as_slice())
                .map_err(db_err)?;
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

fn retained_aad(id: &[u8; 32], intent_digest: &[u8; 32]) -> Vec<u8> {
    let mut aad = b"retained/".to_vec();
    aad.extend_from_slice(id);
    aad.extend_from_slice(intent_digest);
    aad
}

fn chosen_value(presig_id: &[u8; 32], intent_digest: &[u8; 32]) -> [u8; 64] {
    let mut v = [0u8; 64];
    v[..32].copy_from_slice(presig_id);
    v[32..].copy_from_slice(intent_digest);
    v
}

/// A `CHOSEN` value: (presignature id, intent digest).
fn parse_binding(v: &[u8]) -> Result<([u8; 32], [u8; 32])> {
    let presig = v.get(..32).and_then(|b| <[u8; 32]>::try_from(b).ok());
    let digest = v.get(32..).and_then(|b| <[u8; 32]>::try_from(b).ok());
    presig.zip(digest).ok_or_else(|| SignerError::Store("malformed request binding".into()))
}

/// The refusal for a request bound here to another intent or another presignature.
fn bound_elsewhere(
    request_id: [u8; 32],
    bound: &[u8],
    intent_digest: &[u8; 32],
    me: tacit_mpc_engine::PartyId,
) -> SignerError {
    match parse_binding(bound) {
        Err(e) => e,
        Ok((_, digest)) if digest != *intent_digest => PolicyViolation::RequestReused { request_id }.into(),
        Ok((presig, _)) => SignerError::PresignatureMismatch {
            presig: hex::encode(presig),
            node: me,
            reason: format!("request id {} is bound to this presignature here", hex::encode(request_id)),
        },
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
