//! Snapshots: a store restored from a snapshot holds the state, block and block log of the
//! snapshot's height, verified against the genesis alone, and goes on committing the next
//! blocks exactly as the store it came from. Every edit of a manifest or a chunk is refused.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::sync::Arc;

use acta_ledger::{
    blocklog,
    checkpoint::{Checkpoint, Cosignature},
    snapshot::{self, Chunk, FileReader, Manifest},
    state::{state_key, AuthenticatedState},
    store::{History, Store},
    testing::{self, BlockSpec},
    validator::{SetHistory, NS_VALIDATORS, SET_HISTORY_KEY},
    Error, Hash, Height, Keypair, ValidatorSet,
};

const KEYS_PER_BLOCK: u32 = 500;
const SNAPSHOT_AT: Height = Height(20);
const LATEST: u64 = 25;

struct Chain {
    store: Store,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    _dir: tempfile::TempDir,
}

/// A chain of [`LATEST`] blocks of four validators, each block writing new keys, with the
/// checkpoints of 10 and 20 blocks cosigned by three of them.
fn chain() -> Chain {
    chain_with(None)
}

/// [`chain`], with block `at` also writing `history` as the validator set's history.
fn chain_with(history: Option<(u64, SetHistory)>) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), History::Prunable).unwrap();
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let genesis = store
        .prepare(&testing::height_changes(Height(0), 10), Height(0))
        .unwrap();
    store.commit_genesis(genesis).unwrap();
    let mut parent = Hash::digest(b"genesis");
    let mut last_commit = None;
    for h in 1..=LATEST {
        let height = Height(h);
        let mut changes = testing::height_changes(height, KEYS_PER_BLOCK);
        if let Some((_, written)) = history.filter(|(at, _)| *at == h) {
            changes.insert(
                state_key(NS_VALIDATORS, SET_HISTORY_KEY),
                Some(borsh::to_vec(&written).unwrap()),
            );
        }
        let update = store.prepare(&changes, height).unwrap();
        let block = testing::block(
            &chain,
            BlockSpec {
                height,
                parent_hash: parent,
                txs: vec![testing::create_did_tx(&chain, 1, h)],
                last_commit: last_commit.take(),
                evidence: vec![],
                state_root: update.root,
                validators: &set,
                next_validators: &set,
            },
        );
        let commit = testing::commit(&chain, &keys, &set, height, block.hash());
        store.commit_block(&block, &commit, update, &[]).unwrap();
        if h % 10 == 0 {
            let checkpoint = Checkpoint::of(&store, &chain, h).unwrap();
            for k in &keys[..3] {
                store
                    .put_cosignature(h, &Cosignature::sign(k, &checkpoint, h))
                    .unwrap();
            }
        }
        parent = block.hash();
        last_commit = Some(commit);
    }
    Chain {
        store,
        keys,
        set,
        _dir: dir,
    }
}

fn manifest(c: &Chain) -> Manifest {
    Manifest::of(
        &c.store,
        &testing::chain_id(),
        SNAPSHOT_AT,
        vec![],
        c.set.clone(),
    )
    .unwrap()
}

fn file(c: &Chain, manifest: &Manifest) -> Vec<u8> {
    let (bytes, chunks) = snapshot::write_file(&c.store, manifest, Vec::new()).unwrap();
    assert!(chunks >= 3, "{chunks} chunks: the test wants several");
    bytes
}

fn chunks(bytes: &[u8]) -> (Manifest, Vec<Chunk>) {
    let mut reader = FileReader::new(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(c) = reader.next_chunk().unwrap() {
        out.push(c);
    }
    (reader.manifest().clone(), out)
}

#[test]
fn a_restored_store_holds_the_snapshot_and_goes_on_as_the_original() {
    let c = chain();
    let chain_id = testing::chain_id();
    let m = manifest(&c);
    // The genesis keys, the height key, and each block's keys.
    assert_eq!(
        m.entries,
        10 + 1 + u64::from(KEYS_PER_BLOCK) * SNAPSHOT_AT.0
    );
    let bytes = file(&c, &m);

    let dir = tempfile::tempdir().unwrap();
    let kept_key = state_key("test", b"height");
    let mut restored = Store::open_with(dir.path(), History::Prunable).unwrap();
    restored.keep_history_of(&[kept_key]);
    let restored = Arc::new(restored);
    let verified = snapshot::restore_file(bytes.as_slice(), &restored, &chain_id, &c.set, |_| {
        vec![(kept_key, Height(3), Some(3u64.to_be_bytes().to_vec()))]
    })
    .unwrap();
    assert_eq!(verified.manifest, m);
    assert_eq!(verified.signed.0, 4);

    // The state, block, commit and block log of the snapshot's height; nothing before it.
    assert_eq!(restored.latest_height().unwrap(), Some(SNAPSHOT_AT));
    assert_eq!(restored.oldest_state(), SNAPSHOT_AT);
    assert_eq!(
        restored.state_root(SNAPSHOT_AT).unwrap(),
        c.store.state_root(SNAPSHOT_AT).unwrap()
    );
    for h in [0u64, 7, 20] {
        let mut k = h.to_be_bytes().to_vec();
        k.extend_from_slice(&3u32.to_be_bytes());
        let key = state_key("test", &k);
        assert_eq!(
            restored.get_with_proof(&key, SNAPSHOT_AT).unwrap(),
            c.store.get_with_proof(&key, SNAPSHOT_AT).unwrap()
        );
    }
    assert!(matches!(
        restored.state_root(Height(19)),
        Err(Error::Pruned { .. })
    ));
    assert_eq!(
        restored.block(SNAPSHOT_AT).unwrap(),
        c.store.block(SNAPSHOT_AT).unwrap()
    );
    assert_eq!(restored.block(Height(19)).unwrap(), None);
    assert_eq!(
        blocklog::root(restored.as_ref(), SNAPSHOT_AT.0).unwrap(),
        blocklog::root(&c.store, SNAPSHOT_AT.0).unwrap()
    );
    assert_eq!(restored.cosignatures(SNAPSHOT_AT.0).unwrap().len(), 3);
    // A kept key's past version reads at its height, as on the original store.
    assert_eq!(
        restored.get(&kept_key, Height(5)).unwrap(),
        Some(3u64.to_be_bytes().to_vec())
    );
    let changes = restored.restored_set_changes().unwrap().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].header.height, SNAPSHOT_AT);

    // The next blocks commit onto the restored store with the original's roots, and the
    // block log grows to the original's.
    for h in SNAPSHOT_AT.0 + 1..=LATEST {
        let height = Height(h);
        let block = c.store.block(height).unwrap().unwrap();
        let commit = c.store.commit(height).unwrap().unwrap();
        let update = restored
            .prepare(&testing::height_changes(height, KEYS_PER_BLOCK), height)
            .unwrap();
        assert_eq!(update.root, block.header.state_root);
        restored.commit_block(&block, &commit, update, &[]).unwrap();
    }
    assert_eq!(
        blocklog::root(restored.as_ref(), LATEST).unwrap(),
        blocklog::root(&c.store, LATEST).unwrap()
    );
    // And it prunes as any store does.
    restored.prune(Height(LATEST), 100_000).unwrap();
    assert_eq!(
        restored.state_root(Height(LATEST)).unwrap(),
        c.store.state_root(Height(LATEST)).unwrap()
    );

    // A store that holds a height is not restored into.
    let again = snapshot::restore_file(bytes.as_slice(), &restored, &chain_id, &c.set, |_| vec![]);
    assert!(again.is_err());
}

/// The manifest must list every change of the validator set the state records, and no
/// other (format version 14): a state whose history holds a change the list leaves out
/// (as a peer leaving out a change and its reversal would) is not restored, nor one whose
/// history lacks a change the manifest shows; the changes the list cannot show (by the
/// blocks at the snapshot's height and the one before) are read from the manifest's next
/// set and the state's own set.
#[test]
fn a_manifest_that_leaves_out_a_set_change_is_refused() {
    let other = testing::validators(3, &[]).1;
    let set = testing::validators(4, &[]).1;
    let before = Height(SNAPSHOT_AT.0 - 1);
    let restore = |history: Option<(u64, SetHistory)>| {
        let c = chain_with(history);
        let bytes = file(&c, &manifest(&c));
        let dir = tempfile::tempdir().unwrap();
        let restored = Arc::new(Store::open_with(dir.path(), History::Prunable).unwrap());
        snapshot::restore_file(
            bytes.as_slice(),
            &restored,
            &testing::chain_id(),
            &c.set,
            |_| vec![],
        )
        .map(|_| ())
    };
    let left_out = SetHistory::default()
        .then(Height(7), &other.hash())
        .then(Height(9), &set.hash());
    let e = restore(Some((9, left_out))).unwrap_err();
    assert!(e.to_string().contains("left out"), "{e}");
    // The chain's headers name one set throughout: no block changed it, and a history
    // that says one did is refused, even at the height before the snapshot's.
    let e = restore(Some((19, SetHistory::default().then(before, &set.hash())))).unwrap_err();
    assert!(e.to_string().contains("left out"), "{e}");

    // The check alone. This manifest's next set is the set that signs its block, so
    // block h - 1 changed nothing; block h changed the set iff the state's differs.
    let c = chain();
    let m = manifest(&c);
    m.check_set_history(None, None).unwrap();
    m.check_set_history(None, Some(&set)).unwrap();
    m.check_set_history(Some(SetHistory::default()), Some(&set))
        .unwrap();
    let at = SetHistory::default().then(SNAPSHOT_AT, &other.hash());
    m.check_set_history(Some(at), Some(&other)).unwrap();
    assert!(m.check_set_history(None, Some(&other)).is_err());
    assert!(m.check_set_history(Some(at), Some(&set)).is_err());
    assert!(m.check_set_history(Some(at), None).is_err());
    assert!(m.check_set_history(Some(left_out), Some(&set)).is_err());
    // A manifest whose next set differs from its block's signers shows a change by block
    // h - 1 (its header commits to the next set, so such a manifest cannot be made here
    // without re-signing; the header's claim is what is read).
    let mut changed = m.clone();
    changed.block.header.validators_hash = other.hash();
    let by_before = SetHistory::default().then(before, &set.hash());
    changed
        .check_set_history(Some(by_before), Some(&set))
        .unwrap();
    assert!(changed.check_set_history(None, Some(&set)).is_err());
}

#[test]
fn an_edited_manifest_is_refused() {
    let c = chain();
    let chain_id = testing::chain_id();
    let m = manifest(&c);
    m.clone().verify(&chain_id, &c.set).unwrap();

    type Edit = Box<dyn Fn(&mut Manifest)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "another state root",
            Box::new(|m| m.block.header.state_root.0[0] ^= 1),
        ),
        ("another block log", Box::new(|m| m.log[0].0[0] ^= 1)),
        (
            "two cosignatures of four",
            Box::new(|m| {
                m.cosignatures.pop();
            }),
        ),
        (
            "a transaction dropped",
            Box::new(|m| {
                m.block.txs.clear();
            }),
        ),
        (
            "another next set",
            Box::new(|m| {
                m.next_validators = testing::validators(3, &[]).1;
            }),
        ),
        ("another version", Box::new(|m| m.version += 1)),
    ];
    for (what, edit) in edits {
        let mut bad = m.clone();
        edit(&mut bad);
        assert!(
            bad.verify(&chain_id, &c.set).is_err(),
            "{what} was accepted"
        );
    }
    // Another chain, or a genesis of other validators.
    let other = acta_ledger::ChainId::new("acta-other").unwrap();
    assert!(m.clone().verify(&other, &c.set).is_err());
    assert!(m
        .clone()
        .verify(&chain_id, &testing::validators(5, &[]).1)
        .is_err());
    // A commit by two of four.
    let mut weak = m.clone();
    weak.commit = testing::commit(&chain_id, &c.keys[..2], &c.set, SNAPSHOT_AT, m.block.hash());
    assert!(weak.verify(&chain_id, &c.set).is_err());
}

#[test]
fn only_the_members_cosignatures_are_kept_each_once() {
    let c = chain();
    let chain_id = testing::chain_id();
    let m = manifest(&c);
    let members = m.cosignatures.len();
    let mut padded = m.clone();
    // A member's line twice, and lines of keys outside the set (valid signatures all).
    padded.cosignatures.push(m.cosignatures[0].clone());
    let stranger = Keypair::from_seed([0x5e; 32]);
    let log = Checkpoint {
        origin: acta_ledger::checkpoint::origin(&chain_id),
        size: SNAPSHOT_AT.0,
        root: blocklog::root(&c.store, SNAPSHOT_AT.0).unwrap(),
    };
    for t in 0..50 {
        padded
            .cosignatures
            .push(Cosignature::sign(&stranger, &log, 1_000 + t));
    }
    let verified = padded.verify(&chain_id, &c.set).unwrap();
    assert_eq!(verified.manifest.cosignatures, m.cosignatures);
    assert_eq!(verified.manifest.cosignatures.len(), members);
}

#[test]
fn an_edited_chunk_is_refused() {
    let c = chain();
    let m = manifest(&c);
    let (_, good) = chunks(&file(&c, &m));

    type Edit = Box<dyn Fn(&mut Vec<Chunk>)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("a value changed", Box::new(|cs| cs[1].entries[5].1[0] ^= 1)),
        (
            "an entry dropped",
            Box::new(|cs| {
                cs[1].entries.remove(7);
            }),
        ),
        (
            "an entry added",
            Box::new(|cs| {
                let (k, v) = cs[1].entries[7].clone();
                let mut k2 = k;
                k2.0[31] ^= 1;
                cs[1].entries.insert(8, (k2, v));
            }),
        ),
        ("entries swapped", Box::new(|cs| cs[1].entries.swap(3, 4))),
        ("chunks swapped", Box::new(|cs| cs.swap(0, 1))),
        (
            "the last chunk missing",
            Box::new(|cs| {
                cs.pop();
            }),
        ),
        (
            "a proof from another chunk",
            Box::new(|cs| cs[0].proof = cs[1].proof.clone()),
        ),
    ];
    for (what, edit) in edits {
        let mut cs = good.clone();
        edit(&mut cs);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let mut restore = store.restore(m.height(), m.state_root()).unwrap();
        let outcome = cs
            .into_iter()
            .try_for_each(|chunk| restore.add(chunk))
            .and_then(|()| restore.finish(&m, &[]));
        assert!(outcome.is_err(), "{what} was accepted");
        assert_eq!(store.latest_height().unwrap(), None, "{what}");
    }
}

#[test]
fn a_bad_file_is_refused_with_a_reason() {
    let c = chain();
    let m = manifest(&c);
    let bytes = file(&c, &m);
    let open = |b: &[u8]| -> Result<(), Error> {
        let mut r = FileReader::new(b)?;
        while r.next_chunk()?.is_some() {}
        Ok(())
    };
    open(&bytes).unwrap();
    assert!(open(b"not a snapshot at all").is_err());
    assert!(open(&bytes[..bytes.len() / 2]).is_err(), "a cut file");
    let mut huge = bytes[..16].to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(open(&huge).is_err());
}
