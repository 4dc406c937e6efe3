//! `acta-testnet bench`: a load generator against a local 4-validator network.
//!
//! Before anything is measured, the bench sets up a city (residents with DIDs and Resident
//! credentials, sensors registered by an operator, a budget round open for voting) and
//! signs every transaction of the run: ballots, DID document updates and attestation
//! batches, in the proportions of `--mix`, spread over many signers. Then it sends them at
//! the target rate (held, or stepped up to find where the network saturates) through
//! `POST /txs/batch`, each signer always to the same node so its nonces arrive in order.
//!
//! It measures what an operator would ask for: transactions committed per second, latency
//! from submit to commit (seen in node 0's `/events/blocks`), blocks per second, CPU and
//! resident memory of each validator process (from `/proc`), the machine's load, and
//! refusals by reason (by the mempool, or by the ledger in a block). The results go to a
//! JSON file and an SVG chart of throughput and latency over time.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    time::{Duration, Instant},
};

use acta_ledger::{
    merkle,
    records::{
        BallotFormat, CredentialKind, DidDocument, RoundSpec, Rule, RuleProfile, Service, TieBreak,
        VerificationMethod,
    },
    testing,
    tx::{AttestationBatch, BudgetCall, CredentialCall, IdentityCall, SensorCall},
    types::Text,
    Call, ChainId, Did, Hash, Keypair, PublicKey, Timestamp, Transaction,
};
use acta_node::devnet::{actad_beside_me, http, LocalNet, Wallet};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::chart::{self, Sample};

/// How the rate is driven.
#[derive(Clone, Debug)]
pub enum Load {
    /// One rate for the whole run.
    Hold { rate: u32, duration: Duration },
    /// `from`, `from + step`, ... up to `to`, each for `each`; stops early once a step
    /// commits less than 90% of what it offered (the network is saturated).
    Step {
        from: u32,
        step: u32,
        to: u32,
        each: Duration,
    },
}

impl Load {
    /// The steps as (rate, duration).
    fn steps(&self) -> Vec<(u32, Duration)> {
        match *self {
            Load::Hold { rate, duration } => vec![(rate, duration)],
            Load::Step {
                from,
                step,
                to,
                each,
            } => {
                let mut out = Vec::new();
                let mut r = from;
                while r <= to {
                    out.push((r, each));
                    r = match r.checked_add(step.max(1)) {
                        Some(n) => n,
                        None => break,
                    };
                }
                out
            }
        }
    }
}

/// Shares of each kind of transaction, in parts.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Mix {
    pub ballot: u32,
    pub did_update: u32,
    pub attest: u32,
}

impl std::str::FromStr for Mix {
    type Err = String;

    /// `ballot=40,did=30,attest=30`.
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut mix = Mix {
            ballot: 0,
            did_update: 0,
            attest: 0,
        };
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=parts"))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|e| format!("{part:?}: parts must be a whole number: {e}"))?;
            match k.trim() {
                "ballot" => mix.ballot = v,
                "did" => mix.did_update = v,
                "attest" => mix.attest = v,
                other => return Err(format!("{other:?}: the kinds are ballot, did and attest")),
            }
        }
        if mix.ballot + mix.did_update + mix.attest == 0 {
            return Err("at least one kind needs a share".into());
        }
        Ok(mix)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    /// Where the validators' homes go (must not exist).
    pub dir: PathBuf,
    pub load: Load,
    pub mix: Mix,
    pub residents: u32,
    pub devices: u32,
    /// The JSON results and the SVG chart are written here.
    pub json: PathBuf,
    pub chart: PathBuf,
    /// The validators' `[storage]` (their default when `None`).
    pub storage: Option<acta_node::config::StorageConfig>,
    /// The validators' `rpc.threads` (their default when `None`).
    pub api_threads: Option<usize>,
    /// The validators' `consensus.min_height_ms` (their default when `None`).
    pub min_height_ms: Option<u64>,
    /// The validators' `block.max_txs`.
    pub block_max_txs: usize,
    /// After the load, wipe the last validator and time its return by state sync.
    pub state_sync: bool,
}

const CHAIN: &str = "acta-bench";
/// The most transactions in one `POST /txs/batch` (its body stays well under the API's
/// default 256 KiB).
const REQUEST_TXS: usize = 256;
/// How often the sender tops up to the target rate.
const TICK: Duration = Duration::from_millis(20);
/// How long after the last send the bench waits for stragglers to commit.
const DRAIN: Duration = Duration::from_secs(15);
/// The readings in each attestation batch.
const READINGS: u64 = 30;

/// What one kind of signer signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ballot,
    DidUpdate,
    Attest,
}

/// A pre-signed transaction and where it goes.
struct Prepared {
    hex: String,
    id: Hash,
    lane: u32,
    node: usize,
}

fn did(key: &Keypair) -> Did {
    Did::from_initial_key(&key.public())
}

fn text<const N: usize>(s: &str) -> Result<Text<N>> {
    Text::new(s).with_context(|| format!("text {s:?}"))
}

fn now_ms() -> u64 {
    Timestamp::now().0
}

/// The city's keys.
struct City {
    agency: Keypair,
    office: Keypair,
    operator: Keypair,
    residents: Vec<Keypair>,
    devices: Vec<Keypair>,
    /// Each device's first window start (Unix ms).
    t0: u64,
}

/// Sends `txs` (any signers, each signer's in nonce order) so that no signer has more than
/// 48 waiting at once, waiting after each round until the ledger has taken them all.
fn send_paced(w: &mut Wallet<'_>, txs: Vec<Transaction>) -> Result<()> {
    let mut by_signer: BTreeMap<[u8; 32], Vec<Transaction>> = BTreeMap::new();
    for tx in txs {
        by_signer.entry(tx.signer.0).or_default().push(tx);
    }
    loop {
        let round: Vec<Transaction> = by_signer
            .values_mut()
            .flat_map(|v| v.drain(..v.len().min(48)).collect::<Vec<_>>())
            .collect();
        if round.is_empty() {
            return Ok(());
        }
        w.send(&round)?;
        let mut want: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for tx in &round {
            let n = want.entry(tx.signer.0).or_default();
            *n = (*n).max(tx.nonce + 1);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for (signer, want) in want {
            loop {
                let have = w.net.next_nonce(0, &PublicKey(signer))?;
                if have >= want {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the set-up's transactions of {} were not all accepted (nonce {have} of {want})",
                        hex::encode(signer)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Registers the city on a fresh network: DIDs, credentials, devices, a budget round in
/// its voting phase with eight projects.
fn set_up(net: &LocalNet, residents: u32, devices: u32) -> Result<City> {
    let mut w = Wallet::new(net, ChainId::new(CHAIN)?);
    let city = City {
        agency: testing::key(0xd1, 0),
        office: testing::key(0xd3, 0),
        operator: testing::key(0xd4, 0),
        residents: (0..residents).map(|i| testing::key(0xb2, i)).collect(),
        devices: (0..devices).map(|i| testing::key(0xb5, i)).collect(),
        // A day ago: every window of the run ends before its block's time.
        t0: now_ms() - 86_400_000,
    };
    let everyone: Vec<&Keypair> = [&city.agency, &city.office, &city.operator]
        .into_iter()
        .chain(&city.residents)
        .chain(&city.devices)
        .collect();
    let creates: Vec<Transaction> = everyone
        .iter()
        .map(|k| {
            w.tx(
                k,
                Call::Identity(IdentityCall::CreateDid {
                    next_key_hash: None,
                }),
            )
        })
        .collect();
    send_paced(&mut w, creates)?;
    let issue = |subject: &Keypair, kind: CredentialKind, district: Option<&str>| {
        Ok::<_, anyhow::Error>(Call::Credential(CredentialCall::Issue {
            id: Hash::digest_parts(&[b"bench credential", &subject.public().0, &[kind as u8]]),
            issuer: did(&city.agency),
            subject: did(subject),
            kind,
            district: district.map(text::<32>).transpose()?,
            valid_from: Timestamp(0),
            valid_until: Timestamp(4_102_444_800_000),
        }))
    };
    let mut creds = vec![
        w.tx(
            &city.agency,
            issue(&city.office, CredentialKind::BudgetOffice, None)?,
        ),
        w.tx(
            &city.agency,
            issue(&city.operator, CredentialKind::SensorOperator, None)?,
        ),
    ];
    for r in &city.residents {
        let call = issue(r, CredentialKind::Resident, Some("old-town"))?;
        creds.push(w.tx(&city.agency, call));
    }
    send_paced(&mut w, creds)?;
    acta_node::outln!(
        "   {} residents with DIDs and Resident credentials",
        city.residents.len()
    );

    // Each device consents to its operator, which registers it.
    let mut consents = Vec::new();
    for d in &city.devices {
        let document = DidDocument {
            verification_methods: vec![VerificationMethod {
                id: text("key-1")?,
                key: d.public(),
            }],
            controllers: vec![did(&city.operator)],
            services: vec![],
        };
        consents.push(w.tx(
            d,
            Call::Identity(IdentityCall::UpdateDocument {
                did: did(d),
                document,
            }),
        ));
    }
    send_paced(&mut w, consents)?;
    let mut registers = Vec::new();
    for (i, d) in city.devices.iter().enumerate() {
        let call = Call::Sensor(SensorCall::Register {
            operator: did(&city.operator),
            device: did(d),
            kind: text("air.pm25")?,
            unit: text("ug/m3")?,
            location: text("u2yhvd")?,
            stream: text(&format!("pm25-{i}"))?,
        });
        registers.push(w.tx(&city.operator, call));
    }
    send_paced(&mut w, registers)?;
    acta_node::outln!("   {} sensors registered", city.devices.len());

    let now = Timestamp::now();
    let spec = RoundSpec {
        title: text("Bench budget")?,
        district: text("old-town")?,
        budget: 1_000_000,
        currency: text("PLN")?,
        proposals_from: now.plus_ms(1_000),
        voting_from: now.plus_ms(3_000),
        // Open for as long as any run.
        closes_at: now.plus_ms(365 * 86_400_000),
        ballot: BallotFormat::Approval { min: 1, max: 3 },
        rule: RuleProfile {
            rule: Rule::Mes,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: acta_ledger::records::BallotSecrecy::Public,
    };
    let open = w.tx(
        &city.office,
        Call::Budget(BudgetCall::OpenRound {
            office: did(&city.office),
            spec: spec.clone(),
        }),
    );
    w.send_and_settle(&[open], &[&city.office])?;
    net.wait_time(spec.proposals_from, Duration::from_secs(60))?;
    let proposers: Vec<&Keypair> = city.residents.iter().take(8).collect();
    let proposals: Vec<Transaction> = proposers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Ok(w.tx(
                p,
                Call::Budget(BudgetCall::Propose {
                    round: 0,
                    proposer: did(p),
                    title: text(&format!("Project {i}"))?,
                    cost: 100_000 + 10_000 * i as u64,
                }),
            ))
        })
        .collect::<Result<_>>()?;
    w.send_and_settle(&proposals, &proposers)?;
    net.wait_time(spec.voting_from, Duration::from_secs(60))?;
    acta_node::outln!("   budget round 0 open for voting, 8 projects");
    Ok(city)
}

/// A signer of the run: its key, what it signs, its next nonce and (for devices) its chain.
struct Lane {
    key: Keypair,
    kind: Kind,
    nonce: u64,
    index: u32,
    sequence: u64,
    prev: Hash,
    stream: String,
}

/// Signs `count` transactions in the proportions of `mix`, cycling through the signers of
/// each kind. The calls are decided in order (device chains need it); signing runs on every
/// core.
/// Signs `count` transactions of the mix ahead of the run, each valid until `valid_until`.
fn presign(
    net: &LocalNet,
    city: &City,
    mix: Mix,
    count: usize,
    valid_until: Timestamp,
) -> Result<Vec<Prepared>> {
    let mut lanes: Vec<Lane> = Vec::new();
    let half = city.residents.len() / 2;
    for (i, r) in city.residents.iter().enumerate() {
        // Half the residents vote, half update their DID documents; the first eight also
        // proposed a project.
        let kind = if i < half || mix.did_update == 0 {
            Kind::Ballot
        } else {
            Kind::DidUpdate
        };
        let kind = if mix.ballot == 0 {
            Kind::DidUpdate
        } else {
            kind
        };
        lanes.push(Lane {
            key: Keypair::from_seed(r.seed()),
            kind,
            nonce: 1 + u64::from(i < 8),
            index: u32::try_from(i)?,
            sequence: 0,
            prev: Hash::ZERO,
            stream: String::new(),
        });
    }
    for (i, d) in city.devices.iter().enumerate() {
        lanes.push(Lane {
            key: Keypair::from_seed(d.seed()),
            kind: Kind::Attest,
            nonce: 2,
            index: u32::try_from(i)?,
            sequence: 0,
            prev: Hash::ZERO,
            stream: format!("pm25-{i}"),
        });
    }
    // Check the nonces assumed above against the ledger for a few lanes of each kind.
    for lane in lanes.iter().step_by(97) {
        let have = net.next_nonce(0, &lane.key.public())?;
        if have != lane.nonce {
            bail!(
                "the set-up left signer {} at nonce {have}, not {}",
                lane.key.public(),
                lane.nonce
            );
        }
    }
    let by_kind = |k: Kind| -> Vec<usize> {
        lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.kind == k)
            .map(|(i, _)| i)
            .collect()
    };
    let pools = [
        (Kind::Ballot, mix.ballot, by_kind(Kind::Ballot)),
        (Kind::DidUpdate, mix.did_update, by_kind(Kind::DidUpdate)),
        (Kind::Attest, mix.attest, by_kind(Kind::Attest)),
    ];
    let pattern: Vec<usize> = pools
        .iter()
        .enumerate()
        .flat_map(|(p, (_, parts, lanes))| {
            let n = if lanes.is_empty() { 0 } else { *parts };
            std::iter::repeat_n(p, n as usize)
        })
        .collect();
    if pattern.is_empty() {
        bail!("no signers for any kind in the mix");
    }
    let chain = ChainId::new(CHAIN)?;
    let mut cursor = [0usize; 3];
    // (lane, nonce, call) in sending order.
    let mut plan: Vec<(u32, u64, Call)> = Vec::with_capacity(count);
    for i in 0..count {
        let p = pattern[i % pattern.len()];
        let (kind, _, members) = &pools[p];
        let lane_ix = members[cursor[p] % members.len()];
        cursor[p] += 1;
        let lane = &mut lanes[lane_ix];
        let call = match kind {
            Kind::Ballot => {
                let n = lane.nonce + u64::from(lane.index);
                let first = u32::try_from(n % 8)?;
                Call::Budget(BudgetCall::Vote {
                    round: 0,
                    voter: did(&lane.key),
                    projects: vec![first, (first + 3) % 8],
                })
            }
            Kind::DidUpdate => Call::Identity(IdentityCall::UpdateDocument {
                did: did(&lane.key),
                document: DidDocument {
                    verification_methods: vec![VerificationMethod {
                        id: text("key-1")?,
                        key: lane.key.public(),
                    }],
                    controllers: vec![],
                    services: vec![Service {
                        id: text("profile")?,
                        kind: text("LinkedDomains")?,
                        endpoint: text(&format!(
                            "https://residents.example/{}/{}",
                            lane.index, lane.nonce
                        ))?,
                    }],
                },
            }),
            Kind::Attest => {
                let start = city.t0 + lane.sequence * READINGS * 1000;
                let readings: Vec<Vec<u8>> = (0..READINGS)
                    .map(|r| {
                        format!(
                            "{{\"t\":{},\"pm25\":{}}}",
                            start + r * 1000,
                            8 + (r * 7 + lane.sequence) % 17
                        )
                        .into_bytes()
                    })
                    .collect();
                let batch = AttestationBatch {
                    device: did(&lane.key),
                    stream: text(&lane.stream)?,
                    sequence: lane.sequence,
                    prev_batch_hash: lane.prev,
                    window_start: Timestamp(start),
                    window_end: Timestamp(start + (READINGS - 1) * 1000),
                    reading_count: u32::try_from(READINGS)?,
                    readings_root: merkle::root_of(&readings),
                    raw_batch_hash: Hash::digest(&readings.concat()),
                };
                lane.prev = Hash::of(&batch);
                lane.sequence += 1;
                Call::Sensor(SensorCall::Attest(batch))
            }
        };
        plan.push((u32::try_from(lane_ix)?, lane.nonce, call));
        lane.nonce += 1;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = plan.len().div_ceil(threads).max(1);
    let nodes = net.nodes.len();
    let lanes = &lanes;
    let chain = &chain;
    let prepared: Vec<Prepared> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(lane, nonce, call)| {
                            let key = &lanes[*lane as usize].key;
                            let tx = Transaction::sign(
                                key,
                                chain.clone(),
                                *nonce,
                                valid_until,
                                call.clone(),
                            );
                            let bytes = tx.encode();
                            Prepared {
                                id: Hash::digest(&bytes),
                                hex: hex::encode(bytes),
                                lane: *lane,
                                node: *lane as usize % nodes,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if prepared.len() != count {
        bail!("signed {} of {count} transactions", prepared.len());
    }
    Ok(prepared)
}

/// What happened to each transaction, filled in by the sender and the block watcher.
#[derive(Default)]
struct Ledger {
    /// Since the start of the measured run.
    submitted: Vec<Option<Duration>>,
    committed: Vec<Option<Duration>>,
    /// Refusals by reason: `mempool:<code>` or `ledger:<code>`.
    refusals: BTreeMap<String, u64>,
    /// Blocks seen and their commit times, since the start.
    blocks: Vec<(u64, Duration, usize)>,
    lagged: u64,
    /// The longest a batch waited in the bench past its due time.
    sender_lag_max: Duration,
}

/// Follows node 0's `/events/blocks` (Server-Sent Events, over `ureq`) and marks each
/// transaction's commit time. The thread stops at the first event after `stop` is set, or
/// when the stream ends (the network stops).
fn watch_blocks(
    addr: &str,
    ids: Arc<HashMap<Hash, u32>>,
    ledger: Arc<Mutex<Ledger>>,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let response = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .build()
        .get(&format!("http://{addr}/events/blocks"))
        .set("Accept", "text/event-stream")
        .call()
        .with_context(|| format!("following the blocks of {addr}"))?;
    // Left to end with the stream (the network stops): nothing joins it.
    std::thread::spawn(move || {
        let mut reader = response.into_reader();
        let mut parser = sse_parse::SseParser::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            parser.feed(&buf[..n]);
            while let Some(event) = parser.next_event() {
                on_event(&event.event, &event.data, &ids, &ledger, start);
            }
        }
    });
    Ok(())
}

fn on_event(
    kind: &str,
    data: &str,
    ids: &HashMap<Hash, u32>,
    ledger: &Mutex<Ledger>,
    start: Instant,
) {
    let seen = start.elapsed();
    let mut ledger = ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match kind {
        "block" => {
            let Ok(v) = serde_json::from_str::<Value>(data) else {
                return;
            };
            let txs = v["txs"].as_array().cloned().unwrap_or_default();
            ledger
                .blocks
                .push((v["height"].as_u64().unwrap_or(0), seen, txs.len()));
            for t in &txs {
                let Some(i) = t["hash"]
                    .as_str()
                    .and_then(|h| Hash::from_hex(h).ok())
                    .and_then(|h| ids.get(&h))
                else {
                    continue;
                };
                if let Some(slot) = ledger.committed.get_mut(*i as usize) {
                    *slot = Some(seen);
                }
                if t["outcome"]["status"] == "refused" {
                    let code = t["outcome"]["code"].as_str().unwrap_or("unknown");
                    *ledger.refusals.entry(format!("ledger:{code}")).or_default() += 1;
                }
            }
        }
        "lagged" => ledger.lagged += 1,
        _ => {}
    }
}

/// CPU and memory of each validator process, sampled once a second.
#[derive(Clone, Debug, Default, Serialize)]
struct NodeUsage {
    /// (when, share of one core over the last second, resident memory in MiB).
    samples: Vec<(Duration, f64, f64)>,
}

pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (user + system CPU ticks, resident MiB) of a process.
pub(crate) fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((utime + stime, rss_kib / 1024.0))
}

/// (busy, total) jiffies of the whole machine.
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Latency percentiles in ms of a set of durations.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The nearest-rank percentile (`permille` of 1,000) of sorted values: the smallest value
/// with at least that share of the values at or below it.
fn percentile(sorted: &[f64], permille: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (permille * sorted.len()).div_ceil(1000).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    Latency {
        p50_ms: percentile(&ms, 500),
        p90_ms: percentile(&ms, 900),
        p99_ms: percentile(&ms, 990),
        max_ms: ms.last().copied().unwrap_or(f64::NAN),
    }
}

/// Microseconds of CPU per committed transaction per validator, from each validator's
/// share of a core and the committed rate (NaN when nothing was committed).
fn cpu_per_tx_us(cpu_per_node: &[f64], committed_per_s: f64) -> f64 {
    if cpu_per_node.is_empty() || committed_per_s <= 0.0 {
        return f64::NAN;
    }
    let mean = cpu_per_node.iter().sum::<f64>() / cpu_per_node.len() as f64;
    mean * 1e6 / committed_per_s
}

/// One step of the run.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub target_rate: u32,
    pub seconds: f64,
    /// Transactions sent per second.
    pub sent_per_s: f64,
    /// Transactions committed during the step, per second.
    pub committed_per_s: f64,
    /// From submit to commit, of the step's transactions that committed (during the step
    /// or after).
    pub latency: Latency,
    pub blocks_per_s: f64,
    /// Mean share of one core per validator.
    pub cpu_per_node: Vec<f64>,
    /// CPU time per committed transaction per validator, in microseconds: the mean of
    /// `cpu_per_node` over `committed_per_s`.
    pub cpu_us_per_tx: f64,
    /// The machine's busy share of all its cores.
    pub machine_busy: f64,
    /// The step's transactions that a mempool admitted but that were not committed by the
    /// end of the run (such as a signer's later transactions after the ledger refused one).
    pub uncommitted: usize,
    pub rss_mib_max_per_node: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: Value,
    pub mix: Mix,
    pub residents: u32,
    pub devices: u32,
    pub node_config: Value,
    pub steps: Vec<StepReport>,
    /// The highest committed rate of any step.
    pub best_committed_per_s: f64,
    /// When stepping: the rate of the step that stopped the run, of which under 90% was
    /// committed 2 s after it ended.
    pub saturated_at: Option<u32>,
    /// The longest a batch waited in the bench past its due time (the bench falling behind).
    pub sender_lag_max_ms: f64,
    pub samples: Vec<Sample>,
    pub refusals: BTreeMap<String, u64>,
    pub events_lagged: u64,
    /// Transactions of the load committed (the city's set-up is not counted).
    pub committed_txs: u64,
    /// Each validator's store (`data/store`) at the end, in bytes.
    pub store_bytes_per_node: Vec<u64>,
    /// The mean store per million committed transactions (the set-up's included).
    pub store_bytes_per_million_txs: f64,
    /// With `--state-sync`: the last validator wiped after the load and joined again.
    pub state_sync: Option<StateSyncReport>,
}

/// How a wiped validator joined the loaded chain again by state sync.
#[derive(Debug, Serialize)]
pub struct StateSyncReport {
    /// The height of the snapshot restored (the oldest state the node then keeps).
    pub height: u64,
    /// State entries restored.
    pub entries: u64,
    /// From `actad start --state-sync` until its API answered (the restore done).
    pub restore_seconds: f64,
    /// From the start until it had committed the height the others had reached when its
    /// API answered (the blocks after the snapshot fetched and executed).
    pub caught_up_seconds: f64,
    /// The store it restored, in bytes, at the end.
    pub store_bytes: u64,
}

/// Stops the last validator, wipes its data, starts it with `--state-sync` and times its
/// restore and catch-up.
fn state_sync(net: &mut LocalNet) -> Result<StateSyncReport> {
    const WITHIN: Duration = Duration::from_secs(600);
    let i = net.nodes.len() - 1;
    net.stop(i)?;
    std::fs::remove_dir_all(net.data_dir(i)).context("wiping the validator's data")?;
    net.nodes[i].start_args = vec!["--state-sync".into()];
    acta_node::outln!(
        "   state sync: {} wiped and started with --state-sync",
        net.nodes[i].name
    );
    let started = Instant::now();
    net.start(i)?;
    let status = loop {
        if let Some(s) = net.status(i) {
            break s;
        }
        if started.elapsed() > WITHIN {
            bail!(
                "the state-syncing node's API did not answer within {} s",
                WITHIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let restore_seconds = started.elapsed().as_secs_f64();
    let height = status["oldest_state_height"].as_u64().unwrap_or(0);
    let target = net.height(0);
    net.wait_height_of(&[i], target, WITHIN)?;
    let caught_up_seconds = started.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(net.nodes[i].home.join("log")).unwrap_or_default();
    let entries = log
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once("restored the state from a snapshot: ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0);
    let report = StateSyncReport {
        height,
        entries,
        restore_seconds,
        caught_up_seconds,
        store_bytes: crate::idle::size_of(&net.data_dir(i).join("store")),
    };
    acta_node::outln!(
        "   state sync: restored height {height} ({entries} entries) in {restore_seconds:.1} s, caught up with height {target} in {caught_up_seconds:.1} s"
    );
    Ok(report)
}

/// The bench's node settings: blocks and mempool sized for load, and a pool that takes
/// transactions signed for the whole run (`lifetime_secs`: the bench signs them first).
fn tune(
    net: &LocalNet,
    storage: Option<&acta_node::config::StorageConfig>,
    api_threads: Option<usize>,
    min_height_ms: Option<u64>,
    block_max_txs: usize,
    lifetime_secs: u64,
) -> Result<Value> {
    let mut shown = Value::Null;
    for i in 0..net.nodes.len() {
        net.edit_config(i, |c| {
            c.block.max_txs = block_max_txs;
            c.mempool.max_txs = 100_000;
            c.mempool.max_bytes = 128 * 1024 * 1024;
            c.mempool.max_lifetime_secs = c.mempool.max_lifetime_secs.max(lifetime_secs);
            if let Some(s) = storage {
                c.storage = s.clone();
            }
            if let Some(n) = api_threads {
                c.rpc.threads = n;
            }
            if let Some(ms) = min_height_ms {
                c.consensus.min_height_ms = ms;
            }
            shown = json!({
                "rpc_threads": c.rpc.threads,
                "block": c.block,
                "mempool": c.mempool,
                "consensus": c.consensus,
                "storage": c.storage,
            });
        })?;
    }
    Ok(shown)
}

/// How long the transactions signed before the run stay valid: the run and a margin for
/// setting up and draining.
fn lifetime_secs(steps: &[(u32, Duration)]) -> u64 {
    let run: u64 = steps.iter().map(|(_, d)| d.as_secs()).sum();
    run + 900
}

/// Runs the bench; prints as it goes and writes the JSON and the chart.
pub fn run(opts: &Options, command: &str) -> Result<Report> {
    let steps = opts.load.steps();
    if steps.is_empty() {
        bail!("no load to run: check --step");
    }
    let total: u64 = steps
        .iter()
        .map(|(r, d)| u64::from(*r) * d.as_secs().max(1))
        .sum();
    let count = usize::try_from(total + total / 20)?;
    if count > 4_000_000 {
        bail!("{count} transactions to sign is more than the bench holds (4,000,000): lower the rate or the duration");
    }
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc0, i)).collect();
    let mut net = LocalNet::init(&actad_beside_me()?, &opts.dir, 4, CHAIN, &council, 2)?;
    crate::local::add_genesis_issuer(&net, &testing::key(0xd1, 0))?;
    let node_config = tune(
        &net,
        opts.storage.as_ref(),
        opts.api_threads,
        opts.min_height_ms,
        opts.block_max_txs,
        lifetime_secs(&steps),
    )?;
    net.start_all()?;
    let result = measure(&mut net, opts, &steps, count, node_config, command);
    if result.is_err() {
        net.dump_logs();
    }
    net.stop_all()?;
    result
}

fn measure(
    net: &mut LocalNet,
    opts: &Options,
    steps: &[(u32, Duration)],
    count: usize,
    node_config: Value,
    command: &str,
) -> Result<Report> {
    net.wait_height(1, Duration::from_secs(60))?;
    acta_node::outln!(
        "== bench: 4 validators in {}; setting up the city",
        opts.dir.display()
    );
    let city = set_up(net, opts.residents, opts.devices)?;
    let signing = Instant::now();
    let valid_until = Timestamp::now().plus_ms(lifetime_secs(steps) * 1_000);
    let prepared = presign(net, &city, opts.mix, count, valid_until)?;
    acta_node::outln!(
        "   signed {} transactions in {:.1} s",
        prepared.len(),
        signing.elapsed().as_secs_f64()
    );
    let ids: Arc<HashMap<Hash, u32>> = Arc::new(
        prepared
            .iter()
            .enumerate()
            .map(|(i, p)| Ok((p.id, u32::try_from(i)?)))
            .collect::<Result<_>>()?,
    );
    let ledger = Arc::new(Mutex::new(Ledger {
        submitted: vec![None; prepared.len()],
        committed: vec![None; prepared.len()],
        ..Ledger::default()
    }));
    let prepared = Arc::new(prepared);
    let start = Instant::now();
    // The watcher stops marking once told.
    let watched = Arc::new(AtomicBool::new(false));
    watch_blocks(
        &net.nodes[0].rpc,
        ids,
        ledger.clone(),
        start,
        watched.clone(),
    )?;

    // One sender per node, each posting batches in order.
    let dead: Arc<Mutex<Vec<bool>>> = Arc::new(Mutex::new(vec![
        false;
        opts.residents as usize
            + opts.devices as usize
    ]));
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for node in &net.nodes {
        let (tx, rx) = mpsc::channel::<(Vec<u32>, Duration)>();
        senders.push(tx);
        let addr = node.rpc.clone();
        let (prepared, ledger, dead) = (prepared.clone(), ledger.clone(), dead.clone());
        workers.push(std::thread::spawn(move || {
            for (batch, due) in rx {
                send_batch(&addr, &batch, due, &prepared, &ledger, &dead, start);
            }
        }));
    }

    // Usage sampler.
    let stop = Arc::new(AtomicBool::new(false));
    let pids: Vec<Option<u32>> = net
        .nodes
        .iter()
        .map(|n| n.child.as_ref().map(std::process::Child::id))
        .collect();
    let usage = Arc::new(Mutex::new((
        vec![NodeUsage::default(); pids.len()],
        Vec::<(Duration, f64)>::new(),
    )));
    let sampler = {
        let (stop, usage) = (stop.clone(), usage.clone());
        std::thread::spawn(move || {
            let ticks = clock_ticks();
            let mut last: Vec<Option<u64>> = pids
                .iter()
                .map(|p| p.and_then(proc_usage).map(|u| u.0))
                .collect();
            let mut last_machine = machine_cpu();
            let mut last_at = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let dt = last_at.elapsed().as_secs_f64();
                last_at = Instant::now();
                let mut u = usage
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for (i, pid) in pids.iter().enumerate() {
                    if let Some((cpu, rss)) = pid.and_then(proc_usage) {
                        let before = last[i].unwrap_or(cpu);
                        let share = (cpu - before) as f64 / ticks / dt;
                        u.0[i].samples.push((start.elapsed(), share, rss));
                        last[i] = Some(cpu);
                    }
                }
                let now = machine_cpu();
                if let (Some((b0, t0)), Some((b1, t1))) = (last_machine, now) {
                    if t1 > t0 {
                        u.1.push((start.elapsed(), (b1 - b0) as f64 / (t1 - t0) as f64));
                    }
                }
                last_machine = now;
            }
        })
    };

    // The schedule: top up to the target count every tick.
    let mut next = 0usize;
    let mut bounds = Vec::new();
    let mut saturated_at = None;
    for (i, (rate, each)) in steps.iter().enumerate() {
        acta_node::outln!("   step {}: {rate} tx/s for {} s", i + 1, each.as_secs());
        let begin_ix = next;
        let began = start.elapsed();
        let mut sent_in_step = 0u64;
        while start.elapsed() < began + *each && next < prepared.len() {
            std::thread::sleep(TICK);
            let elapsed_ms = u64::try_from((start.elapsed() - began).as_millis())?;
            let due = u64::from(*rate) * elapsed_ms / 1000;
            let n = usize::try_from(due.saturating_sub(sent_in_step))?.min(prepared.len() - next);
            let mut per_node: Vec<Vec<u32>> = vec![Vec::new(); senders.len()];
            for ix in next..next + n {
                per_node[prepared[ix].node].push(u32::try_from(ix)?);
            }
            next += n;
            sent_in_step += n as u64;
            let due_at = start.elapsed();
            for (node, batch) in per_node.into_iter().enumerate() {
                for part in batch.chunks(REQUEST_TXS) {
                    let _ = senders[node].send((part.to_vec(), due_at));
                }
            }
        }
        bounds.push((*rate, begin_ix, next, began, start.elapsed()));
        // Stepping: stop once a step commits well under what it offered.
        if steps.len() > 1 {
            std::thread::sleep(Duration::from_secs(2));
            let l = ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let done = l.committed[begin_ix..next]
                .iter()
                .filter(|c| c.is_some())
                .count();
            let offered = next - begin_ix;
            if offered > 0 && (done as f64) < 0.9 * offered as f64 {
                acta_node::outln!(
                    "   saturated: {done} of {offered} committed within 2 s of the step's end"
                );
                saturated_at = Some(*rate);
                break;
            }
        }
    }
    drop(senders);
    for w in workers {
        let _ = w.join();
    }
    // Stragglers.
    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until {
        let l = ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let waiting = l
            .submitted
            .iter()
            .zip(&l.committed)
            .filter(|(s, c)| s.is_some() && c.is_none())
            .count();
        drop(l);
        if waiting == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    watched.store(true, Ordering::Relaxed);

    let l = ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let u = usage
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut reports = Vec::new();
    for (rate, from, to, began, ended) in &bounds {
        let secs = (*ended - *began).as_secs_f64().max(0.001);
        let sent = l.submitted[*from..*to]
            .iter()
            .filter(|s| s.is_some())
            .count();
        let lat: Vec<f64> = (*from..*to)
            .filter_map(|i| {
                Some((l.committed[i]?.checked_sub(l.submitted[i]?)?).as_secs_f64() * 1000.0)
            })
            .collect();
        // Commits (of any step's transactions) that happened during this step.
        let committed = l
            .committed
            .iter()
            .filter(|c| c.is_some_and(|t| t >= *began && t < *ended))
            .count();
        let uncommitted = (*from..*to)
            .filter(|&i| l.submitted[i].is_some() && l.committed[i].is_none())
            .count();
        let blocks = l
            .blocks
            .iter()
            .filter(|(_, at, _)| at >= began && at < ended)
            .count();
        let window = |t: Duration| t >= *began && t < *ended;
        let of_node = |n: &NodeUsage| -> Vec<(f64, f64)> {
            n.samples
                .iter()
                .filter(|s| window(s.0))
                .map(|s| (s.1, s.2))
                .collect()
        };
        let cpu_per_node: Vec<f64> =
            u.0.iter()
                .map(|n| mean(of_node(n).into_iter().map(|s| s.0)))
                .collect();
        let rss_mib_max_per_node =
            u.0.iter()
                .map(|n| of_node(n).into_iter().map(|s| s.1).fold(0.0, f64::max))
                .collect();
        let machine_busy = mean(u.1.iter().filter(|m| window(m.0)).map(|m| m.1));
        let cpu_us_per_tx = cpu_per_tx_us(&cpu_per_node, committed as f64 / secs);
        reports.push(StepReport {
            target_rate: *rate,
            seconds: secs,
            sent_per_s: sent as f64 / secs,
            committed_per_s: committed as f64 / secs,
            latency: latency(lat),
            blocks_per_s: blocks as f64 / secs,
            cpu_per_node,
            cpu_us_per_tx,
            machine_busy,
            uncommitted,
            rss_mib_max_per_node,
        });
    }
    // Per-second samples over the whole run.
    let end = bounds.last().map_or(Duration::ZERO, |b| b.4);
    // One pass puts each transaction in the second it was due and the second it committed.
    let seconds = usize::try_from(end.as_secs())? + 1;
    let mut sent = vec![0usize; seconds];
    let mut lat: Vec<Vec<f64>> = vec![Vec::new(); seconds];
    for (sub, com) in l.submitted.iter().zip(&l.committed) {
        let Some(sub) = sub else { continue };
        if let Some(n) = sent.get_mut(usize::try_from(sub.as_secs())?) {
            *n += 1;
        }
        if let Some(com) = com {
            if let Some(v) = lat.get_mut(usize::try_from(com.as_secs())?) {
                v.push(com.saturating_sub(*sub).as_secs_f64() * 1000.0);
            }
        }
    }
    let samples: Vec<Sample> = sent
        .into_iter()
        .zip(lat)
        .enumerate()
        .map(|(s, (sent, lat))| {
            let committed = lat.len();
            let lat = latency(lat);
            Sample {
                t_s: (s + 1) as f64,
                submitted_per_s: sent as f64,
                committed_per_s: committed as f64,
                p50_ms: lat.p50_ms,
                p99_ms: lat.p99_ms,
            }
        })
        .collect();
    let best = reports
        .iter()
        .map(|r| r.committed_per_s)
        .fold(0.0, f64::max);

    let machine = json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    let committed_txs = l.committed.iter().filter(|c| c.is_some()).count() as u64;
    let store_bytes_per_node: Vec<u64> = net
        .nodes
        .iter()
        .map(|n| crate::idle::size_of(&n.home.join("data").join("store")))
        .collect();
    let store_bytes_per_million_txs =
        mean(store_bytes_per_node.iter().map(|b| *b as f64)) * 1e6 / committed_txs.max(1) as f64;
    let report = Report {
        committed_txs,
        store_bytes_per_node,
        store_bytes_per_million_txs,
        command: command.to_string(),
        machine,
        mix: opts.mix,
        residents: opts.residents,
        devices: opts.devices,
        node_config,
        steps: reports,
        best_committed_per_s: best,
        saturated_at,
        sender_lag_max_ms: l.sender_lag_max.as_secs_f64() * 1000.0,
        samples,
        refusals: l.refusals.clone(),
        events_lagged: l.lagged,
        state_sync: None,
    };
    drop(l);
    drop(u);
    let report = Report {
        state_sync: if opts.state_sync {
            Some(state_sync(net)?)
        } else {
            None
        },
        ..report
    };
    write_outputs(&report, &opts.json, &opts.chart)?;
    Ok(report)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / f64::from(n)
    }
}

/// Posts one batch, due at `due` (since `start`), to `addr` and records what the mempool
/// said. A transaction counts as submitted when it was due, so time spent queued in the
/// bench is part of its latency.
fn send_batch(
    addr: &str,
    batch: &[u32],
    due: Duration,
    prepared: &[Prepared],
    ledger: &Mutex<Ledger>,
    dead: &Mutex<Vec<bool>>,
    start: Instant,
) {
    // A signer with a refused transaction cannot go on (its later nonces would leave a gap).
    let live: Vec<u32> = {
        let d = dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        batch
            .iter()
            .copied()
            .filter(|&i| !d[prepared[i as usize].lane as usize])
            .collect()
    };
    let skipped = batch.len() - live.len();
    let mut body = String::with_capacity(live.len() * 600 + 16);
    body.push_str("{\"txs\":[");
    for (k, &i) in live.iter().enumerate() {
        if k > 0 {
            body.push(',');
        }
        body.push('"');
        body.push_str(&prepared[i as usize].hex);
        body.push('"');
    }
    body.push_str("]}");
    let lag = start.elapsed().saturating_sub(due);
    let answer = http(
        addr,
        "POST",
        "/txs/batch",
        Some(body.as_bytes()),
        Duration::from_secs(30),
    );
    let mut l = ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    l.sender_lag_max = l.sender_lag_max.max(lag);
    if skipped > 0 {
        *l.refusals
            .entry("bench:signer_stopped_after_refusal".into())
            .or_default() += skipped as u64;
    }
    let results = match answer {
        Ok(a) if a.status == 200 => a.json()["results"].as_array().cloned().unwrap_or_default(),
        Ok(a) => {
            let code = a.json()["code"].as_str().unwrap_or("http").to_string();
            *l.refusals.entry(format!("api:{code}")).or_default() += live.len() as u64;
            drop(l);
            mark_dead(dead, &live, prepared);
            return;
        }
        Err(_) => {
            *l.refusals.entry("api:unreachable".into()).or_default() += live.len() as u64;
            drop(l);
            mark_dead(dead, &live, prepared);
            return;
        }
    };
    let mut refused = Vec::new();
    for (&i, r) in live.iter().zip(&results) {
        if r["status"] == "pending" {
            l.submitted[i as usize] = Some(due);
        } else {
            let code = r["code"].as_str().unwrap_or("unknown");
            *l.refusals.entry(format!("mempool:{code}")).or_default() += 1;
            refused.push(i);
        }
    }
    drop(l);
    mark_dead(dead, &refused, prepared);
}

fn mark_dead(dead: &Mutex<Vec<bool>>, txs: &[u32], prepared: &[Prepared]) {
    let mut d = dead
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &i in txs {
        d[prepared[i as usize].lane as usize] = true;
    }
}

fn write_outputs(report: &Report, json_path: &Path, chart_path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(json_path, text).with_context(|| format!("writing {}", json_path.display()))?;
    let subtitle = format!(
        "{} | {} cores, load average {} | best {:.0} tx/s committed",
        report.command,
        report.machine["cores"],
        report.machine["loadavg"].as_str().unwrap_or("?"),
        report.best_committed_per_s
    );
    let svg = chart::render(
        "Acta: 4 validators on one machine, committed throughput and latency",
        &subtitle,
        &report.samples,
    );
    std::fs::write(chart_path, svg).with_context(|| format!("writing {}", chart_path.display()))?;
    Ok(())
}

/// A table of the steps, for the terminal.
pub fn print_summary(report: &Report) {
    acta_node::outln!(
        "{:>8} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>9} {:>22} {:>10} {:>8}",
        "target",
        "sent/s",
        "committed/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "blocks/s",
        "cpu per node (cores)",
        "cpu µs/tx",
        "max RSS"
    );
    for s in &report.steps {
        let cpu: Vec<String> = s.cpu_per_node.iter().map(|c| format!("{c:.2}")).collect();
        let rss = s
            .rss_mib_max_per_node
            .iter()
            .fold(0.0, |a: f64, b| a.max(*b));
        acta_node::outln!(
            "{:>8} {:>9.0} {:>11.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>9.2} {:>22} {:>10.0} {:>5.0} MiB",
            s.target_rate,
            s.sent_per_s,
            s.committed_per_s,
            s.latency.p50_ms,
            s.latency.p90_ms,
            s.latency.p99_ms,
            s.latency.max_ms,
            s.blocks_per_s,
            cpu.join(" "),
            s.cpu_us_per_tx,
            rss
        );
    }
    let uncommitted: Vec<String> = report
        .steps
        .iter()
        .map(|s| s.uncommitted.to_string())
        .collect();
    acta_node::outln!(
        "   admitted but never committed, per step: {}; the bench fell behind its schedule by at most {:.0} ms",
        uncommitted.join(", "),
        report.sender_lag_max_ms
    );
    if !report.refusals.is_empty() {
        let r: Vec<String> = report
            .refusals
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        acta_node::outln!("   refusals: {}", r.join(", "));
    }
    acta_node::outln!(
        "   machine: {} cores, load average {}",
        report.machine["cores"],
        report.machine["loadavg"].as_str().unwrap_or("?")
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_transaction_is_the_mean_share_over_the_committed_rate() {
        // Four validators at 0.4 cores each committing 2,000 tx/s: 200 µs a transaction.
        let us = cpu_per_tx_us(&[0.3, 0.5, 0.4, 0.4], 2_000.0);
        assert!((us - 200.0).abs() < 1e-9, "{us}");
        assert!(cpu_per_tx_us(&[0.4], 0.0).is_nan());
        assert!(cpu_per_tx_us(&[], 100.0).is_nan());
    }

    #[test]
    fn mixes_parse_and_bad_ones_say_why() {
        let m: Mix = "ballot=4,did=0,attest=6".parse().unwrap();
        assert_eq!((m.ballot, m.did_update, m.attest), (4, 0, 6));
        let e = "vote=3".parse::<Mix>().unwrap_err();
        assert!(e.contains("ballot, did and attest"), "{e}");
        assert!("ballot=x"
            .parse::<Mix>()
            .unwrap_err()
            .contains("whole number"));
        assert!("ballot=0".parse::<Mix>().unwrap_err().contains("share"));
        assert!("ballot".parse::<Mix>().unwrap_err().contains("kind=parts"));
    }

    #[test]
    fn steps_go_up_to_the_last_rate_that_fits() {
        let each = Duration::from_secs(5);
        let load = Load::Step {
            from: 1000,
            step: 2000,
            to: 6000,
            each,
        };
        let rates: Vec<u32> = load.steps().iter().map(|s| s.0).collect();
        assert_eq!(rates, [1000, 3000, 5000]);
        let hold = Load::Hold {
            rate: 7,
            duration: each,
        };
        assert_eq!(hold.steps(), [(7, each)]);
    }

    #[test]
    fn percentiles_are_nearest_rank_of_the_sorted_values() {
        let l = latency((1..=100).rev().map(f64::from).collect());
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert!(latency(Vec::new()).p50_ms.is_nan());
    }
}
