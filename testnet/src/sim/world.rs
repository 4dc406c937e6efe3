//! The simulated world: nodes running the node's own [`Driver`] on a virtual clock, a
//! seeded faulty network, and the application and store each driver talks to.
//!
//! The driver is the production one (acta-node's `driver` module): the simulator hands it
//! events and carries out its actions as the node's actor does, with simulated I/O. A
//! block is its hash (the body is `()`); the application knows which blocks are valid; the
//! store is the map of decided heights to commits; the WAL is the list of persisted
//! messages. A crash may land between a WAL write and the sends after it.

use std::collections::{BTreeMap, BTreeSet};

use acta_consensus::{Message, ProposerSchedule};
use acta_ledger::{
    light::verify_commit, testing, ChainId, Commit, Hash, Height, Keypair, Proposal, PublicKey,
    Round, ValidatorSet, VoteKind,
};
use acta_node::driver::{Action, Driver, DriverConfig, Event as DriverEvent, Resume, Stored};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    checker::{self, Decision, Log},
    ByzantineKind, SimConfig, SimReport, Stake,
};

/// How often every node's driver gets a gossip tick (sends its own messages of its height
/// again, and its status).
const GOSSIP_INTERVAL_MS: u64 = 500;
/// Largest message delay once the network has healed.
const HEALED_DELAY_MS_MAX: u64 = 20;
/// A sync request unanswered this long fails (libp2p's request timeout, scaled down).
const SYNC_TIMEOUT_MS: u64 = 1_000;
/// A crash waits at most this long for the node's next WAL write to land between it and
/// the sends after it; then it happens anyway.
const CRASH_AT_PERSIST_WAIT_MS: u64 = 100;

type SimDriver = Driver<usize, ()>;
type SimAction = Action<usize, ()>;
type SimEvent = DriverEvent<usize, ()>;

#[derive(Clone, Debug)]
enum NetMsg {
    Consensus(Message),
    /// "My latest height is this".
    Status(Height),
    /// Blocks `from..from + count`, please.
    SyncRequest {
        id: u64,
        from: Height,
        count: u32,
    },
    /// The commits of the blocks asked for (in the simulator a block is its hash).
    SyncBlocks {
        id: u64,
        commits: Vec<Commit>,
    },
}

/// Everything that happens, at a virtual time. `world` selects one of a Byzantine
/// double agent's drivers; honest nodes have one driver, world 0.
#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        world: usize,
        from: usize,
        from_world: usize,
        msg: NetMsg,
    },
    /// The driver asked to be woken now (a timeout, or the next height's start).
    Wake {
        node: usize,
        world: usize,
        incarnation: u32,
    },
    Checked {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
        block: Hash,
        valid: bool,
    },
    Built {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
        round: Round,
        block: Hash,
    },
    /// The application finished storing the block of `height`.
    Stored {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
    },
    SyncTimeout {
        node: usize,
        world: usize,
        incarnation: u32,
        id: u64,
    },
    Gossip {
        node: usize,
    },
    /// The node crashes at its next WAL write (or `CrashNow` if none comes soon).
    Crash {
        node: usize,
    },
    CrashNow {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// The network splits: `side` against the rest.
    Partition {
        side: BTreeSet<usize>,
    },
    Heal,
}

impl Event {
    /// A compact, deterministic summary of the event for the trace hash.
    fn digest(&self) -> Vec<u8> {
        let mut d = Vec::with_capacity(96);
        let mut push = |x: u64| d.extend_from_slice(&x.to_le_bytes());
        match self {
            Event::Deliver {
                to,
                world,
                from,
                from_world,
                msg,
            } => {
                for x in [
                    0,
                    *to as u64,
                    *world as u64,
                    *from as u64,
                    *from_world as u64,
                ] {
                    push(x);
                }
                match msg {
                    NetMsg::Consensus(Message::Proposal(p)) => d.extend_from_slice(&p.signature.0),
                    NetMsg::Consensus(Message::Vote(v)) => d.extend_from_slice(&v.signature.0),
                    NetMsg::Status(h) => d.extend_from_slice(&h.0.to_le_bytes()),
                    NetMsg::SyncRequest { id, from, count } => {
                        for x in [*id, from.0, u64::from(*count)] {
                            d.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                    NetMsg::SyncBlocks { id, commits } => {
                        d.extend_from_slice(&id.to_le_bytes());
                        for c in commits {
                            d.extend_from_slice(&c.block.0);
                        }
                    }
                }
            }
            Event::Wake {
                node,
                world,
                incarnation,
            } => {
                for x in [1, *node as u64, *world as u64, u64::from(*incarnation)] {
                    push(x);
                }
            }
            Event::Checked {
                node,
                world,
                incarnation,
                height,
                block,
                valid,
            } => {
                for x in [
                    2,
                    *node as u64,
                    *world as u64,
                    u64::from(*incarnation),
                    height.0,
                    u64::from(*valid),
                ] {
                    push(x);
                }
                d.extend_from_slice(&block.0);
            }
            Event::Built {
                node,
                world,
                incarnation,
                height,
                round,
                block,
            } => {
                for x in [
                    3,
                    *node as u64,
                    *world as u64,
                    u64::from(*incarnation),
                    height.0,
                    u64::from(round.0),
                ] {
                    push(x);
                }
                d.extend_from_slice(&block.0);
            }
            Event::Stored {
                node,
                world,
                incarnation,
                height,
            } => {
                for x in [
                    4,
                    *node as u64,
                    *world as u64,
                    u64::from(*incarnation),
                    height.0,
                ] {
                    push(x);
                }
            }
            Event::SyncTimeout {
                node,
                world,
                incarnation,
                id,
            } => {
                for x in [
                    10,
                    *node as u64,
                    *world as u64,
                    u64::from(*incarnation),
                    *id,
                ] {
                    push(x);
                }
            }
            Event::Gossip { node } => push(5 + ((*node as u64) << 8)),
            Event::Crash { node } => push(6 + ((*node as u64) << 8)),
            Event::CrashNow { node } => push(11 + ((*node as u64) << 8)),
            Event::Restart { node } => push(7 + ((*node as u64) << 8)),
            Event::Partition { side } => {
                push(8);
                for n in side {
                    push(*n as u64);
                }
            }
            Event::Heal => push(9),
        }
        d
    }
}

struct Node {
    key: Keypair,
    public: PublicKey,
    byzantine: Option<ByzantineKind>,
    /// For honest nodes, the half of the network a double agent shows itself to.
    half: usize,
    drivers: Vec<SimDriver>,
    /// For each driver, the earliest wake-up already scheduled.
    wake_at: Vec<Option<u64>>,
    up: bool,
    incarnation: u32,
    /// A crash is due at the node's next WAL write.
    crash_pending: bool,
    /// Messages this node persisted before sending them: its write-ahead log.
    wal: Vec<Message>,
    /// Decided heights with their commits, per driver: the node's block store.
    decided: Vec<BTreeMap<Height, Commit>>,
    /// A vanishing validator's first prevote for a block from this time on is its last.
    vanish_at: Option<u64>,
    /// The rounds a vanishing validator has sent a prevote for a block in.
    prevoted: BTreeSet<(Height, Round)>,
}

struct World<'a> {
    cfg: &'a SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    set: ValidatorSet,
    chain: ChainId,
    schedules: Vec<ProposerSchedule>,
    /// Every block any application proposed: its height and whether it is valid.
    blocks: BTreeMap<Hash, (Height, bool)>,
    /// While partitioned: the nodes on one side.
    partition: Option<BTreeSet<usize>>,
    healed: bool,
    target: Height,
    log: Log,
    trace: Hash,
    delivered: u64,
}

/// Runs one simulation.
pub fn run(cfg: &SimConfig, seed: u64) -> Result<SimReport, String> {
    if !(4..=31).contains(&cfg.validators) {
        return Err(format!(
            "{} validators: the simulator runs 4 to 31",
            cfg.validators
        ));
    }
    if cfg.byzantine >= cfg.validators {
        return Err("at least one validator must be honest".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = cfg.validators;
    let powers: Vec<u64> = match cfg.stake {
        Stake::Equal => vec![1; n],
        Stake::Unequal => (0..n).map(|_| rng.gen_range(1..=10)).collect(),
    };
    let (keys, set) = testing::validators(u32::try_from(n).expect("at most 31"), &powers);
    // The Byzantine validators are those with the least power, so that as many as possible
    // fit under a third of it.
    let mut by_power: Vec<usize> = (0..n).collect();
    by_power.sort_by_key(|i| (powers[*i], *i));
    let byzantine: BTreeSet<usize> = if cfg.crash_first_proposer {
        let first = ProposerSchedule::genesis(set.clone()).proposer_key(0);
        keys.iter()
            .position(|k| k.public() == first)
            .into_iter()
            .collect()
    } else {
        by_power.into_iter().take(cfg.byzantine).collect()
    };
    let byz_power: u64 = byzantine.iter().map(|i| powers[*i]).sum();
    let total: u64 = powers.iter().sum();
    if !cfg.allow_byzantine_third && byz_power * 3 >= total {
        return Err(format!(
            "Byzantine power {byz_power} of {total} is not below a third; lower --byzantine"
        ));
    }

    let mut nodes = Vec::with_capacity(n);
    let mut honest_count = 0;
    for (i, key) in keys.into_iter().enumerate() {
        let kind = match (byzantine.contains(&i), cfg.crash_first_proposer) {
            (false, _) => None,
            (true, true) => Some(ByzantineKind::Silent),
            (true, false) => Some(cfg.byzantine_kind),
        };
        let worlds = match kind {
            None
            | Some(ByzantineKind::ConflictingProposer)
            | Some(ByzantineKind::InvalidProposer)
            | Some(ByzantineKind::Vanishing) => 1,
            Some(ByzantineKind::Equivocate) => 2,
            Some(ByzantineKind::Silent) => 0,
        };
        let half = if kind.is_none() {
            honest_count += 1;
            honest_count % 2
        } else {
            0
        };
        let vanish_at =
            (kind == Some(ByzantineKind::Vanishing)).then(|| rng.gen_range(0..=cfg.heal_at_ms));
        nodes.push(Node {
            public: key.public(),
            key,
            byzantine: kind,
            half,
            drivers: Vec::new(),
            wake_at: Vec::new(),
            up: worlds > 0,
            incarnation: 0,
            crash_pending: false,
            wal: Vec::new(),
            decided: vec![BTreeMap::new(); worlds],
            vanish_at,
            prevoted: BTreeSet::new(),
        });
    }
    let honest: BTreeSet<PublicKey> = nodes
        .iter()
        .filter(|n| n.byzantine.is_none())
        .map(|n| n.public)
        .collect();
    let chain = testing::chain_id();
    let mut world = World {
        cfg,
        rng,
        now: 0,
        seq: 0,
        queue: BTreeMap::new(),
        schedules: vec![ProposerSchedule::genesis(set.clone())],
        log: Log::new(chain.clone(), set.clone(), honest),
        set,
        chain,
        blocks: BTreeMap::new(),
        partition: None,
        healed: false,
        target: Height(cfg.heights),
        trace: Hash::ZERO,
        delivered: 0,
        nodes,
    };
    world.log.target = Height(cfg.heights);
    world.start();
    world.run_loop();
    Ok(world.report(seed))
}

impl World<'_> {
    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + delay_ms, self.seq), event);
    }

    fn schedule_at(&mut self, height: Height) -> ProposerSchedule {
        let index = usize::try_from(height.0 - 1).expect("heights in a simulation are small");
        while self.schedules.len() <= index {
            let last = self.schedules.last().expect("genesis schedule").clone();
            self.schedules.push(last.next_height(self.set.clone()));
        }
        self.schedules[index].clone()
    }

    fn driver_config(&self) -> DriverConfig {
        DriverConfig {
            consensus: self.cfg.consensus,
            // The application's own delay (storing a block) is the pause between heights.
            block_interval_ms: 0,
            empty_block_interval_ms: 1_000,
            min_height_ms: 0,
            gossip_interval_ms: GOSSIP_INTERVAL_MS,
        }
    }

    fn start(&mut self) {
        let faults = self.cfg.faults;
        for node in 0..self.nodes.len() {
            if self.nodes[node].up {
                self.boot(node);
                let jitter = self.rng.gen_range(0..GOSSIP_INTERVAL_MS);
                self.schedule(GOSSIP_INTERVAL_MS + jitter, Event::Gossip { node });
            }
        }
        let heal = self.cfg.heal_at_ms;
        if faults.partition && heal > 0 {
            let at = self.rng.gen_range(0..heal / 2 + 1);
            let side: BTreeSet<usize> = (0..self.nodes.len())
                .filter(|_| self.rng.gen_bool(0.5))
                .collect();
            if !side.is_empty() && side.len() < self.nodes.len() {
                self.schedule(at, Event::Partition { side });
            }
        }
        if faults.crash && heal > 0 {
            let honest: Vec<usize> = (0..self.nodes.len())
                .filter(|i| self.nodes[*i].byzantine.is_none())
                .collect();
            let node = honest[self.rng.gen_range(0..honest.len())];
            let at = self.rng.gen_range(0..heal / 2 + 1);
            // Back after the crash has happened (at the latest `CRASH_AT_PERSIST_WAIT_MS`
            // after `at`).
            let earliest = at + CRASH_AT_PERSIST_WAIT_MS + 1;
            let back = self.rng.gen_range(earliest..=heal.max(earliest));
            self.schedule(at, Event::Crash { node });
            self.schedule(back, Event::Restart { node });
        }
        self.schedule(heal, Event::Heal);
    }

    /// Starts (or restarts) every driver of `node` at the height after its last decision,
    /// with the messages of that height from its WAL.
    fn boot(&mut self, node: usize) {
        let worlds = self.nodes[node].decided.len();
        let config = self.driver_config();
        let mut drivers = Vec::with_capacity(worlds);
        for world in 0..worlds {
            let height = self.nodes[node].decided[world]
                .keys()
                .next_back()
                .map_or(Height(1), |h| h.next());
            let restored: Vec<Message> = self.nodes[node]
                .wal
                .iter()
                .filter(|m| m.height() == height)
                .cloned()
                .collect();
            // As the node keeps the block of its own proposal or precommit beside the WAL
            // record, the restarted driver gets it back (here a block is its hash).
            let me = self.nodes[node].public;
            let blocks = restored
                .iter()
                .filter_map(|m| m.own_block(&me).map(|b| (b, ())))
                .collect();
            let resume = Resume {
                height,
                schedule: self.schedule_at(height),
                restored,
                rounds_pending: false,
                blocks,
            };
            let key = Keypair::from_seed(self.nodes[node].key.seed());
            drivers.push(Driver::new(
                config,
                self.chain.clone(),
                key,
                resume,
                self.now,
            ));
        }
        let n = &mut self.nodes[node];
        n.drivers = drivers;
        n.wake_at = vec![None; worlds];
        n.crash_pending = false;
        // There is always work: every height is wanted.
        for world in 0..worlds {
            self.feed(node, world, DriverEvent::TxsWaiting(true));
            self.feed(node, world, DriverEvent::Tick);
        }
    }

    fn run_loop(&mut self) {
        let deadline = self.cfg.heal_at_ms + self.cfg.progress_bound_ms;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > deadline {
                break;
            }
            self.now = at;
            self.trace = Hash::digest_parts(&[&self.trace.0, &at.to_le_bytes(), &event.digest()]);
            self.handle(event);
            if self.healed && self.all_reached(self.target) {
                break;
            }
        }
    }

    fn honest_height(&self, node: &Node) -> Height {
        node.decided[0]
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Height(0))
    }

    fn all_reached(&self, target: Height) -> bool {
        self.nodes
            .iter()
            .filter(|n| n.byzantine.is_none())
            .all(|n| self.honest_height(n) >= target)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                world,
                from,
                from_world,
                msg,
            } => self.deliver(to, world, from, from_world, msg),
            Event::Wake {
                node,
                world,
                incarnation,
            } => {
                if self.alive(node, incarnation) {
                    self.nodes[node].wake_at[world] = None;
                    self.feed(node, world, DriverEvent::Tick);
                }
            }
            Event::Checked {
                node,
                world,
                incarnation,
                height,
                block,
                valid,
            } => {
                if self.alive(node, incarnation) {
                    self.feed(
                        node,
                        world,
                        DriverEvent::Checked {
                            height,
                            block,
                            valid,
                        },
                    );
                }
            }
            Event::Built {
                node,
                world,
                incarnation,
                height,
                round,
                block,
            } => {
                if self.alive(node, incarnation) {
                    self.feed(
                        node,
                        world,
                        DriverEvent::Built {
                            height,
                            round,
                            block,
                            body: (),
                        },
                    );
                }
            }
            Event::Stored {
                node,
                world,
                incarnation,
                height,
            } => {
                if self.alive(node, incarnation) {
                    let stored = self.stored(height, false);
                    self.feed(node, world, DriverEvent::Committed(stored));
                }
            }
            Event::SyncTimeout {
                node,
                world,
                incarnation,
                id,
            } => {
                if self.alive(node, incarnation) {
                    self.feed(node, world, DriverEvent::SyncFailed { id });
                }
            }
            Event::Gossip { node } => {
                self.gossip(node);
                self.schedule(GOSSIP_INTERVAL_MS, Event::Gossip { node });
            }
            Event::Crash { node } => {
                if self.nodes[node].up {
                    self.nodes[node].crash_pending = true;
                    self.schedule(CRASH_AT_PERSIST_WAIT_MS, Event::CrashNow { node });
                }
            }
            Event::CrashNow { node } => {
                if self.nodes[node].crash_pending {
                    self.crash(node);
                }
            }
            Event::Restart { node } => {
                if !self.nodes[node].up {
                    self.nodes[node].up = true;
                    self.boot(node);
                }
            }
            Event::Partition { side } => self.partition = Some(side),
            Event::Heal => {
                self.healed = true;
                self.partition = None;
                let furthest = self
                    .nodes
                    .iter()
                    .filter(|n| n.byzantine.is_none())
                    .map(|n| self.honest_height(n))
                    .max()
                    .unwrap_or(Height(0));
                self.target = Height(self.cfg.heights.max(furthest.0 + 2));
                self.log.target = self.target;
            }
        }
    }

    /// What the application tells its driver after storing the block of `height`.
    fn stored(&mut self, height: Height, synced: bool) -> Stored {
        Stored {
            height,
            schedule: self.schedule_at(height.next()),
            rounds_pending: false,
            evidence: Vec::new(),
            synced,
            // Every simulated height has work.
            empty: false,
        }
    }

    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        n.up = false;
        n.crash_pending = false;
        n.incarnation += 1;
        n.drivers.clear();
        n.wake_at.clear();
        // Its peers see the connection close.
        for other in 0..self.nodes.len() {
            for world in 0..self.nodes[other].drivers.len() {
                self.feed(other, world, DriverEvent::PeerGone(node));
            }
        }
    }

    fn alive(&self, node: usize, incarnation: u32) -> bool {
        let n = &self.nodes[node];
        n.up && n.incarnation == incarnation
    }

    fn deliver(&mut self, to: usize, world: usize, from: usize, from_world: usize, msg: NetMsg) {
        if !self.nodes[to].up || world >= self.nodes[to].drivers.len() {
            return;
        }
        self.delivered += 1;
        match msg {
            NetMsg::Consensus(m) => {
                let event = match m {
                    Message::Proposal(proposal) => DriverEvent::Proposal { proposal, body: () },
                    vote => DriverEvent::Message(vote),
                };
                self.feed(to, world, event);
            }
            NetMsg::Status(height) => {
                self.feed(to, world, DriverEvent::PeerStatus { peer: from, height });
            }
            NetMsg::SyncRequest {
                id,
                from: first,
                count,
            } => {
                // Honest nodes serve blocks from their store; Byzantine ones do not bother.
                if self.nodes[to].byzantine.is_none() {
                    let commits: Vec<Commit> = (first.0..first.0 + u64::from(count))
                        .map_while(|h| self.nodes[to].decided[0].get(&Height(h)).cloned())
                        .collect();
                    self.send(to, 0, from, from_world, NetMsg::SyncBlocks { id, commits });
                }
            }
            NetMsg::SyncBlocks { id, commits } => {
                let blocks = commits.len();
                for commit in commits {
                    let driver = &self.nodes[to].drivers[world];
                    if Some(commit.height) != driver.syncable() {
                        continue;
                    }
                    // The node checks a synced block against its commit before storing it.
                    if verify_commit(
                        &self.chain,
                        &self.set,
                        &commit,
                        commit.height,
                        &commit.block,
                    )
                    .is_err()
                    {
                        break;
                    }
                    self.store(to, world, commit);
                    let stored = self.stored(self.nodes[to].drivers[world].height(), true);
                    self.feed(to, world, DriverEvent::Committed(stored));
                    if !self.nodes[to].up {
                        return;
                    }
                }
                self.feed(
                    to,
                    world,
                    DriverEvent::SyncAnswered {
                        id,
                        peer: from,
                        blocks,
                    },
                );
            }
        }
    }

    /// Stores a decided or synced block's commit, and logs the decision of an honest node.
    fn store(&mut self, node: usize, world: usize, commit: Commit) {
        if self.nodes[node].byzantine.is_none() {
            self.log.decisions.push(Decision {
                node,
                height: commit.height,
                round: commit.round,
                block: commit.block,
                commit: commit.clone(),
                at_ms: self.now,
            });
        }
        self.nodes[node].decided[world].insert(commit.height, commit);
    }

    /// Gives the node's drivers their gossip tick: they send their own messages again, and
    /// their status. Nothing else is relayed, as in the node, whose proposals and votes go
    /// straight to the validators and are never forwarded: what a crashed or Byzantine
    /// validator showed one honest node, the others learn only if the core sends it on (a
    /// proposal's proof of lock).
    fn gossip(&mut self, node: usize) {
        if !self.nodes[node].up {
            return;
        }
        for world in 0..self.nodes[node].drivers.len() {
            self.feed(node, world, DriverEvent::GossipTick);
        }
    }

    /// Hands one of the node's drivers an event, carries out its actions, and schedules
    /// its next wake-up.
    fn feed(&mut self, node: usize, world: usize, event: SimEvent) {
        if !self.nodes[node].up || world >= self.nodes[node].drivers.len() {
            return;
        }
        let actions = self.nodes[node].drivers[world].on(self.now, event);
        for action in actions {
            self.perform(node, world, action);
            if !self.nodes[node].up {
                // Crashed while carrying them out: the rest never happens.
                return;
            }
        }
        let next = self.nodes[node].drivers[world].next_deadline();
        if let Some(at) = next {
            let scheduled = self.nodes[node].wake_at[world];
            if scheduled.is_none_or(|s| at < s) {
                self.nodes[node].wake_at[world] = Some(at);
                let incarnation = self.nodes[node].incarnation;
                self.schedule(
                    at.saturating_sub(self.now),
                    Event::Wake {
                        node,
                        world,
                        incarnation,
                    },
                );
            }
        }
    }

    fn perform(&mut self, node: usize, world: usize, action: SimAction) {
        let incarnation = self.nodes[node].incarnation;
        let honest = self.nodes[node].byzantine.is_none();
        match action {
            SimAction::Persist { messages, .. } => {
                if honest {
                    for m in &messages {
                        if m.signer() == self.nodes[node].public {
                            self.log.signed.push((node, m.clone()));
                        }
                    }
                    self.nodes[node].wal.extend(messages);
                }
                if self.nodes[node].crash_pending {
                    // Durable, but nothing after it is sent.
                    self.crash(node);
                }
            }
            SimAction::Broadcast { message, .. } => self.broadcast_consensus(node, world, message),
            SimAction::Status(height) => self.broadcast(node, world, NetMsg::Status(height)),
            SimAction::Evidence(e) => self.log.evidence.push((node, e)),
            SimAction::Build { height, round, .. } => {
                let block = Hash::digest(
                    format!("block {height} {round} by {node} in world {world}").as_bytes(),
                );
                let valid = self.nodes[node].byzantine != Some(ByzantineKind::InvalidProposer);
                self.blocks.insert(block, (height, valid));
                self.log.proposed.insert(block, (height, valid));
                let delay = self.rng.gen_range(1..=10);
                self.schedule(
                    delay,
                    Event::Built {
                        node,
                        world,
                        incarnation,
                        height,
                        round,
                        block,
                    },
                );
            }
            SimAction::Check { height, block, .. } => {
                let valid = self
                    .blocks
                    .get(&block)
                    .is_some_and(|(h, v)| *h == height && *v);
                let delay = self.rng.gen_range(1..=5);
                self.schedule(
                    delay,
                    Event::Checked {
                        node,
                        world,
                        incarnation,
                        height,
                        block,
                        valid,
                    },
                );
            }
            SimAction::Commit { height, commit, .. } => {
                self.store(node, world, commit);
                // Storing the block takes a moment; then the driver moves on.
                let delay = self.rng.gen_range(1..=5);
                self.schedule(
                    delay,
                    Event::Stored {
                        node,
                        world,
                        incarnation,
                        height,
                    },
                );
            }
            SimAction::RequestSync {
                id,
                peer,
                from,
                count,
            } => {
                self.send(
                    node,
                    world,
                    peer,
                    0,
                    NetMsg::SyncRequest { id, from, count },
                );
                self.schedule(
                    SYNC_TIMEOUT_MS,
                    Event::SyncTimeout {
                        node,
                        world,
                        incarnation,
                        id,
                    },
                );
            }
        }
    }

    /// Sends a consensus message the way the sender's behaviour dictates.
    fn broadcast_consensus(&mut self, node: usize, world: usize, m: Message) {
        // The checker sees every message an honest validator sends, not only what it logged.
        if self.nodes[node].byzantine.is_none() && m.signer() == self.nodes[node].public {
            self.log.signed.push((node, m.clone()));
        }
        match (self.nodes[node].byzantine, &m) {
            (Some(ByzantineKind::ConflictingProposer), Message::Proposal(p)) => {
                // The real proposal to one half, another block to the other.
                let other = Hash::digest_parts(&[b"conflicting", &p.proposal.block.0]);
                self.blocks.insert(other, (p.proposal.height, true));
                self.log.proposed.insert(other, (p.proposal.height, true));
                let alt = Proposal {
                    block: other,
                    ..p.proposal
                }
                .sign(&self.nodes[node].key, &self.chain);
                for to in 0..self.nodes.len() {
                    if to == node {
                        continue;
                    }
                    let msg = if self.nodes[to].half == 1 {
                        Message::Proposal(alt)
                    } else {
                        m.clone()
                    };
                    self.send(node, world, to, 0, NetMsg::Consensus(msg));
                }
            }
            (Some(ByzantineKind::Vanishing), Message::Vote(v))
                if v.vote.kind == VoteKind::Prevote
                    && v.vote.block.is_some()
                    && v.validator == self.nodes[node].public =>
            {
                // Its first sending of a prevote for a block, once due, is cut short: one
                // peer that is up gets it, and the validator is gone for good.
                let first = self.nodes[node]
                    .prevoted
                    .insert((v.vote.height, v.vote.round));
                let due = self.nodes[node].vanish_at.is_some_and(|at| self.now >= at);
                if !(first && due) {
                    self.broadcast(node, world, NetMsg::Consensus(m));
                    return;
                }
                let up: Vec<usize> = (0..self.nodes.len())
                    .filter(|i| *i != node && self.nodes[*i].up)
                    .collect();
                if !up.is_empty() {
                    let to = up[self.rng.gen_range(0..up.len())];
                    self.send(node, world, to, 0, NetMsg::Consensus(m));
                }
                self.crash(node);
            }
            _ => self.broadcast(node, world, NetMsg::Consensus(m)),
        }
    }

    fn broadcast(&mut self, from: usize, world: usize, msg: NetMsg) {
        let double_agent = self.nodes[from].byzantine == Some(ByzantineKind::Equivocate);
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let target = &self.nodes[to];
            match (double_agent, target.byzantine) {
                // An honest sender reaches the double agent's core for the sender's half.
                (false, Some(ByzantineKind::Equivocate)) => {
                    let half = self.nodes[from].half;
                    self.send(from, world, to, half, msg.clone());
                }
                (false, _) => self.send(from, world, to, 0, msg.clone()),
                // A double agent's core shows itself only to its half, and to its
                // accomplices' cores of the same half; now and then a message leaks to the
                // other half, where it becomes evidence.
                (true, Some(ByzantineKind::Equivocate)) => {
                    self.send(from, world, to, world, msg.clone())
                }
                (true, _) => {
                    if target.half == world || self.rng.gen_range(0..8) == 0 {
                        self.send(from, world, to, 0, msg.clone());
                    }
                }
            }
        }
    }

    fn send(&mut self, from: usize, from_world: usize, to: usize, world: usize, msg: NetMsg) {
        let faults = self.cfg.faults;
        let mut copies = 1;
        let delay_max = if self.healed {
            HEALED_DELAY_MS_MAX
        } else {
            if self.rng.gen_range(0..1000) < faults.drop_per_mille {
                return;
            }
            if let Some(side) = &self.partition {
                if side.contains(&from) != side.contains(&to) {
                    return;
                }
            }
            if self.rng.gen_range(0..1000) < faults.duplicate_per_mille {
                copies = 2;
            }
            faults.delay_ms_max.max(1)
        };
        for _ in 0..copies {
            let delay = self.rng.gen_range(1..=delay_max);
            self.schedule(
                delay,
                Event::Deliver {
                    to,
                    world,
                    from,
                    from_world,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn report(mut self, seed: u64) -> SimReport {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.byzantine.is_none() {
                self.log.final_heights.push((i, self.honest_height(n)));
            }
        }
        self.log.deadline_ms = self.cfg.heal_at_ms + self.cfg.progress_bound_ms;
        let violations = checker::check(&self.log);
        let mut rounds: BTreeMap<Height, u32> = BTreeMap::new();
        for d in &self.log.decisions {
            rounds.entry(d.height).or_insert(d.round.0);
        }
        let first = self
            .log
            .decisions
            .iter()
            .filter(|d| d.height == Height(1))
            .map(|d| d.at_ms)
            .min();
        SimReport {
            seed,
            heights_decided: self
                .log
                .final_heights
                .iter()
                .map(|(_, h)| h.0)
                .min()
                .unwrap_or(0),
            decision_rounds: rounds.into_values().collect(),
            messages_delivered: self.delivered,
            evidence_seen: self.log.evidence.len() as u64,
            virtual_time_ms: self.now,
            first_decision_ms: first,
            violations,
            trace: self.trace,
        }
    }
}
