//! W3C Verifiable Credentials 2.0 secured with Data Integrity proofs of the cryptosuite
//! `eddsa-jcs-2022` (W3C "Data Integrity EdDSA Cryptosuites v1.0", section 3.3), and the
//! credential documents Acta's issuers write.
//!
//! A proof signs, with Ed25519, `SHA-256(JCS(proof configuration)) ‖ SHA-256(JCS(document
//! without its proof))`, JCS being RFC 8785's canonical JSON. The second hash is also what
//! the ledger anchors: an Acta credential's id is `SHA-256(JCS(credential without proof))`,
//! so a verifier computes the id from the file it holds and reads that id's record.
//!
//! [`claims`] reads an Acta credential strictly, and [`compare`] checks each of its claims
//! against the anchored [`CredentialRecord`], naming the first field that differs: a
//! verdict covers every field the document shows.
//!
//! Pure functions: the caller gives the time a proof is created at, the credential's
//! `urn:uuid`, and the keys of the DID documents it resolved.

use acta_ledger::{
    crypto::{Keypair, Signature},
    records::{CredentialKind, CredentialRecord},
    types::ChainId,
    Did, Hash, PublicKey, Timestamp,
};
use serde_json::{json, Map, Value};

/// The base context of VC Data Model 2.0; it maps undefined terms to
/// `https://www.w3.org/ns/credentials/issuer-dependent#`.
pub const CONTEXT_V2: &str = "https://www.w3.org/ns/credentials/v2";
pub const PROOF_TYPE: &str = "DataIntegrityProof";
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The `credentialStatus` type of an Acta credential: its status is the record the ledger
/// keeps under the credential's id on the named chain (`GET /credentials/{id}`).
pub const STATUS_TYPE: &str = "ActaLedgerCredentialStatus";
/// The version of the credential document format (docs/wire-format.md section 16).
pub const DOCUMENT_VERSION: u32 = 2;

/// Why a document or its proof does not hold, naming the field (a JSON path such as
/// `credentialSubject.id` or `proof.proofValue`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct VcError {
    pub field: String,
    pub message: String,
}

fn err<T>(field: &str, message: impl Into<String>) -> Result<T, VcError> {
    Err(VcError {
        field: field.into(),
        message: message.into(),
    })
}

/// RFC 8785 canonical JSON.
pub fn canonical(value: &Value) -> Result<Vec<u8>, VcError> {
    serde_json_canonicalizer::to_vec(value).or_else(|e| err("(document)", e.to_string()))
}

/// A document's object, without its `proof`.
fn unsecured(document: &Value) -> Result<Map<String, Value>, VcError> {
    let Value::Object(map) = document else {
        return err("(document)", "not a JSON object");
    };
    let mut map = map.clone();
    map.remove("proof");
    Ok(map)
}

/// `SHA-256(JCS(document without its proof))`: eddsa-jcs-2022's transformed-document hash,
/// and an Acta credential's id.
pub fn document_hash(document: &Value) -> Result<Hash, VcError> {
    Ok(Hash::digest(&canonical(&Value::Object(unsecured(
        document,
    )?))?))
}

/// What a new proof says besides its value.
#[derive(Clone, Debug)]
pub struct ProofOptions {
    /// A DID URL naming the key (`did:acta:…#key-1`).
    pub verification_method: String,
    /// `assertionMethod` for a credential, `authentication` for a presentation.
    pub purpose: String,
    pub created: Timestamp,
    /// A presentation's verifier-chosen challenge, and the verifier it is meant for.
    pub challenge: Option<String>,
    pub domain: Option<String>,
}

/// `SHA-256(JCS(proof configuration)) ‖ SHA-256(JCS(document))`: the bytes signed.
fn hash_data(config: &Value, document: &Map<String, Value>) -> Result<Vec<u8>, VcError> {
    let mut data = Hash::digest(&canonical(config)?).0.to_vec();
    data.extend_from_slice(&Hash::digest(&canonical(&Value::Object(document.clone()))?).0);
    Ok(data)
}

/// Adds an `eddsa-jcs-2022` Data Integrity proof to `document` (which must not hold one),
/// signed with `key`. As the cryptosuite says, the proof repeats the document's
/// `@context`.
pub fn sign(document: &Value, options: &ProofOptions, key: &Keypair) -> Result<Value, VcError> {
    if document.get("proof").is_some() {
        return err("proof", "the document already holds a proof");
    }
    let document = unsecured(document)?;
    let mut config = json!({
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": options.created.rfc3339(),
        "verificationMethod": options.verification_method,
        "proofPurpose": options.purpose,
    });
    if let Some(c) = &options.challenge {
        config["challenge"] = json!(c);
    }
    if let Some(d) = &options.domain {
        config["domain"] = json!(d);
    }
    if let Some(context) = document.get("@context") {
        config["@context"] = context.clone();
    }
    let signature = key.sign_raw(&hash_data(&config, &document)?);
    config["proofValue"] = json!(format!("z{}", bs58::encode(signature.0).into_string()));
    let mut secured = document;
    secured.insert("proof".into(), config);
    Ok(Value::Object(secured))
}

/// A proof that verified: what it claims, for the caller to check against what it expects
/// (the purpose, the verification method's controller, a challenge and a domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedProof {
    pub verification_method: String,
    pub purpose: String,
    pub created: Timestamp,
    pub challenge: Option<String>,
    pub domain: Option<String>,
}

fn proof_text(proof: &Map<String, Value>, name: &str) -> Result<Option<String>, VcError> {
    match proof.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => err(&format!("proof.{name}"), "not a string"),
    }
}

fn proof_required(proof: &Map<String, Value>, name: &str) -> Result<String, VcError> {
    proof_text(proof, name)?.ok_or_else(|| VcError {
        field: format!("proof.{name}"),
        message: "missing".into(),
    })
}

/// Verifies a document's `eddsa-jcs-2022` proof (section 3.3.2 of the cryptosuites spec)
/// with the key `key_of` gives for its verification method.
pub fn verify(
    document: &Value,
    key_of: impl FnOnce(&str) -> Result<PublicKey, VcError>,
) -> Result<CheckedProof, VcError> {
    let proof = match document.get("proof") {
        Some(Value::Object(p)) => p.clone(),
        Some(Value::Array(_)) => return err("proof", "proof sets and chains are not supported"),
        Some(_) => return err("proof", "not an object"),
        None => return err("proof", "the document holds no proof"),
    };
    let kind = proof_required(&proof, "type")?;
    if kind != PROOF_TYPE {
        return err("proof.type", format!("{kind:?}, not {PROOF_TYPE:?}"));
    }
    let suite = proof_required(&proof, "cryptosuite")?;
    if suite != CRYPTOSUITE {
        return err(
            "proof.cryptosuite",
            format!("{suite:?}, not {CRYPTOSUITE:?}"),
        );
    }
    let created_text = proof_required(&proof, "created")?;
    let created = Timestamp::parse(&created_text).or_else(|_| {
        err(
            "proof.created",
            format!("{created_text:?} is not a date-time"),
        )
    })?;
    let method = proof_required(&proof, "verificationMethod")?;
    let purpose = proof_required(&proof, "proofPurpose")?;
    let value = proof_required(&proof, "proofValue")?;
    let signature = value
        .strip_prefix('z')
        .and_then(|b58| bs58::decode(b58).into_vec().ok())
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .map(Signature)
        .ok_or_else(|| VcError {
            field: "proof.proofValue".into(),
            message: "not a multibase (z, base58btc) Ed25519 signature of 64 bytes".into(),
        })?;
    let mut document = unsecured(document)?;
    let mut config = proof.clone();
    config.remove("proofValue");
    if let Some(context) = config.get("@context") {
        // The document's context must start with the proof's, in order.
        let listed = |v: &Value| match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let theirs = listed(context);
        let ours = document.get("@context").map(listed).unwrap_or_default();
        if !ours.starts_with(&theirs) {
            return err(
                "proof.@context",
                "the document's @context does not start with the proof's",
            );
        }
        document.insert("@context".into(), context.clone());
    }
    let key = key_of(&method)?;
    key.verify_raw(&hash_data(&Value::Object(config), &document)?, &signature)
        .or_else(|_| {
            err(
                "proof.proofValue",
                format!("the signature does not verify with the key of {method}"),
            )
        })?;
    Ok(CheckedProof {
        verification_method: method,
        purpose,
        created,
        challenge: proof_text(&proof, "challenge")?,
        domain: proof_text(&proof, "domain")?,
    })
}

/// Decodes a multikey `publicKeyMultibase` of an Ed25519 key (`z`, base58btc, multicodec
/// `0xed01`).
pub fn multikey(s: &str) -> Option<PublicKey> {
    let bytes = bs58::decode(s.strip_prefix('z')?).into_vec().ok()?;
    let key = bytes.strip_prefix(&[0xed, 0x01])?;
    Some(PublicKey(key.try_into().ok()?))
}

/// The key of verification method `method` in a W3C DID document, provided the document
/// lists it under `relationship` (`assertionMethod`, `authentication`).
pub fn key_in(
    did_document: &Value,
    method: &str,
    relationship: &str,
) -> Result<PublicKey, VcError> {
    let field = "proof.verificationMethod";
    let did = did_document["id"].as_str().unwrap_or_default();
    let refs = did_document[relationship]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let relative = method.strip_prefix(did).filter(|r| r.starts_with('#'));
    let listed = refs.iter().any(|r| {
        r.as_str()
            .is_some_and(|r| r == method || Some(r) == relative)
    });
    if !listed {
        return err(
            field,
            format!("{method} is not an {relationship} key of the DID document of {did}"),
        );
    }
    let entry = did_document["verificationMethod"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| {
            m["id"]
                .as_str()
                .is_some_and(|id| id == method || Some(id) == relative)
        });
    let Some(entry) = entry else {
        return err(field, format!("the DID document of {did} has no {method}"));
    };
    entry["publicKeyMultibase"]
        .as_str()
        .and_then(multikey)
        .ok_or_else(|| VcError {
            field: field.into(),
            message: format!("{method} is not an Ed25519 multikey"),
        })
}

/// The kind of a credential as its document names it (`resident`, `sensor_operator`, …),
/// the same name the node's API uses.
pub fn kind_name(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Resident => "resident",
        CredentialKind::SensorOperator => "sensor_operator",
        CredentialKind::Auditor => "auditor",
        CredentialKind::BudgetOffice => "budget_office",
    }
}

/// The document type of a kind, beside `VerifiableCredential`.
pub fn kind_type(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Resident => "ActaResidentCredential",
        CredentialKind::SensorOperator => "ActaSensorOperatorCredential",
        CredentialKind::Auditor => "ActaAuditorCredential",
        CredentialKind::BudgetOffice => "ActaBudgetOfficeCredential",
    }
}

/// What an Acta credential claims: the fields its anchored record holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub issuer: Did,
    pub subject: Did,
    pub kind: CredentialKind,
    pub district: Option<String>,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
    /// The chain whose ledger keeps the credential's status.
    pub chain: String,
}

/// The unsecured credential document of `claims`, identified by `urn` (an `urn:uuid:`).
/// Times are to the second: an issuer rounds its record's times to match.
pub fn credential(claims: &Claims, urn: &str) -> Value {
    let mut subject = json!({
        "id": claims.subject.to_string(),
        "kind": kind_name(claims.kind),
    });
    if let Some(d) = &claims.district {
        subject["district"] = json!(d);
    }
    json!({
        "@context": [CONTEXT_V2],
        "id": urn,
        "type": ["VerifiableCredential", kind_type(claims.kind)],
        "issuer": claims.issuer.to_string(),
        "validFrom": claims.valid_from.rfc3339(),
        "validUntil": claims.valid_until.rfc3339(),
        "credentialSubject": subject,
        "credentialStatus": { "type": STATUS_TYPE, "chain": claims.chain },
    })
}

fn text<'a>(v: &'a Value, field: &str) -> Result<&'a str, VcError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Null => err(field, "missing"),
        _ => err(field, "not a string"),
    }
}

fn did_at(v: &Value, field: &str) -> Result<Did, VcError> {
    let s = text(v, field)?;
    Did::parse(s).or_else(|e| err(field, format!("{s:?} is not an Acta DID: {e}")))
}

/// An XML Schema date-time with a time zone, to the second, as VC 2.0 writes `validFrom`.
fn time_at(v: &Value, field: &str) -> Result<Timestamp, VcError> {
    let s = text(v, field)?;
    if !s.contains('T') || !(s.ends_with('Z') || s.rfind(['+', '-']).is_some_and(|i| i > 10)) {
        return err(field, format!("{s:?} is not a date-time with a time zone"));
    }
    Timestamp::parse(s).or_else(|e| err(field, e))
}

/// Reads an Acta credential document strictly: the VC 2.0 context first, the types, an Acta
/// DID as issuer and subject, a known kind, date-times, and the ledger status.
pub fn claims(document: &Value) -> Result<Claims, VcError> {
    if !document.is_object() {
        return err("(document)", "not a JSON object");
    }
    if document["@context"].get(0).and_then(Value::as_str) != Some(CONTEXT_V2) {
        return err("@context", format!("does not start with {CONTEXT_V2}"));
    }
    let types: Vec<&str> = document["type"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !types.contains(&"VerifiableCredential") {
        return err("type", "does not include VerifiableCredential");
    }
    text(&document["id"], "id")?;
    let issuer = did_at(&document["issuer"], "issuer")?;
    let subject = &document["credentialSubject"];
    let kind_text = text(&subject["kind"], "credentialSubject.kind")?;
    let kind = CredentialKind::ALL
        .into_iter()
        .find(|k| kind_name(*k) == kind_text)
        .ok_or_else(|| VcError {
            field: "credentialSubject.kind".into(),
            message: format!("{kind_text:?} is not a credential kind"),
        })?;
    if !types.contains(&kind_type(kind)) {
        return err("type", format!("does not include {}", kind_type(kind)));
    }
    let district = match &subject["district"] {
        Value::Null => None,
        v => Some(text(v, "credentialSubject.district")?.to_string()),
    };
    let status = &document["credentialStatus"];
    let status_type = text(&status["type"], "credentialStatus.type")?;
    if status_type != STATUS_TYPE {
        return err(
            "credentialStatus.type",
            format!("{status_type:?}, not {STATUS_TYPE:?}"),
        );
    }
    Ok(Claims {
        issuer,
        subject: did_at(&subject["id"], "credentialSubject.id")?,
        kind,
        district,
        valid_from: time_at(&document["validFrom"], "validFrom")?,
        valid_until: time_at(&document["validUntil"], "validUntil")?,
        chain: text(&status["chain"], "credentialStatus.chain")?.to_string(),
    })
}

/// Checks each claim against the anchored record (and the chain it was read from), naming
/// the first field that differs.
pub fn compare(claims: &Claims, record: &CredentialRecord, chain: &ChainId) -> Result<(), VcError> {
    let differs = |field: &str, shown: String, anchored: String| {
        err(
            field,
            format!("the document says {shown}, the ledger's record {anchored}"),
        )
    };
    if claims.chain != chain.as_str() {
        return differs(
            "credentialStatus.chain",
            claims.chain.clone(),
            chain.to_string(),
        );
    }
    if claims.issuer != record.issuer {
        return differs(
            "issuer",
            claims.issuer.to_string(),
            record.issuer.to_string(),
        );
    }
    if claims.subject != record.subject {
        return differs(
            "credentialSubject.id",
            claims.subject.to_string(),
            record.subject.to_string(),
        );
    }
    if claims.kind != record.kind {
        return differs(
            "credentialSubject.kind",
            kind_name(claims.kind).into(),
            kind_name(record.kind).into(),
        );
    }
    let anchored = record.district.as_ref().map(|d| d.as_str().to_string());
    if claims.district != anchored {
        return differs(
            "credentialSubject.district",
            format!("{:?}", claims.district),
            format!("{anchored:?}"),
        );
    }
    if claims.valid_from != record.valid_from {
        return differs(
            "validFrom",
            claims.valid_from.rfc3339(),
            format!(
                "{} ({} ms)",
                record.valid_from.rfc3339(),
                record.valid_from.0
            ),
        );
    }
    if claims.valid_until != record.valid_until {
        return differs(
            "validUntil",
            claims.valid_until.rfc3339(),
            format!(
                "{} ({} ms)",
                record.valid_until.rfc3339(),
                record.valid_until.0
            ),
        );
    }
    Ok(())
}

/// An unsecured verifiable presentation of `credentials` by `holder`, with the ledger's
/// answers (read with their proof bundles) that let a verifier without a node check them.
pub fn presentation(holder: &Did, credentials: Vec<Value>, ledger: Value) -> Value {
    json!({
        "@context": [CONTEXT_V2],
        "type": ["VerifiablePresentation"],
        "holder": holder.to_string(),
        "verifiableCredential": credentials,
        "actaLedgerProofs": ledger,
    })
}
