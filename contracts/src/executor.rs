//! The executor: turns a block's transactions into state changes and receipts.
//!
//! First the block's evidence and the budget rounds that close at its height; then, for
//! every transaction, in order: the signature and chain id (checked for the whole block
//! in one batch), then the signer's nonce (exactly the next one), then the call. A refused
//! transaction leaves the state exactly as it was, its nonce included; an accepted one bumps
//! its signer's nonce.

use acta_ledger::{
    state::{AuthenticatedState, StateChanges},
    vote::Evidence,
    Call, ChainId, Hash, Height, PublicKey, Timestamp, Transaction,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    budget, credential,
    error::{CallError, ExecError, TxError},
    governance, identity, sensor, staking,
    view::StateView,
};

/// Namespace of the next nonce of each signing key (key: the public key's 32 bytes).
pub const NS_NONCE: &str = "nonce";

/// What a block's execution may know about the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub chain_id: ChainId,
    pub height: Height,
    pub time: Timestamp,
    pub proposer: PublicKey,
}

/// Something a call did, for receipts and subscribers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    pub attributes: Vec<(String, String)>,
}

impl Event {
    pub fn new(kind: &str, attributes: &[(&str, String)]) -> Event {
        Event {
            kind: kind.to_string(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Accepted { events: Vec<Event> },
    Refused { code: String, message: String },
}

/// A transaction's id and outcome.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx: Hash,
    pub outcome: Outcome,
}

impl Receipt {
    pub fn is_accepted(&self) -> bool {
        matches!(self.outcome, Outcome::Accepted { .. })
    }
}

/// What executing a block produced.
#[derive(Debug)]
pub struct BlockOutcome {
    pub changes: StateChanges,
    pub receipts: Vec<Receipt>,
    /// What the block did before its transactions: evidence punished or ignored, budget
    /// rounds tallied.
    pub events: Vec<Event>,
}

/// What a block did, as the node stores it beside the block: the receipt of every
/// transaction, in order, and the events of the block's start (evidence, tallies).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockResults {
    pub receipts: Vec<Receipt>,
    pub events: Vec<Event>,
}

impl BlockResults {
    /// The bytes of each receipt: the leaves of the header's `results_root`.
    pub fn receipt_leaves(receipts: &[Receipt]) -> Vec<Vec<u8>> {
        receipts.iter().map(acta_ledger::codec::encode).collect()
    }

    /// The header's `results_root` for these receipts.
    pub fn results_root(receipts: &[Receipt]) -> Hash {
        acta_ledger::Block::results_root(&Self::receipt_leaves(receipts))
    }

    pub fn encode(&self) -> Vec<u8> {
        acta_ledger::codec::encode(self)
    }

    /// Decodes stored results (at most the size of a block).
    pub fn decode(bytes: &[u8]) -> Result<BlockResults, acta_ledger::Error> {
        acta_ledger::codec::decode("block results", bytes, acta_ledger::block::BLOCK_BYTES_MAX)
    }
}

impl BlockOutcome {
    /// What the block did, to store beside it (once its changes are applied).
    pub fn into_results(self) -> BlockResults {
        BlockResults {
            receipts: self.receipts,
            events: self.events,
        }
    }
}

/// Executes a block on the state after height `ctx.height - 1`: first its evidence (see
/// [`staking`]) and the tallies of budget rounds closing at this height, then its
/// transactions in order.
pub fn execute_block(
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    txs: &[Transaction],
    evidence: &[Evidence],
) -> Result<BlockOutcome, ExecError> {
    execute_block_with(state, ctx, txs, evidence, &|_| false)
}

/// [`execute_block`], skipping the signature check of the transactions whose id
/// `verified` vouches for: their signature was already verified for `ctx.chain_id` (a
/// node's mempool admits only such transactions). The id is the hash of the whole
/// encoding, signature and chain id included, so a vouched-for id cannot name a
/// transaction whose signature does not hold. The outcome is the same either way.
pub fn execute_block_with(
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    txs: &[Transaction],
    evidence: &[Evidence],
    verified: &dyn Fn(&Hash) -> bool,
) -> Result<BlockOutcome, ExecError> {
    let base = Height(
        ctx.height
            .0
            .checked_sub(1)
            .expect("blocks start at height 1"),
    );
    let mut view = StateView::new(state, base);
    let mut events = Vec::new();
    staking::punish(&mut view, state, ctx, evidence, &mut events)?;
    budget::close_due(&mut view, ctx, &mut events)?;
    view.commit_tx();
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let vouched: Vec<bool> = ids.iter().map(verified).collect();
    let unverified: Vec<&Transaction> = txs
        .iter()
        .zip(&vouched)
        .filter(|(_, v)| !**v)
        .map(|(tx, _)| tx)
        .collect();
    let mut checked = Transaction::verify_batch(&unverified, &ctx.chain_id).into_iter();
    let mut receipts = Vec::with_capacity(txs.len());
    for ((tx, id), vouched) in txs.iter().zip(ids).zip(vouched) {
        let signature = if vouched {
            Ok(())
        } else {
            checked.next().unwrap_or_else(|| {
                Err(acta_ledger::Error::Invalid {
                    what: "signature",
                    reason: "not checked".into(),
                })
            })
        };
        let result = match signature {
            Err(e) => Err(CallError::Refused(TxError::BadSignature(e.to_string()))),
            Ok(()) => apply(&mut view, ctx, tx),
        };
        let outcome = match result {
            Ok(events) => {
                view.commit_tx();
                Outcome::Accepted { events }
            }
            Err(CallError::Refused(e)) => {
                view.rollback_tx();
                Outcome::Refused {
                    code: e.code().to_string(),
                    message: e.to_string(),
                }
            }
            Err(CallError::Exec(e)) => return Err(e),
        };
        receipts.push(Receipt { tx: id, outcome });
    }
    Ok(BlockOutcome {
        changes: view.into_changes(),
        receipts,
        events,
    })
}

/// The next nonce of `key` in `view`.
pub fn next_nonce(view: &StateView<'_>, key: &PublicKey) -> Result<u64, ExecError> {
    Ok(view.get::<u64>(NS_NONCE, &key.0)?.unwrap_or(0))
}

/// Checks the nonce and runs the call of a transaction whose signature is verified.
fn apply(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    tx: &Transaction,
) -> Result<Vec<Event>, CallError> {
    let expected = next_nonce(view, &tx.signer)?;
    if tx.nonce != expected {
        return Err(TxError::BadNonce {
            expected,
            got: tx.nonce,
        }
        .into());
    }
    let events = match &tx.call {
        Call::Identity(call) => identity::execute(view, ctx, &tx.signer, call)?,
        Call::Credential(call) => credential::execute(view, ctx, &tx.signer, call)?,
        Call::Governance(call) => governance::execute(view, ctx, &tx.signer, call)?,
        Call::Sensor(call) => sensor::execute(view, ctx, &tx.signer, call)?,
        Call::Budget(call) => budget::execute(view, ctx, &tx.signer, call)?,
    };
    let next = expected
        .checked_add(1)
        .ok_or_else(|| TxError::Limit("nonce space exhausted".into()))?;
    view.put(NS_NONCE, &tx.signer.0, &next);
    Ok(events)
}
