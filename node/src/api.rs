//! The job API's wire types: JSON over one QUIC stream per request (mutual TLS), at most
//! `max_request` bytes, decoded with `deny_unknown_fields` and checked by
//! [`JobSpec::validate`] before anything is queued.

use serde::{Deserialize, Serialize};
use tacit_signer::eth::Intent;
use tacit_signer::policy::{Approval, Policy};

use crate::error::{NodeError, Result};
use crate::store::JobState;

/// Most presignatures one job may ask for.
pub const MAX_PRESIGN: usize = 1024;
/// Most approvals one signing request may carry.
pub const MAX_APPROVALS: usize = 64;
/// Most institutions in one PSI query.
pub const MAX_INSTITUTIONS: usize = 64;
/// Most keys in a risk template run by the nodes.
pub const MAX_RISK_KEYS: usize = 1 << 16;

/// The job types a client can be authorised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobType {
    /// Fresh threshold ECDSA key.
    SignerDkg,
    /// New shares of the same key.
    SignerRefresh,
    /// Reshare to a replaced party (same key, same address).
    SignerReshare,
    /// Make presignatures.
    SignerPresign,
    /// Sign an intent (behind every node's policy gate).
    SignerSign,
    /// Set the first signing policy (local to each node).
    SignerPolicy,
    /// Public key, address, pool levels (local).
    SignerInfo,
    /// A job's state (local).
    JobStatus,
    /// Benchmark: a sealed-bid auction (validity, outcome, collaborative proof) over bids
    /// every node derives from a public seed. NOT private (the seed reveals the bids): for
    /// figures over the real mesh only.
    AuctionBench,
    /// Host a sealed-bid auction deployed on the chain the node follows (local to each node):
    /// accept its bidders' share packets.
    AuctionHost,
    /// Run a hosted auction after its deadline: validity and outcome in the MPC, the
    /// collaborative proof.
    AuctionRun,
    /// Internal: makes MPC preprocessing batches for the pool (proposed by party 1 only).
    PrepRefill,
    /// A private set intersection query whose institutions join over channels
    /// ([`ClientRequest::Join`]).
    PsiQuery,
    /// An aggregate risk query (approved template) whose institutions join over channels
    /// with their shared inputs.
    RiskQuery,
}

impl JobType {
    /// Every type.
    pub const ALL: [JobType; 14] = [
        JobType::SignerDkg,
        JobType::SignerRefresh,
        JobType::SignerReshare,
        JobType::SignerPresign,
        JobType::SignerSign,
        JobType::SignerPolicy,
        JobType::SignerInfo,
        JobType::JobStatus,
        JobType::AuctionBench,
        JobType::AuctionHost,
        JobType::AuctionRun,
        JobType::PrepRefill,
        JobType::PsiQuery,
        JobType::RiskQuery,
    ];

    /// The name used in policies, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            JobType::SignerDkg => "signer.dkg",
            JobType::SignerRefresh => "signer.refresh",
            JobType::SignerReshare => "signer.reshare",
            JobType::SignerPresign => "signer.presign",
            JobType::SignerSign => "signer.sign",
            JobType::SignerPolicy => "signer.policy",
            JobType::SignerInfo => "signer.info",
            JobType::JobStatus => "job.status",
            JobType::AuctionBench => "auction.bench",
            JobType::AuctionHost => "auction.host",
            JobType::AuctionRun => "auction.run",
            JobType::PrepRefill => "prep.refill",
            JobType::PsiQuery => "psi.query",
            JobType::RiskQuery => "risk.query",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether its institutions join it over channels ([`ClientRequest::Join`]) instead of
    /// a client submitting it.
    pub fn joined(self) -> bool {
        matches!(self, JobType::PsiQuery | JobType::RiskQuery)
    }

    /// Whether the nodes run it together over the mesh (otherwise each node answers alone).
    pub fn coordinated(self) -> bool {
        !matches!(self, JobType::SignerPolicy | JobType::SignerInfo | JobType::JobStatus | JobType::AuctionHost)
    }
}

/// 32 bytes as hex.
pub mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises.
    pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserialises.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s.trim_start_matches("0x"), &mut out).map_err(serde::de::Error::custom)?;
                Ok(Some(out))
            }
        }
    }
}

/// What a client asks the nodes to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum JobSpec {
    /// Fresh key (all n nodes).
    SignerDkg,
    /// New shares, same key (all n nodes).
    SignerRefresh,
    /// Reshare so that `replaced` (a new node with an empty store, same party id) gets a share.
    SignerReshare {
        /// The replaced party.
        replaced: u16,
    },
    /// Make `count` presignatures bound to `signers` (all n nodes take part).
    SignerPresign {
        /// How many.
        count: usize,
        /// The signer set (t+1 ascending ids).
        signers: Vec<u16>,
    },
    /// Sign an intent with a presignature of `signers` (from the pool unless given).
    SignerSign {
        /// The intent.
        intent: Intent,
        /// Approver signatures over its EIP-712 digest.
        approvals: Vec<Approval>,
        /// The signer set.
        signers: Vec<u16>,
        /// A specific presignature (default: one from the pool).
        #[serde(default, with = "hex32", skip_serializing_if = "Option::is_none")]
        presig_id: Option<[u8; 32]>,
    },
    /// The first signing policy (each node keeps it; later changes go through approvals).
    SignerPolicy {
        /// The policy.
        policy: Policy,
    },
    /// Public key, address and pool levels.
    SignerInfo,
    /// Benchmark auction (Vickrey) of `bidders` bids derived from `seed` (public: no privacy).
    AuctionBench {
        /// Bidders (1..=1000).
        bidders: usize,
        /// Seed of the setup and the bids.
        seed: u64,
        /// The Poseidon S-box in one round instead of three (fewer rounds for more
        /// computation: for nodes far apart).
        #[serde(default)]
        one_round_sbox: bool,
    },
    /// Host the auction contract at `auction` (on the chain the node follows), proved with
    /// the proving key `<data_dir>/auction-keys/<proving_key>.pk`; each node checks the
    /// contract against the key and this cluster before it accepts bids.
    AuctionHost {
        /// The auction contract's address.
        auction: String,
        /// The proving key's hex BLAKE3 hash.
        proving_key: String,
    },
    /// Run the hosted auction at `auction` (after its deadline); the result holds the outcome
    /// and the settlement proof.
    AuctionRun {
        /// The auction contract's address.
        auction: String,
        /// The Poseidon S-box in one round instead of three (for nodes far apart).
        #[serde(default)]
        one_round_sbox: bool,
    },
    /// Internal: `batches` preprocessing batches of the given composition, numbered from
    /// `first_seq` (the proposer's counter, which orders the pool).
    PrepRefill {
        /// Number of the first batch.
        first_seq: u64,
        /// How many batches.
        batches: usize,
        /// Double sharings per batch.
        doubles: usize,
        /// Random sharings per batch.
        randoms: usize,
        /// Random bits per batch.
        bits: usize,
    },
    /// A PSI query among `institutions` (clients, by certificate fingerprint, in the order
    /// that gives their indices). Each joins with [`ClientRequest::Join`] carrying this
    /// same spec; the query runs once all have joined at every node.
    PsiQuery {
        /// What the query reveals (see tacit_psi's README).
        mode: tacit_psi::Mode,
        /// The institutions' certificate fingerprints.
        institutions: Vec<tacit_mpc_engine::transport::quic::Fingerprint>,
        /// For a committed query (`cardinality`, `sum`): each institution's published
        /// commitment (hex field element), in the same order.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commitments: Option<Vec<String>>,
        /// For a proven query (`cardinality`, `sum`): the id of its keys (`tacit psi setup`;
        /// the hex BLAKE3 hash of their verifying key), which every node holds as
        /// `<data_dir>/psi-keys/<id>/` and every institution as a folder it joins with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof_keys: Option<String>,
    },
    /// A risk query: a template every institution approved, run over the inputs the
    /// institutions (clients with these fingerprints, in the template's institution order)
    /// deal to the nodes when they join. The released figures are the job's result.
    RiskQuery {
        /// The approved template.
        template: Box<tacit_risk::SignedTemplate>,
        /// The institutions' certificate fingerprints, in the template's order.
        institutions: Vec<tacit_mpc_engine::transport::quic::Fingerprint>,
        /// The institutions' published input commitments (hex), in the template's order:
        /// with `proving_key`, the release is proved against them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commitments: Option<Vec<String>>,
        /// Prove the release with this proving key (hex BLAKE3 of its file), which every
        /// node holds as `<data_dir>/risk-keys/<hash>.pk`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proving_key: Option<String>,
    },
}

impl JobSpec {
    /// Its type.
    pub fn job_type(&self) -> JobType {
        match self {
            JobSpec::SignerDkg => JobType::SignerDkg,
            JobSpec::SignerRefresh => JobType::SignerRefresh,
            JobSpec::SignerReshare { .. } => JobType::SignerReshare,
            JobSpec::SignerPresign { .. } => JobType::SignerPresign,
            JobSpec::SignerSign { .. } => JobType::SignerSign,
            JobSpec::SignerPolicy { .. } => JobType::SignerPolicy,
            JobSpec::SignerInfo => JobType::SignerInfo,
            JobSpec::AuctionBench { .. } => JobType::AuctionBench,
            JobSpec::AuctionHost { .. } => JobType::AuctionHost,
            JobSpec::AuctionRun { .. } => JobType::AuctionRun,
            JobSpec::PrepRefill { .. } => JobType::PrepRefill,
            JobSpec::PsiQuery { .. } => JobType::PsiQuery,
            JobSpec::RiskQuery { .. } => JobType::RiskQuery,
        }
    }

    /// Checks bounds against a cluster of `n` parties with threshold `t`.
    pub fn validate(&self, n: usize, t: usize) -> Result<()> {
        let bad = |m: String| Err(NodeError::BadRequest(m));
        let check_set = |signers: &[u16]| -> Result<()> {
            let ids: Vec<_> = signers.iter().filter_map(|s| tacit_mpc_engine::PartyId::new(*s)).collect();
            if ids.len() != signers.len() {
                return Err(NodeError::BadRequest(format!("signer set {signers:?} has an invalid id")));
            }
            tacit_signer::presign::validate_signers(&ids, n, t)
                .map_err(|e| NodeError::BadRequest(format!("signer set {signers:?}: {e}")))
        };
        match self {
            JobSpec::SignerReshare { replaced } => {
                if *replaced == 0 || usize::from(*replaced) > n {
                    return bad(format!("no party {replaced}"));
                }
            }
            JobSpec::SignerPresign { count, signers } => {
                if *count == 0 || *count > MAX_PRESIGN {
                    return bad(format!("count must be in 1..={MAX_PRESIGN}"));
                }
                check_set(signers)?;
            }
            JobSpec::SignerSign { approvals, signers, .. } => {
                if approvals.len() > MAX_APPROVALS {
                    return bad(format!("at most {MAX_APPROVALS} approvals"));
                }
                check_set(signers)?;
            }
            JobSpec::SignerPolicy { policy } => {
                if policy.approvers.len() > 256 || policy.chains.len() > 256 || policy.destinations.len() > 4096 {
                    return bad("policy lists are too long".into());
                }
            }
            JobSpec::AuctionBench { bidders, .. } => {
                if *bidders == 0 || *bidders > 1000 {
                    return bad("bidders must be in 1..=1000".into());
                }
            }
            JobSpec::AuctionHost { auction, proving_key } => {
                crate::auction::parse_address(auction)?;
                if !crate::proving::is_key_hash(proving_key) {
                    return bad("proving_key is a hex BLAKE3 hash".into());
                }
            }
            JobSpec::AuctionRun { auction, .. } => {
                crate::auction::parse_address(auction)?;
            }
            JobSpec::PrepRefill { .. } => return bad("prep.refill is started by the nodes only".into()),
            JobSpec::PsiQuery { mode, institutions, commitments, proof_keys } => {
                let m = institutions.len();
                if !(2..=MAX_INSTITUTIONS).contains(&m) {
                    return bad(format!("a query takes 2 to {MAX_INSTITUTIONS} institutions"));
                }
                let distinct: std::collections::HashSet<_> = institutions.iter().collect();
                if distinct.len() != m {
                    return bad("an institution is listed twice".into());
                }
                mode.min_sets(m).map_err(|e| NodeError::BadRequest(e.to_string()))?;
                if let Some(c) = commitments {
                    if mode.is_set() || c.len() != m {
                        return bad("a committed query is cardinality or sum, with one commitment each".into());
                    }
                    field_elements(c)?;
                }
                if let Some(id) = proof_keys {
                    if tacit_psi::proven::statement_mode(*mode).is_none() || commitments.is_some() {
                        return bad("a proven query is cardinality or sum, without published commitments".into());
                    }
                    if !crate::proving::is_key_hash(id) {
                        return bad("proof_keys is a hex BLAKE3 hash".into());
                    }
                }
            }
            JobSpec::RiskQuery { template, institutions, commitments, proving_key } => {
                if let Some(c) = commitments {
                    if c.len() != template.template.institutions.len() {
                        return bad("one commitment per institution".into());
                    }
                    field_elements(c)?;
                }
                if let Some(h) = proving_key {
                    if commitments.is_none() {
                        return bad("a proved risk query needs the institutions' commitments".into());
                    }
                    if !crate::proving::is_key_hash(h) {
                        return bad("proving_key is a hex BLAKE3 hash".into());
                    }
                }
                let listed = template.template.institutions.len();
                let distinct: std::collections::HashSet<_> = institutions.iter().collect();
                if institutions.len() != listed || distinct.len() != listed {
                    return bad(format!("give {listed} distinct institution fingerprints, in the template's order"));
                }
                if template.template.keys.len() > MAX_RISK_KEYS {
                    return bad(format!("at most {MAX_RISK_KEYS} keys"));
                }
                template.verify().map_err(|e| NodeError::BadRequest(e.to_string()))?;
            }
            JobSpec::SignerDkg | JobSpec::SignerRefresh | JobSpec::SignerInfo => {}
        }
        Ok(())
    }

    /// The institutions that join the job (none for a submitted job).
    pub fn institutions(&self) -> &[tacit_mpc_engine::transport::quic::Fingerprint] {
        match self {
            JobSpec::PsiQuery { institutions, .. } | JobSpec::RiskQuery { institutions, .. } => institutions,
            _ => &[],
        }
    }

    /// The index of the institution with certificate `client` in a joined job.
    pub fn institution_index(&self, client: &tacit_mpc_engine::transport::quic::Fingerprint) -> Option<usize> {
        self.institutions().iter().position(|f| f == client)
    }

    /// Digest every node compares before running a job together.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        *blake3::Hasher::new_derive_key("tacit node job spec v1").update(&bytes).finalize().as_bytes()
    }
}

/// Parses published commitments (BN254 field elements in hex, as `tacit psi commit` prints
/// them).
pub fn field_elements(hex_values: &[String]) -> Result<Vec<ark_bn254::Fr>> {
    hex_values
        .iter()
        .map(|h| {
            tacit_psi::committed::from_hex(h)
                .ok_or_else(|| NodeError::BadRequest(format!("commitment {h}: not a canonical field element in hex")))
        })
        .collect()
}

/// A client request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientRequest {
    /// Submit a job (the client sends the same job, same id, to every node); the answer comes
    /// when the job is finished (or failed) at this node. Submitting a failed job's id again
    /// retries it; a finished job's id returns its result.
    Submit {
        /// 16 bytes, hex; chosen by the client.
        job_id: String,
        /// The job.
        spec: Box<JobSpec>,
    },
    /// Join a job as one of its institutions (on a channel request only; `psi.query`,
    /// `risk.query`): the node answers with the job's view and keeps the stream open as the
    /// institution's channel for the job's rounds.
    Join {
        /// 16 bytes, hex; the same for every institution and node.
        job_id: String,
        /// The job.
        spec: Box<JobSpec>,
    },
    /// A job's state at this node.
    Status {
        /// Job id (hex).
        job_id: String,
    },
}

impl ClientRequest {
    /// Decodes a request.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| NodeError::BadRequest(format!("request: {e}")))
    }

    /// Encodes a request.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Parses a 16-byte job id from hex.
pub fn parse_job_id(s: &str) -> Result<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).map_err(|_| NodeError::BadRequest("job_id must be 32 hex digits".into()))?;
    Ok(out)
}

/// A fresh random job id.
pub fn new_job_id() -> String {
    use rand::RngCore;
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    hex::encode(id)
}

/// A job as a node reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobView {
    /// Job id (hex).
    pub job_id: String,
    /// Job type.
    pub kind: String,
    /// State at this node.
    pub state: JobState,
    /// Attempts.
    pub attempts: u32,
    /// Result (public values only).
    pub result: Option<serde_json::Value>,
    /// Failure reason (names the culprit where known).
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_unknown_and_bounds() {
        assert!(ClientRequest::decode(b"{\"submit\":{\"job_id\":\"00\",\"spec\":\"nope\"}}").is_err());
        assert!(ClientRequest::decode(b"{\"submit\":{\"job_id\":\"00\",\"spec\":\"signer_dkg\"}}").is_ok());
        assert!(ClientRequest::decode(b"\xff\xfe").is_err());
        let r = ClientRequest::decode(
            b"{\"submit\":{\"job_id\":\"00\",\"spec\":{\"signer_presign\":{\"count\":5000,\"signers\":[1,2]}}}}",
        )
        .unwrap();
        let ClientRequest::Submit { spec, .. } = r else { panic!() };
        assert!(spec.validate(3, 1).is_err());
        let ok = JobSpec::SignerPresign { count: 4, signers: vec![1, 2] };
        ok.validate(3, 1).unwrap();
        assert!(JobSpec::SignerPresign { count: 4, signers: vec![1, 9] }.validate(3, 1).is_err());
        assert!(parse_job_id("zz").is_err());
        for t in JobType::ALL {
            assert_eq!(JobType::parse(t.name()), Some(t));
        }
    }
}
