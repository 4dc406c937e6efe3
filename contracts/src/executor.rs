//! The executor: turns a block's transactions into state changes and receipts.
//!
//! First the block's evidence and the budget rounds that close at its height; then, for
//! every transaction, in order: the signature and chain id (checked for the whole block
//! in one batch), then its time limit (`valid_until` not before the block's time), then
//! the signer's nonce (exactly the next one), then the call.
//!
//! A transaction is final once it is in a block. A block may only hold transactions whose
//! signature holds, whose time limit has not passed and whose nonce is their signer's next
//! one; otherwise the block itself is invalid ([`ExecError::InvalidTx`]) and validators
//! prevote nil. Each included
//! transaction uses up its nonce whether its call is accepted or refused, so a refused
//! transaction can never be replayed later, and an id is committed at most once in the
//! chain's life. A refused call leaves the state exactly as it was, except for that nonce.

use acta_ledger::{
    state::{AuthenticatedState, StateChanges},
    vote::Evidence,
    Call, ChainId, Hash, Height, PublicKey, Timestamp, Transaction,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use acta_ledger::receipt::{Event, Outcome, Receipt, RefusalCode};

use crate::{
    budget, credential,
    error::{CallError, ExecError},
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

/// Why the transaction at `index` of a block was refused, in words. Kept beside the block
/// for people; never hashed, so its wording may change without forking the chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusalMessage {
    pub index: u32,
    pub message: String,
}

/// What executing a block produced.
#[derive(Debug)]
pub struct BlockOutcome {
    pub changes: StateChanges,
    pub receipts: Vec<Receipt>,
    /// The words behind each refusal in `receipts`.
    pub messages: Vec<RefusalMessage>,
    /// What the block did before its transactions: evidence punished or ignored, budget
    /// rounds tallied.
    pub events: Vec<Event>,
}

/// What a block did, as the node stores it beside the block: the receipt of every
/// transaction, in order (the leaves of `results_root`), the events of the block's start
/// (evidence, tallies), and the words behind each refusal (not hashed).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockResults {
    pub receipts: Vec<Receipt>,
    pub events: Vec<Event>,
    pub messages: Vec<RefusalMessage>,
}

impl BlockResults {
    /// The header's `results_root` for these receipts.
    pub fn results_root(receipts: &[Receipt]) -> Hash {
        Receipt::results_root(receipts)
    }

    /// The words behind the refusal of transaction `index`, if it was refused.
    pub fn message(&self, index: u32) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.index == index)
            .map(|m| m.message.as_str())
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
            messages: self.messages,
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
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    execute_block_with(state, ctx, txs, &ids, evidence, &|_| false)
}

/// [`execute_block`], skipping the signature check of the transactions whose id
/// `verified` vouches for: their signature was already verified for `ctx.chain_id` (a
/// node's mempool admits only such transactions). The id is the hash of the whole
/// encoding, signature and chain id included, so a vouched-for id cannot name a
/// transaction whose signature does not hold. The outcome is the same either way.
///
/// `ids` are the transactions' ids in order (`ids[i] == txs[i].id()`), computed once by
/// the caller (`Block::checked_ids`, or a mempool's) rather than again here; a list of
/// another length is not used and the ids are computed.
pub fn execute_block_with(
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    txs: &[Transaction],
    ids: &[Hash],
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
    budget::close_due(&mut view, state, ctx, &mut events)?;
    view.commit_tx();
    let computed: Vec<Hash>;
    let ids = if ids.len() == txs.len() {
        ids
    } else {
        computed = txs.iter().map(Transaction::id).collect();
        &computed
    };
    let vouched: Vec<bool> = ids.iter().map(verified).collect();
    let unverified: Vec<&Transaction> = txs
        .iter()
        .zip(&vouched)
        .filter(|(_, v)| !**v)
        .map(|(tx, _)| tx)
        .collect();
    let mut checked = Transaction::verify_batch(&unverified, &ctx.chain_id).into_iter();
    let mut receipts = Vec::with_capacity(txs.len());
    let mut messages = Vec::new();
    for (index, ((tx, &id), vouched)) in txs.iter().zip(ids).zip(vouched).enumerate() {
        let index = u32::try_from(index).expect("a block holds fewer than 2^32 transactions");
        let invalid = |reason: String| ExecError::InvalidTx { index, id, reason };
        if !vouched {
            let signature = checked
                .next()
                .expect("one verification result per unvouched transaction");
            signature.map_err(|e| invalid(e.to_string()))?;
        }
        if !tx.is_live_at(ctx.time) {
            return Err(invalid(format!(
                "valid until {}, the block's time is {}",
                tx.valid_until, ctx.time
            )));
        }
        let expected = next_nonce(&view, &tx.signer)?;
        if tx.nonce != expected {
            return Err(invalid(format!(
                "nonce {} of {} is not its next nonce {expected}",
                tx.nonce, tx.signer
            )));
        }
        let next = expected
            .checked_add(1)
            .ok_or_else(|| invalid(format!("{} has used up its nonces", tx.signer)))?;
        let outcome = match apply(&mut view, ctx, tx) {
            Ok(events) => Outcome::Accepted { events },
            Err(CallError::Refused(e)) => {
                view.rollback_tx();
                messages.push(RefusalMessage {
                    index,
                    message: e.to_string(),
                });
                Outcome::Refused { code: e.code() }
            }
            Err(CallError::Exec(e)) => return Err(e),
        };
        // Accepted or refused, the transaction is final: its nonce is used up.
        view.put(NS_NONCE, &tx.signer.0, &next);
        view.commit_tx();
        receipts.push(Receipt { tx: id, outcome });
    }
    staking::record_history(&mut view, state, base, ctx.height)?;
    view.commit_tx();
    Ok(BlockOutcome {
        changes: view.into_changes(),
        receipts,
        messages,
        events,
    })
}

/// The next nonce of `key` in `view`.
pub fn next_nonce(view: &StateView<'_>, key: &PublicKey) -> Result<u64, ExecError> {
    Ok(view.get::<u64>(NS_NONCE, &key.0)?.unwrap_or(0))
}

/// Runs the call of a transaction whose signature and nonce are checked.
pub(crate) fn apply(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    tx: &Transaction,
) -> Result<Vec<Event>, CallError> {
    match &tx.call {
        Call::Identity(call) => identity::execute(view, ctx, &tx.signer, call),
        Call::Credential(call) => credential::execute(view, ctx, &tx.signer, call),
        Call::Governance(call) => governance::execute(view, ctx, &tx.signer, call),
        Call::Sensor(call) => sensor::execute(view, ctx, &tx.signer, call),
        Call::Budget(call) => budget::execute(view, ctx, &tx.signer, call),
    }
}
