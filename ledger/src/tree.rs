//! The state tree's update, computed once per block (issue 17, item 3; ADR 0022).
//!
//! The tree is jmt 0.12's Jellyfish Merkle tree, unchanged: the same nodes stored under the
//! same keys, with the same hashes. jmt still reads it (each node handed to it in jmt's own
//! encoding, [`TreeNode::encode_jmt`]), proves from it, iterates it for snapshots and
//! restores it, so every root, proof and snapshot is what it was. Only the update, and
//! since 2026-12-07 the stored encoding of an internal node (a quarter fewer bytes,
//! [`TreeNode::encode`]), are Acta's. jmt applies a block's writes one key at a time,
//! each walking down from the root through a map of cloned nodes; [`update`] walks the
//! tree once for the whole block, visits each touched node once, hashes each new node once,
//! and reads nodes through a [`NodeSource`] that may keep decoded nodes in memory (the
//! store does).
//!
//! The tree after an update is the one jmt makes: a leaf sits at the shortest path no other
//! key shares, an internal node never has a leaf as its only child, and every node on the
//! way to a written key is new at the block's version. What this module adds to jmt's output
//! is that the previous root is always stale at the new version (jmt leaves a root it copies
//! or a `Null` root out of its stale index; the store indexed those itself before).

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Mutex,
};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A key hash, as the tree orders and addresses keys.
pub(crate) type Key = [u8; 32];

/// jmt's hash of an empty subtree.
const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";

/// Reads a LEB128 `u64` written by [`put_varint`] through `take`, refusing one longer than
/// it needs to be or over 64 bits.
fn read_varint<'a>(take: &mut impl FnMut(usize) -> Result<&'a [u8]>) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..VARINT_MAX {
        let b = take(1)?[0];
        // The tenth byte holds the top bit alone; a last byte of 0 after the first is an
        // encoding longer than it needs to be.
        if (i == VARINT_MAX - 1 && b > 1) || (i > 0 && b == 0) {
            break;
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt("node does not decode"))
}

/// The first byte of a stored node: jmt's tags for `Null`, `Internal` and `Leaf`, and the
/// compact internal node the store writes since 2026-12-07.
const TAG_NULL: u8 = 0;
const TAG_INTERNAL_JMT: u8 = 1;
const TAG_LEAF: u8 = 2;
const TAG_INTERNAL: u8 = 3;
/// The most bytes of a LEB128 `u64`.
const VARINT_MAX: usize = 10;

/// Appends `v` as LEB128: seven bits a byte, the lowest first, the top bit set on every
/// byte but the last.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v.to_le_bytes()[0] | 0x80);
        v >>= 7;
    }
    out.push(v.to_le_bytes()[0]);
}

/// The most nibbles a path has: a whole key.
const NIBBLES: u8 = 64;

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("stored state tree node: {what}"))
}

/// The `i`th nibble of `key`, high nibble first.
fn nibble(key: &Key, i: u8) -> u8 {
    let b = key[usize::from(i / 2)];
    if i.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// A path from the root: the first `len` nibbles of `bytes`, the rest zero (jmt's
/// `NibblePath`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct Path {
    len: u8,
    bytes: [u8; 32],
}

impl Path {
    pub(crate) const ROOT: Path = Path {
        len: 0,
        bytes: [0; 32],
    };

    pub(crate) fn len(&self) -> u8 {
        self.len
    }

    /// Whether `key` starts with this path.
    fn is_prefix_of(&self, key: &Key) -> bool {
        (0..self.len).all(|i| nibble(&self.bytes, i) == nibble(key, i))
    }

    /// The path one nibble further down. Only called below depth 64: two different keys
    /// part before their last nibble.
    fn child(&self, n: u8) -> Path {
        debug_assert!(self.len < NIBBLES && n < 16);
        let mut p = *self;
        let i = usize::from(self.len / 2);
        if self.len.is_multiple_of(2) {
            p.bytes[i] = n << 4;
        } else {
            p.bytes[i] |= n;
        }
        p.len += 1;
        p
    }
}

/// Where a node is stored: jmt's `NodeKey`, the version that wrote it and its path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub(crate) struct NodeAt {
    pub(crate) version: u64,
    pub(crate) path: Path,
}

impl NodeAt {
    pub(crate) fn new(version: u64, path: Path) -> NodeAt {
        NodeAt { version, path }
    }

    /// jmt's borsh encoding of the `NodeKey`: the version, the number of nibbles (both
    /// u64 little-endian), then the path's bytes as a borsh `Vec<u8>`.
    pub(crate) fn key(&self) -> EncodedAt {
        let n = usize::from(self.path.len).div_ceil(2);
        let mut buf = [0u8; 52];
        buf[..8].copy_from_slice(&self.version.to_le_bytes());
        buf[8..16].copy_from_slice(&u64::from(self.path.len).to_le_bytes());
        buf[16..20].copy_from_slice(&u32::try_from(n).expect("at most 32").to_le_bytes());
        buf[20..20 + n].copy_from_slice(&self.path.bytes[..n]);
        EncodedAt { buf, len: 20 + n }
    }

    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.key().as_ref().to_vec()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<NodeAt> {
        let bad = || corrupt("node key does not decode");
        let version = u64::from_le_bytes(
            bytes
                .get(..8)
                .ok_or_else(bad)?
                .try_into()
                .unwrap_or_default(),
        );
        let len = u64::from_le_bytes(
            bytes
                .get(8..16)
                .ok_or_else(bad)?
                .try_into()
                .unwrap_or_default(),
        );
        let n = u32::from_le_bytes(
            bytes
                .get(16..20)
                .ok_or_else(bad)?
                .try_into()
                .unwrap_or_default(),
        );
        let len = u8::try_from(len)
            .ok()
            .filter(|l| *l <= NIBBLES)
            .ok_or_else(bad)?;
        let n = usize::try_from(n).map_err(|_| bad())?;
        if n != usize::from(len).div_ceil(2) || bytes.len() != 20 + n {
            return Err(bad());
        }
        let mut path = Path {
            len,
            bytes: [0; 32],
        };
        path.bytes[..n].copy_from_slice(&bytes[20..]);
        if len % 2 == 1 && path.bytes[n - 1] & 0x0f != 0 {
            return Err(bad());
        }
        Ok(NodeAt { version, path })
    }
}

/// A [`NodeAt`] encoded, without allocating.
pub(crate) struct EncodedAt {
    buf: [u8; 52],
    len: usize,
}

impl AsRef<[u8]> for EncodedAt {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A leaf: a key and the hash of its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Leaf {
    pub(crate) key: Key,
    pub(crate) value_hash: [u8; 32],
}

impl Leaf {
    /// jmt's encoding of a leaf node (tag 2, the key, the value's hash), appended to `out`.
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(TAG_LEAF);
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.value_hash);
    }

    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(LEAF_DOMAIN);
        h.update(self.key);
        h.update(self.value_hash);
        h.finalize().into()
    }
}

/// An internal node's reference to a child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Child {
    pub(crate) hash: [u8; 32],
    pub(crate) version: u64,
    pub(crate) leaf: bool,
    /// 1 for a leaf.
    pub(crate) leaf_count: u64,
}

/// A child as a cached node holds it (80 bytes rather than the 96 of a [`Child`] beside a
/// key): a leaf with its key once known (jmt's node does not hold the keys of its leaves,
/// so a node read from storage learns them as its leaves are read, and a node made here
/// knows them), or an internal node with the leaves under it.
///
/// A leaf's key is shared by the threads that read a cached node. Unlike a `OnceLock`,
/// making one already known costs no synchronisation (a node made by an update knows the
/// keys of all its leaves), and the flag sits beside the enum's tag rather than in a
/// struct of its own. Whoever sets a key sets the same one (the leaf's own, read and
/// checked against its hash), so a reader that sees it known sees that key.
#[derive(Debug)]
enum Slot {
    Leaf {
        hash: [u8; 32],
        version: u64,
        /// The key in four 8-byte words, once `known`.
        key: [AtomicU64; 4],
        known: AtomicBool,
    },
    Internal {
        hash: [u8; 32],
        version: u64,
        leaf_count: u64,
    },
}

impl Slot {
    fn new(child: &Child, key: Option<Key>) -> Slot {
        if child.leaf {
            Slot::Leaf {
                hash: child.hash,
                version: child.version,
                key: std::array::from_fn(|i| AtomicU64::new(key.map_or(0, |k| word(&k, i)))),
                known: AtomicBool::new(key.is_some()),
            }
        } else {
            Slot::Internal {
                hash: child.hash,
                version: child.version,
                leaf_count: child.leaf_count,
            }
        }
    }

    fn child(&self) -> Child {
        match self {
            Slot::Leaf { hash, version, .. } => Child {
                hash: *hash,
                version: *version,
                leaf: true,
                leaf_count: 1,
            },
            Slot::Internal {
                hash,
                version,
                leaf_count,
            } => Child {
                hash: *hash,
                version: *version,
                leaf: false,
                leaf_count: *leaf_count,
            },
        }
    }

    fn leaf_count(&self) -> u64 {
        match self {
            Slot::Leaf { .. } => 1,
            Slot::Internal { leaf_count, .. } => *leaf_count,
        }
    }

    /// The key of a leaf, if known.
    fn key(&self) -> Option<Key> {
        let Slot::Leaf { key, known, .. } = self else {
            return None;
        };
        if !known.load(Ordering::Acquire) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, w) in key.iter().enumerate() {
            out[8 * i..8 * i + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        Some(out)
    }

    /// Records the key of a leaf, read from storage, unless it is known already (a node
    /// other threads may be reading is not written to again).
    fn learn(&self, leaf_key: &Key) {
        if let Slot::Leaf { key, known, .. } = self {
            if known.load(Ordering::Acquire) {
                return;
            }
            for (i, w) in key.iter().enumerate() {
                w.store(word(leaf_key, i), Ordering::Relaxed);
            }
            known.store(true, Ordering::Release);
        }
    }
}

/// The `i`th of a key's four 8-byte words.
fn word(key: &Key, i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&key[8 * i..8 * i + 8]);
    u64::from_le_bytes(w)
}

/// An internal node: up to 16 children, by nibble, packed (most nodes deep in a large tree
/// have two or three).
#[derive(Debug, Default)]
pub(crate) struct Internal {
    /// Bit `i` set: nibble `i` has a child.
    present: u16,
    /// The children in nibble order.
    slots: Box<[Slot]>,
    /// The upper hashes of the node's inner binary tree ([`Ranges`]), kept for nodes with
    /// many children so that a change of one child rehashes 5 ranges rather than up to 15.
    /// Not part of the stored node.
    ranges: Option<Box<Ranges>>,
}

/// The hashes of a node's upper 7 ranges of slots: 4 of 4 slots, 2 of 8, then the node. The
/// 8 ranges of 2 slots are not kept (256 bytes a node): the one a change falls in and its
/// neighbour are hashed again from the slots, one hash more than keeping them.
type Ranges = [[u8; 32]; 7];

/// Where the node's own hash is in its [`Ranges`].
const NODE_RANGE: usize = 6;

/// Nodes with at least this many children keep their [`Ranges`].
const RANGES_KEPT_FROM: usize = 5;

/// The hashes of the ranges of `children` (jmt's rule: an empty range is the placeholder, a
/// range holding one leaf alone is that leaf's hash, any other range hashes its two halves).
/// With `old`, the ranges of another node, ranges without a slot in `changed` are taken
/// from it (and ranges of 2 slots are hashed only under a range of 4 that changed).
fn ranges(children: &[Option<Child>; 16], old: Option<&Ranges>, changed: u16) -> Ranges {
    let mut out = [[0u8; 32]; 7];
    // The level below: each range's hash, its number of children (at most 2 counted), and
    // whether its one child is a leaf.
    let mut below: [([u8; 32], u8, bool); 16] = std::array::from_fn(|i| match &children[i] {
        None => (PLACEHOLDER, 0, false),
        Some(c) => (c.hash, 1, c.leaf),
    });
    // The slots under each range of 4, and where the level's ranges are in `out`.
    let quad = |j: usize| 0xfu16 << (4 * j);
    let mut at = 0;
    for level in 1..=4u32 {
        let width = 1usize << level;
        let n = 16 >> level;
        for j in 0..n {
            let (lh, lc, ll) = below[2 * j];
            let (rh, rc, rl) = below[2 * j + 1];
            let count = (lc + rc).min(2);
            let lone_leaf = count == 1 && if lc == 1 { ll } else { rl };
            let mask = (u16::MAX >> (16 - width)) << (j * width);
            let hash = match old {
                // A range of 2 under a kept range of 4 is not needed.
                Some(_) if level == 1 && changed & quad(j / 2) == 0 => [0; 32],
                Some(old) if level > 1 && changed & mask == 0 => old[at + j],
                _ if count == 0 => PLACEHOLDER,
                _ if lone_leaf => {
                    if lc == 1 {
                        lh
                    } else {
                        rh
                    }
                }
                _ => internal_hash(&lh, &rh),
            };
            if level > 1 {
                out[at + j] = hash;
            }
            below[j] = (hash, count, lone_leaf);
        }
        if level > 1 {
            at += n;
        }
    }
    out
}

impl PartialEq for Internal {
    fn eq(&self, other: &Internal) -> bool {
        self.present == other.present
            && self
                .slots
                .iter()
                .zip(other.slots.iter())
                .all(|(a, b)| a.child() == b.child())
    }
}

impl Eq for Internal {}

fn internal_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(INTERNAL_DOMAIN);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

impl Internal {
    /// A node of the children given by nibble, with the keys known of its leaves; its
    /// hashes computed, reusing those of `old` for ranges without a slot in `changed`.
    fn hashed(
        children: &[Option<Child>; 16],
        keys: &[Option<Key>; 16],
        old: Option<&Internal>,
        changed: u16,
    ) -> (Internal, [u8; 32]) {
        let r = ranges(children, old.and_then(|o| o.ranges.as_deref()), changed);
        let mut node = Internal::new(children, keys);
        if node.slots.len() >= RANGES_KEPT_FROM {
            node.ranges = Some(Box::new(r));
        }
        (node, r[NODE_RANGE])
    }

    /// A node of the children given by nibble, with the keys known of its leaves.
    fn new(children: &[Option<Child>; 16], keys: &[Option<Key>; 16]) -> Internal {
        let mut present = 0u16;
        let mut slots = Vec::with_capacity(children.iter().flatten().count());
        for (i, c) in children.iter().enumerate() {
            if let Some(child) = c {
                present |= 1 << i;
                slots.push(Slot::new(child, keys[i]));
            }
        }
        Internal {
            present,
            slots: slots.into_boxed_slice(),
            ranges: None,
        }
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let below = (self.present & ((1u16 << i) - 1)).count_ones();
        self.slots.get(below as usize)
    }

    /// The children by nibble.
    fn unpacked(&self) -> [Option<Child>; 16] {
        std::array::from_fn(|i| self.slot(i).map(Slot::child))
    }

    /// The keys known of the leaf children, by nibble.
    fn keys(&self) -> [Option<Key>; 16] {
        std::array::from_fn(|i| self.slot(i).and_then(Slot::key))
    }

    /// The children with their nibbles, in order.
    #[cfg(test)]
    fn children(&self) -> impl Iterator<Item = (u8, Child)> + '_ {
        (0u8..16)
            .filter(|i| self.present & (1 << i) != 0)
            .zip(self.slots.iter().map(Slot::child))
    }

    /// The leaves under the node (saturating: only a corrupt store could pass `u64::MAX`,
    /// and [`TreeNode::decode`] refuses one whose counts overflow).
    pub(crate) fn leaf_count(&self) -> u64 {
        self.slots
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.leaf_count()))
    }

    /// The leaves under the node, or `None` if their count overflows.
    fn checked_leaf_count(&self) -> Option<u64> {
        self.slots
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.leaf_count()))
    }

    /// The store's encoding of an internal node, appended to `out`: tag 3, a `u16` LE with
    /// bit `i` set for each child at nibble `i`, a `u16` LE with the bits of the children
    /// that are leaves, then for each child in nibble order its hash (32 bytes), its version
    /// (LEB128) and, for an internal child, its leaf count (LEB128). The number of children
    /// and the node's leaf count, which jmt's encoding also writes, follow from these. A
    /// node of 16 children takes about 600 bytes where jmt's takes 817.
    fn encode_compact(&self, out: &mut Vec<u8>) {
        out.push(TAG_INTERNAL);
        out.extend_from_slice(&self.present.to_le_bytes());
        let mut leaves = 0u16;
        let mut bits = self.present;
        for slot in self.slots.iter() {
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            if matches!(slot, Slot::Leaf { .. }) {
                leaves |= 1 << i;
            }
        }
        out.extend_from_slice(&leaves.to_le_bytes());
        for slot in self.slots.iter() {
            let c = slot.child();
            out.extend_from_slice(&c.hash);
            put_varint(out, c.version);
            if !c.leaf {
                put_varint(out, c.leaf_count);
            }
        }
    }

    /// jmt's hash: a binary Merkle tree over the 16 slots, where an empty range is the
    /// placeholder and a range holding one leaf alone is that leaf's hash.
    pub(crate) fn hash(&self) -> [u8; 32] {
        match &self.ranges {
            Some(r) => r[NODE_RANGE],
            None => ranges(&self.unpacked(), None, 0)[NODE_RANGE],
        }
    }
}

/// A node of the tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TreeNode {
    /// The root of an empty tree.
    Null,
    /// Boxed, so that a node takes 40 bytes rather than 72: the node cache holds only
    /// internal nodes, each in an `Arc` of this type.
    Leaf(Box<Leaf>),
    Internal(Internal),
}

impl TreeNode {
    pub(crate) fn hash(&self) -> [u8; 32] {
        match self {
            TreeNode::Null => PLACEHOLDER,
            TreeNode::Leaf(l) => l.hash(),
            TreeNode::Internal(i) => i.hash(),
        }
    }

    /// The node as the store keeps it: tag 0 `Null`, 2 `Leaf` (the key, the value's hash) as
    /// jmt encodes them, and an internal node compactly under tag 3 (see
    /// [`Internal::encode_compact`]). [`TreeNode::decode`] also reads jmt's own encoding of
    /// an internal node (tag 1), which stores written before 2026-12-07 hold.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(match self {
            TreeNode::Null => 1,
            TreeNode::Leaf(_) => 65,
            TreeNode::Internal(node) => 5 + node.slots.len() * (32 + 2 * VARINT_MAX),
        });
        self.encode_into(&mut out);
        out
    }

    /// [`TreeNode::encode`], appended to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            TreeNode::Null => out.push(TAG_NULL),
            TreeNode::Leaf(l) => l.encode_into(out),
            TreeNode::Internal(node) => node.encode_compact(out),
        }
    }

    /// An internal node of `children` (nibble, hash, version, leaf count or `None` for a
    /// leaf), for [`crate::testing::stored_tree_node`].
    pub(crate) fn example_internal(children: &[crate::testing::TreeChild]) -> TreeNode {
        let mut slots: [Option<Child>; 16] = [None; 16];
        for &(nibble, hash, version, leaves) in children {
            if let Some(slot) = slots.get_mut(usize::from(nibble)) {
                *slot = Some(Child {
                    hash,
                    version,
                    leaf: leaves.is_none(),
                    leaf_count: leaves.unwrap_or(1),
                });
            }
        }
        TreeNode::Internal(Internal::new(&slots, &[None; 16]))
    }

    /// jmt's borsh encoding of its `Node`, for jmt's reader (proofs, snapshot chunks): tag 0
    /// `Null`, 1 `Internal`, 2 `Leaf`. An internal node is its 16 slots (`Option<Child>`:
    /// hash, version, then tag 0 for a leaf or 1 and the leaf count), then the number of
    /// children and the leaf count (usize as u64).
    pub(crate) fn encode_jmt(&self) -> Vec<u8> {
        let TreeNode::Internal(node) = self else {
            return self.encode();
        };
        let mut out = Vec::with_capacity(17 + 16 * 50 + 16);
        out.push(TAG_INTERNAL_JMT);
        for slot in node.unpacked() {
            match slot {
                None => out.push(0),
                Some(c) => {
                    out.push(1);
                    out.extend_from_slice(&c.hash);
                    out.extend_from_slice(&c.version.to_le_bytes());
                    if c.leaf {
                        out.push(0);
                    } else {
                        out.push(1);
                        out.extend_from_slice(&c.leaf_count.to_le_bytes());
                    }
                }
            }
        }
        let count = node.slots.len() as u64;
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&node.leaf_count().to_le_bytes());
        out
    }

    /// Reads a node in either encoding of an internal node (tag 3, or jmt's tag 1); refuses
    /// bytes left over, a compact encoding that is not the one [`TreeNode::encode`] writes,
    /// and leaf counts that overflow.
    pub(crate) fn decode(bytes: &[u8]) -> Result<TreeNode> {
        let bad = || corrupt("node does not decode");
        let (tag, mut rest) = bytes.split_first().ok_or_else(bad)?;
        let mut take = |n: usize| -> Result<&[u8]> {
            if rest.len() < n {
                return Err(bad());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let u64_of = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        let node = match *tag {
            TAG_NULL => TreeNode::Null,
            TAG_LEAF => TreeNode::Leaf(Box::new(Leaf {
                key: take(32)?.try_into().map_err(|_| bad())?,
                value_hash: take(32)?.try_into().map_err(|_| bad())?,
            })),
            TAG_INTERNAL_JMT => {
                let mut children: [Option<Child>; 16] = [None; 16];
                for slot in &mut children {
                    match take(1)?[0] {
                        0 => {}
                        1 => {
                            let hash = take(32)?.try_into().map_err(|_| bad())?;
                            let version = u64_of(take(8)?);
                            let (leaf, leaf_count) = match take(1)?[0] {
                                0 => (true, 1),
                                1 => (false, u64_of(take(8)?)),
                                _ => return Err(bad()),
                            };
                            *slot = Some(Child {
                                hash,
                                version,
                                leaf,
                                leaf_count,
                            });
                        }
                        _ => return Err(bad()),
                    }
                }
                let node = Internal::new(&children, &[None; 16]);
                let count = u64_of(take(8)?);
                let leaves = u64_of(take(8)?);
                if count != node.slots.len() as u64 || node.checked_leaf_count() != Some(leaves) {
                    return Err(bad());
                }
                TreeNode::Internal(node)
            }
            TAG_INTERNAL => {
                let u16_of = |b: &[u8]| u16::from_le_bytes(b.try_into().unwrap_or_default());
                let present = u16_of(take(2)?);
                let leaves = u16_of(take(2)?);
                if leaves & !present != 0 {
                    return Err(bad());
                }
                let mut children: [Option<Child>; 16] = [None; 16];
                for (i, slot) in children.iter_mut().enumerate() {
                    if present & (1 << i) == 0 {
                        continue;
                    }
                    let hash: [u8; 32] = take(32)?.try_into().map_err(|_| bad())?;
                    let version = read_varint(&mut take)?;
                    let leaf = leaves & (1 << i) != 0;
                    let leaf_count = if leaf { 1 } else { read_varint(&mut take)? };
                    *slot = Some(Child {
                        hash,
                        version,
                        leaf,
                        leaf_count,
                    });
                }
                let node = Internal::new(&children, &[None; 16]);
                if node.checked_leaf_count().is_none() {
                    return Err(bad());
                }
                TreeNode::Internal(node)
            }
            _ => return Err(bad()),
        };
        if !rest.is_empty() {
            return Err(bad());
        }
        Ok(node)
    }
}

/// Decoded internal nodes by where they are stored (which fixes their content), bounded by
/// the memory they take. Meant to hold the latest tree: a committed update puts its new
/// nodes and removes its stale ones, and when the tree outgrows the bound, the nodes used
/// longest ago go first (the nodes near the root, which every block reads and rewrites,
/// stay). In 16 shards by the path's first nibble, so that the two threads of an update,
/// which work under different children of the root, do not wait on one lock.
#[derive(Debug)]
pub(crate) struct NodeCache {
    shards: [Mutex<Shard>; 16],
    shard_bytes_max: usize,
}

#[derive(Debug)]
struct Shard {
    nodes: lru::LruCache<NodeAt, Arc<TreeNode>, lru::DefaultHasher>,
    /// The memory the nodes take, as [`NodeCache::weight`] counts it.
    bytes: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard {
            nodes: lru::LruCache::unbounded_with_hasher(lru::DefaultHasher::default()),
            bytes: 0,
        }
    }
}

/// The bytes the allocator hands out for a request of `n`: jemalloc's size classes are 8,
/// then multiples of 16 up to 128 bytes, then four to each doubling.
const fn allocated(n: usize) -> usize {
    if n <= 8 {
        return 8;
    }
    if n <= 128 {
        return n.next_multiple_of(16);
    }
    let step = n.next_power_of_two() / 8;
    n.next_multiple_of(step)
}

/// What a cached node takes besides its children: the cache's list entry (the node's key,
/// the `Arc` and two links), its slot in the hash table (a pointer pair and a control
/// byte, counted twice since the table is between 44% and 88% full), and the `Arc`'s own
/// allocation (two counts and the node).
const ENTRY_BYTES: usize =
    allocated(std::mem::size_of::<NodeAt>() + 3 * std::mem::size_of::<usize>())
        + 2 * (2 * std::mem::size_of::<usize>() + 1)
        + allocated(2 * std::mem::size_of::<usize>() + std::mem::size_of::<TreeNode>());

impl NodeCache {
    pub(crate) fn new(bytes_max: usize) -> NodeCache {
        NodeCache {
            shards: std::array::from_fn(|_| Mutex::default()),
            shard_bytes_max: bytes_max / 16,
        }
    }

    fn shard(&self, at: &NodeAt) -> std::sync::MutexGuard<'_, Shard> {
        let i = if at.path.len == 0 {
            0
        } else {
            usize::from(at.path.bytes[0] >> 4)
        };
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The memory a cached node takes, its entry in the cache and its children's
    /// allocations included, as the allocator rounds them.
    fn weight(node: &TreeNode) -> usize {
        let children = match node {
            TreeNode::Internal(i) => {
                allocated(std::mem::size_of_val::<[Slot]>(&i.slots))
                    + i.ranges
                        .as_ref()
                        .map_or(0, |_| allocated(std::mem::size_of::<Ranges>()))
            }
            _ => 0,
        };
        ENTRY_BYTES + children
    }

    /// The node at `at`, if cached (it becomes the most recently used).
    pub(crate) fn get(&self, at: &NodeAt) -> Option<Arc<TreeNode>> {
        self.shard(at).nodes.get(at).cloned()
    }

    /// The node at `at`, if cached, leaving the order of use as it was: for reads that no
    /// update will repeat (proofs, snapshot chunks).
    pub(crate) fn peek(&self, at: &NodeAt) -> Option<Arc<TreeNode>> {
        self.shard(at).nodes.peek(at).cloned()
    }

    pub(crate) fn remove(&self, at: &NodeAt) {
        let mut shard = self.shard(at);
        if let Some(old) = shard.nodes.pop(at) {
            shard.bytes -= Self::weight(&old);
        }
    }

    /// Keeps `node`, if it is an internal node (leaves are read when needed; their keys
    /// are kept in their parents), and lets go of the nodes used longest ago while the
    /// shard is over its bound.
    pub(crate) fn put(&self, at: NodeAt, node: &Arc<TreeNode>) {
        if !matches!(**node, TreeNode::Internal(_)) {
            return;
        }
        let mut guard = self.shard(&at);
        let shard = &mut *guard;
        shard.bytes += Self::weight(node);
        if let Some(old) = shard.nodes.put(at, Arc::clone(node)) {
            shard.bytes -= Self::weight(&old);
        }
        while shard.bytes > self.shard_bytes_max {
            let Some((_, old)) = shard.nodes.pop_lru() else {
                break;
            };
            shard.bytes -= Self::weight(&old);
        }
    }

    /// The memory the cached nodes take, as [`NodeCache::weight`] counts it.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .bytes
            })
            .sum()
    }
}

/// Where the update reads the tree it starts from.
pub(crate) trait NodeSource {
    /// The node stored at `at`, if there is one.
    fn node(&self, at: &NodeAt) -> Result<Option<Arc<TreeNode>>>;
}

/// A node an update writes. Leaves are kept by value, not each in two allocations of its
/// own: a block makes one for every key it writes, and the node cache does not keep them.
#[derive(Debug)]
pub(crate) enum Written {
    Leaf(Leaf),
    /// Any other node (an internal one, or a root copied or emptied), shared with the node
    /// cache, which keeps the internal ones.
    Node(Arc<TreeNode>),
}

impl Written {
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Written::Leaf(leaf) => leaf.encode_into(out),
            Written::Node(node) => node.encode_into(out),
        }
    }

    /// The node as the cache and [`crate::state::MemoryState`] hold it.
    pub(crate) fn into_node(self) -> Arc<TreeNode> {
        match self {
            Written::Leaf(leaf) => Arc::new(TreeNode::Leaf(Box::new(leaf))),
            Written::Node(node) => node,
        }
    }
}

/// An update of the tree to a new version: its root, the nodes to write, and the nodes of
/// the previous version that the new one no longer uses.
#[derive(Debug)]
pub(crate) struct TreeUpdate {
    pub(crate) root: [u8; 32],
    pub(crate) nodes: Vec<(NodeAt, Written)>,
    pub(crate) stale: Vec<NodeAt>,
}

/// Computes the tree at `version` from the tree at `previous` (`None`: an empty tree) and
/// `changes`: keys in ascending order, each with the hash of its new value or `None` to
/// delete it.
pub(crate) fn update<S: NodeSource + Sync>(
    source: &S,
    previous: Option<u64>,
    version: u64,
    changes: &[(Key, Option<[u8; 32]>)],
) -> Result<TreeUpdate> {
    if changes.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::State("state changes are not in key order".into()));
    }
    let mut u = Updater::new(source, version);
    let old_root = match previous {
        None => None,
        Some(v) => {
            let at = NodeAt::new(v, Path::ROOT);
            let node = source
                .node(&at)?
                .ok_or_else(|| Error::State(format!("no state tree root at version {v}")))?;
            Some((at, node))
        }
    };
    let old = match &old_root {
        None => Old::Empty,
        Some((at, node)) => match &**node {
            TreeNode::Null => {
                // An empty tree's root is replaced by whatever comes.
                u.stale.push(*at);
                Old::Empty
            }
            TreeNode::Leaf(leaf) => Old::Leaf {
                at: *at,
                hash: leaf.hash(),
                known: None,
                full: Some(**leaf),
            },
            TreeNode::Internal(_) => Old::Internal {
                at: *at,
                node: node.clone(),
            },
        },
    };
    let root_at = NodeAt::new(version, Path::ROOT);
    let new = match old {
        Old::Internal { at, node } if changes.len() >= PARALLEL_FROM => {
            let TreeNode::Internal(old) = &*node else {
                unreachable!("Old::Internal holds an internal node")
            };
            let slots = u.visit_root_in_two(old, changes)?;
            u.combine(at, Path::ROOT, old, &slots)?
        }
        old => u.visit(Path::ROOT, old, changes)?,
    };
    let root = match new {
        New::Keep => {
            // Nothing changed: the previous root is copied to the new version.
            let node = match old_root {
                None => Arc::new(TreeNode::Null),
                Some((at, node)) => {
                    if !matches!(*node, TreeNode::Null) {
                        u.stale.push(at);
                    }
                    node
                }
            };
            let hash = node.hash();
            u.nodes.push((root_at, Written::Node(node)));
            hash
        }
        New::Empty => {
            u.nodes
                .push((root_at, Written::Node(Arc::new(TreeNode::Null))));
            PLACEHOLDER
        }
        New::Leaf(leaf) => {
            u.nodes.push((root_at, Written::Leaf(leaf)));
            leaf.hash()
        }
        New::Internal(child) => child.hash,
    };
    Ok(TreeUpdate {
        root,
        nodes: u.nodes,
        stale: u.stale,
    })
}

/// What a slot of the tree holds before the update.
enum Old<'a> {
    Empty,
    Leaf {
        at: NodeAt,
        hash: [u8; 32],
        /// The parent's record of the leaf's key, if it has one.
        known: Option<&'a Slot>,
        /// The leaf itself, if already read.
        full: Option<Leaf>,
    },
    Internal {
        at: NodeAt,
        node: Arc<TreeNode>,
    },
}

/// What each slot of a node holds after the update, for the slots the update visited.
#[derive(Default)]
struct Slots([Option<New>; 16]);

/// What a slot holds after the update.
enum New {
    /// What it held.
    Keep,
    Empty,
    /// One leaf, not yet written: where it goes depends on the slots beside it.
    Leaf(Leaf),
    /// An internal node, written.
    Internal(Child),
}

/// Blocks of at least this many changes are updated by two threads, each under half of
/// the root's children.
pub(crate) const PARALLEL_FROM: usize = 1_000;

struct Updater<'a, S> {
    source: &'a S,
    version: u64,
    nodes: Vec<(NodeAt, Written)>,
    stale: Vec<NodeAt>,
}

impl<'a, S: NodeSource + Sync> Updater<'a, S> {
    fn new(source: &'a S, version: u64) -> Self {
        Updater {
            source,
            version,
            nodes: Vec::new(),
            stale: Vec::new(),
        }
    }

    /// Visits the slots of the root `old` in two threads, the changes split between them
    /// at a nibble near the middle, and returns what the slots hold after; the nodes and
    /// stale nodes of both land here. The result is the same as one thread's: no slot is
    /// visited by both.
    fn visit_root_in_two(
        &mut self,
        old: &Internal,
        changes: &[(Key, Option<[u8; 32]>)],
    ) -> Result<Slots> {
        let middle = nibble(&changes[changes.len() / 2].0, 0);
        let mut split = changes.partition_point(|(k, _)| nibble(k, 0) < middle);
        if split == 0 {
            split = changes.partition_point(|(k, _)| nibble(k, 0) <= middle);
        }
        let (first, second) = changes.split_at(split);
        let mut slots = Slots::default();
        let (source, version) = (self.source, self.version);
        let other = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("acta-state-tree".into())
                .spawn_scoped(scope, move || {
                    let mut u = Updater::new(source, version);
                    let mut slots = Slots::default();
                    u.visit_slots(Path::ROOT, old, second, &mut slots)
                        .map(|()| (u, slots))
                })
                .map_err(|e| Error::State(format!("state tree thread: {e}")))?;
            // Both halves end before either's error is returned.
            let mine = self.visit_slots(Path::ROOT, old, first, &mut slots);
            let theirs = other
                .join()
                .map_err(|_| Error::State("the state tree's second thread failed".into()));
            mine?;
            theirs?
        })?;
        let (u, theirs) = other;
        self.nodes.extend(u.nodes);
        self.stale.extend(u.stale);
        for (mine, theirs) in slots.0.iter_mut().zip(theirs.0) {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        Ok(slots)
    }

    fn read_leaf(&self, at: &NodeAt, hash: &[u8; 32]) -> Result<Leaf> {
        match self.source.node(at)?.as_deref() {
            Some(TreeNode::Leaf(leaf))
                if leaf.hash() == *hash && at.path.is_prefix_of(&leaf.key) =>
            {
                Ok(**leaf)
            }
            Some(TreeNode::Leaf(_)) => Err(corrupt("a leaf does not match its parent's hash")),
            _ => Err(corrupt(&format!(
                "no leaf at version {} path length {}",
                at.version,
                at.path.len()
            ))),
        }
    }

    fn read_internal(&self, at: &NodeAt) -> Result<Arc<TreeNode>> {
        match self.source.node(at)? {
            // Two keys part before their last nibble: an internal node has a nibble below it.
            Some(node) if matches!(*node, TreeNode::Internal(_)) && at.path.len < NIBBLES => {
                Ok(node)
            }
            _ => Err(corrupt(&format!(
                "no internal node at version {} path length {}",
                at.version,
                at.path.len()
            ))),
        }
    }

    /// Updates the subtree at `path` with `changes`, every key of which starts with `path`.
    fn visit(
        &mut self,
        path: Path,
        old: Old<'_>,
        changes: &[(Key, Option<[u8; 32]>)],
    ) -> Result<New> {
        match old {
            Old::Empty => {
                let leaves: Vec<Leaf> = inserts(changes).collect();
                Ok(match leaves.len() {
                    0 => New::Keep,
                    1 => New::Leaf(leaves[0]),
                    _ => New::Internal(self.build(path, &leaves)),
                })
            }
            Old::Leaf {
                at,
                hash,
                known,
                full,
            } => {
                // Without a write other than deletes of other keys, nothing changes; when
                // the leaf's key is known, that is decided without reading it.
                let key = full.map(|l| l.key).or_else(|| known.and_then(Slot::key));
                if let Some(key) = key {
                    if changes.iter().all(|(k, v)| v.is_none() && *k != key) {
                        return Ok(New::Keep);
                    }
                    // The leaf's own key written or deleted, and nothing else inserted: the
                    // old leaf itself is not needed.
                    if let [(k, v)] = changes {
                        if *k == key {
                            self.stale.push(at);
                            return Ok(v.map_or(New::Empty, |value_hash| {
                                New::Leaf(Leaf { key, value_hash })
                            }));
                        }
                    }
                }
                let leaf = match full {
                    Some(leaf) => leaf,
                    None => {
                        let leaf = self.read_leaf(&at, &hash)?;
                        if let Some(k) = known {
                            k.learn(&leaf.key);
                        }
                        leaf
                    }
                };
                if changes.iter().all(|(k, v)| v.is_none() && *k != leaf.key) {
                    return Ok(New::Keep);
                }
                self.stale.push(at);
                // The old leaf unless a change names its key, and every written key.
                let mut leaves: Vec<Leaf> = inserts(changes).collect();
                if changes.binary_search_by(|(k, _)| k.cmp(&leaf.key)).is_err() {
                    let i = leaves.partition_point(|l| l.key < leaf.key);
                    leaves.insert(i, leaf);
                }
                Ok(match leaves.len() {
                    0 => New::Empty,
                    1 => New::Leaf(leaves[0]),
                    _ => New::Internal(self.build(path, &leaves)),
                })
            }
            Old::Internal { at, node } => {
                let TreeNode::Internal(old) = &*node else {
                    unreachable!("Old::Internal holds an internal node")
                };
                let mut slots = Slots::default();
                self.visit_slots(path, old, changes, &mut slots)?;
                self.combine(at, path, old, &slots)
            }
        }
    }

    /// Updates the slots of `old`, the node at `path`, that `changes` touch, and records
    /// what they hold after in `slots`.
    fn visit_slots(
        &mut self,
        path: Path,
        old: &Internal,
        changes: &[(Key, Option<[u8; 32]>)],
        slots: &mut Slots,
    ) -> Result<()> {
        let depth = path.len();
        let mut rest = changes;
        while let Some((first, _)) = rest.first() {
            let n = nibble(first, depth);
            let end = rest.partition_point(|(k, _)| nibble(k, depth) == n);
            let (group, tail) = rest.split_at(end);
            rest = tail;
            let i = usize::from(n);
            let child_path = path.child(n);
            let slot = match old.slot(i) {
                None => Old::Empty,
                Some(slot @ Slot::Leaf { hash, version, .. }) => Old::Leaf {
                    at: NodeAt::new(*version, child_path),
                    hash: *hash,
                    known: Some(slot),
                    full: None,
                },
                Some(Slot::Internal { version, .. }) => {
                    let at = NodeAt::new(*version, child_path);
                    Old::Internal {
                        node: self.read_internal(&at)?,
                        at,
                    }
                }
            };
            slots.0[i] = Some(self.visit(child_path, slot, group)?);
        }
        Ok(())
    }

    /// The node that replaces `old` (stored at `at`, at `path`) once its slots hold what
    /// `slots` says.
    fn combine(&mut self, at: NodeAt, path: Path, old: &Internal, slots: &Slots) -> Result<New> {
        let mut children = old.unpacked();
        let mut keys = old.keys();
        let mut placed: [Option<Leaf>; 16] = [None; 16];
        let mut changed = 0u16;
        for (i, new) in slots.0.iter().enumerate() {
            match new {
                None | Some(New::Keep) => continue,
                Some(New::Empty) => {
                    children[i] = None;
                    keys[i] = None;
                }
                Some(New::Leaf(leaf)) => {
                    children[i] = Some(Child {
                        hash: leaf.hash(),
                        version: self.version,
                        leaf: true,
                        leaf_count: 1,
                    });
                    keys[i] = Some(leaf.key);
                    placed[i] = Some(*leaf);
                }
                Some(New::Internal(child)) => {
                    children[i] = Some(*child);
                    keys[i] = None;
                }
            }
            changed |= 1 << i;
        }
        if changed == 0 {
            return Ok(New::Keep);
        }
        self.stale.push(at);
        let mut present = children
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c)));
        match (present.next(), present.next()) {
            (None, _) => return Ok(New::Empty),
            (Some((i, only)), None) if only.leaf => {
                // A leaf alone moves up to this node's place.
                let leaf = match placed[i] {
                    Some(leaf) => leaf,
                    None => {
                        let at = NodeAt::new(only.version, path.child(nibble_u8(i)));
                        let leaf = self.read_leaf(&at, &only.hash)?;
                        self.stale.push(at);
                        leaf
                    }
                };
                return Ok(New::Leaf(leaf));
            }
            _ => {}
        }
        for (i, leaf) in placed.iter().enumerate() {
            if let Some(leaf) = leaf {
                let at = NodeAt::new(self.version, path.child(nibble_u8(i)));
                self.nodes.push((at, Written::Leaf(*leaf)));
            }
        }
        Ok(New::Internal(self.write_internal(
            path,
            &children,
            &keys,
            Some((old, changed)),
        )))
    }

    /// Writes the subtree of `leaves` (at least two, in key order, all under `path`).
    fn build(&mut self, path: Path, leaves: &[Leaf]) -> Child {
        let depth = path.len();
        let mut children: [Option<Child>; 16] = [None; 16];
        let mut keys: [Option<Key>; 16] = [None; 16];
        let mut rest = leaves;
        while let Some(first) = rest.first() {
            let n = nibble(&first.key, depth);
            let end = rest.partition_point(|l| nibble(&l.key, depth) == n);
            let (group, tail) = rest.split_at(end);
            rest = tail;
            let child_path = path.child(n);
            let i = usize::from(n);
            children[i] = Some(if let [leaf] = group {
                self.nodes
                    .push((NodeAt::new(self.version, child_path), Written::Leaf(*leaf)));
                keys[i] = Some(leaf.key);
                Child {
                    hash: leaf.hash(),
                    version: self.version,
                    leaf: true,
                    leaf_count: 1,
                }
            } else {
                self.build(child_path, group)
            });
        }
        self.write_internal(path, &children, &keys, None)
    }

    /// Writes the internal node of `children` at `path`; `from` is the node it replaces
    /// and which of its slots changed.
    fn write_internal(
        &mut self,
        path: Path,
        children: &[Option<Child>; 16],
        keys: &[Option<Key>; 16],
        from: Option<(&Internal, u16)>,
    ) -> Child {
        let (old, changed) = from.map_or((None, 0), |(o, c)| (Some(o), c));
        let (node, hash) = Internal::hashed(children, keys, old, changed);
        let child = Child {
            hash,
            version: self.version,
            leaf: false,
            leaf_count: node.leaf_count(),
        };
        self.nodes.push((
            NodeAt::new(self.version, path),
            Written::Node(Arc::new(TreeNode::Internal(node))),
        ));
        child
    }
}

fn nibble_u8(i: usize) -> u8 {
    u8::try_from(i).expect("a slot index is below 16")
}

/// The written keys of `changes`, as leaves.
fn inserts(changes: &[(Key, Option<[u8; 32]>)]) -> impl Iterator<Item = Leaf> + '_ {
    changes.iter().filter_map(|(key, v)| {
        v.map(|value_hash| Leaf {
            key: *key,
            value_hash,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use borsh::BorshDeserialize;
    use jmt::{
        storage::{LeafNode, Node, NodeKey, TreeReader},
        KeyHash, OwnedValue, Sha256Jmt, Version,
    };
    use proptest::prelude::*;
    use sha2::Sha256;

    use super::*;
    use crate::{
        codec,
        state::{AuthenticatedState, MemoryState, StateChanges},
        Hash,
    };

    /// jmt's own tree, updated by jmt: what [`update`] must agree with.
    #[derive(Default)]
    struct Jmt {
        nodes: BTreeMap<NodeKey, Node>,
    }

    impl TreeReader for Jmt {
        fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
            Ok(self.nodes.get(key).cloned())
        }
        fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
            unreachable!("updates do not read values")
        }
        fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
            unreachable!("updates do not restore")
        }
    }

    fn jmt_hash(node: &Node) -> [u8; 32] {
        match node {
            Node::Null => PLACEHOLDER,
            Node::Leaf(l) => l.hash::<Sha256>(),
            Node::Internal(i) => i.hash::<Sha256>(),
        }
    }

    /// Every node of the tree at `version`, with its hash.
    fn reachable(
        version: u64,
        node: impl Fn(&NodeAt) -> Option<Arc<TreeNode>>,
    ) -> BTreeMap<NodeAt, [u8; 32]> {
        let mut out = BTreeMap::new();
        let mut todo = vec![NodeAt::new(version, Path::ROOT)];
        while let Some(at) = todo.pop() {
            let n = node(&at).expect("a node the tree points to is stored");
            if let TreeNode::Internal(i) = &*n {
                for (nib, c) in i.children() {
                    todo.push(NodeAt::new(c.version, at.path.child(nib)));
                }
            }
            out.insert(at, n.hash());
        }
        out
    }

    /// Keys that share long prefixes, so that updates split leaves into chains of internal
    /// nodes and deletes collapse them: three nibbles from {0, 1}, then one of a few tails,
    /// and pairs that part only in the last nibble.
    fn pool() -> Vec<Key> {
        let mut keys = Vec::new();
        for i in 0u8..8 {
            for tail in [0u8, 0x55, 0xff] {
                let mut k = [tail; 32];
                k[0] = ((i >> 2) & 1) << 4 | ((i >> 1) & 1);
                k[1] = (i & 1) << 4;
                keys.push(k);
                let mut twin = k;
                twin[31] ^= 1;
                keys.push(twin);
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Keys spread as hashes are: nodes of many children, most of them unchanged by a block.
    fn spread() -> Vec<Key> {
        (0u32..300)
            .map(|i| Hash::digest(&i.to_be_bytes()).0)
            .collect()
    }

    type Block = Vec<(usize, Option<u8>)>;

    fn blocks(n: usize, per_block: usize) -> impl Strategy<Value = Vec<Block>> {
        prop::collection::vec(
            prop::collection::vec(
                (0..n, prop::option::weighted(0.7, any::<u8>())),
                0..per_block,
            ),
            1..10,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Block after block, the update makes jmt's tree (the same root, the same nodes at
        /// the same paths), writes only nodes of the new tree, and lists as stale exactly
        /// the nodes of the previous tree the new one no longer uses.
        #[test]
        fn updates_make_jmts_tree(blocks in blocks(pool().len(), 12)) {
            same_as_jmt(&pool(), &blocks)?;
        }

        #[test]
        fn updates_of_wide_nodes_make_jmts_tree(blocks in blocks(spread().len(), 150)) {
            same_as_jmt(&spread(), &blocks)?;
        }

        /// Any internal node encodes and decodes back to itself in both encodings, the
        /// compact one a bijection (what decodes encodes to the same bytes), and no bytes
        /// make the decoder panic.
        #[test]
        fn stored_encodings_round_trip(
            children in proptest::array::uniform16(proptest::option::of(
                (any::<[u8; 32]>(), any::<u64>(), any::<bool>(), 2u64..u64::MAX / 32)
                    .prop_map(|(hash, version, leaf, count)| Child {
                        hash,
                        version,
                        leaf,
                        leaf_count: if leaf { 1 } else { count },
                    }),
            )),
            noise in prop::collection::vec(any::<u8>(), 0..80),
            at in 0usize..600,
        ) {
            let node = TreeNode::Internal(Internal::new(&children, &[None; 16]));
            let bytes = node.encode();
            prop_assert_eq!(&TreeNode::decode(&bytes).unwrap(), &node);
            prop_assert_eq!(&TreeNode::decode(&node.encode_jmt()).unwrap(), &node);
            // Bytes spliced into the encoding: an error, or a node that encodes to them.
            let mut mangled = bytes.clone();
            let at = at.min(mangled.len());
            mangled.splice(at..(at + noise.len() / 3).min(mangled.len()), noise.iter().copied());
            if let Ok(other) = TreeNode::decode(&mangled) {
                if mangled[0] == TAG_INTERNAL {
                    prop_assert_eq!(other.encode(), mangled);
                }
            }
        }

        /// A node's hashes computed from the kept ranges of the node it replaces (the
        /// ranges of 2 slots hashed again only under a changed range of 4) are those
        /// computed from nothing.
        #[test]
        fn hashes_from_kept_ranges_are_hashes_from_nothing(
            before in proptest::array::uniform16(child()),
            // Most often a few slots change, as in a wide node under a block.
            after in proptest::array::uniform16(proptest::option::weighted(0.15, child())),
        ) {
            let mut children = before;
            let mut changed = 0u16;
            for (i, new) in after.iter().enumerate() {
                if let Some(new) = new {
                    children[i] = *new;
                    changed |= 1 << i;
                }
            }
            let old = ranges(&before, None, 0);
            prop_assert_eq!(ranges(&children, Some(&old), changed), ranges(&children, None, 0));
        }
    }

    /// A slot's content: empty, a leaf or an internal node, with a few distinct hashes
    /// (none all zeros, the value a range not hashed holds).
    fn child() -> impl Strategy<Value = Option<Child>> {
        proptest::option::of((1u8..5, any::<bool>()).prop_map(|(h, leaf)| Child {
            hash: [h; 32],
            version: 1,
            leaf,
            leaf_count: if leaf { 1 } else { 2 },
        }))
    }

    fn same_as_jmt(keys: &[Key], blocks: &[Block]) -> std::result::Result<(), TestCaseError> {
        {
            let mut jmt = Jmt::default();
            let mut mine = MemoryState::new();
            let mut content: BTreeMap<Key, u8> = BTreeMap::new();
            for (version, block) in blocks.iter().enumerate() {
                let version = version as u64;
                let changes: StateChanges = block
                    .iter()
                    .map(|(i, v)| (Hash(keys[*i]), v.map(|b| vec![b; 3])))
                    .collect();
                for (k, v) in &changes {
                    match v {
                        Some(v) => content.insert(k.0, v[0]),
                        None => content.remove(&k.0),
                    };
                }
                let (root, batch) = Sha256Jmt::new(&jmt)
                    .put_value_set(
                        changes.iter().map(|(k, v)| (KeyHash(k.0), v.clone())),
                        version,
                    )
                    .unwrap();
                let update = mine.prepare(&changes, crate::Height(version)).unwrap();
                prop_assert_eq!(update.root.0, root.0);

                // The same tree: the same nodes at the same paths (their hashes cover all
                // but the versions of their children). jmt applies keys one by one, so a
                // leaf that one key moves up and the next moves down again is new in its
                // tree and untouched here: this update never writes more than jmt's.
                prop_assert!(update.nodes.len() <= batch.node_batch.nodes().len());
                for (k, n) in batch.node_batch.nodes() {
                    jmt.nodes.insert(k.clone(), n.clone());
                }
                let theirs_at = |at: &NodeAt| {
                    let key = NodeKey::try_from_slice(&at.encode()).unwrap();
                    jmt.nodes
                        .get(&key)
                        .map(|n| Arc::new(TreeNode::decode(&codec::encode(n)).unwrap()))
                };
                let theirs = reachable(version, theirs_at);
                let before = version
                    .checked_sub(1)
                    .map(|v| reachable(v, |at| mine.node(at).unwrap()));
                let new: BTreeSet<NodeAt> = update.nodes.iter().map(|(at, _)| *at).collect();
                let stale: BTreeSet<NodeAt> = update.stale.iter().copied().collect();
                prop_assert_eq!(new.len(), update.nodes.len(), "a node written twice");
                prop_assert_eq!(stale.len(), update.stale.len(), "a node stale twice");
                mine.apply(update).unwrap();
                let ours = reachable(version, |at| mine.node(at).unwrap());
                let shape = |r: &BTreeMap<NodeAt, [u8; 32]>| -> BTreeSet<(Path, [u8; 32])> {
                    r.iter().map(|(at, h)| (at.path, *h)).collect()
                };
                prop_assert_eq!(shape(&ours), shape(&theirs));

                // Exactly the new nodes are added and the stale ones dropped: pruning what is
                // stale never removes a node the new tree uses, and leaves nothing behind.
                let ours: BTreeSet<NodeAt> = ours.into_keys().collect();
                prop_assert!(new
                    .iter()
                    .all(|at| at.version == version && ours.contains(at)));
                let mut expected: BTreeSet<NodeAt> =
                    before.map(|b| b.into_keys().collect()).unwrap_or_default();
                prop_assert!(
                    stale.iter().all(|at| expected.contains(at)),
                    "stale but not in the previous tree"
                );
                expected.retain(|at| !stale.contains(at));
                expected.extend(new);
                prop_assert_eq!(ours, expected);

                // Every key proves its value, or its absence, against the root.
                for k in keys {
                    let (value, proof) = mine
                        .get_with_proof(&Hash(*k), crate::Height(version))
                        .unwrap();
                    let expected = content.get(k).map(|b| vec![*b; 3]);
                    prop_assert_eq!(&value, &expected);
                    proof
                        .verify(&Hash(root.0), &Hash(*k), expected.as_deref())
                        .unwrap();
                }
            }
        }
        Ok(())
    }

    /// Blocks large enough to be updated by two threads make jmt's tree too.
    #[test]
    fn large_blocks_make_jmts_tree() {
        let keys: Vec<Key> = (0u32..2_500)
            .map(|i| Hash::digest(&i.to_be_bytes()).0)
            .collect();
        let first: Block = (0..2_000).map(|i| (i, Some(1))).collect();
        let second: Block = (0..2_500)
            .step_by(2)
            .map(|i| (i, if i % 10 == 0 { None } else { Some(2) }))
            .collect();
        assert!(second.len() >= PARALLEL_FROM);
        same_as_jmt(&keys, &[first, second]).unwrap();
    }

    /// A node's jmt encoding and its key decode as jmt's types and encode back to the same
    /// bytes, with the same hash; the stored encoding decodes to the same node, and both
    /// encodings of an internal node are read.
    #[test]
    fn encodings_are_jmts() {
        let keys = pool();
        let s = MemoryState::new();
        let changes: StateChanges = keys.iter().map(|k| (Hash(*k), Some(vec![1]))).collect();
        let update = s.prepare(&changes, crate::Height(0)).unwrap();
        assert!(update.nodes.len() > keys.len());
        for (at, written) in update.nodes {
            let mut bytes = Vec::new();
            written.encode_into(&mut bytes);
            let node = written.into_node();
            assert_eq!(node.encode(), bytes);
            assert_eq!(TreeNode::decode(&bytes).unwrap(), *node);
            let jmts = node.encode_jmt();
            let theirs = Node::try_from_slice(&jmts).unwrap();
            assert_eq!(codec::encode(&theirs), jmts);
            assert_eq!(jmt_hash(&theirs), node.hash());
            assert_eq!(TreeNode::decode(&jmts).unwrap(), *node);
            match &*node {
                TreeNode::Internal(_) => assert!(bytes.len() < jmts.len()),
                _ => assert_eq!(bytes, jmts),
            }
            let key = NodeKey::try_from_slice(&at.encode()).unwrap();
            assert_eq!(codec::encode(&key), at.encode());
            assert_eq!(NodeAt::decode(&at.encode()).unwrap(), at);
        }
        assert_eq!(
            TreeNode::decode(&TreeNode::Null.encode()).unwrap(),
            TreeNode::Null
        );
    }

    #[test]
    fn bad_encodings_are_errors() {
        let leaf = TreeNode::Leaf(Box::new(Leaf {
            key: [1; 32],
            value_hash: [2; 32],
        }))
        .encode();
        for bad in [&[][..], &[3], &leaf[..40], &[&leaf[..], &[0]].concat()] {
            assert!(TreeNode::decode(bad).is_err());
        }
        // The compact internal node: a leaf bit without its child, a version longer than it
        // needs to be, a tenth varint byte over 1, bytes cut off or left over.
        let node = |leaves: u16, version: &[u8]| {
            let mut b = vec![TAG_INTERNAL, 0b1, 0];
            b.extend_from_slice(&leaves.to_le_bytes());
            b.extend_from_slice(&[5; 32]);
            b.extend_from_slice(version);
            b
        };
        assert!(TreeNode::decode(&node(0b1, &[7])).is_ok());
        let mut longest = vec![0xff; 9];
        longest.push(0x01);
        assert!(TreeNode::decode(&node(0b1, &longest)).is_ok());
        assert!(TreeNode::decode(&node(0b1, &[0x80, 0x01])).is_ok());
        let mut too_long = vec![0xff; 9];
        too_long.push(0x02);
        for bad in [
            node(0b11, &[7]),
            node(0b1, &[0x87, 0x00]),
            node(0b1, &too_long),
            node(0b1, &[0x87]),
            [&node(0b1, &[7])[..], &[0]].concat(),
            // An internal child whose leaf count is missing.
            node(0b0, &[7]),
        ] {
            assert!(TreeNode::decode(&bad).is_err(), "{bad:?}");
        }
        let at = NodeAt::new(7, Path::ROOT.child(3)).encode();
        assert!(NodeAt::decode(&at[..at.len() - 1]).is_err());
        let mut odd = at.clone();
        *odd.last_mut().unwrap() |= 1; // a set bit past the path's one nibble
        assert!(NodeAt::decode(&odd).is_err());
    }

    /// The compact encoding holds every version and leaf count a `u64` can, and is a fifth
    /// smaller than jmt's for a node of 16 leaves (more with internal children).
    #[test]
    fn compact_internal_nodes_round_trip() {
        let values = [0, 1, 127, 128, 300, 1 << 21, u64::MAX / 3, u64::MAX - 1];
        let children: [Option<Child>; 16] = std::array::from_fn(|i| {
            let v = values[i % values.len()];
            Some(if i % 3 == 0 {
                Child {
                    hash: [u8::try_from(i).unwrap(); 32],
                    version: v,
                    leaf: true,
                    leaf_count: 1,
                }
            } else {
                Child {
                    hash: [u8::try_from(i).unwrap(); 32],
                    version: v,
                    leaf: false,
                    leaf_count: 2 + (v >> 8),
                }
            })
        });
        let node = TreeNode::Internal(Internal::new(&children, &[None; 16]));
        let bytes = node.encode();
        assert_eq!(bytes[0], TAG_INTERNAL);
        assert_eq!(TreeNode::decode(&bytes).unwrap(), node);
        assert_eq!(TreeNode::decode(&node.encode_jmt()).unwrap(), node);
        // Sixteen leaves of version 200: 549 bytes against jmt's 689.
        let full = internal(16, 200);
        assert_eq!(full.encode_jmt().len(), 1 + 16 * (1 + 32 + 8 + 1) + 16);
        assert_eq!(full.encode().len(), 5 + 16 * (32 + 2));
        assert_eq!(TreeNode::decode(&full.encode()).unwrap(), *full);
    }

    /// An internal node of `n` children (leaves), distinct for each `seed`.
    fn internal(n: usize, seed: u8) -> Arc<TreeNode> {
        let children: [Option<Child>; 16] = std::array::from_fn(|i| {
            (i < n).then_some(Child {
                hash: [seed; 32],
                version: u64::from(seed),
                leaf: true,
                leaf_count: 1,
            })
        });
        Arc::new(TreeNode::Internal(Internal::new(&children, &[None; 16])))
    }

    /// What a cached node's children take decides how much of the tree the cache holds:
    /// slots of 80 bytes and 7 kept ranges, not the 96 and 15 of before (ADR 0022,
    /// amendment of 2026-12-05).
    #[test]
    fn cached_slots_and_ranges_stay_small() {
        assert!(
            std::mem::size_of::<Slot>() <= 80,
            "{}",
            std::mem::size_of::<Slot>()
        );
        // A node of 16 children keeps its ranges; the cache counts both allocations.
        let children: [Option<Child>; 16] = std::array::from_fn(|i| {
            Some(Child {
                hash: [u8::try_from(i).unwrap() + 1; 32],
                version: 1,
                leaf: true,
                leaf_count: 1,
            })
        });
        let (wide, _) = Internal::hashed(&children, &[None; 16], None, 0);
        assert!(wide.ranges.is_some());
        assert_eq!(
            NodeCache::weight(&TreeNode::Internal(wide)),
            ENTRY_BYTES + 16 * 80 + 7 * 32
        );
    }

    #[test]
    fn the_node_cache_keeps_within_its_bound_the_nodes_used_last() {
        let weight = NodeCache::weight(&internal(3, 0));
        // Room for about ten nodes of three children in each shard.
        let cache = NodeCache::new(16 * (10 * weight + weight / 2));
        let at = |v: u64| NodeAt::new(v, Path::ROOT.child(5));
        let kept = at(1_000);
        cache.put(kept, &internal(3, 1));
        for v in 0..100 {
            cache.put(at(v), &internal(3, 2));
            // Used every time: it stays, while the nodes put longest ago go.
            assert!(
                cache.get(&kept).is_some(),
                "the node used last was dropped at {v}"
            );
            assert!(cache.shard(&kept).bytes <= 10 * weight + weight / 2);
        }
        assert!(cache.get(&at(99)).is_some());
        assert!(cache.get(&at(0)).is_none());
        assert_eq!(cache.bytes(), 10 * weight);
        // Putting a node again replaces it; removing it gives its weight back; leaves are
        // not kept.
        cache.put(kept, &internal(3, 3));
        assert_eq!(cache.bytes(), 10 * weight);
        assert_eq!(cache.shard(&kept).nodes.len(), 10);
        assert!(
            cache.get(&at(91)).is_some(),
            "a replacement counted twice evicts"
        );
        assert!(NodeCache::weight(&internal(16, 3)) > 3 * weight);
        cache.remove(&kept);
        assert_eq!(cache.bytes(), 9 * weight);
        let leaf = Arc::new(TreeNode::Leaf(Box::new(Leaf {
            key: [1; 32],
            value_hash: [2; 32],
        })));
        cache.put(at(500), &leaf);
        assert!(cache.get(&at(500)).is_none());
    }

    #[test]
    fn changes_out_of_order_are_refused() {
        let s = MemoryState::new();
        let changes = [([2; 32], Some([0; 32])), ([1; 32], None)];
        assert!(update(&s, None, 0, &changes).is_err());
    }
}
