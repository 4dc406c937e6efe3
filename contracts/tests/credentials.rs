//! Governance and credentials: the council's m-of-n approvals register issuers, issuers
//! anchor credentials and change their status, and every refusal changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use acta_contracts::{credential, view::StateView};
use acta_ledger::{
    records::{
        CredentialKind, CredentialRecord, CredentialStatus, GovAction, GovProposal, IssuerRecord,
    },
    state::{state_key, AuthenticatedState},
    testing,
    tx::{CredentialCall, GovernanceCall, IdentityCall},
    types::Text,
    Call, Did, Hash, Height, Keypair, Timestamp,
};
use borsh::BorshDeserialize;
use common::{council_keys, did_of, tx, Chain};

fn read<T: BorshDeserialize>(c: &Chain, ns: &str, key: &[u8], height: Height) -> Option<T> {
    c.state
        .get(&state_key(ns, key), height)
        .unwrap()
        .map(|b| T::try_from_slice(&b).unwrap())
}

/// `call` signed by `key` with its next nonce on `c`.
fn gov(c: &Chain, key: &Keypair, call: GovernanceCall) -> acta_ledger::Transaction {
    c.sign(key, Call::Governance(call))
}

fn create(key: &Keypair) -> acta_ledger::Transaction {
    tx(
        key,
        0,
        Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        }),
    )
}

fn issue(
    issuer_key: &Keypair,
    nonce: u64,
    id: u8,
    subject: Did,
    kind: CredentialKind,
    district: Option<&str>,
) -> acta_ledger::Transaction {
    let call = CredentialCall::Issue {
        id: Hash([id; 32]),
        issuer: did_of(issuer_key),
        subject,
        kind,
        district: district.map(|d| Text::new(d).unwrap()),
        valid_from: Timestamp(1_600_000_000_000),
        valid_until: Timestamp(1_900_000_000_000),
    };
    tx(issuer_key, nonce, Call::Credential(call))
}

/// A chain where the agency's DID exists and the council registered it for `kinds`.
fn with_issuer(kinds: Vec<CredentialKind>) -> (Chain, Keypair) {
    let mut c = Chain::new();
    let agency = testing::key(0xd0, 1);
    c.accepted(create(&agency));
    let council = council_keys();
    let action = GovAction::RegisterIssuer {
        did: did_of(&agency),
        kinds,
    };
    let action_hash = action.hash();
    c.accepted(gov(&c, &council[0], GovernanceCall::Propose { action }));
    c.accepted(gov(
        &c,
        &council[1],
        GovernanceCall::Approve {
            proposal: 0,
            action_hash,
        },
    ));
    (c, agency)
}

#[test]
fn council_actions_need_m_of_n_distinct_member_approvals() {
    let mut c = Chain::new();
    let agency = testing::key(0xd0, 1);
    c.accepted(create(&agency));
    let council = council_keys();
    let outsider = testing::key(0xd0, 9);
    let action = GovAction::RegisterIssuer {
        did: did_of(&agency),
        kinds: vec![CredentialKind::Resident],
    };
    c.refused(
        gov(
            &c,
            &outsider,
            GovernanceCall::Propose {
                action: action.clone(),
            },
        ),
        "unauthorized",
    );
    let action_hash = action.hash();
    c.accepted(gov(&c, &council[0], GovernanceCall::Propose { action }));
    // One approval of two: nothing happens yet.
    assert!(read::<IssuerRecord>(&c, "issuer", &did_of(&agency).0, c.height()).is_none());
    c.refused(
        gov(
            &c,
            &council[0],
            GovernanceCall::Approve {
                proposal: 0,
                action_hash,
            },
        ),
        "already_exists",
    );
    c.refused(
        gov(
            &c,
            &outsider,
            GovernanceCall::Approve {
                proposal: 0,
                action_hash,
            },
        ),
        "unauthorized",
    );
    c.refused(
        gov(
            &c,
            &council[1],
            GovernanceCall::Approve {
                proposal: 7,
                action_hash,
            },
        ),
        "not_found",
    );
    c.accepted(gov(
        &c,
        &council[1],
        GovernanceCall::Approve {
            proposal: 0,
            action_hash,
        },
    ));
    let issuer: IssuerRecord = read(&c, "issuer", &did_of(&agency).0, c.height()).unwrap();
    assert_eq!(issuer.kinds, vec![CredentialKind::Resident]);
    let p: GovProposal = read(&c, "gov_proposal", &0u64.to_be_bytes(), c.height()).unwrap();
    assert_eq!(p.executed, Some(c.height()));
    c.refused(
        gov(
            &c,
            &council[2],
            GovernanceCall::Approve {
                proposal: 0,
                action_hash,
            },
        ),
        "invalid",
    );
    // Registering a DID that does not exist, or with no kinds, is refused at proposal.
    let ghost = GovAction::RegisterIssuer {
        did: did_of(&outsider),
        kinds: vec![CredentialKind::Auditor],
    };
    c.refused(
        gov(&c, &council[2], GovernanceCall::Propose { action: ghost }),
        "not_found",
    );
    let empty = GovAction::RegisterIssuer {
        did: did_of(&agency),
        kinds: vec![],
    };
    c.refused(
        gov(&c, &council[2], GovernanceCall::Propose { action: empty }),
        "invalid",
    );
}

#[test]
fn an_issuer_anchors_and_manages_credentials_of_its_kinds_only() {
    let (mut c, agency) = with_issuer(vec![
        CredentialKind::Resident,
        CredentialKind::SensorOperator,
    ]);
    let alice = testing::key(0xb0, 1);
    c.accepted(create(&alice));
    let a = did_of(&alice);
    // Not its kind; no district for a resident; an unknown subject; a stranger's key.
    c.refused(
        issue(
            &agency,
            c.nonce(&agency),
            1,
            a,
            CredentialKind::Auditor,
            None,
        ),
        "unauthorized",
    );
    c.refused(
        issue(
            &agency,
            c.nonce(&agency),
            1,
            a,
            CredentialKind::Resident,
            None,
        ),
        "invalid",
    );
    c.refused(
        issue(
            &agency,
            c.nonce(&agency),
            1,
            did_of(&testing::key(0xb0, 9)),
            CredentialKind::Resident,
            Some("north"),
        ),
        "not_found",
    );
    let mut forged = issue(
        &agency,
        c.nonce(&agency),
        1,
        a,
        CredentialKind::Resident,
        Some("north"),
    );
    forged = acta_ledger::Transaction::sign(
        &alice,
        testing::chain_id(),
        c.nonce(&alice),
        acta_ledger::testing::NO_EXPIRY,
        forged.call,
    );
    c.refused(forged, "unauthorized");
    // The real thing, once.
    c.accepted(issue(
        &agency,
        c.nonce(&agency),
        1,
        a,
        CredentialKind::Resident,
        Some("north"),
    ));
    let issued_at = c.height();
    c.refused(
        issue(
            &agency,
            c.nonce(&agency),
            1,
            a,
            CredentialKind::Resident,
            Some("north"),
        ),
        "already_exists",
    );
    let id = Hash([1; 32]);
    // Suspend, reinstate, revoke; revoked is final; only the issuer may.
    c.refused(
        tx(
            &alice,
            c.nonce(&alice),
            Call::Credential(CredentialCall::Suspend { id }),
        ),
        "unauthorized",
    );
    c.refused(
        tx(
            &agency,
            c.nonce(&agency),
            Call::Credential(CredentialCall::Reinstate { id }),
        ),
        "invalid",
    );
    c.accepted(tx(
        &agency,
        c.nonce(&agency),
        Call::Credential(CredentialCall::Suspend { id }),
    ));
    let suspended_at = c.height();
    c.accepted(tx(
        &agency,
        c.nonce(&agency),
        Call::Credential(CredentialCall::Reinstate { id }),
    ));
    c.accepted(tx(
        &agency,
        c.nonce(&agency),
        Call::Credential(CredentialCall::Revoke { id }),
    ));
    c.refused(
        tx(
            &agency,
            c.nonce(&agency),
            Call::Credential(CredentialCall::Reinstate { id }),
        ),
        "invalid",
    );
    // Status as of every height.
    let status = |h: Height| read::<CredentialRecord>(&c, "credential", &id.0, h).map(|r| r.status);
    assert_eq!(status(Height(issued_at.0 - 1)), None);
    assert_eq!(status(issued_at), Some(CredentialStatus::Active));
    assert_eq!(status(suspended_at), Some(CredentialStatus::Suspended));
    assert_eq!(status(c.height()), Some(CredentialStatus::Revoked));
}

#[test]
fn validity_depends_on_status_window_and_district() {
    let (mut c, agency) = with_issuer(vec![CredentialKind::Resident]);
    let alice = testing::key(0xb0, 1);
    c.accepted(create(&alice));
    let a = did_of(&alice);
    c.accepted(issue(
        &agency,
        c.nonce(&agency),
        1,
        a,
        CredentialKind::Resident,
        Some("north"),
    ));
    let check = |c: &Chain, district: Option<&str>, time: u64| {
        let view = StateView::new(&c.state, c.height());
        credential::holds_valid(
            &view,
            &a,
            CredentialKind::Resident,
            district,
            Timestamp(time),
        )
        .unwrap()
    };
    assert!(check(&c, Some("north"), 1_700_000_000_000));
    assert!(check(&c, None, 1_700_000_000_000));
    assert!(
        !check(&c, Some("south"), 1_700_000_000_000),
        "another district"
    );
    assert!(
        !check(&c, Some("north"), 1_500_000_000_000),
        "before its window"
    );
    assert!(
        !check(&c, Some("north"), 1_900_000_000_000),
        "after its window"
    );
    c.accepted(tx(
        &agency,
        c.nonce(&agency),
        Call::Credential(CredentialCall::Suspend { id: Hash([1; 32]) }),
    ));
    assert!(!check(&c, Some("north"), 1_700_000_000_000), "suspended");
}

#[test]
fn a_revoked_issuer_issues_no_more() {
    let (mut c, agency) = with_issuer(vec![CredentialKind::Resident]);
    let alice = testing::key(0xb0, 1);
    c.accepted(create(&alice));
    let council = council_keys();
    let revoke = GovAction::RevokeIssuer {
        did: did_of(&agency),
    };
    let action_hash = revoke.hash();
    c.accepted(gov(
        &c,
        &council[2],
        GovernanceCall::Propose { action: revoke },
    ));
    c.accepted(gov(
        &c,
        &council[0],
        GovernanceCall::Approve {
            proposal: 1,
            action_hash,
        },
    ));
    c.refused(
        issue(
            &agency,
            c.nonce(&agency),
            1,
            did_of(&alice),
            CredentialKind::Resident,
            Some("north"),
        ),
        "unauthorized",
    );
}

#[test]
fn a_revoked_issuer_may_withdraw_but_not_reinstate_credentials() {
    let mut c = Chain::new();
    let agency = c.issuer(1, vec![CredentialKind::Resident]);
    let resident = testing::key(0xd0, 7);
    let subject = c.create_did(&resident);
    let a = c.credential(&agency, subject, CredentialKind::Resident, Some("north"));
    let b = c.credential(&agency, subject, CredentialKind::Resident, Some("north"));
    c.ok(&agency, Call::Credential(CredentialCall::Suspend { id: a }));
    c.council_do(GovAction::RevokeIssuer {
        did: did_of(&agency),
    });
    c.no(
        &agency,
        Call::Credential(CredentialCall::Reinstate { id: a }),
        "unauthorized",
    );
    c.ok(&agency, Call::Credential(CredentialCall::Suspend { id: b }));
    c.ok(&agency, Call::Credential(CredentialCall::Revoke { id: a }));
}

#[test]
fn no_issuer_fills_a_subjects_list_and_revoked_credentials_make_room() {
    use CredentialKind::Resident;
    let mut c = Chain::new();
    let issuers: Vec<Keypair> = (1..=9).map(|i| c.issuer(i, vec![Resident])).collect();
    let subject = c.create_did(&testing::key(0xb0, 1));
    let one_more = |issuer: &Keypair, n: u8| {
        Call::Credential(CredentialCall::Issue {
            id: Hash([n; 32]),
            issuer: did_of(issuer),
            subject,
            kind: Resident,
            district: Some(Text::new("north").unwrap()),
            valid_from: Timestamp(1_600_000_000_000),
            valid_until: Timestamp(1_900_000_000_000),
        })
    };
    // One issuer vouches for one subject at most eight times at once.
    let first: Vec<Hash> = (0..credential::CREDENTIALS_PER_ISSUER_MAX)
        .map(|_| c.credential(&issuers[0], subject, Resident, Some("north")))
        .collect();
    c.no(&issuers[0], one_more(&issuers[0], 1), "limit");
    // One of them revoked, it may vouch again.
    c.ok(
        &issuers[0],
        Call::Credential(CredentialCall::Revoke { id: first[0] }),
    );
    c.credential(&issuers[0], subject, Resident, Some("north"));
    // Seven others fill the list; the revoked one leaves it to make room for the last.
    for issuer in &issuers[1..8] {
        for _ in 0..credential::CREDENTIALS_PER_ISSUER_MAX {
            c.credential(issuer, subject, Resident, Some("north"));
        }
    }
    let key = credential::index_key(&subject, Resident);
    let ids: Vec<Hash> = c.read(credential::NS_CREDENTIALS_OF, &key).unwrap();
    assert_eq!(ids.len(), credential::CREDENTIALS_PER_KIND_MAX);
    assert!(!ids.contains(&first[0]) && ids.contains(&first[1]));
    let revoked: CredentialRecord = c.read(credential::NS_CREDENTIAL, &first[0].0).unwrap();
    assert_eq!(
        revoked.status,
        CredentialStatus::Revoked,
        "its record stays"
    );
    // Full of credentials that vouch, the list takes no more.
    c.no(&issuers[8], one_more(&issuers[8], 2), "limit");
}

#[test]
fn a_registration_proposed_before_a_revocation_cannot_undo_it() {
    let mut c = Chain::new();
    let agency = c.issuer(1, vec![CredentialKind::Resident]);
    let council = council_keys();
    // A second registration waits for its approvals while the issuer is revoked.
    let register = GovAction::RegisterIssuer {
        did: did_of(&agency),
        kinds: vec![CredentialKind::Resident, CredentialKind::Auditor],
    };
    let action_hash = register.hash();
    c.ok(
        &council[2],
        Call::Governance(GovernanceCall::Propose {
            action: register.clone(),
        }),
    );
    c.council_do(GovAction::RevokeIssuer {
        did: did_of(&agency),
    });
    let stale = Call::Governance(GovernanceCall::Approve {
        proposal: 1,
        action_hash,
    });
    c.no(&council[0], stale, "invalid");
    let issuer: IssuerRecord = c
        .read(acta_contracts::governance::NS_ISSUER, &did_of(&agency).0)
        .unwrap();
    assert!(issuer.revoked.is_some());
    // Proposed again after the revocation, it is the council's new decision.
    c.council_do(register);
    let issuer: IssuerRecord = c
        .read(acta_contracts::governance::NS_ISSUER, &did_of(&agency).0)
        .unwrap();
    assert!(issuer.revoked.is_none());
}

#[test]
fn a_proposal_not_carried_out_within_its_lifetime_expires() {
    let mut c = Chain::new();
    let council = council_keys();
    c.council_do(GovAction::SetParameter {
        name: Text::new("proposal_lifetime_s").unwrap(),
        value: 3_600,
    });
    let agency = testing::key(0xd0, 7);
    let did = c.create_did(&agency);
    let register = |kind| GovAction::RegisterIssuer {
        did,
        kinds: vec![kind],
    };
    let propose = |action: GovAction| Call::Governance(GovernanceCall::Propose { action });
    let approve = |proposal: u64, action: &GovAction| {
        Call::Governance(GovernanceCall::Approve {
            proposal,
            action_hash: action.hash(),
        })
    };
    let next = |c: &Chain| c.read::<u64>("gov_next", b"next").unwrap();
    // Approved in the last block of its lifetime (the test chain's blocks are a second
    // apart): carried out.
    let in_time = register(CredentialKind::Resident);
    let first = next(&c);
    c.ok(&council[0], propose(in_time.clone()));
    let p: GovProposal = c
        .read(
            acta_contracts::governance::NS_GOV_PROPOSAL,
            &first.to_be_bytes(),
        )
        .unwrap();
    assert_eq!(p.expires, common::time_of(p.created.0 + 3_600));
    c.advance_to(p.created.0 + 3_599);
    c.ok(&council[1], approve(first, &in_time));
    assert!(read::<IssuerRecord>(
        &c,
        acta_contracts::governance::NS_ISSUER,
        &did.0,
        c.height()
    )
    .is_some());
    // One block later than that: refused, and nothing changes.
    let late = register(CredentialKind::Auditor);
    let second = next(&c);
    c.ok(&council[0], propose(late.clone()));
    let created = c.height().0;
    c.advance_to(created + 3_600);
    c.no(&council[1], approve(second, &late), "wrong_phase");
    let issuer: IssuerRecord = c
        .read(acta_contracts::governance::NS_ISSUER, &did.0)
        .unwrap();
    assert_eq!(issuer.kinds, vec![CredentialKind::Resident]);
    // Proposed again, it is carried out.
    c.council_do(late);
    let issuer: IssuerRecord = c
        .read(acta_contracts::governance::NS_ISSUER, &did.0)
        .unwrap();
    assert_eq!(issuer.kinds, vec![CredentialKind::Auditor]);
}

#[test]
fn the_council_revokes_a_credential_whoever_issued_it() {
    let mut c = Chain::new();
    let agency = c.issuer(1, vec![CredentialKind::Resident]);
    let resident = testing::key(0xd0, 7);
    let subject = c.create_did(&resident);
    let forged = c.credential(&agency, subject, CredentialKind::Resident, Some("north"));
    let kept = c.credential(&agency, subject, CredentialKind::Resident, Some("north"));
    // The agency's key is gone: the council revokes the issuer and the credential.
    c.council_do(GovAction::RevokeIssuer {
        did: did_of(&agency),
    });
    c.council_do(GovAction::RevokeCredential { id: forged });
    let status = |c: &Chain, id: Hash| {
        c.read::<CredentialRecord>(credential::NS_CREDENTIAL, &id.0)
            .unwrap()
            .status
    };
    assert_eq!(status(&c, forged), CredentialStatus::Revoked);
    assert_eq!(status(&c, kept), CredentialStatus::Active);
    // Final: not revoked twice, not reinstated; an unknown id is refused when proposed.
    let council = council_keys();
    let propose = |action| Call::Governance(GovernanceCall::Propose { action });
    c.no(
        &council[0],
        propose(GovAction::RevokeCredential { id: forged }),
        "invalid",
    );
    c.no(
        &council[0],
        propose(GovAction::RevokeCredential {
            id: Hash::digest(b"no such credential"),
        }),
        "not_found",
    );
    c.no(
        &agency,
        Call::Credential(CredentialCall::Reinstate { id: forged }),
        "unauthorized",
    );
    // Not council members, the agency and the resident cannot propose it.
    c.no(
        &resident,
        propose(GovAction::RevokeCredential { id: kept }),
        "unauthorized",
    );
}
