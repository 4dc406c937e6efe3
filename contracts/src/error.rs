//! Why a transaction is refused.

use acta_ledger::{Did, Hash, Height, RefusalCode};

/// A refusal of a transaction's call: the call changes nothing, and the transaction uses up
/// its signer's nonce. Messages name the values that matter; only the [`RefusalCode`] is
/// consensus data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
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
    #[error("the approval does not match the proposal's action: {0}")]
    ActionMismatch(String),
    #[error("unknown parameter {0:?}")]
    UnknownParameter(String),
    #[error("out of range: {0}")]
    OutOfRange(String),
}

impl TxError {
    /// The refusal's frozen code, for receipts and the API.
    pub fn code(&self) -> RefusalCode {
        match self {
            TxError::NotFound(_) => RefusalCode::NotFound,
            TxError::AlreadyExists(_) => RefusalCode::AlreadyExists,
            TxError::Deactivated { .. } => RefusalCode::Deactivated,
            TxError::Unauthorized(_) => RefusalCode::Unauthorized,
            TxError::Invalid(_) => RefusalCode::Invalid,
            TxError::Limit(_) => RefusalCode::Limit,
            TxError::WrongPhase(_) => RefusalCode::WrongPhase,
            TxError::SequenceGap { .. } => RefusalCode::SequenceGap,
            TxError::Fork(_) => RefusalCode::Fork,
            TxError::ActionMismatch(_) => RefusalCode::ActionMismatch,
            TxError::UnknownParameter(_) => RefusalCode::UnknownParameter,
            TxError::OutOfRange(_) => RefusalCode::OutOfRange,
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
    /// The block may not be executed at all: a transaction's signature or chain id does not
    /// hold, or its nonce is not its signer's next one. Every transaction a block includes
    /// uses up its nonce, so a block may only include transactions that can; a proposer
    /// that breaks this rule proposes an invalid block.
    #[error("transaction {index} ({id}) may not be in the block: {reason}")]
    InvalidTx {
        index: u32,
        id: Hash,
        reason: String,
    },
}

/// The result of a call: a refusal, or a failure of the executor.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Refused(#[from] TxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}
