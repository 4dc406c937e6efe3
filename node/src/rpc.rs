//! A small HTTP JSON API: the node's status, transaction submission, and blocks with their
//! commit certificates. Errors are `{"code": ..., "message": ...}` with a fitting status.

use std::net::SocketAddr;

use acta_ledger::{state::AuthenticatedState, Height, Transaction};
use anyhow::{Context, Result};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::node::{Handle, Request};

/// An API error: an HTTP status, a stable code and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

pub fn router(handle: Handle) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/txs", post(submit))
        .route("/blocks/latest", get(latest_block))
        .route("/blocks/{height}", get(block))
        .route("/state/{namespace}/{key}", get(state_value))
        .with_state(handle)
}

/// Binds the API's address, then serves it in a task of its own.
pub async fn spawn(listen: SocketAddr, handle: Handle) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the HTTP API to {listen}"))?;
    tracing::info!(address = %listen, "HTTP API listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(handle)).await {
            tracing::error!("HTTP API: {e}");
        }
    });
    Ok(())
}

async fn status(State(h): State<Handle>) -> ApiResult {
    let s = h.status.read().map_err(ApiError::internal)?.clone();
    Ok(Json(serde_json::to_value(s).map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
struct Submit {
    /// The transaction's borsh encoding in hex.
    tx: String,
}

async fn submit(
    State(h): State<Handle>,
    body: Result<Json<Submit>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let bytes = hex::decode(body.tx.trim()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("tx is not hex: {e}"),
        )
    })?;
    let tx = Transaction::decode(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_transaction", e.to_string()))?;
    let (reply, answer) = oneshot::channel();
    h.requests
        .send(Request::SubmitTx {
            tx: Box::new(tx),
            reply,
        })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopping",
                "the node is stopping",
            )
        })?;
    let result = answer.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            "the node is stopping",
        )
    })?;
    match result {
        Ok(hash) => Ok(Json(json!({ "hash": hash.to_hex() }))),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        )),
    }
}

/// Runs a store read off the async workers (RocksDB blocks).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

async fn latest_block(State(h): State<Handle>) -> Result<Response, ApiError> {
    blocking(move || {
        let latest = h
            .store
            .latest_height()
            .map_err(ApiError::internal)?
            .unwrap_or(Height(0));
        block_at(&h, latest)
    })
    .await
}

async fn block(State(h): State<Handle>, Path(height): Path<String>) -> Result<Response, ApiError> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("height {height:?} is not a number"),
        )
    })?;
    blocking(move || block_at(&h, Height(height))).await
}

#[derive(serde::Serialize)]
struct BlockAnswer<'a> {
    hash: String,
    block: &'a acta_ledger::Block,
    commit: Option<&'a acta_ledger::Commit>,
}

/// A block with its hash and commit, serialised straight to the response.
fn block_at(h: &Handle, height: Height) -> Result<Response, ApiError> {
    let block = h
        .store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no block at height {height}"),
            )
        })?;
    let commit = h.store.commit(height).map_err(ApiError::internal)?;
    Ok(Json(BlockAnswer {
        hash: block.hash().to_hex(),
        block: &block,
        commit: commit.as_ref(),
    })
    .into_response())
}

/// The longest namespace name accepted (the modules' names are far shorter).
const NAMESPACE_MAX: usize = 64;

/// A raw state value at the latest height: `key` in hex, the value as hex (or null).
async fn state_value(
    State(h): State<Handle>,
    Path((namespace, key)): Path<(String, String)>,
) -> ApiResult {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    if namespace.is_empty()
        || namespace.len() > NAMESPACE_MAX
        || !namespace
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(bad(format!(
            "namespace {namespace:?} is not 1 to {NAMESPACE_MAX} characters of a-z 0-9 _"
        )));
    }
    let key = hex::decode(&key).map_err(|e| bad(format!("key is not hex: {e}")))?;
    let (height, value) = blocking(move || {
        let height = h
            .store
            .latest_height()
            .map_err(ApiError::internal)?
            .unwrap_or(Height(0));
        let value = h
            .store
            .get(&acta_ledger::state::state_key(&namespace, &key), height)
            .map_err(ApiError::internal)?;
        Ok((height, value))
    })
    .await?;
    Ok(Json(json!({
        "height": height.0,
        "value": value.map(hex::encode),
    })))
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
