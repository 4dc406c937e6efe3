//! Participatory budgets on the ledger: rounds, proposals, ballots, the tally at close, the
//! `.pb` export that replays to the same outcome, and every refusal.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::sync::Arc;

use acta_contracts::{
    budget::{self, NS_PENDING, NS_ROUND, NS_TALLY, NS_VOTERS},
    tally::{self, pb},
    tallying,
    view::StateView,
};
use acta_ledger::{
    records::{
        BallotFormat, BudgetRound, CredentialKind, GovAction, RoundOpener, RoundSpec, RoundStatus,
        Rule, RuleProfile, TallyRecord, TieBreak,
    },
    tx::{BudgetCall, CredentialCall, GovernanceCall, IdentityCall},
    types::Text,
    Call, Did, Hash, Height, Keypair, Timestamp,
};
use common::{did_of, height_of, time_of as at, tx, user, Chain, TALLY_DELAY};

const DISTRICT: &str = "nowa-huta";

struct Setup {
    chain: Chain,
    issuer: Keypair,
    office: Keypair,
    /// Residents of DISTRICT, with their credential ids.
    residents: Vec<(Keypair, Hash)>,
    /// A resident of another district.
    outsider: Keypair,
}

fn setup(residents: u32) -> Setup {
    let mut chain = Chain::new();
    let issuer = chain.issuer(
        1,
        vec![CredentialKind::Resident, CredentialKind::BudgetOffice],
    );
    let office = user(1000);
    let office_did = chain.create_did(&office);
    chain.credential(&issuer, office_did, CredentialKind::BudgetOffice, None);
    let mut list = Vec::new();
    for i in 0..residents {
        let key = user(i);
        let did = chain.create_did(&key);
        let id = chain.credential(&issuer, did, CredentialKind::Resident, Some(DISTRICT));
        list.push((key, id));
    }
    let outsider = user(2000);
    let did = chain.create_did(&outsider);
    chain.credential(&issuer, did, CredentialKind::Resident, Some("podgorze"));
    Setup {
        chain,
        issuer,
        office,
        residents: list,
        outsider,
    }
}

fn spec(c: &Chain, budget: u64, ballot: BallotFormat, rule: Rule) -> RoundSpec {
    let h = c.height().0 + 1;
    RoundSpec {
        title: Text::new("Green budget").unwrap(),
        district: Text::new(DISTRICT).unwrap(),
        budget,
        currency: Text::new("PLN").unwrap(),
        proposals_from: at(h + 2),
        voting_from: at(h + 20),
        closes_at: at(h + 40),
        ballot,
        rule: RuleProfile {
            rule,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: acta_ledger::records::BallotSecrecy::Public,
    }
}

fn open(office: &Keypair, spec: RoundSpec) -> Call {
    Call::Budget(BudgetCall::OpenRound {
        office: did_of(office),
        spec,
    })
}

fn propose(round: u64, who: &Keypair, cost: u64) -> Call {
    Call::Budget(BudgetCall::Propose {
        round,
        proposer: did_of(who),
        title: Text::new(format!("project for {cost}")).unwrap(),
        cost,
    })
}

fn vote(round: u64, who: &Keypair, projects: &[u32]) -> Call {
    Call::Budget(BudgetCall::Vote {
        round,
        voter: did_of(who),
        projects: projects.to_vec(),
    })
}

fn round(c: &Chain, id: u64) -> BudgetRound {
    c.read(NS_ROUND, &id.to_be_bytes()).unwrap()
}

#[test]
fn a_round_runs_from_proposals_to_a_stored_tally_that_its_pb_export_replays() {
    let Setup {
        chain: mut c,
        office,
        residents,
        ..
    } = setup(6);
    let s = spec(
        &c,
        1000,
        BallotFormat::Approval { min: 1, max: 3 },
        Rule::MesAdd1,
    );
    c.ok(&office, open(&office, s.clone()));
    // A round under way: nodes keep making blocks for its phases.
    assert_eq!(c.read::<u64>(NS_PENDING, b"pending"), Some(1));
    let r = &residents;
    c.advance_to(height_of(s.proposals_from));
    for (i, cost) in [400u64, 300, 300, 500].into_iter().enumerate() {
        c.ok(&r[i].0, propose(0, &r[i].0, cost));
    }
    assert_eq!(round(&c, 0).projects, 4);
    c.advance_to(height_of(s.voting_from));
    let ballots: [&[u32]; 6] = [&[0, 1], &[0, 1], &[0, 2], &[2], &[3], &[3, 1]];
    for (i, b) in ballots.iter().enumerate() {
        c.ok(&r[i].0, vote(0, &r[i].0, b));
    }
    // The last voter changes their mind: the new ballot replaces the old one.
    c.ok(&r[5].0, vote(0, &r[5].0, &[3]));
    assert_eq!(c.read::<u64>(NS_VOTERS, &0u64.to_be_bytes()), Some(6));
    c.advance_to(height_of(s.closes_at) - 1);
    // The block at closes_at only closes the round: its ballots are frozen as the state
    // before it holds them, and its tally is due TALLY_DELAY heights later.
    let frozen = c.root();
    c.block(&[]);
    let due = Height(height_of(s.closes_at) + TALLY_DELAY);
    assert_eq!(
        round(&c, 0).status,
        RoundStatus::Tallying {
            closed: Height(height_of(s.closes_at)),
            due,
            ballots_at: frozen
        }
    );
    assert!(c.last_events.iter().any(|e| e.kind == "budget_closed"));
    assert_eq!(
        budget::tallying(&StateView::new(&c.state, c.height())).unwrap(),
        vec![(due, 0)]
    );
    assert_eq!(
        c.read::<u64>(NS_PENDING, b"pending"),
        Some(1),
        "still under way"
    );
    c.no(&r[0].0, vote(0, &r[0].0, &[1]), "wrong_phase");
    // A node tallies it on a thread of its own, once.
    let state = Arc::new(c.state.clone());
    assert_eq!(tallying::start(state.clone(), c.height()).unwrap(), 1);
    assert_eq!(
        tallying::start(state, c.height()).unwrap(),
        0,
        "already started"
    );
    c.advance_to(due.0 - 1);
    assert!(c
        .read::<TallyRecord>(NS_TALLY, &0u64.to_be_bytes())
        .is_none());
    c.block(&[]);
    let record: TallyRecord = c.read(NS_TALLY, &0u64.to_be_bytes()).unwrap();
    assert_eq!(round(&c, 0).status, RoundStatus::Tallied);
    assert_eq!(
        c.read::<u64>(NS_PENDING, b"pending"),
        None,
        "none under way"
    );
    assert!(budget::tallying(&StateView::new(&c.state, c.height()))
        .unwrap()
        .is_empty());
    assert_eq!(record.approvals, vec![3, 2, 2, 2]);
    assert_eq!(record.height, due);
    assert!(c.last_events.iter().any(|e| e.kind == "budget_tallied"));
    // Anyone can export the round and replay the tally off the ledger.
    let (_, election, stored) = budget::read_round(&c.state, 0, c.height())
        .unwrap()
        .unwrap();
    assert_eq!(stored.as_ref(), Some(&record));
    let file = pb::write(&election);
    let replayed = tally::tally(&pb::parse(file.as_bytes()).unwrap(), s.rule).unwrap();
    assert_eq!(replayed.selected, record.selected);
    assert_eq!(replayed.total_cost, record.total_cost);
    assert_eq!(replayed.endowment, record.endowment);
    assert!(record.total_cost <= 1000);
    assert!(!record.selected.is_empty());
    // Voting is over.
    c.no(&r[0].0, vote(0, &r[0].0, &[3]), "wrong_phase");
}

#[test]
fn at_most_rounds_pending_max_rounds_are_open_or_tallying_at_once() {
    let Setup {
        chain: mut c,
        office,
        ..
    } = setup(0);
    let max = budget::ROUNDS_PENDING_MAX;
    let base = c.height().0;
    let spec_closing = |c: &Chain, i: u64| {
        let mut s = spec(
            c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        );
        s.proposals_from = at(base + 200);
        s.voting_from = at(base + 300);
        // Rounds close in fours, apart: no closing in the blocks the refusals go into.
        s.closes_at = at(base + 400 + i / 4 * 10);
        s
    };
    for i in 0..max {
        c.ok(&office, open(&office, spec_closing(&c, i)));
    }
    c.no(&office, open(&office, spec_closing(&c, max)), "limit");
    // Closed but not yet tallied, a round still counts.
    let first_due = base + 400 + TALLY_DELAY;
    // (Each helper's transaction goes in the next block.)
    c.advance_to(first_due - 2);
    assert!(matches!(round(&c, 0).status, RoundStatus::Tallying { .. }));
    let fresh = |c: &Chain| {
        let mut s = spec(
            c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        );
        s.closes_at = at(height_of(s.closes_at) + 100);
        s
    };
    c.no(&office, open(&office, fresh(&c)), "limit");
    // Once the first four are tallied, four more may open.
    c.block(&[]);
    assert_eq!(round(&c, 3).status, RoundStatus::Tallied);
    assert_eq!(c.read::<u64>(NS_PENDING, b"pending"), Some(max - 4));
    let mut s = spec(
        &c,
        1000,
        BallotFormat::Approval { min: 1, max: 1 },
        Rule::Greedy,
    );
    s.closes_at = at(height_of(s.closes_at) + 100);
    c.ok(&office, open(&office, s));
}

#[test]
fn the_council_cancels_an_open_round_and_frees_its_place() {
    let Setup {
        chain: mut c,
        office,
        residents,
        ..
    } = setup(1);
    let max = budget::ROUNDS_PENDING_MAX;
    let base = c.height().0;
    // A budget office fills every place with rounds that close about two years ahead.
    let far = |c: &Chain| {
        let mut s = spec(
            c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        );
        s.voting_from = at(base + 200);
        s.closes_at = Timestamp(s.voting_from.0 + 700 * 86_400_000);
        s
    };
    for _ in 0..max {
        c.ok(&office, open(&office, far(&c)));
    }
    c.no(&office, open(&office, far(&c)), "limit");
    let council = common::council_keys();
    let cancel = |round: u64| {
        Call::Governance(GovernanceCall::Propose {
            action: GovAction::CancelBudgetRound { round },
        })
    };
    // Nothing to cancel: refused when proposed.
    c.no(&council[0], cancel(max + 7), "not_found");
    c.council_do(GovAction::CancelBudgetRound { round: 5 });
    let at_height = c.height();
    assert_eq!(
        round(&c, 5).status,
        RoundStatus::Cancelled { at: at_height }
    );
    assert_eq!(c.read::<u64>(NS_PENDING, b"pending"), Some(max - 1));
    let closing = budget::closing(&StateView::new(&c.state, at_height)).unwrap();
    assert_eq!(closing.len() as u64, max - 1);
    assert!(closing.iter().all(|&(_, id)| id != 5));
    // Its place is free; it takes nothing more; it cannot be cancelled twice.
    c.ok(&office, open(&office, far(&c)));
    c.no(&office, open(&office, far(&c)), "limit");
    // Every round takes proposals by now (a block a round), but the cancelled one.
    let (resident, _) = &residents[0];
    c.no(resident, propose(5, resident, 10), "wrong_phase");
    c.ok(resident, propose(6, resident, 10));
    c.no(&council[0], cancel(5), "invalid");
    // In the voting time it takes no ballot, and it is never closed or tallied.
    c.advance_to(base + 201);
    c.no(resident, vote(5, resident, &[0]), "wrong_phase");
    c.ok(resident, vote(6, resident, &[0]));
    assert_eq!(
        round(&c, 5).status,
        RoundStatus::Cancelled { at: at_height }
    );
    assert_eq!(c.read::<TallyRecord>(NS_TALLY, &5u64.to_be_bytes()), None);
}

#[test]
fn a_cancelled_round_never_closes_and_a_round_past_its_voting_is_not_cancelled() {
    let Setup {
        chain: mut c,
        office,
        ..
    } = setup(0);
    let short = |c: &Chain| {
        spec(
            c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        )
    };
    c.ok(&office, open(&office, short(&c))); // round 0, cancelled
    c.ok(&office, open(&office, short(&c))); // round 1, left to close
    c.ok(&office, open(&office, short(&c))); // round 2, proposed for cancelling too late
    let council = common::council_keys();
    let cancel = GovAction::CancelBudgetRound { round: 0 };
    let id = c.read::<u64>("gov_next", b"next").unwrap();
    c.ok(
        &council[0],
        Call::Governance(GovernanceCall::Propose {
            action: cancel.clone(),
        }),
    );
    let approve = c.sign(
        &council[1],
        Call::Governance(GovernanceCall::Approve {
            proposal: id,
            action_hash: cancel.hash(),
        }),
    );
    let receipts = c.block(&[approve]);
    let acta_ledger::receipt::Outcome::Accepted { events } = &receipts[0].outcome else {
        panic!("{receipts:?}");
    };
    assert!(
        events.iter().any(|e| e.kind == "budget_round_cancelled"
            && e.attributes == vec![("round".to_string(), "0".to_string())]),
        "{events:?}"
    );
    let cancelled_at = c.height();
    // A proposal to cancel round 2 made while it is open is refused when its approval
    // comes after its voting ended.
    let late = GovAction::CancelBudgetRound { round: 2 };
    let late_id = c.read::<u64>("gov_next", b"next").unwrap();
    c.ok(
        &council[0],
        Call::Governance(GovernanceCall::Propose {
            action: late.clone(),
        }),
    );
    let closes = height_of(round(&c, 2).spec.closes_at);
    c.advance_to(closes + TALLY_DELAY + 2);
    c.no(
        &council[1],
        Call::Governance(GovernanceCall::Approve {
            proposal: late_id,
            action_hash: late.hash(),
        }),
        "invalid",
    );
    // Rounds 1 and 2 closed and were tallied; round 0 did neither.
    assert_eq!(round(&c, 1).status, RoundStatus::Tallied);
    assert_eq!(round(&c, 2).status, RoundStatus::Tallied);
    assert_eq!(
        round(&c, 0).status,
        RoundStatus::Cancelled { at: cancelled_at }
    );
    assert_eq!(c.read::<TallyRecord>(NS_TALLY, &0u64.to_be_bytes()), None);
    assert_eq!(c.read::<u64>(NS_PENDING, b"pending"), None);
    // A tallied round is not cancelled either.
    c.no(
        &council[0],
        Call::Governance(GovernanceCall::Propose {
            action: GovAction::CancelBudgetRound { round: 1 },
        }),
        "invalid",
    );
}

#[test]
fn a_block_closes_at_most_four_rounds_and_the_rest_close_after_in_order() {
    let Setup {
        chain: mut c,
        office,
        ..
    } = setup(0);
    let base = c.height().0;
    // Five rounds due at one time, opened in an order unlike their ids' (the list is kept
    // sorted by time, then id), and a sixth due later.
    for close in [
        base + 50,
        base + 50,
        base + 50,
        base + 50,
        base + 50,
        base + 60,
    ] {
        let mut s = spec(
            &c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        );
        s.closes_at = at(close);
        c.ok(&office, open(&office, s));
    }
    let view = StateView::new(&c.state, c.height());
    let order: Vec<u64> = budget::closing(&view)
        .unwrap()
        .iter()
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    // The block whose time is closes_at closes four of the five.
    c.advance_to(base + 49);
    assert_eq!(round(&c, 3).status, RoundStatus::Open);
    c.block(&[]);
    let closed = |c: &Chain| {
        (0..6)
            .filter(|&id| !matches!(round(c, id).status, RoundStatus::Open))
            .count()
    };
    assert_eq!(closed(&c), 4);
    assert!(matches!(round(&c, 3).status, RoundStatus::Tallying { .. }));
    assert_eq!(round(&c, 4).status, RoundStatus::Open);
    c.block(&[]);
    assert_eq!(closed(&c), 5);
    let RoundStatus::Tallying { closed: at4, .. } = round(&c, 4).status else {
        panic!("round 4 closes in the next block");
    };
    assert_eq!(at4, c.height());
    assert_eq!(round(&c, 5).status, RoundStatus::Open, "not due yet");
}

#[test]
fn a_block_stores_at_most_four_tallies_even_when_the_delay_changed_between_closes() {
    let Setup {
        chain: mut c,
        office,
        ..
    } = setup(0);
    let base = c.height().0;
    for _ in 0..5 {
        let mut s = spec(
            &c,
            1000,
            BallotFormat::Approval { min: 1, max: 1 },
            Rule::Greedy,
        );
        s.closes_at = at(base + 50);
        c.ok(&office, open(&office, s));
    }
    // The council shortens the delay by one in the block that closes four rounds, so the
    // fifth, closed one block later, comes due at the same height as they do.
    let council = common::council_keys();
    let action = GovAction::SetParameter {
        name: Text::new("tally_delay").unwrap(),
        value: TALLY_DELAY - 1,
    };
    let action_hash = action.hash();
    let proposal = c.read::<u64>("gov_next", b"next").unwrap_or(0);
    c.ok(
        &council[0],
        Call::Governance(GovernanceCall::Propose { action }),
    );
    c.advance_to(base + 49);
    let approve = c.sign(
        &council[1],
        Call::Governance(GovernanceCall::Approve {
            proposal,
            action_hash,
        }),
    );
    c.block(&[approve]);
    c.block(&[]);
    let due = |c: &Chain, id: u64| match round(c, id).status {
        RoundStatus::Tallying { due, .. } => due,
        other => panic!("round {id} is {other:?}"),
    };
    let at_once = due(&c, 0);
    assert!((0..5).all(|id| due(&c, id) == at_once));
    // Four tallies are stored at that height, the fifth at the next.
    c.advance_to(at_once.0);
    let tallied = |c: &Chain| {
        (0..5)
            .filter(|&id| round(c, id).status == RoundStatus::Tallied)
            .count()
    };
    assert_eq!(tallied(&c), 4);
    c.block(&[]);
    assert_eq!(tallied(&c), 5);
}

#[test]
fn only_budget_offices_or_the_council_open_rounds_with_sound_phases() {
    let Setup {
        chain: mut c,
        issuer,
        office,
        residents,
        ..
    } = setup(1);
    let approval = BallotFormat::Approval { min: 1, max: 3 };
    // A resident is no budget office.
    let resident = &residents[0].0;
    c.no(
        resident,
        Call::Budget(BudgetCall::OpenRound {
            office: did_of(resident),
            spec: spec(&c, 1000, approval, Rule::Mes),
        }),
        "unauthorized",
    );
    // The office's DID, signed by another key.
    c.no(
        resident,
        open(&office, spec(&c, 1000, approval, Rule::Mes)),
        "unauthorized",
    );
    let mut bad = spec(&c, 1000, approval, Rule::Mes);
    bad.voting_from = bad.closes_at;
    c.no(&office, open(&office, bad), "invalid");
    // Voting must still be to come.
    let mut past = spec(&c, 1000, approval, Rule::Mes);
    past.proposals_from = at(1);
    past.voting_from = at(c.height().0 + 1);
    c.no(&office, open(&office, past.clone()), "invalid");
    past.voting_from = at(c.height().0 + 2);
    let mut far = past.clone();
    far.closes_at = Timestamp(past.voting_from.0 + budget::ROUND_SPAN_MAX_MS + 1_000);
    c.no(&office, open(&office, far), "invalid");
    let mut no_currency = past.clone();
    no_currency.currency = Text::new("zł").unwrap();
    c.no(&office, open(&office, no_currency), "invalid");
    c.no(
        &office,
        open(&office, spec(&c, 0, approval, Rule::Mes)),
        "invalid",
    );
    c.no(
        &office,
        open(
            &office,
            spec(
                &c,
                1000,
                BallotFormat::Approval { min: 3, max: 2 },
                Rule::Mes,
            ),
        ),
        "invalid",
    );
    // The council opens one on its own authority.
    let s = spec(&c, 1000, BallotFormat::Knapsack, Rule::Greedy);
    c.council_do(GovAction::OpenBudgetRound(s));
    assert!(matches!(round(&c, 0).opener, RoundOpener::Council { .. }));
    // A revoked BudgetOffice credential no longer opens rounds.
    let office_credential = Hash::digest(&1u32.to_be_bytes());
    c.ok(
        &issuer,
        Call::Credential(CredentialCall::Revoke {
            id: office_credential,
        }),
    );
    c.no(
        &office,
        open(&office, spec(&c, 1000, approval, Rule::Mes)),
        "unauthorized",
    );
}

#[test]
fn proposals_and_ballots_are_refused_out_of_phase_district_or_format() {
    let Setup {
        chain: mut c,
        issuer,
        office,
        residents,
        outsider,
    } = setup(3);
    let s = spec(&c, 1000, BallotFormat::Knapsack, Rule::Greedy);
    c.ok(&office, open(&office, s.clone()));
    let (a, b, d) = (&residents[0].0, &residents[1].0, &residents[2].0);
    // Too early to propose.
    c.no(a, propose(0, a, 100), "wrong_phase");
    c.advance_to(height_of(s.proposals_from));
    c.no(&outsider, propose(0, &outsider, 100), "unauthorized");
    c.no(a, propose(0, a, 1001), "invalid");
    c.no(a, propose(0, a, 0), "invalid");
    c.no(a, propose(7, a, 100), "not_found");
    c.no(b, propose(0, a, 100), "unauthorized");
    c.ok(a, propose(0, a, 600));
    c.ok(b, propose(0, b, 500));
    c.ok(b, propose(0, b, 300));
    // Voting has not opened.
    c.no(a, vote(0, a, &[0]), "wrong_phase");
    c.advance_to(height_of(s.voting_from));
    c.no(a, propose(0, a, 100), "wrong_phase");
    // Knapsack: 600 + 500 > 1000.
    c.no(a, vote(0, a, &[0, 1]), "invalid");
    c.no(a, vote(0, a, &[0, 0]), "invalid");
    c.no(a, vote(0, a, &[5]), "not_found");
    c.no(a, vote(0, a, &[]), "invalid");
    c.no(&outsider, vote(0, &outsider, &[0]), "unauthorized");
    c.no(b, vote(0, a, &[0]), "unauthorized");
    c.ok(a, vote(0, a, &[0, 2]));
    // A revoked resident credential, and a deactivated DID, no longer vote.
    c.ok(
        &issuer,
        Call::Credential(CredentialCall::Revoke { id: residents[1].1 }),
    );
    c.no(b, vote(0, b, &[1]), "unauthorized");
    c.ok(
        d,
        Call::Identity(IdentityCall::Deactivate { did: did_of(d) }),
    );
    c.no(d, vote(0, d, &[1]), "deactivated");
    // A replayed ballot transaction (its nonce used up) may be in no block.
    let n = c.nonce(a);
    let again = tx(a, n - 1, vote(0, a, &[0, 2]));
    c.invalid(again);
}

#[test]
fn approval_ballots_respect_their_minimum_and_maximum() {
    let Setup {
        chain: mut c,
        office,
        residents,
        ..
    } = setup(1);
    let s = spec(
        &c,
        1000,
        BallotFormat::Approval { min: 2, max: 3 },
        Rule::Mes,
    );
    c.ok(&office, open(&office, s.clone()));
    let a = &residents[0].0;
    c.advance_to(height_of(s.proposals_from));
    for cost in [100, 200, 300, 400, 500] {
        c.ok(a, propose(0, a, cost));
    }
    // Five proposals per resident and round.
    c.no(a, propose(0, a, 600), "limit");
    c.advance_to(height_of(s.voting_from));
    c.no(a, vote(0, a, &[0]), "invalid");
    c.no(a, vote(0, a, &[0, 1, 2, 3]), "invalid");
    c.ok(a, vote(0, a, &[0, 1, 2]));
}

/// The Wieliczka 2023 election, run as a round on the ledger: 6,586 residents with DIDs and
/// credentials, 64 proposals, every ballot as a transaction. The tally stored at close is
/// the official outcome.
#[test]
fn wieliczka_run_on_the_ledger_gives_the_official_outcome() {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/poland_wieliczka_2023_green-budget.pb"
    ))
    .unwrap();
    let election = pb::parse(&bytes).unwrap();
    let mut c = Chain::new();
    let issuer = c.issuer(
        1,
        vec![CredentialKind::Resident, CredentialKind::BudgetOffice],
    );
    let office = user(1_000_000);
    let office_did = c.create_did(&office);
    c.credential(&issuer, office_did, CredentialKind::BudgetOffice, None);
    let voters: Vec<Keypair> = (0..election.ballots.len() as u32).map(user).collect();
    // DIDs, then credentials, in blocks of 2,000 transactions.
    let create = Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    });
    for chunk in voters.chunks(2000) {
        let txs: Vec<_> = chunk.iter().map(|k| tx(k, 0, create.clone())).collect();
        assert!(c.block(&txs).iter().all(|r| r.is_accepted()));
    }
    let mut nonce = c.nonce(&issuer);
    for chunk in voters.chunks(2000) {
        let txs: Vec<_> = chunk
            .iter()
            .map(|k| {
                let call = Call::Credential(CredentialCall::Issue {
                    id: Hash::digest(&k.public().0),
                    issuer: did_of(&issuer),
                    subject: did_of(k),
                    kind: CredentialKind::Resident,
                    district: Some(Text::new("wieliczka").unwrap()),
                    valid_from: common::VALID_FROM,
                    valid_until: common::VALID_UNTIL,
                });
                nonce += 1;
                tx(&issuer, nonce - 1, call)
            })
            .collect();
        assert!(c.block(&txs).iter().all(|r| r.is_accepted()));
    }
    let h = c.height().0 + 1;
    let s = RoundSpec {
        title: Text::new("Zielony Milion 2023").unwrap(),
        district: Text::new("wieliczka").unwrap(),
        budget: election.budget,
        currency: Text::new("PLN").unwrap(),
        proposals_from: at(h + 1),
        voting_from: at(h + 3),
        closes_at: at(h + 10),
        ballot: BallotFormat::Approval { min: 1, max: 64 },
        rule: RuleProfile {
            rule: Rule::MesAdd1,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: acta_ledger::records::BallotSecrecy::Public,
    };
    c.ok(&office, open(&office, s.clone()));
    c.advance_to(height_of(s.proposals_from));
    // 64 projects, five per proposer, in file order: project i is the file's i-th.
    let txs: Vec<_> = election
        .projects
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let proposer = &voters[i / 5];
            let call = Call::Budget(BudgetCall::Propose {
                round: 0,
                proposer: did_of(proposer),
                title: Text::new(p.name.chars().take(60).collect::<String>()).unwrap(),
                cost: p.cost,
            });
            tx(proposer, 1 + (i % 5) as u64, call)
        })
        .collect();
    let receipts = c.block(&txs);
    assert!(receipts.iter().all(|r| r.is_accepted()), "{receipts:?}");
    c.advance_to(height_of(s.voting_from));
    let proposed: Vec<u64> = (0..voters.len())
        .map(|i| {
            if i < 13 {
                (64 - 5 * i).min(5) as u64
            } else {
                0
            }
        })
        .collect();
    for (chunk_index, chunk) in election.ballots.chunks(2000).enumerate() {
        let txs: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(j, ballot)| {
                let i = chunk_index * 2000 + j;
                tx(
                    &voters[i],
                    1 + proposed[i],
                    vote(0, &voters[i], &ballot.approvals),
                )
            })
            .collect();
        let receipts = c.block(&txs);
        assert!(
            receipts.iter().all(|r| r.is_accepted()),
            "{:?}",
            receipts.iter().find(|r| !r.is_accepted())
        );
    }
    c.advance_to(height_of(s.closes_at) + TALLY_DELAY);
    let record: TallyRecord = c.read(NS_TALLY, &0u64.to_be_bytes()).unwrap();
    let mut ids: Vec<u64> = record
        .selected
        .iter()
        .map(|&i| election.projects[i as usize].id.parse().unwrap())
        .collect();
    ids.sort_unstable();
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    assert_eq!(
        ids.join(" "),
        "6 7 9 17 19 20 24 25 26 29 32 33 34 36 39 40 41 42 43 46 56 58 60 61 62 69 70 71 74 88"
    );
    assert_eq!(record.total_cost, 995_079);
    assert_eq!(record.voters, 6586);
    assert_eq!(record.endowment, Some((1_040_052, 3293)));
    let _: Did = did_of(&office);
}

/// A secret round (docs/adr/0018-secret-ballots.md): residents ask for tokens signed by their
/// DIDs, the registrar answers with blind signatures, and residents vote from one-time ballot
/// keys; no ballot names a resident, and every misuse is refused, changing nothing.
#[test]
fn a_secret_round_takes_ballots_from_tokens_and_names_no_resident() {
    use acta_contracts::budget::{NS_BALLOT, NS_BALLOT_TOKEN, NS_TOKENS};
    use acta_ledger::{
        records::{BallotSecrecy, BallotToken, BudgetBallot, TokenCount},
        testing,
        token::{self, Registrar, RegistrarKey},
        types::Bytes,
    };

    let Setup {
        chain: mut c,
        office,
        residents,
        outsider,
        ..
    } = setup(3);
    let registrar = Registrar::generate(2048).unwrap();
    let key_der = registrar.public_der().unwrap();
    let key = RegistrarKey::from_der(&key_der).unwrap();
    let registrar_id = user(1001);
    c.create_did(&registrar_id);
    let mut s = spec(
        &c,
        1000,
        BallotFormat::Approval { min: 1, max: 2 },
        Rule::Mes,
    );
    // A key that is not an RSA key is refused when the round opens.
    s.secrecy = BallotSecrecy::Secret {
        registrar: did_of(&registrar_id),
        key: Bytes::new(vec![1, 2, 3]).unwrap(),
    };
    c.no(&office, open(&office, s.clone()), "invalid");
    s.secrecy = BallotSecrecy::Secret {
        registrar: did_of(&registrar_id),
        key: Bytes::new(key_der.clone()).unwrap(),
    };
    c.ok(&office, open(&office, s.clone()));
    let chain = testing::chain_id();
    let request = |who: &Keypair, blinded: &[u8]| {
        Call::Budget(BudgetCall::RequestToken {
            round: 0,
            voter: did_of(who),
            blinded: Bytes::new(blinded.to_vec()).unwrap(),
        })
    };
    let issue = |index: u64, sig: &[u8]| {
        Call::Budget(BudgetCall::IssueToken {
            round: 0,
            request: index,
            blind_signature: Bytes::new(sig.to_vec()).unwrap(),
        })
    };
    let vote_secret = |token: &[u8], projects: &[u32]| {
        Call::Budget(BudgetCall::VoteSecret {
            round: 0,
            token: Bytes::new(token.to_vec()).unwrap(),
            projects: projects.to_vec(),
        })
    };

    // Each resident makes a ballot key and asks for a token for it.
    let ballot_keys: Vec<Keypair> = (0..3).map(|i| testing::key(0xb7, i)).collect();
    let blinded: Vec<token::Blinded> = ballot_keys
        .iter()
        .map(|k| token::blind(&key, &chain, 0, &k.public()).unwrap())
        .collect();
    for (i, (resident, _)) in residents.iter().enumerate() {
        c.ok(resident, request(resident, &blinded[i].message));
    }
    // Once a round per DID; not for a resident of another district.
    c.no(
        &residents[0].0,
        request(&residents[0].0, &blinded[0].message),
        "already_exists",
    );
    let other = token::blind(&key, &chain, 0, &user(77).public()).unwrap();
    c.no(
        &outsider,
        request(&outsider, &other.message),
        "unauthorized",
    );
    // The registrar answers; a dud answer and a stranger's answer are refused.
    let sigs: Vec<Vec<u8>> = blinded
        .iter()
        .map(|b| registrar.sign_blinded(&b.message).unwrap())
        .collect();
    c.no(&registrar_id, issue(0, &sigs[1]), "invalid");
    c.no(&office, issue(0, &sigs[0]), "unauthorized");
    for (i, sig) in sigs.iter().enumerate() {
        c.ok(&registrar_id, issue(i as u64, sig));
    }
    c.no(&registrar_id, issue(0, &sigs[0]), "already_exists");
    assert_eq!(
        c.read::<TokenCount>(NS_TOKENS, &0u64.to_be_bytes()),
        Some(TokenCount {
            requested: 3,
            issued: 3
        })
    );

    // Residents unblind offline and vote from their ballot keys, during voting only.
    let tokens: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            token::finalize(
                &key,
                &blinded[i],
                &sigs[i],
                &chain,
                0,
                &ballot_keys[i].public(),
            )
            .unwrap()
        })
        .collect();
    c.advance_to(height_of(s.proposals_from));
    for (i, cost) in [400u64, 300, 500].into_iter().enumerate() {
        c.ok(&residents[i].0, propose(0, &residents[i].0, cost));
    }
    c.no(
        &ballot_keys[0],
        vote_secret(&tokens[0], &[0]),
        "wrong_phase",
    );
    c.advance_to(height_of(s.voting_from));
    // A public ballot is refused in a secret round.
    c.no(&residents[0].0, vote(0, &residents[0].0, &[0]), "invalid");
    // A token used from another key, a bent token: refused.
    c.no(
        &ballot_keys[1],
        vote_secret(&tokens[0], &[0]),
        "unauthorized",
    );
    let mut bent = tokens[2].clone();
    bent[9] ^= 4;
    c.no(&ballot_keys[2], vote_secret(&bent, &[0]), "unauthorized");
    // What a node judges off its consensus loop, before the mempool: a forgery whatever
    // the state; nothing for a ballot of no secret round.
    let view = StateView::new(&c.state, c.height());
    let judge = |key: &Keypair, call: Call| budget::token_verdict(&view, &chain, &tx(key, 0, call));
    assert_eq!(
        judge(&ballot_keys[2], vote_secret(&tokens[2], &[0])),
        Some(true)
    );
    assert_eq!(
        judge(&ballot_keys[2], vote_secret(&bent, &[0])),
        Some(false)
    );
    assert_eq!(
        judge(&ballot_keys[1], vote_secret(&tokens[0], &[0])),
        Some(false)
    );
    assert_eq!(judge(&residents[0].0, vote(0, &residents[0].0, &[0])), None);
    let mut elsewhere = vote_secret(&tokens[2], &[0]);
    if let Call::Budget(BudgetCall::VoteSecret { round, .. }) = &mut elsewhere {
        *round = 9;
    }
    assert_eq!(judge(&ballot_keys[2], elsewhere), None, "no such round");
    for (i, projects) in [&[0u32, 1][..], &[1], &[2]].into_iter().enumerate() {
        c.ok(&ballot_keys[i], vote_secret(&tokens[i], projects));
    }
    // The same ballot key votes again: its ballot is replaced, not added.
    c.ok(&ballot_keys[2], vote_secret(&tokens[2], &[1, 2]));
    assert_eq!(c.read::<u64>(NS_VOTERS, &0u64.to_be_bytes()), Some(3));
    // A token the registrar's key made without a recorded request verifies, but ballots
    // never outnumber the tokens issued on the ledger.
    let extra_key = testing::key(0xb7, 9);
    let extra = token::blind(&key, &chain, 0, &extra_key.public()).unwrap();
    let extra_sig = registrar.sign_blinded(&extra.message).unwrap();
    let extra_token =
        token::finalize(&key, &extra, &extra_sig, &chain, 0, &extra_key.public()).unwrap();
    c.no(&extra_key, vote_secret(&extra_token, &[0]), "limit");
    let residents_dids: Vec<Did> = residents.iter().map(|(k, _)| did_of(k)).collect();
    for index in 0..3u64 {
        let mut k = 0u64.to_be_bytes().to_vec();
        k.extend_from_slice(&index.to_be_bytes());
        let b: BudgetBallot = c.read(NS_BALLOT, &k).unwrap();
        assert!(
            !residents_dids.contains(&b.voter),
            "ballot {index} names a resident"
        );
        assert_eq!(b.voter, did_of(&ballot_keys[index as usize]));
        // Beside it, the token it was cast with, for auditors; a revote keeps it.
        let t: BallotToken = c.read(NS_BALLOT_TOKEN, &k).unwrap();
        assert_eq!(t.key, ballot_keys[index as usize].public());
        assert_eq!(t.token.as_slice(), tokens[index as usize].as_slice());
    }
    // A token of this round is worthless in another round, and two rounds never share a
    // registrar key (a blinded request names no round).
    let mut s2 = s.clone();
    s2.title = Text::new("Second round").unwrap();
    s2.proposals_from = at(c.height().0 + 3);
    s2.voting_from = at(c.height().0 + 4);
    s2.closes_at = at(c.height().0 + 30);
    c.no(&office, open(&office, s2.clone()), "already_exists");
    let second = Registrar::generate(2048).unwrap();
    s2.secrecy = BallotSecrecy::Secret {
        registrar: did_of(&registrar_id),
        key: Bytes::new(second.public_der().unwrap()).unwrap(),
    };
    s2.proposals_from = at(c.height().0 + 3);
    s2.voting_from = at(c.height().0 + 4);
    s2.closes_at = at(c.height().0 + 30);
    c.ok(&office, open(&office, s2.clone()));
    let key2 = RegistrarKey::from_der(&second.public_der().unwrap()).unwrap();
    let b2 = token::blind(&key2, &chain, 1, &testing::key(0xb7, 5).public()).unwrap();
    let request2 = Call::Budget(BudgetCall::RequestToken {
        round: 1,
        voter: did_of(&residents[0].0),
        blinded: Bytes::new(b2.message.clone()).unwrap(),
    });
    c.ok(&residents[0].0, request2);
    let issue2 = Call::Budget(BudgetCall::IssueToken {
        round: 1,
        request: 0,
        blind_signature: Bytes::new(second.sign_blinded(&b2.message).unwrap()).unwrap(),
    });
    c.ok(&registrar_id, issue2);
    c.advance_to(height_of(s2.voting_from));
    let elsewhere = Call::Budget(BudgetCall::VoteSecret {
        round: 1,
        token: Bytes::new(tokens[0].clone()).unwrap(),
        projects: vec![0],
    });
    c.no(&ballot_keys[0], elsewhere, "unauthorized");

    // The round closes and tallies its three secret ballots.
    c.advance_to(height_of(s.closes_at) + TALLY_DELAY);
    let t: TallyRecord = c.read(NS_TALLY, &0u64.to_be_bytes()).unwrap();
    assert_eq!(t.voters, 3);
    assert_eq!(t.approvals, vec![1, 3, 1]);
}
