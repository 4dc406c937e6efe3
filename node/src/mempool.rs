//! The transaction pool.
//!
//! Transactions wait here between their arrival (over the API or from peers) and their block.
//! The pool only holds transactions that can execute in order on top of the latest committed
//! state: for every signer, its transactions in the pool have the nonces `next, next + 1, ...`
//! without a gap, where `next` is the signer's next nonce in that state. A transaction is
//! admitted only if its signature verifies (checked in batches), it is for this chain, it
//! continues its signer's run of nonces exactly, it fits the pool's limits, and the node's
//! judge lets it in: its time limit is neither past nor too far ahead ([`check_lifetime`]),
//! and the executor would accept its call against the latest state with the pool's earlier
//! calls applied (`acta_contracts::pending`).
//!
//! Transactions are kept in arrival order, which is also nonce order for each signer (a nonce
//! is admitted only after its predecessor), so a prefix of the pool is always a valid
//! sequence for a block proposal. After each committed block, [`Mempool::update`] removes the
//! block's transactions and whatever can no longer execute, [`Mempool::expire`] those whose
//! time limit has passed, and [`Mempool::recheck`] those the new state refuses.
//!
//! Every operation costs O(log n) per transaction it looks at; only ordered collections are
//! iterated, so the pool's behaviour is deterministic.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Mutex, PoisonError},
};

use acta_ledger::{
    tx::TX_BYTES_MAX, ChainId, Hash, PublicKey, RefusalCode, Timestamp, Transaction,
};

/// Limits of the pool (the `[mempool]` section of `config.toml`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// The most transactions the pool holds.
    pub max_txs: usize,
    /// The most encoded bytes of transactions the pool holds.
    pub max_bytes: usize,
    /// The most transactions of one signer the pool holds.
    pub max_per_signer: usize,
    /// How far ahead a transaction's `valid_until` may be, in seconds: the longest a
    /// transaction refused by a pool can stay replayable.
    pub max_lifetime_secs: u64,
    /// Whether a call is run against the latest state before it is admitted, so that a
    /// call the ledger would refuse is refused to its sender and never takes a place in a
    /// block. Off, such calls are admitted and committed with their refusal as receipt
    /// (and the nonce they use up): a record of every attempt, at the cost of block space.
    pub check_calls: bool,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 20_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_signer: 64,
            max_lifetime_secs: 3_600,
            check_calls: true,
        }
    }
}

/// Why a transaction was not added to the pool.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The transaction (whose id this is) waits in the mempool already.
    #[error("the transaction is already in the mempool")]
    Duplicate(Hash),
    #[error("wrong chain id: expected {expected}, got {got}")]
    WrongChain { expected: String, got: String },
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error("stale nonce {got}: the signer's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    #[error("nonce {got} is ahead of the signer's next nonce {expected}; nonces must follow each other without gaps")]
    FutureNonce { expected: u64, got: u64 },
    #[error("the signer already has {max} transactions in the mempool, the most allowed")]
    SignerQuota { max: usize },
    #[error("the mempool is full")]
    Full,
    #[error("the transaction is {bytes} bytes, more than the maximum {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("the transaction was valid until {valid_until} (Unix ms) and it is now {now}")]
    Expired {
        valid_until: Timestamp,
        now: Timestamp,
    },
    #[error("the transaction is valid until {valid_until} (Unix ms), more than {max_secs} s from now ({now}); sign it with a nearer time limit")]
    TooLongLived {
        valid_until: Timestamp,
        now: Timestamp,
        max_secs: u64,
    },
    /// The executor would refuse the call against the latest state with the pool applied.
    /// The transaction was not recorded: its nonce is still unused.
    #[error("the ledger would refuse it now: {message}; nothing was recorded")]
    Refused { code: RefusalCode, message: String },
    /// The node could not read what it needs to judge the transaction (a store error).
    #[error("the node cannot judge the transaction now: {0}")]
    Unavailable(String),
}

impl AddError {
    /// A stable, machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            AddError::Duplicate(_) => "duplicate",
            AddError::WrongChain { .. } => "wrong_chain",
            AddError::BadSignature(_) => "bad_signature",
            AddError::StaleNonce { .. } => "stale_nonce",
            AddError::FutureNonce { .. } => "future_nonce",
            AddError::SignerQuota { .. } => "signer_quota",
            AddError::Full => "mempool_full",
            AddError::TooLarge { .. } => "too_large",
            AddError::Expired { .. } => "expired",
            AddError::TooLongLived { .. } => "too_long_lived",
            AddError::Refused { code, .. } => code.as_str(),
            AddError::Unavailable(_) => "unavailable",
        }
    }
}

/// A transaction whose size and signature are checked, with its id and encoded length:
/// what [`Mempool::add_checked`] admits. Made by [`check_batch`], on any thread.
#[derive(Clone, Debug)]
pub struct Checked {
    tx: Transaction,
    id: Hash,
    bytes: usize,
}

impl Checked {
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    pub fn id(&self) -> Hash {
        self.id
    }
}

/// Checks a transaction's time limit against the time `now`: not past, and at most
/// `max_secs` ahead (so that the signed bytes of a transaction a pool refused die soon).
pub fn check_lifetime(tx: &Transaction, now: Timestamp, max_secs: u64) -> Result<(), AddError> {
    if !tx.is_live_at(now) {
        return Err(AddError::Expired {
            valid_until: tx.valid_until,
            now,
        });
    }
    if tx.valid_until.0 - now.0 > max_secs.saturating_mul(1_000) {
        return Err(AddError::TooLongLived {
            valid_until: tx.valid_until,
            now,
            max_secs,
        });
    }
    Ok(())
}

/// The ids of the transactions whose signatures this node verified most recently, at most
/// `capacity`, the oldest forgotten first. An id is the hash of a transaction's whole
/// encoding (signature and chain id included), so a transaction seen again (from another
/// peer, or in a block) needs no second check.
#[derive(Debug)]
pub struct VerifiedIds {
    capacity: usize,
    inner: Mutex<(HashSet<Hash>, VecDeque<Hash>)>,
}

impl VerifiedIds {
    pub fn new(capacity: usize) -> Self {
        VerifiedIds {
            capacity,
            inner: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    pub fn contains(&self, id: &Hash) -> bool {
        // The set is consistent whatever a panicking holder left undone.
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0.contains(id)
    }

    fn insert_all(&self, ids: impl IntoIterator<Item = Hash>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *inner;
        for id in ids {
            if set.insert(id) {
                order.push_back(id);
            }
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

/// Checks the size, the chain and the signature of each transaction, signatures in one
/// batch; a transaction whose id is in `verified` is not verified again, and the ids of
/// those that verify are added to it. Touches no pool: it runs off the node's loop, and the
/// results go to [`Mempool::add_checked`] in order.
pub fn check_batch(
    txs: Vec<Transaction>,
    chain_id: &ChainId,
    verified: Option<&VerifiedIds>,
) -> Vec<Result<Checked, AddError>> {
    check_batches(vec![txs], chain_id, verified)
        .pop()
        .expect("one result list per batch")
}

/// [`check_batch`] for several batches that came from different senders, their
/// signatures checked together while none is forged ([`Transaction::verify_groups`]).
/// One result list per batch, in order.
pub fn check_batches(
    batches: Vec<Vec<Transaction>>,
    chain_id: &ChainId,
    verified: Option<&VerifiedIds>,
) -> Vec<Vec<Result<Checked, AddError>>> {
    let sized: Vec<Vec<Result<Checked, AddError>>> = batches
        .into_iter()
        .map(|txs| txs.into_iter().map(sized).collect())
        .collect();
    // Looked up once per transaction.
    let known: Vec<Vec<bool>> = sized
        .iter()
        .map(|batch| {
            batch
                .iter()
                .map(|c| {
                    c.as_ref()
                        .is_ok_and(|c| verified.is_some_and(|v| v.contains(&c.id)))
                })
                .collect()
        })
        .collect();
    let to_verify: Vec<Vec<&Transaction>> = sized
        .iter()
        .zip(&known)
        .map(|(batch, known)| {
            batch
                .iter()
                .zip(known)
                .filter_map(|(c, known)| c.as_ref().ok().filter(|_| !known))
                .map(|c| &c.tx)
                .collect()
        })
        .collect();
    let groups: Vec<&[&Transaction]> = to_verify.iter().map(Vec::as_slice).collect();
    let verdicts = Transaction::verify_groups(&groups, chain_id);
    let checked: Vec<Vec<Result<Checked, AddError>>> = sized
        .into_iter()
        .zip(known)
        .zip(verdicts)
        .map(|((batch, known), verdicts)| {
            let mut verdicts = verdicts.into_iter();
            batch
                .into_iter()
                .zip(known)
                .map(|(c, known)| {
                    let c = c?;
                    if known {
                        return Ok(c);
                    }
                    match verdicts.next() {
                        Some(Ok(())) => Ok(c),
                        Some(Err(acta_ledger::Error::WrongChainId { expected, got })) => {
                            Err(AddError::WrongChain { expected, got })
                        }
                        Some(Err(e)) => Err(AddError::BadSignature(e.to_string())),
                        None => Err(AddError::BadSignature(
                            "signature was not verified".to_string(),
                        )),
                    }
                })
                .collect()
        })
        .collect();
    if let Some(v) = verified {
        v.insert_all(
            checked
                .iter()
                .flatten()
                .filter_map(|c| c.as_ref().ok().map(|c| c.id)),
        );
    }
    checked
}

/// A transaction with its encoded length and id, or refused as too large.
fn sized(tx: Transaction) -> Result<Checked, AddError> {
    let encoded = tx.encode();
    if encoded.len() > TX_BYTES_MAX {
        return Err(AddError::TooLarge {
            bytes: encoded.len(),
            max: TX_BYTES_MAX,
        });
    }
    // The id is the SHA-256 of the encoding, as `Transaction::id` computes it.
    let id = Hash::digest(&encoded);
    Ok(Checked {
        tx,
        id,
        bytes: encoded.len(),
    })
}

/// A transaction in the pool with what the pool needs to know about it.
#[derive(Debug)]
struct Entry {
    tx: Transaction,
    id: Hash,
    /// The length of its borsh encoding.
    bytes: usize,
}

/// The transaction pool. See the module documentation.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    /// Every transaction, by arrival sequence number.
    entries: BTreeMap<u64, Entry>,
    /// Arrival sequence number by transaction id (lookups only, never iterated).
    by_id: HashMap<Hash, u64>,
    /// Each signer's transactions: arrival sequence number by nonce. The nonces of a signer
    /// are contiguous; signers without transactions have no entry.
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, u64>>,
    /// Arrival sequence numbers by time limit, for [`Mempool::expire`].
    by_expiry: BTreeSet<(Timestamp, u64)>,
    next_seq: u64,
    bytes: usize,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            entries: BTreeMap::new(),
            by_id: HashMap::new(),
            by_signer: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            next_seq: 0,
            bytes: 0,
        }
    }

    /// Checks a batch of transactions for the test chain ([`check_batch`], on this thread)
    /// and adds the good
    /// ones ([`Mempool::add_checked`], with a judge that lets everything in), in order.
    /// Returns one result per input, in order, with the transaction id when it was added;
    /// nonces `n, n + 1, n + 2` of one signer in one batch are all accepted.
    #[cfg(test)]
    pub fn add_batch(
        &mut self,
        txs: Vec<Transaction>,
        next_nonce: &dyn Fn(&PublicKey) -> u64,
    ) -> Vec<Result<Hash, AddError>> {
        let checked = check_batch(txs, &acta_ledger::testing::chain_id(), None);
        self.add_checked(checked, next_nonce, &mut |_, _| Ok(()))
    }

    /// Adds transactions checked by [`check_batch`], in order: each must not be in the pool
    /// and must continue its signer's run of nonces exactly (`next_nonce(key)` is the
    /// signer's next nonce in the latest committed state; a signer's pooled transactions
    /// below it are already used up and are dropped on the way), within the per-signer
    /// quota and the pool's limits; last, `judge` must let it in (it is called once per
    /// transaction that passed everything else, in order, and may remember what it let in:
    /// the node applies the call to its pending state). A refusal of [`check_batch`] is
    /// passed on. One result per input, in order.
    pub fn add_checked(
        &mut self,
        checked: Vec<Result<Checked, AddError>>,
        next_nonce: &dyn Fn(&PublicKey) -> u64,
        judge: &mut dyn FnMut(&Transaction, Hash) -> Result<(), AddError>,
    ) -> Vec<Result<Hash, AddError>> {
        checked
            .into_iter()
            .map(|c| {
                let Checked { tx, id, bytes } = c?;
                if self.by_id.contains_key(&id) {
                    return Err(AddError::Duplicate(id));
                }
                if tx.nonce < next_nonce(&tx.signer) {
                    return Err(self.stale(&tx, next_nonce));
                }
                self.insert_verified(tx, id, bytes, next_nonce, judge)
            })
            .collect()
    }

    /// The refusal of a transaction whose nonce the committed state has used, naming the
    /// nonce the signer needs now (after its run in the pool).
    fn stale(&self, tx: &Transaction, next_nonce: &dyn Fn(&PublicKey) -> u64) -> AddError {
        let pending_next = self.next_after_pool(&tx.signer).unwrap_or(0);
        AddError::StaleNonce {
            expected: next_nonce(&tx.signer).max(pending_next),
            got: tx.nonce,
        }
    }

    /// Checks the nonce and the limits of a transaction with a valid signature, and adds it.
    fn insert_verified(
        &mut self,
        tx: Transaction,
        id: Hash,
        bytes: usize,
        next_nonce: &dyn Fn(&PublicKey) -> u64,
        judge: &mut dyn FnMut(&Transaction, Hash) -> Result<(), AddError>,
    ) -> Result<Hash, AddError> {
        // A copy earlier in the same batch may have been added since the precheck.
        if self.by_id.contains_key(&id) {
            return Err(AddError::Duplicate(id));
        }
        let base = next_nonce(&tx.signer);
        self.drop_below(&tx.signer, base);
        // Empty per-signer maps are removed, so a signer present has a last nonce.
        let pending = self
            .by_signer
            .get(&tx.signer)
            .and_then(|n| n.last_key_value().map(|(&last, _)| (last, n.len())));
        let (expected, count) = match pending {
            None => (base, 0),
            Some((last, n)) => {
                // The signer's nonces are used up.
                let next = last.checked_add(1).ok_or(AddError::StaleNonce {
                    expected: u64::MAX,
                    got: tx.nonce,
                })?;
                (next, n)
            }
        };
        if tx.nonce < expected {
            return Err(AddError::StaleNonce {
                expected,
                got: tx.nonce,
            });
        }
        if tx.nonce > expected {
            return Err(AddError::FutureNonce {
                expected,
                got: tx.nonce,
            });
        }
        if count >= self.config.max_per_signer {
            return Err(AddError::SignerQuota {
                max: self.config.max_per_signer,
            });
        }
        if self.entries.len() >= self.config.max_txs
            || self
                .bytes
                .checked_add(bytes)
                .is_none_or(|total| total > self.config.max_bytes)
        {
            return Err(AddError::Full);
        }
        judge(&tx, id)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_signer
            .entry(tx.signer)
            .or_default()
            .insert(tx.nonce, seq);
        self.by_id.insert(id, seq);
        self.by_expiry.insert((tx.valid_until, seq));
        self.bytes += bytes;
        self.entries.insert(seq, Entry { tx, id, bytes });
        Ok(id)
    }

    /// Up to `max_txs` transactions and `max_bytes` encoded bytes for a block proposal, in
    /// arrival order (which keeps each signer's nonces in order). Stops at the first
    /// transaction that does not fit, so no signer's run of nonces has a gap. Does not
    /// remove them.
    pub fn reap(&self, max_txs: usize, max_bytes: usize) -> Vec<Transaction> {
        self.reap_with_ids(max_txs, max_bytes).0
    }

    /// [`Mempool::reap`], with the transactions' ids in order.
    pub fn reap_with_ids(&self, max_txs: usize, max_bytes: usize) -> (Vec<Transaction>, Vec<Hash>) {
        let mut out = Vec::new();
        let mut ids = Vec::new();
        let mut total: usize = 0;
        for entry in self.entries.values() {
            if out.len() >= max_txs {
                break;
            }
            match total.checked_add(entry.bytes) {
                Some(t) if t <= max_bytes => total = t,
                _ => break,
            }
            out.push(entry.tx.clone());
            ids.push(entry.id);
        }
        (out, ids)
    }

    /// After a block is committed: removes its transactions (by id), then for each signer
    /// of the block with transactions left drops those whose nonce is below `next_nonce`
    /// (the signer's next nonce in the new state) and, if the lowest remaining nonce is not
    /// exactly `next_nonce`, drops all of that signer's remaining transactions (they can
    /// never execute). Returns how many were dropped besides the committed ones.
    ///
    /// Only a block's own transactions move nonces, so only the block's signers are looked
    /// at: `next_nonce` is called once per distinct signer in `committed`.
    pub fn update(
        &mut self,
        committed: &[Transaction],
        next_nonce: &dyn Fn(&PublicKey) -> u64,
    ) -> usize {
        let ids: Vec<Hash> = committed.iter().map(Transaction::id).collect();
        self.update_with_ids(committed, &ids, next_nonce)
    }

    /// [`Mempool::update`] with the committed transactions' ids, in order (computed once
    /// per node: `Block::checked_ids`).
    pub fn update_with_ids(
        &mut self,
        committed: &[Transaction],
        ids: &[Hash],
        next_nonce: &dyn Fn(&PublicKey) -> u64,
    ) -> usize {
        for id in ids {
            if let Some(&seq) = self.by_id.get(id) {
                self.remove(seq);
            }
        }
        let mut signers = std::collections::BTreeSet::new();
        for tx in committed {
            signers.insert(tx.signer);
        }
        let mut dropped = 0;
        for signer in signers {
            if !self.by_signer.contains_key(&signer) {
                continue;
            }
            let base = next_nonce(&signer);
            dropped += self.drop_below(&signer, base);
            let gapped = self
                .by_signer
                .get(&signer)
                .and_then(|nonces| nonces.first_key_value())
                .is_some_and(|(&lowest, _)| lowest != base);
            if gapped {
                dropped += self.drop_signer(&signer);
            }
        }
        dropped
    }

    /// Removes the transaction `id` and its signer's later ones (which would wait behind it
    /// for ever): for a transaction that can never be in a block. Returns how many went.
    pub fn evict(&mut self, id: &Hash) -> usize {
        let Some(entry) = self.by_id.get(id).and_then(|seq| self.entries.get(seq)) else {
            return 0;
        };
        let (signer, nonce) = (entry.tx.signer, entry.tx.nonce);
        let Some(nonces) = self.by_signer.get_mut(&signer) else {
            return 0;
        };
        let later = nonces.split_off(&nonce);
        if nonces.is_empty() {
            self.by_signer.remove(&signer);
        }
        for &seq in later.values() {
            self.remove_entry(seq);
        }
        later.len()
    }

    /// Drops the transactions whose time limit is before `time` (no block of that time or
    /// later may hold them), with their signers' later ones. Returns how many went.
    pub fn expire(&mut self, time: Timestamp) -> usize {
        let mut dropped = 0;
        while let Some(&(valid_until, seq)) = self.by_expiry.first() {
            if valid_until >= time {
                break;
            }
            let id = self.entries.get(&seq).map(|e| e.id);
            let evicted = id.map_or(0, |id| self.evict(&id));
            if evicted == 0 {
                // Not reachable (every entry is in every index): never loop on it.
                self.by_expiry.remove(&(valid_until, seq));
                self.remove(seq);
            }
            dropped += evicted;
        }
        dropped
    }

    /// Judges every transaction again, in arrival order (after a block, against the new
    /// state: `judge` starts from it), and evicts those refused, with their signers' later
    /// ones. Stops at the first error `judge` calls fatal (`Unavailable`), leaving the pool
    /// as it is. Returns how many went.
    pub fn recheck(
        &mut self,
        judge: &mut dyn FnMut(&Transaction, Hash) -> Result<(), AddError>,
    ) -> Result<usize, AddError> {
        let seqs: Vec<u64> = self.entries.keys().copied().collect();
        let mut dropped = 0;
        for seq in seqs {
            // Gone already, with an earlier transaction of its signer.
            let Some(entry) = self.entries.get(&seq) else {
                continue;
            };
            match judge(&entry.tx, entry.id) {
                Ok(()) => {}
                Err(e @ AddError::Unavailable(_)) => return Err(e),
                Err(_) => {
                    let id = entry.id;
                    dropped += self.evict(&id);
                }
            }
        }
        Ok(dropped)
    }

    /// The pooled transaction with this id.
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        self.by_id
            .get(id)
            .and_then(|seq| self.entries.get(seq))
            .map(|e| &e.tx)
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// The nonce after `signer`'s run of pooled transactions, if it has any: the nonce its
    /// next transaction needs to join the pool (unless a block commits the run first, so
    /// that the committed state's next nonce is higher).
    pub fn next_after_pool(&self, signer: &PublicKey) -> Option<u64> {
        self.by_signer
            .get(signer)
            .and_then(|n| n.last_key_value())
            .map(|(&last, _)| last.saturating_add(1))
    }

    /// How many transactions the pool holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The encoded bytes of the transactions the pool holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops `signer`'s transactions with nonces below `base`. Returns how many.
    fn drop_below(&mut self, signer: &PublicKey, base: u64) -> usize {
        let Some(nonces) = self.by_signer.get_mut(signer) else {
            return 0;
        };
        let mut seqs = Vec::new();
        while let Some(entry) = nonces.first_entry() {
            if *entry.key() >= base {
                break;
            }
            seqs.push(entry.remove());
        }
        if nonces.is_empty() {
            self.by_signer.remove(signer);
        }
        for &seq in &seqs {
            self.remove_entry(seq);
        }
        seqs.len()
    }

    /// Drops all of `signer`'s transactions. Returns how many.
    fn drop_signer(&mut self, signer: &PublicKey) -> usize {
        let Some(nonces) = self.by_signer.remove(signer) else {
            return 0;
        };
        for &seq in nonces.values() {
            self.remove_entry(seq);
        }
        nonces.len()
    }

    /// Removes the transaction with arrival number `seq` from every index.
    fn remove(&mut self, seq: u64) {
        let Some(entry) = self.remove_entry(seq) else {
            return;
        };
        if let Some(nonces) = self.by_signer.get_mut(&entry.tx.signer) {
            nonces.remove(&entry.tx.nonce);
            if nonces.is_empty() {
                self.by_signer.remove(&entry.tx.signer);
            }
        }
    }

    /// Removes the transaction with arrival number `seq` from every index but `by_signer`.
    fn remove_entry(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.by_id.remove(&entry.id);
        self.by_expiry.remove(&(entry.tx.valid_until, seq));
        self.bytes -= entry.bytes;
        Some(entry)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use std::collections::BTreeSet;

    use acta_ledger::{
        testing,
        tx::{BudgetCall, Call, Did, IdentityCall},
    };
    use proptest::prelude::*;

    use super::*;

    fn chain() -> ChainId {
        testing::chain_id()
    }

    /// Transaction `nonce` of user `user`.
    fn tx(user: u32, nonce: u64) -> Transaction {
        testing::create_did_tx(&chain(), user, nonce)
    }

    /// Another transaction of user `user` with the same nonce as `tx(user, nonce)`.
    fn other_tx(user: u32, nonce: u64) -> Transaction {
        let call = Call::Identity(IdentityCall::CreateDid {
            next_key_hash: Some(Hash::digest(b"next")),
        });
        Transaction::sign(
            &testing::key(0xb0, user),
            chain(),
            nonce,
            testing::NO_EXPIRY,
            call,
        )
    }

    fn signer(user: u32) -> PublicKey {
        testing::key(0xb0, user).public()
    }

    fn zero(_: &PublicKey) -> u64 {
        0
    }

    fn size(tx: &Transaction) -> usize {
        tx.encode().len()
    }

    fn pool(config: MempoolConfig) -> Mempool {
        Mempool::new(config)
    }

    /// Next nonces from a table; 0 for keys not in it.
    fn nonces(table: &[(u32, u64)]) -> impl Fn(&PublicKey) -> u64 {
        let table: BTreeMap<PublicKey, u64> = table.iter().map(|&(u, n)| (signer(u), n)).collect();
        move |k| table.get(k).copied().unwrap_or(0)
    }

    /// Evicting a transaction takes its signer's later ones with it, and nothing else; the
    /// signer's next transaction is then accepted at the evicted nonce.
    #[test]
    fn an_evicted_transaction_takes_its_signers_later_ones() {
        let mut m = pool(MempoolConfig::default());
        let txs = vec![tx(1, 0), tx(1, 1), tx(2, 0), tx(1, 2)];
        m.add_batch(txs.clone(), &zero);
        assert_eq!(m.evict(&txs[1].id()), 2);
        assert!(m.contains(&txs[0].id()) && m.contains(&txs[2].id()));
        assert!(!m.contains(&txs[1].id()) && !m.contains(&txs[3].id()));
        assert_eq!(m.len(), 2);
        assert_eq!(m.bytes(), size(&txs[0]) + size(&txs[2]));
        assert_eq!(m.evict(&txs[1].id()), 0, "already gone");
        assert!(m.add_batch(vec![other_tx(1, 1)], &zero)[0].is_ok());
        assert_eq!(m.evict(&txs[2].id()), 1);
        assert_eq!(m.reap(10, usize::MAX).len(), 2);
    }

    #[test]
    fn contiguous_nonces_in_one_batch_are_all_accepted() {
        let mut m = pool(MempoolConfig::default());
        let txs = vec![tx(1, 0), tx(1, 1), tx(2, 0), tx(1, 2)];
        let results = m.add_batch(txs.clone(), &zero);
        for (t, r) in txs.iter().zip(&results) {
            assert_eq!(r.as_ref().unwrap(), &t.id());
            assert!(m.contains(&t.id()));
        }
        assert_eq!(m.len(), 4);
        assert!(!m.is_empty());
        assert_eq!(m.bytes(), txs.iter().map(size).sum::<usize>());
        // Out of order within the batch: 4 comes before 3 and is refused.
        let results = m.add_batch(vec![tx(1, 4), tx(1, 3)], &zero);
        assert_eq!(
            results[0],
            Err(AddError::FutureNonce {
                expected: 3,
                got: 4
            })
        );
        assert!(results[1].is_ok());
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn a_signers_next_nonce_follows_its_pooled_run() {
        let mut m = pool(MempoolConfig::default());
        let signer = tx(1, 0).signer;
        assert_eq!(m.next_after_pool(&signer), None);
        m.add_batch(vec![tx(1, 0), tx(1, 1), tx(2, 0)], &zero);
        assert_eq!(m.next_after_pool(&signer), Some(2));
        // The nonce it names is the one the pool takes next.
        assert!(m.add_batch(vec![tx(1, 2)], &zero)[0].is_ok());
        assert_eq!(m.next_after_pool(&signer), Some(3));
        assert_eq!(m.evict(&tx(1, 0).id()), 3);
        assert_eq!(m.next_after_pool(&signer), None);
    }

    #[test]
    fn duplicates_are_refused_in_the_pool_and_within_a_batch() {
        let mut m = pool(MempoolConfig::default());
        let a = tx(1, 0);
        assert_eq!(m.add_batch(vec![a.clone()], &zero), vec![Ok(a.id())]);
        assert_eq!(
            m.add_batch(vec![a.clone()], &zero),
            vec![Err(AddError::Duplicate(a.id()))]
        );
        let b = tx(2, 0);
        assert_eq!(
            m.add_batch(vec![b.clone(), b.clone()], &zero),
            vec![Ok(b.id()), Err(AddError::Duplicate(b.id()))]
        );
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn wrong_chain_and_bad_signatures_are_refused_without_harming_the_batch() {
        let mut m = pool(MempoolConfig::default());
        let other = ChainId::new("other").unwrap();
        let foreign = testing::create_did_tx(&other, 1, 0);
        let mut forged = tx(2, 0);
        forged.signature.0[5] ^= 0x20;
        let good = tx(3, 0);
        let results = m.add_batch(vec![foreign, forged, good.clone()], &zero);
        assert_eq!(
            results[0],
            Err(AddError::WrongChain {
                expected: "acta-test".into(),
                got: "other".into()
            })
        );
        assert!(matches!(results[1], Err(AddError::BadSignature(_))));
        assert_eq!(results[2], Ok(good.id()));
        assert_eq!(m.len(), 1);
        // A forged transaction does not take the nonce: the real one is still accepted.
        assert!(m.add_batch(vec![tx(2, 0)], &zero)[0].is_ok());
    }

    #[test]
    fn a_signature_verified_once_is_not_verified_again_and_forgeries_are_never_remembered() {
        let verified = VerifiedIds::new(3);
        let good = tx(1, 0);
        let mut forged = tx(2, 0);
        forged.signature.0[5] ^= 0x20;
        let checked = check_batch(
            vec![good.clone(), forged.clone()],
            &chain(),
            Some(&verified),
        );
        assert_eq!(checked[0].as_ref().map(Checked::id).ok(), Some(good.id()));
        assert!(matches!(checked[1], Err(AddError::BadSignature(_))));
        assert!(verified.contains(&good.id()));
        assert!(!verified.contains(&forged.id()));
        // The forgery is refused again, however often it comes.
        let again = check_batch(vec![forged.clone()], &chain(), Some(&verified));
        assert!(matches!(again[0], Err(AddError::BadSignature(_))));
        // Checked transactions go into the pool in order, with their nonces judged there.
        let mut m = pool(MempoolConfig::default());
        let results = m.add_checked(
            check_batch(vec![good.clone()], &chain(), Some(&verified)),
            &zero,
            &mut |_, _| Ok(()),
        );
        assert_eq!(results, vec![Ok(good.id())]);
        let results = m.add_checked(
            check_batch(vec![good.clone()], &chain(), Some(&verified)),
            &zero,
            &mut |_, _| Ok(()),
        );
        assert_eq!(results, vec![Err(AddError::Duplicate(good.id()))]);
        // The set keeps the most recent ids only.
        let later: Vec<Transaction> = (10..13).map(|u| tx(u, 0)).collect();
        check_batch(later.clone(), &chain(), Some(&verified));
        assert!(!verified.contains(&good.id()));
        assert!(later.iter().all(|t| verified.contains(&t.id())));
    }

    /// Batches from several senders checked at once: each gets its own verdicts, a forgery
    /// in one refuses that transaction alone, and a known id is not checked again.
    #[test]
    fn batches_checked_together_keep_their_own_verdicts() {
        let verified = VerifiedIds::new(64);
        let known = tx(9, 0);
        check_batch(vec![known.clone()], &chain(), Some(&verified));
        let mut forged = tx(2, 1);
        forged.signature.0[7] ^= 0x01;
        let mut forged_too = tx(3, 0);
        forged_too.signature.0[0] ^= 0x01;
        let batches = vec![
            vec![tx(1, 0), tx(1, 1)],
            vec![tx(2, 0), forged.clone(), tx(2, 2)],
            vec![known.clone(), forged_too.clone()],
            Vec::new(),
        ];
        let checked = check_batches(batches.clone(), &chain(), Some(&verified));
        let ok: Vec<Vec<bool>> = checked
            .iter()
            .map(|b| b.iter().map(Result::is_ok).collect())
            .collect();
        assert_eq!(
            ok,
            vec![
                vec![true, true],
                vec![true, false, true],
                vec![true, false],
                vec![]
            ]
        );
        assert!(matches!(checked[1][1], Err(AddError::BadSignature(_))));
        for (batch, results) in batches.iter().zip(&checked) {
            for (tx, result) in batch.iter().zip(results) {
                assert_eq!(result.is_ok(), verified.contains(&tx.id()));
                if let Ok(c) = result {
                    assert_eq!(c.id(), tx.id());
                }
            }
        }
    }

    #[test]
    fn stale_and_future_nonces_are_refused() {
        let mut m = pool(MempoolConfig::default());
        let next = nonces(&[(1, 5)]);
        assert_eq!(
            m.add_batch(vec![tx(1, 3)], &next),
            vec![Err(AddError::StaleNonce {
                expected: 5,
                got: 3
            })]
        );
        assert_eq!(
            m.add_batch(vec![tx(1, 7)], &next),
            vec![Err(AddError::FutureNonce {
                expected: 5,
                got: 7
            })]
        );
        assert!(m.is_empty());
        assert!(m
            .add_batch(vec![tx(1, 5), tx(1, 6)], &next)
            .iter()
            .all(Result::is_ok));
        // Another transaction for a nonce the pool already holds is stale.
        assert_eq!(
            m.add_batch(vec![other_tx(1, 6)], &next),
            vec![Err(AddError::StaleNonce {
                expected: 7,
                got: 6
            })]
        );
        assert_eq!(
            m.add_batch(vec![tx(1, 8)], &next),
            vec![Err(AddError::FutureNonce {
                expected: 7,
                got: 8
            })]
        );
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn the_per_signer_quota_is_enforced() {
        let mut m = pool(MempoolConfig {
            max_per_signer: 3,
            ..MempoolConfig::default()
        });
        let results = m.add_batch((0..5).map(|n| tx(1, n)).collect(), &zero);
        assert!(results[..3].iter().all(Result::is_ok));
        assert_eq!(results[3], Err(AddError::SignerQuota { max: 3 }));
        // Nonce 4 now follows nothing in the pool.
        assert_eq!(
            results[4],
            Err(AddError::FutureNonce {
                expected: 3,
                got: 4
            })
        );
        assert!(m.add_batch(vec![tx(2, 0)], &zero)[0].is_ok());
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn the_pool_is_full_by_count() {
        let mut m = pool(MempoolConfig {
            max_txs: 2,
            ..MempoolConfig::default()
        });
        let results = m.add_batch(vec![tx(1, 0), tx(2, 0), tx(3, 0)], &zero);
        assert!(results[0].is_ok() && results[1].is_ok());
        assert_eq!(results[2], Err(AddError::Full));
        assert_eq!(m.len(), 2);
        // Room comes back when a block takes transactions out.
        m.update(&[tx(1, 0)], &nonces(&[(1, 1)]));
        assert!(m.add_batch(vec![tx(3, 0)], &zero)[0].is_ok());
    }

    #[test]
    fn the_pool_is_full_by_bytes() {
        let one = size(&tx(1, 0));
        let mut m = pool(MempoolConfig {
            max_bytes: 2 * one + one / 2,
            ..MempoolConfig::default()
        });
        let results = m.add_batch(vec![tx(1, 0), tx(2, 0), tx(3, 0)], &zero);
        assert!(results[0].is_ok() && results[1].is_ok());
        assert_eq!(results[2], Err(AddError::Full));
        assert_eq!(m.bytes(), 2 * one);
    }

    #[test]
    fn oversized_transactions_are_refused() {
        let call = Call::Budget(BudgetCall::Vote {
            round: 1,
            voter: Did([1; 16]),
            projects: (0..20_000).collect(),
        });
        let big = Transaction::sign(
            &testing::key(0xb0, 1),
            chain(),
            0,
            acta_ledger::testing::NO_EXPIRY,
            call,
        );
        let mut m = pool(MempoolConfig::default());
        assert_eq!(
            m.add_batch(vec![big.clone()], &zero),
            vec![Err(AddError::TooLarge {
                bytes: size(&big),
                max: TX_BYTES_MAX
            })]
        );
        assert!(m.is_empty());
    }

    /// Transaction `nonce` of user `user`, valid until `valid_until`.
    fn tx_until(user: u32, nonce: u64, valid_until: u64) -> Transaction {
        let call = Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        });
        Transaction::sign(
            &testing::key(0xb0, user),
            chain(),
            nonce,
            Timestamp(valid_until),
            call,
        )
    }

    #[test]
    fn a_time_limit_must_be_neither_past_nor_too_far_ahead() {
        let now = Timestamp(1_000_000);
        assert_eq!(check_lifetime(&tx_until(1, 0, 1_000_000), now, 60), Ok(()));
        assert_eq!(check_lifetime(&tx_until(1, 0, 1_060_000), now, 60), Ok(()));
        assert_eq!(
            check_lifetime(&tx_until(1, 0, 999_999), now, 60),
            Err(AddError::Expired {
                valid_until: Timestamp(999_999),
                now
            })
        );
        assert_eq!(
            check_lifetime(&tx_until(1, 0, 1_060_001), now, 60),
            Err(AddError::TooLongLived {
                valid_until: Timestamp(1_060_001),
                now,
                max_secs: 60
            })
        );
    }

    #[test]
    fn expired_transactions_go_with_their_signers_later_ones() {
        let mut m = pool(MempoolConfig::default());
        let txs = vec![
            tx_until(1, 0, 500),
            tx_until(1, 1, 9_000),
            tx_until(2, 0, 700),
            tx_until(3, 0, 400),
            tx_until(3, 1, 300),
        ];
        assert!(m.add_batch(txs.clone(), &zero).iter().all(Result::is_ok));
        assert_eq!(m.expire(Timestamp(400)), 1, "user 3's nonce 1 only");
        assert!(m.contains(&txs[3].id()) && !m.contains(&txs[4].id()));
        assert_eq!(m.expire(Timestamp(400)), 0);
        // User 1's nonce 0 expires and takes nonce 1 (which would wait behind it for ever).
        assert_eq!(m.expire(Timestamp(501)), 3);
        assert_eq!(m.reap(10, usize::MAX), vec![txs[2].clone()]);
        assert_eq!(m.expire(Timestamp(u64::MAX)), 1);
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
    }

    #[test]
    fn a_judge_refusal_leaves_the_pool_unchanged_and_a_recheck_evicts_in_order() {
        let mut m = pool(MempoolConfig::default());
        let refuse_user_2 = |tx: &Transaction| {
            if tx.signer == signer(2) {
                Err(AddError::Refused {
                    code: RefusalCode::Unauthorized,
                    message: "not authorised: user 2".into(),
                })
            } else {
                Ok(())
            }
        };
        let mut judged = Vec::new();
        let results = m.add_checked(
            check_batch(vec![tx(1, 0), tx(2, 0), tx(1, 1)], &chain(), None),
            &zero,
            &mut |t, _| {
                judged.push(t.id());
                refuse_user_2(t)
            },
        );
        assert!(results[0].is_ok() && results[2].is_ok());
        assert_eq!(results[1].as_ref().unwrap_err().code(), "unauthorized");
        assert_eq!(judged.len(), 3, "each judged once, in order");
        assert_eq!(m.len(), 2);
        // User 2's nonce 0 is still free.
        assert!(m
            .add_batch(vec![tx(2, 0), tx(2, 1)], &zero)
            .iter()
            .all(Result::is_ok));
        // A recheck that refuses user 2 now takes both of its transactions; one that cannot
        // read the state changes nothing.
        let mut seen = Vec::new();
        let dropped = m.recheck(&mut |t, _| {
            seen.push((t.signer, t.nonce));
            refuse_user_2(t)
        });
        assert_eq!(dropped, Ok(2));
        assert_eq!(
            seen,
            vec![(signer(1), 0), (signer(1), 1), (signer(2), 0)],
            "arrival order, and nothing after an evicted signer's refusal"
        );
        assert_eq!(m.reap(10, usize::MAX), vec![tx(1, 0), tx(1, 1)]);
        let broken = m.recheck(&mut |_, _| Err(AddError::Unavailable("disk".into())));
        assert!(broken.is_err());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn errors_have_codes_and_messages() {
        let all = [
            (AddError::Duplicate(Hash::ZERO), "duplicate"),
            (
                AddError::WrongChain {
                    expected: "a".into(),
                    got: "b".into(),
                },
                "wrong_chain",
            ),
            (AddError::BadSignature("x".into()), "bad_signature"),
            (
                AddError::StaleNonce {
                    expected: 2,
                    got: 1,
                },
                "stale_nonce",
            ),
            (
                AddError::FutureNonce {
                    expected: 2,
                    got: 3,
                },
                "future_nonce",
            ),
            (AddError::SignerQuota { max: 4 }, "signer_quota"),
            (AddError::Full, "mempool_full"),
            (AddError::TooLarge { bytes: 9, max: 8 }, "too_large"),
            (
                AddError::Expired {
                    valid_until: Timestamp(1),
                    now: Timestamp(2),
                },
                "expired",
            ),
            (
                AddError::TooLongLived {
                    valid_until: Timestamp(9_000_000),
                    now: Timestamp(2),
                    max_secs: 3_600,
                },
                "too_long_lived",
            ),
            (
                AddError::Refused {
                    code: RefusalCode::WrongPhase,
                    message: "wrong phase: voting has ended".into(),
                },
                "wrong_phase",
            ),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            AddError::StaleNonce {
                expected: 2,
                got: 1
            }
            .to_string(),
            "stale nonce 1: the signer's next nonce is 2"
        );
    }

    #[test]
    fn reap_keeps_arrival_order_and_respects_limits() {
        let mut m = pool(MempoolConfig::default());
        let txs = vec![tx(1, 0), tx(2, 0), tx(1, 1), tx(3, 0), tx(2, 1)];
        assert!(m.add_batch(txs.clone(), &zero).iter().all(Result::is_ok));
        assert_eq!(m.reap(usize::MAX, usize::MAX), txs);
        assert_eq!(m.reap(3, usize::MAX), txs[..3]);
        assert!(m.reap(0, usize::MAX).is_empty());
        let two = size(&txs[0]) + size(&txs[1]);
        assert_eq!(m.reap(usize::MAX, two), txs[..2]);
        assert_eq!(m.reap(usize::MAX, two + size(&txs[2]) - 1), txs[..2]);
        assert!(m.reap(usize::MAX, 0).is_empty());
        // Reaping takes nothing out.
        assert_eq!(m.len(), 5);
    }

    #[test]
    fn update_removes_committed_drops_stale_and_gapped_signers_and_keeps_the_rest() {
        let mut m = pool(MempoolConfig::default());
        // Users: 1 has 0..4, 2 has 0..2, 3 has 0..2 (untouched), 4 has 0..2, 5 has 0..2,
        // 6 has 0..2.
        let mut txs = Vec::new();
        for (user, count) in [(1, 4), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2)] {
            txs.extend((0..count).map(|n| tx(user, n)));
        }
        assert!(m.add_batch(txs, &zero).iter().all(Result::is_ok));
        assert_eq!(m.len(), 14);
        // The block: user 1's 0 and 1, user 2's 0, another transaction of user 4 for nonce 0,
        // user 5's 0 (refused by execution, it still uses up nonce 0), and user 6's nonce
        // moved to 3 by transactions this pool never saw.
        let block = vec![
            tx(1, 0),
            tx(1, 1),
            tx(2, 0),
            other_tx(4, 0),
            tx(5, 0),
            tx(6, 0),
            tx(6, 1),
            other_tx(6, 2),
        ];
        let next = nonces(&[(1, 2), (2, 1), (4, 1), (5, 1), (6, 3)]);
        let dropped = m.update(&block, &next);
        // Dropped besides the committed: user 4's old 0 (stale).
        assert_eq!(dropped, 1);
        let left = m.reap(usize::MAX, usize::MAX);
        assert_eq!(
            left,
            vec![
                tx(1, 2),
                tx(1, 3),
                tx(2, 1),
                tx(3, 0),
                tx(3, 1),
                tx(4, 1),
                tx(5, 1)
            ]
        );
        assert_eq!(m.len(), 7);
        assert_eq!(m.bytes(), left.iter().map(size).sum::<usize>());
        for gone in [tx(1, 0), tx(4, 0), tx(5, 0), tx(6, 0)] {
            assert!(!m.contains(&gone.id()));
        }
        // A gap (a signer whose next nonce is below the pool's lowest) drops the signer.
        let dropped = m.update(&[other_tx(5, 0)], &nonces(&[(5, 0)]));
        assert_eq!(dropped, 1, "user 5's 1 can never execute after nonce 0");
        assert!(!m.contains(&tx(5, 1).id()));
        // A signer whose next nonce jumped past the pool (by transactions this pool never
        // saw) loses everything as stale.
        let dropped = m.update(&[other_tx(1, 8)], &nonces(&[(1, 9), (2, 1), (4, 1)]));
        assert_eq!(dropped, 2);
        assert_eq!(
            m.reap(usize::MAX, usize::MAX),
            vec![tx(2, 1), tx(3, 0), tx(3, 1), tx(4, 1)]
        );
        assert_eq!(
            m.update(&[other_tx(1, 9)], &nonces(&[(1, 10), (2, 1), (4, 1)])),
            0
        );
    }

    #[test]
    fn adding_after_a_commit_without_update_drops_the_used_nonces_first() {
        let mut m = pool(MempoolConfig::default());
        assert!(m
            .add_batch(vec![tx(1, 0), tx(1, 1)], &zero)
            .iter()
            .all(Result::is_ok));
        // Nonces 0 to 2 were used by a block the pool has not been told about.
        let next = nonces(&[(1, 3)]);
        assert_eq!(m.add_batch(vec![tx(1, 3)], &next), vec![Ok(tx(1, 3).id())]);
        assert_eq!(m.reap(usize::MAX, usize::MAX), vec![tx(1, 3)]);
        assert_eq!(m.len(), 1);
        assert_eq!(m.bytes(), size(&tx(1, 3)));
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Transactions `(user, nonce offset from the committed next nonce minus one,
        /// other content)`.
        Add(Vec<(u32, u64, bool)>),
        /// Commit the first `take` transactions of the pool, then maybe a transaction from
        /// outside the pool. Every transaction of a block uses up its nonce, whether its
        /// call is accepted or refused (blocks hold only transactions with the next nonce).
        Commit {
            take: usize,
            external: Option<(u32, bool)>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop::collection::vec((0u32..4, 0u64..7, any::<bool>()), 1..7).prop_map(Op::Add),
            1 => (0usize..7, prop::option::of((0u32..4, any::<bool>())))
                .prop_map(|(take, external)| Op::Commit { take, external }),
        ]
    }

    fn make(user: u32, nonce: u64, other: bool) -> Transaction {
        if other {
            other_tx(user, nonce)
        } else {
            tx(user, nonce)
        }
    }

    /// A straightforward model of the pool: a list in arrival order.
    #[derive(Debug, Default)]
    struct Model {
        txs: Vec<Transaction>,
    }

    impl Model {
        fn count(&self, key: &PublicKey) -> usize {
            self.txs.iter().filter(|t| &t.signer == key).count()
        }

        fn bytes(&self) -> usize {
            self.txs.iter().map(size).sum()
        }

        fn add(
            &mut self,
            t: Transaction,
            config: &MempoolConfig,
            state: &BTreeMap<PublicKey, u64>,
        ) -> Result<Hash, AddError> {
            if self.txs.iter().any(|x| x.id() == t.id()) {
                return Err(AddError::Duplicate(t.id()));
            }
            let count = self.count(&t.signer);
            let expected = state.get(&t.signer).copied().unwrap_or(0) + count as u64;
            if t.nonce < expected {
                return Err(AddError::StaleNonce {
                    expected,
                    got: t.nonce,
                });
            }
            if t.nonce > expected {
                return Err(AddError::FutureNonce {
                    expected,
                    got: t.nonce,
                });
            }
            if count >= config.max_per_signer {
                return Err(AddError::SignerQuota {
                    max: config.max_per_signer,
                });
            }
            if self.txs.len() >= config.max_txs || self.bytes() + size(&t) > config.max_bytes {
                return Err(AddError::Full);
            }
            let id = t.id();
            self.txs.push(t);
            Ok(id)
        }

        fn update(&mut self, committed: &[Transaction], state: &BTreeMap<PublicKey, u64>) -> usize {
            let ids: BTreeSet<Hash> = committed.iter().map(Transaction::id).collect();
            self.txs.retain(|t| !ids.contains(&t.id()));
            let before = self.txs.len();
            let next = |k: &PublicKey| state.get(k).copied().unwrap_or(0);
            self.txs.retain(|t| t.nonce >= next(&t.signer));
            let gapped: BTreeSet<PublicKey> = self
                .txs
                .iter()
                .map(|t| t.signer)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|k| {
                    self.txs
                        .iter()
                        .filter(|t| &t.signer == k)
                        .map(|t| t.nonce)
                        .min()
                        != Some(next(k))
                })
                .collect();
            self.txs.retain(|t| !gapped.contains(&t.signer));
            before - self.txs.len()
        }
    }

    /// Checks the pool against the model and its own invariants.
    fn check(m: &Mempool, model: &Model, state: &BTreeMap<PublicKey, u64>, config: &MempoolConfig) {
        let all = m.reap(usize::MAX, usize::MAX);
        assert_eq!(all, model.txs);
        assert_eq!(m.len(), all.len());
        assert_eq!(m.is_empty(), all.is_empty());
        assert_eq!(m.bytes(), all.iter().map(size).sum::<usize>());
        assert!(m.len() <= config.max_txs && m.bytes() <= config.max_bytes);
        assert_eq!((m.by_id.len(), m.by_expiry.len()), (m.len(), m.len()));
        let mut next: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for t in &all {
            assert!(m.contains(&t.id()));
            let n = next
                .entry(t.signer)
                .or_insert_with(|| state.get(&t.signer).copied().unwrap_or(0));
            assert_eq!(t.nonce, *n, "gap in a signer's nonces");
            *n += 1;
        }
        for k in next.keys() {
            assert!(model.count(k) <= config.max_per_signer);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_adds_and_commits_keep_the_pool_consistent_and_gapless(
            ops in prop::collection::vec(op(), 1..24),
            max_txs in 4usize..14,
            max_per_signer in 1usize..5,
        ) {
            let one = size(&tx(0, 0));
            let config = MempoolConfig { max_txs, max_bytes: 9 * one, max_per_signer, ..MempoolConfig::default() };
            let mut m = Mempool::new(config.clone());
            let mut model = Model::default();
            let mut state: BTreeMap<PublicKey, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Add(specs) => {
                        let txs: Vec<Transaction> = specs
                            .iter()
                            .map(|&(user, offset, other)| {
                                let base = state.get(&signer(user)).copied().unwrap_or(0);
                                make(user, (base + offset).saturating_sub(1), other)
                            })
                            .collect();
                        let view = state.clone();
                        let results =
                            m.add_batch(txs.clone(), &move |k| view.get(k).copied().unwrap_or(0));
                        let expected: Vec<_> =
                            txs.into_iter().map(|t| model.add(t, &config, &state)).collect();
                        prop_assert_eq!(results, expected);
                    }
                    Op::Commit { take, external } => {
                        let mut block = m.reap(take, usize::MAX);
                        let from_pool = block.len();
                        prop_assert_eq!(&block[..], &model.txs[..from_pool.min(model.txs.len())]);
                        if let Some((user, other)) = external {
                            let mut next = state.get(&signer(user)).copied().unwrap_or(0);
                            next += block.iter().filter(|t| t.signer == signer(user)).count() as u64;
                            block.push(make(user, next, other));
                        }
                        // Execute: every transaction of the block has its signer's next
                        // nonce and uses it up.
                        for t in &block {
                            let n = state.entry(t.signer).or_insert(0);
                            prop_assert_eq!(t.nonce, *n, "a block holds only next nonces");
                            *n += 1;
                        }
                        let before = m.len();
                        // The external transaction may be in the pool too.
                        let in_pool: BTreeSet<Hash> =
                            block.iter().map(Transaction::id).filter(|id| m.contains(id)).collect();
                        prop_assert!(in_pool.len() >= from_pool);
                        let view = state.clone();
                        let dropped =
                            m.update(&block, &move |k| view.get(k).copied().unwrap_or(0));
                        let model_dropped = model.update(&block, &state);
                        prop_assert_eq!(dropped, model_dropped);
                        prop_assert_eq!(before - m.len(), in_pool.len() + dropped);
                    }
                }
                check(&m, &model, &state, &config);
            }
        }
    }
}
