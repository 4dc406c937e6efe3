//! Participatory-budget tallies: greedy and the Method of Equal Shares with its Add1
//! completions, in exact arithmetic, over an [`Election`] read from a budget round on the
//! ledger or from a Pabulib `.pb` file. The same code runs in both places, so anyone can
//! replay a round's outcome. `docs/tally-rules.md` is the specification.

use std::cmp::Ordering;

pub use acta_ledger::records::{Rule, RuleProfile, TieBreak};

mod mes;
pub mod pb;
mod stable;

/// A project of an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    /// Unique; no `,` (it separates ids in `.pb` votes).
    pub id: String,
    /// More than zero.
    pub cost: u64,
    /// A title for people; the rules do not read it.
    pub name: String,
}

/// One voter's ballot: the projects it approves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub voter: String,
    /// Indices into [`Election::projects`], distinct, in any order.
    pub approvals: Vec<u32>,
}

/// An approval election: what every tally rule reads.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Election {
    /// More than zero.
    pub budget: u64,
    pub projects: Vec<Project>,
    pub ballots: Vec<Ballot>,
    /// Other `key;value` pairs of a `.pb` file's META section, in file order (without
    /// `budget`, `vote_type`, `num_projects` and `num_votes`, which are derived).
    pub meta: Vec<(String, String)>,
}

impl Election {
    /// The number of ballots approving each project.
    pub fn approval_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.projects.len()];
        for ballot in &self.ballots {
            for &p in &ballot.approvals {
                if let Some(c) = counts.get_mut(p as usize) {
                    *c += 1;
                }
            }
        }
        counts
    }
}

/// A tally's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TallyResult {
    /// Indices of the selected projects, in the order the rule selected them.
    pub selected: Vec<u32>,
    /// For the MES rules: each selection's effective vote count (its cost over the largest
    /// payment of a supporter, the inverse of its price per unit of utility) as a reduced
    /// fraction `"n/d"`, in selection order.
    pub effective_votes: Vec<String>,
    /// Their total cost.
    pub total_cost: u64,
    /// The approval count of every project, by index.
    pub approvals: Vec<u64>,
    /// For the MES rules: the final per-voter endowment as a reduced fraction
    /// (numerator, denominator), and the number of Add1 steps taken.
    pub endowment: Option<(u128, u128)>,
    pub add1_steps: Option<u64>,
    /// The MES runs the tally made (0 for greedy): the work, which Add1 keeps far below
    /// one run per step by skipping steps whose outcome cannot differ.
    pub mes_runs: u64,
}

impl TallyResult {
    /// The selected projects' ids, sorted in id order.
    pub fn selected_ids_sorted(&self, election: &Election) -> Vec<String> {
        let mut ids: Vec<&str> = self
            .selected
            .iter()
            .map(|&i| election.projects[i as usize].id.as_str())
            .collect();
        ids.sort_by(|a, b| id_order(a, b));
        ids.into_iter().map(str::to_string).collect()
    }
}

/// Why an election cannot be tallied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TallyError {
    #[error("the election is invalid: {0}")]
    Invalid(String),
}

/// Tallies `election` with `profile`.
pub fn tally(election: &Election, profile: RuleProfile) -> Result<TallyResult, TallyError> {
    check(election)?;
    let approvals = election.approval_counts();
    let order = preference_order(election, &approvals, profile.tie_break);
    let mut result = match profile.rule {
        Rule::Greedy => greedy(election, &approvals, &order),
        Rule::Mes => mes::tally(election, &order, mes::Completion::None),
        Rule::MesAdd1 => mes::tally(election, &order, mes::Completion::Add1),
        Rule::MesAdd1Exhaustive => mes::tally(election, &order, mes::Completion::Add1Exhaustive),
    };
    result.approvals = approvals;
    Ok(result)
}

fn check(election: &Election) -> Result<(), TallyError> {
    let bad = |m: String| Err(TallyError::Invalid(m));
    if election.budget == 0 {
        return bad("the budget is zero".into());
    }
    if election.ballots.is_empty() {
        return bad("there are no ballots".into());
    }
    if u32::try_from(election.projects.len()).is_err() {
        return bad("too many projects".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for p in &election.projects {
        if p.cost == 0 {
            return bad(format!("project {} costs nothing", p.id));
        }
        if !ids.insert(p.id.as_str()) {
            return bad(format!("project id {} is used twice", p.id));
        }
    }
    let mut seen = vec![false; election.projects.len()];
    for b in &election.ballots {
        for &p in &b.approvals {
            match seen.get_mut(p as usize) {
                None => return bad(format!("ballot of {} names no project {p}", b.voter)),
                Some(s) if *s => {
                    return bad(format!("ballot of {} approves project {p} twice", b.voter))
                }
                Some(s) => *s = true,
            }
        }
        for &p in &b.approvals {
            seen[p as usize] = false;
        }
    }
    Ok(())
}

/// The order in which ties are broken: `order[r]` is the project of rank `r` (0 = preferred).
fn preference_order(election: &Election, approvals: &[u64], tie_break: TieBreak) -> Vec<u32> {
    let count = u32::try_from(election.projects.len()).expect("checked: fewer than 2^32 projects");
    let mut order: Vec<u32> = (0..count).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (
            &election.projects[a as usize],
            &election.projects[b as usize],
        );
        let votes = approvals[b as usize].cmp(&approvals[a as usize]);
        let cost = pa.cost.cmp(&pb.cost);
        let first = match tie_break {
            TieBreak::VotesThenCost => votes.then(cost),
            TieBreak::CostThenVotes => cost.then(votes),
        };
        first.then_with(|| id_order(&pa.id, &pb.id))
    });
    order
}

/// Project id order: ids of ASCII digits only first, by numeric value (then bytes), then
/// all other ids by their bytes.
pub fn id_order(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => {
            let (ta, tb) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
            ta.len()
                .cmp(&tb.len())
                .then_with(|| ta.cmp(tb))
                .then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.as_bytes().cmp(b.as_bytes()),
    }
}

/// Greedy by approval count (ties by the preference order), skipping projects that no
/// longer fit.
fn greedy(election: &Election, approvals: &[u64], order: &[u32]) -> TallyResult {
    let mut by_votes = order.to_vec();
    // Stable: equal counts keep their preference order.
    by_votes.sort_by_key(|&p| std::cmp::Reverse(approvals[p as usize]));
    let mut remaining = election.budget;
    let mut selected = Vec::new();
    let mut total_cost = 0u64;
    for p in by_votes {
        let cost = election.projects[p as usize].cost;
        if cost <= remaining {
            remaining -= cost;
            total_cost += cost;
            selected.push(p);
        }
    }
    TallyResult {
        selected,
        effective_votes: Vec::new(),
        total_cost,
        approvals: Vec::new(),
        endowment: None,
        add1_steps: None,
        mes_runs: 0,
    }
}
