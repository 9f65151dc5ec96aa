//! A sealed-bid auction hosted by three `tacit-node` daemons in one process over loopback
//! QUIC, on a chain kept as a journal that the operator and bidders write and every node
//! follows on its own: the nodes check the contract before hosting it, bidders send share
//! packets to the nodes' bid endpoints (refused when unsigned by the committing address,
//! for an auction not hosted, or late), a run with a node down fails naming it, the retry
//! after its restart settles on chain with the reference outcome, a misbehaving bidder
//! excluded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use rand::SeedableRng;
use tacit_auction::bidder::{packets, BidSecret, BidderKey};
use tacit_auction::chain::{self, AuctionParams};
use tacit_auction::circuit::Shape;
use tacit_auction::{reference_outcome, AuctionKind};
use tacit_contracts::LocalChain;
use tacit_node::api::{new_job_id, JobSpec};
use tacit_node::client::{Client, ClientFile};
use tacit_node::config::NodeConfig;
use tacit_node::store::JobState;

const T: Duration = Duration::from_secs(120);
const START: u64 = 1_700_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_host_an_auction_from_bids_to_settlement() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("chain.jsonl");
    let (configs, client_path) = common::setup_with(dir.path(), 3, 1, 0, 5_000, 0, Some(journal.clone()));
    let client = Client::load(&client_path).unwrap();
    let client_file: ClientFile = toml::from_str(&std::fs::read_to_string(&client_path).unwrap()).unwrap();
    let nodes_addr = client_file.nodes.clone();

    // The operator: setup, Poseidon, verifier, and the auction naming this node set.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let shape = Shape { kind: AuctionKind::Vickrey, capacity: 6 };
    let keys = tokio::task::block_in_place(|| tacit_auction::node::setup_keys(shape, &mut rng)).unwrap();
    let pk = tacit_prover::keys::proving_key_to_bytes(&keys.pk).unwrap();
    let hash = tacit_node::proving::proving_key_hash(&pk);
    for i in 1..=3 {
        let folder = dir.path().join(format!("data-{i}")).join(tacit_node::auction::KEYS_FOLDER);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{hash}.pk")), &pk).unwrap();
    }
    let mut chain = LocalChain::open_journal(&journal).unwrap();
    chain.set_timestamp(START).unwrap();
    let hasher = chain.deploy_poseidon().unwrap();
    let verifier = chain.deploy_verifier(&keys.pk.vk).unwrap();
    let node_set = chain::node_set_hash(nodes_addr.iter().map(|n| n.fingerprint.as_bytes()));
    let params = AuctionParams { kind: shape.kind, capacity: shape.capacity, deadline: START + 3600, node_set };
    let auction = chain::deploy(&mut chain, verifier, hasher, &params).unwrap();
    // The same auction for another node set, which the nodes must refuse to host.
    let foreign =
        chain::deploy(&mut chain, verifier, hasher, &AuctionParams { node_set: [9; 32], ..params.clone() }).unwrap();

    // A bid endpoint without a chain to check bids against is a configuration error.
    let mut unchained = NodeConfig::load(&configs[0]).unwrap();
    unchained.file.chain = None;
    let e = NodeConfig::from_file(unchained.file, &unchained.base).unwrap_err();
    assert!(e.to_string().contains("bid_listen needs [chain]"), "{e}");

    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let host = |address: revm::primitives::Address| JobSpec::AuctionHost {
        auction: address.to_string(),
        proving_key: hash.clone(),
    };
    for (p, answer) in client.submit(&new_job_id(), &host(foreign), T).await {
        let view = answer.unwrap();
        assert_eq!(view.state, JobState::Failed, "{p}: {view:?}");
        assert!(view.error.unwrap().contains("another node set"), "{p}");
    }
    let hosted = common::submit_done(&client, &host(auction), T).await;
    assert_eq!(hosted[0].result.as_ref().unwrap()["capacity"], 6);
    // A twin that node 3 was never asked to host.
    let partial = chain::deploy(&mut chain, verifier, hasher, &params).unwrap();
    let partial_job = new_job_id();
    for node in [1u16, 2] {
        let node = tacit_mpc_engine::PartyId::new(node).unwrap();
        let view = client.submit_to(node, &partial_job, &host(partial), T).await.unwrap();
        assert_eq!(view.state, JobState::Done, "{view:?}");
    }

    // Bidders: commit on chain, then send each node its packet.
    let bids = [300u64, 120, 250, 80];
    let mut secrets = Vec::new();
    let mut sent = Vec::new();
    for bid in bids {
        let key = BidderKey::random(&mut rng);
        let secret = BidSecret::new(bid, &mut rng);
        let (index, _) = chain::commit(&mut chain, auction, key.address(), secret.commitment().unwrap()).unwrap();
        let packets = packets(&key, auction, index, &secret, 3, 1, &mut rng).unwrap();
        if index == 1 {
            // Packets signed by a key that did not post commitment 1: every node refuses.
            let thief = BidderKey::random(&mut rng);
            let forged = tacit_auction::bidder::packets(&thief, auction, index, &secret, 3, 1, &mut rng).unwrap();
            let e = tacit_node::auction::submit_bid(&nodes_addr, &forged, T).await.unwrap_err();
            assert!(e.to_string().contains("not signed by its address"), "{e}");
            // Packets for an auction the nodes do not host.
            let other = packets_for(&key, foreign, index, &secret, &mut rng);
            let e = tacit_node::auction::submit_bid(&nodes_addr, &other, T).await.unwrap_err();
            assert!(e.to_string().contains("not hosted here"), "{e}");
        }
        if index == 3 {
            // This bidder deals shares of another bid than it committed to: excluded.
            let other = BidSecret::new(999, &mut rng);
            let wrong = tacit_auction::bidder::packets(&key, auction, index, &other, 3, 1, &mut rng).unwrap();
            tacit_node::auction::submit_bid(&nodes_addr, &wrong, T).await.unwrap();
        } else {
            tacit_node::auction::submit_bid(&nodes_addr, &packets, T).await.unwrap();
        }
        if index == 0 {
            sent = packets.clone();
        }
        secrets.push((key, secret));
    }
    // A run while bidding is open is refused by every node.
    let early = JobSpec::AuctionRun { auction: auction.to_string(), one_round_sbox: false };
    for (p, answer) in client.submit(&new_job_id(), &early, T).await {
        let view = answer.unwrap();
        assert_eq!(view.state, JobState::Failed, "{p}: {view:?}");
        assert!(view.error.unwrap().contains("bidding is open"), "{p}");
    }
    chain.set_timestamp(START + 3600).unwrap();
    // Node 3 does not host the twin: it refuses the run and the others stop at once naming it.
    let partial_run = JobSpec::AuctionRun { auction: partial.to_string(), one_round_sbox: false };
    for (p, answer) in client.submit(&new_job_id(), &partial_run, T).await {
        let view = answer.unwrap();
        assert_eq!(view.state, JobState::Failed, "{p}: {view:?}");
        let error = view.error.unwrap();
        let expected = if p.get() == 3 { "not hosted here" } else { "P3" };
        assert!(error.contains(expected), "{p}: {error}");
    }
    let (key, secret) = &secrets[0];
    let late = packets(key, auction, 0, secret, 3, 1, &mut rng).unwrap();
    let e = tacit_node::auction::submit_bid(&nodes_addr, &late, T).await.unwrap_err();
    assert!(e.to_string().contains("bidding is closed"), "{e}");

    // Node 3 is down: the others fail the run naming it.
    let third = nodes.pop().unwrap();
    third.shutdown().await;
    let job = new_job_id();
    let run = JobSpec::AuctionRun { auction: auction.to_string(), one_round_sbox: false };
    for (p, answer) in client.submit(&job, &run, Duration::from_secs(30)).await {
        if p.get() == 3 {
            assert!(answer.is_err(), "node 3 is down");
            continue;
        }
        let view = answer.unwrap();
        assert_eq!(view.state, JobState::Failed, "{p}: {view:?}");
        let error = view.error.unwrap();
        assert!(error.contains("could not connect to P3"), "{p}: {error}");
    }
    // Back with its store: the same job settles.
    nodes.push(tacit_node::daemon::start(NodeConfig::load(&configs[2]).unwrap()).await.unwrap());
    let results: Vec<serde_json::Value> =
        common::submit_until_done(&client, &job, &run, T).await.into_iter().map(|v| v.result.unwrap()).collect();
    for r in &results[1..] {
        for key in ["winners", "price", "excluded", "public"] {
            assert_eq!(r[key], results[0][key], "nodes disagree on {key}");
        }
    }
    let expected = reference_outcome(AuctionKind::Vickrey, &[Some(300), Some(120), Some(250), None]);
    let (outcome, proof) = tacit_node::auction::settlement(&results[0]).unwrap();
    assert_eq!(outcome, expected);
    assert_eq!(outcome.excluded, vec![3]);
    let from = chain.caller();
    chain::settle(&mut chain, from, auction, &outcome, &proof).unwrap();
    let settled = chain::read_settlement(&mut chain, auction).unwrap().unwrap();
    assert_eq!((settled.winners, settled.price), (vec![0], 250));

    // Shares are sealed at rest: no node's store holds its share of a bid in the clear.
    for (i, packet) in sent.iter().enumerate() {
        let (submission, _) = tacit_auction::bidder::Submission::open(packet).unwrap();
        let store = std::fs::read(dir.path().join(format!("data-{}", i + 1)).join("node.redb")).unwrap();
        for share in &submission.shares[..2] {
            let bytes = ark_ff::BigInteger::to_bytes_be(&ark_ff::PrimeField::into_bigint(*share));
            assert!(!store.windows(32).any(|w| w == bytes.as_slice()), "node {} keeps a share in the clear", i + 1);
        }
    }
    for n in nodes {
        n.shutdown().await;
    }
}

fn packets_for(
    key: &BidderKey,
    auction: revm::primitives::Address,
    index: usize,
    secret: &BidSecret,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Vec<Vec<u8>> {
    packets(key, auction, index, secret, 3, 1, rng).unwrap()
}
