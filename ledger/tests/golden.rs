//! Golden encodings: the exact bytes of every wire and storage type, and of every signed
//! message, frozen in `tests/golden/encodings.txt`. A change to a format fails here until
//! it is made deliberately: run with `ACTA_BLESS=1` to rewrite the file, review the diff,
//! and update `docs/wire-format.md` to match.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf};

use acta_ledger::{
    codec::encode,
    crypto::signing_bytes,
    merkle,
    state::{state_key, AuthenticatedState, MemoryState, StateChanges},
    store::TxLocation,
    testing::{self, BlockSpec},
    Domain, Evidence, Hash, Height, Proposal, Round, Transaction, Vote, VoteKind,
};

fn entries() -> BTreeMap<String, Vec<u8>> {
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[1, 2, 3, 4]);
    let mut e = BTreeMap::new();
    let mut put = |name: &str, bytes: Vec<u8>| {
        assert!(e.insert(name.to_string(), bytes).is_none(), "{name} twice");
    };

    put("chain_id", encode(&chain));
    put("hash", encode(&Hash::digest(b"acta")));
    put("public_key", encode(&keys[0].public()));

    let did_tx = testing::create_did_tx(&chain, 1, 0);
    put("tx.create_did", encode(&did_tx));
    put("tx.create_did.signing_bytes", did_tx.signing_bytes());
    put("tx.create_did.id", did_tx.id().0.to_vec());
    let attest_tx = testing::attest_tx(&chain, 2, 5);
    put("tx.attest", encode(&attest_tx));
    put("tx.attest.id", attest_tx.id().0.to_vec());

    let block_hash = Hash::digest(b"block");
    let prevote = Vote {
        kind: VoteKind::Prevote,
        height: Height(9),
        round: Round(2),
        block: Some(block_hash),
    };
    let nil_precommit = Vote {
        kind: VoteKind::Precommit,
        block: None,
        ..prevote
    };
    put(
        "vote.prevote.signing_bytes",
        signing_bytes(Domain::Prevote, &chain, &prevote.payload()),
    );
    put(
        "vote.prevote.signed",
        encode(&prevote.sign(&keys[0], &chain)),
    );
    put(
        "vote.precommit_nil.signed",
        encode(&nil_precommit.sign(&keys[1], &chain)),
    );

    let proposal = Proposal {
        height: Height(9),
        round: Round(2),
        block: block_hash,
        pol_round: Some(Round(1)),
    };
    put(
        "proposal.signing_bytes",
        signing_bytes(Domain::Proposal, &chain, &proposal),
    );
    put("proposal.signed", encode(&proposal.sign(&keys[2], &chain)));

    let commit = testing::commit(&chain, &keys, &set, Height(9), block_hash);
    put("commit", encode(&commit));
    put("validator_set", encode(&set));
    put("validator_set.hash", set.hash().0.to_vec());

    let other = Vote {
        block: Some(Hash::digest(b"other")),
        ..prevote
    };
    let evidence =
        Evidence::duplicate_vote(prevote.sign(&keys[3], &chain), other.sign(&keys[3], &chain));
    put("evidence.duplicate_vote", encode(&evidence));

    let block = testing::block(
        &chain,
        BlockSpec {
            height: Height(10),
            parent_hash: block_hash,
            txs: vec![did_tx.clone(), attest_tx.clone()],
            last_commit: Some(Commit::clone(&commit)),
            evidence: vec![evidence],
            state_root: Hash::digest(b"state"),
            validators: &set,
            next_validators: &set,
        },
    );
    put("header", encode(&block.header));
    put("header.hash", block.hash().0.to_vec());
    put("block", encode(&block));

    let leaves: Vec<Hash> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
    put(
        "merkle.inclusion_proof",
        encode(&merkle::inclusion_proof(&leaves, 3).unwrap()),
    );
    put(
        "merkle.consistency_proof",
        encode(&merkle::consistency_proof(&leaves, 3).unwrap()),
    );

    let mut state = MemoryState::new();
    let changes: StateChanges = (0u8..5)
        .map(|i| (state_key("golden", &[i]), Some(vec![i; 3])))
        .collect();
    state.commit(&changes).unwrap();
    put("state.key", state_key("golden", &[1]).0.to_vec());
    put(
        "state.root",
        state.state_root(Height(0)).unwrap().0.to_vec(),
    );
    let (_, proof) = state
        .get_with_proof(&state_key("golden", &[1]), Height(0))
        .unwrap();
    put("state.proof.present", encode(&proof));
    let (_, proof) = state
        .get_with_proof(&state_key("golden", &[9]), Height(0))
        .unwrap();
    put("state.proof.absent", encode(&proof));

    put(
        "store.tx_location",
        encode(&TxLocation {
            height: Height(10),
            index: 1,
        }),
    );

    let owner = testing::key(0xb0, 1);
    let did = Did::from_initial_key(&owner.public());
    let document = DidDocument {
        verification_methods: vec![VerificationMethod {
            id: Text::new("key-1").unwrap(),
            key: owner.public(),
        }],
        controllers: vec![Did::from_initial_key(&keys[0].public())],
        services: vec![Service {
            id: Text::new("home").unwrap(),
            kind: Text::new("LinkedDomains").unwrap(),
            endpoint: Text::new("https://city.example").unwrap(),
        }],
    };
    let identity = |nonce: u64, call: IdentityCall| {
        encode(&Transaction::sign(
            &owner,
            chain.clone(),
            nonce,
            Call::Identity(call),
        ))
    };
    put(
        "tx.update_document",
        identity(
            1,
            IdentityCall::UpdateDocument {
                did,
                document: document.clone(),
            },
        ),
    );
    let next_key_hash = Some(key_hash(&keys[2].public()));
    put(
        "tx.rotate_key",
        identity(
            2,
            IdentityCall::RotateKey {
                did,
                new_key: keys[1].public(),
                next_key_hash,
            },
        ),
    );
    put(
        "tx.deactivate",
        identity(3, IdentityCall::Deactivate { did }),
    );
    let record = DidRecord {
        did,
        document,
        next_key_hash: None,
        created: Height(3),
        created_time: Timestamp(1_700_000_003_000),
        updated: Height(7),
        updated_time: Timestamp(1_700_000_007_000),
        deactivated: false,
    };
    put("records.did_record", encode(&record));
    put(
        "records.did_versions",
        encode(&DidVersions(vec![Height(3), Height(7)])),
    );
    e
}

use acta_ledger::{
    crypto::key_hash,
    records::{DidDocument, DidRecord, DidVersions, Service, VerificationMethod},
    tx::IdentityCall,
    types::Text,
    Call, Commit, Did, Timestamp,
};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/encodings.txt")
}

fn render(entries: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::from(
        "# Golden encodings of acta-ledger (see tests/golden.rs). Do not edit by hand:\n\
         # run `ACTA_BLESS=1 cargo test -p acta-ledger --test golden` and review the diff.\n",
    );
    for (name, bytes) in entries {
        writeln!(out, "{name} {}", hex::encode(bytes)).unwrap();
    }
    out
}

#[test]
fn encodings_match_the_golden_file() {
    let now = render(&entries());
    let path = golden_path();
    if std::env::var_os("ACTA_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let frozen = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with ACTA_BLESS=1 to create it",
            path.display()
        )
    });
    let frozen: BTreeMap<&str, &str> = frozen
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let now_map: BTreeMap<&str, &str> = now
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let mut diffs = vec![];
    for name in frozen
        .keys()
        .chain(now_map.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if frozen.get(name) != now_map.get(name) {
            diffs.push(format!(
                "{name}:\n  frozen {}\n  now    {}",
                frozen.get(name).unwrap_or(&"(absent)"),
                now_map.get(name).unwrap_or(&"(absent)")
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "encodings changed; if deliberate, run with ACTA_BLESS=1 and update docs/wire-format.md:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn golden_transaction_decodes_and_verifies() {
    // The frozen bytes are not only stable: they still decode to a valid transaction.
    let frozen = std::fs::read_to_string(golden_path()).unwrap();
    let hex_tx = frozen
        .lines()
        .find_map(|l| l.strip_prefix("tx.create_did "))
        .unwrap();
    let tx = Transaction::decode(&hex::decode(hex_tx).unwrap()).unwrap();
    tx.verify(&testing::chain_id()).unwrap();
}
