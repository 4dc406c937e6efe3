//! Verifiable credentials: the W3C test vectors of `eddsa-jcs-2022` reproduced step by
//! step, and Acta's credential documents read, compared with their record and verified.

#![allow(clippy::unwrap_used)]

use acta_contracts::{
    answer,
    vc::{self, Claims, ProofOptions},
};
use acta_ledger::{
    crypto::Keypair,
    records::{
        CredentialKind, CredentialRecord, CredentialStatus, DidDocument, DidRecord,
        VerificationMethod,
    },
    types::{ChainId, Text},
    Did, Hash, Height, Timestamp,
};
use serde_json::{json, Value};

fn vector(name: &str) -> String {
    let path = format!(
        "{}/tests/data/vc-di-eddsa/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim_end()
        .to_string()
}

fn json_vector(name: &str) -> Value {
    serde_json::from_str(&vector(name)).expect("a JSON test vector")
}

/// The key pair of the vectors: a multikey public key, and a private key that is the
/// multicodec `ed25519-priv` (varint 0x1300: bytes 0x80 0x26) before a 32-byte seed.
fn vector_key() -> Keypair {
    let pair = json_vector("keyPair.json");
    let private = bs58::decode(&pair["privateKeyMultibase"].as_str().unwrap()[1..])
        .into_vec()
        .unwrap();
    assert_eq!(&private[..2], &[0x80, 0x26]);
    let key = Keypair::from_seed(private[2..].try_into().unwrap());
    let public = vc::multikey(pair["publicKeyMultibase"].as_str().unwrap()).unwrap();
    assert_eq!(key.public(), public);
    key
}

fn vector_options() -> ProofOptions {
    let config = json_vector("proofConfigJCS.json");
    ProofOptions {
        verification_method: config["verificationMethod"].as_str().unwrap().into(),
        purpose: config["proofPurpose"].as_str().unwrap().into(),
        created: Timestamp::parse(config["created"].as_str().unwrap()).unwrap(),
        challenge: None,
        domain: None,
    }
}

#[test]
fn the_w3c_eddsa_jcs_2022_vectors_are_reproduced_step_by_step() {
    let unsigned = json_vector("unsigned.json");
    let config = json_vector("proofConfigJCS.json");

    let canon_doc = vc::canonical(&unsigned).unwrap();
    assert_eq!(
        String::from_utf8(canon_doc.clone()).unwrap(),
        vector("canonDocJCS.txt")
    );
    assert_eq!(Hash::digest(&canon_doc).to_hex(), vector("docHashJCS.txt"));
    assert_eq!(
        vc::document_hash(&unsigned).unwrap().to_hex(),
        vector("docHashJCS.txt")
    );

    let canon_config = vc::canonical(&config).unwrap();
    assert_eq!(
        String::from_utf8(canon_config.clone()).unwrap(),
        vector("proofCanonJCS.txt")
    );
    assert_eq!(
        Hash::digest(&canon_config).to_hex(),
        vector("proofHashJCS.txt")
    );

    let mut combined = Hash::digest(&canon_config).0.to_vec();
    combined.extend_from_slice(&Hash::digest(&canon_doc).0);
    assert_eq!(hex::encode(&combined), vector("combinedHashJCS.txt"));

    let key = vector_key();
    let signature = key.sign_raw(&combined);
    assert_eq!(hex::encode(signature.0), vector("sigHexJCS.txt"));
    assert_eq!(
        format!("z{}", bs58::encode(signature.0).into_string()),
        vector("sigBTC58JCS.txt")
    );

    // The whole algorithm gives the signed credential of the spec, which verifies.
    let signed = vc::sign(&unsigned, &vector_options(), &key).unwrap();
    assert_eq!(signed, json_vector("signedJCS.json"));
    let checked = vc::verify(&json_vector("signedJCS.json"), |method| {
        assert_eq!(method, config["verificationMethod"]);
        Ok(key.public())
    })
    .unwrap();
    assert_eq!(checked.purpose, "assertionMethod");
    assert_eq!(checked.created.rfc3339(), "2023-02-24T23:36:38Z");
}

#[test]
fn any_edit_of_a_signed_vector_fails_its_proof() {
    let signed = json_vector("signedJCS.json");
    let key = vector_key().public();
    let edits: [(&str, Value); 6] = [
        (
            "/credentialSubject/alumniOf",
            json!("The School of Forgeries"),
        ),
        ("/validFrom", json!("2022-01-01T00:00:00Z")),
        ("/issuer", json!("https://vc.example/issuers/0000")),
        ("/proof/created", json!("2023-02-25T23:36:38Z")),
        ("/proof/proofPurpose", json!("authentication")),
        ("/proof/@context/1", json!("https://example.org/other/v1")),
    ];
    for (pointer, value) in edits {
        let mut edited = signed.clone();
        *edited.pointer_mut(pointer).unwrap() = value;
        let e = vc::verify(&edited, |_| Ok(key)).unwrap_err();
        assert!(e.field.starts_with("proof."), "{pointer}: {e}");
    }
    // Another key, a truncated signature, another suite, and no proof at all.
    let other = Keypair::from_seed([9; 32]).public();
    assert_eq!(
        vc::verify(&signed, |_| Ok(other)).unwrap_err().field,
        "proof.proofValue"
    );
    let mut short = signed.clone();
    short["proof"]["proofValue"] = json!("z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jw");
    assert_eq!(
        vc::verify(&short, |_| Ok(key)).unwrap_err().field,
        "proof.proofValue"
    );
    let mut suite = signed.clone();
    suite["proof"]["cryptosuite"] = json!("eddsa-rdfc-2022");
    assert_eq!(
        vc::verify(&suite, |_| Ok(key)).unwrap_err().field,
        "proof.cryptosuite"
    );
    let mut bare = signed.clone();
    bare.as_object_mut().unwrap().remove("proof");
    assert_eq!(vc::verify(&bare, |_| Ok(key)).unwrap_err().field, "proof");
}

fn issuer_record(key: &Keypair) -> DidRecord {
    DidRecord {
        did: Did([1; 16]),
        document: DidDocument {
            verification_methods: vec![VerificationMethod {
                id: Text::new("key-1").unwrap(),
                key: key.public(),
            }],
            ..DidDocument::default()
        },
        next_key_hash: None,
        created: Height(1),
        created_time: Timestamp(0),
        updated: Height(1),
        updated_time: Timestamp(0),
        deactivated: false,
    }
}

fn resident() -> (Claims, CredentialRecord) {
    let claims = Claims {
        issuer: Did([1; 16]),
        subject: Did([2; 16]),
        kind: CredentialKind::Resident,
        district: Some("old-town".into()),
        valid_from: Timestamp(1_796_000_000_000),
        valid_until: Timestamp(1_827_536_000_000),
        chain: "acta-test".into(),
    };
    let record = CredentialRecord {
        id: Hash([0; 32]),
        issuer: claims.issuer,
        subject: claims.subject,
        kind: claims.kind,
        district: Some(Text::new("old-town").unwrap()),
        valid_from: claims.valid_from,
        valid_until: claims.valid_until,
        status: CredentialStatus::Active,
        issued: Height(7),
        updated: Height(7),
    };
    (claims, record)
}

#[test]
fn an_acta_credential_reads_back_and_verifies_against_its_issuers_did_document() {
    let key = Keypair::from_seed([3; 32]);
    let (claims, record) = resident();
    let unsigned = vc::credential(&claims, "urn:uuid:0b9e0c5e-7a8e-4d8e-9d8a-1c2b3d4e5f60");
    assert_eq!(unsigned["validFrom"], "2026-11-30T00:53:20Z");
    assert_eq!(vc::claims(&unsigned).unwrap(), claims);
    let chain = ChainId::new("acta-test").unwrap();
    vc::compare(&claims, &record, &chain).unwrap();

    let issuer_doc = answer::did_document(&issuer_record(&key));
    let method = format!("{}#key-1", claims.issuer);
    let options = ProofOptions {
        verification_method: method.clone(),
        purpose: "assertionMethod".into(),
        created: Timestamp(1_796_000_000_000),
        challenge: None,
        domain: None,
    };
    let signed = vc::sign(&unsigned, &options, &key).unwrap();
    // The id the ledger anchors does not depend on the proof.
    assert_eq!(
        vc::document_hash(&signed).unwrap(),
        vc::document_hash(&unsigned).unwrap()
    );
    let checked = vc::verify(&signed, |m| vc::key_in(&issuer_doc, m, "assertionMethod")).unwrap();
    assert_eq!(checked.verification_method, method);

    // A key the document does not list, or lists under another relationship, is refused.
    let e = vc::verify(&signed, |m| vc::key_in(&issuer_doc, m, "keyAgreement")).unwrap_err();
    assert_eq!(e.field, "proof.verificationMethod");
    let mut other = signed.clone();
    other["proof"]["verificationMethod"] = json!(format!("{}#key-2", claims.issuer));
    let e = vc::verify(&other, |m| vc::key_in(&issuer_doc, m, "assertionMethod")).unwrap_err();
    assert_eq!(e.field, "proof.verificationMethod");
}

#[test]
fn each_claim_that_differs_from_the_record_is_named() {
    let (claims, record) = resident();
    let chain = ChainId::new("acta-test").unwrap();
    type Edit = Box<dyn Fn(&mut CredentialRecord)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("issuer", Box::new(|r| r.issuer = Did([9; 16]))),
        (
            "credentialSubject.id",
            Box::new(|r| r.subject = Did([9; 16])),
        ),
        (
            "credentialSubject.kind",
            Box::new(|r| r.kind = CredentialKind::Auditor),
        ),
        (
            "credentialSubject.district",
            Box::new(|r| r.district = None),
        ),
        (
            "validFrom",
            Box::new(|r| r.valid_from = Timestamp(r.valid_from.0 + 1)),
        ),
        ("validUntil", Box::new(|r| r.valid_until = Timestamp(1))),
    ];
    for (field, edit) in cases {
        let mut r = record.clone();
        edit(&mut r);
        assert_eq!(vc::compare(&claims, &r, &chain).unwrap_err().field, field);
    }
    let other = ChainId::new("acta-other").unwrap();
    assert_eq!(
        vc::compare(&claims, &record, &other).unwrap_err().field,
        "credentialStatus.chain"
    );
}

#[test]
fn a_document_that_is_not_an_acta_credential_is_refused_naming_the_field() {
    let (claims, _) = resident();
    let good = vc::credential(&claims, "urn:uuid:0b9e0c5e-7a8e-4d8e-9d8a-1c2b3d4e5f60");
    let cases: [(&str, Value, &str); 8] = [
        (
            "/@context/0",
            json!("https://www.w3.org/2018/credentials/v1"),
            "@context",
        ),
        ("/type/0", json!("Credential"), "type"),
        ("/issuer", json!("did:web:example.org"), "issuer"),
        (
            "/credentialSubject/kind",
            json!("mayor"),
            "credentialSubject.kind",
        ),
        ("/credentialSubject/id", json!(7), "credentialSubject.id"),
        ("/validFrom", json!("2026-12-01"), "validFrom"),
        ("/validUntil", json!("1827536000000"), "validUntil"),
        (
            "/credentialStatus/type",
            json!("BitstringStatusListEntry"),
            "credentialStatus.type",
        ),
    ];
    for (pointer, value, field) in cases {
        let mut d = good.clone();
        *d.pointer_mut(pointer).unwrap() = value;
        assert_eq!(vc::claims(&d).unwrap_err().field, field, "{pointer}");
    }
    assert_eq!(vc::claims(&json!([1])).unwrap_err().field, "(document)");
}

/// The golden Acta credential: a Resident credential signed by the key of seed `[3; 32]`,
/// frozen in `tests/data/acta-resident-credential.json` (docs/wire-format.md section 16
/// checks it in Python). `ACTA_BLESS=1` writes it again after a deliberate format change.
#[test]
fn the_golden_acta_credential_is_unchanged() {
    let key = Keypair::from_seed([3; 32]);
    let (claims, _) = resident();
    let options = ProofOptions {
        verification_method: format!("{}#key-1", claims.issuer),
        purpose: "assertionMethod".into(),
        created: Timestamp(1_796_000_000_000),
        challenge: None,
        domain: None,
    };
    let unsigned = vc::credential(&claims, "urn:uuid:0b9e0c5e-7a8e-4d8e-9d8a-1c2b3d4e5f60");
    let signed = vc::sign(&unsigned, &options, &key).unwrap();
    let path = format!(
        "{}/tests/data/acta-resident-credential.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = serde_json::to_string_pretty(&signed).unwrap() + "\n";
    if std::env::var_os("ACTA_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(signed, golden, "the credential document format changed");
    assert_eq!(
        vc::document_hash(&golden).unwrap().to_hex(),
        "dc1135b94e055bb4156015cbd0a0adb2a047805bb655ddea381c1c3fcd5afef4",
        "the anchored id changed"
    );
}
