//! The simulated world: nodes, a virtual clock, a seeded faulty network, and the
//! application each core talks to.

use std::collections::{BTreeMap, BTreeSet};

use acta_consensus::{Core, Input, Message, Output, ProposerSchedule, Timeout};
use acta_ledger::{
    light::verify_commit, testing, ChainId, Commit, Hash, Height, Keypair, Proposal, PublicKey,
    Round, ValidatorSet,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    checker::{self, Decision, Log},
    ByzantineKind, SimConfig, SimReport, Stake,
};

/// How often every node re-sends its own messages of its current height and its status.
const GOSSIP_INTERVAL_MS: u64 = 500;
/// Largest message delay once the network has healed.
const HEALED_DELAY_MS_MAX: u64 = 20;

#[derive(Clone, Debug)]
enum NetMsg {
    Consensus(Message),
    /// "I am at this height": peers that are past it answer with its commit.
    Status(Height),
    /// A commit certificate for a height the receiver asked about.
    Sync(Commit),
}

/// Everything that happens, at a virtual time. `world` selects one of a Byzantine
/// double agent's cores; honest nodes have one core, world 0.
#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        world: usize,
        from: usize,
        from_world: usize,
        msg: NetMsg,
    },
    Timeout {
        node: usize,
        world: usize,
        incarnation: u32,
        timeout: Timeout,
    },
    Checked {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
        block: Hash,
        valid: bool,
    },
    Value {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
        round: Round,
        block: Hash,
    },
    StartHeight {
        node: usize,
        world: usize,
        incarnation: u32,
        height: Height,
    },
    Gossip {
        node: usize,
    },
    Crash {
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
                    NetMsg::Sync(c) => d.extend_from_slice(&c.block.0),
                }
            }
            Event::Timeout {
                node,
                world,
                incarnation,
                timeout,
            } => {
                for x in [
                    1,
                    *node as u64,
                    *world as u64,
                    u64::from(*incarnation),
                    timeout.height.0,
                    u64::from(timeout.round.0),
                    timeout.step as u64,
                ] {
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
            Event::Value {
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
            Event::StartHeight {
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
            Event::Gossip { node } => push(5 + ((*node as u64) << 8)),
            Event::Crash { node } => push(6 + ((*node as u64) << 8)),
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
    cores: Vec<Core>,
    up: bool,
    incarnation: u32,
    /// Messages this node signed, persisted before they were sent: its write-ahead log.
    wal: Vec<Message>,
    /// Decided heights with their commits, per core: the node's block store.
    decided: Vec<BTreeMap<Height, Commit>>,
    /// Messages of others received at the current height, to relay when stuck.
    received: Vec<Message>,
    received_ids: BTreeSet<Hash>,
    received_height: Height,
    /// The height at the previous gossip tick: unchanged means stuck.
    ticked_height: Height,
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
            | Some(ByzantineKind::InvalidProposer) => 1,
            Some(ByzantineKind::Equivocate) => 2,
            Some(ByzantineKind::Silent) => 0,
        };
        let half = if kind.is_none() {
            honest_count += 1;
            honest_count % 2
        } else {
            0
        };
        nodes.push(Node {
            public: key.public(),
            key,
            byzantine: kind,
            half,
            cores: Vec::new(),
            up: worlds > 0,
            incarnation: 0,
            wal: Vec::new(),
            decided: vec![BTreeMap::new(); worlds],
            received: Vec::new(),
            received_ids: BTreeSet::new(),
            received_height: Height(0),
            ticked_height: Height(0),
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
            let back = self.rng.gen_range(at..=heal);
            self.schedule(at, Event::Crash { node });
            self.schedule(back, Event::Restart { node });
        }
        self.schedule(heal, Event::Heal);
    }

    /// Starts (or restarts) every core of `node` at the height after its last decision.
    fn boot(&mut self, node: usize) {
        let worlds = self.nodes[node].decided.len();
        let mut cores = Vec::with_capacity(worlds);
        for _ in 0..worlds {
            let key = Keypair::from_seed(self.nodes[node].key.seed());
            cores.push(Core::new(self.cfg.consensus, self.chain.clone(), key));
        }
        self.nodes[node].cores = cores;
        for world in 0..worlds {
            let height = self.nodes[node].decided[world]
                .keys()
                .next_back()
                .map_or(Height(1), |h| h.next());
            self.start_height(node, world, height);
        }
    }

    fn start_height(&mut self, node: usize, world: usize, height: Height) {
        let schedule = self.schedule_at(height);
        let wal: Vec<Message> = self.nodes[node]
            .wal
            .iter()
            .filter(|m| m.height() == height)
            .cloned()
            .collect();
        self.feed(
            node,
            world,
            Input::StartHeight {
                height,
                schedule,
                wal,
            },
        );
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
            Event::Timeout {
                node,
                world,
                incarnation,
                timeout,
            } => {
                if self.alive(node, incarnation) {
                    self.feed(node, world, Input::Timeout(timeout));
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
                        Input::BlockChecked {
                            height,
                            block,
                            valid,
                        },
                    );
                }
            }
            Event::Value {
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
                        Input::ProposeBlock {
                            height,
                            round,
                            block,
                        },
                    );
                }
            }
            Event::StartHeight {
                node,
                world,
                incarnation,
                height,
            } => {
                if self.alive(node, incarnation) {
                    self.start_height(node, world, height);
                }
            }
            Event::Gossip { node } => {
                self.gossip(node);
                self.schedule(GOSSIP_INTERVAL_MS, Event::Gossip { node });
            }
            Event::Crash { node } => {
                let n = &mut self.nodes[node];
                n.up = false;
                n.incarnation += 1;
                n.cores.clear();
            }
            Event::Restart { node } => {
                self.nodes[node].up = true;
                self.boot(node);
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

    fn alive(&self, node: usize, incarnation: u32) -> bool {
        let n = &self.nodes[node];
        n.up && n.incarnation == incarnation
    }

    fn deliver(&mut self, to: usize, world: usize, from: usize, from_world: usize, msg: NetMsg) {
        if !self.nodes[to].up || world >= self.nodes[to].cores.len() {
            return;
        }
        self.delivered += 1;
        match msg {
            NetMsg::Consensus(m) => {
                if self.nodes[to].byzantine.is_none() {
                    self.remember(to, &m);
                }
                self.feed(to, world, Input::Message(m))
            }
            NetMsg::Status(height) => {
                // Honest nodes help others catch up; Byzantine ones do not bother.
                if self.nodes[to].byzantine.is_none() {
                    if let Some(commit) = self.nodes[to].decided[0].get(&height).cloned() {
                        self.send(to, 0, from, from_world, NetMsg::Sync(commit));
                    }
                }
            }
            NetMsg::Sync(commit) => {
                let core = &self.nodes[to].cores[world];
                if commit.height != core.height() {
                    return;
                }
                // The caller checks the commit's signatures before `Input::Commit` (the node
                // instead applies synced blocks itself, each checked against its commit).
                if verify_commit(
                    &self.chain,
                    &self.set,
                    &commit,
                    commit.height,
                    &commit.block,
                )
                .is_ok()
                {
                    self.feed(to, world, Input::Commit(commit));
                }
            }
        }
    }

    /// Keeps a received message of the node's current height for relaying.
    fn remember(&mut self, node: usize, m: &Message) {
        let n = &mut self.nodes[node];
        let Some(core) = n.cores.first() else { return };
        if m.height() != core.height() {
            return;
        }
        if n.received_height != core.height() {
            n.received_height = core.height();
            n.received.clear();
            n.received_ids.clear();
        }
        let id = match m {
            Message::Proposal(p) => Hash::of(p),
            Message::Vote(v) => Hash::of(v),
        };
        if n.received_ids.insert(id) {
            n.received.push(m.clone());
        }
    }

    /// Re-sends the node's own messages of its height and its status; when its height has
    /// not moved since the last tick, relays everything it received at that height too, so
    /// that what one honest node saw, all do (the gossip that Tendermint's liveness needs).
    fn gossip(&mut self, node: usize) {
        if !self.nodes[node].up || self.nodes[node].byzantine.is_some() {
            return;
        }
        let height = self.nodes[node].cores[0].height();
        let n = &mut self.nodes[node];
        let stuck = n.ticked_height == height;
        n.ticked_height = height;
        let mut out: Vec<Message> = n
            .wal
            .iter()
            .filter(|m| m.height() == height)
            .cloned()
            .collect();
        if stuck && n.received_height == height {
            out.extend(n.received.iter().cloned());
        }
        for m in out {
            self.broadcast(node, 0, NetMsg::Consensus(m));
        }
        self.broadcast(node, 0, NetMsg::Status(height));
    }

    fn feed(&mut self, node: usize, world: usize, input: Input) {
        if !self.nodes[node].up || world >= self.nodes[node].cores.len() {
            return;
        }
        let outputs = self.nodes[node].cores[world].on(input);
        for o in outputs {
            self.perform(node, world, o);
        }
    }

    fn perform(&mut self, node: usize, world: usize, output: Output) {
        let incarnation = self.nodes[node].incarnation;
        match output {
            Output::Persist(m) => {
                if self.nodes[node].byzantine.is_none() {
                    if m.signer() == self.nodes[node].public {
                        self.log.signed.push((node, m.clone()));
                    }
                    self.nodes[node].wal.push(m);
                }
            }
            Output::Broadcast(m) => self.broadcast_consensus(node, world, m),
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => self.schedule(
                duration_ms,
                Event::Timeout {
                    node,
                    world,
                    incarnation,
                    timeout,
                },
            ),
            Output::GetValue { height, round } => {
                let block = Hash::digest(
                    format!("block {height} {round} by {node} in world {world}").as_bytes(),
                );
                let valid = self.nodes[node].byzantine != Some(ByzantineKind::InvalidProposer);
                self.blocks.insert(block, (height, valid));
                self.log.proposed.insert(block, (height, valid));
                let delay = self.rng.gen_range(1..=10);
                self.schedule(
                    delay,
                    Event::Value {
                        node,
                        world,
                        incarnation,
                        height,
                        round,
                        block,
                    },
                );
            }
            Output::CheckBlock { height, block, .. } => {
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
            Output::Decide {
                height,
                round,
                block,
                commit,
            } => {
                self.nodes[node].decided[world].insert(height, commit.clone());
                if self.nodes[node].byzantine.is_none() {
                    self.log.decisions.push(Decision {
                        node,
                        height,
                        round,
                        block,
                        commit,
                        at_ms: self.now,
                    });
                }
                // Executing the block takes a moment; then the next height starts.
                let delay = self.rng.gen_range(1..=5);
                self.schedule(
                    delay,
                    Event::StartHeight {
                        node,
                        world,
                        incarnation,
                        height: height.next(),
                    },
                );
            }
            Output::Evidence(e) => self.log.evidence.push((node, e)),
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
