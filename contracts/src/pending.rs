//! What a mempool knows of the state: the latest committed state with the calls of the
//! transactions waiting in the pool applied on top, in the pool's order.
//!
//! A node checks each arriving transaction's call here, as the executor would run it in the
//! next block, and refuses it if the executor would refuse it: the sender gets the refusal
//! as an error, and no block spends a place on it. A transaction that calls on another one
//! still waiting (an approval of a proposal in the pool, a ballot in a round opened by a
//! pooled transaction) sees that one's effects. After each committed block the node starts
//! again from the new state and checks the pool's transactions once more, in order
//! ([`PendingState::new`], then [`PendingState::check`] for each), dropping those the new
//! state refuses.
//!
//! This is advice, not consensus: validators' pools differ, and a block holding a call the
//! executor refuses is still valid (the refusal is its receipt). A transaction refused here
//! was never in a block, so its nonce stays unused; its `valid_until` is what ends its
//! signed bytes' life (docs/adr/0017-mempool-checks-calls.md).

use acta_ledger::{state::AuthenticatedState, Height, RefusalCode, Transaction};

use crate::{
    error::{CallError, ExecError},
    executor::{apply, BlockContext, NS_NONCE},
    view::{Decoded, Reads, StateView, Writes},
};

/// The most state values kept from earlier reads; past it the cache starts empty again.
const READ_CACHE_MAX: usize = 65_536;

/// The effects of the pool's transactions on the state after one committed height.
#[derive(Debug, Default)]
pub struct PendingState {
    base: Height,
    /// Values read from the committed state (so that checking a pool reads each key from
    /// storage once).
    read: Reads,
    /// Records decoded from `read` or `writes` (dropped with `read`).
    decoded: Decoded,
    /// What the pool's accepted calls wrote: each key's last write.
    writes: Writes,
}

/// Why a call was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The executor would refuse the call against the state with the pool applied.
    #[error("{message}")]
    Refused { code: RefusalCode, message: String },
    /// The node could not read the state.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl PendingState {
    /// Nothing pending on top of the state after `base`.
    pub fn new(base: Height) -> Self {
        PendingState {
            base,
            read: Reads::default(),
            decoded: Decoded::default(),
            writes: Writes::default(),
        }
    }

    /// The committed height this starts from.
    pub fn base(&self) -> Height {
        self.base
    }

    /// Runs the call of `tx` (whose signature, time limit and nonce the pool checked) as
    /// the executor would in a block `ctx` at the next height, on the state after
    /// [`PendingState::base`] with the pool's earlier calls applied. An accepted call's
    /// writes are kept, with the nonce it uses up; a refused call changes nothing.
    pub fn check(
        &mut self,
        state: &dyn AuthenticatedState,
        ctx: &BlockContext,
        tx: &Transaction,
    ) -> Result<(), CheckError> {
        let read = std::mem::take(&mut self.read);
        let decoded = std::mem::take(&mut self.decoded);
        let writes = std::mem::take(&mut self.writes);
        let mut view = StateView::resume(state, self.base, read, decoded, writes);
        let result = match apply(&mut view, ctx, tx) {
            Ok(_) => {
                view.put(NS_NONCE, &tx.signer.0, &tx.nonce.saturating_add(1));
                view.commit_tx();
                Ok(())
            }
            Err(CallError::Refused(e)) => {
                view.rollback_tx();
                Err(CheckError::Refused {
                    code: e.code(),
                    message: e.to_string(),
                })
            }
            Err(CallError::Exec(e)) => Err(CheckError::Exec(e)),
        };
        (self.read, self.decoded, self.writes) = view.into_parts();
        if self.read.len() > READ_CACHE_MAX || self.decoded.len() > READ_CACHE_MAX {
            // Refused calls leave their reads behind; the values of the committed state
            // can always be read (and decoded) again.
            self.read.clear();
            self.decoded.clear();
        }
        result
    }
}
