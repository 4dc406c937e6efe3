//! Per-block cost of closing and tallying a large budget round on the ledger
//! (docs/benchmarks.md, "A largest round closing on the ledger"; issue 19, item 3).
//!
//! Writes a round with the projects and ballots of a Pabulib `.pb` file into an in-memory
//! state (the records the ledger would hold after its voting phase), then executes, with
//! the executor every node runs: the block that closes the round, empty blocks while the
//! tally thread ([`acta_contracts::tallying`]) works, and the block `tally_delay` heights
//! later that stores the tally. It prints each block's execution time, then the same
//! storing block once more without the thread (what a node that restarted mid-tally does).
//!
//! Usage: cargo run -p acta-contracts --example largest_round -- FILE.pb RULE [knapsack]
//! (RULE: greedy, mes, mes-add1 or mes-add1-exhaustive).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use acta_contracts::{
    budget::{
        ballot_key, project_key, NS_BALLOT, NS_CLOSING, NS_NEXT, NS_PENDING, NS_PROJECT, NS_ROUND,
        NS_TALLY, NS_TALLYING, NS_VOTERS,
    },
    execute_block,
    genesis::{genesis_changes, GenesisState},
    params::{NS_PARAM, TALLY_DELAY},
    tally::pb,
    tallying, BlockContext,
};
use acta_ledger::{
    records::{
        BallotFormat, BallotSecrecy, BudgetBallot, BudgetProject, BudgetRound, Council,
        ParamRecord, RoundOpener, RoundSpec, RoundStatus, Rule, RuleProfile, TallyRecord, TieBreak,
    },
    state::{state_key, MemoryState, StateChanges},
    testing,
    types::Text,
    Did, Height, Keypair, Timestamp,
};

const DELAY: u64 = 150;
const BLOCK_MS: u64 = 200;

fn put<T: borsh::BorshSerialize>(c: &mut StateChanges, ns: &str, key: &[u8], value: &T) {
    c.insert(state_key(ns, key), Some(borsh::to_vec(value).unwrap()));
}

fn ctx(height: u64) -> BlockContext {
    BlockContext {
        chain_id: testing::chain_id(),
        height: Height(height),
        time: Timestamp(1_800_000_000_000 + height * BLOCK_MS),
        proposer: testing::key(0xa0, 0).public(),
    }
}

/// Executes and commits an empty block, returning how long its execution took.
fn block(state: &mut MemoryState) -> (Duration, Vec<String>) {
    let h = state.latest().unwrap().next();
    let started = Instant::now();
    let out = execute_block(state, &ctx(h.0), &[], &[]).unwrap();
    let took = started.elapsed();
    state.commit(&out.changes).unwrap();
    (took, out.events.iter().map(|e| e.kind.clone()).collect())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, rule, rest @ ..] = args.as_slice() else {
        eprintln!("usage: largest_round FILE.pb RULE [knapsack]");
        std::process::exit(2);
    };
    let rule = Rule::parse(rule).expect("a rule: greedy, mes, mes-add1, mes-add1-exhaustive");
    let knapsack = rest.first().is_some_and(|a| a == "knapsack");
    let election = pb::parse(&std::fs::read(file).unwrap()).unwrap();

    let (_, validators) = testing::validators(4, &[100, 100, 100, 100]);
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc5, i)).collect();
    let mut state = MemoryState::new();
    state
        .commit(&genesis_changes(&GenesisState {
            validators,
            nodes: vec![],
            council: Council::new(council.iter().map(Keypair::public).collect(), 2).unwrap(),
            issuers: vec![],
            parameters: vec![(TALLY_DELAY.name.into(), DELAY)],
        }))
        .unwrap();

    // Block 1 holds the round as its voting phase left it: closes_at is block 3's time.
    let spec = RoundSpec {
        title: Text::new("Largest round").unwrap(),
        district: Text::new("city").unwrap(),
        budget: election.budget,
        currency: Text::new("PLN").unwrap(),
        proposals_from: ctx(0).time,
        voting_from: ctx(1).time,
        closes_at: ctx(3).time,
        ballot: if knapsack {
            BallotFormat::Knapsack
        } else {
            BallotFormat::Approval { min: 1, max: 256 }
        },
        rule: RuleProfile {
            rule,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: BallotSecrecy::Public,
    };
    let mut c = StateChanges::new();
    let round = BudgetRound {
        id: 0,
        spec,
        opener: RoundOpener::Council { proposal: 0 },
        opened: Height(1),
        projects: u32::try_from(election.projects.len()).unwrap(),
        status: RoundStatus::Open,
    };
    put(&mut c, NS_ROUND, &0u64.to_be_bytes(), &round);
    put(&mut c, NS_NEXT, b"next", &1u64);
    put(&mut c, NS_PENDING, b"pending", &1u64);
    put(
        &mut c,
        NS_CLOSING,
        b"closing",
        &vec![(round.spec.closes_at, 0u64)],
    );
    put(
        &mut c,
        NS_PARAM,
        TALLY_DELAY.name.as_bytes(),
        &ParamRecord {
            value: DELAY,
            set_at: Height(0),
        },
    );
    for (i, p) in election.projects.iter().enumerate() {
        let index = u32::try_from(i).unwrap();
        let project = BudgetProject {
            round: 0,
            index,
            proposer: Did([1; 16]),
            title: Text::new(format!("Project {}", p.id)).unwrap(),
            cost: p.cost,
            proposed: Height(1),
        };
        put(&mut c, NS_PROJECT, &project_key(0, index), &project);
    }
    for (i, b) in election.ballots.iter().enumerate() {
        let mut voter = [0u8; 16];
        voter[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let mut projects = b.approvals.clone();
        projects.sort_unstable();
        let ballot = BudgetBallot {
            voter: Did(voter),
            projects,
            cast: Height(1),
        };
        put(&mut c, NS_BALLOT, &ballot_key(0, i as u64), &ballot);
    }
    put(
        &mut c,
        NS_VOTERS,
        &0u64.to_be_bytes(),
        &(election.ballots.len() as u64),
    );
    let started = Instant::now();
    state.commit(&c).unwrap();
    println!(
        "state: {} projects, {} ballots, written in {:.1} s",
        election.projects.len(),
        election.ballots.len(),
        started.elapsed().as_secs_f64()
    );

    let (took, _) = block(&mut state);
    println!(
        "block 2 (voting, nothing due): {:.2} ms",
        took.as_secs_f64() * 1e3
    );
    let (took, events) = block(&mut state);
    println!(
        "block 3 (closes the round): {:.2} ms, events {events:?}",
        took.as_secs_f64() * 1e3
    );
    let before_due = state.clone();

    // A node starts the tally thread after committing the closing block.
    let worker = Instant::now();
    let started = tallying::start(Arc::new(state.clone()), Height(3)).unwrap();
    assert_eq!(started, 1);
    // Paced like a chain: one block every BLOCK_MS, the thread working beside them.
    let mut times = Vec::new();
    for i in 1..DELAY {
        let (took, _) = block(&mut state);
        times.push(took);
        let next = worker + Duration::from_millis(i * BLOCK_MS);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    times.sort();
    println!(
        "blocks 4 to {}, one every {BLOCK_MS} ms with the tally thread beside them: median {:.3} ms, max {:.3} ms",
        2 + DELAY,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
    let waited = Instant::now();
    let (took, events) = block(&mut state);
    println!(
        "block {} (stores the tally; the thread started {:.1} s earlier): {:.1} ms, events {events:?}",
        3 + DELAY,
        (waited - worker).as_secs_f64(),
        took.as_secs_f64() * 1e3
    );
    let record: TallyRecord = borsh::from_slice(
        &acta_ledger::state::AuthenticatedState::get(
            &state,
            &state_key(NS_TALLY, &0u64.to_be_bytes()),
            state.latest().unwrap(),
        )
        .unwrap()
        .unwrap(),
    )
    .unwrap();
    println!(
        "  selected {} projects costing {}, {:?} Add1 steps",
        record.selected.len(),
        record.total_cost,
        record.add1_steps
    );

    // The same storing block on a node with no thread result: it tallies there and then.
    // (A fresh process would; here the memo is keyed by the frozen state's root, so the
    // round is marked as frozen in another one.)
    let mut state = before_due;
    let mut c = StateChanges::new();
    let mut again = round.clone();
    again.status = RoundStatus::Tallying {
        closed: Height(3),
        due: Height(4),
        ballots_at: acta_ledger::Hash::digest(b"no thread ran for this"),
    };
    put(&mut c, NS_ROUND, &0u64.to_be_bytes(), &again);
    put(&mut c, NS_TALLYING, b"tallying", &vec![(Height(4), 0u64)]);
    state.commit(&c).unwrap();
    let (took, events) = block(&mut state);
    println!(
        "the storing block without a thread result (it tallies inline): {:.1} ms, events {events:?}",
        took.as_secs_f64() * 1e3
    );
}
