//! Proposals whose blocks come as transaction ids ([`CompactBlock`]): the transactions a
//! validator's mempool lacks are asked of a peer ([`SyncRequest::ProposalTxs`]), and the
//! block is whole once they come.
//!
//! [`SyncRequest::ProposalTxs`]: crate::p2p::protocol::SyncRequest::ProposalTxs

use std::collections::HashMap;

use acta_ledger::{Block, Hash, Height, SignedProposal, Transaction};

use crate::p2p::{
    protocol::{CompactBlock, TxBitmap},
    PeerId,
};

/// The most proposals waiting for transactions at once.
pub const REBUILDS_MAX: usize = 8;

/// A proposal whose block waits for the transactions asked of a peer.
#[derive(Debug)]
pub struct Waiting {
    pub proposal: SignedProposal,
    block: CompactBlock,
    /// The block's transactions, `None` where one is missing.
    txs: Vec<Option<Transaction>>,
    /// The indices of the transactions last asked for ([`Waiting::ask`]), which the answer
    /// gives in order (some may have come by gossip since).
    asked: Vec<usize>,
    /// Whom to ask next if the peer asked cannot answer (the peer that forwarded the
    /// proposal, when it was not its signer).
    pub fallback: Option<PeerId>,
}

impl Waiting {
    pub fn new(
        proposal: SignedProposal,
        block: CompactBlock,
        txs: Vec<Option<Transaction>>,
        fallback: Option<PeerId>,
    ) -> Waiting {
        Waiting {
            proposal,
            block,
            txs,
            asked: Vec::new(),
            fallback,
        }
    }

    pub fn block_hash(&self) -> Hash {
        self.proposal.proposal.block
    }

    pub fn height(&self) -> Height {
        self.proposal.proposal.height
    }

    /// The transactions still missing, as a request names them; the answer is to give
    /// these.
    pub fn ask(&mut self) -> TxBitmap {
        let bitmap = TxBitmap::missing(&self.txs);
        self.asked = (0..self.txs.len())
            .filter(|&i| self.txs[i].is_none())
            .collect();
        bitmap
    }

    /// Puts in the missing transactions `lookup` finds (the mempool, after it admitted
    /// more); gives the proposal and its block once none is missing.
    fn refill(
        &mut self,
        lookup: &impl Fn(&Hash) -> Option<Transaction>,
    ) -> Option<(SignedProposal, Block)> {
        for (slot, id) in self.txs.iter_mut().zip(&self.block.tx_ids) {
            if slot.is_none() {
                *slot = lookup(id);
            }
        }
        if self.txs.iter().any(Option::is_none) {
            return None;
        }
        let txs = std::mem::take(&mut self.txs);
        let block = self.block.clone().into_block(txs)?;
        Some((self.proposal, block))
    }

    /// Puts in the transactions a peer answered with, which must be exactly those asked
    /// for ([`Waiting::ask`]) in order, each the one its id names. Gives the proposal and
    /// its whole block, or why the answer is wrong (the peer is to blame, not the
    /// proposer).
    pub fn complete(self, answer: Vec<Transaction>) -> Result<(SignedProposal, Block), String> {
        let Waiting {
            proposal,
            block,
            mut txs,
            asked,
            ..
        } = self;
        if answer.len() != asked.len() {
            return Err(format!(
                "{} transactions where {} were asked for",
                answer.len(),
                asked.len()
            ));
        }
        for (i, tx) in asked.into_iter().zip(answer) {
            let id = &block.tx_ids[i];
            if tx.id() != *id {
                return Err(format!("transaction {} where {id} was asked for", tx.id()));
            }
            txs[i] = Some(tx);
        }
        match block.into_block(txs) {
            Some(block) => Ok((proposal, block)),
            None => Err("the proposal's transactions do not add up".into()),
        }
    }
}

/// The proposals waiting for transactions, by the request `R` that asked for them.
#[derive(Debug)]
pub struct Rebuilds<R> {
    waiting: HashMap<R, Waiting>,
}

impl<R> Default for Rebuilds<R> {
    fn default() -> Self {
        Rebuilds {
            waiting: HashMap::new(),
        }
    }
}

impl<R: std::hash::Hash + Eq> Rebuilds<R> {
    /// Whether the transactions of this block are being asked for already.
    pub fn is_fetching(&self, block: &Hash) -> bool {
        self.waiting.values().any(|w| w.block_hash() == *block)
    }

    /// Whether another proposal may wait.
    pub fn has_room(&self) -> bool {
        self.waiting.len() < REBUILDS_MAX
    }

    pub fn wait(&mut self, request: R, waiting: Waiting) {
        self.waiting.insert(request, waiting);
    }

    /// The proposal that request waited for, if it is still waited for.
    pub fn take(&mut self, request: &R) -> Option<Waiting> {
        self.waiting.remove(request)
    }

    /// The waiting proposals whose missing transactions `lookup` now finds, with their
    /// blocks (no longer waiting: the answers to their requests are dropped).
    pub fn refill(
        &mut self,
        lookup: impl Fn(&Hash) -> Option<Transaction>,
    ) -> Vec<(SignedProposal, Block)> {
        let mut whole = Vec::new();
        self.waiting.retain(|_, w| match w.refill(&lookup) {
            Some(done) => {
                whole.push(done);
                false
            }
            None => true,
        });
        whole
    }

    /// Forgets the proposals of heights below `height` (decided already).
    pub fn forget_below(&mut self, height: Height) {
        self.waiting.retain(|_, w| w.height() >= height);
    }
}

#[cfg(test)]
mod tests {
    use acta_ledger::{
        testing::{self, BlockSpec},
        Proposal, Round,
    };

    use super::*;

    fn block(txs: Vec<Transaction>) -> Block {
        let (_, set) = testing::validators(4, &[1, 1, 1, 1]);
        testing::block(
            &testing::chain_id(),
            BlockSpec {
                height: Height(3),
                parent_hash: Hash::digest(b"parent"),
                txs,
                last_commit: None,
                evidence: Vec::new(),
                state_root: Hash::digest(b"state"),
                validators: &set,
                next_validators: &set,
            },
        )
    }

    fn txs(n: u32) -> Vec<Transaction> {
        (0..n)
            .map(|i| testing::create_did_tx(&testing::chain_id(), i, 0))
            .collect()
    }

    fn proposal(block: &Block) -> SignedProposal {
        Proposal {
            height: block.header.height,
            round: Round(0),
            block: block.hash(),
            pol_round: None,
        }
        .sign(&testing::key(1, 0), &testing::chain_id())
    }

    #[test]
    fn a_compact_block_names_its_block_and_rebuilds_it_from_the_pool() {
        let whole = block(txs(5));
        let compact = CompactBlock::of(&whole);
        assert!(compact.names(&whole.hash()));
        // Another block's hash, or ids the header's root does not commit to, do not hold.
        assert!(!compact.names(&block(txs(4)).hash()));
        let mut reordered = compact.clone();
        reordered.tx_ids.swap(0, 1);
        assert!(!reordered.names(&whole.hash()));
        let mut shorter = compact.clone();
        shorter.tx_ids.pop();
        assert!(!shorter.names(&whole.hash()));

        let pool: HashMap<Hash, Transaction> =
            whole.txs.iter().map(|t| (t.id(), t.clone())).collect();
        let found = compact.fill(|id| pool.get(id).cloned());
        assert_eq!(compact.clone().into_block(found), Some(whole.clone()));
        // One missing: no block.
        let found = compact.fill(|id| (*id != whole.txs[2].id()).then(|| pool[id].clone()));
        assert_eq!(compact.into_block(found), None);
    }

    #[test]
    fn missing_transactions_are_asked_for_by_bitmap_and_put_in_their_places() {
        let whole = block(txs(11));
        let compact = CompactBlock::of(&whole);
        let lacking = [1usize, 8, 10];
        let found = compact.fill(|id| {
            let i = whole.txs.iter().position(|t| t.id() == *id).unwrap();
            (!lacking.contains(&i)).then(|| whole.txs[i].clone())
        });
        let mut waiting = Waiting::new(proposal(&whole), compact, found, None);
        let bitmap = waiting.ask();
        assert_eq!(bitmap, TxBitmap(vec![0b0000_0010, 0b0000_0101]));
        assert_eq!(bitmap.indices(11), Some(lacking.to_vec()));
        // A bit past the block's end makes the request unanswerable.
        assert_eq!(bitmap.indices(10), None);

        let answer: Vec<Transaction> = lacking.iter().map(|&i| whole.txs[i].clone()).collect();
        let (p, rebuilt) = waiting.complete(answer).unwrap();
        assert_eq!(rebuilt, whole);
        assert_eq!(p.proposal.block, whole.hash());
    }

    #[test]
    fn a_wrong_answer_is_refused() {
        let whole = block(txs(4));
        let compact = CompactBlock::of(&whole);
        let pool: HashMap<Hash, Transaction> =
            whole.txs[1..].iter().map(|t| (t.id(), t.clone())).collect();
        let waiting = || {
            let found = compact.fill(|id| pool.get(id).cloned());
            let mut waiting = Waiting::new(proposal(&whole), compact.clone(), found, None);
            waiting.ask();
            waiting
        };
        // Another transaction than the one asked for, too many, or none.
        assert!(waiting().complete(vec![whole.txs[3].clone()]).is_err());
        assert!(waiting()
            .complete(vec![whole.txs[0].clone(), whole.txs[0].clone()])
            .is_err());
        assert!(waiting().complete(Vec::new()).is_err());
    }

    #[test]
    fn transactions_that_arrive_by_gossip_meanwhile_complete_the_block() {
        let whole = block(txs(3));
        let compact = CompactBlock::of(&whole);
        let mut rebuilds = Rebuilds::<u64>::default();
        let first = whole.txs[0].clone();
        let found = compact.fill(|id| (*id == first.id()).then(|| first.clone()));
        let mut waiting = Waiting::new(proposal(&whole), compact, found, None);
        assert_eq!(waiting.ask(), TxBitmap(vec![0b110]));
        rebuilds.wait(7, waiting);
        // One more arrives: still waiting.
        let pool: HashMap<Hash, Transaction> =
            whole.txs[..2].iter().map(|t| (t.id(), t.clone())).collect();
        assert!(rebuilds.refill(|id| pool.get(id).cloned()).is_empty());
        assert!(rebuilds.is_fetching(&whole.hash()));
        // The answer still gives the two asked for, and is right.
        let waiting = rebuilds.take(&7).unwrap();
        let (_, rebuilt) = waiting.complete(whole.txs[1..].to_vec()).unwrap();
        assert_eq!(rebuilt, whole);
        let mut waiting = Waiting::new(
            proposal(&whole),
            CompactBlock::of(&whole),
            vec![Some(first), Some(whole.txs[1].clone()), None],
            None,
        );
        waiting.ask();
        rebuilds.wait(7, waiting);
        // The last: the block is whole, and no longer waits for the answer.
        let pool: HashMap<Hash, Transaction> =
            whole.txs[2..].iter().map(|t| (t.id(), t.clone())).collect();
        let done = rebuilds.refill(|id| pool.get(id).cloned());
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1, whole);
        assert!(rebuilds.take(&7).is_none());
    }

    #[test]
    fn decided_heights_are_forgotten() {
        let whole = block(txs(2));
        let compact = CompactBlock::of(&whole);
        let mut rebuilds = Rebuilds::<u64>::default();
        assert!(rebuilds.has_room());
        assert!(!rebuilds.is_fetching(&whole.hash()));
        let id = 1;
        rebuilds.wait(
            id,
            Waiting::new(proposal(&whole), compact.clone(), vec![None, None], None),
        );
        assert!(rebuilds.is_fetching(&whole.hash()));
        rebuilds.forget_below(Height(3));
        assert!(rebuilds.is_fetching(&whole.hash()));
        rebuilds.forget_below(Height(4));
        assert!(!rebuilds.is_fetching(&whole.hash()));
        assert!(rebuilds.take(&id).is_none());
    }
}
