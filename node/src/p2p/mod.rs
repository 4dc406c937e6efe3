//! The node's peer-to-peer side, and the only part of the node's loop that knows libp2p.
//!
//! [`protocol`] holds what goes on the wire (gossip envelopes, transaction batches, sync
//! requests and their codec) and the libp2p behaviour; [`asker::Asker`] is the request-only
//! swarm state sync uses before the node starts. [`P2p`] owns the swarm and gives the
//! node's actor what it needs in its own terms: [`P2pEvent`]s in, and calls out to publish
//! gossip, judge a peer's message, strike and ban peers, block peers by configuration,
//! redial, ask for blocks and answer sync requests.

pub mod asker;
pub mod direct;
pub mod protocol;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use acta_ledger::{Height, Transaction};
use futures::StreamExt;
pub use libp2p::PeerId;
use libp2p::{
    gossipsub::{self, IdentTopic, MessageAcceptance},
    identify,
    multiaddr::Protocol,
    ping,
    request_response::{self, OutboundRequestId, ResponseChannel},
    swarm::SwarmEvent,
    Multiaddr, Swarm,
};
use tracing::{debug, error, info, warn};

use crate::config::P2pConfig;

use self::protocol::{
    Behaviour, BehaviourEvent, Envelope, Gossip, SyncRequest, SyncResponse, TxBatch,
    TOPIC_CONSENSUS, TOPIC_TXS,
};

/// A peer's gossip message, to be judged with [`P2p::judge`] once it is handled.
#[derive(Debug)]
pub struct Received {
    id: gossipsub::MessageId,
    /// Whether it came on the transactions' gossipsub (else the consensus topic's).
    txs: bool,
    /// The peer that forwarded it (strikes go to it).
    pub source: PeerId,
}

/// Where to send the answer to a peer's sync request.
#[derive(Debug)]
pub struct Reply(ResponseChannel<SyncResponse>);

/// One of this node's sync requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(OutboundRequestId);

/// A verdict on a peer's gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forwarded to others.
    Accept,
    /// Not forwarded, not held against the sender (stale, a duplicate, busy).
    Ignore,
    /// Invalid: not forwarded, and the sender struck.
    Reject,
}

/// What happened on the network, for the node.
#[derive(Debug)]
pub enum P2pEvent {
    /// A message on the consensus topic; `origin` is its signer (gossip messages are
    /// signed), `received.source` the peer that forwarded it.
    Consensus {
        origin: PeerId,
        data: Vec<u8>,
        received: Received,
    },
    /// A proposal or vote a validator's node sent straight to this one (the bytes of a
    /// [`Gossip`]; only from the nodes of validators and of `p2p.peers`).
    Direct { peer: PeerId, data: Vec<u8> },
    /// A batch of transactions on the transactions topic.
    Txs { data: Vec<u8>, received: Received },
    /// A peer asks for blocks or a snapshot.
    SyncRequest {
        peer: PeerId,
        request: SyncRequest,
        reply: Reply,
    },
    /// A peer answered one of this node's requests.
    SyncResponse {
        peer: PeerId,
        id: RequestId,
        response: SyncResponse,
    },
    /// One of this node's requests failed without an answer.
    SyncFailed { id: RequestId },
    /// An admitted peer connected (its first connection).
    Connected(PeerId),
    /// A peer's last connection closed.
    Disconnected(PeerId),
}

/// The swarm and what the node keeps about its peers.
pub struct P2p {
    swarm: Swarm<Behaviour>,
    peer_id: PeerId,
    /// The peers to keep dialing (`p2p.peers`).
    dial: Vec<Multiaddr>,
    allow_observers: bool,
    max_strikes: u32,
    consensus_topic: IdentTopic,
    txs_topic: IdentTopic,
    /// The nodes of the latest validator set ([`P2p::set_validators`]) and those of
    /// `p2p.peers`: the only ones admitted unless observers are.
    validator_peers: HashSet<PeerId>,
    /// The validators' addresses (ending in `/p2p/<peer id>`), dialed like `p2p.peers`.
    validator_dial: Vec<Multiaddr>,
    /// The peer ids named in `p2p.peers`: admitted whatever the validator set.
    config_peers: HashSet<PeerId>,
    /// Whether [`P2p::set_validators`] ran before (admissions after start are logged).
    validators_known: bool,
    /// The validators' nodes as last set.
    validators: Vec<ValidatorPeer>,
    /// This node's chain and genesis hash, as identify tells peers
    /// ([`protocol::chain_identity`]); a peer that tells another is refused.
    identity: String,
    /// Peers of another genesis, banned at the next [`P2p::redial`].
    refusing: HashSet<PeerId>,
    /// Each struck peer's count and when it was last brought up to date: one strike is
    /// forgiven every [`STRIKE_DECAY`] (whether or not others came meanwhile), so a peer is
    /// banned for a stream of invalid messages, not for the few an honest node sends over
    /// months (a message judged against a height it had not reached, a version skew).
    strikes: HashMap<PeerId, Strikes>,
    /// Peers banned for invalid messages, until [`BAN_DURATION`] after the ban, and those
    /// of another genesis, until restart (`None`).
    banned: HashMap<PeerId, Option<Instant>>,
    /// Strikes counted since start (for the metrics).
    strikes_total: u64,
    /// Peers blocked by `p2p.blocked_peers`, as last read.
    config_blocked: HashSet<PeerId>,
    /// A fresh nonce for every gossip envelope, so that a message sent again is not
    /// dropped as seen.
    nonce: u64,
    /// The streams of proposals, votes and statuses to and from the validators' nodes.
    streams: direct::Streams,
}

impl std::fmt::Debug for P2p {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2p")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl P2p {
    /// Starts listening on `p2p.listen` and subscribes to the topics; the peers of
    /// `p2p.peers` and the validators' nodes are dialed at [`P2p::redial`]. Only those may
    /// connect unless `p2p.allow_observers`.
    pub fn new(
        node_key: libp2p::identity::Keypair,
        config: &P2pConfig,
        validators: &[ValidatorPeer],
        identity: String,
    ) -> anyhow::Result<P2p> {
        let listen: Multiaddr = config
            .listen
            .parse()
            .map_err(|e| anyhow::anyhow!("config file: field p2p.listen: {e}"))?;
        let dial = parse_peers(&config.peers).map_err(|e| anyhow::anyhow!("config file: {e}"))?;
        let config_peers: HashSet<PeerId> = dial.iter().filter_map(peer_of).collect();
        let peer_id = node_key.public().to_peer_id();
        let mut swarm = protocol::swarm(
            node_key,
            config.max_message_bytes,
            config.allow_observers,
            identity.clone(),
        )?;
        if let Some(allowed) = swarm.behaviour_mut().allowed.as_mut() {
            for p in &config_peers {
                allowed.allow_peer(*p);
            }
        }
        let consensus_topic = IdentTopic::new(TOPIC_CONSENSUS);
        let txs_topic = IdentTopic::new(TOPIC_TXS);
        let behaviour = swarm.behaviour_mut();
        for (gossip, topic) in [
            (&mut behaviour.gossipsub, &consensus_topic),
            (&mut behaviour.txs, &txs_topic),
        ] {
            gossip
                .subscribe(topic)
                .map_err(|e| anyhow::anyhow!("subscribing: {e:?}"))?;
        }
        swarm
            .listen_on(listen.clone())
            .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
        let mut p2p = P2p {
            swarm,
            peer_id,
            dial,
            allow_observers: config.allow_observers,
            max_strikes: config.max_strikes,
            consensus_topic,
            txs_topic,
            validator_peers: config_peers.clone(),
            validator_dial: Vec::new(),
            config_peers,
            validators_known: false,
            validators: Vec::new(),
            identity,
            refusing: HashSet::new(),
            strikes: HashMap::new(),
            banned: HashMap::new(),
            strikes_total: 0,
            config_blocked: HashSet::new(),
            nonce: rand::random(),
            streams: direct::Streams::new(config.max_message_bytes),
        };
        p2p.set_validators(validators);
        Ok(p2p)
    }

    /// Admits and dials the nodes of the latest validator set, and no longer admits those
    /// of validators that left it (unless named in `p2p.peers`): their connections close.
    /// Called at start and after every block that changes the set.
    pub fn set_validators(&mut self, validators: &[ValidatorPeer]) {
        let mut admitted = self.config_peers.clone();
        let mut dial = Vec::new();
        for v in validators {
            admitted.insert(v.peer);
            if let Some(address) = &v.address {
                if v.peer != self.peer_id {
                    dial.push(address.clone().with(Protocol::P2p(v.peer)));
                }
            }
        }
        for peer in admitted.difference(&self.validator_peers) {
            if *peer != self.peer_id && self.validators_known {
                info!(peer = %peer, "admitting the node of a new validator");
            }
            if let Some(allowed) = self.swarm.behaviour_mut().allowed.as_mut() {
                allowed.allow_peer(*peer);
            }
        }
        let gone: Vec<PeerId> = self
            .validator_peers
            .difference(&admitted)
            .copied()
            .collect();
        for peer in gone {
            if let Some(allowed) = self.swarm.behaviour_mut().allowed.as_mut() {
                allowed.disallow_peer(peer);
            }
            if !self.allow_observers {
                info!(peer = %peer, "the node of a validator that left the set: disconnecting");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
        self.validator_peers = admitted;
        self.validator_dial = dial;
        self.validators_known = true;
        self.validators = validators.to_vec();
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The next event the node acts on; `None` for one it need not (cancel safe: the only
    /// waits are for the swarm's next event and the consensus streams' next frame).
    pub async fn next(&mut self) -> Option<P2pEvent> {
        tokio::select! {
            event = self.swarm.select_next_some() => self.translate(event),
            Some(inbound) = self.streams.next() => self.direct_message(inbound),
        }
    }

    /// A frame from a consensus stream: a validator's message for the node; garbage
    /// strikes its sender.
    fn direct_message(&mut self, inbound: direct::Inbound) -> Option<P2pEvent> {
        let peer = inbound.peer;
        match inbound.frame {
            // Only validators' messages count (an observer has none), and only while they
            // are connected: a status read before the peer's disconnection was handled
            // must not bring it back into the node's view of peers.
            Ok(data) => (self.validator_peers.contains(&peer) && self.swarm.is_connected(&peer))
                .then_some(P2pEvent::Direct { peer, data }),
            Err(why) => {
                self.strike(peer, &why);
                None
            }
        }
    }

    /// What the consensus streams' behaviour tells: a stream a peer opened (read if the
    /// peer is a validator's node), or the answer to an open this node asked for.
    fn direct_event(&mut self, event: direct::Event) {
        match event {
            direct::Event::Inbound { peer, stream } => {
                if !self.validator_peers.contains(&peer) {
                    // Dropped: no observer has consensus messages to send.
                    debug!(peer = %peer, "a consensus stream from a node that is no validator's");
                } else if self.streams.inbound(peer, stream) == direct::Taken::TooMany {
                    self.strike(peer, "more consensus streams than allowed at once");
                }
            }
            direct::Event::Opened { peer, stream } => self.streams.opened(peer, stream),
            direct::Event::OpenFailed { peer, why } => {
                self.streams.open_failed(peer, &why, Instant::now());
            }
        }
    }

    /// A message of the transactions' gossipsub (`txs`) or the consensus topic's: on the
    /// gossipsub's own topic, for the node; on any other, rejected.
    fn gossip_message(
        &mut self,
        txs: bool,
        source: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) -> Option<P2pEvent> {
        let received = Received { id, txs, source };
        let topic = if txs {
            self.txs_topic.hash()
        } else {
            self.consensus_topic.hash()
        };
        if message.topic != topic {
            self.judge(received, Verdict::Reject, "gossip on an unknown topic");
            return None;
        }
        Some(if txs {
            P2pEvent::Txs {
                data: message.data,
                received,
            }
        } else {
            P2pEvent::Consensus {
                origin: message.source.unwrap_or(source),
                data: message.data,
                received,
            }
        })
    }

    fn translate(&mut self, event: SwarmEvent<BehaviourEvent>) -> Option<P2pEvent> {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.gossip_message(false, propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Txs(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.gossip_message(true, propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => match event {
                request_response::Event::Message { peer, message, .. } => match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => Some(P2pEvent::SyncRequest {
                        peer,
                        request,
                        reply: Reply(channel),
                    }),
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => Some(P2pEvent::SyncResponse {
                        peer,
                        id: RequestId(request_id),
                        response,
                    }),
                },
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                } => {
                    debug!("sync request failed: {error}");
                    Some(P2pEvent::SyncFailed {
                        id: RequestId(request_id),
                    })
                }
                _ => None,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Direct(event)) => {
                self.direct_event(event);
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocol_version != self.identity && self.refusing.insert(peer_id) {
                    // Another chain, or this chain from another genesis file: nothing it
                    // sends can ever be valid here. Refused until restart, at the next
                    // redial: by then our identify has reached it too, so its operator
                    // reads the same error.
                    error!(
                        peer = %peer_id,
                        "peer runs {}, this node {}: a different genesis (or chain); refusing it",
                        info.protocol_version, self.identity
                    );
                }
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Err(failure),
                ..
            })) => {
                // Connected but silent (a stopped or overloaded process: the ping, or the
                // negotiation of its stream, timed out). Dropped, so that the peer count and
                // /status tell the truth; redialed at the next tick. A peer that does not
                // speak ping at all is left alone.
                if !matches!(failure, ping::Failure::Unsupported) {
                    warn!(peer = %peer, "no answer to a ping ({failure}): disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                None
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                debug!(peer = %peer_id, "connected");
                if !self.validator_peers.contains(&peer_id) && !self.allow_observers {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return None;
                }
                (num_established.get() == 1).then_some(P2pEvent::Connected(peer_id))
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } if !self.swarm.is_connected(&peer_id) => {
                self.streams.forget(&peer_id);
                Some(P2pEvent::Disconnected(peer_id))
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(address = %address, "listening");
                None
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!("incoming connection failed: {error}");
                None
            }
            _ => None,
        }
    }

    /// Judges a peer's gossip message: gossipsub forwards it only if accepted, and a
    /// rejected one counts a strike against the peer that sent it.
    pub fn judge(&mut self, received: Received, verdict: Verdict, why: &str) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => {
                self.strike(received.source, why);
                MessageAcceptance::Reject
            }
        };
        self.gossip(received.txs).report_message_validation_result(
            &received.id,
            &received.source,
            acceptance,
        );
    }

    /// Sends a message on the consensus topic, in an envelope with a fresh nonce.
    pub fn publish(&mut self, body: Gossip) {
        self.nonce = self.nonce.wrapping_add(1);
        let bytes = acta_ledger::codec::encode(&Envelope {
            nonce: self.nonce,
            body,
        });
        self.publish_on(false, bytes);
    }

    /// Sends a proposal, vote or status straight to the node of every validator of the
    /// latest set this node is connected to. Only a validator's node sends: the others'
    /// messages would be dropped.
    pub fn send_to_validators(&mut self, body: &Gossip) {
        if !self.validators.iter().any(|v| v.peer == self.peer_id) {
            return;
        }
        let Some(frame) = direct::frame(&acta_ledger::codec::encode(body)) else {
            warn!("a consensus message too long to send");
            return;
        };
        let now = Instant::now();
        for v in &self.validators {
            if v.peer != self.peer_id
                && self.swarm.is_connected(&v.peer)
                && self.streams.send(v.peer, &frame, now)
            {
                self.swarm.behaviour_mut().direct.open(v.peer);
            }
        }
    }

    /// Sends a batch of transactions on the transactions topic.
    pub fn publish_txs(&mut self, txs: Vec<Transaction>) {
        let bytes = acta_ledger::codec::encode(&TxBatch(txs));
        self.publish_on(true, bytes);
    }

    /// The transactions' gossipsub, or the consensus topic's.
    fn gossip(&mut self, txs: bool) -> &mut gossipsub::Behaviour {
        let behaviour = self.swarm.behaviour_mut();
        if txs {
            &mut behaviour.txs
        } else {
            &mut behaviour.gossipsub
        }
    }

    /// Publishes on the transactions' topic or the consensus topic; a failure (no peer
    /// subscribed yet, a duplicate) is only logged: re-sends and peers' requests make up
    /// for a lost message.
    fn publish_on(&mut self, txs: bool, bytes: Vec<u8>) {
        let topic = if txs {
            self.txs_topic.clone()
        } else {
            self.consensus_topic.clone()
        };
        if let Err(e) = self.gossip(txs).publish(topic.clone(), bytes) {
            debug!(topic = %topic, "publishing: {e}");
        }
    }

    /// Asks `peer` for blocks `from..from + count` with their commits.
    pub fn request_blocks(&mut self, peer: &PeerId, from: Height, count: u32) -> RequestId {
        self.request(peer, SyncRequest::Blocks { from, count })
    }

    /// Sends `peer` a sync request.
    pub fn request(&mut self, peer: &PeerId, request: SyncRequest) -> RequestId {
        RequestId(self.swarm.behaviour_mut().sync.send_request(peer, request))
    }

    /// Answers a peer's sync request (nothing happens if the peer is gone).
    pub fn respond(&mut self, reply: Reply, response: SyncResponse) {
        let _ = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(reply.0, response);
    }

    /// Counts a strike against a peer for an invalid message; at `p2p.max_strikes` (less
    /// those forgiven since, one every [`STRIKE_DECAY`]) it is disconnected and banned for
    /// [`BAN_DURATION`].
    pub fn strike(&mut self, peer: PeerId, why: &str) {
        self.strike_at(peer, why, Instant::now());
    }

    fn strike_at(&mut self, peer: PeerId, why: &str, now: Instant) {
        let strikes = self.strikes.entry(peer).or_insert(Strikes {
            count: 0,
            since: now,
        });
        strikes.decay(now);
        strikes.count += 1;
        self.strikes_total += 1;
        let count = strikes.count;
        warn!(peer = %peer, strikes = count, "{why}");
        if count >= self.max_strikes {
            self.strikes.remove(&peer);
            warn!(
                peer = %peer,
                minutes = BAN_DURATION.as_secs() / 60,
                "banning a peer that keeps sending invalid messages"
            );
            // A ban until restart (another genesis) stays one.
            if self.banned.get(&peer) != Some(&None) {
                self.banned.insert(peer, Some(now + BAN_DURATION));
            }
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Forgets strikes that decayed to nothing and lifts bans that ran out (a peer still
    /// blocked by `p2p.blocked_peers` stays blocked).
    fn forgive(&mut self, now: Instant) {
        self.strikes.retain(|_, s| {
            s.decay(now);
            s.count > 0
        });
        let ended: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| until.is_some_and(|until| now >= until))
            .map(|(p, _)| *p)
            .collect();
        for peer in ended {
            self.banned.remove(&peer);
            if !self.config_blocked.contains(&peer) {
                info!(peer = %peer, "a ban ran out: the peer may connect again");
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
        }
    }

    /// Replaces the configured peers (`p2p.peers`, re-read at SIGHUP): dialed, and
    /// admitted whatever the validator set.
    pub fn set_peers(&mut self, dial: Vec<Multiaddr>) {
        self.config_peers = dial.iter().filter_map(peer_of).collect();
        self.dial = dial;
        let validators = std::mem::take(&mut self.validators);
        self.set_validators(&validators);
        self.redial();
    }

    /// Strikes counted since start.
    pub fn strikes_total(&self) -> u64 {
        self.strikes_total
    }

    /// Peers banned now.
    pub fn banned(&self) -> usize {
        self.banned.len()
    }

    pub fn set_max_strikes(&mut self, max_strikes: u32) {
        self.max_strikes = max_strikes;
    }

    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }

    /// Whether `peer` is the node of a validator of the latest set (not an observer).
    pub fn is_validator_peer(&self, peer: &PeerId) -> bool {
        self.validator_peers.contains(peer)
    }

    /// Blocks exactly `peers` by configuration (disconnecting them), and lets the peers no
    /// longer listed back in unless they were banned for misbehaving.
    pub fn set_blocked(&mut self, peers: Vec<PeerId>) {
        let peers: HashSet<PeerId> = peers.into_iter().collect();
        for p in self.config_blocked.difference(&peers) {
            if !self.banned.contains_key(p) {
                info!(peer = %p, "unblocking a peer");
                self.swarm.behaviour_mut().blocked.unblock_peer(*p);
            }
        }
        for p in peers.difference(&self.config_blocked) {
            info!(peer = %p, "blocking a peer");
            self.swarm.behaviour_mut().blocked.block_peer(*p);
        }
        self.config_blocked = peers;
        // Peers let back in are dialed now rather than at the next redial tick.
        self.redial();
    }

    /// Bans the peers of another genesis found since the last call, lifts bans that ran
    /// out, then dials the configured peers not connected.
    pub fn redial(&mut self) {
        self.forgive(Instant::now());
        for peer in std::mem::take(&mut self.refusing) {
            self.banned.insert(peer, None);
            self.swarm.behaviour_mut().blocked.block_peer(peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let mut seen = HashSet::new();
        for addr in self
            .dial
            .iter()
            .chain(&self.validator_dial)
            .cloned()
            .collect::<Vec<_>>()
        {
            let peer = peer_of(&addr);
            if peer.is_some_and(|p| {
                seen.insert(p)
                    && !self.swarm.is_connected(&p)
                    && p != self.peer_id
                    && !self.banned.contains_key(&p)
            }) {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    debug!("dialing {addr}: {e}");
                }
            }
        }
    }

    pub fn connected_peers(&self) -> usize {
        self.swarm.connected_peers().count()
    }
}

/// One strike of a peer is forgiven each time this passes (a leaky bucket: a peer that
/// sends fewer invalid messages than one this often is never banned).
pub const STRIKE_DECAY: Duration = Duration::from_secs(60);
/// How long a peer banned for invalid messages stays banned.
pub const BAN_DURATION: Duration = Duration::from_secs(3600);

/// A peer's strikes not yet forgiven.
#[derive(Clone, Copy, Debug)]
struct Strikes {
    count: u32,
    /// When `count` was last brought up to date.
    since: Instant,
}

impl Strikes {
    /// Forgives one strike for each whole [`STRIKE_DECAY`] since the last update.
    fn decay(&mut self, now: Instant) {
        let periods = now.saturating_duration_since(self.since).as_secs() / STRIKE_DECAY.as_secs();
        match u32::try_from(periods) {
            Ok(periods) if periods < self.count => {
                self.count -= periods;
                // Not past `now`: `periods` whole decays fit in the time since.
                self.since += STRIKE_DECAY * periods;
            }
            _ => {
                self.count = 0;
                self.since = now;
            }
        }
    }
}

/// Parses `p2p.peers`: multiaddresses ending in `/p2p/<peer id>`.
pub fn parse_peers(peers: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    let mut dial = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let addr = p
            .parse::<Multiaddr>()
            .map_err(|e| anyhow::anyhow!("field p2p.peers[{i}]: {p:?}: {e}"))?;
        dial.push(addr);
    }
    Ok(dial)
}

/// A validator's node as the state holds it: its peer id, and where to dial it if known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorPeer {
    pub key: acta_ledger::PublicKey,
    pub peer: PeerId,
    pub address: Option<Multiaddr>,
}

/// The peer an address ends with (`/p2p/<peer id>`), if it names one.
fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p2p() -> P2p {
        let config = P2pConfig {
            listen: "/ip4/127.0.0.1/tcp/0".into(),
            ..P2pConfig::default()
        };
        let key = libp2p::identity::Keypair::generate_ed25519();
        P2p::new(key, &config, &[], "/acta/1/test/genesis/x".into()).expect("a swarm")
    }

    #[tokio::test]
    async fn strikes_decay_and_bans_run_out() {
        let mut p2p = p2p();
        let (honest, flooder, blocked) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        // Nine invalid messages at once, then quiet: each minute forgives one.
        for _ in 0..9 {
            p2p.strike_at(honest, "test", t0);
        }
        p2p.strike_at(honest, "test", t0 + STRIKE_DECAY * 3);
        assert_eq!(p2p.strikes[&honest].count, 7);
        assert!(!p2p.banned.contains_key(&honest));
        // Ten in a row: banned, and its strikes are done with.
        for _ in 0..10 {
            p2p.strike_at(flooder, "test", t0);
            p2p.strike_at(blocked, "test", t0);
        }
        assert_eq!(p2p.banned.get(&flooder), Some(&Some(t0 + BAN_DURATION)));
        assert!(!p2p.strikes.contains_key(&flooder));
        p2p.set_blocked(vec![blocked]);
        // A while later the honest peer's strikes are gone; the bans still hold.
        p2p.forgive(t0 + STRIKE_DECAY * 20);
        assert!(p2p.strikes.is_empty());
        assert!(p2p.banned.contains_key(&flooder));
        // At the end of the ban both are unbanned; the one the operator blocked stays
        // blocked by the configuration.
        let swarm_blocked =
            |p2p: &mut P2p| p2p.swarm.behaviour_mut().blocked.blocked_peers().clone();
        assert_eq!(swarm_blocked(&mut p2p), HashSet::from([flooder, blocked]));
        p2p.forgive(t0 + BAN_DURATION);
        assert!(p2p.banned.is_empty());
        assert_eq!(swarm_blocked(&mut p2p), HashSet::from([blocked]));
        // Unblocking it by configuration now lets it back in.
        p2p.set_blocked(Vec::new());
        assert!(swarm_blocked(&mut p2p).is_empty());
        // A peer of another genesis is banned until restart: strikes that arrive after do
        // not turn that into an hour.
        let stranger = PeerId::random();
        p2p.refusing.insert(stranger);
        p2p.redial();
        for _ in 0..10 {
            p2p.strike_at(stranger, "test", t0);
        }
        assert_eq!(p2p.banned.get(&stranger), Some(&None));
        p2p.forgive(t0 + BAN_DURATION * 100);
        assert_eq!(p2p.banned.get(&stranger), Some(&None));
    }

    #[test]
    fn a_long_silence_forgives_every_strike() {
        let t0 = Instant::now();
        let mut s = Strikes {
            count: 3,
            since: t0,
        };
        s.decay(t0 + STRIKE_DECAY / 2);
        assert_eq!((s.count, s.since), (3, t0));
        s.decay(t0 + STRIKE_DECAY * 2 + STRIKE_DECAY / 2);
        assert_eq!((s.count, s.since), (1, t0 + STRIKE_DECAY * 2));
        s.decay(t0 + Duration::from_secs(u64::from(u32::MAX) * 120));
        assert_eq!(s.count, 0);
    }
}
