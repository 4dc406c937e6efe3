//! `acta-testnet init|up|down|status|logs`: a local network that outlives the command that
//! started it. `init` writes the validators' homes, one genesis (a 2-of-3 council and a
//! city agency as issuer) and a manifest, `testnet.json`; `up` starts one detached `actad`
//! per home and records its pid; `down` stops them with SIGTERM; `status` shows each
//! node's height, round, peers and mempool; `logs` prints a node's log.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use acta_ledger::{records::CredentialKind, testing, Did};
use acta_node::{
    devnet::{actad_beside_me, get, LocalNet, Placement},
    genesis::{Genesis, GenesisIssuer},
};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

const MANIFEST: &str = "testnet.json";

/// What `init` wrote, for the other commands.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub chain_id: String,
    pub actad: PathBuf,
    pub nodes: Vec<NodeEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    pub home: PathBuf,
    /// The API's address, `127.0.0.1:PORT`.
    pub rpc: String,
    pub peer_id: String,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}: is {} a network made by `acta-testnet init`?",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    fn node(&self, name: &str) -> Result<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            anyhow!("no node {name:?}; the nodes are {}", names.join(", "))
        })
    }
}

/// Writes `n` validator homes, the genesis and the manifest into `dir` (which must not
/// exist). The council's and the agency's test keys are written as seeds under
/// `dir/keys/` (for `acta keys import`): they are for local networks only.
pub fn init(dir: &Path, n: usize, chain_id: &str, hosts: &[String]) -> Result<Manifest> {
    let n = if hosts.is_empty() { n } else { hosts.len() };
    if !(1..=31).contains(&n) {
        bail!("--validators (or the number of --hosts) is 1 to 31, not {n}");
    }
    for (i, h) in hosts.iter().enumerate() {
        let name_ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !name_ok {
            bail!("--hosts[{i}] {h:?}: an IPv4 address or a DNS name");
        }
        if hosts[..i].contains(h) {
            bail!("--hosts: {h} is listed twice (one validator per host)");
        }
    }
    let council: Vec<_> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let agency = testing::key(0xd1, 0);
    let actad = actad_beside_me()?;
    let net = if hosts.is_empty() {
        LocalNet::init(&actad, dir, n, chain_id, &council, 2)?
    } else {
        let placements: Vec<Placement> = hosts.iter().map(|h| Placement::host(h)).collect();
        LocalNet::init_at(&actad, dir, &placements, chain_id, &council, 2)?
    };
    add_genesis_issuer(&net, &agency)?;
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    let named = council
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("council{i}"), k))
        .chain([("agency".to_string(), &agency)]);
    for (name, key) in named {
        let path = keys.join(format!("{name}.seed"));
        std::fs::write(&path, format!("{}\n", hex::encode(key.seed())))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    let manifest = Manifest {
        chain_id: chain_id.to_string(),
        actad,
        nodes: net
            .nodes
            .iter()
            .map(|n| NodeEntry {
                name: n.name.clone(),
                home: n.home.clone(),
                rpc: n.rpc.clone(),
                peer_id: n.peer_id.clone(),
            })
            .collect(),
    };
    std::fs::write(dir.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    Ok(manifest)
}

/// Makes `agency` (its DID, created by the agency itself) an issuer of every kind of
/// credential from the first block, in every node's genesis.
pub fn add_genesis_issuer(net: &LocalNet, agency: &acta_ledger::Keypair) -> Result<()> {
    for node in &net.nodes {
        let path = node.home.join("genesis.json");
        let (mut genesis, _) = Genesis::load(&path)?;
        genesis.issuers = vec![GenesisIssuer {
            did: Did::from_initial_key(&agency.public()).to_string(),
            kinds: vec![
                CredentialKind::Resident,
                CredentialKind::SensorOperator,
                CredentialKind::Auditor,
                CredentialKind::BudgetOffice,
            ],
        }];
        genesis.save(&path)?;
    }
    Ok(())
}

fn pid_file(node: &NodeEntry) -> PathBuf {
    node.home.join("actad.pid")
}

/// The pid of a running node, if its pid file names a live process.
fn running(node: &NodeEntry) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(node))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Starts every node that is not running, detached (its own process group; output to
/// `HOME/log`), and waits up to a minute for the network's first block.
pub fn up(dir: &Path) -> Result<()> {
    let m = Manifest::load(dir)?;
    for node in &m.nodes {
        if let Some(pid) = running(node) {
            acta_node::outln!("{} already runs (pid {pid})", node.name);
            continue;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("log"))?;
        let child = Command::new(&m.actad)
            .args(["start", "--home"])
            .arg(&node.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", m.actad.display()))?;
        std::fs::write(pid_file(node), child.id().to_string())?;
        acta_node::outln!(
            "started {} (pid {}, API {})",
            node.name,
            child.id(),
            node.rpc
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !m.nodes.iter().all(|n| height(n).is_some_and(|h| h >= 1)) {
        if Instant::now() > deadline {
            bail!("the network decided no block within a minute: see `acta-testnet logs`");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    acta_node::outln!(
        "the network runs: acta-testnet status --dir {}",
        dir.display()
    );
    if let Some(first) = m.nodes.first() {
        acta_node::outln!(
            "point the wallet at it once: acta config set node http://{}",
            first.rpc
        );
    }
    Ok(())
}

fn height(node: &NodeEntry) -> Option<u64> {
    get(&node.rpc, "/status").ok()?.1["height"].as_u64()
}

/// Stops every running node with SIGTERM and waits (up to 20 s each) for it to exit.
pub fn down(dir: &Path) -> Result<()> {
    let m = Manifest::load(dir)?;
    for node in &m.nodes {
        let Some(pid) = running(node) else {
            acta_node::outln!("{} is not running", node.name);
            continue;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            bail!("{} (pid {pid}) did not stop on SIGTERM", node.name);
        }
        let _ = std::fs::remove_file(pid_file(node));
        acta_node::outln!("stopped {}", node.name);
    }
    Ok(())
}

/// How `status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// What the process of a node is doing, from its pid file and `/proc`.
fn process_state(node: &NodeEntry) -> Option<&'static str> {
    let pid = running(node)?;
    // The state letter follows the command name, which is in parentheses.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(match state {
        "T" | "t" => "paused",
        "Z" => "dead",
        _ => "running",
    })
}

/// One node's row: from its process and its `/status` and `/ready` answers.
fn node_state(node: &NodeEntry) -> serde_json::Value {
    let answer = get(&node.rpc, "/status").ok().filter(|(c, _)| *c == 200);
    let ready = get(&node.rpc, "/ready").ok();
    let started = std::fs::metadata(pid_file(node))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let state = match (process_state(node), &answer) {
        (Some("paused"), _) => "paused",
        (Some("running"), Some(_)) => "up",
        // Not answering yet: starting for its first 30 s, then unresponsive.
        (Some("running"), None) if started.is_some_and(|s| s < Duration::from_secs(30)) => {
            "starting"
        }
        (Some("running"), None) => "unresponsive",
        _ => "down",
    };
    let v = answer.map(|(_, v)| v).unwrap_or_default();
    serde_json::json!({
        "name": node.name,
        "state": state,
        "height": v["height"],
        "round": v["consensus_round"],
        "peers": v["peers"],
        "mempool": v["mempool_txs"],
        "role": v["role"],
        "ready": ready.as_ref().map(|(code, _)| *code == 200),
        "stalled": v["stalled"]["reason"],
        "api": node.rpc,
    })
}

/// One table (or JSON array) of every node's state; with `watch`, redrawn every second
/// (Ctrl-C ends it).
pub fn status(dir: &Path, watch: bool, output: Output) -> Result<()> {
    let m = Manifest::load(dir)?;
    loop {
        let rows: Vec<serde_json::Value> = m.nodes.iter().map(node_state).collect();
        if output == Output::Json {
            acta_node::outln!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(());
        }
        let mut out = format!(
            "{:<8} {:<12} {:>8} {:>6} {:>6} {:>8}  {:<9} {:<5} {}\n",
            "NODE", "STATE", "HEIGHT", "ROUND", "PEERS", "MEMPOOL", "ROLE", "READY", "API"
        );
        let mut stalls = String::new();
        for r in &rows {
            let cell = |k: &str| match &r[k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            out.push_str(&format!(
                "{:<8} {:<12} {:>8} {:>6} {:>6} {:>8}  {:<9} {:<5} {}\n",
                cell("name"),
                cell("state"),
                cell("height"),
                cell("round"),
                cell("peers"),
                cell("mempool"),
                cell("role"),
                match r["ready"].as_bool() {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                },
                cell("api"),
            ));
            if let Some(why) = r["stalled"].as_str() {
                stalls.push_str(&format!("{}: stalled: {why}\n", cell("name")));
            }
        }
        out.push_str(&stalls);
        if !watch {
            acta_node::out!("{out}");
            return Ok(());
        }
        // Clear the screen and draw again.
        acta_node::out!("\x1b[2J\x1b[H{out}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The last `lines` lines of a node's log.
pub fn logs(dir: &Path, name: &str, lines: usize) -> Result<()> {
    let m = Manifest::load(dir)?;
    let node = m.node(name)?;
    let path = node.home.join("log");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len().saturating_sub(lines)..] {
        acta_node::outln!("{l}");
    }
    Ok(())
}
