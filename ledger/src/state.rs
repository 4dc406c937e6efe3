//! The authenticated state: a Jellyfish Merkle Tree (crate `jmt`) versioned by height.
//!
//! State keys are `SHA-256(len(namespace) || namespace || key)` with the length as one byte,
//! so keys of different namespaces never collide. Each height has a root; a proof for a key
//! (present or absent) verifies against that root alone.
//!
//! Callers see the small [`AuthenticatedState`] trait, not `jmt`, so the tree can be replaced
//! by a faster one without touching them. Computing an update ([`AuthenticatedState::prepare`])
//! is separate from writing it: execution computes, and only the store writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::{
    proof::SparseMerkleProof,
    storage::{LeafNode, Node, NodeKey, TreeReader},
    KeyHash, OwnedValue, Sha256Jmt, Version,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    tree::{self, NodeAt, NodeSource, TreeNode},
    types::Height,
    Error, Hash, Result,
};

/// The most bytes one state value may have.
pub const STATE_VALUE_BYTES_MAX: usize = 1024 * 1024;

/// The key of `key` in `namespace`.
pub fn state_key(namespace: &str, key: &[u8]) -> Hash {
    let len = u8::try_from(namespace.len()).expect("namespaces are short constants");
    Hash::digest_parts(&[&[len], namespace.as_bytes(), key])
}

/// Writes produced by executing a block: a value, or `None` to delete. Ordered, so that
/// applying them is deterministic.
pub type StateChanges = BTreeMap<Hash, Option<Vec<u8>>>;

/// A computed but not yet written update of the tree to a new height.
#[derive(Debug)]
pub struct StateUpdate {
    pub height: Height,
    pub root: Hash,
    /// The tree's new nodes.
    pub(crate) nodes: Vec<(NodeAt, tree::Written)>,
    /// The previous height's nodes that this height's tree no longer uses.
    pub(crate) stale: Vec<NodeAt>,
    /// The values written (or deleted) at this height, in key order.
    pub(crate) values: Vec<(Hash, Option<Vec<u8>>)>,
}

impl StateUpdate {
    /// The keys this update writes or deletes, in key order.
    pub fn changed_keys(&self) -> impl Iterator<Item = &Hash> {
        self.values.iter().map(|(key, _)| key)
    }
}

/// Proof that a key has a value, or has none, under a state root.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StateProof(SparseMerkleProof<Sha256>);

impl StateProof {
    /// The most bytes an encoded proof may have: a leaf and 256 siblings of at most 65 bytes.
    pub const BYTES_MAX: usize = 32 * 1024;

    /// Decodes a proof of at most [`Self::BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<StateProof> {
        crate::codec::decode("state proof", bytes, Self::BYTES_MAX)
    }

    pub fn encode(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    /// Checks that `key` holds `value` (or, with `None`, holds nothing) under `root`.
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&[u8]>) -> Result<()> {
        self.0
            .verify(jmt::RootHash(root.0), KeyHash(key.0), value)
            .map_err(|e| Error::Proof(format!("state proof for key {key}: {e}")))
    }
}

/// What the rest of Acta needs from the state tree.
pub trait AuthenticatedState {
    /// The root after the block at `height` (height 0: the genesis state).
    fn state_root(&self, height: Height) -> Result<Hash>;
    /// The value of `key` after the block at `height`.
    fn get(&self, key: &Hash, height: Height) -> Result<Option<Vec<u8>>>;
    /// The value with a proof against [`Self::state_root`] at `height`.
    fn get_with_proof(&self, key: &Hash, height: Height) -> Result<(Option<Vec<u8>>, StateProof)>;
    /// Computes the tree at `height` from the tree at `height - 1` and `changes`, without
    /// writing anything.
    fn prepare(&self, changes: &StateChanges, height: Height) -> Result<StateUpdate>;
}

pub(crate) fn state_err(e: anyhow::Error) -> Error {
    Error::State(format!("{e:#}"))
}

/// The trait's methods for any jmt node reader.
pub(crate) fn root_of<R: TreeReader>(reader: &R, height: Height) -> Result<Hash> {
    match Sha256Jmt::new(reader)
        .get_root_hash_option(height.0)
        .map_err(state_err)?
    {
        Some(root) => Ok(Hash(root.0)),
        None => Err(Error::HeightNotFound(height)),
    }
}

/// The value of `key` after `height`, for a reader that keeps every version from 0 to
/// `latest`: the newest version of the key's value at or below `height` (one seek, no walk
/// down the tree; the value store is what the tree's leaves point to).
pub(crate) fn get_of<R: TreeReader>(
    reader: &R,
    latest: Option<Height>,
    key: &Hash,
    height: Height,
) -> Result<Option<Vec<u8>>> {
    if latest.is_none_or(|l| height > l) {
        return Err(Error::HeightNotFound(height));
    }
    reader
        .get_value_option(height.0, KeyHash(key.0))
        .map_err(state_err)
}

pub(crate) fn prove_of<R: TreeReader>(
    reader: &R,
    key: &Hash,
    height: Height,
) -> Result<(Option<Vec<u8>>, StateProof)> {
    root_of(reader, height)?;
    let (value, proof) = Sha256Jmt::new(reader)
        .get_with_proof(KeyHash(key.0), height.0)
        .map_err(state_err)?;
    Ok((value, StateProof(proof)))
}

pub(crate) fn prepare_of<S: NodeSource + Sync>(
    source: &S,
    latest: Option<Height>,
    changes: &StateChanges,
    height: Height,
) -> Result<StateUpdate> {
    let expected = latest.map_or(Height(0), Height::next);
    if height != expected {
        return Err(Error::State(format!(
            "update to height {height}, expected {expected}"
        )));
    }
    if let Some((k, Some(v))) = changes
        .iter()
        .find(|(_, v)| v.as_ref().is_some_and(|v| v.len() > STATE_VALUE_BYTES_MAX))
    {
        return Err(Error::TooLarge {
            what: "state value",
            len: v.len(),
            max: STATE_VALUE_BYTES_MAX,
        })
        .map_err(|e| Error::State(format!("key {k}: {e}")));
    }
    let update = tree::update(source, latest.map(|h| h.0), height.0, &hashed(changes))?;
    Ok(StateUpdate {
        height,
        root: Hash(update.root),
        nodes: update.nodes,
        stale: update.stale,
        values: changes.iter().map(|(k, v)| (*k, v.clone())).collect(),
    })
}

/// Each change's key with the hash of its new value (`None`: deleted), in key order; a
/// large block's values are hashed on two threads, as its tree is updated.
fn hashed(changes: &StateChanges) -> Vec<([u8; 32], Option<[u8; 32]>)> {
    let hash =
        |(k, v): (&Hash, &Option<Vec<u8>>)| (k.0, v.as_ref().map(|v| Sha256::digest(v).into()));
    if changes.len() < tree::PARALLEL_FROM {
        return changes.iter().map(hash).collect();
    }
    let half = changes.len() / 2;
    std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("acta-state-hash".into())
            .spawn_scoped(scope, || {
                changes.iter().skip(half).map(hash).collect::<Vec<_>>()
            });
        let mut out: Vec<_> = changes.iter().take(half).map(hash).collect();
        match second.ok().and_then(|second| second.join().ok()) {
            Some(second) => out.extend(second),
            // No second thread: the rest on this one.
            None => out.extend(changes.iter().skip(half).map(hash)),
        }
        out
    })
}

/// The state tree in memory, for tests, simulations and offline replays.
#[derive(Clone, Debug, Default)]
pub struct MemoryState {
    nodes: HashMap<NodeAt, Arc<TreeNode>, lru::DefaultHasher>,
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    latest: Option<Height>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last height written, if any.
    pub fn latest(&self) -> Option<Height> {
        self.latest
    }

    /// Writes an update prepared against this state.
    pub fn apply(&mut self, update: StateUpdate) -> Result<()> {
        let expected = self.latest.map_or(Height(0), Height::next);
        if update.height != expected {
            return Err(Error::State(format!(
                "update to height {}, expected {expected}",
                update.height
            )));
        }
        self.nodes.extend(
            update
                .nodes
                .into_iter()
                .map(|(at, node)| (at, node.into_node())),
        );
        for (key, value) in update.values {
            self.values.insert((KeyHash(key.0), update.height.0), value);
        }
        self.latest = Some(update.height);
        Ok(())
    }

    /// Prepares and applies `changes` as the next height; returns the new root.
    pub fn commit(&mut self, changes: &StateChanges) -> Result<Hash> {
        let height = self.latest.map_or(Height(0), Height::next);
        let update = self.prepare(changes, height)?;
        let root = update.root;
        self.apply(update)?;
        Ok(root)
    }
}

impl NodeSource for MemoryState {
    fn node(&self, at: &NodeAt) -> Result<Option<Arc<TreeNode>>> {
        Ok(self.nodes.get(at).cloned())
    }
}

impl TreeReader for MemoryState {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let at = NodeAt::decode(&crate::codec::encode(node_key))?;
        match self.nodes.get(&at) {
            None => Ok(None),
            Some(node) => Ok(Some(Node::try_from_slice(&node.encode_jmt())?)),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .values
            .range((key_hash, 0)..=(key_hash, max_version))
            .next_back()
            .and_then(|(_, v)| v.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's resuming restore asks for it; snapshots are restored with
        // `new_overwrite`, from the start (ADR 0014).
        anyhow::bail!("resuming an interrupted restore is not supported: restore again")
    }
}

impl AuthenticatedState for MemoryState {
    fn state_root(&self, height: Height) -> Result<Hash> {
        root_of(self, height)
    }

    fn get(&self, key: &Hash, height: Height) -> Result<Option<Vec<u8>>> {
        get_of(self, self.latest, key, height)
    }

    fn get_with_proof(&self, key: &Hash, height: Height) -> Result<(Option<Vec<u8>>, StateProof)> {
        prove_of(self, key, height)
    }

    fn prepare(&self, changes: &StateChanges, height: Height) -> Result<StateUpdate> {
        prepare_of(self, self.latest, changes, height)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn key(i: u32) -> Hash {
        state_key("test", &i.to_be_bytes())
    }

    fn changes(items: &[(u32, Option<&str>)]) -> StateChanges {
        items
            .iter()
            .map(|(k, v)| (key(*k), v.map(|s| s.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn namespaces_separate_keys() {
        assert_ne!(state_key("ab", b"c"), state_key("a", b"bc"));
    }

    #[test]
    fn values_proofs_and_past_heights() {
        let mut s = MemoryState::new();
        let r0 = s
            .commit(&changes(&[(1, Some("one")), (2, Some("two"))]))
            .unwrap();
        let r1 = s
            .commit(&changes(&[(1, Some("uno")), (3, Some("tres"))]))
            .unwrap();
        let r2 = s.commit(&changes(&[(2, None)])).unwrap();
        let r3 = s.commit(&StateChanges::new()).unwrap();
        assert_eq!(r2, r3, "an empty block keeps the root");
        assert_ne!(r0, r1);

        // Reads at every height see that height's values.
        assert_eq!(
            s.get(&key(1), Height(0)).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(
            s.get(&key(1), Height(1)).unwrap().as_deref(),
            Some(&b"uno"[..])
        );
        assert_eq!(
            s.get(&key(2), Height(1)).unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(s.get(&key(2), Height(2)).unwrap(), None);
        assert_eq!(s.get(&key(3), Height(0)).unwrap(), None);
        assert!(matches!(
            s.get(&key(1), Height(9)),
            Err(Error::HeightNotFound(_))
        ));

        // Inclusion and non-inclusion proofs verify against the root alone.
        for (h, root) in [(0, r0), (1, r1), (2, r2)] {
            assert_eq!(s.state_root(Height(h)).unwrap(), root);
            for k in 1..=4 {
                let (value, proof) = s.get_with_proof(&key(k), Height(h)).unwrap();
                proof.verify(&root, &key(k), value.as_deref()).unwrap();
                // The proof does not prove another value, another key's value or another root.
                let other = Some(&b"forged"[..]);
                assert!(proof.verify(&root, &key(k), other).is_err());
                if value.is_some() {
                    assert!(proof.verify(&root, &key(k), None).is_err());
                    assert!(proof
                        .verify(&root, &key(k + 100), value.as_deref())
                        .is_err());
                }
                let mut bad_root = root;
                bad_root.0[0] ^= 1;
                assert!(proof.verify(&bad_root, &key(k), value.as_deref()).is_err());
            }
        }
    }

    #[test]
    fn proof_decoding_is_bounded_and_round_trips() {
        let mut s = MemoryState::new();
        s.commit(&changes(&[(1, Some("one"))])).unwrap();
        let (_, proof) = s.get_with_proof(&key(1), Height(0)).unwrap();
        assert_eq!(StateProof::decode(&proof.encode()).unwrap(), proof);
        assert!(StateProof::decode(&vec![0; StateProof::BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn updates_must_come_in_height_order() {
        let mut s = MemoryState::new();
        assert!(s.prepare(&StateChanges::new(), Height(1)).is_err());
        let u = s.prepare(&StateChanges::new(), Height(0)).unwrap();
        s.apply(u).unwrap();
        let stale = s.prepare(&StateChanges::new(), Height(1)).unwrap();
        s.commit(&StateChanges::new()).unwrap();
        assert!(s.apply(stale).is_err());
    }

    #[test]
    fn the_root_depends_on_content_not_on_history() {
        let mut a = MemoryState::new();
        a.commit(&changes(&[(1, Some("x")), (2, Some("y"))]))
            .unwrap();
        let mut b = MemoryState::new();
        b.commit(&changes(&[(2, Some("y"))])).unwrap();
        let rb = b.commit(&changes(&[(1, Some("x"))])).unwrap();
        assert_eq!(a.state_root(Height(0)).unwrap(), rb);
    }
}
