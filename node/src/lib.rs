//! acta-node: the validator node `actad`.
//!
//! [`driver::Driver`] makes the node's decisions around the consensus core without I/O
//! (when heights start, candidate blocks, timeouts, evidence, block sync), so that the
//! simulator in acta-testnet runs the same code. [`node::Node`] is the actor that carries
//! them out with tokio timers and libp2p networking ([`p2p`]), keeps the consensus write-ahead log ([`wal`]), the mempool ([`mempool`])
//! and the RocksDB store, executes blocks with `acta-contracts` before voting on them, and
//! catches up from peers by fetching blocks and commits. [`rpc`] serves a small HTTP JSON
//! API (status, transaction submission, blocks, raw state values). [`config`], [`genesis`]
//! and [`keys`] read the node's home folder; [`devnet`] starts local networks of `actad`
//! processes for tests and demos.

#![recursion_limit = "512"]

pub mod app;
pub mod checks;
pub mod config;
pub mod devnet;
pub mod driver;
pub mod genesis;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod rebuild;
pub mod rpc;
pub mod signed;
pub mod snapshot;
pub mod statesync;
pub mod stdout;
#[cfg(test)]
mod test_chain;
pub mod wal;
