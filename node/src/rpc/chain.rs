//! Chain routes: status, blocks and their results, transactions (submit and look up),
//! event streams and validator sets.

use std::{convert::Infallible, sync::Arc, time::Duration};

use acta_contracts::{
    answer::{self, result_json},
    executor::{next_nonce, BlockResults},
    staking::validators_at,
    view::StateView,
    Outcome, Receipt,
};
use acta_ledger::{
    blocklog,
    bundle::TxEntry,
    checkpoint::{Checkpoint, SignedCheckpoint},
    merkle,
    store::{Store, TxLocation},
    Hash, Height, PublicKey, Transaction,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use futures::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit};
use utoipa::{IntoParams, ToSchema};

use super::{
    blocking,
    limit::Client,
    ok,
    openapi::{BodyErrors, Errors, HealthResponses, SubmitErrors, SubmitResponses, WithProof},
    read::{bundle, checkpoint_entry, resolve_height},
    Api, ApiError, ApiResult, ReadParams,
};
use crate::{
    genesis::ChainSpec,
    mempool::AddError,
    node::{Committed, Request},
};

/// `GET /status`: the node's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    #[serde(flatten)]
    status: crate::node::Status,
    role: Role,
    genesis_hash: Hash,
    /// The node's version.
    version: &'static str,
}

/// Whether a node votes.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Role {
    Validator,
    Observer,
}

/// The node's status
#[utoipa::path(get, path = "/status", tag = "chain",
    responses((status = 200, description = "OK", body = StatusAnswer), Errors))]
pub async fn status(State(api): State<Api>) -> ApiResult {
    let status = api.node.status.read().map_err(ApiError::internal)?.clone();
    ok(StatusAnswer {
        role: if status.validator {
            Role::Validator
        } else {
            Role::Observer
        },
        status,
        genesis_hash: api.node.spec.hash,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// How long the driver may go without updating the status before the node is not live:
/// it does after every event and at least every 3 s.
const LIVE_WITHIN: Duration = Duration::from_secs(30);

/// Whether the node's loop runs, and if not, why not.
fn liveness(s: &crate::node::Status) -> Result<(), String> {
    match s.updated {
        Some(t) if t.elapsed() <= LIVE_WITHIN => Ok(()),
        Some(t) => Err(format!(
            "the node's loop has not run for {} s",
            t.elapsed().as_secs()
        )),
        None => Err("the node's loop has not started".into()),
    }
}

/// `GET /health` and `GET /ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthAnswer {
    /// Whether the node's loop runs.
    live: bool,
    /// `/ready` only: live, caught up and not stalled.
    #[serde(skip_serializing_if = "Option::is_none")]
    ready: Option<bool>,
    /// Latest committed height.
    height: u64,
    /// Why not live or not ready; empty when all is well.
    reasons: Vec<String>,
}

fn health_answer(ok: bool, body: HealthAnswer) -> ApiResult {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}

/// Live (200) while the node's loop runs, else 503: a liveness probe
///
/// For a process supervisor.
#[utoipa::path(
    get,
    path = "/health",
    tag = "meta",
    responses(HealthResponses, Errors)
)]
pub async fn health(State(api): State<Api>) -> ApiResult {
    let s = api.node.status.read().map_err(ApiError::internal)?.clone();
    let live = liveness(&s);
    health_answer(
        live.is_ok(),
        HealthAnswer {
            live: live.is_ok(),
            ready: None,
            height: s.height,
            reasons: live.err().into_iter().collect(),
        },
    )
}

/// Ready (200) when live, caught up with its peers and the chain not stalled, else 503 with the reasons
///
/// For a load balancer, and an alert.
#[utoipa::path(get, path = "/ready", tag = "meta", responses(HealthResponses, Errors))]
pub async fn ready(State(api): State<Api>) -> ApiResult {
    let s = api.node.status.read().map_err(ApiError::internal)?.clone();
    let mut reasons = Vec::new();
    let live = liveness(&s);
    if let Err(e) = &live {
        reasons.push(e.clone());
    }
    if s.syncing {
        reasons.push(format!(
            "syncing: a peer is past height {}, which this node is deciding",
            s.consensus_height
        ));
    }
    if let Some(stall) = &s.stalled {
        reasons.push(format!(
            "stalled at height {} round {} for {} s: {}",
            stall.height,
            stall.round,
            stall.for_ms / 1000,
            stall.reason
        ));
    }
    let ready = reasons.is_empty();
    health_answer(
        ready,
        HealthAnswer {
            live: live.is_ok(),
            ready: Some(ready),
            height: s.height,
            reasons,
        },
    )
}

fn latest(store: &Store) -> Result<Height, ApiError> {
    Ok(store
        .latest_height()
        .map_err(ApiError::internal)?
        .unwrap_or(Height(0)))
}

/// The latest block with its commit certificate
#[utoipa::path(get, path = "/blocks/latest", tag = "chain",
    responses((status = 200, description = "OK", body = BlockAnswer), Errors))]
pub async fn latest_block(State(api): State<Api>) -> ApiResult {
    blocking(move || {
        let h = latest(&api.node.store)?;
        block_at(&api.node.store, h)
    })
    .await
}

/// A block with its commit certificate
#[utoipa::path(get, path = "/blocks/{height}", tag = "chain",
    params(("height" = u64, Path, description = "Block height.")),
    responses((status = 200, description = "OK", body = BlockAnswer), Errors))]
pub async fn block(State(api): State<Api>, Path(height): Path<u64>) -> ApiResult {
    blocking(move || block_at(&api.node.store, Height(height))).await
}

/// A block, its hash and the commit certificate that signs it (null until the next block
/// carries it, for the latest block of a node that has not seen the certificate).
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockAnswer {
    hash: Hash,
    block: acta_ledger::Block,
    #[schema(required = true)]
    commit: Option<acta_ledger::Commit>,
}

fn no_block(height: Height) -> ApiError {
    ApiError::not_found(format!("no block at height {height}"))
}

/// A block with its hash and the commit certificate that signs it.
fn block_at(store: &Store, height: Height) -> ApiResult {
    let block = store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_block(height))?;
    let commit = store.commit(height).map_err(ApiError::internal)?;
    ok(BlockAnswer {
        hash: block.hash(),
        block,
        commit,
    })
}

fn results_at(store: &Store, height: Height) -> Result<BlockResults, ApiError> {
    let bytes = store
        .results(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_block(height))?;
    BlockResults::decode(&bytes).map_err(ApiError::internal)
}

/// `GET /blocks/{height}/results`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockResultsAnswer {
    height: Height,
    #[serde(flatten)]
    results: BlockResults,
}

/// What each transaction of a block did
///
/// And the events of the block's start.
#[utoipa::path(get, path = "/blocks/{height}/results", tag = "chain",
    params(("height" = u64, Path, description = "Block height.")),
    responses((status = 200, description = "OK", body = BlockResultsAnswer), Errors))]
pub async fn block_results(State(api): State<Api>, Path(height): Path<u64>) -> ApiResult {
    blocking(move || {
        let results = results_at(&api.node.store, Height(height))?;
        ok(BlockResultsAnswer {
            height: Height(height),
            results,
        })
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubmitParams {
    /// async: queued, not waiting for the mempool (202); sync: checked by the mempool;
    /// commit: answered once in a committed block, or 504 when rpc.commit_timeout_ms passes.
    #[serde(default)]
    #[param(inline)]
    pub(super) mode: Mode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Mode {
    /// Queued for the mempool; the answer does not wait for its verdict.
    Async,
    /// Checked by the mempool (signature, chain id, nonce, limits). A transaction sent
    /// again while it is in the mempool is answered `pending` again (a retry after a lost
    /// answer is safe).
    #[default]
    Sync,
    /// Answered when the transaction is in a committed block, or when the wait ends.
    Commit,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// A transaction's borsh encoding, hex (docs/wire-format.md, section 5.1); surrounding
    /// white space is ignored.
    #[schema(pattern = r"^\s*([0-9a-fA-F]{2})+\s*$", max_length = 131_136)]
    tx: String,
}

// The schema's `max_length` above: the hex of the largest transaction, and white space.
const _: () = assert!(2 * acta_ledger::tx::TX_BYTES_MAX + 64 == 131_136);

/// Where a submitted transaction is.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Submitted {
    /// Queued for the mempool (mode=async).
    Queued,
    /// In the mempool.
    Pending,
    /// In a committed block (mode=commit).
    Committed,
}

/// `POST /txs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitAnswer {
    hash: Hash,
    status: Submitted,
    /// With mode=commit: the block.
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<Height>,
    /// With mode=commit: the position in the block.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    /// With mode=commit: what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<acta_ledger::Event>>,
}

impl SubmitAnswer {
    fn new(hash: Hash, status: Submitted) -> SubmitAnswer {
        SubmitAnswer {
            hash,
            status,
            height: None,
            index: None,
            events: None,
        }
    }
}

fn parse_hash(s: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(s).map_err(|e| ApiError::bad_request(format!("{s:?} is not a hash: {e}")))
}

/// Submit a transaction
///
/// `POST /txs?mode=async|sync|commit` with `{"tx": "<hex>"}`.
#[utoipa::path(post, path = "/txs", tag = "chain", params(SubmitParams), request_body = SubmitBody,
    responses(SubmitResponses, SubmitErrors, BodyErrors, Errors))]
pub async fn submit(
    State(api): State<Api>,
    client: Client,
    Query(params): Query<SubmitParams>,
    Json(body): Json<SubmitBody>,
) -> ApiResult {
    api.submissions.charge(client, 1)?;
    let bytes = hex::decode(body.tx.trim())
        .map_err(|e| ApiError::bad_request(format!("tx is not hex: {e}")))?;
    let tx = Transaction::decode(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_transaction", e.to_string()))?;
    let id = tx.id();
    let requests = &api.node.requests;
    match params.mode {
        Mode::Async => {
            requests
                .try_send(Request::SubmitTx {
                    tx: Box::new(tx),
                    reply: None,
                })
                .map_err(|e| match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => {
                        ApiError::busy("the node's queue is full; try again shortly")
                    }
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => ApiError::stopping(),
                })?;
            Ok((
                StatusCode::ACCEPTED,
                Json(SubmitAnswer::new(id, Submitted::Queued)),
            )
                .into_response())
        }
        Mode::Sync => {
            add_to_mempool(&api, tx).await?;
            ok(SubmitAnswer::new(id, Submitted::Pending))
        }
        Mode::Commit => {
            // Its place among `max_commit_waits` was taken before its body was read
            // (`rpc::limit_concurrency`).
            // Listen before submitting, so that the block cannot pass unseen.
            let mut blocks = api.node.committed.subscribe();
            if let Err(e) = add_to_mempool(&api, tx).await {
                // Submitted again after it was committed (here or through another node):
                // answer with its block.
                if e.body.code == "stale_nonce" {
                    let store = api.node.store.clone();
                    if let Some(found) = blocking(move || find_stored(&store, id)).await? {
                        return commit_answer(id, &found);
                    }
                }
                return Err(e);
            }
            let wait = Duration::from_millis(api.config.commit_timeout_ms);
            let found = tokio::time::timeout(wait, wait_for(&api, &mut blocks, id)).await;
            match found {
                Ok(Ok(found)) => commit_answer(id, &found),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "commit_timeout",
                    format!(
                        "not in a committed block within {} ms; it is in the mempool and may still be committed: look it up at /txs/{id}",
                        api.config.commit_timeout_ms
                    ),
                )
                .with_hash(id)),
            }
        }
    }
}

/// The most transactions one `POST /txs/batch` carries.
pub const SUBMIT_BATCH_MAX: usize = 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchBody {
    /// Transactions' borsh encodings, hex (as `tx` of `POST /txs`). Each gets its own
    /// verdict in `results`: one that is not a transaction gets `bad_transaction` there, and
    /// the others are still submitted.
    #[schema(max_items = 1024)]
    txs: Vec<String>,
}

// The schema's `max_items` above.
const _: () = assert!(SUBMIT_BATCH_MAX == 1024);

/// One transaction's verdict in a batch: its hash and `pending`, or a refusal.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BatchVerdict {
    Pending {
        hash: Hash,
        /// `pending`.
        #[schema(value_type = String, pattern = "^pending$")]
        status: Submitted,
    },
    Refused {
        /// Why it was refused (the mempool's codes, or bad_transaction).
        code: String,
        /// The refusal in words.
        message: String,
    },
}

/// `POST /txs/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitBatchAnswer {
    /// How many of the transactions are `pending`: admitted by the mempool now, or
    /// already waiting there (sent before).
    accepted: usize,
    /// Per transaction, in order.
    results: Vec<BatchVerdict>,
}

/// Submit up to 1024 transactions at once, each checked by the mempool as with mode=sync
///
/// `POST /txs/batch` with `{"txs": ["<hex>", ...]}`: up to 1,024 (`SUBMIT_BATCH_MAX`)
/// transactions checked by the mempool together (signatures verified as one batch), like
/// `mode=sync` for each. The answer has one entry per transaction, in order: its hash and
/// `pending`, or a refusal's `code` and `message`. One transaction's refusal does not
/// affect the others; a signer's transactions must come in nonce order. A transaction
/// already in the mempool is `pending` again (a retried batch is safe).
#[utoipa::path(post, path = "/txs/batch", tag = "chain", request_body = SubmitBatchBody,
    responses((status = 200, description = "OK", body = SubmitBatchAnswer), SubmitErrors, BodyErrors, Errors))]
pub async fn submit_batch(
    State(api): State<Api>,
    client: Client,
    Json(body): Json<SubmitBatchBody>,
) -> ApiResult {
    if body.txs.len() > SUBMIT_BATCH_MAX {
        return Err(ApiError::bad_request(format!(
            "{} transactions in one batch; at most {SUBMIT_BATCH_MAX}",
            body.txs.len()
        )));
    }
    api.submissions.charge(client, body.txs.len())?;
    let mut answers: Vec<Option<BatchVerdict>> = Vec::with_capacity(body.txs.len());
    let mut txs = Vec::with_capacity(body.txs.len());
    for (i, hex_tx) in body.txs.iter().enumerate() {
        let decoded = hex::decode(hex_tx.trim())
            .map_err(|e| format!("txs[{i}] is not hex: {e}"))
            .and_then(|b| Transaction::decode(&b).map_err(|e| format!("txs[{i}]: {e}")));
        match decoded {
            Ok(tx) => {
                txs.push(tx);
                answers.push(None);
            }
            Err(message) => answers.push(Some(BatchVerdict::Refused {
                code: "bad_transaction".into(),
                message,
            })),
        }
    }
    let (reply, verdicts) = oneshot::channel();
    api.node
        .requests
        .send(Request::SubmitBatch { txs, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    let mut verdicts = verdicts
        .await
        .map_err(|_| ApiError::stopping())?
        .into_iter();
    let results: Vec<BatchVerdict> = answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| match verdicts.next() {
                // Sent again while pending: pending, as for `POST /txs`.
                Some(Ok(hash) | Err(AddError::Duplicate(hash))) => BatchVerdict::Pending {
                    hash,
                    status: Submitted::Pending,
                },
                Some(Err(e)) => BatchVerdict::Refused {
                    code: e.code().to_string(),
                    message: e.to_string(),
                },
                None => BatchVerdict::Refused {
                    code: "internal".into(),
                    message: "no verdict".into(),
                },
            })
        })
        .collect();
    let accepted = results
        .iter()
        .filter(|r| matches!(r, BatchVerdict::Pending { .. }))
        .count();
    ok(SubmitBatchAnswer { accepted, results })
}

/// Hands a transaction to the mempool: `Ok` once it waits there, whether admitted now or
/// already waiting (the same bytes sent again, a client's retry after a lost answer).
async fn add_to_mempool(api: &Api, tx: Transaction) -> Result<(), ApiError> {
    let id = tx.id();
    let (reply, answer) = oneshot::channel();
    api.node
        .requests
        .send(Request::SubmitTx {
            tx: Box::new(tx),
            reply: Some(reply),
        })
        .await
        .map_err(|_| ApiError::stopping())?;
    match answer.await.map_err(|_| ApiError::stopping())? {
        Ok(_) | Err(AddError::Duplicate(_)) => Ok(()),
        Err(e) => {
            let status = match e {
                AddError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err(ApiError::new(status, e.code(), e.to_string()).with_hash(id))
        }
    }
}

/// `GET /signers/{key}/nonce`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignerNonce {
    signer: PublicKey,
    /// The latest committed height, whose state `committed` is read from.
    height: Height,
    /// The nonce the committed state expects next: how many transactions of the signer
    /// are committed.
    committed: u64,
    /// The nonce after the signer's transactions waiting in this node's mempool: what its
    /// next transaction is signed with.
    next: u64,
    /// How many of the signer's transactions wait in this node's mempool (`next` -
    /// `committed`).
    pending: u64,
}

/// A signer's next nonce, committed and after its transactions in this node's mempool
///
/// The one the latest committed state expects, and the one after its transactions waiting
/// in this node's mempool (`next`, what a wallet signs its next transaction with when it
/// does not wait for the last one's block).
#[utoipa::path(get, path = "/signers/{key}/nonce", tag = "chain",
    params(("key" = String, Path, pattern = "^[0-9a-fA-F]{64}$", description = "The signer's Ed25519 public key, hex.")),
    responses((status = 200, description = "OK", body = SignerNonce), Errors))]
pub async fn nonce(State(api): State<Api>, Path(key): Path<String>) -> ApiResult {
    let signer = PublicKey::from_hex(&key)
        .map_err(|e| ApiError::bad_request(format!("{key:?} is not a public key: {e}")))?;
    // The pool first, then the store: a block is stored before its transactions leave the
    // pool, so the store read after the pool is never behind it, and the larger of the two
    // is the signer's next nonce (the pool may still hold transactions the store passed).
    let (reply, pooled) = oneshot::channel();
    api.node
        .requests
        .send(Request::NextAfterPool { signer, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    let pooled = pooled.await.map_err(|_| ApiError::stopping())?;
    let store = api.node.store.clone();
    let (height, committed) = blocking(move || {
        let height = latest(&store)?;
        let view = StateView::new(store.as_ref(), height);
        let committed = next_nonce(&view, &signer).map_err(ApiError::internal)?;
        Ok((height, committed))
    })
    .await?;
    let next = pooled.map_or(committed, |n| n.max(committed));
    ok(SignerNonce {
        signer,
        height,
        committed,
        next,
        pending: next - committed,
    })
}

/// Where a committed transaction is and what it did.
struct Found {
    height: Height,
    index: u32,
    outcome: Outcome,
    message: Option<String>,
}

fn find_in(c: &Committed, id: Hash) -> Option<Found> {
    c.find(&id).map(|t| Found {
        height: Height(c.height),
        index: t.index,
        outcome: t.outcome.clone(),
        message: t.message.clone(),
    })
}

/// The result of a committed transaction, from the store.
fn find_stored(store: &Store, id: Hash) -> Result<Option<Found>, ApiError> {
    let Some(TxLocation { height, index }) = store.tx_location(&id).map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let results = results_at(store, height)?;
    let message = results.message(index).map(str::to_string);
    let receipt = results
        .receipts
        .into_iter()
        .nth(index as usize)
        .ok_or_else(|| ApiError::internal(format!("no result for {id} in block {height}")))?;
    Ok(Some(Found {
        height,
        index,
        outcome: receipt.outcome,
        message,
    }))
}

/// Waits until `id` is in a committed block; a subscriber that fell behind looks in the
/// store.
async fn wait_for(
    api: &Api,
    blocks: &mut broadcast::Receiver<Arc<Committed>>,
    id: Hash,
) -> Result<Found, ApiError> {
    loop {
        match blocks.recv().await {
            Ok(c) => {
                if let Some(f) = find_in(&c, id) {
                    return Ok(f);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let store = api.node.store.clone();
                if let Some(f) = blocking(move || find_stored(&store, id)).await? {
                    return Ok(f);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Err(ApiError::stopping()),
        }
    }
}

fn commit_answer(id: Hash, f: &Found) -> ApiResult {
    match &f.outcome {
        Outcome::Accepted { events } => ok(SubmitAnswer {
            height: Some(f.height),
            index: Some(f.index),
            events: Some(events.clone()),
            ..SubmitAnswer::new(id, Submitted::Committed)
        }),
        Outcome::Refused { code } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code.as_str(),
            format!(
                "the ledger refused the transaction: {}",
                f.message.as_deref().unwrap_or(code.as_str())
            ),
        )
        .with_hash(id)
        .with_height(f.height)),
    }
}

/// A committed transaction's answer for `GET /txs/{hash}` (with its bundle if `prove`), or
/// `None` if the store does not hold it.
fn committed_tx(
    store: &Store,
    spec: &ChainSpec,
    id: Hash,
    prove: bool,
    checkpoint: Option<u64>,
) -> Result<Option<Value>, ApiError> {
    let Some(loc) = store.tx_location(&id).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let block = store
        .block(loc.height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("no block {}", loc.height)))?;
    let results = results_at(store, loc.height)?;
    let i = loc.index as usize;
    let (Some(tx), Some(receipt)) = (block.txs.get(i), results.receipts.get(i)) else {
        return Err(ApiError::internal(format!(
            "no transaction {i} in block {}",
            loc.height
        )));
    };
    // The refusal's message is not in the block's results, and the position is not proven
    // (the header does not commit to the number of transactions): a proven answer leaves
    // both out.
    let message = if prove {
        None
    } else {
        results.message(loc.index)
    };
    let index = (!prove).then_some(u64::from(loc.index));
    let mut answer = answer::tx_answer(tx, loc.height, index, &receipt.outcome, message);
    if prove {
        let ids: Vec<Hash> = block
            .txs
            .iter()
            .map(|t| merkle::leaf_hash(&t.id().0))
            .collect();
        let leaves = Receipt::leaves(&results.receipts);
        let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        let entry = TxEntry {
            tx: tx.encode(),
            tx_proof: merkle::inclusion_proof(&ids, i).map_err(ApiError::internal)?,
            result: leaves[i].clone(),
            result_proof: merkle::inclusion_proof(&leaf_hashes, i).map_err(ApiError::internal)?,
        };
        let mut b = bundle(
            store,
            spec,
            loc.height,
            Some(format!("/txs/{id}")),
            Vec::new(),
            Some(entry),
        )?;
        b.checkpoint = checkpoint_entry(store, loc.height, checkpoint)?;
        answer = serde_json::to_value(WithProof {
            answer,
            proof: Some(b),
        })
        .map_err(ApiError::internal)?;
    }
    Ok(Some(answer))
}

/// A transaction with its result (or pending)
///
/// A committed transaction with its result (and, with `prove=true`, a bundle proving
/// both), or `pending` while it waits in the mempool.
#[utoipa::path(get, path = "/txs/{hash}", tag = "chain",
    params(
        ("hash" = Hash, Path, description = "Transaction id (hex SHA-256 of its encoding)."),
        ("prove" = Option<bool>, Query, description = "Add `proof`: a bundle proving the transaction and its result in its block, against a header signed by the validators."),
        ("checkpoint" = Option<u64>, Query, minimum = 0, description = "With `prove=true`: also prove the block in the block log of the checkpoint of this many blocks."),
    ),
    responses((status = 200, description = "OK", body = WithProof<answer::TxAnswer>), Errors))]
pub async fn tx(
    State(api): State<Api>,
    Path(hash): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let id = parse_hash(&hash)?;
    if params.height.is_some() {
        return Err(ApiError::bad_request(
            "a transaction has one height; leave out ?height=",
        ));
    }
    let (prove, checkpoint) = (params.prove, params.checkpoint);
    if checkpoint.is_some() && !prove {
        return Err(ApiError::bad_request(
            "checkpoint= proves the header in a checkpoint's log: it needs prove=true",
        ));
    }
    let lookup = || {
        let (store, spec) = (api.node.store.clone(), api.node.spec.clone());
        blocking(move || committed_tx(&store, &spec, id, prove, checkpoint))
    };
    if let Some(answer) = lookup().await? {
        return ok(answer);
    }
    let (reply, pending) = oneshot::channel();
    api.node
        .requests
        .send(Request::Pending { id, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    if pending.await.map_err(|_| ApiError::stopping())? {
        return ok(answer::TxAnswer {
            hash: id,
            status: answer::TxStatus::Pending,
            height: None,
            index: None,
            tx: None,
            result: None,
        });
    }
    // It may have left the mempool for a block between the two looks.
    if let Some(answer) = lookup().await? {
        return ok(answer);
    }
    Err(ApiError::not_found(format!(
        "transaction {id} is neither committed nor waiting in this node's mempool"
    )))
}

/// How long a transaction subscription waits for its block before it ends.
const TX_SUBSCRIPTION_MS: u64 = 120_000;

fn subscription_permit(api: &Api) -> Result<OwnedSemaphorePermit, ApiError> {
    api.limits
        .subscriptions
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::busy(format!(
                "{} subscriptions are open; try again later",
                api.config.max_subscriptions
            ))
        })
}

/// Committed blocks as server-sent events (`block`, `lagged`)
///
/// One `block` event per committed block (its height, hash, time and each transaction's
/// result); `lagged` if the client fell behind.
#[utoipa::path(get, path = "/events/blocks", tag = "events",
    responses((status = 200, description = "Server-sent events; each event's data is one JSON object.", body = super::openapi::ServerSentEvent, content_type = "text/event-stream"), Errors))]
pub async fn block_events(State(api): State<Api>) -> Result<Response, ApiError> {
    let permit = subscription_permit(&api)?;
    let receiver = api.node.committed.subscribe();
    let events = stream::unfold((receiver, permit), |(mut rx, permit)| async move {
        let event = match rx.recv().await {
            Ok(c) => Event::default()
                .event("block")
                .id(c.height.to_string())
                .data(c.json()),
            Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), (rx, permit)))
    });
    Ok(sse(events))
}

fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// One server-sent event when a transaction is committed
///
/// One `tx` event when the transaction is committed (at once if it already is), then the
/// stream ends; a `timeout` event ends it after two minutes.
#[utoipa::path(get, path = "/events/txs/{hash}", tag = "events",
    params(("hash" = Hash, Path, description = "Transaction id (hex SHA-256 of its encoding).")),
    responses((status = 200, description = "Server-sent events; each event's data is one JSON object.", body = super::openapi::ServerSentEvent, content_type = "text/event-stream"), Errors))]
pub async fn tx_events(State(api): State<Api>, Path(hash): Path<String>) -> ApiResult {
    let id = parse_hash(&hash)?;
    let permit = subscription_permit(&api)?;
    let mut receiver = api.node.committed.subscribe();
    let store = api.node.store.clone();
    let already = blocking(move || find_stored(&store, id)).await?;
    let event = move |f: &Found| {
        Event::default().event("tx").data(
            json!({
                "hash": id,
                "height": f.height.0,
                "index": f.index,
                "result": result_json(&f.outcome, f.message.as_deref()),
            })
            .to_string(),
        )
    };
    let api2 = api.clone();
    let one = async move {
        let _permit = permit;
        let found = match already {
            Some(f) => Ok(f),
            None => tokio::time::timeout(
                Duration::from_millis(TX_SUBSCRIPTION_MS),
                wait_for(&api2, &mut receiver, id),
            )
            .await
            .unwrap_or_else(|_| Err(ApiError::not_found("timeout"))),
        };
        let e = match found {
            Ok(f) => event(&f),
            Err(_) => Event::default()
                .event("timeout")
                .data(json!({ "hash": id }).to_string()),
        };
        Ok::<_, Infallible>(e)
    };
    Ok(sse(stream::once(one)))
}

/// The validator set that signs a height
///
/// The set that signs block `height` (the latest by default), with `prove=true` a bundle
/// whose header at that height names it.
#[utoipa::path(get, path = "/validators", tag = "chain", params(ReadParams),
    responses((status = 200, description = "OK", body = WithProof<answer::ValidatorSetAnswer>), Errors))]
pub async fn validators(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        if params.checkpoint.is_some() && !params.prove {
            return Err(ApiError::bad_request(
                "a checkpoint does not name validator sets: prove /validators against the genesis",
            ));
        }
        let height = resolve_height(store, params.height)?;
        let signs = if height == Height(0) {
            Height(1)
        } else {
            height
        };
        let set = validators_at(store.as_ref(), signs).map_err(ApiError::internal)?;
        let next = validators_at(store.as_ref(), signs.next()).map_err(ApiError::internal)?;
        // Names come from the genesis file, not the chain: a proven answer leaves them out.
        let names = (!params.prove).then_some(&api.node.spec.names);
        let answer = answer::validators_answer(signs, &set, next.hash(), names);
        let mut proof = None;
        if params.prove {
            if height == Height(0) {
                return Err(ApiError::bad_request(
                    "no proof at height 0: the genesis set is in the genesis file",
                ));
            }
            if params.checkpoint.is_some() {
                return Err(ApiError::bad_request(
                    "a checkpoint does not name validator sets: prove /validators against the genesis",
                ));
            }
            let b = bundle(
                store,
                &api.node.spec,
                signs,
                Some("/validators".into()),
                Vec::new(),
                None,
            )?;
            proof = Some(b);
        }
        ok(WithProof { answer, proof })
    })
    .await
}

/// The most checkpoint sizes looked at, newest first, for one with a quorum of cosignatures.
const CHECKPOINTS_SCANNED: usize = 16;

/// The latest checkpoint of the block log, cosigned by validators holding more than two thirds of the power
///
/// A C2SP tlog-checkpoint, cosigned by validators holding more than two thirds of the power
/// of the set that signed its last block (C2SP tlog-cosignature), as a signed note: origin,
/// size and base64 root lines, a blank line, then one `— name base64` line per cosignature.
#[utoipa::path(get, path = "/checkpoint", tag = "chain",
    responses((status = 200, description = "A signed note.", body = String, content_type = "text/plain"), Errors))]
pub async fn checkpoint(State(api): State<Api>) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let mut at = store.block_log_size().map_err(ApiError::internal)?;
        for _ in 0..CHECKPOINTS_SCANNED {
            let Some(size) = store.latest_cosigned(at).map_err(ApiError::internal)? else {
                break;
            };
            let set = validators_at(store.as_ref(), Height(size)).map_err(ApiError::internal)?;
            let cosignatures = store.cosignatures(size).map_err(ApiError::internal)?;
            let power: u64 = cosignatures
                .iter()
                .filter_map(|c| set.index_of(&c.key).and_then(|i| set.get(i)))
                .map(|v| v.power.0)
                .sum();
            if set.is_quorum(acta_ledger::VotingPower(power)) {
                let signed = SignedCheckpoint {
                    checkpoint: Checkpoint::of(store.as_ref(), &api.node.spec.chain_id, size)
                        .map_err(ApiError::internal)?,
                    cosignatures,
                };
                return Ok(super::text("text/plain; charset=utf-8", signed.note()));
            }
            if size == 0 {
                break;
            }
            at = size - 1;
        }
        Err(ApiError::not_found(
            "no checkpoint is cosigned by more than two thirds of the power yet",
        ))
    })
    .await
}

/// `?from=` and `?to=` of a consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older checkpoint's size.
    pub from: u64,
    /// The newer checkpoint's size (at most the latest height).
    pub to: u64,
}

/// The RFC 9162 consistency proof between the block log of `from` blocks and of `to` blocks
///
/// The proof that the block log of `from` blocks is a prefix of the log of `to` blocks
/// (two checkpoints of one chain).
#[utoipa::path(get, path = "/checkpoint/consistency", tag = "chain", params(ConsistencyParams),
    responses((status = 200, description = "OK", body = acta_ledger::merkle::ConsistencyProof), Errors))]
pub async fn consistency(
    State(api): State<Api>,
    Query(params): Query<ConsistencyParams>,
) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let latest = store.block_log_size().map_err(ApiError::internal)?;
        if params.from > params.to || params.to > latest {
            return Err(ApiError::bad_request(format!(
                "from {} and to {} must satisfy from <= to <= {latest} (the blocks committed)",
                params.from, params.to
            )));
        }
        let proof = blocklog::consistency_proof(store.as_ref(), params.from, params.to)
            .map_err(ApiError::internal)?;
        ok(proof)
    })
    .await
}
