//! The Add1 completions return exactly what their definitions say (docs/tally-rules.md,
//! sections 3.3 and 3.4), however many steps it takes:
//!
//! - on 40 random elections with small electorates and large costs, every rule selects
//!   what pabutools 1.2.3 selects (`contracts/testdata/pabutools-random.json`, made by
//!   `scripts/pabutools_compare.py`), including those that take more than 2,000 steps;
//! - on generated elections, the tally equals the definition run step by step, one MES run
//!   per unit of endowment (MES at endowment B/n + k is MES with budget B + k·n).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_contracts::tally::{self, pb, Ballot, Election, Project, Rule, RuleProfile, TieBreak};
use proptest::prelude::*;
use serde_json::Value;

fn profile(rule: Rule) -> RuleProfile {
    RuleProfile {
        rule,
        tie_break: TieBreak::VotesThenCost,
    }
}

#[test]
fn every_rule_agrees_with_pabutools_on_random_elections() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/pabutools-random.json"
    ))
    .unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 40);
    let mut most_steps = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let election = pb::parse(case["pb"].as_str().unwrap().as_bytes()).unwrap();
        for (rule, expected) in case["expected"].as_object().unwrap() {
            let rule = Rule::parse(rule).unwrap();
            let result = tally::tally(&election, profile(rule)).unwrap();
            let expected: Vec<String> = expected
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(
                result.selected_ids_sorted(&election),
                expected,
                "{name}, {}",
                rule.name()
            );
            most_steps = most_steps.max(result.add1_steps.unwrap_or(0));
        }
    }
    // The set holds elections the old 2,000-step cap cut short.
    assert!(most_steps > 2_000, "{most_steps}");
}

/// Add1 by its definition: W_k = MES(B/n + k) for k = 0, 1, …, one run each.
fn add1_by_definition(election: &Election, exhaustive: bool) -> (Vec<String>, u64) {
    let budget = election.budget;
    let n = election.ballots.len() as u64;
    let supported: Vec<usize> = (0..election.projects.len())
        .filter(|&p| {
            election
                .ballots
                .iter()
                .any(|b| b.approvals.contains(&(p as u32)))
        })
        .collect();
    let mes_at = |k: u64| {
        let mut e = election.clone();
        e.budget = budget + k * n;
        let r = tally::tally(&e, profile(Rule::Mes)).unwrap();
        (r.selected_ids_sorted(election), r.selected, r.total_cost)
    };
    let mut k = 0;
    let mut w = mes_at(0);
    loop {
        let fits_more = (0..election.projects.len())
            .any(|p| !w.1.contains(&(p as u32)) && w.2 + election.projects[p].cost <= budget);
        if exhaustive && !fits_more {
            break;
        }
        if supported.iter().all(|&p| w.1.contains(&(p as u32))) {
            break;
        }
        let next = mes_at(k + 1);
        if next.2 > budget {
            break;
        }
        w = next;
        k += 1;
    }
    (w.0, k)
}

fn election() -> impl Strategy<Value = Election> {
    (2usize..7, 1usize..9, 50u64..3_000).prop_flat_map(|(m, n, budget)| {
        (
            prop::collection::vec(1..=budget, m),
            prop::collection::vec(prop::collection::btree_set(0..m as u32, 0..=m), n),
        )
            .prop_map(move |(costs, ballots)| Election {
                budget,
                projects: costs
                    .iter()
                    .enumerate()
                    .map(|(i, &cost)| Project {
                        id: i.to_string(),
                        cost,
                        name: String::new(),
                    })
                    .collect(),
                ballots: ballots
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| Ballot {
                        voter: i.to_string(),
                        approvals: a.into_iter().collect(),
                    })
                    .collect(),
                meta: Vec::new(),
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn add1_is_its_definition_step_by_step(e in election()) {
        for (rule, exhaustive) in [(Rule::MesAdd1, false), (Rule::MesAdd1Exhaustive, true)] {
            let result = tally::tally(&e, profile(rule)).unwrap();
            let (selected, k) = add1_by_definition(&e, exhaustive);
            prop_assert_eq!(result.selected_ids_sorted(&e), selected, "{}", rule.name());
            prop_assert_eq!(result.add1_steps, Some(k), "{}", rule.name());
        }
    }
}
