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
