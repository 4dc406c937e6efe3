//! The executor and the identity module: each call's success, each refusal (which must
//! change nothing but the signer's nonce), resolution at past heights, and determinism.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::collections::BTreeMap;

use acta_contracts::{identity, ExecError, Receipt};
use acta_ledger::{
    crypto::key_hash,
    records::{DidDocument, Service, VerificationMethod},
    state::state_key,
    testing,
    tx::IdentityCall,
    types::Text,
    Call, ChainId, Did, Height, Keypair, PublicKey, Transaction,
};
use common::{did_of, Chain};
use proptest::prelude::*;

fn signed(key: &Keypair, nonce: u64, call: IdentityCall) -> Transaction {
    Transaction::sign(
        key,
        testing::chain_id(),
        nonce,
        acta_ledger::testing::NO_EXPIRY,
        Call::Identity(call),
    )
}

/// `call` signed by `key` with its next nonce on `c`.
fn sign(c: &Chain, key: &Keypair, call: IdentityCall) -> Transaction {
    c.sign(key, Call::Identity(call))
}

fn create(key: &Keypair, nonce: u64) -> Transaction {
    signed(
        key,
        nonce,
        IdentityCall::CreateDid {
            next_key_hash: None,
        },
    )
}

fn doc(keys: &[&Keypair], controllers: &[Did]) -> DidDocument {
    DidDocument {
        verification_methods: keys
            .iter()
            .enumerate()
            .map(|(i, k)| VerificationMethod {
                id: Text::new(format!("key-{}", i + 1)).unwrap(),
                key: k.public(),
            })
            .collect(),
        controllers: controllers.to_vec(),
        services: vec![Service {
            id: Text::new("home").unwrap(),
            kind: Text::new("LinkedDomains").unwrap(),
            endpoint: Text::new("https://city.example").unwrap(),
        }],
    }
}

#[test]
fn create_then_resolve_as_a_w3c_document() {
    let mut c = Chain::new();
    let alice = testing::key(0xb0, 1);
    c.accepted(create(&alice, 0));
    let did = did_of(&alice).to_string();
    let r = c.resolve(&did, c.height());
    assert_eq!(r["didDocument"]["id"], did);
    let vm = &r["didDocument"]["verificationMethod"][0];
    assert_eq!(vm["id"], format!("{did}#key-1"));
    assert_eq!(vm["type"], "Ed25519VerificationKey2020");
    assert_eq!(
        vm["publicKeyMultibase"],
        identity::public_key_multibase(&alice.public())
    );
    assert!(
        vm["publicKeyMultibase"]
            .as_str()
            .unwrap()
            .starts_with("z6Mk"),
        "the usual Ed25519 multibase prefix"
    );
    let meta = &r["didDocumentMetadata"];
    assert_eq!(meta["versionId"], "1");
    assert_eq!(meta["deactivated"], false);
    assert_eq!(meta["created"], "2023-11-14T22:13:21Z");
    assert!(meta.get("nextVersionId").is_none());
    // The same key cannot create its DID twice (and its nonce moved on).
    c.refused(create(&alice, 1), "already_exists");
    c.invalid(create(&alice, 0));
}

#[test]
fn documents_change_only_by_their_keys_or_their_controllers() {
    let mut c = Chain::new();
    let (alice, bob, mallory) = (
        testing::key(0xb0, 1),
        testing::key(0xb0, 2),
        testing::key(0xb0, 3),
    );
    c.accepted(create(&alice, 0));
    c.accepted(create(&bob, 0));
    c.accepted(create(&mallory, 0));
    let a = did_of(&alice);
    // A stranger's key cannot change Alice's document.
    c.refused(
        sign(
            &c,
            &mallory,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&mallory], &[]),
            },
        ),
        "unauthorized",
    );
    // Alice makes Bob a controller; then Bob's key can change it.
    c.accepted(sign(
        &c,
        &alice,
        IdentityCall::UpdateDocument {
            did: a,
            document: doc(&[&alice], &[did_of(&bob)]),
        },
    ));
    c.accepted(sign(
        &c,
        &bob,
        IdentityCall::UpdateDocument {
            did: a,
            document: doc(&[&alice, &bob], &[did_of(&bob)]),
        },
    ));
    let r = c.resolve(&a.to_string(), c.height());
    assert_eq!(
        r["didDocument"]["verificationMethod"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        r["didDocument"]["service"][0]["serviceEndpoint"],
        "https://city.example"
    );
    // Bad documents: no key, a repeated fragment, a controller that does not exist, itself.
    let mut empty = doc(&[], &[]);
    empty.services.clear();
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::UpdateDocument {
                did: a,
                document: empty,
            },
        ),
        "invalid",
    );
    let mut twice = doc(&[&alice, &bob], &[]);
    twice.verification_methods[1].id = Text::new("key-1").unwrap();
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::UpdateDocument {
                did: a,
                document: twice,
            },
        ),
        "invalid",
    );
    let ghost = did_of(&testing::key(0xb0, 99));
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[ghost]),
            },
        ),
        "invalid",
    );
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[a]),
            },
        ),
        "invalid",
    );
    // A DID that does not exist.
    c.refused(
        sign(&c, &alice, IdentityCall::Deactivate { did: ghost }),
        "not_found",
    );
}

#[test]
fn rotation_honours_the_pre_committed_key() {
    let mut c = Chain::new();
    let (alice, next, wrong) = (
        testing::key(0xb0, 1),
        testing::key(0xb1, 1),
        testing::key(0xb1, 2),
    );
    let committed = key_hash(&next.public());
    c.accepted(sign(
        &c,
        &alice,
        IdentityCall::CreateDid {
            next_key_hash: Some(committed),
        },
    ));
    let a = did_of(&alice);
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::RotateKey {
                did: a,
                new_key: wrong.public(),
                next_key_hash: None,
            },
        ),
        "unauthorized",
    );
    c.accepted(sign(
        &c,
        &alice,
        IdentityCall::RotateKey {
            did: a,
            new_key: next.public(),
            next_key_hash: None,
        },
    ));
    // The old key no longer controls the DID; the new one does (its nonces start at 0).
    c.refused(
        sign(&c, &alice, IdentityCall::Deactivate { did: a }),
        "unauthorized",
    );
    let r = c.resolve(&a.to_string(), c.height());
    assert_eq!(
        r["didDocument"]["verificationMethod"][0]["publicKeyMultibase"],
        identity::public_key_multibase(&next.public())
    );
    // With nothing pre-committed now, any usable new key is accepted.
    c.accepted(sign(
        &c,
        &next,
        IdentityCall::RotateKey {
            did: a,
            new_key: wrong.public(),
            next_key_hash: None,
        },
    ));
    // A small-order key is refused.
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let weak = acta_ledger::PublicKey(identity_point);
    c.refused(
        sign(
            &c,
            &wrong,
            IdentityCall::RotateKey {
                did: a,
                new_key: weak,
                next_key_hash: None,
            },
        ),
        "invalid",
    );
}

#[test]
fn deactivation_is_final_and_history_resolves_at_every_height() {
    let mut c = Chain::new();
    let alice = testing::key(0xb0, 1);
    c.accepted(create(&alice, 0)); // height 1
    c.accepted(sign(
        &c,
        &alice,
        IdentityCall::UpdateDocument {
            did: did_of(&alice),
            document: doc(&[&alice], &[]),
        },
    )); // 2
    c.block(&[]); // 3
    c.accepted(sign(
        &c,
        &alice,
        IdentityCall::Deactivate {
            did: did_of(&alice),
        },
    )); // 4
    let a = did_of(&alice);
    c.refused(
        sign(
            &c,
            &alice,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[]),
            },
        ),
        "deactivated",
    );
    c.refused(
        sign(&c, &alice, IdentityCall::Deactivate { did: a }),
        "deactivated",
    );
    let text = a.to_string();
    let at1 = c.resolve(&text, Height(1));
    assert_eq!(at1["didDocumentMetadata"]["versionId"], "1");
    assert_eq!(at1["didDocumentMetadata"]["nextVersionId"], "2");
    assert!(at1["didDocument"].get("service").is_none());
    let at3 = c.resolve(&text, Height(3));
    assert_eq!(at3["didDocumentMetadata"]["versionId"], "2");
    assert_eq!(at3["didDocumentMetadata"]["nextVersionId"], "4");
    assert_eq!(at3["didDocumentMetadata"]["deactivated"], false);
    let now = c.resolve(&text, c.height());
    assert_eq!(now["didDocumentMetadata"]["deactivated"], true);
    assert_eq!(
        now["didDocumentMetadata"]["updated"],
        "2023-11-14T22:13:24Z"
    );
    // Before it existed, and malformed.
    assert_eq!(
        c.resolve(&text, Height(0))["didResolutionMetadata"]["error"],
        "notFound"
    );
    assert_eq!(
        c.resolve("did:acta:0OIl", c.height())["didResolutionMetadata"]["error"],
        "invalidDid"
    );
    assert_eq!(
        c.resolve("did:web:example.com", c.height())["didResolutionMetadata"]["error"],
        "invalidDid"
    );
}

/// A transaction whose signature, chain or nonce does not hold may be in no block at all:
/// the block is invalid.
#[test]
fn signature_chain_and_nonce_are_checked_before_anything_else() {
    let mut c = Chain::new();
    let alice = testing::key(0xb0, 1);
    // Wrong chain id.
    let other = ChainId::new("acta-other").unwrap();
    let foreign = Transaction::sign(
        &alice,
        other,
        0,
        acta_ledger::testing::NO_EXPIRY,
        Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    );
    c.invalid(foreign);
    // A forged signature, and a signature by another key.
    let mut forged = create(&alice, 0);
    forged.signature.0[7] ^= 1;
    c.invalid(forged);
    let mut swapped = create(&alice, 0);
    swapped.signer = testing::key(0xb0, 2).public();
    c.invalid(swapped);
    // A future nonce, then the right one, then a replay.
    c.invalid(create(&alice, 1));
    c.accepted(create(&alice, 0));
    c.invalid(create(&alice, 0));
}

#[test]
fn within_a_block_a_refused_transaction_does_not_disturb_the_others() {
    let c = Chain::new();
    let (alice, bob) = (testing::key(0xb0, 1), testing::key(0xb0, 2));
    let txs = [create(&alice, 0), create(&alice, 1), create(&bob, 0)];
    let outcome = c.execute(&txs, &[]);
    let accepted: Vec<bool> = outcome.receipts.iter().map(Receipt::is_accepted).collect();
    assert_eq!(accepted, vec![true, false, true]);
    // The same changes as a block of only the accepted transactions, but for Alice's nonce,
    // which her refused transaction used up.
    let mut expected = c
        .execute(&[create(&alice, 0), create(&bob, 0)], &[])
        .changes;
    expected.insert(
        state_key("nonce", &alice.public().0),
        Some(borsh::to_vec(&2u64).unwrap()),
    );
    assert_eq!(outcome.changes, expected);
}

/// One random identity action: (actor, kind, target, nonce skew).
fn action() -> impl Strategy<Value = (u32, u8, u32, i8)> {
    (
        0u32..4,
        0u8..5,
        0u32..4,
        prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)],
    )
}

fn build(actions: &[(u32, u8, u32, i8)]) -> Vec<Vec<Transaction>> {
    let mut nonces = [0u64; 4];
    let keys: Vec<Keypair> = (0..4).map(|i| testing::key(0xb0, i)).collect();
    let dids: Vec<Did> = keys.iter().map(did_of).collect();
    let mut blocks = vec![];
    for chunk in actions.chunks(3) {
        let mut txs = vec![];
        for (actor, kind, target, skew) in chunk {
            let k = &keys[*actor as usize];
            let nonce = nonces[*actor as usize].saturating_add_signed(i64::from(*skew));
            let t = dids[*target as usize];
            let call = match kind {
                0 => IdentityCall::CreateDid {
                    next_key_hash: None,
                },
                1 => IdentityCall::UpdateDocument {
                    did: t,
                    document: doc(&[k], &[]),
                },
                2 => IdentityCall::UpdateDocument {
                    did: t,
                    document: doc(&[&keys[*target as usize]], &[dids[*actor as usize]]),
                },
                3 => IdentityCall::RotateKey {
                    did: t,
                    new_key: testing::key(0xb2, *actor * 10 + *target).public(),
                    next_key_hash: None,
                },
                _ => IdentityCall::Deactivate { did: t },
            };
            if *skew == 0 {
                nonces[*actor as usize] += 1;
            }
            txs.push(signed(k, nonce, call));
        }
        blocks.push(txs);
    }
    blocks
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_replay_to_the_same_root_and_use_up_their_nonces(actions in proptest::collection::vec(action(), 1..30)) {
        let blocks = build(&actions);
        let (mut a, mut b) = (Chain::new(), Chain::new());
        let mut used: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for txs in &blocks {
            // As a proposer does: leave out what would make the block invalid.
            let mut txs = txs.clone();
            while let Err(e) = acta_contracts::execute_block(&a.state, &a.ctx(), &txs, &[]) {
                let ExecError::InvalidTx { index, .. } = e else { panic!("{e}") };
                txs.remove(index as usize);
            }
            let receipts = a.block(&txs);
            let again = b.block(&txs);
            prop_assert_eq!(&receipts, &again);
            prop_assert_eq!(a.root(), b.root());
            for t in &txs {
                *used.entry(t.signer).or_insert(0) += 1;
            }
            for (key, n) in &used {
                let next: u64 = a.read("nonce", &key.0).unwrap_or(0);
                prop_assert_eq!(next, *n, "every included transaction uses up one nonce");
            }
        }
    }
}
