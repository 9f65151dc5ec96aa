//! Tacit's on-chain side: a Groth16 verifier for BN254 and a result registry, as Solidity
//! compiled ahead of time (the artifacts under `contracts/artifacts/`, rebuilt and compared by
//! a test), deployed and called on an embedded EVM ([revm]) without any compiler at run time.
//!
//! `Groth16Verifier` is one generic contract: the verifying key is passed to its constructor
//! and kept in immutables, for at most [`MAX_PUBLIC_INPUTS`] public inputs. It answers the
//! snarkjs ABI `verifyProof(uint256[2] a, uint256[2][2] b, uint256[2] c, uint256[N] input)`
//! with `N` fixed at deploy, G2 points in EIP-197 order (`[x.c1, x.c0], [y.c1, y.c0]`).
//! On every invalid proof (wrong length, a public input `>= r`, a coordinate `>= q`, a point
//! off the curve or out of the subgroup, a failed pairing) it returns ABI `false`; it reverts
//! only on calldata not starting with that selector. Each precompile call gets a fixed gas
//! stipend, so an invalid proof costs bounded gas.
//!
//! Gas (solc 0.8.37, revm 43, Osaka): execution gas of one verification is exactly
//! `181_622 + 6_491 n` (n = 1, 2, 4: 188,113, 194,604, 207,586), against the EIP-1108 floor
//! `181_000 + 6_150 n`. Per input, 200 of the 341 gas above the floor are the warm-access cost
//! (EIP-2929) of the ecMul and ecAdd calls, which the floor leaves out; invalid proofs cost
//! no more than valid ones.
//!
//! `Groth16CommittedVerifier` ([`committed`]) does the same for Groth16 with committed groups
//! ([`tacit_prover::committed`]): the key's `[σ_g]₂` beside it, the group commitments and
//! their knowledge proofs in the call, the challenge derived on chain.
//!
//! `ResultRegistry.publish(resultId, publicInputs, proof)` verifies with such a verifier,
//! stores `keccak256(publicInputs)` under the id, emits `ResultPublished`, and refuses a
//! second publish of the same id.

pub mod bench;
pub mod committed;
pub mod poseidon;
pub mod registry;

pub use committed::{
    committed_verifier_artifact, committed_verifier_constructor_args, committed_verifier_deploy_code,
    verify_committed_selector, CommittedEvmProof, MAX_COMMITTED_INPUTS, MAX_GROUPS,
};

use ark_bn254::{Bn254, Fq, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::VerifyingKey;
use revm::context::TxEnv;
use revm::context_interface::result::ExecutionResult;
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::{keccak256, Address, Bytes, TxKind, U256};
use revm::{Context, ExecuteCommitEvm, MainBuilder, MainContext};
use serde::Deserialize;
use tacit_prover::snarkjs::EvmProof;

/// A 32-byte big-endian EVM word.
pub type Word = [u8; 32];

alloy_sol_types::sol! {
    /// The ABI of the contracts in `sol/` that Rust calls (the verifier's `verifyProof` takes
    /// `uint256[N]` with `N` fixed per key, so its calldata is built by [`verify_proof_calldata`]).
    #[allow(missing_docs)]
    interface Abi {
        function verifierConstructor(
            uint256[2] alpha,
            uint256[2][2] beta,
            uint256[2][2] gamma,
            uint256[2][2] delta,
            uint256[2][] ic
        );
        function registryConstructor(address verifier);
        function publish(bytes32 resultId, uint256[] publicInputs, uint256[8] proof) external;
        function isPublished(bytes32 resultId) external view returns (bool);
    }
}

/// The most public inputs a verifying key may have for the generic verifier.
pub const MAX_PUBLIC_INPUTS: usize = 32;

/// Gas limit of the transactions this crate sends (the Osaka cap, EIP-7825).
pub const TX_GAS_LIMIT: u64 = 16_777_216;

/// Execution gas of one pairing check with four pairs plus, per public input, one ecMul and
/// one ecAdd: the EIP-1108 floor `181_000 + 6_150 n` of a Groth16 verification.
pub const fn eip1108_floor(n: u64) -> u64 {
    181_000 + 6_150 * n
}

const VERIFIER_JSON: &str = include_str!("../artifacts/Groth16Verifier.json");
const REGISTRY_JSON: &str = include_str!("../artifacts/ResultRegistry.json");
const POSEIDON_JSON: &str = include_str!("../artifacts/PoseidonT3.json");

/// Failures of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A committed artifact does not parse.
    #[error("artifact {name}: {reason}")]
    Artifact {
        /// The contract.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The verifying key cannot be used by the generic verifier.
    #[error("verifying key: {0}")]
    Key(String),
    /// Words do not decode to a valid proof or public input ([`CommittedEvmProof::to_ark`]).
    #[error("proof: {0}")]
    Proof(String),
    /// The EVM rejected the transaction (not a revert: an invalid transaction or a database error).
    #[error("evm: {0}")]
    Evm(String),
    /// Making a proof (for [`mod@bench`]) failed.
    #[error("prover: {0}")]
    Prover(String),
    /// A deployment did not create a contract.
    #[error("deploying {name} failed: {outcome}")]
    Deploy {
        /// The contract.
        name: &'static str,
        /// What happened instead.
        outcome: String,
    },
}

/// Result of this crate.
pub type Result<T, E = ContractError> = std::result::Result<T, E>;

/// A compiled contract from `contracts/artifacts/`.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The contract's name.
    pub contract_name: String,
    /// Its ABI (JSON).
    pub abi: serde_json::Value,
    /// Creation code (constructor arguments are appended to it).
    pub bytecode: Vec<u8>,
    /// Runtime code.
    pub deployed_bytecode: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactJson {
    contract_name: String,
    abi: serde_json::Value,
    bytecode: String,
    deployed_bytecode: String,
}

fn parse_artifact(name: &'static str, json: &str) -> Result<Artifact> {
    let bad = |reason: String| ContractError::Artifact { name, reason };
    let a: ArtifactJson = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let hex_code = |s: &str| -> Result<Vec<u8>> {
        let s = s.strip_prefix("0x").ok_or_else(|| bad("bytecode without 0x".into()))?;
        hex::decode(s).map_err(|e| bad(e.to_string()))
    };
    Ok(Artifact {
        bytecode: hex_code(&a.bytecode)?,
        deployed_bytecode: hex_code(&a.deployed_bytecode)?,
        contract_name: a.contract_name,
        abi: a.abi,
    })
}

/// The committed `Groth16Verifier` artifact.
pub fn verifier_artifact() -> Result<Artifact> {
    parse_artifact("Groth16Verifier", VERIFIER_JSON)
}

/// The committed `ResultRegistry` artifact.
pub fn registry_artifact() -> Result<Artifact> {
    parse_artifact("ResultRegistry", REGISTRY_JSON)
}

/// The committed `PoseidonT3` artifact (circomlib's 2-input Poseidon, see [`poseidon`]).
pub fn poseidon_artifact() -> Result<Artifact> {
    parse_artifact("PoseidonT3", POSEIDON_JSON)
}

/// Parses an application's committed artifact (JSON as `contracts/compile.cjs` writes it).
pub fn app_artifact(name: &'static str, json: &str) -> Result<Artifact> {
    parse_artifact(name, json)
}

fn fq_word(x: &Fq) -> Word {
    let mut w = [0u8; 32];
    let be = x.into_bigint().to_bytes_be();
    // An Fq is 254 bits: `be` is 32 bytes; right-align defensively.
    let start = 32usize.saturating_sub(be.len());
    if let Some(dst) = w.get_mut(start..) {
        for (d, s) in dst.iter_mut().zip(be.iter().skip(be.len().saturating_sub(32))) {
            *d = *s;
        }
    }
    w
}

fn g1_words(p: &G1Affine, what: &str) -> Result<[Word; 2]> {
    let (x, y) = p.xy().ok_or_else(|| ContractError::Key(format!("{what} is the point at infinity")))?;
    Ok([fq_word(&x), fq_word(&y)])
}

/// EIP-197 order: `[[x.c1, x.c0], [y.c1, y.c0]]`.
fn g2_words(p: &G2Affine, what: &str) -> Result<[Word; 4]> {
    let (x, y) = p.xy().ok_or_else(|| ContractError::Key(format!("{what} is the point at infinity")))?;
    Ok([fq_word(&x.c1), fq_word(&x.c0), fq_word(&y.c1), fq_word(&y.c0)])
}

/// The ABI-encoded constructor arguments of `Groth16Verifier` for `vk`:
/// `(uint256[2] alpha, uint256[2][2] beta, uint256[2][2] gamma, uint256[2][2] delta, uint256[2][] ic)`.
pub fn verifier_constructor_args(vk: &VerifyingKey<Bn254>) -> Result<Vec<u8>> {
    tacit_prover::keys::check_verifying_key(vk).map_err(|e| ContractError::Key(e.to_string()))?;
    let n_ic = vk.gamma_abc_g1.len();
    if n_ic == 0 || n_ic > MAX_PUBLIC_INPUTS + 1 {
        return Err(ContractError::Key(format!(
            "{} public inputs; the verifier takes 0 to {MAX_PUBLIC_INPUTS}",
            n_ic.saturating_sub(1)
        )));
    }
    let g1 = |p: &G1Affine, what: &str| -> Result<[U256; 2]> { Ok(g1_words(p, what)?.map(|w| U256::from_be_bytes(w))) };
    let g2 = |p: &G2Affine, what: &str| -> Result<[[U256; 2]; 2]> {
        let [x1, x0, y1, y0] = g2_words(p, what)?.map(|w| U256::from_be_bytes(w));
        Ok([[x1, x0], [y1, y0]])
    };
    let ic = vk.gamma_abc_g1.iter().enumerate().map(|(i, p)| g1(p, &format!("IC[{i}]"))).collect::<Result<Vec<_>>>()?;
    let args = Abi::verifierConstructorCall {
        alpha: g1(&vk.alpha_g1, "alpha")?,
        beta: g2(&vk.beta_g2, "beta")?,
        gamma: g2(&vk.gamma_g2, "gamma")?,
        delta: g2(&vk.delta_g2, "delta")?,
        ic,
    };
    // Constructor arguments are the call's ABI encoding without a selector.
    Ok(alloy_sol_types::SolCall::abi_encode(&args).get(4..).unwrap_or_default().to_vec())
}

fn u64_word(v: u64) -> Word {
    let mut w = [0u8; 32];
    if let Some(tail) = w.get_mut(24..) {
        tail.copy_from_slice(&v.to_be_bytes());
    }
    w
}

/// Creation code (bytecode and constructor arguments) of a verifier for `vk`.
pub fn verifier_deploy_code(vk: &VerifyingKey<Bn254>) -> Result<Vec<u8>> {
    let mut code = verifier_artifact()?.bytecode;
    code.extend(verifier_constructor_args(vk)?);
    Ok(code)
}

/// Creation code of a `ResultRegistry` using the verifier at `verifier`.
pub fn registry_deploy_code(verifier: Address) -> Result<Vec<u8>> {
    let mut code = registry_artifact()?.bytecode;
    let args = alloy_sol_types::SolCall::abi_encode(&Abi::registryConstructorCall { verifier });
    code.extend(args.get(4..).unwrap_or_default());
    Ok(code)
}

/// The 4-byte selector of `verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[n])`.
pub fn verify_proof_selector(n: usize) -> [u8; 4] {
    selector(&format!("verifyProof(uint256[2],uint256[2][2],uint256[2],uint256[{n}])"))
}

fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    let mut s = [0u8; 4];
    s.copy_from_slice(h.get(..4).unwrap_or(&[0; 4]));
    s
}

/// Full calldata of `verifyProof` for `proof` (selector for its number of public inputs).
pub fn verify_proof_calldata(proof: &EvmProof) -> Vec<u8> {
    let mut data = verify_proof_selector(proof.public_inputs.len()).to_vec();
    data.extend(proof.abi_encode_args());
    data
}

/// Full calldata of `ResultRegistry.publish(bytes32 resultId, uint256[] publicInputs, uint256[8] proof)`.
pub fn publish_calldata(result_id: &Word, proof: &EvmProof) -> Vec<u8> {
    let call = Abi::publishCall {
        resultId: (*result_id).into(),
        publicInputs: proof.public_inputs.iter().map(|w| U256::from_be_bytes(*w)).collect(),
        proof: proof.proof.map(U256::from_be_bytes),
    };
    alloy_sol_types::SolCall::abi_encode(&call)
}

/// Calldata of `ResultRegistry.isPublished(bytes32)`.
pub fn is_published_calldata(result_id: &Word) -> Vec<u8> {
    alloy_sol_types::SolCall::abi_encode(&Abi::isPublishedCall { resultId: (*result_id).into() })
}

/// The EIP-2028 intrinsic gas of a call with `data`: 21,000 plus 4 per zero byte and 16 per
/// other byte (the EIP-7623 floor does not bind for a verification).
pub fn intrinsic_gas(data: &[u8]) -> u64 {
    data.iter().fold(21_000u64, |g, b| g.saturating_add(if *b == 0 { 4 } else { 16 }))
}

/// What a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returned normally with this data.
    Success(Vec<u8>),
    /// Reverted with this data.
    Revert(Vec<u8>),
    /// Halted (out of gas, invalid opcode, ...); all gas consumed.
    Halt(String),
}

/// The result of one transaction.
#[derive(Clone, Debug)]
pub struct CallResult {
    /// What it did.
    pub outcome: Outcome,
    /// Gas of the transaction minus its intrinsic gas ([`intrinsic_gas`]).
    pub execution_gas: u64,
    /// Gas of the transaction as a receipt reports it.
    pub tx_gas: u64,
    /// Logs emitted (empty unless it succeeded).
    pub logs: Vec<revm::primitives::Log>,
}

impl CallResult {
    /// Whether the call returned exactly the ABI encoding of `true`.
    pub fn returned_true(&self) -> bool {
        matches!(&self.outcome, Outcome::Success(d) if d.as_slice() == u64_word(1).as_slice())
    }

    /// Whether the call returned exactly the ABI encoding of `false`.
    pub fn returned_false(&self) -> bool {
        matches!(&self.outcome, Outcome::Success(d) if d.as_slice() == [0u8; 32].as_slice())
    }
}

/// An in-memory chain on revm (its default spec, base fee 0); transactions are free (gas price 0).
pub struct LocalChain {
    evm: MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>,
    caller: Address,
    nonce: u64,
    /// Where every transaction and clock change is appended, for [`LocalChain::open_journal`].
    journal: Option<std::fs::File>,
    /// How much of a journal has been applied ([`LocalChain::follow_journal`]).
    followed: Followed,
}

/// Bytes and lines of a journal applied so far.
#[derive(Clone, Copy, Debug, Default)]
struct Followed {
    bytes: u64,
    lines: usize,
}

/// One line of a chain journal.
#[derive(serde::Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
enum JournalEntry {
    Tx { from: String, to: Option<String>, data: String },
    Time { seconds: u64 },
}

impl std::fmt::Debug for LocalChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChain").field("caller", &self.caller).field("nonce", &self.nonce).finish_non_exhaustive()
    }
}

impl Default for LocalChain {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalChain {
    /// An empty chain.
    pub fn new() -> Self {
        let evm = Context::mainnet()
            .with_db(CacheDB::<EmptyDB>::default())
            .modify_cfg_chained(|c| {
                c.disable_nonce_check = true;
            })
            .build_mainnet();
        Self { evm, caller: Address::repeat_byte(0x7a), nonce: 0, journal: None, followed: Followed::default() }
    }

    /// A chain kept in a journal file: every transaction and clock change is appended to
    /// `path`, and opening an existing journal replays it (execution is deterministic), so
    /// separate commands can work on one chain. The chain holds an exclusive lock on the file
    /// for its life, and opening waits while another writer holds it: writers take turns,
    /// each replaying what the previous ones appended (two writers appending at once would
    /// each have computed on a state without the other's transactions). Open one writer per
    /// journal at a time in a process; followers ([`LocalChain::follow_journal`]) take no lock.
    pub fn open_journal(path: &std::path::Path) -> Result<Self> {
        let io = |e: std::io::Error| ContractError::Evm(format!("journal {}: {e}", path.display()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        file.lock().map_err(io)?;
        let mut chain = Self::new();
        chain.follow_journal(path)?;
        chain.journal = Some(file);
        Ok(chain)
    }

    /// Applies what was appended to the journal at `path` since this chain last read it: a
    /// read-only view of a chain another process writes (a node following the chain), which
    /// writes nothing itself. A missing file is an empty journal; a last line without its
    /// newline is left for the next call (the writer may be appending it).
    pub fn follow_journal(&mut self, path: &std::path::Path) -> Result<()> {
        use std::io::{Read, Seek};
        let io = |e: std::io::Error| ContractError::Evm(format!("journal {}: {e}", path.display()));
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        if len < self.followed.bytes {
            // Another chain now stands at this path: this view's state is not its prefix.
            return Err(ContractError::Evm(format!(
                "journal {}: shorter than what this view has applied ({len} < {} bytes)",
                path.display(),
                self.followed.bytes
            )));
        }
        file.seek(std::io::SeekFrom::Start(self.followed.bytes)).map_err(io)?;
        let mut appended = Vec::new();
        file.read_to_end(&mut appended).map_err(io)?;
        let Some(end) = appended.iter().rposition(|b| *b == b'\n') else { return Ok(()) };
        let complete = &appended[..=end];
        for line in complete.split(|b| *b == b'\n') {
            self.followed.lines += 1;
            let line = String::from_utf8_lossy(line);
            if !line.trim().is_empty() {
                self.apply(&line).map_err(|m| {
                    ContractError::Evm(format!("journal {} line {}: {m}", path.display(), self.followed.lines))
                })?;
            }
        }
        // `split` yields an empty piece after the final newline: it is not a line.
        self.followed.lines -= 1;
        self.followed.bytes += complete.len() as u64;
        Ok(())
    }

    fn apply(&mut self, line: &str) -> std::result::Result<(), String> {
        let entry: JournalEntry = serde_json::from_str(line).map_err(|e| e.to_string())?;
        match entry {
            JournalEntry::Time { seconds } => self.set_timestamp(seconds).map_err(|e| e.to_string()),
            JournalEntry::Tx { from, to, data } => {
                let from: Address = from.parse().map_err(|_| "bad address".to_string())?;
                let data = hex::decode(data.trim_start_matches("0x")).map_err(|e| e.to_string())?;
                let kind = match to {
                    Some(to) => TxKind::Call(to.parse().map_err(|_| "bad address".to_string())?),
                    None => TxKind::Create,
                };
                let own = std::mem::replace(&mut self.caller, from);
                let r = self.transact(kind, data);
                self.caller = own;
                r.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }

    /// The hash of the code deployed at `address` (`None` where no account exists).
    pub fn code_hash(&self, address: Address) -> Option<revm::primitives::B256> {
        self.evm.ctx.journaled_state.database.cache.accounts.get(&address).map(|a| a.info.code_hash)
    }

    fn record(&mut self, entry: &JournalEntry) -> Result<()> {
        use std::io::Write;
        if let Some(file) = &mut self.journal {
            let line = serde_json::to_string(entry).map_err(|e| ContractError::Evm(e.to_string()))?;
            writeln!(file, "{line}")
                .and_then(|_| file.sync_data())
                .map_err(|e| ContractError::Evm(format!("journal: {e}")))?;
        }
        Ok(())
    }

    fn tx_env(&self, kind: TxKind, data: Vec<u8>) -> Result<TxEnv> {
        TxEnv::builder()
            .caller(self.caller)
            .kind(kind)
            .data(Bytes::from(data))
            .gas_limit(TX_GAS_LIMIT)
            .gas_price(0)
            .nonce(self.nonce)
            .build()
            .map_err(|e| ContractError::Evm(format!("{e:?}")))
    }

    fn transact(&mut self, kind: TxKind, data: Vec<u8>) -> Result<(ExecutionResult, u64)> {
        if self.journal.is_some() {
            let to = match kind {
                TxKind::Call(to) => Some(to.to_string()),
                TxKind::Create => None,
            };
            self.record(&JournalEntry::Tx { from: self.caller.to_string(), to, data: hex::encode(&data) })?;
        }
        let intrinsic = intrinsic_gas(&data);
        let tx = self.tx_env(kind, data)?;
        let result = self.evm.transact_commit(tx).map_err(|e| ContractError::Evm(e.to_string()))?;
        self.nonce = self.nonce.saturating_add(1);
        Ok((result, intrinsic))
    }

    /// The account transactions are sent from (by [`LocalChain::call`] and deployments).
    pub fn caller(&self) -> Address {
        self.caller
    }

    /// Sets the block timestamp of the following transactions.
    pub fn set_timestamp(&mut self, seconds: u64) -> Result<()> {
        self.evm.ctx.block.timestamp = revm::primitives::U256::from(seconds);
        self.record(&JournalEntry::Time { seconds })
    }

    /// The block timestamp of the following transactions.
    pub fn timestamp(&self) -> u64 {
        self.evm.ctx.block.timestamp.saturating_to()
    }

    /// Sends a transaction from `from` (any account: balances and signatures are not
    /// checked on this chain) to `to` with `data`, and commits it.
    pub fn call_from(&mut self, from: Address, to: Address, data: Vec<u8>) -> Result<CallResult> {
        let own = std::mem::replace(&mut self.caller, from);
        let result = self.call(to, data);
        self.caller = own;
        result
    }

    /// Runs a read-only call (nothing is committed) and returns its output.
    pub fn view(&mut self, to: Address, data: Vec<u8>) -> Result<Vec<u8>> {
        use revm::ExecuteEvm;
        let tx = self.tx_env(TxKind::Call(to), data)?;
        let result = self.evm.transact(tx).map_err(|e| ContractError::Evm(e.to_string()))?;
        match result.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data().to_vec()),
            other => Err(ContractError::Evm(format!("view call failed: {other:?}"))),
        }
    }

    /// Deploys `PoseidonT3`.
    pub fn deploy_poseidon(&mut self) -> Result<Address> {
        self.deploy("PoseidonT3", poseidon_artifact()?.bytecode)
    }

    /// Sends a transaction to `to` with `data` and commits it.
    pub fn call(&mut self, to: Address, data: Vec<u8>) -> Result<CallResult> {
        let (result, intrinsic) = self.transact(TxKind::Call(to), data)?;
        let tx_gas = result.tx_gas_used();
        let execution_gas = result.gas().total_gas_spent().saturating_sub(intrinsic);
        let (outcome, logs) = match result {
            ExecutionResult::Success { output, logs, .. } => (Outcome::Success(output.into_data().to_vec()), logs),
            ExecutionResult::Revert { output, .. } => (Outcome::Revert(output.to_vec()), Vec::new()),
            ExecutionResult::Halt { reason, .. } => (Outcome::Halt(format!("{reason:?}")), Vec::new()),
        };
        Ok(CallResult { outcome, execution_gas, tx_gas, logs })
    }

    /// Deploys `code` (creation code with constructor arguments); returns the new address.
    pub fn deploy(&mut self, name: &'static str, code: Vec<u8>) -> Result<Address> {
        let (result, _) = self.transact(TxKind::Create, code)?;
        match result.created_address() {
            Some(a) => Ok(a),
            None => Err(ContractError::Deploy { name, outcome: format!("{result:?}") }),
        }
    }

    /// Deploys a `Groth16Verifier` for `vk`.
    pub fn deploy_verifier(&mut self, vk: &VerifyingKey<Bn254>) -> Result<Address> {
        self.deploy("Groth16Verifier", verifier_deploy_code(vk)?)
    }

    /// Deploys a `ResultRegistry` over the verifier at `verifier`.
    pub fn deploy_registry(&mut self, verifier: Address) -> Result<Address> {
        self.deploy("ResultRegistry", registry_deploy_code(verifier)?)
    }

    /// Calls `verifyProof` on the verifier at `verifier`.
    pub fn verify(&mut self, verifier: Address, proof: &EvmProof) -> Result<CallResult> {
        self.call(verifier, verify_proof_calldata(proof))
    }
}

/// The generic verifier's Solidity source (generated by `contracts/compile.cjs`).
pub const VERIFIER_SOLIDITY: &str = include_str!("../sol/Groth16Verifier.sol");

fn dec(w: &Word) -> String {
    // Words here are canonical field elements (< q < 2^254): print via the field.
    Fq::from_be_bytes_mod_order(w).into_bigint().to_string()
}

/// A standalone Solidity file for `vk`: the generic `Groth16Verifier` and a contract
/// `contract_name` deriving from it whose constructor takes no arguments (the key is
/// constant in the source). Compiled with the same solc settings it has the same runtime
/// code, hence the same gas, as [`LocalChain::deploy_verifier`]'s deployment; for
/// `tacit verifier export`.
pub fn export_verifier_solidity(vk: &VerifyingKey<Bn254>, contract_name: &str) -> Result<String> {
    let valid_name = contract_name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && contract_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name || contract_name == "Groth16Verifier" {
        return Err(ContractError::Key(format!("{contract_name:?} is not a usable Solidity contract name")));
    }
    tacit_prover::keys::check_verifying_key(vk).map_err(|e| ContractError::Key(e.to_string()))?;
    let n_ic = vk.gamma_abc_g1.len();
    if n_ic == 0 || n_ic > MAX_PUBLIC_INPUTS + 1 {
        return Err(ContractError::Key(format!(
            "{} public inputs; at most {MAX_PUBLIC_INPUTS}",
            n_ic.saturating_sub(1)
        )));
    }
    let g1 = |p: &G1Affine, what: &str| -> Result<String> {
        let [x, y] = g1_words(p, what)?;
        Ok(format!("[uint256({}), {}]", dec(&x), dec(&y)))
    };
    let g2 = |p: &G2Affine, what: &str| -> Result<String> {
        let [x1, x0, y1, y0] = g2_words(p, what)?;
        Ok(format!("[[uint256({}), {}], [uint256({}), {}]]", dec(&x1), dec(&x0), dec(&y1), dec(&y0)))
    };
    let mut ic = String::new();
    for (i, p) in vk.gamma_abc_g1.iter().enumerate() {
        ic.push_str(&format!("    ic[{i}] = {};\n", g1(p, &format!("IC[{i}]"))?));
    }
    // The generic source minus its SPDX and "generated" header lines.
    let body: String = VERIFIER_SOLIDITY
        .lines()
        .filter(|l| !l.starts_with("// SPDX-License-Identifier") && !l.starts_with("// GENERATED"))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(format!(
        "// SPDX-License-Identifier: Apache-2.0\n\
         // Exported by Tacit (tacit-contracts) for one verifying key with {n} public input(s).\n\
         {body}\n\
         function tacitVerifyingKeyIc() pure returns (uint256[2][] memory ic) {{\n    \
         ic = new uint256[2][]({n_ic});\n{ic}}}\n\n\
         /// Groth16Verifier with its verifying key fixed: deploy with no constructor arguments.\n\
         contract {contract_name} is Groth16Verifier {{\n    \
         constructor()\n        Groth16Verifier(\n            {alpha},\n            {beta},\n            \
         {gamma},\n            {delta},\n            tacitVerifyingKeyIc()\n        )\n    {{}}\n}}\n",
        n = n_ic.saturating_sub(1),
        alpha = g1(&vk.alpha_g1, "alpha")?,
        beta = g2(&vk.beta_g2, "beta")?,
        gamma = g2(&vk.gamma_g2, "gamma")?,
        delta = g2(&vk.delta_g2, "delta")?,
    ))
}

type ChainJob = Box<dyn FnOnce(&mut LocalChain) + Send>;

/// A [`LocalChain`] on its own thread, usable from any thread or task: revm's state is not
/// `Send`, so callers send it closures. Cloning the handle shares the chain.
#[derive(Clone, Debug)]
pub struct SharedChain {
    jobs: std::sync::mpsc::Sender<ChainJob>,
}

impl SharedChain {
    /// Starts a thread owning the chain `make` builds.
    pub fn spawn(make: impl FnOnce() -> LocalChain + Send + 'static) -> Result<Self> {
        let (jobs, inbox) = std::sync::mpsc::channel::<ChainJob>();
        std::thread::Builder::new()
            .name("tacit-evm".into())
            .spawn(move || {
                let mut chain = make();
                while let Ok(job) = inbox.recv() {
                    job(&mut chain);
                }
            })
            .map_err(|e| ContractError::Evm(format!("cannot start the chain thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `f` on the chain and returns its result (blocking until it has run).
    pub fn with<R: Send + 'static>(&self, f: impl FnOnce(&mut LocalChain) -> R + Send + 'static) -> Result<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |chain| {
                let _ = tx.send(f(chain));
            }))
            .map_err(|_| ContractError::Evm("the chain thread is gone".into()))?;
        rx.recv().map_err(|_| ContractError::Evm("the chain thread is gone".into()))
    }
}
