//! The votes of one height, tallied by round, kind and value, with equivocation detection.

use std::collections::{BTreeMap, BTreeSet};

use acta_ledger::{Evidence, Hash, Round, SignedVote, ValidatorIndex, VoteKind};

/// Distinct values one validator may have counted per round and kind before further
/// conflicting votes are kept only when they are for a block the core has a proposal for.
/// Honest validators sign one value; this bounds what an equivocator can make a core store.
pub(crate) const VALUES_PER_VALIDATOR_MAX: usize = 2;

/// The votes of one kind in one round.
///
/// As in the paper, votes are counted per value: a validator that signed votes for two
/// values counts toward both. That is safe (two quorums for different values would still
/// need some honest validator to vote twice) and liveness needs it: an honest validator
/// may have locked on a proof of lock that includes an equivocator's vote, and the others
/// must be able to count that same vote.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    votes: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
    /// One vote per validator beyond the bound, for a block not proposed yet: re-admitted
    /// if a proposal for that block arrives, since gossip may never deliver it again.
    parked: BTreeMap<ValidatorIndex, SignedVote>,
    power_by_value: BTreeMap<Option<Hash>, u64>,
    /// Power of the validators that voted at all, each counted once.
    power: u64,
}

impl Tally {
    /// Power that voted for `value` (a block, or nil).
    pub(crate) fn power_for(&self, value: Option<Hash>) -> u64 {
        self.power_by_value.get(&value).copied().unwrap_or(0)
    }

    /// Power that voted at all.
    pub(crate) fn power(&self) -> u64 {
        self.power
    }

    /// Every value with the power behind it.
    pub(crate) fn values(&self) -> impl Iterator<Item = (Option<Hash>, u64)> + '_ {
        self.power_by_value.iter().map(|(v, p)| (*v, *p))
    }

    /// The votes for `value`, in validator order.
    pub(crate) fn votes_for(&self, value: Option<Hash>) -> Vec<SignedVote> {
        self.votes
            .values()
            .flatten()
            .filter(|v| v.vote.block == value)
            .copied()
            .collect()
    }
}

/// The votes of one round, and who has sent anything in it.
#[derive(Debug, Default)]
pub(crate) struct RoundVotes {
    pub(crate) prevotes: Tally,
    pub(crate) precommits: Tally,
    /// Validators that sent any message (vote or proposal) in this round, with their power.
    senders: BTreeMap<ValidatorIndex, u64>,
}

impl RoundVotes {
    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }

    /// The validators that sent anything in this round.
    pub(crate) fn senders(&self) -> impl Iterator<Item = ValidatorIndex> + '_ {
        self.senders.keys().copied()
    }

    /// The power of the validators that sent anything in this round (paper L55).
    pub(crate) fn sender_power(&self) -> u64 {
        self.senders.values().sum()
    }
}

/// What adding a vote did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Added {
    /// A new vote, now counted.
    New,
    /// The same vote again: nothing changed.
    Duplicate,
    /// A different vote of the same kind in the same round from the same validator: the
    /// first stays counted, and this is the evidence.
    Conflict(Box<Evidence>),
}

/// All votes of one height.
#[derive(Debug, Default)]
pub(crate) struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
    /// Validators already reported for equivocation at this height, with the steps, so each
    /// offence yields evidence once.
    reported: BTreeSet<(ValidatorIndex, Round, VoteKind)>,
}

impl VoteKeeper {
    pub(crate) fn round(&self, round: Round) -> Option<&RoundVotes> {
        self.rounds.get(&round)
    }

    pub(crate) fn rounds(&self) -> impl Iterator<Item = (&Round, &RoundVotes)> {
        self.rounds.iter()
    }

    /// Counts `vote` by validator `index` with `power`. `proposed` tells whether a value is
    /// the block of a proposal the core holds: conflicting votes beyond the bound are kept
    /// only for those, since only they can form a proof of lock that matters.
    pub(crate) fn add(
        &mut self,
        vote: SignedVote,
        index: ValidatorIndex,
        power: u64,
        proposed: impl Fn(Option<Hash>) -> bool,
    ) -> Added {
        let kind = vote.vote.kind;
        let round = vote.vote.round;
        let rv = self.rounds.entry(round).or_default();
        rv.senders.insert(index, power);
        let tally = rv.tally_mut(kind);
        let mine = tally.votes.entry(index).or_default();
        if mine.iter().any(|v| v.vote == vote.vote) {
            return Added::Duplicate;
        }
        let first = mine.first().copied();
        if mine.len() >= VALUES_PER_VALIDATOR_MAX && !proposed(vote.vote.block) {
            tally.parked.insert(index, vote);
            return Added::Duplicate;
        }
        mine.push(vote);
        *tally.power_by_value.entry(vote.vote.block).or_default() += power;
        match first {
            None => {
                tally.power += power;
                Added::New
            }
            Some(first) if self.reported.insert((index, round, kind)) => {
                Added::Conflict(Box::new(Evidence::duplicate_vote(first, vote)))
            }
            Some(_) => Added::New,
        }
    }

    /// Counts the parked votes of `round` for `block`, now that a proposal names it.
    pub(crate) fn readmit(
        &mut self,
        round: Round,
        block: Hash,
        power_of: impl Fn(ValidatorIndex) -> u64,
    ) {
        let Some(rv) = self.rounds.get_mut(&round) else {
            return;
        };
        for tally in [&mut rv.prevotes, &mut rv.precommits] {
            let ready: Vec<ValidatorIndex> = tally
                .parked
                .iter()
                .filter(|(_, v)| v.vote.block == Some(block))
                .map(|(i, _)| *i)
                .collect();
            for index in ready {
                let vote = tally.parked.remove(&index).expect("listed above");
                tally.votes.entry(index).or_default().push(vote);
                *tally.power_by_value.entry(vote.vote.block).or_default() += power_of(index);
            }
        }
    }

    /// Notes that validator `index` sent a proposal in `round` (it counts for L55).
    pub(crate) fn note_sender(&mut self, round: Round, index: ValidatorIndex, power: u64) {
        self.rounds
            .entry(round)
            .or_default()
            .senders
            .insert(index, power);
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use acta_ledger::{testing, Height, Vote};

    fn vote(seed: u32, kind: VoteKind, round: u32, block: Option<u8>) -> SignedVote {
        Vote {
            kind,
            height: Height(1),
            round: Round(round),
            block: block.map(|b| Hash([b; 32])),
        }
        .sign(&testing::key(0xa0, seed), &testing::chain_id())
    }

    #[test]
    fn tallies_by_round_kind_and_value() {
        let mut k = VoteKeeper::default();
        let any = |_: Option<Hash>| false;
        assert_eq!(
            k.add(
                vote(0, VoteKind::Prevote, 0, Some(1)),
                ValidatorIndex(0),
                3,
                any
            ),
            Added::New
        );
        assert_eq!(
            k.add(
                vote(1, VoteKind::Prevote, 0, Some(1)),
                ValidatorIndex(1),
                2,
                any
            ),
            Added::New
        );
        assert_eq!(
            k.add(
                vote(2, VoteKind::Prevote, 0, None),
                ValidatorIndex(2),
                1,
                any
            ),
            Added::New
        );
        assert_eq!(
            k.add(
                vote(0, VoteKind::Precommit, 0, Some(1)),
                ValidatorIndex(0),
                3,
                any
            ),
            Added::New
        );
        let r = k.round(Round(0)).unwrap();
        assert_eq!(r.prevotes.power_for(Some(Hash([1; 32]))), 5);
        assert_eq!(r.prevotes.power_for(None), 1);
        assert_eq!(r.prevotes.power(), 6);
        assert_eq!(r.precommits.power(), 3);
        assert_eq!(r.sender_power(), 6);
    }

    #[test]
    fn an_equivocator_counts_for_each_value_once_and_becomes_evidence_once() {
        let mut k = VoteKeeper::default();
        let none = |_: Option<Hash>| false;
        let a = vote(0, VoteKind::Prevote, 2, Some(1));
        let b = vote(0, VoteKind::Prevote, 2, Some(2));
        assert_eq!(k.add(a, ValidatorIndex(0), 1, none), Added::New);
        assert_eq!(k.add(a, ValidatorIndex(0), 1, none), Added::Duplicate);
        match k.add(b, ValidatorIndex(0), 1, none) {
            Added::Conflict(e) => assert_eq!(e.verify(&testing::chain_id()).unwrap(), a.validator),
            other => panic!("expected evidence, got {other:?}"),
        }
        let r = k.round(Round(2)).unwrap();
        assert_eq!(r.prevotes.power_for(Some(Hash([1; 32]))), 1);
        assert_eq!(
            r.prevotes.power_for(Some(Hash([2; 32]))),
            1,
            "counted for both values"
        );
        assert_eq!(r.prevotes.power(), 1, "but once among all voters");
        // Beyond the bound, a further value counts only if it has been proposed.
        assert_eq!(
            k.add(
                vote(0, VoteKind::Prevote, 2, None),
                ValidatorIndex(0),
                1,
                none
            ),
            Added::Duplicate
        );
        assert_eq!(k.round(Round(2)).unwrap().prevotes.power_for(None), 0);
        let proposed = |v: Option<Hash>| v == Some(Hash([3; 32]));
        assert_eq!(
            k.add(
                vote(0, VoteKind::Prevote, 2, Some(3)),
                ValidatorIndex(0),
                1,
                proposed
            ),
            Added::New
        );
        assert_eq!(
            k.round(Round(2))
                .unwrap()
                .prevotes
                .power_for(Some(Hash([3; 32]))),
            1
        );
        // One arriving before its proposal is parked, and counted once the proposal comes.
        let later = vote(0, VoteKind::Prevote, 2, Some(4));
        assert_eq!(k.add(later, ValidatorIndex(0), 1, none), Added::Duplicate);
        let r = k.round(Round(2)).unwrap();
        assert_eq!(r.prevotes.power_for(Some(Hash([4; 32]))), 0);
        k.readmit(Round(2), Hash([4; 32]), |_| 1);
        let r = k.round(Round(2)).unwrap();
        assert_eq!(r.prevotes.power_for(Some(Hash([4; 32]))), 1);
    }
}
