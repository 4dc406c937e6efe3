//! Record routes: DIDs (as W3C DID documents), credentials, issuers, the council and its
//! proposals, sensor devices and their attestations, budget rounds, and raw state values.
//! Each reads the state at the latest or a given height, and with `prove=true` adds a
//! proof bundle for every value it read.

use acta_contracts::{
    answer::{self, AnswerError, Query as AnswerQuery, Source},
    budget, identity, tally,
};
use acta_ledger::{codec, merkle, Did, Hash, Height, Timestamp};
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
};
use serde_json::{json, Value};

use super::{
    blocking, ok,
    openapi::{Errors, Proven},
    read::{resolve_height, BallotProofs, Reader},
    text, Api, ApiError, ApiResult, PageParams, ReadParams,
};

fn missing(what: String) -> ApiError {
    ApiError::not_found(what)
}

fn parse_did(s: &str) -> Result<Did, ApiError> {
    Did::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> ApiError {
        match e {
            AnswerError::NotFound { message, extra } => {
                let err = ApiError::not_found(message);
                match extra {
                    Some((k, v)) => err.with(k, v),
                    None => err,
                }
            }
            AnswerError::BadRequest(m) => ApiError::bad_request(m),
            e @ (AnswerError::NotCovered { .. } | AnswerError::Internal(_)) => {
                ApiError::internal(e)
            }
        }
    }
}

impl Source for Reader<'_> {
    fn height(&self) -> Height {
        self.height
    }

    fn time(&self) -> Timestamp {
        self.time
    }

    fn raw(&mut self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, AnswerError> {
        Reader::raw(self, namespace, key).map_err(|e| AnswerError::Internal(e.to_string()))
    }
}

/// Adds to an answer fields that no proof covers (run only for unproven answers).
type Unproven = fn(&Reader<'_>, &mut Value) -> Result<(), ApiError>;
/// Sets up a reader before it answers (how it proves ballots).
type Prepare = fn(&mut Reader<'_>, &AnswerQuery) -> Result<(), ApiError>;

/// Answers `query` at the asked height (see [`acta_contracts::answer`]), with its proof
/// bundle as `proof` if asked; `extra` adds fields that are not proven (it runs only when
/// the answer is not proven).
async fn read(
    api: Api,
    params: ReadParams,
    query: AnswerQuery,
    extra: Option<Unproven>,
) -> ApiResult {
    read_with(api, params, query, extra, None).await
}

async fn read_with(
    api: Api,
    params: ReadParams,
    query: AnswerQuery,
    extra: Option<Unproven>,
    prepare: Option<Prepare>,
) -> ApiResult {
    ok(read_value(api, params, query, extra, prepare, None).await?)
}

/// [`read_with`] holding `permit` until the answer is made, not only until the request
/// ends: a client that hangs up does not free an export's place while its work goes on.
async fn read_holding(
    api: Api,
    params: ReadParams,
    query: AnswerQuery,
    prepare: Prepare,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> ApiResult {
    ok(read_value(api, params, query, None, Some(prepare), Some(permit)).await?)
}

/// The answer of [`read_with`], before it is sent.
async fn read_value(
    api: Api,
    params: ReadParams,
    query: AnswerQuery,
    extra: Option<Unproven>,
    prepare: Option<Prepare>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<Proven<Value>, ApiError> {
    if params.checkpoint.is_some() && !params.prove {
        return Err(ApiError::bad_request(
            "checkpoint= proves the header in a checkpoint's log: it needs prove=true",
        ));
    }
    blocking(move || {
        let _permit = permit;
        let store = &api.node.store;
        let height = resolve_height(store, params.height)?;
        let mut reader = Reader::new(store, &api.node.spec, height, params.prove)?;
        reader.checkpoint = params.checkpoint;
        if let (Some(prepare), true) = (prepare, params.prove) {
            prepare(&mut reader, &query)?;
        }
        let mut answer = answer::answer(&query, &mut reader)?;
        if let (Some(extra), false) = (extra, params.prove) {
            extra(&reader, &mut answer)?;
        }
        let height = reader.height;
        let proof = reader.bundle(&api.node.spec, &query)?;
        Ok(Proven {
            answer,
            height,
            proof,
        })
    })
    .await
}

fn page(page: &PageParams) -> Result<(ReadParams, u64), ApiError> {
    Ok((
        ReadParams {
            height: page.height,
            prove: page.prove,
            checkpoint: page.checkpoint,
        },
        page.limit()?,
    ))
}

/// Resolve a DID (W3C DID Resolution)
///
/// `GET /dids/{did}`: a DID resolution result (W3C DID Resolution): the document, its
/// resolution metadata and its document metadata (created, updated, versionId, and
/// nextVersionId when resolving a past version without a proof: a later state gives it).
#[utoipa::path(get, path = "/dids/{did}", tag = "identity",
    description = "The DID resolution result (`application/did-resolution`), or with `Accept: application/did+ld+json` (or `application/did+json`) the DID document alone. Errors carry the W3C result's fields beside `code` and `message`: `didDocument` null, `didResolutionMetadata.error` (`invalidDid`, `invalidDidUrl`, `notFound`) and empty `didDocumentMetadata`. A deactivated DID resolves, with `didDocumentMetadata.deactivated` true.",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), DidParams),
    responses((status = 200, description = "The resolution result, or the DID document alone.", content(
        (Proven<answer::DidResolution> = "application/did-resolution"),
        (answer::W3cDidDocument = "application/did+ld+json"),
        (answer::W3cDidDocument = "application/did+json"))), Errors))]
pub async fn did(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<DidParams>,
    headers: HeaderMap,
) -> ApiResult {
    let parsed = Did::parse(&did).map_err(|e| {
        resolution_error(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_did",
                format!("{did:?} is not an Acta DID (did:acta:<base58 of 16 bytes>): {e}"),
            ),
            "invalidDid",
        )
    })?;
    let asked = [
        params.height.is_some(),
        params.version_id.is_some(),
        params.version_time.is_some(),
    ];
    if asked.iter().filter(|a| **a).count() > 1 {
        return Err(ApiError::bad_request(
            "give at most one of height, versionId and versionTime",
        ));
    }
    let bad_url = |message: String| {
        resolution_error(
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message),
            "invalidDidUrl",
        )
    };
    let version = params
        .version_id
        .as_deref()
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                bad_url(format!(
                    "versionId {v:?} is not a version: a DID's versions are the heights of the blocks that changed it"
                ))
            })
        })
        .transpose()?;
    let height = match (&params.version_time, version) {
        (Some(t), _) => {
            let time = Timestamp::parse(t).map_err(|e| bad_url(format!("versionTime: {e}")))?;
            let store = api.node.store.clone();
            let found = blocking(move || height_at_time(&store, time))
                .await
                .map_err(not_found_resolution)?;
            Some(found.0)
        }
        (None, Some(v)) => Some(v),
        (None, None) => params.height,
    };
    let read = ReadParams {
        height,
        prove: params.prove,
        checkpoint: params.checkpoint,
    };
    let mut answer = read_value(
        api,
        read,
        AnswerQuery::Did(parsed),
        Some(next_version),
        None,
        None,
    )
    .await
    .map_err(not_found_resolution)?;
    if let Some(v) = version {
        if answer.answer["didDocumentMetadata"]["versionId"] != json!(v.to_string()) {
            return Err(resolution_error(
                ApiError::not_found(format!(
                    "{parsed} has no version {v}: its versions are the heights of the blocks that changed it (versionId, nextVersionId)"
                )),
                "notFound",
            ));
        }
    }
    // Content negotiation (W3C DID Resolution): the document alone in a DID media type, or
    // the resolution result.
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .unwrap_or("");
    let document_only = ["application/did+ld+json", "application/did+json"]
        .into_iter()
        .find(|t| accept.contains(t));
    Ok(match document_only {
        Some(t) if !params.prove => {
            let document = answer.answer["didDocument"].take();
            ([(header::CONTENT_TYPE, t)], axum::Json(document)).into_response()
        }
        _ => ([(header::CONTENT_TYPE, DID_RESOLUTION)], axum::Json(answer)).into_response(),
    })
}

/// The media type of a DID resolution result.
pub const DID_RESOLUTION: &str = "application/did-resolution";

/// `GET /dids/{did}`'s parameters: `height`, `prove`, `checkpoint` as every read, or the W3C
/// DID URL parameters `versionId` (the height of a version) and `versionTime` (RFC 3339:
/// the version in force then).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DidParams {
    /// As for every read: the height whose state is read (default: the latest).
    pub height: Option<u64>,
    /// As for every read: add a proof bundle.
    #[serde(default)]
    pub prove: bool,
    /// As for every read: prove the header in the checkpoint of this many blocks.
    pub checkpoint: Option<u64>,
    /// The version to resolve: the height of the block that made it (`versionId` and
    /// `nextVersionId` in the metadata). Not with `height` or `versionTime`.
    #[serde(rename = "versionId")]
    #[param(pattern = "^[0-9]+$")]
    pub version_id: Option<String>,
    /// Resolve the version in force at this time (RFC 3339, such as
    /// 2027-03-01T09:00:00Z): the state after the last block at or before it.
    #[serde(rename = "versionTime")]
    pub version_time: Option<String>,
}

/// An error of a DID resolution, with the W3C resolution result's fields beside `code` and
/// `message`: no document, the W3C `error`, and empty document metadata.
fn resolution_error(e: ApiError, error: &str) -> ApiError {
    e.with("@context", "https://w3id.org/did-resolution/v1")
        .with("didDocument", Value::Null)
        .with("didResolutionMetadata", json!({ "error": error }))
        .with("didDocumentMetadata", json!({}))
}

/// A 404 of a DID resolution as a W3C `notFound` result; other errors as they are.
fn not_found_resolution(e: ApiError) -> ApiError {
    if e.status == StatusCode::NOT_FOUND {
        resolution_error(e, "notFound")
    } else {
        e
    }
}

/// The height of the last block whose time is at or before `time` (0, the genesis, if the
/// first block is later), by bisecting the headers: O(log height) block reads.
fn height_at_time(store: &acta_ledger::store::Store, time: Timestamp) -> Result<Height, ApiError> {
    let latest = store
        .latest_height()
        .map_err(ApiError::internal)?
        .unwrap_or(Height(0));
    let time_of = |h: u64| -> Result<Timestamp, ApiError> {
        store
            .block(Height(h))
            .map_err(ApiError::internal)?
            .map(|b| b.header.time)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "this node keeps no block {h} to find the version in force at a time; ask a node that keeps every block"
                ))
            })
    };
    if latest.0 == 0 || time_of(1)? > time {
        return Ok(Height(0));
    }
    if time_of(latest.0)? <= time {
        return Ok(latest);
    }
    // time(lo) <= time < time(hi)
    let (mut lo, mut hi) = (1, latest.0);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if time_of(mid)? <= time {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Height(lo))
}

/// Adds `nextVersionId` to a DID resolution at a past height, from the latest state.
fn next_version(r: &Reader<'_>, answer: &mut Value) -> Result<(), ApiError> {
    let Some(id) = answer["didDocument"]["id"].as_str() else {
        return Ok(());
    };
    let did = parse_did(id)?;
    let latest = r
        .store
        .latest_height()
        .map_err(ApiError::internal)?
        .unwrap_or(Height(0));
    let updated = Height(
        answer["didDocumentMetadata"]["updatedHeight"]
            .as_u64()
            .unwrap_or(0),
    );
    if let Some(next) =
        identity::next_version(r.store, &did, updated, latest).map_err(ApiError::internal)?
    {
        answer["didDocumentMetadata"]["nextVersionId"] = json!(next.0.to_string());
    }
    Ok(())
}

/// A credential and its status
///
/// `GET /credentials/{id}`: the credential, its status at the height's block time
/// (`valid`, `suspended`, `revoked`, `expired`, `not_yet_valid`, `subject_deactivated` or
/// `issuer_deactivated`; see `acta_contracts::credential::status`) and its issuer's record.
#[utoipa::path(get, path = "/credentials/{id}", tag = "identity",
    params(("id" = Hash, Path, description = "Credential id (hex)."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::CredentialAnswer>), Errors))]
pub async fn credential(
    State(api): State<Api>,
    Path(id): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let id = Hash::from_hex(&id)
        .map_err(|e| ApiError::bad_request(format!("{id:?} is not a credential id: {e}")))?;
    read(api, params, AnswerQuery::Credential(id), None).await
}

/// The credentials issued to a DID
///
/// `GET /dids/{did}/credentials`: the credentials issued to a DID, with their status.
#[utoipa::path(get, path = "/dids/{did}/credentials", tag = "identity",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::CredentialList>), Errors))]
pub async fn did_credentials(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, AnswerQuery::DidCredentials(did), None).await
}

/// An issuer's registration
///
/// `GET /issuers/{did}`: an issuer's registration.
#[utoipa::path(get, path = "/issuers/{did}", tag = "identity",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::IssuerAnswer>), Errors))]
pub async fn issuer(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, AnswerQuery::Issuer(did), None).await
}

/// The council
///
/// `GET /council`: the members and threshold, and how many proposals were made.
#[utoipa::path(get, path = "/council", tag = "governance",
    params(ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::CouncilAnswer>), Errors))]
pub async fn council(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    read(api, params, AnswerQuery::Council, None).await
}

/// Council proposals
///
/// `GET /council/proposals`: proposals `from` (default 0), at most `limit`.
#[utoipa::path(get, path = "/council/proposals", tag = "governance",
    params(PageParams),
    responses((status = 200, description = "OK", body = Proven<answer::ProposalList>), Errors))]
pub async fn council_proposals(State(api): State<Api>, Query(p): Query<PageParams>) -> ApiResult {
    let (params, limit) = page(&p)?;
    let from = p.from.unwrap_or(0);
    read(
        api,
        params,
        AnswerQuery::CouncilProposals { from, limit },
        None,
    )
    .await
}

/// A council proposal
///
/// `GET /council/proposals/{id}`.
#[utoipa::path(get, path = "/council/proposals/{id}", tag = "governance",
    params(("id" = u64, Path, description = "Proposal id."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::ProposalAnswer>), Errors))]
pub async fn council_proposal(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, AnswerQuery::CouncilProposal(id), None).await
}

/// Chain parameters: the registry, with each value and the height it was set
///
/// `GET /params`: every registered chain parameter with its unit, range, default and
/// meaning, its value at the height, and the height at which it was set (`null` when it
/// has its default).
#[utoipa::path(get, path = "/params", tag = "governance",
    params(ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::ParamsAnswer>), Errors))]
pub async fn params(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    read(api, params, AnswerQuery::Params, None).await
}

/// A sensor device
///
/// `GET /devices/{did}`: a registered sensor device.
#[utoipa::path(get, path = "/devices/{did}", tag = "sensors",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::DeviceAnswer>), Errors))]
pub async fn device(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let did = parse_did(&did)?;
    read(api, params, AnswerQuery::Device(did), None).await
}

/// A device's attestation batches (default: the latest)
///
/// `GET /devices/{did}/attestations`: batches from sequence `from` (default: the latest
/// `limit`), oldest first.
#[utoipa::path(get, path = "/devices/{did}/attestations", tag = "sensors",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), PageParams),
    responses((status = 200, description = "OK", body = Proven<answer::AttestationList>), Errors))]
pub async fn attestations(
    State(api): State<Api>,
    Path(did): Path<String>,
    Query(p): Query<PageParams>,
) -> ApiResult {
    let device = parse_did(&did)?;
    let (params, limit) = page(&p)?;
    let q = AnswerQuery::Attestations {
        device,
        from: p.from,
        limit,
    };
    read(api, params, q, None).await
}

/// One attestation batch
///
/// `GET /devices/{did}/attestations/{sequence}`: one batch, with the device's record.
#[utoipa::path(get, path = "/devices/{did}/attestations/{sequence}", tag = "sensors",
    params(("did" = Did, Path, description = "A DID: did:acta:<base58>."), ("sequence" = u64, Path, description = "Batch sequence number."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::AttestationAnswer>), Errors))]
pub async fn attestation(
    State(api): State<Api>,
    Path((did, sequence)): Path<(String, u64)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let device = parse_did(&did)?;
    read(
        api,
        params,
        AnswerQuery::Attestation { device, sequence },
        None,
    )
    .await
}

/// Budget rounds
///
/// `GET /budget/rounds`: rounds `from` (default 0), at most `limit`.
#[utoipa::path(get, path = "/budget/rounds", tag = "budget",
    params(PageParams),
    responses((status = 200, description = "OK", body = Proven<answer::RoundList>), Errors))]
pub async fn rounds(State(api): State<Api>, Query(p): Query<PageParams>) -> ApiResult {
    let (params, limit) = page(&p)?;
    let from = p.from.unwrap_or(0);
    read(api, params, AnswerQuery::Rounds { from, limit }, None).await
}

/// A budget round and its phase
///
/// `GET /budget/rounds/{id}`: the round, its phase, and its result once tallied.
#[utoipa::path(get, path = "/budget/rounds/{id}", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::RoundSummary>), Errors))]
pub async fn round(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, AnswerQuery::Round(id), None).await
}

/// A round's projects
///
/// `GET /budget/rounds/{id}/proposals`: the round's projects, in index order.
#[utoipa::path(get, path = "/budget/rounds/{id}/proposals", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::ProjectList>), Errors))]
pub async fn proposals(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, AnswerQuery::Proposals(id), None).await
}

/// A round's stored tally
///
/// `GET /budget/rounds/{id}/result`: the stored tally with the selected projects' titles.
#[utoipa::path(get, path = "/budget/rounds/{id}/result", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::ResultAnswer>), Errors))]
pub async fn result(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    read(api, params, AnswerQuery::Result(id), None).await
}

fn exports_permit(api: &Api) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    api.limits.exports.clone().try_acquire_owned().map_err(|_| {
        ApiError::busy("other exports of ballots are being written; try again shortly")
    })
}

/// A tallied round's projects, result and every ballot
///
/// `GET /budget/rounds/{id}/ballots`: a tallied round with its projects, its result and
/// every ballot; proven, the ballots are checked against the result's `ballots_root` (the
/// bundle carries them all), so `acta audit tally` replays only proven ballots.
#[utoipa::path(get, path = "/budget/rounds/{id}/ballots", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::BallotsAnswer>), Errors))]
pub async fn ballots(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let permit = exports_permit(&api)?;
    let prepare: Prepare = |r, _| {
        r.ballot_proofs = BallotProofs::All;
        Ok(())
    };
    read_holding(api, params, AnswerQuery::Ballots(id), prepare, permit).await
}

/// A voter's tallied ballot; proven, a receipt of its inclusion
///
/// `GET /budget/rounds/{id}/ballots/{did}`: a voter's tallied ballot, its position and the
/// round's ballots root; proven, it is a receipt: the ballot's inclusion under the root.
#[utoipa::path(get, path = "/budget/rounds/{id}/ballots/{did}", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ("did" = Did, Path, description = "A DID: did:acta:<base58>."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::ReceiptAnswer>), Errors))]
pub async fn receipt(
    State(api): State<Api>,
    Path((id, voter)): Path<(u64, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let voter = parse_did(&voter)?;
    let permit = exports_permit(&api)?;
    let prepare: Prepare = |r, q| {
        let AnswerQuery::Receipt { round, .. } = q else {
            return Ok(());
        };
        let ballots = budget::ballots_at(r.store, *round, r.height)
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        let leaves = ballots
            .iter()
            .map(|b| merkle::leaf_hash(&codec::encode(b)))
            .collect();
        r.ballot_proofs = BallotProofs::Inclusion(leaves);
        Ok(())
    };
    read_holding(
        api,
        params,
        AnswerQuery::Receipt { round: id, voter },
        prepare,
        permit,
    )
    .await
}

/// A round's projects and ballots as a pabulib .pb file
///
/// `GET /budget/rounds/{id}/ballots.pb`: the round's projects and ballots as a pabulib
/// file, which `acta budget tally` replays to the stored result.
#[utoipa::path(get, path = "/budget/rounds/{id}/ballots.pb", tag = "budget",
    params(
        ("id" = u64, Path, description = "Round id."),
        ("height" = Option<u64>, Query, minimum = 0, description = "Read the state after this committed block (default: the latest)."),
        ("prove" = Option<bool>, Query, description = "Not supported: a .pb export has no proof (`/budget/rounds/{id}/ballots?prove=true` proves the same ballots), so only false is accepted."),
    ),
    responses((status = 200, description = "A pabulib file.", body = String, content_type = "text/plain"), Errors))]
pub async fn ballots_pb(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    if params.prove {
        return Err(ApiError::bad_request(
            "a .pb export has no proof; /budget/rounds/{id}/ballots?prove=true proves the same ballots against the round's result",
        ));
    }
    let permit = exports_permit(&api)?;
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

/// A secret round's token requests, with the registrar's blind signatures once given
///
/// `GET /budget/rounds/{id}/tokens`: a secret round's token requests from `from`, with the
/// registrar's blind signatures once given, and the counts of requests and tokens.
#[utoipa::path(get, path = "/budget/rounds/{id}/tokens", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), PageParams),
    responses((status = 200, description = "OK", body = Proven<answer::TokenRequestList>), Errors))]
pub async fn token_requests(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(p): Query<PageParams>,
) -> ApiResult {
    let (params, limit) = page(&p)?;
    let from = p.from.unwrap_or(0);
    read(
        api,
        params,
        AnswerQuery::TokenRequests {
            round: id,
            from,
            limit,
        },
        None,
    )
    .await
}

/// A resident's token request of a secret round
///
/// `GET /budget/rounds/{id}/tokens/{did}`: a resident's token request, where its wallet
/// finds the blind signature.
#[utoipa::path(get, path = "/budget/rounds/{id}/tokens/{did}", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), ("did" = Did, Path, description = "A DID: did:acta:<base58>."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::TokenRequestAnswer>), Errors))]
pub async fn token_request(
    State(api): State<Api>,
    Path((id, voter)): Path<(u64, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let voter = parse_did(&voter)?;
    read(
        api,
        params,
        AnswerQuery::TokenRequest { round: id, voter },
        None,
    )
    .await
}

/// The tokens of a secret round's ballots, by ballot index
///
/// `GET /budget/rounds/{id}/ballot-tokens`: the tokens of a secret round's ballots from
/// `from`, by ballot index: what an auditor checks against the registrar's key.
#[utoipa::path(get, path = "/budget/rounds/{id}/ballot-tokens", tag = "budget",
    params(("id" = u64, Path, description = "Round id."), PageParams),
    responses((status = 200, description = "OK", body = Proven<answer::BallotTokenList>), Errors))]
pub async fn ballot_tokens(
    State(api): State<Api>,
    Path(id): Path<u64>,
    Query(p): Query<PageParams>,
) -> ApiResult {
    let (params, limit) = page(&p)?;
    let from = p.from.unwrap_or(0);
    read(
        api,
        params,
        AnswerQuery::BallotTokens {
            round: id,
            from,
            limit,
        },
        None,
    )
    .await
}

/// A raw state value
///
/// `GET /state/{namespace}/{key}`: a raw state value (hex), for values no other route
/// shows.
#[utoipa::path(get, path = "/state/{namespace}/{key}", tag = "chain",
    params(("namespace" = String, Path, pattern = "^[a-z0-9_]{1,64}$", description = "State namespace."), ("key" = String, Path, pattern = "^([0-9a-fA-F]{2})*$", description = "Key bytes, hex."), ReadParams),
    responses((status = 200, description = "OK", body = Proven<answer::StateValue>), Errors))]
pub async fn state_value(
    State(api): State<Api>,
    Path((namespace, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    answer::check_namespace(&namespace)?;
    let key =
        hex::decode(&key).map_err(|e| ApiError::bad_request(format!("key is not hex: {e}")))?;
    read(api, params, AnswerQuery::State { namespace, key }, None).await
}
