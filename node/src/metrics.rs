//! The node's metrics, served at `GET /metrics` in the Prometheus text format (OpenMetrics).
//!
//! The driver updates consensus, block, mempool and peer metrics; the HTTP API counts its
//! requests. Label values come from closed sets (refusal codes, route templates, status
//! codes), so no outside input can grow the number of series.

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

fn seconds_histogram() -> Histogram {
    // 5 ms to about 20 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The `process_*` metrics, without the `acta_` prefix.
    process: Registry,
    pub height: Gauge,
    pub consensus_round: Gauge,
    pub rounds: Counter,
    pub blocks: Counter,
    pub block_interval: Histogram,
    pub commit_seconds: Histogram,
    pub block_txs: Histogram,
    /// Transactions whose signatures one check took together (from one or more batches).
    pub check_txs: Histogram,
    pub mempool_txs: Gauge,
    pub peers: Gauge,
    /// Invalid messages from peers (each a strike against its sender).
    pub peer_strikes: Counter,
    /// Peers banned now (for strikes, for an hour; of another genesis, until restart).
    pub peers_banned: Gauge,
    /// The latest committed block's time, in Unix seconds.
    pub last_block_time: Gauge,
    /// Committed blocks whose commit lacks this validator's signature.
    pub missed_signatures: Counter,
    pub mempool_accepted: Counter,
    /// Proposals whose block was rebuilt from their transaction ids, by how (label
    /// `from`: `mempool` when every transaction was there, `peer` when some were fetched).
    proposals_rebuilt: Family<Labels, Counter>,
    /// Transactions of proposed blocks fetched from peers (the mempool lacked them).
    pub proposal_txs_fetched: Counter,
    mempool_refused: Family<Labels, Counter>,
    /// Calls the mempool judged, by how (label `how`: `ran`, or `kept` when a recheck put
    /// back a call's writes without running it, nothing it read having changed).
    mempool_calls: Family<Labels, Counter>,
    committed: Family<Labels, Counter>,
    ledger_refused: Family<Labels, Counter>,
    rpc_requests: Family<Labels, Counter>,
    pub rpc_seconds: Histogram,
    /// Per validator of the set (label `validator`: its genesis name, or its key's first
    /// 16 hex digits): commits that lack its signature.
    validator_missed: Family<Labels, Counter>,
    /// Per validator: 1 if this node is connected to its node, else 0.
    validator_connected: Family<Labels, Gauge>,
    /// Seconds the height being decided has run (0 while waiting for work).
    pub deciding_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub stalled: Gauge,
    pub wal_bytes: Gauge,
    pub store_bytes: Gauge,
    /// The store's memory by part (label `part`: a fixed set, see [`Metrics::observe_store`]).
    store_memory: Family<Labels, Gauge>,
    store_hot_keys: Gauge,
    store_level0_files: Gauge,
    store_pending_compaction: Gauge,
    store_write_stalled: Gauge,
    /// Nodes of the state tree that updates (of candidate blocks too) read, by where they
    /// found them (label `from`: `cache` or `store`).
    store_tree_reads: Family<Labels, Counter>,
    /// Seconds blocks' writes spent, by part (label `part`: a fixed set, see
    /// [`Metrics::observe_store`]).
    store_block_write: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    /// Values that blocks' writes replaced, by where they were read (label `from`: `cache`
    /// or `store`).
    store_replaced_reads: Family<Labels, Counter>,
    process_rss: Gauge,
    process_cpu: Counter<f64, std::sync::atomic::AtomicU64>,
    process_fds: Gauge,
    process_start: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("acta");
        let m = Metrics {
            registry: Registry::default(),
            process: Registry::default(),
            height: Gauge::default(),
            consensus_round: Gauge::default(),
            rounds: Counter::default(),
            blocks: Counter::default(),
            block_interval: seconds_histogram(),
            commit_seconds: seconds_histogram(),
            block_txs: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            check_txs: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            mempool_txs: Gauge::default(),
            peers: Gauge::default(),
            peer_strikes: Counter::default(),
            peers_banned: Gauge::default(),
            last_block_time: Gauge::default(),
            missed_signatures: Counter::default(),
            mempool_accepted: Counter::default(),
            proposals_rebuilt: Family::default(),
            proposal_txs_fetched: Counter::default(),
            mempool_refused: Family::default(),
            mempool_calls: Family::default(),
            committed: Family::default(),
            ledger_refused: Family::default(),
            rpc_requests: Family::default(),
            rpc_seconds: seconds_histogram(),
            validator_missed: Family::default(),
            validator_connected: Family::default(),
            deciding_seconds: Gauge::default(),
            stalled: Gauge::default(),
            wal_bytes: Gauge::default(),
            store_bytes: Gauge::default(),
            store_memory: Family::default(),
            store_hot_keys: Gauge::default(),
            store_level0_files: Gauge::default(),
            store_pending_compaction: Gauge::default(),
            store_write_stalled: Gauge::default(),
            store_tree_reads: Family::default(),
            store_block_write: Family::default(),
            store_replaced_reads: Family::default(),
            process_rss: Gauge::default(),
            process_cpu: Counter::default(),
            process_fds: Gauge::default(),
            process_start: Gauge::default(),
        };
        registry.register("height", "Latest committed height", m.height.clone());
        registry.register(
            "consensus_round",
            "Round of the height being decided",
            m.consensus_round.clone(),
        );
        registry.register(
            "consensus_rounds",
            "Rounds entered, over all heights (one per height when all goes well)",
            m.rounds.clone(),
        );
        registry.register("blocks", "Blocks committed", m.blocks.clone());
        registry.register(
            "block_interval_seconds",
            "Time between two commits",
            m.block_interval.clone(),
        );
        registry.register(
            "block_commit_seconds",
            "Time to write a decided block, its commit and its state",
            m.commit_seconds.clone(),
        );
        registry.register(
            "block_txs",
            "Transactions per committed block",
            m.block_txs.clone(),
        );
        registry.register(
            "signature_check_txs",
            "Transactions whose signatures one check took together",
            m.check_txs.clone(),
        );
        registry.register(
            "mempool_txs",
            "Transactions waiting in the mempool",
            m.mempool_txs.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register(
            "last_block_time_seconds",
            "Time of the latest committed block, Unix seconds: the chain's age is time() minus this",
            m.last_block_time.clone(),
        );
        registry.register(
            "missed_signatures",
            "Committed blocks whose commit lacks this node's validator signature though its key is in the set",
            m.missed_signatures.clone(),
        );
        registry.register(
            "mempool_accepted",
            "Transactions the mempool accepted",
            m.mempool_accepted.clone(),
        );
        registry.register(
            "peer_strikes",
            "Invalid messages from peers, each a strike against its sender (p2p.max_strikes, less one forgiven a minute, bans it)",
            m.peer_strikes.clone(),
        );
        registry.register(
            "peers_banned",
            "Peers banned now: for invalid messages (an hour), or of another genesis (until restart)",
            m.peers_banned.clone(),
        );
        registry.register(
            "proposals_rebuilt",
            "Proposed blocks rebuilt from their transaction ids, by where the transactions came from (mempool: all there; peer: some fetched)",
            m.proposals_rebuilt.clone(),
        );
        registry.register(
            "proposal_txs_fetched",
            "Transactions of proposed blocks fetched from a peer because the mempool lacked them",
            m.proposal_txs_fetched.clone(),
        );
        registry.register(
            "mempool_calls",
            "Calls the mempool judged against the latest state with the pool applied: ran (on admission, or again after a block), or kept (a recheck found that nothing they read had changed and kept their writes without running them)",
            m.mempool_calls.clone(),
        );
        registry.register(
            "mempool_refused",
            "Transactions the mempool refused, by reason",
            m.mempool_refused.clone(),
        );
        registry.register(
            "txs_committed",
            "Transactions in committed blocks, by result (accepted or refused by the ledger)",
            m.committed.clone(),
        );
        registry.register(
            "ledger_refused",
            "Committed transactions the ledger refused, by reason",
            m.ledger_refused.clone(),
        );
        registry.register(
            "rpc_requests",
            "HTTP API requests, by route and status",
            m.rpc_requests.clone(),
        );
        registry.register(
            "rpc_request_seconds",
            "HTTP API request durations",
            m.rpc_seconds.clone(),
        );
        registry.register(
            "validator_missed_signatures",
            "Committed blocks whose commit lacks the signature of a validator of the set that signed them, by validator",
            m.validator_missed.clone(),
        );
        registry.register(
            "validator_connected",
            "1 if this node is connected to the validator's node, else 0 (a node that stops answering pings is disconnected)",
            m.validator_connected.clone(),
        );
        registry.register(
            "consensus_deciding_seconds",
            "How long the height being decided has run (0 while waiting for work)",
            m.deciding_seconds.clone(),
        );
        registry.register(
            "consensus_stalled",
            "1 while the chain looks stalled to this node (see /status: stalled names whom it misses), else 0",
            m.stalled.clone(),
        );
        registry.register(
            "wal_bytes",
            "Size of the consensus WAL",
            m.wal_bytes.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the store's files (blocks and state)",
            m.store_bytes.clone(),
        );
        registry.register(
            "store_memory_bytes",
            "Memory the store holds, by part: block_cache, memtables, table_readers (RocksDB's), tree_nodes (the state tree's node cache)",
            m.store_memory.clone(),
        );
        registry.register(
            "store_hot_keys",
            "Keys whose newest value the store keeps in memory",
            m.store_hot_keys.clone(),
        );
        registry.register(
            "store_level0_files",
            "The most files waiting at level 0 in any of the store's column families (RocksDB slows writes at 20, stops them at 36)",
            m.store_level0_files.clone(),
        );
        registry.register(
            "store_pending_compaction_bytes",
            "RocksDB's estimate of the bytes its compactions still have to rewrite",
            m.store_pending_compaction.clone(),
        );
        registry.register(
            "store_write_stalled",
            "1 while RocksDB slows or stops the store's writes because compactions fell behind",
            m.store_write_stalled.clone(),
        );
        registry.register(
            "store_tree_node_reads",
            "Nodes of the state tree that updates (of candidate blocks too) read, by where they found them: cache (the tree cache) or store (RocksDB: leaves, never cached, and nodes the cache lacks); a share from the store that grows says the tree has outgrown storage.tree_cache_mib",
            m.store_tree_reads.clone(),
        );
        registry.register(
            "store_block_write_seconds",
            "Time blocks' writes spent, by part: read_replaced (reading the values they replace), build (the rest of the batch), wal (RocksDB's log and its sync), memtable, delay (held back by compactions), write_other (the rest of RocksDB's write), publish (the store's caches)",
            m.store_block_write.clone(),
        );
        registry.register(
            "store_replaced_reads",
            "Values that blocks' writes replaced (or found absent), by where they were read: cache or store",
            m.store_replaced_reads.clone(),
        );
        // The process metrics carry the names every Prometheus dashboard knows.
        let mut m = Metrics { registry, ..m };
        let mut unprefixed = Registry::default();
        unprefixed.register(
            "process_resident_memory_bytes",
            "Resident memory of the node process",
            m.process_rss.clone(),
        );
        unprefixed.register(
            "process_cpu_seconds",
            "CPU time (user and system) of the node process",
            m.process_cpu.clone(),
        );
        unprefixed.register(
            "process_open_fds",
            "Open file descriptors of the node process",
            m.process_fds.clone(),
        );
        unprefixed.register(
            "process_start_time_seconds",
            "Start time of the node process, Unix seconds",
            m.process_start.clone(),
        );
        m.process = unprefixed;
        m
    }

    /// Reads the process's resident memory, CPU time and open files (Linux `/proc`; left
    /// unchanged elsewhere) and the sizes of the WAL and the store.
    pub fn observe_process(&self, wal: &std::path::Path, store: &std::path::Path) {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let rss_kb = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok());
            if let Some(kb) = rss_kb {
                self.process_rss.set(kb.saturating_mul(1024));
            }
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // After the command name (which may hold spaces) in parentheses: field 14
            // (utime) and 15 (stime) are the 12th and 13th, in clock ticks of 1/100 s
            // (USER_HZ, fixed by the kernel's ABI).
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                #[allow(clippy::cast_precision_loss)]
                let seconds = (user + system) as f64 / 100.0;
                let counted = self.process_cpu.get();
                if seconds > counted {
                    self.process_cpu.inc_by(seconds - counted);
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.process_fds
                .set(i64::try_from(fds.count()).unwrap_or(i64::MAX));
        }
        self.wal_bytes.set(size_of(wal));
        self.store_bytes.set(size_of(store));
    }

    /// Reads what the store holds in memory, by part.
    pub fn observe_store(&self, store: &acta_ledger::store::Store) {
        let m = store.memory();
        for (part, value) in [
            ("block_cache", m.block_cache),
            ("memtables", m.memtables),
            ("table_readers", m.table_readers),
            ("tree_nodes", m.tree_nodes),
        ] {
            self.store_memory
                .get_or_create(&vec![("part", part.to_string())])
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        self.store_hot_keys
            .set(i64::try_from(m.hot_keys).unwrap_or(i64::MAX));
        let c = store.compactions();
        self.store_level0_files
            .set(i64::try_from(c.level0_files_max).unwrap_or(i64::MAX));
        self.store_pending_compaction
            .set(i64::try_from(c.pending_bytes).unwrap_or(i64::MAX));
        self.store_write_stalled.set(i64::from(c.writes_stalled));
        let w = store.block_writes();
        #[allow(clippy::cast_precision_loss)]
        for (part, ns) in [
            ("read_replaced", w.read_replaced_ns),
            ("build", w.build_ns),
            ("wal", w.wal_ns),
            ("memtable", w.memtable_ns),
            ("delay", w.delay_ns),
            ("write_other", w.write_other_ns),
            ("publish", w.publish_ns),
        ] {
            let counter = self
                .store_block_write
                .get_or_create(&vec![("part", part.to_string())]);
            let seconds = ns as f64 / 1e9;
            let counted = counter.get();
            if seconds > counted {
                counter.inc_by(seconds - counted);
            }
        }
        let reads = store.tree_reads();
        for (family, cached, stored) in [
            (
                &self.store_replaced_reads,
                w.replaced_cached,
                w.replaced_stored,
            ),
            (&self.store_tree_reads, reads.cached, reads.stored),
        ] {
            for (from, total) in [("cache", cached), ("store", stored)] {
                let counter = family.get_or_create(&vec![("from", from.to_string())]);
                let counted = counter.get();
                if total > counted {
                    counter.inc_by(total - counted);
                }
            }
        }
    }

    /// Marks the process's start time (once, at start).
    pub fn started(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.process_start
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    pub fn validator_missed(&self, validator: &str) {
        self.validator_missed
            .get_or_create(&vec![("validator", validator.to_string())])
            .inc();
    }

    /// Drops the connection gauge of a validator that left the set, so that no alert
    /// fires for it.
    pub fn forget_validator(&self, validator: &str) {
        self.validator_connected
            .remove(&vec![("validator", validator.to_string())]);
    }

    pub fn validator_connected(&self, validator: &str, connected: bool) {
        self.validator_connected
            .get_or_create(&vec![("validator", validator.to_string())])
            .set(i64::from(connected));
    }

    /// Counts calls the mempool judged: `ran` that it ran, `kept` that a recheck kept
    /// without running.
    pub fn mempool_calls(&self, ran: u64, kept: u64) {
        for (how, n) in [("ran", ran), ("kept", kept)] {
            if n > 0 {
                self.mempool_calls
                    .get_or_create(&vec![("how", how.to_string())])
                    .inc_by(n);
            }
        }
    }

    pub fn mempool_refused(&self, reason: &str) {
        self.mempool_refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// Counts a proposal's block rebuilt from its transaction ids: with every transaction
    /// from the mempool, or some fetched from a peer.
    pub fn proposal_rebuilt(&self, fetched: bool) {
        let from = if fetched { "peer" } else { "mempool" };
        self.proposals_rebuilt
            .get_or_create(&vec![("from", from.to_string())])
            .inc();
    }

    /// Counts a committed transaction: accepted, or refused with `reason`.
    pub fn committed(&self, refused: Option<&str>) {
        let result = if refused.is_some() {
            "refused"
        } else {
            "accepted"
        };
        self.committed
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        if let Some(reason) = refused {
            self.ledger_refused
                .get_or_create(&vec![("reason", reason.to_string())])
                .inc();
        }
    }

    pub fn rpc_request(&self, route: &str, status: u16) {
        self.rpc_requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    /// The metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail. One exposition: the process metrics go before
        // the registry's, which ends with `# EOF`.
        let mut process = String::new();
        let _ = encode(&mut process, &self.process);
        out.push_str(process.trim_end().trim_end_matches("# EOF").trim_end());
        out.push('\n');
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The bytes of the files under `path` (a file or a folder), 0 if it cannot be read.
fn size_of(path: &std::path::Path) -> i64 {
    fn walk(path: &std::path::Path) -> u64 {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    i64::try_from(walk(path)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_prefix() {
        let m = Metrics::new();
        m.height.set(7);
        m.mempool_refused("bad_nonce");
        m.committed(Some("fork"));
        m.rpc_request("/status", 200);
        let text = m.render();
        for needle in [
            "acta_height 7",
            "acta_mempool_refused_total{reason=\"bad_nonce\"} 1",
            "acta_txs_committed_total{result=\"refused\"} 1",
            "acta_ledger_refused_total{reason=\"fork\"} 1",
            "acta_rpc_requests_total{route=\"/status\",status=\"200\"} 1",
            "acta_block_interval_seconds_bucket",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
