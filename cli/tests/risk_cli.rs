//! `tacit cluster init`, `tacit risk example`, `tacit risk run` (query and collaborative
//! proof, each a separate process), the proof files checked with ark-groth16 from their
//! snarkjs JSON; and `tacit demo risk --json`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

use ark_bn254::Bn254;
use ark_groth16::Groth16;
use ark_snark::SNARK;
use tacit_prover::snarkjs::{
    proof_from_snarkjs, public_from_snarkjs, verification_key_from_snarkjs, SnarkjsProof, SnarkjsVerificationKey,
};

fn tacit(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tacit")).args(args).output().unwrap();
    assert!(out.status.success(), "tacit {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_risk_query_is_run_proved_and_verified_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("tacit-risk-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    tacit(&["cluster", "init", "--parties", "3", "--threshold", "1", "--dir", &s(&dir.join("cluster"))]);
    let example = dir.join("example");
    tacit(&["risk", "example", "--out", &s(&example), "--institutions", "3", "--rows", "300", "--keys", "10"]);
    let mut args: Vec<String> =
        ["risk", "run", "--cluster", &s(&dir.join("cluster")), "--template"].iter().map(|a| a.to_string()).collect();
    args.push(s(&example.join("template.toml")));
    args.push("--input".into());
    for i in 1..=3 {
        args.push(s(&example.join(format!("inst-{i}.csv"))));
    }
    args.extend(["--ledgers".into(), s(&dir.join("ledgers")), "--budget".into(), "1.5".into(), "--json".into()]);
    let mut first = args.clone();
    first.extend(["--proof-dir".into(), s(&dir.join("proof"))]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let report = tacit(&first);
    assert_eq!(report["outcome"]["outcome"], "released", "{report}");
    assert_eq!((report["proved"].clone(), report["verified"].clone()), (true.into(), true.into()), "{report}");
    let cells = report["outcome"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 10);
    // The last key is fed by one institution only: suppressed, with its rule.
    assert_eq!(cells[9]["status"], "suppressed");
    assert_eq!(cells[9]["few_contributors"], true);
    assert!(cells[..9].iter().all(|c| c["status"] == "released" && c["figures"]["score"].is_number()));

    // The files a verifier gets: proof, public inputs, verifying key (snarkjs JSON).
    let vk =
        verification_key_from_snarkjs(&read_json::<SnarkjsVerificationKey>(&dir.join("proof/verification_key.json")))
            .unwrap();
    let proof = proof_from_snarkjs(&read_json::<SnarkjsProof>(&dir.join("proof/proof.json"))).unwrap();
    let public = public_from_snarkjs(&read_json::<Vec<String>>(&dir.join("proof/public.json"))).unwrap();
    assert_eq!(public.len() as u64, report["public_inputs"].as_u64().unwrap());
    let pvk = Groth16::<Bn254>::process_vk(&vk).unwrap();
    assert!(Groth16::<Bn254>::verify_proof(&pvk, &proof, &public).unwrap());
    let mut tampered = public.clone();
    *tampered.last_mut().unwrap() += ark_bn254::Fr::from(1u64);
    assert!(!Groth16::<Bn254>::verify_proof(&pvk, &proof, &tampered).unwrap());

    // The ledgers persist: a second run would exceed the budget and is refused unproved.
    let again: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = tacit(&again);
    assert_eq!(report["outcome"]["outcome"], "refused", "{report}");
    assert_eq!(report["proved"], false);
    assert!(report["verified"].is_null());

    // The demo reports the required keys and the proof's verdict.
    let demo = tacit(&["demo", "risk", "--institutions", "3", "--rows", "300", "--keys", "10", "--json"]);
    for key in ["institutions", "rows", "seconds", "released", "suppressed", "epsilon_spent", "proof_seconds"] {
        assert!(demo[key].is_number(), "{key}: {demo}");
    }
    assert_eq!((demo["proved"].clone(), demo["verified"].clone()), (true.into(), true.into()), "{demo}");
    std::fs::remove_dir_all(&dir).ok();
}
