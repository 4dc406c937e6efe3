//! The block store on RocksDB: blocks, commit certificates, the transaction index and the
//! state tree, with every block landing in one synced write.
//!
//! A block, its commit, its state-tree nodes and values, its index entries and the new
//! latest height are written as one `WriteBatch` with `sync`, so after a crash the store
//! holds the last committed block or the one before it, never a part of one.
//!
//! Column families:
//! - `blocks`: height (u64 big-endian) -> borsh `Block`
//! - `commits`: height -> borsh `Commit`
//! - `block_hashes`: block hash -> height
//! - `txs`: transaction id -> borsh `TxLocation`
//! - `results`: height -> the block's results, as the caller encoded them (the node stores
//!   its transactions' receipts here; the header's `results_root` commits to them)
//! - `state_nodes`: borsh jmt `NodeKey` -> a node: a leaf or `Null` as jmt encodes them, an
//!   internal node compactly (`TreeNode::encode`; jmt's borsh `Node` in stores written
//!   before 2026-12-07, still read)
//! - `state_values`: key hash || version (u64 big-endian) -> borsh `Option<Vec<u8>>`
//! - `state_latest`: key hash -> version (u64 big-endian) || borsh `Option<Vec<u8>>`, the
//!   newest version of every value
//! - `state_stale`: stale since (u64 big-endian) || kind || what. Kind 2, with nothing after
//!   it, is one entry per block: a borsh [`StaleList`] of the jmt nodes (borsh `NodeKey`)
//!   that no tree from that height on uses and of the value versions that no read from that
//!   height on sees. Stores written before 2026-12-05 also hold kinds 0 (one such node,
//!   the value empty) and 1 (one key hash; the value the version it replaced, or empty).
//!   Written only by a [`History::Prunable`] store; [`Store::prune`] consumes it
//! - `block_log`, `cosignatures`: the checkpoints' block log and cosignatures
//! - `meta`: `latest_height` -> u64 big-endian; `oldest_state` -> the oldest height whose
//!   state is kept (absent: 0); `restored` -> in a store restored from a snapshot, the
//!   validator-set changes up to its block (borsh `Vec<SetChange>`)

use std::path::Path;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::{
    restore::{JellyfishMerkleRestore, StateSnapshotReceiver},
    storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeWriter},
    JellyfishMerkleIterator, KeyHash, OwnedValue, RootHash, Sha256Jmt, Version,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, Env, IteratorMode, Options,
    SliceTransform, WriteBatch, WriteOptions, DB,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{
    block::Block,
    blocklog,
    bundle::SetChange,
    checkpoint::Cosignature,
    codec,
    single_delete::{FamilyId, SingleDeletes},
    snapshot::{Chunk, Manifest, RangeProof, CHUNK_BYTES_MAX, CHUNK_ENTRIES_MAX},
    state::{self, state_err, AuthenticatedState, StateChanges, StateProof, StateUpdate},
    tree::{NodeAt, NodeCache, NodeSource, TreeNode, Written},
    tx::Transaction,
    types::Height,
    vote::Commit,
    Error, Hash, Result,
};

const CF_BLOCKS: &str = "blocks";
const CF_COMMITS: &str = "commits";
const CF_BLOCK_HASHES: &str = "block_hashes";
const CF_TXS: &str = "txs";
const CF_RESULTS: &str = "results";
const CF_STATE_NODES: &str = "state_nodes";
const CF_STATE_VALUES: &str = "state_values";
const CF_META: &str = "meta";
/// The newest version of every state value: `key hash` → `version u64 BE || borsh(Option
/// <value>)`, so that a read at or after that version is one point get.
const CF_STATE_LATEST: &str = "state_latest";
/// The block log's complete subtrees: `(level u8, index u64 BE)` → hash (`crate::blocklog`).
const CF_BLOCK_LOG: &str = "block_log";
/// Checkpoint cosignatures: `(size u64 BE, validator key)` → `(timestamp u64, signature)`.
const CF_COSIGNATURES: &str = "cosignatures";
/// What blocks made stale, in the order it became stale (see the module's list).
const CF_STATE_STALE: &str = "state_stale";
/// One stale tree node (stores written before 2026-12-05).
const STALE_NODE: u8 = 0;
/// One key's replaced value version (stores written before 2026-12-05).
const STALE_VALUE: u8 = 1;
/// Everything one block made stale, as one [`StaleList`].
const STALE_BLOCK: u8 = 2;
const COLUMN_FAMILIES: [&str; 12] = [
    CF_BLOCKS,
    CF_COMMITS,
    CF_BLOCK_HASHES,
    CF_TXS,
    CF_RESULTS,
    CF_STATE_NODES,
    CF_STATE_VALUES,
    CF_META,
    CF_BLOCK_LOG,
    CF_COSIGNATURES,
    CF_STATE_LATEST,
    CF_STATE_STALE,
];

const KEY_LATEST_HEIGHT: &[u8] = b"latest_height";
/// Set once `state_latest` holds the newest version of every value (stores written before
/// it existed fill it on open).
const KEY_STATE_LATEST_FILLED: &[u8] = b"state_latest_filled";
/// The layout of what the store keeps (docs/wire-format.md, section 11), `u64` BE: 2 since
/// the compact tree nodes of 2026-12-07, 3 since values are written once (the same day).
/// A store without it is of layout 1; this release reads layouts 1 to 3, and refuses a
/// later one on open.
const KEY_STORE_LAYOUT: &[u8] = b"store_layout";
const STORE_LAYOUT: u64 = 3;
/// How the store wrote its values, height span by height span (layout 3): borsh
/// `Vec<(u64, bool)>`, each span's first height and whether its values went into
/// `state_latest` alone, to move into `state_values` when a later height replaces them (a
/// pruned store), rather than into both when written (an archive store, and every store
/// before layout 3). A new span starts when the store is opened in the other mode, or
/// replaces the last if nothing was written in it ([`Store::open_tuned`]).
const KEY_VALUE_WRITES: &[u8] = b"value_writes";
/// The block cache shared by every column family, by default.
const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;
/// The memtables of all column families together, at most: without a bound each of the
/// dozen column families may hold two of 64 MiB, and a validator under load for half an
/// hour reached 1.3 GiB of resident memory. (A block of 1,500 transactions writes about
/// 1 MiB, so 128 MiB is a hundred blocks between flushes.) The default.
const MEMTABLE_BYTES: usize = 128 * 1024 * 1024;
/// Leaves in the block log (equal to the latest height, except in a store written before
/// the log existed, which [`Store::open`] brings up to date).
const KEY_BLOCK_LOG_SIZE: &[u8] = b"block_log_size";
/// The oldest height whose state the store keeps, raised by [`Store::prune`].
const KEY_OLDEST_STATE: &[u8] = b"oldest_state";
/// In a store restored from a snapshot: borsh `Vec<SetChange>`, the validator-set changes
/// up to the snapshot's block (included), whose blocks the store does not hold.
const KEY_RESTORED: &[u8] = b"restored";

/// What a store keeps of past states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum History {
    /// The state of every height, for ever (agencies and auditors who serve history).
    #[default]
    Archive,
    /// Also indexes what each block makes stale, so that [`Store::prune`] can delete the
    /// states older than a window. An archive store opened as prunable prunes only what
    /// blocks written from then on made stale.
    Prunable,
}

/// What one block made stale: the `state_stale` entry of kind 2 under its height, one
/// write per block where an entry per node and per value made about a third of the keys a
/// block wrote (issue 17).
/// Public for the golden file (wire format section 13.10a).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StaleList {
    /// Tree nodes that no tree from this height on uses, by their `state_nodes` key
    /// (borsh jmt `NodeKey`).
    pub nodes: Vec<Vec<u8>>,
    /// Keys written at this height that had a value before, with the version replaced: no
    /// read from this height on sees it. In key order.
    pub values: Vec<([u8; 32], u64)>,
}

/// What one call of [`Store::prune`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PruneStep {
    /// Stale things deleted (each a tree node or one key's older value versions).
    pub entries: usize,
    /// Whether everything stale at the oldest kept height is gone.
    pub done: bool,
}

/// Where a transaction is: the block's height and its position in the block.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

fn log_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The store's block log with writes not yet committed on top.
struct Overlay<'a> {
    store: &'a Store,
    pending: &'a std::collections::HashMap<(u8, u64), Hash>,
}

impl blocklog::HashReader for Overlay<'_> {
    fn subtree(&self, level: u8, index: u64) -> Result<Option<Hash>> {
        match self.pending.get(&(level, index)) {
            Some(h) => Ok(Some(*h)),
            None => self.store.subtree(level, index),
        }
    }
}

impl blocklog::HashReader for Store {
    fn subtree(&self, level: u8, index: u64) -> Result<Option<Hash>> {
        self.get_cf(CF_BLOCK_LOG, &log_key(level, index))?
            .map(|b| {
                <[u8; 32]>::try_from(b.as_slice())
                    .map(Hash)
                    .map_err(|_| corrupt("block log hash", "not 32 bytes"))
            })
            .transpose()
    }
}

/// Recently written keys whose newest version the store keeps in memory (hot keys:
/// signers' nonces, open rounds), at most.
const HOT_KEYS: usize = 65_536;
/// Larger values are not kept in memory (the cache holds at most 64 MiB of values).
const HOT_VALUE_BYTES_MAX: usize = 1024;

/// The memory [`Store::tree_nodes`] may take, by default. The tree takes about 190 to 235
/// bytes of it a key (its internal nodes, the hashes kept of the full ones and the cache's
/// own entries): 192 MiB hold a state of about 0.85 to 1 million keys whole; the nodes of
/// a larger one used longest ago are read again from RocksDB (ADR 0023, addendum of
/// 2026-12-07).
const TREE_CACHE_BYTES: usize = 192 * 1024 * 1024;

/// The memory a store's caches may hold, part by part (ADR 0023). What the store holds
/// besides (the hot-key cache, RocksDB's buffers) is not bounded here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBudget {
    /// RocksDB's block cache: data, index and filter blocks of every column family.
    pub block_cache_bytes: usize,
    /// RocksDB's memtables, all column families together.
    pub memtable_bytes: usize,
    /// The state tree's decoded internal nodes.
    pub tree_cache_bytes: usize,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            block_cache_bytes: BLOCK_CACHE_BYTES,
            memtable_bytes: MEMTABLE_BYTES,
            tree_cache_bytes: TREE_CACHE_BYTES,
        }
    }
}

/// The newest version of a key as the hot-key cache holds it.
#[derive(Clone, Debug)]
enum Hot {
    /// The value (or its deletion) written at this version.
    Value(u64, Option<Vec<u8>>),
    /// A value too large to keep: read it from `state_latest`.
    Large,
}

impl Hot {
    fn of(version: u64, value: Option<Vec<u8>>) -> Hot {
        match value {
            Some(v) if v.len() > HOT_VALUE_BYTES_MAX => Hot::Large,
            value => Hot::Value(version, value),
        }
    }
}

/// What a store holds in memory ([`Store::memory`]), in bytes unless said otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// RocksDB's block cache: data, index and filter blocks.
    pub block_cache: u64,
    /// RocksDB's memtables, those being written and those waiting to be flushed.
    pub memtables: u64,
    /// Table readers' memory outside the block cache.
    pub table_readers: u64,
    /// The decoded internal nodes of the state tree, with the cache's own entries.
    pub tree_nodes: u64,
    /// Keys in the hot-key cache (a count, not bytes; values of at most 1 KiB each).
    pub hot_keys: u64,
}

/// Where block updates found the state tree's nodes, since the store was opened
/// ([`Store::tree_reads`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeReads {
    /// In the tree cache.
    pub cached: u64,
    /// In RocksDB: the cache lacked them (a leaf, whose key its parent did not know yet,
    /// or an internal node the cache let go of or never held).
    pub stored: u64,
}

/// Where blocks' writes spent their time, since the store was opened
/// ([`Store::block_writes`]): nanoseconds by part, and where the values they replaced were
/// read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockWrites {
    /// Reading the newest version of each key a block writes, which it replaces (pruned
    /// stores, and archives over a pruned span).
    pub read_replaced_ns: u64,
    /// The rest of building the batch: encoding the block, its indexes, the tree's nodes.
    pub build_ns: u64,
    /// RocksDB appending the batch to its log and syncing it.
    pub wal_ns: u64,
    /// RocksDB inserting the batch into its memtables.
    pub memtable_ns: u64,
    /// RocksDB holding the write back because compactions fell behind.
    pub delay_ns: u64,
    /// The rest of RocksDB's write: waiting for its write group, its own bookkeeping.
    pub write_other_ns: u64,
    /// Putting the written values and nodes into the store's caches.
    pub publish_ns: u64,
    /// Replaced values found in the hot-key cache.
    pub replaced_cached: u64,
    /// Replaced values read from RocksDB (keys the cache did not hold, new keys included).
    pub replaced_stored: u64,
}

/// [`BlockWrites`] as the store counts them.
#[derive(Debug, Default)]
struct BlockWriteCounters([std::sync::atomic::AtomicU64; 9]);

impl BlockWriteCounters {
    fn add(&self, part: usize, amount: u64) {
        self.0[part].fetch_add(amount, std::sync::atomic::Ordering::Relaxed);
    }

    fn add_time(&self, part: usize, since: std::time::Instant) {
        self.add(
            part,
            u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX),
        );
    }

    fn get(&self) -> BlockWrites {
        let v = |i: usize| self.0[i].load(std::sync::atomic::Ordering::Relaxed);
        BlockWrites {
            read_replaced_ns: v(READ_REPLACED),
            build_ns: v(BUILD),
            wal_ns: v(WAL),
            memtable_ns: v(MEMTABLE),
            delay_ns: v(DELAY),
            write_other_ns: v(WRITE_OTHER),
            publish_ns: v(PUBLISH),
            replaced_cached: v(REPLACED_CACHED),
            replaced_stored: v(REPLACED_STORED),
        }
    }
}

const READ_REPLACED: usize = 0;
const BUILD: usize = 1;
const WAL: usize = 2;
const MEMTABLE: usize = 3;
const DELAY: usize = 4;
const WRITE_OTHER: usize = 5;
const PUBLISH: usize = 6;
const REPLACED_CACHED: usize = 7;
const REPLACED_STORED: usize = 8;

/// How RocksDB's compactions keep up ([`Store::compactions`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compactions {
    /// The most files waiting at level 0 in any column family (RocksDB slows writes at
    /// 20 and stops them at 36).
    pub level0_files_max: u64,
    /// RocksDB's estimate of the bytes compactions still have to rewrite, over all column
    /// families.
    pub pending_bytes: u64,
    /// Whether RocksDB is slowing or stopping writes now because compactions fell behind.
    pub writes_stalled: bool,
}

/// The durable store of one node.
#[derive(Debug)]
pub struct Store {
    db: DB,
    /// Writers read the latest height and then write the next: one at a time.
    write_lock: std::sync::Mutex<()>,
    /// The latest height written ([`NO_HEIGHT`] for an empty store), kept in memory so that
    /// a read does not fetch it: set once the write that stores it has succeeded.
    latest: std::sync::atomic::AtomicU64,
    /// The oldest height whose state is kept (0 until pruned); raised, durably, before
    /// anything older is deleted.
    oldest: std::sync::atomic::AtomicU64,
    history: History,
    /// Where the next [`Store::prune`] starts reading `state_stale`: past what earlier calls
    /// deleted (in memory; after a restart it starts at the beginning).
    prune_cursor: std::sync::Mutex<Vec<u8>>,
    /// The newest version of recently written keys, so that a key read and written in
    /// block after block (a signer's nonce, an open round) is not read from RocksDB again.
    /// Only writers fill it, and they advance `latest` under its lock, so a reader never
    /// sees it behind the latest height. (Filling it on reads too made a read of a cold
    /// key 40% slower, for keys that the per-block cache of `StateView` already serves.)
    hot: std::sync::Mutex<lru::LruCache<[u8; 32], Hot>>,
    /// Decoded internal nodes of the state tree, by where they are stored (which fixes
    /// their content): the nodes of recent blocks and those read by updates, so that a
    /// block's update finds the paths it walks in memory ([`crate::tree`]).
    tree_nodes: NodeCache,
    /// Nodes that updates found in `tree_nodes`.
    tree_reads_cached: std::sync::atomic::AtomicU64,
    /// Nodes that updates read from RocksDB.
    tree_reads_stored: std::sync::atomic::AtomicU64,
    /// Where blocks' writes spent their time.
    block_writes: BlockWriteCounters,
    /// Keys whose every version pruning keeps, and whose value reads at any committed
    /// height are answered ([`Store::keep_history_of`]).
    kept: Vec<Hash>,
    /// The ids of `state_nodes`, `state_values` and `state_stale` in a batch's records, for
    /// pruning's single deletions.
    nodes_family: FamilyId,
    values_family: FamilyId,
    stale_family: FamilyId,
    /// How values were written, span by span (`meta` `value_writes`): the first height of
    /// each, and whether a version written in it is in `state_values` only once replaced
    /// (`true`) or since it was written. Never empty; the first span starts at 0.
    value_writes: Vec<(u64, bool)>,
}

const NO_HEIGHT: u64 = u64::MAX;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("stored {what} does not decode: {e}"))
}

impl Store {
    /// Opens (or creates) the store in the folder `path`, keeping every height's state.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Self::open_with(path, History::Archive)
    }

    /// Opens (or creates) the store in the folder `path`, keeping past states as `history`
    /// says.
    pub fn open_with(path: impl AsRef<Path>, history: History) -> Result<Store> {
        Self::open_tuned(path, history, MemoryBudget::default())
    }

    /// Opens (or creates) the store in the folder `path`, keeping past states as `history`
    /// says, with caches of the sizes `memory` gives.
    pub fn open_tuned(
        path: impl AsRef<Path>,
        history: History,
        memory: MemoryBudget,
    ) -> Result<Store> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(512);
        opts.set_db_write_buffer_size(memory.memtable_bytes);
        // Compactions run at the lowest CPU priority (nice 19), flushes at the normal one.
        // A compaction merges a large share of the state tree's nodes at once; at the same
        // priority, one took a third of a validator's CPU for seconds while blocks waited
        // behind it, and the tree's compactions grow with the state (ADR 0023, addendum of
        // 2026-12-05). Deferred, they use the CPU that consensus leaves; a flush is never
        // deferred, since a full memtable stops writes.
        let mut env = Env::new()?;
        env.lower_thread_pool_cpu_priority();
        opts.set_env(&env);
        // One block cache for every column family; bloom filters for point gets, and on
        // the state values, whose keys are `key hash (32) || version`, a bloom filter of
        // the key hash, so that a read seeks only into files that hold that key.
        let cache = Cache::new_lru_cache(memory.block_cache_bytes);
        let cfs = COLUMN_FAMILIES.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            let mut cf = Options::default();
            cf.set_block_based_table_factory(&table);
            if *name == CF_STATE_LATEST {
                // Only point gets: whole-key bloom filters and a hash index in each block.
                table.set_data_block_index_type(rocksdb::DataBlockIndexType::BinaryAndHash);
                table.set_whole_key_filtering(true);
                cf.set_block_based_table_factory(&table);
                cf.set_memtable_whole_key_filtering(true);
                cf.set_memtable_prefix_bloom_ratio(0.1);
            }
            if *name == CF_STATE_VALUES {
                cf.set_prefix_extractor(SliceTransform::create_fixed_prefix(32));
                cf.set_memtable_prefix_bloom_ratio(0.1);
            }
            if *name == CF_STATE_NODES {
                // The tree's nodes are keyed by the version that wrote them, little-endian,
                // so every flush overlaps the whole tree and merging level 0 down rewrites
                // all of the level below. Merging eight flushes at once rather than four
                // rewrites it half as often; the extra files at level 0 cost a read only
                // their bloom filters, pinned in the cache.
                cf.set_level_zero_file_num_compaction_trigger(8);
            }
            if *name == CF_STATE_LATEST || *name == CF_TXS {
                // Keyed by hashes: every flush overlaps the whole of the level below too,
                // and these flushes are small (2 to 4 MB, against the tree's 23, in a
                // quarter hour at 1,500 tx/s), so each merge of level 0 rewrote all of the
                // level below for a few MB of news, a cost that grew with the state. Eight
                // flushes at a time, as for the tree; point gets probe the extra files'
                // pinned bloom filters only.
                cf.set_level_zero_file_num_compaction_trigger(8);
            }
            ColumnFamilyDescriptor::new(*name, cf)
        });
        let db = DB::open_cf_descriptors(&opts, path.as_ref(), cfs)?;
        let family = |name| {
            let cf = db
                .cf_handle(name)
                .expect("column families are created on open");
            FamilyId::of(cf)
        };
        let (nodes_family, values_family, stale_family) = (
            family(CF_STATE_NODES)?,
            family(CF_STATE_VALUES)?,
            family(CF_STATE_STALE)?,
        );
        let mut store = Store {
            db,
            write_lock: std::sync::Mutex::new(()),
            latest: std::sync::atomic::AtomicU64::new(NO_HEIGHT),
            oldest: std::sync::atomic::AtomicU64::new(0),
            history,
            prune_cursor: std::sync::Mutex::new(Vec::new()),
            hot: std::sync::Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(HOT_KEYS).expect("not zero"),
            )),
            tree_nodes: NodeCache::new(memory.tree_cache_bytes),
            tree_reads_cached: Default::default(),
            tree_reads_stored: Default::default(),
            block_writes: BlockWriteCounters::default(),
            kept: Vec::new(),
            nodes_family,
            values_family,
            stale_family,
            value_writes: Vec::new(),
        };
        let layout = store.check_layout()?;
        if let Some(h) = store.stored_latest_height()? {
            store.set_latest(h);
        }
        if let Some(bytes) = store.get_cf(CF_META, KEY_OLDEST_STATE)? {
            let arr: [u8; 8] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("oldest state height", "not 8 bytes"))?;
            store
                .oldest
                .store(u64::from_be_bytes(arr), std::sync::atomic::Ordering::SeqCst);
        }
        store.fill_block_log()?;
        if layout < 3 {
            // From layout 3 on, `state_values` lacks the newest versions: filling
            // `state_latest` from it would go back in time.
            store.fill_state_latest()?;
        }
        let stored = if layout >= 3 {
            let bytes = store
                .get_cf(CF_META, KEY_VALUE_WRITES)?
                .ok_or_else(|| corrupt("spans of value writes", "absent"))?;
            let spans: Vec<(u64, bool)> =
                borsh::from_slice(&bytes).map_err(|e| corrupt("spans of value writes", e))?;
            if spans.first().is_none_or(|s| s.0 != 0) || spans.windows(2).any(|w| w[0].0 >= w[1].0)
            {
                return Err(corrupt("spans of value writes", "not ascending from 0"));
            }
            spans
        } else {
            // Every version so far went into `state_values` when it was written.
            vec![(0, false)]
        };
        let once = history == History::Prunable;
        let next = store.latest_height()?.map_or(0, |h| h.0 + 1);
        // A span that starts above the next height would claim heights not yet written
        // (a store rewound, or corrupt).
        if stored.last().is_some_and(|s| s.0 > next) {
            return Err(corrupt(
                "spans of value writes",
                format!("a span starts above the next height, {next}"),
            ));
        }
        store.value_writes = value_writes_from(&stored, next, once);
        if layout != STORE_LAYOUT || store.value_writes != stored {
            store.mark_layout()?;
        }
        Ok(store)
    }

    /// The layout the store was written in (1 when unmarked).
    fn layout(&self) -> Result<u64> {
        match self.get_cf(CF_META, KEY_STORE_LAYOUT)? {
            None => Ok(1),
            Some(bytes) => Ok(u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("store layout", "not 8 bytes"))?,
            )),
        }
    }

    /// The store's layout; refuses a store that a later release wrote in a layout this one
    /// cannot read, before anything is written to it.
    fn check_layout(&self) -> Result<u64> {
        let layout = self.layout()?;
        if layout > STORE_LAYOUT {
            return Err(Error::Storage(format!(
                "the store is of layout {layout}, written by a later release; this release \
                 reads layouts up to {STORE_LAYOUT} (to go back, restore a snapshot into an \
                 empty home: docs/operations.md, section 9)"
            )));
        }
        Ok(layout)
    }

    /// Records this release's layout, which the store is in from now on, with the spans of
    /// value writes, in one batch.
    fn mark_layout(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META),
            KEY_STORE_LAYOUT,
            STORE_LAYOUT.to_be_bytes(),
        );
        batch.put_cf(
            self.cf(CF_META),
            KEY_VALUE_WRITES,
            codec::encode(&self.value_writes),
        );
        self.write(batch)
    }

    /// Writes the newest version of every value into `state_latest`, for a store written
    /// before it existed (one pass over the values).
    fn fill_state_latest(&self) -> Result<()> {
        /// Keys written per batch, so that memory stays bounded on a large store.
        const BATCH_KEYS: usize = 10_000;
        if self.get_cf(CF_META, KEY_STATE_LATEST_FILLED)?.is_some() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let mut newest: Option<(Vec<u8>, Vec<u8>)> = None;
        let put = |batch: &mut WriteBatch, (k, v): (Vec<u8>, Vec<u8>)| {
            let mut value = k[32..40].to_vec();
            value.extend_from_slice(&v);
            batch.put_cf(self.cf(CF_STATE_LATEST), &k[..32], value);
        };
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_total_order_seek(true);
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_STATE_VALUES), opts, IteratorMode::Start)
        {
            let (k, v) = item?;
            if k.len() != 40 {
                return Err(corrupt("state value key", "not 40 bytes"));
            }
            if newest.as_ref().is_some_and(|(n, _)| n[..32] != k[..32]) {
                if let Some(entry) = newest.take() {
                    put(&mut batch, entry);
                }
                // Writing again after a crash part-way only rewrites the same values.
                if batch.len() >= BATCH_KEYS {
                    self.write(std::mem::take(&mut batch))?;
                }
            }
            newest = Some((k.to_vec(), v.to_vec()));
        }
        if let Some(entry) = newest {
            put(&mut batch, entry);
        }
        batch.put_cf(self.cf(CF_META), KEY_STATE_LATEST_FILLED, [1]);
        self.write(batch)
    }

    /// Appends to the block log the blocks a store written before it existed holds (once,
    /// in batches of 10,000 blocks).
    fn fill_block_log(&self) -> Result<()> {
        let latest = self.latest_height()?.unwrap_or(Height(0)).0;
        let mut size = self.block_log_size()?;
        while size < latest {
            let mut batch = WriteBatch::default();
            let mut pending = std::collections::HashMap::new();
            let end = latest.min(size + 10_000);
            while size < end {
                let height = Height(size + 1);
                // A store of state alone (`commit_state_only`, for tools) has no blocks
                // to log.
                let Some(block) = self.block(height)? else {
                    break;
                };
                let overlay = Overlay {
                    store: self,
                    pending: &pending,
                };
                for (level, index, hash) in blocklog::append(&overlay, size, &block.hash())? {
                    pending.insert((level, index), hash);
                }
                size += 1;
            }
            if pending.is_empty() {
                return Ok(());
            }
            for ((level, index), hash) in &pending {
                batch.put_cf(self.cf(CF_BLOCK_LOG), log_key(*level, *index), hash.0);
            }
            batch.put_cf(self.cf(CF_META), KEY_BLOCK_LOG_SIZE, size.to_be_bytes());
            self.write(batch)?;
        }
        Ok(())
    }

    /// The number of blocks in the block log.
    pub fn block_log_size(&self) -> Result<u64> {
        match self.get_cf(CF_META, KEY_BLOCK_LOG_SIZE)? {
            None => Ok(0),
            Some(bytes) => {
                let arr: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("block log size", "not 8 bytes"))?;
                Ok(u64::from_be_bytes(arr))
            }
        }
    }

    /// Stores a validator's cosignature of the checkpoint of `size` blocks.
    pub fn put_cosignature(&self, size: u64, c: &Cosignature) -> Result<()> {
        let mut key = size.to_be_bytes().to_vec();
        key.extend_from_slice(&c.key.0);
        let mut value = c.timestamp.to_be_bytes().to_vec();
        value.extend_from_slice(&c.signature.0);
        self.db.put_cf(self.cf(CF_COSIGNATURES), key, value)?;
        Ok(())
    }

    /// A value the node keeps for itself beside the chain (a cache it can rebuild, such
    /// as the proposer schedule): under `local/` + `key` in `meta`.
    pub fn local_meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_cf(CF_META, format!("local/{key}").as_bytes())
    }

    /// Writes a value [`Store::local_meta`] reads, synced to disk before it returns.
    pub fn put_local_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), format!("local/{key}").as_bytes(), value);
        self.write(batch)
    }

    /// [`Store::put_local_meta`] without waiting for the disk: the value survives the
    /// process's crash (it is in RocksDB's log, in the kernel's hands), not the machine's.
    pub fn put_local_meta_unsynced(&self, key: &str, value: &[u8]) -> Result<()> {
        self.db
            .put_cf(self.cf(CF_META), format!("local/{key}").as_bytes(), value)?;
        Ok(())
    }

    /// Whether a cosignature of `key` is stored for the checkpoint of `size` blocks.
    pub fn has_cosignature(&self, size: u64, key: &crate::PublicKey) -> Result<bool> {
        let mut k = size.to_be_bytes().to_vec();
        k.extend_from_slice(&key.0);
        Ok(self.get_cf(CF_COSIGNATURES, &k)?.is_some())
    }

    /// The cosignatures stored for the checkpoint of `size` blocks.
    pub fn cosignatures(&self, size: u64) -> Result<Vec<Cosignature>> {
        let prefix = size.to_be_bytes();
        let iter = self.db.iterator_cf(
            self.cf(CF_COSIGNATURES),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if k.len() != 40 || k[..8] != prefix {
                break;
            }
            let (Ok(key), Ok(ts), Ok(sig)) = (
                <[u8; 32]>::try_from(&k[8..]),
                <[u8; 8]>::try_from(v.get(..8).unwrap_or_default()),
                <[u8; 64]>::try_from(v.get(8..).unwrap_or_default()),
            ) else {
                return Err(corrupt("cosignature", "wrong length"));
            };
            out.push(Cosignature {
                key: crate::PublicKey(key),
                timestamp: u64::from_be_bytes(ts),
                signature: crate::Signature(sig),
            });
        }
        Ok(out)
    }

    /// The largest checkpoint size at or below `at` with stored cosignatures.
    pub fn latest_cosigned(&self, at: u64) -> Result<Option<u64>> {
        let mut start = at.to_be_bytes().to_vec();
        start.extend_from_slice(&[0xff; 32]);
        let mut iter = self.db.iterator_cf(
            self.cf(CF_COSIGNATURES),
            IteratorMode::From(&start, Direction::Reverse),
        );
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (k, _) = item?;
                let arr: [u8; 8] = k
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("cosignature key", "too short"))?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created on open")
    }

    fn get_cf(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(cf), key)?)
    }

    /// The height of the last committed block; `Some(Height(0))` once only the genesis state
    /// is written, `None` for an empty store.
    pub fn latest_height(&self) -> Result<Option<Height>> {
        Ok(
            match self.latest.load(std::sync::atomic::Ordering::Acquire) {
                NO_HEIGHT => None,
                h => Some(Height(h)),
            },
        )
    }

    fn set_latest(&self, height: Height) {
        self.latest
            .store(height.0, std::sync::atomic::Ordering::Release);
    }

    /// After `update` is written: puts its internal tree nodes in the node cache, its
    /// values in the hot-key cache, and advances the latest height, the last two under the
    /// hot-key cache's lock (see [`Store::hot`]).
    fn written(&self, update: StateUpdate) {
        for at in &update.stale {
            self.tree_nodes.remove(at);
        }
        for (at, node) in &update.nodes {
            if let Written::Node(node) = node {
                self.tree_nodes.put(*at, node);
            }
        }
        let mut hot = self
            .hot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The values move into the cache: the update is done with.
        for (key, value) in update.values {
            hot.put(key.0, Hot::of(update.height.0, value));
        }
        self.set_latest(update.height);
    }

    /// How compactions keep up: files waiting at level 0, bytes left to compact, and
    /// whether writes are being held back. Compactions run at the lowest CPU priority, so on
    /// a machine with no CPU to spare they can fall behind.
    pub fn compactions(&self) -> Compactions {
        let mut c = Compactions::default();
        for name in COLUMN_FAMILIES {
            let cf = self.cf(name);
            let level0 = self
                .db
                .property_value_cf(cf, "rocksdb.num-files-at-level0")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            c.level0_files_max = c.level0_files_max.max(level0);
            c.pending_bytes = c.pending_bytes.saturating_add(
                self.db
                    .property_int_value_cf(cf, "rocksdb.estimate-pending-compaction-bytes")
                    .ok()
                    .flatten()
                    .unwrap_or(0),
            );
        }
        let int = |property: &str| {
            self.db
                .property_int_value(property)
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        c.writes_stalled =
            int("rocksdb.is-write-stopped") > 0 || int("rocksdb.actual-delayed-write-rate") > 0;
        c
    }

    /// Where the tree's updates (of candidate blocks too) found the nodes they walked,
    /// since the store was opened. Leaves are never cached, and the cache starts empty, so
    /// some reads from RocksDB are usual; a share of them that grows says the tree has
    /// outgrown its cache (`tree_cache_mib`).
    pub fn tree_reads(&self) -> TreeReads {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        TreeReads {
            cached: self.tree_reads_cached.load(relaxed),
            stored: self.tree_reads_stored.load(relaxed),
        }
    }

    /// Where blocks' writes spent their time, by part, since the store was opened.
    pub fn block_writes(&self) -> BlockWrites {
        self.block_writes.get()
    }

    /// What the store holds in memory, by part.
    pub fn memory(&self) -> MemoryUse {
        let sum = |property: &str| -> u64 {
            COLUMN_FAMILIES
                .iter()
                .filter_map(|name| {
                    self.db
                        .property_int_value_cf(self.cf(name), property)
                        .ok()
                        .flatten()
                })
                .sum()
        };
        let usize_to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        MemoryUse {
            // One cache shared by every column family: any of them reports it whole.
            block_cache: self
                .db
                .property_int_value_cf(self.cf(CF_META), "rocksdb.block-cache-usage")
                .ok()
                .flatten()
                .unwrap_or(0),
            memtables: sum("rocksdb.size-all-mem-tables"),
            table_readers: sum("rocksdb.estimate-table-readers-mem"),
            tree_nodes: usize_to_u64(self.tree_nodes.bytes()),
            hot_keys: usize_to_u64(
                self.hot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len(),
            ),
        }
    }

    /// The newest version of `key` and its value, if it was ever written.
    fn latest_value(&self, key: &KeyHash) -> Result<Option<(u64, Option<Vec<u8>>)>> {
        if let Some(Hot::Value(v, value)) = self
            .hot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key.0)
        {
            return Ok(Some((*v, value.clone())));
        }
        let Some(latest) = self.get_cf(CF_STATE_LATEST, &key.0)? else {
            return Ok(None);
        };
        let version = latest_version_in(&latest)?;
        let value = Option::<OwnedValue>::try_from_slice(&latest[8..])
            .map_err(|e| corrupt("latest state value", e))?;
        Ok(Some((version, value)))
    }

    /// Whether the version written at `version` went into `state_latest` alone, to move into
    /// `state_values` when replaced ([`Store::value_writes`]).
    fn written_once(&self, version: u64) -> bool {
        let i = self
            .value_writes
            .partition_point(|(from, _)| *from <= version);
        i > 0 && self.value_writes[i - 1].1
    }

    /// The newest version of `key`, if it was ever written, with its value's encoding (as
    /// `state_values` holds it) in `out`. For a writer: it peeks at the hot-key cache
    /// rather than refreshing it, since it puts the key back once written.
    fn latest_encoded(&self, key: &KeyHash, out: &mut Vec<u8>) -> Result<Option<u64>> {
        out.clear();
        if let Some(Hot::Value(v, value)) = self
            .hot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .peek(&key.0)
        {
            borsh::to_writer(&mut *out, value).expect("writing to a Vec does not fail");
            self.block_writes.add(REPLACED_CACHED, 1);
            return Ok(Some(*v));
        }
        self.block_writes.add(REPLACED_STORED, 1);
        let Some(latest) = self.db.get_pinned_cf(self.cf(CF_STATE_LATEST), key.0)? else {
            return Ok(None);
        };
        let version = latest_version_in(&latest)?;
        out.extend_from_slice(&latest[8..]);
        Ok(Some(version))
    }

    /// `state_latest` and `state_values`, whole, each as borsh `Vec<(key, value)>`: for the
    /// golden file ([`crate::testing::stored_state_values`]).
    pub(crate) fn state_column_families(&self) -> (Vec<u8>, Vec<u8>) {
        let dump = |name| -> Vec<u8> {
            let entries: Vec<(Vec<u8>, Vec<u8>)> = self
                .db
                .iterator_cf(self.cf(name), IteratorMode::Start)
                .map(|e| e.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<std::result::Result<_, _>>()
                .expect("reading a store just written");
            codec::encode(&entries)
        };
        (dump(CF_STATE_LATEST), dump(CF_STATE_VALUES))
    }

    /// The latest height as written in the store.
    fn stored_latest_height(&self) -> Result<Option<Height>> {
        match self.get_cf(CF_META, KEY_LATEST_HEIGHT)? {
            None => Ok(None),
            Some(bytes) => {
                let arr: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("latest height", "not 8 bytes"))?;
                Ok(Some(Height(u64::from_be_bytes(arr))))
            }
        }
    }

    /// Puts `update` into `batch`; returns the nanoseconds spent reading the values it
    /// replaces (counted by [`Store::commit_block_with_ids`]).
    fn put_state(&self, batch: &mut WriteBatch, update: &StateUpdate) -> Result<u64> {
        // In key order: each insert into RocksDB's memtable then starts from where the last
        // one ended, rather than searching the whole skip list (`write_options`); a block's
        // nodes share its version, so they land side by side. The values below are in key
        // order already.
        let mut nodes: Vec<_> = update
            .nodes
            .iter()
            .map(|(at, node)| (at.key(), node))
            .collect();
        nodes.sort_unstable_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        // One buffer for all: RocksDB copies each value into the batch.
        let mut encoded = Vec::with_capacity(1024);
        for (key, node) in nodes {
            encoded.clear();
            node.encode_into(&mut encoded);
            batch.put_cf(self.cf(CF_STATE_NODES), key, &encoded);
        }
        let prunable = self.history == History::Prunable;
        let mut stale = StaleList::default();
        if prunable {
            stale.nodes = update
                .stale
                .iter()
                .map(|at| at.key().as_ref().to_vec())
                .collect();
            // Sorted for pruning's deletions, for the same reason.
            stale.nodes.sort_unstable();
        }
        let version = update.height.0;
        // A pruned store writes a value once, as its key's newest (`state_latest`); the
        // version it replaces, if the key had one, moves to `state_values` for reads below
        // `version`, and the block's stale list names it, so that pruning deletes it without
        // a read once `version` leaves the window (with a window shorter than a memtable's
        // life, most such versions and their deletions meet in the memtable). An archive
        // store, which never deletes a version, writes each into both at once and need not
        // read the one it replaces, unless a pruned span wrote it ([`Store::value_writes`]).
        let read_replaced = prunable || self.value_writes.iter().any(|s| s.1);
        let mut replaced_value = Vec::new();
        let mut reading = std::time::Duration::ZERO;
        for (key, value) in &update.values {
            // Height 0 (the genesis) replaces nothing, whatever a store left half-restored
            // may hold.
            let replaced = if version > 0 && read_replaced {
                let started = std::time::Instant::now();
                let replaced = self.latest_encoded(&KeyHash(key.0), &mut replaced_value)?;
                reading += started.elapsed();
                replaced
            } else {
                None
            };
            if let Some(replaced) = replaced {
                if self.written_once(replaced) {
                    batch.put_cf(
                        self.cf(CF_STATE_VALUES),
                        value_key(&KeyHash(key.0), replaced),
                        &replaced_value,
                    );
                }
                if prunable {
                    stale.values.push((key.0, replaced));
                }
            }
            let mut latest = version.to_be_bytes().to_vec();
            borsh::to_writer(&mut latest, value).expect("writing to a Vec does not fail");
            if !prunable {
                batch.put_cf(
                    self.cf(CF_STATE_VALUES),
                    value_key(&KeyHash(key.0), version),
                    &latest[8..],
                );
            }
            batch.put_cf(self.cf(CF_STATE_LATEST), key.0, latest);
        }
        if stale != StaleList::default() {
            batch.put_cf(
                self.cf(CF_STATE_STALE),
                stale_key(version, STALE_BLOCK, &[]),
                codec::encode(&stale),
            );
        }
        batch.put_cf(
            self.cf(CF_META),
            KEY_LATEST_HEIGHT,
            update.height.0.to_be_bytes(),
        );
        Ok(u64::try_from(reading.as_nanos()).unwrap_or(u64::MAX))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut opts = write_options();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// [`Store::write`] for a block, its time counted by part: RocksDB's own timers run
    /// (on this thread) for this write alone.
    fn write_block(&self, batch: WriteBatch) -> Result<()> {
        use rocksdb::perf::{set_perf_stats, PerfContext, PerfMetric, PerfStatsLevel};
        let started = std::time::Instant::now();
        let mut perf = PerfContext::default();
        perf.reset();
        // rocksdb 0.24's levels predate RocksDB 10's `kEnableWait` (3), so each of its
        // values is the level below: this one is RocksDB's `kEnableTimeExceptForMutex`,
        // which times the log's write (its "EnableTimeExceptForMutex" times only waits).
        // A store test checks that the log's time is counted.
        set_perf_stats(PerfStatsLevel::EnableTimeAndCPUTimeExceptForMutex);
        let written = self.write(batch);
        set_perf_stats(PerfStatsLevel::Disable);
        let total = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let wal = perf.metric(PerfMetric::WriteWalTime);
        let memtable = perf.metric(PerfMetric::WriteMemtableTime);
        let delay = perf.metric(PerfMetric::WriteDelayTime);
        self.block_writes.add(WAL, wal);
        self.block_writes.add(MEMTABLE, memtable);
        self.block_writes.add(DELAY, delay);
        self.block_writes.add(
            WRITE_OTHER,
            total.saturating_sub(wal.saturating_add(memtable).saturating_add(delay)),
        );
        written
    }

    /// Writes the genesis state as height 0. Only into an empty store.
    pub fn commit_genesis(&self, update: StateUpdate) -> Result<()> {
        let _writer = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = self.latest_height()? {
            return Err(Error::Storage(format!(
                "genesis into a store already at height {h}"
            )));
        }
        if update.height != Height(0) {
            return Err(Error::Storage(format!(
                "genesis state at height {}",
                update.height
            )));
        }
        let mut batch = WriteBatch::default();
        self.put_state(&mut batch, &update)?;
        self.write(batch)?;
        self.written(update);
        Ok(())
    }

    /// Writes a decided block with its commit certificate and the state after it, as one
    /// synced batch. The block must be the next height, the commit must name its height and
    /// hash, and the update's root must be the header's state root. Checking the commit's
    /// signatures and the block's body is the caller's work, done before it executed it.
    /// `results` is stored as given, for [`Store::results`].
    pub fn commit_block(
        &self,
        block: &Block,
        commit: &Commit,
        update: StateUpdate,
        results: &[u8],
    ) -> Result<()> {
        let ids: Vec<Hash> = block.txs.iter().map(Transaction::id).collect();
        self.commit_block_with_ids(block, commit, update, results, &ids)
    }

    /// [`Store::commit_block`] with the ids of the block's transactions, in order
    /// (`Block::checked_ids`), which index them (a list of another length is refused).
    pub fn commit_block_with_ids(
        &self,
        block: &Block,
        commit: &Commit,
        update: StateUpdate,
        results: &[u8],
        ids: &[Hash],
    ) -> Result<()> {
        let _writer = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = std::time::Instant::now();
        let height = block.height();
        let hash = block.hash();
        let latest = self.latest_height()?;
        let expected = latest.map(Height::next);
        let refuse =
            |why: String| Err(Error::Storage(format!("block {height} not written: {why}")));
        if expected != Some(height) {
            return refuse(format!("the store is at {latest:?}"));
        }
        if update.height != height {
            return refuse(format!("state update is for height {}", update.height));
        }
        if update.root != block.header.state_root {
            return refuse(format!(
                "state root {} differs from the header's {}",
                update.root, block.header.state_root
            ));
        }
        if commit.height != height || commit.block != hash {
            return refuse(format!(
                "commit is for block {} at {}",
                commit.block, commit.height
            ));
        }
        if ids.len() != block.txs.len() {
            return refuse(format!(
                "{} ids for {} transactions",
                ids.len(),
                block.txs.len()
            ));
        }
        let key = height.0.to_be_bytes();
        let encoded = block.encode();
        // Sized up front: a large block's batch grows to megabytes, and each doubling of
        // RocksDB's buffer copies all of it.
        let mut batch = WriteBatch::with_capacity_bytes(
            encoded.len() + results.len() + batch_bytes_estimate(ids.len(), &update),
        );
        batch.put_cf(self.cf(CF_BLOCKS), key, encoded);
        batch.put_cf(self.cf(CF_COMMITS), key, codec::encode(commit));
        batch.put_cf(self.cf(CF_BLOCK_HASHES), hash.0, key);
        batch.put_cf(self.cf(CF_RESULTS), key, results);
        let size = self.block_log_size()?;
        if size != height.0 - 1 {
            return refuse(format!("the block log holds {size} blocks"));
        }
        for (level, index, h) in blocklog::append(self, size, &hash)? {
            batch.put_cf(self.cf(CF_BLOCK_LOG), log_key(level, index), h.0);
        }
        batch.put_cf(self.cf(CF_META), KEY_BLOCK_LOG_SIZE, height.0.to_be_bytes());
        // In id order, as the state's keys below: each insert into the memtable's skip list
        // starts from where the one before ended.
        let mut located: Vec<(&Hash, u32)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let index = u32::try_from(i).expect("blocks hold fewer than 2^32 transactions");
                (id, index)
            })
            .collect();
        located.sort_unstable();
        for (id, index) in located {
            batch.put_cf(
                self.cf(CF_TXS),
                id.0,
                codec::encode(&TxLocation { height, index }),
            );
        }
        let reads = self.put_state(&mut batch, &update)?;
        self.block_writes.add(READ_REPLACED, reads);
        let building = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.block_writes.add(BUILD, building.saturating_sub(reads));
        self.write_block(batch)?;
        let publishing = std::time::Instant::now();
        self.written(update);
        self.block_writes.add_time(PUBLISH, publishing);
        Ok(())
    }

    pub fn block(&self, height: Height) -> Result<Option<Block>> {
        Ok(self.block_with_len(height)?.map(|(block, _)| block))
    }

    /// The block at `height` and the length of its encoding.
    pub fn block_with_len(&self, height: Height) -> Result<Option<(Block, usize)>> {
        self.get_cf(CF_BLOCKS, &height.0.to_be_bytes())?
            .map(|b| {
                let block = Block::decode(&b).map_err(|e| corrupt("block", e))?;
                Ok((block, b.len()))
            })
            .transpose()
    }

    pub fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>> {
        match self.get_cf(CF_BLOCK_HASHES, &hash.0)? {
            None => Ok(None),
            Some(h) => {
                let arr: [u8; 8] = h
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("block index", "not 8 bytes"))?;
                self.block(Height(u64::from_be_bytes(arr)))
            }
        }
    }

    pub fn commit(&self, height: Height) -> Result<Option<Commit>> {
        self.get_cf(CF_COMMITS, &height.0.to_be_bytes())?
            .map(|b| {
                codec::decode("commit", &b, Commit::BYTES_MAX).map_err(|e| corrupt("commit", e))
            })
            .transpose()
    }

    /// The results stored with the block at `height`.
    pub fn results(&self, height: Height) -> Result<Option<Vec<u8>>> {
        self.get_cf(CF_RESULTS, &height.0.to_be_bytes())
    }

    /// The values `key` was given (set, or deleted: `None`) and the heights at which, oldest
    /// first, at most `limit` of them: the history of one state value without reading any
    /// block. A pruned store keeps the whole history only of the keys it was told to keep
    /// ([`Store::prune`]).
    pub fn history_of(&self, key: &Hash, limit: usize) -> Result<Vec<(Height, Option<Vec<u8>>)>> {
        // One snapshot for both column families: a block written meanwhile moves the
        // newest version from one to the other.
        let snapshot = self.db.snapshot();
        let start = value_key(&KeyHash(key.0), 0);
        let iter = snapshot.iterator_cf(
            self.cf(CF_STATE_VALUES),
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if k.len() != 40 || k[..32] != key.0 || out.len() >= limit {
                break;
            }
            let mut version = [0u8; 8];
            version.copy_from_slice(&k[32..]);
            let value =
                Option::<Vec<u8>>::try_from_slice(&v).map_err(|e| corrupt("state value", e))?;
            out.push((Height(u64::from_be_bytes(version)), value));
        }
        if out.len() < limit {
            if let Some(latest) = snapshot.get_cf(self.cf(CF_STATE_LATEST), key.0)? {
                let version = latest_version_in(&latest)?;
                // A version written in an archive span is in `state_values` as well.
                if out.last().is_none_or(|(h, _)| h.0 < version) {
                    let value = Option::<Vec<u8>>::try_from_slice(&latest[8..])
                        .map_err(|e| corrupt("latest state value", e))?;
                    out.push((Height(version), value));
                }
            }
        }
        Ok(out)
    }

    pub fn tx_location(&self, id: &Hash) -> Result<Option<TxLocation>> {
        self.get_cf(CF_TXS, &id.0)?
            .map(|b| codec::decode("tx location", &b, 64).map_err(|e| corrupt("tx location", e)))
            .transpose()
    }

    /// A committed transaction by id, with where it is.
    pub fn tx(&self, id: &Hash) -> Result<Option<(TxLocation, Transaction)>> {
        let Some(loc) = self.tx_location(id)? else {
            return Ok(None);
        };
        let block = self.block(loc.height)?.ok_or_else(|| {
            corrupt(
                "tx index",
                format!("points at missing block {}", loc.height),
            )
        })?;
        let tx = block
            .txs
            .into_iter()
            .nth(loc.index as usize)
            .ok_or_else(|| {
                corrupt(
                    "tx index",
                    format!("points past the end of block {}", loc.height),
                )
            })?;
        Ok(Some((loc, tx)))
    }

    /// Prepares the next height's state and commits it with nothing else: for tests and
    /// tools that keep state without blocks.
    pub fn commit_state_only(&self, changes: &StateChanges) -> Result<Hash> {
        let _writer = self
            .write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let height = self.latest_height()?.map_or(Height(0), Height::next);
        let update = self.prepare(changes, height)?;
        let root = update.root;
        let mut batch = WriteBatch::default();
        self.put_state(&mut batch, &update)?;
        self.write(batch)?;
        self.written(update);
        Ok(root)
    }

    /// Up to [`CHUNK_ENTRIES_MAX`] entries (and about [`CHUNK_BYTES_MAX`] bytes) of the
    /// state at `height` whose keys follow `after` (from the first key with `None`), in key
    /// order, with their range proof; `None` past the last key. Walks the tree of that
    /// height, so any height the store keeps can be served.
    pub fn snapshot_chunk(&self, height: Height, after: Option<&Hash>) -> Result<Option<Chunk>> {
        self.read_state(height, || {
            let start = match after {
                None => [0u8; 32],
                Some(key) => match next_key(key) {
                    Some(k) => k,
                    None => return Ok(None),
                },
            };
            let reader = std::sync::Arc::new(Nodes(self));
            let iter = JellyfishMerkleIterator::new(
                std::sync::Arc::clone(&reader),
                height.0,
                KeyHash(start),
            )
            .map_err(state_err)?;
            let mut entries = Vec::new();
            let mut bytes = 0usize;
            for item in iter {
                let (key, value) = item.map_err(state_err)?;
                bytes += 32 + value.len();
                entries.push((Hash(key.0), value));
                if entries.len() >= CHUNK_ENTRIES_MAX || bytes >= CHUNK_BYTES_MAX {
                    break;
                }
            }
            let Some((last, _)) = entries.last() else {
                return Ok(None);
            };
            let proof = Sha256Jmt::new(reader.as_ref())
                .get_range_proof(KeyHash(last.0), height.0)
                .map_err(state_err)?;
            Ok(Some(Chunk {
                entries,
                proof: RangeProof(proof),
            }))
        })
    }

    /// How many keys the state at `height` holds (the leaf count of its root).
    pub fn state_entries(&self, height: Height) -> Result<u64> {
        self.read_state(height, || {
            let count = Sha256Jmt::new(self)
                .get_leaf_count(height.0)
                .map_err(state_err)?;
            Ok(count as u64)
        })
    }

    /// Starts restoring the state at `height`, whose root is `root`, into this store, which
    /// must be empty. Chunks are written as they come, unsynced; [`Restore::finish`] makes
    /// the store whole in one synced write. A store left by an unfinished restore holds no
    /// height and is to be thrown away: restore into a new folder and move it in place. It
    /// is refused here, since a restore over it would write its nodes and values a second
    /// time, and pruning deletes each with a single deletion, which assumes one write.
    pub fn restore(self: &std::sync::Arc<Self>, height: Height, root: Hash) -> Result<Restore> {
        if let Some(h) = self.latest_height()? {
            return Err(Error::Storage(format!(
                "restoring a snapshot into a store that holds height {h}"
            )));
        }
        for cf in [CF_STATE_NODES, CF_STATE_VALUES, CF_STATE_LATEST] {
            if self
                .db
                .iterator_cf(self.cf(cf), IteratorMode::Start)
                .next()
                .transpose()?
                .is_some()
            {
                return Err(Error::Storage(
                    "restoring a snapshot into a store that an unfinished restore left: \
                     restore into a new folder"
                        .into(),
                ));
            }
        }
        let writer = std::sync::Arc::new(RestoreWriter(std::sync::Arc::clone(self)));
        let tree = JellyfishMerkleRestore::new_overwrite(writer, height.0, RootHash(root.0))
            .map_err(state_err)?;
        Ok(Restore {
            store: std::sync::Arc::clone(self),
            height,
            tree,
            last: None,
            entries: 0,
        })
    }

    /// In a store restored from a snapshot, the validator-set changes up to the snapshot's
    /// block, included (the store holds none of their blocks but the last).
    pub fn restored_set_changes(&self) -> Result<Option<Vec<SetChange>>> {
        self.get_cf(CF_META, KEY_RESTORED)?
            .map(|b| {
                codec::decode("restored set changes", &b, usize::MAX)
                    .map_err(|e| corrupt("restored set changes", e))
            })
            .transpose()
    }

    /// Keeps every version of `keys` when pruning, and answers reads of their values at
    /// any committed height (not their proofs, which need the tree of that height): for
    /// values that execution reads in the past, such as the validator set of an earlier
    /// height, and that proof bundles replay from the genesis.
    pub fn keep_history_of(&mut self, keys: &[Hash]) {
        self.kept = keys.to_vec();
    }

    /// The oldest height whose state this store keeps (0 unless pruned). Blocks, commits
    /// and results are kept from the first height whatever this is.
    pub fn oldest_state(&self) -> Height {
        Height(self.oldest.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Checks that the state at `height` is stored: committed, and not pruned.
    fn check_state_height(&self, height: Height) -> Result<()> {
        if self.latest_height()?.is_none_or(|l| height > l) {
            return Err(Error::HeightNotFound(height));
        }
        self.not_pruned(height)
    }

    fn not_pruned(&self, height: Height) -> Result<()> {
        let oldest = self.oldest_state();
        if height < oldest {
            return Err(Error::Pruned { height, oldest });
        }
        Ok(())
    }

    /// Reads the state at `height` with `read`, checking the height before and after: a
    /// read that [`Store::prune`] overtook fails as pruned rather than answering from a
    /// half-deleted height.
    fn read_state<T>(&self, height: Height, read: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_state_height(height)?;
        let out = read();
        self.not_pruned(height)?;
        out
    }

    /// Deletes the states of the heights before `oldest`: tree nodes that no tree from
    /// `oldest` on uses, and value versions that no read at `oldest` or later sees, except
    /// the versions of the keys kept by [`Store::keep_history_of`]. Reads of a height before `oldest` fail with
    /// [`Error::Pruned`] from the moment this is called: the new oldest height is written,
    /// synced, before anything is deleted. Stops before the next entry once it has deleted
    /// `limit` nodes and values (a block's list is deleted whole, and is bounded by that
    /// block's own writes), so that a caller in the background can stop between calls; the deletes are one
    /// batch, not synced (after a crash the next call deletes them again). Only what a
    /// [`History::Prunable`] store indexed is deleted.
    pub fn prune(&self, oldest: Height, limit: usize) -> Result<PruneStep> {
        let latest = self
            .latest_height()?
            .ok_or_else(|| Error::Storage("pruning an empty store".into()))?;
        if oldest > latest {
            return Err(Error::Storage(format!(
                "pruning to height {oldest} would delete the latest state, at {latest}"
            )));
        }
        if oldest > self.oldest_state() {
            let mut batch = WriteBatch::default();
            batch.put_cf(self.cf(CF_META), KEY_OLDEST_STATE, oldest.0.to_be_bytes());
            self.write(batch)?;
            self.oldest
                .store(oldest.0, std::sync::atomic::Ordering::SeqCst);
        }
        let oldest = self.oldest_state();
        let mut cursor = self
            .prune_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries stale since `oldest` or earlier: keys below `oldest + 1`.
        let end = (oldest.0 + 1).to_be_bytes();
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_upper_bound(end.to_vec());
        let iter = self.db.iterator_cf_opt(
            self.cf(CF_STATE_STALE),
            opts,
            IteratorMode::From(&cursor, Direction::Forward),
        );
        let mut batch = WriteBatch::default();
        // A block's stale nodes and value versions were each written once, by one block,
        // and are deleted once, here: single deletions, which vanish with their write
        // where the two meet instead of leaving tombstones (ADR 0012, amendment of
        // 2026-12-05). The older kinds of entry keep plain deletions.
        let mut singles = SingleDeletes::default();
        let mut entries = 0;
        let mut last: Option<Box<[u8]>> = None;
        let mut done = true;
        for item in iter {
            let (k, v) = item?;
            if entries >= limit {
                done = false;
                break;
            }
            let (Some(since), Some(kind)) = (
                k.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
                k.get(8),
            ) else {
                return Err(corrupt("stale state entry", "too short"));
            };
            match *kind {
                STALE_BLOCK => {
                    let list: StaleList =
                        borsh::from_slice(&v).map_err(|e| corrupt("block's stale list", e))?;
                    for node in &list.nodes {
                        singles.delete(self.nodes_family, node);
                    }
                    for (key, replaced) in &list.values {
                        if !self.kept.contains(&Hash(*key)) {
                            singles
                                .delete(self.values_family, &value_key(&KeyHash(*key), *replaced));
                        }
                    }
                    // The list counts as what it holds; it is handled whole.
                    entries += (list.nodes.len() + list.values.len()).saturating_sub(1);
                    // Written once, by its block, like what it names.
                    singles.delete(self.stale_family, &k);
                }
                STALE_NODE => {
                    batch.delete_cf(self.cf(CF_STATE_NODES), &k[9..]);
                    batch.delete_cf(self.cf(CF_STATE_STALE), &k);
                }
                STALE_VALUE => {
                    let key = <[u8; 32]>::try_from(&k[9..])
                        .map_err(|_| corrupt("stale value entry", "not a key hash"))?;
                    if !self.kept.contains(&Hash(key)) {
                        match <[u8; 8]>::try_from(&v[..]) {
                            Ok(replaced) => batch.delete_cf(
                                self.cf(CF_STATE_VALUES),
                                value_key(&KeyHash(key), u64::from_be_bytes(replaced)),
                            ),
                            // Written before entries named the version they replace.
                            Err(_) if v.is_empty() => {
                                self.delete_version_before(&mut batch, &key, since)?;
                            }
                            Err(_) => return Err(corrupt("stale value entry", "bad version")),
                        }
                    }
                    batch.delete_cf(self.cf(CF_STATE_STALE), &k);
                }
                _ => return Err(corrupt("stale state entry", "unknown kind")),
            }
            entries += 1;
            last = Some(k);
        }
        if let Some(last) = last {
            // The entries handled go in the same batch as what they name. Each is deleted
            // by its key: a range deletion per call (this ran after every block) left so
            // many range tombstones in the memtable that opening the iterator above, which
            // must sort them all, took a quarter of pruning's time.
            let mut next = last.to_vec();
            next.push(0);
            self.db
                .write_opt(singles.append_to(batch), &write_options())?;
            *cursor = next;
        }
        Ok(PruneStep { entries, done })
    }

    /// Adds to `batch` the deletion of `key`'s newest value version before `since`. Entries
    /// are handled in height order, so the versions before that one went when the entry
    /// of that version was handled: one seek, whatever the key's history (a store that
    /// became prunable later keeps what it wrote before).
    fn delete_version_before(
        &self,
        batch: &mut WriteBatch,
        key: &[u8; 32],
        since: [u8; 8],
    ) -> Result<()> {
        let Some(before) = u64::from_be_bytes(since).checked_sub(1) else {
            return Ok(());
        };
        let seek = value_key(&KeyHash(*key), before);
        let mut iter = self.db.iterator_cf(
            self.cf(CF_STATE_VALUES),
            IteratorMode::From(&seek, Direction::Reverse),
        );
        if let Some(item) = iter.next() {
            let (k, _) = item?;
            if k.len() == 40 && k[..32] == key[..] {
                batch.delete_cf(self.cf(CF_STATE_VALUES), k);
            }
        }
        Ok(())
    }
}

/// How the store writes: unsynced unless the caller says otherwise. A batch's keys go into
/// each memtable in key order (a block's tree nodes, its values, pruning's deletions), so
/// that each insert starts from where the last one ended rather than searching the skip
/// list from the top (`InlineSkipList::RecomputeSpliceLevels`, 9% of a validator's CPU at
/// 1,500 tx/s before). A write alone reuses the last insert's place anyway; the hint keeps
/// it per batch when RocksDB writes the block's batch and pruning's in one group.
fn write_options() -> WriteOptions {
    let mut opts = WriteOptions::default();
    opts.set_memtable_insert_hint_per_batch(true);
    opts
}

/// The spans of value writes of a store opened with `stored`, `next` the first height it
/// will write, in a pruned mode (`once`) or not: a new span at `next` if the last is of the
/// other mode, in place of the last if nothing was written in it (it starts at `next`).
fn value_writes_from(stored: &[(u64, bool)], next: u64, once: bool) -> Vec<(u64, bool)> {
    let mut spans = stored.to_vec();
    if spans.last().is_some_and(|s| s.1 != once) {
        if spans.last().is_some_and(|s| s.0 == next) {
            spans.pop();
        }
        if spans.last().is_none_or(|s| s.1 != once) {
            spans.push((next, once));
        }
    }
    spans
}

/// A `state_stale` key: the version that made it stale (u64 BE), the kind of entry, then
/// the node key or the key hash.
fn stale_key(version: u64, kind: u8, what: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + what.len());
    k.extend_from_slice(&version.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(what);
    k
}

/// The version at the head of a `state_latest` value (`version u64 BE ‖ value`).
fn latest_version_in(latest: &[u8]) -> Result<u64> {
    latest
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("latest state value", "no version"))
}

fn value_key(key: &KeyHash, version: Version) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&key.0);
    out[32..].copy_from_slice(&version.to_be_bytes());
    out
}

/// The key after `key`, if any.
fn next_key(key: &Hash) -> Option<[u8; 32]> {
    let mut out = key.0;
    for byte in out.iter_mut().rev() {
        if *byte == u8::MAX {
            *byte = 0;
        } else {
            *byte += 1;
            return Some(out);
        }
    }
    None
}

/// A store's tree, for jmt's iterator (which wants it in an `Arc`).
struct Nodes<'a>(&'a Store);

impl TreeReader for Nodes<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.0.get_node_option(node_key)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        self.0.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.0.get_rightmost_leaf()
    }
}

/// Writes what jmt's restore freezes: nodes, and values as the newest version of their keys.
struct RestoreWriter(std::sync::Arc<Store>);

impl TreeWriter for RestoreWriter {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let store = &self.0;
        let mut wb = WriteBatch::default();
        for (key, node) in batch.nodes() {
            // Stored as the store writes a block's nodes.
            let node = TreeNode::decode(&codec::encode(node))?;
            wb.put_cf(store.cf(CF_STATE_NODES), codec::encode(key), node.encode());
        }
        // Values as a block of the store's mode writes them (`Store::put_state`).
        let once = store.history == History::Prunable;
        for ((version, key), value) in batch.values() {
            let mut latest = version.to_be_bytes().to_vec();
            borsh::to_writer(&mut latest, value).expect("writing to a Vec does not fail");
            if !once {
                wb.put_cf(
                    store.cf(CF_STATE_VALUES),
                    value_key(key, *version),
                    &latest[8..],
                );
            }
            wb.put_cf(store.cf(CF_STATE_LATEST), key.0, latest);
        }
        store.db.write(wb)?;
        Ok(())
    }
}

/// A state being restored from snapshot chunks ([`Store::restore`]).
pub struct Restore {
    store: std::sync::Arc<Store>,
    height: Height,
    tree: JellyfishMerkleRestore<Sha256>,
    last: Option<Hash>,
    entries: u64,
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("height", &self.height)
            .field("last", &self.last)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Restore {
    /// The last key restored, after which the next chunk starts.
    pub fn last_key(&self) -> Option<Hash> {
        self.last
    }

    /// Entries restored so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Adds the next chunk, after checking its order and its range proof against the
    /// root. A chunk that fails leaves the restore unusable: start again.
    pub fn add(&mut self, chunk: Chunk) -> Result<()> {
        chunk.check_order(self.last.as_ref())?;
        let last = chunk.last_key();
        let n = chunk.entries.len() as u64;
        let entries = chunk
            .entries
            .into_iter()
            .map(|(k, v)| (KeyHash(k.0), v))
            .collect();
        self.tree.add_chunk(entries, chunk.proof.0).map_err(|e| {
            Error::invalid(
                "snapshot",
                format!(
                    "the chunk after {} entries does not prove against the state root: {e:#}",
                    self.entries
                ),
            )
        })?;
        self.last = last;
        self.entries += n;
        Ok(())
    }

    /// Completes the restore of `manifest`'s state (the caller verified the manifest):
    /// checks the count and the rebuilt root, then writes, as one synced batch, the
    /// snapshot's block and commit, the block log's complete subtrees and cosignatures,
    /// `kept` (past versions of the keys whose history is kept, below the snapshot's
    /// height), and the new latest and oldest heights.
    pub fn finish(
        self,
        manifest: &Manifest,
        kept: &[(Hash, Height, Option<Vec<u8>>)],
    ) -> Result<()> {
        let Restore {
            store,
            height,
            tree,
            entries,
            ..
        } = self;
        let refuse = |why: String| Err(Error::invalid("snapshot", why));
        if manifest.height() != height {
            return refuse(format!(
                "the manifest is of height {}, the restore of {height}",
                manifest.height()
            ));
        }
        if entries != manifest.entries {
            return refuse(format!(
                "{entries} entries restored; the manifest says {}",
                manifest.entries
            ));
        }
        tree.finish().map_err(state_err)?;
        let root = state::root_of(store.as_ref(), height)?;
        if root != manifest.state_root() {
            return refuse(format!(
                "the restored state root {root} is not the header's {}",
                manifest.state_root()
            ));
        }
        // The manifest's set changes must be all of the chain's (format version 14).
        manifest
            .check_set_history_in(|key| state::get_of(store.as_ref(), Some(height), key, height))?;
        let block = &manifest.block;
        let key = height.0.to_be_bytes();
        let mut batch = WriteBatch::default();
        batch.put_cf(store.cf(CF_BLOCKS), key, block.encode());
        batch.put_cf(store.cf(CF_COMMITS), key, codec::encode(&manifest.commit));
        batch.put_cf(store.cf(CF_BLOCK_HASHES), block.hash().0, key);
        for (i, tx) in block.txs.iter().enumerate() {
            let index = u32::try_from(i).expect("blocks hold fewer than 2^32 transactions");
            batch.put_cf(
                store.cf(CF_TXS),
                tx.id().0,
                codec::encode(&TxLocation { height, index }),
            );
        }
        for ((level, index), hash) in blocklog::frontier_positions(height.0)
            .into_iter()
            .zip(&manifest.log)
        {
            batch.put_cf(store.cf(CF_BLOCK_LOG), log_key(level, index), hash.0);
        }
        batch.put_cf(store.cf(CF_META), KEY_BLOCK_LOG_SIZE, key);
        for c in &manifest.cosignatures {
            let mut k = key.to_vec();
            k.extend_from_slice(&c.key.0);
            let mut value = c.timestamp.to_be_bytes().to_vec();
            value.extend_from_slice(&c.signature.0);
            batch.put_cf(store.cf(CF_COSIGNATURES), k, value);
        }
        // Each version once: pruning would delete it with a single deletion, which must
        // meet one write (a history may list a version twice).
        let mut written = std::collections::BTreeSet::new();
        for (k, version, value) in kept {
            if *version < height && written.insert((k.0, version.0)) {
                batch.put_cf(
                    store.cf(CF_STATE_VALUES),
                    value_key(&KeyHash(k.0), version.0),
                    codec::encode(value),
                );
            }
        }
        let mut changes = manifest.validator_changes.clone();
        changes.push(SetChange {
            header: block.header.clone(),
            commit: manifest.commit.clone(),
            next_validators: manifest.next_validators.clone(),
        });
        batch.put_cf(store.cf(CF_META), KEY_RESTORED, codec::encode(&changes));
        batch.put_cf(store.cf(CF_META), KEY_OLDEST_STATE, key);
        batch.put_cf(store.cf(CF_META), KEY_LATEST_HEIGHT, key);
        store.write(batch)?;
        store
            .oldest
            .store(height.0, std::sync::atomic::Ordering::SeqCst);
        store.set_latest(height);
        Ok(())
    }
}

impl TreeReader for Store {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        // From the tree cache when it holds the node (without adding to it or reordering it:
        // a proof at a past height, a snapshot's walk, reads nodes no update will); jmt
        // reads its own encoding of a node.
        let at = NodeAt::decode(&codec::encode(node_key))?;
        let node = match self.tree_nodes.peek(&at) {
            Some(node) => node,
            None => match self.db.get_pinned_cf(self.cf(CF_STATE_NODES), at.key())? {
                None => return Ok(None),
                Some(bytes) => Arc::new(TreeNode::decode(&bytes)?),
            },
        };
        Ok(Some(Node::try_from_slice(&node.encode_jmt())?))
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        // The newest version first (from memory for a hot key): it answers any read at or
        // after it.
        match self.latest_value(&key_hash)? {
            None => return Ok(None),
            Some((version, value)) if version <= max_version => return Ok(value),
            Some(_) => {}
        }
        let seek = value_key(&key_hash, max_version);
        let mut iter = self.db.iterator_cf(
            self.cf(CF_STATE_VALUES),
            IteratorMode::From(&seek, Direction::Reverse),
        );
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                if k.len() != 40 || k[..32] != key_hash.0 {
                    return Ok(None);
                }
                Ok(Option::<OwnedValue>::try_from_slice(&v)?)
            }
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's resuming restore asks for it; snapshots are restored with
        // `new_overwrite`, from the start (ADR 0014).
        anyhow::bail!("resuming an interrupted restore is not supported: restore again")
    }
}

impl NodeSource for Store {
    fn node(&self, at: &NodeAt) -> Result<Option<Arc<TreeNode>>> {
        if let Some(node) = self.tree_nodes.get(at) {
            self.tree_reads_cached
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(Some(node));
        }
        self.tree_reads_stored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(bytes) = self.db.get_pinned_cf(self.cf(CF_STATE_NODES), at.key())? else {
            return Ok(None);
        };
        let node = Arc::new(TreeNode::decode(&bytes)?);
        // A commit may have made this node stale since it was read: kept anyway, it is
        // never asked for again (no tree from then on points to it) and leaves the cache as
        // the least recently used.
        self.tree_nodes.put(*at, &node);
        Ok(Some(node))
    }
}

impl AuthenticatedState for Store {
    fn state_root(&self, height: Height) -> Result<Hash> {
        self.read_state(height, || state::root_of(self, height))
    }

    fn get(&self, key: &Hash, height: Height) -> Result<Option<Vec<u8>>> {
        if self.kept.contains(key) {
            // Every version is kept: the height need only be committed.
            return state::get_of(self, self.latest_height()?, key, height);
        }
        self.read_state(height, || {
            state::get_of(self, self.latest_height()?, key, height)
        })
    }

    fn get_with_proof(&self, key: &Hash, height: Height) -> Result<(Option<Vec<u8>>, StateProof)> {
        self.read_state(height, || state::prove_of(self, key, height))
    }

    fn prepare(&self, changes: &StateChanges, height: Height) -> Result<StateUpdate> {
        state::prepare_of(self, self.latest_height()?, changes, height)
    }
}

/// About how many bytes a block's write batch takes beyond the block and its results: each
/// transaction's index entry, and the state update's nodes (an internal node's encoding
/// averages a few hundred bytes) and values (the new, and the one each replaces), with
/// RocksDB's few bytes of framing per entry. An estimate, to size the batch's buffer once.
fn batch_bytes_estimate(txs: usize, update: &StateUpdate) -> usize {
    let values: usize = update
        .values
        .iter()
        .map(|(_, v)| 2 * (v.as_ref().map_or(0, Vec::len) + 64))
        .sum();
    4096 + txs * 64 + update.nodes.len() * 192 + update.stale.len() * 48 + values
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::state::state_key;
    use std::collections::BTreeMap;

    /// Rewrites `store` as a store of layout 2 would hold it: every version of every value
    /// in `state_values`, the newest too, and no mark of layout 3.
    fn as_layout_2(store: &Store) {
        let latest: Vec<_> = store
            .db
            .iterator_cf(store.cf(CF_STATE_LATEST), IteratorMode::Start)
            .map(Result::unwrap)
            .collect();
        for (k, v) in latest {
            let key = KeyHash(<[u8; 32]>::try_from(&k[..]).unwrap());
            let version = latest_version_in(&v).unwrap();
            store
                .db
                .put_cf(store.cf(CF_STATE_VALUES), value_key(&key, version), &v[8..])
                .unwrap();
        }
        let meta = store.cf(CF_META);
        store
            .db
            .put_cf(meta, KEY_STORE_LAYOUT, 2u64.to_be_bytes())
            .unwrap();
        store.db.delete_cf(meta, KEY_VALUE_WRITES).unwrap();
    }

    /// A store written before `state_latest` existed fills it on open, in several batches,
    /// and reads the same values afterwards.
    #[test]
    fn a_store_without_latest_values_fills_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = |i: u32| state_key("t", &i.to_be_bytes());
        {
            let store = Store::open(dir.path()).unwrap();
            store.commit_state_only(&StateChanges::new()).unwrap();
            for round in 0..2u8 {
                let changes = (0..15_000)
                    .map(|i| (key(i), (i % 7 != 0 || round == 0).then(|| vec![round; 3])))
                    .collect();
                store.commit_state_only(&changes).unwrap();
            }
            // As a store from before: every version in `state_values`, no latest values,
            // no mark.
            as_layout_2(&store);
            store
                .db
                .delete_cf(store.cf(CF_META), KEY_STORE_LAYOUT)
                .unwrap();
            let cf = store.cf(CF_STATE_LATEST);
            store
                .db
                .delete_range_cf(cf, &[0u8; 32][..], &[0xffu8; 33][..])
                .unwrap();
            store
                .db
                .delete_cf(store.cf(CF_META), KEY_STATE_LATEST_FILLED)
                .unwrap();
            assert!(store.db.get_cf(cf, key(1).0).unwrap().is_none());
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.value_writes, vec![(0, false)], "an archive store");
        // A height written in layout 3 on top: the versions it replaces (of 2) are in
        // `state_values` already, and reads at 2 still find them.
        let changes = [(key(1), Some(vec![9u8])), (key(7), Some(vec![9u8]))]
            .into_iter()
            .collect();
        store.commit_state_only(&changes).unwrap();
        assert_eq!(store.get(&key(1), Height(3)).unwrap(), Some(vec![9u8]));
        assert_eq!(
            store.history_of(&key(1), 10).unwrap(),
            vec![
                (Height(1), Some(vec![0u8; 3])),
                (Height(2), Some(vec![1u8; 3])),
                (Height(3), Some(vec![9u8]))
            ]
        );
        for i in [0u32, 1, 7, 14_999] {
            let expected = (i % 7 != 0).then(|| vec![1u8; 3]);
            assert_eq!(store.get(&key(i), Height(2)).unwrap(), expected, "{i}");
            assert_eq!(
                store.get(&key(i), Height(1)).unwrap(),
                Some(vec![0u8; 3]),
                "{i}"
            );
        }
    }

    /// A store whose internal nodes are in jmt's encoding (written before 2026-12-07) reads,
    /// proves, prunes and grows as one written in the compact encoding: the same values,
    /// proofs and roots, block after block.
    #[test]
    fn a_store_of_jmt_encoded_nodes_reads_and_grows_as_before() {
        use crate::state::MemoryState;
        let key = |i: u64| state_key("t", &i.to_be_bytes());
        let changes = |h: u64| -> StateChanges {
            (0..300)
                .map(|i| {
                    (
                        key((h * 37 + i * 11) % 2_000),
                        (i % 13 != 0).then(|| vec![h as u8; 9]),
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut memory = MemoryState::new();
        {
            let store = Store::open_with(dir.path(), History::Prunable).unwrap();
            store.commit_state_only(&StateChanges::new()).unwrap();
            memory.commit(&StateChanges::new()).unwrap();
            for h in 0..6 {
                store.commit_state_only(&changes(h)).unwrap();
                memory.commit(&changes(h)).unwrap();
            }
            // Every internal node rewritten as jmt wrote it.
            let cf = store.cf(CF_STATE_NODES);
            let mut rewritten = 0;
            let entries: Vec<_> = store
                .db
                .iterator_cf(cf, IteratorMode::Start)
                .map(Result::unwrap)
                .collect();
            for (k, v) in entries {
                let node = TreeNode::decode(&v).unwrap();
                if matches!(node, TreeNode::Internal(_)) {
                    assert!(node.encode_jmt().len() > v.len());
                    store.db.put_cf(cf, k, node.encode_jmt()).unwrap();
                    rewritten += 1;
                }
            }
            assert!(rewritten > 16, "{rewritten}");
        }
        // Reopened without a tree cache, so that every node is read from the store: first
        // proofs at the old heights from jmt-encoded nodes alone, then new blocks on top.
        let no_cache = MemoryBudget {
            tree_cache_bytes: 0,
            ..MemoryBudget::default()
        };
        let store = Store::open_tuned(dir.path(), History::Prunable, no_cache).unwrap();
        let check = |store: &Store, memory: &MemoryState, heights: &[Height]| {
            for i in (0..2_000).step_by(97) {
                for &height in heights {
                    let (value, proof) = store.get_with_proof(&key(i), height).unwrap();
                    assert_eq!(
                        value,
                        memory.get(&key(i), height).unwrap(),
                        "{i} at {height}"
                    );
                    proof
                        .verify(
                            &store.state_root(height).unwrap(),
                            &key(i),
                            value.as_deref(),
                        )
                        .unwrap();
                }
            }
        };
        check(&store, &memory, &[Height(3), Height(6)]);
        for h in 6..12 {
            let root = store.commit_state_only(&changes(h)).unwrap();
            assert_eq!(root, memory.commit(&changes(h)).unwrap(), "height {h}");
        }
        while !store.prune(Height(9), 1_000).unwrap().done {}
        check(&store, &memory, &[Height(9), Height(12)]);
    }

    /// A value is written once, as its key's newest; `state_values` holds only the versions
    /// later heights replaced, and reads at every height and a key's history see all of
    /// them, a deletion included.
    #[test]
    fn values_are_written_once_and_read_at_every_height() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        let (k, j) = (state_key("t", b"k"), state_key("t", b"j"));
        store.commit_state_only(&StateChanges::new()).unwrap();
        // k: 1 -> [1], 2 -> [2], 3 -> deleted, 4 -> [4]; j: 3 -> [3].
        for h in 1..=4u8 {
            let mut changes = StateChanges::new();
            changes.insert(k, (h != 3).then(|| vec![h]));
            if h == 3 {
                changes.insert(j, Some(vec![h]));
            }
            store.commit_state_only(&changes).unwrap();
        }
        let in_values: Vec<Box<[u8]>> = store
            .db
            .iterator_cf(store.cf(CF_STATE_VALUES), IteratorMode::Start)
            .map(|e| e.unwrap().0)
            .collect();
        let expected: Vec<Box<[u8]>> = [1, 2, 3].map(|v| value_key(&KeyHash(k.0), v).into()).into();
        assert_eq!(in_values, expected, "k's replaced versions alone");
        let k_at = [None, Some(vec![1]), Some(vec![2]), None, Some(vec![4])];
        for (h, value) in k_at.iter().enumerate() {
            let height = Height(h as u64);
            assert_eq!(&store.get(&k, height).unwrap(), value, "k at {h}");
            let j_at = (h >= 3).then(|| vec![3]);
            assert_eq!(store.get(&j, height).unwrap(), j_at, "j at {h}");
            let (proved, proof) = store.get_with_proof(&k, height).unwrap();
            assert_eq!(&proved, value);
            proof
                .verify(&store.state_root(height).unwrap(), &k, proved.as_deref())
                .unwrap();
        }
        let history: Vec<(Height, Option<Vec<u8>>)> = (1..=4)
            .map(|h| (Height(h), k_at[h as usize].clone()))
            .collect();
        assert_eq!(store.history_of(&k, 10).unwrap(), history);
        assert_eq!(store.history_of(&k, 2).unwrap(), history[..2]);
        assert_eq!(store.history_of(&k, 3).unwrap(), history[..3]);
        assert_eq!(
            store.history_of(&j, 10).unwrap(),
            vec![(Height(3), Some(vec![3]))]
        );
        assert_eq!(
            store.history_of(&state_key("t", b"none"), 10).unwrap(),
            vec![]
        );
    }

    /// A store opened archive, pruned, archive and pruned again: each span writes values its
    /// own way (into both families at once; into `state_latest` alone, moved when
    /// replaced), each version goes into `state_values` once whatever the spans around it,
    /// reads at every height see every version, and pruning's single deletions each meet
    /// the one write: after a full compaction exactly the versions expected are left.
    #[test]
    fn archive_and_pruned_spans_keep_every_version_once() {
        use crate::state::MemoryState;
        let key = |i: u64| state_key("t", &i.to_be_bytes());
        let changes = |h: u64| -> StateChanges {
            (0..40)
                .map(|i| {
                    (
                        key((h * 5 + i * 3) % 90),
                        (i % 9 != 0).then(|| vec![h as u8; 4]),
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut memory = MemoryState::new();
        let mut versions: BTreeMap<Hash, Vec<u64>> = BTreeMap::new();
        let modes = [
            History::Archive,
            History::Prunable,
            History::Archive,
            History::Prunable,
        ];
        for (span, mode) in modes.iter().enumerate() {
            let store = Store::open_with(dir.path(), *mode).unwrap();
            let from = 8 * span as u64;
            let expected: Vec<(u64, bool)> = modes[..=span]
                .iter()
                .enumerate()
                .map(|(i, m)| (8 * i as u64, *m == History::Prunable))
                .collect();
            assert_eq!(store.value_writes, expected);
            for h in from..from + 8 {
                let c = changes(h);
                for k in c.keys() {
                    versions.entry(*k).or_default().push(h);
                }
                let root = store.commit_state_only(&c).unwrap();
                assert_eq!(root, memory.commit(&c).unwrap(), "height {h}");
            }
            for i in 0..90 {
                for h in 0..from + 8 {
                    assert_eq!(
                        store.get(&key(i), Height(h)).unwrap(),
                        memory.get(&key(i), Height(h)).unwrap(),
                        "{i} at {h}"
                    );
                }
                let history = store.history_of(&key(i), 100).unwrap();
                let heights: Vec<u64> = history.iter().map(|(h, _)| h.0).collect();
                assert_eq!(heights, versions[&key(i)], "history of {i}");
            }
            // Each span's writes in files of their own, where a second write of a version
            // in a later span would be counted twice (nothing is deleted before the end;
            // until the fourth flush no merge of level 0 can fold the two together).
            let cf = store.cf(CF_STATE_VALUES);
            store.db.flush_cf(cf).unwrap();
            let entries = store
                .db
                .property_int_value_cf(cf, "rocksdb.estimate-num-keys")
                .unwrap()
                .unwrap();
            assert_eq!(
                usize::try_from(entries).unwrap(),
                count(&store, CF_STATE_VALUES),
                "a version written twice"
            );
        }
        // Opened archive with nothing written, then pruned again: the empty archive span
        // gives way to the pruned one it interrupted.
        let spans = |store: Store| store.value_writes.clone();
        let last = spans(Store::open_with(dir.path(), History::Prunable).unwrap());
        let archive = spans(Store::open_with(dir.path(), History::Archive).unwrap());
        assert_eq!(archive, [&last[..], &[(32, false)]].concat());
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        assert_eq!(store.value_writes, last);
        while !store.prune(Height(28), 1_000).unwrap().done {}
        for i in 0..90 {
            for h in 28..32 {
                assert_eq!(
                    store.get(&key(i), Height(h)).unwrap(),
                    memory.get(&key(i), Height(h)).unwrap(),
                    "{i} at {h}"
                );
            }
        }
        let cf = store.cf(CF_STATE_VALUES);
        store.db.flush_cf(cf).unwrap();
        store.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        // In a span of archive heights (0-7, 16-23) a version is written at once, in a
        // pruned span when replaced; only a pruned span writes stale lists, so pruning to
        // 28 deletes the versions replaced at 8-15 and 24-28.
        let pruned_span = |h: u64| (8..16).contains(&h) || h >= 24;
        let needed: usize = versions
            .values()
            .map(|v| {
                (0..v.len())
                    .filter(|&i| {
                        let replaced_at = v.get(i + 1);
                        let stored = !pruned_span(v[i]) || replaced_at.is_some();
                        let deleted = replaced_at.is_some_and(|&s| pruned_span(s) && s <= 28);
                        stored && !deleted
                    })
                    .count()
            })
            .sum();
        assert_eq!(count(&store, CF_STATE_VALUES), needed);
    }

    /// Spans of value writes that claim heights not yet written (a store rewound, or
    /// corrupt) are refused on open, before anything is written.
    #[test]
    fn spans_of_value_writes_above_the_next_height_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for _ in 0..3 {
                store.commit_state_only(&StateChanges::new()).unwrap();
            }
            store
                .db
                .put_cf(
                    store.cf(CF_META),
                    KEY_VALUE_WRITES,
                    codec::encode(&vec![(0u64, false), (100u64, true)]),
                )
                .unwrap();
        }
        let e = Store::open_with(dir.path(), History::Prunable).unwrap_err();
        assert!(
            e.to_string()
                .contains("a span starts above the next height, 3"),
            "{e}"
        );
    }

    /// A store of layout 2 (every version in `state_values`, the newest too) is marked 3 on
    /// open, with the next height as the first whose values are written once. It reads
    /// every height as before, its keys' histories have no version twice, and pruning's
    /// single deletions each meet one write: after a full compaction exactly the versions
    /// the window needs are left.
    #[test]
    fn a_store_of_layout_2_reads_prunes_and_grows_as_before() {
        use crate::state::MemoryState;
        let key = |i: u64| state_key("t", &i.to_be_bytes());
        let changes = |h: u64| -> StateChanges {
            (0..60)
                .map(|i| {
                    (
                        key((h * 7 + i * 3) % 150),
                        (i % 11 != 0).then(|| vec![h as u8; 5]),
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut memory = MemoryState::new();
        let mut versions: BTreeMap<Hash, Vec<u64>> = BTreeMap::new();
        let mut commit = |store: &Store, h: u64| {
            let c = changes(h);
            for k in c.keys() {
                versions.entry(*k).or_default().push(h);
            }
            let root = store.commit_state_only(&c).unwrap();
            assert_eq!(root, memory.commit(&c).unwrap(), "height {h}");
        };
        {
            let store = Store::open_with(dir.path(), History::Prunable).unwrap();
            for h in 0..10 {
                commit(&store, h);
            }
            as_layout_2(&store);
        }
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        assert_eq!(store.layout().unwrap(), STORE_LAYOUT);
        assert_eq!(store.value_writes, vec![(0, false), (10, true)]);
        for h in 10..25 {
            commit(&store, h);
        }
        let check = |store: &Store, from: u64| {
            for i in 0..150 {
                for h in from..25 {
                    let height = Height(h);
                    assert_eq!(
                        store.get(&key(i), height).unwrap(),
                        memory.get(&key(i), height).unwrap(),
                        "{i} at {h}"
                    );
                }
            }
        };
        check(&store, 0);
        for i in 0..150 {
            let history = store.history_of(&key(i), 100).unwrap();
            let heights: Vec<u64> = history.iter().map(|(h, _)| h.0).collect();
            assert_eq!(heights, versions[&key(i)], "history of {i}");
        }
        while !store.prune(Height(15), 1_000).unwrap().done {}
        check(&store, 15);
        let cf = store.cf(CF_STATE_VALUES);
        store.db.flush_cf(cf).unwrap();
        store.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        // Versions below 10 are in `state_values` since they were written, those from 10
        // only once replaced; each is deleted once replaced at 15 or below.
        let needed: usize = versions
            .values()
            .map(|v| v.windows(2).filter(|w| w[1] > 15).count() + usize::from(v[v.len() - 1] < 10))
            .sum();
        assert_eq!(count(&store, CF_STATE_VALUES), needed);
    }

    /// A store is marked with its layout on open, and one of a later layout is refused
    /// with an error that names it, without being written to.
    #[test]
    fn a_store_of_a_later_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.layout().unwrap(), STORE_LAYOUT);
            store.commit_state_only(&StateChanges::new()).unwrap();
            store
                .db
                .put_cf(store.cf(CF_META), KEY_STORE_LAYOUT, 9u64.to_be_bytes())
                .unwrap();
        }
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("layout 9"), "{e}");
        let e = Store::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("layout 9"), "{e}");
        // An unmarked store (layout 1, before 2026-12-07) opens and is marked.
        {
            let db = DB::open_cf(&Options::default(), dir.path(), COLUMN_FAMILIES).unwrap();
            let meta = db.cf_handle(CF_META).unwrap();
            db.delete_cf(meta, KEY_STORE_LAYOUT).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.layout().unwrap(), STORE_LAYOUT);
        assert_eq!(store.latest_height().unwrap(), Some(Height(0)));
    }

    fn count(store: &Store, cf: &str) -> usize {
        store
            .db
            .iterator_cf(store.cf(cf), IteratorMode::Start)
            .count()
    }

    /// With no tree cache and small RocksDB caches, a store computes the same roots and
    /// reads the same values: the caches only save reads.
    #[test]
    fn a_store_without_a_tree_cache_computes_the_same_state() {
        use crate::state::MemoryState;
        let dir = tempfile::tempdir().unwrap();
        let memory_budget = MemoryBudget {
            block_cache_bytes: 8 << 20,
            memtable_bytes: 16 << 20,
            tree_cache_bytes: 0,
        };
        let store = Store::open_tuned(dir.path(), History::Prunable, memory_budget).unwrap();
        let mut memory = MemoryState::new();
        let key = |i: u64| state_key("t", &i.to_be_bytes());
        for h in 0..20u64 {
            let changes: StateChanges = (0..50)
                .map(|i| {
                    (
                        key((h * 31 + i * 7) % 200),
                        (i % 9 != 0).then(|| vec![h as u8]),
                    )
                })
                .collect();
            assert_eq!(
                store.commit_state_only(&changes).unwrap(),
                memory.commit(&changes).unwrap()
            );
        }
        assert_eq!(store.memory().tree_nodes, 0);
        for i in 0..200 {
            assert_eq!(
                store.get(&key(i), Height(19)).unwrap(),
                memory.get(&key(i), Height(19)).unwrap()
            );
        }
    }

    /// The compaction figures read RocksDB's properties: a flushed memtable is a file at
    /// level 0, and nothing holds writes back.
    #[test]
    fn compactions_count_the_files_waiting_at_level_0() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        assert_eq!(store.compactions().level0_files_max, 0);
        for v in 0..3u8 {
            let changes: StateChanges = [(state_key("t", &[v]), Some(vec![v]))]
                .into_iter()
                .collect();
            store.commit_state_only(&changes).unwrap();
            store.db.flush_cf(store.cf(CF_STATE_NODES)).unwrap();
        }
        let c = store.compactions();
        assert_eq!(c.level0_files_max, 3, "{c:?}");
        assert!(!c.writes_stalled);
    }

    /// The stale list of the block at `h`.
    fn stale_list(store: &Store, h: u64) -> Option<StaleList> {
        let e = stale_key(h, STALE_BLOCK, &[]);
        let bytes = store.db.get_cf(store.cf(CF_STATE_STALE), e).unwrap()?;
        Some(borsh::from_slice(&bytes).unwrap())
    }

    /// What a block made stale is one entry: the tree nodes it replaced, and the version
    /// each key it wrote replaced (so that pruning deletes it without a read); a new key
    /// replaces nothing. Entries of the kinds written before (one per node, one per key,
    /// with its version or without) are still pruned.
    #[test]
    fn a_block_lists_what_it_made_stale_in_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        let (a, b) = (state_key("t", b"a"), state_key("t", b"b"));
        let commit = |changes: &[(Hash, u8)]| {
            let changes: StateChanges = changes.iter().map(|(k, v)| (*k, Some(vec![*v]))).collect();
            store.commit_state_only(&changes).unwrap();
        };
        commit(&[(a, 0)]);
        commit(&[(a, 1), (b, 1)]);
        commit(&[(a, 2), (b, 2)]);
        assert_eq!(stale_list(&store, 0), None, "the genesis replaces nothing");
        assert_eq!(stale_list(&store, 1).unwrap().values, vec![(a.0, 0)]);
        let mut replaced = vec![(a.0, 1), (b.0, 1)];
        replaced.sort();
        let two = stale_list(&store, 2).unwrap();
        assert_eq!(two.values, replaced);
        assert!(!two.nodes.is_empty(), "at least the root of 1");
        for node in &two.nodes {
            let stored = store.db.get_cf(store.cf(CF_STATE_NODES), node).unwrap();
            assert!(stored.is_some(), "a listed node is one the store holds");
        }
        assert_eq!(count(&store, CF_STATE_STALE), 2, "one entry a block");

        // Height 3 as a store from before wrote it: an entry per node, and for `a` an
        // entry without its version (found by a seek), for `b` one with it.
        commit(&[(a, 3), (b, 3)]);
        let three = stale_list(&store, 3).unwrap();
        let cf = store.cf(CF_STATE_STALE);
        store
            .db
            .delete_cf(cf, stale_key(3, STALE_BLOCK, &[]))
            .unwrap();
        for node in &three.nodes {
            store
                .db
                .put_cf(cf, stale_key(3, STALE_NODE, node), [])
                .unwrap();
        }
        store
            .db
            .put_cf(cf, stale_key(3, STALE_VALUE, &a.0), [])
            .unwrap();
        store
            .db
            .put_cf(cf, stale_key(3, STALE_VALUE, &b.0), 2u64.to_be_bytes())
            .unwrap();

        while !store.prune(Height(3), 2).unwrap().done {}
        let left: Vec<Box<[u8]>> = store
            .db
            .iterator_cf(store.cf(CF_STATE_VALUES), IteratorMode::Start)
            .map(|e| e.unwrap().0)
            .collect();
        // Every version below 3 is deleted; version 3, the newest, is in `state_latest`
        // alone.
        assert_eq!(left, Vec::<Box<[u8]>>::new());
        for node in two.nodes.iter().chain(&three.nodes) {
            let stored = store.db.get_cf(store.cf(CF_STATE_NODES), node).unwrap();
            assert!(stored.is_none(), "a node stale by 3 is deleted");
        }
        assert_eq!(count(&store, CF_STATE_STALE), 0);
        assert_eq!(store.get(&a, Height(3)).unwrap(), Some(vec![3]));
        assert_eq!(store.get(&b, Height(3)).unwrap(), Some(vec![3]));
        let (value, proof) = store.get_with_proof(&b, Height(3)).unwrap();
        assert_eq!(value, Some(vec![3]));
        proof
            .verify(&store.state_root(Height(3)).unwrap(), &b, value.as_deref())
            .unwrap();
    }

    /// The replaced version is found where the hot-key cache cannot help: after a restart,
    /// and for values too large for it.
    #[test]
    fn stale_lists_name_versions_read_from_the_latest_values() {
        let dir = tempfile::tempdir().unwrap();
        let (small, large) = (state_key("t", b"small"), state_key("t", b"large"));
        let open = || Store::open_with(dir.path(), History::Prunable).unwrap();
        let commit = |store: &Store, v: u8| {
            let changes: StateChanges = [
                (small, Some(vec![v])),
                (large, Some(vec![v; HOT_VALUE_BYTES_MAX + 1])),
            ]
            .into_iter()
            .collect();
            store.commit_state_only(&changes).unwrap();
        };
        for h in 0..3u8 {
            // A fresh store each height: its hot-key cache starts empty.
            commit(&open(), h);
        }
        let store = open();
        commit(&store, 3);
        // And with the cache warm: `small` is in it, `large` only as too large to keep.
        commit(&store, 4);
        for h in 1..=4u64 {
            let mut expected = vec![(small.0, h - 1), (large.0, h - 1)];
            expected.sort();
            assert_eq!(stale_list(&store, h).unwrap().values, expected, "{h}");
        }
        while !store.prune(Height(4), 100).unwrap().done {}
        assert_eq!(
            count(&store, CF_STATE_VALUES),
            0,
            "versions 0 to 3 deleted, version 4 in `state_latest` alone"
        );
    }

    /// Pruning's single deletions meet the writes of nodes and versions that died young in
    /// the memtable, and neither reaches a file; reads and proofs at the kept height hold.
    #[test]
    fn pruned_nodes_and_versions_vanish_with_their_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        let keys: Vec<Hash> = (0..200u32)
            .map(|i| state_key("t", &i.to_be_bytes()))
            .collect();
        for v in 0..10u8 {
            let changes: StateChanges = keys.iter().map(|k| (*k, Some(vec![v]))).collect();
            store.commit_state_only(&changes).unwrap();
        }
        let nodes_before = count(&store, CF_STATE_NODES);
        while !store.prune(Height(9), 1_000).unwrap().done {}
        let nodes_after = count(&store, CF_STATE_NODES);
        assert!(
            nodes_after < nodes_before / 5,
            "{nodes_after} of {nodes_before}"
        );
        // Versions 0 to 8 deleted; 9, the newest, is in `state_latest` alone.
        assert_eq!(count(&store, CF_STATE_VALUES), 0);
        assert_eq!(count(&store, CF_STATE_STALE), 0);
        for cf in [CF_STATE_NODES, CF_STATE_VALUES, CF_STATE_STALE] {
            store.db.flush_cf(store.cf(cf)).unwrap();
            assert_eq!(
                crate::single_delete::deletions_in_files(&store.db, store.cf(cf)),
                (0, 0),
                "{cf}: pruning's deletions met their writes in the memtable"
            );
        }
        assert_eq!(count(&store, CF_STATE_NODES), nodes_after);
        for k in &keys {
            let (value, proof) = store.get_with_proof(k, Height(9)).unwrap();
            assert_eq!(value, Some(vec![9]));
            proof
                .verify(&store.state_root(Height(9)).unwrap(), k, value.as_deref())
                .unwrap();
        }
        assert!(matches!(
            store.get(&keys[0], Height(8)),
            Err(Error::Pruned { .. })
        ));
    }

    /// Pruning deletes what no read in the window needs, keeps every read and proof in the
    /// window as it was, refuses reads below it by name, keeps the histories it was told to
    /// keep, and remembers the window across a reopen.
    #[test]
    fn pruning_keeps_the_window_and_the_kept_histories() {
        use crate::state::MemoryState;
        let dir = tempfile::tempdir().unwrap();
        let key = |i: u64| state_key("t", &i.to_be_bytes());
        let kept = key(999);
        let mut memory = MemoryState::new();
        let mut store = Store::open_with(dir.path(), History::Prunable).unwrap();
        store.keep_history_of(&[kept]);
        let mut roots = Vec::new();
        // Every key's versions (deletions included), to count what pruning must keep.
        let mut versions: BTreeMap<Hash, Vec<u64>> = BTreeMap::new();
        for h in 0..=30u64 {
            if h % 4 == 3 {
                // An empty block: jmt copies the root.
                let changes = StateChanges::new();
                let root = store.commit_state_only(&changes).unwrap();
                assert_eq!(memory.commit(&changes).unwrap(), root);
                roots.push(root);
                continue;
            }
            let mut changes: StateChanges = (0..3)
                .map(|i| (key((h + i) % 10), Some(vec![h as u8])))
                .collect();
            changes.insert(key(50 + h % 5), (h % 2 == 0).then(|| vec![h as u8]));
            changes.insert(kept, Some(vec![h as u8]));
            for k in changes.keys() {
                versions.entry(*k).or_default().push(h);
            }
            let root = store.commit_state_only(&changes).unwrap();
            assert_eq!(memory.commit(&changes).unwrap(), root);
            roots.push(root);
        }
        let (nodes, values) = (
            count(&store, CF_STATE_NODES),
            count(&store, CF_STATE_VALUES),
        );

        let mut calls = 0;
        while !store.prune(Height(20), 25).unwrap().done {
            calls += 1;
            assert!(calls < 1000, "pruning does not end");
        }
        assert!(calls > 1, "pruning went in steps of about 25 deletions");
        assert!(
            count(&store, CF_STATE_NODES) < nodes / 2,
            "stale tree nodes deleted"
        );
        // No root of a pruned height is left, empty blocks' included (borsh `NodeKey`:
        // version u64 LE, then an empty nibble path: 0 nibbles, no bytes).
        let root_key =
            |v: u64| NodeKey::try_from_slice(&[&v.to_le_bytes()[..], &[0u8; 12]].concat()).unwrap();
        for v in 0..20 {
            assert!(
                store.get_node_option(&root_key(v)).unwrap().is_none(),
                "root {v}"
            );
        }
        assert!(store.get_node_option(&root_key(20)).unwrap().is_some());
        // Exactly the replaced versions a read in the window sees are left (each key's
        // newest is in `state_latest` alone): those replaced above 20, and every replaced
        // version of the kept key.
        let needed: usize = versions
            .iter()
            .map(|(k, v)| {
                if *k == kept {
                    v.len() - 1
                } else {
                    v.windows(2).filter(|w| w[1] > 20).count()
                }
            })
            .sum();
        assert!(needed < values);
        assert_eq!(
            count(&store, CF_STATE_VALUES),
            needed,
            "old value versions deleted"
        );

        let check = |store: &Store| {
            for h in 20..=30u64 {
                let height = Height(h);
                assert_eq!(store.state_root(height).unwrap(), roots[h as usize]);
                for k in (0..10).chain(50..55).chain([999, 12345]) {
                    let expected = memory.get(&key(k), height).unwrap();
                    assert_eq!(store.get(&key(k), height).unwrap(), expected, "{k} at {h}");
                    let (value, proof) = store.get_with_proof(&key(k), height).unwrap();
                    assert_eq!(value, expected);
                    proof
                        .verify(&roots[h as usize], &key(k), value.as_deref())
                        .unwrap();
                }
            }
            for h in [0u64, 19] {
                let pruned = |e: Error| matches!(e, Error::Pruned { height, oldest } if height == Height(h) && oldest == Height(20));
                assert!(pruned(store.get(&key(1), Height(h)).unwrap_err()));
                assert!(pruned(store.state_root(Height(h)).unwrap_err()));
                assert!(pruned(
                    store.get_with_proof(&key(1), Height(h)).unwrap_err()
                ));
            }
            // A kept key reads at any height, pruned or not.
            for h in 0..=30u64 {
                let written = h - u64::from(h % 4 == 3);
                assert_eq!(
                    store.get(&kept, Height(h)).unwrap(),
                    Some(vec![written as u8])
                );
            }
            assert!(store.get(&kept, Height(31)).is_err());
            let history = store.history_of(&kept, 100).unwrap();
            assert_eq!(history.len(), 31 - 7, "every version but the empty blocks'");
            assert_eq!(history[3], (Height(4), Some(vec![4])));
        };
        check(&store);
        assert!(
            store.prune(Height(31), 25).is_err(),
            "the latest state stays"
        );
        drop(store);

        let mut store = Store::open_with(dir.path(), History::Prunable).unwrap();
        store.keep_history_of(&[kept]);
        assert_eq!(store.oldest_state(), Height(20));
        assert_eq!(
            store.prune(Height(20), 25).unwrap(),
            PruneStep {
                entries: 0,
                done: true
            }
        );
        check(&store);
        // A lower window does not bring pruned heights back.
        store.prune(Height(5), 25).unwrap();
        assert_eq!(store.oldest_state(), Height(20));
    }

    /// Updates count the nodes they find in the tree cache and those they read from
    /// RocksDB; reads for proofs and roots count nothing.
    #[test]
    fn tree_reads_say_where_updates_found_the_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Hash> = (0..300u32)
            .map(|i| state_key("t", &i.to_be_bytes()))
            .collect();
        let write = |store: &Store, round: u8| {
            let changes: StateChanges = keys.iter().map(|k| (*k, Some(vec![round]))).collect();
            store.commit_state_only(&changes).unwrap();
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.tree_reads(), TreeReads::default());
        write(&store, 1);
        write(&store, 2);
        // The second update walked the first one's nodes, all in the cache (the leaves'
        // keys known to their parents).
        let reads = store.tree_reads();
        assert!(reads.cached > 0, "{reads:?}");
        assert_eq!(reads.stored, 0, "{reads:?}");
        store.get_with_proof(&keys[0], Height(0)).unwrap();
        store.state_root(Height(1)).unwrap();
        assert_eq!(store.tree_reads(), reads);
        drop(store);
        // Without a tree cache, every node an update walks comes from RocksDB.
        let memory = MemoryBudget {
            tree_cache_bytes: 0,
            ..MemoryBudget::default()
        };
        let store = Store::open_tuned(dir.path(), History::Archive, memory).unwrap();
        write(&store, 3);
        let reads = store.tree_reads();
        assert_eq!(reads.cached, 0, "{reads:?}");
        // The internal nodes on the keys' paths, and each leaf, whose key the parent read
        // from RocksDB does not know.
        assert!(reads.stored > keys.len() as u64, "{reads:?}");
        assert_eq!(store.get(&keys[7], Height(2)).unwrap(), Some(vec![3u8]));
    }

    /// The hot-key cache answers as the store does: across small and large values,
    /// deletions and reads at past heights, and after a reopen.
    #[test]
    fn hot_keys_read_as_the_store_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let key = state_key("t", b"hot");
        let big = vec![7u8; HOT_VALUE_BYTES_MAX + 1];
        let values = [
            Some(vec![1u8]),
            Some(big.clone()),
            Some(vec![2u8]),
            None,
            Some(big),
            Some(vec![3u8]),
        ];
        let store = Store::open(dir.path()).unwrap();
        for (h, value) in values.iter().enumerate() {
            store
                .commit_state_only(&StateChanges::from([(key, value.clone())]))
                .unwrap();
            // Read twice: from RocksDB, then from memory.
            for _ in 0..2 {
                assert_eq!(&store.get(&key, Height(h as u64)).unwrap(), value, "at {h}");
            }
            for (past, expected) in values[..=h].iter().enumerate() {
                assert_eq!(&store.get(&key, Height(past as u64)).unwrap(), expected);
            }
        }
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get(&key, Height(5)).unwrap(), Some(vec![3u8]));
        assert_eq!(store.get(&key, Height(3)).unwrap(), None);
    }
}
