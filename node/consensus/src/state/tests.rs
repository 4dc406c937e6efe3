//! Walks Algorithm 1 step by step. Each test feeds inputs and checks the outputs, citing the
//! lines of the paper it exercises.

use acta_ledger::{light::verify_commit, testing, Keypair, ValidatorIndex};

use super::*;

/// Four validators (powers given, or 1 each), the core of one of them, and helpers to make
/// the others' messages.
struct Net {
    keys: Vec<Keypair>,
    schedule: ProposerSchedule,
}

const H: Height = Height(1);

fn block(b: u8) -> Hash {
    Hash([b; 32])
}

impl Net {
    fn new(powers: &[u64]) -> Net {
        let (keys, set) = testing::validators(4, powers);
        Net {
            keys,
            schedule: ProposerSchedule::genesis(set),
        }
    }

    fn key_of(&self, index: ValidatorIndex) -> &Keypair {
        let pk = self.schedule.validators().get(index).unwrap().public_key;
        self.keys.iter().find(|k| k.public() == pk).unwrap()
    }

    fn proposer(&self, round: u32) -> ValidatorIndex {
        self.schedule.proposer(round)
    }

    /// A validator that does not propose in `round`.
    fn other_than_proposer(&self, round: u32) -> ValidatorIndex {
        ValidatorIndex((self.proposer(round).0 + 1) % 4)
    }

    fn core(&self, index: ValidatorIndex) -> Core {
        let seed = self.key_of(index).seed();
        Core::new(
            Config::default(),
            testing::chain_id(),
            Keypair::from_seed(seed),
        )
    }

    fn start(&self, core: &mut Core) -> Vec<Output> {
        core.on(Input::StartHeight {
            height: H,
            schedule: self.schedule.clone(),
            wal: vec![],
        })
    }

    fn vote(&self, from: u16, kind: VoteKind, round: u32, b: Option<Hash>) -> Input {
        let v = Vote {
            kind,
            height: H,
            round: Round(round),
            block: b,
        };
        Input::Message(Message::Vote(
            v.sign(self.key_of(ValidatorIndex(from)), &testing::chain_id()),
        ))
    }

    fn proposal(&self, round: u32, b: Hash, pol: Option<u32>) -> Input {
        let p = Proposal {
            height: H,
            round: Round(round),
            block: b,
            pol_round: pol.map(Round),
        };
        let key = self.key_of(self.proposer(round));
        Input::Message(Message::Proposal(p.sign(key, &testing::chain_id())))
    }

    /// Validators other than `me`, in index order.
    fn others(&self, me: ValidatorIndex) -> Vec<u16> {
        (0..4).filter(|i| *i != me.0).collect()
    }

    /// A validator that proposes in some round r > 0 but not in round 0, and that round.
    fn later_proposer(&self) -> (ValidatorIndex, u32) {
        (0..4u16)
            .map(ValidatorIndex)
            .filter(|i| *i != self.proposer(0))
            .find_map(|i| (1..8u32).find(|r| self.proposer(*r) == i).map(|r| (i, r)))
            .unwrap()
    }

    /// Lets `core` (at round 0) pass every round below `r` by the others' nil precommits
    /// and the precommit timeouts; returns what it output on entering round `r`.
    fn rounds_pass(&self, core: &mut Core, r: u32) -> Vec<Output> {
        let others = self.others(self.index_of(core));
        let mut last = vec![];
        for round in 0..r {
            for from in &others {
                core.on(self.vote(*from, VoteKind::Precommit, round, None));
            }
            last = core.on(timeout(TimeoutStep::Precommit, round));
        }
        assert_eq!(core.round(), Round(r));
        last
    }

    fn index_of(&self, core: &Core) -> ValidatorIndex {
        self.schedule
            .validators()
            .index_of(&core.public_key())
            .unwrap()
    }
}

/// The votes a core sent in `out`: (kind, round, block). Only its own, but for the others'
/// prevotes of a proof of lock, which go out after a proposal naming its round.
fn votes(out: &[Output]) -> Vec<(VoteKind, u32, Option<Hash>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) => {
                Some((v.vote.kind, v.vote.round.0, v.vote.block))
            }
            _ => None,
        })
        .collect()
}

fn timeouts(out: &[Output]) -> Vec<(TimeoutStep, u32, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => Some((timeout.step, timeout.round.0, *duration_ms)),
            _ => None,
        })
        .collect()
}

fn timeout(step: TimeoutStep, round: u32) -> Input {
    Input::Timeout(Timeout {
        height: H,
        round: Round(round),
        step,
    })
}

fn checked(b: Hash, valid: bool) -> Input {
    Input::BlockChecked {
        height: H,
        block: b,
        valid,
    }
}

#[test]
fn l11_21_the_proposer_asks_for_a_block_and_others_wait_for_it() {
    let net = Net::new(&[]);
    let mut proposer = net.core(net.proposer(0));
    let out = net.start(&mut proposer);
    assert!(
        out.contains(&Output::GetValue {
            height: H,
            round: Round(0)
        }),
        "L18"
    );
    assert_eq!(timeouts(&out), vec![(TimeoutStep::Propose, 0, 3000)]);
    // L19 then L22-24: the proposer sends its proposal and prevotes its own block.
    let out = proposer.on(Input::ProposeBlock {
        height: H,
        round: Round(0),
        block: block(1),
    });
    assert!(
        matches!(&out[0], Output::Persist(Message::Proposal(p)) if p.proposal.block == block(1))
    );
    assert!(matches!(&out[1], Output::Broadcast(Message::Proposal(_))));
    assert_eq!(votes(&out), vec![(VoteKind::Prevote, 0, Some(block(1)))]);

    let mut other = net.core(net.other_than_proposer(0));
    let out = net.start(&mut other);
    assert!(!out.iter().any(|o| matches!(o, Output::GetValue { .. })));
    assert_eq!(timeouts(&out), vec![(TimeoutStep::Propose, 0, 3000)], "L21");
}

#[test]
fn l22_27_prevote_the_proposal_if_valid_and_not_locked_elsewhere() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    // Valid: prevote it, but only once the application has checked it.
    let mut core = net.core(me);
    net.start(&mut core);
    let out = core.on(net.proposal(0, block(1), None));
    assert!(out.contains(&Output::CheckBlock {
        height: H,
        round: Round(0),
        block: block(1)
    }));
    assert!(
        votes(&out).is_empty(),
        "no prevote before valid(v) is known"
    );
    let out = core.on(checked(block(1), true));
    assert_eq!(
        votes(&out),
        vec![(VoteKind::Prevote, 0, Some(block(1)))],
        "L24"
    );
    assert_eq!(core.step(), Step::Prevote, "L27");
    // Invalid: prevote nil.
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(net.proposal(0, block(1), None));
    let out = core.on(checked(block(1), false));
    assert_eq!(votes(&out), vec![(VoteKind::Prevote, 0, None)], "L26");
}

#[test]
fn l57_60_no_proposal_in_time_means_prevote_nil() {
    let net = Net::new(&[]);
    let mut core = net.core(net.other_than_proposer(0));
    net.start(&mut core);
    let out = core.on(timeout(TimeoutStep::Propose, 0));
    assert_eq!(votes(&out), vec![(VoteKind::Prevote, 0, None)]);
    // A stale timeout does nothing.
    assert!(votes(&core.on(timeout(TimeoutStep::Propose, 0))).is_empty());
}

/// Brings a core to round 0's prevote step having prevoted block 1.
fn prevoted(net: &Net, me: ValidatorIndex) -> Core {
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(net.proposal(0, block(1), None));
    core.on(checked(block(1), true));
    core
}

#[test]
fn l36_43_a_prevote_quorum_for_the_proposal_locks_and_precommits_it() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = prevoted(&net, me);
    let others = net.others(me);
    // One more prevote: 2 of 4, not a quorum.
    assert!(votes(&core.on(net.vote(others[0], VoteKind::Prevote, 0, Some(block(1))))).is_empty());
    let out = core.on(net.vote(others[1], VoteKind::Prevote, 0, Some(block(1))));
    assert_eq!(
        votes(&out),
        vec![(VoteKind::Precommit, 0, Some(block(1)))],
        "L40"
    );
    assert_eq!(core.locked(), Some((Round(0), block(1))), "L38-39");
    assert_eq!(core.step(), Step::Precommit, "L41");
    // L34: that quorum also scheduled the prevote timeout.
    assert!(timeouts(&out).contains(&(TimeoutStep::Prevote, 0, 1000)));
}

#[test]
fn l44_46_a_nil_prevote_quorum_means_precommit_nil() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(timeout(TimeoutStep::Propose, 0));
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Prevote, 0, None));
    let out = core.on(net.vote(others[1], VoteKind::Prevote, 0, None));
    assert_eq!(votes(&out), vec![(VoteKind::Precommit, 0, None)]);
    assert_eq!(core.locked(), None);
}

#[test]
fn l34_35_and_l61_64_split_prevotes_wait_then_precommit_nil() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = prevoted(&net, me);
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Prevote, 0, None));
    let out = core.on(net.vote(others[1], VoteKind::Prevote, 0, Some(block(2))));
    assert!(votes(&out).is_empty());
    assert_eq!(timeouts(&out), vec![(TimeoutStep::Prevote, 0, 1000)], "L35");
    let out = core.on(timeout(TimeoutStep::Prevote, 0));
    assert_eq!(votes(&out), vec![(VoteKind::Precommit, 0, None)], "L63");
}

#[test]
fn l47_48_and_l65_67_split_precommits_wait_then_move_to_the_next_round() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(timeout(TimeoutStep::Propose, 0));
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Precommit, 0, None));
    core.on(net.vote(others[1], VoteKind::Precommit, 0, Some(block(1))));
    let out = core.on(net.vote(others[2], VoteKind::Precommit, 0, Some(block(2))));
    assert!(
        timeouts(&out).contains(&(TimeoutStep::Precommit, 0, 1000)),
        "L48"
    );
    let out = core.on(timeout(TimeoutStep::Precommit, 0));
    assert_eq!(core.round(), Round(1), "L67");
    // Round 1's propose timeout has grown by one delta.
    assert!(timeouts(&out).contains(&(TimeoutStep::Propose, 1, 3500)));
}

#[test]
fn l49_54_a_precommit_quorum_for_a_valid_block_decides_with_a_verifiable_commit() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = prevoted(&net, me);
    let mut decided = vec![];
    for from in net.others(me) {
        for o in core.on(net.vote(from, VoteKind::Precommit, 0, Some(block(1)))) {
            if let Output::Decide {
                height,
                block: b,
                commit,
                ..
            } = o
            {
                decided.push((height, b, commit));
            }
        }
    }
    assert_eq!(decided.len(), 1, "decides once");
    let (height, b, commit) = &decided[0];
    assert_eq!((*height, *b), (H, block(1)));
    verify_commit(
        &testing::chain_id(),
        net.schedule.validators(),
        commit,
        H,
        &block(1),
    )
    .unwrap();
    assert_eq!(core.step(), Step::Decided);
}

#[test]
fn l49_a_decision_needs_the_block_checked_even_without_its_proposal() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let others = net.others(me);
    let mut out = vec![];
    for from in &others {
        out.extend(core.on(net.vote(*from, VoteKind::Precommit, 3, Some(block(7)))));
    }
    assert!(out.contains(&Output::CheckBlock {
        height: H,
        round: Round(3),
        block: block(7)
    }));
    assert!(!out.iter().any(|o| matches!(o, Output::Decide { .. })));
    let out = core.on(checked(block(7), true));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Decide { block: b, .. } if *b == block(7))));
}

#[test]
fn l55_56_more_than_a_third_of_power_in_a_later_round_pulls_the_core_along() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Prevote, 5, None));
    assert_eq!(
        core.round(),
        Round(0),
        "a quarter of the power is not enough"
    );
    core.on(net.vote(others[1], VoteKind::Precommit, 5, None));
    assert_eq!(core.round(), Round(5));
    // By power, not by count: with powers 1,1,1,7 the big validator alone is enough.
    let net = Net::new(&[1, 1, 1, 7]);
    let big = (0..4)
        .map(ValidatorIndex)
        .max_by_key(|i| net.schedule.validators().get(*i).unwrap().power)
        .unwrap();
    let me = (0..4).map(ValidatorIndex).find(|i| *i != big).unwrap();
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(net.vote(big.0, VoteKind::Prevote, 2, None));
    assert_eq!(core.round(), Round(2));
}

#[test]
fn l22_a_locked_validator_prevotes_nil_for_another_block_without_a_proof_of_lock() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = prevoted(&net, me);
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Prevote, 0, Some(block(1))));
    core.on(net.vote(others[1], VoteKind::Prevote, 0, Some(block(1))));
    assert_eq!(core.locked(), Some((Round(0), block(1))));
    // Round 1 without a decision; its proposer offers block 2 with no proof of lock.
    core.on(net.vote(others[0], VoteKind::Precommit, 0, None));
    core.on(net.vote(others[1], VoteKind::Precommit, 0, None));
    core.on(timeout(TimeoutStep::Precommit, 0));
    assert_eq!(core.round(), Round(1));
    if net.proposer(1) == me {
        return; // it would re-propose its valid value (L15); covered elsewhere.
    }
    core.on(net.proposal(1, block(2), None));
    let out = core.on(checked(block(2), true));
    assert_eq!(
        votes(&out),
        vec![(VoteKind::Prevote, 1, None)],
        "L24: locked on block 1"
    );
}

#[test]
fn l28_33_a_proof_of_lock_from_a_later_round_unlocks() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = prevoted(&net, me);
    let others = net.others(me);
    core.on(net.vote(others[0], VoteKind::Prevote, 0, Some(block(1))));
    core.on(net.vote(others[1], VoteKind::Prevote, 0, Some(block(1))));
    assert_eq!(core.locked(), Some((Round(0), block(1))));
    // The others saw a prevote quorum for block 2 in round 1 (this core missed round 1).
    for from in &others {
        core.on(net.vote(*from, VoteKind::Prevote, 1, Some(block(2))));
    }
    // They move to round 2 (more than a third are there), whose proposer re-proposes block
    // 2 with its proof-of-lock round 1.
    for from in &others[..2] {
        core.on(net.vote(*from, VoteKind::Precommit, 2, None));
    }
    assert_eq!(core.round(), Round(2));
    if net.proposer(2) == me {
        return;
    }
    core.on(net.proposal(2, block(2), Some(1)));
    let out = core.on(checked(block(2), true));
    assert_eq!(
        votes(&out),
        vec![(VoteKind::Prevote, 2, Some(block(2)))],
        "L30: lockedRound 0 <= vr 1"
    );
}

#[test]
fn equivocation_becomes_verifiable_evidence_once() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let from = net.others(me)[0];
    core.on(net.vote(from, VoteKind::Prevote, 0, Some(block(1))));
    let out = core.on(net.vote(from, VoteKind::Prevote, 0, Some(block(2))));
    let evidence: Vec<_> = out
        .iter()
        .filter_map(|o| {
            if let Output::Evidence(e) = o {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(
        evidence[0].verify(&testing::chain_id()).unwrap(),
        net.key_of(ValidatorIndex(from)).public()
    );
    assert!(!core
        .on(net.vote(from, VoteKind::Prevote, 0, None))
        .iter()
        .any(|o| matches!(o, Output::Evidence(_))));
    // Two proposals from one proposer in one round.
    let mut core = net.core(me);
    net.start(&mut core);
    core.on(net.proposal(0, block(1), None));
    let out = core.on(net.proposal(0, block(2), None));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Evidence(Evidence::DuplicateProposal { .. }))));
}

#[test]
fn messages_from_outsiders_and_proposals_from_non_proposers_are_ignored() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let stranger = testing::key(0xee, 1);
    for r in [0u32, 9] {
        let v = Vote {
            kind: VoteKind::Precommit,
            height: H,
            round: Round(r),
            block: Some(block(1)),
        };
        for _ in 0..3 {
            core.on(Input::Message(Message::Vote(
                v.sign(&stranger, &testing::chain_id()),
            )));
        }
    }
    assert_eq!(core.round(), Round(0));
    let wrong = net.key_of(net.other_than_proposer(0));
    let p = Proposal {
        height: H,
        round: Round(0),
        block: block(1),
        pol_round: None,
    };
    let out = core.on(Input::Message(Message::Proposal(
        p.sign(wrong, &testing::chain_id()),
    )));
    assert!(!out.iter().any(|o| matches!(o, Output::CheckBlock { .. })));
}

#[test]
fn every_signed_message_is_persisted_before_it_is_sent() {
    let net = Net::new(&[]);
    let mut core = net.core(net.proposer(0));
    net.start(&mut core);
    let mut all = core.on(Input::ProposeBlock {
        height: H,
        round: Round(0),
        block: block(1),
    });
    for from in net.others(net.proposer(0)) {
        all.extend(core.on(net.vote(from, VoteKind::Prevote, 0, Some(block(1)))));
    }
    let mut persisted = vec![];
    let mut sent = 0;
    for o in &all {
        match o {
            Output::Persist(m) => persisted.push(m.clone()),
            Output::Broadcast(m) if m.signer() == core.public_key() => {
                assert!(persisted.contains(m), "{m:?} sent before it was persisted");
                sent += 1;
            }
            _ => {}
        }
    }
    assert_eq!(sent, 3, "proposal, prevote and precommit");
}

#[test]
fn a_restarted_core_fed_its_wal_keeps_its_lock_and_never_signs_a_conflict() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let others = net.others(me);
    let mut core = prevoted(&net, me);
    let mut wal = vec![];
    let mut record = |out: &[Output]| {
        for o in out {
            if let Output::Persist(m) = o {
                wal.push(m.clone());
            }
        }
    };
    record(&core.on(net.vote(others[0], VoteKind::Prevote, 0, Some(block(1)))));
    record(&core.on(net.vote(others[1], VoteKind::Prevote, 0, Some(block(1)))));
    // The core prevoted and precommitted block 1 in round 0 (the first prevote was signed
    // inside `prevoted`; re-create it for the log).
    let own_prevote = Vote {
        kind: VoteKind::Prevote,
        height: H,
        round: Round(0),
        block: Some(block(1)),
    }
    .sign(net.key_of(me), &testing::chain_id());
    wal.insert(0, Message::Vote(own_prevote));
    let own = wal
        .iter()
        .filter(|m| m.signer() == net.key_of(me).public())
        .count();
    assert_eq!(own, 2, "its prevote and precommit");
    assert_eq!(
        wal.len(),
        4,
        "and the two other prevotes of its proof of lock"
    );

    // Crash. A new core, the same key, fed the WAL.
    let mut core = net.core(me);
    let out = core.on(Input::StartHeight {
        height: H,
        schedule: net.schedule.clone(),
        wal: wal.clone(),
    });
    assert_eq!(
        core.locked(),
        Some((Round(0), block(1))),
        "lock restored from its precommit"
    );
    assert_eq!(core.step(), Step::Precommit);
    assert!(
        out.iter().all(|o| !matches!(o, Output::Persist(_))),
        "nothing new signed on restart"
    );
    // Everything that could tempt it to sign differently in round 0 signs nothing new.
    let mut out = core.on(timeout(TimeoutStep::Propose, 0));
    out.extend(core.on(timeout(TimeoutStep::Prevote, 0)));
    for from in &others {
        out.extend(core.on(net.vote(*from, VoteKind::Prevote, 0, None)));
    }
    for o in &out {
        if let Output::Broadcast(Message::Vote(v)) = o {
            if v.validator == core.public_key() {
                assert!(
                    wal.contains(&Message::Vote(*v)),
                    "signed {v:?}, which conflicts with its log"
                );
            }
        }
    }
    // In round 1 it is still locked on block 1: another block without proof of lock gets nil.
    core.on(net.vote(others[0], VoteKind::Precommit, 0, None));
    core.on(net.vote(others[1], VoteKind::Precommit, 0, None));
    core.on(timeout(TimeoutStep::Precommit, 0));
    if net.proposer(1) != me {
        core.on(net.proposal(1, block(2), None));
        let out = core.on(checked(block(2), true));
        assert_eq!(votes(&out), vec![(VoteKind::Prevote, 1, None)]);
    }
}

#[test]
fn quorum_is_by_power_a_single_large_validator_with_one_more_decides() {
    let net = Net::new(&[1, 1, 1, 10]);
    let big = (0..4)
        .map(ValidatorIndex)
        .max_by_key(|i| net.schedule.validators().get(*i).unwrap().power)
        .unwrap();
    let me = (0..4)
        .map(ValidatorIndex)
        .find(|i| *i != big && *i != net.proposer(0))
        .unwrap();
    let mut core = prevoted(&net, me);
    // My precommit (power 1) plus the big validator (10) is 11 of 13 > 2/3.
    core.on(net.vote(big.0, VoteKind::Prevote, 0, Some(block(1))));
    let out = core.on(net.vote(big.0, VoteKind::Precommit, 0, Some(block(1))));
    assert!(out.iter().any(|o| matches!(o, Output::Decide { .. })));
}

#[test]
fn messages_for_the_next_height_wait_until_it_starts() {
    let net = Net::new(&[]);
    let me = net.other_than_proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let v = Vote {
        kind: VoteKind::Prevote,
        height: Height(2),
        round: Round(0),
        block: None,
    };
    let early = Input::Message(Message::Vote(v.sign(
        net.key_of(ValidatorIndex(net.others(me)[0])),
        &testing::chain_id(),
    )));
    core.on(early);
    let next = net.schedule.next_height(net.schedule.validators().clone());
    core.on(Input::StartHeight {
        height: Height(2),
        schedule: next,
        wal: vec![],
    });
    assert_eq!(core.height(), Height(2));
    // The buffered prevote was counted: two more nil prevotes make a quorum with it... and
    // this core's own timeout prevote.
    core.on(Input::Timeout(Timeout {
        height: Height(2),
        round: Round(0),
        step: TimeoutStep::Propose,
    }));
    let other = net.others(me)[1];
    let v2 = Vote {
        kind: VoteKind::Prevote,
        height: Height(2),
        round: Round(0),
        block: None,
    };
    let out = core.on(Input::Message(Message::Vote(
        v2.sign(net.key_of(ValidatorIndex(other)), &testing::chain_id()),
    )));
    assert!(votes(&out).contains(&(VoteKind::Precommit, 0, None)));
}

#[test]
fn a_restarted_locked_proposer_re_proposes_its_locked_block_with_its_proof_of_lock() {
    let net = Net::new(&[]);
    let (me, r) = net.later_proposer();
    let others = net.others(me);
    let mut core = prevoted(&net, me);
    let mut wal: Vec<Message> = vec![Message::Vote(
        Vote {
            kind: VoteKind::Prevote,
            height: H,
            round: Round(0),
            block: Some(block(1)),
        }
        .sign(net.key_of(me), &testing::chain_id()),
    )];
    for from in &others[..2] {
        for o in core.on(net.vote(*from, VoteKind::Prevote, 0, Some(block(1)))) {
            if let Output::Persist(m) = o {
                wal.push(m);
            }
        }
    }
    // Restart, then let every round up to r pass by timeouts and others' nil precommits.
    let mut core = net.core(me);
    core.on(Input::StartHeight {
        height: H,
        schedule: net.schedule.clone(),
        wal,
    });
    core.on(checked(block(1), true));
    let last = net.rounds_pass(&mut core, r);
    let proposal = last.iter().find_map(|o| match o {
        Output::Broadcast(Message::Proposal(p)) => Some(p.proposal),
        _ => None,
    });
    assert_eq!(
        proposal.map(|p| (p.block, p.pol_round)),
        Some((block(1), Some(Round(0)))),
        "L15-16 after a restart"
    );
}

#[test]
fn l15_16_a_proposal_with_a_proof_of_lock_round_carries_the_prevotes_that_make_it() {
    let net = Net::new(&[]);
    let (me, r) = net.later_proposer();
    let others = net.others(me);
    // It locks on block 1 in round 0 with two others' prevotes; the third validator's
    // prevote may never have reached anyone else (its signer crashed while sending it).
    let mut core = prevoted(&net, me);
    for from in &others[..2] {
        core.on(net.vote(*from, VoteKind::Prevote, 0, Some(block(1))));
    }
    assert_eq!(core.locked(), Some((Round(0), block(1))));
    let last = net.rounds_pass(&mut core, r);
    let sent: Vec<&Message> = last
        .iter()
        .filter_map(|o| match o {
            Output::Broadcast(m) => Some(m),
            _ => None,
        })
        .collect();
    let at = sent
        .iter()
        .position(|m| matches!(m, Message::Proposal(p) if p.proposal.pol_round == Some(Round(0))))
        .expect("L15-16: the locked block is proposed again");
    // The others' prevotes of round 0 go out with it.
    let mut pol: Vec<PublicKey> = sent[at + 1..]
        .iter()
        .filter_map(|m| match m {
            Message::Vote(v)
                if v.vote.kind == VoteKind::Prevote
                    && v.vote.round == Round(0)
                    && v.vote.block == Some(block(1)) =>
            {
                Some(v.validator)
            }
            _ => None,
        })
        .collect();
    pol.sort();
    let mut expected: Vec<PublicKey> = others[..2]
        .iter()
        .map(|i| net.key_of(ValidatorIndex(*i)).public())
        .collect();
    expected.sort();
    assert_eq!(pol, expected);

    // A validator that missed one of those prevotes (it has the proposer's and one other)
    // prevotes nil for the proposal alone, and for the block once the proof comes with it
    // (L28-33).
    let peer = ValidatorIndex(others[2]);
    let at_round_r = || {
        let mut c = net.core(peer);
        net.start(&mut c);
        c.on(checked(block(1), true));
        c.on(net.vote(me.0, VoteKind::Prevote, 0, Some(block(1))));
        c.on(net.vote(others[0], VoteKind::Prevote, 0, Some(block(1))));
        net.rounds_pass(&mut c, r);
        c
    };
    let mut alone = at_round_r();
    let out = alone.on(Input::Message(sent[at].clone()));
    assert!(votes(&out).is_empty(), "no proof of lock yet: {out:?}");
    let out = alone.on(timeout(TimeoutStep::Propose, r));
    assert_eq!(votes(&out), vec![(VoteKind::Prevote, r, None)]);
    let mut with_proof = at_round_r();
    let mut prevotes = vec![];
    for m in &sent {
        prevotes.extend(votes(&with_proof.on(Input::Message((*m).clone()))));
    }
    assert_eq!(prevotes, vec![(VoteKind::Prevote, r, Some(block(1)))]);
}

#[test]
fn a_proposer_restarted_after_proposing_sends_the_same_proposal_and_asks_for_no_block() {
    let net = Net::new(&[]);
    let me = net.proposer(0);
    let mut core = net.core(me);
    net.start(&mut core);
    let out = core.on(Input::ProposeBlock {
        height: H,
        round: Round(0),
        block: block(1),
    });
    let wal: Vec<Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let proposal = wal
        .iter()
        .find(|m| matches!(m, Message::Proposal(_)))
        .cloned()
        .unwrap();
    // Crashed before anything was sent; restarted with its WAL.
    let mut core = net.core(me);
    let out = core.on(Input::StartHeight {
        height: H,
        schedule: net.schedule.clone(),
        wal,
    });
    assert!(
        !out.iter().any(|o| matches!(o, Output::GetValue { .. })),
        "a second block asked for: {out:?}"
    );
    assert!(out.contains(&Output::Broadcast(proposal)));
    // Its own block comes back to be checked, so that it can be voted for again.
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::CheckBlock { block: b, .. } if *b == block(1))));
}
