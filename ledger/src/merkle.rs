//! The RFC 9162 (Certificate Transparency v2) Merkle tree: roots, inclusion proofs and
//! consistency proofs over a list of leaves.
//!
//! A leaf's hash is `SHA-256(0x00 || data)`, an inner node's `SHA-256(0x01 || left ||
//! right)`, and the empty tree's root is `SHA-256("")`. A tree of `n > 1` leaves splits at
//! `k`, the largest power of two below `n`. Any Certificate Transparency tool can check the
//! proofs made here. Functions take leaf *hashes*; `leaf_hash` makes one from data.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{codec::read_vec, Error, Hash, Result};

/// The most hashes a proof may carry: one per level of a tree of 2^64 leaves, plus one.
pub const PROOF_HASHES_MAX: usize = 65;

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Hash::digest_parts(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[0x01], &left.0, &right.0])
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash::digest(b"")
}

/// The root over leaves whose data is `items`.
pub fn root_of<T: AsRef<[u8]>>(items: &[T]) -> Hash {
    let leaves: Vec<Hash> = items.iter().map(|d| leaf_hash(d.as_ref())).collect();
    root(&leaves)
}

/// The root over the given leaf hashes.
///
/// Computed level by level, pairing neighbours and carrying an unpaired last node up
/// unchanged; for RFC 9162's left-balanced trees this gives the same root as the recursive
/// definition, without recursion.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        _ => {
            let mut level: Vec<Hash> = leaves.to_vec();
            while level.len() > 1 {
                let mut next = 0;
                let mut i = 0;
                while i < level.len() {
                    level[next] = if i + 1 < level.len() {
                        node_hash(&level[i], &level[i + 1])
                    } else {
                        level[i]
                    };
                    next += 1;
                    i += 2;
                }
                level.truncate(next);
            }
            level[0]
        }
    }
}

/// The largest power of two strictly below `n` (for `n > 1`).
fn split(n: usize) -> usize {
    debug_assert!(n > 1);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// A proof that the leaf at `leaf_index` is in the tree of `tree_size` leaves. `path` runs
/// from the leaf's sibling up to the root's child.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The leaf's position.
    pub leaf_index: u64,
    /// Leaves in the tree.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up.
    pub path: Vec<Hash>,
}

impl BorshDeserialize for InclusionProof {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(InclusionProof {
            leaf_index: u64::deserialize_reader(reader)?,
            tree_size: u64::deserialize_reader(reader)?,
            path: read_vec(reader, PROOF_HASHES_MAX, "inclusion path")?,
        })
    }
}

/// A proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// Leaves (blocks) in the older tree.
    pub old_size: u64,
    /// Leaves (blocks) in the newer tree.
    pub new_size: u64,
    /// The proof's hashes (RFC 9162, section 2.1.4).
    pub path: Vec<Hash>,
}

impl BorshDeserialize for ConsistencyProof {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(ConsistencyProof {
            old_size: u64::deserialize_reader(reader)?,
            new_size: u64::deserialize_reader(reader)?,
            path: read_vec(reader, PROOF_HASHES_MAX, "consistency path")?,
        })
    }
}

/// The inclusion proof for leaf `index` of `leaves` (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<InclusionProof> {
    if index >= leaves.len() {
        return Err(Error::Proof(format!(
            "leaf {index} is not in a tree of {} leaves",
            leaves.len()
        )));
    }
    let mut path = Vec::new();
    inclusion_path(leaves, index, &mut path);
    Ok(InclusionProof {
        leaf_index: index as u64,
        tree_size: leaves.len() as u64,
        path,
    })
}

fn inclusion_path(leaves: &[Hash], m: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        inclusion_path(&leaves[..k], m, path);
        path.push(root(&leaves[k..]));
    } else {
        inclusion_path(&leaves[k..], m - k, path);
        path.push(root(&leaves[..k]));
    }
}

/// The inclusion proofs of every leaf of `leaves`, in order: each subtree's root is hashed
/// once, so all `n` proofs cost O(n log n) rather than O(n) each.
pub fn inclusion_proofs(leaves: &[Hash]) -> Vec<InclusionProof> {
    fn paths(leaves: &[Hash], out: &mut [Vec<Hash>]) -> Hash {
        let n = leaves.len();
        if n == 1 {
            return leaves[0];
        }
        let k = split(n);
        let (left_paths, right_paths) = out.split_at_mut(k);
        let left = paths(&leaves[..k], left_paths);
        let right = paths(&leaves[k..], right_paths);
        // Deeper siblings first: a path runs from the leaf up.
        left_paths.iter_mut().for_each(|p| p.push(right));
        right_paths.iter_mut().for_each(|p| p.push(left));
        node_hash(&left, &right)
    }
    let mut out = vec![Vec::new(); leaves.len()];
    if !leaves.is_empty() {
        paths(leaves, &mut out);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, path)| InclusionProof {
            leaf_index: i as u64,
            tree_size: leaves.len() as u64,
            path,
        })
        .collect()
}

/// Checks that `leaf` is at `proof.leaf_index` in the tree with root `expected_root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, proof: &InclusionProof, expected_root: &Hash) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::Proof(format!(
            "inclusion of leaf {} in tree of size {}: {why}",
            proof.leaf_index, proof.tree_size
        )))
    };
    if proof.leaf_index >= proof.tree_size {
        return fail("index not below size");
    }
    if proof.path.len() > PROOF_HASHES_MAX {
        return fail("path too long");
    }
    let mut fnode = proof.leaf_index;
    let mut snode = proof.tree_size - 1;
    let mut r = *leaf;
    for p in &proof.path {
        if snode == 0 {
            return fail("path longer than the tree is deep");
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return fail("path shorter than the tree is deep");
    }
    if r != *expected_root {
        return fail("computed root differs");
    }
    Ok(())
}

/// The proof that the first `old_size` of `leaves` form a prefix of all of them
/// (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals the tree size.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Result<ConsistencyProof> {
    if old_size > leaves.len() {
        return Err(Error::Proof(format!(
            "old size {old_size} is larger than the tree of {} leaves",
            leaves.len()
        )));
    }
    let mut path = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut path);
    }
    Ok(ConsistencyProof {
        old_size: old_size as u64,
        new_size: leaves.len() as u64,
        path,
    })
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            path.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, path);
        path.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, path);
        path.push(root(&leaves[..k]));
    }
}

/// Checks that the tree with root `old_root` is a prefix of the tree with root `new_root`
/// (RFC 9162 §2.1.4.2). The empty tree is a prefix of every tree.
pub fn verify_consistency(
    old_root: &Hash,
    new_root: &Hash,
    proof: &ConsistencyProof,
) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::Proof(format!(
            "consistency from size {} to {}: {why}",
            proof.old_size, proof.new_size
        )))
    };
    let (first, second) = (proof.old_size, proof.new_size);
    if first > second {
        return fail("old size above new size");
    }
    if proof.path.len() > PROOF_HASHES_MAX {
        return fail("path too long");
    }
    if first == 0 {
        if !proof.path.is_empty() {
            return fail("proof from the empty tree must be empty");
        }
        if *old_root != empty_root() {
            return fail("old root is not the empty tree's");
        }
        return Ok(());
    }
    if first == second {
        if !proof.path.is_empty() {
            return fail("proof between equal sizes must be empty");
        }
        if old_root != new_root {
            return fail("roots of equal sizes differ");
        }
        return Ok(());
    }
    if proof.path.is_empty() {
        return fail("empty path");
    }
    let mut path = proof.path.iter();
    let start = if first.is_power_of_two() {
        *old_root
    } else {
        *path.next().expect("path is not empty")
    };
    let mut fnode = first - 1;
    let mut snode = second - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (start, start);
    for c in path {
        if snode == 0 {
            return fail("path longer than the tree is deep");
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return fail("path shorter than the tree is deep");
    }
    if fr != *old_root {
        return fail("computed old root differs");
    }
    if sr != *new_root {
        return fail("computed new root differs");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn all_proofs_at_once_equal_each_proof_alone() {
        for n in 0..70u8 {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[i])).collect();
            let all = inclusion_proofs(&leaves);
            assert_eq!(all.len(), leaves.len());
            for (i, proof) in all.iter().enumerate() {
                assert_eq!(*proof, inclusion_proof(&leaves, i).unwrap(), "{i} of {n}");
                verify_inclusion(&leaves[i], proof, &root(&leaves)).unwrap();
            }
        }
    }

    /// RFC 6962's test leaves, as published with the Certificate Transparency reference
    /// implementations.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// The roots of the trees of the first 0 to 8 test leaves.
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn test_leaves() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|h| leaf_hash(&hex::decode(h).unwrap()))
            .collect()
    }

    fn h(s: &str) -> Hash {
        Hash::from_hex(s).unwrap()
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&(i as u32).to_be_bytes()))
            .collect()
    }

    #[test]
    fn roots_match_rfc6962_test_vectors_for_sizes_0_to_8() {
        let l = test_leaves();
        for (n, want) in ROOTS.iter().enumerate() {
            assert_eq!(root(&l[..n]).to_hex(), *want, "size {n}");
        }
        let data: Vec<Vec<u8>> = LEAVES.iter().map(|h| hex::decode(h).unwrap()).collect();
        assert_eq!(root_of(&data).to_hex(), ROOTS[8]);
    }

    #[test]
    fn proofs_match_published_reference_paths() {
        let l = test_leaves();
        let p0 = inclusion_proof(&l, 0).unwrap();
        assert_eq!(
            p0.path,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        let p5 = inclusion_proof(&l, 5).unwrap();
        assert_eq!(
            p5.path,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        let c28 = consistency_proof(&l, 2).unwrap();
        assert_eq!(
            c28.path,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        let c68 = consistency_proof(&l, 6).unwrap();
        assert_eq!(
            c68.path,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
        let c25 = consistency_proof(&l[..5], 2).unwrap();
        assert_eq!(
            c25.path,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ]
        );
    }

    #[test]
    fn the_split_is_the_largest_power_of_two_below_n() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn level_root_equals_recursive_definition() {
        fn mth(l: &[Hash]) -> Hash {
            match l.len() {
                0 => empty_root(),
                1 => l[0],
                n => {
                    let k = split(n);
                    node_hash(&mth(&l[..k]), &mth(&l[k..]))
                }
            }
        }
        for n in 0..=130 {
            let l = leaves(n);
            assert_eq!(root(&l), mth(&l), "size {n}");
        }
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut out = *h;
        out.0[bit / 8] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn every_inclusion_proof_up_to_64_leaves_verifies_and_any_flipped_bit_fails() {
        for n in 1..=64usize {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..n {
                let p = inclusion_proof(&l, i).unwrap();
                verify_inclusion(&l[i], &p, &r).unwrap();
                // Flip one bit (a different one each time, to cover all positions) in each
                // hash of the path, in the root and in the leaf.
                for (j, _) in p.path.iter().enumerate() {
                    let mut bad = p.clone();
                    bad.path[j] = flip(&bad.path[j], (i * 7 + j * 13) % 256);
                    assert!(
                        verify_inclusion(&l[i], &bad, &r).is_err(),
                        "n={n} i={i} j={j}"
                    );
                }
                assert!(verify_inclusion(&l[i], &p, &flip(&r, i % 256)).is_err());
                assert!(verify_inclusion(&flip(&l[i], n % 256), &p, &r).is_err());
                // A wrong index, a wrong size, a cut or lengthened path all fail.
                let mut moved = p.clone();
                moved.leaf_index ^= 1;
                if moved.leaf_index < n as u64 && l[moved.leaf_index as usize] != l[i] {
                    assert!(verify_inclusion(&l[i], &moved, &r).is_err());
                }
                // The size only shapes the path; a root is trusted together with its size
                // (a signed tree head), so a size of another shape must fail, while one of
                // the same shape may verify against the same root by design.
                let mut resized = p.clone();
                resized.tree_size = 2 * n as u64 + 1;
                assert!(
                    verify_inclusion(&l[i], &resized, &r).is_err(),
                    "n={n} i={i} resized"
                );
                if !p.path.is_empty() {
                    let mut cut = p.clone();
                    cut.path.pop();
                    assert!(verify_inclusion(&l[i], &cut, &r).is_err());
                }
                let mut long = p.clone();
                long.path.push(r);
                assert!(verify_inclusion(&l[i], &long, &r).is_err());
            }
        }
    }

    #[test]
    fn every_consistency_proof_up_to_64_leaves_verifies_and_any_flipped_bit_fails() {
        let all = leaves(64);
        let roots: Vec<Hash> = (0..=64).map(|n| root(&all[..n])).collect();
        for new in 0..=64usize {
            for old in 0..=new {
                let p = consistency_proof(&all[..new], old).unwrap();
                verify_consistency(&roots[old], &roots[new], &p)
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
                for j in 0..p.path.len() {
                    let mut bad = p.clone();
                    bad.path[j] = flip(&bad.path[j], (old * 11 + j) % 256);
                    assert!(verify_consistency(&roots[old], &roots[new], &bad).is_err());
                }
                if old > 0 && old < new {
                    let bad_old = flip(&roots[old], new % 256);
                    assert!(verify_consistency(&bad_old, &roots[new], &p).is_err());
                    let bad_new = flip(&roots[new], old % 256);
                    assert!(verify_consistency(&roots[old], &bad_new, &p).is_err());
                    // A proof for other sizes does not prove these.
                    let mut other = p.clone();
                    other.old_size -= 1;
                    assert!(verify_consistency(&roots[old], &roots[new], &other).is_err());
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let l = leaves(5);
        assert!(inclusion_proof(&l, 5).is_err());
        assert!(inclusion_proof(&[], 0).is_err());
        assert!(consistency_proof(&l, 6).is_err());
        let p = InclusionProof {
            leaf_index: 3,
            tree_size: 3,
            path: vec![],
        };
        assert!(verify_inclusion(&l[0], &p, &root(&l)).is_err());
        let c = ConsistencyProof {
            old_size: 4,
            new_size: 3,
            path: vec![],
        };
        assert!(verify_consistency(&root(&l[..4]), &root(&l[..3]), &c).is_err());
    }

    #[test]
    fn proof_decoding_refuses_long_paths() {
        let p = InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![Hash::ZERO; PROOF_HASHES_MAX + 1],
        };
        let bytes = crate::codec::encode(&p);
        assert!(crate::codec::decode::<InclusionProof>("proof", &bytes, 1 << 20).is_err());
    }
}
