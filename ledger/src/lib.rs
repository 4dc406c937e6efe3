//! acta-ledger: Acta's canonical types, their proofs, the light client and durable storage.
//!
//! Everything that validators sign and auditors check is defined here, borsh-encoded and
//! frozen by golden encodings (`tests/golden.rs`): a change to a format is always deliberate.
//!
//! - [`codec`]: decoding with size limits checked before allocation.
//! - [`crypto`]: Ed25519 with a domain tag and the chain id in every signed message, and
//!   batch verification that accepts exactly what single verification accepts.
//! - [`merkle`]: the RFC 9162 Merkle tree for every list commitment (transactions,
//!   attestation batches, validator sets, evidence), with inclusion and consistency proofs.
//! - [`tx`], [`block`], [`vote`], [`validator`]: transactions, headers and blocks, votes,
//!   commit certificates, evidence and validator sets.
//! - [`receipt`]: what each transaction of a block did, with frozen refusal codes; the
//!   leaves of a header's `results_root`.
//! - [`state`]: the authenticated state, a Jellyfish Merkle Tree versioned by height, behind
//!   the small [`state::AuthenticatedState`] trait.
//! - [`store`]: the RocksDB store, where a block, its commit, its state and its index land in
//!   one synced write.
//! - [`bundle`]: proof bundles that an auditor verifies offline against the genesis.
//! - [`snapshot`]: the state at a committed height in chunks that each prove themselves,
//!   with a manifest verified from the genesis, for state sync and backups.
//! - [`keystore`]: Ed25519 seeds and other secrets encrypted at rest (Argon2id,
//!   XChaCha20-Poly1305): the wallet's keys and a validator's consensus key.
//! - [`light`]: checking commits against validator sets and following headers across
//!   validator-set changes.
//!
//! Invariants: nothing decoded from outside can panic or allocate beyond what its length
//! justifies; every signature covers a domain tag and the chain id; a store never holds part
//! of a block.

pub mod block;
pub mod blocklog;
pub mod bundle;
pub mod checkpoint;
pub mod codec;
pub mod crypto;
mod error;
pub mod hash;
pub mod keystore;
pub mod light;
pub mod merkle;
pub mod receipt;
pub mod records;
#[cfg(feature = "openapi")]
mod schema;
#[cfg(feature = "store")]
mod single_delete;
pub mod snapshot;
pub mod state;
#[cfg(feature = "store")]
pub mod store;
pub mod testing;
pub mod token;
mod tree;
pub mod tx;
pub mod types;
pub mod validator;
pub mod vote;

pub use block::{Block, Header};
pub use crypto::{Domain, Keypair, PublicKey, Signature, SignatureBatch};
pub use error::{Error, Result};
pub use hash::Hash;
pub use receipt::{Event, Outcome, Receipt, RefusalCode};
pub use tx::{Call, Did, Transaction};
pub use types::{ChainId, Height, Round, Timestamp, ValidatorIndex, VotingPower};
pub use validator::{Validator, ValidatorSet};
pub use vote::{Commit, CommitSig, Evidence, Proposal, SignedProposal, SignedVote, Vote, VoteKind};
