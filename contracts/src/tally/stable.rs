//! How far the endowment can rise before an MES run's outcome may change: what lets Add1
//! skip the steps whose outcome is the one it already has, and so return exactly what its
//! definition says (docs/tally-rules.md, section 3.5) in a few MES runs rather than one per
//! unit of endowment.
//!
//! An MES run is a sequence of decisions, each the sign of a comparison between budgets,
//! payment caps and prices: is this project affordable, is this supporter poorer than the
//! cap, is this price lower than that one. With the per-voter endowment `E0 + t`, every
//! budget, cap and price along a fixed sequence of decisions is an affine function of `t`
//! (a poor supporter's budget drops to 0, a rich one's by the cap, and a cap is the cost
//! less the poor supporters' budgets over the rich supporters' weight). So each decision
//! keeps its sign for every `t` below the first root of its function past 0; at the
//! smallest such root, [`run`] returns `T`, and the run at `E0 + t` makes the same
//! decisions, and selects the same projects in the same order, for every `0 ≤ t < T`.
//!
//! A comparison that is exactly equal at `t = 0` while its two sides move apart (a tie
//! broken by rank, a supporter whose budget is exactly the cap) gives `T = 0`: no skip,
//! never a wrong one.

use std::{cmp::Ordering, collections::BTreeMap};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::mes::Groups;

type Q = BigRational;

/// `v + s·t`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lin {
    v: Q,
    s: Q,
}

impl Lin {
    fn constant(v: Q) -> Lin {
        Lin { v, s: Q::zero() }
    }

    fn zero() -> Lin {
        Lin::constant(Q::zero())
    }

    fn add(&self, o: &Lin) -> Lin {
        Lin {
            v: &self.v + &o.v,
            s: &self.s + &o.s,
        }
    }

    fn sub(&self, o: &Lin) -> Lin {
        Lin {
            v: &self.v - &o.v,
            s: &self.s - &o.s,
        }
    }

    fn scale(&self, k: &Q) -> Lin {
        Lin {
            v: &self.v * k,
            s: &self.s * k,
        }
    }
}

fn q(n: u128) -> Q {
    Q::from_integer(BigInt::from(n))
}

/// Lowers `bound` (`None`: no bound yet) to the largest `T` such that `f` keeps at every
/// `0 ≤ t < T` the sign it has at `t = 0`.
fn keep(f: &Lin, bound: &mut Option<Q>) {
    let root = if f.v.is_zero() {
        if f.s.is_zero() {
            return;
        }
        Q::zero()
    } else if f.v.is_positive() == f.s.is_negative() && !f.s.is_zero() {
        -(&f.v / &f.s)
    } else {
        return;
    };
    if bound.as_ref().is_none_or(|b| root < *b) {
        *bound = Some(root);
    }
}

/// Budgets by class: groups with the same affine budget share one.
struct Classes {
    of: Vec<u32>,
    value: Vec<Lin>,
}

impl Classes {
    /// Keeps the classes in use, merges equal ones, numbers them by value at `t = 0`.
    fn compact(&mut self) {
        let mut used = vec![false; self.value.len()];
        for &c in &self.of {
            used[c as usize] = true;
        }
        let mut live: Vec<usize> = (0..used.len()).filter(|&c| used[c]).collect();
        live.sort_by(|&a, &b| {
            let (x, y) = (&self.value[a], &self.value[b]);
            x.v.cmp(&y.v).then_with(|| x.s.cmp(&y.s))
        });
        let mut remap = vec![0u32; used.len()];
        let mut value: Vec<Lin> = Vec::with_capacity(live.len());
        for c in live {
            if value.last() != Some(&self.value[c]) {
                value.push(self.value[c].clone());
            }
            remap[c] = u32::try_from(value.len() - 1).expect("classes fit a u32");
        }
        for c in &mut self.of {
            *c = remap[*c as usize];
        }
        self.value = value;
    }
}

/// A project evaluated: its price and cap as functions of `t`, and its paying classes.
struct Priced {
    at: usize,
    rho: Lin,
    cap: Lin,
}

/// One MES run at per-voter endowment `e0`, evaluating every live project at every step
/// (the definition's full scan). Returns the selection, in order, and the bound `T` (`None`:
/// no decision ever changes).
pub(super) fn run(groups: &Groups, candidates: &[u32], e0: &Q) -> (Vec<u32>, Option<Q>) {
    let mut classes = Classes {
        of: vec![0; groups.weight.len()],
        value: vec![Lin {
            v: e0.clone(),
            s: Q::from_integer(BigInt::from(1)),
        }],
    };
    let mut weight_of = vec![0u64; 1];
    let mut touched: Vec<u32> = Vec::new();
    let mut live: Vec<u32> = candidates.to_vec();
    let mut selected = Vec::new();
    let mut bound: Option<Q> = None;
    loop {
        let mut priced: Vec<Priced> = Vec::new();
        let mut gone: Vec<usize> = Vec::new();
        weight_of.resize(classes.value.len(), 0);
        for (at, &p) in live.iter().enumerate() {
            touched.clear();
            let mut supporters = 0u64;
            for &g in &groups.supporters[p as usize] {
                let c = classes.of[g as usize];
                if weight_of[c as usize] == 0 {
                    touched.push(c);
                }
                weight_of[c as usize] += groups.weight[g as usize];
                supporters += groups.weight[g as usize];
            }
            touched.sort_unstable();
            let cost = Lin::constant(q(u128::from(groups.cost[p as usize])));
            let mut total = Lin::zero();
            for &c in &touched {
                total = total
                    .add(&classes.value[c as usize].scale(&q(u128::from(weight_of[c as usize]))));
            }
            let afford = total.sub(&cost);
            keep(&afford, &mut bound);
            if afford.v.is_negative() {
                gone.push(at);
            } else {
                // From the poorest class: the first that can pay an equal share of what the
                // poorer ones could not fixes the cap.
                let mut spent = Lin::zero();
                let mut r = supporters;
                let mut cap = None;
                for &c in &touched {
                    let value = &classes.value[c as usize];
                    let rest = cost.sub(&spent);
                    if rest.v <= &value.v * q(u128::from(r)) {
                        cap = Some(rest.scale(&Q::new(BigInt::from(1), BigInt::from(r))));
                        break;
                    }
                    spent = spent.add(&value.scale(&q(u128::from(weight_of[c as usize]))));
                    r -= weight_of[c as usize];
                }
                let cap = cap.expect("an affordable project has a payer");
                for &c in &touched {
                    keep(&cap.sub(&classes.value[c as usize]), &mut bound);
                }
                let rho = cap.scale(&Q::new(
                    BigInt::from(1),
                    BigInt::from(groups.cost[p as usize]),
                ));
                priced.push(Priced { at, rho, cap });
            }
            for &c in &touched {
                weight_of[c as usize] = 0;
            }
        }
        let rank = |at: usize| groups.rank[live[at] as usize];
        let Some(best) = priced.iter().min_by(|a, b| match a.rho.v.cmp(&b.rho.v) {
            Ordering::Equal => rank(a.at).cmp(&rank(b.at)),
            other => other,
        }) else {
            return (selected, bound);
        };
        for other in &priced {
            if other.at != best.at {
                keep(&other.rho.sub(&best.rho), &mut bound);
            }
        }
        let p = live[best.at];
        // The supporters pay min(budget, cap): a new class for each class they came from.
        let mut new_class: BTreeMap<u32, u32> = BTreeMap::new();
        for &g in &groups.supporters[p as usize] {
            let old = classes.of[g as usize];
            let class = *new_class.entry(old).or_insert_with(|| {
                let value = &classes.value[old as usize];
                let left = if value.v <= best.cap.v {
                    Lin::zero()
                } else {
                    value.sub(&best.cap)
                };
                classes.value.push(left);
                u32::try_from(classes.value.len() - 1).expect("classes fit a u32")
            });
            classes.of[g as usize] = class;
        }
        classes.compact();
        selected.push(p);
        gone.push(best.at);
        gone.sort_unstable();
        for at in gone.into_iter().rev() {
            live.swap_remove(at);
        }
    }
}
