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
    // 14 voters with 10 each. Y (100) takes all the money of voter v1 and nine others. Then
    // A (20; approved by v1, v2, v3) and B (10; v4, v5) tie: both cost their funded
    // supporters 1/2 per unit of utility. A has more approvals, B costs less.
    let e = election(
        140,
        &[("Y", 100), ("A", 20), ("B", 10)],
        &[(1, &["Y", "A"]), (9, &["Y"]), (2, &["A"]), (2, &["B"])],
    );
    let votes_first = tally::tally(&e, profile(Rule::Mes)).unwrap();
    assert_eq!(ids(&e, &votes_first.selected), "Y A B");
    assert_eq!(votes_first.effective_votes, ["10/1", "2/1", "2/1"]);
    let cost_first = tally::tally(
        &e,
        RuleProfile {
            rule: Rule::Mes,
            tie_break: TieBreak::CostThenVotes,
        },
    )
    .unwrap();
    assert_eq!(ids(&e, &cost_first.selected), "Y B A");
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

fn mes_outcome(e: &Election) -> (String, Vec<String>, u64) {
    let r = tally::tally(e, profile(Rule::Mes)).unwrap();
    (ids(e, &r.selected), r.effective_votes, r.total_cost)
}

/// equalshares.net, "Explanation", Example 1: budget 1100, 11 voters (100 each). The bike
/// path (700, voters 1-6 and 11) goes first with 7 effective votes, each supporter paying
/// 100; then the playground (200, voters 7-10), 50 each; then the library (100, voters 7, 9,
/// 10), 33.3 each. The gym and the park can no longer be afforded.
#[test]
fn equalshares_net_example_1() {
    let e = election(
        1100,
        &[
            ("bike", 700),
            ("gym", 400),
            ("park", 250),
            ("playground", 200),
            ("library", 100),
        ],
        &[
            (1, &["bike", "gym"]),                   // voter 1
            (1, &["bike", "gym", "park"]),           // 2
            (1, &["bike", "gym"]),                   // 3
            (1, &["bike", "gym", "park"]),           // 4
            (1, &["bike", "gym", "park"]),           // 5
            (1, &["bike", "gym"]),                   // 6
            (1, &["park", "playground", "library"]), // 7
            (1, &["playground"]),                    // 8
            (1, &["playground", "library"]),         // 9
            (1, &["park", "playground", "library"]), // 10
            (1, &["bike"]),                          // 11
        ],
    );
    let (order, evc, total) = mes_outcome(&e);
    assert_eq!(order, "bike playground library");
    // 700/100, 200/50, 100/(100/3).
    assert_eq!(evc, ["7/1", "4/1", "3/1"]);
    assert_eq!(total, 1000);
    // The page's comparison: the standard (greedy) method picks the bike path and the gym.
    let greedy = tally::tally(&e, profile(Rule::Greedy)).unwrap();
    assert_eq!(ids(&e, &greedy.selected), "bike gym");
}

/// equalshares.net, Example 2: the right-most voter approves the gym instead of the bike
/// path. The gym goes first (each supporter pays 400/7), the bike path is no longer
/// affordable, then the park (about 4.1 effective votes: exactly 70/17) and the playground
/// (the page rounds to 3.2 or 3.31: exactly 56/17).
#[test]
fn equalshares_net_example_2() {
    let e = election(
        1100,
        &[
            ("bike", 700),
            ("gym", 400),
            ("park", 250),
            ("playground", 200),
            ("library", 100),
        ],
        &[
            (1, &["bike", "gym"]),
            (1, &["bike", "gym", "park"]),
            (1, &["bike", "gym"]),
            (1, &["bike", "gym", "park"]),
            (1, &["bike", "gym", "park"]),
            (1, &["bike", "gym"]),
            (1, &["park", "playground", "library"]),
            (1, &["playground"]),
            (1, &["playground", "library"]),
            (1, &["park", "playground", "library"]),
            (1, &["gym"]),
        ],
    );
    let (order, evc, total) = mes_outcome(&e);
    assert_eq!(order, "gym park playground");
    assert_eq!(evc, ["7/1", "70/17", "56/17"]);
    assert_eq!(total, 850);
}

/// equalshares.net, the home page diagram: budget 1200, 8 voters with 150 each; project 1
/// (600) is paid 100 by each of voters 1-6, project 2 (250) 50 by voters 1-3, 7, 8, project
/// 3 (200) 50 by voters 4, 5, 7, 8 and project 4 (150) 50 by voters 6-8. All four are funded
/// and every voter spends everything.
#[test]
fn equalshares_net_home_page_diagram() {
    let e = election(
        1200,
        &[("1", 600), ("2", 250), ("3", 200), ("4", 150)],
        &[
            (3, &["1", "2"]),
            (2, &["1", "3"]),
            (1, &["1", "4"]),
            (2, &["2", "3", "4"]),
        ],
    );
    let (order, evc, total) = mes_outcome(&e);
    assert_eq!(order, "1 2 3 4");
    assert_eq!(evc, ["6/1", "5/1", "4/1", "3/1"]);
    assert_eq!(total, 1200);
}
