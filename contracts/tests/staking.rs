//! Validators: council changes take effect two heights later; verified equivocation
//! evidence slashes and jails, once; evidence that does not hold changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use acta_contracts::{
    staking::{
        evidence_still_due, nodes, validators_at, NS_JAILED, NS_VALIDATORS, NS_VALIDATOR_NODES,
    },
    view::StateView,
};
use acta_ledger::{
    records::{GovAction, JailRecord, ValidatorNode},
    state::{state_key, AuthenticatedState},
    testing,
    tx::GovernanceCall,
    types::{Round, Text},
    validator::{SetHistory, ValidatorSet, SET_HISTORY_KEY},
    vote::{Evidence, Vote, VoteKind},
    Call, Hash, Height, Keypair, PublicKey,
};
use common::{council_keys, genesis_validators, Chain};

fn powers(set: &ValidatorSet) -> Vec<(PublicKey, u64)> {
    set.validators()
        .iter()
        .map(|v| (v.public_key, v.power.0))
        .collect()
}

/// A validator node whose libp2p key is `[seed; 32]`.
fn node(seed: u8) -> ValidatorNode {
    ValidatorNode::from_ed25519(&[seed; 32], "/ip4/10.0.0.5/tcp/26656").unwrap()
}

fn power_of(set: &ValidatorSet, key: &PublicKey) -> Option<u64> {
    set.validators()
        .iter()
        .find(|v| v.public_key == *key)
        .map(|v| v.power.0)
}

#[test]
fn council_validator_changes_take_effect_two_heights_later() {
    let mut c = Chain::new();
    let (keys, genesis) = genesis_validators();
    let newcomer = testing::key(0xa1, 0).public();
    let council = council_keys();
    // One approval of two: nothing changes.
    let action = GovAction::AddValidator {
        key: newcomer,
        power: 50,
        node: node(1),
    };
    let action_hash = action.hash();
    c.ok(
        &council[0],
        Call::Governance(GovernanceCall::Propose { action }),
    );
    let h = c.height();
    assert_eq!(validators_at(&c.state, Height(h.0 + 2)).unwrap(), genesis);
    c.ok(
        &council[1],
        Call::Governance(GovernanceCall::Approve {
            proposal: 0,
            action_hash,
        }),
    );
    let changed_at = c.height();
    // Its node is admitted at once, before its power counts.
    assert_eq!(
        c.read::<ValidatorNode>(NS_VALIDATOR_NODES, &newcomer.0),
        Some(node(1))
    );
    let admitted = nodes(&c.state, changed_at).unwrap();
    assert_eq!(admitted.len(), 5);
    assert!(admitted
        .iter()
        .any(|(v, n)| v.public_key == newcomer && n.as_ref() == Some(&node(1))));
    // The set that signs the next block is still the old one; the one after, the new one.
    assert_eq!(validators_at(&c.state, changed_at.next()).unwrap(), genesis);
    let after = validators_at(&c.state, Height(changed_at.0 + 2)).unwrap();
    assert_eq!(power_of(&after, &newcomer), Some(50));
    assert_eq!(after.total_power().0, 450);
    // Re-power and remove.
    c.council_do(GovAction::SetPower {
        key: keys[0].public(),
        power: 300,
    });
    c.council_do(GovAction::RemoveValidator { key: newcomer });
    assert_eq!(
        c.read::<ValidatorNode>(NS_VALIDATOR_NODES, &newcomer.0),
        None
    );
    assert!(nodes(&c.state, c.height())
        .unwrap()
        .iter()
        .all(|(v, _)| v.public_key != newcomer));
    c.council_do(GovAction::RemoveValidator {
        key: keys[1].public(),
    });
    let now: ValidatorSet = c.read(NS_VALIDATORS, b"set").unwrap();
    assert_eq!(power_of(&now, &keys[0].public()), Some(300));
    assert_eq!(power_of(&now, &keys[1].public()), None);
    assert_eq!(
        validators_at(&c.state, Height(c.height().0 + 2)).unwrap(),
        now
    );
    // History stays readable: the genesis set still signs heights 1 and 2.
    assert_eq!(validators_at(&c.state, Height(1)).unwrap(), genesis);
    // The state's history of set changes chains each block that changed the set, with the
    // set it wrote (format version 14); none before the first change.
    let mut expected = SetHistory::default();
    for h in 1..=c.height().0 {
        let before = validators_at(&c.state, Height(h + 1)).unwrap();
        let after = validators_at(&c.state, Height(h + 2)).unwrap();
        if after != before {
            expected = expected.then(Height(h), &after.hash());
        }
        let recorded = c
            .state
            .get(&state_key(NS_VALIDATORS, SET_HISTORY_KEY), Height(h))
            .unwrap()
            .map(|b| borsh::from_slice::<SetHistory>(&b).unwrap());
        assert_eq!(
            recorded.unwrap_or_default(),
            expected,
            "the history after block {h}"
        );
        if h < changed_at.0 {
            assert_eq!(recorded, None, "written before any change, at {h}");
        }
    }
    assert_eq!(expected.changes, 4);
}

#[test]
fn council_validator_changes_that_make_no_sense_are_refused() {
    let mut c = Chain::new();
    let (keys, _) = genesis_validators();
    let council = council_keys();
    let propose = |action| Call::Governance(GovernanceCall::Propose { action });
    c.no(
        &council[0],
        propose(GovAction::AddValidator {
            key: keys[0].public(),
            power: 5,
            node: node(1),
        }),
        "already_exists",
    );
    // A node that is not an Ed25519 libp2p identity, or an address that names a peer.
    let mut bad = node(1);
    bad.peer_id = Text::new("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").unwrap();
    c.no(
        &council[0],
        propose(GovAction::AddValidator {
            key: testing::key(0xa1, 5).public(),
            power: 5,
            node: bad,
        }),
        "invalid",
    );
    let mut bad = node(1);
    bad.address = Text::new(format!("/ip4/10.0.0.5/tcp/26656/p2p/{}", bad.peer_id)).unwrap();
    c.no(
        &council[0],
        propose(GovAction::AddValidator {
            key: testing::key(0xa1, 5).public(),
            power: 5,
            node: bad,
        }),
        "invalid",
    );
    // Another validator's node.
    c.council_do(GovAction::AddValidator {
        key: testing::key(0xa1, 6).public(),
        power: 5,
        node: node(2),
    });
    c.no(
        &council[0],
        propose(GovAction::AddValidator {
            key: testing::key(0xa1, 7).public(),
            power: 5,
            node: node(2),
        }),
        "already_exists",
    );
    c.no(
        &council[0],
        propose(GovAction::RemoveValidator {
            key: testing::key(0xa1, 5).public(),
        }),
        "not_found",
    );
    c.no(
        &council[0],
        propose(GovAction::SetPower {
            key: keys[0].public(),
            power: 0,
        }),
        "invalid",
    );
    c.no(
        &council[0],
        propose(GovAction::AddValidator {
            key: testing::key(0xa1, 5).public(),
            power: u64::MAX,
            node: node(3),
        }),
        "invalid",
    );
    // Not a council member.
    c.no(
        &keys[0],
        propose(GovAction::SetParameter {
            name: Text::new("slash_fraction_bps").unwrap(),
            value: 10_000,
        }),
        "unauthorized",
    );
}

fn equivocation(key: &Keypair, height: u64) -> Evidence {
    let vote = |block: u8| Vote {
        kind: VoteKind::Prevote,
        height: Height(height),
        round: Round(0),
        block: Some(Hash([block; 32])),
    };
    let chain = testing::chain_id();
    Evidence::duplicate_vote(vote(1).sign(key, &chain), vote(2).sign(key, &chain))
}

#[test]
fn verified_equivocation_slashes_and_jails_once() {
    let mut c = Chain::new();
    let (keys, _) = genesis_validators();
    c.advance_to(3);
    let offender = keys[2].public();
    let ev = equivocation(&keys[2], 2);
    // The same evidence twice in one block counts once.
    c.block_with(&[], &[ev.clone(), ev.clone()]);
    let kinds: Vec<&str> = c.last_events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["validator_slashed", "evidence_ignored"]);
    let punished_at = c.height();
    let set: ValidatorSet = c.read(NS_VALIDATORS, b"set").unwrap();
    assert_eq!(power_of(&set, &offender), None, "jailed: out of the set");
    assert_eq!(set.len(), 3);
    let jail: JailRecord = c.read(NS_JAILED, &offender.0).unwrap();
    // 5% of 100 by default.
    assert_eq!(jail.slashed_power, 95);
    // What a node asks before it keeps and forwards evidence: this offence is spent, the
    // next height's is still due, and one beyond the evidence's age or to come is not.
    let due = |c: &Chain, offence: u64| {
        let view = StateView::new(&c.state, c.height());
        evidence_still_due(&view, c.height(), &offender, Height(offence)).unwrap()
    };
    assert!(!due(&c, 2), "punished already");
    assert!(due(&c, 3));
    assert!(!due(&c, 0));
    assert!(!due(&c, c.height().0 + 1), "not decided yet");
    assert_eq!(jail.offence, Height(2));
    // Effective two heights later.
    assert_eq!(
        power_of(
            &validators_at(&c.state, punished_at.next()).unwrap(),
            &offender
        ),
        Some(100)
    );
    assert_eq!(
        power_of(
            &validators_at(&c.state, Height(punished_at.0 + 2)).unwrap(),
            &offender
        ),
        None
    );
    // The same evidence in a later block changes nothing.
    let root = c.root();
    c.block_with(&[], &[ev]);
    assert_eq!(c.root(), root);
    assert_eq!(c.last_events[0].kind, "evidence_ignored");
    // A second offence cuts the jailed power again, rounded up: 5% of 95 is 4.75, so 5.
    c.block_with(&[], &[equivocation(&keys[2], 3)]);
    assert_eq!(c.last_events[0].kind, "validator_slashed");
    let jail: JailRecord = c.read(NS_JAILED, &offender.0).unwrap();
    assert_eq!(jail.slashed_power, 90);
    // The council can re-admit it, at its slashed power.
    c.council_do(GovAction::AddValidator {
        key: offender,
        power: jail.slashed_power,
        node: node(4),
    });
    assert!(c.read::<JailRecord>(NS_JAILED, &offender.0).is_none());
    let set: ValidatorSet = c.read(NS_VALIDATORS, b"set").unwrap();
    assert_eq!(power_of(&set, &offender), Some(90));
}

#[test]
fn evidence_that_does_not_hold_changes_nothing() {
    let mut c = Chain::new();
    let (keys, genesis) = genesis_validators();
    c.advance_to(3);
    let root = c.root();
    // A forged signature.
    let mut forged = equivocation(&keys[0], 2);
    if let Evidence::DuplicateVote { b, .. } = &mut forged {
        b.signature.0[0] ^= 1;
    }
    // A key that was never a validator.
    let outsider = equivocation(&testing::key(0xa1, 9), 2);
    // An offence in the future, and one at height 0.
    let future = equivocation(&keys[0], 10);
    let zero = equivocation(&keys[0], 0);
    c.block_with(&[], &[forged, outsider, future, zero]);
    assert_eq!(c.root(), root);
    assert!(c.last_events.iter().all(|e| e.kind == "evidence_ignored"));
    assert_eq!(c.last_events.len(), 4);
    assert_eq!(
        powers(&c.read(NS_VALIDATORS, b"set").unwrap()),
        powers(&genesis)
    );
}
