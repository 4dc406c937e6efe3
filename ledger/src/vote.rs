//! Proposals, votes, commit certificates and evidence of equivocation.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec::read_vec,
    crypto::Domain,
    types::{ChainId, Height, Round, ValidatorIndex},
    validator::ValidatorSet,
    Error, Hash, Keypair, PublicKey, Result, Signature,
};

/// The two kinds of vote of Tendermint.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    pub fn domain(self) -> Domain {
        match self {
            VoteKind::Prevote => Domain::Prevote,
            VoteKind::Precommit => Domain::Precommit,
        }
    }
}

/// A vote for a block (`Some(hash)`) or for nil (`None`) at a height and round. The kind is
/// in the signed bytes through the domain tag, not in the payload.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub block: Option<Hash>,
}

impl Vote {
    /// The payload that is signed: `(height, round, block)`.
    pub fn payload(&self) -> (Height, Round, Option<Hash>) {
        (self.height, self.round, self.block)
    }

    pub fn sign(self, key: &Keypair, chain_id: &ChainId) -> SignedVote {
        let signature = key.sign(self.kind.domain(), chain_id, &self.payload());
        SignedVote {
            vote: self,
            validator: key.public(),
            signature,
        }
    }
}

/// A vote with the key that signed it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedVote {
    pub vote: Vote,
    pub validator: PublicKey,
    pub signature: Signature,
}

impl SignedVote {
    pub fn verify(&self, chain_id: &ChainId) -> Result<()> {
        self.validator.verify(
            self.vote.kind.domain(),
            chain_id,
            &self.vote.payload(),
            &self.signature,
        )
    }
}

/// A proposer's claim that `block` is its proposal for `height` and `round`. `pol_round`
/// is the round of the proof of lock the proposer holds for it, if any (`validRound` of the
/// paper; `None` stands for -1).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub block: Hash,
    pub pol_round: Option<Round>,
}

impl Proposal {
    pub fn sign(self, key: &Keypair, chain_id: &ChainId) -> SignedProposal {
        let signature = key.sign(Domain::Proposal, chain_id, &self);
        SignedProposal {
            proposal: self,
            proposer: key.public(),
            signature,
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub proposer: PublicKey,
    pub signature: Signature,
}

impl SignedProposal {
    pub fn verify(&self, chain_id: &ChainId) -> Result<()> {
        self.proposer
            .verify(Domain::Proposal, chain_id, &self.proposal, &self.signature)
    }
}

/// One validator's precommit inside a commit certificate.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitSig {
    pub validator: ValidatorIndex,
    pub signature: Signature,
}

/// A commit certificate: precommits for `block` at `height` and `round` from validators
/// holding more than two thirds of the voting power, in strictly increasing validator order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Commit {
    pub height: Height,
    pub round: Round,
    pub block: Hash,
    pub signatures: Vec<CommitSig>,
}

impl BorshDeserialize for Commit {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(Commit {
            height: Height::deserialize_reader(reader)?,
            round: Round::deserialize_reader(reader)?,
            block: Hash::deserialize_reader(reader)?,
            signatures: read_vec(reader, ValidatorSet::VALIDATORS_MAX, "commit signatures")?,
        })
    }
}

impl Commit {
    /// The most bytes an encoded commit may have: 256 signatures and the header fields.
    pub const BYTES_MAX: usize = 32 * 1024;

    /// The precommit every signature in this commit signs.
    pub fn vote(&self) -> Vote {
        Vote {
            kind: VoteKind::Precommit,
            height: self.height,
            round: self.round,
            block: Some(self.block),
        }
    }

    /// Builds a commit from signed precommits, ordered by validator index. Fails if a vote
    /// is not a precommit for this block, height and round, or its signer is not in `set`.
    pub fn from_votes(
        height: Height,
        round: Round,
        block: Hash,
        set: &ValidatorSet,
        votes: &[SignedVote],
    ) -> Result<Commit> {
        let mut signatures = Vec::with_capacity(votes.len());
        for v in votes {
            let want = Vote {
                kind: VoteKind::Precommit,
                height,
                round,
                block: Some(block),
            };
            if v.vote != want {
                return Err(Error::Commit(format!(
                    "vote {:?} is not for {want:?}",
                    v.vote
                )));
            }
            let validator = set
                .index_of(&v.validator)
                .ok_or_else(|| Error::Commit(format!("{} is not a validator", v.validator)))?;
            signatures.push(CommitSig {
                validator,
                signature: v.signature,
            });
        }
        signatures.sort_by_key(|s| s.validator);
        signatures.dedup_by_key(|s| s.validator);
        Ok(Commit {
            height,
            round,
            block,
            signatures,
        })
    }
}

/// Proof that a validator signed two conflicting messages for one height, round and step.
/// Anyone holding the validator's key can check it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub enum Evidence {
    /// Two different votes of one kind for one height and round.
    DuplicateVote { a: SignedVote, b: SignedVote },
    /// Two different proposals for one height and round.
    DuplicateProposal {
        a: SignedProposal,
        b: SignedProposal,
    },
}

impl Evidence {
    /// Builds evidence in a canonical order, so two nodes that saw the conflict in different
    /// orders produce the same bytes.
    pub fn duplicate_vote(a: SignedVote, b: SignedVote) -> Evidence {
        if (a.vote.block, a.signature.0) <= (b.vote.block, b.signature.0) {
            Evidence::DuplicateVote { a, b }
        } else {
            Evidence::DuplicateVote { a: b, b: a }
        }
    }

    pub fn duplicate_proposal(a: SignedProposal, b: SignedProposal) -> Evidence {
        if (a.proposal.block, a.proposal.pol_round) <= (b.proposal.block, b.proposal.pol_round) {
            Evidence::DuplicateProposal { a, b }
        } else {
            Evidence::DuplicateProposal { a: b, b: a }
        }
    }

    /// The key that equivocated.
    pub fn offender(&self) -> PublicKey {
        match self {
            Evidence::DuplicateVote { a, .. } => a.validator,
            Evidence::DuplicateProposal { a, .. } => a.proposer,
        }
    }

    pub fn height(&self) -> Height {
        match self {
            Evidence::DuplicateVote { a, .. } => a.vote.height,
            Evidence::DuplicateProposal { a, .. } => a.proposal.height,
        }
    }

    /// Checks that both messages are signed by one key, are for one height, round and step,
    /// and differ. Returns the offender.
    pub fn verify(&self, chain_id: &ChainId) -> Result<PublicKey> {
        let bad = |why: &str| Err(Error::invalid("evidence", why.to_string()));
        match self {
            Evidence::DuplicateVote { a, b } => {
                if a.validator != b.validator {
                    return bad("votes are from different validators");
                }
                let (va, vb) = (&a.vote, &b.vote);
                if (va.kind, va.height, va.round) != (vb.kind, vb.height, vb.round) {
                    return bad("votes are for different steps");
                }
                if va.block == vb.block {
                    return bad("votes do not conflict");
                }
                if (va.block, a.signature.0) > (vb.block, b.signature.0) {
                    return bad("votes are not in canonical order");
                }
                a.verify(chain_id)?;
                b.verify(chain_id)?;
                Ok(a.validator)
            }
            Evidence::DuplicateProposal { a, b } => {
                if a.proposer != b.proposer {
                    return bad("proposals are from different validators");
                }
                let (pa, pb) = (&a.proposal, &b.proposal);
                if (pa.height, pa.round) != (pb.height, pb.round) {
                    return bad("proposals are for different rounds");
                }
                if pa == pb {
                    return bad("proposals do not conflict");
                }
                if (pa.block, pa.pol_round) > (pb.block, pb.pol_round) {
                    return bad("proposals are not in canonical order");
                }
                a.verify(chain_id)?;
                b.verify(chain_id)?;
                Ok(a.proposer)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("acta-test").unwrap()
    }

    fn vote(block: u8) -> Vote {
        Vote {
            kind: VoteKind::Prevote,
            height: Height(5),
            round: Round(1),
            block: Some(Hash([block; 32])),
        }
    }

    #[test]
    fn a_prevote_signature_is_not_a_precommit_signature() {
        let k = Keypair::from_seed([3; 32]);
        let mut signed = vote(1).sign(&k, &chain());
        assert!(signed.verify(&chain()).is_ok());
        signed.vote.kind = VoteKind::Precommit;
        assert!(signed.verify(&chain()).is_err());
    }

    #[test]
    fn duplicate_vote_evidence_verifies_only_when_it_really_conflicts() {
        let k = Keypair::from_seed([3; 32]);
        let a = vote(1).sign(&k, &chain());
        let b = vote(2).sign(&k, &chain());
        let ev = Evidence::duplicate_vote(a, b);
        assert_eq!(ev, Evidence::duplicate_vote(b, a));
        assert_eq!(ev.verify(&chain()).unwrap(), k.public());
        // One offence has one encoding: the other order is refused.
        let Evidence::DuplicateVote {
            a: first,
            b: second,
        } = ev.clone()
        else {
            unreachable!()
        };
        assert!(Evidence::DuplicateVote {
            a: second,
            b: first
        }
        .verify(&chain())
        .is_err());
        // Same vote twice, different steps, different signers, a forged signature: refused.
        assert!(Evidence::duplicate_vote(a, a).verify(&chain()).is_err());
        let mut later = vote(2);
        later.round = Round(2);
        let c = later.sign(&k, &chain());
        assert!(Evidence::duplicate_vote(a, c).verify(&chain()).is_err());
        let other = vote(2).sign(&Keypair::from_seed([4; 32]), &chain());
        assert!(Evidence::duplicate_vote(a, other).verify(&chain()).is_err());
        let mut forged = b;
        forged.signature.0[0] ^= 1;
        assert!(Evidence::duplicate_vote(a, forged)
            .verify(&chain())
            .is_err());
        let wrong_chain = ChainId::new("acta-other").unwrap();
        assert!(ev.verify(&wrong_chain).is_err());
    }

    #[test]
    fn duplicate_proposal_evidence_verifies() {
        let k = Keypair::from_seed([3; 32]);
        let p = |b: u8| Proposal {
            height: Height(2),
            round: Round(0),
            block: Hash([b; 32]),
            pol_round: None,
        };
        let ev = Evidence::duplicate_proposal(p(1).sign(&k, &chain()), p(2).sign(&k, &chain()));
        assert_eq!(ev.verify(&chain()).unwrap(), k.public());
        let same = Evidence::duplicate_proposal(p(1).sign(&k, &chain()), p(1).sign(&k, &chain()));
        assert!(same.verify(&chain()).is_err());
    }
}
