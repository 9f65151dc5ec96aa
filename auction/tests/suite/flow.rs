//! Sealed-bid auctions end to end: nodes on loopback QUIC, bidders over the intake, the
//! contract on revm; bad inputs, an offline node, and settlements that must be refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use ark_bn254::Fr;
use ark_ff::{PrimeField, UniformRand};
use rand::SeedableRng;
use tacit_auction::bidder::{deal, BidSecret, BidderKey, Submission, VALUES_PER_BID};
use tacit_auction::chain;
use tacit_auction::local::{LocalAuction, LocalAuctionConfig};
use tacit_auction::outcome::{reference_outcome, AuctionKind};
use tacit_auction::AuctionError;
use tacit_circuits::gadgets::commitment;
use tacit_mpc_engine::{MpcError, PartyId, TransportError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    std::env::temp_dir().join(format!("tacit-auction-{name}-{}-{nanos}", std::process::id()))
}

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

/// Commits `commitment` from `key` and sends each node its share of `values` (dealt
/// honestly unless `tamper` changes a node's shares first).
async fn bid_raw(
    auction: &LocalAuction,
    key: &BidderKey,
    commitment: Fr,
    values: &[Fr],
    tamper: impl Fn(usize, &mut Vec<Fr>),
) -> usize {
    let (address, bidder) = (auction.address, key.address());
    let (index, _) = auction.chain.with(move |c| chain::commit(c, address, bidder, commitment)).unwrap().unwrap();
    let mut dealt = deal(values, 3, 1, &mut rng(index as u64 + 100)).unwrap();
    let packets: Vec<Vec<u8>> = dealt
        .iter_mut()
        .enumerate()
        .map(|(i, shares)| {
            tamper(i, shares);
            let node = PartyId::from_index(i).unwrap();
            Submission { auction: address, index: index as u32, node, shares: shares.clone() }.sign(key).unwrap()
        })
        .collect();
    auction.send_packets(&packets).await.unwrap();
    index
}

fn bid_values(bid: Fr, salt: Fr, low_bits_of: u64) -> Vec<Fr> {
    let mut v = vec![bid, salt];
    v.extend((0..64).map(|i| Fr::from((low_bits_of >> i) & 1)));
    assert_eq!(v.len(), VALUES_PER_BID);
    v
}

#[test]
fn vickrey_with_bad_bidders_settles_on_chain_and_refuses_wrong_settlements() {
    let rt = runtime();
    rt.block_on(async {
        let dir = scratch("flow");
        let mut config = LocalAuctionConfig::new(AuctionKind::Vickrey, 8, &dir);
        config.setup_seed = Some(7);
        let auction = LocalAuction::create(config).await.unwrap();
        let mut r = rng(1);
        let mut expected_bids: Vec<Option<u64>> = Vec::new();

        // Honest bidders (with a tie at the top: the lower index wins).
        for bid in [500u64, 900, 900] {
            let key = BidderKey::random(&mut r);
            auction.bid(&key, &BidSecret::new(bid, &mut r)).await.unwrap();
            expected_bids.push(Some(bid));
        }
        // A bid of 2^64 + 5 with the bits of 5: out of range.
        let salt = Fr::rand(&mut r);
        let big = Fr::from(1u128 << 64) + Fr::from(5u64);
        bid_raw(
            &auction,
            &BidderKey::random(&mut r),
            commitment(big, salt).unwrap(),
            &bid_values(big, salt, 5),
            |_, _| {},
        )
        .await;
        expected_bids.push(None);
        // Bid 6 whose "bits" recompose it but are not bits (3 at weight 2): out of range in
        // disguise (a field element this way could stand for any value).
        let salt = Fr::rand(&mut r);
        let mut values = bid_values(Fr::from(6u64), salt, 0);
        values[3] = Fr::from(3u64);
        bid_raw(&auction, &BidderKey::random(&mut r), commitment(Fr::from(6u64), salt).unwrap(), &values, |_, _| {})
            .await;
        expected_bids.push(None);
        // Shares that do not open the commitment (bids 950, commits to 951).
        let salt = Fr::rand(&mut r);
        let c = commitment(Fr::from(951u64), salt).unwrap();
        bid_raw(&auction, &BidderKey::random(&mut r), c, &bid_values(Fr::from(950u64), salt, 950), |_, _| {}).await;
        expected_bids.push(None);
        // Inconsistent shares: node 2 gets a different share of the salt.
        let salt = Fr::rand(&mut r);
        let c = commitment(Fr::from(990u64), salt).unwrap();
        bid_raw(&auction, &BidderKey::random(&mut r), c, &bid_values(Fr::from(990u64), salt, 990), |i, s| {
            if i == 1 {
                s[1] += Fr::from(1u64);
            }
        })
        .await;
        expected_bids.push(None);
        // A bidder that commits but never sends its shares.
        let key = BidderKey::random(&mut r);
        let secret = BidSecret::new(10_000, &mut r);
        let (address, bidder, c) = (auction.address, key.address(), secret.commitment().unwrap());
        auction.chain.with(move |ch| chain::commit(ch, address, bidder, c)).unwrap().unwrap();
        expected_bids.push(None);

        // Duplicates are refused by the contract: same address, same commitment.
        let err = auction.chain.with(move |ch| chain::commit(ch, address, bidder, c + Fr::from(1u64))).unwrap();
        assert!(matches!(err, Err(AuctionError::Rejected(ref m)) if m.contains("AlreadyCommitted")), "{err:?}");
        let other = BidderKey::random(&mut r).address();
        let err = auction.chain.with(move |ch| chain::commit(ch, address, other, c)).unwrap();
        assert!(matches!(err, Err(AuctionError::Rejected(ref m)) if m.contains("DuplicateCommitment")), "{err:?}");
        // Running before the deadline is refused.
        assert!(auction.run().await.is_err());

        auction.close().unwrap();
        // Late commitments and late packets are refused.
        let late = BidderKey::random(&mut r).address();
        let err = auction.chain.with(move |ch| chain::commit(ch, address, late, Fr::from(3u64))).unwrap();
        assert!(matches!(err, Err(AuctionError::Rejected(ref m)) if m.contains("BiddingClosed")), "{err:?}");
        let packets = tacit_auction::bidder::packets(&key, address, 7, &secret, 3, 1, &mut r).unwrap();
        assert!(auction.send_packets(&packets).await.is_err());

        let run = auction.run().await.unwrap();
        let reference = reference_outcome(AuctionKind::Vickrey, &expected_bids);
        assert_eq!(run.outcome, reference);
        assert_eq!((run.outcome.winners.clone(), run.outcome.price), (vec![1], 900));
        assert_eq!(run.outcome.excluded, vec![3, 4, 5, 6, 7]);

        // Wrong winner, wrong price, wrong exclusions: refused.
        for wrong in [
            tacit_auction::Outcome { winners: vec![2], ..run.outcome.clone() },
            tacit_auction::Outcome { price: 899, ..run.outcome.clone() },
            tacit_auction::Outcome { excluded: vec![3, 4, 5, 6], ..run.outcome.clone() },
        ] {
            let bad = tacit_auction::node::NodeRun { outcome: wrong, ..run.clone() };
            let err = auction.settle(&bad).unwrap_err();
            assert!(matches!(err, AuctionError::Rejected(ref m) if m.contains("ProofRejected")), "{err:?}");
        }
        let receipt = auction.settle(&run).unwrap();
        println!("settle execution gas with 5 excluded bidders: {}", receipt.execution_gas);
        assert_eq!(receipt.excluded, vec![3, 4, 5, 6, 7]);
        let settled = auction.chain.with(move |ch| chain::read_settlement(ch, address)).unwrap().unwrap().unwrap();
        assert_eq!((settled.price, settled.winners), (900, vec![1]));
        let err = auction.settle(&run).unwrap_err();
        assert!(matches!(err, AuctionError::Rejected(ref m) if m.contains("AlreadySettled")), "{err:?}");

        // Another auction with the same verifier and the same commitments refuses this proof.
        let twin = auction.deploy_twin().unwrap();
        let bids = auction.bids().unwrap();
        for (c, who) in bids.commitments.iter().zip(&bids.bidders) {
            let (c, who) = (*c, *who);
            auction.chain.with(move |ch| chain::commit(ch, twin, who, c)).unwrap().unwrap();
        }
        auction.chain.with(|ch| ch.set_timestamp(ch.timestamp() + 7200)).unwrap().unwrap();
        let proof = tacit_prover::snarkjs::EvmProof::new(&run.proof, &run.public_inputs);
        let outcome = run.outcome.clone();
        let err = auction
            .chain
            .with(move |ch| {
                let from = ch.caller();
                chain::settle(ch, from, twin, &outcome, &proof)
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AuctionError::Rejected(ref m) if m.contains("ProofRejected")), "{err:?}");
        auction.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn an_offline_node_stops_the_run_naming_it_and_the_auction_runs_once_it_is_back() {
    let rt = runtime();
    rt.block_on(async {
        let dir = scratch("offline");
        let mut config = LocalAuctionConfig::new(AuctionKind::FirstPrice, 3, &dir);
        config.quic.recv_timeout = Duration::from_secs(2);
        config.setup_seed = Some(8);
        let auction = LocalAuction::create(config).await.unwrap();
        let mut r = rng(2);
        for bid in [40u64, 70] {
            auction.bid(&BidderKey::random(&mut r), &BidSecret::new(bid, &mut r)).await.unwrap();
        }
        auction.close().unwrap();
        let p = |i| PartyId::new(i).unwrap();
        let err = auction.run_with(&[p(1), p(2)]).await.unwrap_err();
        let names_node_3 = matches!(
            &err,
            AuctionError::Mpc(MpcError::Transport(TransportError::Timeout { peer, .. })) if *peer == p(3)
        ) || err.to_string().contains("waiting for P3");
        assert!(names_node_3, "{err}");
        let run = auction.run().await.unwrap();
        assert_eq!((run.outcome.winners.clone(), run.outcome.price), (vec![1], 70));
        let receipt = auction.settle(&run).unwrap();
        println!("settle execution gas with no excluded bidder: {}", receipt.execution_gas);
        assert!(receipt.excluded.is_empty());
        auction.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn share_packets_are_authenticated_and_validated() {
    let mut r = rng(3);
    let key = BidderKey::random(&mut r);
    let secret = BidSecret::new(77, &mut r);
    let address = revm::primitives::Address::repeat_byte(9);
    let packets = tacit_auction::bidder::packets(&key, address, 0, &secret, 3, 1, &mut r).unwrap();
    let (s, signer) = Submission::open(&packets[0]).unwrap();
    assert_eq!((s.index, s.node.get(), signer), (0, 1, key.address()));
    assert!(format!("{s:?}").contains("<redacted>") && format!("{secret:?}").contains("<redacted>"));
    // Truncated, extended, flipped, or a share >= r.
    assert!(Submission::open(&packets[0][..packets[0].len() - 1]).is_err());
    let mut long = packets[0].clone();
    long.push(0);
    assert!(Submission::open(&long).is_err());
    let mut flipped = packets[0].clone();
    flipped[40] ^= 1;
    assert!(Submission::open(&flipped).map(|(_, who)| who != key.address()).unwrap_or(true));
    let mut big = packets[0].clone();
    big[31..63].copy_from_slice(&[0xff; 32]);
    assert!(Submission::open(&big).is_err());
    let _ = Fr::MODULUS;
}
