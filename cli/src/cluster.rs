//! `tacit cluster ...`: per-party identities and the cluster file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tacit_mpc_engine::transport::quic::{PartyIdentity, PeerInfo, QuicConfig, QuicOptions, QuicTransport};
use tacit_mpc_engine::{PartyId, Shamir};

/// The file every party of a cluster shares: threshold, and each party's address and pinned
/// certificate fingerprint.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Corruption threshold.
    pub threshold: usize,
    /// Every party, ids `1..=n`.
    pub parties: Vec<PeerInfo>,
    /// Transport tunables.
    #[serde(default)]
    pub quic: QuicOptions,
}

pub const CLUSTER_FILE: &str = "cluster.toml";

pub fn key_path(dir: &Path, id: PartyId) -> PathBuf {
    dir.join(format!("party-{}.key.der", id.get()))
}

pub fn cert_path(dir: &Path, id: PartyId) -> PathBuf {
    dir.join(format!("party-{}.cert.der", id.get()))
}

pub fn init(
    parties: usize,
    threshold: usize,
    dir: &Path,
    base_port: u16,
    host: &str,
    force: bool,
) -> anyhow::Result<()> {
    Shamir::<ark_bn254::Fr>::new(parties, threshold).context("cluster parameters")?;
    let cluster_path = dir.join(CLUSTER_FILE);
    if cluster_path.exists() && !force {
        bail!("{} exists; pass --force to replace the cluster", cluster_path.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut infos = Vec::with_capacity(parties);
    for id in PartyId::all(parties) {
        let identity = PartyIdentity::generate(id)?;
        let port = base_port.checked_add(id.get() - 1).context("port out of range")?;
        let addr = format!("{host}:{port}").parse().with_context(|| format!("address {host}:{port}"))?;
        write_secret(&key_path(dir, id), identity.expose_key_der())?;
        std::fs::write(cert_path(dir, id), identity.cert_der())?;
        infos.push(PeerInfo { id, addr, cert_fingerprint: identity.fingerprint() });
    }
    let file = ClusterFile { threshold, parties: infos, quic: QuicOptions::default() };
    std::fs::write(&cluster_path, toml::to_string_pretty(&file)?)?;
    println!("cluster of {parties} parties (threshold {threshold}) written to {}", dir.display());
    for p in &file.parties {
        println!("  {} at {}  fingerprint {}", p.id, p.addr, p.cert_fingerprint.to_hex());
    }
    Ok(())
}

/// Writes a private key readable by its owner only.
fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// Reads the cluster file in `dir`.
pub fn load_cluster(dir: &Path) -> anyhow::Result<ClusterFile> {
    let path = dir.join(CLUSTER_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: ClusterFile = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Shamir::<ark_bn254::Fr>::new(file.parties.len(), file.threshold).context("cluster parameters")?;
    Ok(file)
}

/// Party `id`'s QUIC configuration from the cluster directory.
pub fn party_config(dir: &Path, id: PartyId) -> anyhow::Result<QuicConfig> {
    let cluster = load_cluster(dir)?;
    let me = cluster.parties.iter().find(|p| p.id == id).with_context(|| format!("{id} is not in the cluster"))?;
    let identity = PartyIdentity::from_der(std::fs::read(cert_path(dir, id))?, std::fs::read(key_path(dir, id))?)?;
    if identity.fingerprint() != me.cert_fingerprint {
        bail!("{id}'s certificate does not match the fingerprint in the cluster file");
    }
    let peers = cluster.parties.iter().filter(|p| p.id != id).cloned().collect();
    let mut config = QuicConfig::new(id, me.addr, identity, peers);
    config.options = cluster.quic.clone();
    Ok(config)
}

/// A loopback QUIC cluster in this process, for benchmarks.
pub async fn local_quic_cluster(parties: usize) -> anyhow::Result<Vec<Arc<QuicTransport>>> {
    Ok(tacit_mpc_engine::simulate::local_quic_cluster(parties, QuicOptions::default()).await?)
}
