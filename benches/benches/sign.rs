//! Threshold ECDSA signing, 2-of-3: Tacit's online signing (policy gate, durable burn, both
//! rounds, share checks, combination and verification) beside a full cggmp24 signing (the
//! interactive protocol from key shares to signature), in the same run; prints the ratio.
//!
//! The cggmp24 side is `tacit_benches::cggmp24_baseline` (also run by `tacit bench sign`
//! through the `tacit-baseline-cggmp24` binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_debug_implementations)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::OsRng;
use tacit_benches::cggmp24_baseline::Cggmp24;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{PartyId, SessionId};
use tacit_signer::cluster::{self, first_ok, honest, KeyOp};
use tacit_signer::curve::{address_of_key, keccak};
use tacit_signer::eth::{Intent, IntentKind};
use tacit_signer::k256::ecdsa::SigningKey;
use tacit_signer::policy::{approve, Policy};
use tacit_signer::store::StoreKey;
use tacit_signer::{Node, SignRequest};

struct Tacit {
    rt: tokio::runtime::Runtime,
    transports: Vec<Arc<MemoryTransport>>,
    nodes: Vec<Arc<Node>>,
    approvers: Vec<SigningKey>,
    key_id: [u8; 16],
    nonce: u64,
    _dir: std::path::PathBuf,
}

const NOW: u64 = 1_800_000_000;

impl Tacit {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // Each signing fsyncs a burn and an audit entry per signer: TACIT_BENCH_DIR picks the device.
        let base = std::env::var_os("TACIT_BENCH_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
        let dir = base.join(format!("tacit-bench-sign-{}", rand::random::<u64>()));
        let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
        let nodes: Vec<Arc<Node>> =
            PartyId::all(3).map(|id| Arc::new(Node::open(&dir, id, StoreKey::random()).unwrap())).collect();
        let approvers: Vec<SigningKey> = (0..3).map(|_| SigningKey::random(&mut OsRng)).collect();
        let public = rt.block_on(async {
            let r = cluster::key_op(KeyOp::Dkg, &transports, &nodes, 1, SessionId::random(), NOW, &honest).await;
            first_ok(r).unwrap().remove(0)
        });
        let policy = Policy {
            approvers: approvers.iter().map(|k| address_of_key(k.verifying_key())).collect(),
            threshold: 2,
            chains: vec![1],
            destinations: vec![[0x35; 20]],
            daily_limit: u128::MAX,
            change_threshold: 2,
            change_delay_s: 86_400,
        };
        for n in &nodes {
            n.init_policy(&policy).unwrap();
        }
        Self { rt, transports, nodes, approvers, key_id: public.key_id, nonce: 0, _dir: dir }
    }

    /// `count` approved requests, each with its own presignature (untimed preparation).
    fn requests(&mut self, count: usize) -> Vec<SignRequest> {
        let signers = [PartyId::new(1).unwrap(), PartyId::new(2).unwrap()];
        let ids = self.rt.block_on(async {
            let r =
                cluster::presign(&self.transports, &self.nodes, 1, SessionId::random(), count, &signers, NOW, &honest)
                    .await;
            first_ok(r).unwrap().remove(0)
        });
        ids.into_iter()
            .map(|id| {
                self.nonce += 1;
                let intent = Intent {
                    key_id: self.key_id,
                    kind: IntentKind::Transaction,
                    chain_id: 1,
                    to: [0x35; 20],
                    value: 1,
                    data_hash: keccak(&[]),
                    data: Vec::new(),
                    nonce: self.nonce,
                    max_priority_fee_per_gas: 1,
                    max_fee_per_gas: 2,
                    gas_limit: 21_000,
                    expiry: NOW + 3600,
                    request_id: rand::random(),
                };
                let d = intent.digest();
                let approvals = self.approvers[..2].iter().map(|k| approve(k, &d).unwrap()).collect();
                SignRequest { intent, approvals, presig_id: id, signers: vec![1, 2] }
            })
            .collect()
    }

    fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }

    fn sign(&self, req: &SignRequest) {
        let out = self.rt.block_on(cluster::sign(&self.transports, &self.nodes, req, NOW, &honest));
        assert!(out.iter().all(Result::is_ok));
    }
}

fn signing(c: &mut Criterion) {
    let mut tacit = Tacit::new();
    let mut cg = Cggmp24::new().unwrap();
    let mut g = c.benchmark_group("ecdsa_2of3_sign");
    g.bench_function("tacit_online_sign", |b| {
        b.iter_custom(|iters| {
            let reqs = tacit.requests(iters as usize);
            let start = Instant::now();
            for r in &reqs {
                tacit.sign(r);
            }
            start.elapsed()
        })
    });
    g.sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_secs(20));
    g.bench_function("cggmp24_full_sign", |b| b.iter(|| cg.sign().unwrap()));
    g.finish();

    // The ratio, measured here in the same process.
    let reqs = tacit.requests(200);
    let start = Instant::now();
    for r in &reqs {
        tacit.sign(r);
    }
    let ours = start.elapsed().as_secs_f64() / reqs.len() as f64;
    let start = Instant::now();
    let rounds = 3;
    for _ in 0..rounds {
        cg.sign().unwrap();
    }
    let theirs = start.elapsed().as_secs_f64() / f64::from(rounds);
    tacit.cleanup();
    println!(
        "ratio: cggmp24 full signing {:.1} ms / tacit online signing {:.3} ms = {:.0}x",
        theirs * 1e3,
        ours * 1e3,
        theirs / ours
    );
}

criterion_group!(benches, signing);
criterion_main!(benches);
