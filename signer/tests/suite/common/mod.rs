//! Test harness: a cluster of signer nodes over the in-memory transport, approvers, requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod cheater;

use std::sync::Arc;
use std::time::Duration;

use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{PartyId, SessionId, Transport};
use tacit_signer::cluster::{self, honest, KeyOp};
use tacit_signer::eth::Intent;
use tacit_signer::k256::ecdsa::SigningKey;
use tacit_signer::keys::KeyPublic;
use tacit_signer::policy::{approve, Policy};
use tacit_signer::store::StoreKey;
use tacit_signer::{Node, SignRequest};

pub const NOW: u64 = 1_800_000_000;
pub const DEST: [u8; 20] = [0x35; 20];
pub const ETH: u128 = 1_000_000_000_000_000_000;

pub fn pid(i: u16) -> PartyId {
    PartyId::new(i).unwrap()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub struct Cluster<T: Transport> {
    pub dir: tempfile::TempDir,
    pub transports: Vec<Arc<T>>,
    pub nodes: Vec<Arc<Node>>,
    pub keys: Vec<[u8; 32]>,
    pub t: usize,
    pub approvers: Vec<SigningKey>,
    pub public: Option<KeyPublic>,
}

pub fn approver_keys() -> Vec<SigningKey> {
    (1..=3u8).map(|i| SigningKey::from_slice(&[i; 32]).unwrap()).collect()
}

pub fn policy(approvers: &[SigningKey]) -> Policy {
    Policy {
        approvers: approvers.iter().map(|k| tacit_signer::curve::address_of_key(k.verifying_key())).collect(),
        threshold: 2,
        chains: vec![1, 11155111],
        destinations: vec![DEST, [0xcc; 20]],
        daily_limit: 10 * ETH,
        change_threshold: 2,
        change_delay_s: 3600,
    }
}

pub fn memory(n: usize) -> Vec<Arc<MemoryTransport>> {
    MemoryTransport::network_with_timeout(n, Duration::from_secs(3)).into_iter().map(Arc::new).collect()
}

impl Cluster<MemoryTransport> {
    /// Three in-memory nodes at threshold 1 after a DKG, holding `count` presignatures for
    /// the signer set {P1, P2}.
    pub async fn with_presigs(count: usize) -> (Self, [PartyId; 2], Vec<[u8; 32]>) {
        let mut c = Self::new(memory(3), 1);
        c.dkg().await;
        let s = [pid(1), pid(2)];
        let ids = c.presign(count, &s).await;
        (c, s, ids)
    }
}

impl<T: Transport> Cluster<T> {
    pub fn new(transports: Vec<Arc<T>>, t: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let n = transports.len();
        let keys: Vec<[u8; 32]> = (0..n).map(|_| rand::random()).collect();
        let nodes = (0..n)
            .map(|i| {
                Arc::new(
                    Node::open(
                        dir.path(),
                        PartyId::from_index(i).unwrap(),
                        StoreKey::from_hex(&hex::encode(keys[i])).unwrap(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        let approvers = approver_keys();
        Self { dir, transports, nodes, keys, t, approvers, public: None }
    }

    pub fn reopen(&mut self, i: usize) {
        let id = PartyId::from_index(i).unwrap();
        self.close(i);
        self.nodes[i] =
            Arc::new(Node::open(self.dir.path(), id, StoreKey::from_hex(&hex::encode(self.keys[i])).unwrap()).unwrap());
    }

    pub async fn dkg(&mut self) -> KeyPublic {
        let results =
            cluster::key_op(KeyOp::Dkg, &self.transports, &self.nodes, self.t, SessionId::random(), NOW, &honest).await;
        let pubs = cluster::first_ok(results).unwrap();
        for p in &pubs {
            assert_eq!(p, &pubs[0]);
        }
        let policy = policy(&self.approvers);
        for n in &self.nodes {
            n.init_policy(&policy).unwrap();
        }
        self.public = Some(pubs[0].clone());
        pubs[0].clone()
    }

    pub async fn presign(&self, count: usize, signers: &[PartyId]) -> Vec<[u8; 32]> {
        let r =
            cluster::presign(&self.transports, &self.nodes, self.t, SessionId::random(), count, signers, NOW, &honest)
                .await;
        let ids = cluster::first_ok(r).unwrap();
        ids.into_iter().find(|v| !v.is_empty()).unwrap()
    }

    pub fn key_id(&self) -> [u8; 16] {
        self.public.as_ref().unwrap().key_id
    }

    pub fn intent(&self, value: u128, nonce: u64) -> Intent {
        Intent::simple_transfer(self.key_id(), DEST, value, nonce, NOW + 600)
    }

    pub fn request(&self, intent: Intent, presig: [u8; 32], signers: &[PartyId]) -> SignRequest {
        let digest = intent.digest();
        let approvals = self.approvers[..2].iter().map(|k| approve(k, &digest).unwrap()).collect();
        SignRequest { intent, approvals, presig_id: presig, signers: signers.iter().map(|p| p.get()).collect() }
    }
}

fn dummy_node() -> Node {
    let dir = tempfile::tempdir().unwrap().keep();
    Node::open(&dir, pid(1), StoreKey::random()).unwrap()
}

/// Asserts every error in `results` that blames someone blames exactly `culprit`, and that at
/// least one honest party named it.
pub fn assert_named<R: std::fmt::Debug>(results: &[tacit_signer::Result<R>], culprit: PartyId) {
    let mut named = false;
    for (i, r) in results.iter().enumerate() {
        if PartyId::from_index(i) == Some(culprit) {
            continue;
        }
        match r {
            Ok(v) => panic!("party {} finished despite the cheat: {v:?}", i + 1),
            Err(e) => {
                if e.identified() == Some(culprit) {
                    named = true;
                }
            }
        }
    }
    assert!(named, "nobody named {culprit}: {results:?}");
}

impl<T: Transport> Cluster<T> {
    /// Copies node `i`'s store file (closing and reopening the node around the copy).
    pub fn snapshot(&mut self, i: usize) -> std::path::PathBuf {
        let path = tacit_signer::node::store_path(self.dir.path(), PartyId::from_index(i).unwrap());
        let snap = self.dir.path().join(format!("snapshot-{i}.redb"));
        self.close(i);
        std::fs::copy(&path, &snap).unwrap();
        self.reopen(i);
        snap
    }

    /// Restores node `i` from a snapshot.
    pub fn restore(&mut self, i: usize, snap: &std::path::Path) {
        let path = tacit_signer::node::store_path(self.dir.path(), PartyId::from_index(i).unwrap());
        self.close(i);
        std::fs::copy(snap, &path).unwrap();
        self.reopen(i);
    }

    fn close(&mut self, i: usize) {
        let old = std::mem::replace(&mut self.nodes[i], Arc::new(dummy_node()));
        assert_eq!(Arc::strong_count(&old), 1);
        drop(old);
    }
}
