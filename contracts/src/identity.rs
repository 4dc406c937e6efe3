//! Identity: DIDs, their documents, key rotation with pre-commitment, deactivation, and
//! W3C DID Core resolution at any height.
//!
//! State: namespace `did` (key: the DID's 16 bytes) holds its [`DidRecord`]; `did_next`
//! links each version to the next (key: the DID and the version's height). Reading the record at a past height gives the DID
//! as it was then, because the state tree keeps every version.

use std::sync::Arc;

use acta_ledger::{
    crypto::key_hash,
    records::{DidDocument, DidRecord, VerificationMethod},
    state::AuthenticatedState,
    tx::IdentityCall,
    types::Text,
    Did, Height, PublicKey,
};
use serde_json::{json, Value};

use crate::{
    answer::{self, AnswerError, Query, StateAt},
    error::{CallError, ExecError, TxError},
    executor::{BlockContext, Event},
    view::StateView,
};

pub const NS_DID: &str = "did";
/// `did ‖ height` → the height of the next version of the DID after its version made at
/// `height`.
pub const NS_DID_NEXT: &str = "did_next";

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

/// The record of `did`, which must exist and not be deactivated, shared (see
/// [`StateView::get_shared`]) for a caller that only reads it.
pub(crate) fn live_shared(view: &StateView<'_>, did: &Did) -> Result<Arc<DidRecord>, CallError> {
    match view.get_shared::<DidRecord>(NS_DID, &did.0)? {
        None => Err(TxError::NotFound(did.to_string()).into()),
        Some(r) if r.deactivated => Err(TxError::Deactivated { did: *did }.into()),
        Some(r) => Ok(r),
    }
}

/// As [`live_shared`], a copy of its own for a caller that changes it.
pub(crate) fn live(view: &StateView<'_>, did: &Did) -> Result<DidRecord, CallError> {
    live_shared(view, did).map(Arc::unwrap_or_clone)
}

/// The record of the live `did`, checking that `signer` is one of its own keys: how every
/// module acts in the name of a DID.
pub(crate) fn signed_by(
    view: &StateView<'_>,
    did: &Did,
    signer: &PublicKey,
) -> Result<Arc<DidRecord>, CallError> {
    let record = live_shared(view, did)?;
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

/// Writes the record as changed at this height, and links its previous version to this one
/// (`did_next`): one small write per change, whatever the DID's history.
pub(crate) fn save(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    record: &DidRecord,
) -> Result<(), CallError> {
    let mut record = record.clone();
    let previous = record.updated;
    if previous != ctx.height {
        view.put(NS_DID_NEXT, &next_key(&record.did, previous), &ctx.height.0);
    }
    record.updated = ctx.height;
    record.updated_time = ctx.time;
    view.put(NS_DID, &record.did.0, &record);
    Ok(())
}

/// The key under [`NS_DID_NEXT`] of the version of `did` made at `height`.
pub fn next_key(did: &Did, height: Height) -> Vec<u8> {
    let mut k = did.0.to_vec();
    k.extend_from_slice(&height.0.to_be_bytes());
    k
}

/// The height of the version of `did` that followed its version made at `version`, as the
/// state after `latest` knows it (`None`: that version is still the newest).
pub fn next_version(
    state: &dyn AuthenticatedState,
    did: &Did,
    version: Height,
    latest: Height,
) -> Result<Option<Height>, ExecError> {
    Ok(StateView::new(state, latest)
        .get::<u64>(NS_DID_NEXT, &next_key(did, version))?
        .map(Height))
}

pub use crate::answer::multibase as public_key_multibase;

/// Resolves `did` as it was after `height`, with `latest` the chain's latest height, as a W3C
/// DID Resolution result: `didDocument`, `didResolutionMetadata` (with `error` `invalidDid` or
/// `notFound`) and `didDocumentMetadata` (`created`, `updated`, `deactivated`, `versionId`,
/// and `nextVersionId` for a past version). The document is the one the node's API serves
/// (`crate::answer`).
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
    // A DID resolution reads no block time.
    let mut source = StateAt::new(state, height, acta_ledger::Timestamp(0));
    let mut v = match answer::answer(&Query::Did(parsed), &mut source) {
        Ok(v) => v,
        Err(AnswerError::NotFound { .. }) => return Ok(failure("notFound")),
        Err(e) => {
            return Err(ExecError::Corrupt {
                what: NS_DID,
                reason: e.to_string(),
            })
        }
    };
    let updated = Height(
        v["didDocumentMetadata"]["updatedHeight"]
            .as_u64()
            .unwrap_or(height.0),
    );
    if let Some(next) = next_version(state, &parsed, updated, latest)? {
        v["didDocumentMetadata"]["nextVersionId"] = json!(next.0.to_string());
    }
    Ok(v)
}
