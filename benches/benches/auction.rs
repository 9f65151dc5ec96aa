//! Sealed-bid auction: the nodes' run (MPC and collaborative proof over loopback QUIC, three
//! nodes) beside the single prover on the same circuit. `tacit bench auction` measures the
//! 1,000-bidder figures; this bench keeps a smaller size so that it runs in minutes.

use ark_bn254::Fr;
use criterion::{criterion_group, criterion_main, Criterion};
use tacit_auction::bidder::{BidSecret, BidderKey};
use tacit_auction::circuit::{PublicData, Secrets};
use tacit_auction::local::{LocalAuction, LocalAuctionConfig};
use tacit_auction::node::prove_single;

const BIDDERS: usize = 64;

fn auction(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(format!("tacit-bench-auction-{}", std::process::id()));
    let mut rng = rand::thread_rng();
    let secrets: Vec<BidSecret> = (0..BIDDERS).map(|i| BidSecret::new(1_000 + 7 * i as u64, &mut rng)).collect();
    let auction = rt.block_on(async {
        let mut config = LocalAuctionConfig::new("vickrey".parse().expect("kind"), BIDDERS, &dir);
        config.setup_seed = Some(1);
        let auction = LocalAuction::create(config).await.expect("create");
        for s in &secrets {
            auction.bid(&BidderKey::random(&mut rand::thread_rng()), s).await.expect("bid");
        }
        auction.close().expect("close");
        auction
    });
    let bids = auction.bids().expect("bids");
    let public =
        PublicData { seed: bids.seed(), commitments: bids.commitments.clone(), candidates: vec![true; BIDDERS] };
    let values: Vec<Fr> = secrets.iter().map(|s| Fr::from(s.expose_bid())).collect();
    let salts: Vec<Fr> = secrets.iter().map(BidSecret::expose_salt).collect();

    let mut group = c.benchmark_group(format!("auction_{BIDDERS}_bidders"));
    group.sample_size(10);
    group.bench_function("nodes_mpc_and_collaborative_proof_quic", |b| {
        b.iter(|| rt.block_on(auction.run()).expect("run"))
    });
    group.bench_function("single_prover_same_circuit", |b| {
        b.iter(|| {
            prove_single(&auction.keys, &public, Secrets { bids: &values, salts: &salts, bits: None }).expect("prove")
        })
    });
    group.finish();
    rt.block_on(auction.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, auction);
criterion_main!(benches);
