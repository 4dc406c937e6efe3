//! `acta-testnet init|up|status|logs|down` through the binary: a network that outlives the
//! command, stopped and started again from its stores.
//!
//! Needs `actad` built beside the test binary (`cargo test --workspace` builds it).

#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

fn testnet(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acta-testnet"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = testnet(args, dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "acta-testnet {args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The heights in a `status` table (0 where a node shows none).
fn heights(table: &str) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .map(|l| {
            l.split_whitespace()
                .nth(2)
                .and_then(|h| h.parse().ok())
                .unwrap_or(0)
        })
        .collect()
}

#[test]
fn a_network_is_made_started_watched_stopped_and_started_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let err = testnet(&["status"], &dir);
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("acta-testnet init"));

    ok(&["init", "--validators", "4"], &dir);
    assert!(dir.join("keys/council0.seed").exists());
    let genesis = std::fs::read_to_string(dir.join("node0/genesis.json")).unwrap();
    assert!(
        genesis.contains("budget_office"),
        "the agency is an issuer: {genesis}"
    );
    // A second init refuses to overwrite it.
    assert_eq!(testnet(&["init"], &dir).status.code(), Some(1));

    ok(&["up"], &dir);
    let table = ok(&["status"], &dir);
    assert_eq!(table.matches(" up ").count(), 4, "{table}");
    assert!(ok(&["logs", "node1"], &dir).contains("INFO"));
    let err = testnet(&["logs", "node9"], &dir);
    assert!(String::from_utf8_lossy(&err.stderr).contains("node0, node1, node2, node3"));

    let before = heights(&ok(&["status"], &dir)).into_iter().max().unwrap();
    assert!(before >= 1, "{table}");
    ok(&["down"], &dir);
    let table = ok(&["status"], &dir);
    assert_eq!(table.matches(" down ").count(), 4, "{table}");

    // Up again: the stores are kept, and the network goes on from where it stopped.
    ok(&["up"], &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hs = heights(&ok(&["status"], &dir));
        if hs.len() == 4 && hs.iter().all(|&h| h > before + 1) {
            break;
        }
        assert!(Instant::now() < deadline, "heights {hs:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&["down"], &dir);
}
