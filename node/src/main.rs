//! actad: an Acta validator node.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use acta_ledger::Height;

use acta_node::{
    config::{Config, Home},
    genesis::{Genesis, GenesisCouncil, GenesisIssuer},
    keys,
    node::Node,
    rpc,
};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// jemalloc rather than the system's allocator, for Rust's allocations and (as `malloc`)
/// RocksDB's: the state tree's update allocates and frees a node for each of thousands of
/// paths per block, and glibc's allocator spent a third of that update's time
/// consolidating its free lists (ADR 0022). jemalloc rather than mimalloc: with the caches'
/// churn, mimalloc's RSS exceeded what was allocated by 260 to 400 MB in a half-hour hold,
/// jemalloc's by 80 to 150 MB (ADR 0023, addendum of 2026-12-06).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(name = "actad", version, about = "An Acta validator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text (coloured only on a terminal) or as one JSON object per line, for
    /// a log collector. The level comes from RUST_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node's home: keys, and config.toml with commented defaults. The chain's
    /// genesis.json must then be put there before `actad start`.
    ///
    /// Example: actad init --home ./node0 --p2p-listen /ip4/127.0.0.1/tcp/26656
    Init {
        #[arg(long)]
        home: PathBuf,
        /// A name for logs and status.
        #[arg(long, default_value = "acta-node")]
        moniker: String,
        /// The libp2p listen address.
        #[arg(long, default_value = "/ip4/127.0.0.1/tcp/26656")]
        p2p_listen: String,
        /// The HTTP API address ("" for none).
        #[arg(long, default_value = "127.0.0.1:26657")]
        rpc_listen: String,
        /// Peers to dial: multiaddresses ending in /p2p/<peer id> (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
    },
    /// Print the node's moniker, consensus key, peer id and p2p address as JSON, for the
    /// genesis file and the other nodes' p2p.peers.
    ///
    /// Example: actad show-node --home ./node0
    ShowNode {
        #[arg(long)]
        home: PathBuf,
    },
    /// Run the node until SIGTERM or Ctrl-C.
    ///
    /// Example: actad start --home ./node0
    Start {
        #[arg(long)]
        home: PathBuf,
        /// For a new node: first restore the newest snapshot the peers offer, checked
        /// against the genesis, instead of replaying the chain. Ignored once the store
        /// holds blocks.
        #[arg(long)]
        state_sync: bool,
        /// How long state sync may take, in seconds.
        #[arg(long, default_value_t = 300, requires = "state_sync")]
        state_sync_timeout: u64,
        /// For a consensus key encrypted at rest (`actad keys encrypt`): a file holding its
        /// passphrase on its first line, not readable by others than its owner and group
        /// (such as a systemd credential, LoadCredential=).
        #[arg(long, value_name = "FILE")]
        key_passphrase_file: Option<PathBuf>,
        /// Misbehave on purpose, for fault-injection tests only: `equivocate` double-signs
        /// every prevote, so that the other validators slash this one. Only in builds with
        /// the `misbehave` feature.
        #[cfg(feature = "misbehave")]
        #[arg(long, hide = true, value_parser = ["equivocate"])]
        misbehave: Option<String>,
    },
    /// Create or restore a snapshot of the state: a backup, or a quick start for a new node.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Make a genesis file between agencies, and check one.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Protect the consensus key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the HTTP API's OpenAPI 3.1 document (the one served at /openapi.json).
    ///
    /// Example: actad openapi > acta-openapi.json
    Openapi,
    /// Print a shell completion script.
    ///
    /// Example: actad completions bash > ~/.local/share/bash-completion/completions/actad
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Encrypt the consensus key at rest, in place, in the wallet's keystore format
    /// (Argon2id, XChaCha20-Poly1305); `actad start --key-passphrase-file` then unlocks it.
    /// The node must be stopped.
    ///
    /// Example: actad keys encrypt --home /var/lib/acta --passphrase-file /root/acta-key.pass
    Encrypt {
        #[arg(long)]
        home: PathBuf,
        /// A file holding the passphrase (at least 12 characters) on its first line, owner
        /// only; without it, the first line of standard input.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum GenesisCommand {
    /// Start a genesis file for a new chain: its id, time, council, issuers and parameters,
    /// and no validators yet (each agency's is added with `add-validator`). Refuses to
    /// overwrite a file.
    ///
    /// Example: actad genesis new --chain-id acta-krakow --council 3f9a...,77c0...,a1d2... --threshold 2 --out genesis.json
    New {
        /// The chain id: 1 to 50 characters of a-z, 0-9, '-', '_' and '.'.
        #[arg(long)]
        chain_id: String,
        /// The council members' public keys, hex (comma separated or repeated).
        #[arg(long, value_delimiter = ',', required = true)]
        council: Vec<String>,
        /// How many council members must approve an action.
        #[arg(long)]
        threshold: u16,
        /// An issuer registered from the start: DID=KIND[,KIND...], such as
        /// did:acta:PbPc...=resident,budget_office (repeatable).
        #[arg(long = "issuer", value_name = "DID=KINDS")]
        issuers: Vec<String>,
        /// A chain parameter NAME=VALUE (repeatable; `acta chain params` lists them).
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// The genesis time (RFC 3339, such as 2027-01-15T09:00Z; default now): block 1
        /// comes after it.
        #[arg(long)]
        time: Option<String>,
        /// The file to write.
        #[arg(long, default_value = "genesis.json")]
        out: PathBuf,
    },
    /// Add an agency's validator to a genesis file, from the JSON that `actad show-node
    /// --home HOME` printed on its machine (a file, or - for standard input).
    ///
    /// Example: actad genesis add-validator genesis.json --node water.json --power 10
    AddValidator {
        /// The genesis.json to change.
        file: PathBuf,
        /// The JSON of `actad show-node` from the validator's machine.
        #[arg(long, value_name = "FILE")]
        node: PathBuf,
        /// Its voting power.
        #[arg(long, default_value_t = 10)]
        power: u64,
        /// The address the others dial, a multiaddress such as /dns4/acta.water.city/tcp/26656
        /// (default: the node's p2p_listen; '' if it only dials out).
        #[arg(long)]
        address: Option<String>,
    },
    /// Check every field of a genesis file and print its chain id and hash: the hash every
    /// node of the chain logs at start and tells its peers, so agencies compare it before
    /// they start.
    ///
    /// Example: actad genesis validate node0/genesis.json
    Validate {
        /// The genesis.json to check.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// Write the state at the newest checkpoint height (a multiple of 10 whose checkpoint
    /// more than two thirds of the power cosigned) at or below --height, with the proofs
    /// that it is the chain's, to a file. The node must be stopped.
    ///
    /// Example: actad snapshot create --home ./node0 --out acta-20000.snapshot
    Create {
        #[arg(long)]
        home: PathBuf,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The highest height to consider (default: the latest).
        #[arg(long)]
        height: Option<u64>,
    },
    /// Restore a snapshot file into a new node's home (keys, config and genesis present, no
    /// blocks yet), after checking it against the genesis; `actad start` then follows the
    /// chain from there.
    ///
    /// Example: actad snapshot restore --home ./node4 acta-20000.snapshot
    Restore {
        #[arg(long)]
        home: PathBuf,
        /// The snapshot file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Colour codes only for a person at a terminal, never in a file or a pipe.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("actad: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            home,
            moniker,
            p2p_listen,
            rpc_listen,
            peers,
        } => init(&Home(home), moniker, p2p_listen, rpc_listen, peers),
        Command::ShowNode { home } => {
            let home = Home(home);
            let key = keys::consensus_public_key(&home.consensus_key())?;
            let node = keys::load_node_key(&home.node_key())?;
            let config = Config::load(&home.config())?;
            let peer_id = node.public().to_peer_id().to_string();
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "moniker": config.moniker,
                    "consensus_key": key.to_hex(),
                    "peer_id": peer_id,
                    "p2p_listen": config.p2p.listen,
                    // What other nodes put in their p2p.peers (with this machine's public
                    // address in place of a 0.0.0.0 listen address).
                    "peer_address": format!("{}/p2p/{peer_id}", config.p2p.listen),
                })
            );
            Ok(())
        }
        Command::Genesis(GenesisCommand::New {
            chain_id,
            council,
            threshold,
            issuers,
            params,
            time,
            out,
        }) => {
            if out.exists() {
                bail!("{} exists: not overwritten", out.display());
            }
            let genesis = new_genesis(chain_id, council, threshold, &issuers, &params, time)?;
            genesis.save(&out)?;
            eprintln!(
                "wrote {}; add each agency's validator with actad genesis add-validator {} --node NODE.json",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Command::Genesis(GenesisCommand::AddValidator {
            file,
            node,
            power,
            address,
        }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut genesis: Genesis = serde_json::from_str(&text)
                .with_context(|| format!("genesis file {}", file.display()))?;
            let shown = if node == std::path::Path::new("-") {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(&node)
                    .with_context(|| format!("reading {}", node.display()))?
            };
            let shown: serde_json::Value = serde_json::from_str(&shown)
                .with_context(|| format!("{}: not the JSON of actad show-node", node.display()))?;
            genesis
                .add_validator(&shown, power, address)
                .with_context(|| format!("adding {} to {}", node.display(), file.display()))?;
            genesis.save(&file)?;
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "validators": genesis.validators.len(),
                    "added": genesis.validators.last().map(|v| &v.name),
                    "genesis_hash": genesis.hash().to_string(),
                })
            );
            Ok(())
        }
        Command::Genesis(GenesisCommand::Validate { file }) => {
            let (genesis, spec) = acta_node::genesis::Genesis::load(&file)?;
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "valid": true,
                    "chain_id": spec.chain_id.as_str(),
                    "genesis_hash": spec.hash.to_string(),
                    "validators": genesis.validators.len(),
                    "total_power": spec.validators.total_power().0,
                    "council_threshold": genesis.council.threshold,
                    "council_members": genesis.council.members.len(),
                })
            );
            Ok(())
        }
        #[cfg(feature = "misbehave")]
        Command::Start {
            home,
            state_sync,
            state_sync_timeout,
            key_passphrase_file,
            misbehave,
        } => start(
            Home(home),
            state_sync.then(|| Duration::from_secs(state_sync_timeout)),
            key_passphrase_file,
            misbehave.map(|_| acta_node::node::Misbehaviour::Equivocate),
        ),
        #[cfg(not(feature = "misbehave"))]
        Command::Start {
            home,
            state_sync,
            state_sync_timeout,
            key_passphrase_file,
        } => start(
            Home(home),
            state_sync.then(|| Duration::from_secs(state_sync_timeout)),
            key_passphrase_file,
        ),
        Command::Keys(KeysCommand::Encrypt {
            home,
            passphrase_file,
        }) => {
            let home = Home(home);
            let passphrase = match passphrase_file {
                Some(file) => keys::read_passphrase_file(&file)?,
                None => {
                    let mut line = zeroize::Zeroizing::new(String::new());
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the passphrase from standard input")?;
                    zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
                }
            };
            let public = keys::encrypt_consensus_key(&home.consensus_key(), &passphrase)?;
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "encrypted": home.consensus_key().display().to_string(),
                    "consensus_key": public.to_hex(),
                })
            );
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Create { home, out, height }) => {
            let (manifest, chunks) =
                acta_node::snapshot::create(&Home(home), height.map(Height), &out)?;
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "file": out.display().to_string(),
                    "height": manifest.height().0,
                    "block": manifest.block.hash().to_string(),
                    "state_root": manifest.state_root().to_string(),
                    "entries": manifest.entries,
                    "chunks": chunks,
                })
            );
            Ok(())
        }
        Command::Snapshot(SnapshotCommand::Restore { home, file }) => {
            let height = acta_node::snapshot::restore_file(&Home(home), &file)?;
            acta_node::outln!("{}", serde_json::json!({ "restored_height": height.0 }));
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "actad",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Openapi => {
            acta_node::outln!(
                "{}",
                serde_json::to_string_pretty(&acta_node::rpc::openapi::document())?
            );
            Ok(())
        }
    }
}

fn init(
    home: &Home,
    moniker: String,
    p2p_listen: String,
    rpc_listen: String,
    peers: Vec<String>,
) -> Result<()> {
    if home.config().exists() {
        bail!(
            "{} exists: this home is already initialised",
            home.config().display()
        );
    }
    let mut config = Config {
        moniker,
        ..Config::default()
    };
    config.p2p.listen = p2p_listen;
    config.p2p.peers = peers;
    config.rpc.listen = rpc_listen;
    // Every flag is checked before anything is written.
    config.check().context("the flags")?;
    std::fs::create_dir_all(home.keys())
        .with_context(|| format!("creating {}", home.keys().display()))?;
    keys::generate(&home.node_key())?;
    keys::generate(&home.consensus_key())?;
    std::fs::write(home.config(), config.commented())
        .with_context(|| format!("writing {}", home.config().display()))?;
    eprintln!(
        "initialised {}; put the chain's genesis.json there, then run actad start --home {}",
        home.0.display(),
        home.0.display()
    );
    Ok(())
}

fn start(
    home: Home,
    state_sync: Option<Duration>,
    key_passphrase_file: Option<PathBuf>,
    #[cfg(feature = "misbehave")] misbehave: Option<acta_node::node::Misbehaviour>,
) -> Result<()> {
    let passphrase = key_passphrase_file
        .map(|f| keys::read_passphrase_file(&f))
        .transpose()?;
    // The consensus loop and its network run on this thread, in a runtime of its own: a
    // message, its check and the vote it leads to cross no thread (ADR 0025, "one thread
    // for the loop and its network"). Signature checks, pruning and reads of the store run
    // on the blocking pool; blocks are executed on the `acta-app` thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the node's runtime")?;
    // Read once: state sync, the node and the API's threads all go by this reading.
    let config = Config::load(&home.config())?;
    // The API on threads of its own (rpc.threads), or on the node's (0).
    let api_runtime = match config.rpc.threads {
        0 => None,
        _ if config.rpc.listen.is_empty() => None,
        n => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .thread_name("acta-api")
                .enable_all()
                .build()
                .context("starting the API's runtime")?,
        ),
    };
    let api = api_runtime.as_ref().map(|r| r.handle().clone());
    runtime.block_on(async move {
        // A SIGHUP (a `systemctl reload`) while the node starts or state-syncs must not end
        // it: the handler is in place from here on, and the node reads it once it runs.
        let _hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        if let Some(timeout) = state_sync {
            acta_node::statesync::run(&home, &config, timeout).await?;
        }
        #[cfg_attr(not(feature = "misbehave"), allow(unused_mut))]
        let (mut node, handle) =
            Node::open(&home, config, passphrase.as_deref().map(String::as_str))?;
        #[cfg(feature = "misbehave")]
        if let Some(m) = misbehave {
            node.misbehave(m);
        }
        if let Some(addr) = rpc::listen_addr(&node.config().rpc.listen)? {
            let serve = rpc::spawn(addr, handle, node.config().rpc.clone());
            match &api {
                Some(api) => api.spawn(serve).await.context("starting the HTTP API")??,
                None => serve.await?,
            }
        }
        node.run().await
    })
}

/// A genesis with no validators yet, from `actad genesis new`'s flags, checked.
fn new_genesis(
    chain_id: String,
    council: Vec<String>,
    threshold: u16,
    issuers: &[String],
    params: &[String],
    time: Option<String>,
) -> Result<Genesis> {
    let genesis_time_ms = match time {
        Some(t) => {
            acta_ledger::Timestamp::parse(&t)
                .map_err(|e| anyhow::anyhow!("--time {t:?}: {e}"))?
                .0
        }
        None => u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )?,
    };
    let mut parameters = std::collections::BTreeMap::new();
    for p in params {
        let (name, value) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--param {p:?}: NAME=VALUE"))?;
        let value: u64 = value
            .parse()
            .map_err(|e| anyhow::anyhow!("--param {p:?}: {e}"))?;
        if parameters.insert(name.to_string(), value).is_some() {
            bail!("--param {name} is given twice");
        }
    }
    let mut genesis_issuers = Vec::new();
    for i in issuers {
        let (did, kinds) = i
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--issuer {i:?}: DID=KIND[,KIND...]"))?;
        let kinds = kinds
            .split(',')
            .map(|k| {
                serde_json::from_value(serde_json::Value::String(k.trim().to_string()))
                    .map_err(|e| anyhow::anyhow!("--issuer {i:?}: kind {k:?}: {e}"))
            })
            .collect::<Result<Vec<_>>>()?;
        genesis_issuers.push(GenesisIssuer {
            did: did.to_string(),
            kinds,
        });
    }
    let genesis = Genesis {
        chain_id,
        genesis_time_ms,
        validators: Vec::new(),
        council: GenesisCouncil {
            members: council,
            threshold,
        },
        issuers: genesis_issuers,
        parameters,
    };
    genesis.check_draft().context("the flags")?;
    Ok(genesis)
}
