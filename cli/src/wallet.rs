//! What every command shares: the node, the keystore, the output format; signing a call
//! with a keystore key and its next nonce, submitting it and waiting for its block.

use std::{path::PathBuf, time::Duration};

use acta_ledger::{Call, Did, Keypair, Timestamp, Transaction};
use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::{
    client::{ApiError, Node},
    keystore::Keystore,
    output::Output,
};

/// The context of one command.
#[derive(Debug)]
pub struct Ctx {
    pub node_url: String,
    /// Why the node's address could not be read (the settings file), if so.
    pub node_error: Option<String>,
    /// `--keystore`, if given.
    pub keystore_flag: Option<PathBuf>,
    pub output: Output,
    /// Submit without waiting for the block.
    pub no_wait: bool,
    /// How long a signed transaction stays valid (`--valid-minutes`).
    pub valid_minutes: u64,
}

impl Ctx {
    pub fn node(&self) -> Result<Node> {
        if let Some(e) = &self.node_error {
            return Err(anyhow!("{e}"));
        }
        Node::new(&self.node_url)
    }

    /// The keystore: `--keystore`, `$ACTA_HOME/keys` or `~/.acta/keys`.
    pub fn keystore(&self) -> Result<Keystore> {
        if let Some(dir) = &self.keystore_flag {
            return Ok(Keystore::new(dir.clone()));
        }
        if let Some(home) = std::env::var_os("ACTA_HOME") {
            return Ok(Keystore::new(PathBuf::from(home).join("keys")));
        }
        let home = std::env::var_os("HOME")
            .ok_or_else(|| anyhow!("neither --keystore, ACTA_HOME nor HOME is set"))?;
        Ok(Keystore::new(
            PathBuf::from(home).join(".acta").join("keys"),
        ))
    }

    /// Unlocks keystore key `name` with the passphrase (`ACTA_PASSPHRASE` or a prompt).
    pub fn unlock(&self, name: &str) -> Result<Keypair> {
        let store = self.keystore()?;
        store.info(name)?;
        let pass = crate::passphrase(false)?;
        Ok(store.unlock(name, &pass)?)
    }

    /// A DID given as `did:acta:...`, or as the name of a keystore key (the DID that key
    /// created).
    pub fn did(&self, s: &str) -> Result<Did> {
        if s.starts_with("did:") {
            return Did::parse(s).map_err(|e| anyhow!("{s:?} is not an Acta DID: {e}"));
        }
        let info = self.keystore()?.info(s).map_err(|e| {
            anyhow!("{s:?} is neither a DID (did:acta:...) nor a key in the keystore: {e}")
        })?;
        Ok(info.did)
    }

    /// A spinner on standard error while waiting (shown only on a terminal).
    pub fn spinner(&self, message: String) -> ProgressBar {
        let bar = ProgressBar::new_spinner().with_message(message);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// Unlocks `key`, signs `call` at its next nonce, submits it and waits for its block
    /// (unless `--no-wait`). Prints and returns the node's answer.
    pub fn sign_and_send(&self, key: &str, call: Call) -> Result<Value> {
        let signer = self.unlock(key)?;
        let answer = self.submit(&self.node()?, &signer, call)?;
        self.print_answer(&answer);
        Ok(answer)
    }

    /// Signs `call` with `key` at its next nonce and submits it; the node's answer.
    pub fn submit(&self, node: &Node, key: &Keypair, call: Call) -> Result<Value> {
        let chain = node.chain_id()?;
        let mode = if self.no_wait { "sync" } else { "commit" };
        let attempt = |call: Call| -> (String, Result<Value>) {
            let tx = match node.nonce(&key.public()) {
                Ok(nonce) => {
                    let valid_until =
                        Timestamp::now().plus_ms(self.valid_minutes.saturating_mul(60_000));
                    Transaction::sign(key, chain.clone(), nonce, valid_until, call)
                }
                Err(e) => return (String::new(), Err(e)),
            };
            let id = tx.id().to_hex();
            let bar = (!self.no_wait)
                .then(|| self.spinner(format!("waiting for tx {id} to be committed")));
            let answer = node.submit(&tx, mode);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            (id, answer)
        };
        let (mut id, mut answer) = attempt(call.clone());
        // A nonce read just before another transaction of the key committed is stale: read
        // it again once.
        if matches!(&answer, Err(e) if code_of(e) == Some("stale_nonce")) {
            (id, answer) = attempt(call);
        }
        answer.map_err(|e| {
            if id.is_empty() {
                // The key's nonce could not be read: nothing was signed or sent.
                e.context(NotRecorded("nothing was sent".into()))
            } else {
                explain(e, &id)
            }
        })
    }

    pub fn print_answer(&self, answer: &Value) {
        let hash = answer["hash"].as_str().unwrap_or("?");
        let title = match answer["status"].as_str() {
            Some("committed") => {
                format!("committed in block {} (transaction {hash})", answer["height"])
            }
            _ => format!(
                "accepted into the mempool (transaction {hash}); follow it with: acta chain tx {hash}"
            ),
        };
        match self.output {
            Output::Json => self.output.print(None, answer),
            Output::Text => {
                crate::outln!("{title}");
                for event in answer["events"].as_array().into_iter().flatten() {
                    crate::outln!("  {}", event_line(event));
                }
            }
        }
    }
}

/// An event as one line: `budget_round_opened: round 3, district old-town`.
fn event_line(event: &Value) -> String {
    let kind = event["kind"].as_str().unwrap_or("event");
    let attributes: Vec<String> = event["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some(format!("{} {}", a[0].as_str()?, a[1].as_str()?)))
        .collect();
    if attributes.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", attributes.join(", "))
    }
}

fn code_of(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<ApiError>().map(|a| a.code.as_str())
}

/// A failed submission, said so that the person knows what happened to the transaction.
fn explain(e: anyhow::Error, id: &str) -> anyhow::Error {
    let Some(a) = e.downcast_ref::<ApiError>() else {
        // Sent, but no answer: it may be in a block already.
        return anyhow!(
            "{e:#}; transaction {id} may have reached the node: check with `acta chain tx {id}` before sending it again"
        );
    };
    match a.code.as_str() {
        "commit_timeout" => anyhow!(
            "transaction {id} was accepted but not committed in time; it may still be: acta chain tx {id}"
        ),
        "busy" => NotRecorded("the node is busy: retry shortly, or send with --no-wait".into()).into(),
        "rate_limited" => NotRecorded(format!("{}: nothing was recorded", a.message)).into(),
        "stale_nonce" => NotRecorded(format!(
            "refused ({}): {}; the key's transactions moved on while this one was signed (another wallet or node uses the key, or one was just committed): retry",
            a.code,
            a.message
        ))
        .into(),
        // Nodes before stop 56 answered a retry of a pending transaction so.
        "duplicate" => anyhow!(
            "transaction {id} is already pending at the node; follow it with `acta chain tx {id}`"
        ),
        _ if a.status == 422 => match a.height {
            Some(h) => NotRecorded(format!(
                "included in block {h} but refused by the ledger ({}): {}",
                a.code,
                a.message.trim_start_matches("the ledger refused the transaction: ")
            ))
            .into(),
            None => Refused {
                code: a.code.clone(),
                message: a.message.clone(),
            }
            .into(),
        },
        _ => e,
    }
}

/// A transaction that is certainly not recorded, though the rules did not refuse it
/// outright: the node was busy, its nonce was taken, nothing was sent, or the block that
/// held it refused its call (which uses up the nonce and records nothing else).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotRecorded(pub String);

/// A transaction the node refused outright: nothing was recorded, and it will not be.
#[derive(Debug, thiserror::Error)]
#[error("refused ({code}): {message}")]
pub struct Refused {
    pub code: String,
    pub message: String,
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    Timestamp::now().0
}

/// A time given as Unix milliseconds, a date (`2027-01-31`, midnight UTC) or an RFC 3339
/// time (`2027-01-31T12:00:00Z`, seconds optional, offsets allowed).
pub fn parse_time(s: &str) -> Result<u64, String> {
    Timestamp::parse(s).map(|t| t.0)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_as_unix_milliseconds() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2000-03-01"), Ok(951_868_800_000));
        assert_eq!(parse_time("2027-01-31T12:00:00Z"), Ok(1_801_396_800_000));
        for bad in [
            "",
            "2027-13-01",
            "2027-01-31T12:00:00",
            "yesterday",
            "2027-01",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
