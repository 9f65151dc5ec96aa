//! The policy gate every signer node enforces itself: k-of-m approvals over the intent's
//! EIP-712 digest, expiry, chain and destination allowlists (the request id and the rolling
//! spend are checked atomically with the burn, in the store). Policy edits need m-of-k
//! approvals and take effect after the configured delay.

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::curve::{address_of_key, keccak, keccak_parts};
use crate::error::PolicyViolation;
use crate::eth::{hex_array, Intent, IntentKind};

/// A signing policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Approver addresses.
    #[serde(with = "addr_list")]
    pub approvers: Vec<[u8; 20]>,
    /// Approvals a signing request needs.
    pub threshold: usize,
    /// Allowed chain ids.
    pub chains: Vec<u64>,
    /// Allowed destinations (and verifying contracts of typed data).
    #[serde(with = "addr_list")]
    pub destinations: Vec<[u8; 20]>,
    /// Rolling 24-hour spending limit (wei).
    pub daily_limit: u128,
    /// Approvals a policy change needs.
    pub change_threshold: usize,
    /// Seconds between an approved change and its effect.
    pub change_delay_s: u64,
}

/// An approval: an approver's ECDSA signature over a digest, 65 bytes r || s || v.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver this claims to be.
    #[serde(with = "hex_array")]
    pub approver: [u8; 20],
    /// r || s || (27 + recovery id).
    #[serde(with = "hex_array")]
    pub signature: [u8; 65],
}

/// Signs `digest` as an approver.
pub fn approve(key: &SigningKey, digest: &[u8; 32]) -> Option<Approval> {
    let (sig, rid) = key.sign_prehash_recoverable(digest).ok()?;
    let mut signature = [0u8; 65];
    signature.get_mut(..64)?.copy_from_slice(&sig.to_bytes());
    signature[64] = 27 + rid.to_byte();
    Some(Approval { approver: address_of_key(key.verifying_key()), signature })
}

/// The address an approval's signature recovers to, if it is a valid low-s signature.
pub fn recover_approver(digest: &[u8; 32], approval: &Approval) -> Option<[u8; 20]> {
    let sig = Signature::from_slice(approval.signature.get(..64)?).ok()?;
    if sig.normalize_s().is_some() {
        return None;
    }
    let rid = RecoveryId::from_byte(approval.signature[64].checked_sub(27)?)?;
    let key = VerifyingKey::recover_from_prehash(digest, &sig, rid).ok()?;
    Some(address_of_key(&key))
}

/// Checks that at least `threshold` distinct approvers of `approvers` signed `digest`.
/// Returns the approvers counted.
pub fn check_approvals(
    approvers: &[[u8; 20]],
    threshold: usize,
    digest: &[u8; 32],
    approvals: &[Approval],
) -> Result<Vec<[u8; 20]>, PolicyViolation> {
    let mut counted: Vec<[u8; 20]> = Vec::new();
    for a in approvals {
        match recover_approver(digest, a) {
            Some(addr) if addr == a.approver => {}
            _ => return Err(PolicyViolation::ForgedApproval { approver: a.approver }),
        }
        if !approvers.contains(&a.approver) {
            return Err(PolicyViolation::UnknownApprover { approver: a.approver });
        }
        if counted.contains(&a.approver) {
            return Err(PolicyViolation::DuplicateApproval { approver: a.approver });
        }
        counted.push(a.approver);
    }
    if counted.len() < threshold || threshold == 0 {
        return Err(PolicyViolation::NotEnoughApprovals { got: counted.len(), need: threshold.max(1) });
    }
    Ok(counted)
}

impl Policy {
    /// The stateless checks of a request: well-formed intent for this key, approvals, expiry,
    /// chain and destination allowlists.
    pub fn check(
        &self,
        key_id: &[u8; 16],
        intent: &Intent,
        approvals: &[Approval],
        now: u64,
    ) -> Result<Vec<[u8; 20]>, PolicyViolation> {
        if &intent.key_id != key_id {
            return Err(PolicyViolation::Malformed("the intent is for another key".into()));
        }
        match intent.kind {
            IntentKind::Transaction if keccak(&intent.data) != intent.data_hash => {
                return Err(PolicyViolation::Malformed("data hash does not match the data".into()))
            }
            IntentKind::TypedData if intent.value != 0 || !intent.data.is_empty() => {
                return Err(PolicyViolation::Malformed("typed data carries no value or call data".into()))
            }
            _ => {}
        }
        let counted = check_approvals(&self.approvers, self.threshold, &intent.digest(), approvals)?;
        if now >= intent.expiry {
            return Err(PolicyViolation::Expired { expiry: intent.expiry, now });
        }
        if !self.chains.contains(&intent.chain_id) {
            return Err(PolicyViolation::ChainNotAllowed { chain_id: intent.chain_id });
        }
        if !self.destinations.contains(&intent.to) {
            return Err(PolicyViolation::DestinationNotAllowed { to: intent.to });
        }
        if intent.value > self.daily_limit {
            return Err(PolicyViolation::SpendLimit { spent: 0, value: intent.value, limit: self.daily_limit });
        }
        Ok(counted)
    }

    /// The digest approvers sign to change this policy to `next` (binds the current policy,
    /// so an approval cannot be replayed against a later one).
    pub fn change_digest(&self, next: &Policy) -> [u8; 32] {
        let cur = serde_json::to_vec(self).unwrap_or_default();
        let new = serde_json::to_vec(next).unwrap_or_default();
        keccak_parts(&[b"tacit signer policy change v1", &keccak(&cur), &keccak(&new)])
    }
}

/// A policy change waiting for its time lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPolicy {
    /// The new policy.
    pub policy: Policy,
    /// When it takes effect (unix seconds).
    pub effective_at: u64,
}

mod addr_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[[u8; 20]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|a| format!("0x{}", hex::encode(a))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 20]>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter().map(|s| crate::curve::parse_hex::<20>(s).map_err(serde::de::Error::custom)).collect()
    }
}
