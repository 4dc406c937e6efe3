//! Signature checks of arriving transactions, off the node's loop.
//!
//! Batches (an API call's, a peer's gossip message, a peer's pending transactions) wait in
//! arrival order. Whenever a worker is free (one per core), a check takes the batches that
//! waited, up to [`JOB_TXS`] transactions, and verifies their signatures as one batch on a
//! blocking thread ([`check_batches`]): under load, many senders' signatures share one
//! batch, which costs less per signature. Checks may end in any order; their batches are
//! handed back in the order they came, so a signer's nonces sent one after another reach
//! the mempool in order.
//!
//! A forged signature fails a merged check, and every batch in it is then checked on its
//! own (each sender's verdicts are those its batch would get alone). So that a sender of
//! forgeries cannot make every merged check fail, merging stops for [`MERGE_PAUSE`] after
//! a merged check that held a forgery.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use acta_ledger::{store::Store, ChainId, Transaction};
use futures::{stream::FuturesUnordered, StreamExt};

use crate::mempool::{check_batches, AddError, Checked, VerifiedIds};

/// The most transactions one check takes from the batches waiting (it takes at least one
/// batch, whatever its size).
pub const JOB_TXS: usize = 1024;
/// How long checks take one batch each after a merged check held a forged signature.
pub const MERGE_PAUSE: Duration = Duration::from_secs(1);

/// A batch's checked transactions, and how many of its secret ballots carry a token no
/// registrar signed (proof of a forgery, as a bad signature is).
#[derive(Debug)]
pub struct CheckedBatch {
    pub checked: Vec<Result<Checked, AddError>>,
    pub forged_tokens: usize,
}

/// What a check found: its sequence number, then each batch's results, or `None` if the
/// check panicked.
pub type CheckEnded = (u64, Option<Vec<CheckedBatch>>);

/// Judges a batch's secret-ballot tokens against the latest state: how many are forged.
pub type TokenJudge = fn(&Store, &ChainId, &[Result<Checked, AddError>]) -> usize;

/// The checks of one node. `O` says where a batch came from, to answer when it is done.
pub struct Checks<O> {
    chain: ChainId,
    verified: Arc<VerifiedIds>,
    store: Arc<Store>,
    judge_tokens: TokenJudge,
    workers: usize,
    arrivals: VecDeque<(Vec<Transaction>, O)>,
    running: FuturesUnordered<tokio::task::JoinHandle<CheckEnded>>,
    /// The origins and sizes of the batches of each check started and not yet handed
    /// back.
    started: BTreeMap<u64, Vec<(O, usize)>>,
    /// Checks that ended before an earlier one.
    ended: BTreeMap<u64, Option<Vec<CheckedBatch>>>,
    next_seq: u64,
    next_out: u64,
    merge_paused_until: Option<Instant>,
}

impl<O> std::fmt::Debug for Checks<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field("waiting", &self.arrivals.len())
            .field("running", &self.running.len())
            .field("started", &self.started.len())
            .finish_non_exhaustive()
    }
}

impl<O> Checks<O> {
    pub fn new(
        chain: ChainId,
        verified: Arc<VerifiedIds>,
        store: Arc<Store>,
        judge_tokens: TokenJudge,
        workers: usize,
    ) -> Self {
        Checks {
            chain,
            verified,
            store,
            judge_tokens,
            workers: workers.max(1),
            arrivals: VecDeque::new(),
            running: FuturesUnordered::new(),
            started: BTreeMap::new(),
            ended: BTreeMap::new(),
            next_seq: 0,
            next_out: 0,
            merge_paused_until: None,
        }
    }

    /// Batches waiting for a check, being checked, or checked and waiting for an earlier
    /// one to be handed back.
    pub fn waiting(&self) -> usize {
        self.arrivals.len() + self.started.values().map(Vec::len).sum::<usize>()
    }

    /// Queues a batch and starts a check if a worker is free. Returns the sizes of the
    /// checks started (transactions each).
    pub fn push(&mut self, txs: Vec<Transaction>, origin: O, now: Instant) -> Vec<usize> {
        self.arrivals.push_back((txs, origin));
        self.start(now)
    }

    /// Starts checks while a worker is free. Returns the sizes of the checks started.
    fn start(&mut self, now: Instant) -> Vec<usize> {
        let merging = self.merge_paused_until.is_none_or(|until| now >= until);
        let mut sizes = Vec::new();
        while self.running.len() < self.workers && !self.arrivals.is_empty() {
            let mut batches = Vec::new();
            let mut origins = Vec::new();
            let mut txs = 0;
            while let Some((next, _)) = self.arrivals.front() {
                if !batches.is_empty() && (!merging || txs + next.len() > JOB_TXS) {
                    break;
                }
                txs += next.len();
                if let Some((batch, origin)) = self.arrivals.pop_front() {
                    origins.push((origin, batch.len()));
                    batches.push(batch);
                }
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.started.insert(seq, origins);
            let (chain, verified, store, judge) = (
                self.chain.clone(),
                self.verified.clone(),
                self.store.clone(),
                self.judge_tokens,
            );
            self.running.push(tokio::task::spawn_blocking(move || {
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    check_batches(batches, &chain, Some(&verified))
                        .into_iter()
                        .map(|checked| CheckedBatch {
                            forged_tokens: judge(&store, &chain, &checked),
                            checked,
                        })
                        .collect()
                }));
                (seq, checked.ok())
            }));
            sizes.push(txs);
        }
        sizes
    }

    /// The next check to end (pending forever while none runs: for `select!`).
    pub async fn next(&mut self) -> Result<CheckEnded, tokio::task::JoinError> {
        match self.running.next().await {
            Some(done) => done,
            None => std::future::pending().await,
        }
    }

    /// Takes an ended check and hands back, in the order they came, every batch now due,
    /// with its results (each transaction refused as `Unavailable` if its check
    /// panicked); and starts the next checks, returning their sizes. A check whose task
    /// was cancelled (only when the runtime stops) is an error.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        &mut self,
        done: Result<CheckEnded, tokio::task::JoinError>,
        now: Instant,
    ) -> anyhow::Result<(Vec<(O, CheckedBatch)>, Vec<usize>)> {
        let (seq, results) =
            done.map_err(|e| anyhow::anyhow!("a transaction check did not end: {e}"))?;
        let merged = self.started.get(&seq).is_some_and(|o| o.len() > 1);
        let forged = results.as_ref().is_some_and(|batches| {
            batches
                .iter()
                .flat_map(|b| &b.checked)
                .any(|c| matches!(c, Err(AddError::BadSignature(_))))
        });
        if merged && forged {
            self.merge_paused_until = Some(now + MERGE_PAUSE);
        }
        self.ended.insert(seq, results);
        let mut out = Vec::new();
        while let Some(results) = self.ended.remove(&self.next_out) {
            let origins = self.started.remove(&self.next_out).unwrap_or_default();
            self.next_out += 1;
            match results {
                Some(batches) => out.extend(origins.into_iter().map(|(o, _)| o).zip(batches)),
                None => out.extend(origins.into_iter().map(|(o, n)| {
                    let failed =
                        AddError::Unavailable("the transaction could not be checked".into());
                    let checked = vec![Err(failed); n];
                    (
                        o,
                        CheckedBatch {
                            checked,
                            forged_tokens: 0,
                        },
                    )
                })),
            }
        }
        let started = self.start(now);
        Ok((out, started))
    }
}

#[cfg(test)]
mod tests {
    use acta_ledger::{store::Store, testing};

    use super::*;

    fn tx(user: u32, nonce: u64) -> Transaction {
        testing::create_did_tx(&testing::chain_id(), user, nonce)
    }

    fn no_tokens(_: &Store, _: &ChainId, _: &[Result<Checked, AddError>]) -> usize {
        0
    }

    fn checks(dir: &std::path::Path, workers: usize) -> Checks<u32> {
        let store = Arc::new(Store::open(dir).unwrap());
        Checks::new(
            testing::chain_id(),
            Arc::new(VerifiedIds::new(1024)),
            store,
            no_tokens,
            workers,
        )
    }

    /// Drives `c` until every batch is handed back; returns them in the order handed back.
    async fn drain(c: &mut Checks<u32>) -> Vec<(u32, Vec<bool>)> {
        let mut out = Vec::new();
        while c.waiting() > 0 {
            let done = c.next().await;
            let (batches, _) = c.finish(done, Instant::now()).unwrap();
            out.extend(
                batches
                    .into_iter()
                    .map(|(o, b)| (o, b.checked.iter().map(Result::is_ok).collect())),
            );
        }
        out
    }

    /// Pushes four one-transaction batches (users `first..first + 4`) at `at`, the first
    /// two checked at once and the others waiting; ends one check and returns the sizes of
    /// the checks that started then; hands everything back.
    async fn four_singles_then_next_check(
        c: &mut Checks<u32>,
        first: u32,
        at: Instant,
    ) -> Vec<usize> {
        assert_eq!(c.push(vec![tx(first, 0)], first, at), vec![1]);
        assert_eq!(c.push(vec![tx(first + 1, 0)], first + 1, at), vec![1]);
        for user in first + 2..first + 4 {
            assert!(c.push(vec![tx(user, 0)], user, at).is_empty());
        }
        let done = c.next().await;
        let (_, started) = c.finish(done, at).unwrap();
        drain(c).await;
        started
    }

    /// Batches come back in the order they came, whatever order their checks end in and
    /// however they were merged, each with its own verdicts; a forgery refuses only its
    /// transaction, and pauses merging.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_come_back_in_arrival_order_with_their_own_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = checks(dir.path(), 2);
        let now = Instant::now();
        // The first check takes batch 0 alone, the second batch 1 alone (both workers
        // free); the rest wait and are merged into the next check.
        let mut forged = tx(3, 0);
        forged.signature.0[9] ^= 1;
        let big: Vec<Transaction> = (100..400).map(|u| tx(u, 0)).collect();
        assert_eq!(c.push(big, 0, now), vec![300]);
        assert_eq!(c.push(vec![tx(1, 0)], 1, now), vec![1]);
        assert!(c.push(vec![tx(2, 0), tx(2, 1)], 2, now).is_empty());
        assert!(c.push(vec![forged, tx(3, 1)], 3, now).is_empty());
        assert!(c.push(vec![tx(4, 0)], 4, now).is_empty());
        assert_eq!(c.waiting(), 5);
        let out = drain(&mut c).await;
        let order: Vec<u32> = out.iter().map(|(o, _)| *o).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert!(out[0].1.len() == 300 && out[0].1.iter().all(|ok| *ok));
        assert_eq!(out[2].1, vec![true, true]);
        assert_eq!(out[3].1, vec![false, true]);
        assert_eq!(out[4].1, vec![true]);
        assert_eq!(c.waiting(), 0);

        // The forgery was in a merged check: for a while each check takes one batch; once
        // the pause is over, waiting batches are merged again.
        let later = Instant::now();
        assert_eq!(
            four_singles_then_next_check(&mut c, 5, later).await,
            vec![1]
        );
        let after = later + MERGE_PAUSE;
        assert_eq!(
            four_singles_then_next_check(&mut c, 9, after).await,
            vec![2]
        );
    }
}
