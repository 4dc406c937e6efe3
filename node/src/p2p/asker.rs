//! A swarm that only asks: it dials the configured peers and sends them sync requests,
//! each bounded by one deadline, answering nothing itself. State sync uses it before the
//! node starts.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures::StreamExt;
use libp2p::{
    request_response::{self, OutboundRequestId},
    swarm::SwarmEvent,
    Multiaddr, PeerId, Swarm,
};
use tracing::{debug, warn};

use super::protocol::{self, Behaviour, BehaviourEvent, SyncRequest, SyncResponse};
use crate::config::P2pConfig;

/// Sync requests over a swarm that does nothing else, until a deadline.
pub struct Asker {
    swarm: Swarm<Behaviour>,
    deadline: Instant,
}

impl std::fmt::Debug for Asker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asker")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Asker {
    /// Dials every peer of `p2p.peers`. Observers are admitted on this side: it only dials
    /// out, and only to ask.
    pub fn dial(
        node_key: libp2p::identity::Keypair,
        config: &P2pConfig,
        deadline: Instant,
        identity: String,
    ) -> Result<Asker> {
        let mut swarm = protocol::swarm(node_key, config.max_message_bytes, true, identity)?;
        for (i, p) in config.peers.iter().enumerate() {
            let addr: Multiaddr = p
                .parse()
                .map_err(|e| anyhow!("config file: field p2p.peers[{i}]: {e}"))?;
            if let Err(e) = swarm.dial(addr) {
                warn!("dialling {p}: {e}");
            }
        }
        Ok(Asker { swarm, deadline })
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.swarm.connected_peers().copied().collect()
    }

    /// Drives the swarm for `time` (or to the deadline).
    pub async fn wait(&mut self, time: Duration) {
        let until = (Instant::now() + time).min(self.deadline);
        while let Ok(event) =
            tokio::time::timeout_at(until.into(), self.swarm.select_next_some()).await
        {
            Self::ignore(&event);
        }
    }

    /// Answers nothing: requests from peers are dropped.
    fn ignore(event: &SwarmEvent<BehaviourEvent>) {
        if let SwarmEvent::ConnectionEstablished { peer_id, .. } = event {
            debug!(peer = %peer_id, "connected");
        }
    }

    /// Asks `peer` and waits for its answer, until the deadline.
    pub async fn request(&mut self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse> {
        let id: OutboundRequestId = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        loop {
            let event =
                tokio::time::timeout_at(self.deadline.into(), self.swarm.select_next_some())
                    .await
                    .map_err(|_| anyhow!("timed out waiting for {peer}"))?;
            match event {
                SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                })) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(BehaviourEvent::Sync(
                    request_response::Event::OutboundFailure {
                        request_id, error, ..
                    },
                )) if request_id == id => bail!("asking {peer}: {error}"),
                other => Self::ignore(&other),
            }
        }
    }
}
