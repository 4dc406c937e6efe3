//! Sensors: registration by credentialed operators, relocation, transfer, deactivation, and
//! the chain of attested batches with its gap and fork refusals.

#![allow(clippy::unwrap_used)]

mod common;

use acta_contracts::{
    identity::NS_DID,
    sensor::{attestation_key, NS_ATTESTATION, NS_DEVICE},
};
use acta_ledger::{
    records::{
        AttestationRecord, CredentialKind, DeviceRecord, DidDocument, DidRecord, VerificationMethod,
    },
    tx::{AttestationBatch, CredentialCall, IdentityCall, SensorCall},
    types::Text,
    Call, Did, Hash, Keypair, Timestamp,
};
use common::{user, Chain};

struct Setup {
    chain: Chain,
    issuer: Keypair,
    operator: Keypair,
    device: Keypair,
    credential: Hash,
}

/// Has `signer` (a key of the device, or of one of its controllers) set the device DID's
/// controllers: naming an operator is the device's consent to be operated by it.
/// `signer`'s update of the device's DID document to name `controllers`.
fn controllers_update(device: &Keypair, controllers: Vec<Did>) -> Call {
    let document = DidDocument {
        verification_methods: vec![VerificationMethod {
            id: Text::new("key-1").unwrap(),
            key: device.public(),
        }],
        controllers,
        services: vec![],
    };
    Call::Identity(IdentityCall::UpdateDocument {
        did: did(device),
        document,
    })
}

fn set_controllers(c: &mut Chain, signer: &Keypair, device: &Keypair, controllers: Vec<Did>) {
    c.ok(signer, controllers_update(device, controllers));
}

/// An operator with a SensorOperator credential, and a device DID that names it as a
/// controller.
fn setup() -> Setup {
    let mut chain = Chain::new();
    let issuer = chain.issuer(1, vec![CredentialKind::SensorOperator]);
    let operator = user(1);
    let op_did = chain.create_did(&operator);
    let credential = chain.credential(&issuer, op_did, CredentialKind::SensorOperator, None);
    let device = user(100);
    chain.create_did(&device);
    set_controllers(&mut chain, &device, &device, vec![op_did]);
    Setup {
        chain,
        issuer,
        operator,
        device,
        credential,
    }
}

fn did(key: &Keypair) -> Did {
    common::did_of(key)
}

fn register(operator: &Keypair, device: &Keypair, location: &str, unit: &str) -> Call {
    Call::Sensor(SensorCall::Register {
        operator: did(operator),
        device: did(device),
        kind: Text::new("air.pm25").unwrap(),
        unit: Text::new(unit).unwrap(),
        location: Text::new(location).unwrap(),
        stream: Text::new("pm25-1min").unwrap(),
    })
}

fn batch(device: &Keypair, sequence: u64, prev: Hash, start: u64) -> AttestationBatch {
    AttestationBatch {
        device: did(device),
        stream: Text::new("pm25-1min").unwrap(),
        sequence,
        prev_batch_hash: prev,
        window_start: Timestamp(start),
        window_end: Timestamp(start + 60_000),
        reading_count: 60,
        readings_root: Hash::digest(&sequence.to_be_bytes()),
        raw_batch_hash: Hash::digest(&start.to_be_bytes()),
    }
}

fn attest(b: &AttestationBatch) -> Call {
    Call::Sensor(SensorCall::Attest(b.clone()))
}

const T0: u64 = 1_699_000_000_000;

#[test]
fn a_device_attests_a_chain_of_batches_and_gaps_and_forks_are_refused() {
    let Setup {
        chain: mut c,
        operator,
        device,
        ..
    } = setup();
    c.ok(&operator, register(&operator, &device, "u2yhvd", "ug/m3"));
    let b0 = batch(&device, 0, Hash::ZERO, T0);
    c.ok(&device, attest(&b0));
    let h0 = Hash::of(&b0);
    let b1 = batch(&device, 1, h0, T0 + 60_000);
    // A gap: batch 2 before batch 1.
    let b2 = batch(&device, 2, Hash::of(&b1), T0 + 120_000);
    c.no(&device, attest(&b2), "sequence_gap");
    c.ok(&device, attest(&b1));
    // A replay of batch 1, and a fork: another batch 1 with the same predecessor.
    c.no(&device, attest(&b1), "fork");
    let mut fork = batch(&device, 1, h0, T0 + 60_000);
    fork.reading_count = 59;
    c.no(&device, attest(&fork), "fork");
    // A batch 2 that names the wrong predecessor.
    let wrong_prev = batch(&device, 2, h0, T0 + 120_000);
    c.no(&device, attest(&wrong_prev), "fork");
    c.ok(&device, attest(&b2));
    // Stored: any batch by device and sequence, with its hash.
    let stored: AttestationRecord = c
        .read(NS_ATTESTATION, &attestation_key(&did(&device), 1))
        .unwrap();
    assert_eq!(stored.batch, b1);
    assert_eq!(stored.hash, Hash::of(&b1));
    let record: DeviceRecord = c.read(NS_DEVICE, &did(&device).0).unwrap();
    assert_eq!(record.next_sequence, 3);
    assert_eq!(record.last_batch, Hash::of(&b2));
}

#[test]
fn attestations_are_refused_unless_the_device_signs_its_own_stream_in_time() {
    let Setup {
        chain: mut c,
        operator,
        device,
        ..
    } = setup();
    c.ok(&operator, register(&operator, &device, "u2yhvd", "ug/m3"));
    let b0 = batch(&device, 0, Hash::ZERO, T0);
    // The operator's key is not the device's.
    c.no(&operator, attest(&b0), "unauthorized");
    let mut other_stream = b0.clone();
    other_stream.stream = Text::new("noise").unwrap();
    c.no(&device, attest(&other_stream), "invalid");
    let mut future = b0.clone();
    future.window_end = Timestamp(2_000_000_000_000);
    c.no(&device, attest(&future), "invalid");
    let mut empty = b0.clone();
    empty.reading_count = 0;
    c.no(&device, attest(&empty), "invalid");
    let unknown = user(200);
    c.create_did(&unknown);
    c.no(
        &unknown,
        attest(&batch(&unknown, 0, Hash::ZERO, T0)),
        "not_found",
    );
    c.ok(&device, attest(&b0));
    // A window that starts before the previous one ended.
    let overlap = batch(&device, 1, Hash::of(&b0), T0 + 30_000);
    c.no(&device, attest(&overlap), "invalid");
}

#[test]
fn registration_needs_a_valid_operator_credential_and_well_formed_fields() {
    let Setup {
        chain: mut c,
        issuer,
        operator,
        device,
        credential,
    } = setup();
    // A DID that does not name the operator as its controller is not its device.
    let someone_elses = user(101);
    c.create_did(&someone_elses);
    c.no(
        &operator,
        register(&operator, &someone_elses, "u2yhvd", "ug/m3"),
        "unauthorized",
    );
    // Someone without the credential.
    let stranger = user(2);
    c.create_did(&stranger);
    c.no(
        &stranger,
        register(&stranger, &device, "u2yhvd", "ug/m3"),
        "unauthorized",
    );
    // Signed by a key that is not the operator's.
    c.no(
        &stranger,
        register(&operator, &device, "u2yhvd", "ug/m3"),
        "unauthorized",
    );
    // A location finer than six geohash characters cannot even be encoded; one that is not
    // a geohash is refused.
    assert!(Text::<6>::new("u2yhvd0").is_err());
    c.no(
        &operator,
        register(&operator, &device, "u2yhva", "ug/m3"),
        "invalid",
    );
    c.no(
        &operator,
        register(&operator, &device, "u2yhvd", "ug m3"),
        "invalid",
    );
    // A device without a DID.
    let ghost = user(300);
    c.no(
        &operator,
        register(&operator, &ghost, "u2yhvd", "ug/m3"),
        "not_found",
    );
    // A revoked credential no longer counts.
    c.ok(
        &issuer,
        Call::Credential(CredentialCall::Revoke { id: credential }),
    );
    c.no(
        &operator,
        register(&operator, &device, "u2yhvd", "ug/m3"),
        "unauthorized",
    );
}

#[test]
fn operators_relocate_transfer_and_deactivate_their_devices() {
    let Setup {
        chain: mut c,
        issuer,
        operator,
        device,
        ..
    } = setup();
    c.ok(&operator, register(&operator, &device, "u2yhvd", "Cel"));
    c.no(
        &operator,
        register(&operator, &device, "u2yhvd", "Cel"),
        "already_exists",
    );
    let relocate = |loc: &str| {
        Call::Sensor(SensorCall::Relocate {
            device: did(&device),
            location: Text::new(loc).unwrap(),
        })
    };
    let other = user(3);
    let other_did = c.create_did(&other);
    c.no(&other, relocate("u2yhve"), "unauthorized");
    c.ok(&operator, relocate("u2yhve"));
    let record: DeviceRecord = c.read(NS_DEVICE, &did(&device).0).unwrap();
    assert_eq!(record.location.as_str(), "u2yhve");
    // A transfer to someone without the credential is refused; with it, accepted.
    let transfer = Call::Sensor(SensorCall::Transfer {
        device: did(&device),
        operator: other_did,
    });
    c.no(&operator, transfer.clone(), "unauthorized");
    c.credential(&issuer, other_did, CredentialKind::SensorOperator, None);
    // With the credential, but the device does not name the new operator yet.
    c.no(&operator, transfer.clone(), "unauthorized");
    // The current operator, a controller of the device, adds the new one.
    set_controllers(&mut c, &operator, &device, vec![did(&operator), other_did]);
    c.ok(&operator, transfer);
    // The old operator lost control, the new one has it.
    c.no(&operator, relocate("u2yhvf"), "unauthorized");
    c.ok(&other, relocate("u2yhvf"));
    // Nor does it control the device's DID any more: it cannot put its key there (to attest
    // in the device's name) nor deactivate it.
    let record: DidRecord = c.read(NS_DID, &did(&device).0).unwrap();
    assert_eq!(record.document.controllers, vec![other_did]);
    c.no(
        &operator,
        controllers_update(&device, vec![did(&operator)]),
        "unauthorized",
    );
    c.no(
        &operator,
        Call::Identity(IdentityCall::Deactivate { did: did(&device) }),
        "unauthorized",
    );
    // Deactivation is final: no more batches, no more changes.
    let deactivate = Call::Sensor(SensorCall::Deactivate {
        device: did(&device),
    });
    c.ok(&other, deactivate.clone());
    c.no(&other, deactivate, "invalid");
    let b0 = batch(&device, 0, Hash::ZERO, T0);
    c.no(&device, attest(&b0), "invalid");
}

#[test]
fn a_device_whose_did_is_deactivated_cannot_attest() {
    let Setup {
        chain: mut c,
        operator,
        device,
        ..
    } = setup();
    c.ok(&operator, register(&operator, &device, "u2yhvd", "Cel"));
    c.ok(
        &device,
        Call::Identity(IdentityCall::Deactivate { did: did(&device) }),
    );
    c.no(
        &device,
        attest(&batch(&device, 0, Hash::ZERO, T0)),
        "deactivated",
    );
}
