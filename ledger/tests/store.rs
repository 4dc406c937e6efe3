//! The RocksDB store: blocks, commits, the transaction index and state, written together
//! and read back by height, by hash and by transaction id, also after reopening.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_ledger::{
    light::verify_commit,
    state::{state_key, AuthenticatedState, MemoryState, StateChanges},
    store::{BlockWrites, History, MemoryBudget, Store, TxLocation},
    testing::{self, BlockSpec},
    Block, Commit, Hash, Height,
};

struct Chain {
    blocks: Vec<(Block, Commit)>,
}

/// Writes `n` blocks of `txs` transactions each into `store`, returning what it wrote.
fn write_chain(store: &Store, n: u64, txs: u32) -> Chain {
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    store
        .commit_genesis(store.prepare(&StateChanges::new(), Height(0)).unwrap())
        .unwrap();
    let mut parent = Hash::digest(b"genesis");
    let mut last_commit = None;
    let mut out = Chain { blocks: vec![] };
    for h in 1..=n {
        let height = Height(h);
        let update = store
            .prepare(&testing::height_changes(height, 10), height)
            .unwrap();
        let block = testing::block(
            &chain,
            BlockSpec {
                height,
                parent_hash: parent,
                txs: (0..txs)
                    .map(|i| testing::create_did_tx(&chain, i, h))
                    .collect(),
                last_commit: last_commit.take(),
                evidence: vec![],
                state_root: update.root,
                validators: &set,
                next_validators: &set,
            },
        );
        let ids = block.checked_ids().unwrap();
        let commit = testing::commit(&chain, &keys, &set, height, block.hash());
        // Ids that do not fit the block are refused, and nothing is written.
        if let Some((_, fewer)) = ids.split_last() {
            let again = store
                .prepare(&testing::height_changes(height, 10), height)
                .unwrap();
            assert!(store
                .commit_block_with_ids(&block, &commit, again, &[], fewer)
                .is_err());
            assert_eq!(store.latest_height().unwrap(), Some(Height(h - 1)));
        }
        store
            .commit_block_with_ids(&block, &commit, update, &[], &ids)
            .unwrap();
        parent = block.hash();
        last_commit = Some(commit.clone());
        out.blocks.push((block, commit));
    }
    out
}

#[test]
fn blocks_commits_index_and_state_read_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let written = {
        let store = Store::open(dir.path()).unwrap();
        write_chain(&store, 5, 3)
    };
    let store = Store::open(dir.path()).unwrap();
    let (_, set) = testing::validators(4, &[]);
    assert_eq!(store.latest_height().unwrap(), Some(Height(5)));
    for (block, commit) in &written.blocks {
        let h = block.height();
        assert_eq!(store.block(h).unwrap().as_ref(), Some(block));
        assert_eq!(
            store.block_by_hash(&block.hash()).unwrap().as_ref(),
            Some(block)
        );
        assert_eq!(store.commit(h).unwrap().as_ref(), Some(commit));
        verify_commit(&testing::chain_id(), &set, commit, h, &block.hash()).unwrap();
        for (i, tx) in block.txs.iter().enumerate() {
            let (loc, found) = store.tx(&tx.id()).unwrap().unwrap();
            assert_eq!(
                loc,
                TxLocation {
                    height: h,
                    index: i as u32
                }
            );
            assert_eq!(&found, tx);
        }
        assert_eq!(store.state_root(h).unwrap(), block.header.state_root);
        let marker = store.get(&state_key("test", b"height"), h).unwrap();
        assert_eq!(marker, Some(h.0.to_be_bytes().to_vec()));
    }
    assert_eq!(store.block(Height(6)).unwrap(), None);
    assert_eq!(store.block_by_hash(&Hash::ZERO).unwrap(), None);
    assert_eq!(store.tx(&Hash::ZERO).unwrap(), None);
}

#[test]
fn the_rocksdb_tree_agrees_with_the_memory_tree_and_its_proofs_verify() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut memory = MemoryState::new();
    for h in 0..6u64 {
        let mut changes = testing::height_changes(Height(h), 20);
        if h >= 2 {
            // Delete some of what an earlier height wrote.
            let mut k = (h - 2).to_be_bytes().to_vec();
            k.extend_from_slice(&3u32.to_be_bytes());
            changes.insert(state_key("test", &k), None);
        }
        let rocks_root = store.commit_state_only(&changes).unwrap();
        let memory_root = memory.commit(&changes).unwrap();
        assert_eq!(rocks_root, memory_root, "height {h}");
    }
    for h in 0..6u64 {
        for probe in 0..6u64 {
            let mut k = probe.to_be_bytes().to_vec();
            k.extend_from_slice(&3u32.to_be_bytes());
            let key = state_key("test", &k);
            let (value, proof) = store.get_with_proof(&key, Height(h)).unwrap();
            assert_eq!(value, memory.get(&key, Height(h)).unwrap());
            proof
                .verify(
                    &store.state_root(Height(h)).unwrap(),
                    &key,
                    value.as_deref(),
                )
                .unwrap();
        }
    }
}

/// Blocks' writes count their time by part, RocksDB's log and memtables included, and
/// where the values they replace were read from.
#[test]
fn block_writes_count_their_time_by_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_tuned(dir.path(), History::Prunable, MemoryBudget::default()).unwrap();
    assert_eq!(store.block_writes(), BlockWrites::default());
    // Three blocks of 11 writes each: ("test", "height") and 10 new keys.
    write_chain(&store, 3, 2);
    let w = store.block_writes();
    assert!(w.build_ns > 0, "{w:?}");
    assert!(w.read_replaced_ns > 0, "{w:?}");
    // Synced writes: RocksDB timed its log (rocksdb's perf levels line up with RocksDB's).
    assert!(w.wal_ns > 0, "{w:?}");
    assert!(w.memtable_ns > 0, "{w:?}");
    assert!(w.publish_ns > 0, "{w:?}");
    assert_eq!(w.delay_ns, 0, "{w:?}");
    // The height's key was in the hot-key cache after block 1 wrote it; every other key
    // was new, looked for in RocksDB.
    assert_eq!((w.replaced_cached, w.replaced_stored), (2, 31), "{w:?}");
}

#[test]
fn writes_that_do_not_fit_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let written = write_chain(&store, 2, 1);
    let (block, commit) = written.blocks.last().unwrap().clone();
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);

    // The same height again.
    let update = store.prepare(&StateChanges::new(), Height(3)).unwrap();
    assert!(store.commit_block(&block, &commit, update, &[]).is_err());

    // A next block whose state root is not the update's.
    let update = store.prepare(&StateChanges::new(), Height(3)).unwrap();
    let next = testing::block(
        &chain,
        BlockSpec {
            height: Height(3),
            parent_hash: block.hash(),
            txs: vec![],
            last_commit: Some(commit.clone()),
            evidence: vec![],
            state_root: Hash::digest(b"not the root"),
            validators: &set,
            next_validators: &set,
        },
    );
    let next_commit = testing::commit(&chain, &keys, &set, Height(3), next.hash());
    assert!(store
        .commit_block(&next, &next_commit, update, &[])
        .is_err());

    // A commit for another block.
    let update = store.prepare(&StateChanges::new(), Height(3)).unwrap();
    assert!(store.commit_block(&next, &commit, update, &[]).is_err());

    assert_eq!(store.latest_height().unwrap(), Some(Height(2)));
    assert_eq!(store.block(Height(3)).unwrap(), None);
    // Genesis into a store that has blocks.
    let genesis = MemoryState::new()
        .prepare(&StateChanges::new(), Height(0))
        .unwrap();
    assert!(store.commit_genesis(genesis).is_err());
}
