//! Size and single-prover cost of the committed-query statement (`tacit_psi::statement`):
//! `cargo run --release -p tacit-psi --example statement_cost -- [ROWS] [INSTITUTIONS]
//! [cardinality|sum] [LIMB_BITS]` (defaults: 4096 rows, 3 institutions, cardinality, 16).
//! Prints constraints, instance variables, setup, synthesis, proving and verification times;
//! with `--collaborative` also three nodes (in-memory links, t = 1) proving it on shares.

use std::time::Instant;

use ark_bn254::Fr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tacit_circuits::backend::ChallengeDeriver;
use tacit_circuits::{CircuitError, R1cs};
use tacit_prover::committed::{self, CommitLayout};
use tacit_prover::qap::R1csMatrices;
use tacit_psi::statement::{hints, intersection_statement, list_group, pad_list, Hints, Shape, StatementMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: usize = args.first().map_or(Ok(4096), |s| s.parse())?;
    let institutions: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let mode = match args.get(2).map(String::as_str) {
        None | Some("cardinality") => StatementMode::Cardinality,
        Some("sum") => StatementMode::Sum,
        Some(other) => return Err(format!("unknown mode {other}").into()),
    };
    let limb_bits: u32 = args.get(3).map_or(Ok(16), |s| s.parse())?;
    let shape = Shape { institutions, rows, mode, limb_bits };
    let min_size = (mode == StatementMode::Sum).then_some(1);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;

    // Lists: an eighth of the rows in every set, the rest random.
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let common: Vec<(u64, u64)> = (0..rows / 8).map(|_| (rng.gen::<u64>() >> 1, rng.gen_range(0..1_000_000))).collect();
    let mut lists = Vec::new();
    for c in 0..institutions {
        let mut items = common.clone();
        while items.len() < rows {
            items.push((rng.gen::<u64>() >> 1, rng.gen_range(0..1_000_000)));
        }
        lists.push(pad_list(rows, &items, &mut ChaCha20Rng::seed_from_u64(100 + c as u64))?);
    }

    let start = Instant::now();
    let mut setup_b = R1cs::<Fr>::new_setup();
    runtime.block_on(intersection_statement(&mut setup_b, &shape, &vec![None; institutions], None, min_size))?;
    let matrices = R1csMatrices::from_cs(&setup_b.constraint_system()?)?;
    let layout = CommitLayout::new(
        matrices.num_instance_variables(),
        setup_b.committed_groups().to_vec(),
        setup_b.challenge_index().ok_or("no challenge")?,
    )?;
    println!(
        "shape: {institutions} institutions x {rows} rows, {mode:?}, {limb_bits}-bit limbs\n\
         constraints {}, instance variables {} (committed {}), witness variables {}, domain {}",
        matrices.num_constraints(),
        matrices.num_instance_variables(),
        layout.groups().iter().map(|r| r.len()).sum::<usize>(),
        matrices.num_witness_variables(),
        matrices.qap_points().next_power_of_two(),
    );
    println!("synthesis (setup mode)  {:8.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let keys = committed::setup(&matrices, layout, &mut ChaCha20Rng::seed_from_u64(2))?;
    println!("key generation          {:8.2} s", start.elapsed().as_secs_f64());

    let start = Instant::now();
    let groups: Vec<Option<Vec<Fr>>> =
        lists.iter().enumerate().map(|(c, (t, v))| Some(list_group(&shape, t, v, Fr::from(1000 + c as u64)))).collect();
    let hint = hints::<Fr>(&shape, &lists, [Fr::from(3u64), Fr::from(4u64)])?;
    let derive_keys = keys.clone();
    let deriver = ChallengeDeriver::new(move |prefix: &[Fr]| {
        derive_keys.challenge_for(prefix).map_err(|e| CircuitError::Synthesis(e.to_string()))
    });
    let mut b = R1cs::<Fr>::new_prove().with_challenge(deriver);
    let output = runtime.block_on(intersection_statement(&mut b, &shape, &groups, Some(&hint), min_size))?;
    let z = b.full_assignment()?;
    println!("witness + commitments   {:8.2} s   output {output:?}", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let proof = keys.prove(&matrices, &z, &mut ChaCha20Rng::seed_from_u64(4))?;
    println!("prove (single)          {:8.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    let public = keys.layout.public_inputs(&z)?;
    let ok = keys.vk.verify(&public, &proof)?;
    println!("verify                  {:8.3} s   {ok}", start.elapsed().as_secs_f64());
    if !ok {
        return Err("the proof does not verify".into());
    }
    if args.iter().any(|a| a == "--collaborative") {
        collaborative(shape, keys, matrices, &groups, &hint, min_size)?;
    }
    Ok(())
}

/// Three nodes (t = 1, malicious security, in-memory links) hold a dealer's shares of the
/// groups, run the statement on shares and prove it together.
fn collaborative(
    shape: Shape,
    keys: committed::CommittedKeys,
    matrices: R1csMatrices,
    groups: &[Option<Vec<Fr>>],
    hint: &Hints<Fr>,
    min_size: Option<u64>,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;
    use tacit_circuits::mpc::Mpc;
    use tacit_mpc_engine::shamir::Shamir;
    use tacit_mpc_engine::simulate::run_engines;
    use tacit_mpc_engine::transport::memory::MemoryTransport;
    use tacit_mpc_engine::{MpcError, Security, SessionId};
    use tacit_prover::collaborative::{prove_committed_with, ProductMode};
    use tacit_psi::statement::mpc_challenge;

    let shamir = Shamir::<Fr>::new(3, 1)?;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut deal = |values: &[Fr]| shamir.share_by_party(values, 1, &mut rng);
    let group_shares: Arc<Vec<Vec<Vec<Fr>>>> =
        Arc::new(groups.iter().map(|g| deal(g.as_deref().unwrap_or_default())).collect());
    let hint_shares = Arc::new(deal(&hint.secret));
    let known_hints = Arc::new(hint.known.clone());
    let (keys, matrices) = (Arc::new(keys), Arc::new(matrices));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let start = Instant::now();
    let results =
        rt.block_on(run_engines::<Fr, _, _, _, _>(transports, 1, Security::Malicious, SessionId::random(), {
            move |engine| {
                let (keys, matrices, group_shares, hint_shares, known_hints) =
                    (keys.clone(), matrices.clone(), group_shares.clone(), hint_shares.clone(), known_hints.clone());
                async move {
                    let me = engine.id().index();
                    let usage = |e: CircuitError| match e {
                        CircuitError::Mpc(e) => e,
                        other => MpcError::Usage(other.to_string()),
                    };
                    let (deriver, opened) = mpc_challenge(keys.clone());
                    let mut b = Mpc::new(engine).with_challenge(deriver);
                    let lists: Vec<Option<Vec<Fr>>> = group_shares.iter().map(|g| g.get(me).cloned()).collect();
                    let secret = hint_shares.get(me).cloned().unwrap_or_default();
                    let hints = Hints { known: known_hints.to_vec(), secret };
                    let witness_start = Instant::now();
                    intersection_statement(&mut b, &shape, &lists, Some(&hints), min_size).await.map_err(usage)?;
                    let (assignment, mut engine) = b.finish().await.map_err(usage)?;
                    let witness_s = witness_start.elapsed().as_secs_f64();
                    let prove_start = Instant::now();
                    // The commitments the challenge was drawn from: not computed again.
                    let groups = opened.lock().ok().and_then(|mut g| g.take()).unwrap_or_default();
                    let proof = prove_committed_with(
                        &mut engine,
                        &keys,
                        &matrices,
                        &assignment.instance,
                        &assignment.witness,
                        ProductMode::default(),
                        groups,
                    )
                    .await
                    .map_err(|e| MpcError::Usage(e.to_string()))?;
                    let sent = engine.stats().transport.bytes_sent;
                    Ok((witness_s, prove_start.elapsed().as_secs_f64(), sent, proof))
                }
            }
        }));
    let total = start.elapsed().as_secs_f64();
    for (i, r) in results.into_iter().enumerate() {
        let (witness_s, prove_s, sent, _) = r?;
        println!(
            "node {}: statement on shares {witness_s:6.2} s, collaborative proof {prove_s:6.2} s, {:.1} MB sent",
            i + 1,
            sent as f64 / 1e6
        );
    }
    println!("3 nodes, all in one process on these cores: {total:.2} s");
    Ok(())
}
