//! The core's timeouts, on the driver's clock.

use std::collections::BTreeMap;

use acta_consensus::Timeout;

use super::Millis;

/// Timeouts the core scheduled, in the order they fall due (equal times in the order they
/// were set).
#[derive(Debug, Default)]
pub(super) struct Timers {
    due: BTreeMap<(Millis, u64), Timeout>,
    seq: u64,
}

impl Timers {
    pub(super) fn set(&mut self, at: Millis, timeout: Timeout) {
        self.seq += 1;
        self.due.insert((at, self.seq), timeout);
    }

    /// The earliest time a timeout falls due.
    pub(super) fn next(&self) -> Option<Millis> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Takes the earliest timeout due at `now`, if any.
    pub(super) fn pop_due(&mut self, now: Millis) -> Option<Timeout> {
        let entry = self.due.first_entry()?;
        (entry.key().0 <= now).then(|| entry.remove())
    }

    pub(super) fn clear(&mut self) {
        self.due.clear();
    }
}

#[cfg(test)]
mod tests {
    use acta_consensus::TimeoutStep;
    use acta_ledger::{Height, Round};

    use super::*;

    fn timeout(round: u32) -> Timeout {
        Timeout {
            height: Height(1),
            round: Round(round),
            step: TimeoutStep::Propose,
        }
    }

    #[test]
    fn timeouts_fall_due_in_time_order_then_in_the_order_set() {
        let mut t = Timers::default();
        t.set(30, timeout(0));
        t.set(10, timeout(1));
        t.set(10, timeout(2));
        assert_eq!(t.next(), Some(10));
        assert_eq!(t.pop_due(9), None);
        assert_eq!(t.pop_due(10), Some(timeout(1)));
        assert_eq!(t.pop_due(10), Some(timeout(2)));
        assert_eq!(t.pop_due(29), None);
        assert_eq!(t.pop_due(100), Some(timeout(0)));
        assert_eq!(t.next(), None);
    }
}
