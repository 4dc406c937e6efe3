//! The light client: commit certificates against validator sets, and chains of headers
//! across validator-set changes.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_ledger::{
    light::{verify_commit, TrustedState},
    testing::{self, BlockSpec},
    Block, ChainId, Commit, CommitSig, Hash, Height, Keypair, Round, ValidatorIndex, ValidatorSet,
    Vote, VoteKind,
};

fn block_at(height: u64, parent: Hash, set: &ValidatorSet, next: &ValidatorSet) -> Block {
    testing::block(
        &testing::chain_id(),
        BlockSpec {
            height: Height(height),
            parent_hash: parent,
            txs: vec![],
            last_commit: None,
            evidence: vec![],
            state_root: Hash::ZERO,
            validators: set,
            next_validators: next,
        },
    )
}

fn signed_by(keys: &[&Keypair], set: &ValidatorSet, height: Height, block: Hash) -> Commit {
    let chain = testing::chain_id();
    let vote = Vote {
        kind: VoteKind::Precommit,
        height,
        round: Round(0),
        block: Some(block),
    };
    let votes: Vec<_> = keys.iter().map(|k| vote.sign(k, &chain)).collect();
    Commit::from_votes(height, Round(0), block, set, &votes).unwrap()
}

#[test]
fn commit_needs_more_than_two_thirds_of_power_not_of_validators() {
    let chain = testing::chain_id();
    // Powers 10, 1, 1, 1 (sorted by key, so look the big one up by key).
    let (keys, set) = testing::validators(4, &[10, 1, 1, 1]);
    let block = Hash::digest(b"block");
    let h = Height(7);
    let big = &keys[0];
    // One validator with 10 of 13: more than 2/3 alone.
    let c = signed_by(&[big], &set, h, block);
    assert_eq!(verify_commit(&chain, &set, &c, h, &block).unwrap().0, 10);
    // Three of four validators, but only 3 of 13 power: not a quorum.
    let c = signed_by(&[&keys[1], &keys[2], &keys[3]], &set, h, block);
    assert!(verify_commit(&chain, &set, &c, h, &block).is_err());
}

#[test]
fn commit_is_refused_for_every_kind_of_flaw() {
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let block = Hash::digest(b"block");
    let h = Height(3);
    let good = testing::commit(&chain, &keys, &set, h, block);
    verify_commit(&chain, &set, &good, h, &block).unwrap();

    // Wrong height, wrong block, wrong chain.
    assert!(verify_commit(&chain, &set, &good, Height(4), &block).is_err());
    assert!(verify_commit(&chain, &set, &good, h, &Hash::ZERO).is_err());
    let other = ChainId::new("acta-other").unwrap();
    assert!(verify_commit(&other, &set, &good, h, &block).is_err());

    // A flipped bit in any signature.
    for i in 0..good.signatures.len() {
        let mut bad = good.clone();
        bad.signatures[i].signature.0[20] ^= 4;
        assert!(
            verify_commit(&chain, &set, &bad, h, &block).is_err(),
            "signature {i}"
        );
    }
    // A repeated signer counted twice to reach quorum.
    let mut dup = signed_by(&[&keys[0], &keys[1]], &set, h, block);
    dup.signatures.push(dup.signatures[1]);
    assert!(verify_commit(&chain, &set, &dup, h, &block).is_err());
    // Signatures out of order.
    let mut swapped = good.clone();
    swapped.signatures.swap(0, 1);
    assert!(verify_commit(&chain, &set, &swapped, h, &block).is_err());
    // An index outside the set.
    let mut outside = good.clone();
    outside.signatures[3] = CommitSig {
        validator: ValidatorIndex(9),
        ..outside.signatures[3]
    };
    assert!(verify_commit(&chain, &set, &outside, h, &block).is_err());
    // Signatures by keys outside the set, placed at members' indices.
    let strangers: Vec<Keypair> = (0..4).map(|i| testing::key(0xee, i)).collect();
    let vote = good.vote();
    let mut forged = good.clone();
    for (sig, k) in forged.signatures.iter_mut().zip(&strangers) {
        sig.signature = vote.sign(k, &chain).signature;
    }
    assert!(verify_commit(&chain, &set, &forged, h, &block).is_err());
    // A prevote's signature is not a precommit's.
    let mut prevotes = good.clone();
    let prevote = Vote {
        kind: VoteKind::Prevote,
        ..vote
    };
    for (sig, k) in prevotes.signatures.iter_mut().zip(&keys) {
        let i = set.index_of(&k.public()).unwrap();
        *sig = CommitSig {
            validator: i,
            signature: prevote.sign(k, &chain).signature,
        };
    }
    prevotes.signatures.sort_by_key(|s| s.validator);
    assert!(verify_commit(&chain, &set, &prevotes, h, &block).is_err());
}

#[test]
fn follows_headers_across_validator_set_changes() {
    let chain = testing::chain_id();
    let (keys_a, set_a) = testing::validators(4, &[]);
    // Set B drops one validator of A and adds two new ones with more power.
    let extra: Vec<Keypair> = (0..2).map(|i| testing::key(0xa1, i)).collect();
    let mut members: Vec<_> = set_a.validators()[1..].to_vec();
    for k in &extra {
        members.push(acta_ledger::Validator {
            public_key: k.public(),
            power: acta_ledger::VotingPower(5),
        });
    }
    let set_b = ValidatorSet::new(members).unwrap();
    let all_keys: Vec<&Keypair> = keys_a.iter().chain(&extra).collect();
    let signers = |set: &ValidatorSet| -> Vec<&Keypair> {
        all_keys
            .iter()
            .copied()
            .filter(|k| set.index_of(&k.public()).is_some())
            .collect()
    };

    // Heights 1-2 signed by A; header 2 announces B; heights 3-4 signed by B.
    let genesis = Hash::digest(b"genesis");
    let sets = [
        (&set_a, &set_a),
        (&set_a, &set_b),
        (&set_b, &set_b),
        (&set_b, &set_b),
    ];
    let mut parent = genesis;
    let mut items = vec![];
    for (i, (set, next)) in sets.iter().enumerate() {
        let h = Height(i as u64 + 1);
        let block = block_at(h.0, parent, set, next);
        let commit = signed_by(&signers(set), set, h, block.hash());
        parent = block.hash();
        items.push((block.header, commit, (*next).clone()));
    }
    let trusted = TrustedState::genesis(chain.clone(), genesis, set_a.clone());
    let end = trusted
        .verify_chain(items.iter().map(|(h, c, n)| (h, c, n)))
        .unwrap();
    assert_eq!(end.height, Height(4));
    assert_eq!(end.next_validators, set_b);

    // Height 3 signed by the old set A instead of B: refused.
    let mut stale = items.clone();
    stale[2].1 = signed_by(
        &keys_a.iter().collect::<Vec<_>>(),
        &set_a,
        Height(3),
        stale[2].0.hash(),
    );
    assert!(trusted
        .verify_chain(stale.iter().map(|(h, c, n)| (h, c, n)))
        .is_err());
    // Lying about the next set at height 2: refused.
    let mut lie = items.clone();
    lie[1].2 = set_a.clone();
    assert!(trusted
        .verify_chain(lie.iter().map(|(h, c, n)| (h, c, n)))
        .is_err());
    // A gap, a wrong parent, a wrong chain.
    assert!(trusted
        .verify_chain(items[1..].iter().map(|(h, c, n)| (h, c, n)))
        .is_err());
    let mut orphan = items.clone();
    orphan[0].0.parent_hash = Hash::ZERO;
    assert!(trusted
        .verify_chain(orphan.iter().map(|(h, c, n)| (h, c, n)))
        .is_err());
    let elsewhere =
        TrustedState::genesis(ChainId::new("acta-other").unwrap(), genesis, set_a.clone());
    assert!(elsewhere
        .verify_chain(items.iter().map(|(h, c, n)| (h, c, n)))
        .is_err());

    // Skipping, as proof bundles do: from an anchor that knows no genesis hash, straight to
    // header 2 (which announces B), then to header 4.
    let anchor = TrustedState::anchor(chain.clone(), set_a.clone());
    let (h2, c2, n2) = &items[1];
    let (h4, c4, _) = &items[3];
    // Header 4 is signed by B: not reachable without the change at 2.
    let err = anchor.verify_header(h4, c4).unwrap_err().to_string();
    assert!(
        err.contains("a change of set before it is missing"),
        "{err}"
    );
    let at2 = anchor.skip_to(h2, c2, n2).unwrap();
    assert_eq!(at2.next_validators, set_b);
    assert!(at2.verify_header(h4, c4).is_ok());
    // Lying about the set header 2 announces, or going backwards, is refused.
    assert!(anchor.skip_to(h2, c2, &set_a).is_err());
    assert!(at2.verify_header(h2, c2).is_err());
    // Following one by one from the anchor works too (no parent to check at block 1).
    let end = anchor
        .verify_chain(items.iter().map(|(h, c, n)| (h, c, n)))
        .unwrap();
    assert_eq!(end.block_hash, Some(h4.hash()));
}
