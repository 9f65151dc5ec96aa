//! PSI against the plaintext oracle, cheating nodes, leakage (transcript scans), and real QUIC.

use ark_ff::{BigInteger, PrimeField};
use rand::{Rng, SeedableRng};
use tacit_mpc_engine::{Check, MpcError, PartyId};
use tacit_psi::oprf::OprfError;
use tacit_psi::protocol::Cheat;
use tacit_psi::{oracle, run_in_memory, InputSet, Item, Mode, PsiError, PsiOutput, RunOptions};

fn item(s: &str) -> Item {
    Item::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

/// `m` random sets of `size` items each, with `common` items planted in all of them and
/// `pair` items shared by the first two only.
fn planted(m: usize, size: usize, common: usize, pair: usize, seed: u64) -> Vec<InputSet> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..m)
        .map(|c| {
            let mut pairs = Vec::new();
            for i in 0..common {
                pairs.push((item(&format!("common-{i}")), rng.gen_range(0..1000u64)));
            }
            if c < 2 {
                for i in 0..pair {
                    pairs.push((item(&format!("pair-{i}")), rng.gen_range(0..1000u64)));
                }
            }
            while pairs.len() < size {
                let addr: [u8; 20] = rng.gen();
                pairs.push((item(&format!("0x{}", hex::encode(addr))), rng.gen_range(0..1000u64)));
            }
            // Shuffle so the planted items are not first.
            for i in (1..pairs.len()).rev() {
                let j = rng.gen_range(0..=i);
                pairs.swap(i, j);
            }
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn sorted(out: Vec<PsiOutput>) -> Vec<PsiOutput> {
    out.into_iter()
        .map(|o| match o {
            PsiOutput::Set(mut v) => {
                v.sort();
                PsiOutput::Set(v)
            }
            other => other,
        })
        .collect()
}

async fn check_against_oracle(n: usize, t: usize, inputs: &[InputSet], mode: Mode) -> u64 {
    let run = run_in_memory(n, inputs, &RunOptions::new(t, mode)).await;
    let (outputs, report) = run.into_result().unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert_eq!(sorted(outputs), sorted(oracle(inputs, mode)), "{mode:?}");
    report.intersection_size
}

const MODES: [Mode; 4] = [Mode::Set, Mode::Cardinality, Mode::Sum { min_size: 3 }, Mode::Sum { min_size: 1000 }];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_match_the_oracle_with_planted_overlaps() {
    let inputs = planted(3, 40, 7, 5, 1);
    for mode in MODES {
        assert_eq!(check_against_oracle(3, 1, &inputs, mode).await, 7);
    }
    // Two institutions, five nodes at threshold 2.
    let inputs = planted(2, 30, 4, 0, 2);
    for mode in [Mode::Set, Mode::Sum { min_size: 1 }] {
        assert_eq!(check_against_oracle(5, 2, &inputs, mode).await, 4);
    }
    // Four nodes at threshold 1: node 4 is outside every shuffle subset and beyond the `t`
    // parties with pseudorandom shares, so the members send it its new shares.
    let inputs = planted(3, 24, 5, 2, 6);
    for mode in [Mode::Set, Mode::Cardinality] {
        assert_eq!(check_against_oracle(4, 1, &inputs, mode).await, 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_identical_sets_and_duplicates() {
    // Empty intersection (different sizes too).
    let mut inputs = planted(3, 20, 0, 3, 3);
    inputs.push(InputSet::default());
    for mode in MODES {
        assert_eq!(check_against_oracle(3, 1, &inputs, mode).await, 0);
    }
    // Identical sets.
    let one = planted(1, 25, 0, 0, 4).pop().unwrap_or_default();
    let inputs = vec![one.clone(), one.clone(), one];
    for mode in MODES {
        assert_eq!(check_against_oracle(3, 1, &inputs, mode).await, 25);
    }
    // Duplicates within one input are merged (values added); addresses match across case.
    let a = InputSet::parse_csv(b"item,value\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,5\nx,1\nx,2\ny,1\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let b = InputSet::parse_csv(b"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed,10\nx,4\nz,9\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let c = InputSet::parse_csv(b"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED,100\nx,1000\nx\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((a.duplicates(), c.duplicates()), (1, 1));
    let inputs = vec![a, b, c];
    assert_eq!(check_against_oracle(3, 1, &inputs, Mode::Sum { min_size: 2 }).await, 2);
    let run = run_in_memory(3, &inputs, &RunOptions::new(1, Mode::Sum { min_size: 2 })).await;
    let (outs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outs.first(), Some(&PsiOutput::Sum(Some(5 + 10 + 100 + 3 + 4 + 1000))));
}

async fn cheat(mode: Mode, who: u16, cheat: Cheat) -> tacit_psi::LocalRun {
    let inputs = planted(3, 16, 4, 2, 5);
    let mut options = RunOptions::new(1, mode);
    options.cheat = PartyId::new(who).map(|p| (p, cheat));
    run_in_memory(3, &inputs, &options).await
}

/// Whether node `who` answers institution `c`'s OPRF.
fn answered_by(c: usize, n: usize, t: usize, who: u16) -> bool {
    tacit_psi::oprf::answering_nodes(c, n, t).iter().any(|p| p.get() == who)
}

/// A node answering the OPRF with a wrong key share is named by every institution it answers
/// (its batch proof fails against its public key share), with 3 nodes and with 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cheating_in_the_oprf_is_named() {
    for (n, t, who) in [(3usize, 1usize, 2u16), (5, 2, 4)] {
        let inputs = planted(3, 16, 4, 2, 5);
        let mut options = RunOptions::new(t, Mode::Cardinality);
        options.cheat = PartyId::new(who).map(|p| (p, Cheat::OprfResponse));
        let run = run_in_memory(n, &inputs, &options).await;
        // Every institution the cheater answers names it; the others fail with the query.
        let mut named = 0;
        for (c, r) in run.institutions.iter().enumerate() {
            if answered_by(c, n, t, who) {
                match r {
                    Err(PsiError::Oprf(OprfError::WrongAnswers { nodes })) => {
                        assert_eq!(nodes, &PartyId::new(who).into_iter().collect::<Vec<_>>(), "n = {n}");
                    }
                    other => panic!("n = {n}: {other:?}"),
                }
                named += 1;
            } else {
                assert!(r.is_err(), "n = {n}: {r:?}");
            }
        }
        assert!(named >= 1);
        assert!(run.nodes.iter().all(Result::is_err));
    }
}

/// A node that publishes a wrong public key share `K_i` (answering consistently with it, so
/// its batch proof verifies against it) is named by every institution it answers, with 3
/// nodes and with 5: the `K_i` the DKG's commitments give, in the table most nodes send,
/// differ. A node that
/// sends a table framing another node is named as the minority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_publishing_a_wrong_key_share_is_named() {
    for (n, t, who, cheat) in
        [(3usize, 1usize, 2u16, Cheat::KeyShare), (5, 2, 5, Cheat::KeyShare), (3, 1, 1, Cheat::KeyTable)]
    {
        let inputs = planted(3, 16, 4, 2, 5);
        let mut options = RunOptions::new(t, Mode::Set);
        options.cheat = PartyId::new(who).map(|p| (p, cheat));
        let run = run_in_memory(n, &inputs, &options).await;
        // The table goes to every institution; a key share only to those the node answers.
        let mut named = 0;
        for (c, r) in run.institutions.iter().enumerate() {
            if cheat == Cheat::KeyShare && !answered_by(c, n, t, who) {
                assert!(r.is_err(), "n = {n}: {r:?}");
                continue;
            }
            match (cheat, r) {
                (Cheat::KeyShare, Err(PsiError::Oprf(OprfError::KeyShare { nodes })))
                | (Cheat::KeyTable, Err(PsiError::Oprf(OprfError::KeyTable { nodes }))) => {
                    assert_eq!(nodes, &PartyId::new(who).into_iter().collect::<Vec<_>>(), "n = {n}, {cheat:?}");
                }
                other => panic!("n = {n}: {other:?}"),
            }
            named += 1;
        }
        assert!(named >= 1);
        assert!(run.nodes.iter().all(Result::is_err));
    }
}

/// A node dealing another node a bad share in the key generation is named by every honest
/// node before any institution's item is touched; the query aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_cheating_in_the_key_generation_is_named() {
    let run = cheat(Mode::Cardinality, 3, Cheat::KeyDeal).await;
    for r in run.nodes.iter().take(2) {
        match r {
            Err(PsiError::Dealer { dealer, .. }) => assert_eq!(dealer.get(), 3),
            other => panic!("{other:?}"),
        }
    }
    assert!(run.institutions.iter().all(Result::is_err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cheating_in_the_mpc_is_detected() {
    // A wrong re-sharing in the shuffle (a member's permuted part, or its message to another
    // member): caught by the multiset check, or by the consistency of its opening (a member's
    // spoilt share is off the others' polynomial), before any tag opens.
    // (A wrong message in a subset other than the last only spoils the share of a party that
    // the next subset does not use, so the message cheat is made in every subset.)
    for (node, how) in [(1, Cheat::ShuffleInput), (2, Cheat::ShuffleMessage), (1, Cheat::ShuffleMessage)] {
        let run = cheat(Mode::Set, node, how).await;
        for r in &run.nodes {
            assert!(
                matches!(
                    r,
                    Err(PsiError::Mpc(MpcError::Cheating {
                        check: Check::OutputVerification | Check::OpeningConsistency,
                        ..
                    })) | Err(PsiError::Mpc(MpcError::PeerAborted { .. }))
                ),
                "{how:?} by node {node}: {r:?}"
            );
        }
        assert!(run.institutions.iter().all(Result::is_err));
    }
    // An additive attack on a multiplication: caught by the engine's verification.
    let run = cheat(Mode::Sum { min_size: 1 }, 3, Cheat::Multiplication).await;
    assert!(run
        .nodes
        .iter()
        .any(|r| matches!(r, Err(PsiError::Mpc(MpcError::Cheating { check: Check::Multiplication, .. })))));
    assert!(run.institutions.iter().all(Result::is_err));
    // Bad mask shares to an institution: it detects the inconsistent sharing.
    let run = cheat(Mode::Cardinality, 2, Cheat::MaskShare).await;
    assert!(matches!(run.institutions.first(), Some(Err(PsiError::Nodes { .. }))));
    // A node reporting a wrong result: the institutions see the disagreement.
    for mode in [Mode::Set, Mode::Cardinality, Mode::Sum { min_size: 1 }] {
        let run = cheat(mode, 3, Cheat::Output).await;
        for r in &run.institutions {
            assert!(matches!(r, Err(PsiError::Nodes { .. })), "{r:?}");
        }
    }
}

fn montgomery(v: u64) -> Vec<u8> {
    use tacit_mpc_engine::WireField;
    let mut out = vec![0u8; ark_bn254::Fr::WIRE_BYTES];
    ark_bn254::Fr::from(v).write_wire(&mut out);
    out
}

fn canonical(v: u64) -> Vec<u8> {
    ark_bn254::Fr::from(v).into_bigint().to_bytes_le()
}

/// What each party receives, scanned for what it must not learn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leakage_per_mode() {
    // Distinctive values so a leaked value would be found.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let inputs: Vec<InputSet> = (0..3)
        .map(|c| {
            let pairs = (0..20).map(|i| {
                let name = if i < 5 { format!("shared-{i}") } else { format!("only-{c}-{i}") };
                (item(&name), rng.gen_range(1u64 << 40..1u64 << 50))
            });
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    for mode in [Mode::Set, Mode::Cardinality, Mode::Sum { min_size: 3 }] {
        let mut options = RunOptions::new(1, mode);
        options.record = true;
        let run = run_in_memory(3, &inputs, &options).await;
        let inst_logs = run.institution_transcripts.clone();
        let node_logs = run.node_transcripts.clone();
        let (outputs, report) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.histogram, vec![45, 0, 5]);
        // In sum mode the nodes never see the released sum.
        if let Some(PsiOutput::Sum(Some(total))) = outputs.first() {
            let total = u64::try_from(*total).unwrap_or_default();
            for log in &node_logs {
                assert!(!log.contains(&montgomery(total)) && !log.contains(&canonical(total)), "a node saw the sum");
            }
        }
        // Nodes: no item (raw or as its curve hash), no tag linked to an institution, no value.
        for log in &node_logs {
            assert!(!log.is_empty());
            for set in &inputs {
                for (item, value) in set.items().iter().zip(set.values()) {
                    assert!(!log.contains(item.canonical()), "{mode:?}: node saw an item");
                    assert!(!log.contains(item.display().as_bytes()));
                    let h = tacit_psi::oprf::hash_to_curve(item.canonical()).unwrap_or_default();
                    assert!(!log.contains(&tacit_psi::oprf::encode_points(&[h])));
                    assert!(!log.contains(&montgomery(*value)), "{mode:?}: node saw a value");
                    assert!(!log.contains(&canonical(*value)));
                }
            }
        }
        // Institutions: nothing of the others' items or values; in set mode only the
        // intersection's tags; in sum mode no count; in cardinality mode only the count.
        for (c, log) in inst_logs.iter().enumerate() {
            for (d, set) in inputs.iter().enumerate() {
                if c == d {
                    continue;
                }
                for (item, value) in set.items().iter().zip(set.values()) {
                    assert!(!log.contains(item.canonical()));
                    assert!(!log.contains(&montgomery(*value)), "{mode:?}: institution {c} saw a value of {d}");
                }
            }
            match (mode, outputs.get(c)) {
                (Mode::Set, Some(PsiOutput::Set(v))) => assert_eq!(v.len(), 5),
                (Mode::Cardinality, Some(PsiOutput::Cardinality(k))) => assert_eq!(*k, 5),
                (Mode::Sum { .. }, Some(PsiOutput::Sum(Some(_)))) => {
                    assert!(!log.contains(&5u64.to_le_bytes()), "sum mode must not send the count");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

/// The nodes over real QUIC with mutual TLS on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic() {
    let transports =
        tacit_mpc_engine::simulate::local_quic_cluster(3, Default::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let inputs = planted(3, 64, 9, 4, 11);
    let mode = Mode::Sum { min_size: 2 };
    let run = tacit_psi::run_local(transports.clone(), &inputs, &RunOptions::new(1, mode)).await;
    let (outs, report) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outs, oracle(&inputs, mode));
    assert_eq!(report.intersection_size, 9);
    assert!(report.bytes_sent > 0);
    for t in transports {
        t.shutdown().await;
    }
}

/// An institution that sends one tag twice is caught: a tag seen more than `m` times, or an
/// `m`-group that lacks some institution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_institution_sending_a_duplicate_tag_is_caught() {
    let sets = |first: &str| -> Vec<InputSet> {
        (0..3)
            .map(|c| {
                let mut pairs = vec![(item(first), 1)];
                if c == 0 {
                    pairs = vec![(item(first), 1), (item("own-0"), 1)];
                }
                if c == 1 {
                    pairs.push((item("pair"), 1));
                }
                pairs.extend((0..4).map(|i| (item(&format!("all-{i}")), 1)));
                pairs.extend((0..4).map(|i| (item(&format!("x-{c}-{i}")), 1)));
                InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    };
    // Institution 0 doubles an item every set has: the tag occurs four times.
    let mut options = RunOptions::new(1, Mode::Cardinality);
    options.duplicating_institution = Some(0);
    let run = run_in_memory(3, &sets("all-9"), &options).await;
    let all_9: Vec<InputSet> = sets("all-9");
    assert_eq!(oracle(&all_9, Mode::Cardinality).first(), Some(&PsiOutput::Cardinality(5)));
    for r in &run.nodes {
        assert!(
            matches!(r, Err(PsiError::DuplicateTag(_)) | Err(PsiError::Mpc(MpcError::PeerAborted { .. }))),
            "{r:?}"
        );
    }
    assert!(run.institutions.iter().all(Result::is_err));
    // Institution 0 doubles "pair", which only institution 1 also has: a group of three
    // without institution 2, caught by the code check.
    let mut with_pair = sets("pair");
    if let Some(second) = with_pair.get_mut(1) {
        *second = InputSet::from_pairs(vec![(item("pair"), 1), (item("all-0"), 1), (item("all-1"), 1)])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    if let Some(third) = with_pair.get_mut(2) {
        *third = InputSet::from_pairs(vec![(item("all-0"), 1), (item("all-1"), 1), (item("z"), 1)])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let run = run_in_memory(3, &with_pair, &options).await;
    for r in &run.nodes {
        assert!(
            matches!(r, Err(PsiError::DuplicateTag(_)) | Err(PsiError::Mpc(MpcError::PeerAborted { .. }))),
            "{r:?}"
        );
    }
    // Honest, the same sets pass.
    let run = run_in_memory(3, &with_pair, &RunOptions::new(1, Mode::Cardinality)).await;
    let (outs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outs, oracle(&with_pair, Mode::Cardinality));
}

fn commit_all(sets: &[InputSet]) -> (Vec<tacit_psi::CommittedInput>, Vec<ark_bn254::Fr>) {
    sets.iter().map(|s| tacit_psi::CommittedInput::commit(s.clone()).unwrap_or_else(|e| panic!("{e}"))).unzip()
}

/// Committed queries: the nodes recompute each published commitment on shares; the result
/// matches the oracle, and an input that does not open its commitment is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_inputs_are_checked() {
    let sets = planted(3, 24, 6, 3, 21);
    let (openings, commitments) = commit_all(&sets);
    for mode in [Mode::Cardinality, Mode::Sum { min_size: 2 }, Mode::Sum { min_size: 100 }] {
        let transports = tacit_mpc_engine::transport::memory::MemoryTransport::network(3)
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        let run = tacit_psi::run_local_committed(transports, &openings, &commitments, &RunOptions::new(1, mode)).await;
        let (outs, report) = run.into_result().unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(outs, oracle(&sets, mode));
        assert_eq!(report.intersection_size, 6);
    }
    // Institution 1 changes one value after committing.
    let mut changed = sets.clone();
    if let Some(s) = changed.get_mut(1) {
        let pairs: Vec<(Item, u64)> =
            s.items().iter().cloned().zip(s.values().iter().enumerate().map(|(i, v)| v + u64::from(i == 0))).collect();
        *s = InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"));
    }
    let (mut bad_openings, _) = commit_all(&changed);
    bad_openings.truncate(2);
    let mut openings_mixed = vec![openings.first().cloned().unwrap_or_else(|| unreachable!())];
    openings_mixed.push(bad_openings.pop().unwrap_or_else(|| unreachable!()));
    openings_mixed.push(openings.get(2).cloned().unwrap_or_else(|| unreachable!()));
    let transports =
        tacit_mpc_engine::transport::memory::MemoryTransport::network(3).into_iter().map(std::sync::Arc::new).collect();
    let run = tacit_psi::run_local_committed(
        transports,
        &openings_mixed,
        &commitments,
        &RunOptions::new(1, Mode::Cardinality),
    )
    .await;
    assert!(run.nodes.iter().any(|r| matches!(r, Err(PsiError::Commitment { institution: 1 }))), "{:?}", run.nodes);
    assert!(run.nodes.iter().all(|r| matches!(
        r,
        Err(PsiError::Commitment { institution: 1 }) | Err(PsiError::Mpc(MpcError::PeerAborted { .. }))
    )));
    assert!(run.institutions.iter().all(Result::is_err));
    // Set mode has no committed variant.
    let transports =
        tacit_mpc_engine::transport::memory::MemoryTransport::network(3).into_iter().map(std::sync::Arc::new).collect();
    let run = tacit_psi::run_local_committed(transports, &openings, &commitments, &RunOptions::new(1, Mode::Set)).await;
    assert!(run.nodes.iter().all(|r| matches!(r, Err(PsiError::Usage(_)))));
}

/// Committed queries: nothing of the items (as field elements), values or sum reaches a
/// node; institutions receive only shares and the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_leakage() {
    use tacit_mpc_engine::WireField;
    let sets = planted(3, 12, 3, 2, 31);
    let (openings, commitments) = commit_all(&sets);
    let mut options = RunOptions::new(1, Mode::Sum { min_size: 1 });
    options.record = true;
    let transports =
        tacit_mpc_engine::transport::memory::MemoryTransport::network(3).into_iter().map(std::sync::Arc::new).collect();
    let run = tacit_psi::run_local_committed(transports, &openings, &commitments, &options).await;
    let node_logs = run.node_transcripts.clone();
    let inst_logs = run.institution_transcripts.clone();
    let (outs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    let Some(PsiOutput::Sum(Some(total))) = outs.first().cloned() else { panic!("no sum") };
    let encodings = |x: ark_bn254::Fr| {
        let mut m = vec![0u8; ark_bn254::Fr::WIRE_BYTES];
        x.write_wire(&mut m);
        [m, x.into_bigint().to_bytes_le()]
    };
    for log in &node_logs {
        for total in encodings(ark_bn254::Fr::from(u64::try_from(total).unwrap_or_default())) {
            assert!(!log.contains(&total));
        }
        for (set, opening) in sets.iter().zip(&openings) {
            for enc in encodings(opening.expose_salt()) {
                assert!(!log.contains(&enc), "a node saw a salt");
            }
            for item in set.items() {
                for enc in encodings(tacit_psi::committed::item_field(item)) {
                    assert!(!log.contains(&enc), "a node saw an item");
                }
            }
        }
    }
    for (c, log) in inst_logs.iter().enumerate() {
        for (d, set) in sets.iter().enumerate() {
            if c != d {
                for item in set.items() {
                    for enc in encodings(tacit_psi::committed::item_field(item)) {
                        assert!(!log.contains(&enc));
                    }
                }
            }
        }
    }
}

/// `m` sets: each of `shared` items is held by a random subset of the institutions (so items
/// sit in every number of sets), plus `own` items of each institution alone.
fn random_subsets(m: usize, shared: usize, own: usize, seed: u64) -> Vec<InputSet> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let holders: Vec<Vec<bool>> = (0..shared).map(|_| (0..m).map(|_| rng.gen_bool(0.6)).collect()).collect();
    (0..m)
        .map(|c| {
            let mut pairs: Vec<(Item, u64)> = holders
                .iter()
                .enumerate()
                .filter(|(_, h)| h.get(c).copied().unwrap_or(false))
                .map(|(i, _)| (item(&format!("shared-{i}")), rng.gen_range(0..1000u64)))
                .collect();
            pairs.extend((0..own).map(|i| (item(&format!("own-{c}-{i}")), 1)));
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

fn count_in_at_least(inputs: &[InputSet], q: usize) -> u64 {
    let mut counts = std::collections::HashMap::new();
    for set in inputs {
        for i in set.items() {
            *counts.entry(i.clone()).or_insert(0usize) += 1;
        }
    }
    counts.values().filter(|c| **c >= q).count() as u64
}

/// `set` mode "in at least q of the m sets" against the plaintext oracle, for 3 and 4
/// institutions; q = m is the intersection; q outside 2..=m is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_in_at_least_q_sets_matches_the_oracle() {
    for (m, seed) in [(3usize, 41u64), (4, 42)] {
        let inputs = random_subsets(m, 24, 6, seed);
        for q in 2..=m {
            let mode = Mode::SetAtLeast { min_sets: q };
            let expected = sorted(oracle(&inputs, mode));
            if q < m {
                assert_ne!(expected, sorted(oracle(&inputs, Mode::Set)), "the sets must exercise q < m");
            } else {
                assert_eq!(expected, sorted(oracle(&inputs, Mode::Set)));
            }
            let run = run_in_memory(3, &inputs, &RunOptions::new(1, mode)).await;
            let (outs, report) = run.into_result().unwrap_or_else(|e| panic!("m = {m}, q = {q}: {e}"));
            assert_eq!(sorted(outs), expected, "m = {m}, q = {q}");
            assert_eq!(report.selected_size, count_in_at_least(&inputs, q));
            assert_eq!(report.intersection_size, count_in_at_least(&inputs, m));
        }
    }
    let inputs = random_subsets(3, 8, 2, 43);
    for q in [0, 1, 4] {
        let run = run_in_memory(3, &inputs, &RunOptions::new(1, Mode::SetAtLeast { min_sets: q })).await;
        assert!(run.nodes.iter().all(|r| matches!(r, Err(PsiError::Usage(_)))), "q = {q}: {:?}", run.nodes);
    }
}

/// With q < m, a tag sent twice by one institution forms a group of q rows of one
/// institution: the pairwise-distinct check on the codes aborts the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_tag_is_caught_in_a_group_smaller_than_m() {
    // Institution 0's first item, "solo", is in no other set; it sends its tag in place of
    // its second item's, so "solo" would look like an item in 2 sets.
    let inputs: Vec<InputSet> = (0..3)
        .map(|c| {
            let mut pairs = if c == 0 { vec![(item("solo"), 1), (item("own-0"), 1)] } else { Vec::new() };
            pairs.extend((0..3).map(|i| (item(&format!("all-{i}")), 1)));
            if c > 0 {
                pairs.push((item("in-1-and-2"), 1));
            }
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mode = Mode::SetAtLeast { min_sets: 2 };
    let mut options = RunOptions::new(1, mode);
    options.duplicating_institution = Some(0);
    let run = run_in_memory(3, &inputs, &options).await;
    assert!(run.nodes.iter().any(|r| matches!(r, Err(PsiError::DuplicateTag(_)))), "{:?}", run.nodes);
    for r in &run.nodes {
        assert!(
            matches!(r, Err(PsiError::DuplicateTag(_)) | Err(PsiError::Mpc(MpcError::PeerAborted { .. }))),
            "{r:?}"
        );
    }
    assert!(run.institutions.iter().all(Result::is_err));
    // Honest, the same sets give the oracle's answer.
    let run = run_in_memory(3, &inputs, &RunOptions::new(1, mode)).await;
    let (outs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sorted(outs), sorted(oracle(&inputs, mode)));
}

/// `sum` mode range-checks every value on shares: an institution dealing 2^64 or p - 1 as a
/// value makes the query abort naming it (OPRF and committed paths), with nothing released;
/// the largest honest value, 2^64 - 1, passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sum_value_out_of_range_aborts_naming_the_institution() {
    use ark_bn254::Fr;
    // The institution deals the value for every item, so for intersection items too (only
    // those enter the sum and are checked).
    let inputs = planted(3, 12, 4, 2, 51);
    let (openings, honest_commitments) = commit_all(&inputs);
    let two_to_64 = Fr::from(u64::MAX) + Fr::from(1u64);
    for (who, value, committed) in [(1usize, two_to_64, false), (2, -Fr::from(1u64), false), (0, two_to_64, true)] {
        let mut options = RunOptions::new(1, Mode::Sum { min_size: 1 });
        options.out_of_range_value = Some((who, value));
        // Committed: the institution published a commitment to the out-of-range values.
        let mut commitments = honest_commitments.clone();
        if committed {
            let set = &openings[who].set;
            let items: Vec<Fr> = set.items().iter().map(tacit_psi::committed::item_field).collect();
            let values = vec![value; items.len()];
            commitments[who] = tacit_psi::committed::commitment_of_fields(&items, &values, openings[who].expose_salt())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let run = if committed {
            let transports = tacit_mpc_engine::transport::memory::MemoryTransport::network(3)
                .into_iter()
                .map(std::sync::Arc::new)
                .collect();
            tacit_psi::run_local_committed(transports, &openings, &commitments, &options).await
        } else {
            run_in_memory(3, &inputs, &options).await
        };
        let named = |r: &Result<_, PsiError>| matches!(r, Err(PsiError::ValueOutOfRange { institution }) if *institution == who);
        assert!(run.nodes.iter().any(named), "{:?}", run.nodes);
        for r in &run.nodes {
            assert!(named(r) || matches!(r, Err(PsiError::Mpc(MpcError::PeerAborted { .. }))), "{r:?}");
        }
        assert!(run.institutions.iter().all(Result::is_err));
    }
    // The largest value passes, and sums above 2^64 come out exact.
    let big: Vec<InputSet> = (0..3)
        .map(|c| {
            let pairs = vec![(item("big"), u64::MAX), (item(&format!("own-{c}")), u64::MAX)];
            InputSet::from_pairs(pairs).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mode = Mode::Sum { min_size: 1 };
    let run = run_in_memory(3, &big, &RunOptions::new(1, mode)).await;
    let (outs, _) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outs.first(), Some(&PsiOutput::Sum(Some(3 * u128::from(u64::MAX)))));
    assert_eq!(outs, oracle(&big, mode));
}

/// `set --min-sets q` with q < m: each institution receives exactly the answers to its own
/// blinded points, its input-mask shares and a list of as many tags as there are items in at
/// least q sets (nothing else, checked by length), and no other institution's item; nodes
/// see no item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leakage_with_min_sets() {
    let (n, q) = (3usize, 2usize);
    let inputs = random_subsets(3, 20, 5, 44);
    let mut options = RunOptions::new(1, Mode::SetAtLeast { min_sets: q });
    options.record = true;
    let run = run_in_memory(n, &inputs, &options).await;
    let inst_logs = run.institution_transcripts.clone();
    let node_logs = run.node_transcripts.clone();
    let (outs, report) = run.into_result().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sorted(outs), sorted(oracle(&inputs, Mode::SetAtLeast { min_sets: q })));
    let selected = count_in_at_least(&inputs, q) as usize;
    assert_eq!(report.selected_size as usize, selected);
    assert!(selected > count_in_at_least(&inputs, 3) as usize, "the sets must have items in exactly 2 sets");
    for (c, log) in inst_logs.iter().enumerate() {
        let own = inputs.get(c).map_or(0, InputSet::len);
        // Per node: the public key shares (kind, n points), mask shares, the tag list; from
        // the t + 1 answering nodes, answers (kind, key share and proof, points).
        let point = tacit_psi::oprf::POINT_BYTES;
        let expected = n * ((1 + point * n) + (1 + 32 * own) + (1 + 32 * selected))
            + 2 * (1 + tacit_psi::oprf::PROOF_BYTES + point * own);
        assert_eq!(log.len(), expected, "institution {c}");
        for (d, set) in inputs.iter().enumerate() {
            if c != d {
                for item in set.items() {
                    assert!(!log.contains(item.canonical()));
                }
            }
        }
    }
    for log in &node_logs {
        for set in &inputs {
            for item in set.items() {
                assert!(!log.contains(item.canonical()));
                let h = tacit_psi::oprf::hash_to_curve(item.canonical()).unwrap_or_default();
                assert!(!log.contains(&tacit_psi::oprf::encode_points(&[h])));
            }
        }
    }
}
