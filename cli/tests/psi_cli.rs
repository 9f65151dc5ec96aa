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

/// A fresh scratch folder with a 3-party cluster (`tacit cluster init`) in it.
fn local_cluster(tag: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = dir.join("cluster").to_str().unwrap().to_string();
    let (ok, _, err) = tacit(&["cluster", "init", "--parties", "3", "--threshold", "1", "--dir", &cluster]);
    assert!(ok, "{err}");
    (dir, cluster)
}

#[test]
fn set_in_at_least_q_sets_through_the_cli() {
    let (dir, cluster) = local_cluster("tacit-psi-cli");
    let s = |p: &Path| p.to_str().unwrap().to_string();
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

/// `--prove`: the result with a proof every institution and the verifier contract check.
#[test]
fn proven_queries_through_the_cli() {
    let (dir, cluster) = local_cluster("tacit-psi-prove");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let csvs = [
        ("a.csv", "item,value\nalice,5\nbob,2\ncarol,3\n"),
        ("b.csv", "alice,7\nbob\ndave\n"),
        ("c.csv", "alice,1\ncarol\n"),
    ];
    let mut base: Vec<String> = ["psi", "run", "--cluster", &cluster, "--json", "--prove"].map(String::from).to_vec();
    for (name, body) in csvs {
        std::fs::write(dir.join(name), body).unwrap();
        base.extend(["--input".to_string(), s(&dir.join(name))]);
    }
    let run = |extra: &[&str]| {
        let mut all: Vec<&str> = base.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        tacit(&all)
    };
    let (ok, report, err) = run(&["--mode", "cardinality"]);
    assert!(ok, "{err}");
    assert_eq!(report["institutions"][0]["output"]["intersection_size"], 1, "{report}");
    assert!(report["proof"].as_str().unwrap().starts_with("verified by every institution and on chain"), "{report}");
    let (ok, report, err) = run(&["--mode", "sum", "--min-size", "1"]);
    assert!(ok, "{err}");
    assert_eq!(report["institutions"][2]["output"]["sum"], "13", "{report}");
    assert!(report["proof"].as_str().unwrap().starts_with("verified"), "{report}");
    // Withheld below the threshold, still proven.
    let (ok, report, err) = run(&["--mode", "sum", "--min-size", "2"]);
    assert!(ok, "{err}");
    assert_eq!(report["institutions"][0]["output"]["sum"], serde_json::Value::Null, "{report}");
    // Not for set queries.
    let (ok, _, _) = run(&["--mode", "set"]);
    assert!(!ok);
    // The demo reports the on-chain verification gas (one public input, five groups).
    let (ok, demo, err) = tacit(&["demo", "psi", "--items", "24", "--mode", "cardinality", "--prove", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(demo["matches_oracle"], true, "{demo}");
    assert_eq!(demo["verification_gas"], 465_107, "{demo}");
    // Published to the registry over the commitments the institutions posted.
    assert!(demo["publication_gas"].as_u64().unwrap() > 465_107, "{demo}");
    assert!(demo["proof"].as_str().unwrap().contains("published to a registry"), "{demo}");
    assert!(demo["ratio_to_target"].as_f64().unwrap() > 0.0, "{demo}");
    // Keys kept in a folder: generated by the first run, read by the second.
    let keys = s(&dir.join("keys"));
    let demo_keys = ["demo", "psi", "--items", "24", "--mode", "cardinality", "--prove", "--json", "--keys", &keys];
    let (ok, first, err) = tacit(&demo_keys);
    assert!(ok, "{err}");
    assert!(dir.join("keys").join("proving_key.bin").exists());
    let (ok, second, err) = tacit(&demo_keys);
    assert!(ok, "{err}");
    assert_eq!(
        (first["verification_gas"].clone(), second["verification_gas"].clone()),
        (465_107.into(), 465_107.into())
    );
    // Keys for another shape are refused.
    let (ok, _, err) = tacit(&["demo", "psi", "--items", "25", "--mode", "cardinality", "--prove", "--keys", &keys]);
    assert!(!ok && err.contains("holds keys for"), "{err}");
    // Above 2^12 items the query runs without proof and says so.
    let (ok, demo, err) =
        tacit(&["demo", "psi", "--items", "4097", "--overlap", "3", "--mode", "cardinality", "--prove", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(demo["proof"], "none: sets above 2^12 items run without proof", "{demo}");
    assert!(err.contains("run without proof"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three `tacit node` processes; three institutions, each its own `tacit psi join` process
/// with its own certificate, run one query file; a committed query checks the commitments.
#[test]
fn institutions_join_a_query_on_node_processes() {
    let dir = std::env::temp_dir().join(format!("tacit-psi-nodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let d = s(&dir);
    let base_port = (20_000 + std::process::id() % 30_000).to_string();
    let (ok, _, err) = tacit(&[
        "node",
        "init",
        "--dir",
        &d,
        "--parties",
        "3",
        "--threshold",
        "1",
        "--institutions",
        "3",
        "--base-port",
        &base_port,
    ]);
    assert!(ok, "{err}");
    let mut nodes: Vec<_> = (1..=3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_tacit"))
                .args(["node", "--config", &s(&dir.join(format!("party-{i}.toml")))])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let csvs = ["alice,5\nbob,7\ncarol,1\n", "alice,1\nbob,2\ndave,3\n", "bob,10\nalice,20\nerin,30\n"];
    let certs: Vec<String> = (1..=3).map(|k| s(&dir.join(format!("institution-{k}.cert.der")))).collect();
    for (k, body) in csvs.iter().enumerate() {
        std::fs::write(dir.join(format!("{k}.csv")), body).unwrap();
        let opening = s(&dir.join(format!("{k}.open.json")));
        assert!(tacit(&["psi", "commit", "--input", &s(&dir.join(format!("{k}.csv"))), "--out", &opening]).0);
    }
    let commitment = |k: usize| {
        let text = std::fs::read_to_string(dir.join(format!("{k}.open.json"))).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["commitment"].as_str().unwrap().to_string()
    };
    // Every institution joins `query` (with `extra(k)` appended); their JSON outputs.
    let join_all = |query: &str, extra: &dyn Fn(usize) -> Vec<String>| -> Vec<serde_json::Value> {
        let joins: Vec<_> = (0..3)
            .map(|k| {
                let mut args = vec![
                    "psi".to_string(),
                    "join".into(),
                    "--json".into(),
                    "--client".into(),
                    s(&dir.join(format!("institution-{}.toml", k + 1))),
                    "--query".into(),
                    query.to_string(),
                    "--input".into(),
                    s(&dir.join(format!("{k}.csv"))),
                ];
                args.extend(extra(k));
                Command::new(env!("CARGO_BIN_EXE_tacit"))
                    .args(&args)
                    .env("RUST_BACKTRACE", "0")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        joins
            .into_iter()
            .map(|child| {
                let out = child.wait_with_output().unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect()
    };
    let query = |name: &str, extra: &[String]| {
        let path = s(&dir.join(name));
        let mut args = vec!["psi".to_string(), "query".into(), "--out".into(), path.clone(), "--institution".into()];
        args.extend(certs.iter().cloned());
        args.extend(extra.iter().cloned());
        let (ok, _, err) = tacit(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "{err}");
        path
    };

    // Every node serves /metrics once it is up.
    let metrics_port: u16 = base_port.parse::<u16>().unwrap() + 200;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for i in 0..3u16 {
        while std::net::TcpStream::connect(("127.0.0.1", metrics_port + i)).is_err() {
            assert!(std::time::Instant::now() < deadline, "node {} did not start", i + 1);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let set_query = query("set.json", &["--mode".into(), "set".into()]);
    let outputs = join_all(&set_query, &|_| Vec::new());
    for (k, o) in outputs.iter().enumerate() {
        assert_eq!(o["institution"], k);
        let mut items: Vec<&str> =
            o["output"]["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        items.sort();
        assert_eq!(items, ["alice", "bob"]);
    }
    let sum_query = query(
        "sum.json",
        &["--mode".into(), "sum".into(), "--commitment".into(), commitment(0), commitment(1), commitment(2)],
    );
    for o in join_all(&sum_query, &|k| vec!["--opening".into(), s(&dir.join(format!("{k}.open.json")))]) {
        assert_eq!(o["output"]["sum"], "45");
    }

    // A proven query: keys made once (`psi setup`), copied to every node's data folder and
    // named by the query; each institution joins with the folder and checks the proof.
    let keys_root = dir.join("keys");
    let (ok, _, err) = tacit(&[
        "psi",
        "setup",
        "--institutions",
        "3",
        "--items",
        "3",
        "--mode",
        "cardinality",
        "--out",
        &s(&keys_root),
    ]);
    assert!(ok, "{err}");
    let keys = std::fs::read_dir(&keys_root).unwrap().next().unwrap().unwrap().path();
    let id = keys.file_name().unwrap().to_str().unwrap().to_string();
    for i in 1..=3 {
        let copy = dir.join(format!("data-{i}")).join("psi-keys").join(&id);
        std::fs::create_dir_all(&copy).unwrap();
        for file in std::fs::read_dir(&keys).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), copy.join(file.file_name())).unwrap();
        }
    }
    let chain = s(&dir.join("chain.jsonl"));
    let proven_query = query(
        "proven.json",
        &["--mode".into(), "cardinality".into(), "--keys".into(), s(&keys), "--chain".into(), chain.clone()],
    );
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&proven_query).unwrap()).unwrap();
    assert_eq!(file["spec"]["psi_query"]["proof_keys"], id.as_str(), "{file}");
    // Without the keys an institution cannot commit or check: refused before joining.
    let single = Command::new(env!("CARGO_BIN_EXE_tacit"))
        .args(["psi", "join", "--client", &s(&dir.join("institution-1.toml")), "--query", &proven_query])
        .args(["--input", &s(&dir.join("0.csv"))])
        .output()
        .unwrap();
    assert!(!single.status.success());
    assert!(String::from_utf8_lossy(&single.stderr).contains("give --keys"));
    let outputs = join_all(&proven_query, &|_| vec!["--keys".into(), s(&keys)]);
    for o in &outputs {
        assert_eq!(o["output"]["intersection_size"], 2, "{o}");
        assert_eq!(o["proof"], outputs[0]["proof"]);
    }
    assert!(outputs[0]["proof"].as_str().unwrap().len() > 100);

    // Publication: the query was opened in a registry on the chain; each institution posts
    // its commitment from its account, then anyone holding a joined output publishes.
    let joined: Vec<String> = (0..3)
        .map(|k| {
            let path = dir.join(format!("joined-{k}.json"));
            std::fs::write(&path, outputs[k].to_string()).unwrap();
            s(&path)
        })
        .collect();
    let publish = || tacit(&["psi", "publish", "--chain", &chain, "--query", &proven_query, "--joined", &joined[0]]);
    let post = |client: usize, output: usize| {
        let client = s(&dir.join(format!("institution-{}.toml", client + 1)));
        tacit(&[
            "psi",
            "post",
            "--chain",
            &chain,
            "--query",
            &proven_query,
            "--client",
            &client,
            "--joined",
            &joined[output],
        ])
    };
    let (ok, _, err) = publish();
    assert!(!ok && err.contains("MissingCommitment"), "{err}");
    let (ok, _, err) = post(2, 0);
    assert!(!ok && err.contains("not this institution's"), "{err}");
    for k in 0..3 {
        let (ok, posted, err) = post(k, k);
        assert!(ok, "{err}");
        assert_eq!(posted["institution"], k);
    }
    let (ok, _, err) = post(0, 0);
    assert!(!ok && err.contains("AlreadyPosted"), "{err}");
    let (ok, published, err) = publish();
    assert!(ok, "{err}");
    assert_eq!(published["published"], true, "{published}");
    assert!(published["gas"].as_u64().unwrap() > 465_107, "{published}");
    let (ok, _, err) = publish();
    assert!(!ok && err.contains("AlreadyPublished"), "{err}");
    for node in &mut nodes {
        node.kill().unwrap();
        node.wait().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
