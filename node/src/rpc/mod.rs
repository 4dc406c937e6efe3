//! The node's HTTP JSON API: status, blocks, transactions (submit and look up), every kind
//! of record at the latest or a past height, proof bundles, event streams, metrics and the
//! OpenAPI document that describes all of it (`GET /openapi.json`).
//!
//! Every error is `{"code": ..., "message": ...}` with a fitting HTTP status, including
//! the ones the framework produces (unknown routes, bad query strings, oversized bodies):
//! a middleware rewrites any non-JSON error into that shape. Requests served at once,
//! `mode=commit` waits and open subscriptions are each bounded, and the excess is refused
//! with 503 rather than queued.

mod chain;
pub mod guard;
pub mod limit;
pub mod openapi;
mod read;
mod records;
pub mod web;

use std::{net::SocketAddr, sync::Arc, time::Instant};

use anyhow::{Context, Result};
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Query, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, MethodRouter},
    Json, Router,
};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa::IntoParams;

use crate::{config::RpcConfig, node::Handle};

/// An API error: an HTTP status, a stable code, a message, and any fields that help the
/// client (such as the hash of a refused transaction).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// Boxed: handlers' results stay small.
    body: Box<openapi::ErrorBody>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(openapi::ErrorBody::new(code, message)),
        }
    }

    /// Says when the client may try again (`retry_after_ms` in the body, and the
    /// `Retry-After` header).
    pub fn retry_after(mut self, wait: std::time::Duration) -> ApiError {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        self.body.retry_after_ms = Some(ms);
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!("HTTP API: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn busy(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }

    pub fn stopping() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the node is stopping",
        )
    }

    /// Names the transaction the error is about.
    pub fn with_hash(mut self, hash: acta_ledger::Hash) -> ApiError {
        self.body.hash = Some(hash);
        self
    }

    /// Names the block that refused the transaction (a committed refusal).
    pub fn with_height(mut self, height: acta_ledger::Height) -> ApiError {
        self.body.height = Some(height);
        self
    }

    /// With `pruned`: the oldest height whose state the node keeps.
    pub fn with_oldest(mut self, oldest: acta_ledger::Height) -> ApiError {
        self.body.oldest = Some(oldest);
        self
    }

    /// Adds another field (a DID resolution's W3C fields).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.body.extra.insert(key.to_string(), value.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.body.message, self.body.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.body.retry_after_ms;
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(ms) = retry_after {
            // Whole seconds, rounded up: the header has no finer unit.
            let secs = ms.div_ceil(1000);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// A JSON response with status 200.
pub fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

/// What every handler shares: the node's handle, the API's settings and its limits.
#[derive(Clone, Debug)]
pub struct Api {
    pub node: Handle,
    pub config: RpcConfig,
    limits: Arc<Limits>,
    /// Each client's allowance of submitted transactions.
    pub submissions: Arc<limit::Submissions>,
}

#[derive(Debug)]
struct Limits {
    requests: Arc<Semaphore>,
    commit_waits: Arc<Semaphore>,
    subscriptions: Arc<Semaphore>,
    /// `.pb` exports read a whole round: a few at a time.
    exports: Arc<Semaphore>,
}

/// `.pb` exports served at once.
const EXPORTS_MAX: usize = 2;

impl Api {
    pub fn new(node: Handle, config: RpcConfig) -> Api {
        let limits = Limits {
            requests: Arc::new(Semaphore::new(config.max_concurrent)),
            commit_waits: Arc::new(Semaphore::new(config.max_commit_waits)),
            subscriptions: Arc::new(Semaphore::new(config.max_subscriptions)),
            exports: Arc::new(Semaphore::new(EXPORTS_MAX)),
        };
        Api {
            node,
            submissions: Arc::new(limit::Submissions::new(config.client_txs_per_second)),
            config,
            limits: Arc::new(limits),
        }
    }
}

/// Runs a store read off the async workers (RocksDB blocks).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// `?height=`, `?prove=` and `?checkpoint=` of record reads.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadParams {
    /// Read the state after this committed block (default: the latest); 0 is the genesis
    /// state, which has no proof (so `prove=true` needs 1 or more).
    pub height: Option<u64>,
    /// Add `proof`: a bundle proving every value read against a header signed by the
    /// validators (not at height 0).
    #[serde(default)]
    pub prove: bool,
    /// With `prove=true`: also prove the header's block in the block log of the checkpoint
    /// of this many blocks (`proof.checkpoint`), so that the bundle verifies against that
    /// checkpoint (`GET /checkpoint`) instead of the chain of headers. From the height read
    /// to the latest height.
    pub checkpoint: Option<u64>,
}

/// `?from=` and `?limit=` of lists, with the parameters of every read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// As for every read: the height whose state is read (default: the latest).
    pub height: Option<u64>,
    /// The first id or sequence number to list.
    pub from: Option<u64>,
    /// How many items to list (1 to 100, default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// As for every read: add a proof bundle.
    #[serde(default)]
    pub prove: bool,
    /// As for every read: prove the header in the checkpoint of this many blocks.
    pub checkpoint: Option<u64>,
}

pub use acta_contracts::answer::{PAGE_DEFAULT, PAGE_MAX};

impl PageParams {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(PAGE_DEFAULT),
            Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "limit {n} is not 1 to {PAGE_MAX}"
            ))),
        }
    }
}

/// Every route: method, path template (as in the OpenAPI document) and handler. The
/// router is built from this table, and [`routes`] lists it for the document's test.
fn table() -> Vec<(Method, &'static str, MethodRouter<Api>)> {
    vec![
        (Method::GET, "/status", get(chain::status)),
        (Method::GET, "/health", get(chain::health)),
        (Method::GET, "/ready", get(chain::ready)),
        (Method::GET, "/openapi.json", get(openapi_document)),
        (Method::GET, "/metrics", get(metrics)),
        (Method::GET, "/blocks/latest", get(chain::latest_block)),
        (Method::GET, "/blocks/{height}", get(chain::block)),
        (
            Method::GET,
            "/blocks/{height}/results",
            get(chain::block_results),
        ),
        (Method::POST, "/txs", post(chain::submit)),
        (Method::POST, "/txs/batch", post(chain::submit_batch)),
        (Method::GET, "/txs/{hash}", get(chain::tx)),
        (Method::GET, "/signers/{key}/nonce", get(chain::nonce)),
        (Method::GET, "/events/blocks", get(chain::block_events)),
        (Method::GET, "/events/txs/{hash}", get(chain::tx_events)),
        (Method::GET, "/validators", get(chain::validators)),
        (Method::GET, "/checkpoint", get(chain::checkpoint)),
        (
            Method::GET,
            "/checkpoint/consistency",
            get(chain::consistency),
        ),
        (Method::GET, "/council", get(records::council)),
        (
            Method::GET,
            "/council/proposals",
            get(records::council_proposals),
        ),
        (
            Method::GET,
            "/council/proposals/{id}",
            get(records::council_proposal),
        ),
        (Method::GET, "/params", get(records::params)),
        (Method::GET, "/issuers/{did}", get(records::issuer)),
        (Method::GET, "/dids/{did}", get(records::did)),
        (
            Method::GET,
            "/dids/{did}/credentials",
            get(records::did_credentials),
        ),
        (Method::GET, "/credentials/{id}", get(records::credential)),
        (Method::GET, "/devices/{did}", get(records::device)),
        (
            Method::GET,
            "/devices/{did}/attestations",
            get(records::attestations),
        ),
        (
            Method::GET,
            "/devices/{did}/attestations/{sequence}",
            get(records::attestation),
        ),
        (Method::GET, "/budget/rounds", get(records::rounds)),
        (Method::GET, "/budget/rounds/{id}", get(records::round)),
        (
            Method::GET,
            "/budget/rounds/{id}/proposals",
            get(records::proposals),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/result",
            get(records::result),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/ballots.pb",
            get(records::ballots_pb),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/ballots",
            get(records::ballots),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/ballots/{did}",
            get(records::receipt),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/tokens",
            get(records::token_requests),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/tokens/{did}",
            get(records::token_request),
        ),
        (
            Method::GET,
            "/budget/rounds/{id}/ballot-tokens",
            get(records::ballot_tokens),
        ),
        (
            Method::GET,
            "/state/{namespace}/{key}",
            get(records::state_value),
        ),
    ]
}

/// The routes served, as (method, path template).
pub fn routes() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|(m, p, _)| (m, p)).collect()
}

pub fn router(api: Api) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in table() {
        router = router.route(path, handler);
    }
    if api.config.web {
        router = router.merge(web::router(&api.config.web_path));
    }
    router
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(api.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            api.clone(),
            refuse_large_bodies,
        ))
        .layer(middleware::from_fn_with_state(
            api.clone(),
            limit_concurrency,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(data_headers))
        .layer(middleware::from_fn(limit_uri))
        .layer(middleware::from_fn_with_state(api.clone(), count_requests))
        .with_state(api)
}

/// Binds the API's address, then serves it in a task of its own.
pub async fn spawn(listen: SocketAddr, handle: Handle, config: RpcConfig) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the HTTP API to {listen}"))?;
    tracing::info!(address = %listen, "HTTP API listening");
    let api = Api::new(handle, config);
    let submissions = api.submissions.clone();
    let app = router(api).into_make_service_with_connect_info::<limit::ClientAddr>();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(guard::GuardedListener::new(listener), app).await {
            tracing::error!("HTTP API: {e}");
        }
    });
    // The table of clients' allowances keeps only those used lately.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        while !server.is_finished() {
            tick.tick().await;
            submissions.forget_idle();
        }
    });
    Ok(())
}

/// Parses the API address from the config (`""` turns the API off).
pub fn listen_addr(listen: &str) -> Result<Option<SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    listen
        .parse()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("config file: field rpc.listen: {listen:?}: {e}"))
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        format!(
            "no route {method} {}; the routes are listed at /openapi.json",
            uri.path()
        ),
    )
}

/// This document
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = Object), openapi::Errors))]
async fn openapi_document() -> ApiResult {
    // Built once: it depends on nothing but the code.
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    ok(DOCUMENT.get_or_init(openapi::document))
}

/// Metrics in the Prometheus text format (OpenMetrics)
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "OpenMetrics text.", body = String, content_type = "application/openmetrics-text"), openapi::Errors))]
async fn metrics(State(api): State<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.node.metrics.render(),
    )
        .into_response()
}

/// A submission that waits for its block (`POST /txs?mode=commit`), told by the query as
/// the handler parses it.
fn waits_for_commit(request: &Request) -> bool {
    request.uri().path() == "/txs"
        && Query::<chain::SubmitParams>::try_from_uri(request.uri())
            .is_ok_and(|Query(p)| p.mode == chain::Mode::Commit)
}

/// Refuses a request when `max_concurrent` are already being served. Requests that wait
/// long by design are bounded by their own limits instead, so that they do not hold the
/// slots short requests need: event streams by theirs, and submissions that wait for their
/// block by `max_commit_waits`, whose place is taken here, before the body is read.
async fn limit_concurrency(State(api): State<Api>, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/events/") {
        return next.run(request).await;
    }
    if waits_for_commit(&request) {
        return match api.limits.commit_waits.clone().try_acquire_owned() {
            Ok(_permit) => next.run(request).await,
            Err(_) => ApiError::busy(format!(
                "{} submissions are already waiting for their blocks; use mode=sync",
                api.config.max_commit_waits
            ))
            .into_response(),
        };
    }
    match api.limits.requests.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::busy(format!(
            "the node is serving {} requests; try again shortly",
            api.config.max_concurrent
        ))
        .into_response(),
    }
}

/// Counts requests by route template and status, and times them.
async fn count_requests(State(api): State<Api>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let m = &api.node.metrics;
    m.rpc_request(&route, response.status().as_u16());
    m.rpc_seconds.observe(started.elapsed().as_secs_f64());
    response
}

/// The longest request target (path and query) served. Longer ones are refused with 414 and
/// the usual JSON error. (hyper refuses request lines over 65,534 bytes before any handler
/// runs, with a bare 414; [`guard`] answers those in JSON before hyper sees them whole.)
pub const URI_BYTES_MAX: usize = 8 * 1024;

/// Refuses a request whose target is longer than [`URI_BYTES_MAX`].
async fn limit_uri(request: Request, next: Next) -> Response {
    let len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if len > URI_BYTES_MAX {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target has {len} bytes; at most {URI_BYTES_MAX} are read"),
        )
        .into_response();
    }
    next.run(request).await
}

/// The most bytes of a framework error's text kept in the JSON message.
const ERROR_TEXT_MAX: usize = 4096;

/// Rewrites any error response that is not JSON (the framework's rejections: bad query
/// strings, bad paths, wrong methods, oversized or malformed bodies) into
/// `{"code", "message"}`.
/// Every answer is data, never a page to run: the browser must not guess another type
/// (a `.pb` export or an error holds anyone's text, served from the page's origin) nor
/// frame it. The page's own files set their own policy ([`web`]).
async fn data_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        ));
    response
}

/// How long [`refuse_large_bodies`] reads a refused body before it answers.
const DRAIN_TIME_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses a body whose `Content-Length` is over `rpc.max_body_bytes` before any handler
/// runs, after reading (and dropping) what the client sends of it, if it is at most four
/// times the limit, for at most [`DRAIN_TIME_MAX`] (inside the concurrency limit, and
/// without keeping it). A client that writes its whole body before it reads the answer, as most do, then reads the 413; answered at once, the
/// connection closed with its body unread and the client met a reset or a broken pipe
/// instead. A larger body is refused at once (bodies the extractors find too long without
/// a length are refused by them, `DefaultBodyLimit`).
async fn refuse_large_bodies(State(api): State<Api>, request: Request, next: Next) -> Response {
    let limit = u64::try_from(api.config.max_body_bytes).unwrap_or(u64::MAX);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(length) = declared.filter(|n| *n > limit) else {
        return next.run(request).await;
    };
    if length <= limit.saturating_mul(4) {
        // Chunk by chunk, each dropped as it comes: nothing of it is held.
        let mut body = request.into_body().into_data_stream();
        let drain = async { while let Some(Ok(_)) = futures::StreamExt::next(&mut body).await {} };
        let _ = tokio::time::timeout(DRAIN_TIME_MAX, drain).await;
    }
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is {length} bytes; this API takes at most {limit} (rpc.max_body_bytes)"),
    )
    .into_response()
}

async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_TEXT_MAX)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "bad_request",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string()
    } else {
        text
    };
    // A JSON body that does not fit the request's shape is a bad request, not a 422.
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    let mut response = (status, Json(openapi::ErrorBody::new(code, message))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A plain-text response (for `.pb` exports).
pub fn text(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Body::from(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(uri: &str) -> Request {
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn a_submission_waits_for_its_block_as_the_handler_reads_the_query() {
        for waits in [
            "/txs?mode=commit",
            "/txs?mode=%63ommit",
            "/txs?mode=commit&",
        ] {
            assert!(waits_for_commit(&post(waits)), "{waits}");
        }
        for short in [
            "/txs",
            "/txs?mode=sync",
            "/txs?mode=async",
            "/txs?mode=Commit",
            "/txs?mode=commit&mode=sync",
            "/txs/batch?mode=commit",
            "/events/blocks",
        ] {
            assert!(!waits_for_commit(&post(short)), "{short}");
        }
    }
}
