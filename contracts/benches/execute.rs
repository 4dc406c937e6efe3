//! The calls' execution without signature checks: a block of ballots as a validator
//! executes it (`execute_block_with`, signatures already verified), and the same ballots
//! judged one after the other by a mempool ([`PendingState::check`]). Ballots are the
//! heaviest call of the bench's mix: each reads the round, the voter's DID, the voter's
//! Resident credential and its issuer's DID.
//!
//! `cargo bench -p acta-contracts --bench execute`

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use acta_contracts::{execute_block_with, pending::PendingState};
use acta_ledger::{
    records::{
        BallotFormat, BallotSecrecy, CredentialKind, RoundSpec, Rule, RuleProfile, TieBreak,
    },
    tx::{BudgetCall, CredentialCall, IdentityCall},
    types::Text,
    Call, Hash, Keypair, Transaction,
};
use common::{did_of, height_of, time_of, tx, user, Chain};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const DISTRICT: &str = "nowa-huta";
const RESIDENTS: u32 = 1_000;

/// A chain with `RESIDENTS` residents holding Resident credentials and a round of four
/// projects open for voting; and one ballot of each resident, signed.
fn city() -> (Chain, Vec<Transaction>) {
    let mut c = Chain::new();
    let issuer = c.issuer(
        1,
        vec![CredentialKind::Resident, CredentialKind::BudgetOffice],
    );
    let office = user(100_000);
    let office_did = c.create_did(&office);
    c.credential(&issuer, office_did, CredentialKind::BudgetOffice, None);
    let residents: Vec<Keypair> = (0..RESIDENTS).map(user).collect();
    let dids: Vec<Transaction> = residents
        .iter()
        .map(|k| {
            let call = IdentityCall::CreateDid {
                next_key_hash: None,
            };
            tx(k, 0, Call::Identity(call))
        })
        .collect();
    c.block(&dids);
    let first = c.nonce(&issuer);
    let credentials: Vec<Transaction> = residents
        .iter()
        .zip(first..)
        .map(|(k, nonce)| {
            let call = CredentialCall::Issue {
                id: Hash::digest(&nonce.to_be_bytes()),
                issuer: did_of(&issuer),
                subject: did_of(k),
                kind: CredentialKind::Resident,
                district: Some(Text::new(DISTRICT).unwrap()),
                valid_from: time_of(0),
                valid_until: time_of(1_000_000),
            };
            tx(&issuer, nonce, Call::Credential(call))
        })
        .collect();
    c.block(&credentials);
    let h = c.height().0 + 1;
    let spec = RoundSpec {
        title: Text::new("Green budget").unwrap(),
        district: Text::new(DISTRICT).unwrap(),
        budget: 1_000,
        currency: Text::new("PLN").unwrap(),
        proposals_from: time_of(h + 2),
        voting_from: time_of(h + 10),
        closes_at: time_of(h + 1_000),
        ballot: BallotFormat::Approval { min: 1, max: 3 },
        rule: RuleProfile {
            rule: Rule::Greedy,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: BallotSecrecy::Public,
    };
    c.ok(
        &office,
        Call::Budget(BudgetCall::OpenRound {
            office: did_of(&office),
            spec: spec.clone(),
        }),
    );
    c.advance_to(height_of(spec.proposals_from));
    for (i, cost) in [400u64, 300, 300, 500].into_iter().enumerate() {
        let who = &residents[i];
        let call = BudgetCall::Propose {
            round: 0,
            proposer: did_of(who),
            title: Text::new(format!("project {i}")).unwrap(),
            cost,
        };
        c.ok(who, Call::Budget(call));
    }
    c.advance_to(height_of(spec.voting_from));
    let ballots = residents
        .iter()
        .zip(0u32..)
        .map(|(k, i)| {
            let call = BudgetCall::Vote {
                round: 0,
                voter: did_of(k),
                projects: vec![i % 4, (i + 1) % 4],
            };
            c.sign(k, Call::Budget(call))
        })
        .collect();
    (c, ballots)
}

fn execution(c: &mut Criterion) {
    let (chain, ballots) = city();
    let ids: Vec<Hash> = ballots.iter().map(Transaction::id).collect();
    let ctx = chain.ctx();
    let outcome = execute_block_with(&chain.state, &ctx, &ballots, &ids, &[], &|_| true).unwrap();
    assert!(
        outcome.receipts.iter().all(|r| r.is_accepted()),
        "every ballot of the bench is accepted"
    );
    let mut group = c.benchmark_group("execute");
    group.throughput(Throughput::Elements(u64::from(RESIDENTS)));
    group.bench_function("block_of_1000_ballots", |b| {
        b.iter(|| execute_block_with(&chain.state, &ctx, &ballots, &ids, &[], &|_| true).unwrap())
    });
    group.bench_function("pending_check_1000_ballots", |b| {
        b.iter_batched(
            || PendingState::new(chain.height()),
            |mut pending| {
                for (tx, id) in ballots.iter().zip(&ids) {
                    pending.check(&chain.state, &ctx, tx, *id).unwrap();
                }
                pending
            },
            BatchSize::SmallInput,
        )
    });
    // After a block that wrote none of what the ballots read: each ballot's reads are
    // compared and its writes put back, without running it.
    group.bench_function("recheck_1000_ballots_unchanged", |b| {
        b.iter_batched(
            || {
                let mut pending = PendingState::new(chain.height());
                for (tx, id) in ballots.iter().zip(&ids) {
                    pending.check(&chain.state, &ctx, tx, *id).unwrap();
                }
                pending.rebase(chain.height(), None::<&[Hash]>, |_| true, ctx.time);
                for (tx, id) in ballots.iter().zip(&ids) {
                    pending.recheck(&chain.state, &ctx, tx, *id).unwrap();
                }
                pending.rebase(chain.height(), Some(&[] as &[Hash]), |_| true, ctx.time);
                pending
            },
            |mut pending| {
                for (tx, id) in ballots.iter().zip(&ids) {
                    pending.recheck(&chain.state, &ctx, tx, *id).unwrap();
                }
                pending
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, execution);
criterion_main!(benches);
