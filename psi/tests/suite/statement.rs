//! The committed-query statement: the plaintext oracle, the constraint system, and a
//! committed-wire Groth16 proof over it (single prover).

use ark_bn254::Fr;
use ark_ff::{One, Zero};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tacit_circuits::backend::ChallengeDeriver;
use tacit_circuits::{CircuitError, Plain, R1cs};
use tacit_prover::committed::{self, CommitLayout, CommittedKeys};
use tacit_prover::qap::R1csMatrices;
use tacit_psi::statement::{
    hints, intersection_statement, list_group, pad_list, Hints, Shape, StatementMode, StatementOutput,
};

type Lists = Vec<(Vec<u64>, Vec<u64>)>;

fn shape(mode: StatementMode) -> Shape {
    Shape { institutions: 3, rows: 8, mode, limb_bits: 8 }
}

/// Three institutions with `common` items in all, some in two, the rest their own.
fn planted(seed: u64, shape: &Shape, common: usize) -> (Lists, u64, u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut tag = || rng.gen::<u64>() >> 1;
    let shared: Vec<u64> = (0..common).map(|_| tag()).collect();
    let pair = tag();
    let mut rng = ChaCha20Rng::seed_from_u64(seed + 1);
    let mut lists = Vec::new();
    let (mut count, mut sum) = (0u64, 0u64);
    for c in 0..shape.institutions {
        let mut items: Vec<(u64, u64)> = shared.iter().map(|t| (*t, rng.gen_range(0..1000))).collect();
        for (_, v) in &items {
            sum += v;
        }
        if c < 2 {
            items.push((pair, 5));
        }
        while items.len() < shape.rows - 1 {
            items.push((rng.gen::<u64>() >> 1, rng.gen_range(0..1000)));
        }
        lists.push(pad_list(shape.rows, &items, &mut ChaCha20Rng::seed_from_u64(seed + 10 + c as u64)).unwrap());
    }
    count += common as u64;
    (lists, count, sum)
}

fn list_groups(shape: &Shape, lists: &Lists) -> Vec<Option<Vec<Fr>>> {
    lists.iter().enumerate().map(|(c, (t, v))| Some(list_group(shape, t, v, Fr::from(100 + c as u64)))).collect()
}

fn run_plain(shape: &Shape, lists: &Lists, min_size: Option<u64>) -> tacit_circuits::Result<StatementOutput<Fr>> {
    let hint = hints::<Fr>(shape, lists, [Fr::from(7u64), Fr::from(8u64)])?;
    let mut b = Plain::<Fr>::new();
    futures_block(intersection_statement(&mut b, shape, &list_groups(shape, lists), Some(&hint), min_size))
}

fn futures_block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn the_oracle_counts_and_sums_the_intersection() {
    let card = shape(StatementMode::Cardinality);
    for (seed, common) in [(1, 0), (2, 3), (3, 7)] {
        let (lists, count, _) = planted(seed, &card, common);
        assert_eq!(run_plain(&card, &lists, None).unwrap(), StatementOutput::Cardinality(Fr::from(count)));
    }
    let sum = shape(StatementMode::Sum);
    let (lists, count, total) = planted(4, &sum, 5);
    assert_eq!(count, 5);
    assert_eq!(
        run_plain(&sum, &lists, Some(5)).unwrap(),
        StatementOutput::Sum { released: Fr::one(), sum: Fr::from(total) }
    );
    assert_eq!(
        run_plain(&sum, &lists, Some(6)).unwrap(),
        StatementOutput::Sum { released: Fr::zero(), sum: Fr::zero() }
    );
    // Identical sets: every real item is in the intersection.
    let items: Vec<(u64, u64)> = (1..=6).map(|i| (i * 1000, i)).collect();
    let same: Lists = (0..3).map(|c| pad_list(8, &items, &mut ChaCha20Rng::seed_from_u64(c)).unwrap()).collect();
    assert_eq!(run_plain(&card, &same, None).unwrap(), StatementOutput::Cardinality(Fr::from(6u64)));
}

#[test]
fn lists_that_are_not_sets_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    assert!(pad_list(8, &[(5, 1), (5, 2)], &mut rng).is_err());
    assert!(pad_list(8, &[(1 << 63, 1)], &mut rng).is_err());
    assert!(pad_list(1, &[(1, 1), (2, 2)], &mut rng).is_err());
    // Padding is random, above every real tag, and differs between lists (another
    // institution cannot put it in its own list to make it count).
    let (a, _) = pad_list(64, &[(7, 1)], &mut rng).unwrap();
    let (b, _) = pad_list(64, &[(7, 1)], &mut rng).unwrap();
    assert!(a[1..].iter().all(|p| *p >= 1 << 63 && !b.contains(p)));
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    let card = shape(StatementMode::Cardinality);
    let (mut lists, _, _) = planted(5, &card, 2);
    lists[1].0.swap(0, 1);
    assert!(matches!(hints::<Fr>(&card, &lists, [Fr::zero(); 2]), Err(CircuitError::Unsatisfied(_))));
}

/// Setup for a shape; the layout from the setup-mode system.
fn setup(shape: &Shape) -> (CommittedKeys, R1csMatrices) {
    let mut b = R1cs::<Fr>::new_setup();
    let lists = vec![None; shape.institutions];
    let min_size = (shape.mode == StatementMode::Sum).then_some(0);
    futures_block(intersection_statement(&mut b, shape, &lists, None, min_size)).unwrap();
    let cs = b.constraint_system().unwrap();
    let matrices = R1csMatrices::from_cs(&cs).unwrap();
    let layout = CommitLayout::new(
        matrices.num_instance_variables(),
        b.committed_groups().to_vec(),
        b.challenge_index().unwrap(),
    )
    .unwrap();
    let keys = committed::setup(&matrices, layout, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    (keys, matrices)
}

/// Synthesizes with values; the challenge from the keys' commitments.
fn synthesize(
    keys: &CommittedKeys,
    shape: &Shape,
    lists: &[Option<Vec<Fr>>],
    hint: &Hints<Fr>,
    min_size: Option<u64>,
) -> tacit_circuits::Result<(R1cs<Fr>, StatementOutput<Fr>)> {
    let derive_keys = keys.clone();
    let deriver = ChallengeDeriver::new(move |prefix: &[Fr]| {
        derive_keys.challenge_for(prefix).map_err(|e| CircuitError::Synthesis(e.to_string()))
    });
    let mut b = R1cs::<Fr>::new_prove().with_challenge(deriver);
    let out = futures_block(intersection_statement(&mut b, shape, lists, Some(hint), min_size))?;
    Ok((b, out))
}

#[test]
fn a_committed_proof_of_the_count_verifies_and_binds_the_lists() {
    let card = shape(StatementMode::Cardinality);
    let (keys, matrices) = setup(&card);
    let (lists, count, _) = planted(6, &card, 4);
    let groups = list_groups(&card, &lists);
    let hint = hints::<Fr>(&card, &lists, [Fr::from(77u64), Fr::from(78u64)]).unwrap();
    let (b, out) = synthesize(&keys, &card, &groups, &hint, None).unwrap();
    assert_eq!(out, StatementOutput::Cardinality(Fr::from(count)));
    assert!(b.is_satisfied().unwrap());
    let z = b.full_assignment().unwrap();
    let proof = keys.prove(&matrices, &z, &mut ChaCha20Rng::seed_from_u64(10)).unwrap();
    let public = keys.layout.public_inputs(&z).unwrap();
    assert_eq!(public, vec![Fr::from(count)]);
    assert!(keys.vk.verify(&public, &proof).unwrap());
    // The institutions' groups are what each committed on its own, ahead of the proof.
    for (c, group) in groups.iter().enumerate() {
        assert_eq!(proof.groups[c], keys.commitment_keys[c].commit(group.as_ref().unwrap()).unwrap());
    }
    // Another count does not verify; nor does another institution's commitment.
    assert!(!keys.vk.verify(&[Fr::from(count + 1)], &proof).unwrap());
    let (other, _, _) = planted(16, &card, 4);
    let mut swapped = proof.clone();
    swapped.groups[1] = keys.commitment_keys[1].commit(&groups_of(&card, &other)[1]).unwrap();
    assert!(!keys.vk.verify(&public, &swapped).unwrap());
}

fn groups_of(shape: &Shape, lists: &Lists) -> Vec<Vec<Fr>> {
    list_groups(shape, lists).into_iter().map(Option::unwrap).collect()
}

/// Hints that misstate the merged list cannot satisfy the constraints, whatever the limbs.
#[test]
fn false_hints_are_unsatisfiable() {
    let card = shape(StatementMode::Cardinality);
    let (keys, _) = setup(&card);
    let (lists, _, _) = planted(7, &card, 3);
    let groups = list_groups(&card, &lists);
    let honest = hints::<Fr>(&card, &lists, [Fr::from(5u64), Fr::from(6u64)]).unwrap();
    let total = card.merged_len();
    let full: Vec<usize> = (0..total).filter(|k| honest.known[total + k] == Fr::from(3u64)).collect();
    assert_eq!(full.len(), 3);

    // A full tag claimed in two sets only (the count would drop by one): the row multiset
    // no longer matches.
    let mut lower = honest.clone();
    lower.known[total + full[0]] = Fr::from(2u64);
    lower.known[total + total - 1] = Fr::one();
    assert!(matches!(synthesize(&keys, &card, &groups, &lower, None), Err(CircuitError::Unsatisfied(_))));

    // A tag left out of the merged list.
    let mut missing = honest.clone();
    missing.known[total + full[1]] = Fr::zero();
    assert!(matches!(synthesize(&keys, &card, &groups, &missing, None), Err(CircuitError::Unsatisfied(_))));

    // The merged list out of order (two entries swapped with their multiplicities).
    let mut unordered = honest.clone();
    unordered.known.swap(0, 1);
    unordered.known.swap(total, total + 1);
    assert!(matches!(synthesize(&keys, &card, &groups, &unordered, None), Err(CircuitError::Unsatisfied(_))));

    // A limb outside the table (the recomposition kept: limb + 2^8, next limb - 1).
    let mut wide = honest.clone();
    let limb0 = 2 * total;
    let first_nonzero = (limb0 + 1..limb0 + card.limbs()).find(|i| !wide.known[*i].is_zero()).unwrap();
    wide.known[first_nonzero - 1] += Fr::from(256u64);
    wide.known[first_nonzero] -= Fr::one();
    assert!(matches!(synthesize(&keys, &card, &groups, &wide, None), Err(CircuitError::Unsatisfied(_))));

    // An institution list out of order, hints made for it.
    let mut unsorted = lists.clone();
    unsorted[2].0.swap(0, 1);
    assert!(hints::<Fr>(&card, &unsorted, [Fr::zero(); 2]).is_err());
    let forced = hints_ignoring_order(&card, &unsorted);
    assert!(synthesize(&keys, &card, &list_groups(&card, &unsorted), &forced, None).is_err());
}

/// The honest hints computed as if the lists were sorted (limbs of wrapped differences).
fn hints_ignoring_order(shape: &Shape, lists: &Lists) -> Hints<Fr> {
    let mut sorted = lists.clone();
    for (t, _) in &mut sorted {
        t.sort_unstable();
    }
    hints::<Fr>(shape, &sorted, [Fr::zero(); 2]).unwrap()
}

#[test]
fn a_committed_proof_of_the_sum_verifies_and_withholds_below_the_threshold() {
    let sum = shape(StatementMode::Sum);
    let (keys, matrices) = setup(&sum);
    let (lists, count, total) = planted(8, &sum, 3);
    let groups = list_groups(&sum, &lists);
    let hint = hints::<Fr>(&sum, &lists, [Fr::from(1u64), Fr::from(2u64)]).unwrap();
    for (min_size, expected) in [
        (count, StatementOutput::Sum { released: Fr::one(), sum: Fr::from(total) }),
        (count + 1, StatementOutput::Sum { released: Fr::zero(), sum: Fr::zero() }),
    ] {
        let (b, out) = synthesize(&keys, &sum, &groups, &hint, Some(min_size)).unwrap();
        assert_eq!(out, expected);
        let z = b.full_assignment().unwrap();
        let proof = keys.prove(&matrices, &z, &mut ChaCha20Rng::seed_from_u64(min_size)).unwrap();
        let public = keys.layout.public_inputs(&z).unwrap();
        assert_eq!(public[0], Fr::from(min_size));
        assert!(keys.vk.verify(&public, &proof).unwrap());
    }
    // A value of 2^64 cannot enter the sum, even with the merged sum adjusted to match.
    let two64 = Fr::from(u64::MAX) + Fr::one();
    let mut big = groups.clone();
    if let Some(g) = big[0].as_mut() {
        g[sum.rows] += two64;
    }
    let total_len = sum.merged_len();
    let k = (0..total_len).find(|k| hint.known[*k] == Fr::from(lists[0].0[0])).unwrap();
    let mut big_hint = hint.clone();
    big_hint.secret[k] += two64;
    assert!(matches!(synthesize(&keys, &sum, &big, &big_hint, Some(1)), Err(CircuitError::Unsatisfied(_))));
}

/// Three nodes hold shares of the lists and hints, run the statement on shares (the
/// challenge from commitments opened on shares) and prove it together; the institutions'
/// groups in the proof are exactly the commitments each made on its own.
#[test]
fn three_nodes_prove_the_count_collaboratively() {
    use std::sync::Arc;
    use tacit_circuits::mpc::Mpc;
    use tacit_mpc_engine::shamir::Shamir;
    use tacit_mpc_engine::simulate::run_engines;
    use tacit_mpc_engine::transport::memory::MemoryTransport;
    use tacit_mpc_engine::{MpcError, Security, SessionId};
    use tacit_prover::collaborative::{prove_committed, ProductMode};
    use tacit_psi::statement::mpc_challenge;

    let card = shape(StatementMode::Cardinality);
    let (keys, matrices) = setup(&card);
    let (keys, matrices) = (Arc::new(keys), Arc::new(matrices));
    let verifier = keys.clone();
    let (lists, count, _) = planted(11, &card, 5);
    let groups = groups_of(&card, &lists);
    let hint = hints::<Fr>(&card, &lists, [Fr::from(12345u64), Fr::from(6789u64)]).unwrap();
    // A dealer's Shamir sharing (t = 1) of every value, by party.
    let shamir = Shamir::<Fr>::new(3, 1).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut deal = |values: &[Fr]| shamir.share_by_party(values, 1, &mut rng);
    let group_shares: Vec<Vec<Vec<Fr>>> = groups.iter().map(|g| deal(g)).collect();
    let hint_shares = Arc::new(deal(&hint.secret));
    let known_hints = Arc::new(hint.known.clone());
    let group_shares = Arc::new(group_shares);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let results =
        rt.block_on(run_engines::<Fr, _, _, _, _>(transports, 1, Security::Malicious, SessionId::random(), {
            move |engine| {
                let (keys, matrices, group_shares, hint_shares, known_hints) =
                    (keys.clone(), matrices.clone(), group_shares.clone(), hint_shares.clone(), known_hints.clone());
                async move {
                    let me = engine.id().index();
                    let card = shape(StatementMode::Cardinality);
                    let usage = |e: tacit_circuits::CircuitError| match e {
                        CircuitError::Mpc(e) => e,
                        other => MpcError::Usage(other.to_string()),
                    };
                    let mut b = Mpc::new(engine).with_challenge(mpc_challenge(keys.clone()).0);
                    let lists: Vec<Option<Vec<Fr>>> = group_shares.iter().map(|g| Some(g[me].clone())).collect();
                    let mine = Hints { known: known_hints.to_vec(), secret: hint_shares[me].clone() };
                    let out = intersection_statement(&mut b, &card, &lists, Some(&mine), None).await.map_err(usage)?;
                    let (assignment, mut engine) = b.finish().await.map_err(usage)?;
                    let proof = prove_committed(
                        &mut engine,
                        &keys,
                        &matrices,
                        &assignment.instance,
                        &assignment.witness,
                        ProductMode::default(),
                    )
                    .await
                    .map_err(|e| MpcError::Usage(e.to_string()))?;
                    Ok((out, proof))
                }
            }
        }));
    let mut proofs = Vec::new();
    for r in results {
        let (out, proof) = r.unwrap();
        assert_eq!(out, StatementOutput::Cardinality(Fr::from(count)));
        proofs.push(proof);
    }
    assert!(proofs.iter().all(|p| *p == proofs[0]));
    let proof = &proofs[0];
    assert!(verifier.vk.verify(&[Fr::from(count)], proof).unwrap());
    assert!(!verifier.vk.verify(&[Fr::from(count - 1)], proof).unwrap());
    assert_eq!(proof.groups.len(), 5);
    for (c, group) in groups.iter().enumerate() {
        assert_eq!(proof.groups[c], verifier.commitment_keys[c].commit(group).unwrap());
    }
}

/// Blame after a failed statement: each institution's limbs are checked against its own
/// list; honest limbs fit, and each way of dealing wrong ones is found and attributed.
#[test]
fn limbs_that_do_not_fit_their_list_are_attributed() {
    use tacit_psi::statement::{institution_limbs, limbs_fit, InstitutionLimbs};
    for mode in [StatementMode::Cardinality, StatementMode::Sum] {
        let shape = shape(mode);
        let (lists, _, _) = planted(40, &shape, 3);
        let groups = groups_of(&shape, &lists);
        let honest: Vec<InstitutionLimbs<Fr>> =
            lists.iter().map(|(t, v)| institution_limbs::<Fr>(&shape, t, v).unwrap()).collect();
        let fit = |limbs: &[InstitutionLimbs<Fr>]| {
            let mut b = Plain::<Fr>::new();
            futures_block(limbs_fit(&mut b, &shape, &groups, limbs, Fr::from(0x1234_5678_9abc_u64))).unwrap()
        };
        assert_eq!(fit(&honest), vec![true; 3], "{mode:?}");
        let table = Fr::from(shape.table() as u64);
        // A limb that does not recompose its difference.
        let mut off = honest.clone();
        off[1].diffs[3] += Fr::one();
        assert_eq!(fit(&off), vec![true, false, true], "{mode:?}");
        // Limbs off the table that still recompose the difference.
        let mut outside = honest.clone();
        outside[2].diffs[0] += table;
        outside[2].diffs[1] -= Fr::one();
        assert_eq!(fit(&outside), vec![true, true, false], "{mode:?}");
        // Counts that are not the limbs'.
        let mut counts = honest.clone();
        counts[0].counts[0] += Fr::one();
        counts[0].counts[1] -= Fr::one();
        assert_eq!(fit(&counts), vec![false, true, true], "{mode:?}");
        if mode == StatementMode::Sum {
            // Limbs that do not recompose a value.
            let mut value = honest.clone();
            value[1].values[0] += Fr::one();
            assert_eq!(fit(&value), vec![true, false, true]);
        }
    }
}
