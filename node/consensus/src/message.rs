//! What goes into the core and what comes out.

use acta_ledger::{Commit, Evidence, Hash, Height, Round, SignedProposal, SignedVote};

use crate::ProposerSchedule;

/// A consensus message between validators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Proposal(SignedProposal),
    Vote(SignedVote),
}

impl Message {
    pub fn height(&self) -> Height {
        match self {
            Message::Proposal(p) => p.proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    pub fn signer(&self) -> acta_ledger::PublicKey {
        match self {
            Message::Proposal(p) => p.proposer,
            Message::Vote(v) => v.validator,
        }
    }

    /// The block whose body `me` must still hold after a restart to act on this message
    /// of its own again: its proposal's block, or its precommit's (a lock it proposes
    /// again in its rounds, when no other validator may hold that block).
    pub fn own_block(&self, me: &acta_ledger::PublicKey) -> Option<Hash> {
        match self {
            Message::Proposal(p) if p.proposer == *me => Some(p.proposal.block),
            Message::Vote(v)
                if v.validator == *me && v.vote.kind == acta_ledger::VoteKind::Precommit =>
            {
                v.vote.block
            }
            _ => None,
        }
    }
}

/// The step of a round that a timeout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutStep {
    Propose,
    Prevote,
    Precommit,
}

/// A timeout the driver schedules and hands back when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    pub height: Height,
    pub round: Round,
    pub step: TimeoutStep,
}

/// An input to the core.
///
/// The caller checks the signature of every proposal, vote and commit before handing it in
/// (the node checks each one as it arrives); the core checks everything else.
#[derive(Clone, Debug)]
pub enum Input {
    /// Begin `height` with its validators and proposer schedule. `wal` holds the messages
    /// this validator already signed at this height (after a restart), so that it never signs
    /// a conflicting one; it is empty on a fresh start.
    StartHeight {
        height: Height,
        schedule: ProposerSchedule,
        wal: Vec<Message>,
    },
    /// A message from another validator (or the same one, echoed).
    Message(Message),
    /// A timeout that the core scheduled has expired.
    Timeout(Timeout),
    /// The application's answer to [`Output::CheckBlock`]. `valid: false` means the block
    /// was fetched and is invalid; the verdict is final for the height. An application that
    /// cannot fetch the block yet must keep trying rather than answer `false`.
    BlockChecked {
        height: Height,
        block: Hash,
        valid: bool,
    },
    /// The application's answer to [`Output::GetValue`]: a block to propose.
    ProposeBlock {
        height: Height,
        round: Round,
        block: Hash,
    },
    /// A commit certificate for the current height obtained by block sync. The core checks
    /// it against the height's validators (signatures, distinct signers, quorum).
    Commit(Commit),
}

/// An output of the core, to be carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write this message durably to the write-ahead log; it must be durable before any
    /// later output is carried out. It is either signed by this validator, or another
    /// validator's prevote that justifies this validator's lock (its proof of lock), which
    /// must survive a restart with the lock.
    Persist(Message),
    /// Send this message to all validators: one this validator signed, or, after its
    /// proposal that names a proof-of-lock round, another validator's prevote of that proof.
    Broadcast(Message),
    /// Hand back `Input::Timeout(timeout)` after `duration_ms`.
    ScheduleTimeout { timeout: Timeout, duration_ms: u64 },
    /// This validator proposes in `round`: answer with `Input::ProposeBlock`.
    GetValue { height: Height, round: Round },
    /// Fetch (if needed) and check the block with this hash: answer with
    /// `Input::BlockChecked`.
    CheckBlock {
        height: Height,
        round: Round,
        block: Hash,
    },
    /// `block` is decided at `height`, certified by `commit`. The core waits for
    /// `Input::StartHeight` of the next height.
    Decide {
        height: Height,
        round: Round,
        block: Hash,
        commit: Commit,
    },
    /// A validator signed two conflicting messages.
    Evidence(Evidence),
}
