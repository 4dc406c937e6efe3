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
    pub height: Gauge,
    pub consensus_round: Gauge,
    pub rounds: Counter,
    pub blocks: Counter,
    pub block_interval: Histogram,
    pub commit_seconds: Histogram,
    pub block_txs: Histogram,
    pub mempool_txs: Gauge,
    pub peers: Gauge,
    /// The latest committed block's time, in Unix seconds.
    pub last_block_time: Gauge,
    /// Committed blocks whose commit lacks this validator's signature.
    pub missed_signatures: Counter,
    pub mempool_accepted: Counter,
    mempool_refused: Family<Labels, Counter>,
    committed: Family<Labels, Counter>,
    ledger_refused: Family<Labels, Counter>,
    rpc_requests: Family<Labels, Counter>,
    pub rpc_seconds: Histogram,
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
            height: Gauge::default(),
            consensus_round: Gauge::default(),
            rounds: Counter::default(),
            blocks: Counter::default(),
            block_interval: seconds_histogram(),
            commit_seconds: seconds_histogram(),
            block_txs: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            mempool_txs: Gauge::default(),
            peers: Gauge::default(),
            last_block_time: Gauge::default(),
            missed_signatures: Counter::default(),
            mempool_accepted: Counter::default(),
            mempool_refused: Family::default(),
            committed: Family::default(),
            ledger_refused: Family::default(),
            rpc_requests: Family::default(),
            rpc_seconds: seconds_histogram(),
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
        Metrics { registry, ..m }
    }

    pub fn mempool_refused(&self, reason: &str) {
        self.mempool_refused
            .get_or_create(&vec![("reason", reason.to_string())])
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
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
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
