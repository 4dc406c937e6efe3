//! The driver on its own: events in, actions out, no I/O.

use acta_ledger::{testing, Proposal, ValidatorSet, Vote, VoteKind};

use super::*;

/// A block's body in these tests: a number.
type TestDriver = Driver<u8, u32>;
type TestAction = Action<u8, u32>;

fn config() -> DriverConfig {
    DriverConfig {
        consensus: acta_consensus::Config::default(),
        block_interval_ms: 100,
        empty_block_interval_ms: 10_000,
        min_height_ms: 0,
        gossip_interval_ms: 1_000,
    }
}

/// Four validators of equal power, and the driver of validator `me` at height 1.
fn network(me: usize) -> (Vec<Keypair>, ValidatorSet, TestDriver) {
    let (keys, set) = testing::validators(4, &[1, 1, 1, 1]);
    let driver = resumed(
        &keys[me],
        ProposerSchedule::genesis(set.clone()),
        vec![],
        vec![],
    );
    (keys, set, driver)
}

/// The driver of `key` at height 1, (re)started with `restored` from its WAL and `blocks`.
fn resumed(
    key: &Keypair,
    schedule: ProposerSchedule,
    restored: Vec<Message>,
    blocks: Vec<(Hash, u32)>,
) -> TestDriver {
    Driver::new(
        config(),
        testing::chain_id(),
        Keypair::from_seed(key.seed()),
        Resume {
            height: Height(1),
            schedule,
            restored,
            rounds_pending: false,
            blocks,
        },
        0,
    )
}

fn index_of(keys: &[Keypair], key: PublicKey) -> usize {
    keys.iter().position(|k| k.public() == key).unwrap()
}

fn proposal(key: &Keypair, height: u64, block: Hash) -> SignedProposal {
    Proposal {
        height: Height(height),
        round: Round(0),
        block,
        pol_round: None,
    }
    .sign(key, &testing::chain_id())
}

fn precommit(key: &Keypair, height: u64, block: Hash) -> Message {
    Message::Vote(
        Vote {
            kind: VoteKind::Precommit,
            height: Height(height),
            round: Round(0),
            block: Some(block),
        }
        .sign(key, &testing::chain_id()),
    )
}

fn checks(actions: &[TestAction]) -> Vec<(u64, Hash, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Check {
                height,
                block,
                body,
            } => Some((height.0, *block, *body)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_height_waits_for_work_and_the_proposal_is_durable_before_it_is_sent() {
    let (keys, set, _) = network(0);
    let proposer = index_of(&keys, ProposerSchedule::genesis(set).proposer_key(0));
    let (_, _, mut d) = network(proposer);
    // Nothing to decide: the height starts only at the empty-block interval.
    assert_eq!(d.next_deadline(), Some(10_000));
    assert!(d.on(5, Event::Tick).is_empty());
    assert_eq!(d.phase(), Phase::Waiting);
    d.on(5, Event::TxsWaiting(true));
    assert_eq!(d.next_deadline(), Some(0));
    let actions = d.on(5, Event::Tick);
    assert_eq!(d.phase(), Phase::Running);
    assert!(matches!(
        actions.as_slice(),
        [Action::Build {
            height: Height(1),
            round: Round(0),
            ..
        }]
    ));
    let block = Hash::digest(b"block 1");
    let actions = d.on(
        6,
        Event::Built {
            height: Height(1),
            round: Round(0),
            block,
            body: 7,
        },
    );
    // Every own message sent was persisted by an earlier action.
    let mut persisted = Vec::new();
    let mut sent = 0;
    for a in &actions {
        match a {
            Action::Persist { messages, .. } => persisted.extend(messages.iter().cloned()),
            Action::Broadcast { message, body } => {
                assert!(
                    persisted.contains(message),
                    "{message:?} sent before it was durable"
                );
                if let Message::Proposal(p) = message {
                    assert_eq!(p.proposal.block, block);
                    assert_eq!(*body, Some(7), "a proposal goes with its block");
                }
                sent += 1;
            }
            _ => {}
        }
    }
    // The proposal and the proposer's prevote for its own block.
    assert_eq!(sent, 2, "{actions:?}");
}

#[test]
fn a_block_is_checked_once_however_often_its_proposal_arrives() {
    let (keys, set, _) = network(0);
    let proposer = index_of(&keys, ProposerSchedule::genesis(set).proposer_key(0));
    let me = (proposer + 1) % 4;
    let (_, _, mut d) = network(me);
    d.on(0, Event::TxsWaiting(true));
    d.on(0, Event::Tick);
    let block = Hash::digest(b"block 1");
    let p = proposal(&keys[proposer], 1, block);
    let first = d.on(
        1,
        Event::Proposal {
            proposal: p,
            body: 3,
        },
    );
    assert_eq!(checks(&first), vec![(1, block, 3)]);
    let again = d.on(
        2,
        Event::Proposal {
            proposal: p,
            body: 3,
        },
    );
    assert!(checks(&again).is_empty(), "{again:?}");
    // A proposal by a validator that does not propose this round is not kept.
    let other = (proposer + 2) % 4;
    let forged = proposal(&keys[other], 1, Hash::digest(b"other"));
    d.on(
        3,
        Event::Proposal {
            proposal: forged,
            body: 4,
        },
    );
    assert!(d.candidate(&Hash::digest(b"other")).is_none());
    assert_eq!(d.candidate(&block), Some(&3));
}

/// The driver of a validator that does not propose first, with height 1 decided (block
/// `block 1`, body 1) at time 3 and not yet stored; the actions of the deciding votes.
fn deciding_height_one() -> (Vec<Keypair>, ValidatorSet, TestDriver, Vec<TestAction>) {
    deciding_height_one_after(|_, _| Vec::new())
}

/// [`deciding_height_one`], with the messages `early` makes delivered while height 1 is
/// being decided (before its precommits).
fn deciding_height_one_after(
    early: impl Fn(&[Keypair], &ValidatorSet) -> Vec<Message>,
) -> (Vec<Keypair>, ValidatorSet, TestDriver, Vec<TestAction>) {
    let (keys, set, _) = network(0);
    let proposer = index_of(
        &keys,
        ProposerSchedule::genesis(set.clone()).proposer_key(0),
    );
    let (_, _, mut d) = network((proposer + 1) % 4);
    d.on(0, Event::TxsWaiting(true));
    d.on(0, Event::Tick);
    let b1 = Hash::digest(b"block 1");
    d.on(
        1,
        Event::Proposal {
            proposal: proposal(&keys[proposer], 1, b1),
            body: 1,
        },
    );
    d.on(
        2,
        Event::Checked {
            height: Height(1),
            block: b1,
            valid: true,
        },
    );
    for m in early(&keys, &set) {
        d.on(2, Event::Message(m));
    }
    assert_eq!(d.phase(), Phase::Running);
    let actions = keys
        .iter()
        .flat_map(|k| d.on(3, Event::Message(precommit(k, 1, b1))))
        .collect();
    assert_eq!(d.phase(), Phase::Committing);
    (keys, set, d, actions)
}

#[test]
fn a_block_proposed_for_the_next_height_while_this_one_is_stored_is_kept() {
    let (keys, set, mut d, actions) = deciding_height_one();
    let genesis = ProposerSchedule::genesis(set.clone());
    let commit = actions.into_iter().find_map(|a| match a {
        Action::Commit {
            height,
            block,
            body,
            ..
        } => Some((height, block, body)),
        _ => None,
    });
    assert_eq!(commit, Some((Height(1), Hash::digest(b"block 1"), 1)));
    // The next proposer moved on first: its proposal for height 2 arrives now.
    let next = genesis.next_height(set.clone());
    let proposer2 = index_of(&keys, next.proposer_key(0));
    let b2 = Hash::digest(b"block 2");
    assert!(checks(&d.on(
        4,
        Event::Proposal {
            proposal: proposal(&keys[proposer2], 2, b2),
            body: 2
        }
    ))
    .is_empty());
    let stored = Stored {
        height: Height(1),
        schedule: next,
        rounds_pending: false,
        evidence: Vec::new(),
        synced: false,
        empty: false,
    };
    let actions = d.on(5, Event::Committed(stored));
    assert_eq!(actions, vec![Action::Status(Height(1))]);
    assert_eq!(d.height(), Height(2));
    // Transactions wait, so the height starts at once, and the core, which buffered the
    // proposal, asks for the block: it is there.
    assert_eq!(d.next_deadline(), Some(5));
    let actions = d.on(5, Event::Tick);
    assert_eq!(checks(&actions), vec![(2, b2, 2)], "{actions:?}");
}

#[test]
fn a_restarted_proposer_sends_its_proposal_again_with_its_restored_block() {
    let (keys, set, _) = network(0);
    let proposer = index_of(
        &keys,
        ProposerSchedule::genesis(set.clone()).proposer_key(0),
    );
    let block = Hash::digest(b"block 1");
    // The proposer signed its proposal and prevote, then crashed before sending them.
    let p = proposal(&keys[proposer], 1, block);
    let restored = vec![Message::Proposal(p)];
    let mut d = resumed(
        &keys[proposer],
        ProposerSchedule::genesis(set),
        restored,
        vec![(block, 7)],
    );
    // Restored work starts the height at once; the block came back with the proposal, so
    // the proposal goes out with it and the block is checked again (its state update is
    // not kept across a restart).
    let actions = d.on(0, Event::Tick);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Broadcast {
                message: Message::Proposal(_),
                body: Some(7)
            }
        )),
        "{actions:?}"
    );
    assert_eq!(checks(&actions), vec![(1, block, 7)]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Build { .. })));
}

#[test]
fn a_locked_proposer_sends_its_proof_of_lock_with_its_proposal_and_again_with_it() {
    let (keys, set, _) = network(0);
    let schedule = ProposerSchedule::genesis(set.clone());
    let me = index_of(&keys, schedule.proposer_key(1));
    let block = Hash::digest(b"block 1");
    let vote = |key: &Keypair, kind: VoteKind| {
        Message::Vote(
            Vote {
                kind,
                height: Height(1),
                round: Round(0),
                block: Some(block),
            }
            .sign(key, &testing::chain_id()),
        )
    };
    // Restarted after locking on the block in round 0 (two others' prevotes with its own)
    // and proposing it again in round 1, its proposer round.
    let others: Vec<usize> = (0..4).filter(|i| *i != me).take(2).collect();
    let proof: Vec<Message> = others
        .iter()
        .map(|i| vote(&keys[*i], VoteKind::Prevote))
        .collect();
    let mut restored = vec![vote(&keys[me], VoteKind::Prevote)];
    restored.extend(proof.iter().cloned());
    restored.push(vote(&keys[me], VoteKind::Precommit));
    restored.push(Message::Proposal(
        Proposal {
            height: Height(1),
            round: Round(1),
            block,
            pol_round: Some(Round(0)),
        }
        .sign(&keys[me], &testing::chain_id()),
    ));
    let mut d = resumed(&keys[me], schedule, restored, vec![(block, 7)]);
    let sent = |actions: &[TestAction]| -> (Vec<Message>, bool) {
        let mut votes = Vec::new();
        let mut proposal = false;
        for a in actions {
            match a {
                Action::Broadcast {
                    message: Message::Proposal(p),
                    ..
                } => proposal |= p.proposal.pol_round == Some(Round(0)),
                Action::Broadcast { message, .. } => votes.push(message.clone()),
                _ => {}
            }
        }
        (votes, proposal)
    };
    let (votes, proposal) = sent(&d.on(0, Event::Tick));
    assert!(proposal, "the locked block is proposed again");
    assert!(proof.iter().all(|m| votes.contains(m)), "{votes:?}");
    // A tick later the own votes go again, the proposal and its proof not yet.
    let (votes, proposal) = sent(&d.on(1_000, Event::GossipTick));
    assert!(!proposal);
    assert!(votes.contains(&vote(&keys[me], VoteKind::Precommit)));
    assert!(proof.iter().all(|m| !votes.contains(m)), "{votes:?}");
    // Once the proposal is due again, its proof goes with it.
    let due = 1_000 * PROPOSAL_RESEND_TICKS;
    let (votes, proposal) = sent(&d.on(due, Event::GossipTick));
    assert!(proposal);
    assert!(proof.iter().all(|m| votes.contains(m)), "{votes:?}");
}

/// What the application says after storing height 1 of the network of `set`.
fn height_one_stored(set: ValidatorSet, rounds_pending: bool, empty: bool) -> Stored {
    Stored {
        height: Height(1),
        schedule: ProposerSchedule::genesis(set.clone()).next_height(set),
        rounds_pending,
        evidence: Vec::new(),
        synced: false,
        empty,
    }
}

/// The driver of a validator that does not propose first, after height 1 is decided and
/// stored at time 5, with transactions waiting, budget rounds under way or not, and a block
/// that held something or nothing.
fn committed_height_one(rounds_pending: bool, empty: bool) -> TestDriver {
    let (_, set, mut d, _) = deciding_height_one();
    let stored = height_one_stored(set, rounds_pending, empty);
    d.on(5, Event::Committed(stored));
    assert_eq!(d.height(), Height(2));
    d
}

#[test]
fn waiting_transactions_start_the_next_height_at_once_budget_rounds_at_their_pace() {
    // Transactions wait: no pause after the commit.
    let mut d = committed_height_one(false, false);
    assert_eq!(d.next_deadline(), Some(5));
    d.on(5, Event::Tick);
    assert_eq!(d.phase(), Phase::Running);

    // Nothing waits: only the empty-block interval starts a height.
    let mut d = committed_height_one(false, false);
    d.on(5, Event::TxsWaiting(false));
    assert_eq!(d.next_deadline(), Some(10_005));
    assert!(d.on(105, Event::Tick).is_empty());
    assert_eq!(d.phase(), Phase::Waiting);

    // Budget rounds under way need heights, at the block interval's pace.
    let mut d = committed_height_one(true, false);
    d.on(5, Event::TxsWaiting(false));
    assert_eq!(d.next_deadline(), Some(105));
    assert!(d.on(50, Event::Tick).is_empty());
    assert_eq!(d.phase(), Phase::Waiting);
    // A transaction arrives during the pause: the height starts at once.
    d.on(50, Event::TxsWaiting(true));
    assert_eq!(d.next_deadline(), Some(5));
    d.on(50, Event::Tick);
    assert_eq!(d.phase(), Phase::Running);

    // After a block that held nothing, work waits for the pause: neither a transaction no
    // proposer takes nor one validator's messages make empty blocks back to back.
    let mut d = committed_height_one(false, true);
    assert_eq!(d.next_deadline(), Some(105));
    assert!(d.on(50, Event::Tick).is_empty());
    d.on(105, Event::Tick);
    assert_eq!(d.phase(), Phase::Running);
}

/// The next proposer's prevote for its block at height 2.
fn next_proposers_prevote(keys: &[Keypair], set: &ValidatorSet) -> Message {
    let next = ProposerSchedule::genesis(set.clone()).next_height(set.clone());
    let proposer2 = index_of(keys, next.proposer_key(0));
    Message::Vote(
        Vote {
            kind: VoteKind::Prevote,
            height: Height(2),
            round: Round(0),
            block: Some(Hash::digest(b"block 2")),
        }
        .sign(&keys[proposer2], &testing::chain_id()),
    )
}

#[test]
fn a_message_for_the_next_height_while_this_one_is_decided_or_stored_starts_it_at_once() {
    for while_stored in [false, true] {
        let (keys, set, mut d, _) = if while_stored {
            deciding_height_one()
        } else {
            deciding_height_one_after(|keys, set| vec![next_proposers_prevote(keys, set)])
        };
        d.on(4, Event::TxsWaiting(false));
        if while_stored {
            // The next proposer moved on first and prevoted for its block.
            d.on(4, Event::Message(next_proposers_prevote(&keys, &set)));
        }
        let stored = height_one_stored(set, false, false);
        d.on(5, Event::Committed(stored));
        // No transaction here, but another validator has started: no waiting for the
        // empty-block interval.
        assert_eq!(d.next_deadline(), Some(5), "while stored: {while_stored}");
        d.on(5, Event::Tick);
        assert_eq!(d.phase(), Phase::Running);
    }
    // Without such a message, the empty-block interval.
    let (_, set, mut d, _) = deciding_height_one();
    d.on(4, Event::TxsWaiting(false));
    let stored = height_one_stored(set, false, false);
    d.on(5, Event::Committed(stored));
    assert_eq!(d.next_deadline(), Some(10_005));
}

#[test]
fn after_a_short_height_waiting_transactions_start_the_next_at_the_minimum_pace() {
    // Height 1 started at 0 and was stored at 5: at 30 ms a height, the next starts at 30.
    let (_, set, mut d, _) = deciding_height_one();
    d.set_intervals(100, 10_000, 30);
    d.on(5, Event::Committed(height_one_stored(set, false, false)));
    assert_eq!(d.next_deadline(), Some(30));
    assert!(d.on(20, Event::Tick).is_empty());
    assert_eq!(d.phase(), Phase::Waiting);
    d.on(30, Event::Tick);
    assert_eq!(d.phase(), Phase::Running);

    // A height that took longer than the minimum is followed at once.
    let (_, set, mut d, _) = deciding_height_one();
    d.set_intervals(100, 10_000, 3);
    d.on(5, Event::Committed(height_one_stored(set, false, false)));
    assert_eq!(d.next_deadline(), Some(5));

    // Another validator already at the next height: at once, whatever the minimum.
    let (keys, set, mut d, _) = deciding_height_one();
    d.set_intervals(100, 10_000, 30);
    d.on(4, Event::Message(next_proposers_prevote(&keys, &set)));
    d.on(5, Event::Committed(height_one_stored(set, false, false)));
    assert_eq!(d.next_deadline(), Some(5));

    // Behind (the block came by block sync): at once.
    let (_, set, mut d, _) = deciding_height_one();
    d.set_intervals(100, 10_000, 30);
    let mut stored = height_one_stored(set, false, false);
    stored.synced = true;
    d.on(5, Event::Committed(stored));
    assert_eq!(d.next_deadline(), Some(5));
}
