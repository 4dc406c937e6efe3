//! acta: the citizen's wallet and the auditor's verifier.
//!
//! Built so far:
//! - `acta tally`, which tallies a participatory-budget election from a Pabulib `.pb` file
//!   with the same code the ledger runs at a round's close, so anyone can replay an outcome;
//! - `acta audit verify`, which checks a proof bundle from any node offline against the
//!   chain's genesis file and says which step failed, if one does.
//!
//! - `acta keys`, the wallet's encrypted keystore ([`keystore`]).
//!
//! Transactions and queries through a node come next.

mod keystore;

use std::{path::PathBuf, process::ExitCode};

use acta_contracts::tally::{self, pb, Rule, RuleProfile, TieBreak};
use acta_ledger::bundle::{ProofBundle, TrustAnchor};
use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "acta",
    version,
    about = "Acta's wallet and verifier for citizens and auditors"
)]
struct Cli {
    /// The keystore folder (default: $ACTA_HOME/keys, or ~/.acta/keys).
    #[arg(long, global = true)]
    keystore: Option<PathBuf>,
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
    /// Manage the wallet's keys, encrypted at rest (Argon2id and XChaCha20-Poly1305). The
    /// passphrase comes from ACTA_PASSPHRASE or a prompt.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Check records offline, trusting only the chain's genesis file.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; prints its public key and DID.
    ///
    /// Example: acta keys new alice
    New {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List the keys: name, public key, DID.
    ///
    /// Example: acta keys list
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one key's public key and DID (no passphrase needed).
    ///
    /// Example: acta keys show alice
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Import a key from its 32-byte seed, read as 64 hex digits from standard input.
    ///
    /// Example: acta keys import alice < alice.seed
    Import {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a key's seed (64 hex digits) after its passphrase: keep it secret.
    ///
    /// Example: acta keys export alice > alice.seed
    Export { name: String },
    /// Delete a key; --yes is required, and there is no undo.
    ///
    /// Example: acta keys delete alice --yes
    Delete {
        name: String,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify a proof bundle: the records' state proofs, the header they are proven
    /// against, the commit certificate that signs it, and every validator-set change back
    /// to the genesis set. Exits 1 and names the failing step if any link does not hold.
    ///
    /// BUNDLE is a bundle, or any answer of a node's API read with `?prove=true` (its
    /// `proof` field is the bundle).
    ///
    /// Example: curl -s 'http://127.0.0.1:26657/dids/did:acta:...?prove=true' > did.json;
    /// acta audit verify did.json --genesis genesis.json
    Verify {
        bundle: PathBuf,
        /// The chain's genesis.json (its chain id and validator set are the trust anchor).
        #[arg(long)]
        genesis: PathBuf,
        /// Print the result as JSON.
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

fn keystore_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(home) = std::env::var_os("ACTA_HOME") {
        return Ok(PathBuf::from(home).join("keys"));
    }
    let home = std::env::var_os("HOME")
        .ok_or_else(|| anyhow!("neither --keystore, ACTA_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".acta").join("keys"))
}

/// The passphrase: `ACTA_PASSPHRASE`, or asked on the terminal (twice for a new key).
fn passphrase(confirm: bool) -> Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("ACTA_PASSPHRASE") {
        if !p.is_empty() {
            return Ok(zeroize::Zeroizing::new(p));
        }
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| anyhow!("no passphrase: set ACTA_PASSPHRASE or run in a terminal ({e})"))
    };
    let p = zeroize::Zeroizing::new(ask("Passphrase: ")?);
    if confirm {
        if p.is_empty() {
            return Err(anyhow!("an empty passphrase does not protect a key"));
        }
        let again = zeroize::Zeroizing::new(ask("Passphrase again: ")?);
        if *again != *p {
            return Err(anyhow!("the two passphrases differ"));
        }
    }
    Ok(p)
}

fn print_keys(keys: &[keystore::KeyInfo], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        println!("no keys");
        return Ok(());
    }
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(4).max(4);
    println!("{:<width$}  {:<64}  DID", "NAME", "PUBLIC KEY");
    for k in keys {
        println!("{:<width$}  {}  {}", k.name, k.public_key, k.did);
    }
    Ok(())
}

fn keys(store: &keystore::Keystore, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::New { name, json } => {
            let pass = passphrase(true)?;
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), seed.as_mut());
            let info = store.add(&name, &seed, &pass)?;
            print_keys(&[info], json)
        }
        KeysCommand::List { json } => print_keys(&store.list()?, json),
        KeysCommand::Show { name, json } => print_keys(&[store.info(&name)?], json),
        KeysCommand::Import { name, json } => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the seed from standard input")?;
            let bytes = zeroize::Zeroizing::new(
                hex::decode(line.trim()).map_err(|e| anyhow!("the seed is not hex: {e}"))?,
            );
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("the seed is {} bytes, not 32", bytes.len()))?;
            let pass = passphrase(true)?;
            let info = store.add(&name, &seed, &pass)?;
            print_keys(&[info], json)
        }
        KeysCommand::Export { name } => {
            store.info(&name)?;
            let pass = passphrase(false)?;
            let key = store.unlock(&name, &pass)?;
            println!("{}", hex::encode(key.seed()));
            Ok(())
        }
        KeysCommand::Delete { name, yes } => {
            if !yes {
                return Err(anyhow!(
                    "deleting {name:?} cannot be undone: add --yes (export it first to keep a copy)"
                ));
            }
            store.delete(&name)?;
            println!("deleted {name}");
            Ok(())
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keys { command } => {
            let store = keystore::Keystore::new(keystore_dir(cli.keystore)?);
            keys(&store, command)
        }
        Command::Tally {
            file,
            rule,
            tie_break,
            json,
        } => tally_file(&file, RuleProfile { rule, tie_break }, json),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    bundle,
                    genesis,
                    json,
                },
        } => audit_verify(&bundle, &genesis, json),
    }
}

/// The largest bundle file read.
const BUNDLE_FILE_MAX: u64 = 256 * 1024 * 1024;

fn read_limited(path: &PathBuf) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > BUNDLE_FILE_MAX {
        return Err(anyhow!(
            "{} is {} bytes; at most {BUNDLE_FILE_MAX} are read",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn audit_verify(bundle: &PathBuf, genesis: &PathBuf, json: bool) -> Result<()> {
    let anchor = TrustAnchor::from_genesis_json(&read_limited(genesis)?)
        .map_err(|e| anyhow!("{}: {e}", genesis.display()))?;
    let value: serde_json::Value = serde_json::from_str(&read_limited(bundle)?)
        .map_err(|e| anyhow!("{}: not JSON: {e}", bundle.display()))?;
    let inner = match value.get("proof") {
        Some(p) => p.clone(),
        None => value,
    };
    let proof: ProofBundle = serde_json::from_value(inner)
        .map_err(|e| anyhow!("{}: not a proof bundle: {e}", bundle.display()))?;
    match proof.verify(&anchor.chain_id, &anchor.validators) {
        Ok(verified) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "verified": true,
                        "chain_id": verified.chain_id,
                        "height": verified.height,
                        "block": verified.block_hash,
                        "steps": verified.steps,
                    }))?
                );
            } else {
                for step in &verified.steps {
                    println!("ok  {step}");
                }
                println!(
                    "verified: {} against the genesis of {}",
                    bundle.display(),
                    anchor.chain_id
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "verified": false,
                        "step": e.step,
                        "message": e.message,
                    }))?
                );
            }
            Err(anyhow!(
                "{} does not verify at step \"{}\": {}",
                bundle.display(),
                e.step,
                e.message
            ))
        }
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
