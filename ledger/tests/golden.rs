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
    store::{StaleList, TxLocation},
    testing::{self, BlockSpec},
    Domain, Event, Evidence, Hash, Height, Outcome, Proposal, Receipt, RefusalCode, Round,
    Transaction, Vote, VoteKind,
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
    // Format version 14: the set written by block 12, then another by block 31.
    put(
        "records.set_history",
        encode(
            &acta_ledger::validator::SetHistory::default()
                .then(Height(12), &set.hash())
                .then(Height(31), &Hash::digest(b"set")),
        ),
    );

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

    // An internal node of the state tree: a leaf at nibble 1 (version 7), an internal node
    // of 5 leaves at nibble 10 (version 300).
    let (stored, jmts) =
        testing::stored_tree_node(&[(1, [0x22; 32], 7, None), (10, [0x33; 32], 300, Some(5))]);
    put("store.tree_node.internal", stored);
    put("store.tree_node.internal_jmt", jmts);
    put(
        "store.stale_list",
        encode(&StaleList {
            // The node key of version 7 at the path of the one nibble 0xa.
            nodes: vec![[
                &7u64.to_le_bytes()[..],
                &1u64.to_le_bytes()[..],
                &1u32.to_le_bytes()[..],
                &[0xa0][..],
            ]
            .concat()],
            values: vec![([0x11; 32], 6)],
        }),
    );
    // A key written at heights 0, 1 and 2 (deleted) and another at 1: the newest version of
    // each in `state_latest`, the replaced ones (0 and 1) in `state_values` (layout 3).
    let dir = tempfile::tempdir().unwrap();
    let (latest, versions) = testing::stored_state_values(dir.path());
    put("store.state_latest", latest);
    put("store.state_values", versions);
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
            Timestamp(1_700_000_600_000),
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

    // The calls and records of the other modules. Keys follow the contracts' tests: users
    // (0xb0, i), devices (0xc0, i), council members (0xc5, i), agencies (0xd0, i), new
    // validators (0xa1, i).
    let did_of = |k: &Keypair| Did::from_initial_key(&k.public());
    let signed = |key: &Keypair, nonce: u64, call: Call| {
        encode(&Transaction::sign(
            key,
            chain.clone(),
            nonce,
            Timestamp(1_700_000_600_000),
            call,
        ))
    };
    let council: Vec<Keypair> = (0..3).map(|i| testing::key(0xc5, i)).collect();
    let agency = testing::key(0xd0, 1);
    let office = testing::key(0xd0, 2);
    let operator = testing::key(0xb0, 3);
    let resident = testing::key(0xb0, 2);
    let device = testing::key(0xc0, 2);
    let newcomer = testing::key(0xa1, 0);

    // Credentials.
    let credential_id = Hash::digest(b"credential");
    let district = Some(Text::new("kazimierz").unwrap());
    let (valid_from, valid_until) = (Timestamp(1_700_000_000_000), Timestamp(1_731_536_000_000));
    put(
        "tx.credential.issue",
        signed(
            &agency,
            1,
            Call::Credential(CredentialCall::Issue {
                id: credential_id,
                issuer: did_of(&agency),
                subject: did,
                kind: CredentialKind::Resident,
                district: district.clone(),
                valid_from,
                valid_until,
            }),
        ),
    );
    put(
        "tx.credential.suspend",
        signed(
            &agency,
            2,
            Call::Credential(CredentialCall::Suspend { id: credential_id }),
        ),
    );
    put(
        "tx.credential.reinstate",
        signed(
            &agency,
            3,
            Call::Credential(CredentialCall::Reinstate { id: credential_id }),
        ),
    );
    put(
        "tx.credential.revoke",
        signed(
            &agency,
            4,
            Call::Credential(CredentialCall::Revoke { id: credential_id }),
        ),
    );
    put(
        "records.credential",
        encode(&CredentialRecord {
            id: credential_id,
            issuer: did_of(&agency),
            subject: did,
            kind: CredentialKind::Resident,
            district: district.clone(),
            valid_from,
            valid_until,
            status: CredentialStatus::Suspended,
            issued: Height(14),
            updated: Height(15),
        }),
    );
    put(
        "records.credentials_of",
        encode(&vec![credential_id, Hash::digest(b"credential-2")]),
    );
    put(
        "records.issuer",
        encode(&IssuerRecord {
            did: did_of(&agency),
            kinds: vec![CredentialKind::Resident, CredentialKind::BudgetOffice],
            registered: Height(5),
            revoked: None,
        }),
    );

    // Budget rounds.
    let spec = RoundSpec {
        title: Text::new("Kazimierz 2025").unwrap(),
        district: Text::new("kazimierz").unwrap(),
        budget: 1_000_000,
        currency: Text::new("PLN").unwrap(),
        // 2027-03-01T09:00Z, 2027-03-15T09:00Z, 2027-03-29T18:00Z.
        proposals_from: Timestamp(1_803_891_600_000),
        voting_from: Timestamp(1_805_101_200_000),
        closes_at: Timestamp(1_806_343_200_000),
        ballot: BallotFormat::Approval { min: 1, max: 3 },
        rule: RuleProfile {
            rule: Rule::MesAdd1,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: BallotSecrecy::Public,
    };
    let council_spec = RoundSpec {
        title: Text::new("City-wide 2026").unwrap(),
        district: Text::new("krakow").unwrap(),
        budget: 5_000_000,
        currency: Text::new("PLN").unwrap(),
        // 2027-04-01, 2027-05-01 and 2027-06-01, midnight UTC.
        proposals_from: Timestamp(1_806_537_600_000),
        voting_from: Timestamp(1_809_129_600_000),
        closes_at: Timestamp(1_811_808_000_000),
        ballot: BallotFormat::Knapsack,
        rule: RuleProfile {
            rule: Rule::Greedy,
            tie_break: TieBreak::CostThenVotes,
        },
        secrecy: BallotSecrecy::Public,
    };
    // A secret round: a fixed 2,048-bit registrar key (canonical DER SubjectPublicKeyInfo),
    // and RSA values of its length (encodings only: they need not verify).
    let registrar_key = hex::decode(concat!(
        "30820122300d06092a864886f70d01010105000382010f003082010a0282010100c226ee9e8c418e",
        "c45f536635cf06297ba1d724a622bce3db2e0d1650a7435a11ab766bc066d7e8404a996226a70529",
        "bb03472cc5444ec3a66178a50c08ab39c1961476f9865070e95092bea992bfc58b928645a82a8274",
        "b1c6443fa83ea7291ff93a8eb58899042dd476e04b068cf8c395cf42f3458690e1a9ee214cb8eab7",
        "d3c58b49c128031e4c9267d5340b2e0511b3ac6d7c189110b7706dddcdd5be0d0f97552c682c17c1",
        "d77f58541d0a9555f70d07afb41056a6faef837dec025929ab25746cf133beb4aad9fc688a48250b",
        "08149efa141011662cd612e9666f0677a7188a1a3e1449d76e02358f29acea9d0a7fefbc549fd82c",
        "84c9a156e0f972fac70203010001",
    ))
    .unwrap();
    assert!(RegistrarKey::from_der(&registrar_key).is_ok());
    let secret_spec = RoundSpec {
        secrecy: BallotSecrecy::Secret {
            registrar: did_of(&office),
            key: Bytes::new(registrar_key).unwrap(),
        },
        ..council_spec.clone()
    };
    put("records.round_spec.secret", encode(&secret_spec));
    let rsa_value =
        |seed: u8| Bytes::new((0..=255u8).map(|i| i ^ seed).collect::<Vec<u8>>()).unwrap();
    put(
        "tx.budget.request_token",
        signed(
            &resident,
            2,
            Call::Budget(BudgetCall::RequestToken {
                round: 4,
                voter: did_of(&resident),
                blinded: rsa_value(0x11),
            }),
        ),
    );
    put(
        "tx.budget.issue_token",
        signed(
            &office,
            1,
            Call::Budget(BudgetCall::IssueToken {
                round: 4,
                request: 0,
                blind_signature: rsa_value(0x22),
            }),
        ),
    );
    let ballot_key = testing::key(0xb7, 0);
    put(
        "tx.budget.vote_secret",
        signed(
            &ballot_key,
            0,
            Call::Budget(BudgetCall::VoteSecret {
                round: 4,
                token: rsa_value(0x33),
                projects: vec![1, 4],
            }),
        ),
    );
    put(
        "token.message.signing_bytes",
        acta_ledger::token::token_message(&chain, 4, &ballot_key.public()),
    );
    put(
        "records.token_request",
        encode(&TokenRequest {
            round: 4,
            index: 0,
            voter: did_of(&resident),
            blinded: rsa_value(0x11),
            requested: Height(120),
            blind_signature: Some(rsa_value(0x22)),
            issued: Some(Height(122)),
        }),
    );
    put(
        "records.ballot_token",
        encode(&BallotToken {
            key: ballot_key.public(),
            token: rsa_value(0x33),
        }),
    );
    put(
        "records.token_count",
        encode(&TokenCount {
            requested: 9,
            issued: 8,
        }),
    );
    put("records.round_spec", encode(&spec));
    put(
        "records.round_opener.council",
        encode(&RoundOpener::Council { proposal: 7 }),
    );
    put(
        "tx.budget.open_round",
        signed(
            &office,
            0,
            Call::Budget(BudgetCall::OpenRound {
                office: did_of(&office),
                spec: spec.clone(),
            }),
        ),
    );
    let title = Text::new("Trees on Dietla street").unwrap();
    put(
        "tx.budget.propose",
        signed(
            &owner,
            4,
            Call::Budget(BudgetCall::Propose {
                round: 3,
                proposer: did,
                title: title.clone(),
                cost: 120_000,
            }),
        ),
    );
    put(
        "tx.budget.vote",
        signed(
            &resident,
            1,
            Call::Budget(BudgetCall::Vote {
                round: 3,
                voter: did_of(&resident),
                projects: vec![0, 2, 5],
            }),
        ),
    );
    put(
        "records.budget_round",
        encode(&BudgetRound {
            id: 3,
            spec,
            opener: RoundOpener::Office(did_of(&office)),
            opened: Height(18),
            projects: 6,
            status: RoundStatus::Tallying {
                closed: Height(9_000),
                due: Height(9_150),
                ballots_at: Hash::digest(b"the state after height 8999"),
            },
        }),
    );
    put(
        "records.budget_tallying",
        encode(&vec![(Height(9_150), 3u64), (Height(9_200), 4u64)]),
    );
    put(
        "records.budget_project",
        encode(&BudgetProject {
            round: 3,
            index: 2,
            proposer: did,
            title,
            cost: 120_000,
            proposed: Height(25),
        }),
    );
    put(
        "records.budget_ballot",
        encode(&BudgetBallot {
            voter: did_of(&resident),
            projects: vec![0, 2, 5],
            cast: Height(45),
        }),
    );
    put(
        "records.tally",
        encode(&TallyRecord {
            round: 3,
            rule: RuleProfile {
                rule: Rule::MesAdd1,
                tie_break: TieBreak::VotesThenCost,
            },
            selected: vec![2, 0, 5],
            total_cost: 930_000,
            approvals: vec![210, 95, 305, 40, 12, 180],
            voters: 412,
            // (1,000,000 + 14 × 412) / 412, reduced.
            endowment: Some((251_442, 103)),
            add1_steps: Some(14),
            height: Height(60),
            ballots_root: Hash::digest(b"ballots of round 3"),
        }),
    );
    put(
        "records.tally.greedy",
        encode(&TallyRecord {
            round: 4,
            rule: RuleProfile {
                rule: Rule::Greedy,
                tie_break: TieBreak::CostThenVotes,
            },
            selected: vec![1],
            total_cost: 4_200_000,
            approvals: vec![3, 9],
            voters: 10,
            endowment: None,
            add1_steps: None,
            height: Height(300),
            ballots_root: Hash::digest(b"ballots of round 4"),
        }),
    );

    // Governance.
    let propose = |nonce: u64, action: GovAction| {
        signed(
            &council[0],
            nonce,
            Call::Governance(GovernanceCall::Propose { action }),
        )
    };
    put(
        "tx.governance.propose.register_issuer",
        propose(
            0,
            GovAction::RegisterIssuer {
                did: did_of(&agency),
                kinds: vec![CredentialKind::Resident, CredentialKind::BudgetOffice],
            },
        ),
    );
    put(
        "tx.governance.propose.revoke_issuer",
        propose(
            1,
            GovAction::RevokeIssuer {
                did: did_of(&agency),
            },
        ),
    );
    put(
        "tx.governance.propose.set_parameter",
        propose(
            2,
            GovAction::SetParameter {
                name: Text::new("slash_fraction_bps").unwrap(),
                value: 500,
            },
        ),
    );
    let add_validator = GovAction::AddValidator {
        key: newcomer.public(),
        power: 100,
        node: validator_node(),
    };
    put(
        "tx.governance.propose.add_validator",
        propose(3, add_validator.clone()),
    );
    put(
        "tx.governance.propose.remove_validator",
        propose(
            4,
            GovAction::RemoveValidator {
                key: keys[3].public(),
            },
        ),
    );
    put(
        "tx.governance.propose.set_power",
        propose(
            5,
            GovAction::SetPower {
                key: keys[1].public(),
                power: 250,
            },
        ),
    );
    put(
        "tx.governance.propose.open_budget_round",
        propose(6, GovAction::OpenBudgetRound(council_spec)),
    );
    put(
        "tx.governance.propose.cancel_budget_round",
        propose(7, GovAction::CancelBudgetRound { round: 3 }),
    );
    put(
        "tx.governance.propose.revoke_credential",
        propose(
            8,
            GovAction::RevokeCredential {
                id: Hash::digest(b"a forged credential"),
            },
        ),
    );
    put(
        "records.round_status.cancelled",
        encode(&RoundStatus::Cancelled { at: Height(90) }),
    );
    put(
        "tx.governance.approve",
        signed(
            &council[1],
            0,
            Call::Governance(GovernanceCall::Approve {
                proposal: 7,
                action_hash: add_validator.hash(),
            }),
        ),
    );
    put("records.gov_action_hash", add_validator.hash().0.to_vec());
    put(
        "records.param",
        encode(&ParamRecord {
            value: 500,
            set_at: Height(21),
        }),
    );
    put(
        "receipt.accepted",
        encode(&Receipt {
            tx: did_tx.id(),
            outcome: Outcome::Accepted {
                events: vec![Event::new(
                    "did_created",
                    &[("did", Did::from_initial_key(&did_tx.signer).to_string())],
                )],
            },
        }),
    );
    put(
        "receipt.refused",
        encode(&Receipt {
            tx: did_tx.id(),
            outcome: Outcome::Refused {
                code: RefusalCode::AlreadyExists,
            },
        }),
    );
    put(
        "records.council",
        encode(&Council::new(council.iter().map(Keypair::public).collect(), 2).unwrap()),
    );
    let mut approvals: Vec<PublicKey> = council[..2].iter().map(Keypair::public).collect();
    approvals.sort();
    put(
        "records.gov_proposal",
        encode(&GovProposal {
            id: 7,
            action: add_validator,
            approvals,
            created: Height(20),
            executed: Some(Height(21)),
            // Made at 1,700,000,020,000 ms with the default lifetime of 30 days.
            expires: Timestamp(1_702_592_020_000),
        }),
    );

    // Sensors: device (0xc0, 2), the device of `tx.attest`, under operator (0xb0, 3).
    put(
        "tx.sensor.register",
        signed(
            &operator,
            1,
            Call::Sensor(SensorCall::Register {
                operator: did_of(&operator),
                device: did_of(&device),
                kind: Text::new("air.pm25").unwrap(),
                unit: Text::new("ug/m3").unwrap(),
                location: Text::new("u2yhvd").unwrap(),
                stream: Text::new("air/pm25").unwrap(),
            }),
        ),
    );
    put(
        "tx.sensor.relocate",
        signed(
            &operator,
            2,
            Call::Sensor(SensorCall::Relocate {
                device: did_of(&device),
                location: Text::new("u2yhve").unwrap(),
            }),
        ),
    );
    put(
        "tx.sensor.transfer",
        signed(
            &operator,
            3,
            Call::Sensor(SensorCall::Transfer {
                device: did_of(&device),
                operator: did_of(&testing::key(0xb0, 4)),
            }),
        ),
    );
    put(
        "tx.sensor.deactivate",
        signed(
            &operator,
            4,
            Call::Sensor(SensorCall::Deactivate {
                device: did_of(&device),
            }),
        ),
    );
    let Call::Sensor(SensorCall::Attest(batch)) = attest_tx.call else {
        unreachable!("attest_tx attests")
    };
    let batch_hash = Hash::of(&batch);
    put(
        "records.device",
        encode(&DeviceRecord {
            device: did_of(&device),
            operator: did_of(&operator),
            kind: Text::new("air.pm25").unwrap(),
            unit: Text::new("ug/m3").unwrap(),
            location: Text::new("u2yhvd").unwrap(),
            stream: Text::new("air/pm25").unwrap(),
            registered: Height(8),
            updated: Height(12),
            active: true,
            next_sequence: 6,
            last_batch: batch_hash,
            last_window_end: batch.window_end,
        }),
    );
    put(
        "records.attestation",
        encode(&AttestationRecord {
            batch,
            hash: batch_hash,
            height: Height(12),
        }),
    );

    // Validators.
    put("records.validator_node", encode(&validator_node()));
    put(
        "records.jail",
        encode(&JailRecord {
            key: keys[3].public(),
            slashed_power: 95,
            jailed: Height(31),
            offence: Height(29),
        }),
    );
    e
}

use acta_ledger::{
    crypto::key_hash,
    records::{
        AttestationRecord, BallotFormat, BallotSecrecy, BallotToken, BudgetBallot, BudgetProject,
        BudgetRound, Council, CredentialKind, CredentialRecord, CredentialStatus, DeviceRecord,
        DidDocument, DidRecord, GovAction, GovProposal, IssuerRecord, JailRecord, ParamRecord,
        RoundOpener, RoundSpec, RoundStatus, Rule, RuleProfile, Service, TallyRecord, TieBreak,
        TokenCount, TokenRequest, ValidatorNode, VerificationMethod,
    },
    token::RegistrarKey,
    tx::{BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::{Bytes, Text},
    Call, Commit, Did, Keypair, PublicKey, Timestamp,
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

/// The node of `tx.governance.propose.add_validator`: libp2p key `[0x4e; 32]`.
fn validator_node() -> ValidatorNode {
    ValidatorNode::from_ed25519(&[0x4e; 32], "/ip4/10.0.0.5/tcp/26656").unwrap()
}
