//! Fuzz targets for every ledger decoder that takes outside bytes, as property tests that
//! run on stable Rust: random bytes, and random changes (flipped, replaced, inserted and
//! removed bytes, cuts) of every encoding in the golden file, decoded as its own type.
//!
//! Each decoder must return an error or a value, never panic; a value it returns must
//! encode back to exactly the input (encodings are canonical, so no two byte strings mean
//! the same record); and no decode may allocate without bound: the test binary runs under
//! an allocator capped at [`HEAP_MAX`], which aborts the run if any decode trusts a length
//! prefix. The number of cases follows `PROPTEST_CASES` (256 by default); docs/fuzzing.md
//! has the counts of a longer run.

#![allow(clippy::unwrap_used)]

use std::{alloc::System, collections::BTreeMap, sync::Once};

use acta_ledger::{
    bundle::ProofBundle,
    codec::{decode, encode},
    merkle::{ConsistencyProof, InclusionProof},
    records::{
        AttestationRecord, BallotToken, BudgetBallot, BudgetProject, BudgetRound, Council,
        CredentialRecord, DeviceRecord, DidRecord, GovAction, GovProposal, IssuerRecord,
        JailRecord, ParamRecord, RoundOpener, RoundSpec, RoundStatus, TallyRecord, TokenCount,
        TokenRequest, ValidatorNode,
    },
    state::StateProof,
    store::{StaleList, TxLocation},
    testing,
    validator::SetHistory,
    Block, ChainId, Commit, Evidence, Hash, Header, PublicKey, Receipt, SignedProposal, SignedVote,
    Transaction, ValidatorSet,
};
use borsh::{BorshDeserialize, BorshSerialize};
use cap::Cap;
use proptest::prelude::*;

/// The most heap the whole test binary may hold. Decoding inputs of a few kilobytes needs
/// far less; a decoder that allocates what a forged length prefix claims (gigabytes) makes
/// the allocator refuse, which aborts the run.
const HEAP_MAX: usize = 1 << 30;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

fn cap_heap() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| HEAP.set_limit(HEAP_MAX).unwrap());
}

/// The most bytes any fuzzed input has.
const INPUT_MAX: usize = 1 << 20;

/// Decodes `bytes` as `T`; a value must encode back to the same bytes.
/// Decodes `bytes` as `T`; a value must encode back to the same bytes. Whether it decoded.
fn roundtrip<T: BorshDeserialize + BorshSerialize + std::fmt::Debug>(
    what: &'static str,
    bytes: &[u8],
) -> Result<bool, TestCaseError> {
    let Ok(value) = decode::<T>(what, bytes, INPUT_MAX) else {
        return Ok(false);
    };
    prop_assert_eq!(
        encode(&value),
        bytes.to_vec(),
        "{} decoded from bytes it does not encode to: {:?}",
        what,
        value
    );
    Ok(true)
}

/// Decodes `bytes` as the type of the golden line `name` (or as every type when `name` is
/// `None`). Whether the last decoder tried accepted the bytes.
fn decode_as(name: Option<&str>, bytes: &[u8]) -> Result<bool, TestCaseError> {
    type Check = fn(&[u8]) -> Result<bool, TestCaseError>;
    let table: &[(&str, Check)] = &[
        ("block", |b| roundtrip::<Block>("block", b)),
        ("chain_id", |b| roundtrip::<ChainId>("chain id", b)),
        ("commit", |b| roundtrip::<Commit>("commit", b)),
        ("evidence.", |b| roundtrip::<Evidence>("evidence", b)),
        ("hash", |b| roundtrip::<Hash>("hash", b)),
        ("header", |b| roundtrip::<Header>("header", b)),
        ("merkle.consistency_proof", |b| {
            roundtrip::<ConsistencyProof>("consistency proof", b)
        }),
        ("merkle.inclusion_proof", |b| {
            roundtrip::<InclusionProof>("inclusion proof", b)
        }),
        ("proposal.signed", |b| {
            roundtrip::<SignedProposal>("proposal", b)
        }),
        ("public_key", |b| roundtrip::<PublicKey>("public key", b)),
        ("receipt.", |b| roundtrip::<Receipt>("receipt", b)),
        ("records.attestation", |b| {
            roundtrip::<AttestationRecord>("attestation", b)
        }),
        ("records.budget_ballot", |b| {
            roundtrip::<BudgetBallot>("ballot", b)
        }),
        ("records.budget_project", |b| {
            roundtrip::<BudgetProject>("project", b)
        }),
        ("records.budget_round", |b| {
            roundtrip::<BudgetRound>("round", b)
        }),
        ("records.budget_tallying", |b| {
            roundtrip::<Vec<(acta_ledger::Height, u64)>>("rounds tallying", b)
        }),
        ("records.council", |b| roundtrip::<Council>("council", b)),
        ("records.credentials_of", |b| {
            roundtrip::<Vec<Hash>>("credential ids", b)
        }),
        ("records.credential", |b| {
            roundtrip::<CredentialRecord>("credential", b)
        }),
        ("records.device", |b| roundtrip::<DeviceRecord>("device", b)),
        ("records.did_record", |b| roundtrip::<DidRecord>("did", b)),
        ("records.gov_proposal", |b| {
            roundtrip::<GovProposal>("proposal", b)
        }),
        ("records.ballot_token", |b| {
            roundtrip::<BallotToken>("ballot token", b)
        }),
        ("records.issuer", |b| roundtrip::<IssuerRecord>("issuer", b)),
        ("records.jail", |b| roundtrip::<JailRecord>("jail", b)),
        ("records.validator_node", |b| {
            roundtrip::<ValidatorNode>("validator node", b)
        }),
        ("records.param", |b| roundtrip::<ParamRecord>("param", b)),
        ("records.round_opener", |b| {
            roundtrip::<RoundOpener>("round opener", b)
        }),
        ("records.round_spec", |b| {
            roundtrip::<RoundSpec>("round spec", b)
        }),
        ("records.round_status", |b| {
            roundtrip::<RoundStatus>("round status", b)
        }),
        ("records.set_history", |b| {
            roundtrip::<SetHistory>("validator-set history", b)
        }),
        ("records.tally", |b| roundtrip::<TallyRecord>("tally", b)),
        ("records.token_count", |b| {
            roundtrip::<TokenCount>("token count", b)
        }),
        ("records.token_request", |b| {
            roundtrip::<TokenRequest>("token request", b)
        }),
        ("state.proof", |b| roundtrip::<StateProof>("state proof", b)),
        ("store.stale_list", |b| {
            roundtrip::<StaleList>("stale list", b)
        }),
        ("store.state_", |b| {
            // A column family's entries (`store.state_latest`, `store.state_values`).
            roundtrip::<Vec<(Vec<u8>, Vec<u8>)>>("state column family", b)
        }),
        ("store.tree_node", |b| {
            let Some(again) = testing::reencode_stored_tree_node(b) else {
                return Ok(false);
            };
            prop_assert_eq!(
                again,
                b.to_vec(),
                "a tree node decoded from bytes it does not encode to"
            );
            Ok(true)
        }),
        ("store.tx_location", |b| {
            roundtrip::<TxLocation>("tx location", b)
        }),
        ("tx.governance.propose", |b| {
            let tx = roundtrip::<Transaction>("transaction", b)?;
            // The action alone, as an approval hashes it: after the chain id (13 bytes),
            // signer, nonce, time limit and the call's two variant bytes, before the
            // signature.
            let action = b.get(63..b.len().saturating_sub(64)).unwrap_or_default();
            Ok(tx && roundtrip::<GovAction>("action", action)?)
        }),
        ("tx.", |b| roundtrip::<Transaction>("transaction", b)),
        ("validator_set", |b| {
            roundtrip::<ValidatorSet>("validator set", b)
        }),
        ("vote.", |b| roundtrip::<SignedVote>("vote", b)),
    ];
    let mut decoded = false;
    for (prefix, check) in table {
        if name.is_none_or(|n| n.starts_with(prefix)) {
            decoded = check(bytes)?;
            if name.is_some() {
                return Ok(decoded);
            }
        }
    }
    prop_assert!(name.is_none(), "no decoder for golden line {:?}", name);
    Ok(decoded)
}

/// The golden file's encodings that are objects (not hashes, ids or signed bytes).
fn golden() -> Vec<(String, Vec<u8>)> {
    let text = include_str!("golden/encodings.txt");
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, hex) = line.split_once(' ').unwrap();
        let skip = [
            ".hash",
            ".id",
            ".signing_bytes",
            "state.key",
            "state.root",
            "gov_action_hash",
        ];
        if skip.iter().any(|s| name.ends_with(s)) {
            continue;
        }
        out.insert(name.to_string(), hex::decode(hex.trim()).unwrap());
    }
    out.into_iter().collect()
}

#[derive(Clone, Debug)]
enum Change {
    Flip {
        at: usize,
        bit: u8,
    },
    Set {
        at: usize,
        byte: u8,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    /// Four bytes of a length prefix set high.
    Huge {
        at: usize,
    },
    Cut {
        at: usize,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Change::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Change::Set { at, byte }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Change::Insert { at, byte }),
        any::<usize>().prop_map(|at| Change::Remove { at }),
        any::<usize>().prop_map(|at| Change::Huge { at }),
        any::<usize>().prop_map(|at| Change::Cut { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, change: &Change) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *change {
        Change::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Change::Set { at, byte } => bytes[at % n] = byte,
        Change::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
        Change::Remove { at } => {
            bytes.remove(at % n);
        }
        Change::Huge { at } => {
            let at = at % n;
            for b in bytes.iter_mut().skip(at).take(4) {
                *b = 0xff;
            }
        }
        Change::Cut { at } => bytes.truncate(at % n),
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        cap_heap();
        decode_as(None, &bytes)?;
    }

    #[test]
    fn changed_golden_encodings_decode_canonically_or_not_at_all(
        pick in any::<prop::sample::Index>(),
        changes in prop::collection::vec(change(), 1..4),
    ) {
        cap_heap();
        let golden = golden();
        let (name, bytes) = &golden[pick.index(golden.len())];
        decode_as(Some(name), bytes)?;
        let mut changed = bytes.clone();
        for c in &changes {
            apply(&mut changed, c);
        }
        decode_as(Some(name), &changed)?;
    }

    /// A proof bundle is JSON from anyone: any change to its text must parse to an error or
    /// to a bundle that fails verification or still proves exactly the same values.
    #[test]
    fn changed_proof_bundles_never_panic_and_never_prove_other_values(
        changes in prop::collection::vec(change(), 1..4),
    ) {
        cap_heap();
        let (bundle, genesis) = testing::proof_bundle();
        let chain = testing::chain_id();
        let original = bundle.verify(&chain, &genesis).unwrap();
        let mut text = serde_json::to_vec(&bundle).unwrap();
        for c in &changes {
            apply(&mut text, c);
        }
        if let Ok(changed) = serde_json::from_slice::<ProofBundle>(&text) {
            if let Ok(verified) = changed.verify(&chain, &genesis) {
                prop_assert_eq!(&verified.state, &original.state);
                prop_assert_eq!(verified.height, original.height);
                prop_assert_eq!(verified.block_hash, original.block_hash);
            }
        }
    }
}

#[test]
fn the_golden_file_decodes_as_its_own_types() {
    cap_heap();
    let golden = golden();
    assert!(golden.len() > 40, "{} golden objects", golden.len());
    for (name, bytes) in &golden {
        assert!(
            decode_as(Some(name), bytes).unwrap(),
            "{name} does not decode"
        );
    }
}
