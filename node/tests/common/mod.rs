//! A local network of `actad` processes on 127.0.0.1 for the integration tests: homes made
//! with `actad init`, one genesis, free ports, a tiny HTTP client, and waits with
//! deadlines.

#![allow(dead_code, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use acta_ledger::{testing, Keypair, Transaction};
use acta_node::genesis::{Genesis, GenesisCouncil, GenesisValidator};
use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct NodeProc {
    pub home: PathBuf,
    pub rpc: String,
    pub p2p_port: u16,
    pub peer_id: String,
    pub consensus_key: String,
    pub child: Option<Child>,
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
}

fn actad() -> Command {
    Command::new(env!("CARGO_BIN_EXE_actad"))
}

impl Net {
    /// Creates `n` validator homes with one genesis (equal power) but starts none.
    pub fn new(n: usize) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 0..n {
            let home = dir.path().join(format!("node{i}"));
            let p2p_port = free_port();
            let rpc_port = free_port();
            let status = actad()
                .args(["init", "--home"])
                .arg(&home)
                .args([
                    "--moniker",
                    &format!("node{i}"),
                    "--p2p-listen",
                    &format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
                    "--rpc-listen",
                    &format!("127.0.0.1:{rpc_port}"),
                ])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            let out = actad()
                .args(["show-node", "--home"])
                .arg(&home)
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            nodes.push(NodeProc {
                home,
                rpc: format!("127.0.0.1:{rpc_port}"),
                p2p_port,
                peer_id: v["peer_id"].as_str().unwrap().to_string(),
                consensus_key: v["consensus_key"].as_str().unwrap().to_string(),
                child: None,
            });
        }
        let genesis = Genesis {
            chain_id: testing::chain_id().to_string(),
            genesis_time_ms: 1_700_000_000_000,
            validators: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| GenesisValidator {
                    name: format!("node{i}"),
                    consensus_key: n.consensus_key.clone(),
                    peer_id: n.peer_id.clone(),
                    power: 10,
                })
                .collect(),
            council: GenesisCouncil {
                members: vec![testing::key(0xc5, 0).public().to_hex()],
                threshold: 1,
            },
            issuers: vec![],
            parameters: Default::default(),
        };
        for (i, node) in nodes.iter().enumerate() {
            genesis.save(&node.home.join("genesis.json")).unwrap();
            // Fast timeouts for tests; every other node as a peer.
            let peers: Vec<String> = nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("\"/ip4/127.0.0.1/tcp/{}/p2p/{}\"", p.p2p_port, p.peer_id))
                .collect();
            let config = std::fs::read_to_string(node.home.join("config.toml")).unwrap();
            let config = config
                .replace("peers = []", &format!("peers = [{}]", peers.join(", ")))
                .replace("timeout_propose_ms = 3000", "timeout_propose_ms = 1500")
                .replace("timeout_prevote_ms = 1000", "timeout_prevote_ms = 500")
                .replace("timeout_precommit_ms = 1000", "timeout_precommit_ms = 500")
                .replace("gossip_interval_ms = 1000", "gossip_interval_ms = 500");
            std::fs::write(node.home.join("config.toml"), config).unwrap();
        }
        Net { dir, nodes }
    }

    pub fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("log"))
            .unwrap();
        let child = actad()
            .args(["start", "--home"])
            .arg(&node.home)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    pub fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let pid = c.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = c.try_wait().unwrap() {
                    assert!(status.success(), "node {i} exited with {status}");
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {i} did not stop on SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn status(&self, i: usize) -> Option<Value> {
        get(&self.nodes[i].rpc, "/status").ok().map(|(_, v)| v)
    }

    pub fn height(&self, i: usize) -> u64 {
        self.status(i)
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until every node in `which` has committed `height`.
    pub fn wait_height(&self, which: &[usize], height: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let heights: Vec<u64> = which.iter().map(|&i| self.height(i)).collect();
            if heights.iter().all(|h| *h >= height) {
                return;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!(
                    "nodes {which:?} at heights {heights:?}, not all at {height} within {within:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The block at `height` on node `i`: (hash, state root, tx count).
    pub fn block(&self, i: usize, height: u64) -> (String, String, usize) {
        let (code, v) = get(&self.nodes[i].rpc, &format!("/blocks/{height}")).unwrap();
        assert_eq!(code, 200, "{v}");
        (
            v["hash"].as_str().unwrap().to_string(),
            v["block"]["header"]["state_root"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["block"]["txs"].as_array().map_or(0, Vec::len),
        )
    }

    /// Asserts that nodes in `which` hold the same block and state root at heights
    /// 1..=`height`; returns the number of transactions in those blocks.
    pub fn assert_same_chain(&self, which: &[usize], height: u64) -> usize {
        let mut txs = 0;
        for h in 1..=height {
            let first = self.block(which[0], h);
            for &i in &which[1..] {
                assert_eq!(self.block(i, h), first, "node {i} differs at height {h}");
            }
            txs += first.2;
        }
        txs
    }

    /// Submits a transaction, waiting (with a deadline) for the node's API to be up.
    pub fn submit(&self, i: usize, tx: &Transaction) -> (u16, Value) {
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match post(&self.nodes[i].rpc, "/txs", &body) {
                Ok(answer) => return answer,
                Err(e) if Instant::now() > deadline => panic!("node {i}'s API: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    pub fn dump_logs(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            let log = std::fs::read_to_string(n.home.join("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("---- node {i} (last lines) ----");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }

    /// Whether any node's log has a line containing `pattern`.
    pub fn logs_contain(&self, pattern: &str) -> bool {
        self.nodes.iter().any(|n| {
            std::fs::read_to_string(n.home.join("log"))
                .unwrap_or_default()
                .contains(pattern)
        })
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].home.join("data")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A transaction creating the DID of user key `(0xb7, i)`.
pub fn did_tx(i: u32) -> Transaction {
    let key: Keypair = testing::key(0xb7, i);
    Transaction::sign(
        &key,
        testing::chain_id(),
        0,
        acta_ledger::Call::Identity(acta_ledger::tx::IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    )
}

fn request(addr: &str, req: &str) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP body"))?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let value = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok((code, value))
}

pub fn get(addr: &str, path: &str) -> std::io::Result<(u16, Value)> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

pub fn post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, Value)> {
    request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
