//! Encryption at rest, policy changes with a time lock, and the audit log's tamper evidence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use common::*;
use tacit_signer::audit::{verify_file, AuditFailure, AuditRecord};
use tacit_signer::policy::approve;
use tacit_signer::store::{Store, StoreKey};
use tacit_signer::{Node, PolicyViolation, SignerError};
use zeroize::Zeroizing;

#[test]
fn store_encrypts_and_refuses_wrong_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path, StoreKey::Passphrase(Zeroizing::new("correct horse".into()))).unwrap();
        s.put_secret_meta("share", b"very secret share bytes").unwrap();
        assert_eq!(s.get_secret_meta("share").unwrap().unwrap().as_slice(), b"very secret share bytes");
    }
    let raw = std::fs::read(&path).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"very secret"), "plaintext on disk");
    assert!(matches!(
        Store::open(&path, StoreKey::Passphrase(Zeroizing::new("wrong".into()))),
        Err(SignerError::Decrypt(_))
    ));
    let s = Store::open(&path, StoreKey::Passphrase(Zeroizing::new("correct horse".into()))).unwrap();
    assert!(s.get_secret_meta("share").unwrap().is_some());
    // A record moved to another slot does not decrypt (bound to its slot).
    let sealed = s.get_meta("share").unwrap().unwrap();
    s.put_meta("other", &sealed).unwrap();
    assert!(matches!(s.get_secret_meta("other"), Err(SignerError::Decrypt(_))));
    // Keys from hex / env parse.
    assert!(StoreKey::from_hex(&"ab".repeat(32)).is_ok());
    assert!(StoreKey::from_hex("abcd").is_err());
}

#[test]
fn policy_changes_need_approvals_and_wait() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), pid(1), StoreKey::random()).unwrap();
    let approvers = approver_keys();
    let p0 = policy(&approvers);
    node.init_policy(&p0).unwrap();
    assert!(node.init_policy(&p0).is_err(), "a second init is refused");
    let mut p1 = p0.clone();
    p1.daily_limit = 100 * ETH;
    let digest = p0.change_digest(&p1);
    let one = vec![approve(&approvers[0], &digest).unwrap()];
    assert!(matches!(node.propose_policy(&p1, &one, NOW), Err(SignerError::Policy(PolicyViolation::PolicyChange(_)))));
    let two = vec![approve(&approvers[0], &digest).unwrap(), approve(&approvers[2], &digest).unwrap()];
    let pending = node.propose_policy(&p1, &two, NOW).unwrap();
    assert_eq!(pending.effective_at, NOW + 3600);
    assert_eq!(node.policy(NOW + 3599).unwrap(), p0, "not before the time lock");
    assert_eq!(node.policy(NOW + 3600).unwrap(), p1);
    // Approvals of a change bound to the old policy cannot be replayed later.
    let mut p2 = p1.clone();
    p2.daily_limit = 1;
    assert!(node.propose_policy(&p2, &two, NOW + 4000).is_err());
}

fn log_with(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), pid(2), StoreKey::random()).unwrap();
    for i in 0..n {
        node.audit(
            NOW + i as u64,
            AuditRecord { event: "sign".into(), detail: format!("entry {i}"), ..Default::default() },
        )
        .unwrap();
    }
    let path = node.audit_file().unwrap();
    (dir, path)
}

#[test]
fn audit_log_reports_the_first_bad_entry() {
    let (_d, path) = log_with(5);
    let report = verify_file(&path, None).unwrap().unwrap();
    assert_eq!(report.entries, 5);
    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    let write = |ls: &[String]| std::fs::write(&path, ls.join("\n") + "\n").unwrap();

    let mut edited = lines.clone();
    edited[2] = edited[2].replace("entry 2", "entry X");
    write(&edited);
    assert_eq!(verify_file(&path, None).unwrap(), Err(AuditFailure::Edited { line: 3, seq: 2 }));

    let mut reordered = lines.clone();
    reordered.swap(1, 3);
    write(&reordered);
    assert_eq!(verify_file(&path, None).unwrap(), Err(AuditFailure::Reordered { line: 2, seq: 3, expected: 1 }));

    let mut removed = lines.clone();
    removed.remove(3);
    write(&removed);
    assert_eq!(verify_file(&path, None).unwrap(), Err(AuditFailure::Removed { line: 4, first_missing: 3 }));

    let mut bad = lines.clone();
    bad[0] = "{not json".into();
    write(&bad);
    assert_eq!(verify_file(&path, None).unwrap(), Err(AuditFailure::Malformed { line: 1 }));

    // A log re-signed by another key fails against the pinned node key.
    write(&lines);
    let (_d2, other) = log_with(2);
    let key = report.node_key.clone();
    assert!(matches!(verify_file(&other, Some(&key)).unwrap(), Err(AuditFailure::Edited { line: 1, .. })));
    // No secrets: entries carry no share material.
    assert!(!std::fs::read_to_string(&path).unwrap().contains("share\""));
}
