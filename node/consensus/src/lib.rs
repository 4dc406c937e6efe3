//! acta-consensus: stake-weighted Tendermint as a pure state machine.
//!
//! It will implement Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
//! Milosevic, arXiv:1807.04938) as `on(input) -> Vec<Output>`: inputs are proposals, votes,
//! timeouts and "block checked" answers; outputs are persist, broadcast, schedule timeout,
//! decide and evidence. Time, randomness and validator sets are inputs.
//!
//! Invariants: no tokio, libp2p, RocksDB, clocks or randomness; everything the node signs is
//! handed out for persisting before it may be sent.
//!
//! Not built yet: this crate is a placeholder until the consensus core lands.
