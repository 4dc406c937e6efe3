//! acta: the citizen's wallet and the auditor's verifier.
//!
//! Built so far: `acta tally`, which tallies a participatory-budget election from a Pabulib
//! `.pb` file with the same code the ledger runs at a round's close, so anyone can replay an
//! outcome. The wallet, transactions, queries and offline proof checks come with the node's
//! API.

use std::{path::PathBuf, process::ExitCode};

use acta_contracts::tally::{self, pb, Rule, RuleProfile, TieBreak};
use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "acta",
    version,
    about = "Acta's wallet and verifier for citizens and auditors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tally a participatory-budget election from a Pabulib `.pb` file (approval ballots),
    /// exactly as the ledger tallies a round at close.
    Tally {
        /// The `.pb` file, such as one exported from a round.
        file: PathBuf,
        /// The rule: greedy, mes, mes-add1 or mes-add1-exhaustive (see docs/tally-rules.md).
        #[arg(long, value_parser = parse_rule)]
        rule: Rule,
        /// How ties between projects are broken: votes-then-cost or cost-then-votes.
        #[arg(long, default_value = "votes-then-cost", value_parser = parse_tie_break)]
        tie_break: TieBreak,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_rule(s: &str) -> Result<Rule, String> {
    Rule::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        format!("unknown rule {s:?}; one of: {}", names.join(", "))
    })
}

fn parse_tie_break(s: &str) -> Result<TieBreak, String> {
    TieBreak::parse(s).ok_or_else(|| {
        let names: Vec<&str> = TieBreak::ALL.iter().map(|t| t.name()).collect();
        format!("unknown tie-break {s:?}; one of: {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acta: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Tally {
            file,
            rule,
            tie_break,
            json,
        } => tally_file(&file, RuleProfile { rule, tie_break }, json),
    }
}

fn tally_file(file: &PathBuf, profile: RuleProfile, json: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let election = pb::parse(&bytes).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let started = std::time::Instant::now();
    let result = tally::tally(&election, profile).map_err(|e| anyhow!("{e}"))?;
    let elapsed = started.elapsed();
    let ids = |list: &[u32]| -> Vec<String> {
        list.iter()
            .map(|&i| election.projects[i as usize].id.clone())
            .collect()
    };
    let selected_sorted = result.selected_ids_sorted(&election);
    if json {
        let value = serde_json::json!({
            "rule": profile.rule.name(),
            "tie_break": profile.tie_break.name(),
            "budget": election.budget,
            "voters": election.ballots.len(),
            "projects": election.projects.len(),
            "selected": selected_sorted,
            "selection_order": ids(&result.selected),
            "effective_votes": result.effective_votes,
            "total_cost": result.total_cost,
            "endowment": result.endowment.map(|(n, d)| format!("{n}/{d}")),
            "add1_steps": result.add1_steps,
            "approvals": election.projects.iter().zip(&result.approvals)
                .map(|(p, a)| (p.id.clone(), *a)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "rule {} (ties: {}), budget {}, {} voters, {} projects",
            profile.rule,
            profile.tie_break.name(),
            election.budget,
            election.ballots.len(),
            election.projects.len()
        );
        println!(
            "selected {} projects costing {}: {}",
            result.selected.len(),
            result.total_cost,
            selected_sorted.join(" ")
        );
        println!("selection order: {}", ids(&result.selected).join(" "));
        if let Some((n, d)) = result.endowment {
            println!("final endowment per voter: {n}/{d}");
        }
        if let Some(k) = result.add1_steps {
            println!("add1 steps: {k}");
        }
        println!("tallied in {:.1} ms", elapsed.as_secs_f64() * 1000.0);
    }
    Ok(())
}
