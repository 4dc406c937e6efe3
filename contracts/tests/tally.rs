//! The tally rules on the Wieliczka 2023 Green Budget (expected outcomes from
//! `docs/tally-rules.md`, section 4) and on small elections worked by hand.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_contracts::tally::{self, pb, Ballot, Election, Project, Rule, RuleProfile, TieBreak};

fn wieliczka() -> Election {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/poland_wieliczka_2023_green-budget.pb"
    ))
    .unwrap();
    pb::parse(&bytes).unwrap()
}

fn profile(rule: Rule) -> RuleProfile {
    RuleProfile {
        rule,
        tie_break: TieBreak::VotesThenCost,
    }
}

fn ids(election: &Election, selected: &[u32]) -> String {
    selected
        .iter()
        .map(|&i| election.projects[i as usize].id.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Expected {
    rule: Rule,
    count: usize,
    total: u64,
    sorted: &'static str,
    order: &'static str,
    endowment: Option<(u128, u128)>,
    steps: Option<u64>,
}

const EXPECTED: [Expected; 4] = [
    Expected {
        rule: Rule::Mes,
        count: 21,
        total: 450_548,
        sorted: "17 20 24 25 26 29 34 36 39 41 43 56 58 60 62 66 69 70 71 74 88",
        order: "24 41 74 39 58 25 20 43 60 17 29 70 26 71 62 88 34 36 56 66 69",
        endowment: Some((500_000, 3293)),
        steps: None,
    },
    Expected {
        rule: Rule::MesAdd1,
        count: 30,
        total: 995_079,
        sorted: "6 7 9 17 19 20 24 25 26 29 32 33 34 36 39 40 41 42 43 46 56 58 60 61 62 69 70 71 74 88",
        order: "24 41 40 74 19 6 58 32 25 20 60 43 29 39 17 42 26 70 34 71 62 88 9 61 7 36 46 33 56 69",
        endowment: Some((1_040_052, 3293)),
        steps: Some(164),
    },
    Expected {
        rule: Rule::MesAdd1Exhaustive,
        count: 31,
        total: 984_579,
        sorted: "6 7 9 17 19 20 24 25 26 29 32 33 34 36 39 40 41 42 43 56 58 60 61 62 66 67 69 70 71 74 88",
        order: "24 41 40 74 19 6 58 32 25 20 60 43 29 17 39 42 26 70 34 71 62 88 61 9 7 36 56 33 66 67 69",
        endowment: Some((993_950, 3293)),
        steps: Some(150),
    },
    Expected {
        rule: Rule::Greedy,
        count: 23,
        total: 998_997,
        sorted: "6 8 16 17 19 20 21 24 25 29 32 33 34 39 40 41 42 43 58 60 70 74 87",
        order: "24 41 40 74 19 6 21 32 39 58 42 25 16 43 20 60 29 33 17 70 34 87 8",
        endowment: None,
        steps: None,
    },
];

#[test]
fn wieliczka_outcomes_match_the_reference_for_every_rule() {
    let election = wieliczka();
    for e in &EXPECTED {
        let started = std::time::Instant::now();
        let result = tally::tally(&election, profile(e.rule)).unwrap();
        eprintln!("{}: {:?}", e.rule, started.elapsed());
        assert_eq!(result.selected.len(), e.count, "{}", e.rule);
        assert_eq!(result.total_cost, e.total, "{}", e.rule);
        assert_eq!(
            result.selected_ids_sorted(&election).join(" "),
            e.sorted,
            "{}",
            e.rule
        );
        assert_eq!(ids(&election, &result.selected), e.order, "{}", e.rule);
        assert_eq!(result.endowment, e.endowment, "{}", e.rule);
        assert_eq!(result.add1_steps, e.steps, "{}", e.rule);
        assert_eq!(result.approvals[0], 720, "project 24 has 720 approvals");
    }
}

#[test]
fn wieliczka_mes_add1_is_the_official_outcome() {
    let election = wieliczka();
    let result = tally::tally(&election, profile(Rule::MesAdd1)).unwrap();
    // The `selected` column of the file (not read by the parser) lists these 30 projects.
    let official =
        "6 7 9 17 19 20 24 25 26 29 32 33 34 36 39 40 41 42 43 46 56 58 60 61 62 69 70 71 74 88";
    assert_eq!(result.selected_ids_sorted(&election).join(" "), official);
}

fn election(budget: u64, costs: &[(&str, u64)], groups: &[(usize, &[&str])]) -> Election {
    let projects: Vec<Project> = costs
        .iter()
        .map(|&(id, cost)| Project {
            id: id.into(),
            cost,
            name: String::new(),
        })
        .collect();
    let index = |id: &str| projects.iter().position(|p| p.id == id).unwrap() as u32;
    let mut ballots = Vec::new();
    for &(count, approvals) in groups {
        for _ in 0..count {
            ballots.push(Ballot {
                voter: format!("v{}", ballots.len()),
                approvals: approvals.iter().map(|id| index(id)).collect(),
            });
        }
    }
    Election {
        budget,
        projects,
        ballots,
        meta: Vec::new(),
    }
}

#[test]
fn mes_is_proportional_where_greedy_is_not() {
    // 51 voters want the red projects, 49 the blue ones; the budget buys 10 of 20.
    let mut costs = Vec::new();
    let reds: Vec<String> = (1..=10).map(|i| format!("r{i}")).collect();
    let blues: Vec<String> = (1..=10).map(|i| format!("b{i}")).collect();
    for id in reds.iter().chain(&blues) {
        costs.push((id.as_str(), 100));
    }
    let red: Vec<&str> = reds.iter().map(String::as_str).collect();
    let blue: Vec<&str> = blues.iter().map(String::as_str).collect();
    let e = election(1000, &costs, &[(51, &red), (49, &blue)]);
    let greedy = tally::tally(&e, profile(Rule::Greedy)).unwrap();
    assert!(greedy
        .selected_ids_sorted(&e)
        .iter()
        .all(|id| id.starts_with('r')));
    let mes = tally::tally(&e, profile(Rule::Mes)).unwrap();
    let sorted = mes.selected_ids_sorted(&e);
    let red_count = sorted.iter().filter(|id| id.starts_with('r')).count();
    let blue_count = sorted.iter().filter(|id| id.starts_with('b')).count();
    // Each red voter has 10; a red project costs 100 / 51 each: 5 fit (5 × 1.96 = 9.8).
    // Each blue voter also has 10 and pays 100 / 49 = 2.04: 4 fit (8.16), a fifth does not.
    assert_eq!((red_count, blue_count), (5, 4), "{sorted:?}");
    assert_eq!(mes.total_cost, 900);
    // Add1 raises the endowment until a tenth project fits.
    let add1 = tally::tally(&e, profile(Rule::MesAdd1)).unwrap();
    assert_eq!(add1.total_cost, 1000);
}

#[test]
fn ties_follow_the_profile() {
    // Two projects with the same price per unit of utility: one is cheaper, the other has
    // more votes... with equal ρ only when cost/approvals line up: a costs 20 with 2 voters,
    // b costs 10 with 1 voter; ρ = 10/20 = 1/2 and 10/10 = 1 differ, so use equal shapes.
    let e = election(
        30,
        &[("a", 20), ("b", 10), ("c", 10)],
        &[(1, &["a"]), (1, &["a", "b"]), (1, &["c"])],
    );
    let votes_first = tally::tally(&e, profile(Rule::Greedy)).unwrap();
    assert_eq!(ids(&e, &votes_first.selected), "a b");
    let cost_first = tally::tally(
        &e,
        RuleProfile {
            rule: Rule::Greedy,
            tie_break: TieBreak::CostThenVotes,
        },
    )
    .unwrap();
    // Greedy goes by approvals first: a (2); then b and c tie on 1 approval and cost 10,
    // and the id decides.
    assert_eq!(ids(&e, &cost_first.selected), "a b");
}

#[test]
fn invalid_elections_are_refused() {
    let mut e = election(10, &[("a", 5)], &[(1, &["a"])]);
    e.budget = 0;
    assert!(tally::tally(&e, profile(Rule::Mes)).is_err());
    let mut e = election(10, &[("a", 5)], &[(1, &["a"])]);
    e.ballots[0].approvals = vec![0, 0];
    assert!(tally::tally(&e, profile(Rule::Mes)).is_err());
    let mut e = election(10, &[("a", 5)], &[(1, &["a"])]);
    e.ballots[0].approvals = vec![7];
    assert!(tally::tally(&e, profile(Rule::Mes)).is_err());
    let mut e = election(10, &[("a", 5)], &[(1, &["a"])]);
    e.projects[0].cost = 0;
    assert!(tally::tally(&e, profile(Rule::Greedy)).is_err());
    let e = election(10, &[("a", 5)], &[]);
    assert!(tally::tally(&e, profile(Rule::Mes)).is_err());
}
