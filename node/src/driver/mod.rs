//! The node's decisions, without I/O: `Driver::on(now, Event) -> Vec<Action>`.
//!
//! The consensus core decides one height; the driver decides everything around it: when a
//! height starts (at once when there is work, after `empty_block_interval_ms` when there is
//! none), which candidate blocks are kept and when each is checked, the core's timeouts on
//! a clock it is handed, the pool of evidence, which of its own messages to send again,
//! whom to ask for blocks when behind, and in which order the results must be carried out.
//!
//! It performs nothing itself. Whoever runs it (the node's actor in [`crate::node`], or
//! the simulator in acta-testnet) hands it events and carries out the actions it returns,
//! in order: an [`Action::Persist`] must be durable before any later action is carried
//! out, so a message is never sent before it would survive a crash. Building, checking
//! and storing blocks are the application's: the driver asks with [`Action::Build`],
//! [`Action::Check`] and [`Action::Commit`], and is told the outcome with
//! [`Event::Built`], [`Event::Checked`] and [`Event::Committed`], at once or later.
//!
//! `P` names a peer (a libp2p `PeerId` in the node, an index in the simulator) and `B` is
//! a block's body (what the application builds, checks and stores; `()` in the
//! simulator, where a block is its hash). Nothing here reads a clock, a socket or a disk,
//! and nothing iterates a hash map into its output, so one sequence of events always
//! gives the same actions.

mod sync;
mod timers;

use std::collections::{HashMap, HashSet};

use acta_consensus::{Core, Input, Message, Output, ProposerSchedule};
use acta_ledger::{Commit, Evidence, Hash, Height, Keypair, PublicKey, Round, SignedProposal};
use tracing::{debug, info, warn};

use sync::BlockSync;
pub use sync::SYNC_BLOCKS_MAX;
use timers::Timers;

/// Milliseconds on the clock the driver is handed (the node's monotonic clock, or the
/// simulator's virtual one); only differences matter.
pub type Millis = u64;

/// The most candidate blocks kept for one height (one per round is usual).
const CANDIDATES_MAX: usize = 64;
/// The most pieces of evidence kept waiting for a block.
const EVIDENCE_MAX: usize = 256;
/// Gossip ticks an own proposal goes unanswered before it is sent again.
const PROPOSAL_RESEND_TICKS: u64 = 4;
/// Waiting for work, a validator tells its status every this many gossip ticks instead of
/// every tick (a peer behind it learns of a new block from the block's own gossip).
const IDLE_STATUS_TICKS: u32 = 5;

/// The driver's settings.
#[derive(Clone, Copy, Debug)]
pub struct DriverConfig {
    pub consensus: acta_consensus::Config,
    /// The pace of heights that are due with nothing to decide yet (a budget round under
    /// way, whose phases need blocks): the pause after a commit before the next starts.
    /// Transactions, evidence or another validator's message start it at once.
    pub block_interval_ms: u64,
    /// With no work, the next height starts after this long anyway (an empty block).
    pub empty_block_interval_ms: u64,
    /// Heights start at most this often when transactions alone wait: after a height
    /// shorter than this, the next starts this long after it started, so that a light
    /// load gathers into fewer, fuller heights; a longer height is followed at once.
    /// Evidence, this validator's restored messages and another validator at the next
    /// height start it at once. 0 starts it as soon as the last is committed.
    pub min_height_ms: u64,
    /// How often [`Event::GossipTick`] comes.
    pub gossip_interval_ms: u64,
}

/// What happened, for the driver to decide on.
#[derive(Debug)]
pub enum Event<P, B> {
    /// The clock moved: timeouts due fire, and the next height may start.
    Tick,
    /// Time to send this validator's messages again and tell its status.
    GossipTick,
    /// Whether transactions wait in the mempool (work for the next height).
    TxsWaiting(bool),
    /// A vote or proposal whose signature the caller checked.
    Message(Message),
    /// A proposal with its block, both checked by the caller (signature, hash).
    Proposal { proposal: SignedProposal, body: B },
    /// The application built the block asked for by [`Action::Build`].
    Built {
        height: Height,
        round: Round,
        block: Hash,
        body: B,
    },
    /// The application's verdict on a block asked for by [`Action::Check`].
    Checked {
        height: Height,
        block: Hash,
        valid: bool,
    },
    /// A block is stored: the one [`Action::Commit`] named, or one fetched by sync.
    Committed(Stored),
    /// Evidence a peer sent, checked by the caller (signatures, a validator of its height).
    Evidence(Evidence),
    /// A peer's latest height.
    PeerStatus { peer: P, height: Height },
    /// A peer disconnected.
    PeerGone(P),
    /// The answer to [`Action::RequestSync`] `id` held `blocks` blocks; those that could
    /// be were applied (each told by [`Event::Committed`]) before this.
    SyncAnswered { id: u64, peer: P, blocks: usize },
    /// Request `id` failed without an answer.
    SyncFailed { id: u64 },
}

/// What the application tells after it stored a block.
#[derive(Debug)]
pub struct Stored {
    /// The block's height.
    pub height: Height,
    /// The proposer schedule of the next height.
    pub schedule: ProposerSchedule,
    /// Whether budget rounds are under way, whose phases need heights to keep coming.
    pub rounds_pending: bool,
    /// The evidence the block carried (out of the pool now).
    pub evidence: Vec<Evidence>,
    /// Fetched from a peer rather than decided here: the node is behind and starts the
    /// next height at once.
    pub synced: bool,
    /// The block held no transaction and no evidence: the next height keeps the pace of
    /// `block_interval_ms` even if work waits, so that no one validator's messages (nor a
    /// transaction no proposer takes) can make empty blocks come back to back.
    pub empty: bool,
}

/// Where a driver starts.
#[derive(Debug)]
pub struct Resume<B> {
    /// The height to decide: one past the latest stored block.
    pub height: Height,
    /// Its proposer schedule.
    pub schedule: ProposerSchedule,
    /// The messages of `height` this validator signed before a restart (from its WAL),
    /// which the core gets back when the height starts.
    pub restored: Vec<Message>,
    /// Whether budget rounds are under way (see [`Stored::rounds_pending`]).
    pub rounds_pending: bool,
    /// Candidate blocks of `height` kept across the restart: the block this validator
    /// proposed or precommitted last, so that its restored proposal, or the proposal of
    /// its restored lock, can be sent again with it.
    pub blocks: Vec<(Hash, B)>,
}

/// What the driver asks to be done, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<P, B> {
    /// Make these messages of `height` durable (one write, one sync) before carrying out
    /// any later action.
    Persist {
        height: Height,
        messages: Vec<Message>,
    },
    /// Send a consensus message to the validators; a proposal goes with its block.
    Broadcast { message: Message, body: Option<B> },
    /// Tell peers this node's latest height.
    Status(Height),
    /// Send evidence of equivocation to peers.
    Evidence(Evidence),
    /// Build a block to propose at `height`, `round`, with this evidence; answer with
    /// [`Event::Built`].
    Build {
        height: Height,
        round: Round,
        evidence: Vec<Evidence>,
    },
    /// Check and execute this candidate block; answer with [`Event::Checked`].
    Check {
        height: Height,
        block: Hash,
        body: B,
    },
    /// Store this decided block with its commit; answer with [`Event::Committed`].
    Commit {
        height: Height,
        block: Hash,
        body: B,
        commit: Commit,
    },
    /// Ask `peer` for blocks `from..from + count` with their commits; answer with
    /// [`Event::SyncAnswered`] or [`Event::SyncFailed`].
    RequestSync {
        id: u64,
        peer: P,
        from: Height,
        count: u32,
    },
}

/// Where the driver stands at its height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting to start the height (the pause after a commit, or for work).
    Waiting,
    /// The core is deciding the height.
    Running,
    /// The height is decided; the application is storing the block.
    Committing,
    /// The height is decided on a block this node does not have: waiting for block sync.
    Fetching,
}

/// A block of the height being decided that a proposal named.
#[derive(Debug)]
struct Candidate<B> {
    body: B,
    verdict: Verdict,
}

/// A block proposed for the height after the one being decided.
#[derive(Debug)]
struct Early<B> {
    proposer: PublicKey,
    round: Round,
    block: Hash,
    body: B,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Unchecked,
    Checking,
    Valid,
    Invalid,
}

/// What carrying out one of the core's outputs led to.
#[derive(Debug, PartialEq, Eq)]
enum Carried {
    On,
    /// The height was decided: the outputs after it are stale.
    Decided,
}

/// The node's decisions around the consensus core, without I/O (see the module docs).
#[derive(Debug)]
pub struct Driver<P, B> {
    config: DriverConfig,
    core: Core,
    me: PublicKey,
    /// The height being decided: one past the latest stored.
    height: Height,
    schedule: ProposerSchedule,
    phase: Phase,
    /// In [`Phase::Waiting`]: the height starts at `committed_at` if there is something
    /// to decide, at `start_at` if only budget rounds need heights, at `idle_until` anyway.
    start_at: Millis,
    committed_at: Millis,
    /// When the last height started by this node's own clock, if it paces the next one
    /// (not after block sync, where the node is behind and moves on at once).
    paced_from: Option<Millis>,
    idle_until: Millis,
    /// A validator's message for `height` arrived: another validator has started it.
    height_seen: bool,
    /// A validator's message for the next height arrived while this one was being decided
    /// or stored.
    next_seen: bool,
    /// The last block stored held nothing (see [`Stored::empty`]).
    last_empty: bool,
    /// Budget rounds are under way, whose phases run by height: heights must keep coming.
    rounds_pending: bool,
    txs_waiting: bool,
    candidates: HashMap<Hash, Candidate<B>>,
    /// Blocks proposed for the next height while this one is still being decided or
    /// stored (a proposer that moved on first does not wait): each with its proposer and
    /// round, kept as candidates once the next height's schedule shows them due.
    early: Vec<Early<B>>,
    /// Blocks the core asked to check before they arrived.
    awaiting_check: HashSet<Hash>,
    /// What this validator sent at `height`, sent again while the height is undecided:
    /// its own messages, and the others' prevotes that prove the lock its proposal names.
    /// After a restart, the messages of its WAL, handed to the core when it starts.
    own: Vec<Message>,
    evidence: Vec<Evidence>,
    timers: Timers,
    /// When this validator last sent one of its proposals.
    proposal_sent_at: Option<Millis>,
    /// Gossip ticks since the status was last sent.
    status_ticks: u32,
    sync: BlockSync<P>,
}

impl<P: Copy + Ord + std::fmt::Debug, B: Clone> Driver<P, B> {
    /// A driver that resumes where the store and the WAL stand, at `now`.
    pub fn new(
        config: DriverConfig,
        chain_id: acta_ledger::ChainId,
        key: Keypair,
        resume: Resume<B>,
        now: Millis,
    ) -> Self {
        let me = key.public();
        let Resume {
            height,
            schedule,
            restored,
            rounds_pending,
            blocks,
        } = resume;
        let candidates = blocks
            .into_iter()
            .map(|(hash, body)| {
                let verdict = Verdict::Unchecked;
                (hash, Candidate { body, verdict })
            })
            .collect();
        Driver {
            core: Core::new(config.consensus, chain_id, key),
            me,
            height,
            schedule,
            phase: Phase::Waiting,
            start_at: now,
            committed_at: now,
            paced_from: None,
            idle_until: now + config.empty_block_interval_ms,
            height_seen: false,
            next_seen: false,
            last_empty: false,
            rounds_pending,
            txs_waiting: false,
            candidates,
            early: Vec::new(),
            awaiting_check: HashSet::new(),
            own: restored,
            evidence: Vec::new(),
            timers: Timers::default(),
            proposal_sent_at: None,
            status_ticks: 0,
            sync: BlockSync::new(),
            config,
        }
    }

    /// The height being decided.
    pub fn height(&self) -> Height {
        self.height
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The round the core is in, while it runs.
    pub fn round(&self) -> Option<Round> {
        (self.phase == Phase::Running).then(|| self.core.round())
    }

    /// New pauses between heights (SIGHUP), from the next height on.
    pub fn set_intervals(
        &mut self,
        block_interval_ms: u64,
        empty_block_interval_ms: u64,
        min_height_ms: u64,
    ) {
        self.config.block_interval_ms = block_interval_ms;
        self.config.empty_block_interval_ms = empty_block_interval_ms;
        self.config.min_height_ms = min_height_ms;
    }

    /// The validators heard from at the height being decided (none unless it runs).
    pub fn heard(&self) -> std::collections::BTreeSet<acta_ledger::ValidatorIndex> {
        if self.phase == Phase::Running {
            self.core.heard()
        } else {
            Default::default()
        }
    }

    pub fn schedule(&self) -> &ProposerSchedule {
        &self.schedule
    }

    /// Whether a peer is at or past the height being decided.
    pub fn behind(&self) -> bool {
        self.sync.behind(self.height)
    }

    /// The height at which a block fetched by sync may be applied now: the height being
    /// decided, unless its own block is being stored.
    pub fn syncable(&self) -> Option<Height> {
        (self.phase != Phase::Committing).then_some(self.height)
    }

    /// A candidate block of the height being decided.
    pub fn candidate(&self, block: &Hash) -> Option<&B> {
        self.candidates.get(block).map(|c| &c.body)
    }

    /// Whether this driver would keep the block of this proposal (its signer proposes that
    /// round of the height being decided, or of the next), room permitting: what is worth
    /// fetching for it.
    pub fn wants_block_of(&self, proposal: &SignedProposal) -> bool {
        let p = &proposal.proposal;
        // Rounds far ahead are dropped by the core too; bounding them first keeps the
        // proposer lookup (linear in the round) cheap.
        let current = self.round().map_or(0, |r| r.0);
        if p.height == self.height.next() {
            // The next height's schedule is known once this height is stored; until then
            // the proposer is checked against the schedule it has if the validator set
            // does not change (it almost never does; if it does, the block is dropped when
            // the height starts and fetched as a late one would be).
            return p.round.0 <= self.config.consensus.future_rounds_max
                && self
                    .schedule
                    .next_height(self.schedule.validators().clone())
                    .proposer_key(p.round.0)
                    == proposal.proposer;
        }
        p.height == self.height
            && matches!(self.phase, Phase::Waiting | Phase::Running)
            && p.round.0 <= current.saturating_add(self.config.consensus.future_rounds_max)
            && self
                .schedule
                .validators()
                .index_of(&proposal.proposer)
                .is_some()
            && self.schedule.proposer_key(p.round.0) == proposal.proposer
    }

    /// The block of a proposal this driver keeps, of the height being decided or the next.
    pub fn proposed(&self, block: &Hash) -> Option<&B> {
        self.candidate(block).or_else(|| {
            self.early
                .iter()
                .find(|e| e.block == *block)
                .map(|e| &e.body)
        })
    }

    /// When the driver next needs an [`Event::Tick`], if ever.
    pub fn next_deadline(&self) -> Option<Millis> {
        let timer = self.timers.next();
        let start = match self.phase {
            Phase::Waiting if self.has_work() => Some(self.start_due()),
            Phase::Waiting => Some(self.start_due().max(self.idle_until)),
            Phase::Running | Phase::Committing | Phase::Fetching => None,
        };
        match (timer, start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the next height has something to decide: transactions, evidence, a budget
    /// round under way, this validator's own messages restored from its WAL, or another
    /// validator already at it.
    fn has_work(&self) -> bool {
        self.rounds_pending || self.has_work_now()
    }

    /// Whether the next height has something to decide already (all but budget rounds,
    /// which only need heights to keep coming).
    fn has_work_now(&self) -> bool {
        self.txs_waiting || self.due_at_once()
    }

    /// Work that starts the next height as soon as the last is committed, whatever
    /// `min_height_ms`: evidence, restored own messages, another validator at the height.
    fn due_at_once(&self) -> bool {
        !self.evidence.is_empty() || !self.own.is_empty() || self.height_seen
    }

    /// When the next height starts, given work: when there is something to decide, as
    /// soon as the last is committed, but not before `min_height_ms` after the last
    /// started when only transactions wait (a height under load takes longer than that
    /// and is followed at once, so blocks grow with the load; a light load gathers into
    /// fewer heights); at the pace of `block_interval_ms` when only budget rounds need
    /// heights or the last block held nothing.
    fn start_due(&self) -> Millis {
        if self.has_work_now() && !self.last_empty {
            match self.paced_from {
                Some(started) if !self.due_at_once() => self
                    .committed_at
                    .max(started.saturating_add(self.config.min_height_ms)),
                _ => self.committed_at,
            }
        } else {
            self.start_at
        }
    }

    /// Decides on one event; the actions are to be carried out in order.
    pub fn on(&mut self, now: Millis, event: Event<P, B>) -> Vec<Action<P, B>> {
        let mut out = Vec::new();
        match event {
            Event::Tick => self.on_tick(now, &mut out),
            Event::GossipTick => self.on_gossip_tick(now, &mut out),
            Event::TxsWaiting(waiting) => self.txs_waiting = waiting,
            Event::Message(m) => self.on_message(now, m, &mut out),
            Event::Proposal { proposal, body } => self.on_proposal(now, proposal, body, &mut out),
            Event::Built {
                height,
                round,
                block,
                body,
            } => {
                if height == self.height && self.phase == Phase::Running {
                    self.candidates.insert(
                        block,
                        Candidate {
                            body,
                            verdict: Verdict::Valid,
                        },
                    );
                    self.run_core(
                        now,
                        Input::ProposeBlock {
                            height,
                            round,
                            block,
                        },
                        &mut out,
                    );
                }
            }
            Event::Checked {
                height,
                block,
                valid,
            } => {
                if height != self.height {
                    return out;
                }
                if let Some(c) = self.candidates.get_mut(&block) {
                    c.verdict = if valid {
                        Verdict::Valid
                    } else {
                        Verdict::Invalid
                    };
                }
                if self.phase == Phase::Running {
                    self.run_core(
                        now,
                        Input::BlockChecked {
                            height,
                            block,
                            valid,
                        },
                        &mut out,
                    );
                }
            }
            Event::Committed(stored) => self.on_committed(now, stored, &mut out),
            Event::Evidence(e) => {
                if !self.evidence.contains(&e) && self.evidence.len() < EVIDENCE_MAX {
                    self.evidence.push(e);
                }
            }
            Event::PeerStatus { peer, height } => {
                self.sync
                    .on_status(now, self.height, peer, height, &mut out);
            }
            Event::PeerGone(peer) => self.sync.on_gone(&peer),
            Event::SyncAnswered { id, peer, blocks } => {
                self.sync
                    .on_answer(now, self.height, id, peer, blocks, &mut out);
            }
            Event::SyncFailed { id } => self.sync.on_failure(id),
        }
        out
    }

    fn on_tick(&mut self, now: Millis, out: &mut Vec<Action<P, B>>) {
        if self.phase == Phase::Waiting
            && self.start_due() <= now
            && (self.has_work() || self.idle_until <= now)
        {
            self.start_height(now, out);
        }
        while let Some(timeout) = self.timers.pop_due(now) {
            if timeout.height == self.height && self.phase == Phase::Running {
                self.run_core(now, Input::Timeout(timeout), out);
            }
        }
    }

    fn start_height(&mut self, now: Millis, out: &mut Vec<Action<P, B>>) {
        self.phase = Phase::Running;
        self.paced_from = Some(now);
        let wal = std::mem::take(&mut self.own);
        debug!(
            height = %self.height,
            restored = wal.len(),
            txs = self.txs_waiting,
            evidence = self.evidence.len(),
            rounds = self.rounds_pending,
            seen = self.height_seen,
            "starting height"
        );
        // The core replays what it buffered for this height.
        let input = Input::StartHeight {
            height: self.height,
            schedule: self.schedule.clone(),
            wal,
        };
        self.run_core(now, input, out);
    }

    /// Hands the core an input and turns what it answers into actions, in rounds: what
    /// the core answered at once, then what it answered to those. Each round's messages to
    /// persist go first, in one [`Action::Persist`].
    fn run_core(&mut self, now: Millis, input: Input, out: &mut Vec<Action<P, B>>) {
        let mut next = self.core.on(input);
        while !next.is_empty() {
            let mut persist = Vec::new();
            let mut round = Vec::with_capacity(next.len());
            for output in std::mem::take(&mut next) {
                match output {
                    Output::Persist(m) => persist.push(m),
                    other => round.push(other),
                }
            }
            if !persist.is_empty() {
                out.push(Action::Persist {
                    height: self.height,
                    messages: persist,
                });
            }
            for output in round {
                if self.carry(now, output, &mut next, out) == Carried::Decided {
                    // The rest belongs to the height just decided.
                    return;
                }
            }
        }
    }

    /// Turns one output other than `Persist` into actions; what the core answers at once
    /// goes to `next`.
    fn carry(
        &mut self,
        now: Millis,
        output: Output,
        next: &mut Vec<Output>,
        out: &mut Vec<Action<P, B>>,
    ) -> Carried {
        match output {
            // Made durable with its round, before this.
            Output::Persist(_) => {}
            Output::Broadcast(m) => {
                if !self.own.contains(&m) {
                    self.own.push(m.clone());
                }
                self.broadcast(now, m, out);
            }
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => self.timers.set(now.saturating_add(duration_ms), timeout),
            Output::GetValue { height, round } => out.push(Action::Build {
                height,
                round,
                evidence: self.evidence_for(height),
            }),
            Output::CheckBlock { height, block, .. } => match self.candidates.get_mut(&block) {
                None => {
                    self.awaiting_check.insert(block);
                }
                Some(c) => match c.verdict {
                    Verdict::Valid | Verdict::Invalid => {
                        next.extend(self.core.on(Input::BlockChecked {
                            height,
                            block,
                            valid: c.verdict == Verdict::Valid,
                        }))
                    }
                    Verdict::Checking => {}
                    Verdict::Unchecked => {
                        c.verdict = Verdict::Checking;
                        out.push(Action::Check {
                            height,
                            block,
                            body: c.body.clone(),
                        });
                    }
                },
            },
            Output::Decide {
                height,
                round,
                block,
                commit,
            } => {
                info!(height = %height, round = round.0, block = %block, "decided");
                self.timers.clear();
                match self.candidates.remove(&block) {
                    Some(c) => {
                        self.phase = Phase::Committing;
                        out.push(Action::Commit {
                            height,
                            block,
                            body: c.body,
                            commit,
                        });
                    }
                    None => {
                        // Decided on a block this node never received: fetch it.
                        warn!(height = %height, "decided a block not received; syncing it");
                        self.phase = Phase::Fetching;
                        self.sync.request(now, self.height, None, out);
                    }
                }
                return Carried::Decided;
            }
            Output::Evidence(e) => {
                warn!(offender = %e.offender(), height = %e.height(), "equivocation");
                if !self.evidence.contains(&e) {
                    self.evidence.push(e.clone());
                    out.push(Action::Evidence(e));
                }
            }
        }
        Carried::On
    }

    /// The evidence a block at `height` carries: one piece per offender and height, from
    /// earlier heights, at most a block's worth.
    fn evidence_for(&self, height: Height) -> Vec<Evidence> {
        let mut chosen: Vec<Evidence> = Vec::new();
        for e in &self.evidence {
            let dup = chosen
                .iter()
                .any(|x| x.offender() == e.offender() && x.height() == e.height());
            if !dup && e.height() < height && chosen.len() < acta_ledger::block::BLOCK_EVIDENCE_MAX
            {
                chosen.push(e.clone());
            }
        }
        chosen
    }

    fn broadcast(&mut self, now: Millis, message: Message, out: &mut Vec<Action<P, B>>) {
        let body = match &message {
            Message::Vote(_) => None,
            Message::Proposal(p) => {
                let Some(c) = self.candidates.get(&p.proposal.block) else {
                    warn!(block = %p.proposal.block, "no block for an own proposal");
                    return;
                };
                self.proposal_sent_at = Some(now);
                Some(c.body.clone())
            }
        };
        out.push(Action::Broadcast { message, body });
    }

    fn on_message(&mut self, now: Millis, m: Message, out: &mut Vec<Action<P, B>>) {
        match self.phase {
            Phase::Running | Phase::Fetching => {
                // Another validator has moved on: once this height is stored, the next
                // starts at once here too (the core keeps the message for it).
                if m.height() == self.height.next()
                    && self.schedule.validators().index_of(&m.signer()).is_some()
                {
                    self.next_seen = true;
                }
            }
            // Between heights the core still stands at the last one (or, after a sync,
            // further back): it keeps messages of its next height in its bounded,
            // per-signer buffer and replays them when the height starts. Only messages of
            // the height about to start are worth that.
            Phase::Waiting => {
                if m.height() != self.height {
                    return;
                }
                if self.schedule.validators().index_of(&m.signer()).is_some() {
                    self.height_seen = true;
                }
            }
            Phase::Committing => {
                if m.height() != self.height.next() {
                    return;
                }
                // The set of the next height is this one's but for a change two heights
                // on; at worst the next height starts a pause early or late.
                if self.schedule.validators().index_of(&m.signer()).is_some() {
                    self.next_seen = true;
                }
            }
        }
        self.run_core(now, Input::Message(m), out);
    }

    fn on_proposal(
        &mut self,
        now: Millis,
        proposal: SignedProposal,
        body: B,
        out: &mut Vec<Action<P, B>>,
    ) {
        // Keep the block only if its signer proposes that round: anyone else's proposal is
        // ignored by the core, and its block would only take memory.
        let p = &proposal.proposal;
        let hash = p.block;
        let wanted = self.wants_block_of(&proposal);
        if p.height == self.height.next() {
            // One block a round, the first seen, as the core keeps one proposal a round.
            let early = wanted
                && self.early.len() < CANDIDATES_MAX
                && !self.early.iter().any(|e| e.round == p.round);
            if early {
                self.early.push(Early {
                    proposer: proposal.proposer,
                    round: p.round,
                    block: hash,
                    body,
                });
            }
            self.on_message(now, Message::Proposal(proposal), out);
            return;
        }
        let keep = wanted
            && (self.candidates.contains_key(&hash) || self.candidates.len() < CANDIDATES_MAX);
        if keep {
            let c = self.candidates.entry(hash).or_insert(Candidate {
                body,
                verdict: Verdict::Unchecked,
            });
            if self.awaiting_check.remove(&hash) && c.verdict == Verdict::Unchecked {
                c.verdict = Verdict::Checking;
                out.push(Action::Check {
                    height: self.height,
                    block: hash,
                    body: c.body.clone(),
                });
            }
        }
        self.on_message(now, Message::Proposal(proposal), out);
    }

    fn on_committed(&mut self, now: Millis, stored: Stored, out: &mut Vec<Action<P, B>>) {
        if stored.height != self.height {
            warn!(
                height = %stored.height,
                expected = %self.height,
                "a stored block is not of the height being decided; ignored"
            );
            return;
        }
        self.evidence.retain(|e| !stored.evidence.contains(e));
        self.height = stored.height.next();
        self.schedule = stored.schedule;
        self.phase = Phase::Waiting;
        self.candidates.clear();
        for e in std::mem::take(&mut self.early) {
            if self.schedule.proposer_key(e.round.0) == e.proposer {
                self.candidates.insert(
                    e.block,
                    Candidate {
                        body: e.body,
                        verdict: Verdict::Unchecked,
                    },
                );
            }
        }
        self.awaiting_check.clear();
        self.own.clear();
        self.timers.clear();
        self.proposal_sent_at = None;
        // Behind, the node moves on at once.
        self.committed_at = now;
        if stored.synced {
            self.paced_from = None;
        }
        self.start_at = if stored.synced {
            now
        } else {
            now + self.config.block_interval_ms
        };
        self.idle_until = now + self.config.empty_block_interval_ms;
        self.height_seen = std::mem::take(&mut self.next_seen);
        self.last_empty = stored.empty;
        self.rounds_pending = stored.rounds_pending;
        // Tell peers at once, so that those behind fetch the block.
        out.push(Action::Status(stored.height));
    }

    /// Sends this validator's messages of the undecided height again, and its status, so
    /// that peers that missed them (or restarted) get them; asks for blocks if behind.
    ///
    /// A proposal carries its whole block, so it is sent again less often: only once it
    /// has gone unanswered for [`PROPOSAL_RESEND_TICKS`] ticks.
    fn on_gossip_tick(&mut self, now: Millis, out: &mut Vec<Action<P, B>>) {
        if self.phase == Phase::Running {
            let resend_after = self.config.gossip_interval_ms * PROPOSAL_RESEND_TICKS;
            let proposal_due = self
                .proposal_sent_at
                .is_none_or(|at| now.saturating_sub(at) >= resend_after);
            for m in self.own.clone() {
                // A proof of lock goes with its proposal.
                let with_proposal = match &m {
                    Message::Proposal(_) => true,
                    Message::Vote(v) => v.validator != self.me,
                };
                if proposal_due || !with_proposal {
                    self.broadcast(now, m, out);
                }
            }
        }
        self.status_ticks += 1;
        if self.phase == Phase::Running || self.has_work() || self.status_ticks >= IDLE_STATUS_TICKS
        {
            self.status_ticks = 0;
            out.push(Action::Status(Height(self.height.0 - 1)));
        }
        self.sync.on_tick(now, self.height, out);
    }
}

#[cfg(test)]
mod tests;
