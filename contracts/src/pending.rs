//! What a mempool knows of the state: the latest committed state with the calls of the
//! transactions waiting in the pool applied on top, in the pool's order.
//!
//! A node checks each arriving transaction's call here, as the executor would run it in the
//! next block, and refuses it if the executor would refuse it: the sender gets the refusal
//! as an error, and no block spends a place on it. A transaction that calls on another one
//! still waiting (an approval of a proposal in the pool, a ballot in a round opened by a
//! pooled transaction) sees that one's effects. After each committed block the node starts
//! again from the new state and judges the pool's transactions once more, in order
//! ([`PendingState::rebase`], then [`PendingState::recheck`] for each), dropping those the
//! new state refuses.
//!
//! Judging again runs again only the calls that read a value which is no longer the one
//! they found: each call's [`Trace`] keeps what it read and wrote, and a call whose every
//! read still finds the same value would do the same, so its writes are put back without
//! running it. The values that may differ are those of the keys the block wrote, of the
//! keys written by calls that left the pool, and of the keys written by calls that ran
//! again; only those are compared (a large value, which a trace does not copy, counts as
//! changed if its key is among them). What a call cannot show in its reads is the block's
//! time and height: so every call runs again at least once every [`FULL_RECHECK_MS`] of
//! block time, and whenever the base moves by more than one height.
//!
//! This is advice, not consensus: validators' pools differ, and a block holding a call the
//! executor refuses is still valid (the refusal is its receipt). A transaction refused here
//! was never in a block, so its nonce stays unused; its `valid_until` is what ends its
//! signed bytes' life (docs/adr/0017-mempool-checks-calls.md).

use std::collections::{HashMap, HashSet};

use acta_ledger::{state::AuthenticatedState, Hash, Height, RefusalCode, Timestamp, Transaction};

use crate::{
    error::{CallError, ExecError},
    executor::{apply, BlockContext, NS_NONCE},
    view::{Decoded, Found, Reads, StateView, Trace, Writes},
};

/// The most state values kept from earlier reads (and records decoded); past it the cache
/// starts empty again. The caches outlive a block (a rebase keeps what the block did not
/// change) until the next full recheck, so they are held to about 10 MB each.
const READ_CACHE_MAX: usize = 32_768;

/// The longest, in block time, that a pooled call's verdict may rest on its reads alone:
/// a call may also depend on the block's time or height, which no read shows (a credential
/// that expires, a phase that ends without a write). Such a call, accepted before and
/// refused now, may meanwhile be proposed, and is then committed with its refusal as
/// receipt, as a call judged just before a block's time could always be.
pub const FULL_RECHECK_MS: u64 = 5_000;

type Keyed<V> = HashMap<Hash, V, foldhash::quality::RandomState>;
type KeySet = HashSet<Hash, foldhash::quality::RandomState>;

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
    /// What each accepted call read and wrote when it last ran, by transaction id.
    traces: Keyed<Trace>,
    /// During a recheck, the keys whose values may differ from what a pooled call found
    /// (`None`: every call runs again).
    suspect: Option<KeySet>,
    /// The block time of the last recheck that ran every call.
    full_at: Option<Timestamp>,
    /// How many calls ran ([`PendingState::calls_run`]).
    runs: u64,
    /// How many rechecks kept a call's writes without running it.
    kept: u64,
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
            ..PendingState::default()
        }
    }

    /// The committed height this starts from.
    pub fn base(&self) -> Height {
        self.base
    }

    /// How many calls this pending state ran, admissions and rechecks together (a
    /// recheck that puts a call's writes back without running it does not count).
    pub fn calls_run(&self) -> u64 {
        self.runs
    }

    /// How many times a recheck put a call's writes back without running it.
    pub fn calls_kept(&self) -> u64 {
        self.kept
    }

    /// Starts judging the pool again on the state after `base`, before
    /// [`PendingState::recheck`] is called for each pooled transaction in order. `changed`
    /// holds the keys whose values differ between the current base and `base` (the
    /// block's changes) if `base` is the next height, or no keys if it is the same one;
    /// `None` if they are not known. `pooled` says whether a transaction is still in the
    /// pool; `time` is the time of the block the pool is judged for.
    pub fn rebase<'k>(
        &mut self,
        base: Height,
        changed: Option<impl IntoIterator<Item = &'k Hash>>,
        pooled: impl Fn(&Hash) -> bool,
        time: Timestamp,
    ) {
        let next = base == self.base || self.base.0.checked_add(1) == Some(base.0);
        let fresh = self
            .full_at
            .is_some_and(|at| time.0.saturating_sub(at.0) < FULL_RECHECK_MS);
        let writes = std::mem::take(&mut self.writes);
        self.base = base;
        let Some(changed) = changed.filter(|_| next && fresh) else {
            // Every call runs again, on an empty cache.
            self.read.clear();
            self.decoded.clear();
            self.traces.clear();
            self.suspect = None;
            self.full_at = Some(time);
            return;
        };
        let mut suspect = KeySet::default();
        suspect.extend(changed);
        // What the calls that left the pool wrote is no longer pending.
        self.traces.retain(|id, trace| {
            let kept = pooled(id);
            if !kept {
                suspect.extend(trace.writes.iter().map(|(k, _)| *k));
            }
            kept
        });
        // The values read from the old base are the new base's but for those changed; a
        // record decoded from a pending write goes with the write.
        for key in &suspect {
            self.read.remove(key);
            self.decoded.remove(key);
        }
        for key in writes.keys() {
            self.decoded.remove(key);
        }
        self.suspect = Some(suspect);
    }

    /// Judges a pooled transaction again, after [`PendingState::rebase`] and the pool's
    /// earlier transactions: its call runs again only if a value it read may have
    /// changed; otherwise its writes are put back as they were.
    pub fn recheck(
        &mut self,
        state: &dyn AuthenticatedState,
        ctx: &BlockContext,
        tx: &Transaction,
        id: Hash,
    ) -> Result<(), CheckError> {
        if self.suspect.is_some() {
            if let Some(trace) = self.traces.remove(&id) {
                if self.finds_what(state, &trace.reads)? {
                    for (key, value) in &trace.writes {
                        self.decoded.remove(key);
                        self.writes.insert(*key, value.clone());
                    }
                    self.traces.insert(id, trace);
                    self.kept += 1;
                    return Ok(());
                }
                // Its old writes are no longer pending, whatever it writes now.
                if let Some(suspect) = &mut self.suspect {
                    suspect.extend(trace.writes.iter().map(|(k, _)| *k));
                }
            } else {
                // Not traced (never judged here): what it wrote before is unknown, so
                // every later call runs again.
                self.suspect = None;
            }
        }
        let result = self.check(state, ctx, tx, id);
        match (&result, &mut self.suspect) {
            (Ok(()), Some(suspect)) => {
                if let Some(trace) = self.traces.get(&id) {
                    suspect.extend(trace.writes.iter().map(|(k, _)| *k));
                }
            }
            // The pool drops this transaction and its signer's later ones unjudged, and
            // their writes with them: every later call runs again.
            (Err(_), suspect) => *suspect = None,
            (Ok(()), None) => {}
        }
        result
    }

    /// Whether each of `reads` (a key and the value a call found) finds the same value
    /// now, with the pool's earlier calls applied.
    fn finds_what(
        &mut self,
        state: &dyn AuthenticatedState,
        reads: &[(Hash, Found)],
    ) -> Result<bool, ExecError> {
        let Some(suspect) = &self.suspect else {
            return Ok(false);
        };
        for (key, found) in reads {
            let same = if let Some(now) = self.writes.get(key) {
                found.is(now.as_deref())
            } else if suspect.contains(key) {
                if !self.read.contains_key(key) {
                    let value = state
                        .get(key, self.base)
                        .map_err(|source| ExecError::State {
                            height: self.base,
                            source,
                        })?;
                    self.read.insert(*key, value);
                }
                self.read
                    .get(key)
                    .is_some_and(|now| found.is(now.as_deref()))
            } else {
                // Neither written since nor changed: the base's value, which it found
                // (a value written by an earlier call would be in `writes` or suspect).
                true
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
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
        id: Hash,
    ) -> Result<(), CheckError> {
        let read = std::mem::take(&mut self.read);
        let decoded = std::mem::take(&mut self.decoded);
        let writes = std::mem::take(&mut self.writes);
        self.runs += 1;
        let mut view = StateView::resume(state, self.base, read, decoded, writes).traced();
        let result = match apply(&mut view, ctx, tx) {
            Ok(_) => {
                view.put(NS_NONCE, &tx.signer.0, &tx.nonce.saturating_add(1));
                self.traces.insert(id, view.commit_traced());
                Ok(())
            }
            Err(CallError::Refused(e)) => {
                view.rollback_tx();
                self.traces.remove(&id);
                Err(CheckError::Refused {
                    code: e.code(),
                    message: e.to_string(),
                })
            }
            Err(CallError::Exec(e)) => {
                self.traces.remove(&id);
                Err(CheckError::Exec(e))
            }
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
