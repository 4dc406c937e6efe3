//! acta-testnet: simulation and local networks of Acta validators.
//!
//! - [`sim`]: the deterministic simulator: many consensus cores on a virtual clock over a
//!   seeded, faulty network, with crashes, partitions and Byzantine validators, and a checker
//!   of agreement, validity, commit certificates, double-signing and progress.
//! - [`sweep`]: runs many seeds of the simulator on several threads and summarises them, for
//!   `acta-testnet sim` and the test suite.
//!
//! Still to come: local multi-process networks, chaos scenarios and the load generator.

pub mod sim;
pub mod sweep;
