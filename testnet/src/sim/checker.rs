//! Checks a simulation's log for safety and liveness violations.
//!
//! Written apart from the consensus core on purpose: it shares no helper with it, counts
//! power itself, and checks signatures with the ledger's plain Ed25519 verification, so a
//! bug in the core's tallies cannot hide the violations it would cause.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use acta_consensus::Message;
use acta_ledger::{
    crypto::{signing_bytes, Domain},
    ChainId, Commit, Evidence, Hash, Height, PublicKey, Round, ValidatorSet, VoteKind,
};

/// A decision by an honest validator.
#[derive(Clone, Debug)]
pub struct Decision {
    pub node: usize,
    pub height: Height,
    pub round: Round,
    pub block: Hash,
    pub commit: Commit,
    pub at_ms: u64,
}

/// What a run recorded, for the checker.
#[derive(Debug)]
pub struct Log {
    pub chain_id: ChainId,
    pub validators: ValidatorSet,
    pub honest: BTreeSet<PublicKey>,
    pub decisions: Vec<Decision>,
    /// Every message an honest validator signed (from its write-ahead log).
    pub signed: Vec<(usize, Message)>,
    /// Every block an application proposed, with its height and validity.
    pub proposed: BTreeMap<Hash, (Height, bool)>,
    pub evidence: Vec<(usize, Evidence)>,
    pub target: Height,
    pub deadline_ms: u64,
    pub final_heights: Vec<(usize, Height)>,
}

impl Log {
    pub fn new(chain_id: ChainId, validators: ValidatorSet, honest: BTreeSet<PublicKey>) -> Log {
        Log {
            chain_id,
            validators,
            honest,
            decisions: Vec::new(),
            signed: Vec::new(),
            proposed: BTreeMap::new(),
            evidence: Vec::new(),
            target: Height(0),
            deadline_ms: 0,
            final_heights: Vec::new(),
        }
    }
}

/// A broken property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators decided different blocks at one height.
    Agreement {
        height: Height,
        first: (usize, Hash),
        second: (usize, Hash),
    },
    /// An honest validator decided a block no one proposed for that height, or an invalid one.
    Validity {
        node: usize,
        height: Height,
        block: Hash,
    },
    /// A decision's commit certificate does not certify it.
    BadCommit {
        node: usize,
        height: Height,
        reason: String,
    },
    /// An honest validator signed two different messages for one height, round and step.
    DoubleSign {
        node: usize,
        height: Height,
        round: Round,
        step: &'static str,
    },
    /// Evidence that does not verify, or that accuses an honest validator.
    FalseEvidence { reporter: usize, reason: String },
    /// An honest validator did not reach the target height by the deadline.
    NoProgress {
        node: usize,
        reached: Height,
        target: Height,
        deadline_ms: u64,
    },
    /// The run panicked.
    Panic { message: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement { height, first, second } => write!(
                f,
                "agreement: at height {height} validator {} decided {} and validator {} decided {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::Validity { node, height, block } => {
                write!(f, "validity: validator {node} decided {block} at height {height}, which is invalid or was never proposed there")
            }
            Violation::Panic { message } => write!(f, "panic: {message}"),
            Violation::BadCommit { node, height, reason } => {
                write!(f, "commit: validator {node} at height {height}: {reason}")
            }
            Violation::DoubleSign { node, height, round, step } => {
                write!(f, "double sign: honest validator {node} signed two {step}s at height {height} round {round}")
            }
            Violation::FalseEvidence { reporter, reason } => {
                write!(f, "evidence from validator {reporter}: {reason}")
            }
            Violation::NoProgress { node, reached, target, deadline_ms } => write!(
                f,
                "progress: validator {node} reached height {reached}, not {target}, by {deadline_ms} ms"
            ),
        }
    }
}

/// Checks everything; returns every violation found.
pub fn check(log: &Log) -> Vec<Violation> {
    let mut v = Vec::new();
    agreement_and_validity(log, &mut v);
    commits(log, &mut v);
    double_signing(log, &mut v);
    evidence(log, &mut v);
    progress(log, &mut v);
    v
}

fn agreement_and_validity(log: &Log, out: &mut Vec<Violation>) {
    let mut first: BTreeMap<Height, (usize, Hash)> = BTreeMap::new();
    for d in &log.decisions {
        match first.get(&d.height) {
            None => {
                first.insert(d.height, (d.node, d.block));
            }
            Some(&(node, block)) if block != d.block => out.push(Violation::Agreement {
                height: d.height,
                first: (node, block),
                second: (d.node, d.block),
            }),
            Some(_) => {}
        }
        if log.proposed.get(&d.block) != Some(&(d.height, true)) {
            out.push(Violation::Validity {
                node: d.node,
                height: d.height,
                block: d.block,
            });
        }
    }
}

fn commits(log: &Log, out: &mut Vec<Violation>) {
    let total: u64 = log.validators.validators().iter().map(|v| v.power.0).sum();
    // Commits repeat across validators; check each distinct one once.
    let mut seen: BTreeMap<Hash, Option<String>> = BTreeMap::new();
    for d in &log.decisions {
        let id = Hash::of(&d.commit);
        let verdict = seen
            .entry(id)
            .or_insert_with(|| commit_problem(log, &d.commit, total))
            .clone();
        let mismatch =
            (d.commit.height != d.height || d.commit.block != d.block || d.commit.round != d.round)
                .then(|| "the commit is for another decision".to_string());
        if let Some(reason) = verdict.or(mismatch) {
            out.push(Violation::BadCommit {
                node: d.node,
                height: d.height,
                reason,
            });
        }
    }
}

fn commit_problem(log: &Log, c: &Commit, total: u64) -> Option<String> {
    let payload = (c.height, c.round, Some(c.block));
    let message = signing_bytes(Domain::Precommit, &log.chain_id, &payload);
    let mut signers = BTreeSet::new();
    let mut power = 0u64;
    for s in &c.signatures {
        let Some(v) = log.validators.validators().get(usize::from(s.validator.0)) else {
            return Some(format!("signer index {} is not a validator", s.validator));
        };
        if !signers.insert(s.validator) {
            return Some(format!("validator {} signed twice", s.validator));
        }
        if v.public_key.verify_raw(&message, &s.signature).is_err() {
            return Some(format!(
                "signature of validator {} does not verify",
                s.validator
            ));
        }
        power += v.power.0;
    }
    (power * 3 <= total * 2)
        .then(|| format!("signed power {power} of {total} is not more than two thirds"))
}

fn double_signing(log: &Log, out: &mut Vec<Violation>) {
    // (signer, height, round, step) -> the one message content signed there.
    let mut slots: BTreeMap<(usize, Height, Round, &'static str), Vec<u8>> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (node, m) in &log.signed {
        let (step, content) = match m {
            Message::Proposal(p) => ("proposal", acta_ledger::codec::encode(&p.proposal)),
            Message::Vote(v) if v.vote.kind == VoteKind::Prevote => {
                ("prevote", acta_ledger::codec::encode(&v.vote))
            }
            Message::Vote(v) => ("precommit", acta_ledger::codec::encode(&v.vote)),
        };
        let key = (*node, m.height(), m.round(), step);
        match slots.get(&key) {
            None => {
                slots.insert(key, content);
            }
            Some(existing) if *existing != content && reported.insert(key) => {
                out.push(Violation::DoubleSign {
                    node: *node,
                    height: m.height(),
                    round: m.round(),
                    step,
                });
            }
            Some(_) => {}
        }
    }
}

fn evidence(log: &Log, out: &mut Vec<Violation>) {
    for (reporter, e) in &log.evidence {
        match e.verify(&log.chain_id) {
            Err(err) => out.push(Violation::FalseEvidence {
                reporter: *reporter,
                reason: err.to_string(),
            }),
            Ok(offender) if log.honest.contains(&offender) => out.push(Violation::FalseEvidence {
                reporter: *reporter,
                reason: format!("it accuses honest validator {offender}"),
            }),
            Ok(_) => {}
        }
    }
}

fn progress(log: &Log, out: &mut Vec<Violation>) {
    for (node, reached) in &log.final_heights {
        if *reached < log.target {
            out.push(Violation::NoProgress {
                node: *node,
                reached: *reached,
                target: log.target,
                deadline_ms: log.deadline_ms,
            });
        }
    }
}
