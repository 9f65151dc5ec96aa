//! A chain journal followed read-only by another view: what the writer commits appears after
//! a catch-up, a half-written last line waits for its newline, and a journal replaced by a
//! shorter one is refused rather than read as a continuation. Writers take turns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write;

use tacit_contracts::LocalChain;

/// An empty folder of this process for a test's journal, and the journal's path in it.
fn fresh_journal(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.jsonl");
    (dir, path)
}

#[test]
fn a_follower_sees_what_the_writer_appends() {
    let (dir, path) = fresh_journal("tacit-journal");

    let mut follower = LocalChain::new();
    follower.follow_journal(&path).unwrap();
    assert_eq!(follower.timestamp(), LocalChain::new().timestamp(), "a missing journal is an empty chain");

    let mut writer = LocalChain::open_journal(&path).unwrap();
    writer.set_timestamp(1_700_000_000).unwrap();
    let poseidon = writer.deploy_poseidon().unwrap();
    follower.follow_journal(&path).unwrap();
    assert_eq!(follower.timestamp(), 1_700_000_000);
    assert!(follower.code_hash(poseidon).is_some());
    assert_eq!(follower.code_hash(poseidon), writer.code_hash(poseidon));

    // Half a line: not applied until its newline arrives.
    let mut raw = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    raw.write_all(br#"{"entry":"time","seconds":1700000"#).unwrap();
    follower.follow_journal(&path).unwrap();
    assert_eq!(follower.timestamp(), 1_700_000_000);
    raw.write_all(b"500}\n").unwrap();
    follower.follow_journal(&path).unwrap();
    assert_eq!(follower.timestamp(), 1_700_000_500);

    // The writer's next transactions land after it (its own state never read the raw line).
    let second = writer.deploy_poseidon().unwrap();
    follower.follow_journal(&path).unwrap();
    assert_eq!(follower.code_hash(second), writer.code_hash(second));

    // Reopening (once the writer is done) replays everything, the appended line included.
    let second_code = writer.code_hash(second);
    drop(writer);
    let reopened = LocalChain::open_journal(&path).unwrap();
    assert_eq!(reopened.timestamp(), 1_700_000_500);
    assert_eq!(reopened.code_hash(second), second_code);

    // A new, shorter chain at the same path is not a continuation.
    drop(reopened);
    std::fs::write(&path, b"{\"entry\":\"time\",\"seconds\":5}\n").unwrap();
    let e = follower.follow_journal(&path).unwrap_err();
    assert!(e.to_string().contains("shorter"), "{e}");
    // A malformed line names its line number.
    let mut fresh = LocalChain::new();
    std::fs::write(&path, b"{\"entry\":\"time\",\"seconds\":5}\nnot json\n").unwrap();
    let e = fresh.follow_journal(&path).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A second writer waits until the first is done, then replays what the first appended
/// meanwhile: its state is never one the journal's replay would not give.
#[test]
fn a_second_writer_waits_for_the_first() {
    let (dir, path) = fresh_journal("tacit-journal-turns");
    let mut first = LocalChain::open_journal(&path).unwrap();
    first.set_timestamp(1_700_000_000).unwrap();
    let (opened, waiting) = std::sync::mpsc::channel();
    let second_path = path.clone();
    let second = std::thread::spawn(move || {
        let mut second = LocalChain::open_journal(&second_path).unwrap();
        opened.send(()).unwrap();
        let seen = second.timestamp();
        second.set_timestamp(seen + 1).unwrap();
        seen
    });
    // Time for the second writer to reach the lock; it must still be waiting.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiting.try_recv().is_err(), "a second writer opened the journal while the first held it");
    first.set_timestamp(1_700_000_042).unwrap();
    drop(first);
    waiting.recv().unwrap();
    assert_eq!(second.join().unwrap(), 1_700_000_042, "the second writer replays the first's last entry");
    let replayed = LocalChain::open_journal(&path).unwrap();
    assert_eq!(replayed.timestamp(), 1_700_000_043);
    std::fs::remove_dir_all(&dir).ok();
}
