//! Bad input to every decoder and verifier returns an error and never panics: random bytes,
//! truncations, single-byte changes of valid encodings, and oversized length prefixes.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_ledger::{
    codec::{decode, encode},
    merkle::{ConsistencyProof, InclusionProof},
    state::{state_key, AuthenticatedState, MemoryState, StateChanges, StateProof},
    testing::{self, BlockSpec},
    Block, ChainId, Commit, Evidence, Hash, Header, Height, SignedProposal, SignedVote,
    Transaction, ValidatorSet,
};
use borsh::BorshDeserialize;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

/// Decodes `bytes` as every type, discarding results: the point is that none panics.
fn decode_all(bytes: &[u8]) {
    let _ = decode::<Transaction>("tx", bytes, MAX);
    let _ = decode::<Block>("block", bytes, MAX);
    let _ = decode::<Header>("header", bytes, MAX);
    let _ = decode::<Commit>("commit", bytes, MAX);
    let _ = decode::<SignedVote>("vote", bytes, MAX);
    let _ = decode::<SignedProposal>("proposal", bytes, MAX);
    let _ = decode::<Evidence>("evidence", bytes, MAX);
    let _ = decode::<ValidatorSet>("validators", bytes, MAX);
    let _ = decode::<InclusionProof>("inclusion", bytes, MAX);
    let _ = decode::<ConsistencyProof>("consistency", bytes, MAX);
    let _ = decode::<StateProof>("state proof", bytes, MAX);
    let _ = decode::<ChainId>("chain id", bytes, MAX);
}

/// A valid block with everything in it, and its encoding.
fn sample_block() -> Block {
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[]);
    let parent = Hash::digest(b"parent");
    let commit = testing::commit(&chain, &keys, &set, Height(1), parent);
    let prevote = acta_ledger::Vote {
        kind: acta_ledger::VoteKind::Prevote,
        height: Height(1),
        round: acta_ledger::Round(0),
        block: Some(parent),
    };
    let other = acta_ledger::Vote {
        block: None,
        ..prevote
    };
    testing::block(
        &chain,
        BlockSpec {
            height: Height(2),
            parent_hash: parent,
            txs: vec![
                testing::create_did_tx(&chain, 0, 0),
                testing::attest_tx(&chain, 0, 1),
            ],
            last_commit: Some(commit),
            evidence: vec![Evidence::duplicate_vote(
                prevote.sign(&keys[0], &chain),
                other.sign(&keys[0], &chain),
            )],
            state_root: Hash::ZERO,
            validators: &set,
            next_validators: &set,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_valid_encodings_never_panic_and_never_verify_wrongly(pos in 0usize..4096, byte in any::<u8>()) {
        let block = sample_block();
        let mut bytes = encode(&block);
        let pos = pos % bytes.len();
        if bytes[pos] == byte { return Ok(()); }
        bytes[pos] = byte;
        decode_all(&bytes);
        // If the changed block still decodes, it is a different block: either its body no
        // longer matches its header, or its hash changed and no commit for it exists.
        if let Ok(changed) = decode::<Block>("block", &bytes, MAX) {
            prop_assert!(changed != block);
            prop_assert!(changed.check_body().is_err() || changed.hash() != block.hash());
        }
    }

    #[test]
    fn truncated_encodings_are_refused(cut in 0usize..4096) {
        let bytes = encode(&sample_block());
        let cut = cut % bytes.len();
        prop_assert!(decode::<Block>("block", &bytes[..cut], MAX).is_err());
    }

    #[test]
    fn mutated_transactions_never_verify(pos in 0usize..512, bit in 0u8..8) {
        let tx = testing::attest_tx(&testing::chain_id(), 3, 7);
        let mut bytes = tx.encode();
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(changed) = Transaction::decode(&bytes) {
            prop_assert!(changed.verify(&testing::chain_id()).is_err());
        }
    }

    #[test]
    fn mutated_state_proofs_never_verify(pos in 0usize..4096, bit in 0u8..8) {
        let mut state = MemoryState::new();
        let changes: StateChanges = (0u32..40).map(|i| (state_key("t", &i.to_be_bytes()), Some(vec![1; 4]))).collect();
        let root = state.commit(&changes).unwrap();
        let key = state_key("t", &7u32.to_be_bytes());
        let (value, proof) = state.get_with_proof(&key, Height(0)).unwrap();
        let mut bytes = encode(&proof);
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(changed) = decode::<StateProof>("state proof", &bytes, MAX) {
            prop_assert!(changed.verify(&root, &key, value.as_deref()).is_err());
        }
    }
}

#[test]
fn huge_length_prefixes_are_refused_without_allocating() {
    // A transaction list claiming 2^32-1 entries, a string claiming 4 GiB, a path claiming
    // 2^32-1 hashes: each is refused from the prefix alone.
    let mut block = encode(&sample_block().header);
    block.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode::<Block>("block", &block, MAX).is_err());
    let mut chain = Vec::new();
    chain.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(ChainId::try_from_slice(&chain).is_err());
    let mut proof = encode(&0u64);
    proof.extend_from_slice(&encode(&1u64));
    proof.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode::<InclusionProof>("proof", &proof, MAX).is_err());
    // And input above a decoder's maximum is refused before decoding.
    assert!(decode::<Transaction>("tx", &[0; 100], 99).is_err());
}

#[test]
fn a_bundle_with_a_reading_over_the_cap_does_not_verify() {
    let (mut bundle, genesis) = testing::proof_bundle();
    bundle.readings = vec![acta_ledger::bundle::ReadingEntry {
        reading: vec![b'x'; acta_ledger::tx::READING_BYTES_MAX + 1],
        proof: InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![],
        },
    }];
    let e = bundle.verify(&testing::chain_id(), &genesis).unwrap_err();
    assert_eq!(e.step, "reading");
    assert!(e.message.contains("at most 65536"), "{e}");
}
