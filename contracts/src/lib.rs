//! acta-contracts: the deterministic state transitions of Acta's city records.
//!
//! [`executor::execute_block`] turns a block's transactions into state changes and receipts:
//! for each transaction it checks the signature and chain id (in one batch for the block),
//! then the signer's nonce (exactly the next one), then runs the call. A block holding a
//! transaction that fails either check is invalid; every transaction a block holds uses up
//! its nonce, and a refused call changes nothing else. The modules:
//! - [`identity`]: DIDs, documents, key rotation with pre-commitment, deactivation, and W3C
//!   DID resolution at any height.
//! - [`governance`]: the council's m-of-n proposals and approvals: issuers and parameters.
//! - [`params`]: the typed registry of chain parameters the council may set.
//! - [`credential`]: anchored credentials of registered issuers, with status at any height.
//! - [`sensor`]: devices of credentialed operators and their chains of attested batches.
//! - [`budget`]: participatory budget rounds, proposals, ballots and the tally after close,
//!   with the rules in [`tally`] (greedy and the Method of Equal Shares with Add1
//!   completions, in exact arithmetic; also for `.pb` files off the ledger).
//! - [`tallying`]: a closed round's tally computed on a thread of its own, ahead of the
//!   block that stores it; only a memo of a pure function, so the outcome is the same
//!   whether that block finds it ready or computes it.
//! - [`pending`]: what a mempool checks a call against: the latest state with the pool's
//!   calls applied, so that a call the executor would refuse is refused on arrival.
//! - [`vc`]: W3C Verifiable Credentials 2.0 with `eddsa-jcs-2022` proofs, and the documents
//!   of Acta credentials checked field by field against their records.
//! - [`staking`]: validator changes from the council (two heights later), and slashing and
//!   jailing on verified equivocation evidence.
//!
//! Invariants: no I/O, clocks, randomness or floats; iteration only over ordered
//! collections; checked arithmetic (the threads of [`tallying`] compute what execution
//! would, and never decide anything). Two honest nodes given the same blocks reach the same
//! state root.

pub mod answer;
pub mod audit;
pub mod budget;
pub mod credential;
pub mod error;
pub mod executor;
pub mod genesis;
pub mod governance;
pub mod identity;
pub mod params;
pub mod pending;
pub mod sensor;
pub mod staking;
pub mod tally;
pub mod tallying;
pub mod vc;
pub mod view;

pub use error::{CallError, ExecError, TxError};
pub use executor::{
    execute_block, execute_block_with, BlockContext, BlockOutcome, BlockResults, Event, Outcome,
    Receipt, RefusalCode, RefusalMessage,
};
