//! The wallet's settings file, so that the node need not be named on every call:
//! `$ACTA_HOME/config.toml` or `~/.acta/config.toml`. `--node` and `ACTA_NODE` still come
//! first; without any of them the wallet asks `http://127.0.0.1:26657`. `chain` (or
//! `ACTA_CHAIN`) pins the chain the wallet works with: a node that answers with another
//! chain id is refused before anything is signed. `genesis` (or `ACTA_GENESIS`), the
//! city's genesis file, pins the chain too, and has what the wallet reads before it signs
//! (a DID's document it edits) proven against it.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;

use acta_ledger::{bundle::TrustAnchor, ChainId};

use crate::output::Output;

/// The node asked when nothing names one.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:26657";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Remember a setting. `node`: the node's API address, used when neither --node nor
    /// ACTA_NODE is given. `chain`: the only chain id the wallet signs for and reads from
    /// (the genesis file's `chain_id`); a node of another chain is refused. ACTA_CHAIN
    /// comes first. `genesis`: the city's genesis file; it pins the chain (unless `chain`
    /// does) and what the wallet reads before it signs (a DID document it edits) must come
    /// with a proof that verifies against it. ACTA_GENESIS comes first.
    ///
    /// Example: acta config set node http://127.0.0.1:26657
    /// Example: acta config set genesis ~/wieliczka-genesis.json
    Set {
        #[arg(value_parser = ["node", "chain", "genesis"])]
        name: String,
        value: String,
    },
    /// Forget a setting.
    ///
    /// Example: acta config unset node
    Unset {
        #[arg(value_parser = ["node", "chain", "genesis"])]
        name: String,
    },
    /// The settings in effect, and where each comes from.
    ///
    /// Example: acta config show
    Show,
}

/// What the file holds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub node: Option<String>,
    /// The chain id the wallet is pinned to.
    pub chain: Option<String>,
    /// The genesis file proofs are checked against (its absolute path).
    pub genesis: Option<String>,
}

/// The settings file's path.
pub fn path() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("ACTA_HOME") {
        return Ok(PathBuf::from(home).join("config.toml"));
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| anyhow!("neither ACTA_HOME nor HOME is set"))?;
    Ok(PathBuf::from(home).join(".acta").join("config.toml"))
}

/// The settings file, or no settings if there is none.
pub fn load() -> Result<Settings> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| anyhow!("{}: {e}; fix the file or remove it", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save(settings: &Settings) -> Result<PathBuf> {
    let path = path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(settings)?;
    // Written beside and renamed, so that a failure leaves the old file whole.
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The chain id the wallet is pinned to, and what pinned it: `ACTA_CHAIN`, the settings
/// file's `chain`, or the genesis file set ([`genesis`]); `None` if nothing does.
pub fn chain() -> Result<Option<(ChainId, &'static str)>> {
    let (id, from) = match std::env::var("ACTA_CHAIN") {
        Ok(id) if !id.is_empty() => (id, "ACTA_CHAIN"),
        _ => match load()?.chain {
            Some(id) => (id, "the settings file"),
            None => {
                return Ok(genesis()?.map(|(anchor, from)| (anchor.chain_id, from)));
            }
        },
    };
    let chain = ChainId::new(&id).map_err(|e| anyhow!("the chain pinned by {from}: {e}"))?;
    Ok(Some((chain, from)))
}

/// The genesis file the wallet checks proofs against, and what named it: `ACTA_GENESIS`,
/// or the settings file's `genesis`; `None` if neither does.
pub fn genesis() -> Result<Option<(TrustAnchor, &'static str)>> {
    let (path, from) = match std::env::var_os("ACTA_GENESIS") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "the genesis file of ACTA_GENESIS"),
        _ => match load()?.genesis {
            Some(p) => (PathBuf::from(p), "the settings file's genesis file"),
            None => return Ok(None),
        },
    };
    let anchor = TrustAnchor::from_genesis_json(&crate::read_limited(&path)?)
        .map_err(|e| anyhow!("{} ({from}): {e}", path.display()))?;
    Ok(Some((anchor, from)))
}

/// The node to ask, and what named it: `--node`/`ACTA_NODE`, the settings file, or the
/// default.
pub fn node(flag: Option<String>) -> Result<(String, &'static str)> {
    if let Some(url) = flag {
        return Ok((url, "--node or ACTA_NODE"));
    }
    match load()?.node {
        Some(url) => Ok((url, "the settings file")),
        None => Ok((DEFAULT_NODE.to_string(), "the default")),
    }
}

pub fn run(command: ConfigCommand, flag: Option<String>, output: Output) -> Result<()> {
    match command {
        ConfigCommand::Set { name, value } if name == "genesis" => {
            // Checked as the wallet will use it, and kept by its absolute path.
            let path =
                std::fs::canonicalize(&value).with_context(|| format!("genesis: {value}"))?;
            let anchor = TrustAnchor::from_genesis_json(&crate::read_limited(&path)?)
                .map_err(|e| anyhow!("genesis: {}: {e}", path.display()))?;
            let mut settings = load()?;
            settings.genesis = Some(path.display().to_string());
            let file = save(&settings)?;
            output.print(
                Some(&format!(
                    "genesis = {} (chain {}; in {})",
                    path.display(),
                    anchor.chain_id,
                    file.display()
                )),
                &json!({
                    "genesis": path.display().to_string(),
                    "chain": anchor.chain_id.to_string(),
                    "file": file.display().to_string(),
                }),
            );
        }
        ConfigCommand::Set { name, value } if name == "chain" => {
            ChainId::new(&value).map_err(|e| anyhow!("chain: {e}"))?;
            let mut settings = load()?;
            settings.chain = Some(value.clone());
            let path = save(&settings)?;
            output.print(
                Some(&format!("chain = {value} (in {})", path.display())),
                &json!({ "chain": value, "file": path.display().to_string() }),
            );
        }
        ConfigCommand::Set { name: _, value } => {
            // Checked as the wallet will use it.
            crate::client::Node::new(&value)?;
            let mut settings = load()?;
            settings.node = Some(value.trim_end_matches('/').to_string());
            let path = save(&settings)?;
            output.print(
                Some(&format!("node = {} (in {})", value, path.display())),
                &json!({ "node": settings.node, "file": path.display().to_string() }),
            );
        }
        ConfigCommand::Unset { name } => {
            let mut settings = load()?;
            let (field, then) = match name.as_str() {
                "genesis" => (
                    &mut settings.genesis,
                    "reads before signing are the node's word".to_string(),
                ),
                "chain" => (
                    &mut settings.chain,
                    "the wallet works with the chain of the node it asks unless ACTA_CHAIN or a genesis says otherwise".to_string(),
                ),
                _ => (
                    &mut settings.node,
                    format!("the wallet asks {DEFAULT_NODE} unless --node or ACTA_NODE says otherwise"),
                ),
            };
            *field = None;
            let path = save(&settings)?;
            output.print(
                Some(&format!("{name} unset (in {}): {then}", path.display())),
                &json!({ name: null, "file": path.display().to_string() }),
            );
        }
        ConfigCommand::Show => {
            let (url, from) = node(flag)?;
            let pinned = chain()?;
            output.print(
                None,
                &json!({
                    "node": url,
                    "node_from": from,
                    "chain": pinned.as_ref().map(|(c, _)| c.to_string()),
                    "chain_from": pinned.map_or("the node", |(_, f)| f),
                    "genesis": load()?.genesis,
                    "file": path()?.display().to_string(),
                }),
            );
        }
    }
    Ok(())
}
