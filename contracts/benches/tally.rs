//! Tallying the Wieliczka 2023 Green Budget (64 projects, 6,586 ballots) with each rule,
//! parsing included in its own benchmark.

#![allow(clippy::unwrap_used)]

use acta_contracts::tally::{self, pb, Rule, RuleProfile, TieBreak};
use criterion::{criterion_group, criterion_main, Criterion};

fn wieliczka(c: &mut Criterion) {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/poland_wieliczka_2023_green-budget.pb"
    ))
    .unwrap();
    c.bench_function("pb/parse_wieliczka", |b| {
        b.iter(|| pb::parse(&bytes).unwrap())
    });
    let election = pb::parse(&bytes).unwrap();
    let mut group = c.benchmark_group("tally/wieliczka");
    group.sample_size(10);
    for rule in Rule::ALL {
        let profile = RuleProfile {
            rule,
            tie_break: TieBreak::VotesThenCost,
        };
        group.bench_function(rule.name(), |b| {
            b.iter(|| tally::tally(&election, profile).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, wieliczka);
criterion_main!(benches);
