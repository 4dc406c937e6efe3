//! Block headers and blocks.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec::{self, read_vec},
    merkle,
    tx::{Transaction, TX_BYTES_MAX},
    types::{ChainId, Height, Timestamp},
    vote::{Commit, Evidence},
    Error, Hash, PublicKey, Result,
};

/// The most transactions one block may carry.
pub const BLOCK_TXS_MAX: usize = 20_000;
/// The most pieces of evidence one block may carry.
pub const BLOCK_EVIDENCE_MAX: usize = 64;
/// The most bytes one encoded block may have.
pub const BLOCK_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A block header. Its hash (SHA-256 of its borsh encoding) is the block's hash, which is
/// what proposals, votes and commits name.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Header {
    pub chain_id: ChainId,
    pub height: Height,
    pub time: Timestamp,
    /// The hash of the previous block; for the first block, the genesis hash.
    pub parent_hash: Hash,
    /// RFC 9162 root over the ids of the block's transactions, in order.
    pub txs_root: Hash,
    /// RFC 9162 root over the encodings of the transactions' results (receipts), in the
    /// transactions' order: what each transaction did, so a client can prove it.
    pub results_root: Hash,
    /// Root of the state tree after executing this block.
    pub state_root: Hash,
    /// Hash of the validator set that signs this block.
    pub validators_hash: Hash,
    /// Hash of the validator set that signs the next block.
    pub next_validators_hash: Hash,
    pub proposer: PublicKey,
    /// Hash of the commit for the previous block carried in this one, or zero at height 1.
    pub last_commit_hash: Hash,
    /// RFC 9162 root over the encodings of the block's evidence.
    pub evidence_hash: Hash,
}

impl Header {
    pub fn hash(&self) -> Hash {
        Hash::of(self)
    }
}

/// A block: its header, its transactions, the commit certificate of the previous block and
/// evidence of misbehaviour.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Transaction>,
    /// Null in the first block.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_commit: Option<Commit>,
    /// Evidence of equivocation (its encoding: docs/wire-format.md).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub evidence: Vec<Evidence>,
}

impl BorshDeserialize for Block {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(Block {
            header: Header::deserialize_reader(reader)?,
            txs: read_vec(reader, BLOCK_TXS_MAX, "block transactions")?,
            last_commit: Option::<Commit>::deserialize_reader(reader)?,
            evidence: read_vec(reader, BLOCK_EVIDENCE_MAX, "block evidence")?,
        })
    }
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    /// The transactions root of a list of transactions: RFC 9162 over their ids.
    pub fn txs_root(txs: &[Transaction]) -> Hash {
        let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
        Self::txs_root_of_ids(&ids)
    }

    /// The transactions root of the transactions with these ids, in order.
    pub fn txs_root_of_ids(ids: &[Hash]) -> Hash {
        let leaves: Vec<Hash> = ids.iter().map(|id| merkle::leaf_hash(&id.0)).collect();
        merkle::root(&leaves)
    }

    /// The results root of a block: RFC 9162 over the encodings of its transactions'
    /// results, one per transaction, in order.
    pub fn results_root<T: AsRef<[u8]>>(results: &[T]) -> Hash {
        merkle::root_of(results)
    }

    pub fn last_commit_hash(last_commit: Option<&Commit>) -> Hash {
        last_commit.map_or(Hash::ZERO, Hash::of)
    }

    pub fn evidence_hash(evidence: &[Evidence]) -> Hash {
        let leaves: Vec<Vec<u8>> = evidence.iter().map(codec::encode).collect();
        merkle::root_of(&leaves)
    }

    /// Checks that the header commits to the body (transactions root, last commit hash,
    /// evidence hash), that the last commit is for the parent, and that every transaction is
    /// for this chain, within the size limit and in the block once. Signatures, execution
    /// and the commit's signatures are checked elsewhere.
    pub fn check_body(&self) -> Result<()> {
        self.checked_ids().map(|_| ())
    }

    /// [`Block::check_body`], giving the ids of the block's transactions in order: each
    /// transaction is encoded and hashed once here, and its id carried from then on.
    pub fn checked_ids(&self) -> Result<Vec<Hash>> {
        let h = &self.header;
        let bad = |what: &str| Error::invalid("block", format!("{what} at height {}", h.height));
        // Encode each transaction once: for its size, its id and the root.
        let mut leaves = Vec::with_capacity(self.txs.len());
        let mut in_order = Vec::with_capacity(self.txs.len());
        let mut ids = std::collections::BTreeSet::new();
        for tx in &self.txs {
            let bytes = codec::encode(tx);
            let id = Hash::digest(&bytes);
            if bytes.len() > TX_BYTES_MAX {
                return Err(bad(&format!("transaction {id} is too large")));
            }
            if tx.chain_id != h.chain_id {
                return Err(bad(&format!(
                    "transaction {id} is for chain {}",
                    tx.chain_id
                )));
            }
            if !ids.insert(id) {
                return Err(bad(&format!("transaction {id} is in the block twice")));
            }
            leaves.push(merkle::leaf_hash(&id.0));
            in_order.push(id);
        }
        if merkle::root(&leaves) != h.txs_root {
            return Err(bad("transactions root does not match the header"));
        }
        if Self::last_commit_hash(self.last_commit.as_ref()) != h.last_commit_hash {
            return Err(bad("last commit hash does not match the header"));
        }
        if Self::evidence_hash(&self.evidence) != h.evidence_hash {
            return Err(bad("evidence hash does not match the header"));
        }
        match (&self.last_commit, h.height == Height(1)) {
            (Some(_), true) => return Err(bad("the first block carries a last commit")),
            (None, false) => return Err(bad("last commit missing")),
            (Some(c), false)
                if c.height.0.checked_add(1) != Some(h.height.0) || c.block != h.parent_hash =>
            {
                return Err(bad("last commit is not for the parent block"));
            }
            _ => {}
        }
        Ok(in_order)
    }

    /// Decodes one block of at most [`BLOCK_BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Block> {
        codec::decode("block", bytes, BLOCK_BYTES_MAX)
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, BlockSpec};

    fn block(height: u64, txs: Vec<Transaction>, last_commit: Option<Commit>) -> Block {
        let chain = testing::chain_id();
        let (_, set) = testing::validators(4, &[]);
        let parent = Hash::digest(b"parent");
        testing::block(
            &chain,
            BlockSpec {
                height: Height(height),
                parent_hash: parent,
                txs,
                last_commit,
                evidence: vec![],
                state_root: Hash::ZERO,
                validators: &set,
                next_validators: &set,
            },
        )
    }

    fn parent_commit(height: u64) -> Commit {
        let (keys, set) = testing::validators(4, &[]);
        testing::commit(
            &testing::chain_id(),
            &keys,
            &set,
            Height(height),
            Hash::digest(b"parent"),
        )
    }

    #[test]
    fn a_consistent_body_passes() {
        let chain = testing::chain_id();
        let txs = vec![
            testing::create_did_tx(&chain, 1, 0),
            testing::attest_tx(&chain, 1, 0),
        ];
        block(1, txs.clone(), None).check_body().unwrap();
        let b = block(2, txs.clone(), Some(parent_commit(1)));
        b.check_body().unwrap();
        // The ids it checked, in order, and the root over them.
        let ids = b.checked_ids().unwrap();
        assert_eq!(ids, txs.iter().map(Transaction::id).collect::<Vec<_>>());
        assert_eq!(Block::txs_root_of_ids(&ids), b.header.txs_root);
    }

    #[test]
    fn body_flaws_are_refused() {
        let chain = testing::chain_id();
        let tx = testing::create_did_tx(&chain, 1, 0);
        // The same transaction twice.
        assert!(block(1, vec![tx.clone(), tx.clone()], None)
            .check_body()
            .is_err());
        // A last commit in the first block; none in a later one; one for another height.
        assert!(block(1, vec![], Some(parent_commit(0)))
            .check_body()
            .is_err());
        assert!(block(2, vec![], None).check_body().is_err());
        assert!(block(3, vec![], Some(parent_commit(1)))
            .check_body()
            .is_err());
        // A last commit at the largest height does not overflow.
        let top = Some(parent_commit(u64::MAX));
        assert!(block(3, vec![], top).check_body().is_err());
        // A body that does not match its header.
        let mut b = block(1, vec![tx.clone()], None);
        b.txs.push(testing::create_did_tx(&chain, 2, 0));
        assert!(b.check_body().is_err());
        // A transaction for another chain, even with the root recomputed.
        let other = crate::ChainId::new("acta-other").unwrap();
        let foreign = testing::create_did_tx(&other, 1, 0);
        assert!(block(1, vec![foreign], None).check_body().is_err());
    }
}
