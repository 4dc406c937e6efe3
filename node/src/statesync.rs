//! State sync: a new node joins from a recent snapshot of its peers instead of replaying the
//! chain from the genesis (`actad start --state-sync`).
//!
//! Before the node starts, a short-lived swarm dials the configured peers and asks each for
//! the manifest of its newest snapshot. A manifest counts only once it verifies against the
//! genesis alone (`Manifest::verify`: the validator-set changes, the commit of more than
//! two thirds, the cosigned block log), so a peer can offer nothing false, only nothing.
//! The newest verified height wins; its chunks are fetched in key order, round robin among
//! the peers that offered the same block, and each is checked against the state root as it
//! lands. A peer whose chunk fails, or that says the state ends where the whole does not
//! rebuild the root, is dropped and the restore starts over from the others; a peer that
//! leaves `MISSES_MAX` asks in a row unanswered is not asked again in that attempt.
//! The node then starts as usual and fetches the blocks after the snapshot by block sync.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use acta_ledger::{
    snapshot::{Chunk, Verified},
    Hash, Height,
};
use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::{
    config::{Config, Home},
    genesis::{ChainSpec, Genesis},
    keys,
    p2p::{
        asker::Asker,
        protocol::{SyncRequest, SyncResponse},
        PeerId,
    },
    snapshot::{self, Restoring},
};

/// How long state sync may take by default before the node gives up.
pub const TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

/// Asks in a row that a peer may leave unanswered (timed out, or refused as busy) before an
/// attempt stops asking it.
const MISSES_MAX: usize = 4;

/// Restores the newest snapshot the peers offer into `home`, unless its store already
/// holds a height (the node then starts from its store: state sync is for a new node).
/// Returns the height restored. `config` is the node's, read from `home`.
pub async fn run(home: &Home, config: &Config, timeout: Duration) -> Result<Option<Height>> {
    if let Some(h) = snapshot::store_holds_a_height(home)? {
        info!(height = %h, "the store holds blocks already: starting from it, not from a snapshot");
        return Ok(None);
    }
    let (_, spec) = Genesis::load(&home.genesis())?;
    if config.p2p.peers.is_empty() {
        bail!("state sync needs peers to ask: the config file's p2p.peers is empty");
    }
    let node_key = keys::load_node_key(&home.node_key())?;
    let mut client = Client {
        net: Asker::dial(
            node_key,
            &config.p2p,
            Instant::now() + timeout,
            crate::p2p::protocol::chain_identity(spec.chain_id.as_str(), &spec.hash),
        )?,
    };
    let started = Instant::now();
    let mut dropped = HashSet::new();
    let mut last_error = String::from("no peer connected");
    loop {
        if Instant::now() >= client.net.deadline() {
            bail!(
                "state sync found no snapshot that verifies within {} s ({last_error}); the peers must run, hold a cosigned checkpoint within their kept state, and admit this node (a node of the latest validator set, a peer in their p2p.peers, or any peer with p2p.allow_observers = true)",
                timeout.as_secs()
            );
        }
        let offers = client.offers(&spec, &dropped).await;
        let Some((best, sources)) = choose(&offers) else {
            last_error = "no peer offered a snapshot".into();
            client.wait(Duration::from_secs(1)).await;
            continue;
        };
        let height = best.manifest.height();
        info!(
            height = %height,
            entries = best.manifest.entries,
            peers = sources.len(),
            "restoring a verified snapshot from peers"
        );
        let (worker, after) = Worker::begin(home, config, &spec, best).await?;
        match client.fetch(worker, after, &sources, &mut dropped).await {
            Ok(h) => {
                info!(
                    height = %h,
                    seconds = started.elapsed().as_secs_f64(),
                    "state sync done"
                );
                return Ok(Some(h));
            }
            Err(e) => {
                warn!("state sync at height {height} failed: {e:#}; trying again");
                last_error = format!("{e:#}");
            }
        }
    }
}

/// Whether a restore failed because its manifest's list of set changes is not the chain's
/// (`Manifest::check_set_history`).
fn refused_set_history(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<acta_ledger::Error>(),
            Some(acta_ledger::Error::Invalid { what, .. })
                if *what == acta_ledger::snapshot::SET_HISTORY_REFUSED
        )
    })
}

/// What groups snapshot offers: the block, the count of entries, and each set change as
/// (its header's hash, the hash of the set it announces).
type OfferKey = (Hash, u64, Vec<(Hash, Hash)>);

/// The snapshot to restore among verified offers (newest first), with the peers that offer
/// it: of the newest block, the manifest most peers offer. The manifest's count of entries
/// and its list of set changes are not proven until the state is whole, so peers are
/// grouped by them too: a peer that names the block with a wrong count, or leaves out a
/// change, cannot make those with the right ones look as if they lied.
fn choose(
    offers: &[(PeerId, acta_ledger::snapshot::Verified)],
) -> Option<(acta_ledger::snapshot::Verified, Vec<PeerId>)> {
    let newest = offers.first()?.1.manifest.height();
    // What groups offers, made once for each: the block, the count, and each set change as
    // its header and the set it announces (what the set-history check reads; honest nodes
    // may hold other signatures of the same header).
    let keys: Vec<OfferKey> = offers
        .iter()
        .map(|(_, v)| {
            let m = &v.manifest;
            let changes = m
                .validator_changes
                .iter()
                .map(|c| (c.header.hash(), c.next_validators.hash()))
                .collect();
            (m.block.hash(), m.entries, changes)
        })
        .collect();
    let ((_, best), best_key) = offers
        .iter()
        .zip(&keys)
        .filter(|((_, v), _)| v.manifest.height() == newest)
        .max_by_key(|(_, key)| keys.iter().filter(|k| k == key).count())?;
    let sources = offers
        .iter()
        .zip(&keys)
        .filter(|(_, k)| *k == best_key)
        .map(|((p, _), _)| *p)
        .collect();
    Some((best.clone(), sources))
}

/// State sync's side of the network: requests only, each bounded by the deadline.
struct Client {
    net: Asker,
}

impl Client {
    async fn wait(&mut self, time: Duration) {
        self.net.wait(time).await;
    }

    async fn request(&mut self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse> {
        self.net.request(peer, request).await
    }

    /// The verified manifests of the connected peers (waiting a little for connections),
    /// newest first.
    async fn offers(
        &mut self,
        spec: &ChainSpec,
        dropped: &HashSet<PeerId>,
    ) -> Vec<(PeerId, acta_ledger::snapshot::Verified)> {
        if self.net.connected_peers().is_empty() {
            self.wait(Duration::from_secs(1)).await;
        }
        let peers: Vec<PeerId> = self
            .net
            .connected_peers()
            .into_iter()
            .filter(|p| !dropped.contains(p))
            .collect();
        let mut offers = Vec::new();
        for peer in peers {
            match self.request(peer, SyncRequest::SnapshotManifest).await {
                Ok(SyncResponse::SnapshotManifest(m)) => {
                    match m.verify(&spec.chain_id, &spec.validators) {
                        Ok(v) => offers.push((peer, v)),
                        Err(e) => warn!(peer = %peer, "a snapshot offered does not verify: {e}"),
                    }
                }
                Ok(SyncResponse::Unavailable(why)) => {
                    info!(peer = %peer, "no snapshot offered: {why}");
                }
                Ok(_) => warn!(peer = %peer, "answered a manifest request with something else"),
                Err(e) => debug!("{e:#}"),
            }
        }
        offers.sort_by_key(|(_, v)| std::cmp::Reverse(v.manifest.height()));
        offers
    }

    /// Fetches every chunk of the snapshot being restored, round robin among `sources`,
    /// and finishes the restore. A peer whose chunk does not prove is added to `dropped`.
    ///
    /// The worker checks and writes one chunk while the next is asked for: the next
    /// request needs only the last key of the chunk before, not its check. A chunk that
    /// fails its check ends the attempt, with whatever was asked after it.
    async fn fetch(
        &mut self,
        worker: Worker,
        mut after: Option<Hash>,
        sources: &[PeerId],
        dropped: &mut HashSet<PeerId>,
    ) -> Result<Height> {
        let (height, total) = (worker.height, worker.total);
        let mut entries = 0u64;
        let mut adding: Option<(oneshot::Receiver<Result<u64>>, PeerId)> = None;
        let mut turn = 0usize;
        let mut failures = 0usize;
        let mut chunks = 0u64;
        // Each peer's asks in a row that timed out or were refused: at MISSES_MAX it is
        // left out of this attempt, so one peer that never answers costs the attempt a
        // few timeouts, not one in every turn.
        let mut misses: HashMap<PeerId, usize> = HashMap::new();
        loop {
            let live: Vec<PeerId> = sources
                .iter()
                .filter(|p| !dropped.contains(p))
                .filter(|p| misses.get(p).copied().unwrap_or(0) < MISSES_MAX)
                .copied()
                .collect();
            if live.is_empty() {
                bail!("no peer left that serves the snapshot");
            }
            let peer = live[turn % live.len()];
            turn += 1;
            let response = self
                .request(peer, SyncRequest::SnapshotChunk { height, after })
                .await;
            if let Some((added, from)) = adding.take() {
                match added.await.context("the restore stopped")? {
                    Ok(n) => entries = n,
                    Err(e) => {
                        dropped.insert(from);
                        return Err(e).with_context(|| format!("a chunk from {from}"));
                    }
                }
            }
            match response {
                Ok(SyncResponse::SnapshotChunk(Some(chunk))) => {
                    let Some((last, _)) = chunk.entries.last() else {
                        dropped.insert(peer);
                        bail!("{peer} sent a chunk with no entries");
                    };
                    after = Some(*last);
                    failures = 0;
                    misses.remove(&peer);
                    chunks += 1;
                    if chunks.is_multiple_of(64) {
                        info!(height = %height, chunks, "restoring: {entries} of {total} entries");
                    }
                    adding = Some((worker.add(chunk)?, peer));
                    continue;
                }
                Ok(SyncResponse::SnapshotChunk(None)) if entries == total => {
                    // The state ends here, says this peer: if the whole does not rebuild
                    // the root, it said so falsely (or the group's count of entries was
                    // false), and it is not asked again.
                    return worker.finish().await.inspect_err(|e| {
                        dropped.insert(peer);
                        // A manifest whose set changes are not the chain's: every peer
                        // that offered it (the group offered one list) offered a lie.
                        if refused_set_history(e) {
                            dropped.extend(sources.iter().copied());
                        }
                    });
                }
                Ok(SyncResponse::SnapshotChunk(None)) => {
                    dropped.insert(peer);
                    bail!("{peer} says the state ends after {entries} of {total} entries");
                }
                Ok(SyncResponse::Unavailable(why)) => {
                    // Busy serving others, most often: back off before the next ask.
                    debug!(peer = %peer, "chunk unavailable: {why}");
                    failures += 1;
                    *misses.entry(peer).or_default() += 1;
                    self.wait(Duration::from_millis(100 * failures as u64))
                        .await;
                }
                Ok(_) => {
                    dropped.insert(peer);
                    warn!(peer = %peer, "answered a chunk request with something else");
                }
                Err(e) => {
                    debug!("{e:#}");
                    failures += 1;
                    *misses.entry(peer).or_default() += 1;
                }
            }
            if failures > 4 * live.len() {
                bail!("the peers stopped serving the snapshot of height {height}");
            }
        }
    }
}

/// A restore on a thread of its own (jmt's restore cannot move between threads), fed one
/// chunk at a time. Dropping the worker ends the thread and waits for it (at most the chunk
/// it is writing), so the next attempt never clears a store still open; the restore is
/// abandoned and the next attempt clears what it left.
struct Worker {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    height: Height,
    total: u64,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Job {
    /// Check and write a chunk; answers the entries restored so far.
    Add(Chunk, oneshot::Sender<Result<u64>>),
    Finish(oneshot::Sender<Result<Height>>),
}

impl Worker {
    /// Starts restoring `verified` into `home`; also answers the key after which the first
    /// chunk starts.
    async fn begin(
        home: &Home,
        config: &Config,
        spec: &ChainSpec,
        verified: Verified,
    ) -> Result<(Worker, Option<Hash>)> {
        let (height, total) = (verified.manifest.height(), verified.manifest.entries);
        let (jobs, queue) = std::sync::mpsc::channel();
        let (ready, started) = oneshot::channel();
        let (home, config, spec) = (home.clone(), config.clone(), spec.clone());
        let thread = std::thread::Builder::new()
            .name("state-sync".into())
            .spawn(move || {
                let mut restoring = match Restoring::begin(&home, &config, &spec, verified) {
                    Ok(r) => {
                        let _ = ready.send(Ok(r.after()));
                        r
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    match job {
                        Job::Add(chunk, reply) => {
                            let added = restoring.add(chunk).map(|()| restoring.entries());
                            let _ = reply.send(added);
                        }
                        Job::Finish(reply) => {
                            let _ = reply.send(restoring.finish());
                            return;
                        }
                    }
                }
            })
            .context("starting the restore thread")?;
        let worker = Worker {
            jobs: Some(jobs),
            thread: Some(thread),
            height,
            total,
        };
        let after = started.await.context("the restore thread stopped")??;
        Ok((worker, after))
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| anyhow!("the restore thread stopped"))
    }

    fn add(&self, chunk: Chunk) -> Result<oneshot::Receiver<Result<u64>>> {
        let (reply, added) = oneshot::channel();
        self.send(Job::Add(chunk, reply))?;
        Ok(added)
    }

    async fn finish(self) -> Result<Height> {
        let (reply, done) = oneshot::channel();
        self.send(Job::Finish(reply))?;
        done.await.context("the restore thread stopped")?
    }
}

#[cfg(test)]
mod tests {
    use acta_ledger::{
        snapshot::{Manifest, Verified, SNAPSHOT_VERSION},
        testing::{self, BlockSpec},
        Hash, Height, Keypair, VotingPower,
    };

    use super::*;

    fn offer(height: u64, entries: u64) -> Verified {
        let chain = testing::chain_id();
        let (keys, set) = testing::validators(4, &[1, 1, 1, 1]);
        let block = testing::block(
            &chain,
            BlockSpec {
                height: Height(height),
                parent_hash: Hash::ZERO,
                txs: vec![],
                last_commit: None,
                evidence: vec![],
                state_root: Hash::ZERO,
                validators: &set,
                next_validators: &set,
            },
        );
        let commit = testing::commit(&chain, &keys, &set, Height(height), block.hash());
        Verified {
            manifest: Manifest {
                version: SNAPSHOT_VERSION,
                chain_id: chain,
                validator_changes: vec![],
                block,
                commit,
                next_validators: set.clone(),
                log: vec![],
                cosignatures: vec![],
                entries,
            },
            validators: set,
            signed: VotingPower(4),
        }
    }

    #[test]
    fn the_newest_snapshot_most_peers_offer_with_the_same_count_of_entries() {
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        // Newest first, as `Client::offers` sorts them: a peer names the newest block with
        // a wrong count, first; two others give the right one; an older one is not taken.
        let offers = vec![
            (peers[0], offer(20, 999)),
            (peers[1], offer(20, 100)),
            (peers[2], offer(20, 100)),
            (peers[3], offer(10, 50)),
            (peers[4], offer(10, 50)),
        ];
        let (best, sources) = choose(&offers).unwrap();
        assert_eq!(
            (best.manifest.height(), best.manifest.entries),
            (Height(20), 100)
        );
        assert_eq!(sources, vec![peers[1], peers[2]]);
        assert!(choose(&[]).is_none());
    }

    /// Offers are grouped by the set changes they list, each as its header and the set it
    /// announces: two honest peers holding other signatures of the same header agree; a
    /// peer that leaves the change out is alone, and not chosen.
    #[test]
    fn offers_are_grouped_by_their_set_changes_not_their_signatures() {
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let chain = testing::chain_id();
        let (keys, set) = testing::validators(4, &[1, 1, 1, 1]);
        let announced = offer(5, 0).manifest.block;
        let change = |signers: &[Keypair]| acta_ledger::bundle::SetChange {
            header: announced.header.clone(),
            commit: testing::commit(&chain, signers, &set, Height(5), announced.hash()),
            next_validators: set.clone(),
        };
        let with = |c: acta_ledger::bundle::SetChange| {
            let mut o = offer(20, 100);
            o.manifest.validator_changes = vec![c];
            o
        };
        let offers = vec![
            (peers[0], offer(20, 100)),
            (peers[1], with(change(&keys))),
            (peers[2], with(change(&keys[..3]))),
        ];
        let (best, sources) = choose(&offers).unwrap();
        assert_eq!(best.manifest.validator_changes.len(), 1);
        assert_eq!(sources, vec![peers[1], peers[2]]);
    }
}
