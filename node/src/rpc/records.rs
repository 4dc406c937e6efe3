//! Record routes: DIDs (as W3C DID documents), credentials, issuers, the council and its
//! proposals, sensor devices and their attestations, budget rounds, and raw state values.
//! Each reads the state at the latest or a given height, and with `prove=true` adds a
//! proof bundle for every value it read.

use acta_contracts::{
    budget::{self, project_key, NS_NEXT, NS_PROJECT, NS_ROUND, NS_TALLY},
    credential::{self, NS_CREDENTIAL, NS_CREDENTIALS_OF},
    governance::{NS_COUNCIL, NS_GOV_NEXT, NS_GOV_PROPOSAL, NS_ISSUER},
    identity::{NS_DID, NS_DID_VERSIONS},
    params::{ParamRecord, NS_PARAM},
    sensor::{attestation_key, NS_ATTESTATION, NS_DEVICE},
    tally,
};
use acta_ledger::{
    records::{
        AttestationRecord, BudgetProject, BudgetRound, Council, CredentialKind, CredentialRecord,
        DeviceRecord, DidRecord, DidVersions, GovProposal, IssuerRecord, TallyRecord,
    },
    state::AuthenticatedState,
    Did, Hash, Height, Timestamp,
};
use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use super::{
    blocking, ok,
    read::{resolve_height, Reader},
    text, Api, ApiError, ApiResult, PageParams, ReadParams,
};

fn parse_did(s: &str) -> Result<Did, ApiError> {
    Did::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Runs `f` with a reader at the asked height, then adds the proof bundle as `proof`.
async fn read(
    api: Api,
    params: ReadParams,
    f: impl FnOnce(&mut Reader<'_>) -> Result<Value, ApiError> + Send + 'static,
) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let height = resolve_height(store, params.height)?;
        let mut reader = Reader::new(store, height, params.prove)?;
        let mut answer = f(&mut reader)?;
        let at = reader.height.0;
        let bundle = reader.bundle(&api.node.spec)?;
        if let Value::Object(m) = &mut answer {
            m.insert("height".into(), json!(at));
            if let Some(b) = bundle {
                m.insert(
                    "proof".into(),
                    serde_json::to_value(b).map_err(ApiError::internal)?,
                );
            }
        }
        ok(answer)
    })
    .await
}

/// Like [`read`] for lists: `from` (default 0) and `limit` (checked).
async fn list(
    api: Api,
    page: PageParams,
    f: impl FnOnce(&mut Reader<'_>, u64, u64) -> Result<Value, ApiError> + Send + 'static,
) -> ApiResult {
    let limit = page.limit()?;
    read(
        api,
        ReadParams {
            height: page.height,
            prove: page.prove,
        },
        move |r| f(r, page.from.unwrap_or(0), limit),
    )
    .await
}

fn missing(what: String) -> ApiError {
    ApiError::not_found(what)
}

/// Milliseconds since 1970 as an RFC 3339 UTC time (`2026-11-21T08:53:22Z`).
pub fn rfc3339(t: Timestamp) -> String {
    let secs = t.0 / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An Ed25519 public key as a multibase (`z`, base58btc) multicodec (`0xed01`) string.
fn multibase(key: &acta_ledger::PublicKey) -> String {
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(&key.0);
    format!("z{}", bs58::encode(bytes).into_string())
}

/// The W3C DID document of a record.
fn did_document(r: &DidRecord) -> Value {
    let did = r.did.to_string();
    let methods: Vec<Value> = r
        .document
        .verification_methods
        .iter()
        .map(|m| {
            json!({
                "id": format!("{did}#{}", m.id),
                "type": "Ed25519VerificationKey2020",
                "controller": did,
                "publicKeyMultibase": multibase(&m.key),
            })
        })
        .collect();
    let refs: Vec<String> = r
        .document
        .verification_methods
        .iter()
        .map(|m| format!("{did}#{}", m.id))
        .collect();
    let mut doc = json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2020/v1"
        ],
        "id": did,
        "verificationMethod": methods,
        "authentication": refs,
        "assertionMethod": refs,
        "capabilityInvocation": refs,
    });
    if !r.document.controllers.is_empty() {
        let mut controllers = vec![did.clone()];
        controllers.extend(r.document.controllers.iter().map(ToString::to_string));
        doc["controller"] = json!(controllers);
    }
    if !r.document.services.is_empty() {
        doc["service"] = r
            .document
            .services
            .iter()
            .map(|s| {
                json!({
                    "id": format!("{did}#{}", s.id),
                    "type": s.kind.as_str(),
                    "serviceEndpoint": s.endpoint.as_str(),
                })
            })
            .collect();
    }
    doc
}

/// `GET /dids/{did}`: a DID resolution result (W3C DID Resolution): the document, its
/// resolution metadata and its document metadata (created, updated, versionId, and
/// nextVersionId when resolving a past version).
pub async fn did(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, move |r| {
        let record: DidRecord = r
            .get(NS_DID, &did.0)?
            .ok_or_else(|| missing(format!("{did} is not on the ledger at height {}", r.height)))
            .map_err(|e| e.with("didResolutionMetadata", json!({ "error": "notFound" })))?;
        let mut meta = json!({
            "created": rfc3339(record.created_time),
            "updated": rfc3339(record.updated_time),
            "versionId": record.updated.0.to_string(),
            "deactivated": record.deactivated,
            "createdHeight": record.created.0,
            "updatedHeight": record.updated.0,
        });
        if let Some(h) = record.next_key_hash {
            meta["nextKeyHash"] = json!(h);
        }
        // Later versions, from the latest state (not part of the proof).
        let latest = r
            .store
            .latest_height()
            .map_err(ApiError::internal)?
            .unwrap_or(Height(0));
        if latest > r.height {
            let versions: Option<DidVersions> = r
                .store
                .get(
                    &acta_ledger::state::state_key(NS_DID_VERSIONS, &did.0),
                    latest,
                )
                .map_err(ApiError::internal)?
                .map(|b| {
                    acta_ledger::codec::decode::<DidVersions>(
                        "did versions",
                        &b,
                        acta_ledger::state::STATE_VALUE_BYTES_MAX,
                    )
                })
                .transpose()
                .map_err(ApiError::internal)?;
            if let Some(next) = versions.and_then(|v| v.0.into_iter().find(|h| *h > record.updated))
            {
                meta["nextVersionId"] = json!(next.0.to_string());
            }
        }
        Ok(json!({
            "@context": "https://w3id.org/did-resolution/v1",
            "didDocument": did_document(&record),
            "didResolutionMetadata": { "contentType": "application/did+ld+json" },
            "didDocumentMetadata": meta,
        }))
    })
    .await
}

/// A credential's standing at the reader's height: reads (and so proves) the DID records of
/// its subject and issuer as well, since a deactivated DID ends the credential's worth.
fn credential_status(
    r: &mut Reader<'_>,
    c: &CredentialRecord,
    time: Timestamp,
) -> Result<&'static str, ApiError> {
    let subject: Option<DidRecord> = r.get(NS_DID, &c.subject.0)?;
    let issuer: Option<DidRecord> = r.get(NS_DID, &c.issuer.0)?;
    Ok(credential::status(c, subject.as_ref(), issuer.as_ref(), time).as_str())
}

/// The time of the block at the reader's height (the genesis time at 0).
fn time_at(r: &Reader<'_>, api_genesis: Timestamp) -> Result<Timestamp, ApiError> {
    if r.height == Height(0) {
        return Ok(api_genesis);
    }
    Ok(r.store
        .block(r.height)
        .map_err(ApiError::internal)?
        .map_or(api_genesis, |b| b.header.time))
}

/// `GET /credentials/{id}`: the credential, its status at the height's block time
/// (`valid`, `suspended`, `revoked`, `expired`, `not_yet_valid`, `subject_deactivated` or
/// `issuer_deactivated`; see `acta_contracts::credential::status`) and its issuer's record.
pub async fn credential(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let id = Hash::from_hex(&id)
        .map_err(|e| ApiError::bad_request(format!("{id:?} is not a credential id: {e}")))?;
    let genesis = api.node.spec.genesis_time;
    read(api, params, move |r| {
        let c: CredentialRecord = r
            .get(NS_CREDENTIAL, &id.0)?
            .ok_or_else(|| missing(format!("no credential {id} at height {}", r.height)))?;
        let issuer: Option<IssuerRecord> = r.get(NS_ISSUER, &c.issuer.0)?;
        let time = time_at(r, genesis)?;
        let issuer_ok = issuer
            .as_ref()
            .is_some_and(|i| i.revoked.is_none() && i.kinds.contains(&c.kind));
        Ok(json!({
            "credential": c,
            "status": credential_status(r, &c, time)?,
            "issuer": issuer,
            "issuer_registered": issuer_ok,
            "checked_at": rfc3339(time),
        }))
    })
    .await
}

const KINDS: [CredentialKind; 4] = [
    CredentialKind::Resident,
    CredentialKind::SensorOperator,
    CredentialKind::Auditor,
    CredentialKind::BudgetOffice,
];

/// `GET /dids/{did}/credentials`: the credentials issued to a DID, with their status.
pub async fn did_credentials(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    let genesis = api.node.spec.genesis_time;
    read(api, params, move |r| {
        let time = time_at(r, genesis)?;
        let mut out = Vec::new();
        for kind in KINDS {
            let ids: Vec<Hash> = r
                .get(NS_CREDENTIALS_OF, &credential::index_key(&did, kind))?
                .unwrap_or_default();
            for id in ids {
                if let Some(c) = r.get::<CredentialRecord>(NS_CREDENTIAL, &id.0)? {
                    let status = credential_status(r, &c, time)?;
                    out.push(json!({ "credential": c, "status": status }));
                }
            }
        }
        Ok(json!({ "did": did, "credentials": out }))
    })
    .await
}

/// `GET /issuers/{did}`: an issuer's registration.
pub async fn issuer(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, move |r| {
        let i: IssuerRecord = r
            .get(NS_ISSUER, &did.0)?
            .ok_or_else(|| missing(format!("{did} is not an issuer at height {}", r.height)))?;
        Ok(json!({ "issuer": i }))
    })
    .await
}

/// `GET /council`: the members and threshold, and how many proposals were made.
pub async fn council(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    read(api, params, |r| {
        let c: Council = r
            .get(NS_COUNCIL, b"council")?
            .ok_or_else(|| ApiError::internal("no council in the state"))?;
        let proposals: u64 = r.get(NS_GOV_NEXT, b"next")?.unwrap_or(0);
        Ok(json!({ "council": c, "proposals": proposals }))
    })
    .await
}

/// `GET /council/proposals`: proposals `from` (default 0), at most `limit`.
pub async fn council_proposals(
    State(api): State<Api>,
    Query(page): Query<PageParams>,
) -> ApiResult {
    list(api, page, |r, from, limit| {
        let next: u64 = r.get(NS_GOV_NEXT, b"next")?.unwrap_or(0);
        let mut out = Vec::new();
        for id in from..from.saturating_add(limit).min(next) {
            if let Some(p) = r.get::<GovProposal>(NS_GOV_PROPOSAL, &id.to_be_bytes())? {
                out.push(proposal_json(&p));
            }
        }
        Ok(json!({ "proposals": out, "next": next }))
    })
    .await
}

/// `GET /council/proposals/{id}`.
pub async fn council_proposal(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, move |r| {
        let p: GovProposal = r
            .get(NS_GOV_PROPOSAL, &id.to_be_bytes())?
            .ok_or_else(|| missing(format!("no council proposal {id} at height {}", r.height)))?;
        Ok(json!({ "proposal": proposal_json(&p) }))
    })
    .await
}

/// A council proposal with the hash of its action, which an approval must name.
fn proposal_json(p: &GovProposal) -> Value {
    let mut v = json!(p);
    v["action_hash"] = json!(p.action.hash());
    v
}

/// `GET /params`: every registered chain parameter with its unit, range, default and
/// meaning, its value at the height, and the height at which it was set (`null` when it
/// has its default).
pub async fn params(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    read(api, params, |r| {
        let mut out = Vec::new();
        for spec in acta_contracts::params::REGISTRY {
            let record: Option<ParamRecord> = r.get(NS_PARAM, spec.name.as_bytes())?;
            out.push(json!({
                "name": spec.name,
                "value": record.map_or(spec.default, |p| p.value),
                "set_at": record.map(|p| p.set_at),
                "unit": spec.unit,
                "min": spec.min,
                "max": spec.max,
                "default": spec.default,
                "meaning": spec.meaning,
            }));
        }
        Ok(json!({ "params": out }))
    })
    .await
}

/// `GET /devices/{did}`: a registered sensor device.
pub async fn device(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, move |r| {
        let d = get_device(r, &did)?;
        Ok(json!({ "device": d }))
    })
    .await
}

fn get_device(r: &mut Reader<'_>, did: &Did) -> Result<DeviceRecord, ApiError> {
    r.get(NS_DEVICE, &did.0)?.ok_or_else(|| {
        missing(format!(
            "{did} is not a registered device at height {}",
            r.height
        ))
    })
}

/// `GET /devices/{did}/attestations`: batches from sequence `from` (default: the latest
/// `limit`), oldest first.
pub async fn attestations(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    let from = page.from;
    list(api, page, move |r, _, limit| {
        let d = get_device(r, &did)?;
        let start = from.unwrap_or(d.next_sequence.saturating_sub(limit));
        let mut out = Vec::new();
        for seq in start..start.saturating_add(limit).min(d.next_sequence) {
            if let Some(a) =
                r.get::<AttestationRecord>(NS_ATTESTATION, &attestation_key(&did, seq))?
            {
                out.push(a);
            }
        }
        Ok(json!({ "device": did, "next_sequence": d.next_sequence, "attestations": out }))
    })
    .await
}

/// `GET /devices/{did}/attestations/{sequence}`: one batch, with the device's record.
pub async fn attestation(
    State(api): State<Api>,
    Path((did, sequence)): Path<(String, u64)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, move |r| {
        let a: AttestationRecord = r
            .get(NS_ATTESTATION, &attestation_key(&did, sequence))?
            .ok_or_else(|| {
                missing(format!(
                    "no batch {sequence} of {did} at height {}",
                    r.height
                ))
            })?;
        let d: Option<DeviceRecord> = r.get(NS_DEVICE, &did.0)?;
        Ok(json!({ "attestation": a, "device": d }))
    })
    .await
}

/// The phase of a round for the block after `height`.
fn phase(round: &BudgetRound, height: Height) -> &'static str {
    let next = height.next();
    let s = &round.spec;
    if round.tallied || next > s.closes_at {
        "closed"
    } else if next < s.proposals_from {
        "announced"
    } else if next < s.voting_from {
        "proposals"
    } else if next < s.closes_at {
        "voting"
    } else {
        "tallying"
    }
}

fn round_summary(r: &BudgetRound, height: Height) -> Value {
    json!({ "round": r, "phase": phase(r, height) })
}

/// `GET /budget/rounds`: rounds `from` (default 0), at most `limit`.
pub async fn rounds(State(api): State<Api>, Query(page): Query<PageParams>) -> ApiResult {
    list(api, page, |r, from, limit| {
        let next: u64 = r.get(NS_NEXT, b"next")?.unwrap_or(0);
        let mut out = Vec::new();
        for id in from..from.saturating_add(limit).min(next) {
            if let Some(round) = r.get::<BudgetRound>(NS_ROUND, &id.to_be_bytes())? {
                out.push(round_summary(&round, r.height));
            }
        }
        Ok(json!({ "rounds": out, "next": next }))
    })
    .await
}

fn get_round(r: &mut Reader<'_>, id: u64) -> Result<BudgetRound, ApiError> {
    r.get(NS_ROUND, &id.to_be_bytes())?
        .ok_or_else(|| missing(format!("no budget round {id} at height {}", r.height)))
}

/// `GET /budget/rounds/{id}`: the round, its phase, and its result once tallied.
pub async fn round(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, move |r| {
        let round = get_round(r, id)?;
        let mut answer = round_summary(&round, r.height);
        if round.tallied {
            let t: Option<TallyRecord> = r.get(NS_TALLY, &id.to_be_bytes())?;
            answer["result"] = json!(t);
        }
        Ok(answer)
    })
    .await
}

fn projects(r: &mut Reader<'_>, round: &BudgetRound) -> Result<Vec<BudgetProject>, ApiError> {
    let mut out = Vec::new();
    for i in 0..round.projects {
        if let Some(p) = r.get(NS_PROJECT, &project_key(round.id, i))? {
            out.push(p);
        }
    }
    Ok(out)
}

/// `GET /budget/rounds/{id}/proposals`: the round's projects, in index order.
pub async fn proposals(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, move |r| {
        let round = get_round(r, id)?;
        let list = projects(r, &round)?;
        Ok(json!({ "round": id, "projects": list }))
    })
    .await
}

/// `GET /budget/rounds/{id}/result`: the stored tally with the selected projects' titles.
pub async fn result(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, move |r| {
        let round = get_round(r, id)?;
        let t: TallyRecord = r.get(NS_TALLY, &id.to_be_bytes())?.ok_or_else(|| {
            ApiError::not_found(format!(
                "round {id} is {} at height {}: no result yet (it closes at {})",
                phase(&round, r.height),
                r.height,
                round.spec.closes_at
            ))
        })?;
        let list = projects(r, &round)?;
        let selected: Vec<Value> = t
            .selected
            .iter()
            .filter_map(|i| list.get(*i as usize))
            .map(|p| json!({ "index": p.index, "title": p.title.as_str(), "cost": p.cost }))
            .collect();
        Ok(json!({ "result": t, "selected": selected }))
    })
    .await
}

/// `GET /budget/rounds/{id}/ballots.pb`: the round's projects and ballots as a pabulib
/// file, which `acta budget tally` replays to the stored result.
pub async fn ballots_pb(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    if params.prove {
        return Err(ApiError::bad_request(
            "a .pb export has no proof; prove the round's result with /budget/rounds/{id}/result?prove=true",
        ));
    }
    let permit = api
        .limits
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("other .pb exports are being written; try again shortly"))?;
    blocking(move || {
        let _permit = permit;
        let store = &api.node.store;
        let height = resolve_height(store, params.height)?;
        let (_, election, _) = budget::read_round(store.as_ref(), id, height)
            .map_err(ApiError::internal)?
            .ok_or_else(|| missing(format!("no budget round {id} at height {height}")))?;
        Ok(text(
            "text/plain; charset=utf-8",
            tally::pb::write(&election),
        ))
    })
    .await
}

/// The longest namespace name accepted (the modules' names are far shorter).
const NAMESPACE_MAX: usize = 64;

/// `GET /state/{namespace}/{key}`: a raw state value (hex), for values no other route
/// shows.
pub async fn state_value(
    State(api): State<Api>,
    Path((namespace, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    if namespace.is_empty()
        || namespace.len() > NAMESPACE_MAX
        || !namespace
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(ApiError::bad_request(format!(
            "namespace {namespace:?} is not 1 to {NAMESPACE_MAX} characters of a-z 0-9 _"
        )));
    }
    let key =
        hex::decode(&key).map_err(|e| ApiError::bad_request(format!("key is not hex: {e}")))?;
    read(api, params, move |r| {
        let value = r.raw(&namespace, &key)?;
        Ok(json!({
            "namespace": namespace,
            "key": hex::encode(&key),
            "value": value.map(hex::encode),
        }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Timestamp(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp(1_795_251_202_999)),
            "2026-11-21T08:53:22Z"
        );
    }

    #[test]
    fn keys_are_multibase_ed25519() {
        // The did:key test vector of the W3C CCG: 32 bytes of a known key.
        let key = acta_ledger::PublicKey(
            hex::decode("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            multibase(&key),
            "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
        );
    }
}
