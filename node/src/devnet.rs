//! Local networks of `actad` processes on 127.0.0.1, for tests, demos and benchmarks: homes
//! made with `actad init`, one genesis with a council, free ports, process control (start,
//! SIGTERM, SIGKILL) and a small HTTP client for the nodes' APIs.

use std::{
    io::Read,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use std::collections::HashMap;

use acta_contracts::executor::NS_NONCE;
use acta_ledger::{
    tx::TX_LIFETIME_DEFAULT_MS, Call, ChainId, Keypair, PublicKey, Timestamp, Transaction,
};
use anyhow::{anyhow, bail, Context, Result};
use borsh::BorshDeserialize;
use serde_json::Value;

use crate::{
    config::Config,
    genesis::{Genesis, GenesisCouncil, GenesisValidator},
};

/// Heights from a budget round's closing to its stored tally on a local network
/// (parameter `tally_delay`; about two seconds while rounds are under way).
pub const LOCAL_TALLY_DELAY: u64 = 10;

/// The `actad` binary beside the running one (cargo builds them into one folder).
pub fn actad_beside_me() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating the running program")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("the running program has no folder"))?;
    // Beside this binary, or one folder up for test binaries in `deps/`.
    let candidates = [dir.join("actad"), dir.join("../actad")];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "{} is missing: build it with `cargo build -p acta-node`",
                candidates[0].display()
            )
        })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `n` distinct TCP ports on 127.0.0.1 that were free a moment ago: all are held open
/// until all are chosen, so the system cannot hand out one twice, and none is one this
/// process handed out before (networks started side by side in tests do not collide).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    // Bounded: the system has tens of thousands of ephemeral ports.
    for _ in 0..n * 100 {
        if ports.len() == n {
            break;
        }
        let l = TcpListener::bind("127.0.0.1:0")?;
        let port = l.local_addr()?.port();
        held.push(l);
        if !given.contains(&port) {
            given.push(port);
            ports.push(port);
        }
    }
    if ports.len() < n {
        bail!("could not find {n} free ports on 127.0.0.1");
    }
    Ok(ports)
}

/// One validator process.
#[derive(Debug)]
pub struct LocalNode {
    pub name: String,
    pub home: PathBuf,
    pub rpc: String,
    pub p2p_port: u16,
    /// The multiaddress the others dial (without `/p2p/`).
    pub address: String,
    pub peer_id: String,
    pub child: Option<Child>,
    /// Arguments added to `actad start` (such as `--misbehave equivocate`).
    pub start_args: Vec<String>,
    /// A command that runs `actad` (its path comes last), such as `ip netns exec NAME`;
    /// empty: `actad` itself.
    pub launcher: Vec<String>,
}

/// A network of local validators.
#[derive(Debug)]
pub struct LocalNet {
    pub dir: PathBuf,
    pub nodes: Vec<LocalNode>,
    actad: PathBuf,
}

/// What `actad show-node` says of a new home.
struct Shown {
    consensus_key: String,
}

/// Where a node listens and is reached.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The host others dial: an IPv4 address or a DNS name.
    pub host: String,
    pub p2p_port: u16,
    pub rpc_port: u16,
    /// Listen on every interface (a real host) rather than on `host` (127.0.0.1).
    pub wildcard: bool,
}

impl Placement {
    fn local(p2p_port: u16, rpc_port: u16) -> Placement {
        Placement {
            host: "127.0.0.1".into(),
            p2p_port,
            rpc_port,
            wildcard: false,
        }
    }

    /// A real machine at `host`: listening on every interface at the standard ports, 26656
    /// (p2p) and 26657 (API).
    pub fn host(host: &str) -> Placement {
        Placement {
            host: host.to_string(),
            p2p_port: 26656,
            rpc_port: 26657,
            wildcard: true,
        }
    }

    /// The multiaddress of `host` at `port`: `/ip4/…` for an IPv4 address, else `/dns4/…`.
    fn multiaddr(&self, port: u16) -> String {
        if self.host.parse::<std::net::Ipv4Addr>().is_ok() {
            format!("/ip4/{}/tcp/{port}", self.host)
        } else {
            format!("/dns4/{}/tcp/{port}", self.host)
        }
    }
}

/// `actad init` of a home `dir/name` at `at`.
fn new_home(actad: &Path, dir: &Path, name: &str, at: &Placement) -> Result<(LocalNode, Shown)> {
    let home = dir.join(name);
    let (p2p_listen, rpc_listen) = if at.wildcard {
        (
            format!("/ip4/0.0.0.0/tcp/{}", at.p2p_port),
            format!("0.0.0.0:{}", at.rpc_port),
        )
    } else {
        (
            at.multiaddr(at.p2p_port),
            format!("{}:{}", at.host, at.rpc_port),
        )
    };
    let out = Command::new(actad)
        .args(["init", "--home"])
        .arg(&home)
        .args(["--moniker", name])
        .args(["--p2p-listen", &p2p_listen])
        .args(["--rpc-listen", &rpc_listen])
        .output()?;
    if !out.status.success() {
        bail!("actad init: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(actad)
        .args(["show-node", "--home"])
        .arg(&home)
        .output()?;
    let v: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| anyhow!("actad show-node: {e}"))?;
    let field = |k: &str| -> Result<String> {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("actad show-node printed no {k}"))
    };
    let shown = Shown {
        consensus_key: field("consensus_key")?,
    };
    let node = LocalNode {
        name: name.to_string(),
        home,
        rpc: format!("{}:{}", at.host, at.rpc_port),
        p2p_port: at.p2p_port,
        address: at.multiaddr(at.p2p_port),
        peer_id: field("peer_id")?,
        child: None,
        start_args: Vec::new(),
        launcher: Vec::new(),
    };
    Ok((node, shown))
}

/// Sets a node's peers and, on one machine, the timeouts suited to it.
fn local_config(home: &Path, peers: Vec<String>, one_machine: bool) -> Result<()> {
    let path = home.join("config.toml");
    let mut config = Config::load(&path)?;
    config.p2p.peers = peers;
    if !one_machine {
        std::fs::write(&path, config.commented())?;
        return Ok(());
    }
    config.p2p.gossip_interval_ms = 500;
    config.consensus.timeout_propose_ms = 1500;
    config.consensus.timeout_prevote_ms = 500;
    config.consensus.timeout_precommit_ms = 500;
    // A local network shows its liveness every second when idle (10 s in production).
    config.consensus.empty_block_interval_ms = 1000;
    // On one machine every client is 127.0.0.1: the load generator and the demo stand
    // for a city's thousands of residents, whom no one address would carry.
    config.rpc.client_txs_per_second = 0;
    std::fs::write(&path, config.commented())?;
    Ok(())
}

impl LocalNet {
    /// Creates `n` validator homes in `dir` (which must not exist) with one genesis: equal
    /// power, the given council, block timeouts suited to one machine. `actad` is the binary
    /// to run.
    pub fn init(
        actad: &Path,
        dir: &Path,
        n: usize,
        chain_id: &str,
        council: &[Keypair],
        threshold: u16,
    ) -> Result<LocalNet> {
        let ports = free_ports(2 * n)?;
        let placements: Vec<Placement> = (0..n)
            .map(|i| Placement::local(ports[2 * i], ports[2 * i + 1]))
            .collect();
        Self::init_at(actad, dir, &placements, chain_id, council, threshold)
    }

    /// Creates one validator home per placement in `dir` (which must not exist), as
    /// [`LocalNet::init`] does on 127.0.0.1: with wildcard placements, for real hosts, to
    /// be copied each to its machine.
    pub fn init_at(
        actad: &Path,
        dir: &Path,
        placements: &[Placement],
        chain_id: &str,
        council: &[Keypair],
        threshold: u16,
    ) -> Result<LocalNet> {
        if dir.exists() {
            bail!("{} exists; choose a new folder", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let actad = actad.to_path_buf();
        let mut nodes = Vec::new();
        let mut validators = Vec::new();
        for (i, at) in placements.iter().enumerate() {
            let (node, shown) = new_home(&actad, dir, &format!("node{i}"), at)?;
            validators.push(GenesisValidator {
                name: node.name.clone(),
                consensus_key: shown.consensus_key,
                peer_id: node.peer_id.clone(),
                address: Some(node.address.clone()),
                power: 10,
            });
            nodes.push(node);
        }
        let genesis_time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let genesis = Genesis {
            chain_id: chain_id.to_string(),
            genesis_time_ms: u64::try_from(genesis_time_ms)?,
            validators,
            council: GenesisCouncil {
                members: council.iter().map(|k| k.public().to_hex()).collect(),
                threshold,
            },
            issuers: vec![],
            // A closed round's tally lands a couple of seconds later, not the
            // production default of 150 heights.
            parameters: [(
                acta_contracts::params::TALLY_DELAY.name.to_string(),
                LOCAL_TALLY_DELAY,
            )]
            .into(),
        };
        for (i, node) in nodes.iter().enumerate() {
            genesis.save(&node.home.join("genesis.json"))?;
            let peers: Vec<String> = nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("{}/p2p/{}", p.address, p.peer_id))
                .collect();
            local_config(&node.home, peers, !placements[i].wildcard)?;
        }
        Ok(LocalNet {
            dir: dir.to_path_buf(),
            nodes,
            actad,
        })
    }

    /// Creates a home for one more node (not started), with the network's genesis and no
    /// configured peers: it is not a validator, and the validators let it in only once the
    /// council adds it (`GovAction::AddValidator` with its node). Returns its index and its
    /// consensus public key.
    pub fn add_node(&mut self) -> Result<(usize, PublicKey)> {
        let i = self.nodes.len();
        let ports = free_ports(2)?;
        let (node, shown) = new_home(
            &self.actad,
            &self.dir,
            &format!("node{i}"),
            &Placement::local(ports[0], ports[1]),
        )?;
        std::fs::copy(
            self.nodes[0].home.join("genesis.json"),
            node.home.join("genesis.json"),
        )?;
        local_config(&node.home, Vec::new(), true)?;
        self.nodes.push(node);
        Ok((i, PublicKey::from_hex(&shown.consensus_key)?))
    }

    /// The node of `i` as the council names it in `AddValidator`.
    pub fn validator_node(&self, i: usize) -> Result<acta_ledger::records::ValidatorNode> {
        let node = &self.nodes[i];
        Ok(acta_ledger::records::ValidatorNode {
            peer_id: acta_ledger::types::Text::new(node.peer_id.clone())?,
            address: acta_ledger::types::Text::new(format!(
                "/ip4/127.0.0.1/tcp/{}",
                node.p2p_port
            ))?,
        })
    }

    /// Starts node `i`, logging to `HOME/log`.
    pub fn start(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        if node.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("log"))?;
        let mut command = match node.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.actad);
                c
            }
            None => Command::new(&self.actad),
        };
        let child = command
            .args(["start", "--home"])
            .arg(&node.home)
            .args(&node.start_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting actad")?;
        node.child = Some(child);
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (up to 20 s) for a clean exit; an error if it does not come.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        let node = &mut self.nodes[i];
        let Some(mut c) = node.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = c.try_wait()? {
                if !status.success() {
                    bail!("{} exited with {status} after SIGTERM", node.name);
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("{} did not stop on SIGTERM", node.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (such as `STOP` or `CONT`) to node `i`'s process, if it runs.
    pub fn signal(&self, i: usize, signal: &str) -> Result<()> {
        let Some(c) = &self.nodes[i].child else {
            bail!("{} is not running", self.nodes[i].name);
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(c.id().to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{signal} {} failed", self.nodes[i].name);
        }
        Ok(())
    }

    /// Freezes node `i` (SIGSTOP): it keeps its sockets but does nothing.
    pub fn pause(&self, i: usize) -> Result<()> {
        self.signal(i, "STOP")
    }

    /// Lets a frozen node `i` run again (SIGCONT).
    pub fn resume(&self, i: usize) -> Result<()> {
        self.signal(i, "CONT")
    }

    /// Sets node `i`'s `p2p.blocked_peers` to the peer ids of `nodes` and has it re-read
    /// its config (SIGHUP): it drops and refuses those peers until they are unblocked.
    pub fn block(&self, i: usize, nodes: &[usize]) -> Result<()> {
        let peers = nodes
            .iter()
            .map(|&j| self.nodes[j].peer_id.clone())
            .collect();
        self.edit_config(i, |c| c.p2p.blocked_peers = peers)?;
        self.signal(i, "HUP")
    }

    /// Changes node `i`'s `config.toml` (read, changed by `change`, written back with its
    /// comments); a running node sees it at its next start (or SIGHUP, for what it re-reads).
    pub fn edit_config(&self, i: usize, change: impl FnOnce(&mut Config)) -> Result<()> {
        let path = self.nodes[i].home.join("config.toml");
        let mut config = Config::load(&path)?;
        change(&mut config);
        std::fs::write(&path, config.commented())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Splits the network: every node blocks the nodes outside its group.
    pub fn partition(&self, groups: &[&[usize]]) -> Result<()> {
        for group in groups {
            let outside: Vec<usize> = (0..self.nodes.len())
                .filter(|j| !group.contains(j))
                .collect();
            for &i in *group {
                self.block(i, &outside)?;
            }
        }
        Ok(())
    }

    /// Ends a partition: every node unblocks every peer.
    pub fn heal(&self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.block(i, &[])?;
        }
        Ok(())
    }

    /// The next nonce of `key` in node `i`'s latest state.
    pub fn next_nonce(&self, i: usize, key: &PublicKey) -> Result<u64> {
        Ok(self
            .state(i, NS_NONCE, &key.0)?
            .map(|b| u64::try_from_slice(&b))
            .transpose()?
            .unwrap_or(0))
    }

    /// Stops every node with SIGTERM.
    pub fn stop_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.stop(i)?;
        }
        Ok(())
    }

    /// Node `i`'s `/status`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        get(&self.nodes[i].rpc, "/status").ok().map(|(_, v)| v)
    }

    /// Node `i`'s latest committed height (0 while it does not answer).
    pub fn height(&self, i: usize) -> u64 {
        self.status(i)
            .and_then(|v| v["height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until every node has committed a block whose time is `time` or later, and
    /// returns the lowest of their heights then.
    pub fn wait_time(&self, time: acta_ledger::Timestamp, within: Duration) -> Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            let latest: Vec<(u64, u64)> = (0..self.nodes.len())
                .map(|i| {
                    self.status(i).map_or((0, 0), |v| {
                        (
                            v["height"].as_u64().unwrap_or(0),
                            v["block_time_ms"].as_u64().unwrap_or(0),
                        )
                    })
                })
                .collect();
            if latest.iter().all(|(_, t)| *t >= time.0) {
                return Ok(latest.iter().map(|(h, _)| *h).min().unwrap_or(0));
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes at (height, block time ms) {latest:?}, not all past {} after {within:?}",
                    time.rfc3339()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every node has committed `height`.
    pub fn wait_height(&self, height: u64, within: Duration) -> Result<()> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_height_of(&all, height, within)
    }

    /// Waits until the nodes in `which` have committed `height`.
    pub fn wait_height_of(&self, which: &[usize], height: u64, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let heights: Vec<u64> = which.iter().map(|&i| self.height(i)).collect();
            if heights.iter().all(|h| *h >= height) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes {which:?} at heights {heights:?}, not all at {height} after {within:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Submits a transaction to node `i` and returns the HTTP status and answer, retrying
    /// (for up to 30 s) while its API is not up yet.
    pub fn submit_raw(&self, i: usize, tx: &Transaction) -> Result<(u16, Value)> {
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match post(&self.nodes[i].rpc, "/txs", &body) {
                Ok(answer) => return Ok(answer),
                Err(e) if Instant::now() > deadline => bail!("{}'s API: {e}", self.nodes[i].name),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Submits a transaction to node `i`; its hash, or why it was refused.
    pub fn submit(&self, i: usize, tx: &Transaction) -> Result<String> {
        match self.submit_raw(i, tx)? {
            (200, v) => Ok(v["hash"].as_str().unwrap_or_default().to_string()),
            (code, v) => bail!("transaction refused ({code}): {}", v["message"]),
        }
    }

    /// A raw state value on node `i` at its latest height.
    pub fn state(&self, i: usize, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (code, v) = get(
            &self.nodes[i].rpc,
            &format!("/state/{namespace}/{}", hex::encode(key)),
        )?;
        if code != 200 {
            bail!("state read failed ({code}): {v}");
        }
        match v["value"].as_str() {
            None => Ok(None),
            Some(h) => Ok(Some(hex::decode(h)?)),
        }
    }

    /// The block hash and state root at `height` on node `i`.
    pub fn block_summary(&self, i: usize, height: u64) -> Result<(String, String, usize)> {
        let (code, v) = get(&self.nodes[i].rpc, &format!("/blocks/{height}"))?;
        if code != 200 {
            bail!("block {height} on {}: {v}", self.nodes[i].name);
        }
        Ok((
            v["hash"].as_str().unwrap_or_default().to_string(),
            v["block"]["header"]["state_root"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["block"]["txs"].as_array().map_or(0, Vec::len),
        ))
    }

    /// Asserts that the nodes in `which` hold the same block and state root at heights
    /// 1..=`height`; returns the number of transactions in those blocks.
    pub fn same_chain(&self, which: &[usize], height: u64) -> Result<usize> {
        let mut txs = 0;
        for h in 1..=height {
            let first = self.block_summary(which[0], h)?;
            for &i in &which[1..] {
                if self.block_summary(i, h)? != first {
                    bail!(
                        "{} differs from {} at height {h}",
                        self.nodes[i].name,
                        self.nodes[which[0]].name
                    );
                }
            }
            txs += first.2;
        }
        Ok(txs)
    }

    /// Whether any node's log has a line containing `pattern`.
    pub fn logs_contain(&self, pattern: &str) -> bool {
        self.nodes.iter().any(|n| {
            std::fs::read_to_string(n.home.join("log"))
                .unwrap_or_default()
                .contains(pattern)
        })
    }

    /// Prints the last lines of every node's log to stderr.
    pub fn dump_logs(&self) {
        for n in &self.nodes {
            let log = std::fs::read_to_string(n.home.join("log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("---- {} (warnings) ----", n.name);
            for l in lines.iter().filter(|l| l.contains("WARN")).take(40) {
                eprintln!("{l}");
            }
            eprintln!("---- {} (last lines) ----", n.name);
            for l in &lines[lines.len().saturating_sub(30)..] {
                eprintln!("{l}");
            }
        }
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].home.join("data")
    }
}

impl Drop for LocalNet {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Signs with the next nonce of each key, submits, and waits for transactions to be
/// committed.
#[derive(Debug)]
pub struct Wallet<'a> {
    pub net: &'a LocalNet,
    pub chain: ChainId,
    nonces: HashMap<PublicKey, u64>,
    next_node: usize,
}

impl<'a> Wallet<'a> {
    pub fn new(net: &'a LocalNet, chain: ChainId) -> Wallet<'a> {
        Wallet {
            net,
            chain,
            nonces: HashMap::new(),
            next_node: 0,
        }
    }

    /// Takes `key`'s next nonce from the chain (node 0), for a key that signed before this
    /// wallet was made.
    pub fn resume(&mut self, key: &Keypair) -> Result<()> {
        let next = self.net.next_nonce(0, &key.public())?;
        self.nonces.insert(key.public(), next);
        Ok(())
    }

    /// Signs `call` with `key`'s next nonce, valid for the wallets' default time.
    pub fn tx(&mut self, key: &Keypair, call: Call) -> Transaction {
        let n = self.nonces.entry(key.public()).or_insert(0);
        let valid_until = Timestamp::now().plus_ms(TX_LIFETIME_DEFAULT_MS);
        let tx = Transaction::sign(key, self.chain.clone(), *n, valid_until, call);
        *n += 1;
        tx
    }

    /// Submits transactions, each signer's to one node (the mempool takes a signer's
    /// nonces in order), spreading signers over the nodes.
    pub fn send(&mut self, txs: &[Transaction]) -> Result<()> {
        let mut node_of: HashMap<PublicKey, usize> = HashMap::new();
        for tx in txs {
            let n = self.net.nodes.len();
            let node = *node_of.entry(tx.signer).or_insert_with(|| {
                self.next_node += 1;
                self.next_node % n
            });
            self.net.submit(node, tx)?;
        }
        Ok(())
    }

    /// Waits (up to a minute) until every signer's committed nonce has caught up with what
    /// it signed: the transactions were decided and accepted (a refused one leaves its
    /// nonce unused).
    pub fn settle(&self, keys: &[&Keypair]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        for key in keys {
            let want = self.nonces.get(&key.public()).copied().unwrap_or(0);
            loop {
                let have = self.net.next_nonce(0, &key.public())?;
                if have >= want {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "transactions of {} were not all accepted (nonce {have} of {want})",
                        key.public()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    pub fn send_and_settle(&mut self, txs: &[Transaction], keys: &[&Keypair]) -> Result<()> {
        self.send(txs)?;
        self.settle(keys)
    }
}

/// An HTTP answer: status, head (status line and headers) and body, de-chunked.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }
}

/// Sends one HTTP/1.1 request on a connection of its own and reads the whole answer,
/// waiting at most `timeout` to connect and for each read or write.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<HttpAnswer> {
    http_with(addr, method, path, &[], body, timeout)
}

/// As [`http`], with extra request headers (such as `Accept`). A body is sent as JSON.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<HttpAnswer> {
    // No connection kept for later: each call stands alone, as the API's connection
    // limits expect of a test or a tool.
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout_write(timeout)
        .max_idle_connections(0)
        .redirects(0)
        .build();
    let mut request = agent.request(method, &format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let answer = match body {
        Some(b) => request
            .set("Content-Type", "application/json")
            .send_bytes(b),
        None => request.call(),
    };
    let response = match answer {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(e)) => return Err(std::io::Error::other(e.to_string())),
    };
    let status = response.status();
    let mut head = format!(
        "{} {status} {}\r\n",
        response.http_version(),
        response.status_text()
    );
    for name in response.headers_names() {
        for value in response.all(&name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body)?;
    Ok(HttpAnswer { status, head, body })
}

fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    let a = http(
        addr,
        method,
        path,
        body.map(str::as_bytes),
        Duration::from_secs(10),
    )?;
    Ok((a.status, a.json()))
}

/// `GET path` on `addr`, answered as JSON.
pub fn get(addr: &str, path: &str) -> std::io::Result<(u16, Value)> {
    request(addr, "GET", path, None)
}

/// `POST path` with a JSON body on `addr`.
pub fn post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, Value)> {
    request(addr, "POST", path, Some(body))
}
