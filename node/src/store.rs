//! The node's embedded ACID store (redb): job records, a hash-chained audit log, per-client
//! budgets and sealed secrets (ChaCha20-Poly1305, each record bound to its name as associated
//! data). Every state change and its audit entry commit in one transaction, so a crash at any
//! point leaves either both or neither; [`NodeStore::check`] verifies the invariants.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use tacit_signer::store::Sealer;
use zeroize::Zeroizing;

use crate::config::KeySource;
use crate::error::{NodeError, Result};
use crate::secret::{KdfParams, NodeKey};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jobs");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const BUDGETS: TableDefinition<&str, u64> = TableDefinition::new("budgets");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// Items usable once (sealed), and the record of those used: an item leaves `items` and enters
/// `burned` in one transaction, committed before the caller sees its plaintext, and an id ever
/// burned is never stored again.
#[derive(Clone, Copy)]
pub struct SingleUse {
    /// Name for errors and associated data.
    pub name: &'static str,
    items: TableDefinition<'static, &'static [u8], &'static [u8]>,
    burned: TableDefinition<'static, &'static [u8], &'static [u8]>,
}

impl std::fmt::Debug for SingleUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleUse").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The MPC engine's preprocessing batches (see [`crate::prep`]).
pub const PREP_POOL: SingleUse = SingleUse {
    name: "preprocessing batch",
    items: TableDefinition::new("prep"),
    burned: TableDefinition::new("prep_burned"),
};

fn db_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Store(e.to_string())
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Running now.
    Running,
    /// Finished with a result.
    Done,
    /// Failed (may be retried with the same id).
    Failed,
}

/// A job as the store keeps it (no secrets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRecord {
    /// Job id (hex, 16 bytes).
    pub id: String,
    /// Job type.
    pub kind: String,
    /// Digest of the job's specification (hex).
    pub spec_digest: String,
    /// Client name (absent for the node's own jobs).
    pub client: Option<String>,
    /// State.
    pub state: JobState,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix seconds of the first submission.
    pub submitted: u64,
    /// Unix seconds of the last change.
    pub updated: u64,
    /// The result (public values only).
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

impl JobRecord {
    /// A job just submitted: queued, no attempt yet, stamped now.
    pub fn queued(id: &[u8; 16], kind: &str, spec_digest: &[u8], client: Option<String>) -> Self {
        let t = now();
        Self {
            id: hex::encode(id),
            kind: kind.into(),
            spec_digest: hex::encode(spec_digest),
            client,
            state: JobState::Queued,
            attempts: 0,
            submitted: t,
            updated: t,
            result: None,
            error: None,
        }
    }
}

/// One audit entry; `prev` is the hash of the previous entry's bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Sequence number from 0.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// blake3 of the previous entry's stored bytes (hex; zeros for the first).
    pub prev: String,
    /// What happened.
    pub event: String,
    /// Job id (hex), if any.
    pub job: String,
    /// Job type.
    pub kind: String,
    /// Client name.
    pub client: String,
    /// Status or detail (never secrets).
    pub detail: String,
}

/// What [`NodeStore::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// Job records.
    pub jobs: usize,
    /// Jobs per state (queued, running, done, failed).
    pub states: [usize; 4],
    /// Audit entries.
    pub audit_entries: u64,
    /// Preprocessing batches available.
    pub prep_available: usize,
    /// Preprocessing batches used (or discarded).
    pub prep_burned: usize,
}

/// The node's store.
pub struct NodeStore {
    db: Database,
    cipher: Sealer,
    path: PathBuf,
}

impl std::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl NodeStore {
    /// Opens (or creates) the store at `path`, deriving the key from `source` (a passphrase
    /// uses the Argon2id parameters kept here, created on first open). Returns the store and
    /// the key (for the signer's store).
    pub fn open(path: &Path, source: &KeySource, base: &Path) -> Result<(Self, NodeKey)> {
        let db = Database::create(path).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        {
            w.open_table(META).map_err(db_err)?;
            w.open_table(JOBS).map_err(db_err)?;
            w.open_table(AUDIT).map_err(db_err)?;
            w.open_table(BUDGETS).map_err(db_err)?;
            w.open_table(SECRETS).map_err(db_err)?;
            w.open_table(PREP_POOL.items).map_err(db_err)?;
            w.open_table(PREP_POOL.burned).map_err(db_err)?;
        }
        w.commit().map_err(db_err)?;
        let key = match NodeKey::load_raw(source, base)? {
            Some(k) => k,
            None => {
                let pass = NodeKey::passphrase(source, base)?;
                let params = match meta_get(&db, "kdf")? {
                    Some(b) => serde_json::from_slice::<KdfParams>(&b)
                        .map_err(|e| NodeError::Store(format!("KDF parameters: {e}")))?,
                    None => {
                        let (m, t) = match source {
                            KeySource::Passphrase { m_kib, t_cost, .. } => (*m_kib, *t_cost),
                            _ => (64 * 1024, 3),
                        };
                        let p = KdfParams::fresh(m, t);
                        let b = serde_json::to_vec(&p).map_err(db_err)?;
                        meta_put(&db, "kdf", &b)?;
                        p
                    }
                };
                NodeKey::from_passphrase(&pass, &params)?
            }
        };
        let store = Self::with_key(db, &key, path)?;
        Ok((store, key))
    }

    /// Opens with a known key (checks it against the store's key-check record).
    pub fn open_with_key(path: &Path, key: &NodeKey) -> Result<Self> {
        let db = Database::create(path).map_err(db_err)?;
        Self::with_key(db, key, path)
    }

    fn with_key(db: Database, key: &NodeKey, path: &Path) -> Result<Self> {
        let cipher = Sealer::new(key.expose());
        let store = Self { db, cipher, path: path.to_path_buf() };
        match store.get_secret("key-check")? {
            Some(v) if v.as_slice() == b"tacit-node" => {}
            Some(_) => return Err(NodeError::Decrypt("key-check".into())),
            None => store.put_secret("key-check", b"tacit-node")?,
        }
        Ok(store)
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        self.cipher.seal(aad, plain).ok_or_else(|| NodeError::Store("encryption failed".into()))
    }

    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.cipher.open(aad, sealed).ok_or_else(|| NodeError::Decrypt(String::from_utf8_lossy(aad).into_owned()))
    }

    /// A sealed secret, decrypted.
    pub fn get_secret(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(SECRETS).map_err(db_err)?;
        match t.get(name).map_err(db_err)? {
            Some(g) => Ok(Some(self.unseal(format!("secret/{name}").as_bytes(), g.value())?)),
            None => Ok(None),
        }
    }

    /// Seals and stores a secret.
    pub fn put_secret(&self, name: &str, plain: &[u8]) -> Result<()> {
        let sealed = self.seal(format!("secret/{name}").as_bytes(), plain)?;
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(SECRETS).map_err(db_err)?;
            t.insert(name, sealed.as_slice()).map_err(db_err)?;
        }
        w.commit().map_err(db_err)
    }

    /// A job record.
    pub fn job(&self, id: &[u8; 16]) -> Result<Option<JobRecord>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(JOBS).map_err(db_err)?;
        match t.get(id.as_slice()).map_err(db_err)? {
            Some(g) => Ok(Some(decode_job(g.value())?)),
            None => Ok(None),
        }
    }

    /// Writes a job record and its audit entry in one transaction (and counts a finished
    /// client job against the client's budget).
    pub fn put_job(&self, id: &[u8; 16], record: &JobRecord, event: &str) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(db_err)?;
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = w.open_table(JOBS).map_err(db_err)?;
            t.insert(id.as_slice(), bytes.as_slice()).map_err(db_err)?;
        }
        if record.state == JobState::Done {
            if let Some(c) = &record.client {
                let mut b = w.open_table(BUDGETS).map_err(db_err)?;
                let used = b.get(c.as_str()).map_err(db_err)?.map(|g| g.value()).unwrap_or(0);
                b.insert(c.as_str(), used.saturating_add(1)).map_err(db_err)?;
            }
        }
        let detail = match (&record.state, &record.error) {
            (JobState::Failed, Some(e)) => format!("failed: {e}"),
            (s, _) => format!("{s:?}").to_lowercase(),
        };
        append_audit(&w, event, &record.id, &record.kind, record.client.as_deref().unwrap_or(""), &detail)?;
        w.commit().map_err(db_err)
    }

    /// Appends an audit entry on its own.
    pub fn audit(&self, event: &str, detail: &str) -> Result<()> {
        let w = self.db.begin_write().map_err(db_err)?;
        append_audit(&w, event, "", "", "", detail)?;
        w.commit().map_err(db_err)
    }

    /// Jobs a client ran to completion.
    pub fn budget_used(&self, client: &str) -> Result<u64> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(BUDGETS).map_err(db_err)?;
        Ok(t.get(client).map_err(db_err)?.map(|g| g.value()).unwrap_or(0))
    }

    /// Every job record.
    pub fn jobs(&self) -> Result<Vec<JobRecord>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(JOBS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(decode_job(v.value())?);
        }
        Ok(out)
    }

    /// After a restart: jobs that were queued or running when the node stopped are marked
    /// failed (their sessions are gone; a client retries them with the same id). Returns how
    /// many. One transaction.
    pub fn recover(&self) -> Result<usize> {
        let w = self.db.begin_write().map_err(db_err)?;
        let mut changed = Vec::new();
        {
            let t = w.open_table(JOBS).map_err(db_err)?;
            for item in t.iter().map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                let mut rec = decode_job(v.value())?;
                if matches!(rec.state, JobState::Queued | JobState::Running) {
                    rec.state = JobState::Failed;
                    rec.error = Some("interrupted: the node restarted".into());
                    rec.updated = now();
                    changed.push((k.value().to_vec(), rec));
                }
            }
        }
        let count = changed.len();
        {
            let mut t = w.open_table(JOBS).map_err(db_err)?;
            for (k, rec) in &changed {
                let b = serde_json::to_vec(rec).map_err(db_err)?;
                t.insert(k.as_slice(), b.as_slice()).map_err(db_err)?;
            }
        }
        for (_, rec) in &changed {
            append_audit(&w, "recover", &rec.id, &rec.kind, rec.client.as_deref().unwrap_or(""), "interrupted")?;
        }
        append_audit(&w, "start", "", "", "", &format!("{count} interrupted jobs marked failed"))?;
        w.commit().map_err(db_err)?;
        Ok(count)
    }

    /// Checks the invariants: every job record decodes and its id matches its key, attempts
    /// are counted, finished jobs carry a result or an error; the audit log's sequence is
    /// contiguous from 0 and every entry chains to the previous one.
    pub fn check(&self) -> Result<CheckReport> {
        let r = self.db.begin_read().map_err(db_err)?;
        let mut report = CheckReport::default();
        let jobs = r.open_table(JOBS).map_err(db_err)?;
        for item in jobs.iter().map_err(db_err)? {
            let (k, v) = item.map_err(db_err)?;
            let rec = decode_job(v.value())?;
            if rec.id != hex::encode(k.value()) {
                return Err(NodeError::Store(format!("job {} stored under {}", rec.id, hex::encode(k.value()))));
            }
            let slot = match rec.state {
                JobState::Queued => 0,
                JobState::Running => 1,
                JobState::Done => 2,
                JobState::Failed => 3,
            };
            if rec.state == JobState::Done && rec.result.is_none() {
                return Err(NodeError::Store(format!("job {} is done without a result", rec.id)));
            }
            if rec.state == JobState::Failed && rec.error.is_none() {
                return Err(NodeError::Store(format!("job {} failed without a reason", rec.id)));
            }
            if rec.state != JobState::Queued && rec.attempts == 0 {
                return Err(NodeError::Store(format!("job {} left the queue without an attempt", rec.id)));
            }
            if let Some(s) = report.states.get_mut(slot) {
                *s += 1;
            }
            report.jobs += 1;
        }
        let audit = r.open_table(AUDIT).map_err(db_err)?;
        let mut prev = hex::encode([0u8; 32]);
        for (expected, item) in (0u64..).zip(audit.iter().map_err(db_err)?) {
            let (k, v) = item.map_err(db_err)?;
            let entry: AuditEntry = serde_json::from_slice(v.value())
                .map_err(|e| NodeError::Store(format!("audit entry {}: {e}", k.value())))?;
            if k.value() != expected || entry.seq != expected {
                return Err(NodeError::Store(format!("audit gap at {expected}")));
            }
            if entry.prev != prev {
                return Err(NodeError::Store(format!("audit entry {expected} does not chain")));
            }
            prev = hex::encode(blake3::hash(v.value()).as_bytes());
        }
        report.audit_entries = audit.len().map_err(db_err)?;
        let items = r.open_table(PREP_POOL.items).map_err(db_err)?;
        let burned = r.open_table(PREP_POOL.burned).map_err(db_err)?;
        for item in items.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            if burned.get(k.value()).map_err(db_err)?.is_some() {
                return Err(NodeError::Store(format!(
                    "{} {} is both burned and available",
                    PREP_POOL.name,
                    hex::encode(k.value())
                )));
            }
            report.prep_available += 1;
        }
        report.prep_burned = usize::try_from(burned.len().map_err(db_err)?).unwrap_or(usize::MAX);
        Ok(report)
    }

    /// The audit log, oldest first.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(AUDIT).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (_, v) = item.map_err(db_err)?;
            out.push(serde_json::from_slice(v.value()).map_err(db_err)?);
        }
        Ok(out)
    }
}

impl NodeStore {
    /// Seals and stores new single-use items in one transaction; refused if any id is already
    /// held or was ever burned (an id is never reused).
    pub fn put_single_use(&self, pool: SingleUse, items: &[(Vec<u8>, Zeroizing<Vec<u8>>)]) -> Result<()> {
        let mut sealed = Vec::with_capacity(items.len());
        for (id, plain) in items {
            sealed.push((id, self.seal(&single_use_aad(pool, id), plain)?));
        }
        let w = self.db.begin_write().map_err(db_err)?;
        {
            let burned = w.open_table(pool.burned).map_err(db_err)?;
            let mut t = w.open_table(pool.items).map_err(db_err)?;
            for (id, s) in &sealed {
                if burned.get(id.as_slice()).map_err(db_err)?.is_some()
                    || t.get(id.as_slice()).map_err(db_err)?.is_some()
                {
                    return Err(NodeError::Store(format!("{} {} exists or was used", pool.name, hex::encode(id))));
                }
                t.insert(id.as_slice(), s.as_slice()).map_err(db_err)?;
            }
        }
        w.commit().map_err(db_err)
    }

    /// Ids of the items available, ascending.
    pub fn single_use_ids(&self, pool: SingleUse) -> Result<Vec<Vec<u8>>> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(pool.items).map_err(db_err)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            out.push(k.value().to_vec());
        }
        Ok(out)
    }

    /// Whether `id` was burned.
    pub fn single_use_burned(&self, pool: SingleUse, id: &[u8]) -> Result<bool> {
        let r = self.db.begin_read().map_err(db_err)?;
        let t = r.open_table(pool.burned).map_err(db_err)?;
        Ok(t.get(id).map_err(db_err)?.is_some())
    }

    /// Burns `ids` for `user` (a job id, or why they were discarded) in one transaction and
    /// returns their plaintexts: all or none. The commit is durable when this returns, so an
    /// item is handed out at most once whatever happens afterwards. Fails, burning nothing, if
    /// one of them was burned before or is not held.
    pub fn burn_single_use(&self, pool: SingleUse, ids: &[Vec<u8>], user: &str) -> Result<Vec<Zeroizing<Vec<u8>>>> {
        let w = self.db.begin_write().map_err(db_err)?;
        let mut out = Vec::with_capacity(ids.len());
        {
            let mut burned = w.open_table(pool.burned).map_err(db_err)?;
            let mut items = w.open_table(pool.items).map_err(db_err)?;
            for id in ids {
                if let Some(by) = burned.get(id.as_slice()).map_err(db_err)? {
                    return Err(NodeError::Store(format!(
                        "{} {} was already used by {}",
                        pool.name,
                        hex::encode(id),
                        String::from_utf8_lossy(by.value())
                    )));
                }
                let sealed = items
                    .remove(id.as_slice())
                    .map_err(db_err)?
                    .map(|g| g.value().to_vec())
                    .ok_or_else(|| NodeError::Store(format!("no {} {} here", pool.name, hex::encode(id))))?;
                out.push(self.unseal(&single_use_aad(pool, id), &sealed)?);
                burned.insert(id.as_slice(), user.as_bytes()).map_err(db_err)?;
            }
            let detail = format!("{} {} burned", ids.len(), pool.name);
            drop((burned, items));
            append_audit(&w, "burn", user, pool.name, "", &detail)?;
        }
        w.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Burns whichever of `ids` are held, unread (orphans: another node lacks them).
    pub fn discard_single_use(&self, pool: SingleUse, ids: &[Vec<u8>], why: &str) -> Result<usize> {
        let w = self.db.begin_write().map_err(db_err)?;
        let mut count = 0;
        {
            let mut burned = w.open_table(pool.burned).map_err(db_err)?;
            let mut items = w.open_table(pool.items).map_err(db_err)?;
            for id in ids {
                if items.remove(id.as_slice()).map_err(db_err)?.is_some() {
                    burned.insert(id.as_slice(), why.as_bytes()).map_err(db_err)?;
                    count += 1;
                }
            }
        }
        if count > 0 {
            append_audit(&w, "discard", "", pool.name, "", &format!("{count} discarded: {why}"))?;
        }
        w.commit().map_err(db_err)?;
        Ok(count)
    }

    /// A public value kept in the store's metadata.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        meta_get(&self.db, key)
    }

    /// Sets a public metadata value.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        meta_put(&self.db, key, value)
    }

    /// Reserves `count` numbers of the counter `key` (durably, before they are used) and
    /// returns the first.
    pub fn reserve(&self, key: &str, count: u64) -> Result<u64> {
        let w = self.db.begin_write().map_err(db_err)?;
        let first = {
            let mut t = w.open_table(META).map_err(db_err)?;
            let first = t
                .get(key)
                .map_err(db_err)?
                .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
                .map_or(0, u64::from_be_bytes);
            t.insert(key, first.saturating_add(count).to_be_bytes().as_slice()).map_err(db_err)?;
            first
        };
        w.commit().map_err(db_err)?;
        Ok(first)
    }
}

fn single_use_aad(pool: SingleUse, id: &[u8]) -> Vec<u8> {
    let mut aad = format!("{}/", pool.name).into_bytes();
    aad.extend_from_slice(id);
    aad
}

fn decode_job(b: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(b).map_err(|e| NodeError::Store(format!("job record: {e}")))
}

fn append_audit(w: &WriteTransaction, event: &str, job: &str, kind: &str, client: &str, detail: &str) -> Result<()> {
    let mut t = w.open_table(AUDIT).map_err(db_err)?;
    let (seq, prev) = match t.last().map_err(db_err)? {
        Some((k, v)) => (k.value().saturating_add(1), hex::encode(blake3::hash(v.value()).as_bytes())),
        None => (0, hex::encode([0u8; 32])),
    };
    let entry = AuditEntry {
        seq,
        time: now(),
        prev,
        event: event.into(),
        job: job.into(),
        kind: kind.into(),
        client: client.into(),
        detail: detail.into(),
    };
    let bytes = serde_json::to_vec(&entry).map_err(db_err)?;
    t.insert(seq, bytes.as_slice()).map_err(db_err)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &[u8; 16], state: JobState) -> JobRecord {
        JobRecord {
            id: hex::encode(id),
            kind: "signer.presign".into(),
            spec_digest: String::new(),
            client: Some("ops".into()),
            state,
            attempts: u32::from(state != JobState::Queued),
            submitted: 1,
            updated: 1,
            result: (state == JobState::Done).then(|| serde_json::json!({})),
            error: (state == JobState::Failed).then(|| "x".to_string()),
        }
    }

    #[test]
    fn jobs_audit_recover_check() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, hex::encode([7u8; 32])).unwrap();
        let src = KeySource::File { path: key };
        let (s, _) = NodeStore::open(&dir.path().join("n.redb"), &src, dir.path()).unwrap();
        s.put_job(&[1; 16], &rec(&[1; 16], JobState::Running), "run").unwrap();
        s.put_job(&[2; 16], &rec(&[2; 16], JobState::Done), "done").unwrap();
        s.put_secret("x", b"secret bytes").unwrap();
        assert_eq!(s.recover().unwrap(), 1);
        let report = s.check().unwrap();
        assert_eq!(report.states, [0, 0, 1, 1]);
        assert_eq!(report.audit_entries, 4);
        assert_eq!(s.budget_used("ops").unwrap(), 1);
        drop(s);
        // Wrong key refused; the secret is not in the file in the clear.
        let bytes = std::fs::read(dir.path().join("n.redb")).unwrap();
        assert!(!bytes.windows(12).any(|w| w == b"secret bytes"));
        assert!(NodeStore::open_with_key(&dir.path().join("n.redb"), &NodeKey::from_bytes([8; 32])).is_err());
    }

    #[test]
    fn passphrase_params_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("TACIT_TEST_PASS_1", "correct horse battery");
        let src = KeySource::Passphrase {
            var: Some("TACIT_TEST_PASS_1".into()),
            passphrase_file: None,
            m_kib: 256,
            t_cost: 1,
        };
        let path = dir.path().join("n.redb");
        let (s, k1) = NodeStore::open(&path, &src, dir.path()).unwrap();
        drop(s);
        let (_, k2) = NodeStore::open(&path, &src, dir.path()).unwrap();
        assert_eq!(k1.expose(), k2.expose());
        std::env::set_var("TACIT_TEST_PASS_1", "wrong horse battery");
        assert!(matches!(NodeStore::open(&path, &src, dir.path()), Err(NodeError::Decrypt(_))));
        assert_eq!(format!("{k1:?}"), "NodeKey(<redacted>)");
    }
}
