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
    /// Peers ahead that did not give the blocks from a height: they answered with none (a
    /// node restored from a snapshot holds no earlier block), the request failed, or it
    /// went unanswered. Not asked for that height or a later one while another peer may
    /// be, so that a peer that is gone, or lies about its height, cannot hold the sync up.
    lacking: BTreeMap<P, Height>,
    /// The request in flight.
    in_flight: Option<InFlight<P>>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight<P> {
    id: u64,
    since: Millis,
    peer: P,
    from: Height,
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
        if self.may_ask(&peer, height) {
            self.request(now, height, Some(peer), out);
        }
    }

    pub(super) fn on_gone(&mut self, peer: &P) {
        self.heights.remove(peer);
        self.lacking.remove(peer);
        if self.in_flight.is_some_and(|r| r.peer == *peer) {
            self.in_flight = None;
        }
    }

    /// Whether `peer` is ahead of `height` and has not failed to give blocks at or below
    /// it (a peer that claims a height it cannot serve is passed over for every later
    /// height too, until all peers ahead have failed).
    fn may_ask(&self, peer: &P, height: Height) -> bool {
        self.heights.get(peer).is_some_and(|h| *h >= height)
            && self.lacking.get(peer).is_none_or(|failed| *failed > height)
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
        // An answer to an earlier request: its blocks count, nothing else.
        let Some(r) = self.in_flight.filter(|r| r.id == id) else {
            return;
        };
        self.in_flight = None;
        if blocks == 0 && self.heights.get(&peer) >= Some(&r.from) {
            // Ahead, yet without these blocks: ask another peer.
            self.lacking.insert(peer, r.from);
            self.request(now, height, None, out);
        } else if blocks > 0 {
            // More may be waiting.
            self.request(now, height, None, out);
        }
    }

    /// Request `id` failed: its peer is not asked for those blocks again while another may
    /// be (the next tick asks).
    pub(super) fn on_failure(&mut self, id: u64) {
        if let Some(r) = self.in_flight.filter(|r| r.id == id) {
            if self.heights.contains_key(&r.peer) {
                self.lacking.insert(r.peer, r.from);
            }
            self.in_flight = None;
        }
    }

    /// Gives up a request unanswered for too long, as failed, and asks again if a peer is
    /// ahead.
    pub(super) fn on_tick<B>(&mut self, now: Millis, height: Height, out: &mut Vec<Action<P, B>>) {
        if let Some(r) = self.in_flight {
            if now.saturating_sub(r.since) > SYNC_REQUEST_TIMEOUT_MS {
                self.on_failure(r.id);
            }
        }
        if self.heights.values().any(|h| *h >= height) {
            self.request_or_retry(now, height, None, true, out);
        }
    }

    /// Whether a peer has decided `height` (the height being decided here) or more, and
    /// has not failed to give it: a peer that claims a height it cannot serve does not keep
    /// this node "syncing".
    pub(super) fn behind(&self, height: Height) -> bool {
        self.heights.keys().any(|p| self.may_ask(p, height))
    }

    /// Asks `peer`, or the peer furthest ahead that has not failed to give `height`, for
    /// the blocks from `height` on; nothing while a request is in flight.
    pub(super) fn request<B>(
        &mut self,
        now: Millis,
        height: Height,
        peer: Option<P>,
        out: &mut Vec<Action<P, B>>,
    ) {
        self.request_or_retry(now, height, peer, false, out);
    }

    /// [`BlockSync::request`]; with `retry`, once every peer ahead has failed to give
    /// `height`, they are all tried again in turn (once a tick, never straight after an
    /// answer).
    fn request_or_retry<B>(
        &mut self,
        now: Millis,
        height: Height,
        peer: Option<P>,
        retry: bool,
        out: &mut Vec<Action<P, B>>,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        let furthest = |s: &Self| {
            s.heights
                .iter()
                .filter(|(p, _)| s.may_ask(p, height))
                .max_by_key(|(_, h)| **h)
                .map(|(p, _)| *p)
        };
        let target = peer.or_else(|| furthest(self)).or_else(|| {
            if !retry {
                return None;
            }
            self.lacking.retain(|_, failed| *failed > height);
            furthest(self)
        });
        let Some(peer) = target else { return };
        let ahead = self
            .heights
            .get(&peer)
            .map_or(1, |h| h.0.saturating_sub(height.0) + 1);
        let count = u32::try_from(ahead.min(u64::from(SYNC_BLOCKS_MAX))).unwrap_or(1);
        self.next_id += 1;
        self.in_flight = Some(InFlight {
            id: self.next_id,
            since: now,
            peer,
            from: height,
        });
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

    #[test]
    fn a_peer_that_claims_a_height_it_cannot_give_does_not_keep_the_node_behind() {
        let mut s = BlockSync::new();
        let mut out = Out::new();
        s.on_status(0, Height(5), 1, Height(u64::MAX), &mut out);
        assert!(s.behind(Height(5)));
        let id = requests(&out)[0].0;
        // It answers with nothing: not behind any more, and asked again only in turn.
        out.clear();
        s.on_answer(1, Height(5), id, 1, 0, &mut out);
        assert!(!s.behind(Height(5)));
        // A peer really ahead makes the node behind again.
        s.on_status(2, Height(5), 2, Height(6), &mut out);
        assert!(s.behind(Height(5)));
    }

    #[test]
    fn a_peer_that_fails_or_never_answers_gives_way_to_the_others_in_turn() {
        let mut s = BlockSync::new();
        let mut out = Out::new();
        // Peer 9 says it is furthest ahead; 1 and 2 are ahead too.
        s.on_status(0, Height(5), 1, Height(6), &mut out);
        s.on_failure(1);
        s.on_status(0, Height(5), 2, Height(6), &mut out);
        s.on_failure(2);
        s.on_status(0, Height(5), 9, Height(50), &mut out);
        assert_eq!(requests(&out).last(), Some(&(3, 9, 5, SYNC_BLOCKS_MAX)));
        // It never answers: once given up, the others are asked, not it again.
        out.clear();
        s.on_tick(SYNC_REQUEST_TIMEOUT_MS, Height(5), &mut out);
        assert_eq!(requests(&out), vec![]);
        s.on_tick(1 + SYNC_REQUEST_TIMEOUT_MS, Height(5), &mut out);
        // Peers 1 and 2 failed earlier too: all three are tried again, the furthest first.
        assert_eq!(requests(&out), vec![(4, 9, 5, SYNC_BLOCKS_MAX)]);
        // A failure moves on at the next tick, to a peer not yet tried this turn.
        let mut asked = vec![];
        for tick in 0..3 {
            let id = requests(&out).last().unwrap().0;
            s.on_failure(id);
            out.clear();
            s.on_tick(3 + SYNC_REQUEST_TIMEOUT_MS + tick, Height(5), &mut out);
            asked.push(requests(&out)[0].1);
        }
        assert_eq!(
            asked,
            vec![2, 1, 9],
            "each peer ahead in turn, then round again"
        );
        // An answer with no block asks another at once, but never round again at once.
        out.clear();
        s.on_answer(10 + SYNC_REQUEST_TIMEOUT_MS, Height(5), 7, 9, 0, &mut out);
        assert_eq!(requests(&out), vec![(8, 2, 5, 2)]);
        out.clear();
        s.on_answer(11 + SYNC_REQUEST_TIMEOUT_MS, Height(5), 8, 2, 0, &mut out);
        assert_eq!(requests(&out), vec![(9, 1, 5, 2)]);
        out.clear();
        s.on_answer(12 + SYNC_REQUEST_TIMEOUT_MS, Height(5), 9, 1, 0, &mut out);
        assert!(out.is_empty(), "{:?}", requests(&out));
    }

    #[test]
    fn a_peer_that_claims_blocks_it_does_not_give_is_passed_over_at_later_heights_too() {
        let mut s = BlockSync::new();
        let mut out = Out::new();
        s.on_status(0, Height(5), 9, Height(1_000), &mut out);
        s.on_status(0, Height(5), 2, Height(40), &mut out);
        assert_eq!(requests(&out), vec![(1, 9, 5, SYNC_BLOCKS_MAX)]);
        // Peer 9 never answers: given up, peer 2 is asked.
        out.clear();
        s.on_tick(1 + SYNC_REQUEST_TIMEOUT_MS, Height(5), &mut out);
        assert_eq!(requests(&out), vec![(2, 2, 5, SYNC_BLOCKS_MAX)]);
        // Peer 2's sixteen blocks bring the node to 21; peer 9, still the furthest by its
        // word, is not asked for the next ones.
        out.clear();
        s.on_answer(2 + SYNC_REQUEST_TIMEOUT_MS, Height(21), 2, 2, 16, &mut out);
        assert_eq!(requests(&out), vec![(3, 2, 21, SYNC_BLOCKS_MAX)]);
        // Nor does a status of its own win it a request.
        out.clear();
        s.on_answer(3 + SYNC_REQUEST_TIMEOUT_MS, Height(37), 3, 2, 16, &mut out);
        s.on_failure(4);
        out.clear();
        s.on_status(
            4 + SYNC_REQUEST_TIMEOUT_MS,
            Height(37),
            9,
            Height(1_000),
            &mut out,
        );
        assert!(out.is_empty(), "{:?}", requests(&out));
        // Peer 2 failed too: both are tried again at the next tick, the furthest first.
        s.on_tick(5 + SYNC_REQUEST_TIMEOUT_MS, Height(37), &mut out);
        assert_eq!(requests(&out), vec![(5, 9, 37, SYNC_BLOCKS_MAX)]);
        // A request to a peer that goes is over at once.
        s.on_gone(&9);
        out.clear();
        s.on_tick(6 + SYNC_REQUEST_TIMEOUT_MS, Height(37), &mut out);
        assert_eq!(requests(&out), vec![(6, 2, 37, 4)]);
    }
}
