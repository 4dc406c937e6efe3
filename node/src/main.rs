//! actad: an Acta validator node.

use std::{path::PathBuf, process::ExitCode};

use acta_node::{
    config::{Config, Home},
    keys,
    node::Node,
    rpc,
};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "actad", version, about = "An Acta validator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Print the node's consensus key and peer id as JSON, for the genesis file.
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
        /// Misbehave on purpose, for fault-injection tests only: `equivocate` double-signs
        /// every prevote, so that the other validators slash this one. Only in builds with
        /// the `misbehave` feature.
        #[cfg(feature = "misbehave")]
        #[arg(long, hide = true, value_parser = ["equivocate"])]
        misbehave: Option<String>,
    },
    /// Print the HTTP API's OpenAPI 3 document (the one served at /openapi.json).
    ///
    /// Example: actad openapi > acta-openapi.json
    Openapi,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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
            let key = keys::load_consensus_key(&home.consensus_key())?;
            let node = keys::load_node_key(&home.node_key())?;
            acta_node::outln!(
                "{}",
                serde_json::json!({
                    "consensus_key": key.public().to_hex(),
                    "peer_id": node.public().to_peer_id().to_string(),
                })
            );
            Ok(())
        }
        #[cfg(feature = "misbehave")]
        Command::Start { home, misbehave } => start(
            Home(home),
            misbehave.map(|_| acta_node::node::Misbehaviour::Equivocate),
        ),
        #[cfg(not(feature = "misbehave"))]
        Command::Start { home } => start(Home(home)),
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
    #[cfg(feature = "misbehave")] misbehave: Option<acta_node::node::Misbehaviour>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        #[cfg_attr(not(feature = "misbehave"), allow(unused_mut))]
        let (mut node, handle) = Node::open(&home)?;
        #[cfg(feature = "misbehave")]
        if let Some(m) = misbehave {
            node.misbehave(m);
        }
        if let Some(addr) = rpc::listen_addr(&node.config().rpc.listen)? {
            rpc::spawn(addr, handle, node.config().rpc.clone()).await?;
        }
        node.run().await
    })
}
