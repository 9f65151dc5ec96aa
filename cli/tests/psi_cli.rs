//! `tacit psi run --mode set --min-sets q` and `tacit demo psi --min-sets q --json` as
//! separate processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn tacit(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tacit")).args(args).env("RUST_BACKTRACE", "0").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn set_in_at_least_q_sets_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("tacit-psi-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cluster = s(&dir.join("cluster"));
    let (ok, _, err) = tacit(&["cluster", "init", "--parties", "3", "--threshold", "1", "--dir", &cluster]);
    assert!(ok, "{err}");
    let csvs = [
        ("a.csv", "item,value\nalice,1\nbob,2\ncarol,3\n"),
        ("b.csv", "alice\nbob\ndave\n"),
        ("c.csv", "alice\ncarol\nerin\n"),
    ];
    let mut args: Vec<String> = ["psi", "run", "--cluster", &cluster, "--json"].map(String::from).to_vec();
    for (name, body) in csvs {
        std::fs::write(dir.join(name), body).unwrap();
        args.extend(["--input".to_string(), s(&dir.join(name))]);
    }
    let run = |extra: &[&str]| {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        if !extra.contains(&"--mode") {
            all.extend(["--mode", "set"]);
        }
        all.extend_from_slice(extra);
        tacit(&all)
    };
    let items = |report: &serde_json::Value, i: usize| -> Vec<String> {
        let mut v: Vec<String> = report["institutions"][i]["output"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let (ok, report, err) = run(&["--min-sets", "2"]);
    assert!(ok, "{err}");
    assert_eq!(report["min_sets"], 2);
    assert_eq!(items(&report, 0), ["alice", "bob", "carol"]);
    assert_eq!(items(&report, 1), ["alice", "bob"]);
    assert_eq!(items(&report, 2), ["alice", "carol"]);
    // Default: the intersection.
    let (ok, report, err) = run(&[]);
    assert!(ok, "{err}");
    assert_eq!((report["min_sets"].clone(), items(&report, 1)), (3.into(), vec!["alice".to_string()]));
    // Out of range, or with another mode: refused.
    for extra in [&["--min-sets", "4"][..], &["--min-sets", "1"], &["--min-sets", "2", "--mode", "sum"]] {
        let (ok, _, _) = run(extra);
        assert!(!ok, "{extra:?}");
    }
    // The demo plants items in the first q sets only and checks the oracle.
    let (ok, demo, err) =
        tacit(&["demo", "psi", "--institutions", "4", "--items", "64", "--mode", "set", "--min-sets", "3", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(demo["matches_oracle"], true, "{demo}");
    assert_eq!((demo["intersection_size"].clone(), demo["selected_size"].clone()), (8.into(), 16.into()), "{demo}");
    let _ = std::fs::remove_dir_all(&dir);
}
