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
    let JobSpec::PsiQuery { mode, institutions, commitments } = spec else {
        return Err(NodeError::Other("not a PSI query".into()));
    };
    let links: Vec<Link> = crate::lobby::take(shared, id)?
        .into_iter()
        .enumerate()
        .map(|(c, channel)| Link::over(&format!("institution {c}"), channel, None))
        .collect();
    let commitments = commitments.as_deref().map(field_elements).transpose()?;
    let config = tacit_psi::NodeConfig {
        t: shared.cfg.t(),
        security: Security::Malicious,
        session,
        mode: *mode,
        commitments,
        proof: None,
        cheat: None,
    };
    // Nodes wait on institutions (and each other) longer than the mesh's receive timeout.
    let patient = Arc::new(crate::jobs::Patient::new(transport, Duration::from_secs(600)));
    tacit_psi::run_node(patient, config, links).await.map_err(psi_err)?;
    Ok(serde_json::json!({ "mode": mode.name(), "institutions": institutions.len() }))
}

fn psi_err(e: tacit_psi::PsiError) -> NodeError {
    match e {
        tacit_psi::PsiError::Mpc(tacit_mpc_engine::MpcError::Transport(t)) => NodeError::Transport(t),
        other => NodeError::Other(format!("psi: {other}")),
    }
}
