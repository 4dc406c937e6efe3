//! The node's home folder and its `config.toml`.
//!
//! ```text
//! HOME/config.toml          settings (commented defaults written by `actad init`)
//! HOME/genesis.json         the chain's genesis, the same on every node
//! HOME/keys/node_key.json   the libp2p identity (ed25519 seed), mode 0600
//! HOME/keys/consensus_key.json  the validator's signing key (ed25519 seed), mode 0600
//! HOME/data/store/          RocksDB: blocks, commits, state
//! HOME/data/wal             the consensus write-ahead log
//! ```

use std::path::{Path, PathBuf};

use acta_ledger::store::MemoryBudget;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use crate::mempool::MempoolConfig;

/// Paths inside a node's home folder.
#[derive(Clone, Debug)]
pub struct Home(pub PathBuf);

impl Home {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    pub fn genesis(&self) -> PathBuf {
        self.0.join("genesis.json")
    }
    pub fn keys(&self) -> PathBuf {
        self.0.join("keys")
    }
    pub fn node_key(&self) -> PathBuf {
        self.keys().join("node_key.json")
    }
    pub fn consensus_key(&self) -> PathBuf {
        self.keys().join("consensus_key.json")
    }
    /// What the consensus key last signed ([`crate::signed`]): it moves with the key.
    pub fn signed_state(&self) -> PathBuf {
        self.keys().join("signed_state.json")
    }
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
    pub fn store(&self) -> PathBuf {
        self.data().join("store")
    }
    pub fn wal(&self) -> PathBuf {
        self.data().join("wal")
    }
}

/// The settings a running node re-reads on SIGHUP; the others take effect at restart.
pub const RELOADABLE: &[&str] = &[
    "p2p.peers",
    "p2p.blocked_peers",
    "p2p.max_strikes",
    "consensus.block_interval_ms",
    "consensus.empty_block_interval_ms",
    "consensus.min_height_ms",
    "block.max_txs",
    "block.max_bytes",
];

/// The largest `p2p.max_message_bytes` accepted: a block of the ledger's maximum size and
/// room for its proposal.
pub const MESSAGE_BYTES_MAX: usize = acta_ledger::block::BLOCK_BYTES_MAX + 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A name for logs and status.
    pub moniker: String,
    pub p2p: P2pConfig,
    pub rpc: RpcConfig,
    pub consensus: ConsensusConfig,
    pub mempool: MempoolConfig,
    pub block: BlockConfig,
    pub storage: StorageConfig,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// The libp2p address to listen on.
    pub listen: String,
    /// Addresses of peers to dial and keep dialing, each ending in `/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// Whether peers outside the validator set may connect as read-only observers.
    pub allow_observers: bool,
    /// The largest gossip message accepted, in bytes (a proposal carries its block).
    pub max_message_bytes: usize,
    /// How often a node re-sends its own consensus messages and its status while a height
    /// is undecided, in milliseconds.
    pub gossip_interval_ms: u64,
    /// Invalid messages from one peer before it is disconnected and banned for a while.
    pub max_strikes: u32,
    /// Peer ids this node refuses and disconnects, whatever else admits them. Re-read on
    /// SIGHUP, so an operator can cut a peer off (or let it back) without a restart.
    pub blocked_peers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// The HTTP API's address; empty to turn it off.
    pub listen: String,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests served at once; more are refused with 503 until one finishes.
    pub max_concurrent: usize,
    /// Submissions with `mode=commit` waiting at once; more are refused with 503.
    pub max_commit_waits: usize,
    /// How long a `mode=commit` submission waits for its block, in milliseconds.
    pub commit_timeout_ms: u64,
    /// Open event subscriptions (server-sent events) at once.
    pub max_subscriptions: usize,
    /// Transactions one client (an IP address; an IPv6 /64) may submit a second, in
    /// bursts of up to two seconds' worth (at least 1,024); more are refused with 429.
    /// 0 turns the limit off (behind a reverse proxy, which should limit instead).
    pub client_txs_per_second: u32,
    /// Serve the residents' web page (it reads this API and posts ballots signed in the
    /// browser).
    pub web: bool,
    /// Where the page is served: a path that starts and ends with `/`.
    pub web_path: String,
    /// Worker threads of the API's own runtime; 0 serves the API on the node's thread,
    /// beside its consensus loop and network (ADR 0025).
    pub threads: usize,
}

/// The most worker threads `rpc.threads` may ask for.
pub const RPC_THREADS_MAX: usize = 64;

/// The longest `consensus.min_height_ms`: a second.
pub const MIN_HEIGHT_MS_MAX: u64 = 1_000;

/// The longest `consensus.empty_block_interval_ms`: an hour.
pub const EMPTY_BLOCK_INTERVAL_MS_MAX: u64 = 3_600_000;

/// The most a `mode=commit` submission may be configured to wait, in milliseconds.
pub const COMMIT_TIMEOUT_MS_MAX: u64 = 120_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    /// Added to each timeout per round.
    pub timeout_delta_ms: u64,
    /// While a budget round is under way and nothing else is to be decided, make a block
    /// this often (its phases and tally need heights). Transactions, evidence or another
    /// validator's start begin the next height as soon as the last is committed.
    pub block_interval_ms: u64,
    /// With nothing to do (no transactions, no evidence, no budget round under way), make
    /// a block only this often, so that liveness stays visible without filling the store.
    pub empty_block_interval_ms: u64,
    /// When only transactions wait, start a height at most this often (ms): after a
    /// shorter height the next waits, so that a light load makes fewer, fuller heights;
    /// after a longer one it starts at once. 0: as soon as the last is committed.
    pub min_height_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
}

/// What the store keeps of past states (`[storage]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub mode: StorageMode,
    /// With `mode = "pruned"`: the states of this many latest heights are kept; reads of
    /// older heights are refused (HTTP 410, naming the oldest height kept). Blocks, commits
    /// and results are kept from the first height in every mode.
    pub retain_heights: u64,
    /// RocksDB's block cache, in MiB (ADR 0023).
    pub block_cache_mib: usize,
    /// RocksDB's memtables, all together, in MiB.
    pub memtable_mib: usize,
    /// The state tree's cache of decoded nodes, in MiB (0: none; every update reads the
    /// nodes it walks from RocksDB).
    pub tree_cache_mib: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageMode {
    /// Keep the state of the latest `retain_heights` heights (validators).
    Pruned,
    /// Keep the state of every height (agencies and auditors who serve history).
    Archive,
}

/// The largest of the store's memory settings, in MiB (64 GiB).
pub const CACHE_MIB_MAX: usize = 64 * 1024;

/// The fewest heights a pruning node keeps: enough for reads and proofs at the heights
/// the API has just announced.
pub const RETAIN_HEIGHTS_MIN: u64 = 100;

impl Default for StorageConfig {
    fn default() -> Self {
        let memory = MemoryBudget::default();
        StorageConfig {
            mode: StorageMode::Pruned,
            retain_heights: 100_000,
            block_cache_mib: memory.block_cache_bytes >> 20,
            memtable_mib: memory.memtable_bytes >> 20,
            tree_cache_mib: memory.tree_cache_bytes >> 20,
        }
    }
}

impl StorageConfig {
    /// The store's cache sizes.
    pub fn memory(&self) -> MemoryBudget {
        MemoryBudget {
            block_cache_bytes: self.block_cache_mib << 20,
            memtable_bytes: self.memtable_mib << 20,
            tree_cache_bytes: self.tree_cache_mib << 20,
        }
    }

    /// The store's history mode, and how many heights to keep if pruning.
    pub fn retention(&self) -> (acta_ledger::store::History, Option<u64>) {
        match self.mode {
            StorageMode::Archive => (acta_ledger::store::History::Archive, None),
            StorageMode::Pruned => (
                acta_ledger::store::History::Prunable,
                Some(self.retain_heights),
            ),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            moniker: "acta-node".into(),
            p2p: P2pConfig::default(),
            rpc: RpcConfig::default(),
            consensus: ConsensusConfig::default(),
            mempool: MempoolConfig::default(),
            block: BlockConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: "/ip4/127.0.0.1/tcp/26656".into(),
            peers: Vec::new(),
            allow_observers: false,
            max_message_bytes: 8 * 1024 * 1024,
            gossip_interval_ms: 1000,
            max_strikes: 10,
            blocked_peers: Vec::new(),
        }
    }
}

impl P2pConfig {
    /// `blocked_peers` as peer ids; an error names the entry that is not one.
    pub fn blocked(&self) -> Result<Vec<libp2p::PeerId>> {
        self.blocked_peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.parse()
                    .map_err(|e| anyhow::anyhow!("field p2p.blocked_peers[{i}]: {p:?}: {e}"))
            })
            .collect()
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: "127.0.0.1:26657".into(),
            max_body_bytes: 256 * 1024,
            max_concurrent: 512,
            max_commit_waits: 1024,
            commit_timeout_ms: 15_000,
            max_subscriptions: 256,
            client_txs_per_second: 1000,
            web: true,
            web_path: "/".into(),
            threads: 1,
        }
    }
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            timeout_propose_ms: 3000,
            timeout_prevote_ms: 1000,
            timeout_precommit_ms: 1000,
            timeout_delta_ms: 500,
            block_interval_ms: 200,
            empty_block_interval_ms: 10_000,
            min_height_ms: 30,
        }
    }
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            max_txs: 5_000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Config {
    /// The settings (`section.field`) whose values differ between `self` and `other`.
    pub fn differences(&self, other: &Config) -> Vec<String> {
        let (a, b) = match (serde_json::to_value(self), serde_json::to_value(other)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for (section, va) in a {
                let vb = &b[section];
                match (va.as_object(), vb.as_object()) {
                    (Some(fa), Some(fb)) => {
                        for (field, x) in fa {
                            if fb.get(field) != Some(x) {
                                out.push(format!("{section}.{field}"));
                            }
                        }
                    }
                    _ if va != vb => out.push(section.clone()),
                    _ => {}
                }
            }
        }
        out
    }

    /// Reads `config.toml`; errors name the file, the line and the field.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
        config
            .check()
            .with_context(|| format!("config file {}", path.display()))?;
        Ok(config)
    }

    /// Checks the settings that parsing alone does not: addresses, limits, timeouts.
    pub fn check(&self) -> Result<()> {
        let addr = |field: &str, value: &str| -> Result<()> {
            value
                .parse::<libp2p::Multiaddr>()
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("field {field}: {value:?}: {e}"))
        };
        addr("p2p.listen", &self.p2p.listen)?;
        for (i, p) in self.p2p.peers.iter().enumerate() {
            addr(&format!("p2p.peers[{i}]"), p)?;
        }
        self.p2p.blocked()?;
        if !self.rpc.listen.is_empty() {
            self.rpc
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| anyhow::anyhow!("field rpc.listen: {:?}: {e}", self.rpc.listen))?;
        }
        let path = &self.rpc.web_path;
        anyhow::ensure!(
            path.starts_with('/')
                && path.ends_with('/')
                && path.len() <= 64
                && !path.contains("//")
                && path.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'/'),
            "field rpc.web_path: {path:?} is not a path such as \"/\" or \"/city/\" (a-z, 0-9, -)"
        );
        anyhow::ensure!(
            self.rpc.commit_timeout_ms > 0 && self.rpc.commit_timeout_ms <= COMMIT_TIMEOUT_MS_MAX,
            "field rpc.commit_timeout_ms: 1 to {COMMIT_TIMEOUT_MS_MAX}"
        );
        anyhow::ensure!(
            self.rpc.max_body_bytes >= 2 * acta_ledger::tx::TX_BYTES_MAX + 1024
                && self.rpc.max_body_bytes <= MESSAGE_BYTES_MAX,
            "field rpc.max_body_bytes: {} to {MESSAGE_BYTES_MAX} (a transaction in hex must fit)",
            2 * acta_ledger::tx::TX_BYTES_MAX + 1024
        );
        for (field, v) in [
            ("rpc.max_concurrent", self.rpc.max_concurrent),
            ("rpc.max_commit_waits", self.rpc.max_commit_waits),
            ("rpc.max_subscriptions", self.rpc.max_subscriptions),
        ] {
            anyhow::ensure!(v > 0 && v <= 1_000_000, "field {field}: 1 to 1000000");
        }
        anyhow::ensure!(
            self.rpc.threads <= RPC_THREADS_MAX,
            "field rpc.threads: 0 to {RPC_THREADS_MAX}"
        );
        anyhow::ensure!(
            self.p2p.max_message_bytes <= MESSAGE_BYTES_MAX,
            "field p2p.max_message_bytes: at most {MESSAGE_BYTES_MAX}"
        );
        let positive = [
            (
                "consensus.timeout_propose_ms",
                self.consensus.timeout_propose_ms,
            ),
            (
                "consensus.timeout_prevote_ms",
                self.consensus.timeout_prevote_ms,
            ),
            (
                "consensus.timeout_precommit_ms",
                self.consensus.timeout_precommit_ms,
            ),
            ("p2p.gossip_interval_ms", self.p2p.gossip_interval_ms),
        ];
        for (field, v) in positive {
            anyhow::ensure!(v > 0, "field {field}: must be more than 0");
        }
        anyhow::ensure!(
            self.block.max_bytes + 64 * 1024 <= self.p2p.max_message_bytes,
            "field block.max_bytes: a block must fit in p2p.max_message_bytes with room to spare"
        );
        anyhow::ensure!(
            self.block.max_txs > 0 && self.block.max_txs <= acta_ledger::block::BLOCK_TXS_MAX,
            "field block.max_txs: 1 to {}",
            acta_ledger::block::BLOCK_TXS_MAX
        );
        anyhow::ensure!(
            self.block.max_bytes <= acta_ledger::block::BLOCK_BYTES_MAX
                && self.block.max_bytes >= acta_ledger::tx::TX_BYTES_MAX,
            "field block.max_bytes: {} to {} (the largest transaction must fit)",
            acta_ledger::tx::TX_BYTES_MAX,
            acta_ledger::block::BLOCK_BYTES_MAX
        );
        anyhow::ensure!(
            self.consensus.empty_block_interval_ms >= self.consensus.block_interval_ms
                && self.consensus.empty_block_interval_ms <= EMPTY_BLOCK_INTERVAL_MS_MAX,
            "field consensus.empty_block_interval_ms: consensus.block_interval_ms ({}) to {EMPTY_BLOCK_INTERVAL_MS_MAX}",
            self.consensus.block_interval_ms
        );
        anyhow::ensure!(
            self.consensus.min_height_ms <= MIN_HEIGHT_MS_MAX,
            "field consensus.min_height_ms: 0 to {MIN_HEIGHT_MS_MAX}"
        );
        anyhow::ensure!(
            self.storage.retain_heights >= RETAIN_HEIGHTS_MIN,
            "field storage.retain_heights: at least {RETAIN_HEIGHTS_MIN}"
        );
        for (field, value, min) in [
            ("storage.block_cache_mib", self.storage.block_cache_mib, 8),
            ("storage.memtable_mib", self.storage.memtable_mib, 16),
            ("storage.tree_cache_mib", self.storage.tree_cache_mib, 0),
        ] {
            anyhow::ensure!(
                (min..=CACHE_MIB_MAX).contains(&value),
                "field {field}: {min} to {CACHE_MIB_MAX}"
            );
        }
        Ok(())
    }

    /// The file `actad init` writes: every setting at its default, with comments.
    pub fn commented(&self) -> String {
        // Strings are written as TOML strings, escaped.
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let peers = self
            .p2p
            .peers
            .iter()
            .map(|p| q(p))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"# Acta node configuration. Every setting is shown with its value; delete a line to use
# the default. Settings marked (SIGHUP) are re-read by `kill -HUP <actad pid>`; the others
# take effect at restart.

# A name for logs and status.
moniker = {moniker}

[p2p]
# The libp2p address to listen on.
listen = {listen}
# Peers to dial and keep dialing, and admit whatever the validator set: multiaddresses
# ending in /p2p/<peer id>. (SIGHUP)
peers = [{peers}]
# Whether peers that are not validators may connect, as read-only observers.
allow_observers = {allow_observers}
# The largest gossip message accepted, in bytes (a proposal carries its whole block).
max_message_bytes = {max_message_bytes}
# How often the node re-sends its own consensus messages and status while undecided (ms).
gossip_interval_ms = {gossip_interval_ms}
# Invalid messages from one peer before it is disconnected and banned for a while. (SIGHUP)
max_strikes = {max_strikes}
# Peer ids refused and disconnected. (SIGHUP)
blocked_peers = [{blocked}]

[rpc]
# The HTTP API's address; "" turns it off.
listen = {rpc}
# The largest request body accepted, in bytes.
max_body_bytes = {rb}
# Requests served at once; more are refused (503) until one finishes.
max_concurrent = {rc}
# Submissions with mode=commit waiting for their block at once; more are refused (503).
max_commit_waits = {rw}
# How long a mode=commit submission waits for its block (ms).
commit_timeout_ms = {rt}
# Open event subscriptions (server-sent events) at once.
max_subscriptions = {rs}
# Transactions one client (IP address; IPv6 /64) may submit a second, in bursts of two seconds' worth (at least 1024); more get 429. 0: no limit (behind a proxy that limits).
client_txs_per_second = {rl}
# Serve the residents' web page (it reads this API and posts ballots signed in the browser), and where.
web = {web}
web_path = {web_path}
# Threads that serve the API (0 to 64), apart from the node's own thread, which runs its
# consensus loop and network. 0: the API shares that thread (fewer thread switches, for a
# machine with few cores and a private API; large responses are then encoded on it, between
# the node's votes).
threads = {rth}

[consensus]
# Timeouts of round 0 in milliseconds; each later round adds timeout_delta_ms.
timeout_propose_ms = {tp}
timeout_prevote_ms = {tv}
timeout_precommit_ms = {tc}
timeout_delta_ms = {td}
# While a budget round is under way and nothing else waits, make a block this often (ms);
# waiting transactions, evidence or another validator's start begin the next height as
# soon as the last is committed (after an empty block, at this pace). (SIGHUP)
block_interval_ms = {bi}
# With no transactions, no evidence and no budget round under way, make a block only this
# often (ms): an idle chain stays visibly alive without filling the store. (SIGHUP)
empty_block_interval_ms = {ei}
# When only transactions wait, start a height at most this often (ms): a light load then
# makes fewer, fuller heights (less CPU a transaction, a few ms more latency); a height
# longer than this is followed at once. 0 starts the next as soon as the last is
# committed. (SIGHUP)
min_height_ms = {mh}

[mempool]
max_txs = {mt}
max_bytes = {mb}
# Pending transactions per signing key.
max_per_signer = {ms}
# How far ahead a transaction's valid_until may be (s): the longest the signed bytes of a
# transaction this pool refused stay usable.
max_lifetime_secs = {ml}
# Run each arriving call against the latest state and refuse it to its sender if the ledger
# would refuse it (true), or admit it and commit its refusal as a receipt (false).
check_calls = {cc}

[block]
# Limits of the blocks this node proposes. (SIGHUP)
max_txs = {bt}
max_bytes = {bb}

[storage]
# "pruned": keep the states of the latest retain_heights heights, and refuse reads of older
# ones (HTTP 410 naming the oldest height kept). "archive": keep every height's state.
# Blocks, commits and results are kept from the first height in both modes.
mode = {sm}
retain_heights = {sr}
# Memory the store's caches may hold, in MiB: RocksDB's block cache and memtables, and the
# state tree's node cache (0 turns it off). Smaller fits a smaller machine; larger keeps
# more of a large state in memory. A validator at 1,500 tx/s for half an hour held about
# 350 MiB besides these (docs/benchmarks.md).
block_cache_mib = {sb}
memtable_mib = {smt}
tree_cache_mib = {st}
"#,
            moniker = q(&self.moniker),
            listen = q(&self.p2p.listen),
            allow_observers = self.p2p.allow_observers,
            max_message_bytes = self.p2p.max_message_bytes,
            gossip_interval_ms = self.p2p.gossip_interval_ms,
            max_strikes = self.p2p.max_strikes,
            blocked = self
                .p2p
                .blocked_peers
                .iter()
                .map(|p| q(p))
                .collect::<Vec<_>>()
                .join(", "),
            rpc = q(&self.rpc.listen),
            rb = self.rpc.max_body_bytes,
            rc = self.rpc.max_concurrent,
            rw = self.rpc.max_commit_waits,
            rt = self.rpc.commit_timeout_ms,
            rs = self.rpc.max_subscriptions,
            rth = self.rpc.threads,
            rl = self.rpc.client_txs_per_second,
            web = self.rpc.web,
            web_path = q(&self.rpc.web_path),
            tp = self.consensus.timeout_propose_ms,
            tv = self.consensus.timeout_prevote_ms,
            tc = self.consensus.timeout_precommit_ms,
            td = self.consensus.timeout_delta_ms,
            bi = self.consensus.block_interval_ms,
            ei = self.consensus.empty_block_interval_ms,
            mh = self.consensus.min_height_ms,
            mt = self.mempool.max_txs,
            mb = self.mempool.max_bytes,
            ms = self.mempool.max_per_signer,
            ml = self.mempool.max_lifetime_secs,
            cc = self.mempool.check_calls,
            bt = self.block.max_txs,
            bb = self.block.max_bytes,
            sm = q(match self.storage.mode {
                StorageMode::Pruned => "pruned",
                StorageMode::Archive => "archive",
            }),
            sr = self.storage.retain_heights,
            sb = self.storage.block_cache_mib,
            smt = self.storage.memtable_mib,
            st = self.storage.tree_cache_mib,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_file_reads_back_as_the_defaults() {
        let c = Config::default();
        let back: Config = toml::from_str(&c.commented()).unwrap();
        assert_eq!(back, c);
        let mut custom = Config {
            moniker: "a \"quoted\" \\ name".into(),
            ..Config::default()
        };
        custom.p2p.peers = vec!["/ip4/127.0.0.1/tcp/1/p2p/x".into()];
        custom.storage.mode = StorageMode::Archive;
        custom.storage.tree_cache_mib = 0;
        custom.storage.block_cache_mib = 100;
        custom.rpc.threads = 0;
        custom.consensus.min_height_ms = 25;
        custom.p2p.blocked_peers =
            vec!["12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN".into()];
        let back: Config = toml::from_str(&custom.commented()).unwrap();
        assert_eq!(back, custom);
    }

    #[test]
    fn bad_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[p2p]\nlisten = 5\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("config.toml") && e.contains("listen"), "{e}");
        std::fs::write(&path, "[consensus]\ntimeout_propose = 5\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("timeout_propose"), "{e}");
        std::fs::write(&path, "[consensus]\ntimeout_prevote_ms = 0\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("consensus.timeout_prevote_ms"), "{e}");
        std::fs::write(&path, "[consensus]\nempty_block_interval_ms = 5\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("consensus.empty_block_interval_ms"), "{e}");
        std::fs::write(&path, "[consensus]\nmin_height_ms = 1001\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(
            e.contains("consensus.min_height_ms") && e.contains("0 to 1000"),
            "{e}"
        );
        std::fs::write(&path, "[consensus]\nmin_height_ms = 30\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().consensus.min_height_ms, 30);
        std::fs::write(&path, "[storage]\nmode = \"forever\"\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("forever") && e.contains("archive"), "{e}");
        std::fs::write(&path, "[storage]\nretain_heights = 5\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("storage.retain_heights"), "{e}");
        for bad in [
            "block_cache_mib = 4",
            "memtable_mib = 1",
            "tree_cache_mib = 100000",
        ] {
            std::fs::write(&path, format!("[storage]\n{bad}\n")).unwrap();
            let e = format!("{:#}", Config::load(&path).unwrap_err());
            let field = bad.split(' ').next().unwrap();
            assert!(e.contains(&format!("storage.{field}")), "{e}");
        }
        std::fs::write(
            &path,
            "[storage]\ntree_cache_mib = 0\nblock_cache_mib = 64\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.storage.memory().tree_cache_bytes, 0);
        assert_eq!(c.storage.memory().block_cache_bytes, 64 << 20);
        std::fs::write(&path, "[rpc]\nthreads = 65\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("rpc.threads") && e.contains("0 to 64"), "{e}");
        std::fs::write(&path, "[rpc]\nthreads = 0\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().rpc.threads, 0);
        std::fs::write(&path, "[p2p]\nblocked_peers = [\"nope\"]\n").unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("p2p.blocked_peers[0]"), "{e}");
    }
}
