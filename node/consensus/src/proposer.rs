//! Proposer selection: CometBFT's weighted round-robin by proposer priority.
//!
//! Every validator holds a priority. One step adds each validator's power to its priority,
//! picks the validator with the highest priority (ties go to the lower index, that is the
//! lower public key) and subtracts the total power from it. Over `k * total` steps each
//! validator proposes `k * power` times, in an order that spreads them out. Before the steps,
//! priorities are rescaled so that their spread stays within twice the total power, and
//! centred on zero, as CometBFT does.
//!
//! A height's schedule is the previous height's advanced by one step (with the new set, if
//! it changed); the proposer of round `r` is found `r` further steps ahead.

use acta_ledger::{PublicKey, ValidatorIndex, ValidatorSet};

/// The proposer priorities of one height's validator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposerSchedule {
    validators: ValidatorSet,
    priorities: Vec<i64>,
    /// The proposer of round 0 of this height.
    proposer: usize,
}

impl ProposerSchedule {
    /// The schedule of the first height, for the genesis validators.
    pub fn genesis(validators: ValidatorSet) -> ProposerSchedule {
        let n = validators.len();
        let mut s = ProposerSchedule {
            validators,
            priorities: vec![0; n],
            proposer: 0,
        };
        s.proposer = s.advance(1);
        s
    }

    /// The schedule of the next height, whose validators are `next` (the same set, or a
    /// changed one). Validators that stay keep their priority; new ones start at -1.125
    /// times the total power, so that they do not propose at once.
    pub fn next_height(&self, next: ValidatorSet) -> ProposerSchedule {
        let total = i64_of(next.total_power().0);
        let newcomer = -(total + (total >> 3));
        let priorities = next
            .validators()
            .iter()
            .map(|v| match self.validators.index_of(&v.public_key) {
                Some(i) => self.priorities[usize::from(i.0)],
                None => newcomer,
            })
            .collect();
        let mut s = ProposerSchedule {
            validators: next,
            priorities,
            proposer: 0,
        };
        s.proposer = s.advance(1);
        s
    }

    /// The validators' priorities, in the set's order: with [`Self::validators`] and
    /// [`Self::first_proposer`], what [`Self::from_parts`] takes back.
    pub fn priorities(&self) -> &[i64] {
        &self.priorities
    }

    /// The index of the proposer of round 0.
    pub fn first_proposer(&self) -> usize {
        self.proposer
    }

    /// A schedule saved from its parts; `None` if they do not fit together.
    pub fn from_parts(
        validators: ValidatorSet,
        priorities: Vec<i64>,
        proposer: usize,
    ) -> Option<ProposerSchedule> {
        (priorities.len() == validators.len() && proposer < validators.len()).then_some(
            ProposerSchedule {
                validators,
                priorities,
                proposer,
            },
        )
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The proposer of `round` at this height.
    pub fn proposer(&self, round: u32) -> ValidatorIndex {
        let index = if round == 0 {
            self.proposer
        } else {
            let mut ahead = self.clone();
            ahead.advance(round)
        };
        ValidatorIndex(u16::try_from(index).expect("at most 256 validators"))
    }

    pub fn proposer_key(&self, round: u32) -> PublicKey {
        self.validators
            .get(self.proposer(round))
            .expect("proposer is in the set")
            .public_key
    }

    /// Rescales, centres, then takes `times` steps; returns the last step's proposer.
    fn advance(&mut self, times: u32) -> usize {
        let total = i64_of(self.validators.total_power().0);
        self.rescale(total.saturating_mul(2));
        self.centre();
        let mut proposer = self.proposer;
        for _ in 0..times {
            proposer = self.step(total);
        }
        proposer
    }

    fn step(&mut self, total: i64) -> usize {
        for (p, v) in self.priorities.iter_mut().zip(self.validators.validators()) {
            *p = p.saturating_add(i64_of(v.power.0));
        }
        // The highest priority; on a tie the first, that is the lowest public key.
        let mut best = 0;
        for (i, p) in self.priorities.iter().enumerate() {
            if *p > self.priorities[best] {
                best = i;
            }
        }
        self.priorities[best] = self.priorities[best].saturating_sub(total);
        best
    }

    /// Divides all priorities so that max - min is at most `window` (truncating, as Go does).
    fn rescale(&mut self, window: i64) {
        let (Some(max), Some(min)) = (self.priorities.iter().max(), self.priorities.iter().min())
        else {
            return;
        };
        let diff = max.saturating_sub(*min);
        if window > 0 && diff > window {
            let ratio = diff.saturating_add(window - 1) / window;
            for p in &mut self.priorities {
                *p /= ratio;
            }
        }
    }

    /// Subtracts the average priority (rounded down) from every priority.
    fn centre(&mut self) {
        let n = i128::try_from(self.priorities.len()).expect("small");
        if n == 0 {
            return;
        }
        let sum: i128 = self.priorities.iter().map(|p| i128::from(*p)).sum();
        let avg = i64::try_from(sum.div_euclid(n)).expect("the average of i64 values is an i64");
        for p in &mut self.priorities {
            *p = p.saturating_sub(avg);
        }
    }
}

fn i64_of(power: u64) -> i64 {
    i64::try_from(power).expect("total power is at most i64::MAX / 8")
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use acta_ledger::testing;

    fn counts(schedule: &ProposerSchedule, heights: usize) -> Vec<usize> {
        let mut s = schedule.clone();
        let mut counts = vec![0; s.validators().len()];
        for _ in 0..heights {
            counts[usize::from(s.proposer(0).0)] += 1;
            let set = s.validators().clone();
            s = s.next_height(set);
        }
        counts
    }

    #[test]
    fn a_schedule_rebuilt_from_its_parts_goes_on_the_same_way() {
        let (_, set) = testing::validators(4, &[1, 2, 3, 10]);
        let mut s = ProposerSchedule::genesis(set.clone());
        for _ in 0..37 {
            s = s.next_height(set.clone());
        }
        let mut back = ProposerSchedule::from_parts(
            s.validators().clone(),
            s.priorities().to_vec(),
            s.first_proposer(),
        )
        .unwrap();
        assert_eq!(back, s);
        for _ in 0..50 {
            s = s.next_height(set.clone());
            back = back.next_height(set.clone());
            assert_eq!(back.proposer(0), s.proposer(0));
            assert_eq!(back.proposer(3), s.proposer(3));
        }
        let n = set.len();
        assert!(ProposerSchedule::from_parts(set.clone(), vec![0; n - 1], 0).is_none());
        assert!(ProposerSchedule::from_parts(set.clone(), vec![0; n], n).is_none());
    }

    #[test]
    fn equal_power_takes_turns() {
        let (_, set) = testing::validators(4, &[]);
        let s = ProposerSchedule::genesis(set);
        let order: Vec<u16> = {
            let mut s = s.clone();
            (0..8)
                .map(|_| {
                    let p = s.proposer(0).0;
                    let set = s.validators().clone();
                    s = s.next_height(set);
                    p
                })
                .collect()
        };
        assert_eq!(order, vec![0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn proposals_are_proportional_to_power() {
        // Over k times the total power, each proposes k times its power (powers are listed
        // in the set's order, which is by key).
        for (powers, k) in [(&[1u64, 2, 3, 4][..], 100), (&[10, 1, 1, 1, 7][..], 100)] {
            let (_, set) = testing::validators(powers.len() as u32, powers);
            let want: Vec<usize> = set
                .validators()
                .iter()
                .map(|v| v.power.0 as usize * k)
                .collect();
            let total = set.total_power().0 as usize;
            assert_eq!(counts(&ProposerSchedule::genesis(set), total * k), want);
        }
    }

    #[test]
    fn rounds_move_on_through_the_schedule() {
        let (_, set) = testing::validators(4, &[]);
        let s = ProposerSchedule::genesis(set);
        let proposers: Vec<u16> = (0..4).map(|r| s.proposer(r).0).collect();
        let mut sorted = proposers.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            vec![0, 1, 2, 3],
            "four rounds give four different proposers"
        );
    }

    #[test]
    fn a_newcomer_waits_before_proposing() {
        let (_, set) = testing::validators(3, &[]);
        let s = ProposerSchedule::genesis(set.clone());
        let newcomer = acta_ledger::Validator {
            public_key: testing::key(0xa5, 0).public(),
            power: acta_ledger::VotingPower(1),
        };
        let mut members = set.validators().to_vec();
        members.push(newcomer);
        let bigger = ValidatorSet::new(members).unwrap();
        let mut s = s.next_height(bigger);
        let key = newcomer.public_key;
        let first = (0..20).find(|_| {
            let is = s.proposer_key(0) == key;
            let set = s.validators().clone();
            s = s.next_height(set);
            is
        });
        assert!(
            first.is_some_and(|h| h >= 3),
            "newcomer proposed at {first:?}"
        );
    }
}
