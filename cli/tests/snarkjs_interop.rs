//! The reference implementation accepts Tacit's export: `snarkjs groth16 verify` (pinned in
//! tools/snarkjs, installed by scripts/test.sh with `npm ci`) on a collaborative proof, and
//! rejects the same proof with a different public input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

fn snarkjs() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/snarkjs/node_modules/snarkjs/build/cli.cjs");
    assert!(path.exists(), "snarkjs is not installed: run `npm ci` in tools/snarkjs (scripts/test.sh does)");
    path
}

fn verify(dir: &std::path::Path, public: &str) -> (bool, String) {
    let out = Command::new("node")
        .arg(snarkjs())
        .args(["groth16", "verify"])
        .arg(dir.join("verification_key.json"))
        .arg(dir.join(public))
        .arg(dir.join("proof.json"))
        .output()
        .expect("node must be installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("OK"), text)
}

#[test]
fn snarkjs_verifies_a_collaborative_proof() {
    let dir = std::env::temp_dir().join(format!("tacit-snarkjs-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tacit"))
        .args(["prove", "export", "--hashes", "3", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, text) = verify(&dir, "public.json");
    assert!(ok, "snarkjs rejected the proof: {text}");

    let public: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.join("public.json")).unwrap()).unwrap();
    let wrong: Vec<String> = public.iter().map(|v| if v == "1" { "2".into() } else { "1".into() }).collect();
    std::fs::write(dir.join("wrong_public.json"), serde_json::to_string(&wrong).unwrap()).unwrap();
    let (ok, text) = verify(&dir, "wrong_public.json");
    assert!(!ok, "snarkjs accepted a wrong public input: {text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tacit_demo_auction_settles_and_snarkjs_verifies_its_proof() {
    let dir = std::env::temp_dir().join(format!("tacit-demo-out-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tacit"))
        .args(["demo", "auction", "--bidders", "4", "--kind", "uniform:2", "--invalid", "1", "--json", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("exactly one JSON object");
    for key in ["kind", "bidders", "winners", "price", "mpc_s", "prove_s", "settle_gas", "verified_on_chain"] {
        assert!(report.get(key).is_some(), "missing {key} in {report}");
    }
    assert_eq!(report["kind"], "uniform:2");
    assert_eq!(report["verified_on_chain"], true);
    assert_eq!(report["winners"].as_array().unwrap().len(), 2);
    // Bidders submit concurrently, so the misbehaving one may hold any index.
    assert_eq!(report["excluded"].as_array().unwrap().len(), 1);
    let (ok, text) = verify(&dir, "public.json");
    assert!(ok, "snarkjs rejected the settlement proof: {text}");
    std::fs::remove_dir_all(&dir).ok();
}
