//! PSI queries on the node (`psi.query`): the institutions' channels (see [`crate::lobby`])
//! become `tacit_psi` links and the node runs its side of the query over the mesh. Only
//! public facts go in the job's result: not the intersection size (in `sum` mode the
//! institutions do not learn it) nor the multiplicity histogram.

use std::sync::Arc;
use std::time::Duration;

use tacit_mpc_engine::transport::quic::QuicTransport;
use tacit_mpc_engine::{Security, SessionId};
use tacit_psi::link::Link;

use crate::api::{field_elements, JobSpec};
use crate::daemon::Shared;
use crate::error::{NodeError, Result};

/// Runs a queued query at this node.
pub async fn run(
    shared: &Shared,
    id: &[u8; 16],
    spec: &JobSpec,
    transport: Arc<QuicTransport>,
    session: SessionId,
) -> Result<serde_json::Value> {
    let JobSpec::PsiQuery { mode, institutions, commitments, proof_keys } = spec else {
        return Err(NodeError::Other("not a PSI query".into()));
    };
    let links: Vec<Link> = crate::lobby::take(shared, id)?
        .into_iter()
        .enumerate()
        .map(|(c, channel)| Link::over(&format!("institution {c}"), channel, None))
        .collect();
    let commitments = commitments.as_deref().map(field_elements).transpose()?;
    let proof = match proof_keys {
        Some(id) => Some(keys(shared, id).await?.as_ref().clone()),
        None => None,
    };
    let config = tacit_psi::NodeConfig {
        t: shared.cfg.t(),
        security: Security::Malicious,
        session,
        mode: *mode,
        commitments,
        proof,
        cheat: None,
    };
    // Nodes wait on institutions (and each other) longer than the mesh's receive timeout.
    let patient = Arc::new(crate::jobs::Patient::new(transport, Duration::from_secs(600)));
    tacit_psi::run_node(patient, config, links).await.map_err(psi_err)?;
    // A proven query's result goes to the institutions with its proof; the job names the keys.
    Ok(serde_json::json!({ "mode": mode.name(), "institutions": institutions.len(), "proof_keys": proof_keys }))
}

/// Folder of a node's PSI proof keys (`<data_dir>/psi-keys/<id>/`).
pub const KEYS_FOLDER: &str = "psi-keys";

static KEYS: crate::proving::KeyCache<tacit_psi::proven::ProofKeys> = crate::proving::KeyCache::new();
/// One load at a time: a query waits for the keys the node is already loading.
static LOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Loads every key folder under `<data_dir>/psi-keys/` (at start, so that the first query
/// naming them does not wait tens of seconds for their checks).
pub async fn preload(shared: Arc<Shared>) {
    let Ok(folders) = std::fs::read_dir(shared.cfg.data_dir().join(KEYS_FOLDER)) else { return };
    for folder in folders.flatten() {
        let name = folder.file_name().to_string_lossy().to_string();
        if !crate::proving::is_key_hash(&name) {
            continue;
        }
        let started = std::time::Instant::now();
        match keys(&shared, &name).await {
            Ok(k) => tracing::info!(target: "tacit::node", keys = %name, shape = ?k.shape,
                seconds = started.elapsed().as_secs_f64(), "psi keys loaded"),
            Err(e) => tracing::warn!(target: "tacit::node", keys = %name, error = %e, "psi keys refused"),
        }
    }
}

/// The proof keys named `id`, from `<data_dir>/psi-keys/<id>/`: read once per process with
/// every check (the proving key's points validated, the files fitting together and the
/// verifying key's hash being `id`). After the first load the proving key is read from the
/// node's checked copy ([`crate::proving::CheckedKey`]): the other checks still run.
async fn keys(shared: &Shared, id: &str) -> Result<Arc<tacit_psi::proven::ProofKeys>> {
    if !crate::proving::is_key_hash(id) {
        return Err(NodeError::BadRequest("proof keys are named by their hex BLAKE3 hash".into()));
    }
    let id = id.to_ascii_lowercase();
    // Cached keys do not wait for another folder's load.
    if let Some(keys) = KEYS.get(&id) {
        return Ok(keys);
    }
    let _loading = LOADING.lock().await;
    if let Some(keys) = KEYS.get(&id) {
        return Ok(keys);
    }
    let dir = shared.cfg.data_dir().join(KEYS_FOLDER).join(&id);
    let named = id.clone();
    // The id fixes the whole key (the other files are checked against its verifying key).
    let mut checked = crate::proving::CheckedKey::lookup(&shared.store, &shared.cfg.data_dir(), &format!("psi-{id}"))?;
    let (keys, checked) = tokio::task::spawn_blocking(move || {
        let keys = tacit_psi::proven::ProofKeys::read_named_with(&dir, &named, |path| {
            checked.load(|| tacit_prover::keys::read_proving_key(path).map_err(|e| e.to_string()))
        });
        (keys, checked)
    })
    .await
    .map_err(|e| NodeError::Other(e.to_string()))?;
    let keys = keys.map_err(|e| NodeError::Config(format!("psi keys {id}: {e}")))?;
    checked.record(&shared.store)?;
    let keys = Arc::new(keys);
    KEYS.insert(&id, keys.clone());
    Ok(keys)
}

fn psi_err(e: tacit_psi::PsiError) -> NodeError {
    match e {
        tacit_psi::PsiError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) => NodeError::Transport(t),
        other => NodeError::Other(format!("psi: {other}")),
    }
}
