//! `acta-testnet chaos`: faults injected into a local 4-validator network while a client
//! submits transactions and records which were acknowledged as committed (and, with a
//! rate, a second client keeps a load of transactions coming). After the faults
//! stop, the scenario checks that the network decides again within [`RECOVERY`], that
//! every node holds the same blocks and state roots, and that every acknowledged
//! transaction is in every node's ledger.
//!
//! Partitions use the nodes' own peer filtering: each node's `p2p.blocked_peers` is set to
//! the nodes on the other side and the node re-reads it on SIGHUP. The equivocating
//! validator is an `actad` started with the hidden `--misbehave equivocate` flag.

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use acta_ledger::{
    testing,
    tx::{IdentityCall, TX_LIFETIME_DEFAULT_MS},
    Call, ChainId, Timestamp, Transaction,
};
use acta_node::devnet::{actad_beside_me, get, http, LocalNet};
use anyhow::{bail, Context, Result};

/// How long the network may take to decide new blocks once the faults stop.
pub const RECOVERY: Duration = Duration::from_secs(30);

/// How long a fault waits for the healthy nodes to make progress.
const FAULT_WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// SIGKILL a validator and restart it from its store and WAL.
    Kill,
    /// SIGSTOP a validator and resume it with SIGCONT.
    Pause,
    /// Stop a validator, delete its data and restart it: it resyncs from the others.
    Wipe,
    /// Split the validators: two against two (no side has 2/3 of the power, so no block
    /// may be decided) and one against three (the three go on), then heal.
    Partition,
    /// One validator double-signs every prevote; the others must turn that into evidence,
    /// slash it and drop it from the set, and go on without it.
    Equivocate,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Kill,
        Scenario::Pause,
        Scenario::Wipe,
        Scenario::Partition,
        Scenario::Equivocate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::Pause => "pause",
            Scenario::Wipe => "wipe",
            Scenario::Partition => "partition",
            Scenario::Equivocate => "equivocate",
        }
    }
}

/// The validator that equivocates in [`Scenario::Equivocate`].
const EQUIVOCATOR: usize = 3;

/// How long a split with no 2/3 side is watched for blocks that must not come.
const STALL_WATCH: Duration = Duration::from_secs(4);

/// What a scenario found.
#[derive(Debug)]
pub struct Report {
    pub scenario: Scenario,
    pub cycles: u32,
    /// Transactions acknowledged as committed during the faults.
    pub acknowledged: usize,
    /// Submissions that were not acknowledged (refused, timed out, node down).
    pub unacknowledged: usize,
    /// Of the background load (`rate`): transactions sent, and those a mempool admitted.
    pub load_sent: u64,
    pub load_admitted: u64,
    /// Blocks all nodes agree on at the end.
    pub height: u64,
    /// From the end of the faults to every node deciding new blocks.
    pub recovery: Duration,
}

/// A client that creates DIDs through the nodes' APIs in turn, with `mode=commit`, and
/// remembers the hashes of those acknowledged as committed.
struct Client {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    unacknowledged: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Client {
    fn start(apis: Vec<String>, chain: ChainId, tag: u8) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let unacknowledged = Arc::new(AtomicUsize::new(0));
        let (s, a, u) = (stop.clone(), acknowledged.clone(), unacknowledged.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0u32;
            while !s.load(Ordering::Relaxed) {
                let key = testing::key(tag, i);
                let tx = Transaction::sign(
                    &key,
                    chain.clone(),
                    0,
                    Timestamp::now().plus_ms(TX_LIFETIME_DEFAULT_MS),
                    Call::Identity(IdentityCall::CreateDid {
                        next_key_hash: None,
                    }),
                );
                let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
                let api = &apis[i as usize % apis.len()];
                let answer = http(
                    api,
                    "POST",
                    "/txs?mode=commit",
                    Some(body.as_bytes()),
                    Duration::from_secs(20),
                );
                match answer {
                    Ok(r) if r.status == 200 && r.json()["status"] == "committed" => {
                        a.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(tx.id().to_hex());
                    }
                    _ => {
                        u.fetch_add(1, Ordering::Relaxed);
                        // A node that is down answers at once: do not spin.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                i += 1;
            }
        });
        Client {
            stop,
            acknowledged,
            unacknowledged,
            thread: Some(thread),
        }
    }

    /// Stops the client and returns the acknowledged hashes and the count of the others.
    fn finish(mut self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let acked = std::mem::take(
            &mut *self
                .acknowledged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        (acked, self.unacknowledged.load(Ordering::Relaxed))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A client that sends `rate` transactions a second (DID creations by new keys) in
/// batches of a tenth of a second through the nodes' `POST /txs/batch` in turn, and counts
/// those sent and admitted. It loads the network; what it sends is not tracked further.
struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    admitted: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(apis: Vec<String>, chain: ChainId, rate: u32) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let admitted = Arc::new(AtomicU64::new(0));
        let (s, n, a) = (stop.clone(), sent.clone(), admitted.clone());
        let thread = std::thread::spawn(move || {
            let per_batch = rate.div_ceil(10).max(1);
            let started = Instant::now();
            let mut index = 0u32;
            let mut batches = 0u32;
            while !s.load(Ordering::Relaxed) {
                let txs: Vec<String> = (0..per_batch)
                    .map(|k| {
                        let key = testing::key(0xe1, index + k);
                        let call = Call::Identity(IdentityCall::CreateDid {
                            next_key_hash: None,
                        });
                        let valid_until = Timestamp::now().plus_ms(TX_LIFETIME_DEFAULT_MS);
                        hex::encode(
                            Transaction::sign(&key, chain.clone(), 0, valid_until, call).encode(),
                        )
                    })
                    .collect();
                index += per_batch;
                let body = serde_json::json!({ "txs": txs }).to_string();
                let api = &apis[batches as usize % apis.len()];
                if let Ok(r) = http(
                    api,
                    "POST",
                    "/txs/batch",
                    Some(body.as_bytes()),
                    Duration::from_secs(10),
                ) {
                    let accepted = r.json()["accepted"].as_u64().unwrap_or(0);
                    a.fetch_add(accepted, Ordering::Relaxed);
                }
                n.fetch_add(u64::from(per_batch), Ordering::Relaxed);
                batches += 1;
                // Keep to the schedule: batch b is due at b tenths of a second.
                let due = started + Duration::from_millis(100) * batches;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Load {
            started: Instant::now(),
            stop,
            sent,
            admitted,
            thread: Some(thread),
        }
    }

    /// Stops the load and returns how many transactions it sent and how many were
    /// admitted, and says so with the rate achieved.
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (sent, admitted) = (
            self.sent.load(Ordering::Relaxed),
            self.admitted.load(Ordering::Relaxed),
        );
        let secs = self.started.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = sent as f64 / secs.max(0.001);
        acta_node::outln!(
            "   load: {sent} transactions sent in {secs:.1} s ({rate:.0}/s), {admitted} admitted"
        );
        (sent, admitted)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Waits until the nodes `which` pass the highest height any of them reports by `blocks`.
fn progress(net: &LocalNet, which: &[usize], blocks: u64) -> Result<()> {
    let h = which.iter().map(|&i| net.height(i)).max().unwrap_or(0);
    net.wait_height_of(which, h + blocks, FAULT_WAIT)
}

/// Runs `scenario` for `cycles` faults on a new network in `dir`, printing as it goes.
/// Refuses, with the command that fixes it, an `actad` built without the `misbehave`
/// feature (production builds leave fault injection out).
fn can_misbehave(actad: &Path) -> Result<()> {
    let probe = std::process::Command::new(actad)
        .args(["start", "--misbehave", "equivocate", "--help"])
        .output()
        .with_context(|| format!("running {}", actad.display()))?;
    if !probe.status.success() {
        bail!(
            "{} has no fault injection: build it with `cargo build -p acta-node --features \
             misbehave` for the equivocate scenario",
            actad.display()
        );
    }
    Ok(())
}

/// Runs one scenario with `cycles` faults in `dir`; with `rate` above zero, a background
/// load of that many transactions a second runs through the faults too.
pub fn run(dir: &Path, scenario: Scenario, cycles: u32, rate: u32) -> Result<Report> {
    let chain = "acta-chaos";
    // One Byzantine validator is the most four tolerate.
    let cycles = if scenario == Scenario::Equivocate {
        1
    } else {
        cycles
    };
    let council: Vec<_> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let actad = actad_beside_me()?;
    if scenario == Scenario::Equivocate {
        can_misbehave(&actad)?;
    }
    let mut net = LocalNet::init(&actad, dir, 4, chain, &council, 2)?;
    if scenario == Scenario::Equivocate {
        net.nodes[EQUIVOCATOR].start_args = vec!["--misbehave".into(), "equivocate".into()];
    }
    net.start_all()?;
    net.wait_height(1, FAULT_WAIT)?;
    acta_node::outln!(
        "== chaos {}: 4 validators in {}, {cycles} faults",
        scenario.name(),
        dir.display()
    );
    let apis: Vec<String> = net.nodes.iter().map(|n| n.rpc.clone()).collect();
    let chain_id = ChainId::new(chain)?;
    let load = (rate > 0).then(|| Load::start(apis.clone(), chain_id.clone(), rate));
    let client = Client::start(apis, chain_id, 0xe0);
    let result = faults(&mut net, scenario, cycles);
    let (acked, unacked) = client.finish();
    let (load_sent, load_admitted) = load.map_or((0, 0), Load::finish);
    if let Err(e) = result {
        net.dump_logs();
        return Err(e);
    }
    match check(&net, &acked) {
        Ok((height, recovery)) => {
            acta_node::outln!(
                "   ok: {} acknowledged transactions all in the ledger of every node; {} blocks identical on all nodes; deciding again {:.1} s after the faults",
                acked.len(),
                height,
                recovery.as_secs_f64()
            );
            net.stop_all()?;
            Ok(Report {
                scenario,
                cycles,
                acknowledged: acked.len(),
                unacknowledged: unacked,
                load_sent,
                load_admitted,
                height,
                recovery,
            })
        }
        Err(e) => {
            net.dump_logs();
            Err(e)
        }
    }
}

fn faults(net: &mut LocalNet, scenario: Scenario, cycles: u32) -> Result<()> {
    if scenario == Scenario::Equivocate {
        return equivocation(net);
    }
    for cycle in 0..cycles {
        // Every validator in turn, node 0 included.
        let i = (cycle as usize + 1) % net.nodes.len();
        let others: Vec<usize> = (0..net.nodes.len()).filter(|&j| j != i).collect();
        let name = net.nodes[i].name.clone();
        match scenario {
            Scenario::Kill => {
                net.kill(i);
                acta_node::outln!("   SIGKILL {name}");
                progress(net, &others, 3).context("the others without it")?;
                net.start(i)?;
                acta_node::outln!("   restarted {name}");
            }
            Scenario::Pause => {
                net.pause(i)?;
                acta_node::outln!("   SIGSTOP {name}");
                progress(net, &others, 3).context("the others while it is frozen")?;
                net.resume(i)?;
                acta_node::outln!("   SIGCONT {name}");
            }
            Scenario::Wipe => {
                net.stop(i)?;
                let data = net.data_dir(i);
                std::fs::remove_dir_all(&data)
                    .with_context(|| format!("deleting {}", data.display()))?;
                acta_node::outln!("   stopped {name} and deleted its data");
                progress(net, &others, 3).context("the others without it")?;
                net.start(i)?;
                acta_node::outln!("   restarted {name} from nothing");
            }
            Scenario::Partition if cycle % 2 == 0 => {
                // Two against two, paired differently each time.
                let (a, b) = if cycle % 4 == 0 {
                    ([0, 1], [2, 3])
                } else {
                    ([0, 2], [1, 3])
                };
                net.partition(&[&a, &b])?;
                acta_node::outln!("   partition {a:?} | {b:?}: no side has 2/3 of the power");
                let all: Vec<usize> = (0..net.nodes.len()).collect();
                stalled(net, &all)?;
                net.heal()?;
                let healed = Instant::now();
                progress(net, &all, 1).context("after healing")?;
                acta_node::outln!(
                    "   healed: a block decided by all {:.1} s later",
                    healed.elapsed().as_secs_f64()
                );
            }
            Scenario::Partition => {
                net.partition(&[&[i], &others])?;
                acta_node::outln!("   partition [{i}] | {others:?}: the three go on");
                progress(net, &others, 3).context("the majority side")?;
                net.heal()?;
                acta_node::outln!("   healed");
            }
            Scenario::Equivocate => unreachable!("handled above"),
        }
        // The faulty node is back among the deciders before the next fault.
        let all: Vec<usize> = (0..net.nodes.len()).collect();
        progress(net, &all, 2).with_context(|| format!("{name} catching up"))?;
    }
    Ok(())
}

/// Watches `which` for [`STALL_WATCH`] and fails if any of them decides more than one block
/// (one may already have been precommitted when the split began).
fn stalled(net: &LocalNet, which: &[usize]) -> Result<()> {
    let before: Vec<u64> = which.iter().map(|&i| net.height(i)).collect();
    let top = before.iter().max().copied().unwrap_or(0);
    let until = Instant::now() + STALL_WATCH;
    while Instant::now() < until {
        for &i in which {
            // A node that does not answer is not a stalled one.
            let Some(h) = net.status(i).and_then(|s| s["height"].as_u64()) else {
                bail!("{} stopped answering during the split", net.nodes[i].name);
            };
            if h > top + 1 {
                bail!(
                    "{} decided height {h} while no side had 2/3 of the power (heights were {before:?})",
                    net.nodes[i].name
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Waits until every node's validator set has dropped the equivocator, then checks that
/// the others decide blocks without it.
fn equivocation(net: &mut LocalNet) -> Result<()> {
    let name = net.nodes[EQUIVOCATOR].name.clone();
    acta_node::outln!("   {name} double-signs every prevote");
    let until = Instant::now() + FAULT_WAIT;
    let mut slashed = vec![false; net.nodes.len()];
    while !slashed.iter().all(|s| *s) {
        if Instant::now() > until {
            bail!(
                "{name} equivocated but was not dropped from the validator set of every node within {} s (dropped on: {slashed:?})",
                FAULT_WAIT.as_secs()
            );
        }
        for (i, done) in slashed.iter_mut().enumerate() {
            if let Ok((200, v)) = get(&net.nodes[i].rpc, "/validators") {
                let names: Vec<&str> = v["validators"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v["name"].as_str())
                    .collect();
                *done = names.len() == 3 && !names.contains(&name.as_str());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (height, before, after) = slash_event(net, 0)?;
    if after >= before {
        bail!("{name} was dropped from the set at height {height}, but its power was not cut ({before} to {after})");
    }
    acta_node::outln!(
        "   {name} slashed at height {height} (power {before} to {after}) and dropped from the set"
    );
    let honest: Vec<usize> = (0..net.nodes.len()).filter(|&j| j != EQUIVOCATOR).collect();
    progress(net, &honest, 3).context("the three honest validators")
}

/// The first `validator_slashed` event in node `i`'s blocks: its height, and the power
/// before and after the slash.
fn slash_event(net: &LocalNet, i: usize) -> Result<(u64, u64, u64)> {
    for h in 1..=net.height(i) {
        let (status, v) = get(&net.nodes[i].rpc, &format!("/blocks/{h}/results"))?;
        if status != 200 {
            continue;
        }
        if let Some(attributes) = find_event(&v, "validator_slashed") {
            let power = |k: &str| -> Result<u64> {
                attributes
                    .iter()
                    .find(|a| a[0] == k)
                    .and_then(|a| a[1].as_str()?.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("the slash event at height {h} has no {k}"))
            };
            return Ok((h, power("power_before")?, power("power_after")?));
        }
    }
    bail!(
        "no block of {} has a validator_slashed event",
        net.nodes[i].name
    )
}

/// The attributes (`[key, value]` pairs) of the first event named `kind` anywhere in `v`.
fn find_event<'v>(v: &'v serde_json::Value, kind: &str) -> Option<&'v Vec<serde_json::Value>> {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("kind").and_then(|k| k.as_str()) == Some(kind) {
                return m.get("attributes").and_then(|a| a.as_array());
            }
            m.values().find_map(|x| find_event(x, kind))
        }
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_event(x, kind)),
        _ => None,
    }
}

/// After the faults: progress within [`RECOVERY`], one chain on all nodes, every
/// acknowledged transaction committed on every node.
fn check(net: &LocalNet, acked: &[String]) -> Result<(u64, Duration)> {
    let all: Vec<usize> = (0..net.nodes.len()).collect();
    let ended = Instant::now();
    let top = all.iter().map(|&i| net.height(i)).max().unwrap_or(0);
    net.wait_height_of(&all, top + 2, RECOVERY)
        .context("the network did not decide again in time")?;
    let recovery = ended.elapsed();
    let height = all.iter().map(|&i| net.height(i)).min().unwrap_or(0);
    net.same_chain(&all, height)?;
    for hash in acked {
        for &i in &all {
            let r = http(
                &net.nodes[i].rpc,
                "GET",
                &format!("/txs/{hash}"),
                None,
                Duration::from_secs(10),
            )?;
            if r.status != 200 || r.json()["status"] != "committed" {
                bail!(
                    "transaction {hash} was acknowledged as committed, but {} answers {}: {}",
                    net.nodes[i].name,
                    r.status,
                    r.text()
                );
            }
        }
    }
    Ok((height, recovery))
}
