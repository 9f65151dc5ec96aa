//! `Groth16CommittedVerifier` on revm with real committed proofs: a permutation check (one
//! public input, two committed groups, the challenge), tampered proofs refused on chain and by
//! the Rust verifier alike, keys outside the verifier's limits refused, and exact gas.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::{Fq, Fq2, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInteger, PrimeField, Zero};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_std::rand::{rngs::StdRng, SeedableRng};
use ark_std::UniformRand;
use revm::primitives::Address;
use tacit_contracts::bench::{committed_gas, committed_squares_proof};
use tacit_contracts::committed::{committed_eip1108_floor, committed_verification_gas};
use tacit_contracts::{
    committed_verifier_artifact, committed_verifier_constructor_args, verify_committed_selector, verify_proof_selector,
    CommittedEvmProof, LocalChain, Outcome, Word, MAX_COMMITTED_INPUTS, MAX_GROUPS,
};
use tacit_prover::committed::{self, CommitLayout, CommittedKeys, CommittedProof};
use tacit_prover::qap::{matrices_for_setup, synthesize_for_proving};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Public `total = Σ a_i`; group 0 holds `a_1..a_k` and a blinder, group 1 `b_1..b_k` and a
/// blinder; the challenge `c` is the last public input. Constrains `Π (c − a_i) = Π (c − b_i)`,
/// which for a challenge drawn after both lists are committed means `b` permutes `a`.
#[derive(Clone)]
struct Shuffle {
    k: usize,
    lists: Option<[Vec<Fr>; 2]>,
    blinders: [Fr; 2],
    challenge: Fr,
}

impl Shuffle {
    /// Instance variables `[1, total, a.., ra, b.., rb, c]`.
    fn layout(k: usize) -> CommitLayout {
        CommitLayout::new(2 * k + 5, vec![2..k + 3, k + 3..2 * k + 4], 2 * k + 4).unwrap()
    }
}

impl ConstraintSynthesizer<Fr> for Shuffle {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let missing = SynthesisError::AssignmentMissing;
        let get = |l: usize, i: usize| self.lists.as_ref().map(|ls| ls[l][i]).ok_or(missing);
        let total = cs.new_input_variable(|| self.lists.as_ref().map(|ls| ls[0].iter().sum()).ok_or(missing))?;
        let mut vars = [Vec::new(), Vec::new()];
        for (l, list) in vars.iter_mut().enumerate() {
            for i in 0..self.k {
                list.push(cs.new_input_variable(|| get(l, i))?);
            }
            let _blinder = cs.new_input_variable(|| Ok(self.blinders[l]))?;
        }
        let c = cs.new_input_variable(|| Ok(self.challenge))?;
        let sum = vars[0].iter().fold(LinearCombination::zero(), |lc, v| lc + *v);
        cs.enforce_r1cs_constraint(|| sum, || Variable::One.into(), || total.into())?;
        let mut products = Vec::new();
        for (l, list) in vars.iter().enumerate() {
            let mut acc = LinearCombination::from(c) - list[0];
            let mut value = get(l, 0).map(|x| self.challenge - x);
            for (i, v) in list.iter().enumerate().skip(1) {
                value = value.and_then(|p| get(l, i).map(|x| p * (self.challenge - x)));
                let next = cs.new_witness_variable(|| value)?;
                cs.enforce_r1cs_constraint(|| acc.clone(), || LinearCombination::from(c) - *v, || next.into())?;
                acc = next.into();
            }
            products.push(acc);
        }
        let (pa, pb) = (products[0].clone(), products[1].clone());
        cs.enforce_r1cs_constraint(|| pa, || Variable::One.into(), || pb)?;
        Ok(())
    }
}

const K: usize = 3;

struct Fixture {
    keys: CommittedKeys,
    public: Vec<Fr>,
    proof: CommittedProof,
    evm: CommittedEvmProof,
}

fn fixture() -> Fixture {
    let blank = Shuffle { k: K, lists: None, blinders: [Fr::zero(); 2], challenge: Fr::zero() };
    let matrices = matrices_for_setup(blank).unwrap();
    let keys = committed::setup(&matrices, Shuffle::layout(K), &mut rng(21)).unwrap();
    let mut r = rng(22);
    let a: Vec<Fr> = (0..K).map(|_| Fr::rand(&mut r)).collect();
    let b = vec![a[2], a[0], a[1]];
    let circuit = |challenge| Shuffle {
        k: K,
        lists: Some([a.clone(), b.clone()]),
        blinders: [Fr::from(5u64), Fr::from(7u64)],
        challenge,
    };
    let (_, partial) = synthesize_for_proving(circuit(Fr::zero())).unwrap();
    let challenge = keys.challenge_for(&partial).unwrap();
    let (matrices, z) = synthesize_for_proving(circuit(challenge)).unwrap();
    let proof = keys.prove(&matrices, &z, &mut rng(23)).unwrap();
    let public = keys.layout.public_inputs(&z).unwrap();
    assert_eq!(public, vec![a.iter().sum::<Fr>()]);
    assert!(keys.vk.verify(&public, &proof).unwrap());
    let evm = CommittedEvmProof::new(&proof, &public);
    Fixture { keys, public, proof, evm }
}

fn deployed(f: &Fixture) -> (LocalChain, Address) {
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&f.keys.vk).unwrap();
    (chain, verifier)
}

fn g1_words(p: &G1Affine) -> [Word; 2] {
    let word = |x: Fq| -> Word { x.into_bigint().to_bytes_be().try_into().unwrap() };
    p.xy().map_or([[0; 32]; 2], |(x, y)| [word(x), word(y)])
}

fn modulus_word<F: PrimeField>() -> Word {
    F::MODULUS.to_bytes_be().try_into().unwrap()
}

/// `a + b` as 256-bit big-endian words (no overflow for the values used here).
fn add_words(a: &Word, b: &Word) -> Word {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = a[i] as u16 + b[i] as u16 + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

fn small(v: u8) -> Word {
    let mut w = [0u8; 32];
    w[31] = v;
    w
}

/// A point of the twist that is on the curve but not in the order-r subgroup.
fn g2_outside_subgroup() -> G2Affine {
    (1u64..)
        .filter_map(|i| G2Affine::get_point_from_x_unchecked(Fq2::new(Fq::from(i), Fq::zero()), false))
        .find(|p| p.is_on_curve() && !p.is_in_correct_subgroup_assuming_on_curve())
        .unwrap()
}

#[test]
fn a_committed_proof_verifies_on_chain_with_exact_gas() {
    let f = fixture();
    let (mut chain, verifier) = deployed(&f);
    let r = chain.verify_committed(verifier, &f.evm).unwrap();
    assert!(r.returned_true(), "{:?}", r.outcome);
    let (n, s) = (f.keys.vk.num_public_inputs() as u64, f.keys.vk.num_groups() as u64);
    assert_eq!((n, s), (1, 2));
    println!(
        "committed verifier, N = {n}, S = {s}: execution gas {} (tx {}), precompiles (EIP-1108) {}",
        r.execution_gas,
        r.tx_gas,
        committed_eip1108_floor(n, s)
    );
    assert_eq!(r.execution_gas, committed_verification_gas(n, s));
    assert_eq!(r.execution_gas, 323_359);
    // The words decode back to the proof.
    let (public, proof) = f.evm.to_ark().unwrap();
    assert_eq!((public, proof), (f.public.clone(), f.proof.clone()));
    // The key's sizes, as the contract reports them.
    let mut word = |data: Vec<u8>| chain.view(verifier, data).unwrap();
    let selector = |sig: &str| revm::primitives::keccak256(sig.as_bytes())[..4].to_vec();
    assert_eq!(word(selector("publicInputCount()")), small(1));
    assert_eq!(word(selector("groupCount()")), small(2));
}

#[test]
fn tampered_committed_proofs_return_false_and_the_rust_verifier_agrees() {
    let f = fixture();
    let (mut chain, verifier) = deployed(&f);
    let good = &f.evm;
    let valid_gas = committed_verification_gas(1, 2);
    let q = modulus_word::<Fq>();
    let r_mod = modulus_word::<Fr>();
    let point = |p: G1Projective| g1_words(&p.into_affine());
    let d = |g: usize| f.proof.groups[g].commitment.into_group();
    let p = |g: usize| f.proof.groups[g].knowledge.into_group();

    let mut cases: Vec<(String, CommittedEvmProof)> = Vec::new();
    let mut case = |name: &str, edit: &dyn Fn(&mut CommittedEvmProof)| {
        let mut e = good.clone();
        edit(&mut e);
        cases.push((name.to_string(), e));
    };
    // Each commitment replaced by another valid one (knowledge proof included).
    for g in 0..2 {
        let values: Vec<Fr> = (0..=K).map(|i| Fr::from(i as u64 + 11)).collect();
        let other = f.keys.commitment_keys[g].commit(&values).unwrap();
        let (dw, pw) = (g1_words(&other.commitment), g1_words(&other.knowledge));
        case(&format!("group {g} committed to another list"), &|e| {
            e.commitments[g] = dw;
            e.knowledge[g] = pw;
        });
    }
    // Weight moved between the groups: Σ D_g unchanged (so is vk_x), the challenge changes and
    // the knowledge proofs fail; also with P moved by σ_1·K (known for group 1's points only).
    let k = f.keys.commitment_keys[1].basis[0].into_group();
    let sk = f.keys.commitment_keys[1].knowledge[0].into_group();
    case("D_0 + K, D_1 - K", &|e| {
        e.commitments[0] = point(d(0) + k);
        e.commitments[1] = point(d(1) - k);
    });
    case("D_0 + K, D_1 - K, P_0 + σ_1·K, P_1 - σ_1·K", &|e| {
        e.commitments[0] = point(d(0) + k);
        e.commitments[1] = point(d(1) - k);
        e.knowledge[0] = point(p(0) + sk);
        e.knowledge[1] = point(p(1) - sk);
    });
    // Knowledge proofs offset against each other: an unweighted product of the two checks
    // would accept this.
    let e_pt = G1Projective::generator() * Fr::from(12345u64);
    case("P_0 + E, P_1 - E", &|e| {
        e.knowledge[0] = point(p(0) + e_pt);
        e.knowledge[1] = point(p(1) - e_pt);
    });
    for g in 0..2 {
        case(&format!("group {g}: identity commitment and knowledge proof"), &|e| {
            e.commitments[g] = [[0; 32]; 2];
            e.knowledge[g] = [[0; 32]; 2];
        });
        case(&format!("knowledge proof {g} changed"), &|e| {
            e.knowledge[g] = point(p(g) + G1Projective::generator());
        });
        case(&format!("knowledge proof {g} = commitment {g}"), &|e| e.knowledge[g] = e.commitments[g]);
        case(&format!("knowledge proof {g} at infinity"), &|e| e.knowledge[g] = [[0; 32]; 2]);
        case(&format!("commitment {g} at infinity"), &|e| e.commitments[g] = [[0; 32]; 2]);
        case(&format!("commitment {g}.y + q"), &|e| e.commitments[g][1] = add_words(&e.commitments[g][1], &q));
        case(&format!("knowledge proof {g}.x + q"), &|e| e.knowledge[g][0] = add_words(&e.knowledge[g][0], &q));
        case(&format!("commitment {g} = (1, 3), off the curve"), &|e| e.commitments[g] = [small(1), small(3)]);
        case(&format!("knowledge proof {g} = (1, 3), off the curve"), &|e| e.knowledge[g] = [small(1), small(3)]);
    }
    case("groups swapped", &|e| {
        e.commitments.swap(0, 1);
        e.knowledge.swap(0, 1);
    });
    case("commitments swapped", &|e| e.commitments.swap(0, 1));
    case("public input + 1", &|e| e.public_inputs[0][31] ^= 1);
    case("public input + r", &|e| e.public_inputs[0] = add_words(&e.public_inputs[0], &r_mod));
    case("public input = r", &|e| e.public_inputs[0] = r_mod);
    case("public input = 2^256 - 1", &|e| e.public_inputs[0] = [0xff; 32]);
    for (w, name) in [(0, "A.x"), (2, "B.x.c1"), (5, "B.y.c0"), (7, "C.y")] {
        case(&format!("bit 3 of {name} flipped"), &|e| e.proof[w][31] ^= 8);
    }
    case("A.y + q", &|e| e.proof[1] = add_words(&e.proof[1], &q));
    case("B.y.c0 + q", &|e| e.proof[5] = add_words(&e.proof[5], &q));
    case("A = (1, 3), off the curve", &|e| {
        e.proof[0] = small(1);
        e.proof[1] = small(3);
    });
    let outside = g2_outside_subgroup();
    let (bx, by) = outside.xy().unwrap();
    let bw = [bx.c1, bx.c0, by.c1, by.c0].map(|x| -> Word { x.into_bigint().to_bytes_be().try_into().unwrap() });
    case("B on the twist, outside the subgroup", &|e| e.proof[2..6].copy_from_slice(&bw));
    case("A and C swapped", &|e| {
        e.proof.swap(0, 6);
        e.proof.swap(1, 7);
    });

    let mut representable = 0;
    for (name, e) in &cases {
        let res = chain.verify_committed(verifier, e).unwrap();
        assert!(res.returned_false(), "{name}: {:?}", res.outcome);
        assert!(res.execution_gas <= valid_gas, "{name}: gas {} > {valid_gas}", res.execution_gas);
        // The Rust verifier agrees wherever the words are a proof at all.
        if let Ok((public, proof)) = e.to_ark() {
            assert!(!f.keys.vk.verify(&public, &proof).unwrap(), "{name}: accepted by the Rust verifier");
            representable += 1;
        }
    }
    println!("{} tampered committed proofs refused ({representable} representable in Rust)", cases.len());
    assert!(representable >= 18);

    // Calldata of the wrong length: false.
    let data = good.calldata();
    for (name, d) in [
        ("one byte short", data[..data.len() - 1].to_vec()),
        ("one word short", data[..data.len() - 32].to_vec()),
        ("selector only", data[..4].to_vec()),
        ("one byte long", [data.clone(), vec![0]].concat()),
        ("one word long", [data.clone(), vec![0; 32]].concat()),
    ] {
        let res = chain.call(verifier, d).unwrap();
        assert!(res.returned_false(), "{name}: {:?}", res.outcome);
        assert!(res.execution_gas <= valid_gas, "{name}: gas {}", res.execution_gas);
    }
    // Not this key's verifyProof: revert with no data.
    for (name, d) in [
        ("empty", Vec::new()),
        ("three bytes", data[..3].to_vec()),
        ("selector for S = 3", [verify_committed_selector(1, 3).to_vec(), data[4..].to_vec()].concat()),
        ("selector for N = 2", [verify_committed_selector(2, 2).to_vec(), data[4..].to_vec()].concat()),
        ("plain Groth16 selector", [verify_proof_selector(1).to_vec(), data[4..].to_vec()].concat()),
    ] {
        let res = chain.call(verifier, d).unwrap();
        assert!(matches!(res.outcome, Outcome::Revert(ref d) if d.is_empty()), "{name}: {:?}", res.outcome);
    }
    // Untouched, it still verifies.
    assert!(chain.verify_committed(verifier, good).unwrap().returned_true());
}

#[test]
fn keys_outside_the_verifier_are_refused() {
    let f = fixture();
    // No group.
    let mut none = f.keys.vk.clone();
    none.sigma_g2.clear();
    assert!(committed_verifier_constructor_args(&none).is_err());
    assert!(LocalChain::new().deploy_committed_verifier(&none).is_err());
    // An identity sigma (it would accept any commitment with P = 0).
    let mut weak = f.keys.vk.clone();
    weak.sigma_g2[1] = G2Affine::zero();
    assert!(committed_verifier_constructor_args(&weak).is_err());
    // No point for the challenge.
    let mut short = f.keys.vk.clone();
    short.vk.gamma_abc_g1.truncate(1);
    assert!(committed_verifier_constructor_args(&short).is_err());
    // More groups than the verifier takes.
    let mut many = f.keys.vk.clone();
    many.sigma_g2 = vec![many.sigma_g2[0]; MAX_GROUPS + 1];
    assert!(committed_verifier_constructor_args(&many).is_err());
    // More public inputs than the verifier takes.
    let (vk, _) = committed_squares_proof(MAX_COMMITTED_INPUTS + 1, 1, 1).unwrap();
    assert_eq!(vk.num_public_inputs(), MAX_COMMITTED_INPUTS + 1);
    assert!(committed_verifier_constructor_args(&vk).is_err());

    // The constructor itself refuses what it can check: a sigma at infinity, an IC point off
    // the curve, a coordinate >= q, IC without the challenge's point.
    let args = committed_verifier_constructor_args(&f.keys.vk).unwrap();
    let code = committed_verifier_artifact().unwrap().bytecode;
    let word_at =
        |args: &[u8], i: usize| u64::from_be_bytes(args[32 * i + 24..32 * i + 32].try_into().unwrap()) as usize;
    // Head: 14 key words, then the offsets of ic and sigma (in bytes).
    let (ic_at, sigma_at) = (word_at(&args, 14) / 32, word_at(&args, 15) / 32);
    assert_eq!(word_at(&args, ic_at), 3);
    assert_eq!(word_at(&args, sigma_at), 2);
    let mut chain = LocalChain::new();
    let deploy =
        |chain: &mut LocalChain, a: Vec<u8>| chain.deploy("Groth16CommittedVerifier", [code.clone(), a].concat());
    let mut bad = args.clone();
    bad[32 * (sigma_at + 5)..32 * (sigma_at + 9)].fill(0);
    assert!(deploy(&mut chain, bad).is_err(), "sigma[1] at infinity");
    let mut bad = args.clone();
    bad[32 * (ic_at + 1) + 31] ^= 1;
    assert!(deploy(&mut chain, bad).is_err(), "IC[0] off the curve");
    let mut bad = args.clone();
    bad[32 * (sigma_at + 1)..32 * (sigma_at + 2)].copy_from_slice(&modulus_word::<Fq>());
    assert!(deploy(&mut chain, bad).is_err(), "sigma[0].x.c1 = q");
    let mut bad = args.clone();
    bad[32 * ic_at + 31] = 1;
    assert!(deploy(&mut chain, bad).is_err(), "IC of length 1");
    assert!(deploy(&mut chain, args).is_ok());
}

/// Gas is `committed_verification_gas(n, s)` exactly, over the edges of the limits; every
/// key verifies its proof and refuses a changed one.
#[test]
fn committed_gas_is_exact_across_inputs_and_groups() {
    let mut wrong = Vec::new();
    for (n, s) in [
        (0, 1),
        (1, 1),
        (2, 1),
        (5, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (0, MAX_GROUPS),
        (MAX_COMMITTED_INPUTS, MAX_GROUPS),
    ] {
        let gas = committed_gas(n, s).unwrap();
        let (n64, s64) = (n as u64, s as u64);
        println!(
            "committed verifier N = {n}, S = {s}: {gas} gas; formula {}, precompiles {}",
            committed_verification_gas(n64, s64),
            committed_eip1108_floor(n64, s64)
        );
        if gas != committed_verification_gas(n64, s64) {
            wrong.push((n, s, gas));
        }
    }
    assert!(wrong.is_empty(), "(N, S, gas) off the formula: {wrong:?}");
    let (vk, evm) = committed_squares_proof(MAX_COMMITTED_INPUTS, MAX_GROUPS, 2).unwrap();
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_committed_verifier(&vk).unwrap();
    assert!(chain.verify_committed(verifier, &evm).unwrap().returned_true());
    let mut bad = evm.clone();
    bad.knowledge.swap(MAX_GROUPS - 2, MAX_GROUPS - 1);
    assert!(chain.verify_committed(verifier, &bad).unwrap().returned_false());
    let mut bad = evm;
    bad.public_inputs[MAX_COMMITTED_INPUTS - 1][31] ^= 1;
    assert!(chain.verify_committed(verifier, &bad).unwrap().returned_false());
}
