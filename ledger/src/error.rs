//! The ledger's one error type.

use crate::types::Height;

/// Everything that can go wrong in the ledger crate. Variants for bad outside input (a decode
/// or verification failure) carry the values that matter; storage failures are fatal to the
/// caller that writes, but reads report them as values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("{what} is {len} bytes, more than the maximum {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("bad signature by {signer}")]
    BadSignature { signer: String },
    #[error("wrong chain id: expected {expected}, got {got}")]
    WrongChainId { expected: String, got: String },
    #[error("merkle proof: {0}")]
    Proof(String),
    #[error("state tree: {0}")]
    State(String),
    #[error("commit: {0}")]
    Commit(String),
    #[error("light client: {0}")]
    LightClient(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("height {0} not found")]
    HeightNotFound(Height),
    /// The state at `height` was pruned: the store keeps the state of `oldest` and later.
    #[error("the state at height {height} is pruned: this node keeps the state of height {oldest} and later")]
    Pruned { height: Height, oldest: Height },
}

/// The ledger's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

#[cfg(feature = "store")]
impl From<rocksdb::Error> for Error {
    fn from(e: rocksdb::Error) -> Self {
        Error::Storage(e.into_string())
    }
}
