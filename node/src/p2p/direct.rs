//! Proposals and votes straight to the validators' nodes, on one long-lived stream per
//! peer (protocol [`CONSENSUS_PROTOCOL`]).
//!
//! Each message is a frame: a `u32` little-endian length, then the bytes of a
//! [`Gossip`](super::protocol::Gossip). A writer task per peer opens the stream once and
//! writes the frames queued for that peer in order; a reader task per inbound stream hands
//! each frame to the node. Until 2026-12-06 each message was a request of its own
//! (`/acta/consensus/2`): a new yamux stream, its protocol negotiation, an empty answer and
//! two timers per message, which at dozens of heights a second cost more than the votes.
//!
//! A message that cannot be queued (the peer's queue is full, or its stream cannot be
//! opened) is dropped: while a height runs, the driver sends its own messages again every
//! gossip tick, and a decided block comes by sync anyway.

use std::{collections::HashMap, io, sync::Arc, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::mpsc;
use tracing::debug;

use super::protocol::CONSENSUS_PROTOCOL;

/// The most frames waiting for one peer's stream; more are dropped.
const OUTBOX_FRAMES: usize = 256;
/// The most frames read from all peers and not yet taken by the node; readers wait
/// (and so do their peers, through the stream's flow control) while it is full.
const INBOX_FRAMES: usize = 1024;
/// The most inbound streams one peer may hold open at once: one is enough, a few allow for
/// a stream the peer's side has given up on and this side not yet seen close.
const INBOUND_STREAMS_PER_PEER: usize = 4;
/// How long opening a stream, or writing a frame to it, may take before the frame is
/// dropped (a stalled peer must not hold its queue for ever).
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// What the readers hand the node.
#[derive(Debug)]
pub enum Inbound {
    /// A frame's bytes (to be decoded by the node, which strikes a sender of garbage).
    Message { peer: PeerId, data: Vec<u8> },
    /// A frame that breaks the framing (a length over the limit): the stream is closed.
    Garbage { peer: PeerId, why: String },
}

/// The writers' queues and the readers' output.
pub struct Direct {
    control: libp2p_stream::Control,
    outboxes: HashMap<PeerId, mpsc::Sender<Arc<[u8]>>>,
    inbox: mpsc::Receiver<Inbound>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct")
            .field("peers", &self.outboxes.len())
            .finish_non_exhaustive()
    }
}

impl Direct {
    /// Accepts inbound streams of [`CONSENSUS_PROTOCOL`] (frames of at most `max` bytes)
    /// from here on. Must be called within a Tokio runtime: the readers are its tasks.
    pub fn start(mut control: libp2p_stream::Control, max: usize) -> anyhow::Result<Direct> {
        let incoming = control
            .accept(StreamProtocol::new(CONSENSUS_PROTOCOL))
            .map_err(|e| anyhow::anyhow!("accepting {CONSENSUS_PROTOCOL}: {e}"))?;
        let (tx, inbox) = mpsc::channel(INBOX_FRAMES);
        tokio::spawn(accept(incoming, tx, max));
        Ok(Direct {
            control,
            outboxes: HashMap::new(),
            inbox,
        })
    }

    /// Queues a frame ([`frame`]) for `peer`'s stream, opening it first if need be; drops
    /// it if the peer's queue is full.
    pub fn send(&mut self, peer: PeerId, frame: &Arc<[u8]>) {
        let outbox = self
            .outboxes
            .entry(peer)
            .and_modify(|o| {
                if o.is_closed() {
                    *o = spawn_writer(self.control.clone(), peer);
                }
            })
            .or_insert_with(|| spawn_writer(self.control.clone(), peer));
        if let Err(e) = outbox.try_send(frame.clone()) {
            debug!(peer = %peer, "a consensus message was not queued: {e}");
        }
    }

    /// Ends the writer of a peer that disconnected: the frames it had not written are
    /// dropped, and the next message opens a new stream.
    pub fn forget(&mut self, peer: &PeerId) {
        self.outboxes.remove(peer);
    }

    /// The next frame a peer sent (cancel safe).
    pub async fn next(&mut self) -> Option<Inbound> {
        self.inbox.recv().await
    }
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

fn spawn_writer(control: libp2p_stream::Control, peer: PeerId) -> mpsc::Sender<Arc<[u8]>> {
    let (tx, rx) = mpsc::channel(OUTBOX_FRAMES);
    tokio::spawn(write_to(control, peer, rx));
    tx
}

/// Writes `peer`'s queued frames in order on one stream, opened at the first and again
/// after a failure. Ends when the queue's sender is dropped ([`Direct::forget`]).
async fn write_to(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    mut outbox: mpsc::Receiver<Arc<[u8]>>,
) {
    let mut stream: Option<Stream> = None;
    while let Some(first) = outbox.recv().await {
        if outbox.is_closed() {
            // Forgotten (the peer disconnected): do not dial it again for what is left.
            return;
        }
        let mut s = match stream.take() {
            Some(s) => s,
            None => {
                let protocol = StreamProtocol::new(CONSENSUS_PROTOCOL);
                match tokio::time::timeout(STREAM_TIMEOUT, control.open_stream(peer, protocol))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        debug!(peer = %peer, "a consensus message was not sent: {e}");
                        continue;
                    }
                    Err(_) => {
                        debug!(peer = %peer, "a consensus message was not sent: opening the stream timed out");
                        continue;
                    }
                }
            }
        };
        // The frame, and any queued behind it, in one flush.
        let written = tokio::time::timeout(STREAM_TIMEOUT, async {
            s.write_all(&first).await?;
            while let Ok(next) = outbox.try_recv() {
                s.write_all(&next).await?;
            }
            s.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => stream = Some(s),
            Ok(Err(e)) => debug!(peer = %peer, "a consensus message was not sent: {e}"),
            Err(_) => debug!(peer = %peer, "a consensus message was not sent: the write timed out"),
        }
    }
}

/// Takes each inbound stream and reads it in a task of its own, at most
/// [`INBOUND_STREAMS_PER_PEER`] at once per peer. Ends with the node's side.
async fn accept(
    mut incoming: libp2p_stream::IncomingStreams,
    inbox: mpsc::Sender<Inbound>,
    max: usize,
) {
    // A peer's readers each hold a clone of its token: the count of clones is the count
    // of its open streams.
    let mut open: HashMap<PeerId, Arc<()>> = HashMap::new();
    loop {
        let (peer, stream) = tokio::select! {
            next = incoming.next() => match next {
                Some(s) => s,
                None => return,
            },
            () = inbox.closed() => return,
        };
        open.retain(|_, token| Arc::strong_count(token) > 1);
        let token = open.entry(peer).or_default();
        if Arc::strong_count(token) > INBOUND_STREAMS_PER_PEER {
            debug!(peer = %peer, "refusing another stream of consensus messages from a peer");
            continue;
        }
        tokio::spawn(read_from(peer, stream, inbox.clone(), max, token.clone()));
    }
}

/// Hands the node each frame `peer` sends on `stream`, until the stream ends or breaks
/// the framing.
async fn read_from<R>(
    peer: PeerId,
    mut stream: R,
    inbox: mpsc::Sender<Inbound>,
    max: usize,
    _token: Arc<()>,
) where
    R: futures::AsyncRead + Unpin,
{
    loop {
        let event = match read_frame(&mut stream, max).await {
            Ok(Some(data)) => Inbound::Message { peer, data },
            // Closed between frames.
            Ok(None) => return,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Inbound::Garbage {
                peer,
                why: format!("invalid consensus stream: {e}"),
            },
            // Reset or cut short with its connection: not the peer's fault.
            Err(e) => {
                debug!(peer = %peer, "a stream of consensus messages ended: {e}");
                return;
            }
        };
        let garbage = matches!(event, Inbound::Garbage { .. });
        if inbox.send(event).await.is_err() || garbage {
            return;
        }
    }
}

/// Reads one frame of at most `max` bytes; `None` if the stream ends before it starts.
async fn read_frame<R>(io: &mut R, max: usize) -> io::Result<Option<Vec<u8>>>
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
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes, more than {max}"),
        ));
    }
    // Grows with what actually arrives: a length prefix alone allocates nothing.
    let mut buf = Vec::new();
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a message cut short at {} of {len} bytes", buf.len()),
        ));
    }
    Ok(Some(buf))
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
    fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Inbound> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (tx, mut rx) = mpsc::channel(16);
            let peer = PeerId::random();
            read_from(peer, futures::io::Cursor::new(bytes), tx, max, Arc::new(())).await;
            let mut out = Vec::new();
            while let Ok(event) = rx.try_recv() {
                out.push(event);
            }
            out
        })
    }

    fn data(events: &[Inbound]) -> Vec<Vec<u8>> {
        events
            .iter()
            .filter_map(|e| match e {
                Inbound::Message { data, .. } => Some(data.clone()),
                Inbound::Garbage { .. } => None,
            })
            .collect()
    }

    #[test]
    fn frames_come_back_in_order_and_whole() {
        let events = read_all(frames(&[b"vote", b"", b"proposal"]), 16);
        assert_eq!(
            data(&events),
            vec![b"vote".to_vec(), Vec::new(), b"proposal".to_vec()]
        );
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn a_frame_over_the_limit_is_garbage_and_ends_the_stream() {
        let events = read_all(frames(&[b"vote", b"seventeen bytes!!", b"after"]), 16);
        assert_eq!(data(&events), vec![b"vote".to_vec()]);
        assert!(
            matches!(&events[..], [_, Inbound::Garbage { why, .. }] if why.contains("17 bytes")),
            "{events:?}"
        );
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_not_held_against_the_peer() {
        for cut in [1, 3, 4, 6] {
            let mut bytes = frames(&[b"vote", b"proposal"]);
            bytes.truncate(8 + cut);
            let events = read_all(bytes, 16);
            assert_eq!(data(&events), vec![b"vote".to_vec()], "cut at {cut}");
            assert_eq!(events.len(), 1, "cut at {cut}: {events:?}");
        }
    }
}
