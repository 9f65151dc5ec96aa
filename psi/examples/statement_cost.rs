//! Size and single-prover cost of the committed-query statement (`tacit_psi::statement`):
//! `cargo run --release -p tacit-psi --example statement_cost -- [ROWS] [INSTITUTIONS]
//! [cardinality|sum] [LIMB_BITS]` (defaults: 4096 rows, 3 institutions, cardinality, 16).
//! Prints constraints, instance variables, setup, synthesis, proving and verification times.

use std::time::Instant;

use ark_bn254::Fr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tacit_circuits::backend::ChallengeDeriver;
use tacit_circuits::{CircuitError, R1cs};
use tacit_prover::committed::{self, CommitLayout};
use tacit_prover::qap::R1csMatrices;
use tacit_psi::statement::{hints, intersection_statement, list_group, pad_list, Shape, StatementMode};

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
        lists.push(pad_list(c, rows, &items)?);
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
    let hint = hints::<Fr>(&shape, &lists, Fr::from(3u64))?;
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
    Ok(())
}
