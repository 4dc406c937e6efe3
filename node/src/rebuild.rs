//! Proposals whose blocks come as transaction ids ([`CompactBlock`]): the transactions a
//! validator's mempool lacks are asked of the peer that sent the proposal
//! ([`SyncRequest::ProposalTxs`]), and the block is whole once they come, from that peer or
//! by gossip meanwhile.
//!
//! [`SyncRequest::ProposalTxs`]: crate::p2p::protocol::SyncRequest::ProposalTxs

use std::collections::HashMap;

use acta_ledger::{Block, Hash, Height, SignedProposal, Transaction};

use crate::p2p::{
    protocol::{CompactBlock, TxBitmap},
    PeerId,
};

/// The most requests for proposals' transactions in flight at once.
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
    /// The peer asked.
    pub peer: PeerId,
}

/// What transactions found meanwhile did to a waiting proposal.
#[derive(Debug)]
enum Refill {
    /// Some are still missing.
    Missing,
    /// The block is whole.
    Whole(SignedProposal, Box<Block>),
    /// The transactions do not make the block (another count than the ids': cannot happen,
    /// the list is built from them): given up.
    Broken,
}

impl Waiting {
    pub fn new(
        proposal: SignedProposal,
        block: CompactBlock,
        txs: Vec<Option<Transaction>>,
        peer: PeerId,
    ) -> Waiting {
        Waiting {
            proposal,
            block,
            txs,
            asked: Vec::new(),
            peer,
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
    /// more).
    fn refill(&mut self, lookup: &impl Fn(&Hash) -> Option<Transaction>) -> Refill {
        for (slot, id) in self.txs.iter_mut().zip(&self.block.tx_ids) {
            if slot.is_none() {
                *slot = lookup(id);
            }
        }
        if self.txs.iter().any(Option::is_none) {
            return Refill::Missing;
        }
        let txs = std::mem::take(&mut self.txs);
        match self.block.clone().into_block(txs) {
            Some(block) => Refill::Whole(self.proposal, Box::new(block)),
            None => Refill::Broken,
        }
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
    /// Whether the transactions of this block are being asked of this peer already.
    pub fn is_fetching(&self, block: &Hash, peer: &PeerId) -> bool {
        self.waiting
            .values()
            .any(|w| w.block_hash() == *block && w.peer == *peer)
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
        let mut whole: Vec<(SignedProposal, Block)> = Vec::new();
        self.waiting.retain(|_, w| {
            // Another request for a block made whole already.
            if whole
                .iter()
                .any(|(p, _)| p.proposal.block == w.block_hash())
            {
                return false;
            }
            match w.refill(&lookup) {
                Refill::Missing => true,
                Refill::Whole(proposal, block) => {
                    whole.push((proposal, *block));
                    false
                }
                Refill::Broken => false,
            }
        });
        let done: Vec<Hash> = whole.iter().map(|(p, _)| p.proposal.block).collect();
        self.waiting.retain(|_, w| !done.contains(&w.block_hash()));
        whole
    }

    /// Forgets the other requests for a block that is whole.
    pub fn forget_block(&mut self, block: &Hash) {
        self.waiting.retain(|_, w| w.block_hash() != *block);
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

    /// Evidence of `key` prevoting two blocks at height 2.
    fn equivocation(key: &acta_ledger::Keypair) -> acta_ledger::Evidence {
        let vote = |block: &[u8]| {
            acta_ledger::Vote {
                kind: acta_ledger::VoteKind::Prevote,
                height: Height(2),
                round: Round(0),
                block: Some(Hash::digest(block)),
            }
            .sign(key, &testing::chain_id())
        };
        acta_ledger::Evidence::duplicate_vote(vote(b"a"), vote(b"b"))
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
        // Evidence or a last commit the header does not commit to: not this block.
        let (keys, set) = testing::validators(4, &[1, 1, 1, 1]);
        let mut with_commit = compact.clone();
        with_commit.last_commit = Some(testing::commit(
            &testing::chain_id(),
            &keys,
            &set,
            Height(2),
            Hash::digest(b"parent"),
        ));
        assert!(!with_commit.names(&whole.hash()));
        let mut with_evidence = compact.clone();
        with_evidence.evidence = vec![equivocation(&keys[0])];
        assert!(!with_evidence.names(&whole.hash()));

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
        let mut waiting = Waiting::new(proposal(&whole), compact, found, PeerId::random());
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
            let mut waiting =
                Waiting::new(proposal(&whole), compact.clone(), found, PeerId::random());
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
        let peer = PeerId::random();
        let mut waiting = Waiting::new(proposal(&whole), compact, found, peer);
        assert_eq!(waiting.ask(), TxBitmap(vec![0b110]));
        rebuilds.wait(7, waiting);
        // One more arrives: still waiting.
        let pool: HashMap<Hash, Transaction> =
            whole.txs[..2].iter().map(|t| (t.id(), t.clone())).collect();
        assert!(rebuilds.refill(|id| pool.get(id).cloned()).is_empty());
        assert!(rebuilds.is_fetching(&whole.hash(), &peer));
        assert!(!rebuilds.is_fetching(&whole.hash(), &PeerId::random()));
        // The answer still gives the two asked for, and is right.
        let waiting = rebuilds.take(&7).unwrap();
        let (_, rebuilt) = waiting.complete(whole.txs[1..].to_vec()).unwrap();
        assert_eq!(rebuilt, whole);
        let mut waiting = Waiting::new(
            proposal(&whole),
            CompactBlock::of(&whole),
            vec![Some(first), Some(whole.txs[1].clone()), None],
            PeerId::random(),
        );
        waiting.ask();
        rebuilds.wait(7, waiting);
        // A second request for the same block, of another peer.
        let mut again = Waiting::new(
            proposal(&whole),
            CompactBlock::of(&whole),
            vec![None, None, None],
            PeerId::random(),
        );
        again.ask();
        rebuilds.wait(8, again);
        // The last: the block is whole, and no longer waits for the answer.
        let pool: HashMap<Hash, Transaction> =
            whole.txs[2..].iter().map(|t| (t.id(), t.clone())).collect();
        let done = rebuilds.refill(|id| pool.get(id).cloned());
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1, whole);
        // Neither request waits any more: the block is whole once.
        assert!(rebuilds.take(&7).is_none());
        assert!(rebuilds.take(&8).is_none());
    }

    #[test]
    fn decided_heights_are_forgotten() {
        let whole = block(txs(2));
        let compact = CompactBlock::of(&whole);
        let mut rebuilds = Rebuilds::<u64>::default();
        let peer = PeerId::random();
        assert!(rebuilds.has_room());
        assert!(!rebuilds.is_fetching(&whole.hash(), &peer));
        let id = 1;
        rebuilds.wait(
            id,
            Waiting::new(proposal(&whole), compact.clone(), vec![None, None], peer),
        );
        assert!(rebuilds.is_fetching(&whole.hash(), &peer));
        rebuilds.forget_below(Height(3));
        assert!(rebuilds.is_fetching(&whole.hash(), &peer));
        rebuilds.forget_below(Height(4));
        assert!(!rebuilds.is_fetching(&whole.hash(), &peer));
        assert!(rebuilds.take(&id).is_none());
    }
}
