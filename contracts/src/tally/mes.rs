//! The Method of Equal Shares with cost utilities, and its Add1 completions, in exact
//! arithmetic (`docs/tally-rules.md`, sections 3.2 to 3.4).
//!
//! Budgets are exact rationals that share one denominator `d`: a voter's budget is
//! `num / d` with `num` a big integer. Paying for a project divides by the number of
//! supporters who pay in full, so `d` grows, and every numerator is scaled to match; all
//! comparisons and sums are then on integers.
//!
//! Two facts keep the work small. Voters with the same ballot always have the same budget,
//! so they form one group; and groups whose budgets are equal form one class, of which there
//! are few. A project's price per unit of utility (ρ) only grows as budgets shrink, so its
//! last value is a lower bound and projects whose bound already exceeds the best ρ found
//! in a step need not be evaluated again.

use std::{cmp::Ordering, collections::BTreeMap};

use num_bigint::{BigInt, BigUint};
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use super::{stable, Election, TallyResult};

/// Add1 steps taken one MES run each before the tally looks for steps to skip.
const PLAIN_FIRST: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Completion {
    None,
    Add1,
    Add1Exhaustive,
}

/// The election with identical ballots merged.
pub(super) struct Groups {
    /// Voters per distinct non-empty ballot.
    pub(super) weight: Vec<u64>,
    /// Each project's supporting groups.
    pub(super) supporters: Vec<Vec<u32>>,
    /// Each project's rank in the tie-break order (0 first).
    pub(super) rank: Vec<u32>,
    pub(super) cost: Vec<u64>,
    /// Voters, empty ballots included.
    pub(super) n: u64,
}

impl Groups {
    fn new(election: &Election, order: &[u32]) -> Groups {
        let mut distinct: BTreeMap<Vec<u32>, u64> = BTreeMap::new();
        for b in &election.ballots {
            if b.approvals.is_empty() {
                continue;
            }
            let mut approvals = b.approvals.clone();
            approvals.sort_unstable();
            *distinct.entry(approvals).or_default() += 1;
        }
        let projects = election.projects.len();
        let mut supporters = vec![Vec::new(); projects];
        let mut weight = Vec::with_capacity(distinct.len());
        for (g, (approvals, w)) in distinct.into_iter().enumerate() {
            let g = u32::try_from(g).expect("fewer groups than ballots, which fit a u32");
            for &p in &approvals {
                supporters[p as usize].push(g);
            }
            weight.push(w);
        }
        let mut rank = vec![0u32; projects];
        for (r, &p) in order.iter().enumerate() {
            rank[p as usize] = u32::try_from(r).expect("projects fit a u32");
        }
        Groups {
            weight,
            supporters,
            rank,
            cost: election.projects.iter().map(|p| p.cost).collect(),
            n: election.ballots.len() as u64,
        }
    }
}

/// A price per unit of utility, `num / den`, compared exactly.
#[derive(Clone, Debug)]
struct Rho {
    num: BigUint,
    den: BigUint,
}

impl Rho {
    fn cmp(&self, other: &Rho) -> Ordering {
        (&self.num * &other.den).cmp(&(&other.num * &self.den))
    }
}

/// One MES run's budgets: `class_num[class_of[g]] / d` for group `g`. After
/// [`Budgets::compact`], class ids follow the budgets' order (class 0 is the poorest).
struct Budgets {
    d: BigUint,
    class_of: Vec<u32>,
    class_num: Vec<BigUint>,
}

impl Budgets {
    fn new(groups: usize, endowment_num: BigUint, d: BigUint) -> Budgets {
        Budgets {
            d,
            class_of: vec![0; groups],
            class_num: vec![endowment_num],
        }
    }

    /// Keeps the classes still in use, merges equal budgets and numbers them by value.
    fn compact(&mut self) {
        let mut used = vec![false; self.class_num.len()];
        for &c in &self.class_of {
            used[c as usize] = true;
        }
        let mut live: Vec<usize> = (0..used.len()).filter(|&c| used[c]).collect();
        live.sort_unstable_by(|&a, &b| self.class_num[a].cmp(&self.class_num[b]));
        let mut remap = vec![0u32; used.len()];
        let mut class_num: Vec<BigUint> = Vec::with_capacity(live.len());
        for c in live {
            let value = &self.class_num[c];
            if class_num.last() != Some(value) {
                class_num.push(value.clone());
            }
            remap[c] = u32::try_from(class_num.len() - 1).expect("classes fit a u32");
        }
        for c in &mut self.class_of {
            *c = remap[*c as usize];
        }
        self.class_num = class_num;
    }
}

/// What evaluating a project found.
enum Eval {
    /// Its supporters cannot afford it, now or later.
    Unaffordable,
    /// Affordable at price ρ, with payment cap `q_num / (r·d)` where `r` voters pay `q` and
    /// the rest pay their whole budget.
    Affordable { rho: Rho, q_num: BigUint, r: u64 },
}

/// Scratch space reused across evaluations.
struct Scratch {
    class_weight: Vec<u64>,
    touched: Vec<u32>,
}

fn evaluate(groups: &Groups, budgets: &Budgets, scratch: &mut Scratch, p: u32) -> Eval {
    let classes = budgets.class_num.len();
    if scratch.class_weight.len() < classes {
        scratch.class_weight.resize(classes, 0);
    }
    scratch.touched.clear();
    let mut supporters = 0u64;
    for &g in &groups.supporters[p as usize] {
        let c = budgets.class_of[g as usize];
        let w = groups.weight[g as usize];
        let slot = &mut scratch.class_weight[c as usize];
        if *slot == 0 {
            scratch.touched.push(c);
        }
        *slot += w;
        supporters += w;
    }
    // Budgets are compacted: class ids follow the budgets' order.
    scratch.touched.sort_unstable();
    let cost = groups.cost[p as usize];
    let need = &budgets.d * cost;
    let mut total = BigUint::zero();
    for &c in &scratch.touched {
        total += &budgets.class_num[c as usize] * scratch.class_weight[c as usize];
    }
    let result = if total < need {
        Eval::Unaffordable
    } else {
        // Walk the supporters from the poorest: the first class that can pay the equal
        // share of what the poorer ones could not fixes the cap.
        let mut spent = BigUint::zero();
        let mut r = supporters;
        let mut found = None;
        for &c in &scratch.touched {
            let w = scratch.class_weight[c as usize];
            let num = &budgets.class_num[c as usize];
            let rest = &need - &spent;
            if rest <= num * r {
                found = Some((rest, r));
                break;
            }
            spent += num * w;
            r -= w;
        }
        let (q_num, r) = found.expect("a group that can afford the project has a payer");
        Eval::Affordable {
            rho: Rho {
                num: q_num.clone(),
                den: &budgets.d * (u128::from(r) * u128::from(cost)),
            },
            q_num,
            r,
        }
    };
    for &c in &scratch.touched {
        scratch.class_weight[c as usize] = 0;
    }
    result
}

/// Makes every supporter of `p` pay `min(budget, q)` with `q = q_num / (r·d)`.
fn pay(groups: &Groups, budgets: &mut Budgets, p: u32, q_num: &BigUint, r: u64) {
    // Bring q to the common denominator: q = (q_num / g) / (d · r / g).
    let g = r.gcd(
        &(q_num % r)
            .to_u64()
            .expect("a remainder mod a u64 fits a u64"),
    );
    let scale = r / g;
    let q = q_num / g;
    if scale > 1 {
        budgets.d *= scale;
        for num in &mut budgets.class_num {
            *num *= scale;
        }
    }
    // New classes for the payers: one per class they came from.
    let mut new_class: BTreeMap<u32, u32> = BTreeMap::new();
    for &g in &groups.supporters[p as usize] {
        let old = budgets.class_of[g as usize];
        let next = u32::try_from(budgets.class_num.len()).expect("classes fit a u32");
        let class = *new_class.entry(old).or_insert(next);
        if class == next {
            let num = &budgets.class_num[old as usize];
            let left = if *num <= q { BigUint::zero() } else { num - &q };
            budgets.class_num.push(left);
        }
        budgets.class_of[g as usize] = class;
    }
    budgets.compact();
}

/// One MES run with per-voter endowment `endowment_num / n` (the rule's budgets start
/// there). Returns the selected projects in order, each with its price per unit of utility.
fn run(groups: &Groups, candidates: &[u32], endowment_num: &BigUint) -> Vec<(u32, Rho)> {
    let mut budgets = Budgets::new(
        groups.weight.len(),
        endowment_num.clone(),
        BigUint::from(groups.n),
    );
    budgets.compact();
    let mut scratch = Scratch {
        class_weight: Vec::new(),
        touched: Vec::new(),
    };
    // Every candidate's last known ρ: a lower bound on its current one. `None`: not yet
    // evaluated (bound zero).
    let mut live: Vec<(u32, Option<Rho>)> = candidates.iter().map(|&p| (p, None)).collect();
    let mut selected = Vec::new();
    loop {
        live.sort_by(|(pa, ra), (pb, rb)| {
            let by_bound = match (ra, rb) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(a), Some(b)) => a.cmp(b),
            };
            by_bound.then(groups.rank[*pa as usize].cmp(&groups.rank[*pb as usize]))
        });
        // (index in live, ρ, q_num, r) of the best project so far.
        let mut best: Option<(usize, Rho, BigUint, u64)> = None;
        let mut unaffordable = Vec::new();
        for i in 0..live.len() {
            let p = live[i].0;
            if let (Some((bi, best_rho, ..)), Some(bound)) = (&best, &live[i].1) {
                let rank_behind = groups.rank[p as usize] > groups.rank[live[*bi].0 as usize];
                match bound.cmp(best_rho) {
                    Ordering::Greater => break,
                    Ordering::Equal if rank_behind => break,
                    _ => {}
                }
            }
            match evaluate(groups, &budgets, &mut scratch, p) {
                Eval::Unaffordable => unaffordable.push(i),
                Eval::Affordable { rho, q_num, r } => {
                    let better = match &best {
                        None => true,
                        Some((bi, best_rho, ..)) => match rho.cmp(best_rho) {
                            Ordering::Less => true,
                            Ordering::Equal => {
                                groups.rank[p as usize] < groups.rank[live[*bi].0 as usize]
                            }
                            Ordering::Greater => false,
                        },
                    };
                    live[i].1 = Some(rho.clone());
                    if better {
                        best = Some((i, rho, q_num, r));
                    }
                }
            }
        }
        let Some((bi, rho, q_num, r)) = best else {
            return selected;
        };
        let p = live[bi].0;
        pay(groups, &mut budgets, p, &q_num, r);
        selected.push((p, rho));
        // Drop the winner and the projects that can no longer be afforded (budgets only
        // shrink), highest index first so the others stay put.
        unaffordable.push(bi);
        unaffordable.sort_unstable();
        for i in unaffordable.into_iter().rev() {
            live.swap_remove(i);
        }
    }
}

pub(super) fn tally(election: &Election, order: &[u32], completion: Completion) -> TallyResult {
    let groups = Groups::new(election, order);
    let candidates: Vec<u32> = order
        .iter()
        .copied()
        .filter(|&p| !groups.supporters[p as usize].is_empty())
        .collect();
    let budget = election.budget;
    let n = BigUint::from(groups.n);
    let cost_of = |w: &[(u32, Rho)]| -> u128 {
        w.iter()
            .map(|&(p, _)| u128::from(groups.cost[p as usize]))
            .sum()
    };
    // E_k = B/n + k = (B + k·n) / n.
    let endowment = |k: u64| BigUint::from(budget) + &n * k;
    let mut k = 0u64;
    let mut w = run(&groups, &candidates, &endowment(0));
    let mut runs = 1u64;
    if completion != Completion::None {
        let exhaustive = |w: &[(u32, Rho)]| {
            let cost = cost_of(w);
            let mut chosen = vec![false; groups.cost.len()];
            for (p, _) in w {
                chosen[*p as usize] = true;
            }
            groups
                .cost
                .iter()
                .zip(chosen)
                .all(|(&c, chosen)| chosen || cost + u128::from(c) > u128::from(budget))
        };
        // W_k = W_{k+1} = … = W_{k+j} for every j below the stable bound of the run at E_k
        // (stable.rs): those steps would each find the same feasible outcome, so the loop
        // goes straight to the first step whose outcome may differ.
        // Finding the bound costs more than a plain run (a full scan in rationals: with
        // 200,000 voters, tens of plain runs' worth), and where outcomes change at almost
        // every step (large electorates) it finds nothing. So the loop first takes
        // PLAIN_FIRST plain steps, which is all most rounds need, and after each bound below
        // one step takes twice as many plain steps before it looks again. Either way gives
        // the same outcome; only the work differs.
        let (mut plain_left, mut gap) = (PLAIN_FIRST, 1u64);
        loop {
            if completion == Completion::Add1Exhaustive && exhaustive(&w) {
                break;
            }
            if w.len() == candidates.len() {
                break;
            }
            let skip = if plain_left > 0 {
                plain_left -= 1;
                1
            } else {
                let e_k =
                    BigRational::new(BigInt::from(endowment(k)), BigInt::from(groups.n.max(1)));
                let (same, bound) = stable::run(&groups, &candidates, &e_k);
                runs += 1;
                debug_assert_eq!(
                    same,
                    w.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
                    "the full scan and the lazy run select alike"
                );
                // The least step whose outcome may differ: 1 when the bound is below 1.
                let skip = bound
                    .map(|b| b.ceil().to_integer())
                    .and_then(|b| b.to_u64())
                    .unwrap_or(u64::MAX)
                    .max(1);
                if skip > 1 {
                    gap = 1;
                } else {
                    gap = gap.saturating_mul(2);
                    plain_left = gap;
                }
                skip
            };
            let Some(next) = k.checked_add(skip) else {
                break;
            };
            let w_next = run(&groups, &candidates, &endowment(next));
            runs += 1;
            if cost_of(&w_next) > u128::from(budget) {
                // W_{next-1} is W_k, feasible, and the last of the unbroken run; its prices
                // are those at its own endowment.
                if next - 1 > k {
                    k = next - 1;
                    w = run(&groups, &candidates, &endowment(k));
                    runs += 1;
                }
                break;
            }
            k = next;
            w = w_next;
        }
    }
    let e = endowment(k);
    let g = e.gcd(&n);
    let total_cost =
        u64::try_from(cost_of(&w)).expect("every outcome returned fits the budget, a u64");
    // The effective vote count of a selection is 1/ρ: its cost over the largest payment.
    let effective_votes = w
        .iter()
        .map(|(_, rho)| {
            let g = rho.num.gcd(&rho.den);
            format!("{}/{}", &rho.den / &g, &rho.num / &g)
        })
        .collect();
    TallyResult {
        selected: w.into_iter().map(|(p, _)| p).collect(),
        effective_votes,
        total_cost,
        approvals: Vec::new(),
        endowment: Some((
            (&e / &g).to_u128().expect("B + k·n fits a u128"),
            (&n / &g).to_u128().expect("n fits a u128"),
        )),
        add1_steps: (completion != Completion::None).then_some(k),
        mes_runs: runs,
    }
}
