//! Many seeds of the simulator, spread over threads, with a summary.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::sim::{self, ByzantineKind, Faults, SimConfig, SimReport, Violation};

/// What to vary across seeds: one choice, or every choice in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice<T> {
    One(T),
    Mixed,
}

/// A sweep over seeds `seed_start .. seed_start + seeds`.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub base: SimConfig,
    pub byzantine_kind: Choice<ByzantineKind>,
    /// A named fault mix (see [`Faults::NAMED`]) or all of them in turn.
    pub faults: Choice<&'static str>,
    pub seed_start: u64,
    pub seeds: u64,
    pub threads: usize,
}

const KINDS: [ByzantineKind; 5] = [
    ByzantineKind::Equivocate,
    ByzantineKind::ConflictingProposer,
    ByzantineKind::Silent,
    ByzantineKind::InvalidProposer,
    ByzantineKind::Vanishing,
];

impl Sweep {
    /// The exact configuration of one seed, and the name of its fault mix.
    pub fn config_for(&self, seed: u64) -> (SimConfig, &'static str) {
        let mut cfg = self.base.clone();
        cfg.byzantine_kind = match self.byzantine_kind {
            Choice::One(k) => k,
            Choice::Mixed => KINDS[usize::try_from(seed % KINDS.len() as u64).expect("an index")],
        };
        let name = match self.faults {
            Choice::One(name) => name,
            // Every pair of kind and fault mix in turn.
            Choice::Mixed => {
                let mix = seed / KINDS.len() as u64 % Faults::NAMED.len() as u64;
                Faults::NAMED[usize::try_from(mix).expect("an index")].0
            }
        };
        cfg.faults = Faults::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Faults::NONE, |(_, f)| *f);
        if cfg.faults == Faults::NONE {
            // Nothing to heal from: the progress bound starts at once.
            cfg.heal_at_ms = 0;
        }
        (cfg, name)
    }

    /// The command that replays exactly one seed.
    pub fn replay_command(&self, seed: u64) -> String {
        let (cfg, faults) = self.config_for(seed);
        format!(
            "acta-testnet sim --validators {} --stake {} --byzantine {} --byzantine-kind {} --faults {} --heights {} --seed-start {seed} --seeds 1",
            cfg.validators, cfg.stake, cfg.byzantine, cfg.byzantine_kind, faults, cfg.heights
        )
    }

    /// Runs every seed. Errors if a configuration is impossible (too much Byzantine power).
    pub fn run(&self) -> Result<Summary, String> {
        let started = Instant::now();
        let threads = self.threads.max(1);
        let results: Vec<Result<SimReport, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (0..self.seeds)
                            .filter(|i| *i % threads as u64 == t as u64)
                            .map(|i| {
                                let seed = self.seed_start + i;
                                run_caught(&self.config_for(seed).0, seed)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("simulation thread panicked"))
                .collect()
        });
        let mut reports = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        reports.sort_by_key(|r| r.seed);
        Ok(Summary::new(reports, started.elapsed().as_secs_f64()))
    }
}

/// Runs one seed; a panic becomes a violation of that seed instead of ending the sweep.
fn run_caught(cfg: &SimConfig, seed: u64) -> Result<SimReport, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim::run(cfg, seed))).unwrap_or_else(
        |panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Ok(SimReport {
                seed,
                heights_decided: 0,
                decision_rounds: vec![],
                messages_delivered: 0,
                evidence_seen: 0,
                virtual_time_ms: 0,
                first_decision_ms: None,
                violations: vec![Violation::Panic { message }],
                trace: acta_ledger::Hash::ZERO,
            })
        },
    )
}

/// What a sweep found.
#[derive(Debug)]
pub struct Summary {
    pub reports: Vec<SimReport>,
    pub wall_secs: f64,
    pub heights: u64,
    pub messages: u64,
    pub evidence: u64,
    /// Decisions by the round they took.
    pub rounds: BTreeMap<u32, u64>,
}

impl Summary {
    fn new(reports: Vec<SimReport>, wall_secs: f64) -> Summary {
        let mut rounds = BTreeMap::new();
        for r in &reports {
            for round in &r.decision_rounds {
                *rounds.entry(*round).or_default() += 1;
            }
        }
        Summary {
            heights: reports.iter().map(|r| r.decision_rounds.len() as u64).sum(),
            messages: reports.iter().map(|r| r.messages_delivered).sum(),
            evidence: reports.iter().map(|r| r.evidence_seen).sum(),
            rounds,
            reports,
            wall_secs,
        }
    }

    pub fn violations(&self) -> impl Iterator<Item = (u64, &Violation)> {
        self.reports
            .iter()
            .flat_map(|r| r.violations.iter().map(move |v| (r.seed, v)))
    }

    pub fn is_clean(&self) -> bool {
        self.violations().next().is_none()
    }
}
