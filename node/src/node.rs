//! The node's actor: one task that owns the network, the write-ahead log and the mempool,
//! hands what happens to the [`Driver`] (which decides, without I/O, around the consensus
//! core) and carries out the driver's actions in order. Blocks are built, checked,
//! executed and stored by the application on its own thread ([`crate::app`]), which
//! answers in the order it was asked.
//!
//! Durability first: a message the core signs is in the WAL (fsynced) before it is sent;
//! a decided block, its commit and the state after it land in the store in one synced
//! write before the WAL is cleared and the next height starts. After a crash the node
//! restarts from the store's height and hands the WAL back to the core, which resumes its
//! round and lock and never signs a conflicting message.
//!
//! Blocks are executed before they are voted on: the proposer executes its block and puts
//! the state root after it in the header; every validator checks the block and re-executes
//! it before prevoting, and prevotes nil on any mismatch. The prepared state update of each
//! checked block is kept until the height is decided.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use acta_consensus::{Message, ProposerSchedule};
use acta_contracts::{
    executor::{next_nonce, BlockResults},
    genesis::genesis_changes,
    pending::{CheckError, PendingState},
    staking::validators_at,
    view::StateView,
    BlockContext,
};
use acta_ledger::{
    checkpoint::{Checkpoint, Cosignature, CHECKPOINT_INTERVAL},
    state::AuthenticatedState,
    store::Store,
    validator::ValidatorSet,
    Block, ChainId, Commit, Evidence, Hash, Height, Keypair, PublicKey, Round, SignedProposal,
    Timestamp, Transaction,
};
type Action = crate::driver::Action<PeerId, Arc<Block>>;
type Event = crate::driver::Event<PeerId, Arc<Block>>;
#[cfg(feature = "misbehave")]
use acta_ledger::{codec, Vote, VoteKind};
use anyhow::{anyhow, bail, Context, Result};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::{
    app::{self, AppHandle, Done, Job, LocalFault, Tip},
    checks::{CheckEnded, CheckedBatch, Checks},
    config::{Config, Home},
    driver::{Driver, DriverConfig, Millis, Resume, Stored},
    genesis::{ChainSpec, Genesis},
    keys,
    mempool::{check_lifetime, AddError, Checked, Mempool, MempoolConfig, VerifiedIds},
    metrics::Metrics,
    p2p::{
        protocol::{
            CompactBlock, Envelope, Gossip, SyncRequest, SyncResponse, TxBatch, TxBitmap,
            PENDING_TXS_MAX, SYNC_BLOCKS_MAX, TX_BATCH_MAX,
        },
        P2p, P2pEvent, PeerId, Received, Reply, RequestId, ValidatorPeer, Verdict,
    },
    rebuild::{Rebuilds, Waiting},
    wal::Wal,
};

/// What the HTTP API can ask of the driver.
#[derive(Debug)]
pub enum Request {
    /// Adds a transaction to the mempool and gossips it; the verdict goes to `reply` if
    /// there is one (`mode=async` submissions do not wait for it).
    SubmitTx {
        tx: Box<Transaction>,
        reply: Option<oneshot::Sender<Result<Hash, AddError>>>,
    },
    /// Adds transactions to the mempool together (their signatures verified as one batch);
    /// one verdict per transaction, in order.
    SubmitBatch {
        txs: Vec<Transaction>,
        reply: oneshot::Sender<Vec<Result<Hash, AddError>>>,
    },
    /// Whether a transaction waits in the mempool.
    Pending {
        id: Hash,
        reply: oneshot::Sender<bool>,
    },
    /// The nonce after a signer's run of pooled transactions, if it has any.
    NextAfterPool {
        signer: PublicKey,
        reply: oneshot::Sender<Option<u64>>,
    },
}

/// What the node shows about itself, updated by the driver.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// The chain id.
    pub chain_id: String,
    /// The node's name.
    pub moniker: String,
    /// The node's libp2p peer id.
    pub peer_id: String,
    pub validator: bool,
    /// The latest committed height.
    pub height: u64,
    /// Its block's hash, hex (empty before the node's loop first reports).
    #[schema(pattern = "^([0-9a-f]{64})?$")]
    pub block_hash: String,
    /// Its block's time, ms since 1970.
    pub block_time_ms: u64,
    /// The state root after it, hex (empty while unknown).
    #[schema(pattern = "^([0-9a-f]{64})?$")]
    pub state_root: String,
    /// The height being decided.
    pub consensus_height: u64,
    /// Its round.
    pub consensus_round: u32,
    /// Whether a peer is ahead.
    pub syncing: bool,
    /// Connected peers.
    pub peers: usize,
    /// Transactions waiting.
    pub mempool_txs: usize,
    /// The oldest height whose state this node keeps: reads of older heights are refused
    /// with 410 `pruned` (0 unless the node prunes, `storage.mode`).
    pub oldest_state_height: u64,
    /// How long the height being decided has run, in ms (0 while waiting for work).
    pub deciding_ms: u64,
    /// Set while the height being decided has run for longer than four rounds of timeouts
    /// (at least 20 s): why this node thinks the chain is stalled; null otherwise.
    #[schema(required = true)]
    pub stalled: Option<Stall>,
    /// The validators deciding this height, as this node sees them.
    pub validators: Vec<ValidatorHealth>,
    /// When the driver last updated this status: it does after every event, and at least
    /// every few seconds.
    #[serde(skip)]
    pub updated: Option<Instant>,
}

/// Why a height does not end, as one validator sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Stall {
    /// The height that does not end.
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// How long this node has been deciding it.
    pub for_ms: u64,
    /// The validators (names, or keys' first 16 hex digits) not heard from at this height:
    /// no vote and no proposal reached this node.
    pub missing: Vec<String>,
    /// The power heard from.
    pub heard_power: u64,
    /// The power a quorum needs (more than two thirds).
    pub quorum_power: u64,
    /// Why this node thinks the chain is stalled.
    pub reason: String,
}

/// One validator of the set deciding this height, as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ValidatorHealth {
    /// Its genesis name, or its key's first 16 hex digits.
    pub name: String,
    pub public_key: PublicKey,
    /// Voting power.
    pub power: u64,
    /// Whether this node is connected to its node (always true for this node itself).
    pub connected: bool,
    /// Whether a vote or proposal of it at this height reached this node.
    pub heard: bool,
}

/// How long a height may run before a node calls the chain stalled: four rounds' worth of
/// timeouts at their first values, and at least 20 s.
pub fn stall_after(c: &crate::config::ConsensusConfig) -> Duration {
    let round = c
        .timeout_propose_ms
        .saturating_add(c.timeout_prevote_ms)
        .saturating_add(c.timeout_precommit_ms);
    Duration::from_millis(round.saturating_mul(4).max(20_000))
}

/// A committed block as subscribers see it: its place, and what each transaction did.
/// Shared by every subscriber: its JSON and its index by transaction are made once, by
/// the first that needs them, however many listen.
#[derive(Debug, serde::Serialize)]
pub struct Committed {
    pub height: u64,
    pub hash: Hash,
    pub time: Timestamp,
    pub txs: Vec<CommittedTx>,
    #[serde(skip)]
    json: std::sync::OnceLock<String>,
    #[serde(skip)]
    by_hash: std::sync::OnceLock<HashMap<Hash, usize>>,
}

impl Committed {
    pub fn new(height: u64, hash: Hash, time: Timestamp, txs: Vec<CommittedTx>) -> Committed {
        Committed {
            height,
            hash,
            time,
            txs,
            json: std::sync::OnceLock::new(),
            by_hash: std::sync::OnceLock::new(),
        }
    }

    /// The block as one JSON object (the data of a `block` event).
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            // Hashes, numbers and strings only: serialization cannot fail.
            serde_json::to_string(self).unwrap_or_default()
        })
    }

    /// The transaction `id` of this block, if it holds it.
    pub fn find(&self, id: &Hash) -> Option<&CommittedTx> {
        let by_hash = self.by_hash.get_or_init(|| {
            self.txs
                .iter()
                .enumerate()
                .map(|(i, t)| (t.hash, i))
                .collect()
        });
        by_hash.get(id).and_then(|i| self.txs.get(*i))
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CommittedTx {
    pub hash: Hash,
    pub index: u32,
    pub outcome: acta_contracts::Outcome,
    /// Why it was refused, in words (not consensus data).
    pub message: Option<String>,
}

/// How long an admitted transaction may wait before it is gossiped with the others
/// admitted meanwhile.
const TX_FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// The least time between two of this node's statuses on the consensus topic; the
/// validators' nodes get every one on their streams ([`Node::status`]).
const STATUS_TOPIC_GAP: Duration = Duration::from_millis(200);

/// How many committed blocks a slow subscriber may fall behind before it misses some.
const COMMITTED_BACKLOG: usize = 256;

/// Handles shared with the HTTP API.
#[derive(Clone, Debug)]
pub struct Handle {
    pub requests: mpsc::Sender<Request>,
    pub status: Arc<RwLock<Status>>,
    pub store: Arc<Store>,
    pub spec: Arc<ChainSpec>,
    pub metrics: Arc<Metrics>,
    /// Every committed block, as it lands in the store.
    pub committed: broadcast::Sender<Arc<Committed>>,
}

/// Ways a validator can be made to misbehave on purpose, for fault-injection tests
/// (`actad start --misbehave`); only in builds with the `misbehave` feature.
#[cfg(feature = "misbehave")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Next to every prevote it signs, sign and send a conflicting one (nil for a block, a
    /// made-up block for nil): double-signing that honest validators turn into evidence.
    Equivocate,
}

/// Sync requests a peer may make each second, on average.
const SYNC_REQUESTS_PER_S: u32 = 50;
/// How many times a peer is given the transactions of one proposed block.
const PROPOSAL_TXS_SERVED_MAX: u8 = 3;
/// Sync requests a peer may make at once after a quiet spell.
const SYNC_REQUESTS_BURST: u32 = 100;

/// Bytes of sync answers a peer may be sent each second, on average: a node catching up
/// executes far fewer (a block of 1,500 transactions is about 0.5 MB).
const SYNC_BYTES_PER_S: f64 = 32.0 * 1024.0 * 1024.0;
/// Bytes of sync answers a peer may be sent at once after a quiet spell.
const SYNC_BYTES_BURST: f64 = 128.0 * 1024.0 * 1024.0;

/// A peer's allowance of sync answers, as two token buckets: requests
/// ([`SYNC_REQUESTS_PER_S`] a second, up to [`SYNC_REQUESTS_BURST`] saved), which bounds
/// the work of looking answers up, and bytes ([`SYNC_BYTES_PER_S`], up to
/// [`SYNC_BYTES_BURST`]), which bounds what the node reads from its store and sends. A node
/// catching up asks one request at a time, each for up to 16 blocks (800 blocks a second
/// from one peer) or a chunk of 4,096 keys, so the bounds hold back only a peer that
/// floods.
///
/// An answer read from the store reserves the most it may weigh when it is admitted, and
/// gives back the difference once its size is known, so answers being read at once never
/// take more than the peer has (a large answer may leave it in debt: its requests for the
/// store are then refused until it has earned the bytes back). Requests answered from
/// memory (a proposal's transactions, pending transactions; each bounded by a message)
/// count as requests only, so a peer that has just caught up still gets a proposal's
/// transactions.
#[derive(Debug)]
struct SyncAllowance {
    requests: f64,
    bytes: f64,
    /// Answers admitted and not yet read: the allowance is kept until they are settled.
    in_flight: u32,
    at: Instant,
}

impl SyncAllowance {
    fn new(now: Instant) -> Self {
        SyncAllowance {
            requests: f64::from(SYNC_REQUESTS_BURST),
            bytes: SYNC_BYTES_BURST,
            in_flight: 0,
            at: now,
        }
    }

    /// Fills both buckets for the time passed since the last look.
    fn refill(&mut self, now: Instant) {
        let secs = now.duration_since(self.at).as_secs_f64();
        self.requests = (self.requests + secs * f64::from(SYNC_REQUESTS_PER_S))
            .min(f64::from(SYNC_REQUESTS_BURST));
        self.bytes = (self.bytes + secs * SYNC_BYTES_PER_S).min(SYNC_BYTES_BURST);
        self.at = self.at.max(now);
    }

    /// Whether both buckets have filled up again by `now` and no answer is being read:
    /// then it says no more than a new allowance would, and may be forgotten.
    fn is_full(&self, now: Instant) -> bool {
        let secs = now.duration_since(self.at).as_secs_f64();
        self.in_flight == 0
            && self.requests + secs * f64::from(SYNC_REQUESTS_PER_S)
                >= f64::from(SYNC_REQUESTS_BURST)
            && self.bytes + secs * SYNC_BYTES_PER_S >= SYNC_BYTES_BURST
    }

    /// Takes one request's token if there is one; an answer read from the store
    /// (`reserve` > 0) also needs the peer to owe no bytes, and reserves `reserve`.
    fn take(&mut self, now: Instant, reserve: usize) -> bool {
        self.refill(now);
        if self.requests < 1.0 || (reserve > 0 && self.bytes <= 0.0) {
            return false;
        }
        self.requests -= 1.0;
        if reserve > 0 {
            #[allow(clippy::cast_precision_loss)]
            let reserve = reserve as f64;
            self.bytes -= reserve;
            self.in_flight += 1;
        }
        true
    }

    /// Settles an answer that reserved `reserved` bytes and weighs `bytes`.
    fn settle(&mut self, now: Instant, reserved: usize, bytes: usize) {
        self.refill(now);
        #[allow(clippy::cast_precision_loss)]
        let (reserved, bytes) = (reserved as f64, bytes as f64);
        self.bytes += reserved - bytes;
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Gives back what [`SyncAllowance::take`] took for a request that is not served.
    fn give_back(&mut self, reserve: usize) {
        self.requests += 1.0;
        if reserve > 0 {
            #[allow(clippy::cast_precision_loss)]
            let reserve = reserve as f64;
            self.bytes += reserve;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }
}

/// The sync allowances of a node's peers: one each, and one more shared by every peer that
/// is not a validator's node (observers, `p2p.allow_observers`), so that any number of
/// observers together are sent no more than one peer may be.
#[derive(Debug)]
struct SyncAllowances {
    peers: HashMap<PeerId, SyncAllowance>,
    observers: SyncAllowance,
}

/// What an admitted sync request was charged, settled once its answer is read.
#[derive(Clone, Copy, Debug)]
struct Charge {
    reserved: usize,
    /// Also charged to the observers' shared allowance.
    observer: bool,
}

impl SyncAllowances {
    fn new(now: Instant) -> Self {
        SyncAllowances {
            peers: HashMap::new(),
            observers: SyncAllowance::new(now),
        }
    }

    /// Admits a request of `peer` that reserves `reserve` bytes (see
    /// [`SyncAllowance::take`]) from its own allowance and, for an observer, from the
    /// shared one too: `None` if either is spent, and then neither is charged.
    fn admit(
        &mut self,
        peer: PeerId,
        observer: bool,
        now: Instant,
        reserve: usize,
    ) -> Option<Charge> {
        let own = self
            .peers
            .entry(peer)
            .or_insert_with(|| SyncAllowance::new(now));
        if !own.take(now, reserve) {
            return None;
        }
        if observer && !self.observers.take(now, reserve) {
            own.give_back(reserve);
            return None;
        }
        Some(Charge {
            reserved: reserve,
            observer,
        })
    }

    /// Settles an answer read from the store that weighs `bytes`.
    fn settle(&mut self, peer: &PeerId, charge: Charge, now: Instant, bytes: usize) {
        if let Some(a) = self.peers.get_mut(peer) {
            a.settle(now, charge.reserved, bytes);
        }
        if charge.observer {
            self.observers.settle(now, charge.reserved, bytes);
        }
    }

    /// Forgets the allowances of peers not `connected` whose buckets have filled up again.
    fn forget_full(&mut self, now: Instant, connected: impl Fn(&PeerId) -> bool) {
        self.peers
            .retain(|peer, a| connected(peer) || !a.is_full(now));
    }
}

/// A sync answer computed off the loop, to send.
struct Served {
    peer: PeerId,
    reply: Reply,
    response: SyncResponse,
    /// What its peer's allowance reserved for it, and its encoded length.
    charge: Charge,
    bytes: usize,
}

/// Batches of transactions waiting to be checked or being checked; beyond this, the API
/// waits and peers' batches are ignored.
const VERIFY_BATCHES_MAX: usize = 32;
/// Transaction ids whose signatures a node remembers having verified.
const VERIFIED_IDS_MAX: usize = 65_536;

/// Where a batch of transactions being checked came from, to answer when it is done.
#[derive(Debug)]
enum Origin {
    Api(Option<oneshot::Sender<Result<Hash, AddError>>>),
    ApiBatch(oneshot::Sender<Vec<Result<Hash, AddError>>>),
    Gossip(Received),
    /// A peer's pending transactions, asked for when it connected.
    Pulled(PeerId),
}

pub struct Node {
    config: Config,
    /// Where `config` came from, re-read on SIGHUP.
    home: Home,
    #[cfg(feature = "misbehave")]
    misbehaviour: Option<Misbehaviour>,
    spec: ChainSpec,
    store: Arc<Store>,
    key: Keypair,
    /// The decisions around the consensus core; this actor carries out its actions.
    driver: Driver<PeerId, Arc<Block>>,
    /// The instant the driver's clock counts from.
    epoch: Instant,
    /// What the driver was last told of the transactions waiting.
    txs_told: bool,
    /// When this node's status last went on the consensus topic ([`Node::status`]).
    status_published: Option<Instant>,
    /// A status held back from the topic, for the next gossip tick.
    status_owed: Option<Height>,
    wal: Wal,
    mempool: Mempool,
    /// The latest committed state with the pool's calls applied: what arriving calls are
    /// judged against.
    pending: PendingState,
    /// The pending state's counts of calls run and kept, as last reported to the metrics.
    calls_counted: (u64, u64),
    /// Signature checks of arriving batches, one per core, handed back in arrival order.
    checks: Checks<Origin>,
    /// The network: the swarm and what is known of peers.
    p2p: P2p,

    /// Hash and time of the latest block (the genesis hash and time before height 1), as
    /// the application last reported it stored.
    parent: (Hash, Timestamp),
    /// The application on its own thread: builds, checks and stores blocks.
    app: AppHandle,
    /// What the application did, in the order it was asked.
    app_done: mpsc::UnboundedReceiver<Result<Done>>,
    /// The transaction ids of this node's latest own block, for its compact proposal.
    own_ids: Option<(Hash, Vec<Hash>)>,
    /// The height and block last saved with [`save_own_block`], and whether synced.
    saved_block: Option<(Height, Hash, bool)>,
    /// Cosignatures of checkpoints this node has not committed yet, checked once it has.
    pending_cosignatures: Vec<(u64, Cosignature)>,
    /// Transactions admitted since the last flush, gossiped together by [`Node::flush_txs`].
    tx_outbox: Vec<Transaction>,
    /// The driver's id of each block request in flight.
    sync_requests: HashMap<RequestId, u64>,
    /// Requests for a peer's pending transactions in flight (one a connection): only
    /// their answers are taken.
    pending_txs_asked: HashSet<RequestId>,
    /// Proposals whose blocks wait for transactions asked of a peer.
    rebuilds: Rebuilds<RequestId>,
    /// How many times each peer was given transactions of each proposed block (this
    /// height's).
    proposal_txs_served: HashMap<(PeerId, Hash), u8>,
    /// Peers given this node's pending transactions since they connected: a node asks once
    /// when it connects, so an answer (up to a gossip message's worth, copied on this loop)
    /// is given once a connection.
    pending_txs_served: HashSet<PeerId>,
    /// Each peer's allowance of sync requests, and the observers' ([`SyncAllowances`]).
    sync_allowance: SyncAllowances,

    requests: mpsc::Receiver<Request>,
    /// Sync answers computed on blocking threads, to send from the loop.
    served_tx: mpsc::UnboundedSender<Served>,
    served_rx: mpsc::UnboundedReceiver<Served>,
    /// Sync answers being computed.
    serving: usize,
    status: Arc<RwLock<Status>>,
    metrics: Arc<Metrics>,
    committed: broadcast::Sender<Arc<Committed>>,
    last_commit_at: Option<Instant>,
    /// The height and round last counted in the metrics.
    counted_round: Option<(Height, u32)>,
    /// The height being decided and when this node started deciding it.
    deciding_since: Option<(Height, Instant)>,
    /// The nodes of the latest validator set ([`validator_peers`]).
    validator_nodes: Vec<ValidatorPeer>,
    /// What the consensus key last signed: nothing at or below it is signed again.
    signer: crate::signed::SignGuard,
    /// Own messages the guard refused this height: not sent.
    refused: HashSet<[u8; 64]>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("height", &self.driver.height())
            .field("peer_id", &self.p2p.peer_id())
            .finish_non_exhaustive()
    }
}

/// Judges the ballot tokens of the correctly signed secret ballots among `checked` against
/// the latest state, off the consensus loop (an RSA verification each, remembered for the
/// mempool and the executor, [`acta_contracts::budget::token_verdict`]), and counts the
/// forged ones. A store that cannot be read judges nothing here: the mempool will.
fn judge_tokens(store: &Store, chain: &ChainId, checked: &[Result<Checked, AddError>]) -> usize {
    let ballots: Vec<&Transaction> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok().map(Checked::tx))
        .filter(|tx| {
            matches!(
                tx.call,
                acta_ledger::Call::Budget(acta_ledger::tx::BudgetCall::VoteSecret { .. })
            )
        })
        .collect();
    // Most batches hold no secret ballot: no store read for them.
    if ballots.is_empty() {
        return 0;
    }
    let Ok(Some(latest)) = store.latest_height() else {
        return 0;
    };
    let view = StateView::new(store, latest);
    ballots
        .into_iter()
        .filter(|tx| acta_contracts::budget::token_verdict(&view, chain, tx) == Some(false))
        .count()
}

/// Whether budget rounds are under way after `height` (their phases need heights).
fn rounds_pending(store: &Store, height: Height) -> Result<bool> {
    let view = StateView::new(store, height);
    Ok(acta_contracts::budget::rounds_pending(&view)? > 0)
}

/// State keys whose whole history a pruning node keeps: the validator set's, which
/// execution reads at earlier heights (`staking::validators_at`: the set that signed a
/// block, an offence's set) and whose every change a proof bundle carries from the genesis
/// on (`rpc::read::set_changes`).
pub fn kept_histories() -> Vec<Hash> {
    vec![acta_ledger::state::state_key(
        acta_contracts::staking::NS_VALIDATORS,
        acta_contracts::staking::SET_KEY,
    )]
}

/// Stale entries one pruning step deletes (one write batch of a few MB).
const PRUNE_STEP_ENTRIES: usize = 20_000;

/// A task aborted when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Heights the window moves by before pruning runs again: each run opens an iterator and
/// makes a synced write of the new oldest height, which after every block of a busy chain
/// (dozens a second) cost more than the deletions themselves.
const PRUNE_EVERY_HEIGHTS: u64 = 10;

/// Keeps the states of the latest `retain` heights (and up to [`PRUNE_EVERY_HEIGHTS`] more)
/// and deletes older ones, after committed blocks, on a blocking thread: never on the
/// consensus loop, which only tells it that a block landed. Each block makes about as much
/// stale as it wrote, so the work per block is bounded by the block's own writes, not by
/// the chain's age.
async fn prune_loop(
    store: Arc<Store>,
    mut committed: broadcast::Receiver<Arc<Committed>>,
    retain: u64,
) {
    // Whether a run may have been cut short (at start: by a stop; or by an error): the
    // oldest height is raised before anything is deleted, so what is left below it waits
    // for the next run, which then comes at the next block rather than ten heights on.
    let mut unfinished = true;
    loop {
        match committed.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
        let Ok(Some(latest)) = store.latest_height() else {
            continue;
        };
        let kept = store.oldest_state();
        let oldest = Height((latest.0 + 1).saturating_sub(retain)).max(kept);
        if oldest == Height(0) || (!unfinished && oldest.0 < kept.0 + PRUNE_EVERY_HEIGHTS) {
            continue;
        }
        unfinished = true;
        loop {
            let store = store.clone();
            let step =
                tokio::task::spawn_blocking(move || store.prune(oldest, PRUNE_STEP_ENTRIES)).await;
            match step {
                Ok(Ok(step)) if step.done => {
                    unfinished = false;
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    warn!("pruning the store to height {oldest}: {e}");
                    break;
                }
                Err(e) => {
                    warn!("the pruning task failed: {e}");
                    return;
                }
            }
        }
    }
}

fn now_ms() -> u64 {
    Timestamp::now().0
}

impl Node {
    /// Opens the node's home with its `config` (read from the home's config file): genesis,
    /// keys, store (writing the genesis state into an empty store) and WAL.
    pub fn open(
        home: &Home,
        config: Config,
        key_passphrase: Option<&str>,
    ) -> Result<(Node, Handle)> {
        let (_, spec) = Genesis::load(&home.genesis())?;
        let key = keys::load_consensus_key(&home.consensus_key(), key_passphrase)?;
        let signer = crate::signed::SignGuard::open(&home.signed_state())?;
        if let Some(last) = signer.last() {
            info!(
                height = last.height,
                round = last.round,
                step = last.step,
                "the consensus key last signed"
            );
        }
        let node_key = keys::load_node_key(&home.node_key())?;
        std::fs::create_dir_all(home.data())
            .with_context(|| format!("creating {}", home.data().display()))?;
        let (history, _) = config.storage.retention();
        let mut store = Store::open_tuned(home.store(), history, config.storage.memory())
            .with_context(|| format!("opening the store in {}", home.store().display()))?;
        store.keep_history_of(&kept_histories());
        let store = Arc::new(store);
        if store.latest_height()?.is_none() {
            let update = store.prepare(&genesis_changes(&spec.state), Height(0))?;
            store.commit_genesis(update)?;
            info!("wrote the genesis state");
        }
        let latest = store.latest_height()?.unwrap_or(Height(0));
        let height = latest.next();
        let (wal, wal_records) = Wal::open_at(&home.wal(), height)
            .with_context(|| format!("opening the WAL {}", home.wal().display()))?;

        let (parent, last_commit) = if latest == Height(0) {
            ((spec.hash, spec.genesis_time), None)
        } else {
            let block = store
                .block(latest)?
                .ok_or_else(|| anyhow!("the store has no block at its latest height {latest}"))?;
            let commit = store
                .commit(latest)?
                .ok_or_else(|| anyhow!("the store has no commit at height {latest}"))?;
            ((block.hash(), block.header.time), Some(commit))
        };
        let schedule = schedule_at(&store, &spec, height)?;
        // Kept at once: a start after a long replay (a store restored from a snapshot holds
        // no saved schedule) leaves the next start a constant-time load.
        write_schedule(&store, height, &schedule).context("saving the proposer schedule")?;

        let identity = crate::p2p::protocol::chain_identity(spec.chain_id.as_str(), &spec.hash);
        info!(chain = %spec.chain_id, genesis = %spec.hash, "genesis");
        let validator_nodes = validator_peers(store.as_ref(), &spec, latest)?;
        let p2p = P2p::new(node_key, &config.p2p, &validator_nodes, identity)?;
        let peer_id = p2p.peer_id();

        let driver_config = DriverConfig {
            consensus: acta_consensus::Config {
                timeout_propose_ms: config.consensus.timeout_propose_ms,
                timeout_prevote_ms: config.consensus.timeout_prevote_ms,
                timeout_precommit_ms: config.consensus.timeout_precommit_ms,
                timeout_delta_ms: config.consensus.timeout_delta_ms,
                ..acta_consensus::Config::default()
            },
            block_interval_ms: config.consensus.block_interval_ms,
            empty_block_interval_ms: config.consensus.empty_block_interval_ms,
            min_height_ms: config.consensus.min_height_ms,
            gossip_interval_ms: config.p2p.gossip_interval_ms,
        };
        // Messages signed at this height before a restart go back to the core when it
        // starts; older ones belong to decided heights.
        let restored: Vec<Message> = wal_records
            .into_iter()
            .filter(|(h, _)| *h == height)
            .map(|(_, m)| m)
            .collect();
        // The block of an own proposal among them, so that it is sent again with it.
        let blocks = restored_own_block(&store, &key.public(), height, &restored)?
            .map(|(hash, block)| (hash, Arc::new(block)))
            .into_iter()
            .collect();
        let driver = Driver::new(
            driver_config,
            spec.chain_id.clone(),
            Keypair::from_seed(key.seed()),
            Resume {
                height,
                schedule,
                restored,
                rounds_pending: rounds_pending(&store, latest)?,
                blocks,
            },
            0,
        );
        // Rounds that were tallying when the node stopped: their threads start again.
        if let Err(e) = acta_contracts::tallying::start(store.clone(), latest) {
            warn!("starting the tallies of closed budget rounds: {e}");
        }
        let mempool = Mempool::new(config.mempool.clone());
        let (tx, rx) = mpsc::channel(1024);
        let (served_tx, served_rx) = mpsc::unbounded_channel();
        let status = Arc::new(RwLock::new(Status {
            chain_id: spec.chain_id.to_string(),
            moniker: config.moniker.clone(),
            peer_id: peer_id.to_string(),
            ..Status::default()
        }));
        let metrics = Arc::new(Metrics::new());
        let verified = Arc::new(VerifiedIds::new(VERIFIED_IDS_MAX));
        let checks = Checks::new(
            spec.chain_id.clone(),
            verified.clone(),
            store.clone(),
            judge_tokens,
            std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        );
        let (app, app_done) = AppHandle::start(
            store.clone(),
            spec.chain_id.clone(),
            key.public(),
            metrics.clone(),
            verified.clone(),
            Tip {
                height: latest,
                hash: parent.0,
                time: parent.1,
                commit: last_commit,
            },
        )?;
        let (committed, _) = broadcast::channel(COMMITTED_BACKLOG);
        let handle = Handle {
            requests: tx,
            status: status.clone(),
            store: store.clone(),
            spec: Arc::new(spec.clone()),
            metrics: metrics.clone(),
            committed: committed.clone(),
        };
        let mut node = Node {
            home: home.clone(),
            #[cfg(feature = "misbehave")]
            misbehaviour: None,
            config,
            spec,
            store,
            key,
            driver,
            epoch: Instant::now(),
            txs_told: false,
            status_published: None,
            status_owed: None,
            wal,
            mempool,
            pending: PendingState::new(latest),
            calls_counted: (0, 0),
            checks,
            p2p,
            parent,
            app,
            app_done,
            own_ids: None,
            saved_block: None,
            pending_cosignatures: Vec::new(),
            tx_outbox: Vec::new(),
            sync_requests: HashMap::new(),
            rebuilds: Rebuilds::default(),
            proposal_txs_served: HashMap::new(),
            pending_txs_served: HashSet::new(),
            sync_allowance: SyncAllowances::new(Instant::now()),
            pending_txs_asked: HashSet::new(),
            requests: rx,
            served_tx,
            served_rx,
            serving: 0,
            status,
            metrics,
            committed,
            last_commit_at: None,
            counted_round: None,
            deciding_since: None,
            validator_nodes,
            signer,
            refused: HashSet::new(),
        };
        node.metrics.started();
        let blocked = node.config.p2p.blocked()?;
        node.p2p.set_blocked(blocked);
        node.update_status();
        info!(height = %height, peer = %peer_id, "node opened");
        Ok((node, handle))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Makes this validator misbehave on purpose (see [`Misbehaviour`]).
    #[cfg(feature = "misbehave")]
    pub fn misbehave(&mut self, m: Misbehaviour) {
        warn!(?m, "this validator will misbehave on purpose");
        self.misbehaviour = Some(m);
    }

    /// Runs until SIGTERM or SIGINT; SIGHUP re-reads `p2p.blocked_peers`.
    pub async fn run(mut self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        // Made once: `tokio::signal::ctrl_c()` in the select below registered a new listener
        // (and boxed a future) on every turn of the loop.
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut gossip =
            tokio::time::interval(Duration::from_millis(self.config.p2p.gossip_interval_ms));
        let mut redial = tokio::time::interval(Duration::from_secs(3));
        let mut flush = tokio::time::interval(TX_FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Aborted when the loop returns (the step under way finishes on its own thread).
        let _pruner = self.config.storage.retention().1.map(|retain| {
            AbortOnDrop(tokio::spawn(prune_loop(
                self.store.clone(),
                self.committed.subscribe(),
                retain,
            )))
        });
        enum Wake {
            P2p(Option<P2pEvent>),
            Timer,
            Request(Option<Request>),
            Verified(Result<CheckEnded, tokio::task::JoinError>),
            Served(Option<Served>),
            App(Option<Result<Done>>),
            Gossip,
            Redial,
            Flush,
            Reload,
            Stop,
        }
        loop {
            // The driver starts a height as soon as it may when transactions wait: tell it
            // when that changes.
            let waiting = !self.mempool.is_empty();
            if waiting != self.txs_told {
                self.txs_told = waiting;
                self.drive(Event::TxsWaiting(waiting))?;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let deadline = self
                .driver
                .next_deadline()
                .map_or(far, |ms| (self.epoch + Duration::from_millis(ms)).min(far));
            let wake = tokio::select! {
                ev = self.p2p.next() => Wake::P2p(ev),
                () = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
                r = self.requests.recv(), if self.checks.waiting() < VERIFY_BATCHES_MAX => {
                    Wake::Request(r)
                }
                v = self.checks.next() => Wake::Verified(v),
                r = self.served_rx.recv() => Wake::Served(r),
                d = self.app_done.recv() => Wake::App(d),
                _ = gossip.tick() => Wake::Gossip,
                _ = redial.tick() => Wake::Redial,
                _ = flush.tick(), if !self.tx_outbox.is_empty() => Wake::Flush,
                _ = term.recv() => Wake::Stop,
                _ = hup.recv() => Wake::Reload,
                _ = int.recv() => Wake::Stop,
            };
            match wake {
                Wake::P2p(Some(ev)) => self.on_p2p(ev)?,
                Wake::P2p(None) => {}
                Wake::Timer => self.drive(Event::Tick)?,
                Wake::Request(Some(r)) => self.on_request(r),
                Wake::Request(None) => {}
                Wake::Verified(done) => {
                    let (batches, started) = self.checks.finish(done, Instant::now())?;
                    self.observe_checks(&started);
                    for (origin, batch) in batches {
                        self.on_verified(origin, batch)?;
                    }
                }
                Wake::Served(Some(served)) => {
                    self.serving = self.serving.saturating_sub(1);
                    // Kept while the answer was read (`SyncAllowance::is_full`).
                    self.sync_allowance.settle(
                        &served.peer,
                        served.charge,
                        Instant::now(),
                        served.bytes,
                    );
                    self.p2p.respond(served.reply, served.response);
                }
                Wake::Served(None) => {}
                Wake::App(Some(done)) => self.on_app(done?)?,
                Wake::App(None) => bail!("the application's thread has stopped"),
                Wake::Gossip => {
                    self.drive(Event::GossipTick)?;
                    // A status held back from the topic goes now, if the tick sent none.
                    if let Some(height) = self.status_owed.take() {
                        self.publish_status(height);
                    }
                }
                Wake::Redial => {
                    self.forget_full_allowances();
                    self.p2p.redial();
                    self.check_health();
                }
                Wake::Flush => self.flush_txs(),
                Wake::Reload => self.reload(),
                Wake::Stop => {
                    info!(height = %self.driver.height(), "stopping");
                    return self.stop_app();
                }
            }
            self.update_status();
        }
    }

    /// The driver's clock: milliseconds since the node opened.
    fn now(&self) -> Millis {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Hands the driver an event and carries out what it decides.
    fn drive(&mut self, event: Event) -> Result<()> {
        let actions = self.driver.on(self.now(), event);
        self.perform(actions)
    }

    /// Keeps the block of an own proposal or precommit among `messages` (about to go to
    /// the WAL) before they do: after a crash, the proposal in the WAL goes out again with
    /// it, and a lock restored from the WAL is proposed again with it (no one else may hold
    /// that block then). A proposal's block is synced; a precommit's is not, since every
    /// height's path passes there and most heights decide in the round they lock in.
    fn keep_own_blocks(&mut self, height: Height, messages: &[Message]) -> Result<()> {
        let me = self.key.public();
        for m in messages {
            let Some(block) = m.own_block(&me) else {
                continue;
            };
            let synced = matches!(m, Message::Proposal(_));
            // Saved already, and durably enough.
            if self
                .saved_block
                .is_some_and(|(h, b, s)| (h, b) == (height, block) && (s || !synced))
            {
                continue;
            }
            if let Some(body) = self.driver.candidate(&block) {
                save_own_block(&self.store, height, body, synced)
                    .context("saving the block of an own proposal or lock")?;
                self.saved_block = Some((height, block, synced));
            }
        }
        Ok(())
    }

    /// Carries out the driver's actions in order: a [`crate::driver::Action::Persist`] is
    /// durable before anything after it happens. Building, checking and storing blocks go
    /// to the application's thread, in order; the driver hears of them when they are done
    /// ([`Node::on_app`]).
    fn perform(&mut self, actions: Vec<Action>) -> Result<()> {
        for action in actions {
            match action {
                Action::Persist { height, messages } => {
                    let me = self.key.public();
                    // The key's own record first, one durable write for the batch: a
                    // message it refuses is neither kept nor sent.
                    let signer_of = |m: &Message| match m {
                        Message::Proposal(p) => p.proposer,
                        Message::Vote(v) => v.validator,
                    };
                    let mut verdicts = self
                        .signer
                        .allow_all(messages.iter().filter(|m| signer_of(m) == me))
                        .context("recording what the consensus key signs")?
                        .into_iter();
                    let mut allowed = Vec::with_capacity(messages.len());
                    for m in messages {
                        if signer_of(&m) != me {
                            allowed.push(m);
                            continue;
                        }
                        match verdicts.next() {
                            Some(Ok(())) => allowed.push(m),
                            Some(Err(refused)) => {
                                error!("{refused}");
                                self.refused.insert(signature_of(&m));
                            }
                            // One verdict per own message; without one, nothing is sent.
                            None => {
                                self.refused.insert(signature_of(&m));
                            }
                        }
                    }
                    self.keep_own_blocks(height, &allowed)?;
                    self.wal
                        .append_all(height, &allowed)
                        .context("writing the consensus WAL")?;
                }
                Action::Broadcast { message, .. }
                    if self.refused.contains(&signature_of(&message)) => {}
                Action::Broadcast { message, body } => {
                    // The transactions of an own proposal go out before it, so that
                    // fewer validators need to ask for them.
                    if body.is_some() && !self.tx_outbox.is_empty() {
                        self.flush_txs();
                    }
                    #[cfg(feature = "misbehave")]
                    if self.misbehaviour == Some(Misbehaviour::Equivocate) {
                        self.equivocate(&message);
                    }
                    self.publish_consensus(message, body);
                }
                Action::Status(height) => {
                    self.status(height);
                }
                Action::Evidence(e) => {
                    self.publish(Gossip::Evidence(e));
                }
                // A build or a check asked for before the height moved on is stale.
                Action::Build { height, .. } | Action::Check { height, .. }
                    if height != self.driver.height() => {}
                Action::Build {
                    height,
                    round,
                    evidence,
                } => {
                    self.build(height, round, evidence)?;
                }
                Action::Check {
                    height,
                    block,
                    body,
                } => {
                    self.app.send(Job::Check {
                        height,
                        block,
                        body,
                    })?;
                }
                Action::Commit {
                    block,
                    body,
                    commit,
                    ..
                } => {
                    self.app.send(Job::Commit {
                        block,
                        body,
                        commit,
                    })?;
                }
                Action::RequestSync {
                    id,
                    peer,
                    from,
                    count,
                } => {
                    let request = self.p2p.request_blocks(&peer, from, count);
                    self.sync_requests.insert(request, id);
                }
            }
        }
        Ok(())
    }

    /// Signs and sends a prevote that conflicts with `m`, if `m` is this validator's
    /// prevote: nil against a block, a made-up block against nil.
    #[cfg(feature = "misbehave")]
    fn equivocate(&mut self, m: &Message) {
        let Message::Vote(v) = m else { return };
        if v.vote.kind != VoteKind::Prevote || v.validator != self.key.public() {
            return;
        }
        let block = match v.vote.block {
            Some(_) => None,
            None => Some(Hash::digest(&codec::encode(&v.vote))),
        };
        let conflicting = Vote { block, ..v.vote }.sign(&self.key, &self.spec.chain_id);
        warn!(height = %v.vote.height, round = v.vote.round.0, "equivocating on purpose");
        self.p2p.send_to_validators(&Gossip::Vote(conflicting));
    }

    fn publish_consensus(&mut self, message: Message, body: Option<Arc<Block>>) {
        let gossip = match (message, body) {
            (Message::Vote(v), _) => Gossip::Vote(v),
            (Message::Proposal(p), Some(block)) => {
                // The ids the mempool gave when the block was built, if it is this one.
                let compact = match &self.own_ids {
                    Some((hash, ids))
                        if *hash == p.proposal.block && ids.len() == block.txs.len() =>
                    {
                        CompactBlock::with_ids(&block, ids.clone())
                    }
                    _ => CompactBlock::of(&block),
                };
                Gossip::Proposal {
                    proposal: p,
                    block: Box::new(compact),
                }
            }
            (Message::Proposal(p), None) => {
                warn!(block = %p.proposal.block, "no block for a proposal");
                return;
            }
        };
        self.p2p.send_to_validators(&gossip);
    }

    fn publish(&mut self, body: Gossip) {
        self.p2p.publish(body);
    }

    /// Tells peers this node's latest height: the validators' nodes straight away, on their
    /// streams (they catch up from it at once); the topic, for the other peers connected
    /// here (observers), at most every [`STATUS_TOPIC_GAP`], and a status held back then at
    /// the next gossip tick. A busy chain commits dozens of heights a second, and each
    /// status on the topic is a signed message every peer checks. Statuses go one hop: a
    /// peer takes only those of peers connected to it, and passes none on.
    fn status(&mut self, height: Height) {
        self.p2p.send_to_validators(&Gossip::Status { height });
        if self
            .status_published
            .is_none_or(|at| at.elapsed() >= STATUS_TOPIC_GAP)
        {
            self.publish_status(height);
        } else {
            self.status_owed = Some(height);
        }
    }

    fn publish_status(&mut self, height: Height) {
        self.status_published = Some(Instant::now());
        self.status_owed = None;
        self.publish(Gossip::Status { height });
    }

    /// Whether a proposal or vote for `height` signed by `signer` is worth its checks:
    /// `Accept` if the signer is a validator of that height, `Reject` if it is not (a key
    /// anyone can make: its message would cost a signature check, and a proposal a rebuild
    /// of its block, for nothing), `Ignore` if this node cannot name that height's set (too
    /// far ahead, or pruned).
    fn signer_verdict(&self, height: Height, signer: &PublicKey) -> Verdict {
        let member = |set: &ValidatorSet| {
            if set.index_of(signer).is_some() {
                Verdict::Accept
            } else {
                Verdict::Reject
            }
        };
        // The height being decided, nearly every message's: its set is in memory.
        if height == self.driver.height() {
            return member(self.driver.schedule().validators());
        }
        match self.validators(height) {
            Ok(set) => member(&set),
            Err(_) => Verdict::Ignore,
        }
    }

    /// The validators that sign `height`.
    fn validators(&self, height: Height) -> Result<ValidatorSet> {
        Ok(validators_at(self.store.as_ref(), height)?)
    }

    /// Asks the application to build a block to propose at `height` from the mempool's
    /// transactions (it executes them and keeps the state update).
    fn build(&mut self, height: Height, round: Round, evidence: Vec<Evidence>) -> Result<()> {
        let latest = Height(height.0.saturating_sub(1));
        if self.pending.base() != latest {
            self.recheck_pool(latest, None)?;
        }
        let ctx = self.next_block_context(latest);
        if self.mempool.expire(ctx.time) > 0 {
            // The pending state still holds the expired transactions' effects.
            self.recheck_pool(latest, Some(&[]))?;
        }
        let (txs, ids) = self
            .mempool
            .reap_with_ids(self.config.block.max_txs, self.config.block.max_bytes);
        self.app.send(Job::Build {
            height,
            round,
            ctx,
            txs,
            ids,
            evidence,
        })
    }

    /// Stops the application after the job under way, and follows up the blocks it stored
    /// that the loop has not heard of yet (the WAL cleared, subscribers told, a
    /// checkpoint cosigned).
    fn stop_app(&mut self) -> Result<()> {
        self.app.stop();
        while let Ok(done) = self.app_done.try_recv() {
            if let Done::Committed(stored) = done? {
                self.on_stored(*stored)?;
            }
        }
        Ok(())
    }

    /// What the application did: the driver is told, and a stored block is followed up.
    fn on_app(&mut self, done: Done) -> Result<()> {
        match done {
            Done::Built {
                height,
                round,
                block,
                body,
                ids,
                left_out,
            } => {
                if !left_out.is_empty() {
                    // Out of the pool too: they would be left out of every block, and while
                    // they waited the validators would never be idle.
                    let dropped: usize = left_out.iter().map(|id| self.mempool.evict(id)).sum();
                    if dropped > 0 {
                        let latest = Height(self.driver.height().0 - 1);
                        let same = (self.pending.base() == latest).then_some(&[][..]);
                        self.recheck_pool(latest, same)?;
                    }
                }
                if height != self.driver.height() {
                    return Ok(());
                }
                info!(height = %height, round = round.0, txs = body.txs.len(), block = %block, "proposing");
                self.own_ids = Some((block, ids));
                self.drive(Event::Built {
                    height,
                    round,
                    block,
                    body,
                })
            }
            Done::Checked {
                height,
                block,
                valid,
            } => self.drive(Event::Checked {
                height,
                block,
                valid,
            }),
            Done::Committed(stored) => {
                let stored = self.on_stored(*stored)?;
                self.drive(Event::Committed(stored))
            }
            Done::SyncEnded {
                id,
                peer,
                blocks,
                refused,
            } => {
                if let Some(e) = refused {
                    warn!(peer = %peer, "synced block refused: {e}");
                    self.p2p.strike(peer, "invalid synced block");
                }
                self.drive(Event::SyncAnswered { id, peer, blocks })
            }
        }
    }

    /// Follows up a block the application stored (decided or synced): tells subscribers,
    /// lets the WAL forget decided heights, cleans the mempool, and says what the driver
    /// needs for the next height.
    fn on_stored(&mut self, stored: app::Stored) -> Result<Stored> {
        let app::Stored {
            block,
            commit,
            results,
            ids,
            changed,
            synced,
        } = stored;
        let set_changed = changes_validators(&results);
        self.announce(&block, results);
        if set_changed {
            // A validator added by the council is let in (and dialed) now, one that left
            // is let go: before their power counts or stops counting, two heights on.
            self.validator_nodes =
                validator_peers(self.store.as_ref(), &self.spec, block.height())?;
            self.p2p.set_validators(&self.validator_nodes);
        }
        // A validator whose signature the commit lacks: slow, partitioned or down when it
        // counted (an operator's alert, like CometBFT's missed blocks).
        let signers = self.validators(block.height())?;
        for (i, v) in signers.validators().iter().enumerate() {
            let signed = commit
                .signatures
                .iter()
                .any(|s| usize::from(s.validator.0) == i);
            if !signed {
                self.metrics.validator_missed(&self.label(&v.public_key));
                if v.public_key == self.key.public() {
                    self.metrics.missed_signatures.inc();
                }
            }
        }
        self.wal
            .forget_decided()
            .context("cutting the consensus WAL")?;
        self.refused.clear();
        let store = self.store.clone();
        let view = StateView::new(store.as_ref(), block.height());
        // A nonce that cannot be read stops the node (the store is failing): the pool is
        // never judged against a guessed nonce. That signer's pooled transactions go.
        let unreadable = std::cell::RefCell::new(None);
        let nonce_of = |k: &PublicKey| {
            next_nonce(&view, k).unwrap_or_else(|e| {
                unreadable.borrow_mut().get_or_insert(e);
                u64::MAX
            })
        };
        self.mempool.update_with_ids(&block.txs, &ids, &nonce_of);
        if let Some(e) = unreadable.into_inner() {
            return Err(e).context("reading a signer's nonce after a commit");
        }
        self.parent = (block.hash(), block.header.time);
        self.mempool
            .expire(Timestamp(block.header.time.0.saturating_add(1)));
        if !synced {
            // While catching up, once before the next proposal or admission will do
            // (`build`, `admit`), not once per synced block.
            self.recheck_pool(block.height(), Some(&changed))
                .context("judging the mempool against the new state")?;
        }
        info!(
            height = %block.height(),
            txs = block.txs.len(),
            root = %block.header.state_root,
            "committed"
        );
        self.own_ids = None;
        self.rebuilds.forget_below(block.height().next());
        self.proposal_txs_served.clear();
        let next = block.height().next();
        let schedule = self.driver.schedule().next_height(self.validators(next)?);
        save_schedule(&self.store, next, &schedule).context("saving the proposer schedule")?;
        self.cosign(&block)?;
        // The rounds this block closed get their tallies computed on threads of their own,
        // ready for the block that stores them (ADR 0019).
        // Only a head start: the block that stores a tally computes it if need be.
        if let Err(e) = acta_contracts::tallying::start(self.store.clone(), block.height()) {
            warn!("starting the tallies of closed budget rounds: {e}");
        }
        Ok(Stored {
            height: block.height(),
            schedule,
            rounds_pending: rounds_pending(&self.store, block.height())?,
            empty: block.txs.is_empty() && block.evidence.is_empty(),
            evidence: block.evidence,
            synced,
        })
    }

    /// At a checkpoint height, cosigns the block log's checkpoint if this node's key is in
    /// the set that signed the block, and checks the cosignatures that arrived early.
    fn cosign(&mut self, block: &Block) -> Result<()> {
        let size = block.height().0;
        if size.is_multiple_of(CHECKPOINT_INTERVAL)
            && self
                .validators(block.height())?
                .index_of(&self.key.public())
                .is_some()
        {
            let checkpoint = Checkpoint::of(self.store.as_ref(), &self.spec.chain_id, size)?;
            let c = Cosignature::sign(&self.key, &checkpoint, block.header.time.0 / 1000);
            self.store.put_cosignature(size, &c)?;
            self.publish(Gossip::Cosignature {
                size,
                key: c.key,
                timestamp: c.timestamp,
                signature: c.signature,
            });
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_cosignatures)
            .into_iter()
            .partition(|(s, _)| *s <= size);
        self.pending_cosignatures = waiting;
        for (s, c) in ready {
            match self.check_cosignature(s, &c) {
                // Kept unchecked when it came, it was not passed on then: it is now, once,
                // so that peers further from its validator get it too.
                Ok(true) => self.publish(Gossip::Cosignature {
                    size: s,
                    key: c.key,
                    timestamp: c.timestamp,
                    signature: c.signature,
                }),
                Ok(false) => {}
                Err(e) => debug!("a cosignature of checkpoint {s} does not hold: {e}"),
            }
        }
        Ok(())
    }

    /// Checks a validator's cosignature of the committed checkpoint of `size` blocks and
    /// keeps it.
    /// The first valid cosignature of each validator is kept; later ones (another
    /// timestamp) are not checked again nor written. Whether this one was new here.
    fn check_cosignature(&self, size: u64, c: &Cosignature) -> Result<bool> {
        if self.store.has_cosignature(size, &c.key)? {
            return Ok(false);
        }
        if self.validators(Height(size))?.index_of(&c.key).is_none() {
            bail!("{} did not sign block {size}", c.key);
        }
        let checkpoint = Checkpoint::of(self.store.as_ref(), &self.spec.chain_id, size)?;
        c.verify(&checkpoint)?;
        self.store.put_cosignature(size, c)?;
        Ok(true)
    }

    fn on_p2p(&mut self, event: P2pEvent) -> Result<()> {
        match event {
            P2pEvent::Consensus {
                origin,
                data,
                received,
            } => {
                // Statuses are the originator's (messages are signed); strikes go to the
                // peer that forwarded the message.
                let verdict = self.on_consensus_bytes(origin, &data)?;
                self.p2p.judge(received, verdict, "invalid gossip");
            }
            P2pEvent::Direct { peer, data } => {
                let verdict = match acta_ledger::codec::decode::<Gossip>(
                    "consensus message",
                    &data,
                    self.config.p2p.max_message_bytes,
                ) {
                    Ok(gossip) => self.on_gossip(peer, gossip)?,
                    Err(_) => Verdict::Reject,
                };
                if verdict == Verdict::Reject {
                    self.p2p.strike(peer, "invalid consensus message");
                }
            }
            // A batch of transactions is judged once its signatures are checked.
            P2pEvent::Txs { data, received } => self.on_tx_bytes(&data, received),
            P2pEvent::SyncRequest {
                peer,
                request,
                reply,
            } => self.on_sync_request(peer, request, reply),
            P2pEvent::SyncResponse { peer, id, response } => {
                self.on_sync_response(peer, id, response)?;
            }
            P2pEvent::SyncFailed { id } => {
                if let Some(waiting) = self.rebuilds.take(&id) {
                    debug!(block = %waiting.block_hash(), "a request for a proposal's transactions failed");
                } else if let Some(id) = self.sync_requests.remove(&id) {
                    self.drive(Event::SyncFailed { id })?;
                } else {
                    self.pending_txs_asked.remove(&id);
                }
            }
            P2pEvent::Connected(peer) => {
                // What was gossiped while this node or that peer was away: the peer's
                // pending transactions (without blocks, as when no quorum is up without
                // this node, nothing else would bring them).
                let max = PENDING_TXS_MAX;
                let id = self.p2p.request(&peer, SyncRequest::PendingTxs { max });
                self.pending_txs_asked.insert(id);
            }
            P2pEvent::Disconnected(peer) => {
                self.pending_txs_served.remove(&peer);
                self.forget_full_allowances();
                self.drive(Event::PeerGone(peer))?;
            }
        }
        Ok(())
    }

    fn on_consensus_bytes(&mut self, from: PeerId, data: &[u8]) -> Result<Verdict> {
        let Ok(envelope) = Envelope::decode(data, self.config.p2p.max_message_bytes) else {
            return Ok(Verdict::Reject);
        };
        match envelope.body {
            // Proposals and votes come straight from the validators' nodes, not by gossip.
            Gossip::Proposal { .. } | Gossip::Vote(_) => Ok(Verdict::Ignore),
            body => self.on_gossip(from, body),
        }
    }

    /// A consensus message from a peer: gossiped (`from` its signer) or sent straight
    /// (`from` the sender).
    fn on_gossip(&mut self, from: PeerId, gossip: Gossip) -> Result<Verdict> {
        match gossip {
            Gossip::Status { height } => {
                // Only a peer connected here can be asked for blocks; a status signed in
                // the name of any other (a key anyone can make) would stay in the sync
                // table for ever, keep this node "syncing" and ask a peer that is not there.
                // Each node tells its own neighbours, so statuses are not passed on.
                if !self.p2p.is_connected(&from) {
                    return Ok(Verdict::Ignore);
                }
                self.drive(Event::PeerStatus { peer: from, height })?;
                Ok(Verdict::Ignore)
            }
            Gossip::Vote(v) => {
                match self.signer_verdict(v.vote.height, &v.validator) {
                    Verdict::Accept => {}
                    other => return Ok(other),
                }
                if v.verify(&self.spec.chain_id).is_err() {
                    return Ok(Verdict::Reject);
                }
                self.drive(Event::Message(Message::Vote(v)))?;
                Ok(Verdict::Accept)
            }
            Gossip::Proposal { proposal, block } => {
                match self.signer_verdict(proposal.proposal.height, &proposal.proposer) {
                    Verdict::Accept => {}
                    other => return Ok(other),
                }
                if proposal.verify(&self.spec.chain_id).is_err()
                    || !block.names(&proposal.proposal.block)
                {
                    return Ok(Verdict::Reject);
                }
                self.on_compact_proposal(proposal, *block, from)?;
                Ok(Verdict::Accept)
            }
            Gossip::Cosignature {
                size,
                key,
                timestamp,
                signature,
            } => {
                /// The most cosignatures kept waiting for their block.
                const PENDING_MAX: usize = 256;
                /// The most kept waiting for one validator and checkpoint: a peer that
                /// sends forgeries in a validator's name crowds out only that slot.
                const PENDING_PER_SIGNER: usize = 2;
                let c = Cosignature {
                    key,
                    timestamp,
                    signature,
                };
                if size == 0 || !size.is_multiple_of(CHECKPOINT_INTERVAL) {
                    return Ok(Verdict::Reject);
                }
                let latest = self.driver.height().0 - 1;
                if size > latest {
                    // Not committed here yet: checked once it is, if not too far ahead, and
                    // not passed on unchecked (the peers that have the block check it and
                    // pass it on). Only in a current validator's name, so others cannot
                    // crowd the buffer, and a few for each.
                    let same_slot = self
                        .pending_cosignatures
                        .iter()
                        .filter(|(s, p)| *s == size && p.key == c.key);
                    let (mut kept, mut copy) = (0, false);
                    for (_, p) in same_slot {
                        kept += 1;
                        copy |= *p == c;
                    }
                    if size <= latest + 2 * CHECKPOINT_INTERVAL
                        && self
                            .driver
                            .schedule()
                            .validators()
                            .index_of(&c.key)
                            .is_some()
                        && !copy
                        && kept < PENDING_PER_SIGNER
                        && self.pending_cosignatures.len() < PENDING_MAX
                    {
                        self.pending_cosignatures.push((size, c));
                    }
                    return Ok(Verdict::Ignore);
                }
                Ok(match self.check_cosignature(size, &c) {
                    Ok(_) => Verdict::Accept,
                    Err(e) => {
                        debug!("a cosignature of checkpoint {size} does not hold: {e}");
                        Verdict::Reject
                    }
                })
            }
            Gossip::Evidence(e) => {
                let Ok(offender) = e.verify(&self.spec.chain_id) else {
                    return Ok(Verdict::Reject);
                };
                // Only evidence against a validator of its height, and not from the future.
                let relevant = e.height() <= self.driver.height()
                    && e.height().0 > 0
                    && self
                        .validators(e.height())
                        .is_ok_and(|set| set.index_of(&offender).is_some());
                if !relevant {
                    return Ok(Verdict::Ignore);
                }
                // Nor evidence too old or punished already: a retired key can sign any
                // amount of it, which would fill the pool and blocks for nothing.
                let due = self
                    .store
                    .latest_height()
                    .ok()
                    .flatten()
                    .is_some_and(|latest| {
                        let view = StateView::new(self.store.as_ref(), latest);
                        acta_contracts::staking::evidence_still_due(
                            &view,
                            latest,
                            &offender,
                            e.height(),
                        )
                        .unwrap_or(false)
                    });
                if !due {
                    return Ok(Verdict::Ignore);
                }
                self.drive(Event::Evidence(e))?;
                Ok(Verdict::Accept)
            }
        }
    }

    /// A proposal whose block came as transaction ids (its signature and ids checked),
    /// sent by `peer`: the block is rebuilt from the mempool, and what the mempool lacks is
    /// asked of that peer (the proposer's node, or one that has the block). Until it comes,
    /// the proposal counts without its block.
    fn on_compact_proposal(
        &mut self,
        proposal: SignedProposal,
        block: CompactBlock,
        peer: PeerId,
    ) -> Result<()> {
        let hash = proposal.proposal.block;
        // Sent again (proposals are, every few ticks): the block is here already.
        if let Some(body) = self.driver.proposed(&hash).cloned() {
            return self.drive(Event::Proposal { proposal, body });
        }
        let txs = block.fill(|id| self.mempool.get(id).cloned());
        if txs.iter().all(Option::is_some) {
            if let Some(whole) = block.into_block(txs) {
                // Whole: requests for it of other peers are no longer waited for.
                self.rebuilds.forget_block(&hash);
                self.metrics.proposal_rebuilt(false);
                return self.drive(Event::Proposal {
                    proposal,
                    body: Arc::new(whole),
                });
            }
            return Ok(());
        }
        // Only a block the driver would keep (the round's proposer, of this height or the
        // next), once per peer, within bounds: nobody else's proposals take the places.
        if self.driver.wants_block_of(&proposal)
            && !self.rebuilds.is_fetching(&hash, &peer)
            && self.rebuilds.has_room()
        {
            let mut waiting = Waiting::new(proposal, block, txs, peer);
            let request = SyncRequest::ProposalTxs {
                block: hash,
                missing: waiting.ask(),
            };
            let id = self.p2p.request(&peer, request);
            self.rebuilds.wait(id, waiting);
        }
        self.drive(Event::Message(Message::Proposal(proposal)))
    }

    /// A peer's answer to a request for a proposal's transactions. An answer that is not
    /// the transactions (`Unavailable`: busy, or the block is gone) gives up; the proposal
    /// sent again asks again.
    fn on_proposal_txs(
        &mut self,
        peer: PeerId,
        waiting: Waiting,
        response: SyncResponse,
    ) -> Result<()> {
        let SyncResponse::ProposalTxs(txs) = response else {
            debug!(peer = %peer, block = %waiting.block_hash(), "no transactions for a proposal");
            return Ok(());
        };
        let fetched = txs.len() as u64;
        match waiting.complete(txs) {
            Ok((proposal, block)) => {
                self.rebuilds.forget_block(&proposal.proposal.block);
                self.metrics.proposal_rebuilt(true);
                self.metrics.proposal_txs_fetched.inc_by(fetched);
                self.drive(Event::Proposal {
                    proposal,
                    body: Arc::new(block),
                })
            }
            Err(why) => {
                // The proposal counts without its block until it is sent again, which
                // asks again; a decided block comes by block sync.
                let why = format!("a wrong answer for a proposal's transactions: {why}");
                self.p2p.strike(peer, &why);
                Ok(())
            }
        }
    }

    /// A peer's batch of transactions: rejected (and the peer struck) at once if it does
    /// not decode; otherwise checked off the loop ([`Node::verify`]), and judged when that
    /// is done ([`Node::on_verified`]).
    fn on_tx_bytes(&mut self, data: &[u8], received: Received) {
        let Ok(TxBatch(txs)) = TxBatch::decode(data, self.config.p2p.max_message_bytes) else {
            return self
                .p2p
                .judge(received, Verdict::Reject, "undecodable transactions");
        };
        if self.checks.waiting() >= VERIFY_BATCHES_MAX {
            // Busy: not forwarded, and not held against the peer.
            return self.p2p.judge(received, Verdict::Ignore, "");
        }
        self.verify(txs, Origin::Gossip(received));
    }

    /// Checks transactions' sizes and signatures on a blocking thread ([`Checks`]), never
    /// on this loop; batches are admitted in the order they came, whichever check ends
    /// first, so a signer's nonces sent one after another stay in order.
    fn verify(&mut self, txs: Vec<Transaction>, origin: Origin) {
        let started = self.checks.push(txs, origin, Instant::now());
        self.observe_checks(&started);
    }

    fn observe_checks(&self, started: &[usize]) {
        for &txs in started {
            self.metrics.check_txs.observe(txs as f64);
        }
    }

    /// Admits a checked batch and answers where it came from: the API's caller, or
    /// gossipsub's verdict on a peer's message. A peer's batch is rejected (and the peer
    /// struck) if it holds a transaction with a bad signature or another chain's id, and
    /// forwarded only if this node admitted all of it.
    fn on_verified(&mut self, origin: Origin, batch: CheckedBatch) -> Result<()> {
        let CheckedBatch {
            checked,
            forged_tokens,
        } = batch;
        match origin {
            Origin::Gossip(received) => {
                let results = self.admit(checked);
                let verdict = if forged_tokens > 0
                    || results.iter().any(|r| {
                        matches!(
                            r,
                            Err(AddError::BadSignature(_) | AddError::WrongChain { .. })
                        )
                    }) {
                    Verdict::Reject
                } else if results.iter().all(Result::is_ok) {
                    Verdict::Accept
                } else {
                    Verdict::Ignore
                };
                self.p2p.judge(received, verdict, "forged transactions");
            }
            Origin::Pulled(peer) => {
                let results = self.admit(checked);
                if forged_tokens > 0
                    || results.iter().any(|r| {
                        matches!(
                            r,
                            Err(AddError::BadSignature(_) | AddError::WrongChain { .. })
                        )
                    })
                {
                    self.p2p.strike(peer, "forged pending transactions");
                }
            }
            Origin::Api(reply) => {
                let results = self.submit(checked);
                if let Some(reply) = reply {
                    let result = results.into_iter().next().unwrap_or(Err(AddError::Full));
                    let _ = reply.send(result);
                }
            }
            Origin::ApiBatch(reply) => {
                let _ = reply.send(self.submit(checked));
            }
        }
        // Proposals waiting for transactions the mempool may hold now.
        for (proposal, block) in self.rebuilds.refill(|id| self.mempool.get(id).cloned()) {
            self.metrics.proposal_rebuilt(false);
            self.drive(Event::Proposal {
                proposal,
                body: Arc::new(block),
            })?;
        }
        Ok(())
    }

    /// Admits transactions from this node's API and queues those admitted for gossip.
    fn submit(&mut self, checked: Vec<Result<Checked, AddError>>) -> Vec<Result<Hash, AddError>> {
        let copies: Vec<Option<Transaction>> = checked
            .iter()
            .map(|c| c.as_ref().ok().map(|c| c.tx().clone()))
            .collect();
        let results = self.admit(checked);
        for (tx, r) in copies.into_iter().zip(&results) {
            if let (Some(tx), Ok(_)) = (tx, r) {
                self.tx_outbox.push(tx);
            }
        }
        if self.tx_outbox.len() >= TX_BATCH_MAX {
            self.flush_txs();
        }
        results
    }

    /// Gossips the transactions admitted since the last flush, in messages of at most
    /// [`TX_BATCH_MAX`] transactions and a quarter of the gossip size limit.
    fn flush_txs(&mut self) {
        let outbox = std::mem::take(&mut self.tx_outbox);
        let budget = self.config.p2p.max_message_bytes / 4;
        let mut batch = Vec::new();
        let mut bytes = 0;
        for tx in outbox {
            let len = borsh::object_length(&tx).unwrap_or(acta_ledger::tx::TX_BYTES_MAX);
            if !batch.is_empty() && (batch.len() == TX_BATCH_MAX || bytes + len > budget) {
                self.publish_txs(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += len;
            batch.push(tx);
        }
        if !batch.is_empty() {
            self.publish_txs(batch);
        }
    }

    fn publish_txs(&mut self, txs: Vec<Transaction>) {
        self.p2p.publish_txs(txs);
    }

    /// Adds checked transactions to the mempool against the latest committed nonces.
    fn admit(&mut self, checked: Vec<Result<Checked, AddError>>) -> Vec<Result<Hash, AddError>> {
        let store = self.store.clone();
        let latest = self.driver.height().0.saturating_sub(1);
        let view = StateView::new(store.as_ref(), Height(latest));
        // One state read per signer and batch: the state does not change during the call.
        // A signer whose nonce cannot be read has its transactions refused as unavailable,
        // never judged against a guessed nonce.
        let mut nonces = HashMap::new();
        let mut unreadable = HashMap::new();
        for c in checked.iter().flatten() {
            let signer = c.tx().signer;
            if nonces.contains_key(&signer) || unreadable.contains_key(&signer) {
                continue;
            }
            match next_nonce(&view, &signer) {
                Ok(n) => {
                    nonces.insert(signer, n);
                }
                Err(e) => {
                    warn!(signer = %signer, "reading a nonce: {e}");
                    unreadable.insert(signer, e.to_string());
                }
            }
        }
        let checked: Vec<Result<Checked, AddError>> = checked
            .into_iter()
            .map(|c| {
                let c = c?;
                match unreadable.get(&c.tx().signer) {
                    Some(why) => Err(AddError::Unavailable(why.clone())),
                    None => Ok(c),
                }
            })
            .collect();
        // Every signer still in `checked` has its nonce in `nonces`.
        let nonce_of = |k: &PublicKey| nonces.get(k).copied().unwrap_or(u64::MAX);
        if self.pending.base() != Height(latest) {
            // The first admission after catching up (synced blocks do not recheck).
            if let Err(e) = self.recheck_pool(Height(latest), None) {
                warn!("judging the mempool against the latest state: {e:#}");
                let why = format!("the pool cannot be judged against the latest state: {e:#}");
                return checked
                    .into_iter()
                    .map(|c| c.and_then(|_| Err(AddError::Unavailable(why.clone()))))
                    .collect();
            }
        }
        let ctx = self.next_block_context(Height(latest));
        let (pending, rules) = (&mut self.pending, &self.config.mempool);
        let results = self.mempool.add_checked(checked, &nonce_of, &mut |tx, id| {
            judge(store.as_ref(), pending, &ctx, rules, (tx, id), false)
        });
        for r in &results {
            match r {
                Ok(_) => {
                    self.metrics.mempool_accepted.inc();
                }
                Err(e) => self.metrics.mempool_refused(e.code()),
            }
        }
        self.count_calls();
        results
    }

    /// What a call arriving now is judged as part of: the block after `latest`, at the time
    /// now (after the parent's).
    fn next_block_context(&self, latest: Height) -> BlockContext {
        BlockContext {
            chain_id: self.spec.chain_id.clone(),
            height: latest.next(),
            time: Timestamp(now_ms().max(self.parent.1 .0.saturating_add(1))),
            proposer: self.key.public(),
        }
    }

    /// Starts the pending state again from the state after `latest` and judges every
    /// pooled transaction once more, in order, evicting those the new state refuses (with
    /// their signers' later ones). A state that cannot be read is an error: the node stops
    /// rather than judge the pool against a guess.
    ///
    /// `changed`: the keys whose values differ between the pending state's base and
    /// `latest` (those the block just stored wrote; none if the base stays), or `None` if
    /// they are not known (blocks were synced). A call runs again only if a value it read
    /// changed, or if the last full recheck is too old (`acta_contracts::pending`).
    fn recheck_pool(&mut self, latest: Height, changed: Option<&[Hash]>) -> Result<()> {
        let ctx = self.next_block_context(latest);
        let mempool = &self.mempool;
        self.pending
            .rebase(latest, changed, |id| mempool.contains(id), ctx.time);
        let store = self.store.clone();
        let (pending, rules) = (&mut self.pending, &self.config.mempool);
        let dropped = self
            .mempool
            .recheck(&mut |tx, id| judge(store.as_ref(), pending, &ctx, rules, (tx, id), true))
            .map_err(|e| LocalFault(anyhow!("{e}")))?;
        if dropped > 0 {
            debug!(height = %latest, dropped, "the new state refuses pooled transactions");
        }
        self.count_calls();
        Ok(())
    }

    /// Reports the calls the pending state ran or kept since the last report.
    fn count_calls(&mut self) {
        let now = (self.pending.calls_run(), self.pending.calls_kept());
        let (ran, kept) = self.calls_counted;
        self.metrics.mempool_calls(now.0 - ran, now.1 - kept);
        self.calls_counted = now;
    }

    fn on_request(&mut self, request: Request) {
        match request {
            Request::SubmitTx { tx, reply } => self.verify(vec![*tx], Origin::Api(reply)),
            Request::SubmitBatch { txs, reply } => self.verify(txs, Origin::ApiBatch(reply)),
            Request::Pending { id, reply } => {
                let _ = reply.send(self.mempool.contains(&id));
            }
            Request::NextAfterPool { signer, reply } => {
                let _ = reply.send(self.mempool.next_after_pool(&signer));
            }
        }
    }

    /// Re-reads the config file and applies its `p2p.blocked_peers`; other settings take
    /// effect at the next start. A file that does not load changes nothing.
    /// SIGHUP: re-reads `config.toml` and applies the settings documented as reloadable
    /// ([`crate::config::RELOADABLE`]): all of them, or none if the file does not check.
    /// Other settings that changed are named in a warning: they take effect at restart.
    fn reload(&mut self) {
        let read = Config::load(&self.home.config()).and_then(|c| {
            let blocked = c.p2p.blocked()?;
            let peers = crate::p2p::parse_peers(&c.p2p.peers)?;
            Ok((c, blocked, peers))
        });
        let (new, blocked, peers) = match read {
            Ok(read) => read,
            Err(e) => {
                warn!("SIGHUP: the config file was not applied: {e:#}");
                return;
            }
        };
        self.p2p.set_blocked(blocked);
        self.p2p.set_peers(peers);
        self.p2p.set_max_strikes(new.p2p.max_strikes);
        self.driver.set_intervals(
            new.consensus.block_interval_ms,
            new.consensus.empty_block_interval_ms,
            new.consensus.min_height_ms,
        );
        let mut applied = self.config.clone();
        applied.p2p.peers = new.p2p.peers.clone();
        applied.p2p.blocked_peers = new.p2p.blocked_peers.clone();
        applied.p2p.max_strikes = new.p2p.max_strikes;
        applied.consensus.block_interval_ms = new.consensus.block_interval_ms;
        applied.consensus.empty_block_interval_ms = new.consensus.empty_block_interval_ms;
        applied.consensus.min_height_ms = new.consensus.min_height_ms;
        applied.block = new.block.clone();
        let unapplied = applied.differences(&new);
        self.config = applied;
        info!(
            peers = self.config.p2p.peers.len(),
            blocked = self.config.p2p.blocked_peers.len(),
            "SIGHUP: reloaded {}",
            crate::config::RELOADABLE.join(", ")
        );
        if !unapplied.is_empty() {
            warn!(
                "SIGHUP: {} changed in the config file but take effect only at restart",
                unapplied.join(", ")
            );
        }
    }

    /// Forgets the sync allowances of peers gone whose buckets have filled up again. A
    /// peer's allowance outlives its connection until then: a peer cannot earn a new
    /// burst by reconnecting.
    fn forget_full_allowances(&mut self) {
        let p2p = &self.p2p;
        self.sync_allowance
            .forget_full(Instant::now(), |peer| p2p.is_connected(peer));
    }

    /// A peer's sync request: answered off the loop ([`Node::serve_sync`]) within the
    /// peer's allowance (and the observers' for a peer that is not a validator's node), or
    /// answered busy.
    fn on_sync_request(&mut self, peer: PeerId, request: SyncRequest, reply: Reply) {
        let now = Instant::now();
        // What an answer read from the store may weigh (see `serve_sync`); the others come
        // from memory, each bounded by one message.
        let reserve = match request {
            SyncRequest::ProposalTxs { .. } | SyncRequest::PendingTxs { .. } => 0,
            SyncRequest::Blocks { .. }
            | SyncRequest::SnapshotManifest
            | SyncRequest::SnapshotChunk { .. } => self.sync_answer_max_bytes(),
        };
        let observer = !self.p2p.is_validator_peer(&peer);
        let Some(charge) = self.sync_allowance.admit(peer, observer, now, reserve) else {
            debug!(peer = %peer, "sync request over the peer's rate");
            let busy = SyncResponse::Unavailable(format!(
                "over this peer's allowance of {SYNC_REQUESTS_PER_S} sync requests and {} MiB of answers a second (observers share one): ask again later",
                SYNC_BYTES_PER_S / (1024.0 * 1024.0)
            ));
            return self.p2p.respond(reply, busy);
        };
        if let SyncRequest::ProposalTxs { block, missing } = request {
            let response = self.proposal_txs(peer, &block, &missing);
            return self.p2p.respond(reply, response);
        }
        self.serve_sync(peer, request, reply, charge);
    }

    /// The most bytes of blocks one sync answer carries.
    fn sync_answer_max_bytes(&self) -> usize {
        self.config.p2p.max_message_bytes.saturating_mul(4)
    }

    /// The transactions of a proposed block this node keeps that a peer asks for, on this
    /// loop (at most one block's worth), at most [`PROPOSAL_TXS_SERVED_MAX`] times per peer
    /// and block: a small request must not buy many large answers.
    fn proposal_txs(&mut self, peer: PeerId, block: &Hash, missing: &TxBitmap) -> SyncResponse {
        let Some(body) = self.driver.proposed(block) else {
            return SyncResponse::Unavailable(format!("no proposed block {block} here"));
        };
        let Some(indices) = missing.indices(body.txs.len()) else {
            return SyncResponse::Unavailable(format!(
                "block {block} has {} transactions",
                body.txs.len()
            ));
        };
        let served = self.proposal_txs_served.entry((peer, *block)).or_insert(0);
        if *served >= PROPOSAL_TXS_SERVED_MAX {
            return SyncResponse::Unavailable(format!(
                "the transactions of block {block} were given {served} times already"
            ));
        }
        *served += 1;
        SyncResponse::ProposalTxs(indices.into_iter().map(|i| body.txs[i].clone()).collect())
    }

    /// A peer's answer to one of this node's block requests: its blocks are checked
    /// against their commits and applied in order (by the application); a block that does
    /// not hold strikes the peer.
    fn on_sync_response(
        &mut self,
        peer: PeerId,
        request: RequestId,
        response: SyncResponse,
    ) -> Result<()> {
        if let Some(waiting) = self.rebuilds.take(&request) {
            return self.on_proposal_txs(peer, waiting, response);
        }
        // An answer to a request the driver no longer waits for (or that is not its own)
        // still applies; id 0 is never the driver's.
        let id = self.sync_requests.remove(&request).unwrap_or(0);
        let asked_pending = self.pending_txs_asked.remove(&request);
        if let SyncResponse::ProposalTxs(_) = response {
            // For a proposal of a height decided since.
            return Ok(());
        }
        if let SyncResponse::PendingTxs(txs) = response {
            if !asked_pending || txs.len() > PENDING_TXS_MAX as usize {
                // Not asked for, or more than asked: each would cost a signature check.
                self.p2p.strike(peer, "pending transactions not asked for");
                return Ok(());
            }
            if self.checks.waiting() < VERIFY_BATCHES_MAX {
                self.verify(txs, Origin::Pulled(peer));
            }
            return Ok(());
        }
        let SyncResponse::Blocks(blocks) = response else {
            // Busy or failing: asked again later, of this peer or another.
            return self.drive(Event::SyncFailed { id });
        };
        if asked_pending {
            self.p2p.strike(
                peer,
                "blocks in answer to a request for pending transactions",
            );
            return Ok(());
        }
        // Checked against their commits, executed and stored in order on the application's
        // thread, each told to the driver as it lands; then the answer
        // (`Done::SyncEnded`). While this node's own block is being stored, that comes
        // first: the thread passes over the synced copy of it and goes on from the next.
        self.app.send(Job::Synced { blocks, id, peer })
    }

    /// Answers a sync request on a blocking thread, never on this loop: a chunk is a walk
    /// of the tree over up to 4,096 keys, blocks are read from the store. At most
    /// [`SYNC_SERVES_MAX`] at once; a request beyond that is answered `Unavailable` at
    /// once, and the asker tries another peer or again.
    fn serve_sync(&mut self, peer: PeerId, request: SyncRequest, reply: Reply, charge: Charge) {
        /// Sync answers computed at once.
        const SYNC_SERVES_MAX: usize = 4;
        if let SyncRequest::PendingTxs { max } = request {
            if !self.pending_txs_served.insert(peer) {
                let again = SyncResponse::Unavailable(
                    "pending transactions are given once a connection".into(),
                );
                return self.p2p.respond(reply, again);
            }
            // From the mempool, on this loop: a copy of at most a gossip message's worth.
            let max = max.min(PENDING_TXS_MAX) as usize;
            let txs = self.mempool.reap(max, self.config.p2p.max_message_bytes);
            return self.p2p.respond(reply, SyncResponse::PendingTxs(txs));
        }
        if self.serving >= SYNC_SERVES_MAX {
            self.sync_allowance.settle(&peer, charge, Instant::now(), 0);
            let busy = SyncResponse::Unavailable("busy serving other sync requests".into());
            return self.p2p.respond(reply, busy);
        }
        self.serving += 1;
        let (store, spec, out) = (
            self.store.clone(),
            self.spec.clone(),
            self.served_tx.clone(),
        );
        let max_bytes = self.sync_answer_max_bytes();
        tokio::task::spawn_blocking(move || {
            let response = match request {
                SyncRequest::SnapshotManifest => {
                    match crate::snapshot::manifest(&store, &spec, None) {
                        Ok(m) => SyncResponse::SnapshotManifest(Box::new(m)),
                        Err(e) => SyncResponse::Unavailable(format!("{e:#}")),
                    }
                }
                SyncRequest::SnapshotChunk { height, after } => {
                    match store.snapshot_chunk(height, after.as_ref()) {
                        Ok(chunk) => SyncResponse::SnapshotChunk(chunk),
                        Err(e) => SyncResponse::Unavailable(e.to_string()),
                    }
                }
                SyncRequest::PendingTxs { .. } | SyncRequest::ProposalTxs { .. } => {
                    SyncResponse::Unavailable("transactions are served apart".into())
                }
                SyncRequest::Blocks { from, count } => {
                    match blocks_for_sync(&store, from, count, max_bytes) {
                        Ok(blocks) => SyncResponse::Blocks(blocks),
                        Err(e) => {
                            warn!("reading blocks to serve: {e:#}");
                            SyncResponse::Unavailable(format!("{e:#}"))
                        }
                    }
                }
            };
            // What the peer's byte allowance is charged (a counting pass, no copy).
            let bytes = borsh::object_length(&response).unwrap_or(0);
            let _ = out.send(Served {
                peer,
                reply,
                response,
                charge,
                bytes,
            });
        });
    }

    /// Tells subscribers and the metrics about a block just stored.
    fn announce(&mut self, block: &Block, results: BlockResults) {
        let m = &self.metrics;
        m.blocks.inc();
        m.height
            .set(i64::try_from(block.height().0).unwrap_or(i64::MAX));
        m.last_block_time
            .set(i64::try_from(block.header.time.0 / 1000).unwrap_or(i64::MAX));
        #[allow(clippy::cast_precision_loss)]
        m.block_txs.observe(block.txs.len() as f64);
        let now = Instant::now();
        if let Some(last) = self.last_commit_at.replace(now) {
            m.block_interval
                .observe(now.duration_since(last).as_secs_f64());
        }
        let BlockResults {
            receipts, messages, ..
        } = results;
        let mut messages = messages.into_iter().peekable();
        let txs = receipts
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                m.committed(r.refusal().map(acta_contracts::RefusalCode::as_str));
                let message = messages.next_if(|m| m.index == index).map(|m| m.message);
                CommittedTx {
                    hash: r.tx,
                    index,
                    outcome: r.outcome,
                    message,
                }
            })
            .collect();
        // Nobody listening is fine.
        let _ = self.committed.send(Arc::new(Committed::new(
            block.height().0,
            block.hash(),
            block.header.time,
            txs,
        )));
    }

    /// A validator's name in status and metrics: its genesis name, or its key's first 16
    /// hex digits.
    fn label(&self, key: &PublicKey) -> String {
        self.spec
            .names
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_hex()[..16].to_string())
    }

    /// Every few seconds: each validator's connection and voice at this height, whether
    /// the chain looks stalled and why, and the process and disk metrics.
    fn check_health(&mut self) {
        let height = self.driver.height();
        let set = self.driver.schedule().validators().clone();
        let heard = self.driver.heard();
        let me = self.key.public();
        let validators: Vec<ValidatorHealth> = set
            .validators()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let connected = v.public_key == me
                    || self
                        .validator_nodes
                        .iter()
                        .find(|n| n.key == v.public_key)
                        .is_some_and(|n| self.p2p.is_connected(&n.peer));
                let name = self.label(&v.public_key);
                self.metrics.validator_connected(&name, connected);
                ValidatorHealth {
                    name,
                    public_key: v.public_key,
                    power: v.power.0,
                    connected,
                    heard: u16::try_from(i)
                        .is_ok_and(|i| heard.contains(&acta_ledger::ValidatorIndex(i))),
                }
            })
            .collect();
        let deciding = self
            .deciding_since
            .filter(|(h, _)| *h == height)
            .map_or(Duration::ZERO, |(_, since)| since.elapsed());
        let stalled = (deciding > stall_after(&self.config.consensus)).then(|| {
            let heard_power: u64 = validators.iter().filter(|v| v.heard).map(|v| v.power).sum();
            let total = set.total_power().0;
            // More than two thirds: the least power p with 3p > 2 total.
            let quorum_power =
                u64::try_from(u128::from(total) * 2 / 3 + 1).unwrap_or(u64::MAX);
            let mut missing: Vec<String> = validators
                .iter()
                .filter(|v| !v.heard)
                .map(|v| v.name.clone())
                .collect();
            missing.sort();
            let mut unreachable: Vec<&str> = validators
                .iter()
                .filter(|v| !v.heard && !v.connected)
                .map(|v| v.name.as_str())
                .collect();
            unreachable.sort_unstable();
            let reason = if set.is_quorum(acta_ledger::VotingPower(heard_power)) {
                "validators holding a quorum are heard from, but no round decided: a proposer's block is missing or invalid, or votes are split".to_string()
            } else if unreachable.is_empty() {
                format!(
                    "votes missing: {heard_power} of {total} power heard from at this height, a quorum needs {quorum_power}; not heard from: {}",
                    missing.join(", ")
                )
            } else {
                format!(
                    "votes missing: {heard_power} of {total} power heard from at this height, a quorum needs {quorum_power}; not heard from: {} (not connected: {})",
                    missing.join(", "),
                    unreachable.join(", ")
                )
            };
            Stall {
                height: height.0,
                round: self.driver.round().map_or(0, |r| r.0),
                for_ms: u64::try_from(deciding.as_millis()).unwrap_or(u64::MAX),
                missing,
                heard_power,
                quorum_power,
                reason,
            }
        });
        if let Some(stall) = &stalled {
            if self
                .status
                .read()
                .map(|s| s.stalled.is_none())
                .unwrap_or(false)
            {
                warn!(
                    height = stall.height,
                    round = stall.round,
                    "stalled: {}",
                    stall.reason
                );
            }
        }
        self.metrics.stalled.set(i64::from(stalled.is_some()));
        if let Ok(mut s) = self.status.write() {
            for gone in s
                .validators
                .iter()
                .filter(|old| validators.iter().all(|v| v.name != old.name))
            {
                self.metrics.forget_validator(&gone.name);
            }
            s.validators = validators;
            s.stalled = stalled;
        }
        self.metrics
            .observe_process(&self.home.wal(), &self.home.store());
        self.metrics.observe_store(&self.store);
    }

    fn update_status(&mut self) {
        let height = self.driver.height();
        let latest = Height(height.0 - 1);
        let validator = self
            .driver
            .schedule()
            .validators()
            .index_of(&self.key.public())
            .is_some();
        let behind = self.driver.behind();
        let peers = self.p2p.connected_peers();
        let mempool_txs = self.mempool.len();
        let running = self.driver.round();
        let round = running.map_or(0, |r| r.0);
        let deciding = matches!(
            self.driver.phase(),
            crate::driver::Phase::Running | crate::driver::Phase::Fetching
        );
        match self.deciding_since {
            Some((h, _)) if h == height && deciding => {}
            _ if deciding => self.deciding_since = Some((height, Instant::now())),
            _ => self.deciding_since = None,
        }
        let deciding_ms = self.deciding_since.map_or(0, |(_, since)| {
            u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        if let Ok(mut s) = self.status.write() {
            s.validator = validator;
            if s.height != latest.0 || s.state_root.is_empty() {
                s.height = latest.0;
                s.block_hash = self.parent.0.to_hex();
                s.block_time_ms = self.parent.1 .0;
                // Read once per height, not on every event.
                s.state_root = self
                    .store
                    .state_root(latest)
                    .map(|r| r.to_hex())
                    .unwrap_or_default();
            }
            s.consensus_height = height.0;
            s.consensus_round = round;
            s.syncing = behind;
            s.peers = peers;
            s.mempool_txs = mempool_txs;
            s.oldest_state_height = self.store.oldest_state().0;
            s.deciding_ms = deciding_ms;
            s.updated = Some(Instant::now());
            if s.stalled.as_ref().is_some_and(|st| st.height != height.0) {
                s.stalled = None;
            }
        }
        #[allow(clippy::cast_precision_loss)]
        self.metrics
            .deciding_seconds
            .set(deciding_ms as f64 / 1000.0);
        let m = &self.metrics;
        m.consensus_round.set(i64::from(round));
        m.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
        m.peer_strikes.inc_by(
            self.p2p
                .strikes_total()
                .saturating_sub(m.peer_strikes.get()),
        );
        m.peers_banned
            .set(i64::try_from(self.p2p.banned()).unwrap_or(i64::MAX));
        m.mempool_txs
            .set(i64::try_from(mempool_txs).unwrap_or(i64::MAX));
        if running.is_some() && self.counted_round != Some((height, round)) {
            self.counted_round = Some((height, round));
            m.rounds.inc();
        }
    }
}

/// The key under which the proposer schedule is saved: borsh `(height: u64, validators:
/// ValidatorSet, priorities: Vec<i64>, proposer: u32)`, the schedule of that height.
const SCHEDULE_KEY: &str = "proposer_schedule";
/// The schedule is saved at the heights that are multiples of this.
const SCHEDULE_SAVE_EVERY: u64 = 1000;

/// The proposer schedule of `height`: the one saved at the latest multiple of
/// [`SCHEDULE_SAVE_EVERY`] at or below it, brought forward through the validator set of
/// each height after it (at most 999); from the genesis if none is saved or it does not
/// read back whole.
/// Whether the pool may take `tx`: its time limit ([`check_lifetime`] at the time of
/// `ctx`), and (if `rules.check_calls`) its call as the executor would run it in the block
/// `ctx` on the state `pending` stands for (whose effects it joins if accepted).
fn judge(
    state: &dyn AuthenticatedState,
    pending: &mut PendingState,
    ctx: &BlockContext,
    rules: &MempoolConfig,
    (tx, id): (&Transaction, Hash),
    again: bool,
) -> Result<(), AddError> {
    check_lifetime(tx, ctx.time, rules.max_lifetime_secs)?;
    if !rules.check_calls {
        return Ok(());
    }
    let verdict = if again {
        pending.recheck(state, ctx, tx, id)
    } else {
        pending.check(state, ctx, tx, id)
    };
    verdict.map_err(|e| match e {
        CheckError::Refused { code, message } => AddError::Refused { code, message },
        CheckError::Exec(e) => AddError::Unavailable(e.to_string()),
    })
}

fn schedule_at(store: &Store, spec: &ChainSpec, height: Height) -> Result<ProposerSchedule> {
    let saved = store
        .local_meta(SCHEDULE_KEY)?
        .and_then(|bytes| {
            <(u64, ValidatorSet, Vec<i64>, u32) as borsh::BorshDeserialize>::try_from_slice(&bytes)
                .inspect_err(|e| warn!("the saved proposer schedule does not decode: {e}"))
                .ok()
        })
        .filter(|(h, ..)| *h >= 1 && *h <= height.0)
        .and_then(|(h, set, priorities, proposer)| {
            let schedule = ProposerSchedule::from_parts(set, priorities, proposer as usize)?;
            Some((h, schedule))
        });
    let (from, mut schedule) =
        saved.unwrap_or_else(|| (1, ProposerSchedule::genesis(spec.validators.clone())));
    for h in from + 1..=height.0 {
        schedule = schedule.next_height(validators_at(store, Height(h))?);
    }
    Ok(schedule)
}

/// Saves `schedule`, the schedule of `height`, if `height` is a multiple of
/// [`SCHEDULE_SAVE_EVERY`].
fn save_schedule(store: &Store, height: Height, schedule: &ProposerSchedule) -> Result<()> {
    if !height.0.is_multiple_of(SCHEDULE_SAVE_EVERY) {
        return Ok(());
    }
    write_schedule(store, height, schedule)
}

/// Saves `schedule` as the schedule of `height`.
fn write_schedule(store: &Store, height: Height, schedule: &ProposerSchedule) -> Result<()> {
    let proposer = u32::try_from(schedule.first_proposer())?;
    let saved = (
        height.0,
        schedule.validators().clone(),
        schedule.priorities().to_vec(),
        proposer,
    );
    store.put_local_meta(SCHEDULE_KEY, &borsh::to_vec(&saved)?)?;
    Ok(())
}

/// The key under which a validator keeps the block of its latest proposal or precommit:
/// `height` (u64 BE) then the block's encoding.
const OWN_BLOCK_KEY: &str = "own_block";

/// Keeps the block this validator proposes or precommits at `height`, before the message
/// is in the WAL: `synced` waits for the disk (a proposal's), otherwise it survives a
/// crash of the process only (a precommit's, on every height's path).
fn save_own_block(store: &Store, height: Height, block: &Block, synced: bool) -> Result<()> {
    let mut bytes = height.0.to_be_bytes().to_vec();
    bytes.extend_from_slice(&block.encode());
    if synced {
        store.put_local_meta(OWN_BLOCK_KEY, &bytes)?;
    } else {
        store.put_local_meta_unsynced(OWN_BLOCK_KEY, &bytes)?;
    }
    Ok(())
}

/// The saved block of a proposal or precommit that `me` signed at `height` and that is
/// among `restored` (its WAL at that height), if there is one: anything else saved
/// (another height or block, bytes that do not decode) is ignored.
fn restored_own_block(
    store: &Store,
    me: &PublicKey,
    height: Height,
    restored: &[Message],
) -> Result<Option<(Hash, Block)>> {
    let own: Vec<Hash> = restored
        .iter()
        .filter(|m| m.height() == height)
        .filter_map(|m| m.own_block(me))
        .collect();
    if own.is_empty() {
        return Ok(None);
    }
    let Some(bytes) = store.local_meta(OWN_BLOCK_KEY)? else {
        return Ok(None);
    };
    let Some((at, encoded)) = bytes.split_first_chunk::<8>() else {
        return Ok(None);
    };
    if u64::from_be_bytes(*at) != height.0 {
        return Ok(None);
    }
    match Block::decode(encoded) {
        Ok(block) if own.contains(&block.hash()) => {
            info!(height = %height, block = %block.hash(), "restored the block of an own proposal or lock");
            Ok(Some((block.hash(), block)))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            warn!("the saved block of an own proposal does not decode: {e}");
            Ok(None)
        }
    }
}

/// Blocks `from..from + count` with their commits, for a peer that syncs: as many as the
/// store has in a row, within `max_bytes` of stored blocks (at least one).
fn blocks_for_sync(
    store: &Store,
    from: Height,
    count: u32,
    max_bytes: usize,
) -> Result<Vec<(Block, Commit)>> {
    let mut blocks = Vec::new();
    let mut bytes = 0usize;
    for h in from.0..from.0.saturating_add(u64::from(count.min(SYNC_BLOCKS_MAX))) {
        let (Some((b, len)), Some(c)) =
            (store.block_with_len(Height(h))?, store.commit(Height(h))?)
        else {
            break;
        };
        bytes += len;
        if bytes > max_bytes && !blocks.is_empty() {
            break;
        }
        blocks.push((b, c));
    }
    Ok(blocks)
}

/// An own message's signature: what identifies it (Ed25519 signs deterministically).
fn signature_of(m: &Message) -> [u8; 64] {
    match m {
        Message::Proposal(p) => p.signature.0,
        Message::Vote(v) => v.signature.0,
    }
}

/// Whether a block's results change the validator set (a council change or a slashing).
fn changes_validators(results: &BlockResults) -> bool {
    let changes = |events: &[acta_ledger::Event]| {
        events
            .iter()
            .any(|e| e.kind == "validators_changed" || e.kind == "validator_slashed")
    };
    changes(&results.events)
        || results.receipts.iter().any(|r| match &r.outcome {
            acta_ledger::Outcome::Accepted { events } => changes(events),
            acta_ledger::Outcome::Refused { .. } => false,
        })
}

/// The nodes of the latest validator set after block `height`: each validator's node as
/// the state records it, or as the genesis file names it (a store written before the
/// state held nodes). A node the state records but this build cannot parse is logged and
/// left out: the others still reach it if it dials them.
pub(crate) fn validator_peers(
    store: &Store,
    spec: &ChainSpec,
    height: Height,
) -> Result<Vec<ValidatorPeer>> {
    let mut peers = Vec::new();
    for (validator, node) in acta_contracts::staking::nodes(store, height)? {
        let key = validator.public_key;
        let peer = match &node {
            Some(node) => match node.peer_id.as_str().parse::<PeerId>() {
                Ok(peer) => peer,
                Err(e) => {
                    warn!(validator = %key, "the peer id {} the state holds: {e}", node.peer_id);
                    continue;
                }
            },
            None => match spec.peers.get(&key) {
                Some(peer) => *peer,
                None => continue,
            },
        };
        let address = node
            .as_ref()
            .map(|n| n.address.as_str())
            .filter(|a| !a.is_empty())
            .and_then(|a| match a.parse::<libp2p::Multiaddr>() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    warn!(validator = %key, "the address {a:?} the state holds: {e}");
                    None
                }
            });
        peers.push(ValidatorPeer { key, peer, address });
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_chain::chain;
    use acta_ledger::{testing, Vote, VoteKind};

    #[test]
    fn the_saved_proposer_schedule_gives_what_a_replay_from_the_genesis_gives() {
        let dir = tempfile::tempdir().unwrap();
        let (store, spec) = chain(dir.path(), 2_345);
        let replayed = schedule_at(&store, &spec, Height(2_345)).unwrap();
        let replayed_early = schedule_at(&store, &spec, Height(1_500)).unwrap();
        // Nothing saved at a height that is not a multiple of the period.
        save_schedule(
            &store,
            Height(1_999),
            &schedule_at(&store, &spec, Height(1_999)).unwrap(),
        )
        .unwrap();
        assert_eq!(store.local_meta(SCHEDULE_KEY).unwrap(), None);
        save_schedule(
            &store,
            Height(2_000),
            &schedule_at(&store, &spec, Height(2_000)).unwrap(),
        )
        .unwrap();
        assert!(store.local_meta(SCHEDULE_KEY).unwrap().is_some());
        assert_eq!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
        // The save is what a restart starts from: a different one gives a different answer.
        let other =
            borsh::to_vec(&(2_000u64, spec.validators.clone(), vec![7i64, -3, -4], 2u32)).unwrap();
        store.put_local_meta(SCHEDULE_KEY, &other).unwrap();
        assert_ne!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
        // Below the saved height, and with a damaged save, the replay is from the genesis.
        assert_eq!(
            schedule_at(&store, &spec, Height(1_500)).unwrap(),
            replayed_early
        );
        store.put_local_meta(SCHEDULE_KEY, b"garbage").unwrap();
        assert_eq!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
        let mut unfit =
            borsh::to_vec(&(2_000u64, spec.validators.clone(), vec![0i64; 2], 0u32)).unwrap();
        store.put_local_meta(SCHEDULE_KEY, &unfit).unwrap();
        assert_eq!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
        unfit = borsh::to_vec(&(9_000u64, spec.validators.clone(), vec![0i64; 3], 0u32)).unwrap();
        store.put_local_meta(SCHEDULE_KEY, &unfit).unwrap();
        assert_eq!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
        // What a start writes at any height (after a replay) is what the next start loads.
        write_schedule(&store, Height(2_345), &replayed).unwrap();
        let saved: (u64, ValidatorSet, Vec<i64>, u32) =
            borsh::from_slice(&store.local_meta(SCHEDULE_KEY).unwrap().unwrap()).unwrap();
        assert_eq!(saved.0, 2_345);
        assert_eq!(schedule_at(&store, &spec, Height(2_345)).unwrap(), replayed);
    }

    #[test]
    fn the_block_of_an_own_proposal_or_lock_comes_back_only_for_that_message_and_height() {
        let dir = tempfile::tempdir().unwrap();
        let (store, spec) = chain(dir.path(), 0);
        let key = testing::key(0xa0, 0);
        let block = testing::block(
            &spec.chain_id,
            testing::BlockSpec {
                height: Height(1),
                parent_hash: spec.hash,
                txs: vec![],
                last_commit: None,
                evidence: vec![],
                state_root: Hash::ZERO,
                validators: &spec.validators,
                next_validators: &spec.validators,
            },
        );
        let height = block.height();
        let proposal = |b: Hash, h: Height| {
            Message::Proposal(
                acta_ledger::Proposal {
                    height: h,
                    round: acta_ledger::Round(1),
                    block: b,
                    pol_round: None,
                }
                .sign(&key, &spec.chain_id),
            )
        };
        let restored = vec![proposal(block.hash(), height)];
        // Nothing saved yet.
        assert!(restored_own_block(&store, &key.public(), height, &restored)
            .unwrap()
            .is_none());
        save_own_block(&store, height, &block, true).unwrap();
        let (hash, back) = restored_own_block(&store, &key.public(), height, &restored)
            .unwrap()
            .unwrap();
        assert_eq!((hash, back), (block.hash(), block.clone()));
        // Another signer's proposal, another block, another height: nothing.
        let other = testing::key(0xa0, 1).public();
        assert!(restored_own_block(&store, &other, height, &restored)
            .unwrap()
            .is_none());
        let elsewhere = vec![proposal(Hash::digest(b"another block"), height)];
        assert!(
            restored_own_block(&store, &key.public(), height, &elsewhere)
                .unwrap()
                .is_none()
        );
        let later = Height(height.0 + 1);
        let restored_later = vec![proposal(block.hash(), later)];
        assert!(
            restored_own_block(&store, &key.public(), later, &restored_later)
                .unwrap()
                .is_none()
        );
        // The block of an own precommit (a lock), saved without waiting for the disk.
        let precommit = |key: &acta_ledger::Keypair, b: Option<Hash>| {
            Message::Vote(
                Vote {
                    kind: VoteKind::Precommit,
                    height,
                    round: acta_ledger::Round(0),
                    block: b,
                }
                .sign(key, &spec.chain_id),
            )
        };
        let (store, _) = chain(&dir.path().join("locked"), 0);
        save_own_block(&store, height, &block, false).unwrap();
        let locked = vec![precommit(&key, Some(block.hash()))];
        assert_eq!(
            restored_own_block(&store, &key.public(), height, &locked)
                .unwrap()
                .map(|(hash, _)| hash),
            Some(block.hash())
        );
        // A nil precommit, or another's precommit for it, restores nothing.
        let nil = vec![precommit(&key, None)];
        assert!(restored_own_block(&store, &key.public(), height, &nil)
            .unwrap()
            .is_none());
        let theirs = vec![precommit(&testing::key(0xa0, 1), Some(block.hash()))];
        assert!(restored_own_block(&store, &key.public(), height, &theirs)
            .unwrap()
            .is_none());
        // Damaged bytes are ignored, not an error.
        store.put_local_meta(OWN_BLOCK_KEY, &[0, 0, 0]).unwrap();
        assert!(restored_own_block(&store, &key.public(), height, &restored)
            .unwrap()
            .is_none());
    }

    #[test]
    fn observers_share_one_allowance_and_validators_keep_their_own() {
        const MIB: usize = 1024 * 1024;
        let start = Instant::now();
        let mut allowances = SyncAllowances::new(start);
        let (first, second, validator) = (PeerId::random(), PeerId::random(), PeerId::random());
        // Two observers' store answers together take one allowance's burst (four answers
        // of 32 MiB reserved): the second observer is refused once the first took three.
        let mut charges = Vec::new();
        for _ in 0..3 {
            charges.push(allowances.admit(first, true, start, 32 * MIB).unwrap());
        }
        charges.push(allowances.admit(second, true, start, 32 * MIB).unwrap());
        assert!(allowances.admit(second, true, start, 32 * MIB).is_none());
        // A refusal by the shared allowance leaves the observer's own untouched: its own
        // bucket still holds three answers' worth once the shared one has room.
        let own = &allowances.peers[&second];
        assert_eq!(own.in_flight, 1);
        assert!((own.bytes - 96.0 * 1024.0 * 1024.0).abs() < 1.0);
        // A validator's node is charged to its own allowance only.
        for _ in 0..4 {
            assert!(allowances
                .admit(validator, false, start, 32 * MIB)
                .is_some());
        }
        // Answers settled for less than they reserved give the shared allowance room again.
        for charge in charges.drain(..3) {
            allowances.settle(&first, charge, start, MIB);
        }
        assert!(allowances.admit(second, true, start, 32 * MIB).is_some());
        // Answers from memory need no bytes, but the shared requests bucket bounds them too.
        let admitted = (0..1000)
            .filter(|_| allowances.admit(PeerId::random(), true, start, 0).is_some())
            .count();
        assert!(admitted < SYNC_REQUESTS_BURST as usize, "{admitted}");
    }

    #[test]
    fn a_peer_gets_its_burst_then_its_rate_of_sync_requests() {
        let start = Instant::now();
        let mut allowance = SyncAllowance::new(start);
        let burst = (0..100).filter(|_| allowance.take(start, 0)).count();
        assert_eq!(burst, SYNC_REQUESTS_BURST as usize);
        // A second later, a second's worth more; never more than the burst saved.
        let later = start + Duration::from_secs(1);
        let more = (0..100).filter(|_| allowance.take(later, 0)).count();
        assert_eq!(more, SYNC_REQUESTS_PER_S as usize);
        // Spent, it is not full (so kept past a reconnection) until a burst's worth later.
        assert!(!allowance.is_full(later));
        let refilled = f64::from(SYNC_REQUESTS_BURST) / f64::from(SYNC_REQUESTS_PER_S);
        assert!(!allowance.is_full(later + Duration::from_secs_f64(refilled * 0.9)));
        assert!(allowance.is_full(later + Duration::from_secs_f64(refilled)));
        let much_later = later + Duration::from_secs(3600);
        let saved = (0..100).filter(|_| allowance.take(much_later, 0)).count();
        assert_eq!(saved, SYNC_REQUESTS_BURST as usize);
    }

    #[test]
    fn a_peer_that_was_sent_its_bytes_waits_until_it_has_earned_them_back() {
        const MIB: usize = 1024 * 1024;
        let start = Instant::now();
        let mut allowance = SyncAllowance::new(start);
        // Answers read at once reserve their most: four of 32 MiB take the 128 MiB burst,
        // and a fifth is refused until some are settled or earned back.
        for _ in 0..4 {
            assert!(allowance.take(start, 32 * MIB));
        }
        assert!(!allowance.take(start, 32 * MIB));
        // Kept while answers are being read, however long ago they were admitted.
        assert!(!allowance.is_full(start + Duration::from_secs(3600)));
        // Answers from memory still go through: a proposal's transactions after a sync.
        assert!(allowance.take(start, 0));
        // Three answers weigh what they reserved, the fourth 64 MiB more: the peer owes
        // 64 MiB, two seconds' worth.
        for _ in 0..3 {
            allowance.settle(start, 32 * MIB, 32 * MIB);
        }
        allowance.settle(start, 32 * MIB, 96 * MIB);
        assert!(!allowance.take(start, 32 * MIB));
        let owed_secs = 64.0 * 1024.0 * 1024.0 / SYNC_BYTES_PER_S;
        let paid = start + Duration::from_secs_f64(owed_secs);
        assert!(!allowance.take(paid - Duration::from_millis(100), 32 * MIB));
        assert!(allowance.take(paid + Duration::from_millis(100), 32 * MIB));
        allowance.settle(paid, 32 * MIB, 0);
        // Full again (so forgettable) only once nothing is being read and a burst is saved.
        let full = paid + Duration::from_secs_f64(SYNC_BYTES_BURST / SYNC_BYTES_PER_S);
        assert!(!allowance.is_full(full - Duration::from_millis(500)));
        assert!(allowance.is_full(full + Duration::from_millis(500)));
        // A peer syncing one answer at a time within the rate is never held back.
        let mut steady = SyncAllowance::new(start);
        for i in 0..1_000u32 {
            let now = start + Duration::from_millis(u64::from(i) * 50);
            assert!(steady.take(now, 32 * MIB), "request {i}");
            steady.settle(now, 32 * MIB, MIB);
        }
    }
}
