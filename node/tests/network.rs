//! Four `actad` processes on 127.0.0.1 agree block by block; survive a SIGKILL, a wiped
//! home and a stalled half; and ignore garbage and strangers.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use acta_ledger::testing;
use common::{did_tx, Net};

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn four_validators_decide_blocks_with_transactions_and_agree() {
    let mut net = Net::new(4);
    // One node logs JSON lines, for a log collector; the others text.
    net.nodes[3].start_args = vec!["--log-format".into(), "json".into()];
    // One keeps its consensus key encrypted at rest.
    let pass = net.dir.path().join("node2.pass");
    std::fs::write(&pass, "a passphrase of the water agency\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    common::succeeds(
        std::process::Command::new(env!("CARGO_BIN_EXE_actad"))
            .args(["keys", "encrypt", "--home"])
            .arg(&net.nodes[2].home)
            .arg("--passphrase-file")
            .arg(&pass),
    );
    let key = std::fs::read_to_string(net.nodes[2].home.join("keys/consensus_key.json")).unwrap();
    assert!(key.contains("xchacha20poly1305"), "{key}");
    net.nodes[2].start_args = vec!["--key-passphrase-file".into(), pass.display().to_string()];
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    // Transactions through every node's API.
    for i in 0..40u32 {
        let (code, v) = net.submit((i % 4) as usize, &did_tx(i));
        assert_eq!(code, 200, "{v}");
    }
    // A replay and garbage are refused with a reason.
    let (code, v) = net.submit(0, &did_tx(0));
    assert!(code == 422, "{code} {v}");
    let (code, v) = common::post(&net.nodes[0].rpc, "/txs", "{\"tx\":\"00ff\"}").unwrap();
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["code"], "bad_transaction");
    let target = net.height(0) + 4;
    net.wait_height(&[0, 1, 2, 3], target, WAIT);
    let txs = net.assert_same_chain(&[0, 1, 2, 3], target);
    assert_eq!(txs, 40, "every submitted transaction is in a block once");
    for i in 0..4 {
        net.stop(i);
    }
    // Logs written to a file carry no colour codes; the JSON one is one object per line.
    let log = |i: usize| std::fs::read_to_string(net.nodes[i].home.join("log")).unwrap();
    assert!(!log(0).contains('\u{1b}'), "{}", log(0));
    assert!(log(0).contains("committed"), "{}", log(0));
    let lines: Vec<serde_json::Value> = log(3)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"] == "committed"),
        "{}",
        log(3)
    );
}

#[test]
fn a_killed_validator_is_not_missed_and_catches_up_when_restarted() {
    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    net.kill(3);
    let h = net.height(0);
    for i in 0..10u32 {
        net.submit((i % 3) as usize, &did_tx(100 + i));
    }
    // Three of four (75% of the power) keep deciding.
    net.wait_height(&[0, 1, 2], h + 5, WAIT);
    net.start(3);
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 3, WAIT);
    net.assert_same_chain(&[0, 1, 2, 3], h + 3);
    // The blocks it caught up on lack its signature: its metrics say so.
    let m = metrics(&net, 3);
    let missed = counter(&m, "acta_missed_signatures_total");
    assert!(
        missed >= 5,
        "node 3 missed at least the 5 blocks decided without it: {missed}\n{m}"
    );
    // Its store says where writing those blocks took its time (read on the status tick).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = metrics(&net, 3);
        let memtable = m
            .lines()
            .find_map(|l| {
                l.strip_prefix("acta_store_block_write_seconds_total{part=\"memtable\"} ")
            })
            .and_then(|v| v.trim().parse::<f64>().ok());
        if memtable.is_some_and(|seconds| seconds > 0.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // It votes again: with node 0 stopped, progress needs node 3's precommits.
    net.kill(0);
    let h = net.height(1);
    net.wait_height(&[1, 2, 3], h + 3, WAIT);
    net.assert_same_chain(&[1, 2, 3], h + 3);
    net.start(0);
    // SIGKILL at moments spread over rounds and steps; the node restarts from its store
    // and WAL each time and never signs a conflicting message (no node sees evidence).
    for pause_ms in [130u64, 470, 820, 1290, 60] {
        std::thread::sleep(Duration::from_millis(pause_ms));
        net.kill(1);
        net.start(1);
    }
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 3, WAIT);
    net.assert_same_chain(&[0, 1, 2, 3], h + 3);
    assert!(
        !net.logs_contain("equivocation"),
        "a restarted validator signed conflicting messages"
    );
    // Beside its key, node 1 keeps what it signed last: a height it decided.
    let signed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(net.nodes[1].home.join("keys/signed_state.json")).unwrap(),
    )
    .unwrap();
    assert!(signed["height"].as_u64().unwrap() >= h, "{signed}");
}

#[test]
fn a_validator_with_a_wiped_home_resyncs_from_the_others() {
    let mut net = Net::new(4);
    net.start_all();
    for i in 0..8u32 {
        net.submit(0, &did_tx(200 + i));
    }
    net.wait_height(&[0, 1, 2, 3], 6, WAIT);
    net.stop(2);
    std::fs::remove_dir_all(net.data_dir(2)).unwrap();
    net.start(2);
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 2, WAIT);
    net.assert_same_chain(&[0, 1, 2, 3], h + 2);
}

/// With nothing to do the validators make no block until `empty_block_interval_ms` has
/// passed (two minutes here); a transaction wakes them at once.
#[test]
fn an_idle_network_makes_no_block_until_a_transaction_comes() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.configure(i, |c| c.consensus.empty_block_interval_ms = 120_000);
    }
    net.start_all();
    let (code, v) = net.submit(0, &did_tx(400));
    assert_eq!(code, 200, "{v}");
    // The first height may start before the proposer has the transaction (another
    // validator that has it starts the height), and carry nothing: the transaction is then
    // in the next block. Once it is committed, nothing is left to do.
    net.wait_nonce(&[0, 1, 2, 3], &testing::key(0xb7, 400).public(), 1);
    net.wait_height(&[0, 1, 2, 3], 1, Duration::from_secs(60));
    let idle = net.height(0);
    // Idle now. A node that made empty blocks would make one every 200 ms; this one makes
    // none, however long the pause (which only gives a wrong node the time to show it).
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..4 {
        if net.height(i) > idle {
            net.dump_logs();
            panic!("node {i} made a block with nothing to do");
        }
    }
    let (code, v) = net.submit(1, &did_tx(401));
    assert_eq!(code, 200, "{v}");
    net.wait_height(&[0, 1, 2, 3], idle + 1, Duration::from_secs(60));
    net.assert_same_chain(&[0, 1, 2, 3], idle + 1);
}

/// Validators that prune keep the states of their window, refuse older heights by name, and
/// still serve every block: a validator whose home is wiped replays the chain from them,
/// and a pruned one restarts from its own store.
#[test]
fn pruning_validators_keep_their_window_and_a_wiped_one_resyncs_from_them() {
    use acta_node::config::RETAIN_HEIGHTS_MIN;
    let mut net = Net::new(4);
    for i in 0..4 {
        net.configure(i, |c| {
            c.consensus.block_interval_ms = 10;
            c.consensus.empty_block_interval_ms = 10;
            c.storage.retain_heights = RETAIN_HEIGHTS_MIN;
        });
    }
    net.start_all();
    for i in 0..8u32 {
        net.submit(0, &did_tx(300 + i));
    }
    let top = RETAIN_HEIGHTS_MIN + 30;
    net.wait_height(&[0, 1, 2, 3], top, Duration::from_secs(180));
    // The pruner runs each time the window has moved ten heights: wait for it to pass
    // height 20 (by height 130 the window starts at 31).
    let deadline = std::time::Instant::now() + WAIT;
    let oldest = loop {
        let (_, status) = common::get(&net.nodes[0].rpc, "/status").unwrap();
        let oldest = status["oldest_state_height"].as_u64().unwrap();
        if oldest > 20 {
            break oldest;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 0 keeps state from {oldest} at height {}",
            status["height"]
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (code, v) = common::get(&net.nodes[0].rpc, "/state/did/00?height=1").unwrap();
    assert_eq!(code, 410, "{v}");
    assert_eq!(v["code"], "pruned");
    assert!(v["oldest"].as_u64().unwrap() >= oldest, "{v}");
    let (code, v) = common::get(&net.nodes[0].rpc, &format!("/state/did/00?height={top}")).unwrap();
    assert_eq!(code, 200, "a kept height answers: {v}");
    assert_eq!(v["height"], top);

    net.stop(2);
    std::fs::remove_dir_all(net.data_dir(2)).unwrap();
    net.start(2);
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 2, Duration::from_secs(180));
    net.assert_same_chain(&[0, 1, 2, 3], h + 2);

    // A pruned validator restarts from its own store: it replays the validator sets of
    // every height, which pruning keeps.
    net.stop(0);
    net.start(0);
    let h = net.height(1);
    net.wait_height(&[0, 1, 2, 3], h + 2, Duration::from_secs(180));
    net.assert_same_chain(&[0, 1, 2, 3], h + 2);
}

/// A validator whose home is wiped joins again from a snapshot instead of replaying the
/// chain, twice: from a file another validator's `actad snapshot create` wrote, and from
/// the running validators' `--state-sync`. Each time it holds the state from a cosigned
/// checkpoint height on, no block before it, and then commits new blocks with the others.
/// A third one, wiped, replays the chain from the one validator that still has it all.
#[test]
fn wiped_validators_join_from_a_snapshot_file_and_by_state_sync() {
    let mut net = Net::new(4);
    for i in 0..4 {
        net.configure(i, |c| {
            c.consensus.block_interval_ms = 10;
            c.consensus.empty_block_interval_ms = 10;
        });
    }
    net.start_all();
    for i in 0..8u32 {
        net.submit(0, &did_tx(400 + i));
    }
    // The council changes a validator's power and then changes it back, in two blocks:
    // a snapshot's list of set changes must hold both (the state's history of changes
    // says so, and a restore checks it; format version 14).
    let (_, spec) =
        acta_node::genesis::Genesis::load(&net.nodes[0].home.join("genesis.json")).unwrap();
    let first = spec.validators.validators()[0];
    let council = testing::key(0xc5, 0);
    for (nonce, power) in [(0, first.power.0 + 50), (1, first.power.0)] {
        let tx = acta_ledger::Transaction::sign(
            &council,
            testing::chain_id(),
            nonce,
            testing::valid_until_soon(),
            acta_ledger::Call::Governance(acta_ledger::tx::GovernanceCall::Propose {
                action: acta_ledger::records::GovAction::SetPower {
                    key: first.public_key,
                    power,
                },
            }),
        );
        let (code, v) = net.submit(0, &tx);
        assert_eq!(code, 200, "{v}");
        let h = net.height(0);
        net.wait_height(&[0], h + 2, WAIT);
    }
    net.wait_height(&[0, 1, 2, 3], 35, WAIT);
    let (_, history) = common::get(&net.nodes[0].rpc, "/validators?prove=true").unwrap();
    assert!(
        history["proof"]["validator_changes"]
            .as_array()
            .is_some_and(|c| c.len() == 2),
        "{history}"
    );

    // From a file: node 1 stops to write it, node 2 is wiped and restores it.
    net.stop(1);
    let file = net.dir.path().join("acta.snapshot");
    let actad = env!("CARGO_BIN_EXE_actad");
    // `actad snapshot create` of a stopped node's home: what it prints.
    let create = |home: &std::path::Path, file: &std::path::Path| {
        let out = common::succeeds(
            std::process::Command::new(actad)
                .args(["snapshot", "create", "--home"])
                .arg(home)
                .arg("--out")
                .arg(file),
        );
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let created = create(&net.nodes[1].home, &file);
    let at = created["height"].as_u64().unwrap();
    assert!(at >= 30 && at.is_multiple_of(10), "{created}");
    net.start(1);
    net.stop(2);
    std::fs::remove_dir_all(net.data_dir(2)).unwrap();
    let restore = |home: &std::path::Path, file: &std::path::Path| {
        std::process::Command::new(actad)
            .args(["snapshot", "restore", "--home"])
            .arg(home)
            .arg(file)
            .output()
            .unwrap()
    };
    let out = restore(&net.nodes[2].home, &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second restore into the same home is refused: it holds blocks now.
    let again = restore(&net.nodes[2].home, &file);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds height"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    net.start(2);

    // By state sync: node 3 is wiped and asks the others.
    net.stop(3);
    std::fs::remove_dir_all(net.data_dir(3)).unwrap();
    net.nodes[3].start_args = vec!["--state-sync".into()];
    net.start(3);

    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 3, WAIT);
    for (i, from) in [(2, at), (3, at)] {
        let (_, status) = common::get(&net.nodes[i].rpc, "/status").unwrap();
        let oldest = status["oldest_state_height"].as_u64().unwrap();
        assert!(
            oldest >= from && oldest.is_multiple_of(10),
            "node {i}: {status}"
        );
        let (code, _) = common::get(&net.nodes[i].rpc, "/blocks/1").unwrap();
        assert_eq!(code, 404, "node {i} replayed the chain");
        for height in oldest..=h + 3 {
            assert_eq!(
                net.block_summary(i, height).unwrap(),
                net.block_summary(0, height).unwrap(),
                "node {i} at {height}"
            );
        }
    }
    assert!(net.logs_contain("state sync done"));

    // A restored validator serves snapshots of the checkpoints after its own: its list of
    // set changes (those that came with its snapshot, and those since) is the chain's, as
    // its state's history of changes says.
    net.wait_height(&[2], at + 25, WAIT);
    net.stop(2);
    let created = create(&net.nodes[2].home, &net.dir.path().join("later.snapshot"));
    assert!(
        created["height"].as_u64().unwrap() >= at + 10,
        "the restored node offers {created}, not a later checkpoint than {at}"
    );
    net.start(2);

    // A validator that replays the chain from the genesis is not held up by the restored
    // ones, which lack the early blocks: it asks node 0 for them.
    net.stop(1);
    std::fs::remove_dir_all(net.data_dir(1)).unwrap();
    net.start(1);
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 2, WAIT);
    net.assert_same_chain(&[0, 1], h + 2);
}

#[test]
fn with_half_the_power_stopped_nothing_is_decided_and_nothing_is_lost() {
    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 3, WAIT);
    net.stop(2);
    net.kill(3);
    // Let in-flight heights settle, then watch: no height may be decided by half the power.
    std::thread::sleep(Duration::from_secs(2));
    let stalled = net.height(0);
    assert!(net.submit(0, &did_tx(300)).0 == 200);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(net.height(0), stalled, "2 of 4 decided a block");
    assert_eq!(net.height(1), stalled);
    net.start(2);
    net.start(3);
    net.wait_height(&[0, 1, 2, 3], stalled + 3, WAIT);
    // The transaction submitted while stalled is decided once node 0 or 1 (which hold it)
    // proposes.
    let deadline = std::time::Instant::now() + WAIT;
    let mut top = net.height(0);
    while net.assert_same_chain(&[0, 1, 2, 3], top) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled transaction was lost"
        );
        std::thread::sleep(Duration::from_millis(500));
        top = net
            .height(0)
            .min(net.height(1))
            .min(net.height(2))
            .min(net.height(3));
    }
}

#[test]
fn garbage_and_strangers_do_not_disturb_the_network() {
    use std::io::Write;
    let mut net = Net::new(4);
    // Node 3 stays down: its identity is used below by a peer that sends garbage.
    for i in 0..3 {
        net.start(i);
    }
    net.wait_height(&[0, 1, 2], 2, WAIT);

    // A raw TCP client sending random bytes to every node's libp2p port.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for node in &net.nodes[..3] {
        for _ in 0..5 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", node.p2p_port)) {
                let bytes: Vec<u8> = (0..65_536)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                let _ = s.write_all(&bytes);
            }
        }
    }

    // A node that is not in the genesis, pointed at the validators: refused.
    let stranger = net.dir.path().join("stranger");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_actad"))
        .args(["init", "--home"])
        .arg(&stranger)
        .args([
            "--p2p-listen",
            &format!("/ip4/127.0.0.1/tcp/{}", common::free_port()),
        ])
        .args(["--rpc-listen", ""])
        .args([
            "--peer",
            &format!(
                "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                net.nodes[0].p2p_port, net.nodes[0].peer_id
            ),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::copy(
        net.nodes[0].home.join("genesis.json"),
        stranger.join("genesis.json"),
    )
    .unwrap();
    let mut stranger_proc = std::process::Command::new(env!("CARGO_BIN_EXE_actad"))
        .args(["start", "--home"])
        .arg(&stranger)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // A validator's identity that sends garbage gossip on the consensus topic: struck,
    // then banned; the same with garbage on the transactions' gossipsub (node 2), and
    // with garbage sent straight to node 1 as consensus messages.
    let banned = garbage_peer(&net, 0, Garbage::Gossip);
    assert!(banned, "node 0 kept a peer that sent only garbage gossip");
    let banned = garbage_peer(&net, 2, Garbage::TxGossip);
    assert!(
        banned,
        "node 2 kept a peer that sent only garbage transactions"
    );
    let banned = garbage_peer(&net, 1, Garbage::Direct);
    assert!(
        banned,
        "node 1 kept a peer that sent only garbage consensus messages"
    );
    // Node 0's metrics count the strikes and the ban (read at its next status update).
    let deadline = std::time::Instant::now() + WAIT;
    let value = |text: &str, name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    loop {
        let text = acta_node::devnet::http(
            &net.nodes[0].rpc,
            "GET",
            "/metrics",
            None,
            Duration::from_secs(10),
        )
        .unwrap()
        .text();
        let strikes = value(&text, "acta_peer_strikes_total").unwrap_or(0);
        let banned = value(&text, "acta_peers_banned").unwrap_or(0);
        if strikes >= 10 && banned >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 0's metrics: {strikes} strikes, {banned} banned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let h = net.height(0);
    for i in 0..6u32 {
        net.submit((i % 3) as usize, &did_tx(400 + i));
    }
    net.wait_height(&[0, 1, 2], h + 4, WAIT);
    net.assert_same_chain(&[0, 1, 2], h + 4);
    let _ = stranger_proc.kill();
    let _ = stranger_proc.wait();
}

/// Two validators whose genesis files differ only by one second in their time (the same
/// chain id, keys and peers) refuse each other at the handshake, each naming both
/// genesis hashes, instead of connecting and stalling.
#[test]
fn validators_with_different_genesis_files_refuse_each_other() {
    let mut net = Net::new(2);
    let path = net.nodes[1].home.join("genesis.json");
    let mut g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    g["genesis_time_ms"] = serde_json::json!(g["genesis_time_ms"].as_u64().unwrap() + 1000);
    std::fs::write(&path, serde_json::to_string_pretty(&g).unwrap()).unwrap();
    let hash = |i: usize| {
        let (_, spec) =
            acta_node::genesis::Genesis::load(&net.nodes[i].home.join("genesis.json")).unwrap();
        spec.hash.to_string()
    };
    let (a, b) = (hash(0), hash(1));
    assert_ne!(a, b);
    // What agencies compare before they start: `actad genesis validate` prints the hash.
    let actad = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_actad"))
            .args(args)
            .output()
            .unwrap()
    };
    for (i, want) in [(0, &a), (1, &b)] {
        let file = net.nodes[i].home.join("genesis.json");
        let out = actad(&["genesis", "validate", file.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["genesis_hash"], want.as_str(), "{v}");
        assert_eq!(v["validators"], 2, "{v}");
    }
    let mut broken = g.clone();
    broken["validators"][1]["power"] = serde_json::json!(0);
    let bad = net.nodes[1].home.join("broken-genesis.json");
    std::fs::write(&bad, broken.to_string()).unwrap();
    let out = actad(&["genesis", "validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("validators[1].power"), "{err}");
    // And show-node gives what the other nodes dial.
    let out = actad(&["show-node", "--home", net.nodes[0].home.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["peer_address"],
        format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            net.nodes[0].p2p_port, net.nodes[0].peer_id
        ),
        "{v}"
    );
    net.start_all();
    let log = |i: usize| std::fs::read_to_string(net.nodes[i].home.join("log")).unwrap_or_default();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let refused = |i: usize| {
            let l = log(i);
            l.contains("a different genesis") && l.contains(&a) && l.contains(&b)
        };
        let peers = |i: usize| net.status(i).and_then(|s| s["peers"].as_u64());
        if refused(0) && refused(1) && peers(0) == Some(0) && peers(1) == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 0:\n{}\nnode 1:\n{}",
            log(0),
            log(1)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(net.height(0), 0, "no block from half the power");
    for i in 0..2 {
        net.stop(i);
    }
}

/// Where [`garbage_peer`] sends its garbage.
#[derive(Clone, Copy, PartialEq)]
enum Garbage {
    /// The consensus gossip topic.
    Gossip,
    /// The transactions' gossipsub.
    TxGossip,
    /// Straight to the node, as consensus messages.
    Direct,
}

/// Connects to node `target` with node 3's libp2p identity, sends it invalid messages
/// (`garbage`), and reports whether the node disconnected it and refuses it afterwards.
fn garbage_peer(net: &Net, target: usize, garbage: Garbage) -> bool {
    use acta_node::p2p::{direct, protocol::BehaviourEvent};
    use futures::StreamExt;
    use libp2p::{gossipsub, swarm::SwarmEvent, Multiaddr};
    let key =
        acta_node::keys::load_node_key(&net.nodes[3].home.join("keys/node_key.json")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // The chain's identity: the node refuses a peer of another genesis at once.
        let (_, spec) =
            acta_node::genesis::Genesis::load(&net.nodes[0].home.join("genesis.json")).unwrap();
        let identity = acta_node::p2p::protocol::chain_identity(spec.chain_id.as_str(), &spec.hash);
        let behaviour =
            acta_node::p2p::protocol::Behaviour::new(&key, 1 << 20, true, identity).unwrap();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| behaviour)
            .unwrap()
            .build();
        let topic = gossipsub::IdentTopic::new(acta_node::p2p::protocol::TOPIC_CONSENSUS);
        let txs = gossipsub::IdentTopic::new(acta_node::p2p::protocol::TOPIC_TXS);
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        swarm.behaviour_mut().txs.subscribe(&txs).unwrap();
        let addr: Multiaddr = format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            net.nodes[target].p2p_port, net.nodes[target].peer_id
        )
        .parse()
        .unwrap();
        let node: libp2p::PeerId = net.nodes[target].peer_id.parse().unwrap();
        swarm.dial(addr.clone()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut connected_once = false;
        let mut sent = 0u32;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        connected_once |= peer_id == node;
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Direct(direct::Event::Opened {
                        mut stream,
                        ..
                    })) => {
                        let junk = format!("junk {sent}").into_bytes();
                        tokio::spawn(async move {
                            use futures::AsyncWriteExt;
                            let frame = direct::frame(&junk).unwrap();
                            let _ = stream.write_all(&frame).await;
                            let _ = stream.close().await;
                        });
                    }
                    _ => {}
                },
                _ = tick.tick() => {
                    if swarm.is_connected(&node) {
                        let junk = format!("junk {sent}").into_bytes();
                        let b = swarm.behaviour_mut();
                        match garbage {
                            Garbage::Direct => {
                                // A stream of its own each time, for a frame that is no
                                // consensus message (written once it opens, below).
                                b.direct.open(node);
                            }
                            Garbage::Gossip => {
                                let _ = b.gossipsub.publish(topic.clone(), junk);
                            }
                            Garbage::TxGossip => {
                                let _ = b.txs.publish(txs.clone(), junk);
                            }
                        }
                        sent += 1;
                    } else if connected_once && sent > 0 {
                        // Dropped: dialing again must fail too.
                        let _ = swarm.dial(addr.clone());
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        return !swarm.is_connected(&node);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return false,
            }
        }
    })
}

/// A validator that comes back gets the transactions gossiped while it was away: it asks
/// each peer it connects to for its pending ones. Here no block can be decided until it is
/// back, so nothing else would bring them.
#[test]
fn a_returning_validator_gets_the_pending_transactions_it_missed() {
    let mut net = Net::new(4);
    net.start_all();
    let (code, v) = net.submit(0, &did_tx(500));
    assert_eq!(code, 200, "{v}");
    net.wait_height(&[0, 1, 2, 3], 1, WAIT);
    // Two of four stopped: nothing can be decided.
    net.stop(2);
    net.stop(3);
    let (code, v) = net.submit(0, &did_tx(501));
    assert_eq!(code, 200, "{v}");
    net.start(2);
    // Node 2 admits the transaction into its mempool (its counters start from nothing at
    // restart). Blocks carry transactions past the mempool, so only the others' pending
    // transactions can have given it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = metrics(&net, 2);
        if counter(&metrics, "acta_mempool_accepted_total") >= 1 {
            break;
        }
        if std::time::Instant::now() > deadline {
            net.dump_logs();
            panic!("node 2 never got the pending transaction; its metrics:\n{metrics}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    net.start(3);
    net.wait_nonce(&[0, 1, 2, 3], &testing::key(0xb7, 501).public(), 1);
}

/// A proposal carries its block's transactions by id. A validator whose mempool lacks them
/// (node 3's holds one transaction) asks the proposer for the rest. With node 2 stopped, no
/// block is decided without node 3's prevote, so every transaction committed shows that
/// node 3 rebuilt the blocks that carried them.
#[test]
fn a_validator_fetches_the_proposed_transactions_its_mempool_lacks() {
    let mut net = Net::new(4);
    net.configure(3, |c| c.mempool.max_txs = 1);
    for i in [0, 1, 3] {
        net.start(i);
    }
    for i in 0..12u32 {
        let (code, v) = net.submit(0, &did_tx(600 + i));
        assert_eq!(code, 200, "{v}");
    }
    for i in 0..12u32 {
        net.wait_nonce(&[0, 1, 3], &testing::key(0xb7, 600 + i).public(), 1);
    }
    let metrics = metrics(&net, 3);
    // Each of the twelve came through node 3's own mempool (one at a time) or from a peer.
    let own = counter(&metrics, "acta_mempool_accepted_total");
    assert!(own < 12, "{metrics}");
    assert!(
        counter(&metrics, "acta_proposal_txs_fetched_total") + own >= 12,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "acta_proposals_rebuilt_total{from=\"peer\"}") >= 1,
        "{metrics}"
    );
}

/// Whether node 0's metrics hold the line starting with `line`.
fn has_metric(net: &Net, line: &str) -> bool {
    metrics(net, 0).lines().any(|l| l.starts_with(line))
}

/// Node `i`'s metrics as `/metrics` serves them (empty if it does not answer).
fn metrics(net: &Net, i: usize) -> String {
    acta_node::devnet::http(
        &net.nodes[i].rpc,
        "GET",
        "/metrics",
        None,
        Duration::from_secs(5),
    )
    .map(|a| a.text())
    .unwrap_or_default()
}

/// The value of the metric `name` (with its labels, if any) in `metrics`; 0 if absent.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// A fifth node that the council adds while transactions flow: the validators admit and
/// dial it as soon as the action executes (no restart, no `allow_observers`), it syncs and
/// signs; once removed, they let it go and the four go on.
#[test]
fn a_validator_added_by_the_council_under_load_signs_and_is_let_go_when_removed() {
    use acta_ledger::{records::GovAction, tx::GovernanceCall, Call, Transaction};
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    let (new, key) = net.add_node().unwrap();
    // Started before the council acts: the validators refuse it, so it stays at height 0.
    net.start(new);

    // Load: a stream of new DIDs through the four validators until told to stop.
    let stop = AtomicBool::new(false);
    let council = testing::key(0xc5, 0);
    let propose = |nonce: u64, action: GovAction| {
        Transaction::sign(
            &council,
            testing::chain_id(),
            nonce,
            testing::valid_until_soon(),
            Call::Governance(GovernanceCall::Propose { action }),
        )
    };
    let sent = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) && sent < 2_000 {
                let (code, v) = net.submit((sent % 4) as usize, &did_tx(10_000 + sent));
                assert_eq!(code, 200, "{v}");
                sent += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            sent
        });
        let validator_height = |height: u64| -> serde_json::Value {
            common::get(&net.nodes[0].rpc, &format!("/validators?height={height}"))
                .unwrap()
                .1
        };
        // Up, dialing the validators, but not let in.
        let deadline = std::time::Instant::now() + WAIT;
        while net.status(new).is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "node {new} never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let h = net.height(0);
        net.wait_height(&[0], h + 3, WAIT);
        let status = net.status(new).unwrap();
        assert_eq!(
            status["height"], 0,
            "admitted before the council acted: {status}"
        );
        assert_eq!(status["peers"], 0, "{status}");
        // The council adds it.
        let (code, v) = net.submit(
            0,
            &propose(
                0,
                GovAction::AddValidator {
                    key,
                    power: 10,
                    node: net.validator_node(new).unwrap(),
                },
            ),
        );
        assert_eq!(code, 200, "{v}");
        net.wait_nonce(&[0], &council.public(), 1);
        // It syncs, and a later commit carries its signature.
        let deadline = std::time::Instant::now() + WAIT;
        let signed_at = 'signed: loop {
            let h = net.height(0);
            if net.height(new) + 2 >= h {
                let set = validator_height(h);
                let index = set["validators"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["public_key"] == serde_json::json!(key))
                    .map(|v| v["index"].clone());
                if let Some(index) = index {
                    let (_, block) =
                        common::get(&net.nodes[0].rpc, &format!("/blocks/{h}")).unwrap();
                    let signed = block["commit"]["signatures"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["validator"] == index));
                    if signed {
                        break 'signed h;
                    }
                }
            }
            if std::time::Instant::now() > deadline {
                net.dump_logs();
                panic!("the added validator never signed a commit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(net.logs_contain("admitting the node of a new validator"));

        // Node 0 shows its connection to it.
        let connected = format!(
            "acta_validator_connected{{validator=\"{}\"}} 1",
            &key.to_hex()[..16]
        );
        let deadline = std::time::Instant::now() + WAIT;
        while !has_metric(&net, &connected) {
            assert!(std::time::Instant::now() < deadline, "no {connected}");
            std::thread::sleep(Duration::from_millis(200));
        }
        // The council removes it: the four disconnect it, and it falls behind.
        let (code, v) = net.submit(0, &propose(1, GovAction::RemoveValidator { key }));
        assert_eq!(code, 200, "{v}");
        net.wait_nonce(&[0, 1, 2, 3], &council.public(), 2);
        assert!(net.logs_contain("the node of a validator that left the set"));
        let deadline = std::time::Instant::now() + WAIT;
        while net.height(0) < net.height(new) + 10 {
            if std::time::Instant::now() > deadline {
                net.dump_logs();
                panic!("the removed validator still follows the chain");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Its connection gauge goes with it: no alert fires for a validator that left.
        let deadline = std::time::Instant::now() + WAIT;
        let gauge = connected.trim_end_matches(" 1");
        while has_metric(&net, gauge) {
            assert!(std::time::Instant::now() < deadline, "{gauge} stays");
            std::thread::sleep(Duration::from_millis(200));
        }
        stop.store(true, Ordering::Relaxed);
        let sent = load.join().unwrap();
        assert!(signed_at > 2);
        sent
    });
    // Every transaction of the load is on the chain once, on all four.
    let key_of = |i: u32| testing::key(0xb7, 10_000 + i).public();
    net.wait_nonce(&[0, 1, 2, 3], &key_of(sent - 1), 1);
    for i in 0..sent {
        assert_eq!(net.next_nonce(0, &key_of(i)).unwrap(), 1, "DID {i}");
    }
}

/// Two of four validators paused (SIGSTOP: their kernels keep the connections open): the
/// others drop them for not answering pings, say the chain is stalled and whom they miss,
/// and are not ready; resumed, all is well again.
#[test]
fn with_two_validators_paused_status_says_stalled_and_names_them() {
    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    net.pause(2).unwrap();
    net.pause(3).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        let status = net.status(0).unwrap_or_default();
        if !status["stalled"].is_null() && status["peers"] == 1 {
            break status;
        }
        if std::time::Instant::now() > deadline {
            net.resume(2).unwrap();
            net.resume(3).unwrap();
            net.dump_logs();
            panic!("node 0 never said it is stalled with one peer: {status:#}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stall = &status["stalled"];
    assert_eq!(
        stall["missing"],
        serde_json::json!(["node2", "node3"]),
        "{status:#}"
    );
    assert_eq!(
        (
            stall["heard_power"].as_u64(),
            stall["quorum_power"].as_u64()
        ),
        (Some(20), Some(27))
    );
    assert!(
        stall["reason"]
            .as_str()
            .unwrap()
            .contains("not connected: node2, node3"),
        "{status:#}"
    );
    let (code, ready) = common::get(&net.nodes[0].rpc, "/ready").unwrap();
    assert_eq!(code, 503, "{ready}");
    assert!(
        ready["reasons"][0].as_str().unwrap().starts_with("stalled"),
        "{ready}"
    );
    let (code, _) = common::get(&net.nodes[0].rpc, "/health").unwrap();
    assert_eq!(code, 200);
    let metrics = metrics(&net, 0);
    assert!(
        metrics.contains("acta_validator_connected{validator=\"node2\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("acta_consensus_stalled 1"), "{metrics}");
    // Resumed: the chain goes on and node 0 is ready again.
    net.resume(2).unwrap();
    net.resume(3).unwrap();
    let h = net.height(0);
    net.wait_height(&[0, 1, 2, 3], h + 2, WAIT);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (code, ready) = common::get(&net.nodes[0].rpc, "/ready").unwrap();
        if code == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{ready}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGHUP applies the settings documented as reloadable (here: a blocked peer, the empty
/// block interval and the configured peers), names the changed ones that wait for a
/// restart, and applies nothing from a file that does not check.
#[test]
fn sighup_reloads_the_reloadable_settings_and_names_the_others() {
    let mut net = Net::new(4);
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 2, WAIT);
    let peer1 = net.nodes[1].peer_id.clone();
    net.configure(0, |c| {
        c.p2p.blocked_peers = vec![peer1];
        c.consensus.empty_block_interval_ms = 2_000;
        c.rpc.max_body_bytes += 1;
    });
    net.net.signal(0, "HUP").unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while net.status(0).map(|s| s["peers"].clone()) != Some(serde_json::json!(2)) {
        if std::time::Instant::now() > deadline {
            net.dump_logs();
            panic!("node 0 did not drop the peer it was told to block");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(net.logs_contain("SIGHUP: reloaded p2p.peers, p2p.blocked_peers"));
    assert!(net.logs_contain(
        "SIGHUP: rpc.max_body_bytes changed in the config file but take effect only at restart"
    ));
    // A file that does not check changes nothing: the peer stays blocked.
    std::fs::write(
        net.nodes[0].home.join("config.toml"),
        "[p2p]\nmax_strikes = \"many\"\n",
    )
    .unwrap();
    net.net.signal(0, "HUP").unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while !net.logs_contain("SIGHUP: the config file was not applied") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning for a bad file"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = net.height(0);
    net.wait_height(&[0], h + 2, WAIT);
    assert_eq!(net.status(0).unwrap()["peers"], 2);
}
