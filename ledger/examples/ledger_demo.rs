//! The ledger at work, end to end, on one machine: four validators with unequal stake sign a
//! chain of blocks of real signed transactions (DID creations and sensor attestations);
//! every block lands in RocksDB with its commit, state and index in one synced write. The
//! chain is then checked from genesis as a light client would, and one transaction and one
//! state value are proven against the roots the validators signed.
//!
//! `cargo run -p acta-ledger --example ledger_demo -- [STORE_DIR] [BLOCKS] [TXS_PER_BLOCK]`

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::time::Instant;

use acta_ledger::{
    light::TrustedState,
    merkle,
    state::{state_key, AuthenticatedState, StateChanges},
    store::Store,
    testing::{self, BlockSpec},
    Block, Hash, Height, Transaction,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let temp = tempfile::tempdir()?;
    let path = args
        .first()
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let blocks: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let per_block: u32 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(500);

    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[40, 30, 20, 10]);
    let genesis = Hash::digest(b"acta-demo-genesis");
    println!(
        "chain {chain}: 4 validators, stake 40/30/20/10, store {}",
        path.display()
    );

    let store = Store::open(&path)?;
    if store.latest_height()?.is_some() {
        return Err(format!(
            "{} already holds a chain; give an empty folder",
            path.display()
        )
        .into());
    }
    store.commit_genesis(store.prepare(&StateChanges::new(), Height(0))?)?;

    let started = Instant::now();
    let mut parent = genesis;
    let mut last_commit = None;
    let mut tx_count = 0u64;
    for h in 1..=blocks {
        let height = Height(h);
        // Half the block creates DIDs, half attests sensor readings.
        let txs: Vec<Transaction> = (0..per_block)
            .map(|i| {
                let user = (h as u32) * per_block + i;
                if i % 2 == 0 {
                    testing::create_did_tx(&chain, user, 0)
                } else {
                    testing::attest_tx(&chain, user, h)
                }
            })
            .collect();
        let refs: Vec<&Transaction> = txs.iter().collect();
        if let Some((i, Err(e))) = Transaction::verify_batch(&refs, &chain)
            .into_iter()
            .enumerate()
            .find(|(_, r)| r.is_err())
        {
            return Err(format!("transaction {i} of block {h}: {e}").into());
        }
        let changes: StateChanges = txs
            .iter()
            .map(|tx| {
                (
                    state_key("demo/tx", &tx.id().0),
                    Some(height.0.to_be_bytes().to_vec()),
                )
            })
            .collect();
        let update = store.prepare(&changes, height)?;
        let block = testing::block(
            &chain,
            BlockSpec {
                height,
                parent_hash: parent,
                txs,
                last_commit: last_commit.take(),
                evidence: vec![],
                state_root: update.root,
                validators: &set,
                next_validators: &set,
            },
        );
        let commit = testing::commit(&chain, &keys, &set, height, block.hash());
        store.commit_block(&block, &commit, update, &[])?;
        tx_count += block.txs.len() as u64;
        if h % 10 == 0 || h == blocks {
            println!(
                "  committed block {h:>4}  {}  {} txs",
                block.hash(),
                block.txs.len()
            );
        }
        parent = block.hash();
        last_commit = Some(commit);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {blocks} blocks, {tx_count} transactions in {secs:.2} s: {:.0} tx/s signed, batch-verified, executed into the state tree and stored with one fsync per block",
        tx_count as f64 / secs
    );
    drop(store);

    // An auditor's view: reopen, and trust nothing but the genesis validators.
    let store = Store::open(&path)?;
    let started = Instant::now();
    let mut trusted = TrustedState::genesis(chain.clone(), genesis, set.clone());
    for h in 1..=blocks {
        let block = store.block(Height(h))?.ok_or("block missing")?;
        let commit = store.commit(Height(h))?.ok_or("commit missing")?;
        block.check_body()?;
        trusted = trusted.verify_next(&block.header, &commit, &set)?;
    }
    println!(
        "light client: verified {blocks} headers and commits from genesis in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Prove one transaction is in its block, and the state records it.
    let block = store
        .block(Height(blocks.div_ceil(2)))?
        .ok_or("block missing")?;
    let tx = &block.txs[block.txs.len() / 3];
    let (loc, _) = store.tx(&tx.id())?.ok_or("tx not indexed")?;
    let leaves: Vec<Hash> = block
        .txs
        .iter()
        .map(|t| merkle::leaf_hash(&t.id().0))
        .collect();
    let proof = merkle::inclusion_proof(&leaves, loc.index as usize)?;
    merkle::verify_inclusion(
        &merkle::leaf_hash(&tx.id().0),
        &proof,
        &block.header.txs_root,
    )?;
    assert_eq!(Block::txs_root(&block.txs), block.header.txs_root);
    println!(
        "transaction {} is #{} of block {}: RFC 9162 proof of {} hashes verifies against the signed transactions root",
        tx.id(),
        loc.index,
        loc.height,
        proof.path.len()
    );
    let latest = Height(blocks);
    let key = state_key("demo/tx", &tx.id().0);
    let (value, sproof) = store.get_with_proof(&key, latest)?;
    let root = store
        .block(latest)?
        .ok_or("block missing")?
        .header
        .state_root;
    sproof.verify(&root, &key, value.as_deref())?;
    let absent = state_key("demo/tx", &Hash::ZERO.0);
    let (none, nproof) = store.get_with_proof(&absent, latest)?;
    nproof.verify(&root, &absent, none.as_deref())?;
    println!("state proof for that transaction's record, and a non-inclusion proof for a missing one, verify against the state root signed at height {latest}");
    Ok(())
}
