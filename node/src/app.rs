//! The application: checks, executes, builds and stores blocks on a thread of its own, so
//! that the node's loop keeps taking votes, proposals, transactions and API calls while a
//! block runs.
//!
//! The loop hands it [`Job`]s in the order the driver asks for them and gets [`Done`]s back
//! on a channel, in the same order. The thread is the only writer of blocks to the store
//! and keeps the tip it wrote (height, hash, time and commit), so a job is judged against
//! the chain as it stands when the job runs, never as it stood when the job was sent: a
//! build or check for a height already stored (a block synced meanwhile) is dropped, and
//! each synced block must follow the one before it.
//!
//! Failures of this node (a store read or write) end the job with an error, and the node
//! stops; a block that is wrong is a verdict (`valid: false`, or a synced block refused),
//! never an error.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use acta_contracts::{execute_block_with, executor::BlockResults, BlockContext, ExecError};
use acta_ledger::{
    block::Header, light::verify_commit, state::AuthenticatedState, state::StateUpdate,
    store::Store, validator::ValidatorSet, Block, ChainId, Commit, Evidence, Hash, Height,
    PublicKey, Round, Timestamp, Transaction,
};
use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::{mempool::VerifiedIds, metrics::Metrics, p2p::PeerId};

/// How far in the future a proposed block's time may be, in milliseconds.
const CLOCK_DRIFT_MS: u64 = 15_000;

/// A failure of this node (its store), not of what a peer sent: the node stops on it
/// rather than judge a block invalid or strike the peer that sent it.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct LocalFault(pub anyhow::Error);

/// What the application is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Execute `txs` (from the mempool, with their ids) as the block to propose at
    /// `height`, on top of the tip, and keep its state update.
    Build {
        height: Height,
        round: Round,
        ctx: BlockContext,
        txs: Vec<Transaction>,
        ids: Vec<Hash>,
        evidence: Vec<Evidence>,
    },
    /// Check and execute a candidate block of `height`, keeping its state update if valid.
    Check {
        height: Height,
        block: Hash,
        body: Arc<Block>,
    },
    /// Store a decided block with its commit.
    Commit {
        block: Hash,
        body: Arc<Block>,
        commit: Commit,
    },
    /// Check, execute and store blocks fetched from `peer`, each against its commit, in
    /// order; then say how it went ([`Done::SyncEnded`]).
    Synced {
        blocks: Vec<(Block, Commit)>,
        /// The driver's id of the request they answer.
        id: u64,
        peer: PeerId,
    },
}

impl Job {
    /// The height a build, check or commit is for (a sync's blocks have their own).
    fn height(&self) -> Option<Height> {
        match self {
            Job::Build { height, .. } | Job::Check { height, .. } => Some(*height),
            Job::Commit { body, .. } => Some(body.height()),
            Job::Synced { .. } => None,
        }
    }
}

/// What the application did.
#[derive(Debug)]
pub enum Done {
    Built {
        height: Height,
        round: Round,
        block: Hash,
        body: Arc<Block>,
        /// The block's transaction ids, in order.
        ids: Vec<Hash>,
        /// Transactions the executor refused as invalid: left out of the block with their
        /// signers' later ones, to be evicted from the mempool.
        left_out: Vec<Hash>,
    },
    Checked {
        height: Height,
        block: Hash,
        valid: bool,
    },
    /// A block is in the store (decided here, or synced).
    Committed(Box<Stored>),
    /// The blocks of a [`Job::Synced`] were applied, up to the first refused, if any.
    SyncEnded {
        id: u64,
        peer: PeerId,
        blocks: usize,
        refused: Option<String>,
    },
}

/// A block just stored, with what the node needs to follow it.
#[derive(Debug)]
pub struct Stored {
    pub block: Block,
    pub commit: Commit,
    pub results: BlockResults,
    pub ids: Vec<Hash>,
    /// The state keys the block wrote or deleted (what a mempool judges its pool again
    /// for).
    pub changed: Vec<Hash>,
    pub synced: bool,
}

/// A checked and executed block: its state update and the results to store with it.
struct Executed {
    update: StateUpdate,
    results: BlockResults,
    /// The block's transaction ids in order, computed once (`Block::checked_ids`, or the
    /// mempool's for an own block) and used from then on.
    ids: Vec<Hash>,
}

/// The latest block in the store.
#[derive(Clone, Debug)]
pub struct Tip {
    pub height: Height,
    pub hash: Hash,
    pub time: Timestamp,
    /// Its commit, carried in the next block (none for the genesis).
    pub commit: Option<Commit>,
}

/// The application's side: what its thread owns.
struct App {
    store: Arc<Store>,
    chain_id: ChainId,
    proposer: PublicKey,
    metrics: Arc<Metrics>,
    /// Ids of transactions whose signatures this node verified (shared with the loop's
    /// checks): those are not verified again.
    verified: Arc<VerifiedIds>,
    tip: Tip,
    /// The state updates of the candidate blocks of the next height built or checked here,
    /// kept until a block of that height is stored.
    executed: HashMap<Hash, Executed>,
    done: mpsc::UnboundedSender<Result<Done>>,
    /// Set when the node stops: no job is started after it.
    stopping: Arc<AtomicBool>,
}

/// The loop's side: where jobs go. Stopping it (or dropping it) lets the thread finish
/// the job under way, starts no other, and waits for it.
#[derive(Debug)]
pub struct AppHandle {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

impl AppHandle {
    /// Starts the application's thread on `store`, whose latest block is `tip`. What it
    /// does comes back on the returned channel, in order; an `Err` is a failure of this
    /// node, and the channel closes if the thread ends.
    pub fn start(
        store: Arc<Store>,
        chain_id: ChainId,
        proposer: PublicKey,
        metrics: Arc<Metrics>,
        verified: Arc<VerifiedIds>,
        tip: Tip,
    ) -> Result<(AppHandle, mpsc::UnboundedReceiver<Result<Done>>)> {
        let (jobs, inbox) = std::sync::mpsc::channel();
        let (done, outbox) = mpsc::unbounded_channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let mut app = App {
            store,
            chain_id,
            proposer,
            metrics,
            verified,
            tip,
            executed: HashMap::new(),
            done,
            stopping: stopping.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("acta-app".into())
            .spawn(move || {
                for job in inbox {
                    if app.stopping.load(Ordering::Acquire) || !app.run(job) {
                        break;
                    }
                }
            })
            .context("starting the application's thread")?;
        Ok((
            AppHandle {
                jobs: Some(jobs),
                thread: Some(thread),
                stopping,
            },
            outbox,
        ))
    }

    /// Queues a job after those sent before it.
    pub fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .context("the application's thread has stopped")
    }

    /// Lets the job under way finish, drops those queued, and waits for the thread. What
    /// it did meanwhile stays on the channel of [`Done`]s.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            // The job under way ends on its own (a block's write is one atomic batch).
            let _ = thread.join();
        }
    }
}

impl Drop for AppHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl App {
    /// Carries out one job; false once the loop is gone or this node failed.
    fn run(&mut self, job: Job) -> bool {
        let result = match job.height() {
            // For a height stored meanwhile (a synced block): nothing left to do.
            Some(height) if height <= self.tip.height => Ok(None),
            // The driver asks only for the height after the one it was told is stored.
            Some(height) if height > self.tip.height.next() => Err(anyhow!(
                "asked for height {height} with the store at {}",
                self.tip.height
            )),
            _ => self.carry_out(job),
        };
        match result {
            Ok(None) => true,
            Ok(Some(done)) => self.done.send(Ok(done)).is_ok(),
            Err(e) => {
                error!("the application failed: {e:#}");
                let _ = self.done.send(Err(e));
                false
            }
        }
    }

    /// Carries out a job for the next height, or a sync.
    fn carry_out(&mut self, job: Job) -> Result<Option<Done>> {
        match job {
            Job::Build {
                height,
                round,
                ctx,
                txs,
                ids,
                evidence,
            } => self
                .build(ctx, txs, ids, evidence)
                .map(|(block, ids, left_out)| {
                    Some(Done::Built {
                        height,
                        round,
                        block: block.hash(),
                        body: Arc::new(block),
                        ids,
                        left_out,
                    })
                }),
            Job::Check {
                height,
                block,
                body,
            } => self.check_candidate(block, &body).map(|valid| {
                Some(Done::Checked {
                    height,
                    block,
                    valid,
                })
            }),
            Job::Commit {
                block,
                body,
                commit,
            } => self.commit_decided(block, body, commit).map(Some),
            Job::Synced { blocks, id, peer } => self.apply_synced(blocks, id, peer).map(Some),
        }
    }

    /// The validators that sign `height`.
    fn validators(&self, height: Height) -> Result<ValidatorSet> {
        Ok(acta_contracts::staking::validators_at(
            self.store.as_ref(),
            height,
        )?)
    }

    /// Executes the mempool's transactions as the next block and keeps its state update.
    /// Should one make the block invalid anyway (the mempool keeps each signer's nonces
    /// gapless from the committed state, so it should not), it and its signer's later
    /// transactions are left out rather than proposing an invalid block or stopping.
    fn build(
        &mut self,
        ctx: BlockContext,
        mut txs: Vec<Transaction>,
        mut ids: Vec<Hash>,
        evidence: Vec<Evidence>,
    ) -> Result<(Block, Vec<Hash>, Vec<Hash>)> {
        let height = ctx.height;
        let mut left_out = Vec::new();
        // Every transaction the mempool hands out had its signature verified on admission.
        let outcome = loop {
            match execute_block_with(self.store.as_ref(), &ctx, &txs, &ids, &evidence, &|_| true) {
                Ok(outcome) => break outcome,
                Err(ExecError::InvalidTx { index, id, reason }) => {
                    warn!(tx = %id, "left out of the proposal and the mempool: {reason}");
                    left_out.push(id);
                    let index = index as usize;
                    let signer = txs[index].signer;
                    (txs, ids) = std::mem::take(&mut txs)
                        .into_iter()
                        .zip(std::mem::take(&mut ids))
                        .enumerate()
                        .filter(|(at, (t, _))| *at < index || t.signer != signer)
                        .map(|(_, kept)| kept)
                        .unzip();
                }
                Err(e) => return Err(e.into()),
            }
        };
        let update = self.store.prepare(&outcome.changes, height)?;
        let results_root = BlockResults::results_root(&outcome.receipts);
        // Transactions whose calls the executor refused stay in: they use up their nonces
        // and their receipts say why.
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            time: ctx.time,
            parent_hash: self.tip.hash,
            txs_root: Block::txs_root_of_ids(&ids),
            results_root,
            state_root: update.root,
            validators_hash: self.validators(height)?.hash(),
            next_validators_hash: self.validators(height.next())?.hash(),
            proposer: self.proposer,
            last_commit_hash: Block::last_commit_hash(self.tip.commit.as_ref()),
            evidence_hash: Block::evidence_hash(&evidence),
        };
        let block = Block {
            header,
            txs,
            last_commit: self.tip.commit.clone(),
            evidence,
        };
        self.executed.insert(
            block.hash(),
            Executed {
                update,
                results: outcome.into_results(),
                ids: ids.clone(),
            },
        );
        Ok((block, ids, left_out))
    }

    /// The verdict on a candidate block, which is checked and executed (its state update
    /// kept). A failure of this node while checking (its store) is an error, never an
    /// "invalid" verdict: the node stops rather than prevote nil for a block it could not
    /// judge.
    fn check_candidate(&mut self, hash: Hash, block: &Block) -> Result<bool> {
        match self.check(block, true) {
            Ok(executed) => {
                self.executed.insert(hash, executed);
                Ok(true)
            }
            Err(e) if e.is::<LocalFault>() => Err(e),
            Err(e) => {
                warn!(height = %block.height(), block = %hash, "invalid block: {e:#}");
                Ok(false)
            }
        }
    }

    /// Checks everything about a block of the next height and executes it. A failure of
    /// this node rather than of the block is a [`LocalFault`].
    fn check(&self, block: &Block, live: bool) -> Result<Executed> {
        let h = &block.header;
        if h.chain_id != self.chain_id {
            bail!("block for chain {}", h.chain_id);
        }
        let height = self.tip.height.next();
        if h.height != height {
            bail!("block for height {}, expected {height}", h.height);
        }
        if h.parent_hash != self.tip.hash {
            bail!("parent {} is not {}", h.parent_hash, self.tip.hash);
        }
        if h.time <= self.tip.time {
            bail!(
                "time {} is not after the parent's {}",
                h.time,
                self.tip.time
            );
        }
        if live && h.time.0 > Timestamp::now().0 + CLOCK_DRIFT_MS {
            bail!("time {} is in the future", h.time);
        }
        let ids = block.checked_ids()?;
        let validators = self.validators(h.height).map_err(LocalFault)?;
        if h.validators_hash != validators.hash() {
            bail!("wrong validators hash");
        }
        let next = self.validators(h.height.next()).map_err(LocalFault)?;
        if h.next_validators_hash != next.hash() {
            bail!("wrong next validators hash");
        }
        if validators.index_of(&h.proposer).is_none() {
            bail!("proposer {} is not a validator", h.proposer);
        }
        if let Some(c) = &block.last_commit {
            let set = self.validators(c.height).map_err(LocalFault)?;
            verify_commit(&self.chain_id, &set, c, c.height, &h.parent_hash)?;
        }
        let mut seen = HashSet::new();
        for e in &block.evidence {
            if !seen.insert((e.offender(), e.height())) {
                bail!("evidence against {} at {} twice", e.offender(), e.height());
            }
            e.verify(&self.chain_id)?;
        }
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: h.height,
            time: h.time,
            proposer: h.proposer,
        };
        // Each signature is verified once per node: those checked on admission are not
        // checked again. (One whose id has left the bounded set is verified again.)
        let outcome = match execute_block_with(
            self.store.as_ref(),
            &ctx,
            &block.txs,
            &ids,
            &block.evidence,
            &|id| self.verified.contains(id),
        ) {
            Ok(outcome) => outcome,
            Err(e @ ExecError::InvalidTx { .. }) => return Err(e.into()),
            Err(e) => return Err(LocalFault(e.into()).into()),
        };
        let update = self
            .store
            .prepare(&outcome.changes, h.height)
            .map_err(|e| LocalFault(e.into()))?;
        if update.root != h.state_root {
            bail!(
                "state root after execution is {}, the header says {}",
                update.root,
                h.state_root
            );
        }
        let results_root = BlockResults::results_root(&outcome.receipts);
        if results_root != h.results_root {
            bail!(
                "results root after execution is {results_root}, the header says {}",
                h.results_root
            );
        }
        Ok(Executed {
            update,
            results: outcome.into_results(),
            ids,
        })
    }

    /// Stores a block decided by consensus: with the state update kept when it was built or
    /// checked, or executed now.
    fn commit_decided(&mut self, hash: Hash, body: Arc<Block>, commit: Commit) -> Result<Done> {
        let executed = match self.executed.remove(&hash) {
            Some(e) => e,
            None => self
                .check(&body, false)
                .context("a decided block does not execute")?,
        };
        let block = Arc::unwrap_or_clone(body);
        Ok(Done::Committed(Box::new(
            self.store_block(block, commit, executed, false)?,
        )))
    }

    /// Checks each fetched block against the commit that certifies it and the validators
    /// of its height, executes it and stores it, in order. Blocks not of the next height
    /// (stored meanwhile) are passed over; the first that does not hold ends the job.
    fn apply_synced(
        &mut self,
        blocks: Vec<(Block, Commit)>,
        id: u64,
        peer: PeerId,
    ) -> Result<Done> {
        // What counts is the blocks applied, not those received: an answer of blocks this
        // node holds already must not pass for progress, or a peer that claims a height it
        // does not serve would be asked again and again instead of another.
        let mut applied = 0;
        let mut refused = None;
        for (block, commit) in blocks {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            let height = block.height();
            if height != self.tip.height.next() {
                continue;
            }
            let executed = match self.check_synced(&block, &commit) {
                Ok(executed) => executed,
                Err(e) if e.is::<LocalFault>() => return Err(e),
                Err(e) => {
                    refused = Some(format!("{e:#}"));
                    break;
                }
            };
            info!(height = %height, "synced");
            let stored = self.store_block(block, commit, executed, true)?;
            applied += 1;
            if self
                .done
                .send(Ok(Done::Committed(Box::new(stored))))
                .is_err()
            {
                break;
            }
        }
        Ok(Done::SyncEnded {
            id,
            peer,
            blocks: applied,
            refused,
        })
    }

    fn check_synced(&self, block: &Block, commit: &Commit) -> Result<Executed> {
        let height = block.height();
        let set = self.validators(height).map_err(LocalFault)?;
        verify_commit(&self.chain_id, &set, commit, height, &block.hash())?;
        self.check(block, false)
    }

    /// Writes a block, its commit and the state after it in one synced batch, and moves
    /// the tip.
    fn store_block(
        &mut self,
        block: Block,
        commit: Commit,
        executed: Executed,
        synced: bool,
    ) -> Result<Stored> {
        let started = Instant::now();
        let Executed {
            update,
            results,
            ids,
        } = executed;
        let changed = update.changed_keys().copied().collect();
        self.store
            .commit_block_with_ids(&block, &commit, update, &results.encode(), &ids)
            .context("storing a decided block")?;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        self.tip = Tip {
            height: block.height(),
            hash: block.hash(),
            time: block.header.time,
            commit: Some(commit.clone()),
        };
        self.executed.clear();
        Ok(Stored {
            block,
            commit,
            results,
            ids,
            changed,
            synced,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::chain;
    use acta_ledger::testing;

    struct Running {
        app: AppHandle,
        done: mpsc::UnboundedReceiver<Result<Done>>,
        store: Arc<Store>,
    }

    impl Running {
        fn next(&mut self) -> Done {
            self.done
                .blocking_recv()
                .expect("the thread answers")
                .expect("no failure")
        }

        fn check(&self, body: Arc<Block>) {
            let (height, block) = (body.height(), body.hash());
            self.app
                .send(Job::Check {
                    height,
                    block,
                    body,
                })
                .unwrap();
        }

        fn commit(&self, body: &Arc<Block>, commit: &Commit) {
            self.app
                .send(Job::Commit {
                    block: body.hash(),
                    body: body.clone(),
                    commit: commit.clone(),
                })
                .unwrap();
        }

        fn sync(&self, body: &Block, commit: Commit, id: u64, peer: PeerId) {
            let blocks = vec![(body.clone(), commit)];
            self.app.send(Job::Synced { blocks, id, peer }).unwrap();
        }
    }

    /// An application on a new genesis store in `dir`, proposing with validator 2's key.
    fn start(dir: &std::path::Path) -> (Running, crate::genesis::ChainSpec) {
        let (store, spec) = chain(dir, 0);
        let store = Arc::new(store);
        let (app, done) = AppHandle::start(
            store.clone(),
            spec.chain_id.clone(),
            testing::key(0xa0, 2).public(),
            Arc::new(Metrics::new()),
            Arc::new(VerifiedIds::new(16)),
            Tip {
                height: Height(0),
                hash: spec.hash,
                time: spec.genesis_time,
                commit: None,
            },
        )
        .unwrap();
        (Running { app, done, store }, spec)
    }

    /// Builds block 1 with one transaction on `r` and a commit for it by all three keys.
    fn block_one(r: &mut Running, spec: &crate::genesis::ChainSpec) -> (Arc<Block>, Commit) {
        let tx = testing::create_did_tx(&spec.chain_id, 1, 0);
        r.app
            .send(Job::Build {
                height: Height(1),
                round: Round(0),
                ctx: BlockContext {
                    chain_id: spec.chain_id.clone(),
                    height: Height(1),
                    time: Timestamp(spec.genesis_time.0 + 1_000),
                    proposer: testing::key(0xa0, 2).public(),
                },
                ids: vec![tx.id()],
                txs: vec![tx],
                evidence: vec![],
            })
            .unwrap();
        let Done::Built {
            height,
            block,
            body,
            left_out,
            ..
        } = r.next()
        else {
            panic!("a build answers Built");
        };
        assert_eq!((height, body.txs.len()), (Height(1), 1));
        assert!(left_out.is_empty());
        assert_eq!(block, body.hash());
        let keys: Vec<_> = (0..3).map(|i| testing::key(0xa0, i)).collect();
        let set = acta_contracts::staking::validators_at(r.store.as_ref(), Height(1)).unwrap();
        let commit = testing::commit(&spec.chain_id, &keys, &set, Height(1), block);
        (body, commit)
    }

    #[test]
    fn a_block_built_on_one_node_is_checked_and_stored_on_another_and_stale_jobs_are_passed_over() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut proposer, spec) = start(a.path());
        let (mut other, _) = start(b.path());
        let (body, commit) = block_one(&mut proposer, &spec);
        let hash = body.hash();

        // Another node checks it (verifying the signature it never saw) and finds it
        // valid; the same block with another state root is not.
        other.check(body.clone());
        let mut forged = (*body).clone();
        forged.header.state_root = Hash([9; 32]);
        let forged_hash = forged.hash();
        other.check(Arc::new(forged));
        assert!(matches!(other.next(), Done::Checked { block, valid: true, .. } if block == hash));
        assert!(
            matches!(other.next(), Done::Checked { block, valid: false, .. } if block == forged_hash)
        );

        // Stored with the update kept from the check.
        other.commit(&body, &commit);
        let Done::Committed(stored) = other.next() else {
            panic!("a commit answers Committed");
        };
        assert_eq!((stored.block.hash(), stored.synced), (hash, false));
        assert_eq!(stored.ids, vec![body.txs[0].id()]);
        assert_eq!(other.store.latest_height().unwrap(), Some(Height(1)));
        assert_eq!(other.store.block(Height(1)).unwrap().as_ref(), Some(&*body));

        // Jobs for the stored height are passed over: the next answer is the sync's, which
        // also passes over the block it already has (and counts it for nothing).
        other.check(body.clone());
        other.commit(&body, &commit);
        other.sync(&body, commit, 7, PeerId::random());
        assert!(matches!(
            other.next(),
            Done::SyncEnded {
                id: 7,
                blocks: 0,
                refused: None,
                ..
            }
        ));
        assert_eq!(other.store.latest_height().unwrap(), Some(Height(1)));
    }

    #[test]
    fn a_synced_block_is_stored_only_with_a_commit_that_certifies_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut proposer, spec) = start(a.path());
        let (mut behind, _) = start(b.path());
        let (body, commit) = block_one(&mut proposer, &spec);
        let peer = PeerId::random();

        // Signed by the smallest validator alone: a tenth of the power.
        let set = acta_contracts::staking::validators_at(behind.store.as_ref(), Height(1)).unwrap();
        let weak = testing::commit(
            &spec.chain_id,
            &[testing::key(0xa0, 0)],
            &set,
            Height(1),
            body.hash(),
        );
        behind.sync(&body, weak, 1, peer);
        let Done::SyncEnded { refused, .. } = behind.next() else {
            panic!("a sync answers SyncEnded");
        };
        assert!(refused.is_some());
        assert_eq!(behind.store.latest_height().unwrap(), Some(Height(0)));

        behind.sync(&body, commit.clone(), 2, peer);
        assert!(matches!(behind.next(), Done::Committed(s) if s.synced && s.block == *body));
        assert!(matches!(
            behind.next(),
            Done::SyncEnded {
                id: 2,
                blocks: 1,
                refused: None,
                ..
            }
        ));
        assert_eq!(behind.store.latest_height().unwrap(), Some(Height(1)));
        // The same block again: held already, so it counts for nothing (a peer answering
        // only blocks this node has is not making progress).
        behind.sync(&body, commit, 3, peer);
        assert!(matches!(
            behind.next(),
            Done::SyncEnded {
                id: 3,
                blocks: 0,
                refused: None,
                ..
            }
        ));
    }

    #[test]
    fn a_job_beyond_the_next_height_stops_the_application() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut proposer, spec) = start(a.path());
        let (mut r, _) = start(b.path());
        let (body, _) = block_one(&mut proposer, &spec);
        let mut later = (*body).clone();
        later.header.height = Height(3);
        r.check(Arc::new(later));
        let e = r.done.blocking_recv().expect("an answer").unwrap_err();
        assert!(
            e.to_string().contains("height 3 with the store at 0"),
            "{e}"
        );
        // The thread has stopped: nothing more is taken.
        assert!(r.done.blocking_recv().is_none());
        assert!(r
            .app
            .send(Job::Check {
                height: Height(1),
                block: body.hash(),
                body,
            })
            .is_err());
    }

    #[test]
    fn stopping_finishes_the_job_under_way_and_starts_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, spec) = start(dir.path());
        let (body, commit) = block_one(&mut r, &spec);
        r.commit(&body, &commit);
        r.app.stop();
        assert!(r
            .app
            .send(Job::Check {
                height: Height(2),
                block: body.hash(),
                body,
            })
            .is_err());
        // Whatever it finished before stopping is on the channel, then it closes.
        let mut stored = 0;
        while let Some(done) = r.done.blocking_recv() {
            if let Done::Committed(_) = done.unwrap() {
                stored += 1;
            }
        }
        assert_eq!(Some(Height(stored)), r.store.latest_height().unwrap());
    }
}
