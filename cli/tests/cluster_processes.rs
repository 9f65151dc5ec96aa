//! `tacit cluster init`, then each party in its own process over QUIC on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tacit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tacit"))
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tacit-test-{name}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

#[test]
fn three_party_processes_multiply_over_quic() {
    let dir = scratch_dir("cluster");
    let base_port = 20_000 + (rand_suffix() % 30_000) as u16;
    let out = tacit()
        .args(["cluster", "init", "--parties", "3", "--threshold", "1", "--base-port", &base_port.to_string(), "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cluster = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(cluster.contains("threshold = 1") && cluster.contains("cert_fingerprint"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("party-1.key.der")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private keys are owner-only");
    }
    // Refuses to overwrite without --force.
    let again = tacit().args(["cluster", "init", "--dir"]).arg(&dir).output().unwrap();
    assert!(!again.status.success());

    let children: Vec<_> = (1..=3)
        .map(|id| {
            tacit()
                .args(["bench", "party", "--count", "5000", "--id", &id.to_string(), "--dir"])
                .arg(&dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for mut child in children {
        loop {
            if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            panic!("party process did not finish");
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "party failed: {}", String::from_utf8_lossy(&out.stderr));
        let figures: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(figures["online_bytes"].as_u64().unwrap() > 0);
        assert!(figures["rounds"].as_u64().unwrap() >= 1);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_mul_prints_one_json_object() {
    let out = tacit()
        .args([
            "bench",
            "mul",
            "--parties",
            "3",
            "--threshold",
            "1",
            "--count",
            "2048",
            "--transport",
            "memory",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for key in [
        "protocol",
        "parties",
        "count",
        "prep_s",
        "online_s",
        "online_mults_per_s",
        "total_mults_per_s",
        "bytes_sent_per_party",
        "rounds",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["count"], 2048);
    assert_eq!(v["parties"], 3);
}

#[test]
fn bad_parameters_are_refused() {
    let dir = scratch_dir("bad");
    let out =
        tacit().args(["cluster", "init", "--parties", "4", "--threshold", "2", "--dir"]).arg(&dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2t + 1"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn prove_bench_and_export() {
    let out = tacit().args(["prove", "bench", "--constraints", "600", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "constraints",
        "single_prover_s",
        "collaborative_s",
        "cpu_s_per_party",
        "ratio",
        "bytes_sent_per_party",
        "rounds",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert!(v["constraints"].as_u64().unwrap() >= 600);

    let dir = scratch_dir("export");
    let out = tacit().args(["prove", "export", "--hashes", "2", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("verification_key.json")).unwrap()).unwrap();
    assert_eq!(vk["protocol"], "groth16");
    assert_eq!(vk["curve"], "bn128");
    assert_eq!(vk["nPublic"], 1);
    let proof: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("proof.json")).unwrap()).unwrap();
    assert_eq!(proof["pi_a"].as_array().unwrap().len(), 3);
    let public: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.join("public.json")).unwrap()).unwrap();
    assert_eq!(public.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gas_bench_and_verifier_export() {
    let out = tacit().args(["bench", "gas", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["inputs"], serde_json::json!([1, 2, 4]));
    let exec = v["exec_gas"].as_array().unwrap();
    let floor = v["floor_gas"].as_array().unwrap();
    for (e, f) in exec.iter().zip(floor) {
        assert!(e.as_u64().unwrap() >= f.as_u64().unwrap(), "below the precompile floor: {e} < {f}");
    }

    let dir = scratch_dir("verifier");
    let out = tacit().args(["prove", "export", "--hashes", "1", "--out"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sol = dir.join("Verifier.sol");
    let out = tacit()
        .args(["verifier", "export", "--vk"])
        .arg(dir.join("verification_key.json"))
        .arg("--out")
        .arg(&sol)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&sol).unwrap();
    assert!(text.contains("contract TacitVerifier") && text.contains("pragma solidity"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `tacit bench sign` with the cggmp24 baseline missing, reporting no time, a zero time, and a
/// real report (a script standing in for `tacit-baseline-cggmp24`): only the last gives a ratio.
#[test]
fn sign_bench_reports_the_baseline_or_why_it_is_missing() {
    let dir = scratch_dir("sign-bench");
    let fake = |name: &str, json: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\necho '{json}'\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let cases = [
        (dir.join("absent"), Some("not found")),
        (fake("zero", r#"{"cggmp24_sign_ms": 0.0}"#), Some("reported no cggmp24_sign_ms")),
        (fake("text", r#"{"cggmp24_sign_ms": "fast"}"#), Some("reported no cggmp24_sign_ms")),
        (fake("real", r#"{"cggmp24_sign_ms": 812.5, "baseline": "cggmp24 0.7.0-alpha.3"}"#), None),
    ];
    for (baseline, missing) in cases {
        let out = tacit()
            .args(["bench", "sign", "--count", "2", "--batch", "2", "--baseline-runs", "1", "--json", "--dir"])
            .arg(dir.join("stores"))
            .env("TACIT_BASELINE_CGGMP24", &baseline)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p50 = v["sign_p50_ms"].as_f64().unwrap();
        assert!(p50 > 0.0, "{v}");
        match missing {
            Some(why) => {
                let said = v["cggmp24"]["missing"].as_str().unwrap();
                assert!(said.contains(why), "{said}");
                if why == "not found" {
                    assert!(said.contains("cargo build --release -p tacit-benches"), "{said}");
                }
                assert!(v["ratio"].is_null() && v["cggmp24_sign_ms"].is_null(), "{v}");
            }
            None => {
                assert_eq!(v["cggmp24_sign_ms"].as_f64(), Some(812.5));
                assert!((v["ratio"].as_f64().unwrap() - 812.5 / p50).abs() < 1e-9, "{v}");
            }
        }
        std::fs::remove_dir_all(dir.join("stores")).ok();
    }
    std::fs::remove_dir_all(&dir).ok();
}
