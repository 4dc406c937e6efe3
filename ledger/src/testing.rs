//! Deterministic fixtures for tests, benchmarks and simulations: keys from seeds, validator
//! sets, and blocks with commit certificates that verify. Nothing here is used by the ledger
//! itself.

use crate::{
    block::{Block, Header},
    state::{state_key, StateChanges},
    tx::{AttestationBatch, Call, Did, IdentityCall, SensorCall, Transaction},
    types::{ChainId, Height, Round, Text, Timestamp, VotingPower},
    validator::{Validator, ValidatorSet},
    vote::{Commit, Evidence, Vote, VoteKind},
    Hash, Keypair,
};

/// The chain id of fixtures.
pub fn chain_id() -> ChainId {
    ChainId::new("acta-test").expect("valid chain id")
}

/// The key whose seed is `tag` followed by `index`, padded with zeros.
pub fn key(tag: u8, index: u32) -> Keypair {
    let mut seed = [0u8; 32];
    seed[0] = tag;
    seed[1..5].copy_from_slice(&index.to_be_bytes());
    Keypair::from_seed(seed)
}

/// `n` validator keys (tag 0xa0) and their set, with the given powers (1 each if empty).
pub fn validators(n: u32, powers: &[u64]) -> (Vec<Keypair>, ValidatorSet) {
    let keys: Vec<Keypair> = (0..n).map(|i| key(0xa0, i)).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| Validator {
                public_key: k.public(),
                power: VotingPower(powers.get(i).copied().unwrap_or(1)),
            })
            .collect(),
    )
    .expect("fixture validator set is valid");
    (keys, set)
}

/// A commit for `block` signed by every key in `keys` that is in `set`.
pub fn commit(
    chain: &ChainId,
    keys: &[Keypair],
    set: &ValidatorSet,
    height: Height,
    block: Hash,
) -> Commit {
    let vote = Vote {
        kind: VoteKind::Precommit,
        height,
        round: Round(0),
        block: Some(block),
    };
    let votes: Vec<_> = keys
        .iter()
        .filter(|k| set.index_of(&k.public()).is_some())
        .map(|k| vote.sign(k, chain))
        .collect();
    Commit::from_votes(height, Round(0), block, set, &votes).expect("fixture votes are valid")
}

/// The `valid_until` of a transaction that never expires, for tests.
pub const NO_EXPIRY: Timestamp = Timestamp(u64::MAX);

/// The `valid_until` of a transaction sent to a running node: the wallets' default
/// lifetime from now.
pub fn valid_until_soon() -> Timestamp {
    Timestamp::now().plus_ms(crate::tx::TX_LIFETIME_DEFAULT_MS)
}

/// A transaction creating the DID of user `index`.
pub fn create_did_tx(chain: &ChainId, index: u32, nonce: u64) -> Transaction {
    let call = Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    });
    Transaction::sign(&key(0xb0, index), chain.clone(), nonce, NO_EXPIRY, call)
}

/// An attestation by device `index` of its `sequence`-th batch.
pub fn attest_tx(chain: &ChainId, index: u32, sequence: u64) -> Transaction {
    let device = key(0xc0, index);
    let batch = AttestationBatch {
        device: Did::from_initial_key(&device.public()),
        stream: Text::new("air/pm25").expect("short"),
        sequence,
        prev_batch_hash: Hash::digest(&sequence.to_be_bytes()),
        window_start: Timestamp(1_700_000_000_000 + sequence * 60_000),
        window_end: Timestamp(1_700_000_060_000 + sequence * 60_000),
        reading_count: 60,
        readings_root: Hash::digest(b"readings"),
        raw_batch_hash: Hash::digest(b"raw"),
    };
    Transaction::sign(
        &device,
        chain.clone(),
        sequence,
        NO_EXPIRY,
        Call::Sensor(SensorCall::Attest(batch)),
    )
}

/// What goes into a block besides the roots, which [`block`] computes.
#[derive(Debug)]
pub struct BlockSpec<'a> {
    pub height: Height,
    pub parent_hash: Hash,
    pub txs: Vec<Transaction>,
    pub last_commit: Option<Commit>,
    pub evidence: Vec<Evidence>,
    pub state_root: Hash,
    pub validators: &'a ValidatorSet,
    pub next_validators: &'a ValidatorSet,
}

/// A block whose header commits to its body.
pub fn block(chain: &ChainId, spec: BlockSpec<'_>) -> Block {
    let count = spec.validators.len() as u64;
    let index = usize::try_from(spec.height.0 % count).expect("index below the set's length");
    let proposer = spec.validators.validators()[index].public_key;
    let header = Header {
        chain_id: chain.clone(),
        height: spec.height,
        time: Timestamp(1_700_000_000_000 + spec.height.0 * 1000),
        parent_hash: spec.parent_hash,
        txs_root: Block::txs_root(&spec.txs),
        results_root: Block::results_root::<Vec<u8>>(&[]),
        state_root: spec.state_root,
        validators_hash: spec.validators.hash(),
        next_validators_hash: spec.next_validators.hash(),
        proposer,
        last_commit_hash: Block::last_commit_hash(spec.last_commit.as_ref()),
        evidence_hash: Block::evidence_hash(&spec.evidence),
    };
    Block {
        header,
        txs: spec.txs,
        last_commit: spec.last_commit,
        evidence: spec.evidence,
    }
}

/// State changes that mark a block: `height` under ("test", "height") and `n` values keyed
/// by height and position.
pub fn height_changes(height: Height, n: u32) -> StateChanges {
    let mut changes = StateChanges::new();
    changes.insert(
        state_key("test", b"height"),
        Some(height.0.to_be_bytes().to_vec()),
    );
    for i in 0..n {
        let mut k = height.0.to_be_bytes().to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        changes.insert(state_key("test", &k), Some(Hash::digest(&k).0.to_vec()));
    }
    changes
}

/// A proof bundle of one state value (`did/resident`) at height 1 of a fixture chain of four
/// validators of power 10, signed by three of them, and the genesis validator set it
/// verifies against (chain [`chain_id`]). It answers `GET /state/did/7265736964656e74`.
pub fn proof_bundle() -> (crate::bundle::ProofBundle, ValidatorSet) {
    use crate::{
        bundle::{ProofBundle, StateEntry, BUNDLE_VERSION},
        state::{AuthenticatedState, MemoryState},
    };
    let chain = chain_id();
    let (keys, set) = validators(4, &[10, 10, 10, 10]);
    let mut state = MemoryState::new();
    state
        .commit(&StateChanges::new())
        .expect("a memory state commits");
    let key = b"resident".to_vec();
    let mut changes = StateChanges::new();
    changes.insert(state_key("did", &key), Some(b"a DID record".to_vec()));
    let root = state.commit(&changes).expect("a memory state commits");
    let block = block(
        &chain,
        BlockSpec {
            height: Height(1),
            parent_hash: Hash::digest(b"genesis"),
            txs: vec![],
            last_commit: None,
            evidence: vec![],
            state_root: root,
            validators: &set,
            next_validators: &set,
        },
    );
    let commit = commit(&chain, &keys[..3], &set, Height(1), block.hash());
    let (value, proof) = state
        .get_with_proof(&state_key("did", &key), Height(1))
        .expect("the value was just written");
    let bundle = ProofBundle {
        // "resident" in hex: the bundle answers a raw state read of the value.
        query: Some("/state/did/7265736964656e74".into()),
        version: BUNDLE_VERSION,
        chain_id: chain,
        validator_changes: vec![],
        header: block.header,
        commit,
        state: vec![StateEntry {
            namespace: "did".into(),
            key,
            value,
            proof: proof.encode(),
        }],
        tx: None,
        readings: vec![],
        ballots: vec![],
        all_ballots: vec![],
        checkpoint: None,
    };
    (bundle, set)
}

/// A child of [`stored_tree_node`]: its nibble, hash and version, and `None` for a leaf or
/// the leaves under an internal child.
pub type TreeChild = (u8, [u8; 32], u64, Option<u64>);

/// An internal tree node of the given children as the store writes it (compact, tag 3) and
/// as jmt encodes it (tag 1), for the golden file. Children at nibbles over 15 are ignored.
pub fn stored_tree_node(children: &[TreeChild]) -> (Vec<u8>, Vec<u8>) {
    let node = crate::tree::TreeNode::example_internal(children);
    (node.encode(), node.encode_jmt())
}

/// Decodes a stored tree node and encodes it again in the encoding it came in (jmt's for
/// tag 1, the store's otherwise), for the fuzz tests; `None` if the bytes are no node.
pub fn reencode_stored_tree_node(bytes: &[u8]) -> Option<Vec<u8>> {
    let node = crate::tree::TreeNode::decode(bytes).ok()?;
    Some(if bytes.first() == Some(&1) {
        node.encode_jmt()
    } else {
        node.encode()
    })
}

/// What a pruned store of the current layout holds in `state_latest` and in `state_values`
/// (each as borsh `Vec<(key, value)>`, in key order) once a fresh one at `path` has written
/// the key `state_key("golden", [1])` at heights 0 (`[1]`), 1 (`[2]`) and 2 (deleted), and
/// `state_key("golden", [2])` at 1 (`[3]`), for the golden file.
#[cfg(feature = "store")]
pub fn stored_state_values(path: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    use crate::state::{state_key, StateChanges};
    let store = crate::store::Store::open_with(path, crate::store::History::Prunable)
        .expect("a store in a fresh folder");
    let (k, j) = (state_key("golden", &[1]), state_key("golden", &[2]));
    let heights: [StateChanges; 3] = [
        [(k, Some(vec![1]))].into_iter().collect(),
        [(k, Some(vec![2])), (j, Some(vec![3]))]
            .into_iter()
            .collect(),
        [(k, None)].into_iter().collect(),
    ];
    for changes in &heights {
        store.commit_state_only(changes).expect("written");
    }
    store.state_column_families()
}
