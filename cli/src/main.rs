//! acta: the citizen's wallet and the auditor's verifier.
//!
//! - `acta keys`: the wallet's encrypted keystore ([`keystore`]);
//! - `acta did|credential|device|attest|council|budget`: the record transactions of the
//!   ledger's modules (all but a council-opened budget round, which a budget office opens
//!   instead), signed with a keystore key at its next nonce and waited for ([`wallet`],
//!   [`records`], [`attest`]), and the reads that go with them;
//! - `acta chain`: the node's status, blocks, transactions and validators;
//! - `acta audit`: proof bundles checked offline against the genesis file, and budget
//!   tallies replayed from a round's exported ballots.
//!
//! Every command takes `--node` and `--output text|json`.

mod attest;
mod ballot;
mod client;
mod config;
use acta_ledger::keystore;
mod output;
mod records;
mod vc;
mod wallet;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use acta_contracts::{audit, budget, tally};
use acta_ledger::records::{BallotSecrecy, BudgetBallot, BudgetProject, BudgetRound, RuleProfile};
use acta_ledger::{
    bundle::TrustAnchor,
    checkpoint::{self, SignedCheckpoint},
    merkle,
};
use anyhow::{anyhow, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;

use crate::{output::Output, wallet::Ctx};

#[derive(Debug, Parser)]
#[command(
    name = "acta",
    version,
    about = "Acta's wallet and verifier for citizens, agencies and auditors",
    after_help = "Start with: acta keys new alice; acta did create --key alice; acta did show alice"
)]
struct Cli {
    /// The node's API (default: `acta config set node URL`'s, else http://127.0.0.1:26657).
    #[arg(long, global = true, env = "ACTA_NODE")]
    node: Option<String>,
    /// How to print answers.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// The keystore folder (default: $ACTA_HOME/keys, or ~/.acta/keys).
    #[arg(long, global = true)]
    keystore: Option<PathBuf>,
    /// Submit transactions without waiting for their block: print the hash once the
    /// mempool took it (not for `attest submit`, which needs each batch committed).
    #[arg(long, global = true)]
    no_wait: bool,
    /// How long a signed transaction may wait for its block, in minutes (at most 60, what
    /// nodes take by default). Past that its bytes are dead: a transaction a node refused
    /// cannot be sent again later by anyone.
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    valid_minutes: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The wallet's settings: the node it asks (so that --node need not be given).
    ///
    /// Example: acta config set node http://127.0.0.1:26657
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Manage the wallet's keys, encrypted at rest (Argon2id and XChaCha20-Poly1305). The
    /// passphrase comes from ACTA_PASSPHRASE or a prompt.
    ///
    /// Example: acta keys new alice; acta keys list
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Decentralised identifiers: create, resolve, update, rotate keys, deactivate.
    ///
    /// Example: acta did create --key alice; acta did show alice
    Did {
        #[command(subcommand)]
        command: records::DidCommand,
    },
    /// Credentials anchored by registered issuers: issue, suspend, reinstate, revoke,
    /// status.
    ///
    /// Example: acta credential issue --key agency --subject alice --kind resident
    /// --district old-town
    Credential {
        #[command(subcommand)]
        command: records::CredentialCommand,
    },
    /// Sensor devices: register, relocate, transfer, deactivate, show.
    ///
    /// Example: acta device show sensor1
    Device {
        #[command(subcommand)]
        command: records::DeviceCommand,
    },
    /// Attest a device's readings and keep a proof of each.
    ///
    /// Example: acta attest submit readings.jsonl --key sensor1 --bundles proofs/
    Attest {
        #[command(subcommand)]
        command: attest::AttestCommand,
    },
    /// Participatory budgets: open rounds, propose, vote, results, export and tally.
    ///
    /// Example: acta budget vote 0 --key alice --projects 0,3
    Budget {
        #[command(subcommand)]
        command: records::BudgetCommand,
    },
    /// The council's proposals and approvals.
    ///
    /// Example: acta council approve --key member2 0 --action-hash 4be1...
    Council {
        #[command(subcommand)]
        command: records::CouncilCommand,
    },
    /// The chain: status, blocks, transactions, validators.
    ///
    /// Example: acta chain status --node http://127.0.0.1:26657
    Chain {
        #[command(subcommand)]
        command: ChainCommand,
    },
    /// Check records offline, trusting only the chain's genesis file (or a validator set
    /// pinned from it).
    ///
    /// Example: acta audit verify bundles/Ec6GV3F6dhoagat7UyTCgM/0.json --genesis genesis.json --reading 17
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a shell completion script.
    ///
    /// Example: acta completions bash > ~/.local/share/bash-completion/completions/acta
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; prints its public key and DID.
    ///
    /// Example: acta keys new alice
    New { name: String },
    /// List the keys: name, public key, DID.
    ///
    /// Example: acta keys list
    List,
    /// Show one key's public key and DID (no passphrase needed).
    ///
    /// Example: acta keys show alice
    Show { name: String },
    /// Import a key from its recovery words (the 24 BIP-39 words `keys export` printed) or
    /// its seed as 64 hex digits, read from standard input.
    ///
    /// Example: acta keys import alice < alice-words.txt
    Import { name: String },
    /// Print a key's recovery words after its passphrase: its 32-byte seed as a 24-word
    /// BIP-39 mnemonic (English list, with its checksum). Write them on paper and keep them
    /// apart from the computer: anyone holding them holds the key.
    ///
    /// Example: acta keys export alice (or --hex for the seed as 64 hex digits)
    Export {
        name: String,
        /// The seed as 64 hex digits instead of words.
        #[arg(long)]
        hex: bool,
    },
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
enum ChainCommand {
    /// The node's chain id, height, latest block, peers and mempool.
    ///
    /// Example: acta chain status --node http://127.0.0.1:26657
    Status,
    /// A block with its commit certificate (default: the latest).
    ///
    /// Example: acta chain block 42
    Block {
        /// A height, or `latest`.
        #[arg(default_value = "latest")]
        height: String,
    },
    /// A transaction by hash: its block and result, or that it is pending.
    ///
    /// Example: acta chain tx 9c1f... --prove --output json > tx-proof.json
    Tx {
        hash: String,
        /// Include a proof bundle of its inclusion and result.
        #[arg(long)]
        prove: bool,
    },
    /// The validator set: keys, powers, proposer priority.
    ///
    /// Example: acta chain validators
    Validators {
        #[arg(long)]
        height: Option<u64>,
    },
    /// The chain's parameters: each with its value, the height it was set at, its unit,
    /// range, default and meaning.
    ///
    /// Example: acta chain params
    Params {
        #[arg(long)]
        height: Option<u64>,
        /// Include a proof bundle of the values.
        #[arg(long)]
        prove: bool,
    },
    /// The latest checkpoint of the block log: a C2SP signed note cosigned by validators
    /// holding more than two thirds of the power. Check it with `acta audit checkpoint`.
    ///
    /// Example: acta chain checkpoint --out checkpoint.txt
    Checkpoint {
        /// Write the note here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify a proof bundle: every validator-set change back to the genesis set (or to the
    /// set pinned with --trust), the header and the commit certificate that signs it, the records' state proofs, a
    /// transaction and its result, sensor readings' inclusion in their batch, and every
    /// field of the answer shown beside the bundle, computed again from the proven records.
    /// Needs no network. Exits 1 and names the failing step (and field) if anything does
    /// not hold.
    ///
    /// BUNDLE is any answer of a node's API read with `?prove=true` (its `proof` field is the
    /// bundle), such as a batch file `acta attest submit` wrote, or a bare bundle.
    ///
    /// Example: acta audit verify bundles/Ec6GV3F6dhoagat7UyTCgM/0.json --genesis genesis.json --reading 17
    Verify {
        bundle: PathBuf,
        /// The chain's genesis.json (its chain id and validator set are the trust anchor).
        #[arg(long)]
        genesis: PathBuf,
        /// Check and show only this reading of the batch (its index; repeat for several).
        #[arg(long = "reading", value_name = "INDEX")]
        readings: Vec<u64>,
        /// Trust this checkpoint (a signed note, as `acta chain checkpoint` saves it, whose
        /// cosignatures are checked against the genesis validators) instead of following
        /// headers: the bundle must prove its header in the checkpoint's log (read it with
        /// `&checkpoint=SIZE`).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Trust the validator set pinned in this file (`acta audit pin` writes it) instead
        /// of the genesis set: the header must be at or above the pinned height (and be the
        /// pinned block at it), and the changes of set before it are not followed. With
        /// --checkpoint, the pinned set is the one whose cosignatures open the note, and
        /// the header may be any block of its log.
        #[arg(long, value_name = "PIN")]
        trust: Option<PathBuf>,
    },
    /// Check a checkpoint offline: its C2SP note is cosigned by genesis validators (or those
    /// of --trust) holding more than two thirds of the power. With --older, also ask the
    /// node for the proof that the older checkpoint's log is a prefix of this one's, and
    /// check it.
    ///
    /// Example: acta audit checkpoint checkpoint.txt --genesis genesis.json --older last-week.txt
    Checkpoint {
        file: PathBuf,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        older: Option<PathBuf>,
        /// Check the cosignatures against the validator set pinned in this file (`acta audit
        /// pin`) instead of the genesis set: for checkpoints cosigned after the set changed.
        #[arg(long, value_name = "PIN")]
        trust: Option<PathBuf>,
    },
    /// Pin the validator set of a height as a trust anchor for later audits: read it from the
    /// node with its proof, verify the proof from the genesis (or from an older pin), and
    /// write the pin (chain, height, block hash, the set and its hash). Compare the
    /// validators hash printed with one the agencies publish; then `--trust FILE` checks
    /// proofs from this set on, so keys of sets replaced before it can no longer vouch for a
    /// history of their own.
    ///
    /// Example: acta audit pin --genesis genesis.json --out trust.json
    Pin {
        /// The chain's genesis.json.
        #[arg(long)]
        genesis: PathBuf,
        /// The height to pin (default: the latest).
        #[arg(long)]
        height: Option<u64>,
        /// Verify the new pin from this older pin instead of from the genesis.
        #[arg(long, value_name = "PIN")]
        trust: Option<PathBuf>,
        /// Write the pin here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replay a closed budget round from proven ballots: read the round's ballots with their
    /// proof, verify every one against the ballots root the round tallied (and the round,
    /// its projects and its result against the genesis), tally them with the round's rule,
    /// and check the outcome against the proven result. Trusts only the genesis file.
    ///
    /// Example: acta audit tally 0 --genesis genesis.json --out round0.pb
    Tally {
        round: u64,
        /// The chain's genesis.json (its chain id and validator set are the trust anchor).
        #[arg(long)]
        genesis: PathBuf,
        /// Check the proofs from the validator set pinned in this file (`acta audit pin`)
        /// instead of the genesis set.
        #[arg(long, value_name = "PIN")]
        trust: Option<PathBuf>,
        /// Also keep the exported ballots in this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output == Output::Json => {
            // For programs: one JSON object on standard error, with the node's refusal
            // code when there is one.
            let api = e.downcast_ref::<client::ApiError>();
            let error = serde_json::json!({
                "code": api.map_or("error", |a| a.code.as_str()),
                "message": format!("{e:#}"),
                "http_status": api.map(|a| a.status),
            });
            eprintln!("{error}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("acta: {}", output::printable(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Refuses a passphrase too weak to protect a new key, saying what would do.
fn strong_enough(p: &str) -> Result<()> {
    acta_ledger::keystore::check_new_passphrase(p).map_err(|e| anyhow!(e))
}

/// The passphrase: `ACTA_PASSPHRASE`, or asked on the terminal (twice for a new key, which
/// must be [`strong_enough`]).
fn passphrase(confirm: bool) -> Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("ACTA_PASSPHRASE") {
        if !p.is_empty() {
            if confirm {
                strong_enough(&p)?;
            }
            return Ok(zeroize::Zeroizing::new(p));
        }
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map_err(|e| anyhow!("no passphrase: set ACTA_PASSPHRASE or run in a terminal ({e})"))
    };
    let p = zeroize::Zeroizing::new(ask("Passphrase: ")?);
    if confirm {
        strong_enough(&p)?;
        let again = zeroize::Zeroizing::new(ask("Passphrase again: ")?);
        if *again != *p {
            return Err(anyhow!("the two passphrases differ"));
        }
    }
    Ok(p)
}

fn print_keys(keys: &[keystore::KeyInfo], output: Output) -> Result<()> {
    if output == Output::Json {
        crate::outln!("{}", serde_json::to_string_pretty(keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        crate::outln!("no keys");
        return Ok(());
    }
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(4).max(4);
    crate::outln!("{:<width$}  {:<64}  DID", "NAME", "PUBLIC KEY");
    for k in keys {
        crate::outln!("{:<width$}  {}  {}", k.name, k.public_key, k.did);
    }
    Ok(())
}

fn keys(store: &keystore::Keystore, command: KeysCommand, output: Output) -> Result<()> {
    match command {
        KeysCommand::New { name } => {
            let pass = passphrase(true)?;
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), seed.as_mut());
            let info = store.add(&name, &seed, &pass)?;
            print_keys(&[info], output)
        }
        KeysCommand::List => print_keys(&store.list()?, output),
        KeysCommand::Show { name } => {
            let info = store.info(&name)?;
            if output == Output::Json {
                // One key: one object.
                crate::outln!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(());
            }
            print_keys(&[info], output)
        }
        KeysCommand::Import { name } => {
            let mut text = zeroize::Zeroizing::new(String::new());
            std::io::Read::read_to_string(
                &mut std::io::Read::take(std::io::stdin(), 4096),
                &mut text,
            )
            .context("reading the recovery words or seed from standard input")?;
            let seed = zeroize::Zeroizing::new(
                acta_ledger::keystore::seed_from_text(&text).map_err(|e| anyhow!(e))?,
            );
            let pass = passphrase(true)?;
            let info = store.add(&name, &seed, &pass)?;
            print_keys(&[info], output)
        }
        KeysCommand::Export { name, hex } => {
            store.info(&name)?;
            let pass = passphrase(false)?;
            let key = store.unlock(&name, &pass)?;
            let seed = zeroize::Zeroizing::new(key.seed());
            if hex {
                crate::outln!("{}", hex::encode(*seed));
            } else {
                crate::outln!("{}", acta_ledger::keystore::recovery_words(&seed).as_str());
            }
            Ok(())
        }
        KeysCommand::Delete { name, yes } => {
            if !yes {
                return Err(anyhow!(
                    "deleting {name:?} cannot be undone: add --yes (export it first to keep a copy)"
                ));
            }
            store.delete(&name)?;
            match output {
                Output::Json => crate::outln!("{}", json!({ "deleted": name })),
                Output::Text => crate::outln!("deleted {name}"),
            }
            Ok(())
        }
    }
}

fn chain(ctx: &Ctx, command: ChainCommand) -> Result<()> {
    let node = ctx.node()?;
    let v = match command {
        ChainCommand::Checkpoint { out } => {
            let note = String::from_utf8(node.get_bytes("/checkpoint")?)
                .map_err(|_| anyhow!("the node's checkpoint is not UTF-8 text"))?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &note)
                        .with_context(|| format!("writing {}", path.display()))?;
                    let size = note.lines().nth(1).unwrap_or("?");
                    ctx.output.print(
                        Some(&format!(
                            "checkpoint of {size} blocks in {}",
                            path.display()
                        )),
                        &json!({ "file": path.display().to_string(), "note": note }),
                    );
                }
                None if ctx.output == Output::Json => {
                    crate::outln!("{}", json!({ "note": note }));
                }
                None => crate::out!("{note}"),
            }
            return Ok(());
        }
        ChainCommand::Status => node.get("/status")?,
        ChainCommand::Block { height } => {
            if height != "latest" && height.parse::<u64>().is_err() {
                return Err(anyhow!("{height:?} is not a height: a number or latest"));
            }
            node.get(&format!("/blocks/{height}"))?
        }
        ChainCommand::Tx { hash, prove } => {
            let id = acta_ledger::Hash::from_hex(&hash)
                .map_err(|e| anyhow!("{hash:?} is not a transaction hash (64 hex digits): {e}"))?;
            node.get(&records::read_path(&format!("/txs/{id}"), None, prove))?
        }
        ChainCommand::Validators { height } => {
            node.get(&records::read_path("/validators", height, false))?
        }
        ChainCommand::Params { height, prove } => {
            node.get(&records::read_path("/params", height, prove))?
        }
    };
    ctx.output.print(None, &v);
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Config { command } = cli.command {
        return config::run(command, cli.node, cli.output);
    }
    // A damaged settings file stops only the commands that ask a node.
    let (node_url, node_error) = match config::node(cli.node) {
        Ok((url, _)) => (url, None),
        Err(e) => (config::DEFAULT_NODE.to_string(), Some(format!("{e:#}"))),
    };
    let ctx = Ctx {
        node_url,
        node_error,
        keystore_flag: cli.keystore,
        output: cli.output,
        no_wait: cli.no_wait,
        valid_minutes: cli.valid_minutes,
    };
    if ctx.output == Output::Text {
        // Keys and DIDs of the keystore show with their names (a keystore that cannot be
        // read names nothing; the command says why if it needs one).
        if let Ok(keys) = ctx.keystore().and_then(|k| Ok(k.list()?)) {
            let mut names = std::collections::HashMap::new();
            for k in keys {
                names.insert(k.public_key.to_hex(), k.name.clone());
                names.insert(k.did.to_string(), k.name);
            }
            output::set_names(names);
        }
    }
    match cli.command {
        Command::Config { .. } => unreachable!("answered above"),
        Command::Keys { command } => keys(&ctx.keystore()?, command, ctx.output),
        Command::Did { command } => records::did(&ctx, command),
        Command::Credential { command } => records::credential(&ctx, command),
        Command::Device { command } => records::device(&ctx, command),
        Command::Attest { command } => attest::attest(&ctx, command),
        Command::Budget { command } => records::budget(&ctx, command),
        Command::Council { command } => records::council(&ctx, command),
        Command::Chain { command } => chain(&ctx, command),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    bundle,
                    genesis,
                    readings,
                    checkpoint,
                    trust,
                },
        } => audit_verify(
            &bundle,
            &anchor(&genesis, trust.as_deref())?,
            &readings,
            checkpoint.as_deref(),
            ctx.output,
        ),
        Command::Audit {
            command:
                AuditCommand::Checkpoint {
                    file,
                    genesis,
                    older,
                    trust,
                },
        } => audit_checkpoint(
            &ctx,
            &file,
            &anchor(&genesis, trust.as_deref())?,
            older.as_deref(),
        ),
        Command::Audit {
            command:
                AuditCommand::Pin {
                    genesis,
                    height,
                    trust,
                    out,
                },
        } => audit_pin(
            &ctx,
            &anchor(&genesis, trust.as_deref())?,
            height,
            out.as_deref(),
        ),
        Command::Audit {
            command:
                AuditCommand::Tally {
                    round,
                    genesis,
                    trust,
                    out,
                },
        } => audit_tally(&ctx, round, &anchor(&genesis, trust.as_deref())?, out),
        Command::Completions { shell } => {
            // Generated into memory first: clap_complete panics on a failed write, and a
            // closed pipe (`acta completions bash | head`) is not an error.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "acta", &mut script);
            crate::out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
    }
}

/// The largest file read (bundles, genesis files, readings, documents).
const FILE_MAX: u64 = 256 * 1024 * 1024;

fn read_limited_bytes(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > FILE_MAX {
        return Err(anyhow!(
            "{} is {} bytes; at most {FILE_MAX} are read",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_limited(path: &Path) -> Result<String> {
    String::from_utf8(read_limited_bytes(path)?)
        .map_err(|e| anyhow!("{} is not UTF-8 text: {e}", path.display()))
}

/// The trust anchor of an audit: the genesis file's chain and set, and the pin of `trust`
/// if given.
pub(crate) fn anchor(genesis: &Path, trust: Option<&Path>) -> Result<TrustAnchor> {
    let anchor = TrustAnchor::from_genesis_json(&read_limited(genesis)?)
        .map_err(|e| anyhow!("{}: {e}", genesis.display()))?;
    match trust {
        None => Ok(anchor),
        Some(path) => anchor
            .pinned_by_json(&read_limited(path)?)
            .map_err(|e| anyhow!("{}: {e}", path.display())),
    }
}

/// The validator set an anchor trusts (its pin's, else the genesis set), and how to name it.
fn trusted_set(anchor: &TrustAnchor) -> (&acta_ledger::ValidatorSet, String) {
    match &anchor.pin {
        Some(pin) => (&pin.validators, format!("pinned (height {})", pin.height)),
        None => (&anchor.validators, "genesis".to_string()),
    }
}

/// Opens a checkpoint note from a file: cosigned by validators of the trusted set (the
/// pinned one, else the genesis set) holding more than two thirds of its power.
fn open_checkpoint(path: &Path, anchor: &TrustAnchor) -> Result<(SignedCheckpoint, u64)> {
    let note = read_limited(path)?;
    let (signed, power) = SignedCheckpoint::open(
        &note,
        &checkpoint::origin(&anchor.chain_id),
        trusted_set(anchor).0,
    )
    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((signed, power.0))
}

fn audit_checkpoint(
    ctx: &Ctx,
    file: &Path,
    anchor: &TrustAnchor,
    older: Option<&Path>,
) -> Result<()> {
    let (signed, power) = open_checkpoint(file, anchor)?;
    let (set, which) = trusted_set(anchor);
    let cp = &signed.checkpoint;
    let mut v = json!({
        "origin": cp.origin,
        "size": cp.size,
        "root": cp.root,
        "cosigned_power": power,
        "total_power": set.total_power().0,
        "trusted": anchor.trusted_json(),
        "cosigners": signed.cosignatures.iter().map(|c| c.key).collect::<Vec<_>>(),
    });
    let mut title = format!(
        "checkpoint of {} blocks (root {}) cosigned by {power} of {} {which} voting power",
        cp.size,
        cp.root,
        set.total_power().0
    );
    if let Some(older) = older {
        let (old, _) = open_checkpoint(older, anchor)?;
        let proof: merkle::ConsistencyProof = serde_json::from_value(ctx.node()?.get(&format!(
            "/checkpoint/consistency?from={}&to={}",
            old.checkpoint.size, cp.size
        ))?)
        .map_err(|e| anyhow!("the node's consistency proof: {e}"))?;
        cp.verify_extends(&old.checkpoint, &proof).map_err(|e| {
            anyhow!(
                "{} does not extend {}: {e}",
                file.display(),
                older.display()
            )
        })?;
        v["extends"] = json!(old.checkpoint.size);
        title.push_str(&format!(
            "; its log extends the {} blocks of {}",
            old.checkpoint.size,
            older.display()
        ));
    }
    ctx.output.print(Some(&title), &v);
    Ok(())
}

fn audit_verify(
    bundle: &Path,
    anchor: &TrustAnchor,
    wanted: &[u64],
    checkpoint: Option<&Path>,
    output: Output,
) -> Result<()> {
    let trusted = checkpoint
        .map(|path| open_checkpoint(path, anchor))
        .transpose()?;
    let mut value: serde_json::Value = serde_json::from_str(&read_limited(bundle)?)
        .map_err(|e| anyhow!("{}: not JSON: {e}", bundle.display()))?;
    if !wanted.is_empty() {
        audit::select_readings(&mut value, wanted)
            .map_err(|e| anyhow!("{}: {e}", bundle.display()))?;
    }
    if value.get("proof").is_none() && value.get("header").is_none() {
        return Err(anyhow!(
            "{} holds no proof: read the record again with --prove --output json (or ?prove=true)",
            bundle.display()
        ));
    }
    let result = match &trusted {
        Some((signed, _)) => audit::verify_against(&value, anchor, &signed.checkpoint),
        None => audit::verify(&value, anchor),
    };
    let audited = match result {
        Ok(a) => a,
        Err(e) => {
            if output == Output::Json {
                output.print(None, &audit::failure_report(&e));
            }
            return Err(anyhow!(
                "{} does not verify at step \"{}\": {}",
                bundle.display(),
                e.step,
                e.message
            ));
        }
    };
    let verified = &audited.verified;
    if output == Output::Json {
        output.print(None, &audited.report());
    } else {
        for step in audited.steps() {
            crate::outln!("ok  {step}");
        }
        // A batch's thousands of readings are listed only when asked for.
        if !wanted.is_empty() || verified.readings.len() <= 10 {
            for r in &verified.readings {
                crate::outln!(
                    "reading {} of batch {} of {}: {}",
                    r.index,
                    r.sequence,
                    r.device,
                    String::from_utf8_lossy(&r.bytes)
                );
            }
        }
        let (set, which) = trusted_set(anchor);
        match (&trusted, checkpoint, &anchor.pin) {
            (Some((signed, power)), Some(path), _) => crate::outln!(
                "verified: {} against checkpoint {} ({} blocks, cosigned by {power} of {} {which} voting power)",
                bundle.display(),
                path.display(),
                signed.checkpoint.size,
                set.total_power().0
            ),
            (_, _, Some(pin)) => crate::outln!(
                "verified: {} against the validator set of {} pinned at height {} (block {})",
                bundle.display(),
                anchor.chain_id,
                pin.height,
                pin.block
            ),
            _ => crate::outln!(
                "verified: {} against the genesis of {}",
                bundle.display(),
                anchor.chain_id
            ),
        }
    }
    Ok(())
}

/// Reads the validator set of `height` (default: the latest) with its proof, verifies it
/// from what `anchor` trusts, and writes (or prints) its pin.
fn audit_pin(
    ctx: &Ctx,
    anchor: &TrustAnchor,
    height: Option<u64>,
    out: Option<&Path>,
) -> Result<()> {
    if height == Some(0) {
        return Err(anyhow!(
            "--height 0 is the genesis: its set is in the genesis file, pin a height of 1 or more"
        ));
    }
    let query = height.map_or(String::new(), |h| format!("&height={h}"));
    let answer = ctx.node()?.get(&format!("/validators?prove=true{query}"))?;
    let audited = audit::verify(&answer, anchor).map_err(|e| {
        anyhow!(
            "the node's validator set does not verify at step \"{}\": {}",
            e.step,
            e.message
        )
    })?;
    let verified = &audited.verified;
    // The proof is of the height asked for: a node answering an older one would have the
    // pin trust a set that may since have been replaced.
    if let Some(h) = height {
        if verified.height.0 != h {
            return Err(anyhow!(
                "the node proved the validators of height {}, not of height {h}",
                verified.height
            ));
        }
    }
    let validators = verified
        .validators
        .clone()
        .ok_or_else(|| anyhow!("the node's proof names no validator set"))?;
    let pin = acta_ledger::bundle::TrustPin {
        height: verified.height,
        block: verified.block_hash,
        validators,
    };
    let text = pin.to_json(&anchor.chain_id);
    let hash = pin.validators.hash();
    let from = match &anchor.pin {
        Some(old) => format!("the pin of height {}", old.height),
        None => "the genesis".to_string(),
    };
    let title = format!(
        "validator set of height {} (block {}, time {}), verified from {from}: {} validators, power {}, validators hash {hash}; compare the hash with the agencies' own",
        pin.height,
        pin.block,
        verified.time.rfc3339(),
        pin.validators.len(),
        pin.validators.total_power().0
    );
    let report: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("the pin: {e}"))?;
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            ctx.output.print(
                Some(&format!("{title}; pinned in {}", path.display())),
                &json!({
                    "file": path.display().to_string(),
                    "pin": report,
                    "verified_from": anchor.trusted_json(),
                }),
            );
        }
        None if ctx.output == Output::Json => crate::outln!(
            "{}",
            json!({ "pin": report, "verified_from": anchor.trusted_json() })
        ),
        None => crate::out!("{text}"),
    }
    Ok(())
}

/// Checks a secret round's ballots against their tokens, read in proven pages at `height`:
/// each ballot's voter is the DID form of a ballot key holding a valid token of the round's
/// registrar key for that ballot key, and the ballots are no more than the tokens issued.
/// The number of tokens issued.
fn audit_tokens(
    ctx: &Ctx,
    node: &client::Node,
    anchor: &TrustAnchor,
    r: &BudgetRound,
    registrar_key: &[u8],
    ballots: &[BudgetBallot],
    height: acta_ledger::Height,
) -> Result<u64> {
    use acta_ledger::token::{verify_token, RegistrarKey};
    let round = r.id;
    let key = RegistrarKey::from_der(registrar_key)
        .map_err(|e| anyhow!("round {round}'s proven registrar key: {e}"))?;
    let bar = ctx.spinner(format!(
        "checking the tokens of the {} ballots of round {round}",
        ballots.len()
    ));
    let mut issued = 0;
    let mut checked = 0usize;
    while checked < ballots.len() || checked == 0 {
        let asked = format!("/budget/rounds/{round}/ballot-tokens?from={checked}&limit=100");
        let page = node.get(&format!("{asked}&height={height}&prove=true"))?;
        let audited = audit::verify(&page, anchor).map_err(|e| {
            anyhow!(
                "the node's ballot tokens of round {round} from {checked} do not verify at step \"{}\": {}",
                e.step,
                e.message
            )
        })?;
        if audited.query.as_deref() != Some(asked.as_str()) || audited.verified.height != height {
            return Err(anyhow!(
                "the node answered {:?} at height {}, not {asked} at {height}",
                audited.query,
                audited.verified.height
            ));
        }
        // Proven and compared field by field from here on.
        if page["ballots"].as_u64() != Some(ballots.len() as u64) {
            return Err(anyhow!(
                "round {round} counts {} ballots beside its tokens but {} were tallied",
                page["ballots"],
                ballots.len()
            ));
        }
        issued = page["issued"].as_u64().unwrap_or(0);
        let tokens = page["tokens"].as_array().cloned().unwrap_or_default();
        if tokens.is_empty() {
            break;
        }
        for t in &tokens {
            let ballot = ballots
                .get(checked)
                .ok_or_else(|| anyhow!("round {round} has more tokens than ballots"))?;
            let ballot_key: acta_ledger::PublicKey = serde_json::from_value(t["key"].clone())
                .map_err(|e| anyhow!("ballot {checked}'s token names no ballot key: {e}"))?;
            let token = t["token"]
                .as_str()
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| anyhow!("ballot {checked} has no token"))?;
            if t["index"].as_u64() != Some(checked as u64)
                || acta_ledger::Did::from_initial_key(&ballot_key) != ballot.voter
            {
                return Err(anyhow!(
                    "ballot {checked} of round {round} is not cast by the key its token is for"
                ));
            }
            verify_token(&key, &anchor.chain_id, round, &ballot_key, &token)
                .map_err(|e| anyhow!("ballot {checked} of round {round}: {e}"))?;
            checked += 1;
        }
    }
    bar.finish_and_clear();
    if checked != ballots.len() {
        return Err(anyhow!(
            "the node proved the tokens of {checked} of the {} ballots of round {round}",
            ballots.len()
        ));
    }
    if (ballots.len() as u64) > issued {
        return Err(anyhow!(
            "round {round} has {} ballots but its registrar issued {issued} tokens",
            ballots.len()
        ));
    }
    Ok(issued)
}

/// Replays a round's tally from proven ballots: the node's answer for the round's ballots is
/// verified against the genesis (every ballot against the tallied ballots root, and the
/// round, its projects and its result by state proofs) before the round's own rule runs on
/// them and its outcome is compared with the proven result.
fn audit_tally(ctx: &Ctx, round: u64, anchor: &TrustAnchor, out: Option<PathBuf>) -> Result<()> {
    let node = ctx.node()?;
    let bar = ctx.spinner(format!("reading the proven ballots of round {round}"));
    let answer = node.get(&format!("/budget/rounds/{round}/ballots?prove=true"));
    bar.finish_and_clear();
    let answer = answer?;
    let audited = audit::verify(&answer, anchor).map_err(|e| {
        anyhow!(
            "the node's ballots of round {round} do not verify at step \"{}\": {}",
            e.step,
            e.message
        )
    })?;
    let asked = format!("/budget/rounds/{round}/ballots");
    if audited.query.as_deref() != Some(asked.as_str()) {
        return Err(anyhow!(
            "the node answered {:?}, not {asked}",
            audited.query
        ));
    }
    // From here on, every value was proven and compared field by field.
    let proven = |field: &str| answer[field].clone();
    let r: BudgetRound = serde_json::from_value(proven("round"))
        .map_err(|e| anyhow!("the proven round {round}: {e}"))?;
    let projects: Vec<BudgetProject> = serde_json::from_value(proven("projects"))
        .map_err(|e| anyhow!("the proven projects of round {round}: {e}"))?;
    let stored = proven("result");
    // Every tallied ballot, each once, in index order: the root was recomputed over exactly
    // these (`all_ballots`), so none can be left out of the replay.
    let proven_ballots = &audited.verified.ballots;
    let complete = audited.bundle.ballots.is_empty()
        && stored["voters"].as_u64() == Some(proven_ballots.len() as u64)
        && proven_ballots
            .iter()
            .enumerate()
            .all(|(i, b)| b.index == i as u64);
    if !complete {
        return Err(anyhow!(
            "the node's answer for round {round} does not prove all {} of its ballots against the tallied root",
            stored["voters"]
        ));
    }
    let ballots: Vec<BudgetBallot> = proven_ballots.iter().map(|b| b.ballot.clone()).collect();
    let tokens = match &r.spec.secrecy {
        BallotSecrecy::Public => None,
        BallotSecrecy::Secret { key, .. } => Some(audit_tokens(
            ctx,
            &node,
            anchor,
            &r,
            key.as_slice(),
            &ballots,
            audited.verified.height,
        )?),
    };
    let profile: RuleProfile = serde_json::from_value(stored["rule"].clone())
        .map_err(|e| anyhow!("the proven result of round {round} names no rule: {e}"))?;
    let bytes = tally::pb::write(&budget::election(&r, &projects, &ballots));
    if let Some(path) = &out {
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut v = records::tally_value(bytes.as_bytes(), profile)
        .map_err(|e| anyhow!("the ballots of round {round}: {e}"))?;
    records::compare_with_stored(&v, &stored, profile)?;
    v["matches_round"] = json!(round);
    v["proven_at"] = json!(audited.verified.height);
    if let Some(issued) = tokens {
        v["tokens_issued"] = json!(issued);
        v["tokens_checked"] = json!(ballots.len());
    }
    let title = format!(
        "round {round}: the {} ballots proven against the tallied root (height {}, checked from the {} validator set) replay under {} to {} projects costing {}, as the ledger stored",
        ballots.len(),
        audited.verified.height,
        trusted_set(anchor).1,
        profile.rule.name(),
        v["selected"].as_array().map_or(0, Vec::len),
        v["total_cost"]
    );
    ctx.output.print(Some(&title), &v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and group shows an example in its `--help`.
    #[test]
    fn every_command_has_an_example() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in c.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_long_about()
                    .or(sub.get_about())
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if !help.contains("Example: acta ") {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "acta", &mut missing);
        assert!(missing.is_empty(), "no example in: {missing:?}");
        Cli::command().debug_assert();
    }
}
