//! Identity: DIDs, their documents, key rotation with pre-commitment, deactivation, and
//! W3C DID Core resolution at any height.
//!
//! State: namespace `did` (key: the DID's 16 bytes) holds its [`DidRecord`]; `did_versions`
//! holds the heights at which it changed. Reading the record at a past height gives the DID
//! as it was then, because the state tree keeps every version.

use acta_ledger::{
    crypto::key_hash,
    records::{DidDocument, DidRecord, DidVersions, VerificationMethod},
    state::AuthenticatedState,
    tx::IdentityCall,
    types::Text,
    Did, Height, PublicKey,
};
use serde_json::{json, Value};

use crate::{
    error::{CallError, ExecError, TxError},
    executor::{BlockContext, Event},
    time::rfc3339,
    view::StateView,
};

pub const NS_DID: &str = "did";
pub const NS_DID_VERSIONS: &str = "did_versions";

pub(crate) fn execute(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    call: &IdentityCall,
) -> Result<Vec<Event>, CallError> {
    match call {
        IdentityCall::CreateDid { next_key_hash } => {
            let did = Did::from_initial_key(signer);
            if view.get::<DidRecord>(NS_DID, &did.0)?.is_some() {
                return Err(TxError::AlreadyExists(did.to_string()).into());
            }
            let document = DidDocument {
                verification_methods: vec![VerificationMethod {
                    id: Text::new("key-1").expect("short"),
                    key: *signer,
                }],
                controllers: vec![],
                services: vec![],
            };
            let record = DidRecord {
                did,
                document,
                next_key_hash: *next_key_hash,
                created: ctx.height,
                created_time: ctx.time,
                updated: ctx.height,
                updated_time: ctx.time,
                deactivated: false,
            };
            save(view, ctx, &record)?;
            Ok(vec![Event::new("did_created", &[("did", did.to_string())])])
        }
        IdentityCall::UpdateDocument { did, document } => {
            let mut record = live(view, did)?;
            authorize(view, &record, signer)?;
            document.check(did).map_err(TxError::Invalid)?;
            for c in &document.controllers {
                match view.get::<DidRecord>(NS_DID, &c.0)? {
                    None => {
                        return Err(
                            TxError::Invalid(format!("controller {c} does not exist")).into()
                        )
                    }
                    Some(r) if r.deactivated => {
                        return Err(
                            TxError::Invalid(format!("controller {c} is deactivated")).into()
                        )
                    }
                    Some(_) => {}
                }
            }
            record.document = document.clone();
            save(view, ctx, &record)?;
            Ok(vec![Event::new("did_updated", &[("did", did.to_string())])])
        }
        IdentityCall::RotateKey {
            did,
            new_key,
            next_key_hash,
        } => {
            let mut record = live(view, did)?;
            // Only the key itself rotates itself; controllers update the document instead.
            if !record.has_key(signer) {
                return Err(
                    TxError::Unauthorized(format!("{signer} is not a key of {did}")).into(),
                );
            }
            new_key
                .validate()
                .map_err(|e| TxError::Invalid(e.to_string()))?;
            if record.has_key(new_key) {
                return Err(
                    TxError::Invalid(format!("{new_key} is already a key of {did}")).into(),
                );
            }
            if let Some(committed) = record.next_key_hash {
                if key_hash(new_key) != committed {
                    return Err(TxError::Unauthorized(format!(
                        "{new_key} is not the key pre-committed as {committed}"
                    ))
                    .into());
                }
            }
            for m in &mut record.document.verification_methods {
                if m.key == *signer {
                    m.key = *new_key;
                }
            }
            record.next_key_hash = *next_key_hash;
            save(view, ctx, &record)?;
            Ok(vec![Event::new(
                "did_key_rotated",
                &[("did", did.to_string()), ("key", new_key.to_hex())],
            )])
        }
        IdentityCall::Deactivate { did } => {
            let mut record = live(view, did)?;
            authorize(view, &record, signer)?;
            record.deactivated = true;
            save(view, ctx, &record)?;
            Ok(vec![Event::new(
                "did_deactivated",
                &[("did", did.to_string())],
            )])
        }
    }
}

/// The record of a DID that exists and is not deactivated.
/// The record of `did`, which must exist and not be deactivated.
pub(crate) fn live(view: &StateView<'_>, did: &Did) -> Result<DidRecord, CallError> {
    match view.get::<DidRecord>(NS_DID, &did.0)? {
        None => Err(TxError::NotFound(did.to_string()).into()),
        Some(r) if r.deactivated => Err(TxError::Deactivated { did: *did }.into()),
        Some(r) => Ok(r),
    }
}

/// The record of the live `did`, checking that `signer` is one of its own keys: how every
/// module acts in the name of a DID.
pub(crate) fn signed_by(
    view: &StateView<'_>,
    did: &Did,
    signer: &PublicKey,
) -> Result<DidRecord, CallError> {
    let record = live(view, did)?;
    if !record.has_key(signer) {
        return Err(TxError::Unauthorized(format!("{signer} is not a key of {did}")).into());
    }
    Ok(record)
}

/// Whether `signer` controls `record`: one of its keys, or a key of one of its (live)
/// controllers.
fn authorize(
    view: &StateView<'_>,
    record: &DidRecord,
    signer: &PublicKey,
) -> Result<(), CallError> {
    if record.has_key(signer) {
        return Ok(());
    }
    for c in &record.document.controllers {
        if let Some(controller) = view.get::<DidRecord>(NS_DID, &c.0)? {
            if !controller.deactivated && controller.has_key(signer) {
                return Ok(());
            }
        }
    }
    Err(TxError::Unauthorized(format!(
        "{signer} controls neither {} nor its controllers",
        record.did
    ))
    .into())
}

/// Writes the record as changed at this height, and notes the version.
fn save(view: &mut StateView<'_>, ctx: &BlockContext, record: &DidRecord) -> Result<(), CallError> {
    let mut record = record.clone();
    record.updated = ctx.height;
    record.updated_time = ctx.time;
    let mut versions = view
        .get::<DidVersions>(NS_DID_VERSIONS, &record.did.0)?
        .unwrap_or_default();
    if versions.0.last() != Some(&ctx.height) {
        if versions.0.len() >= DidVersions::MAX {
            return Err(TxError::Limit(format!(
                "{} changed {} times",
                record.did,
                DidVersions::MAX
            ))
            .into());
        }
        versions.0.push(ctx.height);
    }
    view.put(NS_DID, &record.did.0, &record);
    view.put(NS_DID_VERSIONS, &record.did.0, &versions);
    Ok(())
}

/// The W3C multibase form of an Ed25519 key: `z` and base58btc of `0xed 0x01 || key`.
pub fn public_key_multibase(key: &PublicKey) -> String {
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(&key.0);
    format!("z{}", bs58::encode(bytes).into_string())
}

/// Resolves `did` as it was after `height`, with `latest` the chain's latest height, as a W3C
/// DID Resolution result: `didDocument`, `didResolutionMetadata` (with `error` `invalidDid` or
/// `notFound`) and `didDocumentMetadata` (`created`, `updated`, `deactivated`, `versionId`,
/// `nextVersionId`).
pub fn resolve(
    state: &dyn AuthenticatedState,
    did: &str,
    height: Height,
    latest: Height,
) -> Result<Value, ExecError> {
    let failure = |error: &str| {
        json!({
            "@context": "https://w3id.org/did-resolution/v1",
            "didDocument": null,
            "didResolutionMetadata": { "error": error },
            "didDocumentMetadata": {},
        })
    };
    let Ok(parsed) = Did::parse(did) else {
        return Ok(failure("invalidDid"));
    };
    let Some(record) = StateView::new(state, height).get::<DidRecord>(NS_DID, &parsed.0)? else {
        return Ok(failure("notFound"));
    };
    let versions = StateView::new(state, latest)
        .get::<DidVersions>(NS_DID_VERSIONS, &parsed.0)?
        .unwrap_or_default();
    let next_version = versions.0.iter().find(|h| **h > record.updated);
    let id = parsed.to_string();
    let methods: Vec<Value> = record
        .document
        .verification_methods
        .iter()
        .map(|m| {
            json!({
                "id": format!("{id}#{}", m.id),
                "type": "Ed25519VerificationKey2020",
                "controller": id,
                "publicKeyMultibase": public_key_multibase(&m.key),
            })
        })
        .collect();
    let refs: Vec<String> = record
        .document
        .verification_methods
        .iter()
        .map(|m| format!("{id}#{}", m.id))
        .collect();
    let mut controllers = vec![id.clone()];
    controllers.extend(record.document.controllers.iter().map(|c| c.to_string()));
    let services: Vec<Value> = record
        .document
        .services
        .iter()
        .map(|s| json!({ "id": format!("{id}#{}", s.id), "type": s.kind.as_str(), "serviceEndpoint": s.endpoint.as_str() }))
        .collect();
    let mut document = json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/ed25519-2020/v1"],
        "id": id,
        "controller": controllers,
        "verificationMethod": methods,
        "authentication": refs,
        "assertionMethod": refs,
    });
    if !services.is_empty() {
        document["service"] = Value::Array(services);
    }
    let mut metadata = json!({
        "created": rfc3339(record.created_time),
        "updated": rfc3339(record.updated_time),
        "deactivated": record.deactivated,
        "versionId": record.updated.0.to_string(),
    });
    if let Some(next) = next_version {
        metadata["nextVersionId"] = Value::String(next.0.to_string());
    }
    Ok(json!({
        "@context": "https://w3id.org/did-resolution/v1",
        "didDocument": document,
        "didResolutionMetadata": { "contentType": "application/did+ld+json" },
        "didDocumentMetadata": metadata,
    }))
}
