//! Why a transaction is refused.

use acta_ledger::{Did, Height};

/// A refusal: the transaction changes nothing. Messages name the values that matter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("bad signature or wrong chain: {0}")]
    BadSignature(String),
    #[error("nonce {got} refused: the signer's next nonce is {expected}")]
    BadNonce { expected: u64, got: u64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{did} is deactivated")]
    Deactivated { did: Did },
    #[error("not authorised: {0}")]
    Unauthorized(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("a limit is reached: {0}")]
    Limit(String),
    #[error("wrong phase: {0}")]
    WrongPhase(String),
    #[error("sequence gap: the device's next batch is {expected}, not {got}")]
    SequenceGap { expected: u64, got: u64 },
    #[error("fork refused: {0}")]
    Fork(String),
}

impl TxError {
    /// A stable machine-readable code for receipts and the API.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature(_) => "bad_signature",
            TxError::BadNonce { .. } => "bad_nonce",
            TxError::NotFound(_) => "not_found",
            TxError::AlreadyExists(_) => "already_exists",
            TxError::Deactivated { .. } => "deactivated",
            TxError::Unauthorized(_) => "unauthorized",
            TxError::Invalid(_) => "invalid",
            TxError::Limit(_) => "limit",
            TxError::WrongPhase(_) => "wrong_phase",
            TxError::SequenceGap { .. } => "sequence_gap",
            TxError::Fork(_) => "fork",
        }
    }
}

/// A failure of the executor itself (the state could not be read or holds bytes that do not
/// decode): not the transaction's fault, and fatal to the block.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("state at height {height}: {source}")]
    State {
        height: Height,
        source: acta_ledger::Error,
    },
    #[error("stored {what} does not decode: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// The result of a call: a refusal, or a failure of the executor.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Refused(#[from] TxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}
