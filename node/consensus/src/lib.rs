//! acta-consensus: stake-weighted Tendermint as a pure state machine.
//!
//! [`Core`] implements Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
//! Milosevic, arXiv:1807.04938) as `on(input) -> Vec<Output>`. Inputs are messages,
//! timeouts, the application's answers (a block to propose, a verdict on a block) and the
//! start of each height with its validators; outputs are persist, broadcast, schedule
//! timeout, get a value, check a block, decide and evidence. There is no I/O, no clock and no
//! randomness in here: the node drives the core with tokio and libp2p, the simulator with a
//! virtual clock and a seeded network.
//!
//! - Quorums are more than two thirds of voting power, and more than a third moves a
//!   validator to a later round; never counts of validators.
//! - Proposers follow CometBFT's weighted round-robin ([`ProposerSchedule`]).
//! - Two different votes of one kind, or two different proposals, from one validator in one
//!   round become [`acta_ledger::Evidence`] that anyone can verify.
//! - Write-ahead log contract: every message the core signs is first output as
//!   [`Output::Persist`], and must be durable before any later output is carried out; so
//!   are the prevotes that justify a lock. A core restarted with those messages
//!   (`Input::StartHeight { wal, .. }`) resumes its round, its lock and its proof of lock,
//!   and never signs a different message for a slot it signed.

mod config;
mod message;
mod proposer;
mod state;
mod votes;

pub use config::Config;
pub use message::{Input, Message, Output, Timeout, TimeoutStep};
pub use proposer::ProposerSchedule;
pub use state::{Core, Step};
