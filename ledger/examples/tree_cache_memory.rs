//! What the state tree's node cache takes from the heap, against what it counts
//! (`Store::memory().tree_nodes`, the `tree_cache_mib` budget of ADR 0023).
//!
//! Writes `KEYS` keys (default 1,000,000) in blocks of 10,000 into a new store whose tree
//! cache may hold `TREE_CACHE_MIB`, counting every allocation of Rust code (RocksDB's own
//! allocations bypass the counter), and prints both, with the process's RSS. Run it with
//! a budget and with 0 (no cache): the difference of the heaps is the cache's.
//!
//! Run: `cargo run --example tree_cache_memory -p acta-ledger -- 192 1000000`.

#![allow(clippy::unwrap_used)]

use acta_ledger::{
    state::{state_key, StateChanges},
    store::{History, MemoryBudget, Store},
};

/// Every allocation of Rust code, counted, then made by jemalloc (as in `actad`).
#[global_allocator]
static ALLOCATOR: cap::Cap<tikv_jemallocator::Jemalloc> =
    cap::Cap::new(tikv_jemallocator::Jemalloc, usize::MAX);

/// Keys written per block, unless told.
const BLOCK: u64 = 10_000;

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: tree_cache_memory TREE_CACHE_MIB [KEYS [BLOCK]]";
    let tree_mib: usize = args.next().expect(usage).parse().expect(usage);
    let keys: u64 = args.next().map_or(1_000_000, |k| k.parse().expect(usage));
    let block: u64 = args.next().map_or(BLOCK, |k| k.parse().expect(usage));
    let dir = tempfile::tempdir().unwrap();
    let budget = MemoryBudget {
        tree_cache_bytes: tree_mib << 20,
        ..MemoryBudget::default()
    };
    let store = Store::open_tuned(dir.path(), History::Archive, budget).unwrap();
    store.commit_state_only(&StateChanges::new()).unwrap();
    let before = ALLOCATOR.allocated();
    for h in 0..keys.div_ceil(block) {
        let changes: StateChanges = (0..block)
            .map(|n| {
                let key = state_key("bench", &(n + h * 1_000_000).to_be_bytes());
                (key, Some(vec![7u8; 40]))
            })
            .collect();
        store.commit_state_only(&changes).unwrap();
    }
    let heap = (ALLOCATOR.allocated() - before) as u64;
    let m = store.memory();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "tree cache budget {tree_mib} MiB, {keys} keys: counted {} MiB; Rust heap grown by {} MiB \
         ({} hot keys with 40-byte values among it); RocksDB block cache {} MiB, memtables {} MiB; RSS {rss}",
        mib(m.tree_nodes),
        mib(heap),
        m.hot_keys,
        mib(m.block_cache),
        mib(m.memtables),
    );
}
