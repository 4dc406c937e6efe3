//! Properties of the executor over random transaction sequences that touch every module:
//! replaying the same blocks gives the same state roots; a refused transaction changes
//! nothing but its signer's nonce, which it uses up; a transaction with a wrong nonce or
//! chain makes its block invalid, and a block without it is valid.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;

use acta_contracts::{executor::NS_NONCE, ExecError, Outcome, Receipt};
use acta_ledger::{
    records::{
        BallotFormat, CredentialKind, GovAction, GovProposal, RoundSpec, Rule, RuleProfile,
        TieBreak,
    },
    state::state_key,
    testing,
    tx::{AttestationBatch, BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::Text,
    Call, ChainId, Hash, Keypair, PublicKey, Timestamp, Transaction,
};
use common::{council_keys, did_of, time_of, user, Chain};
use proptest::prelude::*;

/// One random step: who acts, what they do, a parameter, and how their nonce is skewed.
#[derive(Clone, Debug)]
struct Op {
    actor: usize,
    kind: u8,
    param: u64,
    nonce_skew: i8,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0usize..8,
        0u8..12,
        any::<u64>(),
        prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
    )
        .prop_map(|(actor, kind, param, nonce_skew)| Op {
            actor,
            kind,
            param,
            nonce_skew,
        })
}

struct World {
    chain: Chain,
    actors: Vec<Keypair>,
    issuer: Keypair,
    device: Keypair,
    credentials: Vec<Hash>,
}

/// A chain with an issuer, a budget round open for proposals, and eight actors of whom the
/// first four have DIDs and Resident credentials, and actor 0 is a sensor operator.
fn world() -> World {
    let mut c = Chain::new();
    let issuer = c.issuer(
        1,
        vec![
            CredentialKind::Resident,
            CredentialKind::BudgetOffice,
            CredentialKind::SensorOperator,
        ],
    );
    let actors: Vec<Keypair> = (0..8).map(user).collect();
    let mut credentials = Vec::new();
    for a in &actors[..4] {
        let did = c.create_did(a);
        credentials.push(c.credential(&issuer, did, CredentialKind::Resident, Some("north")));
    }
    credentials.push(c.credential(
        &issuer,
        did_of(&actors[0]),
        CredentialKind::SensorOperator,
        None,
    ));
    let device = user(99);
    let device_did = c.create_did(&device);
    // The device names actor 0 as a controller: its consent to be operated by it.
    let document = acta_ledger::records::DidDocument {
        verification_methods: vec![acta_ledger::records::VerificationMethod {
            id: Text::new("key-1").unwrap(),
            key: device.public(),
        }],
        controllers: vec![did_of(&actors[0])],
        services: vec![],
    };
    c.ok(
        &device,
        Call::Identity(IdentityCall::UpdateDocument {
            did: device_did,
            document,
        }),
    );
    let h = c.height().0 + 1;
    let spec = RoundSpec {
        title: Text::new("round").unwrap(),
        district: Text::new("north").unwrap(),
        budget: 1000,
        currency: Text::new("EUR").unwrap(),
        proposals_from: time_of(h + 1),
        voting_from: time_of(h + 12),
        closes_at: time_of(h + 24),
        ballot: BallotFormat::Approval { min: 1, max: 3 },
        rule: RuleProfile {
            rule: Rule::MesAdd1,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: acta_ledger::records::BallotSecrecy::Public,
    };
    c.council_do(GovAction::OpenBudgetRound(spec));
    World {
        chain: c,
        actors,
        issuer,
        device,
        credentials,
    }
}

impl World {
    /// The transaction of `op`; `used` counts the nonces the block's earlier transactions
    /// of each signer took.
    fn tx(&self, op: &Op, used: &mut BTreeMap<PublicKey, u64>) -> Transaction {
        let c = &self.chain;
        let council = council_keys();
        let actor = &self.actors[op.actor];
        let p = op.param;
        let (key, call): (&Keypair, Call) = match op.kind {
            0 => (
                actor,
                Call::Identity(IdentityCall::CreateDid {
                    next_key_hash: None,
                }),
            ),
            1 => (
                &self.issuer,
                Call::Credential(CredentialCall::Issue {
                    id: Hash::digest(&p.to_be_bytes()),
                    issuer: did_of(&self.issuer),
                    subject: did_of(actor),
                    kind: CredentialKind::Resident,
                    district: Some(
                        Text::new(if p.is_multiple_of(2) {
                            "north"
                        } else {
                            "south"
                        })
                        .unwrap(),
                    ),
                    valid_from: common::VALID_FROM,
                    valid_until: common::VALID_UNTIL,
                }),
            ),
            2 => (
                &self.issuer,
                Call::Credential(CredentialCall::Revoke {
                    id: self.credentials[p as usize % self.credentials.len()],
                }),
            ),
            3 => (
                actor,
                Call::Budget(BudgetCall::Propose {
                    round: p % 2,
                    proposer: did_of(actor),
                    title: Text::new("p").unwrap(),
                    cost: p % 1500,
                }),
            ),
            4 => (
                actor,
                Call::Budget(BudgetCall::Vote {
                    round: 0,
                    voter: did_of(actor),
                    projects: (0..4).filter(|i| p >> i & 1 == 1).collect(),
                }),
            ),
            5 => (
                &self.actors[0],
                Call::Sensor(SensorCall::Register {
                    operator: did_of(&self.actors[0]),
                    device: did_of(&self.device),
                    kind: Text::new("noise").unwrap(),
                    unit: Text::new(if p.is_multiple_of(3) { "d B" } else { "dB" }).unwrap(),
                    location: Text::new("u2yhvd").unwrap(),
                    stream: Text::new("s").unwrap(),
                }),
            ),
            6 => {
                let record: Option<acta_ledger::records::DeviceRecord> =
                    c.read("device", &did_of(&self.device).0);
                let (next, prev, end) = record
                    .map(|r| (r.next_sequence, r.last_batch, r.last_window_end.0))
                    .unwrap_or((0, Hash::ZERO, 0));
                let skew = p % 4; // 0, 1: right; 2: gap; 3: fork
                let sequence = match skew {
                    2 => next + 1,
                    3 => next.saturating_sub(1),
                    _ => next,
                };
                (
                    &self.device,
                    Call::Sensor(SensorCall::Attest(AttestationBatch {
                        device: did_of(&self.device),
                        stream: Text::new("s").unwrap(),
                        sequence,
                        prev_batch_hash: prev,
                        window_start: Timestamp(end.max(1_699_000_000_000)),
                        window_end: Timestamp(end.max(1_699_000_000_000) + 1000),
                        reading_count: (p % 50) as u32,
                        readings_root: Hash::digest(&p.to_le_bytes()),
                        raw_batch_hash: Hash::ZERO,
                    })),
                )
            }
            7 => (
                &council[p as usize % 3],
                Call::Governance(GovernanceCall::Propose {
                    action: GovAction::SetParameter {
                        name: Text::new("evidence_max_age").unwrap(),
                        value: p % 1000,
                    },
                }),
            ),
            8 => {
                let proposal = (p >> 8) % 3;
                // Mostly the action the proposal holds; sometimes another one.
                let action_hash =
                    match c.read::<GovProposal>("gov_proposal", &proposal.to_be_bytes()) {
                        Some(held) if !p.is_multiple_of(5) => held.action.hash(),
                        _ => Hash::digest(&p.to_le_bytes()),
                    };
                (
                    &council[p as usize % 3],
                    Call::Governance(GovernanceCall::Approve {
                        proposal,
                        action_hash,
                    }),
                )
            }
            9 => (
                actor,
                Call::Identity(IdentityCall::Deactivate { did: did_of(actor) }),
            ),
            10 => (
                &council[p as usize % 3],
                Call::Governance(GovernanceCall::Propose {
                    action: GovAction::SetPower {
                        key: testing::key(0xa0, (p % 5) as u32).public(),
                        power: p % 300,
                    },
                }),
            ),
            _ => {
                // A transaction for another chain.
                let n = c.nonce(actor) + used.get(&actor.public()).copied().unwrap_or(0);
                return Transaction::sign(
                    actor,
                    ChainId::new("other-chain").unwrap(),
                    n,
                    acta_ledger::testing::NO_EXPIRY,
                    Call::Identity(IdentityCall::CreateDid {
                        next_key_hash: None,
                    }),
                );
            }
        };
        let taken = used.entry(key.public()).or_insert(0);
        let nonce = (c.nonce(key) + *taken).saturating_add_signed(i64::from(op.nonce_skew));
        if op.nonce_skew == 0 {
            *taken += 1;
        }
        common::tx(key, nonce, call)
    }
}

/// Runs `blocks` on a fresh world; returns the root after each block and every receipt.
/// Each block first goes to the executor whole; a transaction that makes it invalid (a
/// skewed nonce, another chain) is left out, as a proposer does, until the block is valid.
fn run(blocks: &[Vec<Op>]) -> (Vec<Hash>, Vec<Vec<Receipt>>) {
    let mut w = world();
    let mut roots = Vec::new();
    let mut all = Vec::new();
    for ops in blocks {
        let mut used = BTreeMap::new();
        let mut txs: Vec<Transaction> = ops.iter().map(|o| w.tx(o, &mut used)).collect();
        let outcome = loop {
            match acta_contracts::execute_block(&w.chain.state, &w.chain.ctx(), &txs, &[]) {
                Ok(outcome) => break outcome,
                Err(ExecError::InvalidTx { index, id, .. }) => {
                    assert_eq!(txs[index as usize].id(), id);
                    txs.remove(index as usize);
                }
                Err(e) => panic!("the executor failed: {e}"),
            }
        };
        // A refused transaction writes its signer's nonce and nothing else: executing the
        // block up to it and up to the one before differ by exactly that key.
        for (i, receipt) in outcome.receipts.iter().enumerate() {
            if receipt.is_accepted() {
                continue;
            }
            let before = w.chain.execute(&txs[..i], &[]).changes;
            let after = w.chain.execute(&txs[..=i], &[]).changes;
            let nonce_key = state_key(NS_NONCE, &txs[i].signer.0);
            let mut expected = before.clone();
            expected.insert(nonce_key, Some(borsh::to_vec(&(txs[i].nonce + 1)).unwrap()));
            assert_eq!(
                after, expected,
                "a refused transaction changed more than its nonce"
            );
        }
        let receipts = w.chain.block(&txs);
        assert_eq!(receipts, outcome.receipts);
        roots.push(w.chain.root());
        all.push(receipts);
    }
    (roots, all)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_blocks_replay_to_the_same_roots_and_refusals_change_nothing(
        blocks in prop::collection::vec(prop::collection::vec(op(), 0..5), 1..30)
    ) {
        let (roots_a, receipts_a) = run(&blocks);
        let (roots_b, receipts_b) = run(&blocks);
        prop_assert_eq!(roots_a, roots_b);
        prop_assert_eq!(receipts_a, receipts_b);
    }
}

#[test]
fn random_runs_exercise_both_outcomes() {
    // A fixed sequence: the property above is not vacuous (some transactions are accepted,
    // some refused, and a tally runs at close).
    let blocks: Vec<Vec<Op>> = (0..30u64)
        .map(|i| {
            vec![
                Op {
                    actor: (i % 4) as usize,
                    kind: if i < 10 { 3 } else { 4 },
                    param: 100 + i * 37,
                    nonce_skew: 0,
                },
                Op {
                    actor: (i % 8) as usize,
                    kind: (i % 12) as u8,
                    param: i * 7919,
                    nonce_skew: 0,
                },
            ]
        })
        .collect();
    let (_, receipts) = run(&blocks);
    let flat: Vec<&Receipt> = receipts.iter().flatten().collect();
    assert!(flat.iter().any(|r| r.is_accepted()));
    assert!(flat
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Refused { .. })));
}
