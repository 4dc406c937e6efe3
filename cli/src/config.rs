//! The wallet's settings file, so that the node need not be named on every call:
//! `$ACTA_HOME/config.toml` or `~/.acta/config.toml`. `--node` and `ACTA_NODE` still come
//! first; without any of them the wallet asks `http://127.0.0.1:26657`.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::output::Output;

/// The node asked when nothing names one.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:26657";

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Remember a setting. `node`: the node's API address, used when neither --node nor
    /// ACTA_NODE is given.
    ///
    /// Example: acta config set node http://127.0.0.1:26657
    Set {
        #[arg(value_parser = ["node"])]
        name: String,
        value: String,
    },
    /// Forget a setting.
    ///
    /// Example: acta config unset node
    Unset {
        #[arg(value_parser = ["node"])]
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
        Ok(text) => toml::from_str(&text).map_err(|e| {
            anyhow!(
                "{}: {e}; fix it or remove it (acta config unset node)",
                path.display()
            )
        }),
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
        ConfigCommand::Unset { name: _ } => {
            let mut settings = load()?;
            settings.node = None;
            let path = save(&settings)?;
            output.print(
                Some(&format!(
                    "node unset (in {}): the wallet asks {DEFAULT_NODE} unless --node or ACTA_NODE says otherwise",
                    path.display()
                )),
                &json!({ "node": null, "file": path.display().to_string() }),
            );
        }
        ConfigCommand::Show => {
            let (url, from) = node(flag)?;
            output.print(
                None,
                &json!({ "node": url, "node_from": from, "file": path()?.display().to_string() }),
            );
        }
    }
    Ok(())
}
