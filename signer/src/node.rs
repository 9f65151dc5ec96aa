//! A signer node: its encrypted store, policy and audit log, and the checks it makes before
//! any signature share leaves it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use tacit_mpc_engine::{PartyId, SessionId};

use crate::audit::{AuditLog, AuditRecord, AuditStatus};
use crate::curve::{keccak, point_to_bytes};
use crate::error::{PolicyViolation, Result, SignerError};
use crate::eth::{hex_array, Intent};
use crate::keys::{KeyPublic, KeyShare, Presignature};
use crate::policy::{check_approvals, Approval, PendingPolicy, Policy};
use crate::store::{Spend, Store, StoreKey};

/// A signing request as every node of the signer set receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// The intent.
    pub intent: Intent,
    /// Approver signatures over the intent's EIP-712 digest.
    pub approvals: Vec<Approval>,
    /// The presignature to use.
    #[serde(with = "hex_array")]
    pub presig_id: [u8; 32],
    /// The signer set (ascending party ids); must be the presignature's.
    pub signers: Vec<u16>,
}

impl SignRequest {
    /// The signer set as party ids.
    pub fn signer_ids(&self) -> Result<Vec<PartyId>> {
        self.signers
            .iter()
            .map(|s| PartyId::new(*s).ok_or_else(|| SignerError::Invalid(format!("no party {s}"))))
            .collect()
    }
}

/// A signer node.
pub struct Node {
    me: PartyId,
    store: Store,
    audit: Mutex<AuditLog>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("me", &self.me).field("store", &self.store).finish_non_exhaustive()
    }
}

/// The store file of node `me` in `dir`.
pub fn store_path(dir: &Path, me: PartyId) -> PathBuf {
    dir.join(format!("node-{}.redb", me.get()))
}

/// The audit log of node `me` in `dir`.
pub fn audit_path(dir: &Path, me: PartyId) -> PathBuf {
    dir.join(format!("node-{}.audit.jsonl", me.get()))
}

impl Node {
    /// Opens (or creates) node `me` in `dir`.
    pub fn open(dir: &Path, me: PartyId, key: StoreKey) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| SignerError::Store(e.to_string()))?;
        let store = Store::open(&store_path(dir, me), key)?;
        let audit_key = match store.get_secret_meta("audit-key")? {
            Some(b) => SigningKey::from_slice(&b).map_err(|_| SignerError::Store("bad audit key".into()))?,
            None => {
                let k = SigningKey::random(&mut rand::thread_rng());
                store.put_secret_meta("audit-key", &k.to_bytes())?;
                k
            }
        };
        let audit = AuditLog::open(&audit_path(dir, me), audit_key, me.get())?;
        Ok(Self { me, store, audit: Mutex::new(audit) })
    }

    /// This node.
    pub fn id(&self) -> PartyId {
        self.me
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends an audit entry.
    pub fn audit(&self, now: u64, record: AuditRecord) -> Result<()> {
        let mut log = self.audit.lock().map_err(|_| SignerError::Audit("log lock poisoned".into()))?;
        log.append(now, record)
    }

    /// The audit log's file.
    pub fn audit_file(&self) -> Result<PathBuf> {
        let log = self.audit.lock().map_err(|_| SignerError::Audit("log lock poisoned".into()))?;
        Ok(log.path().to_path_buf())
    }

    /// The key share (current epoch).
    pub fn key_share(&self) -> Result<KeyShare> {
        let bytes = self.store.get_secret_meta("share")?.ok_or_else(|| SignerError::Invalid("no key share".into()))?;
        let share = KeyShare::from_bytes(&bytes)?;
        if share.me != self.me {
            return Err(SignerError::Invalid("the store belongs to another party".into()));
        }
        Ok(share)
    }

    /// The public key description (also on a replacement node that has no share yet).
    pub fn key_public(&self) -> Result<KeyPublic> {
        let bytes = self.store.get_meta("key-public")?.ok_or_else(|| SignerError::Invalid("no key".into()))?;
        KeyPublic::from_bytes(&bytes)
    }

    /// Records the public key description (a replacement node, before it is reshared to).
    pub fn set_public(&self, public: &KeyPublic) -> Result<()> {
        self.store.put_meta("key-public", &public.to_bytes())
    }

    /// Installs a new share (from DKG, refresh or reshare). An older epoch is refused; every
    /// stored presignature is dropped (they belong to the old epoch).
    pub fn install_share(&self, share: &KeyShare, event: &str, session: &[u8], now: u64) -> Result<()> {
        share.check()?;
        if let Ok(current) = self.key_public() {
            if share.public.key_id == current.key_id && share.public.epoch <= current.epoch && event != "dkg" {
                return Err(SignerError::StaleEpoch { got: share.public.epoch, current: current.epoch });
            }
        }
        self.store.replace_share(&share.expose_bytes())?;
        self.set_public(&share.public)?;
        self.audit(
            now,
            AuditRecord {
                event: event.into(),
                session: hex::encode(session),
                key_id: hex::encode(share.public.key_id),
                public_key_hash: hex::encode(keccak(&point_to_bytes(&share.public.public_key))),
                status: Some(AuditStatus::Success),
                detail: format!("epoch {}", share.public.epoch),
                ..AuditRecord::default()
            },
        )
    }

    /// Sets the first policy (refused once a policy exists: later edits go through
    /// [`Node::propose_policy`]).
    pub fn init_policy(&self, policy: &Policy) -> Result<()> {
        if self.store.get_meta("policy")?.is_some() {
            return Err(PolicyViolation::PolicyChange("a policy exists; propose a change".into()).into());
        }
        self.put_policy(policy)
    }

    fn put_policy(&self, policy: &Policy) -> Result<()> {
        let b = serde_json::to_vec(policy).map_err(|e| SignerError::Store(e.to_string()))?;
        self.store.put_meta("policy", &b)
    }

    /// The policy in force at `now` (a pending change whose time lock passed is applied).
    pub fn policy(&self, now: u64) -> Result<Policy> {
        if let Some(b) = self.store.get_meta("pending-policy")? {
            let pending: PendingPolicy = serde_json::from_slice(&b).map_err(|e| SignerError::Store(e.to_string()))?;
            if now >= pending.effective_at {
                self.put_policy(&pending.policy)?;
                self.store.put_meta("pending-policy", b"")?;
            }
        }
        let b = self.store.get_meta("policy")?.ok_or_else(|| SignerError::Invalid("no policy".into()))?;
        serde_json::from_slice(&b).map_err(|e| SignerError::Store(e.to_string()))
    }

    /// Queues a policy change approved by `change_threshold` approvers of the current policy;
    /// it takes effect `change_delay_s` after `now`.
    pub fn propose_policy(&self, next: &Policy, approvals: &[Approval], now: u64) -> Result<PendingPolicy> {
        let current = self.policy(now)?;
        let digest = current.change_digest(next);
        let counted = check_approvals(&current.approvers, current.change_threshold, &digest, approvals)
            .map_err(|e| PolicyViolation::PolicyChange(e.to_string()))?;
        let pending = PendingPolicy { policy: next.clone(), effective_at: now.saturating_add(current.change_delay_s) };
        let b = serde_json::to_vec(&pending).map_err(|e| SignerError::Store(e.to_string()))?;
        self.store.put_meta("pending-policy", &b)?;
        self.audit(
            now,
            AuditRecord {
                event: "policy".into(),
                intent_hash: hex::encode(digest),
                approvals: counted.iter().map(|a| format!("0x{}", hex::encode(a))).collect(),
                status: Some(AuditStatus::Success),
                detail: format!("effective at {}", pending.effective_at),
                ..AuditRecord::default()
            },
        )?;
        Ok(pending)
    }

    /// Keeps this node's parts of a presignature batch that every node is known to hold.
    pub fn store_presigs(&self, presigs: &[Presignature]) -> Result<()> {
        let records: Vec<_> = presigs.iter().map(|p| (p.id, p.expose_bytes())).collect();
        self.store.put_presigs(&records, None)
    }

    /// Keeps this node's parts of `batch`, unconfirmed: this node signs with them when a
    /// proposer names one, but proposes none until [`Node::confirm_presigs`] (when every node
    /// has stored the batch). A node that finished a batch the others did not store would
    /// otherwise propose presignatures they lack.
    pub fn store_presigs_unconfirmed(&self, presigs: &[Presignature], batch: &SessionId) -> Result<()> {
        let records: Vec<_> = presigs.iter().map(|p| (p.id, p.expose_bytes())).collect();
        self.store.put_presigs(&records, Some(&batch.0))
    }

    /// Confirms the presignatures of `batch` stored here; returns how many were unconfirmed.
    pub fn confirm_presigs(&self, batch: &SessionId) -> Result<u64> {
        self.store.confirm_batch(&batch.0)
    }

    /// Unused presignatures held here.
    pub fn presig_ids(&self) -> Result<Vec<[u8; 32]>> {
        self.store.presig_ids()
    }

    /// The unused, confirmed presignatures held here that are bound to `signers` (the ones a
    /// proposer may choose).
    pub fn presigs_for(&self, signers: &[PartyId]) -> Result<Vec<[u8; 32]>> {
        let unconfirmed = self.store.unconfirmed_ids()?;
        let mut out = Vec::new();
        for id in self.store.presig_ids()? {
            if unconfirmed.contains(&id) {
                continue;
            }
            if let Some(b) = self.store.get_presig(&id)? {
                if Presignature::from_bytes(&b)?.signers == signers {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// The presignatures a proposer may still choose for `signers` at `now`: unused, confirmed,
    /// and not reserved for another unexpired request (what the pool level counts).
    pub fn available_presigs(&self, signers: &[PartyId], now: u64) -> Result<Vec<[u8; 32]>> {
        let reserved = self.store.reserved_presigs(now)?;
        Ok(self.presigs_for(signers)?.into_iter().filter(|p| !reserved.contains(p)).collect())
    }

    /// The presignature the proposer puts forward for `intent` with `signers`: the one the
    /// request is already bound to here (a retry proposes the same), else the smallest unused
    /// one for the set that no other unexpired request has reserved, reserved durably for this
    /// request until its intent expires (a refusal by this node's policy gate drops it).
    /// `None` when the pool holds none.
    pub fn choose_presig(&self, intent: &Intent, signers: &[PartyId], now: u64) -> Result<Option<[u8; 32]>> {
        let digest = intent.digest();
        if let Some((presig, bound_digest)) = self.store.binding(&intent.request_id)? {
            if bound_digest != digest {
                return Err(PolicyViolation::RequestReused { request_id: intent.request_id }.into());
            }
            // Still unused here, or burned here for this very request (not for another one that
            // named it explicitly).
            let unused = self.store.get_presig(&presig)?.is_some();
            if unused || self.store.retained_for(&intent.request_id, &presig, &digest)?.is_some() {
                return Ok(Some(presig));
            }
            if self.store.request_used(&intent.request_id)? {
                // Signed here already (or its presignature went with an old epoch).
                return Err(PolicyViolation::RequestReused { request_id: intent.request_id }.into());
            }
        }
        let Some(presig) = self.available_presigs(signers, now)?.into_iter().min() else {
            return Ok(None);
        };
        self.store.reserve(&intent.request_id, &presig, &digest, intent.expiry)?;
        Ok(Some(presig))
    }

    /// A presignature is used only by its own signer set, under the current key and epoch.
    fn check_fits(
        &self,
        presig: &Presignature,
        signers: &[PartyId],
        share: &KeyShare,
        presig_hex: String,
    ) -> Result<()> {
        if presig.signers != signers {
            return Err(SignerError::PresignatureMismatch {
                presig: presig_hex,
                node: self.me,
                reason: format!("bound to signer set {:?}, requested with {:?}", presig.signers, signers),
            });
        }
        if presig.epoch != share.public.epoch || presig.key_id != share.public.key_id {
            return Err(SignerError::StaleEpoch { got: presig.epoch, current: share.public.epoch });
        }
        Ok(())
    }

    /// Every check of this node, then the durable burn. Returns the presignature (now burned
    /// here) and the approvers counted; only after this may a share leave the node.
    pub fn authorize(&self, req: &SignRequest, now: u64) -> Result<(Presignature, Vec<[u8; 20]>)> {
        let authorized = self.authorize_inner(req, now);
        if let Err(SignerError::Policy(_)) = &authorized {
            // A refused request keeps no presignature reserved for it.
            self.store.drop_reservation(&req.intent.request_id)?;
        }
        authorized
    }

    fn authorize_inner(&self, req: &SignRequest, now: u64) -> Result<(Presignature, Vec<[u8; 20]>)> {
        let share = self.key_share()?;
        let signers = req.signer_ids()?;
        if !signers.contains(&self.me) {
            return Err(SignerError::Invalid(format!("{} is not in the signer set", self.me)));
        }
        let policy = self.policy(now)?;
        let counted = policy.check(&share.public.key_id, &req.intent, &req.approvals, now)?;
        let presig_hex = hex::encode(req.presig_id);
        let digest = req.intent.digest();
        if let Some(retained) = self.store.retained_for(&req.intent.request_id, &req.presig_id, &digest)? {
            // A retry of a signing that burned here and failed after: the same share again.
            let presig = Presignature::from_bytes(&retained)?;
            self.check_fits(&presig, &signers, &share, presig_hex)?;
            return Ok((presig, counted));
        }
        if self.store.is_burned(&req.presig_id)? {
            return Err(SignerError::PresignatureBurned { presig: presig_hex, refused_by: self.me });
        }
        let bytes = self.store.get_presig(&req.presig_id)?.ok_or_else(|| SignerError::PresignatureMismatch {
            presig: presig_hex.clone(),
            node: self.me,
            reason: "no such presignature here (not made for a set with this node)".into(),
        })?;
        self.check_fits(&Presignature::from_bytes(&bytes)?, &signers, &share, presig_hex)?;
        let spend =
            Spend { request_id: req.intent.request_id, value: req.intent.value, limit: policy.daily_limit, now };
        let burned = self.store.burn(self.me, &req.presig_id, &digest, &spend)?;
        Ok((Presignature::from_bytes(&burned)?, counted))
    }
}
