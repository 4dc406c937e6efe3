//! The executor and the identity module: each call's success, each refusal (which must
//! leave the state root unchanged), resolution at past heights, and determinism.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use acta_contracts::{identity, Receipt};
use acta_ledger::{
    crypto::key_hash,
    records::{DidDocument, Service, VerificationMethod},
    testing,
    tx::IdentityCall,
    types::Text,
    Call, ChainId, Did, Height, Keypair, Transaction,
};
use common::{did_of, Chain};
use proptest::prelude::*;

fn sign(key: &Keypair, nonce: u64, call: IdentityCall) -> Transaction {
    Transaction::sign(key, testing::chain_id(), nonce, Call::Identity(call))
}

fn create(key: &Keypair, nonce: u64) -> Transaction {
    sign(
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
    c.refused(create(&alice, 0), "bad_nonce");
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
            &mallory,
            1,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&mallory], &[]),
            },
        ),
        "unauthorized",
    );
    // Alice makes Bob a controller; then Bob's key can change it.
    c.accepted(sign(
        &alice,
        1,
        IdentityCall::UpdateDocument {
            did: a,
            document: doc(&[&alice], &[did_of(&bob)]),
        },
    ));
    c.accepted(sign(
        &bob,
        1,
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
            &alice,
            2,
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
            &alice,
            2,
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
            &alice,
            2,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[ghost]),
            },
        ),
        "invalid",
    );
    c.refused(
        sign(
            &alice,
            2,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[a]),
            },
        ),
        "invalid",
    );
    // A DID that does not exist.
    c.refused(
        sign(&alice, 2, IdentityCall::Deactivate { did: ghost }),
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
        &alice,
        0,
        IdentityCall::CreateDid {
            next_key_hash: Some(committed),
        },
    ));
    let a = did_of(&alice);
    c.refused(
        sign(
            &alice,
            1,
            IdentityCall::RotateKey {
                did: a,
                new_key: wrong.public(),
                next_key_hash: None,
            },
        ),
        "unauthorized",
    );
    c.accepted(sign(
        &alice,
        1,
        IdentityCall::RotateKey {
            did: a,
            new_key: next.public(),
            next_key_hash: None,
        },
    ));
    // The old key no longer controls the DID; the new one does (its nonces start at 0).
    c.refused(
        sign(&alice, 2, IdentityCall::Deactivate { did: a }),
        "unauthorized",
    );
    let r = c.resolve(&a.to_string(), c.height());
    assert_eq!(
        r["didDocument"]["verificationMethod"][0]["publicKeyMultibase"],
        identity::public_key_multibase(&next.public())
    );
    // With nothing pre-committed now, any usable new key is accepted.
    c.accepted(sign(
        &next,
        0,
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
            &wrong,
            0,
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
        &alice,
        1,
        IdentityCall::UpdateDocument {
            did: did_of(&alice),
            document: doc(&[&alice], &[]),
        },
    )); // 2
    c.block(&[]); // 3
    c.accepted(sign(
        &alice,
        2,
        IdentityCall::Deactivate {
            did: did_of(&alice),
        },
    )); // 4
    let a = did_of(&alice);
    c.refused(
        sign(
            &alice,
            3,
            IdentityCall::UpdateDocument {
                did: a,
                document: doc(&[&alice], &[]),
            },
        ),
        "deactivated",
    );
    c.refused(
        sign(&alice, 3, IdentityCall::Deactivate { did: a }),
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
        Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    );
    c.refused(foreign, "bad_signature");
    // A forged signature, and a signature by another key.
    let mut forged = create(&alice, 0);
    forged.signature.0[7] ^= 1;
    c.refused(forged, "bad_signature");
    let mut swapped = create(&alice, 0);
    swapped.signer = testing::key(0xb0, 2).public();
    c.refused(swapped, "bad_signature");
    // A future nonce, then the right one, then a replay.
    c.refused(create(&alice, 1), "bad_nonce");
    c.accepted(create(&alice, 0));
    c.refused(create(&alice, 0), "bad_nonce");
}

#[test]
fn within_a_block_a_refused_transaction_does_not_disturb_the_others() {
    let mut c = Chain::new();
    let (alice, bob) = (testing::key(0xb0, 1), testing::key(0xb0, 2));
    let receipts = c.block(&[
        create(&alice, 0),
        create(&alice, 0),
        create(&bob, 0),
        create(&alice, 1),
    ]);
    let accepted: Vec<bool> = receipts.iter().map(Receipt::is_accepted).collect();
    assert_eq!(accepted, vec![true, false, true, false]);
    let mut d = Chain::new();
    d.block(&[create(&alice, 0), create(&bob, 0)]);
    assert_eq!(
        c.root(),
        d.root(),
        "the same as a block of only the accepted transactions"
    );
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
            txs.push(sign(k, nonce, call));
        }
        blocks.push(txs);
    }
    blocks
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_replay_to_the_same_root_and_refusals_change_nothing(actions in proptest::collection::vec(action(), 1..30)) {
        let blocks = build(&actions);
        let (mut a, mut b, mut only_accepted) = (Chain::new(), Chain::new(), Chain::new());
        for txs in &blocks {
            let receipts = a.block(txs);
            let again = b.block(txs);
            prop_assert_eq!(&receipts, &again);
            let kept: Vec<Transaction> = txs.iter().zip(&receipts).filter(|(_, r)| r.is_accepted()).map(|(t, _)| t.clone()).collect();
            let replay = only_accepted.block(&kept);
            prop_assert!(replay.iter().all(Receipt::is_accepted), "accepted transactions stay accepted without the refused ones");
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(a.root(), only_accepted.root());
        }
    }
}
