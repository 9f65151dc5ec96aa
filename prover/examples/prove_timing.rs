//! Times the explicit prover (`qap::prove_single`) against ark-groth16 on a chain circuit
//! `x_{i+1} = x_i² + i` sized to fill a domain of `2^k` points (default k = 14), and the key
//! file round trip. Run in release:
//!
//! ```text
//! cargo run -p tacit-prover --release --example prove_timing [-- k [runs]]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ark_bn254::{Bn254, Fr};
use ark_ff::UniformRand;
use ark_groth16::Groth16;
use ark_poly::EvaluationDomain;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_snark::SNARK;
use ark_std::rand::{rngs::StdRng, SeedableRng};
use tacit_prover::{keys, qap};

#[derive(Clone)]
struct Chain {
    n: usize,
    x0: Option<Fr>,
}

impl ConstraintSynthesizer<Fr> for Chain {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let mut value = self.x0;
        let mut out_value = self.x0;
        for i in 0..self.n {
            out_value = out_value.map(|v| v * v + Fr::from(i as u64));
        }
        let mut x = cs.new_input_variable(|| self.x0.ok_or(SynthesisError::AssignmentMissing))?;
        let out = cs.new_input_variable(|| out_value.ok_or(SynthesisError::AssignmentMissing))?;
        for i in 0..self.n {
            let k = Fr::from(i as u64);
            let next_value = value.map(|v| v * v + k);
            let next = cs.new_witness_variable(|| next_value.ok_or(SynthesisError::AssignmentMissing))?;
            cs.enforce_r1cs_constraint(
                || x.into(),
                || x.into(),
                || LinearCombination::from(next) - (k, Variable::One),
            )?;
            x = next;
            value = next_value;
        }
        cs.enforce_r1cs_constraint(|| x.into(), || Variable::One.into(), || out.into())
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    (median(times), last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:8.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let k: u32 = args.next().map(|a| a.parse().unwrap()).unwrap_or(14);
    let runs: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(3);
    let n = (1usize << k) - 4; // n + 1 constraints + 3 instance rows = 2^k
    let mut rng = StdRng::seed_from_u64(1);
    println!(
        "chain circuit: {} constraints, domain 2^{k}, {} threads, median of {runs}",
        n + 1,
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let (pk, matrices) = keys::setup(Chain { n, x0: None }, &mut rng).unwrap();
    println!("setup                      {}", ms(t.elapsed()));
    assert_eq!(matrices.domain().unwrap().size(), 1 << k);

    let circuit = Chain { n, x0: Some(Fr::from(3u64)) };
    let (t_syn, (_, z)) = time(runs, || qap::synthesize_for_proving(circuit.clone()).unwrap());
    println!("synthesize (matrices + z)  {}", ms(t_syn));
    let public = matrices.public_inputs(&z).unwrap().to_vec();

    // The three provers interleaved run by run, so background load hits them alike.
    let (mut ts, mut tm, mut ta) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let proof = qap::prove_single_random(&pk, &matrices, &z, &mut rng).unwrap();
        ts.push(t.elapsed());
        assert!(Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());

        let t = Instant::now();
        let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
        let proof = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
            &pk,
            r,
            s,
            matrices.ark_matrices(),
            matrices.num_instance_variables(),
            matrices.num_constraints(),
            &z,
        )
        .unwrap();
        tm.push(t.elapsed());
        assert!(Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());

        let t = Instant::now();
        let proof = qap::prove_ark(&pk, circuit.clone(), &mut rng).unwrap();
        ta.push(t.elapsed());
        assert!(Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());
    }
    let (t_single, t_ark_m, t_ark) = (median(ts), median(tm), median(ta));
    println!("prove_single (from z)      {}", ms(t_single));
    println!(
        "ark from matrices (same)   {}   ratio prove_single/ark = {:.2}",
        ms(t_ark_m),
        t_single.as_secs_f64() / t_ark_m.as_secs_f64()
    );
    println!(
        "prove_ark (incl. synthesis){}   ratio (synthesize + prove_single)/prove_ark = {:.2}",
        ms(t_ark),
        (t_syn + t_single).as_secs_f64() / t_ark.as_secs_f64()
    );

    // Step breakdown.
    let domain = matrices.domain().unwrap();
    let (t1, (a, b, c)) = time(runs, || qap::abc_evaluations(&matrices, &z).unwrap());
    let (t2, (a, b, c)) = time(runs, || {
        (
            qap::to_coset_evaluations(&domain, a.clone()).unwrap(),
            qap::to_coset_evaluations(&domain, b.clone()).unwrap(),
            qap::to_coset_evaluations(&domain, c.clone()).unwrap(),
        )
    });
    let (t3, p) = time(runs, || qap::pointwise_ab_minus_c(&a, &b, &c).unwrap());
    let (t4, h) = time(runs, || qap::h_from_coset_product(&domain, p.clone()).unwrap());
    let r = Fr::rand(&mut rng);
    let (t5, _) = time(runs, || qap::msm_a(&pk, &z, r).unwrap());
    let (t6, _) = time(runs, || qap::msm_b_g2(&pk, &z, r).unwrap());
    let (t7, _) = time(runs, || qap::msm_b_g1(&pk, &z, r).unwrap());
    let (t8, _) = time(runs, || qap::msm_c_parts(&pk, &z, &h).unwrap());
    println!("  1 abc_evaluations        {}", ms(t1));
    println!("  2 3x to_coset_evaluations{}", ms(t2));
    println!("  3 pointwise_ab_minus_c   {}", ms(t3));
    println!("  4 h_from_coset_product   {}", ms(t4));
    println!("  5 msm_a                  {}", ms(t5));
    println!("  6 msm_b_g2               {}", ms(t6));
    println!("  7 msm_b_g1               {}", ms(t7));
    println!("  8 msm_c_parts (l + h)    {}", ms(t8));

    // Key files.
    let dir = std::env::temp_dir().join(format!("tacit-prove-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pk.bin");
    let (t_w, _) = time(1, || keys::write_proving_key(&pk, &path).unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    let (mut tr, mut tt) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        assert!(keys::read_proving_key(&path).unwrap() == pk);
        tr.push(t.elapsed());
        let t = Instant::now();
        assert!(keys::read_proving_key_trusted(&path).unwrap() == pk);
        tt.push(t.elapsed());
    }
    let (t_r, t_rt) = (median(tr), median(tt));
    let vk_path = dir.join("vk.bin");
    keys::write_verifying_key(&pk.vk, &vk_path).unwrap();
    let (t_vk, _) = time(runs, || keys::read_verifying_key(&vk_path).unwrap());
    println!("proving key: {:.1} MiB compressed; write {}", size as f64 / (1 << 20) as f64, ms(t_w));
    println!("  read validated           {}", ms(t_r));
    println!("  read trusted (no subgroup checks) {}", ms(t_rt));
    println!("  verifying key read       {}", ms(t_vk));
    std::fs::remove_dir_all(&dir).unwrap();
}
