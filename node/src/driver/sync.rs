//! Block sync decisions: which peers are ahead, whom to ask for blocks, and when.

use std::collections::BTreeMap;

use acta_ledger::Height;

use super::{Action, Millis};

/// The most blocks one sync request asks for (and one answer carries).
pub const SYNC_BLOCKS_MAX: u32 = 16;

/// A request unanswered for this long is given up, and another may be made.
const SYNC_REQUEST_TIMEOUT_MS: Millis = 30_000;

/// What the driver knows of its peers' heights and its own block requests. One request is
/// in flight at a time.
#[derive(Debug)]
pub(super) struct BlockSync<P> {
    /// Each connected peer's latest height, as it last told.
    heights: BTreeMap<P, Height>,
    /// Peers ahead that answered a block request with no block: the height they lack (a
    /// node restored from a snapshot holds no earlier block). Not asked again for it.
    lacking: BTreeMap<P, Height>,
    /// The request in flight: its id and when it was made.
    in_flight: Option<(u64, Millis)>,
    next_id: u64,
}

impl<P: Copy + Ord> BlockSync<P> {
    pub(super) fn new() -> Self {
        BlockSync {
            heights: BTreeMap::new(),
            lacking: BTreeMap::new(),
            in_flight: None,
            next_id: 0,
        }
    }

    /// A peer told its latest height; a peer at or past `height` (the height being
    /// decided) is asked for blocks.
    pub(super) fn on_status<B>(
        &mut self,
        now: Millis,
        height: Height,
        peer: P,
        peer_height: Height,
        out: &mut Vec<Action<P, B>>,
    ) {
        self.heights.insert(peer, peer_height);
        if peer_height >= height {
            self.request(now, height, Some(peer), out);
        }
    }

    pub(super) fn on_gone(&mut self, peer: &P) {
        self.heights.remove(peer);
        self.lacking.remove(peer);
    }

    /// The answer to request `id` from `peer` held `blocks` blocks, already applied by the
    /// caller (and `height` is the height now being decided).
    pub(super) fn on_answer<B>(
        &mut self,
        now: Millis,
        height: Height,
        id: u64,
        peer: P,
        blocks: usize,
        out: &mut Vec<Action<P, B>>,
    ) {
        if self.in_flight.is_some_and(|(i, _)| i == id) {
            self.in_flight = None;
        }
        if blocks == 0 && self.heights.get(&peer) >= Some(&height) {
            // Ahead, yet without this block: ask another peer.
            self.lacking.insert(peer, height);
            self.request(now, height, None, out);
        } else if blocks > 0 {
            // More may be waiting.
            self.request(now, height, None, out);
        }
    }

    pub(super) fn on_failure(&mut self, id: u64) {
        if self.in_flight.is_some_and(|(i, _)| i == id) {
            self.in_flight = None;
        }
    }

    /// Gives up a request unanswered for too long, and asks again if a peer is ahead.
    pub(super) fn on_tick<B>(&mut self, now: Millis, height: Height, out: &mut Vec<Action<P, B>>) {
        if let Some((_, since)) = self.in_flight {
            if now.saturating_sub(since) > SYNC_REQUEST_TIMEOUT_MS {
                self.in_flight = None;
            }
        }
        if self.behind(height) {
            self.request(now, height, None, out);
        }
    }

    /// Whether a peer has decided `height` (the height being decided here) or more.
    pub(super) fn behind(&self, height: Height) -> bool {
        self.heights.values().any(|h| *h >= height)
    }

    /// Asks `peer`, or the peer furthest ahead that has not said it lacks `height`, for the
    /// blocks from `height` on; nothing while a request is in flight.
    pub(super) fn request<B>(
        &mut self,
        now: Millis,
        height: Height,
        peer: Option<P>,
        out: &mut Vec<Action<P, B>>,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        let target = peer.or_else(|| {
            self.heights
                .iter()
                .filter(|(p, h)| **h >= height && self.lacking.get(*p) != Some(&height))
                .max_by_key(|(_, h)| **h)
                .map(|(p, _)| *p)
        });
        let Some(peer) = target else { return };
        let ahead = self
            .heights
            .get(&peer)
            .map_or(1, |h| h.0.saturating_sub(height.0) + 1);
        let count = u32::try_from(ahead.min(u64::from(SYNC_BLOCKS_MAX))).unwrap_or(1);
        self.next_id += 1;
        self.in_flight = Some((self.next_id, now));
        out.push(Action::RequestSync {
            id: self.next_id,
            peer,
            from: height,
            count,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Vec<Action<u8, ()>>;

    fn requests(out: &Out) -> Vec<(u64, u8, u64, u32)> {
        out.iter()
            .filter_map(|a| match a {
                Action::RequestSync {
                    id,
                    peer,
                    from,
                    count,
                } => Some((*id, *peer, from.0, *count)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_request_at_a_time_to_the_peer_furthest_ahead_that_has_the_blocks() {
        let mut s = BlockSync::new();
        let mut out = Out::new();
        // A peer behind is not asked.
        s.on_status(0, Height(10), 1, Height(9), &mut out);
        assert!(out.is_empty());
        s.on_status(0, Height(10), 2, Height(11), &mut out);
        assert_eq!(requests(&out), vec![(1, 2, 10, 2)]);
        // While it is in flight, nobody else is asked.
        s.on_status(0, Height(10), 3, Height(100), &mut out);
        assert_eq!(requests(&out).len(), 1);
        // Peer 2 answers with nothing although ahead: the furthest other peer is asked,
        // for at most SYNC_BLOCKS_MAX blocks.
        out.clear();
        s.on_answer(1, Height(10), 1, 2, 0, &mut out);
        assert_eq!(requests(&out), vec![(2, 3, 10, SYNC_BLOCKS_MAX)]);
        // An answer to an old request does not end the one in flight.
        out.clear();
        s.on_answer(2, Height(12), 1, 3, 2, &mut out);
        assert!(out.is_empty());
        // Unanswered for too long, it is given up and made again.
        s.on_tick(1 + SYNC_REQUEST_TIMEOUT_MS, Height(12), &mut out);
        assert!(out.is_empty());
        s.on_tick(2 + SYNC_REQUEST_TIMEOUT_MS, Height(12), &mut out);
        assert_eq!(requests(&out), vec![(3, 3, 12, SYNC_BLOCKS_MAX)]);
        // A peer gone is not asked.
        out.clear();
        s.on_failure(3);
        s.on_gone(&3);
        s.on_tick(4 + SYNC_REQUEST_TIMEOUT_MS, Height(12), &mut out);
        assert!(out.is_empty());
        assert!(!s.behind(Height(12)));
    }
}
