//! A transaction is final once it is in a block: refused or accepted, it uses up its nonce,
//! so no refused transaction can be replayed later; approvals count only for the action
//! they name; receipts hold codes, not words; credentials follow the DIDs they bind; chain
//! parameters are a typed registry.

#![allow(clippy::unwrap_used)]

mod common;

use acta_contracts::{
    credential::{self, Standing, NS_CREDENTIAL},
    params::{self, ParamRecord, NS_PARAM},
    view::StateView,
    BlockResults, Outcome, RefusalCode, RefusalMessage,
};
use acta_ledger::{
    records::{CredentialKind, CredentialRecord, DidRecord, GovAction, GovProposal},
    tx::{AttestationBatch, BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::Text,
    Call, Hash, Height, Keypair, Timestamp, Transaction,
};
use common::{council_keys, did_of, Chain};

fn gov(call: GovernanceCall) -> Call {
    Call::Governance(call)
}

fn propose(action: GovAction) -> Call {
    gov(GovernanceCall::Propose { action })
}

fn approve(proposal: u64, action: &GovAction) -> Call {
    gov(GovernanceCall::Approve {
        proposal,
        action_hash: action.hash(),
    })
}

fn slash_all() -> GovAction {
    GovAction::SetParameter {
        name: Text::new("slash_fraction_bps").unwrap(),
        value: 10_000,
    }
}

/// The attack an outside client found: an approval refused because its proposal did not
/// exist yet is replayed once a proposal of that number exists, and a single member's
/// proposal passes with a "majority" of two.
#[test]
fn a_refused_approval_cannot_be_replayed_onto_a_later_proposal() {
    let mut c = Chain::new();
    let council = council_keys();
    // 1. Member 1 approves proposal 0 before it exists: refused, and its nonce is used up.
    let early = c.sign(&council[1], approve(0, &slash_all()));
    c.refused(early.clone(), "not_found");
    assert_eq!(c.nonce(&council[1]), 1);
    // 2. Member 0 alone proposes to slash everything: proposal 0, one approval of two.
    c.ok(&council[0], propose(slash_all()));
    let p: GovProposal = c.read("gov_proposal", &0u64.to_be_bytes()).unwrap();
    assert_eq!(p.executed, None);
    // 3. Anyone resubmits member 1's old bytes: no block may hold them.
    c.invalid(early);
    let p: GovProposal = c.read("gov_proposal", &0u64.to_be_bytes()).unwrap();
    assert_eq!(p.executed, None, "the replay carried the proposal out");
    assert!(c
        .read::<ParamRecord>(NS_PARAM, b"slash_fraction_bps")
        .is_none());
}

#[test]
fn an_approval_counts_only_for_the_action_it_names() {
    let mut c = Chain::new();
    let council = council_keys();
    let meant = GovAction::SetParameter {
        name: Text::new("evidence_max_age").unwrap(),
        value: 500,
    };
    // Member 0 proposes something else under the number member 1 expects.
    c.ok(&council[0], propose(slash_all()));
    c.no(&council[1], approve(0, &meant), "action_mismatch");
    let p: GovProposal = c.read("gov_proposal", &0u64.to_be_bytes()).unwrap();
    assert_eq!(p.approvals, vec![council[0].public()]);
    assert_eq!(p.executed, None);
    // An approval of what the proposal does hold carries it out.
    c.ok(&council[1], approve(0, &slash_all()));
    let p: GovProposal = c.read("gov_proposal", &0u64.to_be_bytes()).unwrap();
    assert_eq!(p.executed, Some(c.height()));
}

/// Every kind of refusal, replayed: the block that would hold the replay is invalid, so the
/// replay changes nothing, whatever the state has become since.
#[test]
fn no_refused_transaction_of_any_kind_can_be_replayed() {
    let mut c = Chain::new();
    let council = council_keys();
    let alice = common::user(1);
    let alice_did = c.create_did(&alice);
    let outsider = common::user(2);
    let ghost = did_of(&common::user(3));
    let batch = AttestationBatch {
        device: alice_did,
        stream: Text::new("air/pm25").unwrap(),
        sequence: 0,
        prev_batch_hash: Hash([0; 32]),
        window_start: Timestamp(1),
        window_end: Timestamp(2),
        reading_count: 1,
        readings_root: Hash([1; 32]),
        raw_batch_hash: Hash([2; 32]),
    };
    let refusals: Vec<(&Keypair, Call, &str)> = vec![
        (
            &alice,
            Call::Identity(IdentityCall::CreateDid {
                next_key_hash: None,
            }),
            "already_exists",
        ),
        (
            &alice,
            Call::Identity(IdentityCall::Deactivate { did: ghost }),
            "not_found",
        ),
        (
            &alice,
            Call::Credential(CredentialCall::Revoke { id: Hash([9; 32]) }),
            "not_found",
        ),
        (&outsider, propose(slash_all()), "unauthorized"),
        (&council[2], approve(5, &slash_all()), "not_found"),
        (
            &council[2],
            propose(GovAction::SetParameter {
                name: Text::new("slash_fraction_bsp").unwrap(),
                value: 100,
            }),
            "unknown_parameter",
        ),
        (&alice, Call::Sensor(SensorCall::Attest(batch)), "not_found"),
        (
            &alice,
            Call::Budget(BudgetCall::Vote {
                round: 0,
                voter: alice_did,
                projects: vec![0],
            }),
            "not_found",
        ),
    ];
    let mut refused = Vec::new();
    for (key, call, code) in refusals {
        let tx = c.sign(key, call);
        c.refused(tx.clone(), code);
        refused.push(tx);
    }
    // The world moves on: proposal 0 now exists, a credential too.
    c.ok(&council[0], propose(slash_all()));
    let agency = c.issuer(0, vec![CredentialKind::Resident]);
    c.credential(
        &agency,
        alice_did,
        CredentialKind::Resident,
        Some("old-town"),
    );
    let root = c.root();
    for tx in refused {
        c.invalid(tx);
    }
    assert_eq!(c.root(), root);
}

/// An included transaction's id is committed once: a block may not hold it twice, nor may
/// a later block hold it again.
#[test]
fn an_id_is_committed_at_most_once() {
    let mut c = Chain::new();
    let alice = common::user(1);
    let create = c.sign(
        &alice,
        Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    );
    c.accepted(create.clone());
    c.invalid(create);
}

#[test]
fn a_block_with_a_bad_signature_or_a_foreign_chain_is_invalid() {
    let c = Chain::new();
    let alice = common::user(1);
    let call = Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    });
    let mut forged = c.sign(&alice, call.clone());
    forged.signature.0[5] ^= 1;
    c.invalid(forged);
    let foreign = Transaction::sign(
        &alice,
        acta_ledger::ChainId::new("acta-other").unwrap(),
        0,
        acta_ledger::testing::NO_EXPIRY,
        call.clone(),
    );
    c.invalid(foreign);
    c.invalid(common::tx(&alice, 1, call));
}

/// `results_root` commits to codes only: the words of a refusal can change (another
/// wording, another dependency's `Display`) without changing any root.
#[test]
fn refusal_messages_are_not_part_of_the_results_root() {
    let c = Chain::new();
    let council = council_keys();
    let tx = c.sign(&council[0], approve(3, &slash_all()));
    let outcome = c.execute(std::slice::from_ref(&tx), &[]);
    assert_eq!(
        outcome.receipts[0].outcome,
        Outcome::Refused {
            code: RefusalCode::NotFound
        }
    );
    let message = outcome.messages[0].message.clone();
    assert!(message.contains("proposal 3"), "{message}");
    let original = outcome.into_results();
    let mut reworded = original.clone();
    reworded.messages = vec![RefusalMessage {
        index: 0,
        message: "Nie znaleziono wniosku 3".into(),
    }];
    assert_ne!(original, reworded);
    assert_eq!(
        BlockResults::results_root(&original.receipts),
        BlockResults::results_root(&reworded.receipts)
    );
    // The receipt is the id and a two-byte code: no text at all.
    let leaf = acta_ledger::codec::encode(&original.receipts[0]);
    let mut expected = tx.id().0.to_vec();
    expected.extend([1, 1, 0]);
    assert_eq!(leaf, expected);
}

fn standing_at(c: &Chain, id: Hash, height: Height) -> Standing {
    let view = StateView::new(&c.state, height);
    let record: CredentialRecord = view.get(NS_CREDENTIAL, &id.0).unwrap().unwrap();
    credential::status_in(&view, &record, Timestamp(1_700_000_000_000)).unwrap()
}

#[test]
fn a_credential_follows_the_deactivation_of_its_subject_or_issuer() {
    let mut c = Chain::new();
    let agency = c.issuer(0, vec![CredentialKind::Resident]);
    let alice = common::user(1);
    let bob = common::user(2);
    let alice_did = c.create_did(&alice);
    let bob_did = c.create_did(&bob);
    let for_alice = c.credential(
        &agency,
        alice_did,
        CredentialKind::Resident,
        Some("old-town"),
    );
    let for_bob = c.credential(&agency, bob_did, CredentialKind::Resident, Some("old-town"));
    let before = c.height();
    assert_eq!(standing_at(&c, for_alice, before), Standing::Valid);

    c.ok(
        &alice,
        Call::Identity(IdentityCall::Deactivate { did: alice_did }),
    );
    let after = c.height();
    assert_eq!(standing_at(&c, for_alice, before), Standing::Valid);
    assert_eq!(
        standing_at(&c, for_alice, after),
        Standing::SubjectDeactivated
    );
    assert_eq!(standing_at(&c, for_bob, after), Standing::Valid);
    c.advance_to(after.0 + 3);
    assert_eq!(
        standing_at(&c, for_alice, c.height()),
        Standing::SubjectDeactivated
    );

    // The issuer's DID goes: every credential it issued reads so from then on.
    let agency_did = did_of(&agency);
    c.ok(
        &agency,
        Call::Identity(IdentityCall::Deactivate { did: agency_did }),
    );
    let gone = c.height();
    assert_eq!(standing_at(&c, for_bob, gone), Standing::IssuerDeactivated);
    assert_eq!(
        standing_at(&c, for_bob, Height(gone.0 - 1)),
        Standing::Valid
    );
    // Revocation comes first, and the pure rule agrees with the stored records.
    let record: CredentialRecord = c.read(NS_CREDENTIAL, &for_alice.0).unwrap();
    let alice_record: DidRecord = c.read("did", &alice_did.0).unwrap();
    let mut revoked = record.clone();
    revoked.status = acta_ledger::records::CredentialStatus::Revoked;
    let t = Timestamp(1_700_000_000_000);
    assert_eq!(
        credential::status(&revoked, Some(&alice_record), None, t),
        Standing::Revoked
    );
    assert_eq!(
        credential::status(&record, Some(&alice_record), None, t),
        Standing::SubjectDeactivated
    );
}

#[test]
fn parameters_are_checked_when_proposed_and_stored_with_their_height() {
    let mut c = Chain::new();
    let council = council_keys();
    let set = |name: &str, value: u64| GovAction::SetParameter {
        name: Text::new(name).unwrap(),
        value,
    };
    c.no(
        &council[0],
        propose(set("slash_fraction_bsp", 100)),
        "unknown_parameter",
    );
    c.no(
        &council[0],
        propose(set("slash_fraction_bps", 10_001)),
        "out_of_range",
    );
    c.no(
        &council[0],
        propose(set("evidence_max_age", 0)),
        "out_of_range",
    );
    assert!(
        c.read::<u64>("gov_next", b"next").is_none(),
        "no proposal was stored"
    );
    let view = StateView::new(&c.state, c.height());
    assert_eq!(
        params::get(&view, &params::SLASH_FRACTION_BPS).unwrap(),
        500
    );

    c.council_do(set("slash_fraction_bps", 2_500));
    let at = c.height();
    let record: ParamRecord = c.read(NS_PARAM, b"slash_fraction_bps").unwrap();
    assert_eq!(
        record,
        ParamRecord {
            value: 2_500,
            set_at: at
        }
    );
    let view = StateView::new(&c.state, c.height());
    assert_eq!(
        params::get(&view, &params::SLASH_FRACTION_BPS).unwrap(),
        2_500
    );
    assert_eq!(
        params::get(&view, &params::EVIDENCE_MAX_AGE).unwrap(),
        100_000
    );
}

/// A transaction's time limit is signed and binding: a block later than it may not hold it,
/// so the bytes of a transaction that no block took (a pool refused it) die with it.
#[test]
fn a_block_after_a_transactions_time_limit_cannot_hold_it() {
    let c = Chain::new();
    let alice = common::user(1);
    let call = Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    });
    let time = c.ctx().time;
    let sign = |valid_until: Timestamp| {
        Transaction::sign(
            &alice,
            acta_ledger::testing::chain_id(),
            0,
            valid_until,
            call.clone(),
        )
    };
    c.invalid(sign(Timestamp(time.0 - 1)));
    let mut c = c;
    c.accepted(sign(time));
}

/// What a pool checks: each call against the state with the earlier pooled calls applied,
/// as the next block would run them; a refusal leaves nothing behind.
#[test]
fn the_pending_state_judges_each_call_after_the_pooled_ones() {
    use acta_contracts::pending::{CheckError, PendingState};

    let c = Chain::new();
    let council = council_keys();
    let ctx = c.ctx();
    let mut pending = PendingState::new(c.height());
    let refusal = |r: Result<(), CheckError>| match r {
        Err(CheckError::Refused { code, message }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // An approval of a proposal that is not there yet is refused, and changes nothing.
    let early = common::tx(&council[1], 0, approve(0, &slash_all()));
    let (code, message) = refusal(pending.check(&c.state, &ctx, &early, early.id()));
    assert_eq!(code, RefusalCode::NotFound);
    assert!(message.contains("proposal 0"), "{message}");
    // Once the proposal waits in the pool, an approval of it sees it.
    let proposal = common::tx(&council[0], 0, propose(slash_all()));
    pending
        .check(&c.state, &ctx, &proposal, proposal.id())
        .unwrap();
    pending.check(&c.state, &ctx, &early, early.id()).unwrap();
    // Two accepted approvals carried the action out: a third one finds it done.
    let late = common::tx(&council[2], 0, approve(0, &slash_all()));
    assert!(matches!(
        pending.check(&c.state, &ctx, &late, late.id()),
        Err(CheckError::Refused { .. })
    ));
    // The committed state is untouched; a fresh pending state starts from it.
    assert_eq!(pending.base(), c.height());
    let mut fresh = PendingState::new(c.height());
    let (code, _) = refusal(fresh.check(&c.state, &ctx, &early, early.id()));
    assert_eq!(code, RefusalCode::NotFound);
    // And the block the pool would build gives the same outcomes.
    let receipts = c.execute(&[proposal, early, late], &[]).receipts;
    assert!(receipts[0].is_accepted() && receipts[1].is_accepted());
    assert!(!receipts[2].is_accepted());
}

/// After a block, a pool runs again only the calls that read a value which changed: a
/// call that read what a departed call wrote runs again (and is refused if that is gone),
/// one whose reads still find the same values keeps its writes without running; and every
/// call runs again once `FULL_RECHECK_MS` of block time have passed.
#[test]
fn a_recheck_runs_again_only_the_calls_whose_reads_changed() {
    use acta_contracts::pending::{PendingState, FULL_RECHECK_MS};
    use acta_ledger::{Hash, Timestamp};

    let mut c = Chain::new();
    let council = council_keys();
    let ctx = c.ctx();
    let proposal = common::tx(&council[0], 0, propose(slash_all()));
    let resident = acta_ledger::testing::key(0x5e, 1);
    let other = common::tx(
        &resident,
        0,
        Call::Identity(acta_ledger::tx::IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    );
    let approval = common::tx(&council[1], 0, approve(0, &slash_all()));
    let pool = [&proposal, &other, &approval];
    let start = |pending: &mut PendingState, state: &acta_ledger::state::MemoryState| {
        for tx in pool {
            pending.check(state, &ctx, tx, tx.id()).unwrap();
        }
        // The first recheck runs every call.
        pending.rebase(c.height(), None::<&[Hash]>, |_| true, ctx.time);
        for tx in pool {
            pending.recheck(state, &ctx, tx, tx.id()).unwrap();
        }
        assert_eq!(pending.calls_run(), 6);
    };
    let same = Some(&[] as &[Hash]);

    // Nothing changed and everything is pooled: nothing runs.
    let mut pending = PendingState::new(c.height());
    start(&mut pending, &c.state);
    pending.rebase(c.height(), same, |_| true, ctx.time);
    for tx in pool {
        pending.recheck(&c.state, &ctx, tx, tx.id()).unwrap();
    }
    assert_eq!(pending.calls_run(), 6);
    // `FULL_RECHECK_MS` of block time later, everything runs.
    let later = Timestamp(ctx.time.0 + FULL_RECHECK_MS);
    pending.rebase(c.height(), same, |_| true, later);
    for tx in pool {
        pending.recheck(&c.state, &ctx, tx, tx.id()).unwrap();
    }
    assert_eq!(pending.calls_run(), 9);

    // The proposal leaves the pool without a block: the approval, which read it, runs
    // again and is refused; the other call does not run.
    let mut pending = PendingState::new(c.height());
    start(&mut pending, &c.state);
    pending.rebase(c.height(), same, |id| *id != proposal.id(), ctx.time);
    pending.recheck(&c.state, &ctx, &other, other.id()).unwrap();
    assert_eq!(pending.calls_run(), 6);
    assert!(pending
        .recheck(&c.state, &ctx, &approval, approval.id())
        .is_err());
    assert_eq!(pending.calls_run(), 7);

    // The proposal is committed, as the pool ran it: the approval finds the same
    // proposal in the state and the other call its own reads; both stand, unrun, and
    // the pool's writes are those it would compute from scratch.
    let mut pending = PendingState::new(c.height());
    start(&mut pending, &c.state);
    let block = c.execute(std::slice::from_ref(&proposal), &[]);
    let changed: Vec<Hash> = block.changes.keys().copied().collect();
    c.state.commit(&block.changes).unwrap();
    pending.rebase(
        c.height(),
        Some(&changed),
        |id| *id != proposal.id(),
        ctx.time,
    );
    let next = c.ctx();
    for tx in [&other, &approval] {
        pending.recheck(&c.state, &next, tx, tx.id()).unwrap();
    }
    assert_eq!(pending.calls_run(), 6, "nothing they read changed");
    let mut fresh = PendingState::new(c.height());
    for tx in [&other, &approval] {
        fresh.check(&c.state, &next, tx, tx.id()).unwrap();
    }
    // A third approval is refused by both alike: the action was carried out.
    let third = common::tx(&council[2], 0, approve(0, &slash_all()));
    assert!(pending.check(&c.state, &next, &third, third.id()).is_err());
    assert!(fresh.check(&c.state, &next, &third, third.id()).is_err());
}
