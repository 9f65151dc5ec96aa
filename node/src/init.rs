//! `tacit-node init`: a local N-party configuration set in one folder: per party a certificate,
//! a private key and a store key (mode 0600), and `party-<i>.toml`; one client identity and
//! `client.toml` listing every node, authorised for every job type (with the nodes' bid
//! endpoints where a chain is given, for bidders); and optionally PSI
//! institutions, `institution-<k>.toml` each, authorised for `psi.query`, `risk.query` and
//! `job.status`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use tacit_mpc_engine::transport::quic::PartyIdentity;
use tacit_mpc_engine::{PartyId, Shamir};

use crate::client::{ClientFile, NodeAddr};
use crate::config::{ClientEntry, KeySource, PartyToml, PeerEntry, Pools, Timeouts};
use crate::error::{NodeError, Result};

/// Options of `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Parties.
    pub parties: usize,
    /// Threshold.
    pub threshold: usize,
    /// Mesh port of party 1 (party i: +i-1; job API +100; metrics +200; bids +300).
    pub base_port: u16,
    /// Host of each party (one for all, or one per party).
    pub hosts: Vec<IpAddr>,
    /// Target presignature pool per signer set.
    pub pool: usize,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// PSI institution identities to create (`institution-<k>.toml`, k from 1).
    pub institutions: usize,
    /// The chain journal every node follows (hosted auctions; each node also gets a bid
    /// endpoint, port +300).
    pub chain: Option<PathBuf>,
}

/// Writes a file readable by its owner only.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
    f.write_all(bytes).map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> NodeError + '_ {
    move |e| NodeError::Config(format!("{}: {e}", path.display()))
}

fn quic_options(t: &Timeouts) -> tacit_mpc_engine::transport::quic::QuicOptions {
    // A restarted peer is noticed within the idle timeout even when no job runs.
    tacit_mpc_engine::transport::quic::QuicOptions {
        keep_alive: std::time::Duration::from_secs(2),
        idle_timeout: std::time::Duration::from_secs(10),
        connect_timeout: std::time::Duration::from_millis(t.connect_ms),
        recv_timeout: std::time::Duration::from_millis(t.recv_ms),
        ..Default::default()
    }
}

/// Writes the set into `dir`; returns the party config paths and the client file.
pub fn init(dir: &Path, o: &InitOptions) -> Result<(Vec<PathBuf>, PathBuf)> {
    Shamir::<tacit_signer::curve::Scalar>::new(o.parties, o.threshold)
        .map_err(|e| NodeError::Config(format!("cluster parameters: {e}")))?;
    if o.hosts.is_empty() || (o.hosts.len() != 1 && o.hosts.len() != o.parties) {
        return Err(NodeError::Config("give one host, or one per party".into()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let host = |i: usize| o.hosts.get(i).or(o.hosts.first()).copied().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let port = |off: u16, i: usize| -> Result<u16> {
        o.base_port
            .checked_add(off)
            .and_then(|p| p.checked_add(u16::try_from(i).ok()?))
            .ok_or_else(|| NodeError::Config("port out of range".into()))
    };
    let client_id = client_identity(dir, "client")?;
    let mut clients =
        vec![ClientEntry { name: "client".into(), fingerprint: client_id.fingerprint(), jobs: vec!["*".into()] }];
    let mut institutions = Vec::new();
    for k in 1..=o.institutions {
        let name = format!("institution-{k}");
        let identity = client_identity(dir, &name)?;
        let jobs = vec!["psi.query".into(), "risk.query".into(), "job.status".into()];
        clients.push(ClientEntry { name: name.clone(), fingerprint: identity.fingerprint(), jobs });
        institutions.push(name);
    }
    let bid_addr = |i: usize| -> Result<Option<SocketAddr>> {
        Ok(if o.chain.is_some() { Some(SocketAddr::new(host(i), port(300, i)?)) } else { None })
    };
    let mut ids = Vec::new();
    let mut peers = Vec::new();
    for (i, id) in PartyId::all(o.parties).enumerate() {
        let identity = PartyIdentity::generate(id)?;
        let cert = dir.join(format!("party-{}.cert.der", id.get()));
        std::fs::write(&cert, identity.cert_der()).map_err(io(&cert))?;
        write_secret(&dir.join(format!("party-{}.key.der", id.get())), identity.expose_key_der())?;
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        write_secret(&dir.join(format!("party-{}.store.key", id.get())), hex::encode(key).as_bytes())?;
        peers.push(PeerEntry {
            id: id.get(),
            addr: SocketAddr::new(host(i), port(0, i)?),
            cert_fingerprint: Some(identity.fingerprint()),
            cert_file: None,
            api_addr: Some(SocketAddr::new(host(i), port(100, i)?)),
        });
        ids.push(identity);
    }
    let mut configs = Vec::new();
    for (i, id) in PartyId::all(o.parties).enumerate() {
        let file = PartyToml {
            party: id.get(),
            threshold: o.threshold,
            data_dir: PathBuf::from(format!("data-{}", id.get())),
            cert: PathBuf::from(format!("party-{}.cert.der", id.get())),
            key: PathBuf::from(format!("party-{}.key.der", id.get())),
            mesh_listen: SocketAddr::new(host(i), port(0, i)?),
            api_listen: SocketAddr::new(host(i), port(100, i)?),
            metrics_listen: Some(SocketAddr::new(host(i), port(200, i)?)),
            peers: peers.iter().filter(|p| p.id != id.get()).cloned().collect(),
            secret_key: KeySource::File { path: PathBuf::from(format!("party-{}.store.key", id.get())) },
            clients: clients.clone(),
            pools: Pools { presignatures: o.pool, ..Pools::default() },
            timeouts: o.timeouts.clone(),
            max_request: 1 << 20,
            quic: quic_options(&o.timeouts),
            risk: Default::default(),
            bid_listen: bid_addr(i)?,
            chain: o.chain.clone().map(|journal| crate::config::ChainSettings { journal }),
        };
        let path = dir.join(format!("party-{}.toml", id.get()));
        let text = toml::to_string_pretty(&file).map_err(|e| NodeError::Config(e.to_string()))?;
        std::fs::write(&path, text).map_err(io(&path))?;
        configs.push(path);
    }
    let mut nodes = Vec::new();
    for (i, (p, id)) in peers.iter().zip(&ids).enumerate() {
        if let Some(api) = p.api_addr {
            nodes.push(NodeAddr { id: p.id, api, fingerprint: id.fingerprint(), bids: bid_addr(i)? });
        }
    }
    for name in institutions {
        write_client_file(dir, &name, &nodes)?;
    }
    let client_path = write_client_file(dir, "client", &nodes)?;
    Ok((configs, client_path))
}

/// A fresh client identity, written as `<name>.cert.der` and `<name>.key.der` (0600).
fn client_identity(dir: &Path, name: &str) -> Result<PartyIdentity> {
    let identity = PartyIdentity::generate(PartyId::new(1).ok_or_else(|| NodeError::Config("id".into()))?)?;
    write_secret(&dir.join(format!("{name}.key.der")), identity.expose_key_der())?;
    std::fs::write(dir.join(format!("{name}.cert.der")), identity.cert_der()).map_err(io(dir))?;
    Ok(identity)
}

/// `<name>.toml`: the client's identity files and the nodes.
fn write_client_file(dir: &Path, name: &str, nodes: &[NodeAddr]) -> Result<PathBuf> {
    let client = ClientFile {
        cert: format!("{name}.cert.der").into(),
        key: format!("{name}.key.der").into(),
        nodes: nodes.to_vec(),
    };
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string_pretty(&client).map_err(|e| NodeError::Config(e.to_string()))?)
        .map_err(io(&path))?;
    Ok(path)
}
