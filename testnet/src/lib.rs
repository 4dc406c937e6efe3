//! acta-testnet: simulation and local networks of Acta validators.
//!
//! It will hold the deterministic simulator (many consensus cores, a virtual clock and a
//! seeded faulty network), local multi-process networks, chaos scenarios and the load
//! generator behind `acta-testnet bench`.
//!
//! Not built yet: this crate is a placeholder.
