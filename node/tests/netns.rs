//! Four validators on four "machines": Linux network namespaces joined by a bridge, each
//! node at its own address (not 127.0.0.1), homes written as `acta-testnet init --hosts`
//! writes them. They agree on blocks with transactions sent to every one of them.
//!
//! Needs root and `ip netns` (iproute2); elsewhere the test says why and passes without
//! running, since it cannot create the namespaces.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::{path::Path, process::Command, time::Duration};

use acta_ledger::testing;
use acta_node::devnet::{LocalNet, Placement};
use common::did_tx;

const WAIT: Duration = Duration::from_secs(120);

/// Runs `ip ARGS`; `Err` with its error output if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces and the bridge of one run, removed when dropped.
struct Namespaces {
    names: Vec<String>,
    bridge: String,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// `n` namespaces on subnet `10.231.S.0/24`, namespace `i` at `10.231.S.(10+i)`, joined
/// by a bridge at `.1` in this namespace (so that the test reaches their APIs).
fn namespaces(n: usize) -> Result<(Namespaces, Vec<String>), String> {
    let tag = std::process::id() % 10_000;
    let subnet = std::process::id() % 250;
    let mut ns = Namespaces {
        names: Vec::new(),
        bridge: format!("actab{tag}"),
    };
    ip(&["link", "add", &ns.bridge, "type", "bridge"])?;
    ip(&[
        "addr",
        "add",
        &format!("10.231.{subnet}.1/24"),
        "dev",
        &ns.bridge,
    ])?;
    ip(&["link", "set", &ns.bridge, "up"])?;
    let mut hosts = Vec::new();
    for i in 0..n {
        let name = format!("acta{tag}n{i}");
        ip(&["netns", "add", &name])?;
        ns.names.push(name.clone());
        let (outside, inside) = (format!("actav{tag}n{i}"), format!("actai{tag}n{i}"));
        let host = format!("10.231.{subnet}.{}", 10 + i);
        ip(&[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ])?;
        ip(&["link", "set", &inside, "netns", &name])?;
        ip(&["link", "set", &outside, "master", &ns.bridge])?;
        ip(&["link", "set", &outside, "up"])?;
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{host}/24"),
            "dev",
            &inside,
        ])?;
        ip(&["-n", &name, "link", "set", &inside, "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        hosts.push(host);
    }
    Ok((ns, hosts))
}

#[test]
fn four_validators_in_four_network_namespaces_agree() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("skipped: creating network namespaces needs root");
        return;
    }
    let (ns, hosts) = match namespaces(4) {
        Ok(made) => made,
        Err(e) => {
            eprintln!("skipped: this machine cannot make network namespaces: {e}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let placements: Vec<Placement> = hosts.iter().map(|h| Placement::host(h)).collect();
    let mut net = LocalNet::init_at(
        Path::new(env!("CARGO_BIN_EXE_actad")),
        &tmp.path().join("net"),
        &placements,
        testing::chain_id().as_str(),
        &[testing::key(0xc5, 0)],
        1,
    )
    .unwrap();
    for (node, name) in net.nodes.iter_mut().zip(&ns.names) {
        node.launcher = vec!["ip".into(), "netns".into(), "exec".into(), name.clone()];
        assert!(!node.rpc.starts_with("127."), "{}", node.rpc);
    }
    net.start_all().unwrap();
    let fail = |net: &LocalNet, e: &dyn std::fmt::Display| -> ! {
        net.dump_logs();
        panic!("{e}");
    };
    if let Err(e) = net.wait_height_of(&[0, 1, 2, 3], 2, WAIT) {
        fail(&net, &e);
    }
    // Transactions through each machine's API, across the bridge.
    for i in 0..20u32 {
        let (code, v) = net.submit_raw((i % 4) as usize, &did_tx(900 + i)).unwrap();
        assert_eq!(code, 200, "{v}");
    }
    let deadline = std::time::Instant::now() + WAIT;
    while (0..20u32).any(|i| {
        net.next_nonce(3, &testing::key(0xb7, 900 + i).public())
            .unwrap_or(0)
            == 0
    }) {
        if std::time::Instant::now() > deadline {
            fail(
                &net,
                &"the transactions were not committed within the deadline",
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let h = net.height(0) + 1;
    if let Err(e) = net.wait_height_of(&[0, 1, 2, 3], h, WAIT) {
        fail(&net, &e);
    }
    let txs = net.same_chain(&[0, 1, 2, 3], h).unwrap();
    assert_eq!(txs, 20);
    // Each node reached the others at their own addresses.
    let (_, status) = acta_node::devnet::get(&net.nodes[0].rpc, "/status").unwrap();
    assert_eq!(status["peers"], 3, "{status}");
    net.stop_all().unwrap();
    drop(ns);
}
