//! The node's HTTP API, as the wallet uses it: reads answered as JSON, transactions
//! submitted and waited for, errors turned into sentences a person can act on.

use std::{io::Read, time::Duration};

use acta_ledger::{ChainId, PublicKey, Transaction};
use anyhow::{anyhow, Context, Result};
use serde_json::Value;

/// The largest answer read (a `.pb` export of a large round, a long list).
const ANSWER_MAX: u64 = 256 * 1024 * 1024;

/// An error answer of the API: `{code, message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The block of a transaction the ledger refused.
    pub height: Option<u64>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, HTTP {})", self.message, self.code, self.status)
    }
}

impl std::error::Error for ApiError {}

/// A node's API at a base URL such as `http://127.0.0.1:26657`.
#[derive(Debug)]
pub struct Node {
    base: String,
    agent: ureq::Agent,
}

impl Node {
    pub fn new(url: &str) -> Result<Node> {
        let base = url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "--node {url:?} is not an http:// or https:// URL (for example http://127.0.0.1:26657)"
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            // Longer than the node's wait for a commit (15 s by default).
            .timeout_read(Duration::from_secs(150))
            .user_agent(concat!("acta/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Node { base, agent })
    }

    fn answer(&self, result: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response> {
        match result {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let field = |k: &str| body[k].as_str().map(str::to_string);
                let (Some(code), Some(message)) = (field("code"), field("message")) else {
                    // Not an Acta error answer: another web server, or a proxy's page.
                    return Err(ApiError {
                        status,
                        code: "not_acta".into(),
                        message: format!(
                            "{} answered HTTP {status} with something that is not Acta's API: is --node (or ACTA_NODE) an Acta node's API address?",
                            self.base
                        ),
                        height: None,
                    }
                    .into());
                };
                Err(ApiError {
                    status,
                    code,
                    message,
                    height: body["height"].as_u64(),
                }
                .into())
            }
            Err(ureq::Error::Transport(t)) => Err(anyhow!(
                "cannot reach the node at {}: {t}; is actad running there? (set --node or ACTA_NODE)",
                self.base
            )),
        }
    }

    /// The raw bytes of `GET path`.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let r = self.answer(self.agent.get(&format!("{}{path}", self.base)).call())?;
        let mut bytes = Vec::new();
        r.into_reader()
            .take(ANSWER_MAX + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {path} from {}", self.base))?;
        if bytes.len() as u64 > ANSWER_MAX {
            return Err(anyhow!(
                "{}{path} answered more than {ANSWER_MAX} bytes; not read",
                self.base
            ));
        }
        Ok(bytes)
    }

    /// `GET path`, answered as JSON.
    pub fn get(&self, path: &str) -> Result<Value> {
        let bytes = self.get_bytes(path)?;
        serde_json::from_slice(&bytes).map_err(|_| {
            ApiError {
                status: 200,
                code: "not_acta".into(),
                message: format!(
                    "{} answered {path} with something that is not JSON: is --node (or ACTA_NODE) an Acta node's API address?",
                    self.base
                ),
                height: None,
            }
            .into()
        })
    }

    /// Submits a signed transaction. `mode` is `commit` (wait for its block) or `sync`
    /// (wait for the mempool's verdict only).
    pub fn submit(&self, tx: &Transaction, mode: &str) -> Result<Value> {
        let body = serde_json::json!({ "tx": hex::encode(tx.encode()) }).to_string();
        let r = self.answer(
            self.agent
                .post(&format!("{}/txs?mode={mode}", self.base))
                .set("Content-Type", "application/json")
                .send_string(&body),
        )?;
        let text = r.into_string().context("reading the node's answer")?;
        serde_json::from_str(&text).map_err(|e| anyhow!("the node's answer is not JSON: {e}"))
    }

    /// The chain id the node runs; refused if it is not the one the wallet is pinned to
    /// (`acta config set chain`, `ACTA_CHAIN`), so that nothing is signed for another chain.
    pub fn chain_id(&self) -> Result<ChainId> {
        let status = self.get("/status")?;
        let id = status["chain_id"]
            .as_str()
            .ok_or_else(|| anyhow!("{}/status names no chain_id", self.base))?;
        let chain = ChainId::new(id).map_err(|e| anyhow!("the node's chain id {id:?}: {e}"))?;
        if let Some((pinned, from)) = crate::config::chain()? {
            if pinned != chain {
                return Err(anyhow!(
                    "the node {} runs chain {chain}, but {from} pins this wallet to chain {pinned}: nothing was signed or sent",
                    self.base
                ));
            }
        }
        Ok(chain)
    }

    /// The nonce `key`'s next transaction is signed with: after its transactions committed
    /// and those waiting in the node's mempool, so that transactions sent with `--no-wait`
    /// one after the other take consecutive nonces.
    pub fn nonce(&self, key: &PublicKey) -> Result<u64> {
        let v = self.get(&format!("/signers/{}/nonce", hex::encode(key.0)))?;
        v["next"]
            .as_u64()
            .ok_or_else(|| anyhow!("{}/signers/.../nonce names no next nonce", self.base))
    }
}
