//! The state as a block's transactions see it: the tree at the previous height, the
//! writes of earlier transactions of the block, and the current transaction's writes, which
//! are dropped if it is refused.

use acta_ledger::{
    state::{state_key, AuthenticatedState, StateChanges},
    Hash, Height,
};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::ExecError;

/// A layered view of the state for executing one block.
pub struct StateView<'a> {
    base: &'a dyn AuthenticatedState,
    base_height: Height,
    block: StateChanges,
    tx: StateChanges,
}

impl std::fmt::Debug for StateView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("base_height", &self.base_height)
            .field("block_writes", &self.block.len())
            .field("tx_writes", &self.tx.len())
            .finish()
    }
}

impl<'a> StateView<'a> {
    /// A view of the state after `base_height`.
    pub fn new(base: &'a dyn AuthenticatedState, base_height: Height) -> Self {
        StateView {
            base,
            base_height,
            block: StateChanges::new(),
            tx: StateChanges::new(),
        }
    }

    pub fn get_raw(&self, key: &Hash) -> Result<Option<Vec<u8>>, ExecError> {
        if let Some(v) = self.tx.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.block.get(key) {
            return Ok(v.clone());
        }
        self.base
            .get(key, self.base_height)
            .map_err(|source| ExecError::State {
                height: self.base_height,
                source,
            })
    }

    /// Reads and decodes the value of `key` in `namespace`.
    pub fn get<T: BorshDeserialize>(
        &self,
        namespace: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, ExecError> {
        match self.get_raw(&state_key(namespace, key))? {
            None => Ok(None),
            Some(bytes) => T::try_from_slice(&bytes)
                .map(Some)
                .map_err(|e| ExecError::Corrupt {
                    what: namespace,
                    reason: e.to_string(),
                }),
        }
    }

    /// Writes `value` under `key` in `namespace`, as part of the current transaction.
    pub fn put<T: BorshSerialize>(&mut self, namespace: &'static str, key: &[u8], value: &T) {
        let bytes = borsh::to_vec(value).expect("encoding into a Vec cannot fail");
        self.tx.insert(state_key(namespace, key), Some(bytes));
    }

    /// Deletes `key` in `namespace`, as part of the current transaction.
    pub fn delete(&mut self, namespace: &'static str, key: &[u8]) {
        self.tx.insert(state_key(namespace, key), None);
    }

    /// Keeps the current transaction's writes.
    pub fn commit_tx(&mut self) {
        let writes = std::mem::take(&mut self.tx);
        self.block.extend(writes);
    }

    /// Drops the current transaction's writes.
    pub fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    /// The block's writes, for the state tree.
    pub fn into_changes(mut self) -> StateChanges {
        self.rollback_tx();
        self.block
    }
}
