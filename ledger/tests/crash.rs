//! Crash safety: a child process writes blocks in a loop and is killed with SIGKILL at
//! random moments, many times. After each kill the store must reopen at a fully committed
//! height, with block, commit, index and state root consistent at every height, and with
//! every height the child reported as committed still there.
//!
//! The child is this test binary itself, run again with the ignored `crash_writer` test and
//! an environment variable naming the store. With a second variable set, the child also
//! prunes the store to its latest `RETAIN` heights from another thread, in small steps, so
//! that kills land in the middle of pruning too.
//!
//! A third child restores a snapshot file into a store and is killed at random moments of
//! the restore: the store it leaves never claims a height it does not wholly hold, and a
//! restore started again gives the same state root.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use acta_ledger::{
    light::verify_commit,
    state::{state_key, AuthenticatedState, StateChanges},
    store::{History, Store, TxLocation},
    testing::{self, BlockSpec},
    Error, Hash, Height,
};
use rand::{Rng, SeedableRng};

const STORE_VAR: &str = "ACTA_CRASH_STORE";
const PRUNE_VAR: &str = "ACTA_CRASH_PRUNE";
const SNAPSHOT_VAR: &str = "ACTA_CRASH_SNAPSHOT";
/// Heights of state the pruning child keeps.
const RETAIN: u64 = 8;
const KILLS: usize = 25;
const TXS_PER_BLOCK: u32 = 40;
const KEYS_PER_BLOCK: u32 = 300;

fn genesis_hash() -> Hash {
    Hash::digest(b"crash-test-genesis")
}

/// The child: appends blocks to the store forever, printing `ACK <height>` after each
/// synced write. Run only by `kills_at_random_moments_lose_nothing_committed`.
#[test]
#[ignore = "child process of the crash test; does nothing on its own"]
fn crash_writer() {
    let Ok(path) = std::env::var(STORE_VAR) else {
        return;
    };
    let prune = std::env::var(PRUNE_VAR).is_ok();
    let history = if prune {
        History::Prunable
    } else {
        History::Archive
    };
    let store = std::sync::Arc::new(Store::open_with(&path, history).expect("open store"));
    if prune {
        let store = store.clone();
        thread::spawn(move || loop {
            let latest = store.latest_height().expect("read latest height");
            match latest.map(|l| Height((l.0 + 1).saturating_sub(RETAIN))) {
                Some(oldest) if oldest > Height(0) => {
                    if store.prune(oldest, 64).expect("prune").done {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                _ => thread::sleep(Duration::from_millis(1)),
            }
        });
    }
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let latest = match store.latest_height().expect("read latest height") {
        Some(h) => h,
        None => {
            let genesis = store
                .prepare(&StateChanges::new(), Height(0))
                .expect("prepare genesis");
            store.commit_genesis(genesis).expect("write genesis");
            Height(0)
        }
    };
    let (mut parent, mut last_commit) = if latest == Height(0) {
        (genesis_hash(), None)
    } else {
        let block = store
            .block(latest)
            .expect("read")
            .expect("latest block exists");
        (block.hash(), store.commit(latest).expect("read"))
    };
    let mut height = latest.next();
    // Bounded so that a child that is somehow never killed still ends.
    while height.0 < 1_000_000 {
        let update = store
            .prepare(&testing::height_changes(height, KEYS_PER_BLOCK), height)
            .expect("prepare");
        let block = testing::block(
            &chain,
            BlockSpec {
                height,
                parent_hash: parent,
                txs: (0..TXS_PER_BLOCK)
                    .map(|i| testing::create_did_tx(&chain, i, height.0))
                    .collect(),
                last_commit: last_commit.take(),
                evidence: vec![],
                state_root: update.root,
                validators: &set,
                next_validators: &set,
            },
        );
        let commit = testing::commit(&chain, &keys, &set, height, block.hash());
        store
            .commit_block(&block, &commit, update, &[])
            .expect("commit block");
        println!("\nACK {}", height.0);
        parent = block.hash();
        last_commit = Some(commit);
        height = height.next();
    }
}

/// Checks every height from `from` to the latest, returning the latest.
fn check_store(store: &Store, from: Height) -> Height {
    let chain = testing::chain_id();
    let (_, set) = testing::validators(4, &[]);
    let latest = store
        .latest_height()
        .unwrap()
        .expect("genesis was written before any block");
    // Blocks stay from the first height; state from the oldest kept.
    let oldest = store.oldest_state();
    let mut parent = if from.0 <= 1 {
        genesis_hash()
    } else {
        store
            .block(Height(from.0 - 1))
            .unwrap()
            .expect("earlier block")
            .hash()
    };
    for h in from.0.max(1)..=latest.0 {
        let h = Height(h);
        let block = store
            .block(h)
            .unwrap()
            .unwrap_or_else(|| panic!("block {h} missing"));
        let commit = store
            .commit(h)
            .unwrap()
            .unwrap_or_else(|| panic!("commit {h} missing"));
        assert_eq!(block.height(), h);
        assert_eq!(block.header.parent_hash, parent, "chain broken at {h}");
        block.check_body().unwrap();
        verify_commit(&chain, &set, &commit, h, &block.hash()).unwrap();
        assert_eq!(
            store.block_by_hash(&block.hash()).unwrap().as_ref(),
            Some(&block)
        );
        for (i, tx) in block.txs.iter().enumerate() {
            let loc = store.tx_location(&tx.id()).unwrap();
            assert_eq!(
                loc,
                Some(TxLocation {
                    height: h,
                    index: i as u32
                }),
                "index at {h}"
            );
        }
        parent = block.hash();
        if h < oldest {
            assert!(
                matches!(store.state_root(h), Err(Error::Pruned { .. })),
                "state {h} below the oldest kept, {oldest}, is refused"
            );
            continue;
        }
        let root = block.header.state_root;
        assert_eq!(store.state_root(h).unwrap(), root, "state root at {h}");
        let marker = state_key("test", b"height");
        let (value, proof) = store.get_with_proof(&marker, h).unwrap();
        assert_eq!(value, Some(h.0.to_be_bytes().to_vec()), "state at {h}");
        proof.verify(&root, &marker, value.as_deref()).unwrap();
        // A value written at the oldest height kept, read at this one.
        let mut k = oldest.0.max(1).to_be_bytes().to_vec();
        k.extend_from_slice(&0u32.to_be_bytes());
        let (value, proof) = store.get_with_proof(&state_key("test", &k), h).unwrap();
        assert_eq!(value, Some(Hash::digest(&k).0.to_vec()), "old value at {h}");
        proof
            .verify(&root, &state_key("test", &k), value.as_deref())
            .unwrap();
    }
    // Nothing of a later block is there.
    let next = latest.next();
    assert!(
        store.block(next).unwrap().is_none(),
        "block {next} is stored past the latest height {latest}"
    );
    assert!(
        store.commit(next).unwrap().is_none(),
        "commit {next} is stored past the latest height {latest}"
    );
    assert!(
        store.state_root(next).is_err(),
        "state {next} is stored past the latest height {latest}"
    );
    latest
}

#[test]
fn kills_at_random_moments_lose_nothing_committed() {
    kill_repeatedly(false);
}

#[test]
fn kills_while_pruning_lose_nothing_committed_nor_kept() {
    kill_repeatedly(true);
}

fn kill_repeatedly(prune: bool) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xac7a);
    let mut acked = Height(0);
    let mut checked_to = Height(0);
    for round in 0..KILLS {
        let mut command = Command::new(&exe);
        if prune {
            command.env(PRUNE_VAR, "1");
        }
        let mut child = command
            .args([
                "crash_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(STORE_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(h) = line
                    .strip_prefix("ACK ")
                    .and_then(|h| h.trim().parse::<u64>().ok())
                {
                    let _ = tx.send(h);
                }
            }
        });
        // Wait for the child to commit at least one block this round, then let it run a
        // random while longer so that the kill lands anywhere in its write loop.
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(h) => break h,
                Err(_) if Instant::now() < deadline => continue,
                Err(e) => panic!("round {round}: child committed nothing within 60 s: {e}"),
            }
        };
        acked = acked.max(Height(first));
        thread::sleep(Duration::from_millis(rng.gen_range(0..120)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        for h in rx.try_iter() {
            acked = acked.max(Height(h));
        }

        let store = Store::open(dir.path()).unwrap();
        let latest = check_store(&store, Height(checked_to.0.saturating_sub(1)));
        if prune {
            // A store whose pruning was cut off prunes on: nothing stale is left behind.
            let oldest = store.oldest_state();
            while !store.prune(oldest, 1000).unwrap().done {}
            check_store(&store, oldest);
        }
        assert!(
            latest >= acked,
            "round {round}: store at {latest} lost acknowledged {acked}"
        );
        assert!(
            latest.0 <= acked.0 + 1,
            "round {round}: store at {latest} is ahead of {acked}+1"
        );
        eprintln!("round {round}: killed with {acked} acknowledged; reopened whole at {latest}");
        checked_to = latest;
    }
    assert!(
        acked.0 >= KILLS as u64,
        "the writer made progress in every round"
    );
    // And at the end, every height from the first is still whole.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(check_store(&store, Height(1)), checked_to);
    if prune {
        assert!(
            store.oldest_state().0 + RETAIN > checked_to.0 / 2,
            "the child pruned as it went: state kept from {} of {checked_to}",
            store.oldest_state()
        );
    }
}

/// The child: restores the snapshot file named by [`SNAPSHOT_VAR`] into the store named by
/// [`STORE_VAR`], printing `DONE` once the restore is whole. Run only by
/// `kills_during_a_snapshot_restore_leave_no_half_store`.
#[test]
#[ignore = "child process of the crash test; does nothing on its own"]
fn crash_restorer() {
    let (Ok(path), Ok(file)) = (std::env::var(STORE_VAR), std::env::var(SNAPSHOT_VAR)) else {
        return;
    };
    let store = std::sync::Arc::new(Store::open(&path).expect("open store"));
    let (_, set) = testing::validators(4, &[]);
    let input = std::io::BufReader::new(std::fs::File::open(file).expect("open snapshot"));
    acta_ledger::snapshot::restore_file(input, &store, &testing::chain_id(), &set, |_| vec![])
        .expect("restore");
    println!("\nDONE");
}

/// A chain of `blocks` blocks in `dir` with the checkpoints cosigned by three of four
/// validators, and its snapshot at `at` written to `file`. Returns the state root at `at`.
fn snapshot_source(dir: &std::path::Path, blocks: u64, at: Height, file: &std::path::Path) -> Hash {
    use acta_ledger::checkpoint::{Checkpoint, Cosignature};
    let store = Store::open(dir).unwrap();
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let genesis = store.prepare(&StateChanges::new(), Height(0)).unwrap();
    store.commit_genesis(genesis).unwrap();
    let (mut parent, mut last_commit) = (genesis_hash(), None);
    for h in 1..=blocks {
        let height = Height(h);
        let update = store
            .prepare(&testing::height_changes(height, KEYS_PER_BLOCK), height)
            .unwrap();
        let block = testing::block(
            &chain,
            BlockSpec {
                height,
                parent_hash: parent,
                txs: vec![],
                last_commit: last_commit.take(),
                evidence: vec![],
                state_root: update.root,
                validators: &set,
                next_validators: &set,
            },
        );
        let commit = testing::commit(&chain, &keys, &set, height, block.hash());
        store.commit_block(&block, &commit, update, &[]).unwrap();
        if h == at.0 {
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
    let manifest = acta_ledger::snapshot::Manifest::of(&store, &chain, at, vec![], set).unwrap();
    let out = std::fs::File::create(file).unwrap();
    acta_ledger::snapshot::write_file(&store, &manifest, out).unwrap();
    store.state_root(at).unwrap()
}

/// Runs the restoring child into `store`; kills it after `kill_after` unless it is done
/// before. Returns whether it finished.
fn restore_in_child(
    store: &std::path::Path,
    file: &std::path::Path,
    kill_after: Option<Duration>,
) -> bool {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_restorer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STORE_VAR, store)
        .env(SNAPSHOT_VAR, file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.trim() == "DONE")
    });
    if let Some(t) = kill_after {
        thread::sleep(t);
        child.kill().unwrap();
    }
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn kills_during_a_snapshot_restore_leave_no_half_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snapshot");
    let at = Height(60);
    let root = snapshot_source(&dir.path().join("source"), 64, at, &file);
    // A whole restore, to time it.
    let started = Instant::now();
    let whole = dir.path().join("whole");
    assert!(restore_in_child(&whole, &file, None));
    let took = started.elapsed();
    let store = Store::open(&whole).unwrap();
    assert_eq!(store.state_root(at).unwrap(), root);
    drop(store);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5a95);
    let mut cut = 0;
    for round in 0..12 {
        let target = dir.path().join(format!("round-{round}"));
        let kill_after = took.mul_f64(rng.gen_range(0.05..1.0));
        let done = restore_in_child(&target, &file, Some(kill_after));
        let store = Store::open(&target).unwrap();
        match store.latest_height().unwrap() {
            // Killed before the last write: no height. The store is thrown away (a restore
            // over what it holds is refused once it holds any of the state), and a restore
            // into a new folder gives the same root.
            None => {
                assert!(!done, "round {round}: DONE printed, but no height stored");
                cut += 1;
                drop(store);
                let again = dir.path().join(format!("round-{round}-again"));
                assert!(restore_in_child(&again, &file, None), "round {round}");
                let store = Store::open(&again).unwrap();
                assert_eq!(store.state_root(at).unwrap(), root, "round {round}");
            }
            // Killed after it: the whole state.
            Some(h) => {
                assert_eq!(h, at, "round {round}");
                assert_eq!(store.state_root(at).unwrap(), root, "round {round}");
            }
        }
    }
    assert!(cut >= 3, "only {cut} kills landed inside a restore");
}
