//! The generic Groth16 verifier and the result registry on revm, with real proofs from the
//! prover; and the committed artifacts against a fresh solc build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

use ark_bn254::{Bn254, Fr};
use ark_ff::{BigInteger, PrimeField};
use ark_groth16::VerifyingKey;
use revm::primitives::Address;
use tacit_contracts::bench::{gas_report, squares_proof};
use tacit_contracts::{
    eip1108_floor, is_published_calldata, publish_calldata, verify_proof_calldata, verify_proof_selector, LocalChain,
    Outcome, Word,
};
use tacit_prover::snarkjs::EvmProof;

struct Fixture {
    vk: VerifyingKey<Bn254>,
    evm: EvmProof,
}

fn fixture(n: usize, seed: u64) -> Fixture {
    let (vk, evm) = squares_proof(n, seed).unwrap();
    assert_eq!(evm.public_inputs.len(), n);
    Fixture { vk, evm }
}

fn deployed(f: &Fixture) -> (LocalChain, Address, EvmProof) {
    let mut chain = LocalChain::new();
    let verifier = chain.deploy_verifier(&f.vk).unwrap();
    (chain, verifier, f.evm.clone())
}

/// Adds two big-endian words (no overflow for the values used here).
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

fn modulus_word<F: PrimeField>() -> Word {
    F::MODULUS.to_bytes_be().try_into().unwrap()
}

/// Regression bound on execution gas: the EIP-1108 floor plus what this verifier measures
/// above it (622 + 341 n with solc 0.8.37 and revm 43), rounded up. The target of the issue,
/// floor plus 1,000, holds for n = 1 only: each public input costs two precompile calls at 100 gas of
/// warm access each (EIP-2929) plus ~140 gas of opcodes, which the floor does not count.
fn gas_bound(n: u64) -> u64 {
    eip1108_floor(n) + 700 + 350 * n
}

#[test]
fn real_proofs_verify_within_the_gas_floor() {
    for n in [1usize, 2, 4] {
        let f = fixture(n, 10 + n as u64);
        let (mut chain, verifier, evm) = deployed(&f);
        let r = chain.verify(verifier, &evm).unwrap();
        assert!(r.returned_true(), "n = {n}: {:?}", r.outcome);
        let floor = eip1108_floor(n as u64);
        println!(
            "gas n={n}: execution {} (tx {}), EIP-1108 floor {floor}, over floor {} (issue target: <= 1000)",
            r.execution_gas,
            r.tx_gas,
            r.execution_gas as i64 - floor as i64
        );
        assert!(r.execution_gas <= gas_bound(n as u64), "n = {n}: {} > {}", r.execution_gas, gas_bound(n as u64));
    }
}

#[test]
fn gas_report_rows() {
    let rows = gas_report().unwrap();
    assert_eq!(rows.iter().map(|r| r.n).collect::<Vec<_>>(), [1, 2, 4]);
    for r in &rows {
        assert!(r.execution_gas <= gas_bound(r.n as u64), "{r:?}");
        assert_eq!(r.over_floor, r.execution_gas as i64 - eip1108_floor(r.n as u64) as i64);
    }
    println!("{}", serde_json::to_string(&rows).unwrap());
}

#[test]
fn invalid_proofs_return_false_with_bounded_gas() {
    let n = 2;
    let f = fixture(n, 7);
    let (mut chain, verifier, good) = deployed(&f);
    let bound = gas_bound(n as u64);
    let q = modulus_word::<ark_bn254::Fq>();
    let r_mod = modulus_word::<Fr>();

    let mut cases: Vec<(String, EvmProof)> = Vec::new();
    for (word, name) in
        [(0, "A.x"), (1, "A.y"), (2, "B.x.c1"), (3, "B.x.c0"), (4, "B.y.c1"), (5, "B.y.c0"), (6, "C.x"), (7, "C.y")]
    {
        for bit in [0usize, 77, 250] {
            let mut p = good.clone();
            p.proof[word][31 - bit / 8] ^= 1 << (bit % 8);
            cases.push((format!("bit {bit} of {name} flipped"), p));
        }
    }
    for i in 0..n {
        let mut p = good.clone();
        p.public_inputs[i][31] ^= 1;
        cases.push((format!("input {i} changed"), p));
        let mut p = good.clone();
        p.public_inputs[i] = add_words(&p.public_inputs[i], &r_mod);
        cases.push((format!("input {i} + r"), p));
        let mut p = good.clone();
        p.public_inputs[i] = r_mod;
        cases.push((format!("input {i} = r"), p));
        let mut p = good.clone();
        p.public_inputs[i] = [0xff; 32];
        cases.push((format!("input {i} = 2^256 - 1"), p));
    }
    // Off the curve: (1, 3) (the generator is (1, 2)).
    let mut p = good.clone();
    p.proof[0] = [0; 32];
    p.proof[0][31] = 1;
    p.proof[1] = [0; 32];
    p.proof[1][31] = 3;
    cases.push(("A = (1, 3), off the curve".into(), p));
    let mut p = good.clone();
    p.proof[7] = [0; 32];
    cases.push(("C.y = 0".into(), p));
    // Non-canonical coordinates: y + q.
    let mut p = good.clone();
    p.proof[1] = add_words(&p.proof[1], &q);
    cases.push(("A.y + q".into(), p));
    let mut p = good.clone();
    p.proof[7] = add_words(&p.proof[7], &q);
    cases.push(("C.y + q".into(), p));
    let mut p = good.clone();
    p.proof[5] = add_words(&p.proof[5], &q);
    cases.push(("B.y.c0 + q".into(), p));
    // The point at infinity.
    for (range, name) in [(0..2, "A"), (2..6, "B"), (6..8, "C")] {
        let mut p = good.clone();
        for w in range {
            p.proof[w] = [0; 32];
        }
        cases.push((format!("{name} at infinity"), p));
    }
    // Another valid-looking proof: A and C swapped.
    let mut p = good.clone();
    p.proof.swap(0, 6);
    p.proof.swap(1, 7);
    cases.push(("A and C swapped".into(), p));

    let mut max_gas = 0;
    for (name, p) in &cases {
        let res = chain.verify(verifier, p).unwrap();
        assert!(res.returned_false(), "{name}: {:?}", res.outcome);
        assert!(res.execution_gas <= bound, "{name}: gas {} > {bound}", res.execution_gas);
        max_gas = max_gas.max(res.execution_gas);
    }
    println!("{} invalid proofs rejected, at most {max_gas} execution gas (bound {bound})", cases.len());

    // Calldata of the wrong length: false, bounded gas.
    let data = verify_proof_calldata(&good);
    for (name, d) in [
        ("one byte short", data[..data.len() - 1].to_vec()),
        ("one word short", data[..data.len() - 32].to_vec()),
        ("selector only", data[..4].to_vec()),
        ("one byte long", [data.clone(), vec![0]].concat()),
        ("one word long", [data.clone(), vec![0; 32]].concat()),
    ] {
        let res = chain.call(verifier, d).unwrap();
        assert!(res.returned_false(), "{name}: {:?}", res.outcome);
        assert!(res.execution_gas <= bound, "{name}: gas {}", res.execution_gas);
    }
    // Not a verifyProof call for this key: revert.
    for (name, d) in [
        ("empty", Vec::new()),
        ("three bytes", data[..3].to_vec()),
        ("selector for n = 3", [verify_proof_selector(3).to_vec(), data[4..].to_vec()].concat()),
    ] {
        let res = chain.call(verifier, d).unwrap();
        assert!(matches!(res.outcome, Outcome::Revert(ref d) if d.is_empty()), "{name}: {:?}", res.outcome);
    }
    // The untouched proof still verifies.
    assert!(chain.verify(verifier, &good).unwrap().returned_true());
}

#[test]
fn registry_publishes_once() {
    let f = fixture(2, 99);
    let (mut chain, verifier, good) = deployed(&f);
    let registry = chain.deploy_registry(verifier).unwrap();
    let id: Word = [0x42; 32];
    let other: Word = [0x43; 32];

    let published =
        |chain: &mut LocalChain, id: &Word| chain.call(registry, is_published_calldata(id)).unwrap().returned_true();
    assert!(!published(&mut chain, &id));

    // An invalid proof is refused and records nothing.
    let mut bad = good.clone();
    bad.public_inputs[0][31] ^= 1;
    let res = chain.call(registry, publish_calldata(&id, &bad)).unwrap();
    assert!(matches!(res.outcome, Outcome::Revert(_)), "{:?}", res.outcome);
    assert!(!published(&mut chain, &id));

    // Wrong number of inputs.
    let mut short = good.clone();
    short.public_inputs.pop();
    let res = chain.call(registry, publish_calldata(&id, &short)).unwrap();
    assert!(matches!(res.outcome, Outcome::Revert(_)), "{:?}", res.outcome);

    let res = chain.call(registry, publish_calldata(&id, &good)).unwrap();
    assert!(matches!(res.outcome, Outcome::Success(_)), "{:?}", res.outcome);
    println!("publish: execution gas {}", res.execution_gas);
    assert_eq!(res.logs.len(), 1);
    let log = &res.logs[0];
    assert_eq!(log.address, registry);
    let topics = log.data.topics();
    assert_eq!(topics.len(), 3);
    assert_eq!(
        topics[0].as_slice(),
        revm::primitives::keccak256("ResultPublished(bytes32,address,uint256[])".as_bytes()).as_slice()
    );
    assert_eq!(topics[1].as_slice(), id.as_slice());
    // Data: offset, length, inputs.
    let data = log.data.data.as_ref();
    assert_eq!(data.len(), 32 * (2 + good.public_inputs.len()));
    for (i, w) in good.public_inputs.iter().enumerate() {
        assert_eq!(&data[64 + 32 * i..96 + 32 * i], w.as_slice());
    }
    assert!(published(&mut chain, &id));

    // A second publish of the same id is refused, even with a valid proof.
    let res = chain.call(registry, publish_calldata(&id, &good)).unwrap();
    assert!(matches!(res.outcome, Outcome::Revert(_)), "{:?}", res.outcome);
    // Another id is fine.
    let res = chain.call(registry, publish_calldata(&other, &good)).unwrap();
    assert!(matches!(res.outcome, Outcome::Success(_)), "{:?}", res.outcome);
}

/// The committed Solidity and artifacts are what the pinned solc produces. Needs node and
/// `npm ci` in contracts/ (the README test command runs it).
#[test]
fn artifacts_match_a_fresh_solc_build() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        dir.join("node_modules/solc").exists(),
        "solc is not installed: run `npm ci` in contracts/ (scripts/test.sh does)"
    );
    let out = Command::new("node").arg("compile.cjs").arg("--check").current_dir(dir).output().expect("node");
    assert!(
        out.status.success(),
        "artifacts differ from a fresh solc build (run `node compile.cjs --write` in contracts/):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `export_verifier_solidity` compiles with solc, deploys with no arguments, accepts the
/// proof, and costs the same gas as the precompiled generic verifier. Needs node and `npm ci`.
#[test]
fn exported_solidity_compiles_and_verifies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        dir.join("node_modules/solc").exists(),
        "solc is not installed: run `npm ci` in contracts/ (scripts/test.sh does)"
    );
    let f = fixture(2, 5);
    let src = tacit_contracts::export_verifier_solidity(&f.vk, "SquaresVerifier").unwrap();
    assert!(tacit_contracts::export_verifier_solidity(&f.vk, "1bad").is_err());
    let tmp = std::env::temp_dir().join(format!("tacit-export-{}.sol", std::process::id()));
    std::fs::write(&tmp, &src).unwrap();
    let out = Command::new("node")
        .arg("compile.cjs")
        .arg("--file")
        .arg(&tmp)
        .arg("SquaresVerifier")
        .current_dir(dir)
        .output()
        .expect("node");
    let _ = std::fs::remove_file(&tmp);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = hex::decode(json["bytecode"].as_str().unwrap().trim_start_matches("0x")).unwrap();

    let (mut chain, generic, evm) = deployed(&f);
    let exported = chain.deploy("SquaresVerifier", code).unwrap();
    let a = chain.verify(exported, &evm).unwrap();
    let b = chain.verify(generic, &evm).unwrap();
    assert!(a.returned_true() && b.returned_true());
    assert_eq!(a.execution_gas, b.execution_gas);
    let mut bad = evm.clone();
    bad.public_inputs[1][31] ^= 1;
    assert!(chain.verify(exported, &bad).unwrap().returned_false());
}

#[test]
fn edge_input_counts_and_bad_keys() {
    // 0 and MAX_PUBLIC_INPUTS public inputs verify; one more is refused before deploying.
    for n in [0usize, tacit_contracts::MAX_PUBLIC_INPUTS] {
        let f = fixture(n, 3);
        let (mut chain, verifier, evm) = deployed(&f);
        let r = chain.verify(verifier, &evm).unwrap();
        assert!(r.returned_true(), "n = {n}: {:?}", r.outcome);
        assert!(r.execution_gas <= gas_bound(n as u64), "n = {n}: {}", r.execution_gas);
        let mut bad = evm.clone();
        bad.proof[6][31] ^= 1;
        assert!(chain.verify(verifier, &bad).unwrap().returned_false());
    }
    let f = fixture(tacit_contracts::MAX_PUBLIC_INPUTS + 1, 3);
    assert!(tacit_contracts::verifier_constructor_args(&f.vk).is_err());

    // The constructor itself refuses an IC point off the curve or a coordinate >= q.
    let f = fixture(1, 4);
    let args = tacit_contracts::verifier_constructor_args(&f.vk).unwrap();
    let code = tacit_contracts::verifier_artifact().unwrap().bytecode;
    let mut chain = LocalChain::new();
    // Words: 14 key words, offset, length, then IC[0].x at word 16.
    for (word, value) in [(16usize, None), (17, Some(modulus_word::<ark_bn254::Fq>())), (0, None)] {
        let mut a = args.clone();
        match value {
            Some(v) => a[32 * word..32 * word + 32].copy_from_slice(&v),
            None => a[32 * word + 31] ^= 1,
        }
        assert!(chain.deploy("Groth16Verifier", [code.clone(), a].concat()).is_err(), "word {word}");
    }
    assert!(chain.deploy("Groth16Verifier", [code, args].concat()).is_ok());
}
