//! A deterministic simulator of a network of consensus cores.
//!
//! N validators (4 to 31, equal or unequal stake) run the node's own driver
//! ([`acta_node::driver::Driver`], around [`acta_consensus::Core`]) on a virtual clock, with
//! a simulated network, application and store. A seeded network delays, drops, duplicates
//! and reorders messages, partitions and heals; honest validators crash (at a WAL write,
//! before the sends after it) and restart from their write-ahead log; Byzantine
//! validators (less than a third of the power, unless a test asks for more) equivocate,
//! propose conflicting blocks, stay silent, or vanish for good while sending a prevote.
//! Every network fault stops at `heal_at_ms`. Nothing is relayed: as in the node, a
//! validator sends only its own messages (again, until its height is decided) and the
//! proof of lock of its proposals.
//!
//! [`checker`] then checks, with its own code rather than the core's: agreement, validity,
//! commit certificates, no double-signing by honest validators, and progress after healing.
//! The same seed always gives the same run, down to a hash of every event ([`SimReport::trace`]).

pub mod checker;
mod world;

use std::fmt;

use acta_ledger::Hash;

pub use checker::Violation;
pub use world::run;

/// How stake is spread over the validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stake {
    /// Power 1 each.
    Equal,
    /// Power 1 to 10, drawn from the seed.
    Unequal,
}

/// What the Byzantine validators do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByzantineKind {
    /// Runs two honest cores under one key, each talking to its own half of the network, so
    /// it signs conflicting votes and proposals; some of them leak to the other half.
    Equivocate,
    /// Votes honestly, but as proposer sends different blocks to the two halves.
    ConflictingProposer,
    /// Never sends anything.
    Silent,
    /// Votes honestly, but as proposer proposes blocks that are invalid.
    InvalidProposer,
    /// Votes honestly until, at a time drawn from the seed, it crashes for good while
    /// sending a prevote for a block: the prevote reaches one validator only. Whoever it
    /// completes a proof of lock for holds the only proof the others can ever see.
    Vanishing,
}

/// Which faults the network injects before it heals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faults {
    /// Per mille of messages dropped.
    pub drop_per_mille: u32,
    /// Per mille of messages delivered twice.
    pub duplicate_per_mille: u32,
    /// Largest delay of a message, in ms (the smallest is 1).
    pub delay_ms_max: u64,
    /// Split the honest validators in two for a while.
    pub partition: bool,
    /// Crash one honest validator for a while and restart it from its log.
    pub crash: bool,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop_per_mille: 0,
        duplicate_per_mille: 0,
        delay_ms_max: 20,
        partition: false,
        crash: false,
    };
    pub const LOSSY: Faults = Faults {
        drop_per_mille: 150,
        duplicate_per_mille: 50,
        delay_ms_max: 400,
        partition: false,
        crash: false,
    };
    pub const PARTITION: Faults = Faults {
        partition: true,
        ..Faults::NONE
    };
    pub const CRASH: Faults = Faults {
        crash: true,
        ..Faults::NONE
    };
    pub const CHAOS: Faults = Faults {
        drop_per_mille: 100,
        duplicate_per_mille: 50,
        delay_ms_max: 300,
        partition: true,
        crash: true,
    };

    /// The named mixes, in the order `mixed` cycles through them.
    pub const NAMED: [(&'static str, Faults); 5] = [
        ("none", Faults::NONE),
        ("lossy", Faults::LOSSY),
        ("partition", Faults::PARTITION),
        ("crash", Faults::CRASH),
        ("chaos", Faults::CHAOS),
    ];
}

/// One simulation's setup; with a seed it determines the run completely.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub validators: usize,
    pub stake: Stake,
    pub byzantine: usize,
    pub byzantine_kind: ByzantineKind,
    pub faults: Faults,
    /// Heights every honest validator must decide.
    pub heights: u64,
    /// Virtual time at which every fault stops.
    pub heal_at_ms: u64,
    /// After healing, every honest validator must decide two more heights (and at least
    /// `heights` in all) within this virtual time.
    pub progress_bound_ms: u64,
    /// The proposer of height 1, round 0 is down from the start and never returns (it counts
    /// as the one faulty validator, instead of `byzantine`).
    pub crash_first_proposer: bool,
    /// Allows Byzantine power of a third or more: for tests that show the checker finds the
    /// violations that follow.
    pub allow_byzantine_third: bool,
    pub consensus: acta_consensus::Config,
}

impl SimConfig {
    /// Timeouts scaled to the simulated network's delays.
    pub fn sim_consensus_config() -> acta_consensus::Config {
        acta_consensus::Config {
            timeout_propose_ms: 300,
            timeout_prevote_ms: 100,
            timeout_precommit_ms: 100,
            timeout_delta_ms: 50,
            ..acta_consensus::Config::default()
        }
    }

    pub fn new(validators: usize) -> SimConfig {
        SimConfig {
            validators,
            stake: Stake::Equal,
            byzantine: 0,
            byzantine_kind: ByzantineKind::Equivocate,
            faults: Faults::NONE,
            heights: 3,
            heal_at_ms: 1_500,
            progress_bound_ms: 30_000,
            crash_first_proposer: false,
            allow_byzantine_third: false,
            consensus: Self::sim_consensus_config(),
        }
    }
}

/// What one run did.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    /// The lowest height decided by every honest validator.
    pub heights_decided: u64,
    /// For each decided height (by the first honest validator to decide it), its round.
    pub decision_rounds: Vec<u32>,
    pub messages_delivered: u64,
    pub evidence_seen: u64,
    pub virtual_time_ms: u64,
    /// Virtual time of the first decision of height 1.
    pub first_decision_ms: Option<u64>,
    pub violations: Vec<Violation>,
    /// A hash of every event in order: equal for equal seeds and configurations.
    pub trace: Hash,
}

impl fmt::Display for Stake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stake::Equal => "equal",
            Stake::Unequal => "unequal",
        })
    }
}

impl fmt::Display for ByzantineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ByzantineKind::Equivocate => "equivocate",
            ByzantineKind::ConflictingProposer => "conflicting-proposer",
            ByzantineKind::Silent => "silent",
            ByzantineKind::InvalidProposer => "invalid-proposer",
            ByzantineKind::Vanishing => "vanishing",
        })
    }
}
