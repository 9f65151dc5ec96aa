//! Proven PSI results published from the daemons' flow: `tacit psi query --chain` opens the
//! query in a `CommittedResultRegistry`, each institution posts its commitment with
//! `tacit psi post`, and `tacit psi publish` puts the result and its proof on chain.
//!
//! The chain is a journal file (`tacit_contracts::LocalChain::open_journal`) that separate
//! commands share; run them one after another. An institution's account on it is the first 20
//! bytes of its certificate fingerprint (the embedded chain checks no signatures; on a real
//! chain each institution would post from its own key).

use std::path::Path;

use anyhow::Context;
use revm::primitives::Address;
use tacit_contracts::committed::CommittedEvmProof;
use tacit_contracts::{registry, LocalChain, Outcome, Word};
use tacit_psi::tacit_mpc_engine::transport::quic::Fingerprint;
use tacit_psi::{Mode, PsiOutput};

use crate::psi::QueryFile;

/// The institution's account on the embedded chain.
fn account(fingerprint: &Fingerprint) -> Address {
    Address::from_slice(fingerprint.as_bytes().get(..20).unwrap_or(&[0; 20]))
}

/// The registry's name for a query: `keccak256("tacit psi query " ‖ job id)`.
fn query_word(job_id: &str) -> Word {
    revm::primitives::keccak256(format!("tacit psi query {job_id}")).0
}

/// Deploys the verifier of the keys in `keys` and a registry over it on `chain`, opens the
/// query there with the institutions' accounts, and returns the registry's address.
pub fn open_query(chain: &Path, keys: &Path, file: &QueryFile) -> anyhow::Result<String> {
    let tacit_node::api::JobSpec::PsiQuery { institutions, proof_keys: Some(id), .. } = &file.spec else {
        anyhow::bail!("only proven PSI queries are published");
    };
    let (_, vk) = tacit_psi::proven::read_verifier(keys, id)?;
    let mut chain = LocalChain::open_journal(chain)?;
    let verifier = chain.deploy_committed_verifier(&vk)?;
    let registry = chain.deploy_committed_registry(verifier, institutions.len())?;
    let accounts: Vec<Address> = institutions.iter().map(account).collect();
    let opened = chain.open_query(registry, &query_word(&file.job_id), &accounts)?;
    succeeded("open", &opened)?;
    Ok(registry.to_string())
}

fn succeeded(what: &str, r: &tacit_contracts::CallResult) -> anyhow::Result<()> {
    match &r.outcome {
        Outcome::Success(_) => Ok(()),
        _ => anyhow::bail!("{what}: refused by the registry ({})", registry::registry_error(r).unwrap_or("reverted")),
    }
}

/// What `tacit psi join --json` printed.
#[derive(serde::Deserialize)]
struct Joined {
    query: String,
    institution: usize,
    output: serde_json::Value,
    proof: String,
}

fn read_joined(path: &Path) -> anyhow::Result<(Joined, tacit_prover::committed::CommittedProof)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let joined: Joined = serde_json::from_str(text.trim()).with_context(|| format!("parsing {}", path.display()))?;
    let bytes = hex::decode(&joined.proof).context("proof: not hex")?;
    let proof = tacit_prover::committed::proof_from_bytes(&bytes).context("proof")?;
    Ok((joined, proof))
}

fn registry_of(file: &QueryFile) -> anyhow::Result<Address> {
    let registry = file.registry.as_deref().context("the query names no registry (psi query --chain)")?;
    registry.parse().map_err(|_| anyhow::anyhow!("registry {registry}: not an address"))
}

/// `tacit psi post`: the institution's commitment (its group in the proof it checked when it
/// joined) from its account.
pub fn post(chain: &Path, query: &Path, client: &Path, joined: &Path) -> anyhow::Result<()> {
    let file = crate::psi::read_query(query)?;
    let registry = registry_of(&file)?;
    let client = tacit_node::client::Client::load(client).map_err(|e| anyhow::anyhow!("{e}"))?;
    let index = file.spec.institution_index(&client.fingerprint()).context("this client is not listed in the query")?;
    let (joined, proof) = read_joined(joined)?;
    anyhow::ensure!(
        joined.query == file.job_id && joined.institution == index,
        "the joined output is not this institution's for this query"
    );
    let evm = CommittedEvmProof::new(&proof, &[]);
    let commitment = evm.commitments.get(index).context("the proof has no group for this institution")?;
    let mut chain = LocalChain::open_journal(chain)?;
    let posted = chain.post_commitment(
        registry,
        account(&client.fingerprint()),
        &query_word(&file.job_id),
        index,
        commitment,
    )?;
    succeeded("post", &posted)?;
    println!("{}", serde_json::json!({ "posted": true, "institution": index, "gas": posted.execution_gas }));
    Ok(())
}

/// `tacit psi publish`: the result and proof of a joined output, to the query's registry.
pub fn publish(chain: &Path, query: &Path, joined: &Path) -> anyhow::Result<()> {
    let file = crate::psi::read_query(query)?;
    let registry = registry_of(&file)?;
    let tacit_node::api::JobSpec::PsiQuery { mode, .. } = &file.spec else { anyhow::bail!("not a PSI query") };
    let (joined, proof) = read_joined(joined)?;
    anyhow::ensure!(joined.query == file.job_id, "the joined output is for another query");
    let output = output_from_json(&joined.output, *mode)?;
    let (statement, min_size) =
        tacit_psi::proven::statement_output(&output, *mode).context("proven queries are cardinality or sum")?;
    let evm = CommittedEvmProof::new(&proof, &tacit_psi::proven::public_inputs(&statement, min_size));
    let mut chain = LocalChain::open_journal(chain)?;
    let word = query_word(&file.job_id);
    let published = chain.publish_committed(registry, &word, &evm)?;
    succeeded("publish", &published)?;
    anyhow::ensure!(
        chain.committed_result(registry, &word)? == Some(registry::result_hash(&evm)),
        "the registry holds another result"
    );
    println!(
        "{}",
        serde_json::json!({ "published": true, "registry": registry.to_string(), "gas": published.execution_gas })
    );
    Ok(())
}

/// The inverse of the CLI's output JSON for the proven modes.
fn output_from_json(v: &serde_json::Value, mode: Mode) -> anyhow::Result<PsiOutput> {
    Ok(match mode {
        Mode::Cardinality => PsiOutput::Cardinality(v["intersection_size"].as_u64().context("no intersection_size")?),
        Mode::Sum { .. } => match v.get("sum") {
            Some(serde_json::Value::String(s)) => PsiOutput::Sum(Some(s.parse().context("sum")?)),
            Some(serde_json::Value::Null) => PsiOutput::Sum(None),
            _ => anyhow::bail!("no sum"),
        },
        _ => anyhow::bail!("only cardinality and sum results are proven"),
    })
}
