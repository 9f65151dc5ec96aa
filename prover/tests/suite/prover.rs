//! The explicit prover against ark-groth16.

use ark_bn254::{Bn254, Fr};
use ark_ec::CurveGroup;
use ark_ff::{One, UniformRand, Zero};
use ark_groth16::{
    r1cs_to_qap::{LibsnarkReduction, R1CSToQAP},
    Groth16,
};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem, OptimizationGoal, SynthesisMode};
use ark_serialize::{CanonicalDeserialize, Compress, Validate};
use ark_snark::SNARK;

use super::{rng, setup_chain, setup_toy, write_read_vk, Chain, TempDir, Toy};
use tacit_prover::keys::{self, KeyError};
use tacit_prover::qap::{self, MatrixCircuit, QapError};

#[test]
fn toy_proofs_verify_with_ark_and_with_key_from_file() {
    let dir = TempDir::new("toy");
    let (pk, matrices) = setup_toy();
    assert_eq!(matrices.num_public_inputs(), 2);
    assert_eq!(matrices.num_constraints(), 3);
    let vk = write_read_vk(&pk, &dir.0);
    assert_eq!(vk, pk.vk);

    let mut rng = rng(10);
    for (w, y) in [(3, 4), (0, 0), (123_456_789, 987)] {
        let (m2, z) = qap::synthesize_for_proving(Toy::new(w, y)).unwrap();
        assert_eq!(m2, matrices, "prove-mode and setup-mode matrices agree");
        qap::check_satisfied(&matrices, &z).unwrap();
        let public = matrices.public_inputs(&z).unwrap().to_vec();
        assert_eq!(public, vec![Fr::from(w) * Fr::from(w) + Fr::from(y), Fr::from(y)]);
        let proof = qap::prove_single_random(&pk, &matrices, &z, &mut rng).unwrap();
        assert!(Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());
        assert!(Groth16::<Bn254>::verify(&vk, &public, &proof).unwrap());
        assert!(qap::verify_proof(&vk, &public, &proof).unwrap());
        // Wrong public input.
        let mut bad = public.clone();
        bad[1] += Fr::one();
        assert!(!Groth16::<Bn254>::verify(&vk, &bad, &proof).unwrap());
        // Wrong number of public inputs is an error in our wrapper.
        assert!(matches!(qap::verify_proof(&vk, &public[..1], &proof), Err(QapError::KeyShape(_))));
    }
}

#[test]
fn chain_2_10_proofs_verify_and_match_ark_exactly() {
    let dir = TempDir::new("chain");
    let n = 1000; // 1001 constraints + 3 instance rows → domain 1024
    let (pk, matrices) = setup_chain(n);
    assert_eq!(matrices.domain().unwrap().size(), 1024);
    let vk = write_read_vk(&pk, &dir.0);

    let circuit = Chain { n, x0: Some(Fr::from(7u64)) };
    let (m2, z) = qap::synthesize_for_proving(circuit.clone()).unwrap();
    assert_eq!(m2, matrices);
    let public = matrices.public_inputs(&z).unwrap().to_vec();
    assert_eq!(public, vec![Fr::from(7u64), circuit.output().unwrap()]);

    let mut rng = rng(11);
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let proof = qap::prove_single(&pk, &matrices, &z, r, s).unwrap();
    assert!(Groth16::<Bn254>::verify(&vk, &public, &proof).unwrap());

    // Same r, s: bit-identical to ark-groth16, both from matrices and from the circuit.
    let ark = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        &pk,
        r,
        s,
        matrices.ark_matrices(),
        matrices.num_instance_variables(),
        matrices.num_constraints(),
        &z,
    )
    .unwrap();
    assert_eq!(proof, ark);
    let ark2 = Groth16::<Bn254>::create_proof_with_reduction(circuit.clone(), &pk, r, s).unwrap();
    assert_eq!(proof, ark2);

    // h equals the reduction's witness map.
    let h = qap::compute_h(&matrices, &z).unwrap();
    let h_ark = LibsnarkReduction::witness_map_from_matrices::<Fr, GeneralEvaluationDomain<Fr>>(
        matrices.ark_matrices(),
        matrices.num_instance_variables(),
        matrices.num_constraints(),
        &z,
    )
    .unwrap();
    assert_eq!(h, h_ark);
    assert!(h.last().unwrap().is_zero(), "top coefficient of h vanishes for a satisfying witness");

    // The baseline prover.
    let proof = qap::prove_ark(&pk, circuit, &mut rng).unwrap();
    assert!(Groth16::<Bn254>::verify(&vk, &public, &proof).unwrap());

    // r = 0 (ark skips B1) and s = 0 still agree.
    let p0 = qap::prove_single(&pk, &matrices, &z, Fr::zero(), Fr::zero()).unwrap();
    let a0 = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        &pk,
        Fr::zero(),
        Fr::zero(),
        matrices.ark_matrices(),
        matrices.num_instance_variables(),
        matrices.num_constraints(),
        &z,
    )
    .unwrap();
    assert_eq!(p0, a0);
}

#[test]
fn wrong_witness_is_detected_and_its_proof_does_not_verify() {
    let (pk, matrices) = setup_chain(200);
    let (_, z) = qap::synthesize_for_proving(Chain { n: 200, x0: Some(Fr::from(3u64)) }).unwrap();
    let public = matrices.public_inputs(&z).unwrap().to_vec();
    let mut rng = rng(12);
    for index in [matrices.num_instance_variables(), matrices.num_instance_variables() + 57, z.len() - 1] {
        let mut bad = z.clone();
        bad[index] += Fr::one();
        assert!(matches!(qap::check_satisfied(&matrices, &bad), Err(QapError::Unsatisfied(_))));
        let proof = qap::prove_single_random(&pk, &matrices, &bad, &mut rng).unwrap();
        assert!(!Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());
    }
    // A wrong public input inside z (the proof is then checked against the honest public).
    let mut bad = z.clone();
    bad[1] += Fr::one();
    assert!(qap::check_satisfied(&matrices, &bad).is_err());
    let proof = qap::prove_single_random(&pk, &matrices, &bad, &mut rng).unwrap();
    assert!(!Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());
    assert!(!Groth16::<Bn254>::verify(&pk.vk, &bad[1..3], &proof).unwrap());
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let (pk, matrices) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(2, 5)).unwrap();
    let (r, s) = (Fr::one(), Fr::one());
    // Short / long assignment.
    assert!(matches!(qap::prove_single(&pk, &matrices, &z[..z.len() - 1], r, s), Err(QapError::LengthMismatch { .. })));
    let mut long = z.clone();
    long.push(Fr::one());
    assert!(qap::prove_single(&pk, &matrices, &long, r, s).is_err());
    // z[0] must be one.
    let mut no_one = z.clone();
    no_one[0] = Fr::from(2u64);
    assert!(matches!(qap::prove_single(&pk, &matrices, &no_one, r, s), Err(QapError::NotConstantOne)));
    // Key of another circuit.
    let (pk_chain, _) = setup_chain(10);
    assert!(matches!(qap::prove_single(&pk_chain, &matrices, &z, r, s), Err(QapError::KeyShape(_))));
    // Step functions check lengths.
    let domain = matrices.domain().unwrap();
    assert!(qap::to_coset_evaluations(&domain, vec![Fr::one(); 3]).is_err());
    assert!(qap::h_from_coset_product(&domain, vec![Fr::one(); domain.size() + 1]).is_err());
    assert!(qap::pointwise_ab_minus_c(&[Fr::one()], &[], &[Fr::one()]).is_err());
    assert!(qap::msm_a(&pk, &z[1..], r).is_err());
    assert!(qap::msm_b_g1(&pk, &z[1..], r).is_err());
    assert!(qap::msm_b_g2(&pk, &z[1..], r).is_err());
    assert!(qap::msm_c_parts(&pk, &z, &[Fr::one(); 2]).is_err());
    // Matrices naming a variable that does not exist.
    let bad = qap::R1csMatrices::new(1, 1, vec![vec![(Fr::one(), 2)]], vec![vec![]], vec![vec![]]);
    assert!(matches!(bad, Err(QapError::IndexOutOfRange { matrix: "A", row: 0, index: 2, .. })));
    assert!(qap::R1csMatrices::new(1, 1, vec![vec![]], vec![], vec![vec![]]).is_err());
    assert!(qap::R1csMatrices::new(0, 1, vec![], vec![], vec![]).is_err());
}

/// The collaborative prover's contract: every step but the pointwise product is linear.
/// Simulates two-party additive sharing of the whole pipeline and recombines.
#[test]
fn steps_are_linear_so_shares_recombine_to_the_proof() {
    let (pk, matrices) = setup_chain(100);
    let (_, z) = qap::synthesize_for_proving(Chain { n: 100, x0: Some(Fr::from(9u64)) }).unwrap();
    let public = matrices.public_inputs(&z).unwrap().to_vec();
    let domain = matrices.domain().unwrap();
    let mut rng = rng(13);

    // Additive shares; party 1 holds the constant one (z[0] share 1), party 2 holds 0.
    let z2: Vec<Fr> = std::iter::once(Fr::zero()).chain((1..z.len()).map(|_| Fr::rand(&mut rng))).collect();
    let z1: Vec<Fr> = z.iter().zip(&z2).map(|(a, b)| *a - b).collect();
    let (r, s) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let (r2, s2) = (Fr::rand(&mut rng), Fr::rand(&mut rng));
    let (r1, s1) = (r - r2, s - s2);
    let rs2 = Fr::rand(&mut rng);
    let rs1 = r * s - rs2;

    // Steps 1–2 on shares.
    let coset = |zz: &[Fr]| {
        let (a, b, c) = qap::abc_evaluations(&matrices, zz).unwrap();
        (
            qap::to_coset_evaluations(&domain, a).unwrap(),
            qap::to_coset_evaluations(&domain, b).unwrap(),
            qap::to_coset_evaluations(&domain, c).unwrap(),
        )
    };
    let (a1, b1, c1) = coset(&z1);
    let (a2, b2, c2) = coset(&z2);
    // Step 3, the one product: here on reconstructed values, then re-shared.
    let add = |x: &[Fr], y: &[Fr]| x.iter().zip(y).map(|(a, b)| *a + b).collect::<Vec<_>>();
    let p = qap::pointwise_ab_minus_c(&add(&a1, &a2), &add(&b1, &b2), &add(&c1, &c2)).unwrap();
    let p2: Vec<Fr> = (0..p.len()).map(|_| Fr::rand(&mut rng)).collect();
    let p1: Vec<Fr> = p.iter().zip(&p2).map(|(a, b)| *a - b).collect();
    // Step 4 on shares.
    let h1 = qap::h_from_coset_product(&domain, p1).unwrap();
    let h2 = qap::h_from_coset_product(&domain, p2).unwrap();
    assert_eq!(add(&h1, &h2), qap::compute_h(&matrices, &z).unwrap());

    // MSMs on shares; constants (alpha, beta) counted once: party 2 removes its copy.
    let g_a = qap::msm_a(&pk, &z1, r1).unwrap() + qap::msm_a(&pk, &z2, r2).unwrap() - pk.vk.alpha_g1;
    let g_b2 = qap::msm_b_g2(&pk, &z1, s1).unwrap() + qap::msm_b_g2(&pk, &z2, s2).unwrap() - pk.vk.beta_g2;
    let g_b1 = qap::msm_b_g1(&pk, &z1, s1).unwrap() + qap::msm_b_g1(&pk, &z2, s2).unwrap() - pk.beta_g1;
    // A and B1 are opened; C is linear in the remaining shares.
    let c_1 = qap::finish_c(&pk, qap::msm_c_parts(&pk, &z1, &h1).unwrap(), g_a, g_b1, r1, s1, rs1);
    let c_2 = qap::finish_c(&pk, qap::msm_c_parts(&pk, &z2, &h2).unwrap(), g_a, g_b1, r2, s2, rs2);
    let proof = ark_groth16::Proof { a: g_a.into_affine(), b: g_b2.into_affine(), c: (c_1 + c_2).into_affine() };
    assert_eq!(proof, qap::prove_single(&pk, &matrices, &z, r, s).unwrap());
    assert!(Groth16::<Bn254>::verify(&pk.vk, &public, &proof).unwrap());
}

#[test]
fn matrix_circuit_replays_matrices_and_setup_from_cs() {
    let (_, matrices) = setup_toy();
    let replay = qap::matrices_for_setup(MatrixCircuit { matrices: &matrices, assignment: None }).unwrap();
    assert_eq!(replay, matrices);

    // With an assignment, ark's own prover runs on the replayed circuit.
    let (pk, _) = setup_toy();
    let (_, z) = qap::synthesize_for_proving(Toy::new(6, 1)).unwrap();
    let proof = qap::prove_ark(&pk, MatrixCircuit { matrices: &matrices, assignment: Some(&z) }, &mut rng(14)).unwrap();
    assert!(Groth16::<Bn254>::verify(&pk.vk, matrices.public_inputs(&z).unwrap(), &proof).unwrap());

    // Setup from a constraint system built by hand.
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Setup);
    Toy::blank().generate_constraints(cs.clone()).unwrap();
    let (pk2, m2) = keys::setup_from_cs(&cs, &mut rng(15)).unwrap();
    assert_eq!(m2, matrices);
    let proof = qap::prove_single_random(&pk2, &m2, &z, &mut rng(16)).unwrap();
    assert!(Groth16::<Bn254>::verify(&pk2.vk, m2.public_inputs(&z).unwrap(), &proof).unwrap());

    // A constraint system without matrices is refused.
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_mode(SynthesisMode::Prove { construct_matrices: false, generate_lc_assignments: false });
    assert!(matches!(qap::R1csMatrices::from_cs(&cs), Err(QapError::NoMatrices)));
}

#[test]
fn proving_key_file_round_trip_and_tampering() {
    let dir = TempDir::new("pk");
    let (pk, matrices) = setup_chain(60);
    let path = dir.path("pk.bin");
    keys::write_proving_key(&pk, &path).unwrap();
    let back = keys::read_proving_key(&path).unwrap();
    assert_eq!(back, pk);
    assert_eq!(keys::read_proving_key_trusted(&path).unwrap(), pk);
    matrices.check_proving_key(&back).unwrap();

    let bytes = std::fs::read(&path).unwrap();
    // The parallel decoder reads ark's own encoding.
    let ark =
        ark_groth16::ProvingKey::<Bn254>::deserialize_with_mode(&bytes[..], Compress::Yes, Validate::Yes).unwrap();
    assert_eq!(ark, pk);
    assert_eq!(bytes, keys::proving_key_to_bytes(&pk).unwrap());
    // A node's checked copy: uncompressed, read back unchecked but exactly.
    let checked = keys::proving_key_to_checked_bytes(&pk).unwrap();
    assert_eq!(keys::proving_key_from_checked_bytes(&checked).unwrap(), pk);
    assert!(checked.len() > bytes.len());
    assert!(keys::proving_key_from_checked_bytes(&checked[..checked.len() - 1]).is_err());
    let mut long = checked.clone();
    long.push(0);
    assert!(matches!(keys::proving_key_from_checked_bytes(&long), Err(KeyError::TrailingBytes(1))));
    assert!(keys::proving_key_from_checked_bytes(&bytes).is_err(), "a compressed key is not a checked copy");

    // A G2 point on the curve but outside the prime-order subgroup: only the validated read
    // notices.
    let mut bad = pk.clone();
    bad.b_g2_query[1] = super::g2_outside_subgroup();
    let bad_path = dir.path("bad.bin");
    keys::write_proving_key(&bad, &bad_path).unwrap();
    assert!(matches!(keys::read_proving_key(&bad_path), Err(KeyError::Decode(_))));
    assert_eq!(keys::read_proving_key_trusted(&bad_path).unwrap(), bad);

    // Truncated and trailing bytes.
    assert!(keys::proving_key_from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(keys::proving_key_from_bytes(&long), Err(KeyError::TrailingBytes(1))));
    assert!(keys::proving_key_from_bytes(&[]).is_err());
    // Flipped bits anywhere: an error, or (a different x that happens to be on the curve) a
    // different key; never a panic, never the same key.
    let mut rejected = 0;
    for pos in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
        let mut t = bytes.clone();
        t[pos] ^= 0x5a;
        match keys::proving_key_from_bytes(&t) {
            Err(_) => rejected += 1,
            Ok(k) => assert_ne!(k, pk),
        }
    }
    assert!(rejected > 0);
    // A huge length prefix is an error, not an allocation.
    let mut huge = bytes.clone();
    let vk_len = keys::verifying_key_to_bytes(&pk.vk).unwrap().len();
    let g1 = 32;
    let len_at = vk_len + 2 * g1; // vk, beta_g1, delta_g1, then the a_query length
    huge[len_at..len_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(keys::proving_key_from_bytes(&huge).is_err());

    // Missing file names the path.
    let missing = dir.path("nope.bin");
    match keys::read_proving_key(&missing) {
        Err(KeyError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[test]
fn verifying_key_decoding_rejects_degenerate_and_tampered_keys() {
    let (pk, _) = setup_toy();
    let bytes = keys::verifying_key_to_bytes(&pk.vk).unwrap();
    assert_eq!(keys::verifying_key_from_bytes(&bytes).unwrap(), pk.vk);
    for pos in 0..bytes.len() {
        let mut t = bytes.clone();
        t[pos] ^= 0x01;
        if let Ok(vk) = keys::verifying_key_from_bytes(&t) {
            assert_ne!(vk, pk.vk);
        }
    }
    let mut degenerate = pk.vk.clone();
    degenerate.delta_g2 = ark_bn254::G2Affine::identity();
    let b = keys::verifying_key_to_bytes(&degenerate).unwrap();
    assert!(matches!(keys::verifying_key_from_bytes(&b), Err(KeyError::Malformed(_))));
    let mut empty = pk.vk.clone();
    empty.gamma_abc_g1.clear();
    let b = keys::verifying_key_to_bytes(&empty).unwrap();
    assert!(matches!(keys::verifying_key_from_bytes(&b), Err(KeyError::Malformed(_))));
}
