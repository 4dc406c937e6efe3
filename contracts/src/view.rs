//! The state as a block's transactions see it: the tree at the previous height, the
//! writes of earlier transactions of the block, and the current transaction's writes, which
//! are dropped if it is refused.

use std::{any::Any, cell::RefCell, collections::HashMap, sync::Arc};

use acta_ledger::{
    state::{state_key, AuthenticatedState, StateChanges},
    Hash, Height,
};
use borsh::{BorshDeserialize, BorshSerialize};

use crate::error::ExecError;

/// The maps of a view, keyed by state keys: foldhash, seeded at random in each process,
/// rather than SipHash (which was a tenth of a block's execution).
type Map<V> = HashMap<Hash, V, foldhash::quality::RandomState>;

/// Writes by key (a value, or `None` to delete), unordered: looked up by every read, and
/// put in key order once, for the state tree ([`StateView::into_changes`]).
pub type Writes = Map<Option<Vec<u8>>>;

/// Values read from the state, by key (`None`: not set).
pub type Reads = Map<Option<Vec<u8>>>;

/// Records decoded by [`StateView::get_shared`], by key: each is the decoding of the
/// key's value in the block's writes or in the state, and goes when the key is written.
pub type Decoded = Map<Arc<dyn Any + Send + Sync>>;

/// What one transaction read and wrote, as a traced view saw it
/// ([`StateView::traced`]): a mempool judges it again after a block only if one of the
/// keys it read changed (`crate::pending`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The keys it read below its own writes, each once, with the value it found.
    pub reads: Vec<(Hash, Found)>,
    /// What it wrote: a value, or `None` for a deletion.
    pub writes: Vec<(Hash, Option<Vec<u8>>)>,
}

/// A value a [`Trace`] says a transaction found: small ones whole; of a larger one (a
/// budget round with its projects) only that it was there, so that a pool's traces do not
/// copy the records its calls share, nor hash them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Nothing,
    /// A value of at most [`Found::INLINE_MAX`] bytes.
    Value(Vec<u8>),
    /// A larger value: it is the same as another only if its key was not written since.
    Large,
}

impl Found {
    /// The most bytes of a value kept whole.
    pub const INLINE_MAX: usize = 256;

    pub fn of(value: Option<&[u8]>) -> Found {
        match value {
            None => Found::Nothing,
            Some(v) if v.len() <= Found::INLINE_MAX => Found::Value(v.to_vec()),
            Some(_) => Found::Large,
        }
    }

    /// Whether `value` is known to be the value found (never, for a large one).
    pub fn is(&self, value: Option<&[u8]>) -> bool {
        match (self, value) {
            (Found::Nothing, None) => true,
            (Found::Value(found), Some(v)) => found == v,
            _ => false,
        }
    }
}

/// A layered view of the state for executing one block.
pub struct StateView<'a> {
    base: &'a dyn AuthenticatedState,
    base_height: Height,
    /// Values read from `base`, so that a block reads each key from storage at most once
    /// (bounded by the block's own reads).
    read: RefCell<Reads>,
    /// Records decoded from `read` or `block`, shared rather than decoded again.
    decoded: RefCell<Decoded>,
    block: Writes,
    tx: Writes,
    /// With [`StateView::traced`]: what the current transaction read.
    reads: Option<RefCell<Vec<(Hash, Found)>>>,
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
            read: RefCell::new(Reads::default()),
            decoded: RefCell::new(Decoded::default()),
            block: Writes::default(),
            tx: Writes::default(),
            reads: None,
        }
    }

    /// This view, keeping a [`Trace`] of each transaction ([`StateView::commit_traced`]).
    pub fn traced(mut self) -> Self {
        self.reads = Some(RefCell::new(Vec::new()));
        self
    }

    /// Notes, in a traced view, that the current transaction read `value` under `key`
    /// (below its own writes).
    fn saw(&self, key: &Hash, value: Option<&[u8]>) {
        if let Some(reads) = &self.reads {
            let mut reads = reads.borrow_mut();
            if !reads.iter().any(|(k, _)| k == key) {
                reads.push((*key, Found::of(value)));
            }
        }
    }

    /// A view of the state after `base_height` that goes on from `writes` (kept as if
    /// earlier transactions of the block made them), `read` (values already read from
    /// the state after `base_height`) and `decoded` (records decoded from either): what
    /// [`StateView::into_parts`] gave back.
    pub fn resume(
        base: &'a dyn AuthenticatedState,
        base_height: Height,
        read: Reads,
        decoded: Decoded,
        writes: Writes,
    ) -> Self {
        StateView {
            base,
            base_height,
            read: RefCell::new(read),
            decoded: RefCell::new(decoded),
            block: writes,
            tx: Writes::default(),
            reads: None,
        }
    }

    /// The values read from the state and the writes kept so far (the current
    /// transaction's are dropped), to [`StateView::resume`] later.
    pub fn into_parts(self) -> (Reads, Decoded, Writes) {
        (
            self.read.into_inner(),
            self.decoded.into_inner(),
            self.block,
        )
    }

    pub fn get_raw(&self, key: &Hash) -> Result<Option<Vec<u8>>, ExecError> {
        self.with_raw(key, |v| v.map(<[u8]>::to_vec))
    }

    /// Hands `f` the value of `key` where it is (this transaction's writes, the block's,
    /// or what was read from the state), without copying it.
    fn with_raw<R>(&self, key: &Hash, f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R, ExecError> {
        match self.tx.get(key) {
            Some(v) => Ok(f(v.as_deref())),
            None => self.with_kept(key, |v| {
                self.saw(key, v);
                f(v)
            }),
        }
    }

    /// As [`StateView::with_raw`], below the current transaction's writes: the value the
    /// block's earlier transactions left.
    fn with_kept<R>(&self, key: &Hash, f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R, ExecError> {
        if let Some(v) = self.block.get(key) {
            return Ok(f(v.as_deref()));
        }
        if let Some(v) = self.read.borrow().get(key) {
            return Ok(f(v.as_deref()));
        }
        let value = self
            .base
            .get(key, self.base_height)
            .map_err(|source| ExecError::State {
                height: self.base_height,
                source,
            })?;
        let answer = f(value.as_deref());
        self.read.borrow_mut().insert(*key, value);
        Ok(answer)
    }

    /// Reads and decodes the value of `key` in `namespace`.
    pub fn get<T: BorshDeserialize>(
        &self,
        namespace: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, ExecError> {
        self.with_raw(&state_key(namespace, key), |bytes| match bytes {
            None => Ok(None),
            Some(bytes) => T::try_from_slice(bytes)
                .map(Some)
                .map_err(|e| ExecError::Corrupt {
                    what: namespace,
                    reason: e.to_string(),
                }),
        })?
    }

    /// Reads and decodes the value of `key` in `namespace`, as [`StateView::get`] does,
    /// for a caller that only reads it: a record decoded once is shared until the key is
    /// written (a block's ballots read the same round and the same issuer's DID).
    pub fn get_shared<T: BorshDeserialize + Send + Sync + 'static>(
        &self,
        namespace: &'static str,
        key: &[u8],
    ) -> Result<Option<Arc<T>>, ExecError> {
        let key = state_key(namespace, key);
        let decode = |bytes: &[u8]| {
            T::try_from_slice(bytes).map_err(|e| ExecError::Corrupt {
                what: namespace,
                reason: e.to_string(),
            })
        };
        if let Some(v) = self.tx.get(&key) {
            // The current transaction's own write, which it may yet drop: not kept.
            return v
                .as_deref()
                .map(decode)
                .transpose()
                .map(|t| t.map(Arc::new));
        }
        if self.reads.is_some() {
            self.with_kept(&key, |v| self.saw(&key, v))?;
        }
        if let Some(shared) = self.decoded.borrow().get(&key) {
            if let Ok(record) = Arc::clone(shared).downcast::<T>() {
                return Ok(Some(record));
            }
        }
        let Some(record) = self.with_kept(&key, |bytes| bytes.map(decode).transpose())?? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.decoded.borrow_mut().insert(key, record.clone());
        Ok(Some(record))
    }

    /// Writes `value` under `key` in `namespace`, as part of the current transaction.
    pub fn put<T: BorshSerialize>(&mut self, namespace: &'static str, key: &[u8], value: &T) {
        let bytes = borsh::to_vec(value).expect("encoding into a Vec cannot fail");
        let key = state_key(namespace, key);
        self.decoded.get_mut().remove(&key);
        self.tx.insert(key, Some(bytes));
    }

    /// Deletes `key` in `namespace`, as part of the current transaction.
    pub fn delete(&mut self, namespace: &'static str, key: &[u8]) {
        let key = state_key(namespace, key);
        self.decoded.get_mut().remove(&key);
        self.tx.insert(key, None);
    }

    /// Whether the block's kept writes, or the current transaction's, include `key` in
    /// `namespace` (a value or a deletion).
    pub fn written(&self, namespace: &'static str, key: &[u8]) -> bool {
        let key = state_key(namespace, key);
        self.tx.contains_key(&key) || self.block.contains_key(&key)
    }

    /// Keeps the current transaction's writes.
    pub fn commit_tx(&mut self) {
        if let Some(reads) = &self.reads {
            reads.borrow_mut().clear();
        }
        self.block.extend(self.tx.drain());
    }

    /// Keeps the current transaction's writes, and says what it read and wrote (nothing
    /// read, unless the view is [`StateView::traced`]).
    pub fn commit_traced(&mut self) -> Trace {
        let reads = self
            .reads
            .as_ref()
            .map(|r| std::mem::take(&mut *r.borrow_mut()))
            .unwrap_or_default();
        let writes = self.tx.iter().map(|(k, v)| (*k, v.clone())).collect();
        self.block.extend(self.tx.drain());
        Trace { reads, writes }
    }

    /// Drops the current transaction's writes.
    pub fn rollback_tx(&mut self) {
        if let Some(reads) = &self.reads {
            reads.borrow_mut().clear();
        }
        self.tx.clear();
    }

    /// The block's writes in key order, for the state tree.
    pub fn into_changes(self) -> StateChanges {
        self.block.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use acta_ledger::state::{MemoryState, StateProof, StateUpdate};

    use super::*;

    /// A state that counts its reads.
    struct Counting {
        inner: MemoryState,
        reads: Cell<u32>,
    }

    /// A state at height 0 holding `value` under `key` in namespace "t", counting reads.
    fn holding(key: &[u8], value: Vec<u8>) -> Counting {
        let mut inner = MemoryState::new();
        let mut changes = StateChanges::new();
        changes.insert(state_key("t", key), Some(value));
        inner.commit(&changes).unwrap();
        Counting {
            inner,
            reads: Cell::new(0),
        }
    }

    impl AuthenticatedState for Counting {
        fn state_root(&self, height: Height) -> acta_ledger::Result<Hash> {
            self.inner.state_root(height)
        }

        fn get(&self, key: &Hash, height: Height) -> acta_ledger::Result<Option<Vec<u8>>> {
            self.reads.set(self.reads.get() + 1);
            self.inner.get(key, height)
        }

        fn get_with_proof(
            &self,
            key: &Hash,
            height: Height,
        ) -> acta_ledger::Result<(Option<Vec<u8>>, StateProof)> {
            self.inner.get_with_proof(key, height)
        }

        fn prepare(
            &self,
            changes: &StateChanges,
            height: Height,
        ) -> acta_ledger::Result<StateUpdate> {
            self.inner.prepare(changes, height)
        }
    }

    #[test]
    fn a_block_reads_each_key_from_storage_once() {
        let state = holding(b"a", vec![1]);
        let mut view = StateView::new(&state, Height(0));
        for _ in 0..5 {
            assert_eq!(view.get::<u8>("t", b"a").unwrap(), Some(1));
            assert_eq!(view.get::<u8>("t", b"b").unwrap(), None);
        }
        assert_eq!(state.reads.get(), 2, "one read per key");
        // Writes of the block still win over what was read.
        view.put("t", b"a", &7u8);
        view.commit_tx();
        assert_eq!(view.get::<u8>("t", b"a").unwrap(), Some(7));
        assert_eq!(state.reads.get(), 2);
    }

    #[test]
    fn a_shared_record_is_decoded_once_and_never_outlives_a_write() {
        let state = holding(b"a", borsh::to_vec(&1u64).unwrap());
        let mut view = StateView::new(&state, Height(0));
        let first = view.get_shared::<u64>("t", b"a").unwrap().unwrap();
        let again = view.get_shared::<u64>("t", b"a").unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "decoded once, then shared");
        assert_eq!(view.get_shared::<u64>("t", b"b").unwrap(), None);
        // The current transaction's write is seen, and not kept once it is dropped.
        view.put("t", b"a", &2u64);
        assert_eq!(*view.get_shared::<u64>("t", b"a").unwrap().unwrap(), 2);
        view.rollback_tx();
        assert_eq!(*view.get_shared::<u64>("t", b"a").unwrap().unwrap(), 1);
        // A committed write replaces the shared record.
        view.put("t", b"a", &3u64);
        view.commit_tx();
        assert_eq!(*view.get_shared::<u64>("t", b"a").unwrap().unwrap(), 3);
        view.delete("t", b"a");
        view.commit_tx();
        assert_eq!(view.get_shared::<u64>("t", b"a").unwrap(), None);
        // The same key read as another type is decoded again, not mistaken.
        view.put("t", b"c", &7u8);
        view.commit_tx();
        assert_eq!(*view.get_shared::<u8>("t", b"c").unwrap().unwrap(), 7);
        assert!(
            view.get_shared::<u64>("t", b"c").is_err(),
            "one byte is no u64"
        );
        // Carried over to a resumed view (a mempool's next check) with the writes.
        let (read, decoded, writes) = view.into_parts();
        let view = StateView::resume(&state, Height(0), read, decoded, writes);
        assert_eq!(*view.get_shared::<u8>("t", b"c").unwrap().unwrap(), 7);
        assert_eq!(view.get_shared::<u64>("t", b"a").unwrap(), None);
        assert_eq!(state.reads.get(), 2, "each key read from the state once");
    }

    #[test]
    fn a_traced_view_records_each_value_read_once_and_what_was_written() {
        let state = holding(b"a", vec![1]);
        let mut view = StateView::new(&state, Height(0)).traced();
        // A refused transaction's reads go with it.
        assert_eq!(view.get::<u8>("t", b"a").unwrap(), Some(1));
        view.rollback_tx();
        assert_eq!(view.get::<u8>("t", b"a").unwrap(), Some(1));
        assert_eq!(view.get::<u8>("t", b"a").unwrap(), Some(1));
        assert_eq!(view.get_shared::<u8>("t", b"b").unwrap(), None);
        view.put("t", b"c", &2u8);
        // Its own write is not a read of the state.
        assert_eq!(view.get::<u8>("t", b"c").unwrap(), Some(2));
        let big = vec![7u8; Found::INLINE_MAX + 1];
        view.put("t", b"d", &big);
        let trace = view.commit_traced();
        assert_eq!(
            trace.reads,
            vec![
                (state_key("t", b"a"), Found::Value(vec![1])),
                (state_key("t", b"b"), Found::Nothing),
            ]
        );
        let mut writes = trace.writes;
        writes.sort();
        let mut expected = vec![
            (state_key("t", b"c"), Some(vec![2])),
            (state_key("t", b"d"), Some(borsh::to_vec(&big).unwrap())),
        ];
        expected.sort();
        assert_eq!(writes, expected);
        // The next transaction reads the block's earlier writes: a large one is not copied.
        assert_eq!(view.get::<Vec<u8>>("t", b"d").unwrap(), Some(big.clone()));
        view.delete("t", b"a");
        let trace = view.commit_traced();
        assert_eq!(trace.reads, vec![(state_key("t", b"d"), Found::Large)]);
        assert_eq!(trace.writes, vec![(state_key("t", b"a"), None)]);
        assert!(!Found::Large.is(Some(&borsh::to_vec(&big).unwrap())));
        assert!(Found::of(Some(&[1])).is(Some(&[1])));
        assert!(!Found::of(Some(&[1])).is(Some(&[2])) && !Found::of(None).is(Some(&[])));
    }

    #[test]
    fn the_block_changes_come_in_key_order_without_the_unfinished_transaction() {
        let state = holding(b"genesis", vec![0]);
        let mut view = StateView::new(&state, Height(0));
        for i in (0u8..50).rev() {
            view.put("t", &[i], &i);
            if i % 2 == 0 {
                view.delete("t", &[i]);
            }
            view.commit_tx();
        }
        // A refused transaction's writes go; an unfinished one's are not the block's.
        view.put("t", b"refused", &1u8);
        view.rollback_tx();
        view.put("t", b"unfinished", &1u8);
        assert_eq!(view.get::<u8>("t", b"unfinished").unwrap(), Some(1));
        assert_eq!(view.get::<u8>("t", b"refused").unwrap(), None);
        let changes = view.into_changes();
        let mut expected: Vec<(Hash, Option<Vec<u8>>)> = (0u8..50)
            .map(|i| (state_key("t", &[i]), (i % 2 == 1).then(|| vec![i])))
            .collect();
        expected.sort();
        assert_eq!(changes.into_iter().collect::<Vec<_>>(), expected);
    }
}
