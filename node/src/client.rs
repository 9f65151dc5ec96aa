//! The SDK client: sends one job (same id) to every node over the job API (QUIC, mutual TLS
//! with the client's certificate; each node pinned by its fingerprint) and collects answers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tacit_mpc_engine::transport::intake::{open_channel, submit_as, IntakeChannel};
use tacit_mpc_engine::transport::quic::{Fingerprint, PartyIdentity};
use tacit_mpc_engine::PartyId;

use crate::api::{ClientRequest, JobSpec, JobView};
use crate::error::{NodeError, Result};

/// Largest answer accepted.
pub const MAX_RESPONSE: usize = 4 << 20;

/// One node as a client sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAddr {
    /// Party id.
    pub id: u16,
    /// Job API address.
    pub api: SocketAddr,
    /// The node's certificate fingerprint (pinned).
    pub fingerprint: Fingerprint,
    /// Where the node takes bidders' share packets (hosted auctions), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bids: Option<SocketAddr>,
}

/// `client.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The client's certificate (DER).
    pub cert: PathBuf,
    /// Its key (DER PKCS#8).
    pub key: PathBuf,
    /// The nodes.
    pub nodes: Vec<NodeAddr>,
}

/// A client.
#[derive(Debug)]
pub struct Client {
    identity: PartyIdentity,
    nodes: Vec<(PartyId, NodeAddr)>,
}

impl Client {
    /// A client from its identity and the nodes.
    pub fn new(identity: PartyIdentity, nodes: Vec<NodeAddr>) -> Result<Self> {
        let nodes = nodes
            .into_iter()
            .map(|n| PartyId::new(n.id).map(|p| (p, n.clone())).ok_or_else(|| NodeError::Config("bad node id".into())))
            .collect::<Result<_>>()?;
        Ok(Self { identity, nodes })
    }

    /// Loads `client.toml` (paths relative to its folder).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let file: ClientFile =
            toml::from_str(&text).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let read = |p: &Path| {
            let p = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
            std::fs::read(&p).map_err(|e| NodeError::Config(format!("{}: {e}", p.display())))
        };
        let identity = PartyIdentity::from_der(read(&file.cert)?, read(&file.key)?)?;
        Self::new(identity, file.nodes)
    }

    /// The client's certificate fingerprint (what node policies list).
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The nodes.
    pub fn nodes(&self) -> Vec<PartyId> {
        self.nodes.iter().map(|(p, _)| *p).collect()
    }

    async fn call(&self, node: PartyId, req: &ClientRequest, timeout: Duration) -> Result<JobView> {
        let (_, addr) =
            self.nodes.iter().find(|(p, _)| *p == node).ok_or_else(|| NodeError::Config(format!("no node {node}")))?;
        let bytes =
            submit_as(&self.identity, node, addr.api, addr.fingerprint, &req.encode(), MAX_RESPONSE, timeout).await?;
        serde_json::from_slice(&bytes).map_err(|e| NodeError::Malformed { peer: node, reason: e.to_string() })
    }

    /// Sends the job to every node at once; answers in node order.
    pub async fn submit(&self, job_id: &str, spec: &JobSpec, timeout: Duration) -> Vec<(PartyId, Result<JobView>)> {
        let req = ClientRequest::Submit { job_id: job_id.into(), spec: Box::new(spec.clone()) };
        let calls = self.nodes.iter().map(|(p, _)| {
            let req = req.clone();
            async move { (*p, self.call(*p, &req, timeout).await) }
        });
        join_all(calls).await
    }

    /// Sends the job to one node only.
    pub async fn submit_to(&self, node: PartyId, job_id: &str, spec: &JobSpec, timeout: Duration) -> Result<JobView> {
        self.call(node, &ClientRequest::Submit { job_id: job_id.into(), spec: Box::new(spec.clone()) }, timeout).await
    }

    /// A job's state at one node.
    pub async fn status(&self, node: PartyId, job_id: &str, timeout: Duration) -> Result<JobView> {
        self.call(node, &ClientRequest::Status { job_id: job_id.into() }, timeout).await
    }
}

impl Client {
    /// Joins job `job_id` (a joined job, e.g. [`JobSpec::PsiQuery`], listing this client) at
    /// every node: one channel per node, in party order (node 1 first), whose frames are at
    /// most `max_frame` bytes. `timeout` bounds the joins.
    pub async fn join(
        &self,
        job_id: &str,
        spec: &JobSpec,
        max_frame: usize,
        timeout: Duration,
    ) -> Result<Vec<(PartyId, IntakeChannel)>> {
        let mut nodes = self.nodes.clone();
        nodes.sort_by_key(|(p, _)| *p);
        if nodes.iter().enumerate().any(|(i, (p, _))| usize::from(p.get()) != i + 1) {
            return Err(NodeError::Config("a joined job needs the nodes numbered 1..n in the client file".into()));
        }
        let req = ClientRequest::Join { job_id: job_id.into(), spec: Box::new(spec.clone()) }.encode();
        let joins = nodes.iter().map(|(p, addr)| {
            let req = &req;
            async move {
                let (answer, channel) =
                    open_channel(&self.identity, *p, addr.api, addr.fingerprint, req, max_frame, timeout).await?;
                let view: JobView = serde_json::from_slice(&answer)
                    .map_err(|e| NodeError::Malformed { peer: *p, reason: e.to_string() })?;
                tracing::debug!(target: "tacit::client", node = p.get(), state = ?view.state, "joined");
                Ok((*p, channel))
            }
        });
        join_all(joins).await.into_iter().collect()
    }

    /// Joins PSI query `job_id` at every node: one link per node, in party order, for
    /// `tacit_psi::run_institution`. The links then wait for the query as long as
    /// `tacit_psi::link::LINK_TIMEOUT`.
    pub async fn join_psi(
        &self,
        job_id: &str,
        spec: &JobSpec,
        timeout: Duration,
    ) -> Result<Vec<tacit_psi::link::Link>> {
        let channels = self.join(job_id, spec, tacit_psi::link::MAX_LINK_MESSAGE, timeout).await?;
        Ok(channels.into_iter().map(|(p, c)| tacit_psi::link::Link::over(&p.to_string(), c, None)).collect())
    }

    /// Joins risk query `job_id` at every node with this institution's `input`: deals its
    /// shares (each node receives only its own) and returns the outcome, which every node
    /// must report alike. `timeout` bounds the joins and the wait for the outcome.
    pub async fn join_risk(
        &self,
        job_id: &str,
        spec: &JobSpec,
        input: &tacit_risk::InstitutionInput,
        timeout: Duration,
    ) -> Result<tacit_risk::Outcome> {
        let n = self.nodes.len();
        let t = n.saturating_sub(1) / 2;
        let frames = crate::risk::deal(input, n, t)?;
        let channels = self.join(job_id, spec, MAX_RESPONSE, timeout).await?;
        let mut outcomes = Vec::with_capacity(n);
        for ((p, channel), frame) in channels.into_iter().zip(frames) {
            channel
                .outgoing
                .send(frame.into())
                .await
                .map_err(|_| NodeError::Other(format!("{p} closed the channel")))?;
            outcomes.push((p, channel));
        }
        let mut agreed: Option<tacit_risk::Outcome> = None;
        for (p, mut channel) in outcomes {
            let frame = tokio::time::timeout(timeout, channel.incoming.recv())
                .await
                .map_err(|_| {
                    NodeError::Transport(tacit_mpc_engine::TransportError::Timeout { peer: p, after: timeout })
                })?
                .ok_or_else(|| {
                    NodeError::Other(format!("{p} closed the channel without an outcome (see its job status)"))
                })?;
            let outcome: tacit_risk::Outcome =
                serde_json::from_slice(&frame).map_err(|e| NodeError::Malformed { peer: p, reason: e.to_string() })?;
            match &agreed {
                Some(a) if *a != outcome => {
                    return Err(NodeError::Malformed { peer: p, reason: "its outcome differs from node 1's".into() })
                }
                Some(_) => {}
                None => agreed = Some(outcome),
            }
        }
        agreed.ok_or_else(|| NodeError::Config("no nodes".into()))
    }
}

async fn join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut set = Vec::with_capacity(handles.len());
    // Poll all together.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in pinned.iter_mut().zip(outs.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for o in outs.into_iter().flatten() {
        set.push(o);
    }
    set
}
