//! Online signing by the t+1 nodes of a presignature's signer set, over the transport.
//!
//! Round 1: each node runs its policy gate and burns the presignature durably, then tells the
//! others it is ready (or why it refuses). Round 2, only once every member is ready: each
//! sends s_i = m·(k⁻¹)_i + r·(k⁻¹x)_i. A node restored from an old snapshot cannot get a
//! presignature used twice: the other members hold the burn record and refuse in round 1, so
//! no share for a second message is released by them, nor by the restored node. The combined
//! signature is checked against the public key with R itself (s·R = m·G + r·X) and normalised
//! to low s; when that fails, each share is checked on its own (s_j·R = m·(k⁻¹)_j·R +
//! r·(k⁻¹x)_j·R), so a bad one names its sender.
//!
//! A signing that fails after the burns (a member died mid-round) can be retried with the same
//! request: each member that burned the presignature kept it bound to the request's intent
//! digest and sends the same share again (the share of one message, twice, reveals nothing
//! new); a member that had not burned it yet burns it now. It is dropped once the member holds
//! the signature.

use ark_ff::Zero;
use bytes::Bytes;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{MpcError, PartyId, SessionId, Transport, TransportError};

use crate::audit::{AuditRecord, AuditStatus};
use crate::curve::{
    finish_signature, keccak, point_to_bytes, scalar_from_be_canonical, scalar_from_be_reduced, scalar_to_be,
    EcdsaSignature, Point, Scalar,
};
use crate::error::{Result, SignerError};
use crate::eth::IntentKind;
use crate::node::{Node, SignRequest};

/// Faults a test signer injects into its own share.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct SignFaults {
    /// Add one to the share.
    pub wrong_share: bool,
    /// Send the negated share (an attempt to flip s to its high twin).
    pub negated_share: bool,
    /// Send a share that is not a canonical scalar.
    pub malformed_share: bool,
    /// Bind the messages to another session (a replayed message).
    pub replay_from: Option<SessionId>,
}

/// What a signing produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOutput {
    /// The signature (low s, recovery id set).
    pub signature: EcdsaSignature,
    /// The 32-byte hash signed.
    pub prehash: [u8; 32],
    /// The signed EIP-1559 raw transaction (transaction intents).
    pub raw_tx: Option<Vec<u8>>,
    /// Its hash.
    pub tx_hash: Option<[u8; 32]>,
}

/// The session a request is signed under in one attempt (every member derives the same).
/// Each attempt needs its own `attempt` session: a retry of a request uses the same
/// presignature, and a late message of an earlier attempt must not be read in the retry.
pub fn sign_session(req: &SignRequest, attempt: &SessionId) -> SessionId {
    let mut h = blake3::Hasher::new_derive_key("tacit signer sign session v2");
    h.update(&attempt.0);
    h.update(&req.presig_id);
    h.update(&req.intent.digest());
    for s in &req.signers {
        h.update(&s.to_be_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    SessionId(out)
}

fn tag(session: &SessionId, phase: u8, from: PartyId, req: &SignRequest) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tacit signer sign message v1");
    h.update(&session.0);
    h.update(&[phase]);
    h.update(&from.get().to_be_bytes());
    h.update(&req.presig_id);
    h.update(&req.intent.digest());
    *h.finalize().as_bytes()
}

const READY: u8 = 0;
const REFUSE: u8 = 1;
const SHARE: u8 = 2;
const REFUSE_BURNED: u8 = 1;
const REFUSE_OTHER: u8 = 2;

fn transport_err(e: TransportError) -> SignerError {
    SignerError::Mpc(MpcError::Transport(e))
}

/// Signs `req` as this node (a member of its signer set); every member runs it at once, under
/// the same fresh `attempt` session (e.g. the job's, per attempt).
pub async fn sign<T: Transport>(
    node: &Node,
    transport: &T,
    req: &SignRequest,
    now: u64,
    attempt: SessionId,
) -> Result<SignOutput> {
    sign_with_faults(node, transport, req, now, attempt, &SignFaults::default()).await
}

/// [`sign`] with injected faults (tests).
#[doc(hidden)]
pub async fn sign_with_faults<T: Transport>(
    node: &Node,
    transport: &T,
    req: &SignRequest,
    now: u64,
    attempt: SessionId,
    faults: &SignFaults,
) -> Result<SignOutput> {
    let session = sign_session(req, &attempt);
    let mut counted = Vec::new();
    let mut result = run(node, transport, req, now, faults, session, &mut counted).await;
    transport.close_session(session);
    if result.is_ok() {
        // The signature is held: the presignature kept for a retry goes.
        if let Err(e) = node.store().release(&req.presig_id) {
            result = Err(e);
        }
    }
    let status = match &result {
        Ok(_) => AuditStatus::Success,
        Err(SignerError::Policy(_)) => AuditStatus::PolicyReject,
        Err(SignerError::Mpc(MpcError::Transport(TransportError::Timeout { .. }))) => AuditStatus::Timeout,
        Err(SignerError::Cheater { .. } | SignerError::OneOf { .. }) => AuditStatus::CheatDetected,
        Err(_) => AuditStatus::SignerOffline,
    };
    let public_key_hash =
        node.key_public().map(|p| hex::encode(keccak(&point_to_bytes(&p.public_key)))).unwrap_or_default();
    node.audit(
        now,
        AuditRecord {
            event: "sign".into(),
            session: hex::encode(session.0),
            key_id: hex::encode(req.intent.key_id),
            public_key_hash,
            chain_id: req.intent.chain_id,
            to: format!("0x{}", hex::encode(req.intent.to)),
            intent_hash: hex::encode(req.intent.digest()),
            approvals: counted.iter().map(|a| format!("0x{}", hex::encode(a))).collect(),
            signers: req.signers.clone(),
            status: Some(status),
            signature_hash: result
                .as_ref()
                .map(|o| hex::encode(keccak(&o.signature.to_rsv_bytes())))
                .unwrap_or_default(),
            detail: result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
        },
    )?;
    result
}

async fn run<T: Transport>(
    node: &Node,
    transport: &T,
    req: &SignRequest,
    now: u64,
    faults: &SignFaults,
    session: SessionId,
    counted: &mut Vec<[u8; 20]>,
) -> Result<SignOutput> {
    let me = node.id();
    let signers = req.signer_ids()?;
    let others: Vec<PartyId> = signers.iter().copied().filter(|p| *p != me).collect();
    let tag_session = faults.replay_from.unwrap_or(session);

    // Round 1: gate and burn, then ready or refuse.
    let authorized = node.authorize(req, now);
    let msg = match &authorized {
        Ok(_) => {
            let mut m = vec![READY];
            m.extend_from_slice(&tag(&tag_session, READY, me, req));
            m
        }
        Err(e) => {
            let code = if matches!(e, SignerError::PresignatureBurned { .. }) { REFUSE_BURNED } else { REFUSE_OTHER };
            let mut m = vec![REFUSE, code];
            let text = e.to_string();
            m.extend_from_slice(text.as_bytes().get(..text.len().min(400)).unwrap_or_default());
            m
        }
    };
    for p in &others {
        transport.send(session, *p, Bytes::from(msg.clone())).await.map_err(transport_err)?;
    }
    let (presig, approvers) = authorized?;
    *counted = approvers;
    for p in &others {
        let m = transport.recv(session, *p).await.map_err(transport_err)?;
        match m.first() {
            Some(&READY) if m.get(1..) == Some(tag(&session, READY, *p, req).as_slice()) => {}
            Some(&READY) => {
                return Err(SignerError::Cheater {
                    party: *p,
                    reason: "sent a message bound to another session (replay)".into(),
                })
            }
            Some(&REFUSE) => {
                let reason = String::from_utf8_lossy(m.get(2..).unwrap_or_default()).into_owned();
                return Err(if m.get(1) == Some(&REFUSE_BURNED) {
                    SignerError::PresignatureBurned { presig: hex::encode(req.presig_id), refused_by: *p }
                } else {
                    SignerError::Refused { node: *p, reason }
                });
            }
            _ => return Err(SignerError::Cheater { party: *p, reason: "sent a malformed round-1 message".into() }),
        }
    }

    // Round 2: shares.
    let prehash = req.intent.message_hash();
    let m = scalar_from_be_reduced(&prehash);
    let big_r = presig.big_r;
    let r = presig.r;
    let checks: Vec<(PartyId, (Point, Point))> =
        presig.signers.iter().copied().zip(presig.checks.iter().copied()).collect();
    let mut s_me = presig.into_signature_share(m);
    if faults.wrong_share {
        s_me += Scalar::from(1u64);
    }
    if faults.negated_share {
        s_me = -s_me;
    }
    let mut out = vec![SHARE];
    out.extend_from_slice(&tag(&tag_session, SHARE, me, req));
    if faults.malformed_share {
        out.extend_from_slice(&[0xff; 32]);
    } else {
        out.extend_from_slice(&scalar_to_be(&s_me));
    }
    for p in &others {
        transport.send(session, *p, Bytes::from(out.clone())).await.map_err(transport_err)?;
    }
    let mut shares: Vec<(PartyId, Scalar)> = vec![(me, s_me)];
    for p in &others {
        let msg = transport.recv(session, *p).await.map_err(transport_err)?;
        if msg.first() != Some(&SHARE) || msg.len() != 65 {
            return Err(SignerError::Cheater { party: *p, reason: "sent a malformed signature share".into() });
        }
        if msg.get(1..33) != Some(tag(&session, SHARE, *p, req).as_slice()) {
            return Err(SignerError::Cheater {
                party: *p,
                reason: "sent a share bound to another session (replay)".into(),
            });
        }
        let Some(s) = msg.get(33..65).and_then(scalar_from_be_canonical) else {
            return Err(SignerError::Cheater {
                party: *p,
                reason: "sent a malformed signature share (not a scalar)".into(),
            });
        };
        shares.push((*p, s));
    }
    shares.sort_by_key(|(p, _)| *p);
    let xs: Vec<Scalar> = shares.iter().map(|(p, _)| Scalar::from(u64::from(p.get()))).collect();
    let lambdas = lagrange_coefficients(&xs, Scalar::zero());
    let s: Scalar = shares.iter().zip(&lambdas).map(|((_, s), l)| *s * l).sum();
    let public = node.key_public()?;
    // The combination is checked first (s·R = m·G + r·X): when it holds, the signature is the
    // one the presignature fixes, whatever any single share was. Only when it fails is every
    // share checked on its own (s_j·R = m·(k⁻¹)_j·R + r·(k⁻¹x)_j·R), to name its sender.
    let signature = match finish_signature(&big_r, s, &prehash, &public.public_key) {
        Ok(sig) => sig,
        Err(e) => {
            for (p, s) in shares.iter().filter(|(p, _)| *p != me) {
                let Some((_, (wp, vp))) = checks.iter().find(|(q, _)| q == p) else {
                    return Err(SignerError::Invalid(format!("{p} has no check points")));
                };
                if big_r * s != *wp * m + *vp * r {
                    return Err(SignerError::Cheater {
                        party: *p,
                        reason: "sent a signature share that fails its check".into(),
                    });
                }
            }
            return Err(e);
        }
    };
    let (raw_tx, tx_hash) = match req.intent.kind {
        IntentKind::Transaction => {
            let raw = req.intent.transaction().encode_signed(&signature);
            let h = keccak(&raw);
            (Some(raw), Some(h))
        }
        IntentKind::TypedData => (None, None),
    };
    Ok(SignOutput { signature, prehash, raw_tx, tx_hash })
}
