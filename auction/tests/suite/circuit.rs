//! The auction circuit on the three backends against the plaintext reference rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::Fr;
use rand::{Rng, SeedableRng};
use tacit_auction::circuit::{accumulator, auction_outcome, bid_bits, unpack, PublicData, Secrets, Shape};
use tacit_auction::outcome::{pack, reference_outcome, AuctionKind};
use tacit_circuits::gadgets::commitment;
use tacit_circuits::mpc::Mpc;
use tacit_circuits::{Plain, R1cs};
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::{Security, Shamir};

struct Case {
    kind: AuctionKind,
    capacity: usize,
    bids: Vec<Option<u64>>,
    salts: Vec<Fr>,
    public: PublicData,
}

fn case(kind: AuctionKind, capacity: usize, bids: Vec<Option<u64>>, seed: u64) -> Case {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let salts: Vec<Fr> = bids.iter().map(|_| Fr::from(rng.gen::<u64>())).collect();
    let commitments = bids
        .iter()
        .zip(&salts)
        .map(|(b, s)| match b {
            Some(b) => commitment(Fr::from(*b), *s).unwrap(),
            // An invalid bidder's commitment is anything; here a hash of something else.
            None => commitment(Fr::from(u64::MAX), Fr::from(7u64)).unwrap() + Fr::from(1u64),
        })
        .collect();
    let candidates = bids.iter().map(Option::is_some).collect();
    Case { kind, capacity, bids, salts, public: PublicData { seed: Fr::from(0xabcdu64), commitments, candidates } }
}

/// Bids and salts of the candidates (the bidders with a bid).
fn candidate_secrets(c: &Case) -> (Vec<Fr>, Vec<Fr>) {
    c.bids.iter().zip(&c.salts).filter_map(|(b, s)| b.map(|b| (Fr::from(b), *s))).unzip()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The public inputs the reference rule gives over the bidders whose `(bid, salt)` opens
/// their commitment.
fn expected(c: &Case) -> Vec<Fr> {
    let opened: Vec<Option<u64>> = c
        .bids
        .iter()
        .zip(&c.salts)
        .zip(&c.public.commitments)
        .map(|((b, s), com)| b.filter(|b| commitment(Fr::from(*b), *s).unwrap() == *com))
        .collect();
    let valid: Vec<bool> = opened.iter().map(Option::is_some).collect();
    let reference = reference_outcome(c.kind, &opened);
    vec![
        accumulator(c.public.seed, &c.public.commitments, &valid).unwrap(),
        pack(reference.price, &reference.winners, c.kind.units()).unwrap(),
    ]
}

fn plain(c: &Case) -> Vec<Fr> {
    let (bids, salts) = candidate_secrets(c);
    let shape = Shape { kind: c.kind, capacity: c.capacity };
    let secrets = Secrets { bids: &bids, salts: &salts, bits: None };
    runtime().block_on(auction_outcome(&mut Plain::<Fr>::new(), shape, &c.public, Some(secrets))).unwrap().public_inputs
}

#[test]
fn every_kind_matches_the_reference_rule_on_random_bids_ties_and_equal_bids() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let kinds = [AuctionKind::FirstPrice, AuctionKind::Vickrey, AuctionKind::Uniform { units: 2 }];
    let mut cases = Vec::new();
    for (k, kind) in kinds.iter().enumerate() {
        // Random bids with an invalid bidder and an empty slot.
        let mut bids: Vec<Option<u64>> = (0..6).map(|_| Some(rng.gen::<u64>())).collect();
        bids[3] = None;
        cases.push(case(*kind, 7, bids, k as u64));
        // Ties at the top, and all-equal bids.
        cases.push(case(*kind, 5, vec![Some(10), Some(30), Some(30), Some(5), Some(30)], 10 + k as u64));
        cases.push(case(*kind, 4, vec![Some(8); 4], 20 + k as u64));
        // Extremes: zero and the largest bid; a single bidder; nobody valid.
        cases.push(case(*kind, 3, vec![Some(0), Some(u64::MAX), Some(0)], 30 + k as u64));
        cases.push(case(*kind, 2, vec![Some(42)], 40 + k as u64));
        cases.push(case(*kind, 2, vec![None, None], 50 + k as u64));
    }
    for c in &cases {
        let out = plain(c);
        assert_eq!(out, expected(c), "{} {:?}", c.kind, c.bids);
        let (price, winners) = unpack(out[1], c.kind.units()).unwrap();
        let reference = reference_outcome(c.kind, &c.bids);
        assert_eq!((price, winners), (reference.price, reference.winners));
    }
}

#[test]
fn exclusions_in_several_words_fold_like_the_contract() {
    // 300 slots: bidders 5 and 250 excluded (words 0 and 1), 299 inactive.
    let bids: Vec<Option<u64>> = (0..299).map(|i| if i == 5 || i == 250 { None } else { Some(i as u64) }).collect();
    let c = case(AuctionKind::FirstPrice, 300, bids, 5);
    assert_eq!(tacit_auction::circuit::exclusion_words(&c.public.candidates).len(), 2);
    assert_eq!(plain(&c), expected(&c));
}

#[test]
fn r1cs_is_satisfied_and_its_shape_does_not_depend_on_the_data() {
    let shape = Shape { kind: AuctionKind::Vickrey, capacity: 4 };
    let rt = runtime();
    let mut setup = R1cs::<Fr>::new_setup();
    rt.block_on(auction_outcome(&mut setup, shape, &PublicData::for_setup(), None)).unwrap();
    for c in [case(shape.kind, 4, vec![Some(3), None, Some(9)], 1), case(shape.kind, 4, vec![Some(1); 4], 2)] {
        let (bids, salts) = candidate_secrets(&c);
        let mut prove = R1cs::<Fr>::new_prove();
        let secrets = Secrets { bids: &bids, salts: &salts, bits: None };
        let out = rt.block_on(auction_outcome(&mut prove, shape, &c.public, Some(secrets))).unwrap();
        assert_eq!(out.public_inputs, expected(&c));
        assert!(prove.is_satisfied().unwrap());
        assert_eq!(prove.num_constraints(), setup.num_constraints());
    }
}

#[test]
fn a_candidate_whose_dealing_does_not_open_its_commitment_is_excluded() {
    // Bidder 1 (the highest) deals a salt its commitment does not open: it is left out, on
    // every backend, and the others are ranked without it.
    let mut c = case(AuctionKind::Vickrey, 4, vec![Some(3), Some(40), Some(4)], 3);
    c.salts[1] += Fr::from(1u64);
    let (bids, salts) = candidate_secrets(&c);
    let shape = Shape { kind: c.kind, capacity: c.capacity };
    let secrets = Secrets { bids: &bids, salts: &salts, bits: None };
    let out = runtime().block_on(auction_outcome(&mut Plain::<Fr>::new(), shape, &c.public, Some(secrets))).unwrap();
    assert_eq!(out.valid, vec![true, false, true]);
    assert_eq!(out.public_inputs, expected(&c));
    assert_eq!(unpack(out.public_inputs[1], 1).unwrap(), (3, vec![2]));
    let mut prove = R1cs::<Fr>::new_prove();
    let out = runtime().block_on(auction_outcome(&mut prove, shape, &c.public, Some(secrets))).unwrap();
    assert_eq!(out.valid, vec![true, false, true]);
    assert!(prove.is_satisfied().unwrap());
}

#[test]
fn a_candidate_bid_of_2_pow_64_is_refused_by_the_circuit() {
    let c = case(AuctionKind::FirstPrice, 2, vec![Some(1), Some(2)], 6);
    let bids = vec![Fr::from(1u64), Fr::from(u128::from(u64::MAX) + 1)];
    let shape = Shape { kind: c.kind, capacity: c.capacity };
    let secrets = Secrets { bids: &bids, salts: &c.salts, bits: None };
    assert!(runtime().block_on(auction_outcome(&mut Plain::<Fr>::new(), shape, &c.public, Some(secrets))).is_err());
}

#[test]
fn mpc_backend_reveals_the_same_outcome() {
    let mut c = case(AuctionKind::Uniform { units: 2 }, 5, vec![Some(7), Some(700), None, Some(700), Some(9)], 4);
    // The last candidate's salt does not open its commitment: excluded inside the MPC.
    c.salts[4] += Fr::from(1u64);
    let (bids, salts) = candidate_secrets(&c);
    let bits = bid_bits(&bids).unwrap();
    let shamir = Shamir::<Fr>::new(3, 1).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let deal = |values: &[Fr], rng: &mut rand_chacha::ChaCha20Rng| -> Vec<Vec<Fr>> {
        let per_value: Vec<Vec<Fr>> = values.iter().map(|v| shamir.share(*v, 1, rng)).collect();
        (0..3).map(|p| per_value.iter().map(|s| s[p]).collect()).collect()
    };
    let bid_shares = deal(&bids, &mut rng);
    let salt_shares = deal(&salts, &mut rng);
    let bit_shares = deal(&bits, &mut rng);
    let shape = Shape { kind: c.kind, capacity: c.capacity };
    let public = c.public.clone();
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |e| {
        let me = e.id().index();
        let (bids, salts, bits) = (bid_shares[me].clone(), salt_shares[me].clone(), bit_shares[me].clone());
        let public = public.clone();
        async move {
            let mut b = Mpc::new(e);
            let secrets = Secrets { bids: &bids, salts: &salts, bits: Some(&bits) };
            let out = auction_outcome(&mut b, shape, &public, Some(secrets))
                .await
                .map_err(|e| tacit_mpc_engine::MpcError::Usage(e.to_string()))?;
            let rounds = b.engine().stats().rounds;
            Ok((out, rounds))
        }
    }));
    for r in results {
        let (out, rounds) = r.unwrap();
        assert_eq!(out.valid, vec![true, true, false, true, false]);
        assert_eq!(out.public_inputs, expected(&c));
        assert!(rounds > 0);
    }
}
