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
            if slots.contains(&(ballots_at, id)) {
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
