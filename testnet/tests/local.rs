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
    // A paused node shows as paused, not as starting, in the JSON too.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("testnet.json")).unwrap()).unwrap();
    let home = Path::new(manifest["nodes"][3]["home"].as_str().unwrap());
    let pid = std::fs::read_to_string(home.join("actad.pid")).unwrap();
    let signal = |s: &str| {
        assert!(Command::new("kill")
            .arg(s)
            .arg(pid.trim())
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    let rows: serde_json::Value =
        serde_json::from_str(&ok(&["status", "--output", "json"], &dir)).unwrap();
    signal("-CONT");
    assert_eq!(rows[3]["state"], "paused", "{rows:#}");
    assert_eq!(rows[0]["state"], "up", "{rows:#}");
    assert!(rows[0]["height"].as_u64().unwrap() > before, "{rows:#}");
    ok(&["down"], &dir);
}

/// `init --hosts` writes homes for real machines: every node listens on all interfaces at
/// the standard ports, and the genesis and peers name the hosts.
#[test]
fn a_network_for_several_hosts_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    ok(
        &[
            "init",
            "--hosts",
            "10.0.0.1,10.0.0.2,acta3.water.example,10.0.0.4",
        ],
        &dir,
    );
    let genesis: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("node0/genesis.json")).unwrap())
            .unwrap();
    let addresses: Vec<&str> = genesis["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        [
            "/ip4/10.0.0.1/tcp/26656",
            "/ip4/10.0.0.2/tcp/26656",
            "/dns4/acta3.water.example/tcp/26656",
            "/ip4/10.0.0.4/tcp/26656"
        ]
    );
    let config = std::fs::read_to_string(dir.join("node2/config.toml")).unwrap();
    assert!(
        config.contains("listen = \"/ip4/0.0.0.0/tcp/26656\""),
        "{config}"
    );
    assert!(config.contains("/ip4/10.0.0.1/tcp/26656/p2p/"), "{config}");
    assert!(!config.contains("127.0.0.1"), "{config}");
    // Bad hosts are refused before anything is written.
    let bad = tmp.path().join("bad");
    assert_eq!(
        testnet(&["init", "--hosts", "10.0.0.1,10.0.0.1"], &bad)
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        testnet(&["init", "--hosts", "a b"], &bad).status.code(),
        Some(1)
    );
    assert!(!bad.exists());
}
