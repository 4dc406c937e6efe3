//! Proposals, votes and statuses straight to the validators' nodes, on one long-lived
//! stream per peer (protocol [`CONSENSUS_PROTOCOL`]).
//!
//! Each message is a frame: a `u32` little-endian length, then the bytes of a
//! [`Gossip`](super::protocol::Gossip). A writer task per peer writes the frames queued for
//! that peer, in order, on a stream the swarm opened for it; a reader task per inbound
//! stream hands each frame to the node. Until 2026-12-06 each message was a request of its
//! own (`/acta/consensus/2`): a new yamux stream, its protocol negotiation, an empty answer
//! and two timers per message, which at dozens of heights a second cost more than the
//! votes.
//!
//! [`Behaviour`] is the libp2p side: it opens streams on request on a connection that
//! exists (it never dials) and hands the node every stream a peer opens, as swarm events,
//! so that the node decides which to read ([`Streams`]). A message that cannot be queued
//! (the peer's queue is full, its stream cannot be opened or written) is dropped: while a
//! height runs, the driver sends its own messages again every gossip tick, and a decided
//! block comes by sync anyway.

use std::{
    collections::{HashMap, VecDeque},
    io,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{
    core::{transport::PortUse, upgrade::ReadyUpgrade, Endpoint},
    swarm::{
        handler::{
            ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
        },
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
        NetworkBehaviour, NotifyHandler, SubstreamProtocol, THandler, THandlerInEvent,
        THandlerOutEvent, ToSwarm,
    },
    Multiaddr, PeerId, Stream, StreamProtocol,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tracing::debug;

use super::protocol::{read_body, CONSENSUS_PROTOCOL};

/// The most frames waiting for one peer's stream; more are dropped.
const OUTBOX_FRAMES: usize = 256;
/// The most inbound streams of one peer read at once: one is enough, a few allow for a
/// stream the peer's side has given up on and this side not yet seen close. Another is
/// refused and strikes the peer.
pub const INBOUND_STREAMS_PER_PEER: usize = 4;
/// How long writing one frame may take before the stream is given up (a stalled peer must
/// not hold its queue for ever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an open may go unanswered before another is asked for.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// After a stream could not be opened, how long before another try; messages meanwhile
/// are dropped (a peer that does not speak the protocol is not asked at every vote).
const OPEN_BACKOFF: Duration = Duration::from_millis(500);
/// What a frame costs of its peer's budget besides its bytes, so that empty frames are
/// bounded too.
const FRAME_OVERHEAD: usize = 64;

/// A frame's bytes as a reader hands them to the node, holding their share of the peer's
/// budget until the node takes them.
#[derive(Debug)]
pub struct Inbound {
    pub peer: PeerId,
    /// The frame's bytes, or why the stream broke the framing (a length over the limit:
    /// the stream is closed, and the peer is struck).
    pub frame: Result<Vec<u8>, String>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// A message as it goes on a stream: its length (`u32` little-endian), then its bytes;
/// `None` for a message too long for the prefix.
pub fn frame(bytes: &[u8]) -> Option<Arc<[u8]>> {
    let len = u32::try_from(bytes.len()).ok()?;
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Some(out.into())
}

// ---- The node's side: writers, readers and their budgets. ----

/// One peer's writer: its queue, the streams the swarm opened for it, and whether it
/// needs one.
struct Writer {
    outbox: mpsc::Sender<Arc<[u8]>>,
    streams: mpsc::Sender<Stream>,
    /// Set by the writer when it has no stream (at start, after a failure).
    needs_stream: Arc<AtomicBool>,
    /// When an open was asked of the swarm, until it is answered (or [`OPEN_TIMEOUT`] has
    /// passed: a connection that closed with the request unanswered says nothing).
    opening: Option<Instant>,
    /// When the last open failed.
    failed_at: Option<Instant>,
}

/// One peer's inbound streams: a token each reader holds (the count of clones is the count
/// of its open streams), and the bytes its frames may hold in the node's inbox.
struct Readers {
    token: Arc<()>,
    budget: Arc<Semaphore>,
}

impl Readers {
    /// Whether a reader of the peer runs or a frame of it waits for the node (`full`: the
    /// whole budget).
    fn in_use(&self, full: usize) -> bool {
        Arc::strong_count(&self.token) > 1 || self.budget.available_permits() < full
    }
}

/// The writers and readers of the consensus streams.
pub struct Streams {
    writers: HashMap<PeerId, Writer>,
    readers: HashMap<PeerId, Readers>,
    inbox_tx: mpsc::UnboundedSender<Inbound>,
    inbox: mpsc::UnboundedReceiver<Inbound>,
    /// The longest frame taken (`p2p.max_message_bytes`).
    max: usize,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("writers", &self.writers.len())
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

/// What [`Streams::inbound`] did with a peer's stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Reading,
    /// Over [`INBOUND_STREAMS_PER_PEER`]: dropped (the peer is to be struck).
    TooMany,
}

impl Streams {
    /// No stream yet; frames of at most `max` bytes.
    pub fn new(max: usize) -> Streams {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        Streams {
            writers: HashMap::new(),
            readers: HashMap::new(),
            inbox_tx,
            inbox,
            max,
        }
    }

    /// Queues a frame ([`frame`]) for `peer` at `now`; true if the swarm is to open a
    /// stream to it ([`Behaviour::open`], answered with [`Streams::opened`] or
    /// [`Streams::open_failed`]). Must be called within a Tokio runtime: the writer is its
    /// task.
    pub fn send(&mut self, peer: PeerId, frame: &Arc<[u8]>, now: Instant) -> bool {
        let writer = self
            .writers
            .entry(peer)
            .or_insert_with(|| spawn_writer(peer));
        if let Err(e) = writer.outbox.try_send(frame.clone()) {
            debug!(peer = %peer, "a consensus message was not queued: {e}");
        }
        let open = writer
            .opening
            .is_none_or(|at| now.duration_since(at) >= OPEN_TIMEOUT)
            && writer.needs_stream.load(Ordering::Acquire)
            && writer
                .failed_at
                .is_none_or(|at| now.duration_since(at) >= OPEN_BACKOFF);
        if open {
            writer.opening = Some(now);
        }
        open
    }

    /// A stream the swarm opened for `peer`'s writer.
    pub fn opened(&mut self, peer: PeerId, stream: Stream) {
        if let Some(w) = self.writers.get_mut(&peer) {
            w.opening = None;
            w.failed_at = None;
            // The flag first: a failure of this stream sets it again.
            w.needs_stream.store(false, Ordering::Release);
            let _ = w.streams.try_send(stream);
        }
    }

    /// A stream could not be opened for `peer` (at `now`): a message tries again after
    /// [`OPEN_BACKOFF`].
    pub fn open_failed(&mut self, peer: PeerId, why: &str, now: Instant) {
        debug!(peer = %peer, "a stream for consensus messages was not opened: {why}");
        if let Some(w) = self.writers.get_mut(&peer) {
            w.opening = None;
            w.failed_at = Some(now);
        }
    }

    /// A stream `peer` opened: read in a task of its own, unless the peer has
    /// [`INBOUND_STREAMS_PER_PEER`] open already.
    pub fn inbound(&mut self, peer: PeerId, stream: Stream) -> Taken {
        let max = self.max;
        // A peer's entry goes once no reader of it runs and none of its frames waits for
        // the node (their bytes are back in its budget): a peer that closes its streams and
        // opens new ones must not get a fresh budget while its frames still wait.
        let full = budget(max);
        self.readers.retain(|_, r| r.in_use(full));
        let readers = self.readers.entry(peer).or_insert_with(|| Readers {
            token: Arc::new(()),
            budget: Arc::new(Semaphore::new(budget(max))),
        });
        if Arc::strong_count(&readers.token) > INBOUND_STREAMS_PER_PEER {
            return Taken::TooMany;
        }
        tokio::spawn(read_from(
            peer,
            stream,
            self.inbox_tx.clone(),
            max,
            readers.budget.clone(),
            readers.token.clone(),
        ));
        Taken::Reading
    }

    /// Ends the writer of a peer that disconnected: the frames it had not written are
    /// dropped, and the next message starts a new one.
    pub fn forget(&mut self, peer: &PeerId) {
        self.writers.remove(peer);
    }

    /// The next frame a peer sent (cancel safe).
    pub async fn next(&mut self) -> Option<Inbound> {
        self.inbox.recv().await
    }
}

/// The bytes one peer's frames may hold in the node's inbox: two of the longest, so that a
/// large proposal does not wait for the one before it to be handled.
fn budget(max: usize) -> usize {
    max.saturating_add(FRAME_OVERHEAD)
        .saturating_mul(2)
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize)
}

fn spawn_writer(peer: PeerId) -> Writer {
    let (outbox, frames) = mpsc::channel(OUTBOX_FRAMES);
    let (streams, streams_rx) = mpsc::channel(2);
    let needs_stream = Arc::new(AtomicBool::new(true));
    tokio::spawn(write_to(peer, frames, streams_rx, needs_stream.clone()));
    Writer {
        outbox,
        streams,
        needs_stream,
        opening: None,
        failed_at: None,
    }
}

/// Writes `peer`'s queued frames in order on the latest stream opened for it; frames
/// wait in the queue while it has none. Ends when the queue's sender is dropped
/// ([`Streams::forget`]).
async fn write_to(
    peer: PeerId,
    mut frames: mpsc::Receiver<Arc<[u8]>>,
    mut streams: mpsc::Receiver<Stream>,
    needs_stream: Arc<AtomicBool>,
) {
    let mut stream: Option<Stream> = None;
    loop {
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                // Ends with `None` once forgotten: the writer's senders go together.
                match streams.recv().await {
                    Some(s) => stream.insert(s),
                    None => return,
                }
            }
        };
        let Some(first) = frames.recv().await else {
            return;
        };
        // The frame, and any queued behind it, then one flush.
        let mut written = write_timed(s, &first).await;
        while written.is_ok() {
            match frames.try_recv() {
                Ok(next) => written = write_timed(s, &next).await,
                Err(_) => break,
            }
        }
        if written.is_ok() {
            written = match tokio::time::timeout(WRITE_TIMEOUT, s.flush()).await {
                Ok(r) => r,
                Err(_) => Err(io::ErrorKind::TimedOut.into()),
            };
        }
        if let Err(e) = written {
            debug!(peer = %peer, "a stream of consensus messages failed: {e}");
            stream = None;
            needs_stream.store(true, Ordering::Release);
        }
    }
}

async fn write_timed(s: &mut Stream, frame: &[u8]) -> io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, s.write_all(frame)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// Hands the node each frame `peer` sends on `stream`, until the stream ends or breaks
/// the framing. Each frame's bytes are taken from the peer's budget before they are read.
async fn read_from<R>(
    peer: PeerId,
    mut stream: R,
    inbox: mpsc::UnboundedSender<Inbound>,
    max: usize,
    budget: Arc<Semaphore>,
    _token: Arc<()>,
) where
    R: futures::AsyncRead + Unpin,
{
    loop {
        let len = match read_len(&mut stream).await {
            Ok(Some(len)) => len,
            // Closed between frames.
            Ok(None) => return,
            Err(e) => {
                debug!(peer = %peer, "a stream of consensus messages ended: {e}");
                return;
            }
        };
        if len > max {
            let _ = inbox.send(Inbound {
                peer,
                frame: Err(format!(
                    "invalid consensus stream: a message of {len} bytes, more than {max}"
                )),
                _permit: None,
            });
            return;
        }
        let cost = u32::try_from(len.saturating_add(FRAME_OVERHEAD)).unwrap_or(u32::MAX);
        let Ok(permit) = budget.clone().acquire_many_owned(cost).await else {
            return;
        };
        let data = match read_body(&mut stream, len).await {
            Ok(data) => data,
            // Cut short with its connection, most often: not the peer's fault.
            Err(e) => {
                debug!(peer = %peer, "a stream of consensus messages ended: {e}");
                return;
            }
        };
        let frame = Inbound {
            peer,
            frame: Ok(data),
            _permit: Some(permit),
        };
        if inbox.send(frame).is_err() {
            return;
        }
    }
}

/// Reads a frame's length; `None` if the stream ends before it starts.
async fn read_len<R>(io: &mut R) -> io::Result<Option<usize>>
where
    R: futures::AsyncRead + Unpin,
{
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match io.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(Some(u32::from_le_bytes(len) as usize))
}

// ---- The libp2p side. ----

/// What [`Behaviour`] tells the swarm's owner.
#[derive(Debug)]
pub enum Event {
    /// A stream `peer` opened.
    Inbound { peer: PeerId, stream: Stream },
    /// The stream asked for with [`Behaviour::open`].
    Opened { peer: PeerId, stream: Stream },
    /// The stream asked for could not be opened.
    OpenFailed { peer: PeerId, why: String },
}

/// Opens consensus streams on request and hands over those peers open.
#[derive(Default)]
pub struct Behaviour {
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// Opens asked of each connection and not yet answered: failed when it closes, since
    /// a closing connection answers none of them.
    opening: HashMap<ConnectionId, (PeerId, usize)>,
    events: VecDeque<ToSwarm<Event, Open>>,
    waker: Option<Waker>,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("direct::Behaviour").finish_non_exhaustive()
    }
}

impl Behaviour {
    /// Opens a stream to `peer` on one of its connections; never dials. Answered with
    /// [`Event::Opened`] or [`Event::OpenFailed`].
    pub fn open(&mut self, peer: PeerId) {
        let event = match self.connections.get(&peer).and_then(|c| c.first()) {
            Some(connection) => {
                self.opening.entry(*connection).or_insert((peer, 0)).1 += 1;
                ToSwarm::NotifyHandler {
                    peer_id: peer,
                    handler: NotifyHandler::One(*connection),
                    event: Open,
                }
            }
            None => ToSwarm::GenerateEvent(Event::OpenFailed {
                peer,
                why: "not connected".into(),
            }),
        };
        self.events.push_back(event);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                if let Some((peer, _)) = self.opening.remove(&e.connection_id) {
                    self.events
                        .push_back(ToSwarm::GenerateEvent(Event::OpenFailed {
                            peer,
                            why: "the connection closed".into(),
                        }));
                }
                if let Some(c) = self.connections.get_mut(&e.peer_id) {
                    c.retain(|id| *id != e.connection_id);
                    if c.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        if matches!(event, HandlerEvent::Opened(_) | HandlerEvent::OpenFailed(_)) {
            if let Some((_, n)) = self.opening.get_mut(&connection) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.opening.remove(&connection);
                }
            }
        }
        self.events.push_back(ToSwarm::GenerateEvent(match event {
            HandlerEvent::Inbound(stream) => Event::Inbound { peer, stream },
            HandlerEvent::Opened(stream) => Event::Opened { peer, stream },
            HandlerEvent::OpenFailed(why) => Event::OpenFailed { peer, why },
        }));
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Event, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The behaviour's request to a connection: open a consensus stream.
#[derive(Debug)]
pub struct Open;

/// What a connection tells the behaviour.
#[derive(Debug)]
pub enum HandlerEvent {
    Inbound(Stream),
    Opened(Stream),
    OpenFailed(String),
}

/// A connection's side: negotiates consensus streams both ways.
#[derive(Debug, Default)]
pub struct Handler {
    opens: usize,
    events: VecDeque<HandlerEvent>,
}

fn protocol() -> SubstreamProtocol<ReadyUpgrade<StreamProtocol>> {
    SubstreamProtocol::new(
        ReadyUpgrade::new(StreamProtocol::new(CONSENSUS_PROTOCOL)),
        (),
    )
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Open;
    type ToBehaviour = HandlerEvent;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        protocol()
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        if self.opens > 0 {
            self.opens -= 1;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: protocol(),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, _: Open) {
        self.opens += 1;
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<'_, Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        let event = match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => HandlerEvent::Inbound(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => HandlerEvent::Opened(stream),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                HandlerEvent::OpenFailed(error.to_string())
            }
            _ => return,
        };
        self.events.push_back(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(messages: &[&[u8]]) -> Vec<u8> {
        messages
            .iter()
            .flat_map(|m| frame(m).unwrap().to_vec())
            .collect()
    }

    /// What a reader hands the node for these bytes on a stream.
    fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Vec<u8>, String>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel::<Inbound>();
            let peer = PeerId::random();
            let budget = Arc::new(Semaphore::new(budget(max)));
            let stream = futures::io::Cursor::new(bytes);
            // Taken as they come, as the node does: each frame's share of the budget goes
            // back once it is taken.
            let take = async {
                let mut out = Vec::new();
                while let Some(event) = rx.recv().await {
                    out.push(event.frame);
                }
                out
            };
            let ((), out) =
                tokio::join!(read_from(peer, stream, tx, max, budget, Arc::new(())), take);
            out
        })
    }

    #[test]
    fn frames_come_back_in_order_and_whole() {
        let events = read_all(frames(&[b"vote", b"", b"proposal"]), 16);
        assert_eq!(
            events,
            vec![
                Ok(b"vote".to_vec()),
                Ok(Vec::new()),
                Ok(b"proposal".to_vec())
            ]
        );
    }

    #[test]
    fn a_frame_over_the_limit_is_garbage_and_ends_the_stream() {
        let events = read_all(frames(&[b"vote", b"seventeen bytes!!", b"after"]), 16);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], Ok(b"vote".to_vec()));
        assert!(
            matches!(&events[1], Err(why) if why.contains("17 bytes")),
            "{events:?}"
        );
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_not_held_against_the_peer() {
        for cut in [1, 3, 4, 6] {
            let mut bytes = frames(&[b"vote", b"proposal"]);
            bytes.truncate(8 + cut);
            let events = read_all(bytes, 16);
            assert_eq!(events, vec![Ok(b"vote".to_vec())], "cut at {cut}");
        }
    }

    #[test]
    fn a_peer_gets_one_open_at_a_time_and_a_failed_one_backs_off() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut streams = Streams::new(100);
            let (peer, other) = (PeerId::random(), PeerId::random());
            let vote = frame(b"vote").unwrap();
            let t0 = Instant::now();
            let send = |s: &mut Streams, p, later| s.send(p, &vote, t0 + later);
            let zero = Duration::ZERO;
            assert!(
                send(&mut streams, peer, zero),
                "the first message opens a stream"
            );
            assert!(!send(&mut streams, peer, zero), "one open at a time");
            assert!(send(&mut streams, other, zero), "each peer its own");
            streams.open_failed(peer, "refused", t0);
            let early = OPEN_BACKOFF - Duration::from_millis(1);
            assert!(
                !send(&mut streams, peer, early),
                "backing off after a failure"
            );
            assert!(
                send(&mut streams, peer, OPEN_BACKOFF),
                "tried again after the backoff"
            );
            // An open no one answers (its connection closed) is asked for again later.
            assert!(!send(
                &mut streams,
                other,
                OPEN_TIMEOUT - Duration::from_millis(1)
            ));
            assert!(
                send(&mut streams, other, OPEN_TIMEOUT),
                "an unanswered open is not waited on for ever"
            );
            // A peer that disconnected starts again.
            streams.forget(&peer);
            assert!(send(&mut streams, peer, OPEN_BACKOFF));
        });
    }

    /// A peer whose streams all ended keeps its budget while its frames wait for the node,
    /// so that closing and reopening streams does not buy a fresh one.
    #[test]
    fn a_peers_budget_outlives_its_streams_while_its_frames_wait() {
        let full = budget(100);
        let readers = Readers {
            token: Arc::new(()),
            budget: Arc::new(Semaphore::new(full)),
        };
        assert!(!readers.in_use(full), "nothing running, nothing waiting");
        let reader = readers.token.clone();
        assert!(readers.in_use(full), "a reader runs");
        let waiting = readers.budget.clone().try_acquire_many_owned(68).unwrap();
        drop(reader);
        assert!(readers.in_use(full), "a frame waits for the node");
        drop(waiting);
        assert!(!readers.in_use(full));
    }

    /// A peer's frames wait for the node within its budget: a reader whose peer has two of
    /// the longest waiting reads no more until the node takes one.
    #[test]
    fn a_peers_frames_waiting_for_the_node_are_bounded_by_its_budget() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let max = 1000;
            let (tx, mut rx) = mpsc::unbounded_channel();
            let budget = Arc::new(Semaphore::new(budget(max)));
            let big = vec![7u8; max];
            let stream = futures::io::Cursor::new(frames(&[&big, &big, &big, b"last"]));
            let reader = tokio::spawn(read_from(
                PeerId::random(),
                stream,
                tx,
                max,
                budget.clone(),
                Arc::new(()),
            ));
            // Two fit; the third waits for the budget.
            let first = rx.recv().await.unwrap();
            let _second = rx.recv().await.unwrap();
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert!(rx.try_recv().is_err(), "a third frame went past the budget");
            // Taking one lets the rest through, in order.
            drop(first);
            assert_eq!(rx.recv().await.unwrap().frame, Ok(big.clone()));
            // The third holds its share until taken; the last fits beside it.
            assert_eq!(rx.recv().await.unwrap().frame, Ok(b"last".to_vec()));
            reader.await.unwrap();
        });
    }
}
