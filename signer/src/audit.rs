//! Per-node audit log: append-only JSON lines, hash-chained, each entry signed by the node's
//! audit key. Never holds a secret. [`verify_file`] reports the first entry that was edited,
//! reordered or removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::curve::keccak;
use crate::error::{Result, SignerError};

/// Outcome recorded for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Completed.
    Success,
    /// The policy gate refused.
    PolicyReject,
    /// A signer refused or was unreachable.
    SignerOffline,
    /// A peer did not answer in time.
    Timeout,
    /// A cheat was detected (the culprit is in `detail`).
    CheatDetected,
}

/// What an entry records (public data only).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// dkg, refresh, reshare, presign, sign, policy.
    pub event: String,
    /// Session id (hex).
    pub session: String,
    /// Key id (hex).
    pub key_id: String,
    /// keccak of the public key (hex).
    pub public_key_hash: String,
    /// Chain id (0 when not applicable).
    pub chain_id: u64,
    /// Destination (hex, empty when not applicable).
    pub to: String,
    /// EIP-712 intent digest (hex).
    pub intent_hash: String,
    /// Approvers counted (hex addresses).
    pub approvals: Vec<String>,
    /// Signer set.
    pub signers: Vec<u16>,
    /// Outcome.
    pub status: Option<AuditStatus>,
    /// keccak of the signature (hex).
    pub signature_hash: String,
    /// Free text (error, culprit, counts).
    pub detail: String,
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: u64,
    node: u16,
    node_key: &'a str,
    prev: &'a str,
    record: &'a AuditRecord,
}

/// One line of the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position, from 0.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Node id.
    pub node: u16,
    /// The node's audit key (SEC1 compressed, hex).
    pub node_key: String,
    /// Hash of the previous entry (hex; zeros for the first).
    pub prev: String,
    /// The record.
    pub record: AuditRecord,
    /// keccak of the canonical body (hex).
    pub hash: String,
    /// The node's signature over `hash` (hex, r || s).
    pub signature: String,
}

impl AuditEntry {
    fn body_hash(&self) -> [u8; 32] {
        let body = Body {
            seq: self.seq,
            time: self.time,
            node: self.node,
            node_key: &self.node_key,
            prev: &self.prev,
            record: &self.record,
        };
        keccak(&serde_json::to_vec(&body).unwrap_or_default())
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An open audit log.
pub struct AuditLog {
    path: PathBuf,
    key: SigningKey,
    node: u16,
    next_seq: u64,
    prev: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).field("next_seq", &self.next_seq).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, checking the existing chain.
    pub fn open(path: &Path, key: SigningKey, node: u16) -> Result<Self> {
        let (next_seq, prev) = if path.exists() {
            let expected = hex::encode(key.verifying_key().to_encoded_point(true).as_bytes());
            match verify_file(path, Some(&expected))? {
                Ok(report) => (report.entries, report.head),
                Err(failure) => return Err(SignerError::Audit(format!("existing log is damaged: {failure}"))),
            }
        } else {
            (0, GENESIS.to_string())
        };
        Ok(Self { path: path.to_path_buf(), key, node, next_seq, prev })
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a signed entry (flushed and synced before returning).
    pub fn append(&mut self, time: u64, record: AuditRecord) -> Result<()> {
        let mut entry = AuditEntry {
            seq: self.next_seq,
            time,
            node: self.node,
            node_key: hex::encode(self.key.verifying_key().to_encoded_point(true).as_bytes()),
            prev: self.prev.clone(),
            record,
            hash: String::new(),
            signature: String::new(),
        };
        let hash = entry.body_hash();
        let sig: Signature = self.key.sign_prehash(&hash).map_err(|e| SignerError::Audit(e.to_string()))?;
        entry.hash = hex::encode(hash);
        entry.signature = hex::encode(sig.to_bytes());
        let mut line = serde_json::to_string(&entry).map_err(|e| SignerError::Audit(e.to_string()))?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| SignerError::Audit(e.to_string()))?;
        f.write_all(line.as_bytes()).map_err(|e| SignerError::Audit(e.to_string()))?;
        f.sync_data().map_err(|e| SignerError::Audit(e.to_string()))?;
        self.next_seq += 1;
        self.prev = entry.hash;
        Ok(())
    }
}

/// A log that verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries.
    pub entries: u64,
    /// Hash of the last entry (compare with a copy kept elsewhere to detect truncation).
    pub head: String,
    /// The node key the entries are signed with.
    pub node_key: String,
}

/// What is wrong with a log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
pub enum AuditFailure {
    /// Not an entry at all.
    Malformed {
        /// Line (1-based).
        line: usize,
    },
    /// Its content does not match its hash, or its signature is not the node's.
    Edited {
        /// Line (1-based).
        line: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// It appears out of order.
    Reordered {
        /// Line (1-based).
        line: usize,
        /// Sequence number found.
        seq: u64,
        /// Sequence number expected.
        expected: u64,
    },
    /// Entries before it are missing.
    Removed {
        /// Line (1-based) where the gap is seen.
        line: usize,
        /// First missing sequence number.
        first_missing: u64,
    },
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed { line } => write!(f, "line {line}: not an audit entry"),
            Self::Edited { line, seq } => write!(f, "line {line} (entry {seq}): edited (hash or signature mismatch)"),
            Self::Reordered { line, seq, expected } => {
                write!(f, "line {line}: entry {seq} out of order (expected entry {expected}): reordered")
            }
            Self::Removed { line, first_missing } => {
                write!(f, "line {line}: entry {first_missing} and possibly more were removed")
            }
        }
    }
}

/// Verifies a log file. `expected_key` (hex SEC1 compressed) pins the node key; otherwise the
/// first entry's key is used. I/O errors are `Err`; a damaged log is `Ok(Err(failure))`.
pub fn verify_file(path: &Path, expected_key: Option<&str>) -> Result<std::result::Result<AuditReport, AuditFailure>> {
    let text = std::fs::read_to_string(path).map_err(|e| SignerError::Audit(format!("{}: {e}", path.display())))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut parsed = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str::<AuditEntry>(l) {
            Ok(e) => parsed.push(e),
            Err(_) => return Ok(Err(AuditFailure::Malformed { line: i + 1 })),
        }
    }
    let key_hex = match (expected_key, parsed.first()) {
        (Some(k), _) => k.to_string(),
        (None, Some(e)) => e.node_key.clone(),
        (None, None) => String::new(),
    };
    let key = hex::decode(&key_hex).ok().and_then(|b| VerifyingKey::from_sec1_bytes(&b).ok());
    let mut prev = GENESIS.to_string();
    for (i, e) in parsed.iter().enumerate() {
        let line = i + 1;
        let hash = e.body_hash();
        let sig_ok = hex::decode(&e.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .zip(key.as_ref())
            .is_some_and(|(s, k)| k.verify_prehash(&hash, &s).is_ok());
        if hex::encode(hash) != e.hash || !sig_ok || e.node_key != key_hex {
            return Ok(Err(AuditFailure::Edited { line, seq: e.seq }));
        }
        let expected = i as u64;
        if e.seq != expected || e.prev != prev {
            let later = parsed.iter().skip(i + 1).any(|x| x.seq == expected);
            return Ok(Err(if e.seq < expected || later {
                AuditFailure::Reordered { line, seq: e.seq, expected }
            } else {
                AuditFailure::Removed { line, first_missing: expected }
            }));
        }
        prev = e.hash.clone();
    }
    Ok(Ok(AuditReport { entries: parsed.len() as u64, head: prev, node_key: key_hex }))
}
