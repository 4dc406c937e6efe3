//! Criterion benchmarks of the ledger's hot paths: signature checks single and batched,
//! the RFC 9162 tree over 10,000 leaves, state-tree updates of 10,000 keys, and committing a
//! block of 10,000 transactions to RocksDB.
//!
//! Run: `cargo bench -p acta-ledger --bench ledger`.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::Duration;

use acta_ledger::{
    merkle,
    state::{state_key, AuthenticatedState, MemoryState, StateChanges},
    store::Store,
    testing::{self, BlockSpec},
    Hash, Height, Transaction,
};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

/// The allocator `actad` runs with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn signatures(c: &mut Criterion) {
    let chain = testing::chain_id();
    let txs: Vec<Transaction> = (0..1024)
        .map(|i| testing::attest_tx(&chain, i, 1))
        .collect();
    let mut g = c.benchmark_group("signature");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_single", |b| {
        b.iter(|| txs[0].verify(&chain).unwrap())
    });
    // A transaction's id (its encoding, then SHA-256): what a node no longer repeats in
    // execution, the store and the mempool once a block's ids are carried.
    g.bench_function("tx_id", |b| b.iter(|| txs[0].id()));
    for n in [16usize, 64, 256, 1024] {
        let refs: Vec<&Transaction> = txs[..n].iter().collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("verify_batch", n), &refs, |b, refs| {
            b.iter(|| {
                let results = Transaction::verify_batch(refs, &chain);
                assert!(results.iter().all(|r| r.is_ok()));
            })
        });
    }
    g.finish();
}

fn merkle_tree(c: &mut Criterion) {
    const N: usize = 10_000;
    let leaves: Vec<Hash> = (0..N as u32)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let root = merkle::root(&leaves);
    let mut g = c.benchmark_group("merkle_10k");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("root", |b| b.iter(|| merkle::root(&leaves)));
    g.throughput(Throughput::Elements(1));
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| merkle::inclusion_proof(&leaves, 4321).unwrap())
    });
    let proof = merkle::inclusion_proof(&leaves, 4321).unwrap();
    g.bench_function("verify_inclusion", |b| {
        b.iter(|| merkle::verify_inclusion(&leaves[4321], &proof, &root).unwrap())
    });
    g.bench_function("consistency_proof", |b| {
        b.iter(|| merkle::consistency_proof(&leaves, 6789).unwrap())
    });
    let old = merkle::root(&leaves[..6789]);
    let cproof = merkle::consistency_proof(&leaves, 6789).unwrap();
    g.bench_function("verify_consistency", |b| {
        b.iter(|| merkle::verify_consistency(&old, &root, &cproof).unwrap())
    });
    g.finish();
}

fn changes(height: u64, n: u32) -> StateChanges {
    (0..n)
        .map(|i| {
            let key = state_key("bench", &(u64::from(i) + height * 1_000_000).to_be_bytes());
            (key, Some(vec![7u8; 64]))
        })
        .collect()
}

fn state_tree(c: &mut Criterion) {
    const N: u32 = 10_000;
    let mut g = c.benchmark_group("state_10k_keys");
    g.throughput(Throughput::Elements(u64::from(N)));
    // Against a tree that already holds 100,000 keys, as a running ledger would.
    let mut state = MemoryState::new();
    for h in 0..10 {
        state.commit(&changes(h, N)).unwrap();
    }
    let next = changes(10, N);
    g.bench_function("memory_prepare", |b| {
        b.iter(|| state.prepare(&next, Height(10)).unwrap())
    });
    g.finish();
}

fn block_commit(c: &mut Criterion) {
    const N: u32 = 10_000;
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let txs: Vec<Transaction> = (0..N).map(|i| testing::attest_tx(&chain, i, 1)).collect();
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(u64::from(N)));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    // Each iteration commits one block of 10,000 transactions (and 10,000 state writes, one
    // per transaction) to a fresh store holding only the genesis state.
    g.bench_function("commit_block_10k_txs", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path()).unwrap();
                store.commit_state_only(&StateChanges::new()).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                let update = store.prepare(&changes(1, N), Height(1)).unwrap();
                let block = testing::block(
                    &chain,
                    BlockSpec {
                        height: Height(1),
                        parent_hash: Hash::ZERO,
                        txs: txs.clone(),
                        last_commit: None,
                        evidence: vec![],
                        state_root: update.root,
                        validators: &set,
                        next_validators: &set,
                    },
                );
                let commit = testing::commit(&chain, &keys, &set, Height(1), block.hash());
                store.commit_block(&block, &commit, update, &[]).unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Reads of random keys from a RocksDB store of `ACTA_BENCH_KEYS` keys (default 200,000;
/// issue 17 asks for 1,000,000), written in blocks of 10,000, at the latest height and at
/// a past one.
fn store_reads(c: &mut Criterion) {
    const BLOCK: u32 = 10_000;
    let keys: u32 = std::env::var("ACTA_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let blocks = u64::from(keys.div_ceil(BLOCK));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.commit_state_only(&StateChanges::new()).unwrap();
    for h in 0..blocks {
        store.commit_state_only(&changes(h, BLOCK)).unwrap();
    }
    let latest = store.latest_height().unwrap().unwrap();
    let mut g = c.benchmark_group(format!("store_{}k_keys", blocks * u64::from(BLOCK) / 1000));
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    let mut key = || {
        // A pseudo-random key of a pseudo-random block: spread over the whole store.
        i = i
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let h = (i >> 33) % blocks;
        let n = (i >> 13) % u64::from(BLOCK);
        state_key("bench", &(n + h * 1_000_000).to_be_bytes())
    };
    g.bench_function("get_latest", |b| {
        b.iter(|| store.get(&key(), latest).unwrap().unwrap())
    });
    let past = Height(latest.0 / 2);
    g.bench_function("get_past", |b| b.iter(|| store.get(&key(), past).unwrap()));
    g.bench_function("get_with_proof_latest", |b| {
        b.iter(|| store.get_with_proof(&key(), latest).unwrap())
    });
    // Keys written in the latest block, read again (a signer's nonce, an open round): the
    // store's cache of recently written keys.
    let hot: Vec<Hash> = (0..1000).map(|_| key()).collect();
    store
        .commit_state_only(&hot.iter().map(|k| (*k, Some(vec![9u8; 64]))).collect())
        .unwrap();
    let latest = latest.next();
    let mut j = 0;
    g.bench_function("get_latest_hot", |b| {
        b.iter(|| {
            j = (j + 1) % hot.len();
            store.get(&hot[j], latest).unwrap().unwrap()
        })
    });
    aptos_layout(&mut g, keys, &mut key);
    g.finish();

    // A block's update: 10,000 existing keys get new values (the tree computed from RocksDB,
    // then written as one block).
    let mut g = c.benchmark_group(format!("store_{}k_keys", blocks * u64::from(BLOCK) / 1000));
    g.throughput(Throughput::Elements(u64::from(BLOCK)));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    let mut round = 0u8;
    let mut update = || -> StateChanges {
        round = round.wrapping_add(1);
        (0..BLOCK).map(|_| (key(), Some(vec![round; 40]))).collect()
    };
    let prepare_next = |changes: StateChanges| {
        let next = store.latest_height().unwrap().unwrap().next();
        store.prepare(&changes, next).unwrap()
    };
    g.bench_function("prepare_10k_updates", |b| {
        b.iter_batched(&mut update, prepare_next, BatchSize::PerIteration)
    });
    // The same once every key has been updated (not committed) once: the tree's internal
    // nodes and the keys of its leaves in the store's memory, as in a validator that has
    // run for a while.
    for h in 0..blocks {
        prepare_next(changes(h, BLOCK));
    }
    g.bench_function("prepare_10k_updates_warm", |b| {
        b.iter_batched(&mut update, prepare_next, BatchSize::PerIteration)
    });
    g.bench_function("commit_10k_updates", |b| {
        b.iter_batched(
            &mut update,
            |changes| store.commit_state_only(&changes).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Aptos's layout for comparison (issue 17, item 1): every version of every key under
/// `key hash || !version` (big-endian), so that one forward seek from `key || !h` finds the
/// newest version at or below `h`. The same keys, one version each, with the options the
/// store uses for `state_values` (bloom filters of the 32-byte prefix, 256 MiB cache).
fn aptos_layout(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    keys: u32,
    key: &mut impl FnMut() -> Hash,
) {
    use rocksdb::{BlockBasedOptions, Cache, Options, SliceTransform, WriteBatch, DB};
    const BLOCK: u32 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::default();
    opts.create_if_missing(true);
    let cache = Cache::new_lru_cache(256 * 1024 * 1024);
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    opts.set_block_based_table_factory(&table);
    opts.set_prefix_extractor(SliceTransform::create_fixed_prefix(32));
    opts.set_memtable_prefix_bloom_ratio(0.1);
    let db = DB::open(&opts, dir.path()).unwrap();
    let blocks = u64::from(keys.div_ceil(BLOCK));
    for h in 0..blocks {
        let mut batch = WriteBatch::default();
        for (k, v) in changes(h, BLOCK) {
            let mut dbkey = k.0.to_vec();
            dbkey.extend_from_slice(&(!(h + 1)).to_be_bytes());
            batch.put(dbkey, v.unwrap());
        }
        db.write(batch).unwrap();
    }
    let latest = blocks;
    g.bench_function("aptos_layout_get_latest", |b| {
        b.iter(|| {
            let k = key();
            let mut seek = k.0.to_vec();
            seek.extend_from_slice(&(!latest).to_be_bytes());
            let mut iter = db.raw_iterator();
            iter.seek(&seek);
            let found = iter
                .key()
                .filter(|found| found[..32] == k.0)
                .map(|_| iter.value().unwrap().to_vec());
            found.unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = signatures, merkle_tree, state_tree, block_commit, store_reads
}
criterion_main!(benches);
