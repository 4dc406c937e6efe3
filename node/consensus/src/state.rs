//! Tendermint, Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
//! Milosevic, arXiv:1807.04938), as a synchronous state machine. Comments `// Lnn` cite the
//! paper's line numbers.
//!
//! Values are block hashes: the proposal names a block, the application fetches and checks
//! it (`Output::CheckBlock`, answered by `Input::BlockChecked`), which is the paper's
//! `valid(v)`. After every input the core evaluates the paper's `upon` rules until none
//! fires; "for the first time" rules are remembered per round.
//!
//! Safety does not rest on the rules alone: every message this validator signs is recorded
//! per (round, step), and the core never signs a second, different message for a slot it
//! has signed, even after a restart, because the driver hands the write-ahead log back in
//! `Input::StartHeight`.

use std::collections::{BTreeMap, BTreeSet};

use acta_ledger::{
    light::verify_commit, ChainId, Commit, Evidence, Hash, Height, Keypair, Proposal, PublicKey,
    Round, SignedProposal, SignedVote, ValidatorIndex, ValidatorSet, Vote, VoteKind, VotingPower,
};

use crate::{
    votes::{Added, VoteKeeper},
    Config, Input, Message, Output, ProposerSchedule, Timeout, TimeoutStep,
};

/// The step of the current round (the paper's `step_p`), plus the wait after a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
    /// Decided; waiting for the next height to start.
    Decided,
}

/// A slot in which this validator signs at most one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Proposal,
    Prevote,
    Precommit,
}

/// The rules that fire only once per round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Once {
    /// L34: schedule the prevote timeout.
    PrevoteTimeout,
    /// L36: lock (or update the valid value) on a proposal with a prevote quorum.
    ValidValue,
    /// L47: schedule the precommit timeout.
    PrecommitTimeout,
}

/// One validator's Tendermint state.
#[derive(Debug)]
pub struct Core {
    config: Config,
    chain_id: ChainId,
    key: Keypair,
    me: PublicKey,

    /// `None` until the first `StartHeight`.
    schedule: Option<ProposerSchedule>,
    height: Height,
    round: Round,
    step: Step,
    /// The paper's `lockedRound`/`lockedValue`; `None` is -1/nil.
    locked: Option<(Round, Hash)>,
    /// The paper's `validRound`/`validValue`.
    valid: Option<(Round, Hash)>,

    /// The proposal of each round from that round's proposer (the first one seen).
    proposals: BTreeMap<Round, SignedProposal>,
    votes: VoteKeeper,
    /// The application's verdicts on blocks of this height (`valid(v)`).
    validity: BTreeMap<Hash, bool>,
    check_requested: BTreeSet<Hash>,
    /// Every message this validator signed at this height: the double-signing guard.
    signed: BTreeMap<(Round, Slot), Message>,
    fired: BTreeSet<(Round, Once)>,
    reported_proposals: BTreeSet<Round>,
    /// Proposers of this height's rounds, computed once each.
    proposers: BTreeMap<Round, ValidatorIndex>,
    /// A commit for this height from block sync, waiting for its block to be checked.
    synced_commit: Option<Commit>,
    /// Messages for the next height, kept until it starts.
    next_height: Vec<Message>,
}

impl Core {
    pub fn new(config: Config, chain_id: ChainId, key: Keypair) -> Core {
        let me = key.public();
        Core {
            config,
            chain_id,
            key,
            me,
            schedule: None,
            height: Height(0),
            round: Round(0),
            step: Step::Decided,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            votes: VoteKeeper::default(),
            validity: BTreeMap::new(),
            check_requested: BTreeSet::new(),
            signed: BTreeMap::new(),
            fired: BTreeSet::new(),
            reported_proposals: BTreeSet::new(),
            proposers: BTreeMap::new(),
            synced_commit: None,
            next_height: Vec::new(),
        }
    }

    pub fn height(&self) -> Height {
        self.height
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn step(&self) -> Step {
        self.step
    }

    pub fn locked(&self) -> Option<(Round, Hash)> {
        self.locked
    }

    /// The validators heard from (a vote or a proposal) at this height, in any round: who
    /// is missing, when a height does not end.
    pub fn heard(&self) -> BTreeSet<ValidatorIndex> {
        self.votes
            .rounds()
            .flat_map(|(_, round)| round.senders())
            .collect()
    }

    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    /// Handles one input; returns what the driver must do, in order.
    pub fn on(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight {
                height,
                schedule,
                wal,
            } => self.start_height(height, schedule, wal, &mut out),
            Input::Message(m) => self.on_message(m, &mut out),
            Input::Timeout(t) => self.on_timeout(t, &mut out),
            Input::BlockChecked {
                height,
                block,
                valid,
            } => {
                if height == self.height && self.schedule.is_some() {
                    self.validity.entry(block).or_insert(valid);
                }
            }
            Input::ProposeBlock {
                height,
                round,
                block,
            } => self.on_propose_block(height, round, block, &mut out),
            Input::Commit(commit) => self.on_commit(commit, &mut out),
        }
        self.run_rules(&mut out);
        out
    }

    /// The proposer of `round` at this height.
    fn proposer(&mut self, round: Round) -> ValidatorIndex {
        let schedule = self.schedule.as_ref().expect("started");
        *self
            .proposers
            .entry(round)
            .or_insert_with(|| schedule.proposer(round.0))
    }

    fn is_me(&self, index: ValidatorIndex) -> bool {
        self.validators()
            .get(index)
            .is_some_and(|v| v.public_key == self.me)
    }

    fn validators(&self) -> &ValidatorSet {
        self.schedule.as_ref().expect("started").validators()
    }

    fn is_quorum(&self, power: u64) -> bool {
        self.validators().is_quorum(VotingPower(power))
    }

    fn start_height(
        &mut self,
        height: Height,
        schedule: ProposerSchedule,
        wal: Vec<Message>,
        out: &mut Vec<Output>,
    ) {
        if self.schedule.is_some() && height <= self.height {
            return;
        }
        self.schedule = Some(schedule);
        self.height = height;
        self.round = Round(0);
        self.step = Step::Propose;
        self.locked = None;
        self.valid = None;
        self.proposals.clear();
        self.votes = VoteKeeper::default();
        self.validity.clear();
        self.check_requested.clear();
        self.signed.clear();
        self.fired.clear();
        self.reported_proposals.clear();
        self.proposers.clear();
        self.synced_commit = None;

        // Restore what this validator signed before a restart: it is never signed
        // differently, its precommits restore the lock (L38), and the latest round and step
        // it reached are resumed. Peers may have missed the messages: send them again.
        let mut resume = None;
        let me = self.me;
        let (own, justification): (Vec<Message>, Vec<Message>) = wal
            .into_iter()
            .filter(|m| m.height() == height)
            .partition(|m| m.signer() == me);
        // The prevotes that justified a lock come back as received messages, so that this
        // validator can show its proof of lock again (and gossip re-sends them).
        for m in justification {
            self.accept(m, out);
        }
        for m in own {
            let slot = match &m {
                Message::Proposal(_) => Slot::Proposal,
                Message::Vote(v) if v.vote.kind == VoteKind::Prevote => Slot::Prevote,
                Message::Vote(_) => Slot::Precommit,
            };
            if let Message::Vote(v) = &m {
                if let (VoteKind::Precommit, Some(block)) = (v.vote.kind, v.vote.block) {
                    if self.locked.is_none_or(|(r, _)| v.vote.round > r) {
                        self.locked = Some((v.vote.round, block));
                    }
                }
            }
            let at = (m.round(), slot);
            resume = resume.max(Some(at));
            self.signed.insert(at, m.clone());
            self.accept(m.clone(), out);
            out.push(Output::Broadcast(m));
        }
        // The paper keeps validRound >= lockedRound; the valid value is the locked one.
        self.valid = self.locked;
        match resume {
            None => self.start_round(Round(0), out),
            Some((round, slot)) => {
                self.start_round(round, out);
                self.step = match slot {
                    Slot::Proposal => Step::Propose,
                    Slot::Prevote => Step::Prevote,
                    Slot::Precommit => Step::Precommit,
                };
            }
        }
        // Messages that arrived early for this height.
        let early = std::mem::take(&mut self.next_height);
        for m in early.into_iter().filter(|m| m.height() == height) {
            self.on_message(m, out);
        }
    }

    // L11-21
    fn start_round(&mut self, round: Round, out: &mut Vec<Output>) {
        self.round = round;
        self.step = Step::Propose;
        let proposer = self.proposer(round);
        if self.is_me(proposer) {
            match self.valid {
                // L15-16: propose the valid value with its proof-of-lock round.
                Some((valid_round, block)) => self.sign_proposal(block, Some(valid_round), out),
                // Proposed before a restart (restored from the WAL and sent again): no
                // second block is asked for, it could not be proposed.
                None if self.signed.contains_key(&(round, Slot::Proposal)) => {}
                // L17-18: ask the application for a new block.
                None => out.push(Output::GetValue {
                    height: self.height,
                    round,
                }),
            }
        }
        // L21. The proposer waits too, in case its application does not answer.
        self.schedule_timeout(TimeoutStep::Propose, out);
    }

    fn schedule_timeout(&self, step: TimeoutStep, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                step,
            },
            duration_ms: self.config.timeout_ms(step, self.round.0),
        });
    }

    fn on_message(&mut self, m: Message, out: &mut Vec<Output>) {
        if self.schedule.is_none() || m.height() == self.height.next() {
            self.buffer_next_height(m);
            return;
        }
        if m.height() != self.height {
            return;
        }
        if m.round().0 > self.round.0.saturating_add(self.config.future_rounds_max) {
            return;
        }
        self.accept(m, out);
    }

    /// Keeps a message for the next height: from a current validator (the next height's set
    /// is not known yet, and rarely differs), not twice, and at most a fair share of the
    /// buffer per signer, so no one can crowd the others out.
    fn buffer_next_height(&mut self, m: Message) {
        let validators = self.schedule.as_ref().map_or(1, |s| s.validators().len());
        let member = |s: &ProposerSchedule| s.validators().index_of(&m.signer()).is_some();
        if self.schedule.as_ref().is_some_and(|s| !member(s)) {
            return;
        }
        let share = (self.config.next_height_messages_max / validators).max(1);
        let signer = m.signer();
        if self.next_height.len() >= self.config.next_height_messages_max
            || self
                .next_height
                .iter()
                .filter(|b| b.signer() == signer)
                .count()
                >= share
            || self.next_height.contains(&m)
        {
            return;
        }
        self.next_height.push(m);
    }

    /// Records a message of the current height that passed the checks of `on_message`.
    fn accept(&mut self, m: Message, out: &mut Vec<Output>) {
        let Some(index) = self.validators().index_of(&m.signer()) else {
            return;
        };
        let power = self
            .validators()
            .get(index)
            .expect("index from the set")
            .power
            .0;
        match m {
            Message::Proposal(p) => self.accept_proposal(p, index, power, out),
            Message::Vote(v) => {
                // Beyond the per-validator bound, only votes that can matter are kept: for
                // the block proposed in their round, or for a block proposed later with
                // their round as its proof-of-lock round.
                let round = v.vote.round;
                let proposals = &self.proposals;
                let proposed = |value: Option<Hash>| {
                    value.is_some_and(|b| {
                        proposals.values().any(|p| {
                            p.proposal.block == b
                                && (p.proposal.round == round
                                    || p.proposal.pol_round == Some(round))
                        })
                    })
                };
                if let Added::Conflict(evidence) = self.votes.add(v, index, power, proposed) {
                    out.push(Output::Evidence(*evidence));
                }
            }
        }
    }

    fn accept_proposal(
        &mut self,
        p: SignedProposal,
        index: ValidatorIndex,
        power: u64,
        out: &mut Vec<Output>,
    ) {
        let round = p.proposal.round;
        if self.proposer(round) != index {
            return;
        }
        if p.proposal.pol_round.is_some_and(|vr| vr >= round) {
            return;
        }
        self.votes.note_sender(round, index, power);
        match self.proposals.get(&round) {
            Some(existing) if existing.proposal == p.proposal => {}
            Some(existing) => {
                if self.reported_proposals.insert(round) {
                    out.push(Output::Evidence(Evidence::duplicate_proposal(*existing, p)));
                }
            }
            None => {
                self.proposals.insert(round, p);
                let set = self.validators().clone();
                let power_of = |i: ValidatorIndex| set.get(i).map_or(0, |v| v.power.0);
                self.votes.readmit(round, p.proposal.block, power_of);
                if let Some(vr) = p.proposal.pol_round {
                    self.votes.readmit(vr, p.proposal.block, power_of);
                }
                self.request_check(round, p.proposal.block, out);
            }
        }
    }

    fn request_check(&mut self, round: Round, block: Hash, out: &mut Vec<Output>) {
        if !self.validity.contains_key(&block) && self.check_requested.insert(block) {
            out.push(Output::CheckBlock {
                height: self.height,
                round,
                block,
            });
        }
    }

    fn on_timeout(&mut self, t: Timeout, out: &mut Vec<Output>) {
        if t.height != self.height || t.round != self.round || self.schedule.is_none() {
            return;
        }
        match (t.step, self.step) {
            // L57-60
            (TimeoutStep::Propose, Step::Propose) => {
                self.sign_vote(VoteKind::Prevote, None, out);
                self.step = Step::Prevote;
            }
            // L61-64
            (TimeoutStep::Prevote, Step::Prevote) => {
                self.sign_vote(VoteKind::Precommit, None, out);
                self.step = Step::Precommit;
            }
            // L65-67
            (TimeoutStep::Precommit, step) if step != Step::Decided => {
                self.start_round(Round(self.round.0.saturating_add(1)), out);
            }
            _ => {}
        }
    }

    fn on_propose_block(
        &mut self,
        height: Height,
        round: Round,
        block: Hash,
        out: &mut Vec<Output>,
    ) {
        if self.schedule.is_none()
            || height != self.height
            || round != self.round
            || self.step != Step::Propose
        {
            return;
        }
        let proposer = self.proposer(round);
        if !self.is_me(proposer) {
            return;
        }
        // L19: the proposer's own block is valid by construction.
        self.validity.insert(block, true);
        self.sign_proposal(block, None, out);
    }

    fn on_commit(&mut self, commit: Commit, out: &mut Vec<Output>) {
        if self.schedule.is_none()
            || commit.height != self.height
            || self.step == Step::Decided
            || self.synced_commit.is_some()
        {
            return;
        }
        // The caller checked the signatures already; checking them again here costs little
        // (this is block sync, not the hot path) and means no caller can make the core
        // decide on a commit that does not certify its block.
        let set = self.validators();
        if verify_commit(&self.chain_id, set, &commit, commit.height, &commit.block).is_err() {
            return;
        }
        self.request_check(commit.round, commit.block, out);
        self.synced_commit = Some(commit);
    }

    /// Signs a proposal for the current round, unless one was signed already.
    fn sign_proposal(&mut self, block: Hash, pol_round: Option<Round>, out: &mut Vec<Output>) {
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            block,
            pol_round,
        };
        let slot = (self.round, Slot::Proposal);
        if let Some(existing) = self.signed.get(&slot).cloned() {
            // Signed before a restart: send the same again, never another.
            out.push(Output::Broadcast(existing.clone()));
            if let Message::Proposal(p) = existing {
                self.send_proof_of_lock(p.proposal, out);
            }
            return;
        }
        let signed = proposal.sign(&self.key, &self.chain_id);
        let m = Message::Proposal(signed);
        self.signed.insert(slot, m.clone());
        out.push(Output::Persist(m.clone()));
        out.push(Output::Broadcast(m.clone()));
        self.send_proof_of_lock(proposal, out);
        self.accept(m, out);
    }

    /// Sends, after a proposal that names a proof-of-lock round, the other validators'
    /// prevotes that make it: the paper's liveness assumes every message a correct process
    /// received reaches every other, and without them peers that missed one of those
    /// prevotes (its signer crashed while sending it) would prevote nil for the proposal in
    /// every round this validator proposes, stalling the height for good. (After the
    /// proposal, a receiver keeps them whatever else their signers sent: votes beyond the
    /// per-validator bound are kept for the blocks of proposals it holds.)
    fn send_proof_of_lock(&self, proposal: Proposal, out: &mut Vec<Output>) {
        if let Some(vr) = proposal.pol_round {
            for v in self.proof_of_lock(vr, proposal.block) {
                out.push(Output::Broadcast(Message::Vote(v)));
            }
        }
    }

    /// The other validators' prevotes for `block` in `round`.
    fn proof_of_lock(&self, round: Round, block: Hash) -> Vec<SignedVote> {
        self.votes.round(round).map_or_else(Vec::new, |rv| {
            rv.prevotes
                .votes_for(Some(block))
                .into_iter()
                .filter(|v| v.validator != self.me)
                .collect()
        })
    }

    /// Signs a vote for the current round, unless one of this kind was signed already.
    fn sign_vote(&mut self, kind: VoteKind, block: Option<Hash>, out: &mut Vec<Output>) {
        let slot = match kind {
            VoteKind::Prevote => (self.round, Slot::Prevote),
            VoteKind::Precommit => (self.round, Slot::Precommit),
        };
        if let Some(existing) = self.signed.get(&slot) {
            out.push(Output::Broadcast(existing.clone()));
            return;
        }
        if self.validators().index_of(&self.me).is_none() {
            return;
        }
        let vote = Vote {
            kind,
            height: self.height,
            round: self.round,
            block,
        };
        let m = Message::Vote(vote.sign(&self.key, &self.chain_id));
        self.signed.insert(slot, m.clone());
        out.push(Output::Persist(m.clone()));
        out.push(Output::Broadcast(m.clone()));
        self.accept(m, out);
    }

    fn run_rules(&mut self, out: &mut Vec<Output>) {
        if self.schedule.is_none() {
            return;
        }
        // Each firing changes the state monotonically (a step, a round, a once-flag or a
        // decision), so this ends; the bound only guards against a bug looping forever.
        for _ in 0..10_000 {
            if !self.fire_one(out) {
                return;
            }
        }
        panic!(
            "consensus rules did not settle at height {} round {}",
            self.height, self.round
        );
    }

    /// Fires the first rule whose condition holds; returns whether one fired.
    fn fire_one(&mut self, out: &mut Vec<Output>) -> bool {
        if self.step == Step::Decided {
            return false;
        }
        if self.try_decide(out) {
            return true;
        }
        // L55-56: more than a third of the power is already in a later round.
        let later = self
            .votes
            .rounds()
            .filter(|(r, rv)| {
                **r > self.round
                    && self
                        .validators()
                        .is_one_third(VotingPower(rv.sender_power()))
            })
            .map(|(r, _)| *r)
            .max();
        if let Some(round) = later {
            self.start_round(round, out);
            return true;
        }
        let round = self.round;
        let proposal = self.proposals.get(&round).map(|p| p.proposal);
        let (prevotes_any, prevotes_nil, prevotes_proposal, precommits_any) =
            match self.votes.round(round) {
                None => (0, 0, 0, 0),
                Some(rv) => (
                    rv.prevotes.power(),
                    rv.prevotes.power_for(None),
                    proposal.map_or(0, |p| rv.prevotes.power_for(Some(p.block))),
                    rv.precommits.power(),
                ),
            };

        if self.step == Step::Propose {
            if let Some(p) = proposal {
                match p.pol_round {
                    // L22-27
                    None => {
                        if let Some(valid) = self.validity.get(&p.block).copied() {
                            let free = self.locked.is_none_or(|(_, v)| v == p.block);
                            let vote = (valid && free).then_some(p.block);
                            self.sign_vote(VoteKind::Prevote, vote, out);
                            self.step = Step::Prevote;
                            return true;
                        }
                    }
                    // L28-33
                    Some(vr) => {
                        let pol = self
                            .votes
                            .round(vr)
                            .map_or(0, |rv| rv.prevotes.power_for(Some(p.block)));
                        if vr < round && self.is_quorum(pol) {
                            if let Some(valid) = self.validity.get(&p.block).copied() {
                                let free =
                                    self.locked.is_none_or(|(lr, v)| lr <= vr || v == p.block);
                                let vote = (valid && free).then_some(p.block);
                                self.sign_vote(VoteKind::Prevote, vote, out);
                                self.step = Step::Prevote;
                                return true;
                            }
                        }
                    }
                }
            }
        }
        // L34-35
        if self.step == Step::Prevote
            && self.is_quorum(prevotes_any)
            && self.fired.insert((round, Once::PrevoteTimeout))
        {
            self.schedule_timeout(TimeoutStep::Prevote, out);
            return true;
        }
        // L36-43
        if let Some(p) = proposal {
            if self.step >= Step::Prevote
                && self.is_quorum(prevotes_proposal)
                && self.validity.get(&p.block) == Some(&true)
                && self.fired.insert((round, Once::ValidValue))
            {
                if self.step == Step::Prevote {
                    // Log the proof of lock with the precommit: after a restart it is the
                    // only evidence others may ever see that the lock was justified.
                    for v in self.proof_of_lock(round, p.block) {
                        out.push(Output::Persist(Message::Vote(v)));
                    }
                    self.locked = Some((round, p.block));
                    self.sign_vote(VoteKind::Precommit, Some(p.block), out);
                    self.step = Step::Precommit;
                }
                self.valid = Some((round, p.block));
                return true;
            }
        }
        // L44-46
        if self.step == Step::Prevote && self.is_quorum(prevotes_nil) {
            self.sign_vote(VoteKind::Precommit, None, out);
            self.step = Step::Precommit;
            return true;
        }
        // L47-48
        if self.is_quorum(precommits_any) && self.fired.insert((round, Once::PrecommitTimeout)) {
            self.schedule_timeout(TimeoutStep::Precommit, out);
            return true;
        }
        false
    }

    /// L49-54: a quorum of precommits for a block in any round, and the block is valid.
    fn try_decide(&mut self, out: &mut Vec<Output>) -> bool {
        let mut candidate = None;
        let mut unchecked = Vec::new();
        for (round, rv) in self.votes.rounds() {
            for (value, power) in rv.precommits.values() {
                let Some(block) = value else { continue };
                if !self.is_quorum(power) {
                    continue;
                }
                match self.validity.get(&block) {
                    Some(true) => candidate = candidate.or(Some((*round, block))),
                    Some(false) => {}
                    None => unchecked.push((*round, block)),
                }
            }
        }
        if let Some((round, block)) = candidate {
            let votes = self
                .votes
                .round(round)
                .expect("round has votes")
                .precommits
                .votes_for(Some(block));
            let commit = Commit::from_votes(self.height, round, block, self.validators(), &votes)
                .expect("counted votes are precommits of members for this block");
            self.decide(round, block, commit, out);
            return true;
        }
        if let Some(commit) = self.synced_commit.clone() {
            if self.validity.get(&commit.block) == Some(&true) {
                self.decide(commit.round, commit.block, commit, out);
                return true;
            }
        }
        // The paper assumes the value of a decision is at hand; here the application may
        // have to fetch it first.
        for (round, block) in unchecked {
            self.request_check(round, block, out);
        }
        false
    }

    fn decide(&mut self, round: Round, block: Hash, commit: Commit, out: &mut Vec<Output>) {
        self.step = Step::Decided;
        out.push(Output::Decide {
            height: self.height,
            round,
            block,
            commit,
        });
    }
}

/// Unit tests that walk Algorithm 1 step by step, one table row per input.
#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests;
