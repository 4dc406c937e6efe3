//! acta-contracts: the deterministic state transitions of Acta's city records.
//!
//! It will hold the executor (one `Call` enum over all modules, checked for signature, chain
//! id and nonce before anything else) and the modules: identity (DIDs and their keys),
//! credentials, sensors and attestations, participatory budgets with their tally rules
//! (greedy and Method of Equal Shares, in exact rational arithmetic), and governance.
//!
//! Invariants: no I/O, clocks, randomness or floats; iteration only over ordered
//! collections; checked arithmetic. Two honest nodes given the same blocks reach the same
//! state root.
//!
//! Not built yet: this crate is a placeholder until the record modules land.
