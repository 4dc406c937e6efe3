//! The block log: an RFC 9162 Merkle tree whose leaf `h − 1` is the hash of the block at
//! height `h`, so the tree of size `n` commits to blocks 1 to `n`. Checkpoints
//! (`crate::checkpoint`) publish its root.
//!
//! The tree is kept as the hashes of its complete subtrees, each stored once under
//! `(level, index)` (the subtree of the `2^level` leaves from `index · 2^level`), as Go's
//! `sumdb/tlog` does. Appending a block writes its leaf and the subtrees it completes (two
//! hashes on average, at most 64); the root at any size, an inclusion proof and a
//! consistency proof each read O(log n) stored hashes, whatever the chain's age.

use crate::{
    merkle::{self, ConsistencyProof, InclusionProof},
    Error, Hash, Result,
};

/// Reads stored subtree hashes.
pub trait HashReader {
    /// The hash of the complete subtree at `(level, index)`, if stored.
    fn subtree(&self, level: u8, index: u64) -> Result<Option<Hash>>;
}

/// The leaf hash of a block hash.
pub fn leaf(block: &Hash) -> Hash {
    merkle::leaf_hash(&block.0)
}

/// The hashes to store when the block `block` becomes leaf `n` (0-based; the log held `n`
/// leaves before): its leaf hash and every subtree it completes, as `(level, index, hash)`.
pub fn append(log: &dyn HashReader, n: u64, block: &Hash) -> Result<Vec<(u8, u64, Hash)>> {
    let mut hash = leaf(block);
    let (mut level, mut index) = (0u8, n);
    let mut out = vec![(level, index, hash)];
    while index & 1 == 1 {
        let left = stored(log, level, index - 1)?;
        hash = merkle::node_hash(&left, &hash);
        level += 1;
        index >>= 1;
        out.push((level, index, hash));
    }
    Ok(out)
}

fn stored(log: &dyn HashReader, level: u8, index: u64) -> Result<Hash> {
    log.subtree(level, index)?.ok_or_else(|| {
        Error::Storage(format!(
            "the block log has no subtree at level {level}, index {index}"
        ))
    })
}

/// The largest power of two smaller than `n` (for `n` ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `start .. end` (`end > start`), where the range is a node of some
/// RFC 9162 tree: either a complete, aligned subtree (stored) or one whose left part is.
fn subtree_hash(log: &dyn HashReader, start: u64, end: u64) -> Result<Hash> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        // At most 63: fits a u8.
        let level = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
        return stored(log, level, start / n);
    }
    let k = split(n);
    let left = subtree_hash(log, start, start + k)?;
    let right = subtree_hash(log, start + k, end)?;
    Ok(merkle::node_hash(&left, &right))
}

/// The root of the log at `size` leaves (the empty tree's root at 0).
pub fn root(log: &dyn HashReader, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    subtree_hash(log, 0, size)
}

/// Where the complete subtrees of a log of `size` leaves are, largest (leftmost) first:
/// one per bit of `size`, as `(level, index)`. They are all a log needs to append its next
/// leaf and to compute its root, so a node restored from a snapshot stores only these.
pub fn frontier_positions(size: u64) -> Vec<(u8, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            out.push((level, start >> level));
            start += width;
        }
    }
    out
}

/// The hashes of the complete subtrees of the log of `size` leaves, in the order of
/// [`frontier_positions`].
pub fn frontier(log: &dyn HashReader, size: u64) -> Result<Vec<Hash>> {
    frontier_positions(size)
        .into_iter()
        .map(|(level, index)| stored(log, level, index))
        .collect()
}

/// The root of the log of `size` leaves from the hashes of its complete subtrees (see
/// [`frontier`]): each joined to the root of those on its right.
pub fn frontier_root(size: u64, hashes: &[Hash]) -> Result<Hash> {
    let expected = frontier_positions(size).len();
    if hashes.len() != expected {
        return Err(Error::Proof(format!(
            "a log of {size} leaves has {expected} complete subtrees, not {}",
            hashes.len()
        )));
    }
    let Some((last, rest)) = hashes.split_last() else {
        return Ok(merkle::empty_root());
    };
    Ok(rest
        .iter()
        .rev()
        .fold(*last, |right, left| merkle::node_hash(left, &right)))
}

/// The inclusion proof of leaf `index` in the log of `size` leaves (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(log: &dyn HashReader, index: u64, size: u64) -> Result<InclusionProof> {
    if index >= size {
        return Err(Error::Proof(format!(
            "leaf {index} is not in a log of {size} leaves"
        )));
    }
    let mut path = Vec::new();
    let (mut start, mut end) = (0, size);
    // From the root down, then reversed: the proof runs from the leaf up.
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(subtree_hash(log, start + k, end)?);
            end = start + k;
        } else {
            path.push(subtree_hash(log, start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: size,
        path,
    })
}

/// The proof that the log of `old` leaves is a prefix of the log of `new` leaves (RFC 9162
/// §2.1.4.1).
pub fn consistency_proof(log: &dyn HashReader, old: u64, new: u64) -> Result<ConsistencyProof> {
    if old > new {
        return Err(Error::Proof(format!(
            "old size {old} is larger than the new size {new}"
        )));
    }
    let mut path = Vec::new();
    if old > 0 && old < new {
        // SUBPROOF(m, D[start..end], b), from the root down; reversed at the end.
        let (mut m, mut start, mut end, mut whole) = (old, 0, new, true);
        loop {
            let n = end - start;
            if m == n {
                if !whole {
                    path.push(subtree_hash(log, start, end)?);
                }
                break;
            }
            let k = split(n);
            if m <= k {
                path.push(subtree_hash(log, start + k, end)?);
                end = start + k;
            } else {
                path.push(subtree_hash(log, start, start + k)?);
                m -= k;
                start += k;
                whole = false;
            }
        }
        path.reverse();
    }
    Ok(ConsistencyProof {
        old_size: old,
        new_size: new,
        path,
    })
}

/// A block log in memory (for tests and tools).
#[derive(Debug, Default)]
pub struct MemoryLog {
    hashes: std::collections::HashMap<(u8, u64), Hash>,
    size: u64,
}

impl MemoryLog {
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a block hash as the next leaf.
    pub fn push(&mut self, block: &Hash) -> Result<()> {
        for (level, index, hash) in append(self, self.size, block)? {
            self.hashes.insert((level, index), hash);
        }
        self.size += 1;
        Ok(())
    }
}

impl HashReader for MemoryLog {
    fn subtree(&self, level: u8, index: u64) -> Result<Option<Hash>> {
        Ok(self.hashes.get(&(level, index)).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored-hash log gives the roots and proofs of the in-memory RFC 9162 tree over
    /// the same leaves, at every size and for every leaf and old size.
    #[test]
    fn matches_the_rfc_9162_tree_at_every_size() {
        let blocks: Vec<Hash> = (0u32..70).map(|i| Hash::digest(&i.to_le_bytes())).collect();
        let leaves: Vec<Hash> = blocks.iter().map(leaf).collect();
        let mut log = MemoryLog::new();
        for b in &blocks {
            log.push(b).unwrap();
        }
        for n in 0..=blocks.len() {
            let size = n as u64;
            assert_eq!(root(&log, size).unwrap(), merkle::root(&leaves[..n]), "{n}");
            for i in 0..n {
                let proof = inclusion_proof(&log, i as u64, size).unwrap();
                assert_eq!(proof, merkle::inclusion_proof(&leaves[..n], i).unwrap());
                merkle::verify_inclusion(&leaves[i], &proof, &merkle::root(&leaves[..n])).unwrap();
            }
            for m in 0..=n {
                let proof = consistency_proof(&log, m as u64, size).unwrap();
                assert_eq!(
                    proof,
                    merkle::consistency_proof(&leaves[..n], m).unwrap(),
                    "{m} to {n}"
                );
            }
        }
        assert!(inclusion_proof(&log, 5, 5).is_err());
        assert!(consistency_proof(&log, 6, 5).is_err());
        // A root beyond the stored leaves is an error, not a guess.
        assert!(root(&log, 71).is_err());
    }

    #[test]
    fn an_append_writes_its_leaf_and_the_subtrees_it_completes() {
        let mut log = MemoryLog::new();
        for i in 0u32..7 {
            log.push(&Hash::digest(&i.to_le_bytes())).unwrap();
        }
        // Leaf 7 completes subtrees of 2, 4 and 8 leaves.
        let writes = append(&log, 7, &Hash::digest(&7u32.to_le_bytes())).unwrap();
        let at: Vec<(u8, u64)> = writes.iter().map(|(l, i, _)| (*l, *i)).collect();
        assert_eq!(at, [(0, 7), (1, 3), (2, 1), (3, 0)]);
    }

    /// The complete subtrees of a log give its root, and a log that holds only them
    /// (a node restored from a snapshot) appends the next leaves and gives the same roots
    /// as the log that holds everything.
    #[test]
    fn a_log_restored_from_its_frontier_goes_on_as_the_whole_log() {
        let blocks: Vec<Hash> = (0u32..40).map(|i| Hash::digest(&i.to_le_bytes())).collect();
        let mut whole = MemoryLog::new();
        for (n, b) in blocks.iter().enumerate() {
            let size = n as u64;
            let hashes = frontier(&whole, size).unwrap();
            assert_eq!(
                frontier_root(size, &hashes).unwrap(),
                root(&whole, size).unwrap()
            );
            let mut short = hashes.clone();
            if short.pop().is_some() {
                assert!(frontier_root(size, &short).is_err());
            }
            let mut restored = MemoryLog {
                hashes: frontier_positions(size).into_iter().zip(hashes).collect(),
                size,
            };
            for later in &blocks[n..] {
                restored.push(later).unwrap();
            }
            whole.push(b).unwrap();
            assert_eq!(
                root(&restored, blocks.len() as u64).unwrap(),
                merkle::root(&blocks.iter().map(leaf).collect::<Vec<_>>())
            );
        }
        assert_eq!(frontier_positions(11), [(3, 0), (1, 4), (0, 10)]);
    }
}
