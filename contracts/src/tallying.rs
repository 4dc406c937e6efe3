//! A closed round's tally, computed off the consensus path
//! (docs/adr/0019-tally-after-the-closing-block.md).
//!
//! The block at a round's `closes_at` only freezes it; the block `tally_delay` heights
//! later stores its tally. In between, a node calls [`start`] after each block it commits
//! (and once when it starts): every round the state shows `tallying` gets a thread that
//! reads its frozen ballots and tallies them. The block that stores the tally asks
//! [`result`] for it: the thread's result, waited for if the thread is still running, or
//! the same tally computed there and then (no thread was started, or it failed).
//!
//! Results are remembered per process under the state root the ballots were frozen in and
//! the round's id: that pair names the tally's whole input, so a result can never be used
//! for another election, whichever chain or test in the process asked first. Nothing here
//! decides anything: the stored tally is the same with or without the threads.

use std::{
    num::NonZeroUsize,
    panic::AssertUnwindSafe,
    sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError},
};

use acta_ledger::{
    records::{RoundStatus, TallyRecord},
    state::AuthenticatedState,
    Hash, Height,
};

use crate::{budget, error::ExecError, view::StateView};

/// Tallies remembered: more than the rounds that can be tallying at once.
const REMEMBERED: usize = 128;
const _: () = assert!(REMEMBERED as u64 >= 2 * budget::ROUNDS_PENDING_MAX);

/// What the tally of a round is, as far as this process knows.
#[derive(Clone, Debug)]
enum Progress {
    Running,
    Done(TallyRecord),
    /// The thread stopped without a result: the storing block computes it.
    Failed,
}

#[derive(Debug)]
struct Slot {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Slot {
    fn set(&self, p: Progress) {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = p;
        self.changed.notify_all();
    }
}

type Key = (Hash, u64);

fn slots() -> MutexGuard<'static, lru::LruCache<Key, Arc<Slot>>> {
    static SLOTS: OnceLock<Mutex<lru::LruCache<Key, Arc<Slot>>>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(REMEMBERED).expect("not zero"),
            ))
        })
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Tally threads allowed to run at once; the others wait for a permit.
const RUNNING_MAX: usize = 2;

/// A place among the [`RUNNING_MAX`] tally threads that run, given back when dropped.
struct Permit;

fn running() -> &'static (Mutex<usize>, Condvar) {
    static RUNNING: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();
    RUNNING.get_or_init(|| (Mutex::new(0), Condvar::new()))
}

impl Permit {
    fn take() -> Permit {
        let (count, freed) = running();
        let mut n = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *n >= RUNNING_MAX {
            n = freed.wait(n).unwrap_or_else(PoisonError::into_inner);
        }
        *n += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (count, freed) = running();
        let mut n = count.lock().unwrap_or_else(PoisonError::into_inner);
        *n = n.saturating_sub(1);
        freed.notify_one();
    }
}

/// Marks a slot failed if its thread ends without a result (a panic included).
struct FailUnlessDone(Arc<Slot>);

impl Drop for FailUnlessDone {
    fn drop(&mut self) {
        let mut p = self
            .0
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if matches!(*p, Progress::Running) {
            *p = Progress::Failed;
            self.0.changed.notify_all();
        }
    }
}

/// Starts a thread for each round the state after `height` shows tallying whose tally
/// this process has neither computed nor started. Returns how many it started.
pub fn start(
    state: Arc<dyn AuthenticatedState + Send + Sync>,
    height: Height,
) -> Result<usize, ExecError> {
    let view = StateView::new(state.as_ref(), height);
    let mut started = 0;
    for (_, id) in budget::tallying(&view)? {
        let round = budget::round_at(&view, id)?;
        let RoundStatus::Tallying { ballots_at, .. } = round.status else {
            continue;
        };
        let slot = {
            let mut slots = slots();
            // Started or done already; a failed thread is started again.
            if slots.peek(&(ballots_at, id)).is_some_and(|s| {
                !matches!(
                    *s.progress.lock().unwrap_or_else(PoisonError::into_inner),
                    Progress::Failed
                )
            }) {
                continue;
            }
            let slot = Arc::new(Slot {
                progress: Mutex::new(Progress::Running),
                changed: Condvar::new(),
            });
            slots.put((ballots_at, id), slot.clone());
            slot
        };
        let state = state.clone();
        let guard = FailUnlessDone(slot.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("tally-{id}"))
            .spawn(move || {
                let guard = guard;
                // Two at a time at most: the node's consensus needs a core.
                let _permit = Permit::take();
                // The ballots are frozen: any state from the closing on holds them.
                let view = StateView::new(state.as_ref(), height);
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    budget::compute_tally(&view, &round)
                }));
                if let Ok(Ok(record)) = outcome {
                    guard.0.set(Progress::Done(record));
                }
            });
        if spawned.is_err() {
            slot.set(Progress::Failed);
        } else {
            started += 1;
        }
    }
    Ok(started)
}

/// The tally of round `id` whose ballots were frozen in the state with root
/// `ballots_at`: remembered (waiting for its thread if one is running), or `compute`d and
/// remembered.
pub(crate) fn result(
    ballots_at: Hash,
    id: u64,
    compute: impl FnOnce() -> Result<TallyRecord, ExecError>,
) -> Result<TallyRecord, ExecError> {
    let slot = slots().get(&(ballots_at, id)).cloned();
    if let Some(slot) = slot {
        let mut p = slot.progress.lock().unwrap_or_else(PoisonError::into_inner);
        while matches!(*p, Progress::Running) {
            p = slot.changed.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        if let Progress::Done(record) = &*p {
            return Ok(record.clone());
        }
    }
    let record = compute()?;
    slots().put(
        (ballots_at, id),
        Arc::new(Slot {
            progress: Mutex::new(Progress::Done(record.clone())),
            changed: Condvar::new(),
        }),
    );
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(round: u64) -> TallyRecord {
        TallyRecord {
            round,
            rule: acta_ledger::records::RuleProfile {
                rule: acta_ledger::records::Rule::Greedy,
                tie_break: acta_ledger::records::TieBreak::VotesThenCost,
            },
            selected: vec![1],
            total_cost: 7,
            approvals: vec![0, 3],
            voters: 3,
            endowment: None,
            add1_steps: None,
            height: Height(0),
            ballots_root: Hash::digest(b"ballots"),
        }
    }

    fn slot(p: Progress) -> Arc<Slot> {
        Arc::new(Slot {
            progress: Mutex::new(p),
            changed: Condvar::new(),
        })
    }

    #[test]
    fn the_storing_block_waits_for_a_running_thread_and_takes_its_result() {
        let key = (Hash::digest(b"a running tally"), 1);
        let running = slot(Progress::Running);
        slots().put(key, running.clone());
        let finisher = std::thread::spawn(move || {
            // Finishes whenever it runs: `result` must wait for it either way.
            running.set(Progress::Done(record(1)));
        });
        let got = result(key.0, key.1, || {
            panic!("computed although a thread was running")
        });
        finisher.join().unwrap();
        assert_eq!(got.unwrap(), record(1));
        // Remembered for the block's other executions.
        assert_eq!(
            result(key.0, key.1, || panic!("computed again")).unwrap(),
            record(1)
        );
    }

    #[test]
    fn a_failed_or_missing_thread_leaves_the_tally_to_the_storing_block() {
        let failed = (Hash::digest(b"a failed tally"), 2);
        slots().put(failed, slot(Progress::Failed));
        assert_eq!(
            result(failed.0, failed.1, || Ok(record(2))).unwrap(),
            record(2)
        );
        let missing = (Hash::digest(b"a tally never started"), 3);
        assert_eq!(
            result(missing.0, missing.1, || Ok(record(3))).unwrap(),
            record(3)
        );
        // Computed once, then remembered.
        assert_eq!(
            result(missing.0, missing.1, || panic!("computed again")).unwrap(),
            record(3)
        );
        // A failure to compute is the block's error, and nothing is remembered.
        let broken = (Hash::digest(b"a tally whose state fails"), 4);
        let err = result(broken.0, broken.1, || {
            Err(ExecError::Corrupt {
                what: "budget_ballot",
                reason: "missing".into(),
            })
        });
        assert!(err.is_err());
        assert_eq!(
            result(broken.0, broken.1, || Ok(record(4))).unwrap(),
            record(4)
        );
    }

    #[test]
    fn a_thread_that_panics_is_marked_failed() {
        let s = slot(Progress::Running);
        let guard = FailUnlessDone(s.clone());
        let _ = std::thread::spawn(move || {
            let _guard = guard;
            panic!("a tally thread dies");
        })
        .join();
        assert!(matches!(*s.progress.lock().unwrap(), Progress::Failed));
    }
}
