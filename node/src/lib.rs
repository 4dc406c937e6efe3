//! acta-node: the validator node `actad`.
//!
//! It will drive the consensus core with tokio timers and libp2p networking, keep the
//! mempool, the consensus write-ahead log and the RocksDB store, sync blocks from peers, and
//! serve the HTTP JSON API with proofs and Prometheus metrics.
//!
//! Not built yet: this crate is a placeholder until the node lands.
