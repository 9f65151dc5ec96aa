//! `tacit auction create|bid|close|settle` on one directory, each a separate process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::Command;

fn tacit(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tacit")).args(args).arg("--dir").arg(dir).output().unwrap()
}

#[test]
fn an_auction_across_separate_commands() {
    let dir = std::env::temp_dir().join(format!("tacit-auction-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    ok(tacit(&["auction", "create", "--kind", "first", "--capacity", "4"], &dir));
    assert!(!tacit(&["auction", "create"], &dir).status.success(), "refuses to overwrite");
    for amount in ["300", "700", "450"] {
        ok(tacit(&["auction", "bid", "--amount", amount], &dir));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("bidder-0.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "bidder secrets are owner-only");
    }
    assert!(!tacit(&["auction", "settle"], &dir).status.success(), "bidding still open");
    ok(tacit(&["auction", "close"], &dir));
    assert!(!tacit(&["auction", "bid", "--amount", "900"], &dir).status.success(), "late bid refused");
    let report: serde_json::Value =
        serde_json::from_str(ok(tacit(&["auction", "settle", "--json"], &dir)).trim()).unwrap();
    assert_eq!((report["winners"].clone(), report["price"].clone()), (serde_json::json!([1]), serde_json::json!(700)));
    assert!(!tacit(&["auction", "settle"], &dir).status.success(), "settles once");
    std::fs::remove_dir_all(&dir).ok();
}

/// The same commands against three `tacit node` processes that follow the auction's chain
/// journal: `create --nodes`, `host`, bids sent to the nodes' bid endpoints, `settle --client`.
#[test]
fn an_auction_hosted_by_node_processes() {
    let root = std::env::temp_dir().join(format!("tacit-auction-nodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (nodes_dir, dir) = (root.join("nodes"), root.join("auction"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tacit")).args(args).env("RUST_BACKTRACE", "0").output().unwrap()
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let base_port = (20_000 + (std::process::id() + 7_919) % 30_000).to_string();
    let journal = s(&dir.join("chain.jsonl"));
    ok(run(&["node", "init", "--dir", &s(&nodes_dir), "--base-port", &base_port, "--chain", &journal]));
    let client = s(&nodes_dir.join("client.toml"));
    ok(tacit(&["auction", "create", "--kind", "vickrey", "--capacity", "4", "--nodes", &client], &dir));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("auction.json")).unwrap()).unwrap();
    let hash = file["proving_key"].as_str().unwrap();
    for i in 1..=3 {
        let keys = nodes_dir.join(format!("data-{i}")).join("auction-keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::copy(dir.join("proving_key.bin"), keys.join(format!("{hash}.pk"))).unwrap();
    }
    let mut nodes: Vec<_> = (1..=3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_tacit"))
                .args(["node", "--config", &s(&nodes_dir.join(format!("party-{i}.toml")))])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // The nodes take a moment to start: ask until every one hosts it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = run(&["auction", "host", "--dir", &s(&dir), "--client", &client]);
        if out.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for amount in ["300", "700", "450"] {
        ok(tacit(&["auction", "bid", "--amount", amount], &dir));
    }
    // A bidder deals its shares again from its saved secrets: the nodes keep the new packets.
    ok(tacit(&["auction", "bid", "--resend", "1"], &dir));
    assert!(!tacit(&["auction", "bid", "--resend", "7"], &dir).status.success(), "no bidder 7");
    let early = run(&["auction", "settle", "--dir", &s(&dir), "--client", &client]);
    assert!(!early.status.success(), "bidding still open");
    ok(tacit(&["auction", "close"], &dir));
    let report: serde_json::Value =
        serde_json::from_str(ok(run(&["auction", "settle", "--dir", &s(&dir), "--client", &client, "--json"])).trim())
            .unwrap();
    for node in &mut nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
    assert_eq!((report["winners"].clone(), report["price"].clone()), (serde_json::json!([1]), serde_json::json!(450)));
    assert!(report["settle_gas"].as_u64().unwrap() < 300_000);
    std::fs::remove_dir_all(&root).ok();
}
