//! acta-testnet: simulation and local networks of Acta validators.
//!
//! - [`sim`]: the deterministic simulator: many consensus cores on a virtual clock over a
//!   seeded, faulty network, with crashes, partitions and Byzantine validators, and a checker
//!   of agreement, validity, commit certificates, double-signing and progress.
//! - [`sweep`]: runs many seeds of the simulator on several threads and summarises them, for
//!   `acta-testnet sim` and the test suite.
//!
//! - [`demo`]: `acta-testnet demo`, a small city played on a local network.
//! - [`chaos`]: `acta-testnet chaos`, faults injected into a local network under load, and
//!   the checks that nothing acknowledged was lost and that the nodes agree.
//! - [`local`]: `acta-testnet init|up|down|status|logs`, a local network that outlives the
//!   command.
//!
//! - [`bench`]: `acta-testnet bench`, a load generator with pre-signed transactions of the
//!   city's kinds, and its measurements; [`chart`] draws them as SVG.
//! - [`idle`]: `acta-testnet idle`, what an idle network costs in blocks, disk and CPU.

pub mod bench;
pub mod chaos;
pub mod chart;
pub mod demo;
pub mod idle;
pub mod local;
pub mod sim;
pub mod sweep;
